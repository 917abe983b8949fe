//! A tenant's profile against real PostgreSQL: onboarding as one
//! all-or-nothing transaction (replayable, racing-safe, refused when the
//! platform's stock is short), sign-ups whose welcome credits wait for the
//! owner's confirmation and which close when never confirmed, settings over
//! the industry profile, feature overrides, branding and its logo, and the
//! tenant wall around all of it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use portico_credits::{Channel, Reference, TopUp};
use portico_kernel::{
    EmailMessage, FileKey, FixedClock, Mailbox, Origin, PLATFORM_TENANT_ID, RequestId, TenantId,
};
use portico_store::Store;
use portico_tenancy::logo::{Logo, LogoFormat};
use portico_tenancy::people::InvitationLink;
use portico_tenancy::{
    Branding, Catalogue, CreateTenant, FeatureSource, FeatureState, LogoInfo, OnboardTenant,
    OnboardingSource, OwnerDetails, SetFeatures, SignUp, TenancyError, Tenant, TenantStatus, TenantStore,
    UpdateBranding, UpdateSettings, WelcomeCredit,
};
use portico_testkit::TestDb;
use serde_json::json;

use crate::support::{connect, count, error_of, lines, member_of, platform, scope, staff_on};

fn link(token: &str) -> InvitationLink {
    InvitationLink {
        token: token.to_owned(),
        lifetime: Duration::from_secs(7 * 24 * 3600),
        message: EmailMessage {
            from: Mailbox::address("no-reply@portico.example"),
            to: Vec::new(),
            reply_to: None,
            subject: "Welcome to Portico".into(),
            html: "<p>link</p>".into(),
            text: "link".into(),
            message_id: None,
        },
    }
}

fn owner(email: &str) -> OwnerDetails {
    OwnerDetails { name: "Grace Hopper".into(), email: email.into(), phone: None }
}

fn onboard_command(email: &str, settings: serde_json::Value) -> OnboardTenant {
    serde_json::from_value(json!({
        "owner": {"name": "Grace Hopper", "email": email},
        "settings": settings,
    }))
    .unwrap()
}

fn sign_up(slug: &str, email: &str) -> SignUp {
    SignUp {
        name: format!("Business {slug}"),
        slug: slug.into(),
        industry: Some("trucking".into()),
        owner: owner(email),
    }
}

fn settings(json: serde_json::Value) -> UpdateSettings {
    serde_json::from_value(json).unwrap()
}

fn features(json: serde_json::Value) -> SetFeatures {
    serde_json::from_value(json!({ "features": json })).unwrap()
}

fn branding(json: serde_json::Value) -> UpdateBranding {
    serde_json::from_value(json).unwrap()
}

/// A store whose clock stands still at a time PostgreSQL keeps exactly.
fn frozen(store: Store) -> (Store, DateTime<Utc>) {
    let now = Utc::now().trunc_subsecs(6);
    (store.with_clock(Arc::new(FixedClock::at(now))), now)
}

/// A tenant the platform created, of `industry` if given.
async fn created(store: &Store, slug: &str, industry: Option<&str>) -> Tenant {
    let command: CreateTenant = serde_json::from_value(json!({
        "name": format!("Tenant {slug}"),
        "slug": slug,
        "contactEmail": format!("ops@{slug}.example"),
        "industry": industry,
    }))
    .unwrap();
    store.create(&platform(), command).await.unwrap()
}

/// Adds `amount` credits of `channel` to the platform's stock.
async fn stock(store: &Store, channel: Channel, amount: i64) {
    let reference = Reference::parse(&format!("stock-{}-{amount}", channel.as_str())).unwrap();
    let top_up = TopUp { channel, amount, note: "provider order".into() };
    store.top_up_master(&platform(), reference, top_up).await.unwrap();
}

/// The platform's stock of `channel` (0 when it never had any).
async fn master(conn: &mut AsyncPgConnection, channel: &str) -> i64 {
    count(
        conn,
        &format!(
            "SELECT coalesce((SELECT balance FROM credit_master_wallets WHERE channel = '{channel}'), 0) AS n"
        ),
    )
    .await
}

/// Rows in every table onboarding writes, and the platform's stock: equal
/// snapshots mean nothing was written in between.
async fn snapshot(conn: &mut AsyncPgConnection) -> Vec<(String, i64)> {
    let tables = [
        "tenants",
        "users",
        "memberships",
        "invitations",
        "tenant_settings",
        "onboardings",
        "credit_wallets",
        "credit_grants",
        "credit_entries",
        "credit_operations",
        "credit_master_entries",
        "jobs",
        "audit_log",
    ];
    let mut rows = Vec::new();
    for table in tables {
        rows.push((table.to_owned(), count(conn, &format!("SELECT count(*) AS n FROM {table}")).await));
    }
    for channel in ["sms", "whatsapp"] {
        rows.push((format!("master {channel}"), master(conn, channel).await));
    }
    rows
}

/// `email.send` jobs whose message goes to `email`.
async fn emails_to(conn: &mut AsyncPgConnection, email: &str) -> i64 {
    count(
        conn,
        &format!(
            "SELECT count(*) AS n FROM jobs WHERE kind = 'email.send' AND payload::text LIKE '%{email}%'"
        ),
    )
    .await
}

/// The audit actions of `tenant`, oldest first.
async fn actions(conn: &mut AsyncPgConnection, tenant: TenantId) -> Vec<String> {
    lines(conn, &format!("SELECT action AS line FROM audit_log WHERE tenant_id = '{tenant}' ORDER BY id"))
        .await
}

async fn one(conn: &mut AsyncPgConnection, sql: &str) -> String {
    let mut found = lines(conn, sql).await;
    assert_eq!(found.len(), 1, "{sql}: {found:?}");
    found.remove(0)
}

