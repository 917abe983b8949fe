//! Support tickets against real PostgreSQL: numbered 1, 2, 3 per tenant
//! (also when opened at once), due when the domain says under the tenant's
//! SLA policy (business hours included), clocks stopped while pending and
//! resumed, the first response set by an agent's first public comment,
//! internal comments hidden from the requester, the `breached` filter
//! agreeing with `Ticket::breached`, requesters and assignees checked, one
//! audit row per change, and other tenants seeing none of it.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use portico_crm::{
    Assign, BusinessHours, ChangeStatus, CommentAuthor, CrmError, NewComment, Requester, SlaPolicy,
    SlaTargets, Ticket, TicketChanges, TicketDraft, TicketPriority, TicketStatus, due_at,
};
use portico_kernel::{Actor, ContactId, FixedClock, PageRequest, TenantContext, TicketId, UserId};
use portico_store::{NewUser, Store, TicketFilter, TicketOrder};
use portico_tenancy::{Email, MembershipKind, Role, UserStatus};
use portico_testkit::TestDb;

use crate::support::{connect, count, lines, member_of, tenant};

/// A UTC instant in November 2026 (the 2nd is a Monday, the 6th a Friday).
fn nov(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
}

fn page(number: u32, limit: u32) -> PageRequest {
    PageRequest::new(number, limit).unwrap()
}

/// Office hours: Monday to Friday, 09:00 to 18:00 UTC; high is 4 h / 9 h.
fn office_policy() -> SlaPolicy {
    SlaPolicy {
        high: SlaTargets { first_response_minutes: 240, resolution_minutes: 540 },
        business_hours: Some(BusinessHours::weekdays_nine_to_six(0)),
        ..SlaPolicy::default()
    }
}

