//! A tenant's people: the owner rule under concurrency, the tenant wall,
//! invitations over time, and all-or-nothing imports.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use portico_kernel::{EmailMessage, FixedClock, Mailbox, MembershipId, Origin, RequestId, TenantContext};
use portico_store::{NewUser, Store};
use portico_tenancy::people::InvitationLink;
use portico_tenancy::people_import::ImportParser;
use portico_tenancy::people_import::ImportRefused;
use portico_tenancy::{
    Email, IdentityError, MembershipKind, NewPerson, PersonFilter, Role, RoleChoice, UserStatus,
};
use portico_testkit::TestDb;

use diesel_async::SimpleAsyncConnection;

use crate::support::{connect, count, member_of, tenant};

/// An administrator of `tenant` holding everything a tenant owner holds.
fn admin_of(tenant: portico_kernel::TenantId) -> TenantContext {
    TenantContext {
        permissions: Role::Owner.permissions().iter().map(|p| (*p).to_owned()).collect(),
        ..member_of(tenant)
    }
}

async fn member(store: &Store, ctx: &TenantContext, email: &str, role: Role) -> MembershipId {
    let new = NewUser {
        email: Email::parse(email).unwrap(),
        name: "P".into(),
        phone: None,
        status: UserStatus::Active,
        password_hash: None,
        email_verified: true,
    };
    let user = store.create_user(new).await.unwrap().id;
    store.add_membership(ctx, user, role, MembershipKind::Staff).await.unwrap()
}

fn link(token: &str) -> InvitationLink {
    InvitationLink {
        token: token.to_owned(),
        lifetime: Duration::from_secs(7 * 24 * 3600),
        message: EmailMessage {
            from: Mailbox::address("no-reply@portico.example"),
            to: Vec::new(),
            reply_to: None,
            subject: "You are invited".into(),
            html: "<p>link</p>".into(),
            text: "link".into(),
            message_id: None,
        },
    }
}

#[tokio::test]
async fn two_owners_demoted_at_once_leave_one_owner() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await.id;
    let ctx = admin_of(acme);
    let first = member(&store, &ctx, "one@acme.example", Role::Owner).await;
    let second = member(&store, &ctx, "two@acme.example", Role::Owner).await;

    // Both demotions wait behind a transaction holding the owners, then race.
    let mut holder = connect(&db.urls.platform).await;
    holder.batch_execute("BEGIN").await.unwrap();
    let lock = format!("SELECT id FROM memberships WHERE tenant_id = '{acme}' AND role = 'owner' FOR UPDATE");
    holder.batch_execute(&lock).await.unwrap();
    let demote = |id| {
        let (store, ctx) = (store.clone(), ctx.clone());
        tokio::spawn(
            async move { store.change_role(&ctx, id, RoleChoice::BuiltIn(Role::Staff), |_| true).await },
        )
    };
    let (a, b) = (demote(first), demote(second));
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let refused = [&a, &b].iter().filter(|r| matches!(r, Err(IdentityError::LastOwner))).count();
    assert_eq!((refused, [&a, &b].iter().filter(|r| r.is_ok()).count()), (1, 1), "{a:?} {b:?}");
    let mut conn = connect(&db.urls.platform).await;
    let owners = format!(
        "SELECT count(*) AS n FROM memberships WHERE tenant_id = '{acme}' AND role = 'owner' AND status = 'active'"
    );
    assert_eq!(count(&mut conn, &owners).await, 1);
}

#[tokio::test]
async fn another_tenants_people_are_not_found() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await.id;
    let globex = tenant(&store, "globex").await.id;
    let theirs = member(&store, &admin_of(acme), "a@acme.example", Role::Staff).await;

    let other = admin_of(globex);
    assert!(matches!(store.person(&other, theirs).await, Err(IdentityError::MembershipNotFound)));
    assert!(matches!(
        store.remove_person(&other, theirs, |_| true).await,
        Err(IdentityError::MembershipNotFound)
    ));
    assert!(matches!(
        store.set_person_active(&other, theirs, false, |_| true).await,
        Err(IdentityError::MembershipNotFound)
    ));
    let page = store.people(&other, &PersonFilter::default(), Default::default()).await.unwrap();
    assert_eq!(page.total, 0);
    assert_eq!(
        store.people(&admin_of(acme), &PersonFilter::default(), Default::default()).await.unwrap().total,
        1
    );
}