fn trucking() -> &'static portico_tenancy::IndustryProfile {
    Catalogue::builtin().unwrap().industry("trucking").unwrap()
}

#[tokio::test]
async fn onboarding_writes_everything_in_one_go() {
    let db = TestDb::new().await;
    let (store, now) = frozen(db.store().await);
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;
    let tenant = created(&store, "speedy", Some("trucking")).await;
    let id = tenant.id;
    let command = onboard_command(
        "grace@speedy.example",
        json!({"timeZone": "Europe/Vienna", "invoicePrefix": "SPEEDY"}),
    );

    let done = store.onboard(&staff_on(id), id, command, link("speedy-token")).await.unwrap();

    let expires_at = now + TimeDelta::days(60);
    assert_eq!(
        (done.tenant_id, done.slug.as_str(), done.source, done.industry.as_str(), done.status),
        (id, "speedy", OnboardingSource::Platform, "trucking", TenantStatus::Trial)
    );
    assert_eq!(done.trial_ends_at, Some(now + TimeDelta::days(14)));
    assert_eq!(done.owner_email, "grace@speedy.example");
    assert_eq!(done.completed_at, now);
    assert_eq!(
        done.welcome_credits,
        vec![
            WelcomeCredit {
                channel: "sms".into(),
                amount: 100,
                validity_days: 60,
                expires_at: Some(expires_at)
            },
            WelcomeCredit {
                channel: "whatsapp".into(),
                amount: 100,
                validity_days: 60,
                expires_at: Some(expires_at)
            },
        ]
    );

    let mut conn = connect(&db.urls.platform).await;
    let trial_end = (now + TimeDelta::days(14)).to_rfc3339();
    let tenant_row = format!(
        "SELECT count(*) AS n FROM tenants WHERE id = '{id}' AND industry = 'trucking' \
         AND trial_ends_at = '{trial_end}'::timestamptz AND status = 'trial'"
    );
    assert_eq!(count(&mut conn, &tenant_row).await, 1);
    let own = one(
        &mut conn,
        &format!("SELECT settings::text AS line FROM tenant_settings WHERE tenant_id = '{id}'"),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&own).unwrap(),
        json!({"timeZone": "Europe/Vienna", "invoicePrefix": "SPEEDY"})
    );
    let config = store.tenant_config(&member_of(id), id).await.unwrap();
    assert_eq!(
        (config.settings.time_zone.as_str(), config.settings.locale.as_str()),
        ("Europe/Vienna", trucking().settings.locale.as_str())
    );

    let membership = format!(
        "SELECT count(*) AS n FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.tenant_id = '{id}' AND m.id = '{}' AND m.role = 'owner' AND m.kind = 'owner' \
         AND m.status = 'invited' AND u.email = 'grace@speedy.example' AND u.status = 'pending'",
        done.owner_membership_id
    );
    assert_eq!(count(&mut conn, &membership).await, 1);
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM memberships WHERE tenant_id = '{id}'")).await,
        1
    );
    let invitation = format!(
        "SELECT count(*) AS n FROM invitations WHERE tenant_id = '{id}' AND membership_id = '{}' \
         AND email = 'grace@speedy.example'",
        done.owner_membership_id
    );
    assert_eq!(count(&mut conn, &invitation).await, 1);

    // The invitation email waits in the platform's queue, not the new tenant's.
    assert_eq!(emails_to(&mut conn, "grace@speedy.example").await, 1);
    let queued = format!(
        "SELECT count(*) AS n FROM jobs WHERE tenant_id = '{PLATFORM_TENANT_ID}' AND kind = 'email.send' \
         AND state = 'queued' AND payload -> 'message' -> 'to' @> '[{{\"address\": \"grace@speedy.example\"}}]'"
    );
    assert_eq!(count(&mut conn, &queued).await, 1);
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM jobs WHERE tenant_id = '{id}'")).await,
        0
    );

    let expiry = expires_at.to_rfc3339();
    for channel in ["sms", "whatsapp"] {
        let wallet = format!(
            "SELECT balance AS n FROM credit_wallets WHERE tenant_id = '{id}' AND channel = '{channel}'"
        );
        assert_eq!(count(&mut conn, &wallet).await, 100, "{channel} wallet");
        let grant = format!(
            "SELECT count(*) AS n FROM credit_grants g JOIN credit_wallets w ON w.tenant_id = g.tenant_id AND w.id = g.wallet_id \
             WHERE g.tenant_id = '{id}' AND w.channel = '{channel}' AND g.source = 'promotional' AND g.amount = 100 \
             AND g.remaining = 100 AND g.expires_at = '{expiry}'::timestamptz AND NOT g.paid"
        );
        assert_eq!(count(&mut conn, &grant).await, 1, "{channel} grant");
        assert_eq!(master(&mut conn, channel).await, 900, "{channel} stock");
    }
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM credit_grants WHERE tenant_id = '{id}'")).await,
        2
    );

    let record = format!(
        "SELECT count(*) AS n FROM onboardings WHERE tenant_id = '{id}' AND source = 'platform' \
         AND owner_membership_id = '{}' AND owner_email = 'grace@speedy.example' \
         AND jsonb_array_length(welcome_credits) = 2",
        done.owner_membership_id
    );
    assert_eq!(count(&mut conn, &record).await, 1);

    assert_eq!(
        actions(&mut conn, id).await,
        ["tenant.create", "membership.invite", "credits.add", "credits.add", "tenant.onboard"],
        "the onboarding's own row comes last"
    );
    let changes = one(
        &mut conn,
        &format!("SELECT changes::text AS line FROM audit_log WHERE tenant_id = '{id}' AND action = 'tenant.onboard'"),
    )
    .await;
    let changes: serde_json::Value = serde_json::from_str(&changes).unwrap();
    assert_eq!(changes["industry"], json!({"before": "trucking", "after": "trucking"}));
    assert_eq!(changes["trialEndsAt"]["before"], json!(null));
    assert_eq!(changes["source"], json!({"before": null, "after": "platform"}));
    assert_eq!(changes["welcomeCreditsGranted"], json!({"before": null, "after": true}));
    assert!(done.welcome_credits_granted);
}

