//! Contacts (the people a tenant deals with) and companies, with the drafts
//! that create and change them. A contact's emails and phones are kept
//! normalised, each at most once, and exactly one of each kind is primary
//! when it has any.

use chrono::{DateTime, Utc};
use portico_kernel::{CompanyId, ContactId, FieldError, UserId, ValidationErrors};

use crate::CrmError;
use crate::normalise::{company_domain, host_of, normalise_email, normalise_phone, normalise_tags};
use crate::text::{plain_text, plain_text_opt};

/// Most email addresses, or phone numbers, a draft may give a contact.
pub const MAX_CHANNELS: usize = 10;
/// Most tags a draft may give a record.
pub const MAX_TAGS: usize = 20;

/// The relationship the tenant has with a contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactType {
    /// Buys from the tenant.
    Customer,
    /// Might buy from the tenant (the default).
    #[default]
    Prospect,
    /// Works with the tenant.
    Partner,
    /// Sells to the tenant.
    Vendor,
}

/// Whether a contact is still someone the tenant deals with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    /// Current (the default).
    #[default]
    Active,
    /// No longer dealt with; kept for the record.
    Inactive,
}

/// What an email address is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmailLabel {
    /// At work (the default).
    #[default]
    Work,
    /// Private.
    Personal,
    /// Anything else.
    Other,
}

/// What a phone number is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PhoneLabel {
    /// At work (the default).
    #[default]
    Work,
    /// A mobile phone.
    Mobile,
    /// At home.
    Home,
    /// A fax machine.
    Fax,
    /// Anything else.
    Other,
}

/// One email address of a contact, normalised (trimmed, lower case).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactEmail {
    /// The address.
    pub address: String,
    /// What it is for.
    pub label: EmailLabel,
    /// Whether it is the one to write to.
    pub primary: bool,
}

/// One phone number of a contact, in E.164 form (`+49301234567`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactPhone {
    /// The number.
    pub number: String,
    /// What it is for.
    pub label: PhoneLabel,
    /// Whether it is the one to call.
    pub primary: bool,
}

/// A person the tenant deals with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f21", "firstName": "Sam", "lastName": "Taylor",
    "displayName": "Sam Taylor", "contactType": "customer", "status": "active",
    "emails": [{"address": "sam@acme.example", "label": "work", "primary": true}],
    "phones": [{"number": "+49301234567", "label": "work", "primary": true}],
    "companyId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f22",
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["vip"],
    "createdAt": "2026-03-02T09:00:00Z", "updatedAt": "2026-03-02T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: ContactId,
    /// Given name, if known.
    pub first_name: Option<String>,
    /// Family name, if known.
    pub last_name: Option<String>,
    /// The name shown: as given, else the first and last name.
    pub display_name: String,
    /// The relationship.
    pub contact_type: ContactType,
    /// Whether it is current.
    pub status: ContactStatus,
    /// Its email addresses, one primary when there are any.
    pub emails: Vec<ContactEmail>,
    /// Its phone numbers, one primary when there are any.
    pub phones: Vec<ContactPhone>,
    /// The company the person works for.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub company_id: Option<CompanyId>,
    /// The user responsible for it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub owner_id: Option<UserId>,
    /// Free labels, each once whatever its case.
    pub tags: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Contact {
    /// The address to write to, if it has any.
    #[must_use]
    pub fn primary_email(&self) -> Option<&str> {
        self.emails.iter().find(|e| e.primary).map(|e| e.address.as_str())
    }

    /// The number to call, if it has any.
    #[must_use]
    pub fn primary_phone(&self) -> Option<&str> {
        self.phones.iter().find(|p| p.primary).map(|p| p.number.as_str())
    }
}

/// One email address of a [`ContactDraft`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailDraft {
    /// The address, any case (kept lower-cased).
    #[garde(length(chars, min = 1, max = 254))]
    pub address: String,
    /// What it is for (`work` when absent).
    #[serde(default)]
    #[garde(skip)]
    pub label: EmailLabel,
    /// Whether it is the one to write to; the first is when none says so.
    #[serde(default)]
    #[garde(skip)]
    pub primary: bool,
}

/// One phone number of a [`ContactDraft`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneDraft {
    /// `+49 30 1234567`, `0049 (30) 123-4567`, or national (`030 1234567`)
    /// in the tenant's country; kept in E.164 form.
    #[garde(length(chars, min = 1, max = 40))]
    pub number: String,
    /// What it is for (`work` when absent).
    #[serde(default)]
    #[garde(skip)]
    pub label: PhoneLabel,
    /// Whether it is the one to call; the first is when none says so.
    #[serde(default)]
    #[garde(skip)]
    pub primary: bool,
}