#[tokio::test]
async fn an_invitation_works_for_seven_days_and_once() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let store = db.store().await.with_clock(clock.clone());
    let acme = tenant(&store, "acme").await.id;
    let ctx = admin_of(acme);
    let new = |email: &str| NewPerson {
        email: Email::parse(email).unwrap(),
        name: "New".into(),
        phone: None,
        kind: MembershipKind::Student,
        role: RoleChoice::BuiltIn(Role::Viewer),
    };
    let (request, origin) = (RequestId::generate(), Origin::default());
    store.invite(&ctx, new("late@acme.example"), Some(link("late-token")), |_| true).await.unwrap();
    store.invite(&ctx, new("just@acme.example"), Some(link("just-token")), |_| true).await.unwrap();

    clock.advance(TimeDelta::days(7) - TimeDelta::seconds(1));
    let hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned());
    let accepted = store.accept_invitation("just-token", hash.clone(), &request, &origin).await.unwrap();
    assert!(accepted.new_account);
    let again = store.accept_invitation("just-token", hash.clone(), &request, &origin).await;
    assert!(matches!(again, Err(IdentityError::InvalidInvitation)));
    clock.advance(TimeDelta::seconds(1));
    let late = store.accept_invitation("late-token", hash, &request, &origin).await;
    assert!(matches!(late, Err(IdentityError::InvalidInvitation)));
    let mut conn = connect(&db.urls.platform).await;
    let statuses = "SELECT count(*) AS n FROM memberships m JOIN users u ON u.id = m.user_id \
                    WHERE u.email = 'late@acme.example' AND m.status = 'invited' AND u.status = 'pending'";
    assert_eq!(count(&mut conn, statuses).await, 1, "nothing accepted");
}

#[tokio::test]
async fn an_import_refused_in_its_last_batch_leaves_nothing_behind() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await.id;
    let ctx = admin_of(acme);
    member(&store, &ctx, "person-5600@acme.example", Role::Staff).await;

    let mut csv = String::from("email,name,kind\n");
    for i in 0..6_000 {
        csv.push_str(&format!("person-{i}@acme.example,Person {i},student\n"));
    }
    let mut parser = ImportParser::new();
    parser.feed(csv.as_bytes());
    let rows = parser.finish().unwrap();
    match store.import_people(&ctx, rows, |_| true).await {
        Err(ImportRefused::Rows(report)) => {
            assert_eq!(report.error_count, 1);
            assert_eq!((report.errors[0].line, report.errors[0].code), (5_602, "import.already_member"));
        }
        other => panic!("{other:?}"),
    }
    let mut conn = connect(&db.urls.platform).await;
    let imported = "SELECT count(*) AS n FROM users WHERE email LIKE 'person-%@acme.example'";
    assert_eq!(count(&mut conn, imported).await, 1, "only the member from before");
    let audited = "SELECT count(*) AS n FROM audit_log WHERE action = 'people.import'";
    assert_eq!(count(&mut conn, audited).await, 0);

    // Without the clash, all 6,000 arrive in one go.
    let mut csv = String::from("email,name\n");
    for i in 0..6_000 {
        csv.push_str(&format!("fresh-{i}@acme.example,Fresh {i}\n"));
    }
    let mut parser = ImportParser::new();
    parser.feed(csv.as_bytes());
    let summary = store.import_people(&ctx, parser.finish().unwrap(), |_| true).await.unwrap();
    assert_eq!((summary.rows, summary.new_accounts, summary.invited), (6_000, 6_000, 6_000));
    let invited =
        format!("SELECT count(*) AS n FROM memberships WHERE tenant_id = '{acme}' AND status = 'invited'");
    assert_eq!(count(&mut conn, &invited).await, 6_000);
    assert_eq!(count(&mut conn, audited).await, 1, "one audit row for the import");
}
