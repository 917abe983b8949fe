//! CRM transfers: the streamed CSV import of contacts and leads (row-level
//! errors, all or nothing, duplicates of existing records skipped and
//! reported) and their CSV export, whose columns are the import's. Every
//! route is gated by the tenant's `crm` feature and needs `crm:write`
//! (an export carries personal data, as for people).
//!
//! The routes are bulk transfers: too large to keep for replay, so
//! `Idempotency-Key` is ignored. An import sent again creates nothing: each
//! of its rows is skipped as a duplicate (a contact row without email or
//! phone aside). A lead row matches by email; without one, by name and
//! phone; with neither, by name and company name.
//!
//! Audited once per import or export, as `crm.contact.import`,
//! `crm.contact.export`, `crm.lead.import` and `crm.lead.export`.

use actix_web::{HttpRequest, HttpResponse, Route, web};
use futures_util::StreamExt as _;
use portico_crm::{
    ContactExportFilter, ContactImport, CrmError, LeadExportFilter, LeadImport, contact_export_header,
    contact_export_record, lead_export_header, lead_export_record,
};

use crate::api::{RouteSpec, bulk};
use crate::auth::{CrmWrite, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::ErrorEnvelope;

/// Records read per batch of an export.
const EXPORT_BATCH: u32 = 1_000;

/// This area's routes, with their guarantees.
pub(crate) const ROUTES: &[RouteSpec] = &[
    bulk("/api/v1/crm/contacts/import").gated("crm"),
    bulk("/api/v1/crm/contacts/export").gated("crm"),
    bulk("/api/v1/crm/leads/import").gated("crm"),
    bulk("/api/v1/crm/leads/export").gated("crm"),
];

/// The handler of one of [`ROUTES`].
pub(crate) fn handler(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("POST", "/api/v1/crm/contacts/import") => web::post().to(import_contacts),
        ("POST", "/api/v1/crm/contacts/export") => web::post().to(export_contacts),
        ("POST", "/api/v1/crm/leads/import") => web::post().to(import_leads),
        ("POST", "/api/v1/crm/leads/export") => web::post().to(export_leads),
        _ => return None,
    })
}

crate::openapi::envelopes! {
    /// `{"success": true, "data": ImportSummary}` of a CRM import.
    CrmImportSummaryEnvelope => portico_crm::ImportSummary;
}

/// This area's part of the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(import_contacts, export_contacts, import_leads, export_leads),
    components(schemas(
        CrmImportSummaryEnvelope,
        portico_crm::ImportSummary,
        portico_crm::SkippedRow,
        portico_crm::MatchReason,
        portico_crm::ContactExportFilter,
        portico_crm::LeadExportFilter,
        portico_crm::ContactStatus,
        portico_crm::ContactType,
        portico_crm::LeadStatus,
        portico_crm::LeadSource,
    )),
    tags((name = "crm-transfer", description = "CSV import and export of CRM contacts and leads."))
)]
pub(crate) struct Doc;