/// A tenant, `acme`, acting as one of its agents; a store whose clock the test moves.
struct World {
    db: TestDb,
    store: Store,
    clock: Arc<FixedClock>,
    ctx: TenantContext,
    contact: ContactId,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::at(nov(2, 10, 0)));
        let store = db.store().await.with_clock(clock.clone());
        let tenant = tenant(&store, "acme").await.id;
        let world = Self { db, store, clock, ctx: member_of(tenant), contact: ContactId::new() };
        let ctx = world.person(&world.ctx, "agent@acme.example").await;
        let contact = world.contact_of(&ctx).await;
        Self { ctx, contact, ..world }
    }

    /// A new member of the context's tenant, acting.
    async fn person(&self, ctx: &TenantContext, email: &str) -> TenantContext {
        let user = self
            .store
            .create_user(NewUser {
                email: Email::parse(email).unwrap(),
                name: "Agent".into(),
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

    /// An agent of another, new tenant, acting there.
    async fn other(&self, slug: &str) -> TenantContext {
        let ctx = member_of(tenant(&self.store, slug).await.id);
        self.person(&ctx, &format!("agent@{slug}.example")).await
    }

    async fn contact_of(&self, ctx: &TenantContext) -> ContactId {
        let id = ContactId::new();
        self.sql(&format!(
            "INSERT INTO crm_contacts (tenant_id, id, display_name, contact_type, status, created_at, updated_at) \
             VALUES ('{}', '{id}', 'Ada Lovelace', 'customer', 'active', now(), now())",
            ctx.tenant_id
        ))
        .await;
        id
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

    async fn audited(&self, ctx: &TenantContext, action: &str) -> i64 {
        self.count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE tenant_id = '{}' AND action = '{action}'",
            ctx.tenant_id
        ))
        .await
    }

    async fn tickets_of(&self, ctx: &TenantContext) -> i64 {
        self.count(&format!("SELECT count(*) AS n FROM crm_tickets WHERE tenant_id = '{}'", ctx.tenant_id))
            .await
    }

    async fn open(&self, priority: TicketPriority) -> Ticket {
        self.store
            .open_ticket(&self.ctx, draft(Requester::Contact { contact_id: self.contact }, priority))
            .await
            .unwrap()
    }

    async fn status(&self, ticket: &Ticket, status: TicketStatus) -> Ticket {
        self.store.change_ticket_status(&self.ctx, ticket.id, ChangeStatus { status }).await.unwrap()
    }

    async fn say(&self, ctx: &TenantContext, ticket: &Ticket, body: &str, internal: bool) {
        let comment = NewComment { body: body.into(), internal };
        self.store.comment_on_ticket(ctx, ticket.id, comment).await.unwrap();
    }
}

fn draft(requester: Requester, priority: TicketPriority) -> TicketDraft {
    TicketDraft {
        subject: "Invoices page shows an error".into(),
        description: "Since this morning the invoices page says 500.".into(),
        requester,
        priority,
        assignee: None,
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
async fn a_ticket_is_numbered_next_in_its_tenant_and_due_as_the_tenants_policy_computes() {
    let world = World::new().await;
    assert_eq!(
        world.store.sla_policy(&world.ctx).await.unwrap(),
        SlaPolicy::default(),
        "none set: the default"
    );
    world.store.set_sla_policy(&world.ctx, office_policy()).await.unwrap();
    assert_eq!(world.store.sla_policy(&world.ctx).await.unwrap(), office_policy());
    assert_eq!(world.audited(&world.ctx, "crm.ticket.sla_policy.update").await, 1);

    // Friday 17:30, high (4 h / 9 h of office time): Monday 12:30 and Monday 17:30.
    world.clock.set(nov(6, 17, 30));
    let ticket = world.open(TicketPriority::High).await;
    let hours = office_policy().business_hours;
    assert_eq!(ticket.first_response_due, due_at(nov(6, 17, 30), TimeDelta::hours(4), hours.as_ref()));
    assert_eq!((ticket.first_response_due, ticket.resolution_due), (nov(9, 12, 30), nov(9, 17, 30)));
    assert_eq!(
        (ticket.number, ticket.status, ticket.created_at),
        (Some(1), TicketStatus::Open, nov(6, 17, 30))
    );
    assert_eq!(
        world.store.ticket(&world.ctx, ticket.id).await.unwrap(),
        ticket,
        "what is read is what was written"
    );
    let stored = lines(
        &mut world.conn().await,
        &format!(
            "SELECT concat_ws(' ', number, priority, status, requester_contact_id, \
                              to_char(first_response_due AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')) AS line \
             FROM crm_tickets WHERE id = '{}'",
            ticket.id
        ),
    )
    .await;
    assert_eq!(stored, [format!("1 high open {} 2026-11-09 12:30", world.contact)]);
    assert_eq!(world.open(TicketPriority::Low).await.number, Some(2));
    assert_eq!(world.audited(&world.ctx, "crm.ticket.create").await, 2);

    // Another tenant numbers from 1, under the default (calendar) policy: urgent 1 h / 4 h.
    let other = world.other("globex").await;
    let theirs = world.contact_of(&other).await;
    let first = world
        .store
        .open_ticket(&other, draft(Requester::Contact { contact_id: theirs }, TicketPriority::Urgent))
        .await
        .unwrap();
    assert_eq!(first.number, Some(1));
    assert_eq!((first.first_response_due, first.resolution_due), (nov(6, 18, 30), nov(6, 21, 30)));
}

#[tokio::test]
async fn tickets_opened_at_once_get_distinct_numbers_without_gaps() {
    let world = World::new().await;
    let opened: Vec<_> = (0..8)
        .map(|_| {
            let (store, ctx, contact) = (world.store.clone(), world.ctx.clone(), world.contact);
            tokio::spawn(async move {
                store
                    .open_ticket(
                        &ctx,
                        draft(Requester::Contact { contact_id: contact }, TicketPriority::Normal),
                    )
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for handle in opened {
        numbers.push(handle.await.unwrap().unwrap().number.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
}

#[tokio::test]
async fn pending_stops_the_clocks_and_open_resumes_them_with_the_time_that_was_left() {
    let world = World::new().await;
    // Monday 10:00, urgent under the default policy: due 11:00 and 14:00.
    let ticket = world.open(TicketPriority::Urgent).await;
    world.clock.set(nov(2, 10, 30));
    let pending = world.status(&ticket, TicketStatus::Pending).await;
    assert_eq!(pending.sla_stopped_at, Some(nov(2, 10, 30)));
    world.clock.set(nov(2, 13, 0));
    let open = world.status(&pending, TicketStatus::Open).await;
    // Stopped 2 h 30: due 13:30 and 16:30.
    assert_eq!((open.first_response_due, open.resolution_due), (nov(2, 13, 30), nov(2, 16, 30)));
    assert_eq!(open.sla_stopped_at, None);
    assert_eq!(world.store.ticket(&world.ctx, ticket.id).await.unwrap(), open);
    let refused = world
        .store
        .change_ticket_status(&world.ctx, ticket.id, ChangeStatus { status: TicketStatus::Closed })
        .await;
    assert!(matches!(
        refused,
        Err(CrmError::TicketTransition { from: TicketStatus::Open, to: TicketStatus::Closed })
    ));
    assert_eq!(
        world.store.ticket(&world.ctx, ticket.id).await.unwrap(),
        open,
        "a refused move changes nothing"
    );
    assert_eq!(world.audited(&world.ctx, "crm.ticket.status").await, 2);
}

#[tokio::test]
async fn an_agents_first_public_comment_is_the_first_response_and_requesters_never_see_internal_ones() {
    let world = World::new().await;
    let requester = world.person(&world.ctx, "customer@acme.example").await;
    let ticket = world
        .store
        .open_ticket(
            &world.ctx,
            draft(Requester::User { user_id: user_of(&requester) }, TicketPriority::Urgent),
        )
        .await
        .unwrap();
    world.clock.set(nov(2, 10, 10));
    world.say(&world.ctx, &ticket, "Check the logs", true).await;
    assert_eq!(world.store.ticket(&world.ctx, ticket.id).await.unwrap().first_responded_at, None);
    world.clock.set(nov(2, 10, 20));
    world.say(&world.ctx, &ticket, "We are on it", false).await;
    world.clock.set(nov(2, 10, 40));
    world.say(&requester, &ticket, "Thanks", false).await;
    let answered = world.store.ticket(&world.ctx, ticket.id).await.unwrap();
    assert_eq!(answered.first_responded_at, Some(nov(2, 10, 20)));

    let agent_view = world.store.ticket_comments(&world.ctx, ticket.id, page(1, 20)).await.unwrap();
    let bodies: Vec<&str> = agent_view.items.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["Check the logs", "We are on it", "Thanks"], "oldest first");
    assert_eq!(agent_view.items[0].author, CommentAuthor::Agent { user_id: user_of(&world.ctx) });
    assert_eq!(agent_view.items[2].author, CommentAuthor::Requester);
    let requester_view = world.store.ticket_comments(&requester, ticket.id, page(1, 20)).await.unwrap();
    let bodies: Vec<&str> = requester_view.items.iter().map(|c| c.body.as_str()).collect();
    assert_eq!((bodies, requester_view.total), (vec!["We are on it", "Thanks"], 2));
    // The requester writes no internal comment; nothing is stored of one refused.
    let refused = world
        .store
        .comment_on_ticket(&requester, ticket.id, NewComment { body: "psst".into(), internal: true })
        .await;
    assert_eq!(invalid_fields(refused), ["internal"]);
    let stored = world
        .count(&format!(
            "SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = '{}' AND author_user_id IS NULL",
            ticket.id
        ))
        .await;
    assert_eq!(stored, 1, "the requester's one public comment, stored without an author user");
    assert_eq!(world.audited(&world.ctx, "crm.ticket.comment").await, 3);
}

#[tokio::test]
async fn the_breached_filter_agrees_with_the_domain() {
    let world = World::new().await;
    // Monday 10:00, urgent (due 11:00 / 14:00) and normal (18:00 / Thursday 10:00).
    let late = world.open(TicketPriority::Urgent).await;
    let answered = world.open(TicketPriority::Urgent).await;
    let paused = world.open(TicketPriority::Urgent).await;
    let calm = world.open(TicketPriority::Normal).await;
    world.clock.set(nov(2, 10, 30));
    world.say(&world.ctx, &answered, "On it", false).await;
    world.status(&paused, TicketStatus::Pending).await;
    world.clock.set(nov(2, 12, 0));
    let now = nov(2, 12, 0);
    let mut expected_breached = Vec::new();
    for ticket in [&late, &answered, &paused, &calm] {
        let stored = world.store.ticket(&world.ctx, ticket.id).await.unwrap();
        if stored.breached(now).any() {
            expected_breached.push(ticket.id);
        }
    }
    assert_eq!(expected_breached, [late.id], "only the unanswered running one is late at 12:00");
    let listed = |breached: bool| {
        let (store, ctx) = (world.store.clone(), world.ctx.clone());
        async move {
            let filter = TicketFilter { breached: Some(breached), ..TicketFilter::default() };
            let found = store.tickets(&ctx, filter, TicketOrder::CreatedAtDesc, page(1, 20)).await.unwrap();
            let mut ids: Vec<TicketId> = found.items.iter().map(|t| t.id).collect();
            ids.sort_unstable();
            ids
        }
    };
    assert_eq!(listed(true).await, expected_breached);
    let mut in_time = vec![answered.id, paused.id, calm.id];
    in_time.sort_unstable();
    assert_eq!(listed(false).await, in_time);
    // At 14:01 the answered one misses its resolution too; the paused one is judged as of its pause.
    world.clock.set(nov(2, 14, 1));
    let mut late_now = vec![late.id, answered.id];
    late_now.sort_unstable();
    assert_eq!(listed(true).await, late_now);
}

#[tokio::test]
async fn lists_filter_and_sort_by_creation_or_either_due_time() {
    let world = World::new().await;
    let agent = world.person(&world.ctx, "second@acme.example").await;
    // Urgent answers soonest but resolves last: the two due times sort apart.
    let policy = SlaPolicy {
        normal: SlaTargets { first_response_minutes: 120, resolution_minutes: 240 },
        urgent: SlaTargets { first_response_minutes: 30, resolution_minutes: 1440 },
        ..SlaPolicy::default()
    };
    world.store.set_sla_policy(&world.ctx, policy).await.unwrap();
    // Monday 10:00 normal (12:00 / 14:00), 11:00 urgent (11:30 / Tuesday 11:00).
    let normal = world.open(TicketPriority::Normal).await;
    world.clock.set(nov(2, 11, 0));
    let urgent = world.open(TicketPriority::Urgent).await;
    assert_eq!((normal.first_response_due, normal.resolution_due), (nov(2, 12, 0), nov(2, 14, 0)));
    assert_eq!((urgent.first_response_due, urgent.resolution_due), (nov(2, 11, 30), nov(3, 11, 0)));
    world
        .store
        .assign_ticket(&world.ctx, normal.id, Assign { assignee: Some(user_of(&agent)) })
        .await
        .unwrap();
    let ids = |tickets: Vec<Ticket>| tickets.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let list = |filter: TicketFilter, order: TicketOrder| {
        let (store, ctx) = (world.store.clone(), world.ctx.clone());
        async move { store.tickets(&ctx, filter, order, page(1, 20)).await.unwrap().items }
    };
    for (order, expected) in [
        (TicketOrder::CreatedAtDesc, [urgent.id, normal.id]),
        (TicketOrder::CreatedAt, [normal.id, urgent.id]),
        (TicketOrder::FirstResponseDue, [urgent.id, normal.id]),
        (TicketOrder::ResolutionDue, [normal.id, urgent.id]),
    ] {
        assert_eq!(ids(list(TicketFilter::default(), order).await), expected, "{order:?}");
    }
    let only = |f: TicketFilter| list(f, TicketOrder::CreatedAtDesc);
    assert_eq!(
        ids(only(TicketFilter { priority: Some(TicketPriority::Normal), ..Default::default() }).await),
        [normal.id]
    );
    assert_eq!(
        ids(only(TicketFilter { assignee_id: Some(user_of(&agent)), ..Default::default() }).await),
        [normal.id]
    );
    assert_eq!(
        ids(only(TicketFilter { requester_contact_id: Some(world.contact), ..Default::default() }).await)
            .len(),
        2
    );
    world.status(&urgent, TicketStatus::Pending).await;
    assert_eq!(
        ids(only(TicketFilter { status: Some(TicketStatus::Pending), ..Default::default() }).await),
        [urgent.id]
    );
}

#[tokio::test]
async fn requesters_and_assignees_are_checked_and_a_refusal_writes_nothing() {
    let world = World::new().await;
    let other = world.other("globex").await;
    let foreign_contact = world.contact_of(&other).await;
    let refused = world
        .store
        .open_ticket(
            &world.ctx,
            draft(Requester::Contact { contact_id: foreign_contact }, TicketPriority::Low),
        )
        .await;
    assert_eq!(invalid_fields(refused), ["requester.contactId"]);
    let refused = world
        .store
        .open_ticket(&world.ctx, draft(Requester::User { user_id: user_of(&other) }, TicketPriority::Low))
        .await;
    assert_eq!(invalid_fields(refused), ["requester.userId"]);
    let assigned = TicketDraft {
        assignee: Some(user_of(&other)),
        ..draft(Requester::Contact { contact_id: world.contact }, TicketPriority::Low)
    };
    assert_eq!(invalid_fields(world.store.open_ticket(&world.ctx, assigned).await), ["assignee"]);
    let blank = TicketDraft {
        subject: String::new(),
        ..draft(Requester::Contact { contact_id: world.contact }, TicketPriority::Low)
    };
    assert_eq!(invalid_fields(world.store.open_ticket(&world.ctx, blank).await), ["subject"]);
    assert_eq!(world.tickets_of(&world.ctx).await, 0);
    assert_eq!(world.audited(&world.ctx, "crm.ticket.create").await, 0);

    let ticket = world.open(TicketPriority::Low).await;
    assert_eq!(ticket.number, Some(1), "refusals take no number");
    let refused =
        world.store.assign_ticket(&world.ctx, ticket.id, Assign { assignee: Some(user_of(&other)) }).await;
    assert_eq!(invalid_fields(refused), ["assignee"]);
    assert_eq!(world.store.ticket(&world.ctx, ticket.id).await.unwrap().assignee, None);
    let bad_policy = SlaPolicy {
        high: SlaTargets { first_response_minutes: 600, resolution_minutes: 60 },
        ..SlaPolicy::default()
    };
    assert_eq!(
        invalid_fields(world.store.set_sla_policy(&world.ctx, bad_policy).await),
        ["high.firstResponseMinutes"]
    );
    assert_eq!(
        world
            .count(&format!(
                "SELECT count(*) AS n FROM crm_settings WHERE tenant_id = '{}'",
                world.ctx.tenant_id
            ))
            .await,
        0
    );
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_touch_a_ticket() {
    let world = World::new().await;
    let ticket = world.open(TicketPriority::High).await;
    world.say(&world.ctx, &ticket, "Internal note", true).await;
    let other = world.other("globex").await;
    assert!(matches!(world.store.ticket(&other, ticket.id).await, Err(CrmError::TicketNotFound)));
    assert!(matches!(
        world.store.ticket_comments(&other, ticket.id, page(1, 20)).await,
        Err(CrmError::TicketNotFound)
    ));
    let comment = NewComment { body: "Hello".into(), internal: false };
    assert!(matches!(
        world.store.comment_on_ticket(&other, ticket.id, comment).await,
        Err(CrmError::TicketNotFound)
    ));
    assert!(matches!(
        world.store.assign_ticket(&other, ticket.id, Assign { assignee: None }).await,
        Err(CrmError::TicketNotFound)
    ));
    let status = ChangeStatus { status: TicketStatus::Resolved };
    assert!(matches!(
        world.store.change_ticket_status(&other, ticket.id, status).await,
        Err(CrmError::TicketNotFound)
    ));
    let changes = TicketChanges {
        subject: "Mine".into(),
        description: "Mine now".into(),
        priority: TicketPriority::Low,
    };
    assert!(matches!(
        world.store.revise_ticket(&other, ticket.id, changes).await,
        Err(CrmError::TicketNotFound)
    ));
    let theirs = world
        .store
        .tickets(&other, TicketFilter::default(), TicketOrder::CreatedAtDesc, page(1, 20))
        .await
        .unwrap();
    assert_eq!(theirs.total, 0);
    assert_eq!(world.store.ticket(&world.ctx, ticket.id).await.unwrap(), ticket, "untouched");
    assert_eq!(
        world
            .count(&format!(
                "SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = '{}'",
                ticket.id
            ))
            .await,
        1
    );
}

#[tokio::test]
async fn a_new_priority_moves_the_due_times_from_the_creation_time_and_a_closed_ticket_changes_no_more() {
    let world = World::new().await;
    // Monday 10:00 urgent (11:00 / 14:00) lowered to normal: 18:00 and Thursday 10:00.
    let ticket = world.open(TicketPriority::Urgent).await;
    world.clock.set(nov(2, 10, 30));
    let changes = TicketChanges {
        subject: "Invoices: error 500".into(),
        description: "It says 500.".into(),
        priority: TicketPriority::Normal,
    };
    let revised = world.store.revise_ticket(&world.ctx, ticket.id, changes.clone()).await.unwrap();
    assert_eq!((revised.first_response_due, revised.resolution_due), (nov(2, 18, 0), nov(5, 10, 0)));
    assert_eq!((revised.subject.as_str(), revised.priority), ("Invoices: error 500", TicketPriority::Normal));
    assert_eq!(world.store.ticket(&world.ctx, ticket.id).await.unwrap(), revised);
    assert_eq!(world.audited(&world.ctx, "crm.ticket.update").await, 1);
    world.status(&revised, TicketStatus::Resolved).await;
    world.status(&revised, TicketStatus::Closed).await;
    let refused = world.store.revise_ticket(&world.ctx, ticket.id, changes).await;
    assert!(matches!(refused, Err(CrmError::TicketClosed)));
    let comment = NewComment { body: "Hello?".into(), internal: false };
    assert!(matches!(
        world.store.comment_on_ticket(&world.ctx, ticket.id, comment).await,
        Err(CrmError::TicketClosed)
    ));
    assert_eq!(world.audited(&world.ctx, "crm.ticket.update").await, 1);
}

#[tokio::test]
async fn a_deleted_ticket_goes_with_its_comments_audited_and_another_tenant_cannot_delete_it() {
    let world = World::new().await;
    let ticket = world.open(TicketPriority::High).await;
    world.say(&world.ctx, &ticket, "Check the logs", true).await;
    world.say(&world.ctx, &ticket, "We are on it", false).await;
    let comments = format!("SELECT count(*) AS n FROM crm_ticket_comments WHERE ticket_id = '{}'", ticket.id);

    let other = world.other("globex").await;
    assert!(matches!(world.store.delete_ticket(&other, ticket.id).await, Err(CrmError::TicketNotFound)));
    let kept = world.store.ticket(&world.ctx, ticket.id).await.unwrap();
    assert_eq!((kept.id, world.count(&comments).await), (ticket.id, 2), "untouched");
    assert_eq!(world.audited(&other, "crm.ticket.delete").await, 0);

    world.store.delete_ticket(&world.ctx, ticket.id).await.unwrap();
    assert!(matches!(world.store.ticket(&world.ctx, ticket.id).await, Err(CrmError::TicketNotFound)));
    assert_eq!((world.tickets_of(&world.ctx).await, world.count(&comments).await), (0, 0));
    let audited = lines(
        &mut world.conn().await,
        &format!(
            "SELECT concat_ws(' ', action, resource_type, resource_id, changes -> 'subject' ->> 'before') AS line \
             FROM audit_log WHERE tenant_id = '{}' AND action = 'crm.ticket.delete'",
            world.ctx.tenant_id
        ),
    )
    .await;
    assert_eq!(audited, [format!("crm.ticket.delete ticket {} {}", ticket.id, ticket.subject)]);
    assert!(matches!(world.store.delete_ticket(&world.ctx, ticket.id).await, Err(CrmError::TicketNotFound)));
    assert_eq!(world.audited(&world.ctx, "crm.ticket.delete").await, 1, "a refusal leaves no row");
}

#[tokio::test]
async fn a_requesting_contact_deleted_while_its_ticket_opens_is_refused_not_a_fault() {
    let world = World::new().await;
    let contact = world.contact_of(&world.ctx).await;
    let (store, ctx) = (world.store.clone(), world.ctx.clone());
    let opened = crate::crm_activities::racing_a_deletion(
        &world.db.urls.platform,
        &format!("DELETE FROM crm_contacts WHERE id = '{contact}'"),
        async move {
            store
                .open_ticket(&ctx, draft(Requester::Contact { contact_id: contact }, TicketPriority::Low))
                .await
        },
    )
    .await;
    assert_eq!(invalid_fields(opened), ["requester.contactId"]);
    assert_eq!(world.tickets_of(&world.ctx).await, 0);
}