/// Makes the onboarding's last statement (its `tenant.onboard` audit row)
/// fail for the tenants with the given slugs. (Each test has a database of
/// its own; the condition keeps even this one's other writes unaffected.)
async fn break_the_last_step(db: &TestDb, slugs: &[&str]) {
    let slugs = slugs.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let mut owner = connect(&db.urls.owner).await;
    owner
        .batch_execute(&format!(
            "CREATE FUNCTION test_fail_onboard() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
                 IF NEW.action = 'tenant.onboard' \
                    AND EXISTS (SELECT 1 FROM tenants WHERE id = NEW.tenant_id AND slug IN ({slugs})) THEN \
                     RAISE EXCEPTION 'injected failure of the last step'; \
                 END IF; \
                 RETURN NEW; \
             END $$; \
             CREATE TRIGGER test_fail_onboard BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION test_fail_onboard();"
        ))
        .await
        .unwrap();
}

async fn mend_the_last_step(db: &TestDb) {
    let mut owner = connect(&db.urls.owner).await;
    owner
        .batch_execute("DROP TRIGGER test_fail_onboard ON audit_log; DROP FUNCTION test_fail_onboard();")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failure_in_the_last_step_leaves_nothing_behind() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;
    let placed = created(&store, "placed", None).await;
    break_the_last_step(&db, &["placed", "joiner"]).await;
    let mut conn = connect(&db.urls.platform).await;
    let before = snapshot(&mut conn).await;
    let (request, origin) = (RequestId::generate(), Origin::default());

    let joined =
        store.sign_up(sign_up("joiner", "ada@joiner.example"), link("joiner-token"), &request, &origin).await;
    assert!(matches!(joined, Err(TenancyError::Store(_))), "{joined:?}");
    let command = serde_json::from_value::<OnboardTenant>(json!({
        "owner": {"name": "Alan Turing", "email": "alan@placed.example"}, "industry": "trucking",
        "settings": {"timeZone": "Europe/Vienna"}
    }))
    .unwrap();
    let onboarded =
        store.onboard(&staff_on(placed.id), placed.id, command.clone(), link("placed-token")).await;
    assert!(matches!(onboarded, Err(TenancyError::Store(_))), "{onboarded:?}");

    assert_eq!(snapshot(&mut conn).await, before, "not one row more or less, the stock untouched");
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tenants WHERE slug = 'joiner'").await, 0);
    for email in ["ada@joiner.example", "alan@placed.example"] {
        let users = format!("SELECT count(*) AS n FROM users WHERE email = '{email}'");
        assert_eq!(count(&mut conn, &users).await, 0, "{email}");
        assert_eq!(emails_to(&mut conn, email).await, 0, "{email}");
    }
    let p = placed.id;
    for table in
        ["memberships", "tenant_settings", "onboardings", "credit_wallets", "credit_grants", "credit_entries"]
    {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = '{p}'");
        assert_eq!(count(&mut conn, &sql).await, 0, "{table}");
    }
    let untouched = format!(
        "SELECT count(*) AS n FROM tenants WHERE id = '{p}' AND industry IS NULL AND trial_ends_at IS NULL"
    );
    assert_eq!(count(&mut conn, &untouched).await, 1, "industry and trial end as before");
    assert_eq!(actions(&mut conn, p).await, ["tenant.create"]);

    // Without the injected failure the very same calls go through.
    mend_the_last_step(&db).await;
    let joined =
        store.sign_up(sign_up("joiner", "ada@joiner.example"), link("joiner-token"), &request, &origin).await;
    let joined = joined.unwrap();
    let onboarded = store.onboard(&staff_on(p), p, command, link("placed-token")).await.unwrap();
    assert_eq!((joined.slug.as_str(), onboarded.industry.as_str()), ("joiner", "trucking"));
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tenants WHERE slug = 'joiner'").await, 1);
    assert_eq!(actions(&mut conn, p).await.last().map(String::as_str), Some("tenant.onboard"));
    // The platform's onboarding granted its welcome credits; the sign-up's wait for its owner.
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (900, 900));
}

