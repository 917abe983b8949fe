//! Credits against real PostgreSQL: the draw order as stored, expiry,
//! reservations, refusals that leave nothing behind, reference keys, the
//! master wallet, the low-balance alert, and many debits at once on one wallet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_credits::{
    AddCredits, Capture, Channel, CreditsError, CreditsLedger, Debit, EntryKind, Movement, PriceList,
    Reference, ReservationStatus, Reserve, TopUp, WalletRef, WalletSettings,
};
use portico_kernel::{FixedClock, TenantContext, TenantId};
use portico_store::{PoolConfig, Store};
use portico_tenancy::Role;
use portico_testkit::TestDb;

use crate::support::{connect, count, member_of, platform, staff_on, tenant};

/// An owner of `tenant`.
fn owner_of(tenant: TenantId) -> TenantContext {
    TenantContext {
        permissions: Role::Owner.permissions().iter().map(|p| (*p).to_owned()).collect(),
        ..member_of(tenant)
    }
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

fn add(amount: i64, source: &str, validity_days: Option<u32>) -> AddCredits {
    serde_json::from_value(
        serde_json::json!({"amount": amount, "source": source, "validityDays": validity_days}),
    )
    .unwrap()
}

fn sms(amount: i64) -> Debit {
    Debit { channel: Channel::Sms, amount }
}

fn reserve(amount: i64) -> Reserve {
    Reserve { channel: Channel::Sms, amount, hold_seconds: None }
}

/// Stocks the master wallet with `stock` SMS credits and prices SMS at 0.08 EUR.
async fn stock(store: &Store, stock: i64) {
    let top_up = TopUp { channel: Channel::Sms, amount: stock, note: "provider order".into() };
    store.top_up_master(&platform(), reference(&format!("stock-{stock}")), top_up).await.unwrap();
    let prices: PriceList = serde_json::from_value(serde_json::json!({"prices": [
        {"channel": "sms", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.08"}]}]}))
    .unwrap();
    store.set_credit_prices(&platform(), prices.validated().unwrap()).await.unwrap();
}

/// A tenant with `amount` promotional SMS credits (the master wallet stocked for it).
async fn funded(store: &Store, slug: &str, amount: i64) -> TenantContext {
    stock(store, 1_000_000).await;
    let ctx = owner_of(tenant(store, slug).await.id);
    store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("welcome"),
            WalletRef::Channel(Channel::Sms),
            add(amount, "promotional", None),
        )
        .await
        .unwrap();
    ctx
}

async fn as_owner(db: &TestDb) -> AsyncPgConnection {
    connect(&db.urls.owner).await
}

#[derive(QueryableByName)]
struct Broken {
    #[diesel(sql_type = Text)]
    wallet: String,
}

/// Every wallet's balance equals the sum of its entries, and its open grants
/// plus its holds; every hold equals its reservations; every entry's balance
/// after is the running sum. Answers the wallets that break it.
async fn broken_wallets(conn: &mut AsyncPgConnection) -> Vec<String> {
    let rows: Vec<Broken> = diesel::sql_query(
        "SELECT w.id::text AS wallet FROM credit_wallets w \
          WHERE w.balance <> coalesce((SELECT sum(e.amount) FROM credit_entries e \
                                        WHERE e.tenant_id = w.tenant_id AND e.wallet_id = w.id), 0) \
             OR w.balance <> w.held + coalesce((SELECT sum(g.remaining) FROM credit_grants g \
                                                 WHERE g.tenant_id = w.tenant_id AND g.wallet_id = w.id), 0) \
             OR w.held <> coalesce((SELECT sum(r.amount) FROM credit_reservations r \
                                     WHERE r.tenant_id = w.tenant_id AND r.wallet_id = w.id AND r.status = 'held'), 0)",
    )
    .load(conn)
    .await
    .unwrap();
    // Every entry's balance after it is the running sum of the wallet's entries, in ledger order.
    let unordered: Vec<Broken> = diesel::sql_query(
        "SELECT DISTINCT x.wallet_id::text AS wallet FROM ( \
             SELECT wallet_id, balance_after, \
                    sum(amount) OVER (PARTITION BY tenant_id, wallet_id ORDER BY created_at, id) AS running \
               FROM credit_entries) x \
          WHERE x.balance_after <> x.running",
    )
    .load(conn)
    .await
    .unwrap();
    rows.into_iter().chain(unordered).map(|r| r.wallet).collect()
}

async fn wallet(store: &Store, ctx: &TenantContext) -> portico_credits::Wallet {
    store.wallet(ctx, WalletRef::Channel(Channel::Sms)).await.unwrap().wallet
}

#[tokio::test]
async fn debits_draw_from_grants_in_order_and_the_ledger_says_so() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    let sms_wallet = WalletRef::Channel(Channel::Sms);
    let bought =
        store.add_credits(&ctx, reference("buy"), sms_wallet, add(1000, "purchase", None)).await.unwrap();
    let promo = store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("promo"),
            sms_wallet,
            add(100, "promotional", Some(7)),
        )
        .await
        .unwrap();
    let refund = store
        .add_credits(&staff_on(ctx.tenant_id), reference("refund"), sms_wallet, add(20, "refund", None))
        .await
        .unwrap();

    let debit = store.debit(&ctx, reference("send-1"), sms(150)).await.unwrap();

    // Expiring first, then (no expiry) free before paid.
    let drawn: Vec<_> = debit.entries.iter().map(|e| (e.grant_id, e.amount, e.balance_after)).collect();
    assert_eq!(
        drawn,
        vec![
            (promo.entries[0].grant_id, -100, 1020),
            (refund.entries[0].grant_id, -20, 1000),
            (bought.entries[0].grant_id, -30, 970),
        ]
    );
    assert_eq!((debit.wallet.balance, debit.wallet.available), (970, 970));
    let mut conn = as_owner(&db).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM credit_entries WHERE kind = 'debit'").await, 3);
    assert_eq!(
        count(&mut conn, "SELECT remaining AS n FROM credit_grants WHERE source = 'purchase'").await,
        970
    );
    assert_eq!(
        count(&mut conn, "SELECT total_minor AS n FROM credit_purchases").await,
        8000,
        "1000 × 0.08 EUR"
    );
    assert_eq!(count(&mut conn, "SELECT balance AS n FROM credit_master_wallets").await, 10_000 - 1120);
    let tenant_audit = format!(
        "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{}' AND action LIKE 'credits.%'",
        ctx.tenant_id
    );
    assert_eq!(count(&mut conn, &tenant_audit).await, 4, "three grants and a debit");
    assert!(broken_wallets(&mut conn).await.is_empty());
}

#[tokio::test]
async fn the_unused_part_of_an_expired_grant_expires() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    let sms_wallet = WalletRef::Channel(Channel::Sms);
    store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("promo"),
            sms_wallet,
            add(100, "promotional", Some(1)),
        )
        .await
        .unwrap();
    store.add_credits(&ctx, reference("buy"), sms_wallet, add(10, "purchase", None)).await.unwrap();
    store.debit(&ctx, reference("send-1"), sms(30)).await.unwrap();

    clock.advance(TimeDelta::days(2));
    assert_eq!(store.settle_due_credits(&platform(), 100).await.unwrap(), 1);

    let after = wallet(&store, &ctx).await;
    assert_eq!((after.balance, after.available), (10, 10), "70 expired, the 10 bought stay");
    let mut conn = as_owner(&db).await;
    assert_eq!(count(&mut conn, "SELECT amount AS n FROM credit_entries WHERE kind = 'expiry'").await, -70);
    assert_eq!(
        count(&mut conn, "SELECT balance_after AS n FROM credit_entries WHERE kind = 'expiry'").await,
        10
    );
    assert_eq!(
        count(&mut conn, "SELECT remaining AS n FROM credit_grants WHERE source = 'promotional'").await,
        0
    );
    assert_eq!(store.settle_due_credits(&platform(), 100).await.unwrap(), 0, "nothing is due twice");
    assert!(broken_wallets(&mut conn).await.is_empty());
}

#[tokio::test]
async fn an_operation_expires_what_is_due_before_it_draws() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("promo"),
            WalletRef::Channel(Channel::Sms),
            add(100, "promotional", Some(1)),
        )
        .await
        .unwrap();
    clock.advance(TimeDelta::days(1));

    let refused = store.debit(&ctx, reference("late"), sms(1)).await.unwrap_err();
    assert!(
        matches!(refused, CreditsError::InsufficientBalance { requested: 1, available: 0, .. }),
        "{refused:?}"
    );
    // The refusal rolled back everything, the expiry with it: the sweep still finds it.
    assert_eq!(store.settle_due_credits(&platform(), 100).await.unwrap(), 1);
    assert_eq!(wallet(&store, &ctx).await.balance, 0);
}