#[utoipa::path(
    post,
    path = "/api/v1/crm/contacts/import",
    tag = "crm-transfer",
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV with a header line naming, in any order and case: `firstName`, `lastName`, `displayName` (at least one of the three), `email` and `phone` (`;`-separated lists, the first is the primary; national numbers in the tenant's country), `type` (`customer`, `prospect` (default), `partner`, `vendor`), `status` (`active` (default), `inactive`), `companyName` (an existing company of the tenant, by name or domain), `tags` (`;`-separated), `ownerEmail` (a member of the tenant). Up to 10,000 rows and 32 MiB. A row whose email or phone an existing contact, or an earlier row, has is skipped and reported, not created. Audited as `crm.contact.import`.", example = "firstName,lastName,email,phone,type,companyName,tags\r\nSam,Taylor,sam@acme.example,030 1234567,customer,Acme GmbH,vip;berlin\r\n"),
    responses(
        (status = 200, description = "Every row read: the contacts created, and the rows skipped as duplicates with what they matched.", body = CrmImportSummaryEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 413, description = "Larger than 32 MiB (`import.too_large`).", body = ErrorEnvelope),
        (status = 415, description = "Not sent as `text/csv` (`import.not_csv`).", body = ErrorEnvelope),
        (status = 422, description = "Nothing was written (`crm.import_refused`): `details` is the report, every bad row with its line, a code (`import.invalid_value`, `import.unknown_company`, `import.unknown_owner`, `import.field_count`, ...) and the column at fault (the first 1,000; `errorCount` counts all).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Imports contacts from CSV, all or nothing, skipping duplicates.
pub async fn import_contacts(
    req: HttpRequest,
    auth: Require<CrmWrite>,
    store: Db,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut import = ContactImport::new();
    crate::api::stream_csv(&req, &mut payload, |chunk| import.feed(chunk)).await?;
    let rows = import.finish().map_err(CrmError::ImportRefused)?;
    Ok(envelope::ok(store.import_contacts(&auth.ctx, rows).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/leads/import",
    tag = "crm-transfer",
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV with a header line naming, in any order and case: `name` (required), `email`, `phone` (national in the tenant's country), `companyName`, `source` (`website`, `referral`, `campaign`, `import` (default), `manual`, `other`), `status` (`new` (default), `contacted`, `qualified`, `unqualified`; never `converted`), `estimatedValue` (a decimal with a point, in major units) with `currency` (ISO 4217), `tags` (`;`-separated), `ownerEmail` (a member of the tenant). Up to 10,000 rows and 32 MiB. A row that is an existing lead, or an earlier row, is skipped and reported, not created: by email (`matchedBy` `email`); without an email, by name and phone (`phone`); with neither, by name and company name (`name`; none matching none); names are compared trimmed and in any case, company names normalised. So the same file sent again creates nothing. Audited as `crm.lead.import`.", example = "name,email,companyName,status,estimatedValue,currency\r\nSam Taylor,sam@acme.example,Acme GmbH,qualified,12000.00,EUR\r\n"),
    responses(
        (status = 200, description = "Every row read: the leads created, and the rows skipped as duplicates with what they matched (`email`, `phone` or `name`).", body = CrmImportSummaryEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 413, description = "Larger than 32 MiB (`import.too_large`).", body = ErrorEnvelope),
        (status = 415, description = "Not sent as `text/csv` (`import.not_csv`).", body = ErrorEnvelope),
        (status = 422, description = "Nothing was written (`crm.import_refused`): `details` is the report, every bad row with its line, a code and the column at fault (the first 1,000; `errorCount` counts all).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Imports leads from CSV, all or nothing, skipping duplicates.
pub async fn import_leads(
    req: HttpRequest,
    auth: Require<CrmWrite>,
    store: Db,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut import = LeadImport::new();
    crate::api::stream_csv(&req, &mut payload, |chunk| import.feed(chunk)).await?;
    let rows = import.finish().map_err(CrmError::ImportRefused)?;
    Ok(envelope::ok(store.import_leads(&auth.ctx, rows).await?))
}

/// A CSV answer streamed from its header and its batches.
fn csv_download(
    name: &str,
    header: String,
    batches: impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> + 'static,
) -> HttpResponse {
    let first = futures_util::stream::once(async move { Ok(web::Bytes::from(header)) });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .streaming(first.chain(batches))
}

/// The answer to a failed batch: the status is sent already, so the stream
/// is cut short, which the client sees.
fn cut_short(error: &CrmError) -> actix_web::Error {
    tracing::error!(%error, "a CRM export stopped");
    actix_web::error::ErrorInternalServerError("export failed")
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/contacts/export",
    tag = "crm-transfer",
    request_body = ContactExportFilter,
    responses(
        (status = 200, description = "The tenant's contacts matching the filter as CSV, oldest first, in the import's columns (`firstName,lastName,displayName,email,phone,type,status,companyName,tags,ownerEmail`; emails and phones primary first, `;`-separated), so the file imports as it is; fields that a spreadsheet would run as a formula start with `'`. A `tag` filter matches in any case, trimmed (blank: no filter). Audited as `crm.contact.export`.", content_type = "text/csv", body = String),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad filter (`request.invalid_body`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Exports the tenant's contacts as CSV (audited: it carries personal data).
pub async fn export_contacts(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<ContactExportFilter>,
) -> Result<HttpResponse, ApiError> {
    let filter = body.into_inner();
    let ctx = auth.ctx.clone();
    store.note_contacts_export(&ctx, &filter).await?;
    let batches = futures_util::stream::unfold(Some(None), move |cursor| {
        let (store, ctx, filter) = (store.clone(), ctx.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            match store.contacts_for_export(&ctx, &filter, cursor, EXPORT_BATCH).await {
                Ok(contacts) => {
                    let next = (contacts.len() == EXPORT_BATCH as usize)
                        .then(|| contacts.last().map(|c| (c.contact.created_at, c.contact.id)));
                    let csv: String = contacts
                        .iter()
                        .map(|c| {
                            contact_export_record(
                                &c.contact,
                                c.company_name.as_deref(),
                                c.owner_email.as_deref(),
                            )
                        })
                        .collect();
                    Some((Ok(web::Bytes::from(csv)), next))
                }
                Err(error) => Some((Err(cut_short(&error)), None)),
            }
        }
    });
    Ok(csv_download("contacts.csv", contact_export_header(), batches))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/leads/export",
    tag = "crm-transfer",
    request_body = LeadExportFilter,
    responses(
        (status = 200, description = "The tenant's leads matching the filter as CSV, oldest first, in the import's columns (`name,email,phone,companyName,source,status,estimatedValue,currency,tags,ownerEmail`), so the file imports as it is (converted leads aside: the import refuses them); fields that a spreadsheet would run as a formula start with `'`. A `tag` filter matches in any case, trimmed (blank: no filter). Audited as `crm.lead.export`.", content_type = "text/csv", body = String),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad filter (`request.invalid_body`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Exports the tenant's leads as CSV (audited: it carries personal data).
pub async fn export_leads(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<LeadExportFilter>,
) -> Result<HttpResponse, ApiError> {
    let filter = body.into_inner();
    let ctx = auth.ctx.clone();
    store.note_leads_export(&ctx, &filter).await?;
    let batches = futures_util::stream::unfold(Some(None), move |cursor| {
        let (store, ctx, filter) = (store.clone(), ctx.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            match store.leads_for_export(&ctx, &filter, cursor, EXPORT_BATCH).await {
                Ok(leads) => {
                    let next = (leads.len() == EXPORT_BATCH as usize)
                        .then(|| leads.last().map(|l| (l.lead.created_at, l.lead.id)));
                    let csv: String =
                        leads.iter().map(|l| lead_export_record(&l.lead, l.owner_email.as_deref())).collect();
                    Some((Ok(web::Bytes::from(csv)), next))
                }
                Err(error) => Some((Err(cut_short(&error)), None)),
            }
        }
    });
    Ok(csv_download("leads.csv", lead_export_header(), batches))
}
