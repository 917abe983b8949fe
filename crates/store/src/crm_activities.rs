//! Activities (calls, emails, meetings, notes, tasks) logged against the
//! tenant's leads, contacts, companies and deals, tasks done and reopened,
//! and the timeline of a record: its activities merged with its changes
//! from the audit trail (and, once messaging exists, the messages sent to
//! it) by `portico_crm::timeline`.
//!
//! An activity names only records of its own tenant (each link is checked
//! here; the foreign keys back it up), and a task's assignee is a member
//! of the tenant.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Bool, Date, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Activity, ActivityDetail, ActivityDraft, ActivityKind, ActivityLinks, CrmError, RecordChange, RecordRef,
    TimelineEntry, TimelineMessage, complete_task, reopen_task, timeline,
};
use portico_kernel::{
    ActivityId, Actor, AuditEntry, AuditId, CompanyId, ContactId, DealId, LeadId, Page, PageRequest,
    TenantContext, UserId,
};

use crate::crm::{CrmFailure, check_member, enum_of, hold, invalid, text_of};
use crate::error::Failure;
use crate::meters::Counted;
use crate::{Store, audit};

/// Which activities a list shows (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Only those about this lead.
    pub lead_id: Option<LeadId>,
    /// Only those about this contact.
    pub contact_id: Option<ContactId>,
    /// Only those about this company.
    pub company_id: Option<CompanyId>,
    /// Only those about this deal.
    pub deal_id: Option<DealId>,
    /// Only this kind.
    pub kind: Option<ActivityKind>,
    /// Only tasks assigned to this user.
    pub assignee_id: Option<UserId>,
    /// Only tasks not done (`true`) or done (`false`).
    pub open: Option<bool>,
    /// Only tasks due on or after this day.
    pub due_from: Option<NaiveDate>,
    /// Only tasks due on or before this day.
    pub due_to: Option<NaiveDate>,
}

#[derive(QueryableByName)]
struct ActivityRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    lead_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    contact_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    company_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    deal_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Date>)]
    due_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    assignee_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    done_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = SqlUuid)]
    created_by: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

const ACTIVITY_COLUMNS: &str = "id, kind, subject, body, occurred_at, lead_id, contact_id, company_id, deal_id, \
                                due_date, assignee_id, done_at, created_by, created_at, updated_at";