#[tokio::test]
async fn reserve_capture_and_release_keep_the_arithmetic() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let ctx = funded(&store, "acme", 100).await;

    let held = store.reserve(&ctx, reference("r1"), reserve(30)).await.unwrap();
    assert_eq!((held.wallet.balance, held.wallet.held, held.wallet.available), (100, 30, 70));
    assert!(held.entries.is_empty(), "a hold changes no balance");
    let id = held.reservation.unwrap().id;

    let captured = store.capture(&ctx, reference("c1"), id, Capture { amount: Some(20) }).await.unwrap();
    assert_eq!((captured.wallet.balance, captured.wallet.held, captured.wallet.available), (80, 0, 80));
    assert_eq!(
        captured.entries.iter().map(|e| (e.kind, e.amount)).collect::<Vec<_>>(),
        [(EntryKind::Capture, -20)]
    );
    let reservation = captured.reservation.unwrap();
    assert_eq!((reservation.status, reservation.captured), (ReservationStatus::Captured, 20));
    let again = store.release(&ctx, reference("c1-release"), id).await.unwrap_err();
    assert!(matches!(again, CreditsError::ReservationSettled(ReservationStatus::Captured)), "{again:?}");

    let second = store.reserve(&ctx, reference("r2"), reserve(50)).await.unwrap().reservation.unwrap();
    let released = store.release(&ctx, reference("l2"), second.id).await.unwrap();
    assert_eq!((released.wallet.balance, released.wallet.held), (80, 0));
    assert_eq!(released.reservation.unwrap().status, ReservationStatus::Released);

    // A hold nobody settles goes back when it runs out.
    let short = Reserve { hold_seconds: Some(60), ..reserve(10) };
    let lost = store.reserve(&ctx, reference("r3"), short).await.unwrap().reservation.unwrap();
    clock.advance(TimeDelta::seconds(61));
    let late = store.capture(&ctx, reference("c3"), lost.id, Capture::default()).await.unwrap_err();
    assert!(matches!(late, CreditsError::ReservationExpired), "{late:?}");
    assert_eq!(store.settle_due_credits(&platform(), 100).await.unwrap(), 1);
    let swept = store.reservation(&ctx, lost.id).await.unwrap();
    assert_eq!(swept.status, ReservationStatus::Expired);
    let after = wallet(&store, &ctx).await;
    assert_eq!((after.balance, after.held, after.available), (80, 0, 80));
    assert!(broken_wallets(&mut as_owner(&db).await).await.is_empty());
}

