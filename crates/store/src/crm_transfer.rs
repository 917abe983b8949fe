//! CRM transfers: contacts and leads imported from CSV files (read and
//! decided by `portico_crm`'s transfer module, written here in one
//! transaction with one audit row) and read out in batches for the export.
//!
//! An import matches its rows against the tenant's records before it
//! writes: contacts by their normalised emails and phones (through
//! `crm_contact_keys`), leads by their normalised email (without one: by
//! name and phone, or with neither by name and company name), companies by
//! domain or normalised name, owners by their email among the tenant's
//! members.
//! Imports of one tenant run one after the other (a transaction-scoped
//! advisory lock), so two files sent at once cannot both create the same
//! person.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Company, Contact, ContactExportFilter, ContactImportRow, CrmError, ImportSummary, Known, Lead,
    LeadExportFilter, LeadImportRow, contact_lookups, lead_lookups, plan_contact_import, plan_lead_import,
};
use portico_kernel::{AuditEntry, CompanyId, ContactId, LeadId, TenantContext, UserId};

use crate::crm::{
    COMPANY_COLUMNS, CONTACT_COLUMNS, CompanyRow, ContactRow, CrmFailure, calling_code, contact_keys,
    contacts_with_keys, json_of, text_of,
};
use crate::crm_sales::{LEAD_COLUMNS, LeadRow, insert_lead};
use crate::error::Failure;
use crate::{Store, audit};

/// Values looked up per statement while matching an import.
const LOOKUP_BATCH: usize = 1_000;
/// Contacts an import inserts per statement.
const INSERT_BATCH: usize = 1_000;

/// A contact as the export writes it: with its company's name and its owner's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedContact {
    /// The contact.
    pub contact: Contact,
    /// The name of its company, if linked.
    pub company_name: Option<String>,
    /// The email of its owner, if it has one who is a member.
    pub owner_email: Option<String>,
}

/// A lead as the export writes it: with its owner's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedLead {
    /// The lead.
    pub lead: Lead,
    /// The email of its owner, if it has one who is a member.
    pub owner_email: Option<String>,
}

fn resolve(failure: CrmFailure) -> CrmError {
    failure.resolve(|_| None)
}

fn refused(report: portico_kernel::csv::ImportReport) -> CrmFailure {
    Failure::Domain(CrmError::ImportRefused(report))
}

/// Waits for any other import of the tenant to commit.
async fn one_import_at_a_time(conn: &mut AsyncPgConnection, ctx: &TenantContext) -> Result<(), CrmFailure> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('crm.import:' || $1::text, 0))")
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct MemberEmail {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = SqlUuid)]
    user_id: uuid::Uuid,
}