impl ActivityRow {
    fn into_activity(self) -> Result<Activity, CrmFailure> {
        let detail = match (enum_of::<ActivityKind>(&self.kind)?, self.assignee_id) {
            (ActivityKind::Call, _) => ActivityDetail::Call,
            (ActivityKind::Email, _) => ActivityDetail::Email,
            (ActivityKind::Meeting, _) => ActivityDetail::Meeting,
            (ActivityKind::Note, _) => ActivityDetail::Note,
            (ActivityKind::Task, Some(assignee)) => ActivityDetail::Task {
                due_date: self.due_date,
                assignee_id: UserId::from_uuid(assignee),
                done_at: self.done_at,
            },
            (ActivityKind::Task, None) => return Err(crate::crm::corrupt("a task without an assignee")),
        };
        Ok(Activity {
            id: ActivityId::from_uuid(self.id),
            detail,
            subject: self.subject,
            body: self.body,
            occurred_at: self.occurred_at,
            links: ActivityLinks {
                lead_id: self.lead_id.map(LeadId::from_uuid),
                contact_id: self.contact_id.map(ContactId::from_uuid),
                company_id: self.company_id.map(CompanyId::from_uuid),
                deal_id: self.deal_id.map(DealId::from_uuid),
            },
            created_by: UserId::from_uuid(self.created_by),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The person acting: activities are logged by people (an API key or the
/// platform itself has no user to name as their author).
fn acting_user(ctx: &TenantContext) -> Result<UserId, CrmFailure> {
    match ctx.actor {
        Actor::User { user_id, .. } => Ok(user_id),
        _ => Err(invalid(
            "createdBy",
            "activities are logged by a signed-in person, not a key or the platform",
        )),
    }
}

/// The table and stored resource type of a record that has a timeline.
fn record_of(record: RecordRef) -> (&'static str, &'static str, uuid::Uuid) {
    match record {
        RecordRef::Lead(id) => ("crm_leads", "lead", id.into_uuid()),
        RecordRef::Contact(id) => ("crm_contacts", "contact", id.into_uuid()),
        RecordRef::Company(id) => ("crm_companies", "company", id.into_uuid()),
        RecordRef::Deal(id) => ("crm_deals", "deal", id.into_uuid()),
    }
}

/// The activities column that links to `record`.
const fn link_column(record: RecordRef) -> &'static str {
    match record {
        RecordRef::Lead(_) => "lead_id",
        RecordRef::Contact(_) => "contact_id",
        RecordRef::Company(_) => "company_id",
        RecordRef::Deal(_) => "deal_id",
    }
}

/// The error of a record that is not in the tenant.
const fn not_found(record: RecordRef) -> CrmError {
    match record {
        RecordRef::Lead(_) => CrmError::LeadNotFound,
        RecordRef::Contact(_) => CrmError::ContactNotFound,
        RecordRef::Company(_) => CrmError::CompanyNotFound,
        RecordRef::Deal(_) => CrmError::DealNotFound,
    }
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Bool)]
    found: bool,
}

/// Whether `record` is one of the tenant's.
async fn record_exists(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    record: RecordRef,
) -> Result<bool, CrmFailure> {
    let (table, _, id) = record_of(record);
    let row: Found = diesel::sql_query(format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2) AS found"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await?;
    Ok(row.found)
}

/// `link`, unless the activity already has it.
fn new_link<T: PartialEq + Copy>(link: Option<T>, kept: Option<T>) -> Option<T> {
    link.filter(|id| Some(*id) != kept)
}

/// Refuses, naming the field, a link to a record that is not the tenant's,
/// and a task's assignee who is not a member of it.
///
/// Each linked record is held (`crm::hold`) in one order — lead,
/// contact, company, deal — so two transactions holding several never
/// deadlock. A link the activity already has (`kept`, its stored links) is
/// not taken again: its foreign key holds it, and a deletion of its record
/// must update this activity (`SET NULL`), which waits for the activity's
/// lock; taking the record after the activity would be the reverse of a
/// deletion's order.
async fn check_activity(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    activity: &Activity,
    kept: Option<ActivityLinks>,
) -> Result<(), CrmFailure> {
    let (links, kept) = (activity.links, kept.unwrap_or_default());
    let named = [
        new_link(links.lead_id, kept.lead_id).map(|id| ("links.leadId", "lead", RecordRef::Lead(id))),
        new_link(links.contact_id, kept.contact_id)
            .map(|id| ("links.contactId", "contact", RecordRef::Contact(id))),
        new_link(links.company_id, kept.company_id)
            .map(|id| ("links.companyId", "company", RecordRef::Company(id))),
        new_link(links.deal_id, kept.deal_id).map(|id| ("links.dealId", "deal", RecordRef::Deal(id))),
    ];
    for (field, noun, record) in named.into_iter().flatten() {
        let (table, _, id) = record_of(record);
        if !hold(conn, ctx, table, id).await? {
            return Err(invalid(field, &format!("no such {noun} in this tenant")));
        }
    }
    if let ActivityDetail::Task { assignee_id, .. } = activity.detail {
        check_member(conn, ctx, assignee_id, "assigneeId").await?;
    }
    Ok(())
}

async fn load_activity(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: ActivityId,
    lock: bool,
) -> Result<Activity, CrmFailure> {
    let row: Option<ActivityRow> = diesel::sql_query(format!(
        "SELECT {ACTIVITY_COLUMNS} FROM crm_activities WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CrmError::ActivityNotFound))?.into_activity()
}

/// Stores an activity: a new one, or the new state of an existing one.
async fn write_activity(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    activity: &Activity,
    new: bool,
) -> Result<(), CrmFailure> {
    let (due_date, assignee_id, done_at) = match activity.detail {
        ActivityDetail::Task { due_date, assignee_id, done_at } => (due_date, Some(assignee_id), done_at),
        _ => (None, None, None),
    };
    let sql = if new {
        "INSERT INTO crm_activities (tenant_id, id, kind, subject, body, occurred_at, lead_id, contact_id, \
             company_id, deal_id, due_date, assignee_id, done_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    } else {
        "UPDATE crm_activities SET kind = $3, subject = $4, body = $5, occurred_at = $6, lead_id = $7, \
             contact_id = $8, company_id = $9, deal_id = $10, due_date = $11, assignee_id = $12, done_at = $13, \
             updated_at = $16 \
         WHERE tenant_id = $1 AND id = $2 AND created_by = $14 AND created_at = $15"
    };
    let links = activity.links;
    let written = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(activity.id.into_uuid())
        .bind::<Text, _>(text_of(&activity.detail.kind()))
        .bind::<Text, _>(&activity.subject)
        .bind::<Nullable<Text>, _>(activity.body.as_deref())
        .bind::<Timestamptz, _>(activity.occurred_at)
        .bind::<Nullable<SqlUuid>, _>(links.lead_id.map(LeadId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(links.contact_id.map(ContactId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(links.company_id.map(CompanyId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(links.deal_id.map(DealId::into_uuid))
        .bind::<Nullable<Date>, _>(due_date)
        .bind::<Nullable<SqlUuid>, _>(assignee_id.map(UserId::into_uuid))
        .bind::<Nullable<Timestamptz>, _>(done_at)
        .bind::<SqlUuid, _>(activity.created_by.into_uuid())
        .bind::<Timestamptz, _>(activity.created_at)
        .bind::<Timestamptz, _>(activity.updated_at)
        .execute(conn)
        .await?;
    if written == 0 {
        return Err(Failure::Domain(CrmError::ActivityNotFound));
    }
    Ok(())
}

async fn audit_activity(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    action: &'static str,
    id: ActivityId,
    before: Option<&Activity>,
    after: Option<&Activity>,
    now: DateTime<Utc>,
) -> Result<(), CrmFailure> {
    let entry = AuditEntry::between(action, "activity", id, before, after);
    audit::record(conn, ctx.tenant_id, ctx.into(), &entry, now).await?;
    Ok(())
}

/// The `WHERE` of an activity list (parameters `$1` to `$10`).
const ACTIVITY_FILTERS: &str = "tenant_id = $1 AND ($2::uuid IS NULL OR lead_id = $2) \
     AND ($3::uuid IS NULL OR contact_id = $3) AND ($4::uuid IS NULL OR company_id = $4) \
     AND ($5::uuid IS NULL OR deal_id = $5) AND ($6::text IS NULL OR kind = $6) \
     AND ($7::uuid IS NULL OR assignee_id = $7) \
     AND ($8::boolean IS NULL OR (kind = 'task' AND (done_at IS NULL) = $8)) \
     AND ($9::date IS NULL OR due_date >= $9) AND ($10::date IS NULL OR due_date <= $10)";

fn bind_filter<'a>(
    query: BoxedSqlQuery<'a, Pg, SqlQuery>,
    ctx: &TenantContext,
    filter: &ActivityFilter,
) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    query
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Nullable<SqlUuid>, _>(filter.lead_id.map(LeadId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.contact_id.map(ContactId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.company_id.map(CompanyId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.deal_id.map(DealId::into_uuid))
        .bind::<Nullable<Text>, _>(filter.kind.as_ref().map(text_of))
        .bind::<Nullable<SqlUuid>, _>(filter.assignee_id.map(UserId::into_uuid))
        .bind::<Nullable<Bool>, _>(filter.open)
        .bind::<Nullable<Date>, _>(filter.due_from)
        .bind::<Nullable<Date>, _>(filter.due_to)
}

#[derive(QueryableByName)]
struct ChangeRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    actor_type: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    actor_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Jsonb)]
    changes: serde_json::Value,
}

impl ChangeRow {
    fn into_change(self) -> RecordChange {
        RecordChange {
            id: AuditId::from_uuid(self.id),
            at: self.occurred_at,
            action: self.action,
            // An API key's id is not a person's: only a user is named.
            by: (self.actor_type == "user").then_some(self.actor_id).flatten().map(UserId::from_uuid),
            changes: self.changes,
        }
    }
}

/// The newest `newest` activities about `record`, and how many there are in all.
async fn activities_about(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    record: RecordRef,
    newest: i64,
) -> Result<(Vec<Activity>, u64), CrmFailure> {
    let (_, _, id) = record_of(record);
    let column = link_column(record);
    let rows: Vec<ActivityRow> = diesel::sql_query(format!(
        "SELECT {ACTIVITY_COLUMNS} FROM crm_activities WHERE tenant_id = $1 AND {column} = $2 \
         ORDER BY occurred_at DESC, id DESC LIMIT $3"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id)
    .bind::<BigInt, _>(newest)
    .load(conn)
    .await?;
    let total: Counted = diesel::sql_query(format!(
        "SELECT count(*) AS total FROM crm_activities WHERE tenant_id = $1 AND {column} = $2"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await?;
    let activities = rows.into_iter().map(ActivityRow::into_activity).collect::<Result<_, _>>()?;
    Ok((activities, total.count()))
}

/// The newest `newest` changes of `record` in the tenant's audit trail, and how many there are in all.
async fn changes_of(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    record: RecordRef,
    newest: i64,
) -> Result<(Vec<RecordChange>, u64), CrmFailure> {
    let (_, resource, id) = record_of(record);
    let id = id.to_string();
    let rows: Vec<ChangeRow> = diesel::sql_query(
        "SELECT id, occurred_at, action, actor_type, actor_id, changes FROM audit_log \
         WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3 \
         ORDER BY occurred_at DESC, id DESC LIMIT $4",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Text, _>(resource)
    .bind::<Text, _>(&id)
    .bind::<BigInt, _>(newest)
    .load(conn)
    .await?;
    let total: Counted = diesel::sql_query(
        "SELECT count(*) AS total FROM audit_log WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Text, _>(resource)
    .bind::<Text, _>(&id)
    .get_result(conn)
    .await?;
    Ok((rows.into_iter().map(ChangeRow::into_change).collect(), total.count()))
}

/// The newest `newest` messages sent to `record`, and how many there are in
/// all: the timeline's third source, merged like the other two.
///
/// Messaging has no store yet, so no message has ever been sent to any
/// record and this answers none, truthfully. When messaging lands it reads
/// its messages to the record's addresses here, in this transaction.
#[allow(clippy::unused_async)] // reads messaging's tables once there are any
async fn messages_sent_to(
    _conn: &mut AsyncPgConnection,
    _ctx: &TenantContext,
    _record: RecordRef,
    _newest: i64,
) -> Result<(Vec<TimelineMessage>, u64), CrmFailure> {
    Ok((Vec::new(), 0))
}

impl Store {
    /// The tenant's activities matching `filter`, newest first (by when they happened).
    pub async fn activities(
        &self,
        ctx: &TenantContext,
        filter: ActivityFilter,
        page: PageRequest,
    ) -> Result<Page<Activity>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let rows: Vec<ActivityRow> = bind_filter(
                    diesel::sql_query(format!(
                        "SELECT {ACTIVITY_COLUMNS} FROM crm_activities WHERE {ACTIVITY_FILTERS} \
                         ORDER BY occurred_at DESC, id DESC LIMIT $11 OFFSET $12"
                    ))
                    .into_boxed(),
                    &ctx,
                    &filter,
                )
                .bind::<BigInt, _>(i64::from(page.limit()))
                .bind::<BigInt, _>(i64::try_from(page.offset()).unwrap_or(i64::MAX))
                .load(conn)
                .await?;
                let total: Counted = bind_filter(
                    diesel::sql_query(format!(
                        "SELECT count(*) AS total FROM crm_activities WHERE {ACTIVITY_FILTERS}"
                    ))
                    .into_boxed(),
                    &ctx,
                    &filter,
                )
                .get_result(conn)
                .await?;
                let activities =
                    rows.into_iter().map(ActivityRow::into_activity).collect::<Result<_, _>>()?;
                Ok(Page::new(activities, page, total.count()))
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// One activity of the tenant.
    pub async fn activity(&self, ctx: &TenantContext, id: ActivityId) -> Result<Activity, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_activity(conn, &ctx, id, false).await })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Logs an activity by the acting person, about records of the tenant.
    pub async fn log_activity(
        &self,
        ctx: &TenantContext,
        draft: ActivityDraft,
    ) -> Result<Activity, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let activity =
                    draft.validated(ActivityId::new(), acting_user(&ctx)?, now).map_err(Failure::Domain)?;
                check_activity(conn, &ctx, &activity, None).await?;
                write_activity(conn, &ctx, &activity, true).await?;
                audit_activity(conn, &ctx, "crm.activity.create", activity.id, None, Some(&activity), now)
                    .await?;
                Ok(activity)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Replaces an activity with what `draft` describes (a task keeps whether it is done).
    pub async fn revise_activity(
        &self,
        ctx: &TenantContext,
        id: ActivityId,
        draft: ActivityDraft,
    ) -> Result<Activity, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_activity(conn, &ctx, id, true).await?;
                let after = before.revise(draft, now).map_err(Failure::Domain)?;
                check_activity(conn, &ctx, &after, Some(before.links)).await?;
                write_activity(conn, &ctx, &after, false).await?;
                audit_activity(conn, &ctx, "crm.activity.update", id, Some(&before), Some(&after), now)
                    .await?;
                Ok(after)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Deletes an activity.
    pub async fn delete_activity(&self, ctx: &TenantContext, id: ActivityId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_activity(conn, &ctx, id, true).await?;
                diesel::sql_query("DELETE FROM crm_activities WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                audit_activity(conn, &ctx, "crm.activity.delete", id, Some(&before), None, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// Marks a task done now.
    pub async fn complete_task(&self, ctx: &TenantContext, id: ActivityId) -> Result<Activity, CrmError> {
        self.change_activity_task(ctx, id, "crm.activity.complete", complete_task).await
    }

    /// Marks a done task not done.
    pub async fn reopen_task(&self, ctx: &TenantContext, id: ActivityId) -> Result<Activity, CrmError> {
        self.change_activity_task(ctx, id, "crm.activity.reopen", reopen_task).await
    }

    async fn change_activity_task(
        &self,
        ctx: &TenantContext,
        id: ActivityId,
        action: &'static str,
        change: fn(&Activity, DateTime<Utc>) -> Result<Activity, CrmError>,
    ) -> Result<Activity, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_activity(conn, &ctx, id, true).await?;
                let after = change(&before, now).map_err(Failure::Domain)?;
                write_activity(conn, &ctx, &after, false).await?;
                audit_activity(conn, &ctx, action, id, Some(&before), Some(&after), now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }

    /// A page of `record`'s timeline, newest first: its activities, its
    /// changes from the audit trail and the messages sent to it, merged. A
    /// page N of L entries reads the newest N x L of each source.
    pub async fn timeline(
        &self,
        ctx: &TenantContext,
        record: RecordRef,
        page: PageRequest,
    ) -> Result<Page<TimelineEntry>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                if !record_exists(conn, &ctx, record).await? {
                    return Err(Failure::Domain(not_found(record)));
                }
                let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
                let newest = i64::try_from(page.offset() + u64::from(page.limit())).unwrap_or(i64::MAX);
                let (activities, activity_count) = activities_about(conn, &ctx, record, newest).await?;
                let (changes, change_count) = changes_of(conn, &ctx, record, newest).await?;
                let (messages, message_count) = messages_sent_to(conn, &ctx, record, newest).await?;
                let entries: Vec<TimelineEntry> = timeline(&activities, &changes, &messages)
                    .into_iter()
                    .skip(skip)
                    .take(page.limit() as usize)
                    .collect();
                Ok(Page::new(entries, page, activity_count + change_count + message_count))
            })
        })
        .await
        .map_err(|failure| failure.resolve(|_| None))
    }
}