#[tokio::test]
async fn an_insufficient_balance_leaves_the_ledger_unchanged() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ctx = funded(&store, "acme", 5).await;
    let mut conn = as_owner(&db).await;
    let tables = [
        "credit_wallets",
        "credit_entries",
        "credit_grants",
        "credit_reservations",
        "credit_operations",
        "credit_master_entries",
        "audit_log",
        "jobs",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(count(&mut conn, &format!("SELECT count(*) AS n FROM {table}")).await);
    }
    let snapshot = wallet(&store, &ctx).await;

    let refused = store.debit(&ctx, reference("big"), sms(6)).await.unwrap_err();
    assert!(matches!(refused, CreditsError::InsufficientBalance { requested: 6, available: 5, .. }));
    let refused = store.reserve(&ctx, reference("big-hold"), reserve(6)).await.unwrap_err();
    assert!(matches!(refused, CreditsError::InsufficientBalance { .. }));

    // A wallet never used before is not created by a refusal either.
    let whatsapp = Debit { channel: Channel::Whatsapp, amount: 1 };
    assert!(matches!(
        store.debit(&ctx, reference("first"), whatsapp).await,
        Err(CreditsError::InsufficientBalance { .. })
    ));

    for (table, n) in tables.iter().zip(before) {
        assert_eq!(count(&mut conn, &format!("SELECT count(*) AS n FROM {table}")).await, n, "{table}");
    }
    assert_eq!(wallet(&store, &ctx).await, snapshot);
    // The refused reference was not spent: it works once there is enough.
    store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("more"),
            WalletRef::Channel(Channel::Sms),
            add(1, "promotional", None),
        )
        .await
        .unwrap();
    assert_eq!(store.debit(&ctx, reference("big"), sms(6)).await.unwrap().wallet.balance, 0);
}