/// Creates a contact or changes one (`POST`/`PUT /api/v1/crm/contacts`): a
/// change replaces every field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "firstName": "Sam", "lastName": "Taylor", "contactType": "customer",
    "emails": [{"address": "Sam@Acme.example", "primary": true}, {"address": "sam@home.example", "label": "personal"}],
    "phones": [{"number": "030 1234567"}, {"number": "+49 171 2345678", "label": "mobile"}],
    "companyId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f22",
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["vip"]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactDraft {
    /// Given name, 1 to 100 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 100), custom(plain_text_opt))]
    pub first_name: Option<String>,
    /// Family name, 1 to 100 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 100), custom(plain_text_opt))]
    pub last_name: Option<String>,
    /// The name shown, 1 to 200 characters; the first and last name when absent
    /// (one of the three is needed).
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 200), custom(plain_text_opt))]
    pub display_name: Option<String>,
    /// The relationship (`prospect` when absent).
    #[serde(default)]
    #[garde(skip)]
    pub contact_type: ContactType,
    /// `active` (the default) or `inactive`.
    #[serde(default)]
    #[garde(skip)]
    pub status: ContactStatus,
    /// Up to 10 email addresses, each once; at most one primary.
    #[serde(default)]
    #[garde(length(max = MAX_CHANNELS), dive)]
    pub emails: Vec<EmailDraft>,
    /// Up to 10 phone numbers, each once; at most one primary.
    #[serde(default)]
    #[garde(length(max = MAX_CHANNELS), dive)]
    pub phones: Vec<PhoneDraft>,
    /// The company the person works for.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub company_id: Option<CompanyId>,
    /// The user responsible for it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub owner_id: Option<UserId>,
    /// Up to 20 tags of 1 to 50 characters; repeats in any case are dropped.
    #[serde(default)]
    #[garde(length(max = MAX_TAGS), inner(length(chars, min = 1, max = 50), custom(plain_text)))]
    pub tags: Vec<String>,
}

