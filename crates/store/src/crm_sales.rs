//! CRM sales: leads and their conversion, pipelines and their stages,
//! deals and their moves (with their stage history), and the CRM analytics.
//!
//! Reads never write: a tenant has no pipeline until one is created
//! (`create_pipeline` without stages gives the domain's default sales
//! stages), and deals and conversions name their pipeline. A deal's
//! creation or move holds its pipeline `FOR SHARE` (a stage's removal and a
//! pipeline's deletion hold it `FOR UPDATE`), always before the deal, and
//! the contact and company it names `FOR KEY SHARE`, so no removal slips
//! between the check and the write. Deleting a lead or a deal deletes the
//! activities about it alone first (an activity always names a record).
//!
//! Search over leads reads `crm_search_terms` (kind `lead`, kept by a
//! trigger): every word of the query must be the prefix of one of the
//! lead's words.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{
    Array, BigInt, Date, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Company, CompanyStep, Contact, ContactStep, ConversionIds, ConvertLead, CrmAnalytics, CrmError, Deal,
    DealChanges, DealDraft, DealStatus, Lead, LeadDraft, LeadSource, LeadState, LeadStatus, MoveDeal,
    NewStage, Pipeline, PipelineDraft, RenamePipeline, ReorderStages, Stage, StageChange, StageChanges,
    StageKind, StageTotals, average_days_of, company_domain, conversion_rates, move_deal,
    normalise_company_name, plan_conversion, relocate, summarise_pipeline, win_rate_of,
};
use portico_kernel::{
    Actor, AuditEntry, CompanyId, ContactId, Currency, DealId, LeadId, Money, Page, PageRequest, PipelineId,
    StageId, TenantContext, UserId,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::crm::{
    CrmFailure, calling_code, check_member, companies_matching, contacts_with_keys, corrupt,
    delete_sole_activities, enum_of, hold, insert_company, insert_contact, invalid, load_company,
    load_contact, text_of, update_contact, with_activities_deleted,
};
use crate::error::{Failure, is_unique_violation};
use crate::meters::{Counted, bounds};
use crate::{Store, audit};

fn resolve(failure: CrmFailure) -> CrmError {
    failure.resolve(|error| {
        is_unique_violation(error, "crm_pipelines_name_key").then_some(CrmError::PipelineNameTaken)
    })
}

/// The user acting, for owners and stage moves, which name a person. An
/// API key acts for nobody: it must name the owner itself (refused naming
/// `field` otherwise) and cannot move deals or convert leads.
fn caller(ctx: &TenantContext, field: &str) -> Result<UserId, CrmFailure> {
    match ctx.actor {
        Actor::User { user_id, .. } => Ok(user_id),
        _ => Err(invalid(field, "only a signed-in user can do this: an API key acts for no user")),
    }
}

/// A sum read back as text (SQL sums of `bigint` are `numeric`).
fn minor_of(text: &str) -> Result<i64, CrmFailure> {
    text.parse::<i64>().map_err(|_| Failure::Domain(CrmError::TotalOutOfRange))
}

/// A body's reference to a contact: 422 naming `field` when not the tenant's.
async fn check_contact(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: ContactId,
    field: &str,
) -> Result<Contact, CrmFailure> {
    match load_contact(conn, ctx, id, false).await {
        Err(Failure::Domain(CrmError::ContactNotFound)) => {
            Err(invalid(field, "no such contact in this tenant"))
        }
        other => other,
    }
}

/// A body's reference to a company: 422 naming `field` when not the tenant's.
async fn check_company(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: CompanyId,
    field: &str,
) -> Result<Company, CrmFailure> {
    match load_company(conn, ctx, id, false).await {
        Err(Failure::Domain(CrmError::CompanyNotFound)) => {
            Err(invalid(field, "no such company in this tenant"))
        }
        other => other,
    }
}

// ------------------------------------------------------------------- leads

/// A stored lead.
#[derive(QueryableByName)]
pub(crate) struct LeadRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    company_name: Option<String>,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    estimated_amount: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    estimated_currency: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Array<Text>)]
    tags: Vec<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    contact_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    company_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    deal_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    converted_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

/// The columns [`LeadRow`] reads (unqualified: select from `crm_leads`).
pub(crate) const LEAD_COLUMNS: &str = "id, name, email, phone, company_name, source, status, estimated_amount, \
                                       estimated_currency, owner_id, tags, contact_id, company_id, deal_id, \
                                       converted_at, created_at, updated_at";