#[tokio::test]
async fn a_replayed_reference_answers_the_first_result_and_moves_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ctx = funded(&store, "acme", 100).await;
    let first = store.debit(&ctx, reference("send-1"), sms(3)).await.unwrap();
    store.debit(&ctx, reference("send-2"), sms(4)).await.unwrap();

    let again = store.debit(&ctx, reference("send-1"), sms(3)).await.unwrap();
    assert!(again.replayed && !first.replayed);
    assert_eq!(Movement { replayed: false, ..again }, first, "the first result, as it was");
    assert_eq!(wallet(&store, &ctx).await.balance, 93);

    let reused = store.debit(&ctx, reference("send-1"), sms(5)).await.unwrap_err();
    assert!(matches!(reused, CreditsError::ReferenceReused), "{reused:?}");
    let reused = store.reserve(&ctx, reference("send-1"), reserve(3)).await.unwrap_err();
    assert!(matches!(reused, CreditsError::ReferenceReused), "{reused:?}");

    // A repeated purchase takes nothing more from the platform's stock either.
    let mut conn = as_owner(&db).await;
    let stock_before = count(&mut conn, "SELECT balance AS n FROM credit_master_wallets").await;
    let buy = add(10, "purchase", None);
    store.add_credits(&ctx, reference("buy"), WalletRef::Channel(Channel::Sms), buy.clone()).await.unwrap();
    let replay =
        store.add_credits(&ctx, reference("buy"), WalletRef::Channel(Channel::Sms), buy).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(count(&mut conn, "SELECT balance AS n FROM credit_master_wallets").await, stock_before - 10);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM credit_purchases").await, 1);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM credit_entries WHERE kind = 'debit'").await, 2);
    assert_eq!(wallet(&store, &ctx).await.balance, 103);
}

#[tokio::test]
async fn a_sale_the_master_wallet_cannot_cover_fails_cleanly() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, 10).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);

    let refused = store
        .add_credits(&ctx, reference("buy"), WalletRef::Channel(Channel::Sms), add(11, "purchase", None))
        .await
        .unwrap_err();
    assert!(matches!(refused, CreditsError::MasterInsufficient { requested: 11, .. }), "{refused:?}");
    let mut conn = as_owner(&db).await;
    for table in
        ["credit_wallets", "credit_grants", "credit_entries", "credit_purchases", "credit_operations"]
    {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = '{}'", ctx.tenant_id);
        assert_eq!(count(&mut conn, &sql).await, 0, "{table}");
    }
    assert_eq!(count(&mut conn, "SELECT balance AS n FROM credit_master_wallets").await, 10);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_master_entries").await,
        1,
        "the top-up only"
    );
}

