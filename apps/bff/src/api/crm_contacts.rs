//! CRM contacts and companies: their lists (filters, sorts, search), one
//! record, its creation, change (every field replaced) and deletion, the
//! duplicates among them and the merge of two into one. Every route is
//! gated by the tenant's `crm` feature; reads need `crm:read`, changes
//! `crm:write`.

use actix_web::{HttpResponse, Route, web};
use chrono::{DateTime, Utc};
use portico_crm::{
    Company, CompanyDraft, CompanyDuplicates, ContactDraft, ContactDuplicates, ContactStatus, ContactType,
    MergeCompanies, MergeContacts,
};
use portico_kernel::{CompanyId, ContactId, UserId};
use portico_store::{CompanyFilter, CompanySort, ContactFilter, ContactSort, DuplicateKind, Duplicates};
use serde::Deserialize;

use crate::api::{RouteSpec, read, write};
use crate::auth::{CrmRead, CrmWrite, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name it
use crate::openapi::ErrorEnvelope;

/// This area's routes, with their guarantees. A literal path (`merge`)
/// comes before the `{id}` beside it, so that it is matched first.
pub(crate) const ROUTES: &[RouteSpec] = &[
    read("/api/v1/crm/contacts").gated("crm"),
    write("POST", "/api/v1/crm/contacts").gated("crm"),
    write("POST", "/api/v1/crm/contacts/merge").gated("crm"),
    read("/api/v1/crm/contacts/{id}").gated("crm"),
    write("PUT", "/api/v1/crm/contacts/{id}").gated("crm"),
    write("DELETE", "/api/v1/crm/contacts/{id}").gated("crm"),
    read("/api/v1/crm/companies").gated("crm"),
    write("POST", "/api/v1/crm/companies").gated("crm"),
    write("POST", "/api/v1/crm/companies/merge").gated("crm"),
    read("/api/v1/crm/companies/{id}").gated("crm"),
    write("PUT", "/api/v1/crm/companies/{id}").gated("crm"),
    write("DELETE", "/api/v1/crm/companies/{id}").gated("crm"),
    read("/api/v1/crm/duplicates").gated("crm"),
];

/// The handler of one of [`ROUTES`].
pub(crate) fn handler(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("GET", "/api/v1/crm/contacts") => web::get().to(contacts),
        ("POST", "/api/v1/crm/contacts") => web::post().to(create_contact),
        ("POST", "/api/v1/crm/contacts/merge") => web::post().to(merge_contacts),
        ("GET", "/api/v1/crm/contacts/{id}") => web::get().to(contact),
        ("PUT", "/api/v1/crm/contacts/{id}") => web::put().to(update_contact),
        ("DELETE", "/api/v1/crm/contacts/{id}") => web::delete().to(delete_contact),
        ("GET", "/api/v1/crm/companies") => web::get().to(companies),
        ("POST", "/api/v1/crm/companies") => web::post().to(create_company),
        ("POST", "/api/v1/crm/companies/merge") => web::post().to(merge_companies),
        ("GET", "/api/v1/crm/companies/{id}") => web::get().to(company),
        ("PUT", "/api/v1/crm/companies/{id}") => web::put().to(update_company),
        ("DELETE", "/api/v1/crm/companies/{id}") => web::delete().to(delete_company),
        ("GET", "/api/v1/crm/duplicates") => web::get().to(duplicates),
        _ => return None,
    })
}

crate::openapi::envelopes! {
    /// `{"success": true, "data": Contact}`.
    ContactEnvelope => portico_crm::Contact;
    /// `{"success": true, "data": Company}`.
    CompanyEnvelope => portico_crm::Company;
    /// `{"success": true, "data": Duplicates}`.
    DuplicatesEnvelope => portico_store::Duplicates;
}

crate::openapi::page_envelopes! {
    /// `{"success": true, "data": [Contact], "meta": PageMeta}`.
    ContactPageEnvelope => portico_crm::Contact;
    /// `{"success": true, "data": [Company], "meta": PageMeta}`.
    CompanyPageEnvelope => portico_crm::Company;
}

// ---------------------------------------------------------------- contacts

