//! Load driver for credits over HTTP: `POST /api/v1/credits/debits` of 1
//! credit, each under its own `Idempotency-Key`, on one hot wallet and
//! spread over 1,000 tenants' wallets. Client, server and PostgreSQL share
//! this machine's cores. `just bench` runs it; the store's own figures are
//! in `portico-store`'s `credits` bench.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use portico_bff::auth::TokenKeys;
use portico_bff::server::{self, Settings};
use portico_credits::{AddCredits, Channel, Reference, TopUp, WalletRef};
use portico_kernel::{PlatformContext, TenantContext};
use portico_store::Store;
use portico_tenancy::{CreateTenant, Tenant, TenantStore};
use support::request;

/// Keep-alive connections the driver keeps busy.
const CONNECTIONS: usize = 16;
/// Debits per scenario.
const DEBITS: usize = 10_000;
/// Wallets the spread scenario uses.
const WALLETS: usize = 1_000;

fn reference(text: String) -> Reference {
    Reference::parse(&text).unwrap()
}

/// Gives `tenant` `credits` promotional SMS credits through the store.
async fn fund(store: &Store, tenant: &Tenant, credits: i64) {
    let ctx = TenantContext {
        tenant_id: tenant.id,
        actor: portico_kernel::Actor::system("bench"),
        permissions: Default::default(),
        request_id: portico_kernel::RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    };
    let add: AddCredits =
        serde_json::from_value(serde_json::json!({"amount": credits, "source": "promotional"})).unwrap();
    store
        .add_credits(&ctx, reference(format!("fund-{}", tenant.id)), WalletRef::Channel(Channel::Sms), add)
        .await
        .unwrap();
}

/// Sends [`DEBITS`] debits from [`CONNECTIONS`] connections, request `n`
/// with `tokens[n % tokens.len()]` and the key `{key_prefix}-{n}`; prints debits per second and latency percentiles.
fn scenario(name: &str, key_prefix: &str, addr: SocketAddr, tokens: Arc<Vec<String>>) {
    let body = r#"{"channel":"sms","amount":1}"#;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let tokens = tokens.clone();
        let prefix = key_prefix.to_owned();
        tasks.push(std::thread::spawn(move || {
            let mut conn = BufReader::new(TcpStream::connect(addr).unwrap());
            let mut latencies = Vec::with_capacity(DEBITS / CONNECTIONS);
            for n in (connection..DEBITS).step_by(CONNECTIONS) {
                let raw = format!(
                    "POST /api/v1/credits/debits HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\
                     Idempotency-Key: {prefix}-{n}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Accept-Encoding: identity\r\n\r\n{body}",
                    tokens[n % tokens.len()],
                    body.len()
                );
                let t = Instant::now();
                let (status, _) = request(&mut conn, raw.as_bytes());
                latencies.push(t.elapsed());
                assert_eq!(status, 201, "debit {n}");
            }
            latencies
        }));
    }
    let latencies = tasks.into_iter().flat_map(|task| task.join().unwrap()).collect();
    support::report(name, latencies, started.elapsed(), "debits", CONNECTIONS);
}

fn main() {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let (db, store, hot) = support::bench_tenant().await;
        let stock = TopUp { channel: Channel::Sms, amount: 1_000_000_000, note: "bench".into() };
        store.top_up_master(&PlatformContext::system("bench"), reference("stock".into()), stock).await.unwrap();
        fund(&store, &hot, 10_000_000).await;
        let mut spread = Vec::with_capacity(WALLETS);
        for i in 0..WALLETS {
            let command: CreateTenant = serde_json::from_value(serde_json::json!({
                "name": format!("Bench {i}"), "slug": format!("bench-{i}"), "contactEmail": "ops@bench.example"
            }))
            .unwrap();
            let tenant = store.create(&PlatformContext::system("bench"), command).await.unwrap();
            fund(&store, &tenant, 100_000).await;
            spread.push(support::owner_token(&tenant, &["credits:spend"]));
        }
        let hot = Arc::new(vec![support::owner_token(&hot, &["credits:spend"])]);
        let spread = Arc::new(spread);

        let mut settings = Settings::local(TokenKeys::new(support::SECRET));
        settings.rate_limits.enabled = false;
        let running = server::start(store, &settings).unwrap();
        let (addr, handle) = (running.addr, running.handle.clone());
        actix_web::rt::spawn(running.server);

        // The driver runs on threads of its own, beside the server's workers.
        let driver = std::thread::spawn(move || {
            println!("POST /api/v1/credits/debits of 1 credit (2 cores shared by driver, server and PostgreSQL):");
            scenario("one hot wallet", "hot", addr, hot);
            scenario("spread over 1,000 wallets", "spread", addr, spread);
        });
        actix_web::rt::task::spawn_blocking(move || driver.join().unwrap()).await.unwrap();
        handle.stop(true).await;
        drop(db);
    });
}
