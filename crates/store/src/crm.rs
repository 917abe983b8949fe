//! What the CRM's store modules share: errors, stored enums, the rows of
//! contacts and companies (which conversions, imports and merges all
//! write), the tenant's calling code, and the check that a user named as
//! owner or assignee belongs to the tenant.
//!
//! Contacts keep their emails and phones as entered (`emails`, `phones`)
//! and normalised (`email_keys`, `phone_keys`); a trigger copies the keys
//! into `crm_contact_keys` and the words of names, emails and phones into
//! `crm_search_terms`, which duplicate detection, matching and search read.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_crm::{
    Address, Company, Contact, ContactEmail, ContactPhone, CrmError, calling_code_of, normalise_company_name,
    normalise_email, normalise_phone,
};
use portico_kernel::{CompanyId, ContactId, InfraError, TenantContext, UserId, ValidationErrors};

use crate::error::Failure;
pub(crate) use crate::meters::text_of;

pub(crate) type CrmFailure = Failure<CrmError>;

/// A stored CRM row that does not read back: an internal error.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> CrmFailure {
    Failure::Infra(InfraError::internal(format!("stored CRM data does not read: {what}")))
}

/// A unit enum from its stored text.
pub(crate) fn enum_of<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, CrmFailure> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(corrupt)
}

/// A value as stored JSON.
pub(crate) fn json_of(value: &impl serde::Serialize) -> Result<serde_json::Value, CrmFailure> {
    serde_json::to_value(value).map_err(corrupt)
}

/// A value from stored JSON.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, CrmFailure> {
    serde_json::from_value(value).map_err(corrupt)
}

/// A refusal naming one field.
pub(crate) fn invalid(field: &str, message: &str) -> CrmFailure {
    Failure::Domain(CrmError::Invalid(ValidationErrors::field(field, message)))
}

#[derive(QueryableByName)]
struct Country {
    #[diesel(sql_type = Nullable<Text>)]
    country: Option<String>,
}

/// The calling code of the tenant's country (its settings' contact
/// country), which national phone numbers are read in.
pub(crate) async fn calling_code(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
) -> Result<Option<&'static str>, CrmFailure> {
    let row: Option<Country> = diesel::sql_query(
        "SELECT settings -> 'contact' ->> 'country' AS country FROM tenant_settings WHERE tenant_id = $1",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.and_then(|row| row.country).as_deref().and_then(calling_code_of))
}

#[derive(QueryableByName)]
struct Member {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code)] // read to know the row exists
    user_id: uuid::Uuid,
}

/// Refuses, naming `field`, a user who is not an active or invited member of the tenant.
pub(crate) async fn check_member(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    user: UserId,
    field: &str,
) -> Result<(), CrmFailure> {
    let found: Option<Member> = diesel::sql_query(
        "SELECT user_id FROM memberships WHERE tenant_id = $1 AND user_id = $2 AND status <> 'suspended' LIMIT 1",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(user.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    match found {
        Some(_) => Ok(()),
        None => Err(invalid(field, "no such member of this tenant")),
    }
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code)] // read to take the row, not for its value
    id: uuid::Uuid,
}

/// Whether the tenant has the record `id` of `table` (a lead, contact,
/// company or deal), taking it `FOR KEY SHARE` to the end of the
/// transaction when it does: a deletion of it then waits for this
/// transaction (and finds what it linked), or this one waits for the
/// deletion and finds no record. A reference written next never fails its
/// foreign key (a 500).
pub(crate) async fn hold(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    table: &'static str,
    id: uuid::Uuid,
) -> Result<bool, CrmFailure> {
    if !matches!(table, "crm_leads" | "crm_contacts" | "crm_companies" | "crm_deals") {
        return Err(Failure::Infra(InfraError::internal(format!("no CRM record table {table}"))));
    }
    let row: Option<Held> =
        diesel::sql_query(format!("SELECT id FROM {table} WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE"))
            .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
            .bind::<SqlUuid, _>(id)
            .get_result(conn)
            .await
            .optional()?;
    Ok(row.is_some())
}

// ---------------------------------------------------------------- contacts

#[derive(QueryableByName)]
pub(crate) struct ContactRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    last_name: Option<String>,
    #[diesel(sql_type = Text)]
    display_name: String,
    #[diesel(sql_type = Text)]
    contact_type: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Jsonb)]
    emails: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    phones: serde_json::Value,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    company_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Array<Text>)]
    tags: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