#[tokio::test]
async fn onboarding_replayed_with_the_same_details_answers_the_same_and_writes_nothing_new() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;
    let id = created(&store, "replay", Some("trucking")).await.id;
    let command = onboard_command("grace@replay.example", json!({"timeZone": "Europe/Vienna"}));
    let mut conn = connect(&db.urls.platform).await;

    let first = store.onboard(&staff_on(id), id, command.clone(), link("replay-1")).await.unwrap();
    let after_first = snapshot(&mut conn).await;
    let again = store.onboard(&staff_on(id), id, command.clone(), link("replay-2")).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(snapshot(&mut conn).await, after_first);
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM memberships WHERE tenant_id = '{id}'")).await,
        1
    );
    assert_eq!(emails_to(&mut conn, "grace@replay.example").await, 1);
    let grants = format!(
        "SELECT count(*) AS n FROM credit_grants WHERE tenant_id = '{id}' GROUP BY wallet_id ORDER BY 1 DESC LIMIT 1"
    );
    assert_eq!(count(&mut conn, &grants).await, 1, "one grant per channel");
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (900, 900));

    let other = onboard_command("someone.else@replay.example", json!({"timeZone": "Europe/Vienna"}));
    let refused = store.onboard(&staff_on(id), id, other, link("replay-3")).await;
    assert!(matches!(refused, Err(TenancyError::AlreadyOnboarded)), "{refused:?}");
    let refused = store
        .onboard(&staff_on(id), id, onboard_command("grace@replay.example", json!({})), link("replay-4"))
        .await;
    assert!(matches!(refused, Err(TenancyError::AlreadyOnboarded)), "other settings: {refused:?}");
    assert_eq!(snapshot(&mut conn).await, after_first);

    // A business signing itself up twice gets one tenant.
    let (request, origin) = (RequestId::generate(), Origin::default());
    let first = store
        .sign_up(sign_up("haulage", "ada@haulage.example"), link("haul-1"), &request, &origin)
        .await
        .unwrap();
    assert_eq!((first.source, first.status), (OnboardingSource::SelfService, TenantStatus::Trial));
    let after_first = snapshot(&mut conn).await;
    let again = store
        .sign_up(sign_up("haulage", "ada@haulage.example"), link("haul-2"), &request, &origin)
        .await
        .unwrap();
    assert_eq!(again, first);
    // Nothing new but the owner's new link: one more email job and its audit row.
    let mut expected = after_first.clone();
    for (table, rows) in &mut expected {
        if table == "jobs" || table == "audit_log" {
            *rows += 1;
        }
    }
    assert_eq!(snapshot(&mut conn).await, expected);
    assert_eq!(emails_to(&mut conn, "ada@haulage.example").await, 2, "a new link on each try");
    assert!(
        store.accept_invitation("haul-1", Some("hash".into()), &request, &origin).await.is_err(),
        "the earlier link stops working"
    );
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM tenants WHERE slug = 'haulage'").await, 1);
    let mut other = sign_up("haulage", "ada@haulage.example");
    other.name = "Another Haulage".into();
    let taken = store.sign_up(other, link("haul-3"), &request, &origin).await;
    assert!(matches!(&taken, Err(TenancyError::SlugTaken(slug)) if slug == "haulage"), "{taken:?}");
    let taken =
        store.sign_up(sign_up("replay", "grace@replay.example"), link("haul-4"), &request, &origin).await;
    assert!(
        matches!(&taken, Err(TenancyError::SlugTaken(slug)) if slug == "replay"),
        "a platform-made tenant's slug: {taken:?}"
    );
    assert_eq!(snapshot(&mut conn).await, expected, "refusals write nothing");

    // Twins racing each other: one tenant, and both answered with it.
    for slug in ["twin-a", "twin-b", "twin-c"] {
        let email = format!("owner@{slug}.example");
        let (a, b) = tokio::join!(
            store.sign_up(sign_up(slug, &email), link(&format!("{slug}-1")), &request, &origin),
            store.sign_up(sign_up(slug, &email), link(&format!("{slug}-2")), &request, &origin),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "{slug}");
        let tenants =
            format!("SELECT count(*) AS n FROM tenants WHERE slug = '{slug}' AND id = '{}'", a.tenant_id);
        assert_eq!(count(&mut conn, &tenants).await, 1, "{slug}");
        assert_eq!(
            count(&mut conn, &format!("SELECT count(*) AS n FROM tenants WHERE slug = '{slug}'")).await,
            1
        );
        // The twin that lost the race says nothing more; one that came just after (and found
        // the first) sends the owner a new link, as any repeat does.
        let emails = emails_to(&mut conn, &email).await;
        assert!((1..=2).contains(&emails), "{slug}: {emails} emails");
    }
    // And the platform's staff completing one tenant twice at once.
    let racer = created(&store, "racer", Some("trucking")).await.id;
    let command = onboard_command("owner@racer.example", json!({}));
    let (one_of_them, the_other) = (staff_on(racer), staff_on(racer));
    let (a, b) = tokio::join!(
        store.onboard(&one_of_them, racer, command.clone(), link("racer-1")),
        store.onboard(&the_other, racer, command.clone(), link("racer-2")),
    );
    assert_eq!(a.unwrap(), b.unwrap());
    let memberships = format!("SELECT count(*) AS n FROM memberships WHERE tenant_id = '{racer}'");
    assert_eq!(count(&mut conn, &memberships).await, 1);
    let grants = format!("SELECT count(*) AS n FROM credit_grants WHERE tenant_id = '{racer}'");
    assert_eq!(count(&mut conn, &grants).await, 2, "one per channel");
    assert_eq!(emails_to(&mut conn, "owner@racer.example").await, 1);
}

#[tokio::test]
async fn a_short_master_wallet_fails_onboarding_cleanly() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let placed = created(&store, "placed", Some("trucking")).await.id;
    let mut conn = connect(&db.urls.platform).await;

    // No stock at all: the first channel refuses.
    let before = snapshot(&mut conn).await;
    let command = onboard_command("alan@placed.example", json!({}));
    let refused = store.onboard(&staff_on(placed), placed, command.clone(), link("p-1")).await;
    assert!(matches!(&refused, Err(TenancyError::WelcomeCreditsUnavailable(c)) if c == "sms"), "{refused:?}");
    assert_eq!(snapshot(&mut conn).await, before);

    // Enough SMS but too little WhatsApp: the SMS grant made first is undone too.
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 99).await;
    let before = snapshot(&mut conn).await;
    let refused = store.onboard(&staff_on(placed), placed, command.clone(), link("p-2")).await;
    assert!(
        matches!(&refused, Err(TenancyError::WelcomeCreditsUnavailable(c)) if c == "whatsapp"),
        "{refused:?}"
    );
    assert_eq!(snapshot(&mut conn).await, before);
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (1_000, 99));
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM memberships WHERE tenant_id = '{placed}'"))
            .await,
        0
    );
    assert_eq!(emails_to(&mut conn, "alan@placed.example").await, 0);

    // Once stocked, the same onboarding goes through.
    stock(&store, Channel::Whatsapp, 1_000).await;
    store.onboard(&staff_on(placed), placed, command, link("p-3")).await.unwrap();
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (900, 999));
}