impl ContactDraft {
    /// The new contact `id` as the draft describes it, checked; national
    /// phone numbers are read in the country of `calling_code` (`"49"`).
    pub fn validated(
        self,
        id: ContactId,
        calling_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Contact, CrmError> {
        self.build(id, calling_code, now, now)
    }

    /// `contact` changed to what the draft describes, checked; its id and
    /// creation time stay.
    pub fn apply(
        self,
        contact: &Contact,
        calling_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Contact, CrmError> {
        self.build(contact.id, calling_code, contact.created_at, now)
    }

    fn build(
        self,
        id: ContactId,
        calling_code: Option<&str>,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Contact, CrmError> {
        let mut errors = garde_errors(&self);
        let first_name = trimmed(self.first_name);
        let last_name = trimmed(self.last_name);
        let joined = [first_name.as_deref(), last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        let display_name = trimmed(self.display_name).unwrap_or_else(|| joined.join(" "));
        if display_name.is_empty() {
            errors.0.push(FieldError {
                field: "displayName".into(),
                message: "give a first name, a last name or a display name".into(),
            });
        }
        let emails = settle_channels(
            "emails",
            "address",
            self.emails.into_iter().map(|e| (e.address, e.label, e.primary)).collect(),
            |text| normalise_email(text).ok_or("not an email address"),
            &mut errors,
        );
        let phones = settle_channels(
            "phones",
            "number",
            self.phones.into_iter().map(|p| (p.number, p.label, p.primary)).collect(),
            |text| {
                normalise_phone(text, calling_code).ok_or(
                    "not a phone number: 8 to 15 digits, with +country code or in the tenant's country",
                )
            },
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(CrmError::Invalid(errors));
        }
        Ok(Contact {
            id,
            first_name,
            last_name,
            display_name,
            contact_type: self.contact_type,
            status: self.status,
            emails: emails
                .into_iter()
                .map(|(address, label, primary)| ContactEmail { address, label, primary })
                .collect(),
            phones: phones
                .into_iter()
                .map(|(number, label, primary)| ContactPhone { number, label, primary })
                .collect(),
            company_id: self.company_id,
            owner_id: self.owner_id,
            tags: normalise_tags(&self.tags),
            created_at,
            updated_at: now,
        })
    }
}

/// What size a company is, by head count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CompanySize {
    /// 1 to 10 people.
    #[serde(rename = "1-10")]
    UpTo10,
    /// 11 to 50 people.
    #[serde(rename = "11-50")]
    UpTo50,
    /// 51 to 200 people.
    #[serde(rename = "51-200")]
    UpTo200,
    /// 201 to 500 people.
    #[serde(rename = "201-500")]
    UpTo500,
    /// 501 to 1,000 people.
    #[serde(rename = "501-1000")]
    UpTo1000,
    /// 1,001 to 5,000 people.
    #[serde(rename = "1001-5000")]
    UpTo5000,
    /// More than 5,000 people.
    #[serde(rename = "5001+")]
    Over5000,
}

/// A postal address; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    /// Street and number, 1 to 200 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 200), custom(plain_text_opt))]
    pub street: Option<String>,
    /// Postal code, 1 to 20 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 20), custom(plain_text_opt))]
    pub postal_code: Option<String>,
    /// City, 1 to 100 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 100), custom(plain_text_opt))]
    pub city: Option<String>,
    /// State or region, 1 to 100 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 100), custom(plain_text_opt))]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code (`DE`).
    #[serde(default)]
    #[garde(custom(country_code))]
    pub country: Option<String>,
}

#[allow(clippy::ref_option)] // garde hands optional fields over as `&Option<T>`
fn country_code(value: &Option<String>, _: &()) -> garde::Result {
    match value {
        Some(code) if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(garde::Error::new("an ISO 3166-1 alpha-2 code in upper case (DE)"))
        }
        _ => Ok(()),
    }
}

/// A company the tenant deals with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f22", "name": "Acme GmbH", "domain": "acme.example",
    "industry": "Property management", "size": "11-50",
    "address": {"street": "Hauptstraße 1", "postalCode": "10115", "city": "Berlin", "country": "DE"},
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["key-account"],
    "createdAt": "2026-03-02T09:00:00Z", "updatedAt": "2026-03-02T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: CompanyId,
    /// Its name.
    pub name: String,
    /// Its web domain, normalised (`acme.example`); never a free-mail provider's.
    pub domain: Option<String>,
    /// What it does.
    pub industry: Option<String>,
    /// How many people work there.
    pub size: Option<CompanySize>,
    /// Where it is.
    pub address: Option<Address>,
    /// The user responsible for it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub owner_id: Option<UserId>,
    /// Free labels, each once whatever its case.
    pub tags: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Creates a company or changes one (`POST`/`PUT /api/v1/crm/companies`): a
/// change replaces every field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Acme GmbH", "domain": "https://www.acme.example/", "industry": "Property management",
    "size": "11-50", "address": {"city": "Berlin", "country": "DE"},
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["key-account"]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyDraft {
    /// 1 to 200 characters, not blank.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub name: String,
    /// Its web domain, website or an email address there; kept as the bare
    /// domain (`acme.example`). Free-mail providers are refused.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 2048), custom(plain_text_opt))]
    pub domain: Option<String>,
    /// What it does, 1 to 100 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 100), custom(plain_text_opt))]
    pub industry: Option<String>,
    /// How many people work there (`1-10`, `11-50`, `51-200`, `201-500`,
    /// `501-1000`, `1001-5000`, `5001+`).
    #[serde(default)]
    #[garde(skip)]
    pub size: Option<CompanySize>,
    /// Where it is.
    #[serde(default)]
    #[garde(dive)]
    pub address: Option<Address>,
    /// The user responsible for it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub owner_id: Option<UserId>,
    /// Up to 20 tags of 1 to 50 characters; repeats in any case are dropped.
    #[serde(default)]
    #[garde(length(max = MAX_TAGS), inner(length(chars, min = 1, max = 50), custom(plain_text)))]
    pub tags: Vec<String>,
}

impl CompanyDraft {
    /// The new company `id` as the draft describes it, checked.
    pub fn validated(self, id: CompanyId, now: DateTime<Utc>) -> Result<Company, CrmError> {
        self.build(id, now, now)
    }

    /// `company` changed to what the draft describes, checked; its id and
    /// creation time stay.
    pub fn apply(self, company: &Company, now: DateTime<Utc>) -> Result<Company, CrmError> {
        self.build(company.id, company.created_at, now)
    }