/// The columns [`ContactRow`] reads (unqualified: select from `crm_contacts`).
pub(crate) const CONTACT_COLUMNS: &str = "id, first_name, last_name, display_name, contact_type, status, emails, \
                                          phones, company_id, owner_id, tags, created_at, updated_at";

impl ContactRow {
    pub(crate) fn into_contact(self) -> Result<Contact, CrmFailure> {
        Ok(Contact {
            id: ContactId::from_uuid(self.id),
            first_name: self.first_name,
            last_name: self.last_name,
            display_name: self.display_name,
            contact_type: enum_of(&self.contact_type)?,
            status: enum_of(&self.status)?,
            emails: from_json::<Vec<ContactEmail>>(self.emails)?,
            phones: from_json::<Vec<ContactPhone>>(self.phones)?,
            company_id: self.company_id.map(CompanyId::from_uuid),
            owner_id: self.owner_id.map(UserId::from_uuid),
            tags: self.tags,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// One contact of the tenant (locked for update with `lock`).
pub(crate) async fn load_contact(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: ContactId,
    lock: bool,
) -> Result<Contact, CrmFailure> {
    let row: Option<ContactRow> = diesel::sql_query(format!(
        "SELECT {CONTACT_COLUMNS} FROM crm_contacts WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CrmError::ContactNotFound))?.into_contact()
}

/// The tenant's contacts with any of these normalised emails or phones.
pub(crate) async fn contacts_with_keys(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    emails: &[String],
    phones: &[String],
) -> Result<Vec<Contact>, CrmFailure> {
    if emails.is_empty() && phones.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ContactRow> = diesel::sql_query(format!(
        "SELECT {CONTACT_COLUMNS} FROM crm_contacts WHERE tenant_id = $1 AND id IN ( \
             SELECT contact_id FROM crm_contact_keys WHERE tenant_id = $1 AND kind = 'email' AND key = ANY($2) \
             UNION SELECT contact_id FROM crm_contact_keys WHERE tenant_id = $1 AND kind = 'phone' AND key = ANY($3)) \
         ORDER BY created_at, id"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Array<Text>, _>(emails)
    .bind::<Array<Text>, _>(phones)
    .load(conn)
    .await?;
    rows.into_iter().map(ContactRow::into_contact).collect()
}

/// A contact's normalised emails and phones, as duplicates match them.
pub(crate) fn contact_keys(contact: &Contact, calling_code: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut emails: Vec<String> = contact.emails.iter().filter_map(|e| normalise_email(&e.address)).collect();
    emails.dedup();
    let mut phones: Vec<String> =
        contact.phones.iter().filter_map(|p| normalise_phone(&p.number, calling_code)).collect();
    phones.dedup();
    (emails, phones)
}

/// Stores a new contact; a company it names must be the tenant's.
pub(crate) async fn insert_contact(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    contact: &Contact,
    calling_code: Option<&str>,
) -> Result<(), CrmFailure> {
    write_contact(conn, ctx, contact, calling_code, true).await
}

/// Stores a contact's new state (every column but its id and creation time).
pub(crate) async fn update_contact(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    contact: &Contact,
    calling_code: Option<&str>,
) -> Result<(), CrmFailure> {
    write_contact(conn, ctx, contact, calling_code, false).await
}

async fn write_contact(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    contact: &Contact,
    calling_code: Option<&str>,
    new: bool,
) -> Result<(), CrmFailure> {
    if let Some(company) = contact.company_id {
        match load_company(conn, ctx, company, false).await {
            Err(Failure::Domain(CrmError::CompanyNotFound)) => {
                return Err(invalid("companyId", "no such company in this tenant"));
            }
            other => other.map(|_| ())?,
        }
    }
    let (email_keys, phone_keys) = contact_keys(contact, calling_code);
    let sql = if new {
        "INSERT INTO crm_contacts (tenant_id, id, first_name, last_name, display_name, contact_type, status, \
             emails, phones, email_keys, phone_keys, company_id, owner_id, tags, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    } else {
        "UPDATE crm_contacts SET first_name = $3, last_name = $4, display_name = $5, contact_type = $6, \
             status = $7, emails = $8, phones = $9, email_keys = $10, phone_keys = $11, company_id = $12, \
             owner_id = $13, tags = $14, updated_at = $16 \
         WHERE tenant_id = $1 AND id = $2 AND $15::timestamptz IS NOT NULL"
    };
    let written = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(contact.id.into_uuid())
        .bind::<Nullable<Text>, _>(contact.first_name.as_deref())
        .bind::<Nullable<Text>, _>(contact.last_name.as_deref())
        .bind::<Text, _>(&contact.display_name)
        .bind::<Text, _>(text_of(&contact.contact_type))
        .bind::<Text, _>(text_of(&contact.status))
        .bind::<Jsonb, _>(json_of(&contact.emails)?)
        .bind::<Jsonb, _>(json_of(&contact.phones)?)
        .bind::<Array<Text>, _>(&email_keys)
        .bind::<Array<Text>, _>(&phone_keys)
        .bind::<Nullable<SqlUuid>, _>(contact.company_id.map(CompanyId::into_uuid))
        .bind::<Nullable<SqlUuid>, _>(contact.owner_id.map(UserId::into_uuid))
        .bind::<Array<Text>, _>(&contact.tags)
        .bind::<Timestamptz, _>(contact.created_at)
        .bind::<Timestamptz, _>(contact.updated_at)
        .execute(conn)
        .await?;
    if written == 0 {
        return Err(Failure::Domain(CrmError::ContactNotFound));
    }
    Ok(())
}

// --------------------------------------------------------------- companies

#[derive(QueryableByName)]
pub(crate) struct CompanyRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    domain: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    industry: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    size: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    address: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Array<Text>)]
    tags: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

/// The columns [`CompanyRow`] reads (unqualified: select from `crm_companies`).
pub(crate) const COMPANY_COLUMNS: &str =
    "id, name, domain, industry, size, address, owner_id, tags, created_at, updated_at";

impl CompanyRow {
    pub(crate) fn into_company(self) -> Result<Company, CrmFailure> {
        Ok(Company {
            id: CompanyId::from_uuid(self.id),
            name: self.name,
            domain: self.domain,
            industry: self.industry,
            size: self.size.as_deref().map(enum_of).transpose()?,
            address: self.address.map(from_json::<Address>).transpose()?,
            owner_id: self.owner_id.map(UserId::from_uuid),
            tags: self.tags,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// One company of the tenant (locked for update with `lock`).
pub(crate) async fn load_company(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: CompanyId,
    lock: bool,
) -> Result<Company, CrmFailure> {
    let row: Option<CompanyRow> = diesel::sql_query(format!(
        "SELECT {COMPANY_COLUMNS} FROM crm_companies WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(CrmError::CompanyNotFound))?.into_company()
}

/// The tenant's companies with this domain or this normalised name.
pub(crate) async fn companies_matching(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    domain: Option<&str>,
    name_key: Option<&str>,
) -> Result<Vec<Company>, CrmFailure> {
    if domain.is_none() && name_key.is_none() {
        return Ok(Vec::new());
    }
    let rows: Vec<CompanyRow> = diesel::sql_query(format!(
        "SELECT {COMPANY_COLUMNS} FROM crm_companies WHERE tenant_id = $1 AND (domain = $2 OR name_key = $3) \
         ORDER BY created_at, id"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Nullable<Text>, _>(domain)
    .bind::<Nullable<Text>, _>(name_key)
    .load(conn)
    .await?;
    rows.into_iter().map(CompanyRow::into_company).collect()
}

/// Stores a new company.
pub(crate) async fn insert_company(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    company: &Company,
) -> Result<(), CrmFailure> {
    write_company(conn, ctx, company, true).await
}

/// Stores a company's new state (every column but its id and creation time).
pub(crate) async fn update_company(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    company: &Company,
) -> Result<(), CrmFailure> {
    write_company(conn, ctx, company, false).await
}

async fn write_company(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    company: &Company,
    new: bool,
) -> Result<(), CrmFailure> {
    let sql = if new {
        "INSERT INTO crm_companies (tenant_id, id, name, name_key, domain, industry, size, address, owner_id, \
             tags, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    } else {
        "UPDATE crm_companies SET name = $3, name_key = $4, domain = $5, industry = $6, size = $7, address = $8, \
             owner_id = $9, tags = $10, updated_at = $12 \
         WHERE tenant_id = $1 AND id = $2 AND $11::timestamptz IS NOT NULL"
    };
    let address = company.address.as_ref().map(json_of).transpose()?;
    let written = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(company.id.into_uuid())
        .bind::<Text, _>(&company.name)
        .bind::<Nullable<Text>, _>(normalise_company_name(&company.name))
        .bind::<Nullable<Text>, _>(company.domain.as_deref())
        .bind::<Nullable<Text>, _>(company.industry.as_deref())
        .bind::<Nullable<Text>, _>(company.size.as_ref().map(text_of))
        .bind::<Nullable<Jsonb>, _>(address)
        .bind::<Nullable<SqlUuid>, _>(company.owner_id.map(UserId::into_uuid))
        .bind::<Array<Text>, _>(&company.tags)
        .bind::<Timestamptz, _>(company.created_at)
        .bind::<Timestamptz, _>(company.updated_at)
        .execute(conn)
        .await?;
    if written == 0 {
        return Err(Failure::Domain(CrmError::CompanyNotFound));
    }
    Ok(())
}

// -------------------------------------------------------------- activities

/// Deletes the tenant's activities whose only link is the record `id` in
/// `column` (`lead_id`, `contact_id`, `company_id` or `deal_id`): an
/// activity names at least one record, so deleting the only one it names
/// deletes it first, in the deletion's transaction. An activity that also
/// names another record stays (its link to this one is set null by the
/// foreign key). How many went.
pub(crate) async fn delete_sole_activities(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    column: &str,
    id: uuid::Uuid,
) -> Result<u64, CrmFailure> {
    // A fixed set of columns, never user input: each is named in the SQL as written here.
    let (lock, sql) = match column {
        "lead_id" => (
            "SELECT count(*) AS total FROM \
             (SELECT 1 FROM crm_activities WHERE tenant_id = $1 AND lead_id = $2 FOR UPDATE) AS held",
            "DELETE FROM crm_activities WHERE tenant_id = $1 AND lead_id = $2 \
             AND contact_id IS NULL AND company_id IS NULL AND deal_id IS NULL",
        ),
        "contact_id" => (
            "SELECT count(*) AS total FROM \
             (SELECT 1 FROM crm_activities WHERE tenant_id = $1 AND contact_id = $2 FOR UPDATE) AS held",
            "DELETE FROM crm_activities WHERE tenant_id = $1 AND contact_id = $2 \
             AND lead_id IS NULL AND company_id IS NULL AND deal_id IS NULL",
        ),
        "company_id" => (
            "SELECT count(*) AS total FROM \
             (SELECT 1 FROM crm_activities WHERE tenant_id = $1 AND company_id = $2 FOR UPDATE) AS held",
            "DELETE FROM crm_activities WHERE tenant_id = $1 AND company_id = $2 \
             AND lead_id IS NULL AND contact_id IS NULL AND deal_id IS NULL",
        ),
        "deal_id" => (
            "SELECT count(*) AS total FROM \
             (SELECT 1 FROM crm_activities WHERE tenant_id = $1 AND deal_id = $2 FOR UPDATE) AS held",
            "DELETE FROM crm_activities WHERE tenant_id = $1 AND deal_id = $2 \
             AND lead_id IS NULL AND contact_id IS NULL AND company_id IS NULL",
        ),
        other => return Err(Failure::Infra(InfraError::internal(format!("no activity link {other}")))),
    };
    // Every activity about the record is held first, so none loses its other links (and
    // would be left naming nothing) between this deletion and the record's.
    let _: crate::meters::Counted = diesel::sql_query(lock)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await?;
    let deleted = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(u64::try_from(deleted).unwrap_or_default())
}

/// A deletion's audit entry with the number of the record's activities
/// deleted with it (`activitiesDeleted`), when there were any.
pub(crate) fn with_activities_deleted(
    mut entry: portico_kernel::AuditEntry,
    deleted: u64,
) -> portico_kernel::AuditEntry {
    if deleted > 0
        && let Some(fields) = entry.changes.as_object_mut()
    {
        fields.insert("activitiesDeleted".to_owned(), serde_json::json!(deleted));
    }
    entry
}