/// The wallets' balances of `tenant`, by channel.
async fn balances(conn: &mut AsyncPgConnection, tenant: TenantId) -> Vec<String> {
    lines(
        conn,
        &format!(
            "SELECT channel || '=' || balance AS line FROM credit_wallets WHERE tenant_id = '{tenant}' ORDER BY channel"
        ),
    )
    .await
}

#[tokio::test]
async fn a_sign_up_moves_no_stock_until_its_owner_confirms() {
    let db = TestDb::new().await;
    let (store, now) = frozen(db.store().await);
    let mut conn = connect(&db.urls.platform).await;
    let (request, origin) = (RequestId::generate(), Origin::default());
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;

    let done =
        store.sign_up(sign_up("joiner", "ada@joiner.example"), link("j-1"), &request, &origin).await.unwrap();
    assert!(!done.welcome_credits_granted);
    assert!(done.welcome_credits.iter().all(|c| c.expires_at.is_none() && c.validity_days == 60));
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (1_000, 1_000));
    assert!(balances(&mut conn, done.tenant_id).await.is_empty(), "no wallet before the owner confirms");

    // The owner follows the link: the address is confirmed and the credits arrive.
    let accepted =
        store.accept_invitation("j-1", Some("argon-hash".into()), &request, &origin).await.unwrap();
    assert_eq!(accepted.tenant, done.tenant_id);
    assert_eq!(balances(&mut conn, done.tenant_id).await, ["sms=100", "whatsapp=100"]);
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (900, 900));
    let expiry = (now + TimeDelta::days(60)).to_rfc3339();
    let grants = format!(
        "SELECT count(*) AS n FROM credit_grants WHERE tenant_id = '{}' AND source = 'promotional' \
         AND expires_at = '{expiry}'::timestamptz",
        done.tenant_id
    );
    assert_eq!(count(&mut conn, &grants).await, 2, "valid 60 days from the confirmation");
    let confirmed = format!(
        "SELECT count(*) AS n FROM onboardings WHERE tenant_id = '{}' AND confirmed_at IS NOT NULL \
         AND welcome_granted_at IS NOT NULL",
        done.tenant_id
    );
    assert_eq!(count(&mut conn, &confirmed).await, 1);
    assert_eq!(
        actions(&mut conn, done.tenant_id).await.last().map(String::as_str),
        Some("tenant.owner_confirm")
    );
}

#[tokio::test]
async fn a_confirmation_the_stock_cannot_cover_still_signs_the_owner_in_and_says_what_is_missing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut conn = connect(&db.urls.platform).await;
    let (request, origin) = (RequestId::generate(), Origin::default());
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 99).await;
    let done =
        store.sign_up(sign_up("short", "ada@short.example"), link("s-1"), &request, &origin).await.unwrap();

    store.accept_invitation("s-1", Some("argon-hash".into()), &request, &origin).await.unwrap();
    assert_eq!(balances(&mut conn, done.tenant_id).await, ["sms=100"], "what the stock covers");
    assert_eq!((master(&mut conn, "sms").await, master(&mut conn, "whatsapp").await), (900, 99));
    let changes = lines(
        &mut conn,
        &format!(
            "SELECT changes::text AS line FROM audit_log WHERE tenant_id = '{}' AND action = 'tenant.owner_confirm'",
            done.tenant_id
        ),
    )
    .await;
    let changes: serde_json::Value = serde_json::from_str(&changes[0]).unwrap();
    assert_eq!(changes["welcomeCreditsUnavailable"]["after"], json!(["whatsapp"]));
    let members = format!(
        "SELECT count(*) AS n FROM memberships WHERE tenant_id = '{}' AND status = 'active'",
        done.tenant_id
    );
    assert_eq!(count(&mut conn, &members).await, 1, "the owner is in");
}

#[tokio::test]
async fn sign_ups_never_confirmed_are_closed_and_confirmed_ones_stay() {
    let db = TestDb::new().await;
    let start = Utc::now().trunc_subsecs(6);
    let clock = Arc::new(FixedClock::at(start));
    let store = db.store().await.with_clock(clock.clone());
    let mut conn = connect(&db.urls.platform).await;
    let (request, origin) = (RequestId::generate(), Origin::default());
    let lapsed =
        store.sign_up(sign_up("lapsed", "ada@lapsed.example"), link("l-1"), &request, &origin).await.unwrap();
    let kept =
        store.sign_up(sign_up("kept", "ada@kept.example"), link("k-1"), &request, &origin).await.unwrap();
    store.accept_invitation("k-1", Some("argon-hash".into()), &request, &origin).await.unwrap();

    // Within the link's week nothing is closed.
    clock.advance(TimeDelta::days(6));
    assert_eq!(store.expire_sign_ups(&platform(), 100).await.unwrap(), 0);
    // After it, the unconfirmed one is closed (soft-deleted, its slug kept), once.
    clock.advance(TimeDelta::days(2));
    assert_eq!(store.expire_sign_ups(&platform(), 100).await.unwrap(), 1);
    assert_eq!(store.expire_sign_ups(&platform(), 100).await.unwrap(), 0);
    let closed = format!(
        "SELECT count(*) AS n FROM tenants WHERE id = '{}' AND deleted_at IS NOT NULL AND status = 'inactive'",
        lapsed.tenant_id
    );
    assert_eq!(count(&mut conn, &closed).await, 1);
    let live =
        format!("SELECT count(*) AS n FROM tenants WHERE id = '{}' AND deleted_at IS NULL", kept.tenant_id);
    assert_eq!(count(&mut conn, &live).await, 1);
    assert_eq!(
        actions(&mut conn, lapsed.tenant_id).await.last().map(String::as_str),
        Some("tenant.sign_up_expire")
    );
    let again = store.sign_up(sign_up("lapsed", "ada@lapsed.example"), link("l-2"), &request, &origin).await;
    assert!(matches!(&again, Err(TenancyError::SlugTaken(_))), "{again:?}");
}

