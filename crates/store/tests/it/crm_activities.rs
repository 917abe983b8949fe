//! CRM activities against real PostgreSQL: logged against the tenant's own
//! records only, tasks assigned to members, done and reopened, lists
//! filtered newest first, one audit row per change, other tenants seeing
//! none of it, and a record's timeline merging its activities with its
//! audited changes newest first, in pages.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use portico_crm::{
    Activity, ActivityDetail, ActivityDraft, ActivityKind, CrmError, RecordRef, TimelineEntry,
};
use portico_kernel::{
    ActivityId, Actor, CompanyId, ContactId, DealId, FixedClock, LeadId, PageRequest, TenantContext, UserId,
};
use portico_store::{ActivityFilter, NewUser, Store};
use portico_tenancy::{Email, MembershipKind, Role, UserStatus};
use portico_testkit::TestDb;
use serde_json::json;

use crate::support::{connect, count, lines, member_of, tenant};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
}

/// 24 November 2026 at `hour`:00 UTC.
fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn draft(body: serde_json::Value) -> ActivityDraft {
    serde_json::from_value(body).unwrap()
}

fn page(number: u32, limit: u32) -> PageRequest {
    PageRequest::new(number, limit).unwrap()
}

/// A tenant, `acme`, acting as one of its members; a store whose clock the test moves.
struct World {
    db: TestDb,
    store: Store,
    clock: Arc<FixedClock>,
    ctx: TenantContext,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::at(now()));
        let store = db.store().await.with_clock(clock.clone());
        let tenant = tenant(&store, "acme").await.id;
        let world = Self { db, store, clock, ctx: member_of(tenant) };
        let ctx = world.person(&world.ctx, "seller@acme.example").await;
        Self { ctx, ..world }
    }

    /// A new member of the context's tenant, acting.
    async fn person(&self, ctx: &TenantContext, email: &str) -> TenantContext {
        let user = self
            .store
            .create_user(NewUser {
                email: Email::parse(email).unwrap(),
                name: "Seller".into(),
                phone: None,
                status: UserStatus::Active,
                password_hash: None,
                email_verified: true,
            })
            .await
            .unwrap();
        self.store.add_membership(ctx, user.id, Role::Staff, MembershipKind::Staff).await.unwrap();
        TenantContext { actor: Actor::User { user_id: user.id, tenant_id: ctx.tenant_id }, ..ctx.clone() }
    }

    /// A member of another, new tenant, acting there.
    async fn other(&self, slug: &str) -> TenantContext {
        let ctx = member_of(tenant(&self.store, slug).await.id);
        self.person(&ctx, &format!("seller@{slug}.example")).await
    }

    async fn conn(&self) -> AsyncPgConnection {
        connect(&self.db.urls.platform).await
    }

    async fn sql(&self, sql: &str) {
        self.conn().await.batch_execute(sql).await.unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        count(&mut self.conn().await, sql).await
    }

    /// The audit rows of `action` in the tenant of `ctx`.
    async fn audited(&self, ctx: &TenantContext, action: &str) -> i64 {
        self.count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{}' AND action = '{action}'",
            ctx.tenant_id
        ))
        .await
    }

    async fn activities_of(&self, ctx: &TenantContext) -> i64 {
        self.count(&format!("SELECT count(*) AS n FROM crm_activities WHERE tenant_id = '{}'", ctx.tenant_id))
            .await
    }

    /// A contact of the tenant of `ctx`, written as the table has it.
    async fn contact(&self, ctx: &TenantContext) -> ContactId {
        let id = ContactId::new();
        self.sql(&format!(
            "INSERT INTO crm_contacts (tenant_id, id, display_name, contact_type, status, created_at, updated_at) \
             VALUES ('{}', '{id}', 'Ada Lovelace', 'customer', 'active', now(), now())",
            ctx.tenant_id
        ))
        .await;
        id
    }

    async fn lead(&self, ctx: &TenantContext) -> LeadId {
        let id = LeadId::new();
        self.sql(&format!(
            "INSERT INTO crm_leads (tenant_id, id, name, source, status, created_at, updated_at) \
             VALUES ('{}', '{id}', 'Grace Hopper', 'manual', 'new', now(), now())",
            ctx.tenant_id
        ))
        .await;
        id
    }

    async fn company(&self, ctx: &TenantContext) -> CompanyId {
        let id = CompanyId::new();
        self.sql(&format!(
            "INSERT INTO crm_companies (tenant_id, id, name, created_at, updated_at) \
             VALUES ('{}', '{id}', 'Analytical Engines', now(), now())",
            ctx.tenant_id
        ))
        .await;
        id
    }

    /// A deal of the tenant of `ctx`, in a pipeline of one stage made for it.
    async fn deal(&self, ctx: &TenantContext) -> DealId {
        let (tenant, id) = (ctx.tenant_id, DealId::new());
        let (pipeline, stage) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        self.sql(&format!(
            "INSERT INTO crm_pipelines (tenant_id, id, name, created_at, updated_at) \
                 VALUES ('{tenant}', '{pipeline}', 'Sales {pipeline}', now(), now()); \
             INSERT INTO crm_stages (tenant_id, pipeline_id, id, name, position, probability, kind) \
                 VALUES ('{tenant}', '{pipeline}', '{stage}', 'New', 0, 10, 'open'); \
             INSERT INTO crm_deals (tenant_id, id, title, amount, currency, pipeline_id, stage_id, owner_id, status, \
                                    created_at, updated_at) \
                 VALUES ('{tenant}', '{id}', 'Engines', 100000, 'EUR', '{pipeline}', '{stage}', '{}', 'open', now(), now())",
            UserId::new()
        ))
        .await;
        id
    }

    /// A change of `resource` `id` in the audit trail of `ctx`'s tenant, at `when`, by a user.
    async fn change(&self, ctx: &TenantContext, resource: &str, id: &str, action: &str, when: DateTime<Utc>) {
        let by = UserId::new();
        self.sql(&format!(
            "INSERT INTO audit_log (tenant_id, id, actor_type, actor_id, actor_tenant_id, action, resource_type, \
                                    resource_id, changes, request_id, occurred_at) \
             VALUES ('{tenant}', '{}', 'user', '{by}', '{tenant}', '{action}', '{resource}', '{id}', \
                     '{{\"status\": {{\"before\": \"new\", \"after\": \"contacted\"}}}}', 'test', '{}')",
            uuid::Uuid::now_v7(),
            when.to_rfc3339(),
            tenant = ctx.tenant_id,
        ))
        .await;
    }

    async fn log(&self, body: serde_json::Value) -> Activity {
        self.store.log_activity(&self.ctx, draft(body)).await.unwrap()
    }
}

