//! A running bff on a database of the test's own, and tokens to call it with.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::dev::ServerHandle;
use portico_bff::auth::TokenKeys;
use portico_bff::server::{self, Settings};
use portico_kernel::{PLATFORM_TENANT_ID, TenantId, UserId};
use portico_store::NewUser;
use portico_tenancy::{Email, MembershipKind, Role, UserStatus};
use portico_testkit::TestDb;

use crate::http::{Response, request};

pub const SECRET: &[u8] = b"system-test-secret-0123456789abcdef";
/// The password of every person the tests create.
pub const PASSWORD: &str = "Tr0ub4dor&3-horse";
/// The one browser origin the test server allows.
pub const PORTAL: &str = "https://portal.example";

/// Every log line of this test binary, to look for request ids in.
pub fn logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let writer = buffer.clone();
            let _ = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_env_filter("info")
                .with_writer(move || LogWriter(writer.clone()))
                .try_init();
            buffer
        })
        .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bff serving on port 0 with a cloned database.
pub struct TestApp {
    pub db: Arc<TestDb>,
    pub addr: SocketAddr,
    pub keys: TokenKeys,
    /// The development mailbox this app shows.
    pub mailbox: std::path::PathBuf,
    handle: ServerHandle,
}

/// A name unique within this machine.
fn uuid_like() -> String {
    portico_kernel::JobId::new().to_string()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`spawn`](Self::spawn) with settings changed by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        log_buffer();
        let db = Arc::new(TestDb::new().await);
        Self::serve(db, adjust).await
    }

    /// A second instance on the same database (its own cache, limits and
    /// connections), as behind a load balancer; or the same app restarted.
    pub async fn another_instance(&self) -> Self {
        Self::serve(self.db.clone(), |_| {}).await
    }

    async fn serve(db: Arc<TestDb>, adjust: impl FnOnce(&mut Settings)) -> Self {
        let store = db.store().await;
        let keys = TokenKeys::new(SECRET);
        let mailbox = std::env::temp_dir().join(format!("portico-test-mailbox-{}", uuid_like()));
        let mut settings = Settings {
            cors_allowed_origins: vec![PORTAL.to_owned()],
            dev_mailbox: Some(mailbox.clone()),
            ..Settings::local(keys.clone())
        };
        adjust(&mut settings);
        let running = server::start(store, &settings).unwrap();
        let handle = running.handle.clone();
        actix_web::rt::spawn(running.server);
        Self { db, addr: running.addr, keys, handle, mailbox }
    }

    /// Stops this instance at once (no graceful finish of open connections).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    /// A person with [`PASSWORD`] and a membership of `tenant` with `role`.
    pub async fn person(&self, email: &str, tenant: TenantId, role: Role) -> UserId {
        let store = self.db.store().await;
        let hash = portico_tenancy::password::hash(PASSWORD).unwrap();
        let user = store
            .create_user(NewUser {
                email: Email::parse(email).unwrap(),
                name: "Test Person".to_owned(),
                phone: None,
                status: UserStatus::Active,
                password_hash: Some(hash),
                email_verified: true,
            })
            .await
            .unwrap();
        let ctx = portico_kernel::TenantContext {
            tenant_id: tenant,
            actor: portico_kernel::Actor::system("test"),
            permissions: Default::default(),
            request_id: portico_kernel::RequestId::generate(),
            origin: portico_kernel::Origin::default(),
        };
        let kind = if role.is_platform() { MembershipKind::Admin } else { MembershipKind::Owner };
        store.add_membership(&ctx, user.id, role, kind).await.unwrap();
        user.id
    }

    /// A new tenant named after its slug (by the platform's staff); its id.
    pub async fn tenant(&self, slug: &str) -> TenantId {
        let body = serde_json::json!({
            "name": slug.to_uppercase(), "slug": slug, "contactEmail": format!("ops@{slug}.example"),
        });
        let res = self.call("POST", "/api/v1/tenants", Some(&self.admin_token()), Some(body)).await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.json["data"]["id"].as_str().unwrap().parse().unwrap()
    }

    /// A fresh person of the platform tenant (a platform admin), for walking routes; their email.
    pub async fn walk_person(&self) -> String {
        let email = format!("walker-{}@portico.example", uuid_like());
        self.person(&email, PLATFORM_TENANT_ID, Role::PlatformAdmin).await;
        email
    }

    /// The newest email queued to `email` (the `email.send` job's message).
    pub async fn last_email(&self, email: &str) -> serde_json::Value {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Message {
            #[diesel(sql_type = diesel::sql_types::Jsonb)]
            message: serde_json::Value,
        }
        let mut conn = diesel_async::AsyncPgConnection::establish(&self.db.urls.platform).await.unwrap();
        let found: Message = diesel::sql_query(
            "SELECT payload -> 'message' AS message FROM jobs \
             WHERE kind = 'email.send' AND payload -> 'message' -> 'to' -> 0 ->> 'address' = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind::<diesel::sql_types::Text, _>(email)
        .get_result(&mut conn)
        .await
        .unwrap();
        found.message
    }

    /// The token of the newest emailed link to `email`.
    pub async fn emailed_token(&self, email: &str) -> String {
        let text = self.last_email(email).await["text"].as_str().unwrap().to_owned();
        let start = text.find("token=").unwrap() + "token=".len();
        text[start..].split_whitespace().next().unwrap().to_owned()
    }

    /// The subject of the newest email queued to `email`.
    pub async fn last_subject(&self, email: &str) -> String {
        self.last_email(email).await["subject"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/auth/login`.
    pub async fn sign_in(&self, email: &str, password: &str, tenant: Option<&str>) -> Response {
        let mut body = serde_json::json!({"email": email, "password": password});
        if let Some(tenant) = tenant {
            body["tenant"] = serde_json::json!(tenant);
        }
        self.call("POST", "/api/v1/auth/login", None, Some(body)).await
    }

    /// A platform admin's token with a fixed user id: the same principal on every call.
    pub fn admin_token_of(&self, user: UserId) -> String {
        self.keys
            .mint(
                user,
                "admin@portico.example",
                "platform_admin",
                PLATFORM_TENANT_ID,
                portico_tenancy::Role::PlatformAdmin.permissions(),
                600,
            )
            .unwrap()
    }

    /// A platform admin's token (every tenant and platform permission).
    pub fn admin_token(&self) -> String {
        let permissions = portico_tenancy::Role::PlatformAdmin.permissions();
        self.keys
            .mint(
                UserId::new(),
                "admin@portico.example",
                "platform_admin",
                PLATFORM_TENANT_ID,
                permissions,
                600,
            )
            .unwrap()
    }

    /// A token of a user of `tenant` with `permissions`.
    pub fn user_token(&self, tenant: TenantId, permissions: &[&str]) -> String {
        self.keys.mint(UserId::new(), "owner@tenant.example", "owner", tenant, permissions, 600).unwrap()
    }

    /// Calls the API on a blocking thread (the server runs on this test's runtime).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Response {
        self.call_with(method, path, token, &[], body.map(|b| b.to_string().into_bytes())).await
    }

    /// Like [`call`](Self::call) with extra headers and a raw body.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let (addr, method, path) = (self.addr, method.to_owned(), path.to_owned());
        let mut headers: Vec<(String, String)> =
            extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        if let Some(token) = token {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        if body.is_some() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            request(addr, &method, &path, &headers, body.as_deref())
        })
        .await
        .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        let _ = std::fs::remove_dir_all(&self.mailbox);
    }
}

pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes() {
        buffer = (buffer << 5) | ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The authenticator's code `offset` steps from now; first waits out the end
/// of a step, so that a test never straddles one.
pub async fn code_at(secret: &[u8], offset: i64) -> String {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    if now() % 30 > 25 {
        tokio::time::sleep(std::time::Duration::from_secs(31 - now() % 30)).await;
    }
    let at = now().checked_add_signed(offset * 30).unwrap();
    format!("{:06}", portico_tenancy::mfa::totp(secret, at, 6))
}

/// An error answer's status and stable code.
pub fn code(res: &Response) -> (u16, serde_json::Value) {
    (res.status, res.json["error"]["code"].clone())
}

/// The fields a validation error names, in order.
pub fn fields(res: &Response) -> Vec<String> {
    res.json["error"]["details"]["fields"]
        .as_array()
        .map(|f| f.iter().map(|f| f["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

/// The `id` of an answer's `data`.
pub fn id_of(res: &Response) -> String {
    res.json["data"]["id"].as_str().unwrap_or_else(|| panic!("no id: {}", res.body)).to_owned()
}

/// The number `sql` (one row, one `n` column, `$1` bound to `bind` as text)
/// gives, read on the platform pool (every tenant visible).
pub async fn number(app: &TestApp, sql: &str, bind: &str) -> i64 {
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let row: Number = diesel::sql_query(sql).bind::<Text, _>(bind).get_result(&mut conn).await.unwrap();
    row.n
}

/// The rows of `table` that belong to `tenant`.
pub async fn rows(app: &TestApp, table: &str, tenant: TenantId) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = $1::uuid");
    number(app, &sql, &tenant.to_string()).await
}

/// The audit rows of `tenant` with `action`.
pub async fn audited(app: &TestApp, tenant: TenantId, action: &str) -> i64 {
    let sql =
        format!("SELECT count(*) AS n FROM audit_log WHERE action = '{action}' AND tenant_id = $1::uuid");
    number(app, &sql, &tenant.to_string()).await
}