#[tokio::test]
async fn falling_below_the_threshold_enqueues_one_alert_until_it_rises_again() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ctx = funded(&store, "acme", 100).await;
    let threshold = WalletSettings { low_balance_threshold: Some(50) };
    store.set_wallet_settings(&ctx, WalletRef::Channel(Channel::Sms), threshold).await.unwrap();
    let mut conn = as_owner(&db).await;
    let alerts = "SELECT count(*) AS n FROM jobs WHERE kind = 'credits.low_balance'";

    store.debit(&ctx, reference("a"), sms(40)).await.unwrap();
    assert_eq!(count(&mut conn, alerts).await, 0, "60 left: above");
    let below = store.debit(&ctx, reference("b"), sms(20)).await.unwrap();
    assert!(below.wallet.low_balance);
    assert_eq!(count(&mut conn, alerts).await, 1);
    store.debit(&ctx, reference("c"), sms(5)).await.unwrap();
    store.reserve(&ctx, reference("d"), reserve(5)).await.unwrap();
    assert_eq!(count(&mut conn, alerts).await, 1, "one alert per fall, however many debits follow");

    // The worker sends the first alert (while it is pending, a new fall adds no second one).
    diesel::sql_query("UPDATE jobs SET state = 'succeeded' WHERE kind = 'credits.low_balance'")
        .execute(&mut conn)
        .await
        .unwrap();
    let up = store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("top"),
            WalletRef::Channel(Channel::Sms),
            add(100, "promotional", None),
        )
        .await
        .unwrap();
    assert!(!up.wallet.low_balance, "re-armed at 130 available");
    store.debit(&ctx, reference("e"), sms(100)).await.unwrap();
    let payloads = count(
        &mut conn,
        "SELECT count(DISTINCT payload->>'available') AS n FROM jobs WHERE kind = 'credits.low_balance'",
    )
    .await;
    assert_eq!((count(&mut conn, alerts).await, payloads), (2, 2), "the second fall alerts again");
}

#[derive(QueryableByName)]
struct Active {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Samples how many of the app role's connections to this database are
/// busy (running or waiting on a lock), until `stop`; the highest count seen.
fn watch_connections(db: &TestDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<i64> {
    // The server's administrator sees every role's sessions.
    let (url, name) = (db.admin_url().to_owned(), db.name().to_owned());
    tokio::spawn(async move {
        let mut conn = connect(&url).await;
        let mut most = 0;
        while !AtomicBool::load(&stop, Ordering::Relaxed) {
            let busy: Active = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                  WHERE datname = $1 AND usename = 'portico_app' AND state IN ('active', 'idle in transaction')",
            )
            .bind::<Text, _>(&name)
            .get_result(&mut conn)
            .await
            .unwrap();
            most = most.max(busy.n);
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        most
    })
}

async fn wide_store(db: &TestDb) -> Store {
    // A thousand callers queue for 16 connections: they wait as long as it takes.
    let config = PoolConfig {
        app_max_size: 16,
        platform_max_size: 2,
        wait_timeout: std::time::Duration::from_secs(120),
        ..PoolConfig::default()
    };
    Store::connect(&db.urls, &config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_debits_on_seven_hundred_credits_spend_exactly_seven_hundred() {
    let db = TestDb::new().await;
    let store = wide_store(&db).await;
    let ctx = funded(&store, "acme", 700).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_connections(&db, stop.clone());

    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (store, ctx) = (store.clone(), ctx.clone());
            tokio::spawn(async move { store.debit(&ctx, reference(&format!("send-{i}")), sms(1)).await })
        })
        .collect();
    let (mut spent, mut short) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => spent += 1,
            Err(CreditsError::InsufficientBalance { .. }) => short += 1,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let most_busy = watcher.await.unwrap();

    assert_eq!((spent, short), (700, 300));
    let after = wallet(&store, &ctx).await;
    assert_eq!((after.balance, after.held), (0, 0));
    let mut conn = as_owner(&db).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM credit_entries WHERE kind = 'debit'").await, 700);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_operations WHERE kind = 'debit'").await,
        700
    );
    assert!(broken_wallets(&mut conn).await.is_empty(), "balance = sum(entries) for every wallet");
    assert!(most_busy >= 8, "the debits ran side by side on many connections (at most {most_busy} seen)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reserves_captures_and_releases_never_lose_a_credit() {
    let db = TestDb::new().await;
    let store = wide_store(&db).await;
    let ctx = funded(&store, "acme", 700).await;
    let captured = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_connections(&db, stop.clone());

    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (store, ctx, captured) = (store.clone(), ctx.clone(), captured.clone());
            tokio::spawn(async move {
                let held = match store.reserve(&ctx, reference(&format!("hold-{i}")), reserve(2)).await {
                    Ok(movement) => movement.reservation.unwrap(),
                    Err(CreditsError::InsufficientBalance { .. }) => return false,
                    Err(other) => panic!("unexpected: {other:?}"),
                };
                if i % 3 == 0 {
                    store.release(&ctx, reference(&format!("release-{i}")), held.id).await.unwrap();
                } else {
                    // One of the two held credits was spent; the other goes back.
                    store
                        .capture(
                            &ctx,
                            reference(&format!("capture-{i}")),
                            held.id,
                            Capture { amount: Some(1) },
                        )
                        .await
                        .unwrap();
                    captured.fetch_add(1, Ordering::Relaxed);
                }
                true
            })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        reserved += i64::from(task.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let most_busy = watcher.await.unwrap();

    let captured = AtomicI64::load(&captured, Ordering::Relaxed);
    assert!(reserved >= 350, "at most 350 holds of 2 fit at once, and settled ones make room ({reserved})");
    let after = wallet(&store, &ctx).await;
    assert_eq!((after.balance, after.held), (700 - captured, 0));
    let mut conn = as_owner(&db).await;
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_entries WHERE kind = 'capture'").await,
        captured
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_reservations WHERE status = 'held'").await,
        0
    );
    assert!(broken_wallets(&mut conn).await.is_empty());
    assert!(most_busy >= 8, "side by side on many connections (at most {most_busy} seen)");
}

#[tokio::test]
async fn a_tenant_sees_neither_another_tenants_wallets_nor_its_reservations() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = funded(&store, "acme", 100).await;
    let globex = owner_of(tenant(&store, "globex").await.id);
    let held = store.reserve(&acme, reference("r"), reserve(3)).await.unwrap();
    let (wallet_id, reservation_id) = (held.wallet.id, held.reservation.unwrap().id);