#[tokio::test]
async fn settings_override_the_profile_and_removal_restores_the_default() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let id = created(&store, "haul", Some("trucking")).await.id;
    let ctx = member_of(id);
    let profile = &trucking().settings;
    assert_ne!(profile.time_zone, "Europe/Vienna", "the test needs a value the profile does not have");
    assert_eq!(store.tenant_config(&ctx, id).await.unwrap().settings, *profile, "nothing of its own yet");

    let vienna = settings(json!({"timeZone": "Europe/Vienna"}));
    let config = store.update_settings(&ctx, id, vienna.clone()).await.unwrap();
    let expected = portico_tenancy::TenantSettings { time_zone: "Europe/Vienna".into(), ..profile.clone() };
    assert_eq!(
        (config.industry.as_str(), &config.settings, &config.own_settings),
        ("trucking", &expected, &vienna)
    );
    assert_eq!(store.tenant_config(&ctx, id).await.unwrap(), config);
    assert_eq!(store.config_of(id).await.unwrap(), config);
    let mut conn = connect(&db.urls.platform).await;
    let stored_sql = format!(
        "SELECT settings::text || ' ' || updated_at::text AS line FROM tenant_settings WHERE tenant_id = '{id}'"
    );
    let own = format!(
        "SELECT count(*) AS n FROM tenant_settings WHERE tenant_id = '{id}' AND settings = '{{\"timeZone\": \"Europe/Vienna\"}}'"
    );
    assert_eq!(count(&mut conn, &own).await, 1, "only the tenant's own value is stored");

    let prefix = settings(json!({"invoicePrefix": "HAUL"}));
    let config = store.update_settings(&ctx, id, prefix.clone()).await.unwrap();
    assert_eq!(config.settings.time_zone, profile.time_zone, "left out: the profile's again");
    assert_eq!(config.settings.invoice_prefix, "HAUL");
    assert_eq!(config.own_settings, prefix);
    assert_eq!(store.tenant_config(&ctx, id).await.unwrap(), config);

    let stored = one(&mut conn, &stored_sql).await;
    let bad = store.update_settings(&ctx, id, settings(json!({"timeZone": "Mars/Olympus"}))).await;
    let Err(TenancyError::InvalidSettings(errors)) = bad else { panic!("{bad:?}") };
    assert_eq!(errors.fields(), ["timeZone"]);
    assert_eq!(one(&mut conn, &stored_sql).await, stored, "the stored row is unchanged");
    assert_eq!(store.tenant_config(&ctx, id).await.unwrap(), config);

    let trail = lines(
        &mut conn,
        &format!(
            "SELECT changes::text AS line FROM audit_log WHERE tenant_id = '{id}' AND action = 'tenant.settings.update' \
             ORDER BY occurred_at, id"
        ),
    )
    .await;
    let trail: Vec<serde_json::Value> = trail.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
    assert_eq!(
        trail,
        [
            json!({"settings": {"before": {}, "after": {"timeZone": "Europe/Vienna"}}}),
            json!({"settings": {"before": {"timeZone": "Europe/Vienna"}, "after": {"invoicePrefix": "HAUL"}}}),
        ]
    );
}

#[tokio::test]
async fn feature_overrides_merge_and_unknown_flags_change_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let id = created(&store, "haul", Some("trucking")).await.id;
    let staff = staff_on(id);
    let own = settings(json!({"locale": "en"}));
    store.update_settings(&member_of(id), id, own.clone()).await.unwrap();
    let industry = |enabled| FeatureState { enabled, source: FeatureSource::Industry };
    let overridden = |enabled| FeatureState { enabled, source: FeatureSource::Override };
    let before = store.tenant_config(&staff, id).await.unwrap();
    assert_eq!((before.features["fleet"], before.features["work_orders"]), (industry(true), industry(false)));

    let config =
        store.set_features(&staff, id, features(json!({"work_orders": true, "fleet": false}))).await.unwrap();
    assert_eq!(
        (config.features["work_orders"], config.features["fleet"]),
        (overridden(true), overridden(false))
    );
    assert_eq!(config.features["routes"], industry(true));
    assert_eq!(config.own_settings, own, "the tenant's settings stay");
    assert_eq!(store.tenant_config(&member_of(id), id).await.unwrap(), config);
    let mut conn = connect(&db.urls.platform).await;
    let stored_sql = format!("SELECT features::text AS line FROM tenant_settings WHERE tenant_id = '{id}'");
    let stored = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
    assert_eq!(stored(one(&mut conn, &stored_sql).await), json!({"fleet": false, "work_orders": true}));

    let config = store.set_features(&staff, id, features(json!({"fleet": null}))).await.unwrap();
    assert_eq!(
        (config.features["work_orders"], config.features["fleet"]),
        (overridden(true), industry(true))
    );
    assert_eq!(stored(one(&mut conn, &stored_sql).await), json!({"work_orders": true}));

    let refused =
        store.set_features(&staff, id, features(json!({"teleportation": true, "crm": false}))).await;
    assert!(
        matches!(&refused, Err(TenancyError::UnknownFeature(key)) if key == "teleportation"),
        "{refused:?}"
    );
    assert_eq!(
        stored(one(&mut conn, &stored_sql).await),
        json!({"work_orders": true}),
        "crm was not set either"
    );
    assert_eq!(store.tenant_config(&staff, id).await.unwrap(), config);
    let audited = format!(
        "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{id}' AND action = 'tenant.features.update'"
    );
    assert_eq!(count(&mut conn, &audited).await, 2);

    // Onboarding later (with no settings of its own) keeps what was set before it.
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;
    let command = onboard_command("owner@haul.example", json!({}));
    store.onboard(&staff, id, command, link("haul-token")).await.unwrap();
    assert_eq!(store.tenant_config(&staff, id).await.unwrap(), config);
}