impl LeadRow {
    pub(crate) fn into_lead(self) -> Result<Lead, CrmFailure> {
        let status: LeadStatus = enum_of(&self.status)?;
        let state = match status {
            LeadStatus::New => LeadState::New,
            LeadStatus::Contacted => LeadState::Contacted,
            LeadStatus::Qualified => LeadState::Qualified,
            LeadStatus::Unqualified => LeadState::Unqualified,
            LeadStatus::Converted => LeadState::Converted {
                contact_id: self.contact_id.map(ContactId::from_uuid),
                company_id: self.company_id.map(CompanyId::from_uuid),
                deal_id: self.deal_id.map(DealId::from_uuid),
                converted_at: self
                    .converted_at
                    .ok_or_else(|| corrupt("a converted lead without its time"))?,
            },
        };
        let estimated_value = match (self.estimated_amount, self.estimated_currency) {
            (Some(amount), Some(code)) => {
                Some(Money::from_minor(amount, Currency::parse(&code).map_err(corrupt)?))
            }
            _ => None,
        };
        Ok(Lead {
            id: LeadId::from_uuid(self.id),
            name: self.name,
            email: self.email,
            phone: self.phone,
            company_name: self.company_name,
            source: enum_of(&self.source)?,
            state,
            estimated_value,
            owner_id: self.owner_id.map(UserId::from_uuid),
            tags: self.tags,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// What a lead's state stores beside its status.
fn conversion_columns(
    lead: &Lead,
) -> (Option<uuid::Uuid>, Option<uuid::Uuid>, Option<uuid::Uuid>, Option<DateTime<Utc>>) {
    match lead.state {
        LeadState::Converted { contact_id, company_id, deal_id, converted_at } => (
            contact_id.map(ContactId::into_uuid),
            company_id.map(CompanyId::into_uuid),
            deal_id.map(DealId::into_uuid),
            Some(converted_at),
        ),
        _ => (None, None, None, None),
    }
}

/// Stores a new lead.
pub(crate) async fn insert_lead(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    lead: &Lead,
) -> Result<(), CrmFailure> {
    write_lead(conn, ctx, lead, true).await
}

/// Stores a lead's new state (every column but its id and creation time).
pub(crate) async fn save_lead(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    lead: &Lead,
) -> Result<(), CrmFailure> {
    write_lead(conn, ctx, lead, false).await
}

async fn write_lead(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    lead: &Lead,
    new: bool,
) -> Result<(), CrmFailure> {
    let sql = if new {
        "INSERT INTO crm_leads (tenant_id, id, name, email, phone, company_name, source, status, \
             estimated_amount, estimated_currency, owner_id, tags, contact_id, company_id, deal_id, converted_at, \
             created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    } else {
        "UPDATE crm_leads SET name = $3, email = $4, phone = $5, company_name = $6, source = $7, status = $8, \
             estimated_amount = $9, estimated_currency = $10, owner_id = $11, tags = $12, contact_id = $13, \
             company_id = $14, deal_id = $15, converted_at = $16, updated_at = $18 \
         WHERE tenant_id = $1 AND id = $2 AND $17::timestamptz IS NOT NULL"
    };
    let (contact_id, company_id, deal_id, converted_at) = conversion_columns(lead);
    let written = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(lead.id.into_uuid())
        .bind::<Text, _>(&lead.name)
        .bind::<Nullable<Text>, _>(lead.email.as_deref())
        .bind::<Nullable<Text>, _>(lead.phone.as_deref())
        .bind::<Nullable<Text>, _>(lead.company_name.as_deref())
        .bind::<Text, _>(text_of(&lead.source))
        .bind::<Text, _>(lead.status().as_str())
        .bind::<Nullable<BigInt>, _>(lead.estimated_value.map(|m| m.amount_minor()))
        .bind::<Nullable<Text>, _>(lead.estimated_value.map(|m| m.currency().code().to_owned()))
        .bind::<Nullable<SqlUuid>, _>(lead.owner_id.map(UserId::into_uuid))
        .bind::<Array<Text>, _>(&lead.tags)
        .bind::<Nullable<SqlUuid>, _>(contact_id)
        .bind::<Nullable<SqlUuid>, _>(company_id)
        .bind::<Nullable<SqlUuid>, _>(deal_id)
        .bind::<Nullable<Timestamptz>, _>(converted_at)
        .bind::<Timestamptz, _>(lead.created_at)
        .bind::<Timestamptz, _>(lead.updated_at)
        .execute(conn)
        .await?;
    if written == 0 {
        return Err(Failure::Domain(CrmError::LeadNotFound));
    }
    Ok(())
}

/// One lead of the tenant (locked for update with `lock`).
pub(crate) async fn load_lead(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: LeadId,
    lock: bool,
) -> Result<Lead, CrmFailure> {
    let row: Option<LeadRow> = diesel::sql_query(format!(
        "SELECT {LEAD_COLUMNS} FROM crm_leads WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CrmError::LeadNotFound))?.into_lead()
}

/// Which leads to list, and in which order.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    /// Only leads with this status.
    pub status: Option<LeadStatus>,
    /// Only leads this user owns.
    pub owner_id: Option<UserId>,
    /// Only leads with this tag.
    pub tag: Option<String>,
    /// Only leads from this source.
    pub source: Option<LeadSource>,
    /// Only leads created at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Only leads created before this instant.
    pub created_to: Option<DateTime<Utc>>,
    /// Only leads with a word starting with each word of this text (name, email, company name).
    pub q: Option<String>,
    /// The order (default: newest first).
    pub sort: LeadSort,
}

/// The orders of a lead list; each ends on the id, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LeadSort {
    /// Oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Newest first.
    #[default]
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    /// By name, A to Z (case-insensitive).
    #[serde(rename = "name")]
    Name,
    /// By name, Z to A.
    #[serde(rename = "-name")]
    NameDesc,
}

impl LeadSort {
    const fn order_by(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at, id",
            Self::CreatedAtDesc => "created_at DESC, id DESC",
            Self::Name => "lower(name), id",
            Self::NameDesc => "lower(name) DESC, id DESC",
        }
    }
}

/// The lead list's conditions ($1 to $8). A search word matches the
/// prefix of a stored word: a range over the "C"-collated btree.
const LEAD_FILTERS: &str = "tenant_id = $1 AND ($2::text IS NULL OR status = $2) \
    AND ($3::uuid IS NULL OR owner_id = $3) AND ($4::text IS NULL OR $4 = ANY(tags)) \
    AND ($5::text IS NULL OR source = $5) AND ($6::timestamptz IS NULL OR created_at >= $6) \
    AND ($7::timestamptz IS NULL OR created_at < $7) \
    AND ($8::text IS NULL OR cardinality(crm_words($8)) = 0 OR id IN ( \
        SELECT t.record_id FROM unnest(crm_words($8)) AS w(word) \
        JOIN crm_search_terms t ON t.tenant_id = $1 AND t.kind = 'lead' \
            AND t.term >= (w.word COLLATE \"C\") AND t.term < ((w.word || chr(1114111)) COLLATE \"C\") \
        GROUP BY t.record_id HAVING count(DISTINCT w.word) = cardinality(crm_words($8))))";

fn bind_lead_filter<'f>(
    query: BoxedSqlQuery<'f, Pg, SqlQuery>,
    ctx: &TenantContext,
    filter: &LeadFilter,
) -> BoxedSqlQuery<'f, Pg, SqlQuery> {
    query
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Nullable<Text>, _>(filter.status.map(|s| s.as_str().to_owned()))
        .bind::<Nullable<SqlUuid>, _>(filter.owner_id.map(UserId::into_uuid))
        .bind::<Nullable<Text>, _>(filter.tag.clone())
        .bind::<Nullable<Text>, _>(filter.source.as_ref().map(text_of))
        .bind::<Nullable<Timestamptz>, _>(filter.created_from)
        .bind::<Nullable<Timestamptz>, _>(filter.created_to)
        .bind::<Nullable<Text>, _>(filter.q.clone())
}

/// What a conversion made or linked, as it now stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "lead": {"id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f26", "name": "Sam Taylor", "email": "sam@acme.example",
             "phone": "+49301234567", "companyName": "Acme GmbH", "source": "website", "status": "converted",
             "contactId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f30", "companyId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f40",
             "dealId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f20", "convertedAt": "2026-03-05T10:00:00Z",
             "estimatedValue": {"amountMinor": 1200000, "currency": "EUR"},
             "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["trade-fair-2026"],
             "createdAt": "2026-03-02T09:00:00Z", "updatedAt": "2026-03-05T10:00:00Z"},
    "contact": {"id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f30", "firstName": null, "lastName": null,
                "displayName": "Sam Taylor", "contactType": "prospect", "status": "active",
                "emails": [{"address": "sam@acme.example", "label": "work", "primary": true}],
                "phones": [{"number": "+49301234567", "label": "work", "primary": true}],
                "companyId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f40",
                "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["trade-fair-2026"],
                "createdAt": "2026-03-05T10:00:00Z", "updatedAt": "2026-03-05T10:00:00Z"},
    "contactCreated": true,
    "company": {"id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f40", "name": "Acme GmbH", "domain": "acme.example",
                "industry": null, "size": null, "address": null,
                "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": [],
                "createdAt": "2026-03-05T10:00:00Z", "updatedAt": "2026-03-05T10:00:00Z"},
    "companyCreated": true,
    "deal": {"id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f20", "title": "Acme: 40 flats",
             "value": {"amountMinor": 1200000, "currency": "EUR"},
             "pipelineId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f27", "stageId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f28",
             "probabilityOverride": null, "expectedCloseDate": null,
             "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "contactId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f30",
             "companyId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f40", "status": "open",
             "createdAt": "2026-03-05T10:00:00Z", "updatedAt": "2026-03-05T10:00:00Z"}
})))]
#[serde(rename_all = "camelCase")]
pub struct LeadConversion {
    /// The lead, converted.
    pub lead: Lead,
    /// The contact made from it, or the existing one it was linked to.
    pub contact: Contact,
    /// Whether the contact was made (`false`: an existing contact, matched by email or named).
    pub contact_created: bool,
    /// The company made from it or linked (none when the lead names no company and none matched).
    pub company: Option<Company>,
    /// Whether the company was made.
    pub company_created: bool,
    /// The deal made, when one was asked for.
    pub deal: Option<Deal>,
}