    assert!(matches!(
        store.wallet(&globex, WalletRef::Id(wallet_id)).await,
        Err(CreditsError::WalletNotFound)
    ));
    assert!(matches!(
        store.reservation(&globex, reservation_id).await,
        Err(CreditsError::ReservationNotFound)
    ));
    let steal = store.capture(&globex, reference("x"), reservation_id, Capture::default()).await;
    assert!(matches!(steal, Err(CreditsError::ReservationNotFound)));
    assert!(store.wallets(&globex).await.unwrap().is_empty());
    let page = store.credit_entries(&globex, Default::default(), Default::default()).await.unwrap();
    assert_eq!(page.total, 0);
    // The same reference in another tenant is another operation.
    assert!(matches!(
        store.reserve(&globex, reference("r"), reserve(1)).await,
        Err(CreditsError::InsufficientBalance { .. })
    ));
}

#[tokio::test]
async fn a_replay_after_a_hold_fell_due_changes_nothing() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let ctx = funded(&store, "acme", 100).await;
    let short = Reserve { hold_seconds: Some(60), ..reserve(10) };
    store.reserve(&ctx, reference("hold"), short).await.unwrap();
    let first = store.debit(&ctx, reference("send"), sms(5)).await.unwrap();
    clock.advance(TimeDelta::seconds(61));

    let again = store.debit(&ctx, reference("send"), sms(5)).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.wallet, first.wallet, "the first answer");
    let mut conn = as_owner(&db).await;
    assert!(broken_wallets(&mut conn).await.is_empty(), "the replay settled nothing halfway");
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_reservations WHERE status = 'held'").await,
        1
    );
    // The next real operation gives the lapsed hold back, whole.
    let after = store.debit(&ctx, reference("send-2"), sms(1)).await.unwrap();
    assert_eq!((after.wallet.balance, after.wallet.held), (94, 0));
    assert!(after.entries.iter().all(|e| e.kind == EntryKind::Debit), "only the debit's own entries");
    assert!(broken_wallets(&mut conn).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_duplicates_of_one_reference_move_credits_once() {
    let db = TestDb::new().await;
    let store = wide_store(&db).await;
    let ctx = funded(&store, "acme", 100).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, ctx) = (store.clone(), ctx.clone());
            tokio::spawn(async move { store.debit(&ctx, reference("send-once"), sms(7)).await.unwrap() })
        })
        .collect();
    let mut firsts = 0;
    for task in tasks {
        let movement = task.await.unwrap();
        firsts += i32::from(!movement.replayed);
        assert_eq!(movement.wallet.balance, 93, "every answer is the first one's");
    }
    assert_eq!(firsts, 1);
    assert_eq!(wallet(&store, &ctx).await.balance, 93);
    let mut conn = as_owner(&db).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM credit_entries WHERE kind = 'debit'").await, 1);
}