fn logo(format: LogoFormat, size: usize) -> Logo {
    Logo { format, width: Some(256), height: Some(64), size }
}

fn logo_key(tenant: TenantId, format: LogoFormat) -> FileKey {
    FileKey::new(tenant, &LogoInfo::path(uuid::Uuid::now_v7(), format)).unwrap()
}

#[tokio::test]
async fn branding_round_trip_and_domain_is_unique_across_tenants() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let a = created(&store, "acme", None).await.id;
    let b = created(&store, "bolt", None).await.id;
    let (as_a, as_b) = (member_of(a), member_of(b));
    assert_eq!(store.branding(&as_a, a).await.unwrap(), Branding::default());

    let saved = store
        .update_branding(
            &as_a,
            a,
            branding(
                json!({"displayName": "Acme Homes", "primaryColor": "#1A73E8", "accentColor": "#FF9900",
                            "customDomain": "Portal.Acme.Example"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        (saved.primary_color.as_deref(), saved.accent_color.as_deref(), saved.custom_domain.as_deref()),
        (Some("#1a73e8"), Some("#ff9900"), Some("portal.acme.example"))
    );
    assert_eq!(store.branding(&as_a, a).await.unwrap(), saved);
    let mut conn = connect(&db.urls.platform).await;
    let row = format!(
        "SELECT count(*) AS n FROM tenant_branding WHERE tenant_id = '{a}' AND primary_color = '#1a73e8' \
         AND custom_domain = 'portal.acme.example' AND display_name = 'Acme Homes'"
    );
    assert_eq!(count(&mut conn, &row).await, 1);

    for claim in ["portal.acme.example", "PORTAL.acme.example"] {
        let taken = store.update_branding(&as_b, b, branding(json!({"customDomain": claim}))).await;
        assert!(matches!(taken, Err(TenancyError::DomainTaken)), "{claim}: {taken:?}");
    }
    assert_eq!(store.branding(&as_b, b).await.unwrap(), Branding::default());
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM tenant_branding WHERE tenant_id = '{b}'")).await,
        0
    );
    // Keeping its own domain is no clash.
    let recoloured = store
        .update_branding(
            &as_a,
            a,
            branding(json!({"primaryColor": "#000000", "customDomain": "portal.acme.example"})),
        )
        .await
        .unwrap();
    assert_eq!(recoloured.display_name, None, "a branding update replaces every field");

    let png = logo_key(a, LogoFormat::Png);
    let first = store.set_logo(&as_a, a, png.clone(), logo(LogoFormat::Png, 18_342)).await.unwrap();
    assert_eq!(first.replaced, None);
    let info = first.branding.logo.clone().unwrap();
    assert_eq!(
        (info.content_type.as_str(), info.size, info.width, info.height),
        ("image/png", 18_342, Some(256), Some(64))
    );
    assert_eq!(store.logo(&as_a, a).await.unwrap(), (png.clone(), "image/png".to_owned()));
    assert_eq!(store.branding(&as_a, a).await.unwrap(), first.branding);

    let svg = logo_key(a, LogoFormat::Svg);
    let second = store.set_logo(&as_a, a, svg.clone(), logo(LogoFormat::Svg, 900)).await.unwrap();
    assert_eq!(second.replaced, Some(png), "the old file is named for removal");
    assert_eq!(store.logo(&as_a, a).await.unwrap(), (svg.clone(), "image/svg+xml".to_owned()));
    let kept = store.update_branding(&as_a, a, branding(json!({"displayName": "Acme"}))).await.unwrap();
    assert_eq!(kept.logo, second.branding.logo, "a branding update keeps the logo");

    let outside = store.set_logo(&as_a, a, logo_key(b, LogoFormat::Png), logo(LogoFormat::Png, 10)).await;
    assert!(matches!(outside, Err(TenancyError::Store(_))), "{outside:?}");
    assert_eq!(store.logo(&as_a, a).await.unwrap().0, svg);

    let removed = store.remove_logo(&as_a, a).await.unwrap();
    assert_eq!((removed.replaced, removed.branding.logo), (Some(svg), None));
    assert!(matches!(store.logo(&as_a, a).await, Err(TenancyError::LogoNotFound)));
    assert!(matches!(store.remove_logo(&as_a, a).await, Err(TenancyError::LogoNotFound)));
    let no_logo = format!(
        "SELECT count(*) AS n FROM tenant_branding WHERE tenant_id = '{a}' AND logo_key IS NULL AND logo_size IS NULL"
    );
    assert_eq!(count(&mut conn, &no_logo).await, 1);
    let audited = format!(
        "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{a}' AND action IN ('tenant.logo.update', 'tenant.logo.remove')"
    );
    assert_eq!(count(&mut conn, &audited).await, 3);
}

async fn begin_as(conn: &mut AsyncPgConnection, tenant: TenantId) {
    conn.batch_execute("BEGIN").await.unwrap();
    scope(conn, tenant).await;
}

#[tokio::test]
async fn another_tenants_profile_is_not_found_and_its_rows_are_invisible() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;
    let a = created(&store, "alpha", Some("trucking")).await.id;
    let b = created(&store, "bravo", Some("trucking")).await.id;
    for (id, email) in [(a, "owner@alpha.example"), (b, "owner@bravo.example")] {
        let command = onboard_command(email, json!({"timeZone": "Europe/Vienna"}));
        store.onboard(&staff_on(id), id, command, link(email)).await.unwrap();
        store
            .update_branding(
                &member_of(id),
                id,
                branding(json!({"customDomain": format!("portal.{email}").replace('@', "-")})),
            )
            .await
            .unwrap();
    }
    store.set_logo(&member_of(b), b, logo_key(b, LogoFormat::Png), logo(LogoFormat::Png, 10)).await.unwrap();
    let b_config = store.config_of(b).await.unwrap();
    let b_branding = store.branding(&member_of(b), b).await.unwrap();

    let (as_a, staff_a) = (member_of(a), staff_on(a));
    let not_found = |r: Result<(), TenancyError>| matches!(r, Err(TenancyError::NotFound));
    assert!(not_found(store.tenant_config(&as_a, b).await.map(drop)));
    assert!(not_found(store.update_settings(&as_a, b, settings(json!({"locale": "en"}))).await.map(drop)));
    assert!(not_found(store.set_features(&staff_a, b, features(json!({"fleet": false}))).await.map(drop)));
    assert!(not_found(store.branding(&as_a, b).await.map(drop)));
    assert!(not_found(
        store.update_branding(&as_a, b, branding(json!({"displayName": "Mine"}))).await.map(drop)
    ));
    assert!(not_found(
        store.set_logo(&as_a, b, logo_key(b, LogoFormat::Png), logo(LogoFormat::Png, 10)).await.map(drop)
    ));
    assert!(not_found(store.remove_logo(&as_a, b).await.map(drop)));
    assert!(not_found(store.logo(&as_a, b).await.map(drop)));
    let command = onboard_command("intruder@alpha.example", json!({}));
    assert!(not_found(store.onboard(&staff_a, b, command, link("intruder")).await.map(drop)));
    assert_eq!(store.config_of(b).await.unwrap(), b_config, "B is untouched");
    assert_eq!(store.branding(&member_of(b), b).await.unwrap(), b_branding);

    // Row-level security: scoped to A, no filter finds B's rows.
    let mut conn = connect(&db.urls.app).await;
    begin_as(&mut conn, a).await;
    for table in ["tenant_settings", "tenant_branding", "onboardings"] {
        let owners = lines(&mut conn, &format!("SELECT DISTINCT tenant_id::text AS line FROM {table}")).await;
        assert_eq!(owners, vec![a.to_string()], "{table}");
        let theirs =
            count(&mut conn, &format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = '{b}'")).await;
        assert_eq!(theirs, 0, "{table}");
    }
    let hijack = count(
        &mut conn,
        &format!(
            "WITH u AS (UPDATE tenant_branding SET custom_domain = NULL WHERE tenant_id = '{b}' RETURNING 1) \
             SELECT count(*) AS n FROM u"
        ),
    )
    .await;
    assert_eq!(hijack, 0);
    let insert = format!(
        "INSERT INTO onboardings (tenant_id, source, owner_membership_id, owner_email, welcome_credits, result, fingerprint, completed_at) \
         VALUES ('{b}', 'platform', gen_random_uuid(), 'x@y.example', '[]', '{{}}', '\\x00', now())"
    );
    assert!(error_of(&mut conn, &insert).await.contains("row-level security"));
    conn.batch_execute("ROLLBACK").await.unwrap();
    // With no tenant set, none at all.
    for table in ["tenant_settings", "tenant_branding", "onboardings"] {
        assert_eq!(count(&mut conn, &format!("SELECT count(*) AS n FROM {table}")).await, 0, "{table}");
    }
    assert_eq!(store.branding(&member_of(b), b).await.unwrap(), b_branding);
}

/// Found while writing these tests: the welcome grants and their audit rows
/// take the time the credits ledger reads when it locks each wallet, later
/// than the onboarding's own time, so the expiry the onboarding promises
/// (and records) is not the grants' and `tenant.onboard` is not the latest
/// row of the trail by time. A frozen clock hides it; the real one shows it.
#[tokio::test]
async fn welcome_grants_expire_when_the_onboarding_says_and_its_audit_row_is_the_latest() {
    let db = TestDb::new().await;
    let store = db.store().await;
    stock(&store, Channel::Sms, 1_000).await;
    stock(&store, Channel::Whatsapp, 1_000).await;
    let id = created(&store, "speedy", Some("trucking")).await.id;
    let command = onboard_command("grace@speedy.example", json!({}));
    let done = store.onboard(&staff_on(id), id, command, link("speedy-token")).await.unwrap();
    let mut conn = connect(&db.urls.platform).await;
    for promised in &done.welcome_credits {
        let grant = format!(
            "SELECT count(*) AS n FROM credit_grants g JOIN credit_wallets w ON w.tenant_id = g.tenant_id AND w.id = g.wallet_id \
             WHERE g.tenant_id = '{id}' AND w.channel = '{}' AND g.expires_at = '{}'::timestamptz",
            promised.channel,
            promised.expires_at.unwrap().to_rfc3339()
        );
        assert_eq!(count(&mut conn, &grant).await, 1, "{} grant expires as promised", promised.channel);
    }
    let latest = lines(
        &mut conn,
        &format!("SELECT action AS line FROM audit_log WHERE tenant_id = '{id}' ORDER BY occurred_at DESC, id DESC LIMIT 1"),
    )
    .await;
    assert_eq!(latest, ["tenant.onboard"]);
}
