//! CRM transfers: contacts and leads imported from CSV files (read and
//! decided by `portico_crm`'s transfer module, written here in one
//! transaction with one audit row) and read out in batches for the export.
//!
//! An import matches its rows against the tenant's records before it
//! writes: contacts by their normalised emails and phones (through
//! `crm_contact_keys`), leads by their normalised email, companies by domain
//! or normalised name, owners by their email among the tenant's members.
//! Imports of one tenant run one after the other (a transaction-scoped
//! advisory lock), so two files sent at once cannot both create the same
//! person.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Company, Contact, ContactExportFilter, ContactImportRow, CrmError, ImportSummary, Known, Lead,
    LeadExportFilter, LeadImportRow, contact_lookups, lead_lookups, plan_contact_import, plan_lead_import,
};
use portico_kernel::{AuditEntry, CompanyId, ContactId, LeadId, TenantContext, UserId};

use crate::crm::{
    COMPANY_COLUMNS, CONTACT_COLUMNS, CompanyRow, ContactRow, CrmFailure, calling_code, contacts_with_keys,
    insert_contact, text_of,
};
use crate::crm_sales::{LEAD_COLUMNS, LeadRow, insert_lead};
use crate::error::Failure;
use crate::{Store, audit};

/// Values looked up per statement while matching an import.
const LOOKUP_BATCH: usize = 1_000;

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

/// The tenant's leads with one of these normalised emails.
async fn leads_with_emails(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    emails: &[String],
) -> Result<Vec<Lead>, CrmFailure> {
    let mut leads = Vec::new();
    for batch in emails.chunks(LOOKUP_BATCH) {
        let rows: Vec<LeadRow> = diesel::sql_query(format!(
            "SELECT {LEAD_COLUMNS} FROM crm_leads WHERE tenant_id = $1 AND email = ANY($2) ORDER BY created_at, id"
        ))
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Array<Text>, _>(batch)
        .load(conn)
        .await?;
        for row in rows {
            leads.push(row.into_lead()?);
        }
    }
    Ok(leads)
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
                for contact in &plan.contacts {
                    insert_contact(conn, &ctx, contact, calling_code).await?;
                }
                audit_transfer(conn, &ctx, "crm.contacts.import", import_changes(&plan.summary), now).await?;
                Ok(plan.summary)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Imports leads read from a file into the context's tenant, all or
    /// nothing: a refused row refuses the file; a row whose normalised email
    /// an existing lead, or an earlier row, has is skipped and reported.
    /// Audited once.
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
                let (emails, owners) = lead_lookups(&rows);
                let leads = leads_with_emails(conn, &ctx, &emails).await?;
                let members = members_by_email(conn, &ctx, &owners).await?;
                let known = Known { contacts: &[], leads: &leads, companies: &[], members: &members };
                let plan = plan_lead_import(rows, known, calling_code, now, LeadId::new).map_err(refused)?;
                for lead in &plan.leads {
                    insert_lead(conn, &ctx, lead).await?;
                }
                audit_transfer(conn, &ctx, "crm.leads.import", import_changes(&plan.summary), now).await?;
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
        self.note_crm_export(ctx, "crm.contacts.export", changes).await
    }

    /// Audits an export of the tenant's leads, before it streams.
    pub async fn note_leads_export(
        &self,
        ctx: &TenantContext,
        filter: &LeadExportFilter,
    ) -> Result<(), CrmError> {
        let changes = serde_json::json!({"filter": {"before": null, "after": filter}});
        self.note_crm_export(ctx, "crm.leads.export", changes).await
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
                       AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM unnest(tags) AS t WHERE lower(t) = lower($4))) \
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
                .bind::<Nullable<Text>, _>(filter.tag.as_deref().map(str::trim))
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
                       AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM unnest(tags) AS t WHERE lower(t) = lower($4))) \
                       AND ($5::uuid IS NULL OR owner_id = $5) \
                       AND ($6::timestamptz IS NULL OR (created_at, id) > ($6, $7)) \
                     ORDER BY created_at, id LIMIT $8",
                    columns.join(", "),
                    owner_email_of("crm_leads"),
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Nullable<Text>, _>(filter.status.map(|s| s.as_str()))
                .bind::<Nullable<Text>, _>(filter.source.as_ref().map(text_of))
                .bind::<Nullable<Text>, _>(filter.tag.as_deref().map(str::trim))
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