    fn build(
        self,
        id: CompanyId,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Company, CrmError> {
        let mut errors = garde_errors(&self);
        let domain = match self.domain.as_deref().map(|text| (text, company_domain(text))) {
            None => None,
            Some((_, Some(domain))) => Some(domain),
            Some((text, None)) => {
                let message = if host_of(text).is_some() {
                    "a free-mail provider's domain is not a company's"
                } else {
                    "not a domain, website or email address"
                };
                errors.0.push(FieldError { field: "domain".into(), message: message.into() });
                None
            }
        };
        if !errors.is_empty() {
            return Err(CrmError::Invalid(errors));
        }
        Ok(Company {
            id,
            name: self.name.trim().to_owned(),
            domain,
            industry: trimmed(self.industry),
            size: self.size,
            // An address with no part is no address.
            address: self.address.filter(|a| a != &Address::default()),
            owner_id: self.owner_id,
            tags: normalise_tags(&self.tags),
            created_at,
            updated_at: now,
        })
    }
}

/// The garde failures of `command`, or none.
pub(crate) fn garde_errors<T: garde::Validate<Context = ()>>(command: &T) -> ValidationErrors {
    command.validate().map(|()| ValidationErrors::default()).unwrap_or_else(ValidationErrors::from)
}

/// `value` trimmed; `None` when nothing is left.
pub(crate) fn trimmed(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Normalises each entry of a list of emails or phones, refusing the
/// malformed and the repeated, and settles the primary: at most one may say
/// so, and the first is when none does.
fn settle_channels<L>(
    list: &str,
    value_field: &str,
    entries: Vec<(String, L, bool)>,
    normalise: impl Fn(&str) -> Result<String, &'static str>,
    errors: &mut ValidationErrors,
) -> Vec<(String, L, bool)> {
    let mut settled: Vec<(String, L, bool)> = Vec::with_capacity(entries.len());
    let mut failed = false;
    for (index, (text, label, primary)) in entries.into_iter().enumerate() {
        let field = format!("{list}[{index}].{value_field}");
        match normalise(&text) {
            Err(message) => {
                failed = true;
                errors.0.push(FieldError { field, message: message.into() });
            }
            Ok(value) => {
                if let Some(first) = settled.iter().position(|(seen, _, _)| *seen == value) {
                    failed = true;
                    errors.0.push(FieldError { field, message: format!("the same as {list}[{first}]") });
                }
                settled.push((value, label, primary));
            }
        }
    }
    if settled.iter().filter(|(_, _, primary)| *primary).count() > 1 {
        errors.0.push(FieldError { field: list.into(), message: "only one can be primary".into() });
    } else if !failed
        && !settled.iter().any(|(_, _, primary)| *primary)
        && let Some(first) = settled.first_mut()
    {
        first.2 = true;
    }
    settled
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn contact_draft(body: serde_json::Value) -> ContactDraft {
        serde_json::from_value(body).unwrap()
    }

    fn refused_fields(result: Result<Contact, CrmError>) -> Vec<String> {
        let Err(CrmError::Invalid(errors)) = result else { panic!("refused: {result:?}") };
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_contact_keeps_its_emails_and_phones_normalised() {
        let draft = contact_draft(json!({
            "firstName": " Sam ", "lastName": "Taylor",
            "emails": [{"address": " Sam@ACME.example"}, {"address": "sam@home.example", "label": "personal"}],
            "phones": [{"number": "030 1234567"}, {"number": "+49 171 2345678", "label": "mobile", "primary": true}]
        }));
        let contact = draft.validated(ContactId::new(), Some("49"), now()).unwrap();
        assert_eq!(contact.display_name, "Sam Taylor");
        assert_eq!(contact.first_name.as_deref(), Some("Sam"));
        assert_eq!(contact.primary_email(), Some("sam@acme.example"), "the first, as none says so");
        assert_eq!(contact.emails[1].address, "sam@home.example");
        assert!(!contact.emails[1].primary);
        assert_eq!(contact.primary_phone(), Some("+491712345678"));
        assert_eq!(contact.phones[0].number, "+49301234567");
        assert!(!contact.phones[0].primary, "the one marked primary is");
        assert_eq!((contact.contact_type, contact.status), (ContactType::Prospect, ContactStatus::Active));
        assert_eq!((contact.created_at, contact.updated_at), (now(), now()));
    }

    #[test]
    fn two_primary_emails_are_refused() {
        let draft = contact_draft(json!({
            "displayName": "Sam",
            "emails": [{"address": "a@acme.example", "primary": true}, {"address": "b@acme.example", "primary": true}]
        }));
        assert_eq!(refused_fields(draft.validated(ContactId::new(), None, now())), ["emails"]);
    }

    #[test]
    fn the_same_email_or_phone_twice_is_refused_however_it_is_written() {
        let draft = contact_draft(json!({
            "displayName": "Sam",
            "emails": [{"address": "sam@acme.example"}, {"address": "SAM@acme.example "}],
            "phones": [{"number": "+49 30 1234567"}, {"number": "0049 (30) 123-4567"}]
        }));
        assert_eq!(
            refused_fields(draft.validated(ContactId::new(), None, now())),
            ["emails[1].address", "phones[1].number"]
        );
    }

    #[test]
    fn emails_and_phones_that_are_not_name_their_field() {
        let draft = contact_draft(json!({
            "displayName": "Sam",
            "emails": [{"address": "sam@acme.example"}, {"address": "sam at acme"}],
            "phones": [{"number": "030 1234567"}]
        }));
        // No calling code: a national number cannot be read.
        assert_eq!(
            refused_fields(draft.validated(ContactId::new(), None, now())),
            ["emails[1].address", "phones[0].number"]
        );
    }

    #[test]
    fn a_contact_needs_a_first_last_or_display_name() {
        let draft = contact_draft(json!({"emails": [{"address": "sam@acme.example"}]}));
        assert_eq!(refused_fields(draft.validated(ContactId::new(), None, now())), ["displayName"]);
        let only_last = contact_draft(json!({"lastName": "Taylor"}));
        assert_eq!(only_last.validated(ContactId::new(), None, now()).unwrap().display_name, "Taylor");
        let shown = contact_draft(json!({"firstName": "Samantha", "displayName": "Sam T."}));
        assert_eq!(shown.validated(ContactId::new(), None, now()).unwrap().display_name, "Sam T.");
    }

    #[test]
    fn a_contact_draft_refuses_unknown_fields_and_too_many_tags() {
        assert!(serde_json::from_value::<ContactDraft>(json!({"displayName": "Sam", "email": "x"})).is_err());
        let tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        let draft = contact_draft(json!({"displayName": "Sam", "tags": tags}));
        assert_eq!(refused_fields(draft.validated(ContactId::new(), None, now())), ["tags"]);
        let repeated = contact_draft(json!({"displayName": "Sam", "tags": ["VIP", "vip", " berlin"]}));
        assert_eq!(repeated.validated(ContactId::new(), None, now()).unwrap().tags, ["VIP", "berlin"]);
    }

    #[test]
    fn a_change_keeps_the_id_and_creation_time() {
        let contact =
            contact_draft(json!({"displayName": "Sam"})).validated(ContactId::new(), None, now()).unwrap();
        let later = now() + chrono::Duration::days(3);
        let changed = contact_draft(json!({"displayName": "Sam Taylor", "status": "inactive"}))
            .apply(&contact, None, later)
            .unwrap();
        assert_eq!((changed.id, changed.created_at, changed.updated_at), (contact.id, now(), later));
        assert_eq!((changed.display_name.as_str(), changed.status), ("Sam Taylor", ContactStatus::Inactive));
    }

    #[test]
    fn a_company_keeps_the_bare_domain_of_its_website() {
        let draft: CompanyDraft = serde_json::from_value(json!({
            "name": " Acme GmbH ", "domain": "https://www.Acme.example/about", "size": "11-50",
            "address": {"city": "Berlin", "country": "DE"}
        }))
        .unwrap();
        let company = draft.validated(CompanyId::new(), now()).unwrap();
        assert_eq!(company.name, "Acme GmbH");
        assert_eq!(company.domain.as_deref(), Some("acme.example"));
        assert_eq!(company.size, Some(CompanySize::UpTo50));
        assert_eq!(company.address.and_then(|a| a.city).as_deref(), Some("Berlin"));
    }

    #[test]
    fn a_company_refuses_a_free_mail_domain_and_a_bad_country() {
        let draft: CompanyDraft = serde_json::from_value(json!({
            "name": "Acme", "domain": "sam@gmail.com", "address": {"country": "de"}
        }))
        .unwrap();
        let Err(CrmError::Invalid(errors)) = draft.validated(CompanyId::new(), now()) else {
            panic!("refused")
        };
        assert_eq!(errors.fields(), ["address.country", "domain"]);
        assert_eq!(errors.0[1].message, "a free-mail provider's domain is not a company's");
    }

    #[test]
    fn company_sizes_are_written_as_head_count_bands() {
        assert_eq!(serde_json::to_value(CompanySize::Over5000).unwrap(), json!("5001+"));
        assert_eq!(serde_json::from_value::<CompanySize>(json!("201-500")).unwrap(), CompanySize::UpTo500);
    }
}
