//! Cluster-level administration through a superuser connection: the three
//! roles, databases, and the bootstrap that ties them together.

use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_kernel::{AuditEntry, PLATFORM_TENANT_ID, PlatformContext};

use crate::roles::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, check_name, with_database};
use crate::{DatabaseUrls, RolePasswords, StoreError, audit, migrations, schema};

/// Advisory-lock key serialising bootstraps on one server ("portico" + 0).
const BOOTSTRAP_LOCK: i64 = 0x706f_7274_6963_6f00;

/// The revision of what [`Admin::create_database`] and
/// [`ensure_platform_tenant`] put into a new database, beyond migrations.
/// Bump it when they change, so test templates built before are rebuilt.
pub const SETUP_REVISION: u32 = 2;

/// Each role and the attributes bootstrap gives it (and restores if changed).
const ROLES: [(&str, &str); 3] = [
    (OWNER_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"),
    (APP_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"),
    (PLATFORM_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"),
];

/// A database as the cluster catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DatabaseInfo {
    /// Its name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Whether it may be cloned with `CREATE DATABASE ... TEMPLATE`.
    #[diesel(sql_type = Bool)]
    pub is_template: bool,
    /// Whether connections are allowed (a finished test template allows none).
    #[diesel(sql_type = Bool)]
    pub allow_connections: bool,
    /// Its comment (`COMMENT ON DATABASE`), if any.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub comment: Option<String>,
}

/// The columns of [`DatabaseInfo`], from `pg_database`.
const DATABASE_COLUMNS: &str = "datname::text AS name, datistemplate AS is_template, \
     datallowconn AS allow_connections, shobj_description(oid, 'pg_database') AS comment";

/// A superuser connection to the server's maintenance database.
pub struct Admin {
    conn: AsyncPgConnection,
    admin_url: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

impl Admin {
    /// Connects with a URL of a role that may create roles and databases.
    pub async fn connect(admin_url: &str) -> Result<Self, StoreError> {
        Ok(Self { conn: AsyncPgConnection::establish(admin_url).await?, admin_url: admin_url.to_owned() })
    }

    /// Waits for the session-level advisory lock `key` (held until
    /// [`unlock`](Self::unlock) or disconnection).
    pub async fn lock(&mut self, key: i64) -> Result<(), StoreError> {
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(key)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Releases the advisory lock `key`.
    pub async fn unlock(&mut self, key: i64) -> Result<(), StoreError> {
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(key)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Creates the three roles if missing and (re)sets their attributes and
    /// passwords. Idempotent, and serialised with every other bootstrap on
    /// the server (`cargo run` and a test run starting together).
    pub async fn ensure_roles(&mut self, passwords: &RolePasswords) -> Result<(), StoreError> {
        // Session advisory locks nest, so `bootstrap` may already hold it.
        self.lock(BOOTSTRAP_LOCK).await?;
        let result = self.ensure_roles_locked(passwords).await;
        self.unlock(BOOTSTRAP_LOCK).await?;
        result
    }

    async fn ensure_roles_locked(&mut self, passwords: &RolePasswords) -> Result<(), StoreError> {
        #[derive(QueryableByName)]
        struct Role {
            #[diesel(sql_type = Text)]
            rolname: String,
            #[diesel(sql_type = Bool)]
            as_wanted: bool,
        }
        let existing: Vec<Role> = diesel::sql_query(
            "SELECT rolname::text, (rolcanlogin AND NOT rolsuper AND NOT rolcreatedb AND NOT rolcreaterole \
             AND NOT rolreplication AND rolbypassrls = (rolname <> $1)) AS as_wanted \
             FROM pg_roles WHERE rolname IN ($2, $1, $3)",
        )
        .bind::<Text, _>(APP_ROLE)
        .bind::<Text, _>(OWNER_ROLE)
        .bind::<Text, _>(PLATFORM_ROLE)
        .load(&mut self.conn)
        .await?;
        for (role, attributes) in ROLES {
            match existing.iter().find(|r| r.rolname == role) {
                None => self.conn.batch_execute(&format!("CREATE ROLE {role} {attributes}")).await?,
                Some(found) if !found.as_wanted => {
                    self.conn.batch_execute(&format!("ALTER ROLE {role} {attributes}")).await?;
                }
                Some(_) => {}
            }
        }
        let with_password = [
            (OWNER_ROLE, &passwords.owner),
            (APP_ROLE, &passwords.app),
            (PLATFORM_ROLE, &passwords.platform),
        ];
        for (role, password) in with_password {
            if let Some(password) = password {
                // Utility statements take no bind parameters: let the server quote the literal.
                #[derive(QueryableByName)]
                struct Statement {
                    #[diesel(sql_type = Text)]
                    sql: String,
                }
                let statement: Statement =
                    diesel::sql_query("SELECT format('ALTER ROLE %I PASSWORD %L', $1, $2) AS sql")
                        .bind::<Text, _>(role)
                        .bind::<Text, _>(password)
                        .get_result(&mut self.conn)
                        .await?;
                self.conn.batch_execute(&statement.sql).await?;
            }
        }
        Ok(())
    }

    /// The database called `name`, if it exists.
    pub async fn database(&mut self, name: &str) -> Result<Option<DatabaseInfo>, StoreError> {
        Ok(diesel::sql_query(format!("SELECT {DATABASE_COLUMNS} FROM pg_database WHERE datname = $1"))
            .bind::<Text, _>(name)
            .get_result(&mut self.conn)
            .await
            .optional()?)
    }

    /// Every database whose name starts with `prefix`.
    pub async fn databases_with_prefix(&mut self, prefix: &str) -> Result<Vec<DatabaseInfo>, StoreError> {
        let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        Ok(diesel::sql_query(format!(
            "SELECT {DATABASE_COLUMNS} FROM pg_database WHERE datname LIKE $1 ORDER BY datname"
        ))
        .bind::<Text, _>(pattern)
        .load(&mut self.conn)
        .await?)
    }

    /// Creates `name` owned by the owner role (as a copy of `template`, if
    /// given), reachable only by Portico's roles. Its `public` schema belongs
    /// to the owner role and nobody else may create in it (servers before
    /// PostgreSQL 15 let everyone); a clone inherits that from its template.
    pub async fn create_database(&mut self, name: &str, template: Option<&str>) -> Result<(), StoreError> {
        check_name(name)?;
        let template_clause = match template {
            Some(template) => {
                check_name(template)?;
                format!(" TEMPLATE {template}")
            }
            None => String::new(),
        };
        self.conn
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}{template_clause}"))
            .await?;
        self.conn
            .batch_execute(&format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC; \
                 GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}, {PLATFORM_ROLE}"
            ))
            .await?;
        if template.is_none() {
            let mut conn = AsyncPgConnection::establish(&with_database(&self.admin_url, name)?).await?;
            conn.batch_execute(&format!(
                "ALTER SCHEMA public OWNER TO {OWNER_ROLE}; \
                 REVOKE ALL ON SCHEMA public FROM PUBLIC; \
                 GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {PLATFORM_ROLE}"
            ))
            .await?;
        }
        Ok(())
    }

    /// Sets the comment of database `name` (the test harness records when it
    /// built a template).
    pub async fn comment_database(&mut self, name: &str, comment: &str) -> Result<(), StoreError> {
        check_name(name)?;
        #[derive(QueryableByName)]
        struct Statement {
            #[diesel(sql_type = Text)]
            sql: String,
        }
        let statement: Statement =
            diesel::sql_query(format!("SELECT format('COMMENT ON DATABASE {name} IS %L', $1) AS sql"))
                .bind::<Text, _>(comment)
                .get_result(&mut self.conn)
                .await?;
        self.conn.batch_execute(&statement.sql).await?;
        Ok(())
    }

    /// Turns `name` into a template: clonable, and closed to connections so
    /// that cloning never meets "source database is being accessed".
    pub async fn seal_as_template(&mut self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        self.conn
            .batch_execute(&format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"))
            .await?;
        Ok(())
    }

    /// Drops `name` if it exists, ending its sessions (`WITH (FORCE)`).
    pub async fn drop_database(&mut self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        if self.database(name).await?.is_some_and(|db| db.is_template) {
            self.conn.batch_execute(&format!("ALTER DATABASE {name} WITH IS_TEMPLATE false")).await?;
        }
        self.conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        Ok(())
    }
}

/// Makes a database ready to serve, idempotently: the three roles, the
/// database, its migrations (as the owner role) and the platform tenant.
/// Run by `portico db bootstrap`, `cargo run` and the test harness.
pub async fn bootstrap(
    admin_url: &str,
    database: &str,
    passwords: &RolePasswords,
) -> Result<DatabaseUrls, StoreError> {
    let urls = DatabaseUrls::derive(admin_url, database, passwords)?;
    let mut admin = Admin::connect(admin_url).await?;
    admin.lock(BOOTSTRAP_LOCK).await?;
    let prepared = async {
        admin.ensure_roles(passwords).await?;
        if admin.database(database).await?.is_none() {
            admin.create_database(database, None).await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    admin.unlock(BOOTSTRAP_LOCK).await?;
    prepared?;
    migrations::run_migrations(&urls.owner).await?;
    ensure_platform_tenant(&urls.owner).await?;
    Ok(urls)
}

/// Inserts the platform tenant (fixed id, slug `platform`) if it is missing,
/// with its audit row. Runs as the owner role.
pub async fn ensure_platform_tenant(owner_url: &str) -> Result<(), StoreError> {
    let mut conn = AsyncPgConnection::establish(owner_url).await?;
    conn.transaction::<_, StoreError, _>(async |conn| {
        let now = chrono::Utc::now();
        let inserted: Option<uuid::Uuid> = diesel::insert_into(schema::tenants::table)
            .values((
                schema::tenants::id.eq(PLATFORM_TENANT_ID.into_uuid()),
                schema::tenants::name.eq("Portico Platform"),
                schema::tenants::slug.eq("platform"),
                schema::tenants::contact_email.eq("platform@localhost"),
                schema::tenants::status.eq("active"),
                schema::tenants::metadata.eq(serde_json::json!({})),
                schema::tenants::created_at.eq(now),
                schema::tenants::updated_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .returning(schema::tenants::id)
            .get_result(conn)
            .await
            .optional()?;
        if inserted.is_some() {
            let ctx = PlatformContext::system("bootstrap");
            let entry = AuditEntry {
                action: "tenant.create",
                resource_type: "tenant",
                resource_id: PLATFORM_TENANT_ID.to_string(),
                changes: serde_json::json!({"slug": {"before": null, "after": "platform"}}),
            };
            audit::record(conn, PLATFORM_TENANT_ID, (&ctx).into(), &entry, now).await?;
        }
        Ok(())
    })
    .await
}

/// Whether the platform tenant row exists (as the owner role).
pub async fn platform_tenant_exists(owner_url: &str) -> Result<bool, StoreError> {
    let mut conn = AsyncPgConnection::establish(owner_url).await?;
    let count: i64 = schema::tenants::table
        .filter(schema::tenants::id.eq(PLATFORM_TENANT_ID.into_uuid()))
        .count()
        .get_result(&mut conn)
        .await?;
    Ok(count == 1)
}
