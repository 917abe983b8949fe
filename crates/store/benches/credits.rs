//! Load driver for the credits ledger: debits of 1 through the store, on one
//! hot wallet (every debit waits for the wallet's lock) and spread over
//! 1,000 wallets of 1,000 tenants. `just bench` runs it; the HTTP figures
//! are in the bff's `credits` bench.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use portico_credits::{AddCredits, Channel, CreditsLedger, Debit, Reference, TopUp, WalletRef};
use portico_kernel::{PlatformContext, TenantContext};
use portico_store::{PoolConfig, Store};
use portico_tenancy::{CreateTenant, TenantStore};
use portico_testkit::TestDb;
use support::{member, scenario};

const DEBITS: usize = 20_000;
const WALLETS: usize = 1_000;

fn reference(text: String) -> Reference {
    Reference::parse(&text).unwrap()
}

async fn funded_tenant(store: &Store, i: usize, credits: i64) -> TenantContext {
    let command: CreateTenant = serde_json::from_value(serde_json::json!({
        "name": format!("Bench {i}"), "slug": format!("bench-{i}"), "contactEmail": "ops@bench.example"
    }))
    .unwrap();
    let ctx = member(store.create(&PlatformContext::system("bench"), command).await.unwrap().id);
    let add: AddCredits =
        serde_json::from_value(serde_json::json!({"amount": credits, "source": "promotional"})).unwrap();
    // Credits are given by the platform, not by the tenant's own people.
    let platform = TenantContext { actor: portico_kernel::Actor::system("bench"), ..ctx.clone() };
    store
        .add_credits(&platform, reference(format!("fund-{i}")), WalletRef::Channel(Channel::Sms), add)
        .await
        .unwrap();
    ctx
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let config = PoolConfig { app_max_size: 16, platform_max_size: 4, ..PoolConfig::default() };
    let store = Arc::new(Store::connect(&db.urls, &config).await.unwrap());
    let stock = TopUp { channel: Channel::Sms, amount: 1_000_000_000, note: "bench".into() };
    store.top_up_master(&PlatformContext::system("bench"), reference("stock".into()), stock).await.unwrap();

    let hot = Arc::new(funded_tenant(&store, 0, 10_000_000).await);
    for concurrency in [1, 16] {
        let (store, hot) = (store.clone(), hot.clone());
        scenario("debit of 1, one hot wallet", concurrency, DEBITS, move |worker, n| {
            let (store, hot) = (store.clone(), hot.clone());
            async move {
                let debit = Debit { channel: Channel::Sms, amount: 1 };
                store.debit(&hot, reference(format!("hot-{concurrency}-{worker}-{n}")), debit).await.unwrap();
            }
        })
        .await;
    }

    let mut spread = Vec::with_capacity(WALLETS);
    for i in 1..=WALLETS {
        spread.push(funded_tenant(&store, i, 100_000).await);
    }
    let spread = Arc::new(spread);
    for concurrency in [1, 16] {
        let (store, spread) = (store.clone(), spread.clone());
        scenario("debit of 1, spread over 1,000 wallets", concurrency, DEBITS, move |worker, n| {
            let (store, ctx) = (store.clone(), spread[(worker + n * concurrency) % spread.len()].clone());
            async move {
                let debit = Debit { channel: Channel::Sms, amount: 1 };
                store
                    .debit(&ctx, reference(format!("spread-{concurrency}-{worker}-{n}")), debit)
                    .await
                    .unwrap();
            }
        })
        .await;
    }
}