/// The tenant's members (not suspended) with these emails, by email.
async fn members_by_email(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    emails: &[String],
) -> Result<Vec<(String, UserId)>, CrmFailure> {
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<MemberEmail> = diesel::sql_query(
        "SELECT u.email, m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND m.status <> 'suspended' AND lower(u.email) = ANY($2)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Array<Text>, _>(emails)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.email.to_lowercase(), UserId::from_uuid(row.user_id))).collect())
}

/// The tenant's companies with one of these domains or normalised names.
async fn companies_named(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    domains: &[String],
    names: &[String],
) -> Result<Vec<Company>, CrmFailure> {
    if domains.is_empty() && names.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<CompanyRow> = diesel::sql_query(format!(
        "SELECT {COMPANY_COLUMNS} FROM crm_companies \
         WHERE tenant_id = $1 AND (domain = ANY($2) OR name_key = ANY($3)) ORDER BY created_at, id"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Array<Text>, _>(domains)
    .bind::<Array<Text>, _>(names)
    .load(conn)
    .await?;
    rows.into_iter().map(CompanyRow::into_company).collect()
}

/// The tenant's leads an import of leads may match (`lead_lookups`): with
/// one of these normalised emails; without an email, with one of these
/// phones; with neither, with one of these names (trimmed, spaces
/// collapsed, lower-cased). The plan compares them exactly.
async fn leads_matching(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    emails: &[String],
    phones: &[String],
    names: &[String],
) -> Result<Vec<Lead>, CrmFailure> {
    let queries = [
        ("email = ANY($2)", emails),
        ("email IS NULL AND phone = ANY($2)", phones),
        // Both sides lower-cased by the database as well: its rules, not ours, decide the candidates.
        (
            "email IS NULL AND phone IS NULL \
             AND lower(btrim(regexp_replace(name, '\\s+', ' ', 'g'))) = ANY(SELECT lower(n) FROM unnest($2::text[]) AS n)",
            names,
        ),
    ];
    let mut leads = Vec::new();
    for (condition, values) in queries {
        for batch in values.chunks(LOOKUP_BATCH) {
            let rows: Vec<LeadRow> = diesel::sql_query(format!(
                "SELECT {LEAD_COLUMNS} FROM crm_leads WHERE tenant_id = $1 AND {condition} ORDER BY created_at, id"
            ))
            .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
            .bind::<Array<Text>, _>(batch)
            .load(conn)
            .await?;
            for row in rows {
                leads.push(row.into_lead()?);
            }
        }
    }
    Ok(leads)
}

/// Stores an import's new contacts, [`INSERT_BATCH`] to a statement, in
/// file order, as `insert_contact` stores one (its keys computed here, its
/// search terms and `crm_contact_keys` rows written by the trigger). Their
/// companies are the tenant's: the plan linked them from
/// [`companies_named`] (and the foreign key holds).
async fn insert_contacts(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    contacts: &[Contact],
    calling_code: Option<&str>,
) -> Result<(), CrmFailure> {
    for batch in contacts.chunks(INSERT_BATCH) {
        let mut ids = Vec::with_capacity(batch.len());
        let mut first_names = Vec::with_capacity(batch.len());
        let mut last_names = Vec::with_capacity(batch.len());
        let mut display_names = Vec::with_capacity(batch.len());
        let mut types = Vec::with_capacity(batch.len());
        let mut statuses = Vec::with_capacity(batch.len());
        let mut emails = Vec::with_capacity(batch.len());
        let mut phones = Vec::with_capacity(batch.len());
        // Lists of text as JSON arrays: `unnest` of a two-dimensional array would flatten it.
        let mut email_keys = Vec::with_capacity(batch.len());
        let mut phone_keys = Vec::with_capacity(batch.len());
        let mut tags = Vec::with_capacity(batch.len());
        let mut company_ids = Vec::with_capacity(batch.len());
        let mut owner_ids = Vec::with_capacity(batch.len());
        let mut created = Vec::with_capacity(batch.len());
        let mut updated = Vec::with_capacity(batch.len());
        for contact in batch {
            let (emails_of, phones_of) = contact_keys(contact, calling_code);
            ids.push(contact.id.into_uuid());
            first_names.push(contact.first_name.as_deref());
            last_names.push(contact.last_name.as_deref());
            display_names.push(contact.display_name.as_str());
            types.push(text_of(&contact.contact_type));
            statuses.push(text_of(&contact.status));
            emails.push(json_of(&contact.emails)?);
            phones.push(json_of(&contact.phones)?);
            email_keys.push(json_of(&emails_of)?);
            phone_keys.push(json_of(&phones_of)?);
            tags.push(json_of(&contact.tags)?);
            company_ids.push(contact.company_id.map(CompanyId::into_uuid));
            owner_ids.push(contact.owner_id.map(UserId::into_uuid));
            created.push(contact.created_at);
            updated.push(contact.updated_at);
        }
        diesel::sql_query(
            "INSERT INTO crm_contacts (tenant_id, id, first_name, last_name, display_name, contact_type, status, \
                 emails, phones, email_keys, phone_keys, company_id, owner_id, tags, created_at, updated_at) \
             SELECT $1, c.id, c.first_name, c.last_name, c.display_name, c.contact_type, c.status, c.emails, \
                 c.phones, \
                 ARRAY(SELECT k FROM jsonb_array_elements_text(c.email_keys) WITH ORDINALITY AS e(k, i) ORDER BY i), \
                 ARRAY(SELECT k FROM jsonb_array_elements_text(c.phone_keys) WITH ORDINALITY AS p(k, i) ORDER BY i), \
                 c.company_id, c.owner_id, \
                 ARRAY(SELECT t FROM jsonb_array_elements_text(c.tags) WITH ORDINALITY AS g(t, i) ORDER BY i), \
                 c.created_at, c.updated_at \
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], \
                         $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::uuid[], $13::uuid[], $14::jsonb[], \
                         $15::timestamptz[], $16::timestamptz[]) WITH ORDINALITY \
                 AS c(id, first_name, last_name, display_name, contact_type, status, emails, phones, email_keys, \
                      phone_keys, company_id, owner_id, tags, created_at, updated_at, n) \
             ORDER BY c.n",
        )
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Nullable<Text>>, _>(&first_names)
        .bind::<Array<Nullable<Text>>, _>(&last_names)
        .bind::<Array<Text>, _>(&display_names)
        .bind::<Array<Text>, _>(&types)
        .bind::<Array<Text>, _>(&statuses)
        .bind::<Array<Jsonb>, _>(&emails)
        .bind::<Array<Jsonb>, _>(&phones)
        .bind::<Array<Jsonb>, _>(&email_keys)
        .bind::<Array<Jsonb>, _>(&phone_keys)
        .bind::<Array<Nullable<SqlUuid>>, _>(&company_ids)
        .bind::<Array<Nullable<SqlUuid>>, _>(&owner_ids)
        .bind::<Array<Jsonb>, _>(&tags)
        .bind::<Array<Timestamptz>, _>(&created)
        .bind::<Array<Timestamptz>, _>(&updated)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// One audit row for a whole import (or export) of the tenant.
async fn audit_transfer(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    action: &'static str,
    changes: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), CrmFailure> {
    let entry =
        AuditEntry { action, resource_type: "tenant", resource_id: ctx.tenant_id.to_string(), changes };
    audit::record(conn, ctx.tenant_id, ctx.into(), &entry, now).await?;
    Ok(())
}

fn import_changes(summary: &ImportSummary) -> serde_json::Value {
    serde_json::json!({
        "rows": {"before": null, "after": summary.rows},
        "created": {"before": null, "after": summary.created},
        "duplicates": {"before": null, "after": summary.duplicates},
    })
}

#[derive(QueryableByName)]
struct ContactExportRow {
    #[diesel(embed)]
    contact: ContactRow,
    #[diesel(sql_type = Nullable<Text>)]
    company_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    owner_email: Option<String>,
}

#[derive(QueryableByName)]
struct LeadExportRow {
    #[diesel(embed)]
    lead: LeadRow,
    #[diesel(sql_type = Nullable<Text>)]
    owner_email: Option<String>,
}

/// A tag to filter by as the lists take it: trimmed, none when blank. The
/// queries compare it lower-cased with the record's tags lower-cased (a
/// contact's as its `contact_tag` search terms, as its list does).
fn tag_filter(tag: Option<&str>) -> Option<&str> {
    tag.map(str::trim).filter(|t| !t.is_empty())
}

/// The email of the member `{table}.owner_id` names, as a select column.
fn owner_email_of(table: &str) -> String {
    format!(
        "(SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
          WHERE m.tenant_id = $1 AND m.user_id = {table}.owner_id LIMIT 1) AS owner_email"
    )
}

impl Store {
    /// Imports contacts read from a file into the context's tenant, all or
    /// nothing: a refused row refuses the file (`crm.import_refused` with the
    /// report); a row matching an existing contact, or an earlier row, by
    /// normalised email or phone is skipped and reported. Audited once.
    pub async fn import_contacts(
        &self,
        ctx: &TenantContext,
        rows: Vec<ContactImportRow>,
    ) -> Result<ImportSummary, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                one_import_at_a_time(conn, &ctx).await?;
                let calling_code = calling_code(conn, &ctx).await?;
                let lookups = contact_lookups(&rows, calling_code);
                let mut contacts = Vec::new();
                for emails in lookups.emails.chunks(LOOKUP_BATCH) {
                    contacts.extend(contacts_with_keys(conn, &ctx, emails, &[]).await?);
                }
                for phones in lookups.phones.chunks(LOOKUP_BATCH) {
                    contacts.extend(contacts_with_keys(conn, &ctx, &[], phones).await?);
                }
                let companies =
                    companies_named(conn, &ctx, &lookups.company_domains, &lookups.company_names).await?;
                let members = members_by_email(conn, &ctx, &lookups.owner_emails).await?;
                let known =
                    Known { contacts: &contacts, leads: &[], companies: &companies, members: &members };
                let plan =
                    plan_contact_import(rows, known, calling_code, now, ContactId::new).map_err(refused)?;
                insert_contacts(conn, &ctx, &plan.contacts, calling_code).await?;
                audit_transfer(conn, &ctx, "crm.contact.import", import_changes(&plan.summary), now).await?;
                Ok(plan.summary)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Imports leads read from a file into the context's tenant, all or
    /// nothing: a refused row refuses the file; a row that is an existing
    /// lead, or an earlier row, is skipped and reported: by normalised email;
    /// without one, by name and phone; with neither, by name and company
    /// name. Audited once.
    pub async fn import_leads(
        &self,
        ctx: &TenantContext,
        rows: Vec<LeadImportRow>,
    ) -> Result<ImportSummary, CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                one_import_at_a_time(conn, &ctx).await?;
                let calling_code = calling_code(conn, &ctx).await?;
                let lookups = lead_lookups(&rows, calling_code);
                let leads =
                    leads_matching(conn, &ctx, &lookups.emails, &lookups.phones, &lookups.names).await?;
                let members = members_by_email(conn, &ctx, &lookups.owner_emails).await?;
                let known = Known { contacts: &[], leads: &leads, companies: &[], members: &members };
                let plan = plan_lead_import(rows, known, calling_code, now, LeadId::new).map_err(refused)?;
                for lead in &plan.leads {
                    insert_lead(conn, &ctx, lead).await?;
                }
                audit_transfer(conn, &ctx, "crm.lead.import", import_changes(&plan.summary), now).await?;
                Ok(plan.summary)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Audits an export of the tenant's contacts (it carries personal
    /// data), before it streams.
    pub async fn note_contacts_export(
        &self,
        ctx: &TenantContext,
        filter: &ContactExportFilter,
    ) -> Result<(), CrmError> {
        let changes = serde_json::json!({"filter": {"before": null, "after": filter}});
        self.note_crm_export(ctx, "crm.contact.export", changes).await
    }

    /// Audits an export of the tenant's leads, before it streams.
    pub async fn note_leads_export(
        &self,
        ctx: &TenantContext,
        filter: &LeadExportFilter,
    ) -> Result<(), CrmError> {
        let changes = serde_json::json!({"filter": {"before": null, "after": filter}});
        self.note_crm_export(ctx, "crm.lead.export", changes).await
    }

    async fn note_crm_export(
        &self,
        ctx: &TenantContext,
        action: &'static str,
        changes: serde_json::Value,
    ) -> Result<(), CrmError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { audit_transfer(conn, &ctx, action, changes, now).await })
        })
        .await
        .map_err(resolve)
    }

    /// Up to `limit` of the tenant's contacts matching `filter` after
    /// `after` (creation time and id), oldest first: the export's batches.
    pub async fn contacts_for_export(
        &self,
        ctx: &TenantContext,
        filter: &ContactExportFilter,
        after: Option<(DateTime<Utc>, ContactId)>,
        limit: u32,
    ) -> Result<Vec<ExportedContact>, CrmError> {
        let (ctx, filter) = (ctx.clone(), filter.clone());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let columns = CONTACT_COLUMNS.split(", ").map(|c| format!("crm_contacts.{c}")).collect::<Vec<_>>();
                let rows: Vec<ContactExportRow> = diesel::sql_query(format!(
                    "SELECT {}, \
                         (SELECT co.name FROM crm_companies co \
                          WHERE co.tenant_id = $1 AND co.id = crm_contacts.company_id) AS company_name, \
                         {} \
                     FROM crm_contacts \
                     WHERE tenant_id = $1 \
                       AND ($2::text IS NULL OR status = $2) \
                       AND ($3::text IS NULL OR contact_type = $3) \
                       AND ($4::text IS NULL OR id IN (SELECT record_id FROM crm_search_terms \
                            WHERE tenant_id = $1 AND kind = 'contact_tag' AND term = lower($4) COLLATE \"C\")) \
                       AND ($5::uuid IS NULL OR owner_id = $5) \
                       AND ($6::uuid IS NULL OR company_id = $6) \
                       AND ($7::timestamptz IS NULL OR (created_at, id) > ($7, $8)) \
                     ORDER BY created_at, id LIMIT $9",
                    columns.join(", "),
                    owner_email_of("crm_contacts"),
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Nullable<Text>, _>(filter.status.as_ref().map(text_of))
                .bind::<Nullable<Text>, _>(filter.contact_type.as_ref().map(text_of))
                .bind::<Nullable<Text>, _>(tag_filter(filter.tag.as_deref()))
                .bind::<Nullable<SqlUuid>, _>(filter.owner_id.map(UserId::into_uuid))
                .bind::<Nullable<SqlUuid>, _>(filter.company_id.map(CompanyId::into_uuid))
                .bind::<Nullable<Timestamptz>, _>(after.map(|(at, _)| at))
                .bind::<SqlUuid, _>(after.map_or_else(uuid::Uuid::nil, |(_, id)| id.into_uuid()))
                .bind::<diesel::sql_types::BigInt, _>(i64::from(limit))
                .load(conn)
                .await?;
                rows.into_iter()
                    .map(|row| {
                        Ok(ExportedContact {
                            contact: row.contact.into_contact()?,
                            company_name: row.company_name,
                            owner_email: row.owner_email,
                        })
                    })
                    .collect()
            })
        })
        .await
        .map_err(resolve)
    }

    /// Up to `limit` of the tenant's leads matching `filter` after `after`
    /// (creation time and id), oldest first: the export's batches.
    pub async fn leads_for_export(
        &self,
        ctx: &TenantContext,
        filter: &LeadExportFilter,
        after: Option<(DateTime<Utc>, LeadId)>,
        limit: u32,
    ) -> Result<Vec<ExportedLead>, CrmError> {
        let (ctx, filter) = (ctx.clone(), filter.clone());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let columns = LEAD_COLUMNS.split(", ").map(|c| format!("crm_leads.{c}")).collect::<Vec<_>>();
                let rows: Vec<LeadExportRow> = diesel::sql_query(format!(
                    "SELECT {}, {} \
                     FROM crm_leads \
                     WHERE tenant_id = $1 \
                       AND ($2::text IS NULL OR status = $2) \
                       AND ($3::text IS NULL OR source = $3) \
                       AND ($4::text IS NULL OR lower($4) = ANY(lower(tags::text)::text[])) \
                       AND ($5::uuid IS NULL OR owner_id = $5) \
                       AND ($6::timestamptz IS NULL OR (created_at, id) > ($6, $7)) \
                     ORDER BY created_at, id LIMIT $8",
                    columns.join(", "),
                    owner_email_of("crm_leads"),
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Nullable<Text>, _>(filter.status.map(|s| s.as_str()))
                .bind::<Nullable<Text>, _>(filter.source.as_ref().map(text_of))
                .bind::<Nullable<Text>, _>(tag_filter(filter.tag.as_deref()))
                .bind::<Nullable<SqlUuid>, _>(filter.owner_id.map(UserId::into_uuid))
                .bind::<Nullable<Timestamptz>, _>(after.map(|(at, _)| at))
                .bind::<SqlUuid, _>(after.map_or_else(uuid::Uuid::nil, |(_, id)| id.into_uuid()))
                .bind::<diesel::sql_types::BigInt, _>(i64::from(limit))
                .load(conn)
                .await?;
                rows.into_iter()
                    .map(|row| Ok(ExportedLead { lead: row.lead.into_lead()?, owner_email: row.owner_email }))
                    .collect()
            })
        })
        .await
        .map_err(resolve)
    }
}