/// Which contacts to list, and in which order.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only `active` or only `inactive` contacts.
    #[serde(default)]
    pub status: Option<ContactStatus>,
    /// Only contacts of this type (`customer`, `prospect`, `partner`, `vendor`).
    #[serde(default, rename = "type")]
    pub contact_type: Option<ContactType>,
    /// Only the contacts this user owns.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub owner_id: Option<UserId>,
    /// Only the people of this company.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub company_id: Option<CompanyId>,
    /// Only contacts with this tag (in any case).
    #[serde(default)]
    pub tag: Option<String>,
    /// Created at or after this time.
    #[serde(default)]
    pub created_from: Option<DateTime<Utc>>,
    /// Created before this time.
    #[serde(default)]
    pub created_to: Option<DateTime<Utc>>,
    /// Search: every word must start a word of the name, an email address,
    /// a phone number or the company's name (the five longest words count; a
    /// one-letter word must be a whole word); a phone number in any format
    /// finds its contact.
    #[serde(default)]
    #[param(example = "sam tay")]
    pub q: Option<String>,
    /// `name` (the default), `-name`, `createdAt`, `-createdAt`, `updatedAt` or `-updatedAt`.
    #[serde(default)]
    pub sort: Option<ContactSort>,
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/contacts",
    tag = "crm-contacts",
    params(ContactQuery),
    responses(
        (status = 200, description = "A page of the tenant's contacts matching the filters, in the order asked for.", body = ContactPageEnvelope),
        (status = 400, description = "An unknown parameter, sort or filter value (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// Lists, filters, sorts and searches the tenant's contacts.
pub async fn contacts(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<ContactQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = crate::api::page_request(query.page, query.limit)?;
    let filter = ContactFilter {
        status: query.status,
        contact_type: query.contact_type,
        owner_id: query.owner_id,
        company_id: query.company_id,
        tag: query.tag,
        created_from: query.created_from,
        created_to: query.created_to,
        q: query.q,
        sort: query.sort.unwrap_or_default(),
    };
    Ok(envelope::page(&store.contacts(&auth.ctx, filter, page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/contacts",
    tag = "crm-contacts",
    request_body = ContactDraft,
    responses(
        (status = 201, description = "The contact, its emails lower-cased and its phones in E.164 form (national numbers read in the tenant's country).", body = ContactEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field, an owner who is not a member or a company that is not the tenant's (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Creates a contact.
pub async fn create_contact(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<ContactDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.create_contact(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/contacts/{id}",
    tag = "crm-contacts",
    params(("id" = String, Path, format = Uuid, description = "The contact's id.")),
    responses(
        (status = 200, description = "The contact.", body = ContactEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this tenant (`crm.contact_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// One contact.
pub async fn contact(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<ContactId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.contact(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/contacts/{id}",
    tag = "crm-contacts",
    params(("id" = String, Path, format = Uuid, description = "The contact's id.")),
    request_body = ContactDraft,
    responses(
        (status = 200, description = "The contact as changed: every field is replaced by the body's.", body = ContactEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this tenant (`crm.contact_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a new owner who is not a member or a company that is not the tenant's (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Changes a contact.
pub async fn update_contact(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<ContactId>,
    body: Json<ContactDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.update_contact(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/contacts/{id}",
    tag = "crm-contacts",
    params(("id" = String, Path, format = Uuid, description = "The contact's id.")),
    responses(
        (status = 204, description = "The contact is gone; its activities, deals and leads keep no contact."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such contact in this tenant (`crm.contact_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The contact requested support tickets: merge it into another instead (`crm.contact_has_tickets`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Deletes a contact.
pub async fn delete_contact(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<ContactId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_contact(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/contacts/merge",
    tag = "crm-contacts",
    request_body = MergeContacts,
    responses(
        (status = 200, description = "The kept contact, with what it gained; every activity, deal, lead and ticket of the merged one now points at it, and the merge is recorded.", body = ContactEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "Either contact is not in this tenant (`crm.contact_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A contact merged into itself (`crm.merge_into_itself`), or more than 10 emails or phones or 20 tags together (`crm.invalid`, naming `emails`, `phones` or `tags`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Merges one contact into another.
pub async fn merge_contacts(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<MergeContacts>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.merge_contacts(&auth.ctx, body.into_inner()).await?))
}

// --------------------------------------------------------------- companies

/// Which companies to list, and in which order.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Search: every word must start a word of the name or the domain.
    #[serde(default)]
    #[param(example = "acme")]
    pub q: Option<String>,
    /// Only companies in this industry (any case).
    #[serde(default)]
    pub industry: Option<String>,
    /// Only the companies this user owns.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub owner_id: Option<UserId>,
    /// Only companies with this tag (in any case).
    #[serde(default)]
    pub tag: Option<String>,
    /// `name` (the default), `-name`, `createdAt` or `-createdAt`.
    #[serde(default)]
    pub sort: Option<CompanySort>,
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/companies",
    tag = "crm-contacts",
    params(CompanyQuery),
    responses(
        (status = 200, description = "A page of the tenant's companies matching the filters, in the order asked for.", body = CompanyPageEnvelope),
        (status = 400, description = "An unknown parameter, sort or filter value (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// Lists, filters, sorts and searches the tenant's companies.
pub async fn companies(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<CompanyQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = crate::api::page_request(query.page, query.limit)?;
    let filter = CompanyFilter {
        q: query.q,
        industry: query.industry,
        owner_id: query.owner_id,
        tag: query.tag,
        sort: query.sort.unwrap_or_default(),
    };
    Ok(envelope::page(&store.companies(&auth.ctx, filter, page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/companies",
    tag = "crm-contacts",
    request_body = CompanyDraft,
    responses(
        (status = 201, description = "The company, its domain bare (`acme.example`).", body = CompanyEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a free-mail domain or an owner who is not a member (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Creates a company.
pub async fn create_company(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<CompanyDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.create_company(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/companies/{id}",
    tag = "crm-contacts",
    params(("id" = String, Path, format = Uuid, description = "The company's id.")),
    responses(
        (status = 200, description = "The company.", body = CompanyEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such company in this tenant (`crm.company_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// One company.
pub async fn company(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<CompanyId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.company(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/companies/{id}",
    tag = "crm-contacts",
    params(("id" = String, Path, format = Uuid, description = "The company's id.")),
    request_body = CompanyDraft,
    responses(
        (status = 200, description = "The company as changed: every field is replaced by the body's.", body = CompanyEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such company in this tenant (`crm.company_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field or a new owner who is not a member (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Changes a company.
pub async fn update_company(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<CompanyId>,
    body: Json<CompanyDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.update_company(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/companies/{id}",
    tag = "crm-contacts",
    params(("id" = String, Path, format = Uuid, description = "The company's id.")),
    responses(
        (status = 204, description = "The company is gone; its contacts, activities, deals and leads keep no company."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such company in this tenant (`crm.company_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Deletes a company.
pub async fn delete_company(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<CompanyId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_company(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/companies/merge",
    tag = "crm-contacts",
    request_body = MergeCompanies,
    responses(
        (status = 200, description = "The kept company, with what it gained; every contact, activity, deal and lead of the merged one now points at it, and the merge is recorded.", body = CompanyEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "Either company is not in this tenant (`crm.company_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A company merged into itself (`crm.merge_into_itself`), or more than 20 tags together (`crm.invalid`, naming `tags`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Merges one company into another.
pub async fn merge_companies(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<MergeCompanies>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.merge_companies(&auth.ctx, body.into_inner()).await?))
}

// -------------------------------------------------------------- duplicates

/// Which duplicates to look for.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DuplicatesQuery {
    /// `contacts` or `companies`; both when absent.
    #[serde(default, rename = "type")]
    pub kind: Option<DuplicateKind>,
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/duplicates",
    tag = "crm-contacts",
    params(DuplicatesQuery),
    responses(
        (status = 200, description = "Groups of contacts sharing a normalised email or E.164 phone, and of companies sharing a domain or normalised name: at most 100 groups of each (`truncated` says when there were more), each naming its oldest 100 records, oldest first.", body = DuplicatesEnvelope),
        (status = 400, description = "An unknown parameter or type (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// The tenant's duplicate contacts and companies.
pub async fn duplicates(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<DuplicatesQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.duplicates(&auth.ctx, query.kind).await?))
}

/// This area's part of the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(
        contacts,
        create_contact,
        merge_contacts,
        contact,
        update_contact,
        delete_contact,
        companies,
        create_company,
        merge_companies,
        company,
        update_company,
        delete_company,
        duplicates,
    ),
    components(schemas(
        ContactEnvelope,
        ContactPageEnvelope,
        CompanyEnvelope,
        CompanyPageEnvelope,
        DuplicatesEnvelope,
        portico_crm::Contact,
        portico_crm::ContactEmail,
        portico_crm::ContactPhone,
        portico_crm::EmailLabel,
        portico_crm::PhoneLabel,
        ContactType,
        ContactStatus,
        ContactDraft,
        portico_crm::EmailDraft,
        portico_crm::PhoneDraft,
        Company,
        CompanyDraft,
        portico_crm::CompanySize,
        portico_crm::Address,
        MergeContacts,
        MergeCompanies,
        Duplicates,
        ContactDuplicates,
        CompanyDuplicates,
        portico_crm::MatchReason,
        DuplicateKind,
        ContactSort,
        CompanySort,
    )),
    tags((name = "crm-contacts", description = "The tenant's CRM contacts and companies: lists with filters, sorts and search, duplicates and merges."))
)]
pub(crate) struct Doc;
