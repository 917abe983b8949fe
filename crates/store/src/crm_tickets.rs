//! Support tickets: numbered per tenant (1, 2, 3, ... under a per-tenant
//! lock), their comments, assignment and status moves, each decided by the
//! domain's `Ticket` under the tenant's SLA policy (`crm_settings`, or the
//! domain's default when the tenant has set none).
//!
//! A requester is a contact of the tenant or a member of it; an assignee is
//! a member. A comment by the ticket's requesting user is the requester's;
//! any other person's is an agent's, and the requesting user never sees the
//! internal ones. A deleted ticket takes its comments with it (their
//! foreign key cascades), in the one transaction that audits it.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Assign, ChangeStatus, Comment, CommentAuthor, CrmError, NewComment, Requester, SlaPolicy, Ticket,
    TicketChanges, TicketDraft, TicketPriority, TicketStatus,
};
use portico_kernel::{
    Actor, AuditEntry, CommentId, ContactId, Page, PageRequest, TenantContext, TicketId, UserId,
};

use crate::crm::{CrmFailure, check_member, corrupt, enum_of, from_json, hold, invalid, json_of};
use crate::error::Failure;
use crate::meters::Counted;
use crate::{Store, audit};

/// Which tickets a list shows (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Only tickets of this priority.
    pub priority: Option<TicketPriority>,
    /// Only tickets assigned to this user.
    pub assignee_id: Option<UserId>,
    /// Only tickets asked by this contact.
    pub requester_contact_id: Option<ContactId>,
    /// Only tickets that miss a target now (`true`) or miss none (`false`),
    /// as `Ticket::breached` judges them.
    pub breached: Option<bool>,
}

/// The order of a ticket list; each ends on the number, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TicketOrder {
    /// The newest first (`-createdAt`).
    #[default]
    CreatedAtDesc,
    /// The oldest first (`createdAt`).
    CreatedAt,
    /// The soonest first response due time first (`firstResponseDue`).
    FirstResponseDue,
    /// The soonest resolution due time first (`resolutionDue`).
    ResolutionDue,
}

impl TicketOrder {
    const fn order_by(self) -> &'static str {
        match self {
            Self::CreatedAtDesc => "created_at DESC, number DESC",
            Self::CreatedAt => "created_at, number",
            Self::FirstResponseDue => "first_response_due, number",
            Self::ResolutionDue => "resolution_due, number",
        }
    }
}

#[derive(QueryableByName)]
struct TicketRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    number: i64,
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    requester_contact_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    requester_user_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    priority: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    assignee_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Timestamptz)]
    first_response_due: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    resolution_due: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    first_responded_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    closed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    sla_stopped_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

const TICKET_COLUMNS: &str = "id, number, subject, description, requester_contact_id, requester_user_id, \
                              priority, status, assignee_id, first_response_due, resolution_due, \
                              first_responded_at, resolved_at, closed_at, sla_stopped_at, created_at";

impl TicketRow {
    fn into_ticket(self) -> Result<Ticket, CrmFailure> {
        let requester = match (self.requester_contact_id, self.requester_user_id) {
            (Some(contact), None) => Requester::Contact { contact_id: ContactId::from_uuid(contact) },
            (None, Some(user)) => Requester::User { user_id: UserId::from_uuid(user) },
            _ => return Err(corrupt("a ticket with both or neither of a requesting contact and user")),
        };
        Ok(Ticket {
            id: TicketId::from_uuid(self.id),
            number: Some(self.number),
            subject: self.subject,
            description: self.description,
            requester,
            priority: enum_of(&self.priority)?,
            status: enum_of(&self.status)?,
            assignee: self.assignee_id.map(UserId::from_uuid),
            created_at: self.created_at,
            first_response_due: self.first_response_due,
            resolution_due: self.resolution_due,
            first_responded_at: self.first_responded_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            sla_stopped_at: self.sla_stopped_at,
        })
    }
}

#[derive(QueryableByName)]
struct CommentRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    ticket_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    author_user_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Bool)]
    internal: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl CommentRow {
    fn into_comment(self) -> Comment {
        Comment {
            id: CommentId::from_uuid(self.id),
            ticket_id: TicketId::from_uuid(self.ticket_id),
            author: self.author_user_id.map_or(CommentAuthor::Requester, |user| CommentAuthor::Agent {
                user_id: UserId::from_uuid(user),
            }),
            body: self.body,
            internal: self.internal,
            created_at: self.created_at,
        }
    }
}

