//! Idempotency keys: claims, takeovers, and effects that commit with their response.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use diesel_async::SimpleAsyncConnection;
use portico_kernel::{FixedClock, PLATFORM_TENANT_ID};
use portico_store::{Claim, Completion, IdempotencyScope, IdempotencyTimes, Store, StoredResponse, Unit};
use portico_tenancy::TenantStore;
use portico_testkit::TestDb;

use crate::support::{command, connect, count, platform};

fn scope(key: &str) -> IdempotencyScope {
    IdempotencyScope { tenant: PLATFORM_TENANT_ID, principal: uuid::Uuid::now_v7(), key: key.to_owned() }
}

fn created() -> StoredResponse {
    StoredResponse {
        status: 201,
        content_type: Some("application/json".to_owned()),
        body: br#"{"success":true}"#.to_vec(),
    }
}

async fn fresh(store: &Store, scope: &IdempotencyScope, fingerprint: &str, times: IdempotencyTimes) -> Unit {
    match store.claim_idempotency_key(scope, fingerprint, times).await.unwrap() {
        Claim::Fresh(unit) => unit,
        other => panic!("expected a fresh claim, got {other:?}"),
    }
}

async fn slugs(db: &TestDb, slug: &str) -> i64 {
    let mut conn = connect(&db.urls.platform).await;
    count(&mut conn, &format!("SELECT count(*) AS n FROM tenants WHERE slug = '{slug}'")).await
}

#[tokio::test]
async fn the_effect_and_the_response_commit_together_or_not_at_all() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let times = IdempotencyTimes::default();

    // Abandoned: the tenant created inside the unit is rolled back and the key is free again.
    let key = scope("k1");
    let unit = fresh(&store, &key, "fp", times).await;
    store.within(&unit).create(&platform(), command("acme")).await.unwrap();
    assert_eq!(slugs(&db, "acme").await, 0, "nothing is visible before the unit commits");
    unit.abandon().await.unwrap();
    assert_eq!(slugs(&db, "acme").await, 0);
    let unit = fresh(&store, &key, "another", times).await;

    // Committed: both the tenant and the response are there, and the key replays.
    store.within(&unit).create(&platform(), command("acme")).await.unwrap();
    assert_eq!(unit.commit(&created()).await.unwrap(), Completion::Committed);
    assert_eq!(slugs(&db, "acme").await, 1);
    match store.claim_idempotency_key(&key, "another", times).await.unwrap() {
        Claim::Replay(response) => assert_eq!(response, created()),
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(matches!(store.claim_idempotency_key(&key, "fp", times).await.unwrap(), Claim::KeyReused));
}

#[tokio::test]
async fn a_failed_step_inside_a_unit_leaves_the_earlier_ones() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let unit = fresh(&store, &scope("k"), "fp", IdempotencyTimes::default()).await;
    let bound = store.within(&unit);
    bound.create(&platform(), command("acme")).await.unwrap();
    // A taken slug fails in its savepoint; the unit goes on.
    assert!(bound.create(&platform(), command("acme")).await.is_err());
    bound.create(&platform(), command("globex")).await.unwrap();
    assert_eq!(unit.commit(&created()).await.unwrap(), Completion::Committed);
    assert_eq!((slugs(&db, "acme").await, slugs(&db, "globex").await), (1, 1));
}

#[tokio::test]
async fn a_running_claim_holds_its_key_until_its_lease_runs_out() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let times = IdempotencyTimes { lease: Duration::from_secs(60), retention: Duration::from_secs(3600) };
    let key = scope("k");
    let first = fresh(&store, &key, "fp", times).await;
    store.within(&first).create(&platform(), command("acme")).await.unwrap();
    assert!(matches!(store.claim_idempotency_key(&key, "fp", times).await.unwrap(), Claim::InProgress));
    assert!(matches!(store.claim_idempotency_key(&key, "other", times).await.unwrap(), Claim::KeyReused));

    // The first request outlives its lease: another takes the key over, and
    // the first one's effect is rolled back when it tries to finish.
    clock.advance(TimeDelta::seconds(61));
    let second = fresh(&store, &key, "fp", times).await;
    assert_eq!(first.commit(&created()).await.unwrap(), Completion::Superseded);
    assert_eq!(slugs(&db, "acme").await, 0, "the superseded effect is gone");
    store.within(&second).create(&platform(), command("acme")).await.unwrap();
    assert_eq!(second.commit(&created()).await.unwrap(), Completion::Committed);
    assert_eq!(slugs(&db, "acme").await, 1, "exactly one effect");
}