#[tokio::test]
async fn a_package_the_stock_cannot_fully_cover_sells_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    let draft: portico_credits::PackageDraft = serde_json::from_value(serde_json::json!({
        "name": "Both", "credits": [{"channel": "sms", "amount": 100}, {"channel": "email", "amount": 100}],
        "price": {"amountMinor": 500, "currency": "EUR"}
    }))
    .unwrap();
    let package = store.save_credit_package(&platform(), None, draft.validated().unwrap()).await.unwrap();

    let refused = store.purchase_package(&ctx, reference("buy"), package.id).await.unwrap_err();
    assert!(
        matches!(refused, CreditsError::MasterInsufficient { channel: Channel::Email, .. }),
        "{refused:?}"
    );
    let mut conn = as_owner(&db).await;
    for table in
        ["credit_wallets", "credit_grants", "credit_entries", "credit_purchases", "credit_operations"]
    {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = '{}'", ctx.tenant_id);
        assert_eq!(count(&mut conn, &sql).await, 0, "{table}");
    }
    assert_eq!(
        count(&mut conn, "SELECT balance AS n FROM credit_master_wallets WHERE channel = 'sms'").await,
        10_000
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_master_entries WHERE kind = 'sale'").await,
        0
    );
}

#[tokio::test]
async fn a_tenants_own_people_cannot_give_credits_away() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    let free = store
        .add_credits(&ctx, reference("free"), WalletRef::Channel(Channel::Sms), add(50, "promotional", None))
        .await
        .unwrap_err();
    assert!(matches!(free, CreditsError::SourceNotAllowed("promotional")), "{free:?}");
    let adjust = portico_credits::AdjustCredits { amount: 50, reason: "because".into() };
    let adjusted =
        store.adjust_credits(&ctx, reference("adj"), WalletRef::Channel(Channel::Sms), adjust).await;
    assert!(matches!(adjusted, Err(CreditsError::SourceNotAllowed(_))));
    let mut conn = as_owner(&db).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM credit_grants").await, 0);
    assert_eq!(count(&mut conn, "SELECT balance AS n FROM credit_master_wallets").await, 10_000);
}

#[tokio::test]
async fn expiries_noticed_by_an_operation_are_the_platforms_and_not_in_its_answer() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    let promo = store
        .add_credits(
            &staff_on(ctx.tenant_id),
            reference("promo"),
            WalletRef::Channel(Channel::Sms),
            add(100, "promotional", Some(1)),
        )
        .await
        .unwrap();
    store
        .add_credits(&ctx, reference("buy"), WalletRef::Channel(Channel::Sms), add(10, "purchase", None))
        .await
        .unwrap();
    clock.advance(TimeDelta::days(2));

    let debit = store.debit(&ctx, reference("send"), sms(5)).await.unwrap();
    let own: Vec<_> = debit.entries.iter().map(|e| (e.kind, e.amount, e.balance_after)).collect();
    assert_eq!(own, [(EntryKind::Debit, -5, 5)], "the answer shows the debit's own entries");
    let page = store
        .credit_entries(
            &ctx,
            portico_credits::EntryFilter { kind: Some(EntryKind::Expiry), ..Default::default() },
            Default::default(),
        )
        .await
        .unwrap();
    let expiry = &page.items[0];
    assert_eq!((expiry.amount, expiry.balance_after), (-100, 10));
    assert_eq!(expiry.actor, "system:credits.expire");
    assert_eq!(expiry.reference, format!("expiry:{}", promo.entries[0].grant_id));
    assert!(broken_wallets(&mut as_owner(&db).await).await.is_empty());
}

