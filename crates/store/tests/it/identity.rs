//! People and sessions: lifetimes and refresh races.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use portico_kernel::{FixedClock, Origin, PLATFORM_TENANT_ID, RequestId};
use portico_store::{NewSession, NewUser, Store};
use portico_tenancy::{Email, IdentityError, UserStatus};
use portico_testkit::TestDb;

async fn person(store: &Store, email: &str) -> portico_kernel::UserId {
    let new = NewUser {
        email: Email::parse(email).unwrap(),
        name: "P".into(),
        phone: None,
        status: UserStatus::Active,
        password_hash: None,
        email_verified: false,
    };
    store.create_user(new).await.unwrap().id
}

fn session(user: portico_kernel::UserId, token: &str) -> NewSession {
    NewSession {
        user,
        tenant: PLATFORM_TENANT_ID,
        device: None,
        origin: Origin::default(),
        request_id: RequestId::generate(),
        refresh_token: token.to_owned(),
        lifetime: Duration::from_secs(30 * 24 * 3600),
    }
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let user = person(&store, "p@example.com").await;
    store.start_session(session(user, "t0")).await.unwrap();
    let (rid, origin) = (RequestId::generate(), Origin::default());
    clock.advance(TimeDelta::days(29));
    store.refresh_session("t0", "t1", &rid, &origin).await.unwrap();
    clock.advance(TimeDelta::days(1) + TimeDelta::seconds(1));
    let expired = store.refresh_session("t1", "t2", &rid, &origin).await.unwrap_err();
    assert!(matches!(expired, IdentityError::InvalidRefreshToken), "{expired:?}");
    assert!(store.sessions_of(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn two_refreshes_racing_with_one_token_end_the_session() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let user = person(&store, "p@example.com").await;
    store.start_session(session(user, "shared")).await.unwrap();
    let (rid, origin) = (RequestId::generate(), Origin::default());
    let (a, b) = tokio::join!(
        store.refresh_session("shared", "from-a", &rid, &origin),
        store.refresh_session("shared", "from-b", &rid, &origin)
    );
    // One wins; the other presents a spent token, which ends the session.
    let (winner_token, loser) = match (a, b) {
        (Ok(_), Err(loser)) => ("from-a", loser),
        (Err(loser), Ok(_)) => ("from-b", loser),
        other => panic!("exactly one refresh must win: {other:?}"),
    };
    assert!(matches!(loser, IdentityError::RefreshTokenReused), "{loser:?}");
    let after = store.refresh_session(winner_token, "next", &rid, &origin).await.unwrap_err();
    assert!(matches!(after, IdentityError::InvalidRefreshToken), "the session ended: {after:?}");
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case() {
    let db = TestDb::new().await;
    let store = db.store().await;
    person(&store, "Alice@Example.com").await;
    let new = NewUser {
        email: Email::parse("alice@example.COM").unwrap(),
        name: "Other".into(),
        phone: None,
        status: UserStatus::Active,
        password_hash: None,
        email_verified: false,
    };
    assert!(matches!(store.create_user(new).await, Err(IdentityError::EmailTaken)));
}

#[tokio::test]
async fn the_sweep_removes_long_ended_sessions_and_spent_tokens_only() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let user = person(&store, "p@example.com").await;
    let (rid, origin) = (RequestId::generate(), Origin::default());
    let ended = store.start_session(session(user, "ended")).await.unwrap();
    store.end_session(user, ended.id, &rid, &origin).await.unwrap();
    store.start_session(session(user, "live-0")).await.unwrap();
    store.refresh_session("live-0", "live-1", &rid, &origin).await.unwrap();
    clock.advance(TimeDelta::days(2));
    let early = store.prune_identity().await.unwrap();
    assert_eq!((early.sessions, early.refresh_tokens), (0, 1), "the spent token of the live session only");
    clock.advance(TimeDelta::days(29));
    let late = store.prune_identity().await.unwrap();
    assert_eq!(late.sessions, 1, "the ended session, 31 days on");
    assert_eq!(store.sessions_of(user).await.unwrap().len(), 0, "the other expired meanwhile (30 days)");
}