fn user_of(ctx: &TenantContext) -> UserId {
    match ctx.actor {
        Actor::User { user_id, .. } => user_id,
        _ => panic!("not a user"),
    }
}

fn invalid_fields<T: std::fmt::Debug>(result: Result<T, CrmError>) -> Vec<String> {
    match result {
        Err(CrmError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
        other => panic!("expected crm.invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_task_is_logged_by_its_creator_for_a_member_and_audited_once() {
    let world = World::new().await;
    let contact = world.contact(&world.ctx).await;
    let agent = world.person(&world.ctx, "agent@acme.example").await;
    let task = world
        .log(json!({"kind": "task", "subject": "Send the quote", "dueDate": "2026-11-28",
            "assigneeId": user_of(&agent), "links": {"contactId": contact}}))
        .await;
    assert_eq!(
        task.detail,
        ActivityDetail::Task { due_date: Some(day(28)), assignee_id: user_of(&agent), done_at: None }
    );
    assert_eq!((task.created_by, task.occurred_at, task.created_at), (user_of(&world.ctx), now(), now()));
    assert_eq!(
        world.store.activity(&world.ctx, task.id).await.unwrap(),
        task,
        "what is read is what was written"
    );
    let stored = lines(
        &mut world.conn().await,
        &format!(
            "SELECT concat_ws(' ', kind, subject, due_date, assignee_id, contact_id, created_by) AS line \
             FROM crm_activities WHERE id = '{}'",
            task.id
        ),
    )
    .await;
    assert_eq!(
        stored,
        [format!("task Send the quote 2026-11-28 {} {contact} {}", user_of(&agent), user_of(&world.ctx))]
    );
    assert_eq!(world.audited(&world.ctx, "crm.activity.create").await, 1);
}

#[tokio::test]
async fn an_activity_cannot_link_another_tenants_record_and_nothing_is_written() {
    let world = World::new().await;
    let other = world.other("globex").await;
    let (contact, lead, company, deal) = (
        world.contact(&other).await,
        world.lead(&other).await,
        world.company(&other).await,
        world.deal(&other).await,
    );
    for (links, field) in [
        (json!({"contactId": contact}), "links.contactId"),
        (json!({"leadId": lead}), "links.leadId"),
        (json!({"companyId": company}), "links.companyId"),
        (json!({"dealId": deal}), "links.dealId"),
    ] {
        let refused = world
            .store
            .log_activity(&world.ctx, draft(json!({"kind": "note", "subject": "Hi", "links": links})))
            .await;
        assert_eq!(invalid_fields(refused), [field]);
    }
    assert_eq!(world.activities_of(&world.ctx).await, 0);
    assert_eq!(world.audited(&world.ctx, "crm.activity.create").await, 0);
    // The tenant's own records of every kind are accepted together.
    let own = json!({"leadId": world.lead(&world.ctx).await, "contactId": world.contact(&world.ctx).await,
        "companyId": world.company(&world.ctx).await, "dealId": world.deal(&world.ctx).await});
    world.log(json!({"kind": "meeting", "subject": "Demo", "links": own})).await;
    assert_eq!(world.activities_of(&world.ctx).await, 1);
}

#[tokio::test]
async fn a_tasks_assignee_must_be_a_member_of_the_tenant() {
    let world = World::new().await;
    let contact = world.contact(&world.ctx).await;
    let outsider = world.other("globex").await;
    for assignee in [user_of(&outsider), UserId::new()] {
        let refused = world
            .store
            .log_activity(
                &world.ctx,
                draft(json!({"kind": "task", "subject": "Call", "assigneeId": assignee, "links": {"contactId": contact}})),
            )
            .await;
        assert_eq!(invalid_fields(refused), ["assigneeId"]);
    }
    // A person acting on a tenant they are no member of cannot assign a task to themselves either.
    let stranger = member_of(world.ctx.tenant_id);
    let refused = world
        .store
        .log_activity(
            &stranger,
            draft(json!({"kind": "task", "subject": "Call", "links": {"contactId": contact}})),
        )
        .await;
    assert_eq!(invalid_fields(refused), ["assigneeId"]);
    // A key has no person to name as the author.
    let key = TenantContext {
        actor: Actor::ApiKey { key_id: portico_kernel::ApiKeyId::new(), tenant_id: world.ctx.tenant_id },
        ..world.ctx.clone()
    };
    let refused = world
        .store
        .log_activity(&key, draft(json!({"kind": "note", "subject": "x", "links": {"contactId": contact}})))
        .await;
    assert_eq!(invalid_fields(refused), ["createdBy"]);
    assert_eq!(world.activities_of(&world.ctx).await, 0);
}

#[tokio::test]
async fn a_task_is_completed_once_and_reopened_each_change_audited() {
    let world = World::new().await;
    let deal = world.deal(&world.ctx).await;
    let task =
        world.log(json!({"kind": "task", "subject": "Send the quote", "links": {"dealId": deal}})).await;
    world.clock.set(at(11));
    let done = world.store.complete_task(&world.ctx, task.id).await.unwrap();
    assert!(matches!(done.detail, ActivityDetail::Task { done_at: Some(when), .. } if when == at(11)));
    assert_eq!(done.updated_at, at(11));
    assert_eq!(world.store.activity(&world.ctx, task.id).await.unwrap(), done);
    assert!(matches!(world.store.complete_task(&world.ctx, task.id).await, Err(CrmError::TaskAlreadyDone)));
    world.clock.set(at(12));
    let reopened = world.store.reopen_task(&world.ctx, task.id).await.unwrap();
    assert!(matches!(reopened.detail, ActivityDetail::Task { done_at: None, .. }));
    assert!(matches!(world.store.reopen_task(&world.ctx, task.id).await, Err(CrmError::TaskNotDone)));
    let stored = world
        .count(&format!(
            "SELECT count(*) AS n FROM crm_activities WHERE id = '{}' AND done_at IS NULL",
            task.id
        ))
        .await;
    assert_eq!(stored, 1);
    assert_eq!(
        (
            world.audited(&world.ctx, "crm.activity.complete").await,
            world.audited(&world.ctx, "crm.activity.reopen").await
        ),
        (1, 1),
        "refused changes leave no row"
    );
    let note = world.log(json!({"kind": "note", "subject": "Met", "links": {"dealId": deal}})).await;
    assert!(matches!(world.store.complete_task(&world.ctx, note.id).await, Err(CrmError::NotATask)));
}

#[tokio::test]
async fn lists_filter_by_record_kind_assignee_state_and_due_day_newest_first() {
    let world = World::new().await;
    let (contact, company) = (world.contact(&world.ctx).await, world.company(&world.ctx).await);
    let agent = world.person(&world.ctx, "agent@acme.example").await;
    let call = world
        .log(json!({"kind": "call", "subject": "Call", "occurredAt": at(8), "links": {"contactId": contact}}))
        .await;
    let early = world
        .log(json!({"kind": "task", "subject": "Early", "occurredAt": at(9), "dueDate": "2026-11-25",
            "assigneeId": user_of(&agent), "links": {"contactId": contact}}))
        .await;
    let late = world
        .log(json!({"kind": "task", "subject": "Late", "occurredAt": at(10), "dueDate": "2026-11-30",
            "links": {"companyId": company}}))
        .await;
    world.store.complete_task(&world.ctx, late.id).await.unwrap();
    let list = |filter: ActivityFilter| {
        let (store, ctx) = (world.store.clone(), world.ctx.clone());
        async move {
            let found = store.activities(&ctx, filter, page(1, 20)).await.unwrap();
            assert_eq!(found.total, found.items.len() as u64);
            found.items.into_iter().map(|a| a.id).collect::<Vec<ActivityId>>()
        }
    };
    assert_eq!(list(ActivityFilter::default()).await, [late.id, early.id, call.id], "newest first");
    assert_eq!(
        list(ActivityFilter { contact_id: Some(contact), ..Default::default() }).await,
        [early.id, call.id]
    );
    assert_eq!(list(ActivityFilter { company_id: Some(company), ..Default::default() }).await, [late.id]);
    assert_eq!(
        list(ActivityFilter { kind: Some(ActivityKind::Call), ..Default::default() }).await,
        [call.id]
    );
    assert_eq!(
        list(ActivityFilter { assignee_id: Some(user_of(&agent)), ..Default::default() }).await,
        [early.id]
    );
    assert_eq!(list(ActivityFilter { open: Some(true), ..Default::default() }).await, [early.id]);
    assert_eq!(list(ActivityFilter { open: Some(false), ..Default::default() }).await, [late.id]);
    assert_eq!(list(ActivityFilter { due_from: Some(day(26)), ..Default::default() }).await, [late.id]);
    assert_eq!(list(ActivityFilter { due_to: Some(day(26)), ..Default::default() }).await, [early.id]);
    let second = world.store.activities(&world.ctx, ActivityFilter::default(), page(2, 2)).await.unwrap();
    assert_eq!((second.items.len(), second.total, second.total_pages), (1, 3, 2));
    assert_eq!(second.items[0].id, call.id);
    // Another tenant sees none of them.
    let other = world.other("globex").await;
    assert_eq!(
        world.store.activities(&other, ActivityFilter::default(), page(1, 20)).await.unwrap().total,
        0
    );
}

#[tokio::test]
async fn another_tenant_can_neither_read_change_nor_delete_an_activity() {
    let world = World::new().await;
    let contact = world.contact(&world.ctx).await;
    let task = world.log(json!({"kind": "task", "subject": "Mine", "links": {"contactId": contact}})).await;
    let other = world.other("globex").await;
    let theirs = world.contact(&other).await;
    let revision = || draft(json!({"kind": "note", "subject": "Theirs", "links": {"contactId": theirs}}));
    assert!(matches!(world.store.activity(&other, task.id).await, Err(CrmError::ActivityNotFound)));
    assert!(matches!(
        world.store.revise_activity(&other, task.id, revision()).await,
        Err(CrmError::ActivityNotFound)
    ));
    assert!(matches!(world.store.complete_task(&other, task.id).await, Err(CrmError::ActivityNotFound)));
    assert!(matches!(world.store.delete_activity(&other, task.id).await, Err(CrmError::ActivityNotFound)));
    assert_eq!(world.store.activity(&world.ctx, task.id).await.unwrap(), task, "untouched");
    assert_eq!(
        world.audited(&other, "crm.activity.update").await
            + world.audited(&other, "crm.activity.delete").await,
        0
    );
}

#[tokio::test]
async fn a_revision_keeps_a_done_task_done_and_a_deletion_is_audited() {
    let world = World::new().await;
    let contact = world.contact(&world.ctx).await;
    let task = world.log(json!({"kind": "task", "subject": "Send", "links": {"contactId": contact}})).await;
    world.clock.set(at(10));
    let done = world.store.complete_task(&world.ctx, task.id).await.unwrap();
    world.clock.set(at(11));
    let revised = world
        .store
        .revise_activity(
            &world.ctx,
            task.id,
            draft(json!({"kind": "task", "subject": "Send the final quote", "dueDate": "2026-11-27",
                "links": {"contactId": contact}})),
        )
        .await
        .unwrap();
    assert_eq!(revised.subject, "Send the final quote");
    assert!(matches!(revised.detail, ActivityDetail::Task { done_at: Some(when), due_date: Some(d), .. }
        if when == at(10) && d == day(27)));
    assert_eq!((revised.created_at, revised.updated_at), (done.created_at, at(11)));
    assert_eq!(world.store.activity(&world.ctx, task.id).await.unwrap(), revised);
    // A revision that breaks a rule changes nothing.
    let refused = world
        .store
        .revise_activity(
            &world.ctx,
            task.id,
            draft(json!({"kind": "task", "subject": "", "links": {"contactId": contact}})),
        )
        .await;
    assert_eq!(invalid_fields(refused), ["subject"]);
    assert_eq!(world.store.activity(&world.ctx, task.id).await.unwrap(), revised);
    world.store.delete_activity(&world.ctx, task.id).await.unwrap();
    assert!(matches!(world.store.activity(&world.ctx, task.id).await, Err(CrmError::ActivityNotFound)));
    assert_eq!(world.activities_of(&world.ctx).await, 0);
    assert_eq!(
        (
            world.audited(&world.ctx, "crm.activity.update").await,
            world.audited(&world.ctx, "crm.activity.delete").await
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn a_timeline_merges_activities_and_audited_changes_newest_first_in_pages() {
    let world = World::new().await;
    let contact = world.contact(&world.ctx).await;
    let elsewhere = world.contact(&world.ctx).await;
    let call = world
        .log(
            json!({"kind": "call", "subject": "Intro", "occurredAt": at(8), "links": {"contactId": contact}}),
        )
        .await;
    let meeting = world
        .log(json!({"kind": "meeting", "subject": "Demo", "occurredAt": at(11), "links": {"contactId": contact}}))
        .await;
    world.log(json!({"kind": "note", "subject": "Not this one", "links": {"contactId": elsewhere}})).await;
    world.change(&world.ctx, "contact", &contact.to_string(), "crm.contact.create", at(7)).await;
    world.change(&world.ctx, "contact", &contact.to_string(), "crm.contact.update", at(10)).await;
    world.change(&world.ctx, "contact", &elsewhere.to_string(), "crm.contact.update", at(9)).await;
    world.change(&world.ctx, "company", &contact.to_string(), "crm.company.update", at(9)).await;

    let record = RecordRef::Contact(contact);
    let first = world.store.timeline(&world.ctx, record, page(1, 3)).await.unwrap();
    assert_eq!((first.total, first.total_pages), (4, 2));
    let describe = |entry: &TimelineEntry| match entry {
        TimelineEntry::Activity(a) => format!("activity {}", a.subject),
        TimelineEntry::Change(c) => format!("change {}", c.action),
        TimelineEntry::Message(m) => format!("message {}", m.summary),
    };
    let shown: Vec<String> = first.items.iter().map(describe).collect();
    assert_eq!(shown, ["activity Demo", "change crm.contact.update", "activity Intro"]);
    let times: Vec<DateTime<Utc>> = first.items.iter().map(TimelineEntry::at).collect();
    assert_eq!(times, [at(11), at(10), at(8)]);
    assert!(matches!(&first.items[0], TimelineEntry::Activity(a) if *a == meeting));
    assert!(matches!(&first.items[2], TimelineEntry::Activity(a) if *a == call));
    match &first.items[1] {
        TimelineEntry::Change(change) => {
            assert!(change.by.is_some());
            assert_eq!(change.changes, json!({"status": {"before": "new", "after": "contacted"}}));
        }
        other => panic!("expected a change, got {other:?}"),
    }
    let second = world.store.timeline(&world.ctx, record, page(2, 3)).await.unwrap();
    assert_eq!(second.items.iter().map(describe).collect::<Vec<_>>(), ["change crm.contact.create"]);
    // A record of another tenant, or none at all, has no timeline here.
    let other = world.other("globex").await;
    assert!(matches!(world.store.timeline(&other, record, page(1, 3)).await, Err(CrmError::ContactNotFound)));
    let missing = RecordRef::Deal(DealId::new());
    assert!(matches!(
        world.store.timeline(&world.ctx, missing, page(1, 3)).await,
        Err(CrmError::DealNotFound)
    ));
    // Each kind of record reads its own activities and changes.
    let deal = world.deal(&world.ctx).await;
    world.log(json!({"kind": "note", "subject": "Deal note", "links": {"dealId": deal}})).await;
    world.change(&world.ctx, "deal", &deal.to_string(), "crm.deal.move", now() + Duration::hours(1)).await;
    let deal_timeline = world.store.timeline(&world.ctx, RecordRef::Deal(deal), page(1, 10)).await.unwrap();
    assert_eq!(
        deal_timeline.items.iter().map(describe).collect::<Vec<_>>(),
        ["change crm.deal.move", "activity Deal note"]
    );
}

/// Runs `act` while another transaction has run `delete` (a deletion of a
/// record `act` links) but not committed it; commits once `act` waits on
/// that record's lock, and answers what `act` did.
pub(crate) async fn racing_a_deletion<T: Send + 'static>(
    url: &str,
    delete: &str,
    act: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let mut deleting = connect(url).await;
    deleting.batch_execute(&format!("BEGIN; {delete}")).await.unwrap();
    // The deletion's transaction, on which a change of its record waits (`pg_locks` shows
    // every role's locks, where `pg_stat_activity` hides other roles' waits).
    let xid = count(&mut deleting, "SELECT txid_current() AS n").await;
    let acting = tokio::spawn(act);
    let mut watching = connect(url).await;
    let mut waited = false;
    for _ in 0..400 {
        let sql = format!(
            "SELECT count(*) AS n FROM pg_locks \
             WHERE locktype = 'transactionid' AND NOT granted AND transactionid::text = '{xid}'"
        );
        if count(&mut watching, &sql).await > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    deleting.batch_execute("COMMIT").await.unwrap();
    assert!(waited, "the racing change waited on the deleted record");
    acting.await.unwrap()
}

#[tokio::test]
async fn a_record_deleted_while_an_activity_is_linked_to_it_is_refused_not_a_fault() {
    let world = World::new().await;
    let url = world.db.urls.platform.clone();
    let contact = world.contact(&world.ctx).await;
    let (store, ctx) = (world.store.clone(), world.ctx.clone());
    let note = json!({"kind": "note", "subject": "Called", "links": {"contactId": contact}});
    let logged =
        racing_a_deletion(&url, &format!("DELETE FROM crm_contacts WHERE id = '{contact}'"), async move {
            store.log_activity(&ctx, draft(note)).await
        })
        .await;
    assert_eq!(invalid_fields(logged), ["links.contactId"], "the contact went first: no such contact");
    assert_eq!(world.activities_of(&world.ctx).await, 0);

    // A revision that links a deal being deleted: the same, and the activity stays as it was.
    let company = world.company(&world.ctx).await;
    let note = world.log(json!({"kind": "note", "subject": "Met", "links": {"companyId": company}})).await;
    let deal = world.deal(&world.ctx).await;
    let (store, ctx, id) = (world.store.clone(), world.ctx.clone(), note.id);
    let both = json!({"kind": "note", "subject": "Met", "links": {"companyId": company, "dealId": deal}});
    let revised =
        racing_a_deletion(&url, &format!("DELETE FROM crm_deals WHERE id = '{deal}'"), async move {
            store.revise_activity(&ctx, id, draft(both)).await
        })
        .await;
    assert_eq!(invalid_fields(revised), ["links.dealId"]);
    assert_eq!(world.store.activity(&world.ctx, note.id).await.unwrap(), note);
}