#[tokio::test]
async fn a_hold_that_emptied_its_grant_goes_back_to_it() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let ctx = funded(&store, "acme", 10).await;
    let mut conn = as_owner(&db).await;

    let all = store.reserve(&ctx, reference("all"), reserve(10)).await.unwrap().reservation.unwrap();
    let released = store.release(&ctx, reference("all-back"), all.id).await.unwrap();
    assert_eq!((released.wallet.balance, released.wallet.held, released.wallet.available), (10, 0, 10));
    assert!(broken_wallets(&mut conn).await.is_empty());

    let short = Reserve { hold_seconds: Some(60), ..reserve(10) };
    store.reserve(&ctx, reference("lapse"), short).await.unwrap();
    clock.advance(TimeDelta::seconds(61));
    let after = store.debit(&ctx, reference("send"), sms(1)).await.unwrap();
    assert_eq!(
        (after.wallet.balance, after.wallet.held),
        (9, 0),
        "the lapsed hold came back, then 1 was spent"
    );
    assert!(broken_wallets(&mut conn).await.is_empty());
}

#[tokio::test]
async fn a_wallet_of_a_tenant_that_does_not_exist_is_not_found() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let nobody = staff_on(portico_kernel::TenantId::new());
    let settings = WalletSettings { low_balance_threshold: Some(5) };
    let answer = store.set_wallet_settings(&nobody, WalletRef::Channel(Channel::Sms), settings).await;
    assert!(matches!(answer, Err(CreditsError::WalletNotFound)), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn price_lists_replaced_at_once_take_turns() {
    let db = TestDb::new().await;
    let store = wide_store(&db).await;
    let tasks: Vec<_> = (1..=8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let prices: PriceList = serde_json::from_value(serde_json::json!({"prices": [
                    {"channel": "sms", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": format!("0.0{n}")}]},
                    {"channel": "email", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.001"}]}]}))
                .unwrap();
                store.set_credit_prices(&platform(), prices.validated().unwrap()).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut conn = as_owner(&db).await;
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM credit_prices").await,
        2,
        "one list, the last one"
    );
}

#[tokio::test]
async fn a_repeated_package_purchase_creates_no_wallet_the_package_gained_since() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, 10_000).await;
    let ctx = owner_of(tenant(&store, "acme").await.id);
    let draft = |credits: serde_json::Value| -> portico_credits::PackageDraft {
        serde_json::from_value(serde_json::json!({"name": "Grows", "credits": credits,
            "price": {"amountMinor": 500, "currency": "EUR"}}))
        .unwrap()
    };
    let sms_only = draft(serde_json::json!([{"channel": "sms", "amount": 10}]));
    let package = store.save_credit_package(&platform(), None, sms_only).await.unwrap();
    let first = store.purchase_package(&ctx, reference("buy"), package.id).await.unwrap();
    let both =
        draft(serde_json::json!([{"channel": "sms", "amount": 10}, {"channel": "whatsapp", "amount": 10}]));
    store.save_credit_package(&platform(), Some(package.id), both).await.unwrap();

    let again = store.purchase_package(&ctx, reference("buy"), package.id).await.unwrap();
    assert!(again.replayed && again.wallets == first.wallets);
    let mut conn = as_owner(&db).await;
    let sql = format!("SELECT count(*) AS n FROM credit_wallets WHERE tenant_id = '{}'", ctx.tenant_id);
    assert_eq!(count(&mut conn, &sql).await, 1, "no whatsapp wallet from a replay");
}