#[tokio::test]
async fn records_expire_after_their_retention_and_are_pruned() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let times =
        IdempotencyTimes { lease: Duration::from_secs(60), retention: Duration::from_secs(24 * 3600) };
    let (old, recent) = (scope("old"), scope("recent"));
    fresh(&store, &old, "fp", times).await.commit(&created()).await.unwrap();
    clock.advance(TimeDelta::hours(12));
    fresh(&store, &recent, "fp", times).await.commit(&created()).await.unwrap();

    clock.advance(TimeDelta::hours(12) + TimeDelta::seconds(1));
    assert_eq!(store.prune_idempotency_keys().await.unwrap(), 1, "only the one past 24 h");
    assert!(matches!(store.claim_idempotency_key(&recent, "fp", times).await.unwrap(), Claim::Replay(_)));
    // An expired key starts over, even for another request.
    assert!(matches!(store.claim_idempotency_key(&old, "other", times).await.unwrap(), Claim::Fresh(_)));
}

#[tokio::test]
async fn keys_are_walled_by_tenant() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = store.create(&platform(), command("acme")).await.unwrap();
    let principal = uuid::Uuid::now_v7();
    let theirs = IdempotencyScope { tenant: acme.id, principal, key: "same".to_owned() };
    let ours = IdempotencyScope { tenant: PLATFORM_TENANT_ID, principal, key: "same".to_owned() };
    fresh(&store, &theirs, "fp", IdempotencyTimes::default()).await.commit(&created()).await.unwrap();
    assert!(matches!(
        store.claim_idempotency_key(&ours, "fp", IdempotencyTimes::default()).await.unwrap(),
        Claim::Fresh(_)
    ));
    // Row-level security: only acme's scope sees acme's key.
    let mut conn = connect(&db.urls.app).await;
    let sql = format!("SELECT count(*) AS n FROM idempotency_keys WHERE tenant_id = '{}'", acme.id);
    for (tenant, expected) in [(PLATFORM_TENANT_ID, 0), (acme.id, 1)] {
        conn.batch_execute("BEGIN").await.unwrap();
        crate::support::scope(&mut conn, tenant).await;
        assert_eq!(count(&mut conn, &sql).await, expected, "scoped to {tenant}");
        conn.batch_execute("ROLLBACK").await.unwrap();
    }
}

#[tokio::test]
async fn a_unit_dropped_unfinished_rolls_back_and_frees_its_key() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let times = IdempotencyTimes::default();
    let key = scope("cancelled");
    let unit = fresh(&store, &key, "fp", times).await;
    let bound = store.within(&unit);
    bound.create(&platform(), command("acme")).await.unwrap();
    // The request is cancelled: its future, holding the unit, is dropped.
    drop((bound, unit));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match store.claim_idempotency_key(&key, "fp", times).await.unwrap() {
            Claim::Fresh(_) => break,
            Claim::InProgress => {
                assert!(std::time::Instant::now() < deadline, "the claim was never released")
            }
            other => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(slugs(&db, "acme").await, 0, "the cancelled request's effect never committed");
}

#[tokio::test]
async fn a_key_for_a_tenant_that_does_not_exist_is_not_kept() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let nowhere = IdempotencyScope {
        tenant: portico_kernel::TenantId::new(),
        principal: uuid::Uuid::now_v7(),
        key: "k".to_owned(),
    };
    let claim = store.claim_idempotency_key(&nowhere, "fp", IdempotencyTimes::default()).await.unwrap();
    assert!(matches!(claim, Claim::UnknownTenant), "{claim:?}");
}