// --------------------------------------------------------------- pipelines

#[derive(QueryableByName)]
struct PipelineRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct StageRow {
    #[diesel(sql_type = SqlUuid)]
    pipeline_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = SmallInt)]
    probability: i16,
    #[diesel(sql_type = Text)]
    kind: String,
}

impl StageRow {
    fn into_stage(self) -> Result<Stage, CrmFailure> {
        Ok(Stage {
            id: StageId::from_uuid(self.id),
            name: self.name,
            position: u32::try_from(self.position).map_err(corrupt)?,
            probability: u8::try_from(self.probability).map_err(corrupt)?,
            kind: enum_of(&self.kind)?,
        })
    }
}

/// How a read pipeline row is locked until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Not at all.
    No,
    /// `FOR SHARE`: its stages stay as read (a deal is created or moved into one of them).
    Share,
    /// `FOR UPDATE`: the pipeline or its stages change.
    Update,
}

impl Lock {
    const fn clause(self) -> &'static str {
        match self {
            Self::No => "",
            Self::Share => " FOR SHARE",
            Self::Update => " FOR UPDATE",
        }
    }
}

/// The tenant's pipelines (all, or the one `only`), oldest first, each with its stages in order.
async fn read_pipelines(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    only: Option<PipelineId>,
    lock: Lock,
) -> Result<Vec<Pipeline>, CrmFailure> {
    let tenant = ctx.tenant_id.into_uuid();
    let only = only.map(PipelineId::into_uuid);
    let rows: Vec<PipelineRow> = diesel::sql_query(format!(
        "SELECT id, name, created_at, updated_at FROM crm_pipelines \
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id = $2) ORDER BY created_at, id{}",
        lock.clause()
    ))
    .bind::<SqlUuid, _>(tenant)
    .bind::<Nullable<SqlUuid>, _>(only)
    .load(conn)
    .await?;
    let stages: Vec<StageRow> = diesel::sql_query(
        "SELECT pipeline_id, id, name, position, probability, kind FROM crm_stages \
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR pipeline_id = $2) ORDER BY pipeline_id, position, id",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<Nullable<SqlUuid>, _>(only)
    .load(conn)
    .await?;
    let mut pipelines: Vec<Pipeline> = rows
        .into_iter()
        .map(|row| Pipeline {
            id: PipelineId::from_uuid(row.id),
            name: row.name,
            stages: Vec::new(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect();
    for row in stages {
        let pipeline_id = PipelineId::from_uuid(row.pipeline_id);
        if let Some(pipeline) = pipelines.iter_mut().find(|p| p.id == pipeline_id) {
            pipeline.stages.push(row.into_stage()?);
        }
    }
    Ok(pipelines)
}

/// One pipeline of the tenant with its stages (its row locked as `lock` says).
async fn load_pipeline(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: PipelineId,
    lock: Lock,
) -> Result<Pipeline, CrmFailure> {
    read_pipelines(conn, ctx, Some(id), lock).await?.pop().ok_or(Failure::Domain(CrmError::PipelineNotFound))
}

async fn insert_pipeline(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    pipeline: &Pipeline,
) -> Result<(), CrmFailure> {
    diesel::sql_query(
        "INSERT INTO crm_pipelines (tenant_id, id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(pipeline.id.into_uuid())
    .bind::<Text, _>(&pipeline.name)
    .bind::<Timestamptz, _>(pipeline.created_at)
    .bind::<Timestamptz, _>(pipeline.updated_at)
    .execute(conn)
    .await?;
    write_stages(conn, ctx, pipeline).await
}

/// Stores a pipeline's new state: its name, and its stages as they now are
/// (new ones added, changed ones rewritten, removed ones deleted).
async fn save_pipeline(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    pipeline: &Pipeline,
) -> Result<(), CrmFailure> {
    diesel::sql_query("UPDATE crm_pipelines SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(pipeline.id.into_uuid())
        .bind::<Text, _>(&pipeline.name)
        .bind::<Timestamptz, _>(pipeline.updated_at)
        .execute(conn)
        .await?;
    let kept: Vec<uuid::Uuid> = pipeline.stages.iter().map(|stage| stage.id.into_uuid()).collect();
    diesel::sql_query(
        "DELETE FROM crm_stages WHERE tenant_id = $1 AND pipeline_id = $2 AND NOT (id = ANY($3))",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(pipeline.id.into_uuid())
    .bind::<Array<SqlUuid>, _>(&kept)
    .execute(conn)
    .await?;
    write_stages(conn, ctx, pipeline).await
}

async fn write_stages(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    pipeline: &Pipeline,
) -> Result<(), CrmFailure> {
    for stage in &pipeline.stages {
        diesel::sql_query(
            "INSERT INTO crm_stages (tenant_id, pipeline_id, id, name, position, probability, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, position = EXCLUDED.position, \
                 probability = EXCLUDED.probability, kind = EXCLUDED.kind \
             WHERE crm_stages.pipeline_id = EXCLUDED.pipeline_id",
        )
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(pipeline.id.into_uuid())
        .bind::<SqlUuid, _>(stage.id.into_uuid())
        .bind::<Text, _>(&stage.name)
        .bind::<Integer, _>(i32::try_from(stage.position).map_err(corrupt)?)
        .bind::<SmallInt, _>(i16::from(stage.probability))
        .bind::<Text, _>(text_of(&stage.kind))
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// How many deals a pipeline holds (in one stage with `stage`).
async fn deals_in(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    pipeline: PipelineId,
    stage: Option<StageId>,
) -> Result<u64, CrmFailure> {
    let counted: Counted = diesel::sql_query(
        "SELECT count(*) AS total FROM crm_deals \
         WHERE tenant_id = $1 AND pipeline_id = $2 AND ($3::uuid IS NULL OR stage_id = $3)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(pipeline.into_uuid())
    .bind::<Nullable<SqlUuid>, _>(stage.map(StageId::into_uuid))
    .get_result(conn)
    .await?;
    Ok(counted.count())
}

// ------------------------------------------------------------------- deals

#[derive(QueryableByName)]
struct DealRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = SqlUuid)]
    pipeline_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    stage_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SmallInt>)]
    probability_override: Option<i16>,
    #[diesel(sql_type = Nullable<Date>)]
    expected_close_date: Option<NaiveDate>,
    #[diesel(sql_type = SqlUuid)]
    owner_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    contact_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    company_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    closed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    close_reason: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

const DEAL_COLUMNS: &str = "id, title, amount, currency, pipeline_id, stage_id, probability_override, \
                            expected_close_date, owner_id, contact_id, company_id, status, closed_at, close_reason, \
                            created_at, updated_at";

impl DealRow {
    fn into_deal(self) -> Result<Deal, CrmFailure> {
        let status = match (self.status.as_str(), self.closed_at, self.close_reason) {
            ("open", None, _) => DealStatus::Open,
            ("won", Some(closed_at), reason) => DealStatus::Won { closed_at, reason },
            ("lost", Some(closed_at), Some(reason)) => DealStatus::Lost { closed_at, reason },
            (other, ..) => return Err(corrupt(format!("deal status {other}"))),
        };
        Ok(Deal {
            id: DealId::from_uuid(self.id),
            title: self.title,
            value: Money::from_minor(self.amount, Currency::parse(&self.currency).map_err(corrupt)?),
            pipeline_id: PipelineId::from_uuid(self.pipeline_id),
            stage_id: StageId::from_uuid(self.stage_id),
            probability_override: self.probability_override.map(u8::try_from).transpose().map_err(corrupt)?,
            expected_close_date: self.expected_close_date,
            owner_id: UserId::from_uuid(self.owner_id),
            contact_id: self.contact_id.map(ContactId::from_uuid),
            company_id: self.company_id.map(CompanyId::from_uuid),
            status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

async fn load_deal(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: DealId,
    lock: bool,
) -> Result<Deal, CrmFailure> {
    let row: Option<DealRow> = diesel::sql_query(format!(
        "SELECT {DEAL_COLUMNS} FROM crm_deals WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CrmError::DealNotFound))?.into_deal()
}

async fn insert_deal(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    deal: &Deal,
) -> Result<(), CrmFailure> {
    write_deal(conn, ctx, deal, true).await
}

async fn save_deal(conn: &mut AsyncPgConnection, ctx: &TenantContext, deal: &Deal) -> Result<(), CrmFailure> {
    write_deal(conn, ctx, deal, false).await
}

async fn write_deal(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    deal: &Deal,
    new: bool,
) -> Result<(), CrmFailure> {
    let sql = if new {
        "INSERT INTO crm_deals (tenant_id, id, title, amount, currency, pipeline_id, stage_id, probability_override, \
             expected_close_date, owner_id, contact_id, company_id, status, closed_at, close_reason, created_at, \
             updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    } else {
        "UPDATE crm_deals SET title = $3, amount = $4, currency = $5, pipeline_id = $6, stage_id = $7, \
             probability_override = $8, expected_close_date = $9, owner_id = $10, contact_id = $11, \
             company_id = $12, status = $13, closed_at = $14, close_reason = $15, updated_at = $17 \
         WHERE tenant_id = $1 AND id = $2 AND $16::timestamptz IS NOT NULL"
    };
    let (status, closed_at, reason) = match &deal.status {
        DealStatus::Open => ("open", None, None),
        DealStatus::Won { closed_at, reason } => ("won", Some(*closed_at), reason.clone()),
        DealStatus::Lost { closed_at, reason } => ("lost", Some(*closed_at), Some(reason.clone())),
    };
    let written = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(deal.id.into_uuid())
        .bind::<Text, _>(&deal.title)
        .bind::<BigInt, _>(deal.value.amount_minor())
        .bind::<Text, _>(deal.value.currency().code())
        .bind::<SqlUuid, _>(deal.pipeline_id.into_uuid())
        .bind::<SqlUuid, _>(deal.stage_id.into_uuid())
        .bind::<Nullable<SmallInt>, _>(deal.probability_override.map(i16::from))
        .bind::<Nullable<Date>, _>(deal.expected_close_date)
        .bind::<SqlUuid, _>(deal.owner_id.into_uuid())
        .bind::<Nullable<SqlUuid>, _>(deal.contact_id.map(ContactId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(deal.company_id.map(CompanyId::into_uuid))
        .bind::<Text, _>(status)
        .bind::<Nullable<Timestamptz>, _>(closed_at)
        .bind::<Nullable<Text>, _>(reason)
        .bind::<Timestamptz, _>(deal.created_at)
        .bind::<Timestamptz, _>(deal.updated_at)
        .execute(conn)
        .await?;
    if written == 0 {
        return Err(Failure::Domain(CrmError::DealNotFound));
    }
    Ok(())
}

async fn insert_stage_change(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    change: &StageChange,
) -> Result<(), CrmFailure> {
    diesel::sql_query(
        "INSERT INTO crm_deal_stage_changes (tenant_id, id, deal_id, from_pipeline_id, from_stage_id, \
             to_pipeline_id, to_stage_id, at, by_user, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
    .bind::<SqlUuid, _>(change.deal_id.into_uuid())
    .bind::<SqlUuid, _>(change.from_pipeline_id.into_uuid())
    .bind::<SqlUuid, _>(change.from_stage_id.into_uuid())
    .bind::<SqlUuid, _>(change.to_pipeline_id.into_uuid())
    .bind::<SqlUuid, _>(change.to_stage_id.into_uuid())
    .bind::<Timestamptz, _>(change.at)
    .bind::<SqlUuid, _>(change.by.into_uuid())
    .bind::<Nullable<Text>, _>(change.reason.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct StageChangeRow {
    #[diesel(sql_type = SqlUuid)]
    deal_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    from_pipeline_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    from_stage_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    to_pipeline_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    to_stage_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = SqlUuid)]
    by_user: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
}

impl StageChangeRow {
    fn into_change(self) -> StageChange {
        StageChange {
            deal_id: DealId::from_uuid(self.deal_id),
            from_pipeline_id: PipelineId::from_uuid(self.from_pipeline_id),
            from_stage_id: StageId::from_uuid(self.from_stage_id),
            to_pipeline_id: PipelineId::from_uuid(self.to_pipeline_id),
            to_stage_id: StageId::from_uuid(self.to_stage_id),
            at: self.at,
            by: UserId::from_uuid(self.by_user),
            reason: self.reason,
        }
    }
}

/// Which deals to list, and in which order.
#[derive(Debug, Clone, Default)]
pub struct DealFilter {
    /// Only the deals on this pipeline.
    pub pipeline_id: Option<PipelineId>,
    /// Only the deals in this stage.
    pub stage_id: Option<StageId>,
    /// Only open, won or lost deals.
    pub status: Option<StageKind>,
    /// Only the deals this user owns.
    pub owner_id: Option<UserId>,
    /// Only the deals with this contact.
    pub contact_id: Option<ContactId>,
    /// Only the deals with this company.
    pub company_id: Option<CompanyId>,
    /// Only the deals expected to close on or after this day.
    pub close_from: Option<NaiveDate>,
    /// Only the deals expected to close on or before this day.
    pub close_to: Option<NaiveDate>,
    /// Only the deals created at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Only the deals created before this instant.
    pub created_to: Option<DateTime<Utc>>,
    /// The order (default: newest first).
    pub sort: DealSort,
}

/// The orders of a deal list; each ends on the id, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DealSort {
    /// Oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Newest first.
    #[default]
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    /// Smallest value first (in minor units, whatever the currency).
    #[serde(rename = "value")]
    Value,
    /// Largest value first.
    #[serde(rename = "-value")]
    ValueDesc,
    /// Soonest expected close first; deals without a date last.
    #[serde(rename = "expectedCloseDate")]
    ExpectedCloseDate,
}

impl DealSort {
    const fn order_by(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at, id",
            Self::CreatedAtDesc => "created_at DESC, id DESC",
            Self::Value => "amount, id",
            Self::ValueDesc => "amount DESC, id DESC",
            Self::ExpectedCloseDate => "expected_close_date NULLS LAST, id",
        }
    }
}

const DEAL_FILTERS: &str = "tenant_id = $1 AND ($2::uuid IS NULL OR pipeline_id = $2) \
    AND ($3::uuid IS NULL OR stage_id = $3) AND ($4::text IS NULL OR status = $4) \
    AND ($5::uuid IS NULL OR owner_id = $5) AND ($6::uuid IS NULL OR contact_id = $6) \
    AND ($7::uuid IS NULL OR company_id = $7) AND ($8::date IS NULL OR expected_close_date >= $8) \
    AND ($9::date IS NULL OR expected_close_date <= $9) AND ($10::timestamptz IS NULL OR created_at >= $10) \
    AND ($11::timestamptz IS NULL OR created_at < $11)";

fn bind_deal_filter<'f>(
    query: BoxedSqlQuery<'f, Pg, SqlQuery>,
    ctx: &TenantContext,
    filter: &DealFilter,
) -> BoxedSqlQuery<'f, Pg, SqlQuery> {
    query
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Nullable<SqlUuid>, _>(filter.pipeline_id.map(PipelineId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.stage_id.map(StageId::into_uuid))
        .bind::<Nullable<Text>, _>(filter.status.as_ref().map(text_of))
        .bind::<Nullable<SqlUuid>, _>(filter.owner_id.map(UserId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.contact_id.map(ContactId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(filter.company_id.map(CompanyId::into_uuid))
        .bind::<Nullable<Date>, _>(filter.close_from)
        .bind::<Nullable<Date>, _>(filter.close_to)
        .bind::<Nullable<Timestamptz>, _>(filter.created_from)
        .bind::<Nullable<Timestamptz>, _>(filter.created_to)
}

/// A new or changed deal's references: contact and company must be the
/// tenant's (and are held until the write is done), a named owner a member
/// of it.
async fn check_deal_references(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    deal: &Deal,
    before: Option<&Deal>,
    owner_named: bool,
) -> Result<(), CrmFailure> {
    if let Some(contact) = deal.contact_id
        && before.and_then(|b| b.contact_id) != Some(contact)
        && !hold(conn, ctx, "crm_contacts", contact.into_uuid()).await?
    {
        return Err(invalid("contactId", "no such contact in this tenant"));
    }
    if let Some(company) = deal.company_id
        && before.and_then(|b| b.company_id) != Some(company)
        && !hold(conn, ctx, "crm_companies", company.into_uuid()).await?
    {
        return Err(invalid("companyId", "no such company in this tenant"));
    }
    if owner_named && before.map(|b| b.owner_id) != Some(deal.owner_id) {
        check_member(conn, ctx, deal.owner_id, "ownerId").await?;
    }
    Ok(())
}

// --------------------------------------------------------------- analytics

#[derive(QueryableByName)]
struct StageTotalRow {
    #[diesel(sql_type = SqlUuid)]
    stage_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    deals: i64,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Text)]
    weighted: String,
}

#[derive(QueryableByName)]
struct DealCounts {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    won: i64,
    #[diesel(sql_type = BigInt)]
    lost: i64,
    #[diesel(sql_type = Text)]
    won_seconds: String,
}

#[derive(QueryableByName)]
struct LeadCounts {
    #[diesel(sql_type = BigInt)]
    total: i64,
    /// Leads whose conversion made a deal (on the pipeline asked for, if one was).
    #[diesel(sql_type = BigInt)]
    with_deal: i64,
}

#[derive(QueryableByName)]
struct TenantCurrency {
    #[diesel(sql_type = Nullable<Text>)]
    currency: Option<String>,
}

/// Each deal's weighted value (its probability: 100 won, 0 lost, else its
/// override or its stage's), rounded half to even to the minor unit as
/// `weighted_value` does, added up per stage and currency.
const STAGE_TOTALS: &str = "SELECT stage_id, currency, count(*) AS deals, sum(amount)::text AS value, \
        sum(CASE WHEN abs(w - trunc(w)) = 0.5 THEN 2 * round(w / 2) ELSE round(w) END)::text AS weighted \
    FROM (SELECT d.stage_id, d.currency, d.amount, \
              d.amount::numeric * (CASE d.status WHEN 'won' THEN 100 WHEN 'lost' THEN 0 \
                  ELSE coalesce(d.probability_override, s.probability) END) / 100 AS w \
          FROM crm_deals d JOIN crm_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id \
          WHERE d.tenant_id = $1 AND s.tenant_id = $1 AND d.pipeline_id = $2) AS weighted \
    GROUP BY stage_id, currency";

// ------------------------------------------------------------- use cases

impl Store {
    /// A page of the tenant's leads.
    pub async fn leads(
        &self,
        ctx: &TenantContext,
        filter: LeadFilter,
        page: PageRequest,
    ) -> Result<Page<Lead>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (limit, offset) = bounds(page);
                let sql = format!(
                    "SELECT {LEAD_COLUMNS} FROM crm_leads WHERE {LEAD_FILTERS} ORDER BY {} LIMIT $9 OFFSET $10",
                    filter.sort.order_by()
                );
                let rows: Vec<LeadRow> = bind_lead_filter(diesel::sql_query(sql).into_boxed(), &ctx, &filter)
                    .bind::<BigInt, _>(limit)
                    .bind::<BigInt, _>(offset)
                    .load(conn)
                    .await?;
                let count = format!("SELECT count(*) AS total FROM crm_leads WHERE {LEAD_FILTERS}");
                let total: Counted =
                    bind_lead_filter(diesel::sql_query(count).into_boxed(), &ctx, &filter).get_result(conn).await?;
                let leads = rows.into_iter().map(LeadRow::into_lead).collect::<Result<_, _>>()?;
                Ok(Page::new(leads, page, total.count()))
            })
        })
        .await
        .map_err(resolve)
    }

    /// One lead of the tenant.
    pub async fn lead(&self, ctx: &TenantContext, id: LeadId) -> Result<Lead, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_lead(conn, &ctx, id, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// Creates a lead (status `new`); a named owner must be a member.
    pub async fn create_lead(&self, ctx: &TenantContext, draft: LeadDraft) -> Result<Lead, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let code = calling_code(conn, &ctx).await?;
                let lead = draft.validated(LeadId::new(), code, now).map_err(Failure::Domain)?;
                if let Some(owner) = lead.owner_id {
                    check_member(conn, &ctx, owner, "ownerId").await?;
                }
                insert_lead(conn, &ctx, &lead).await?;
                let entry = AuditEntry::between("crm.lead.create", "lead", lead.id, None, Some(&lead));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(lead)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Replaces a lead's details (not its status); a converted lead changes no more.
    pub async fn update_lead(
        &self,
        ctx: &TenantContext,
        id: LeadId,
        draft: LeadDraft,
    ) -> Result<Lead, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_lead(conn, &ctx, id, true).await?;
                let code = calling_code(conn, &ctx).await?;
                let lead = draft.apply(&before, code, now).map_err(Failure::Domain)?;
                if let Some(owner) = lead.owner_id
                    && before.owner_id != Some(owner)
                {
                    check_member(conn, &ctx, owner, "ownerId").await?;
                }
                save_lead(conn, &ctx, &lead).await?;
                let entry = AuditEntry::between("crm.lead.update", "lead", id, Some(&before), Some(&lead));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(lead)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Moves a lead through its statuses (not to `converted`: that is [`Store::convert_lead`]).
    pub async fn change_lead_status(
        &self,
        ctx: &TenantContext,
        id: LeadId,
        to: LeadStatus,
    ) -> Result<Lead, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_lead(conn, &ctx, id, true).await?;
                let lead = before.change_status(to, now).map_err(Failure::Domain)?;
                if lead == before {
                    return Ok(lead);
                }
                save_lead(conn, &ctx, &lead).await?;
                let entry = AuditEntry::between("crm.lead.status", "lead", id, Some(&before), Some(&lead));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(lead)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a lead with the activities about it alone; an activity that
    /// also names another record stays, no longer linked to the lead.
    pub async fn delete_lead(&self, ctx: &TenantContext, id: LeadId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_lead(conn, &ctx, id, true).await?;
                let activities = delete_sole_activities(conn, &ctx, "lead_id", id.into_uuid()).await?;
                diesel::sql_query("DELETE FROM crm_leads WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry = with_activities_deleted(
                    AuditEntry::between("crm.lead.delete", "lead", id, Some(&before), None),
                    activities,
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Converts a qualified lead in one transaction: the lead is locked (so
    /// of two conversions racing, the second finds it converted), its
    /// contact and company are matched (by email, by the email's domain or
    /// the company's name) or made, a deal made if asked, and the lead
    /// marked converted.
    pub async fn convert_lead(
        &self,
        ctx: &TenantContext,
        id: LeadId,
        command: ConvertLead,
    ) -> Result<LeadConversion, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let by = caller(&ctx, "actor")?;
                let lead = load_lead(conn, &ctx, id, true).await?;
                if lead.status() == LeadStatus::Converted {
                    return Err(Failure::Domain(CrmError::LeadConverted));
                }
                let emails: Vec<String> = lead.email.iter().cloned().collect();
                let mut contacts = contacts_with_keys(conn, &ctx, &emails, &[]).await?;
                if let Some(named) = command.contact_id
                    && !contacts.iter().any(|c| c.id == named)
                {
                    contacts.push(check_contact(conn, &ctx, named, "contactId").await?);
                }
                let domain = lead.email.as_deref().and_then(company_domain);
                let name_key = lead.company_name.as_deref().and_then(normalise_company_name);
                let mut companies =
                    companies_matching(conn, &ctx, domain.as_deref(), name_key.as_deref()).await?;
                if let Some(named) = command.company_id
                    && !companies.iter().any(|c| c.id == named)
                {
                    companies.push(check_company(conn, &ctx, named, "companyId").await?);
                }
                let pipeline = match &command.deal {
                    Some(asked) => match load_pipeline(conn, &ctx, asked.pipeline_id, Lock::Share).await {
                        Err(Failure::Domain(CrmError::PipelineNotFound)) => {
                            return Err(invalid("deal.pipelineId", "no such pipeline in this tenant"));
                        }
                        other => Some(other?),
                    },
                    None => None,
                };
                let ids = ConversionIds {
                    contact_id: ContactId::new(),
                    company_id: CompanyId::new(),
                    deal_id: DealId::new(),
                };
                let plan =
                    plan_conversion(&lead, &contacts, &companies, &command, pipeline.as_ref(), by, ids, now)
                        .map_err(Failure::Domain)?;
                let code = calling_code(conn, &ctx).await?;

                // One audit row for the one act: the lead's change names the contact, company
                // and deal it was converted into.
                let company_created = matches!(plan.company, Some(CompanyStep::Create(_)));
                if let Some(CompanyStep::Create(company)) = &plan.company {
                    insert_company(conn, &ctx, company).await?;
                }
                let contact_created = matches!(plan.contact, ContactStep::Create(_));
                match &plan.contact {
                    ContactStep::Create(contact) => insert_contact(conn, &ctx, contact, code).await?,
                    ContactStep::Link { contact_id, set_company: Some(company) } => {
                        let before = load_contact(conn, &ctx, *contact_id, true).await?;
                        let after = Contact { company_id: Some(*company), updated_at: now, ..before };
                        update_contact(conn, &ctx, &after, code).await?;
                    }
                    ContactStep::Link { set_company: None, .. } => {}
                }
                if let Some(deal) = &plan.deal {
                    insert_deal(conn, &ctx, deal).await?;
                }
                save_lead(conn, &ctx, &plan.lead).await?;
                let entry =
                    AuditEntry::between("crm.lead.convert", "lead", id, Some(&lead), Some(&plan.lead));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;

                let contact = load_contact(conn, &ctx, plan.contact_id(), false).await?;
                let company = match plan.company_id() {
                    Some(company) => Some(load_company(conn, &ctx, company, false).await?),
                    None => None,
                };
                Ok(LeadConversion {
                    lead: plan.lead,
                    contact,
                    contact_created,
                    company,
                    company_created,
                    deal: plan.deal,
                })
            })
        })
        .await
        .map_err(resolve)
    }

    /// The tenant's pipelines, oldest first (none before one is created: a read writes nothing).
    pub async fn pipelines(&self, ctx: &TenantContext) -> Result<Vec<Pipeline>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { read_pipelines(conn, &ctx, None, Lock::No).await })
        })
        .await
        .map_err(resolve)
    }

    /// One pipeline of the tenant with its stages.
    pub async fn pipeline(&self, ctx: &TenantContext, id: PipelineId) -> Result<Pipeline, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_pipeline(conn, &ctx, id, Lock::No).await })
        })
        .await
        .map_err(resolve)
    }

    /// Creates a pipeline (with the default sales stages unless it lists its own).
    pub async fn create_pipeline(
        &self,
        ctx: &TenantContext,
        draft: PipelineDraft,
    ) -> Result<Pipeline, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let pipeline = draft.validated(PipelineId::new(), now)?;
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                insert_pipeline(conn, &ctx, &pipeline).await?;
                let entry = AuditEntry::between(
                    "crm.pipeline.create",
                    "pipeline",
                    pipeline.id,
                    None,
                    Some(&pipeline),
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(pipeline)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Renames a pipeline.
    pub async fn rename_pipeline(
        &self,
        ctx: &TenantContext,
        id: PipelineId,
        command: RenamePipeline,
    ) -> Result<Pipeline, CrmError> {
        self.change_pipeline(ctx, id, "crm.pipeline.update", move |pipeline, now| {
            pipeline.rename(command, now)
        })
        .await
    }

    /// Adds an open stage to a pipeline.
    pub async fn add_stage(
        &self,
        ctx: &TenantContext,
        id: PipelineId,
        command: NewStage,
    ) -> Result<Pipeline, CrmError> {
        let stage = StageId::new();
        self.change_pipeline(ctx, id, "crm.stage.create", move |pipeline, now| {
            pipeline.add_stage(stage, command, now)
        })
        .await
    }

    /// Renames a stage or changes its default probability.
    pub async fn update_stage(
        &self,
        ctx: &TenantContext,
        id: PipelineId,
        stage: StageId,
        command: StageChanges,
    ) -> Result<Pipeline, CrmError> {
        self.change_pipeline(ctx, id, "crm.stage.update", move |pipeline, now| {
            pipeline.update_stage(stage, command, now)
        })
        .await
    }

    /// Puts a pipeline's stages in a new order (open stages first).
    pub async fn reorder_stages(
        &self,
        ctx: &TenantContext,
        id: PipelineId,
        command: ReorderStages,
    ) -> Result<Pipeline, CrmError> {
        self.change_pipeline(ctx, id, "crm.stage.reorder", move |pipeline, now| {
            pipeline.reorder(command, now)
        })
        .await
    }

    /// One change of a pipeline, decided by the domain under the pipeline's lock.
    async fn change_pipeline(
        &self,
        ctx: &TenantContext,
        id: PipelineId,
        action: &'static str,
        change: impl FnOnce(&Pipeline, DateTime<Utc>) -> Result<Pipeline, CrmError> + Send + 'static,
    ) -> Result<Pipeline, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_pipeline(conn, &ctx, id, Lock::Update).await?;
                let after = change(&before, now).map_err(Failure::Domain)?;
                save_pipeline(conn, &ctx, &after).await?;
                let entry = AuditEntry::between(action, "pipeline", id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Removes an open stage. Its deals, if any, move to `move_deals_to`
    /// (an open stage of the same pipeline), each move recorded as theirs,
    /// by the caller; without a target a stage with deals stays.
    pub async fn remove_stage(
        &self,
        ctx: &TenantContext,
        id: PipelineId,
        stage: StageId,
        move_deals_to: Option<StageId>,
    ) -> Result<Pipeline, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_pipeline(conn, &ctx, id, Lock::Update).await?;
                if before.stage(stage).is_none() {
                    return Err(Failure::Domain(CrmError::StageNotFound(stage)));
                }
                let deals = deals_in(conn, &ctx, id, Some(stage)).await?;
                let removal =
                    before.remove_stage(stage, move_deals_to, deals, now).map_err(Failure::Domain)?;
                if removal.move_deals_to.is_some() {
                    let by = caller(&ctx, "actor")?;
                    let rows: Vec<DealRow> = diesel::sql_query(format!(
                        "SELECT {DEAL_COLUMNS} FROM crm_deals \
                         WHERE tenant_id = $1 AND pipeline_id = $2 AND stage_id = $3 ORDER BY id FOR UPDATE"
                    ))
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .bind::<SqlUuid, _>(stage.into_uuid())
                    .load(conn)
                    .await?;
                    for row in rows {
                        let deal = row.into_deal()?;
                        if let Some((moved, change)) = relocate(&deal, &removal, by, now) {
                            save_deal(conn, &ctx, &moved).await?;
                            insert_stage_change(conn, &ctx, &change).await?;
                        }
                    }
                }
                save_pipeline(conn, &ctx, &removal.pipeline).await?;
                let entry = AuditEntry::between(
                    "crm.stage.delete",
                    "pipeline",
                    id,
                    Some(&before),
                    Some(&removal.pipeline),
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(removal.pipeline)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a pipeline that holds no deals (its stages go with it).
    pub async fn delete_pipeline(&self, ctx: &TenantContext, id: PipelineId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_pipeline(conn, &ctx, id, Lock::Update).await?;
                let deals = deals_in(conn, &ctx, id, None).await?;
                if deals > 0 {
                    return Err(Failure::Domain(CrmError::PipelineHasDeals { deals }));
                }
                diesel::sql_query("DELETE FROM crm_pipelines WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry = AuditEntry::between("crm.pipeline.delete", "pipeline", id, Some(&before), None);
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// A page of the tenant's deals.
    pub async fn deals(
        &self,
        ctx: &TenantContext,
        filter: DealFilter,
        page: PageRequest,
    ) -> Result<Page<Deal>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (limit, offset) = bounds(page);
                let sql = format!(
                    "SELECT {DEAL_COLUMNS} FROM crm_deals WHERE {DEAL_FILTERS} ORDER BY {} LIMIT $12 OFFSET $13",
                    filter.sort.order_by()
                );
                let rows: Vec<DealRow> = bind_deal_filter(diesel::sql_query(sql).into_boxed(), &ctx, &filter)
                    .bind::<BigInt, _>(limit)
                    .bind::<BigInt, _>(offset)
                    .load(conn)
                    .await?;
                let count = format!("SELECT count(*) AS total FROM crm_deals WHERE {DEAL_FILTERS}");
                let total: Counted =
                    bind_deal_filter(diesel::sql_query(count).into_boxed(), &ctx, &filter).get_result(conn).await?;
                let deals = rows.into_iter().map(DealRow::into_deal).collect::<Result<_, _>>()?;
                Ok(Page::new(deals, page, total.count()))
            })
        })
        .await
        .map_err(resolve)
    }

    /// One deal of the tenant.
    pub async fn deal(&self, ctx: &TenantContext, id: DealId) -> Result<Deal, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_deal(conn, &ctx, id, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// A deal's moves between stages, oldest first.
    pub async fn deal_history(&self, ctx: &TenantContext, id: DealId) -> Result<Vec<StageChange>, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                load_deal(conn, &ctx, id, false).await?;
                let rows: Vec<StageChangeRow> = diesel::sql_query(
                    "SELECT deal_id, from_pipeline_id, from_stage_id, to_pipeline_id, to_stage_id, at, by_user, reason \
                     FROM crm_deal_stage_changes WHERE tenant_id = $1 AND deal_id = $2 ORDER BY at, id",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .load(conn)
                .await?;
                Ok(rows.into_iter().map(StageChangeRow::into_change).collect())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Creates a deal on one of the tenant's pipelines (in its first open
    /// stage unless one is named), owned by the caller unless it names a member.
    pub async fn create_deal(&self, ctx: &TenantContext, draft: DealDraft) -> Result<Deal, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let owner_named = draft.owner_id.is_some();
                let creator = match draft.owner_id {
                    Some(owner) => owner,
                    None => caller(&ctx, "ownerId")?,
                };
                // The pipeline first, held FOR SHARE: its stages cannot go before the deal is in.
                let pipeline = match load_pipeline(conn, &ctx, draft.pipeline_id, Lock::Share).await {
                    Err(Failure::Domain(CrmError::PipelineNotFound)) => {
                        return Err(invalid("pipelineId", "no such pipeline in this tenant"));
                    }
                    other => other?,
                };
                let deal =
                    draft.validated(DealId::new(), &pipeline, creator, now).map_err(Failure::Domain)?;
                check_deal_references(conn, &ctx, &deal, None, owner_named).await?;
                insert_deal(conn, &ctx, &deal).await?;
                let entry = AuditEntry::between("crm.deal.create", "deal", deal.id, None, Some(&deal));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(deal)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Revises a deal's details (not its stage: that is [`Store::move_deal`]).
    pub async fn update_deal(
        &self,
        ctx: &TenantContext,
        id: DealId,
        changes: DealChanges,
    ) -> Result<Deal, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_deal(conn, &ctx, id, true).await?;
                let deal = before.revise(changes, now).map_err(Failure::Domain)?;
                check_deal_references(conn, &ctx, &deal, Some(&before), true).await?;
                save_deal(conn, &ctx, &deal).await?;
                let entry = AuditEntry::between("crm.deal.update", "deal", id, Some(&before), Some(&deal));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(deal)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a deal with its stage history and the activities about it
    /// alone; an activity that also names another record stays, no longer
    /// linked to the deal.
    pub async fn delete_deal(&self, ctx: &TenantContext, id: DealId) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_deal(conn, &ctx, id, true).await?;
                let activities = delete_sole_activities(conn, &ctx, "deal_id", id.into_uuid()).await?;
                diesel::sql_query("DELETE FROM crm_deals WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry = with_activities_deleted(
                    AuditEntry::between("crm.deal.delete", "deal", id, Some(&before), None),
                    activities,
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Moves a deal to another stage (of its pipeline, or of the pipeline
    /// named), recording the move; a won or lost stage closes it.
    pub async fn move_deal(
        &self,
        ctx: &TenantContext,
        id: DealId,
        command: MoveDeal,
    ) -> Result<Deal, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let by = caller(&ctx, "actor")?;
                // The target pipeline is locked before the deal, as a stage's removal locks
                // its pipeline before the stage's deals: the two queue, never deadlock. (A
                // deal moved to another pipeline meanwhile is refused by the domain: its
                // stage is not in the pipeline read.)
                let seen = load_deal(conn, &ctx, id, false).await?;
                let target = command.pipeline_id.unwrap_or(seen.pipeline_id);
                let pipeline = match load_pipeline(conn, &ctx, target, Lock::Share).await {
                    Err(Failure::Domain(CrmError::PipelineNotFound)) => {
                        return Err(invalid("pipelineId", "no such pipeline in this tenant"));
                    }
                    other => other?,
                };
                let before = load_deal(conn, &ctx, id, true).await?;
                let (deal, change) =
                    move_deal(&before, &pipeline, command, by, now).map_err(Failure::Domain)?;
                save_deal(conn, &ctx, &deal).await?;
                insert_stage_change(conn, &ctx, &change).await?;
                let entry = AuditEntry::between("crm.deal.move", "deal", id, Some(&before), Some(&deal));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(deal)
            })
        })
        .await
        .map_err(resolve)
    }

    /// The sales figures of one pipeline or all of them, in `currency` (by
    /// default the tenant's): added up in SQL per stage and currency.
    pub async fn crm_analytics(
        &self,
        ctx: &TenantContext,
        pipeline: Option<PipelineId>,
        currency: Option<Currency>,
    ) -> Result<CrmAnalytics, CrmError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id.into_uuid();
                let currency = match currency {
                    Some(currency) => currency,
                    None => {
                        let row: Option<TenantCurrency> = diesel::sql_query(
                            "SELECT settings ->> 'currency' AS currency FROM tenant_settings WHERE tenant_id = $1",
                        )
                        .bind::<SqlUuid, _>(tenant)
                        .get_result(conn)
                        .await
                        .optional()?;
                        let code = row.and_then(|row| row.currency).unwrap_or_else(|| "EUR".to_owned());
                        Currency::parse(&code).map_err(corrupt)?
                    }
                };
                let pipelines = match pipeline {
                    Some(id) => vec![load_pipeline(conn, &ctx, id, Lock::No).await?],
                    // None yet: no summaries (a read makes no pipeline).
                    None => read_pipelines(conn, &ctx, None, Lock::No).await?,
                };
                let mut summaries = Vec::with_capacity(pipelines.len());
                for pipeline in &pipelines {
                    let rows: Vec<StageTotalRow> = diesel::sql_query(STAGE_TOTALS)
                        .bind::<SqlUuid, _>(tenant)
                        .bind::<SqlUuid, _>(pipeline.id.into_uuid())
                        .load(conn)
                        .await?;
                    let mut totals = Vec::with_capacity(rows.len());
                    for row in rows {
                        let code = Currency::parse(&row.currency).map_err(corrupt)?;
                        totals.push(StageTotals {
                            stage_id: StageId::from_uuid(row.stage_id),
                            deals: u64::try_from(row.deals).unwrap_or_default(),
                            value: Money::from_minor(minor_of(&row.value)?, code),
                            weighted_value: Money::from_minor(minor_of(&row.weighted)?, code),
                        });
                    }
                    summaries.push(summarise_pipeline(pipeline, &totals, currency).map_err(Failure::Domain)?);
                }
                let deals: DealCounts = diesel::sql_query(
                    "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'won') AS won, \
                         count(*) FILTER (WHERE status = 'lost') AS lost, \
                         coalesce(sum(greatest(floor(extract(epoch FROM closed_at - created_at)), 0)) \
                             FILTER (WHERE status = 'won'), 0)::text AS won_seconds \
                     FROM crm_deals WHERE tenant_id = $1 AND ($2::uuid IS NULL OR pipeline_id = $2)",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Nullable<SqlUuid>, _>(pipeline.map(PipelineId::into_uuid))
                .get_result(conn)
                .await?;
                // Every lead counts in the first step; a lead became a deal when its conversion
                // made one (that still exists), on the pipeline asked for if one was.
                let leads: LeadCounts = diesel::sql_query(
                    "SELECT count(*) AS total, \
                         count(*) FILTER (WHERE l.deal_id IS NOT NULL AND ($2::uuid IS NULL OR d.pipeline_id = $2)) \
                             AS with_deal \
                     FROM crm_leads l LEFT JOIN crm_deals d ON d.tenant_id = l.tenant_id AND d.id = l.deal_id \
                     WHERE l.tenant_id = $1",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Nullable<SqlUuid>, _>(pipeline.map(PipelineId::into_uuid))
                .get_result(conn)
                .await?;
                let count = |n: i64| u64::try_from(n).unwrap_or_default();
                let won_seconds: Decimal = deals.won_seconds.parse().map_err(corrupt)?;
                Ok(CrmAnalytics {
                    pipelines: summaries,
                    win_rate: win_rate_of(count(deals.won), count(deals.lost)),
                    average_days_to_close: average_days_of(won_seconds, count(deals.won)),
                    conversion: conversion_rates(
                        count(leads.total),
                        count(leads.with_deal),
                        count(deals.total),
                        count(deals.won),
                    ),
                })
            })
        })
        .await
        .map_err(resolve)
    }
}