#[derive(QueryableByName)]
struct StoredPolicy {
    #[diesel(sql_type = Jsonb)]
    sla_policy: serde_json::Value,
}

/// The tenant's SLA policy as stored, if it set one.
async fn stored_policy(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
) -> Result<Option<SlaPolicy>, CrmFailure> {
    let row: Option<StoredPolicy> =
        diesel::sql_query("SELECT sla_policy FROM crm_settings WHERE tenant_id = $1")
            .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
            .get_result(conn)
            .await
            .optional()?;
    row.map(|row| from_json(row.sla_policy)).transpose()
}

/// The tenant's SLA policy: its own, or the domain's default.
async fn policy(conn: &mut AsyncPgConnection, ctx: &TenantContext) -> Result<SlaPolicy, CrmFailure> {
    Ok(stored_policy(conn, ctx).await?.unwrap_or_default())
}

async fn load_ticket(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: TicketId,
    lock: bool,
) -> Result<Ticket, CrmFailure> {
    let row: Option<TicketRow> = diesel::sql_query(format!(
        "SELECT {TICKET_COLUMNS} FROM crm_tickets WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CrmError::TicketNotFound))?.into_ticket()
}

/// Refuses a requester who is neither a contact nor a member of the tenant.
/// A requesting contact is taken `FOR KEY SHARE` to the end of the
/// transaction: a deletion of it waits for the ticket (and then finds it,
/// 409 `crm.contact_has_tickets`), or the ticket waits for the deletion and
/// finds no contact (422), never the foreign key's fault (500).
async fn check_requester(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    requester: Requester,
) -> Result<(), CrmFailure> {
    match requester {
        Requester::Contact { contact_id } => {
            if hold(conn, ctx, "crm_contacts", contact_id.into_uuid()).await? {
                Ok(())
            } else {
                Err(invalid("requester.contactId", "no such contact in this tenant"))
            }
        }
        Requester::User { user_id } => check_member(conn, ctx, user_id, "requester.userId").await,
    }
}

/// The next number of the tenant's tickets. Two tickets opened at once take
/// turns on a lock of the tenant's numbering, held to the end of the
/// transaction, so numbers have no gaps and no duplicates.
async fn next_number(conn: &mut AsyncPgConnection, ctx: &TenantContext) -> Result<i64, CrmFailure> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('crm_tickets.number:' || $1::text, 0))")
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .execute(conn)
        .await?;
    let next: Counted = diesel::sql_query(
        "SELECT coalesce(max(number), 0) + 1 AS total FROM crm_tickets WHERE tenant_id = $1",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .get_result(conn)
    .await?;
    Ok(next.total)
}

async fn insert_ticket(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    ticket: &Ticket,
    number: i64,
) -> Result<(), CrmFailure> {
    let (contact, user) = match ticket.requester {
        Requester::Contact { contact_id } => (Some(contact_id.into_uuid()), None),
        Requester::User { user_id } => (None, Some(user_id.into_uuid())),
    };
    diesel::sql_query(
        "INSERT INTO crm_tickets (tenant_id, id, number, subject, description, requester_contact_id, \
             requester_user_id, priority, status, assignee_id, first_response_due, resolution_due, \
             first_responded_at, resolved_at, closed_at, sla_stopped_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(ticket.id.into_uuid())
    .bind::<BigInt, _>(number)
    .bind::<Text, _>(&ticket.subject)
    .bind::<Text, _>(&ticket.description)
    .bind::<Nullable<SqlUuid>, _>(contact)
    .bind::<Nullable<SqlUuid>, _>(user)
    .bind::<Text, _>(ticket.priority.as_str())
    .bind::<Text, _>(ticket.status.as_str())
    .bind::<Nullable<SqlUuid>, _>(ticket.assignee.map(UserId::into_uuid))
    .bind::<Timestamptz, _>(ticket.first_response_due)
    .bind::<Timestamptz, _>(ticket.resolution_due)
    .bind::<Nullable<Timestamptz>, _>(ticket.first_responded_at)
    .bind::<Nullable<Timestamptz>, _>(ticket.resolved_at)
    .bind::<Nullable<Timestamptz>, _>(ticket.closed_at)
    .bind::<Nullable<Timestamptz>, _>(ticket.sla_stopped_at)
    .bind::<Timestamptz, _>(ticket.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores what a ticket's commands change (its number, requester and creation never change).
async fn update_ticket(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    ticket: &Ticket,
    now: DateTime<Utc>,
) -> Result<(), CrmFailure> {
    let written = diesel::sql_query(
        "UPDATE crm_tickets SET subject = $3, description = $4, priority = $5, status = $6, assignee_id = $7, \
             first_response_due = $8, resolution_due = $9, first_responded_at = $10, resolved_at = $11, \
             closed_at = $12, sla_stopped_at = $13, updated_at = $14 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(ticket.id.into_uuid())
    .bind::<Text, _>(&ticket.subject)
    .bind::<Text, _>(&ticket.description)
    .bind::<Text, _>(ticket.priority.as_str())
    .bind::<Text, _>(ticket.status.as_str())
    .bind::<Nullable<SqlUuid>, _>(ticket.assignee.map(UserId::into_uuid))
    .bind::<Timestamptz, _>(ticket.first_response_due)
    .bind::<Timestamptz, _>(ticket.resolution_due)
    .bind::<Nullable<Timestamptz>, _>(ticket.first_responded_at)
    .bind::<Nullable<Timestamptz>, _>(ticket.resolved_at)
    .bind::<Nullable<Timestamptz>, _>(ticket.closed_at)
    .bind::<Nullable<Timestamptz>, _>(ticket.sla_stopped_at)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    if written == 0 {
        return Err(Failure::Domain(CrmError::TicketNotFound));
    }
    Ok(())
}

async fn audit_ticket(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    entry: &AuditEntry,
    now: DateTime<Utc>,
) -> Result<(), CrmFailure> {
    audit::record(conn, ctx.tenant_id, ctx.into(), entry, now).await?;
    Ok(())
}

/// The person acting, who comments as the requester on their own ticket
/// and as an agent on any other.
fn author_of(ctx: &TenantContext, ticket: &Ticket) -> Result<CommentAuthor, CrmFailure> {
    match (ctx.actor.clone(), ticket.requester) {
        (Actor::User { user_id, .. }, Requester::User { user_id: requester }) if user_id == requester => {
            Ok(CommentAuthor::Requester)
        }
        (Actor::User { user_id, .. }, _) => Ok(CommentAuthor::Agent { user_id }),
        _ => Err(invalid("author", "comments are written by a signed-in person, not a key or the platform")),
    }
}

/// Whether the actor is the ticket's requesting user, who sees no internal comments.
fn is_requester(ctx: &TenantContext, ticket: &Ticket) -> bool {
    matches!(
        (&ctx.actor, ticket.requester),
        (Actor::User { user_id, .. }, Requester::User { user_id: requester }) if *user_id == requester
    )
}

/// The `WHERE` of a ticket list (parameters `$1` to `$7`). `breached` is
/// `Ticket::breached` as of `$7`: a stopped clock is judged as of its stop,
/// and a due instant itself is in time (a store test holds the two together).
const TICKET_FILTERS: &str = "tenant_id = $1 AND ($2::text IS NULL OR status = $2) \
     AND ($3::text IS NULL OR priority = $3) AND ($4::uuid IS NULL OR assignee_id = $4) \
     AND ($5::uuid IS NULL OR requester_contact_id = $5) \
     AND ($6::boolean IS NULL OR $6 = ( \
         coalesce(first_responded_at, sla_stopped_at, $7) > first_response_due \
         OR coalesce(sla_stopped_at, $7) > resolution_due))";

fn bind_filter<'a>(
    query: BoxedSqlQuery<'a, Pg, SqlQuery>,
    ctx: &TenantContext,
    filter: &TicketFilter,
    now: DateTime<Utc>,
) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    query
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Nullable<Text>, _>(filter.status.map(TicketStatus::as_str))
        .bind::<Nullable<Text>, _>(filter.priority.map(TicketPriority::as_str))
        .bind::<Nullable<SqlUuid>, _>(filter.assignee_id.map(UserId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.requester_contact_id.map(ContactId::into_uuid))
        .bind::<Nullable<Bool>, _>(filter.breached)
        .bind::<Timestamptz, _>(now)
}

impl Store {
    /// The tenant's tickets matching `filter`, in `order`.
    pub async fn tickets(
        &self,
        ctx: &TenantContext,
        filter: TicketFilter,
        order: TicketOrder,
        page: PageRequest,
    ) -> Result<Page<Ticket>, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let order_by = order.order_by();
                let rows: Vec<TicketRow> = bind_filter(
                    diesel::sql_query(format!(
                        "SELECT {TICKET_COLUMNS} FROM crm_tickets WHERE {TICKET_FILTERS} \
                         ORDER BY {order_by} LIMIT $8 OFFSET $9"
                    ))
                    .into_boxed(),
                    &ctx,
                    &filter,
                    now,
                )
                .bind::<BigInt, _>(i64::from(page.limit()))
                .bind::<BigInt, _>(i64::try_from(page.offset()).unwrap_or(i64::MAX))
                .load(conn)
                .await?;
                let total: Counted = bind_filter(
                    diesel::sql_query(format!(
                        "SELECT count(*) AS total FROM crm_tickets WHERE {TICKET_FILTERS}"
                    ))
                    .into_boxed(),
                    &ctx,
                    &filter,
                    now,
                )
                .get_result(conn)
                .await?;
                let tickets = rows.into_iter().map(TicketRow::into_ticket).collect::<Result<_, _>>()?;
                Ok(Page::new(tickets, page, total.count()))
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// One ticket of the tenant.
    pub async fn ticket(&self, ctx: &TenantContext, id: TicketId) -> Result<Ticket, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_ticket(conn, &ctx, id, false).await })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Opens a ticket, numbered next in the tenant, due by the tenant's SLA policy.
    pub async fn open_ticket(&self, ctx: &TenantContext, draft: TicketDraft) -> Result<Ticket, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let policy = policy(conn, &ctx).await?;
                let mut ticket = draft.validated(TicketId::new(), now, &policy).map_err(Failure::Domain)?;
                check_requester(conn, &ctx, ticket.requester).await?;
                if let Some(assignee) = ticket.assignee {
                    check_member(conn, &ctx, assignee, "assignee").await?;
                }
                let number = next_number(conn, &ctx).await?;
                ticket.number = Some(number);
                insert_ticket(conn, &ctx, &ticket, number).await?;
                let entry =
                    AuditEntry::between("crm.ticket.create", "ticket", ticket.id, None, Some(&ticket));
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(ticket)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Changes a ticket's subject, description and priority (a new priority moves its due times).
    pub async fn revise_ticket(
        &self,
        ctx: &TenantContext,
        id: TicketId,
        changes: TicketChanges,
    ) -> Result<Ticket, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_ticket(conn, &ctx, id, true).await?;
                let policy = policy(conn, &ctx).await?;
                let after = before.revise(changes, &policy).map_err(Failure::Domain)?;
                update_ticket(conn, &ctx, &after, now).await?;
                let entry =
                    AuditEntry::between("crm.ticket.update", "ticket", id, Some(&before), Some(&after));
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Hands a ticket to a member of the tenant, or to nobody.
    pub async fn assign_ticket(
        &self,
        ctx: &TenantContext,
        id: TicketId,
        command: Assign,
    ) -> Result<Ticket, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_ticket(conn, &ctx, id, true).await?;
                let after = before.assign(command).map_err(Failure::Domain)?;
                if let Some(assignee) = after.assignee {
                    check_member(conn, &ctx, assignee, "assignee").await?;
                }
                update_ticket(conn, &ctx, &after, now).await?;
                let entry =
                    AuditEntry::between("crm.ticket.assign", "ticket", id, Some(&before), Some(&after));
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Moves a ticket to another status; pending and resolved stop its clocks, open starts them again.
    pub async fn change_ticket_status(
        &self,
        ctx: &TenantContext,
        id: TicketId,
        command: ChangeStatus,
    ) -> Result<Ticket, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_ticket(conn, &ctx, id, true).await?;
                let policy = policy(conn, &ctx).await?;
                let after = before.change_status(command, now, &policy).map_err(Failure::Domain)?;
                update_ticket(conn, &ctx, &after, now).await?;
                let entry =
                    AuditEntry::between("crm.ticket.status", "ticket", id, Some(&before), Some(&after));
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Deletes a ticket and, by their foreign key, its comments, in one
    /// transaction; the audit row keeps the ticket as it was.
    pub async fn delete_ticket(&self, ctx: &TenantContext, id: TicketId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_ticket(conn, &ctx, id, true).await?;
                diesel::sql_query("DELETE FROM crm_tickets WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry = AuditEntry::between("crm.ticket.delete", "ticket", id, Some(&before), None);
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Comments on a ticket as the acting person: as its requester on their
    /// own ticket, as an agent on any other (an agent's first public comment
    /// is the first response).
    pub async fn comment_on_ticket(
        &self,
        ctx: &TenantContext,
        id: TicketId,
        command: NewComment,
    ) -> Result<Comment, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_ticket(conn, &ctx, id, true).await?;
                let policy = policy(conn, &ctx).await?;
                let author = author_of(&ctx, &before)?;
                let (after, comment) =
                    before.comment(command, CommentId::new(), author, now, &policy).map_err(Failure::Domain)?;
                let author_user = match comment.author {
                    CommentAuthor::Agent { user_id } => Some(user_id.into_uuid()),
                    CommentAuthor::Requester => None,
                };
                diesel::sql_query(
                    "INSERT INTO crm_ticket_comments (tenant_id, id, ticket_id, author_user_id, body, internal, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(comment.id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Nullable<SqlUuid>, _>(author_user)
                .bind::<Text, _>(&comment.body)
                .bind::<Bool, _>(comment.internal)
                .bind::<Timestamptz, _>(comment.created_at)
                .execute(conn)
                .await?;
                update_ticket(conn, &ctx, &after, now).await?;
                let mut entry = AuditEntry::between("crm.ticket.comment", "ticket", id, Some(&before), Some(&after));
                if let serde_json::Value::Object(changes) = &mut entry.changes {
                    // Which comment, and whether it was internal; its text stays with the ticket.
                    changes.insert(
                        "comment".to_owned(),
                        serde_json::json!({"before": null, "after": {"id": comment.id, "internal": comment.internal}}),
                    );
                }
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(comment)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// A ticket's comments, oldest first; its requesting user sees only the public ones.
    pub async fn ticket_comments(
        &self,
        ctx: &TenantContext,
        id: TicketId,
        page: PageRequest,
    ) -> Result<Page<Comment>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let ticket = load_ticket(conn, &ctx, id, false).await?;
                // `visible_to_requester`, as a condition, so that pages count only what is shown.
                let all = !is_requester(&ctx, &ticket);
                let filters = "tenant_id = $1 AND ticket_id = $2 AND ($3 OR NOT internal)";
                let rows: Vec<CommentRow> = diesel::sql_query(format!(
                    "SELECT id, ticket_id, author_user_id, body, internal, created_at FROM crm_ticket_comments \
                     WHERE {filters} ORDER BY created_at, id LIMIT $4 OFFSET $5"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Bool, _>(all)
                .bind::<BigInt, _>(i64::from(page.limit()))
                .bind::<BigInt, _>(i64::try_from(page.offset()).unwrap_or(i64::MAX))
                .load(conn)
                .await?;
                let total: Counted =
                    diesel::sql_query(format!("SELECT count(*) AS total FROM crm_ticket_comments WHERE {filters}"))
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<SqlUuid, _>(id.into_uuid())
                        .bind::<Bool, _>(all)
                        .get_result(conn)
                        .await?;
                Ok(Page::new(rows.into_iter().map(CommentRow::into_comment).collect(), page, total.count()))
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// The tenant's SLA policy: its own, or the default when it has set none.
    pub async fn sla_policy(&self, ctx: &TenantContext) -> Result<SlaPolicy, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| Box::pin(async move { policy(conn, &ctx).await }))
            .await
            .map_err(|failure| failure.resolve(|_| None))
    }

    /// Sets the tenant's SLA policy, for tickets opened (and clocks resumed) from now on.
    pub async fn set_sla_policy(
        &self,
        ctx: &TenantContext,
        policy: SlaPolicy,
    ) -> Result<SlaPolicy, CrmError> {
        let policy = policy.validated()?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = stored_policy(conn, &ctx).await?;
                diesel::sql_query(
                    "INSERT INTO crm_settings (tenant_id, sla_policy, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO UPDATE SET sla_policy = EXCLUDED.sla_policy, updated_at = EXCLUDED.updated_at",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Jsonb, _>(json_of(&policy)?)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry = AuditEntry::between(
                    "crm.ticket.sla_policy.update",
                    "sla_policy",
                    ctx.tenant_id,
                    Some(&before.unwrap_or_default()),
                    Some(&policy),
                );
                audit_ticket(conn, &ctx, &entry, now).await?;
                Ok(policy)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }
}
