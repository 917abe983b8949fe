//! Leads: people who might buy, not yet customers. Their status moves as a
//! state machine, and a qualified lead converts, once, into a contact, a
//! company and a deal, linking to the contact and company the tenant has
//! when they match.
//!
//! The status moves (any other move is refused with `crm.lead_transition`):
//!
//! | from          | to                                  |
//! |---------------|-------------------------------------|
//! | `new`         | `contacted`, `qualified`, `unqualified` |
//! | `contacted`   | `qualified`, `unqualified`          |
//! | `qualified`   | `contacted` (qualification withdrawn), `unqualified` |
//! | `unqualified` | `contacted` (talking again)         |
//! | `converted`   | nothing: final (`crm.lead_converted`) |
//!
//! No lead goes back to `new` (someone has dealt with it), and only
//! [`plan_conversion`] makes a lead `converted`. Asking for the status a
//! lead has changes nothing, so a repeated request succeeds.

use chrono::{DateTime, Utc};
use portico_kernel::{
    CompanyId, ContactId, DealId, FieldError, LeadId, Money, PipelineId, StageId, UserId, ValidationErrors,
};

use crate::contact::{
    Company, Contact, ContactEmail, ContactPhone, ContactStatus, ContactType, EmailLabel, MAX_TAGS,
    PhoneLabel, garde_errors, trimmed,
};
use crate::duplicates::{company_with_domain, company_with_name, contact_with_email};
use crate::normalise::{company_domain, normalise_email, normalise_phone, normalise_tags};
use crate::text::{amount_opt, plain_text, plain_text_opt};
use crate::{CrmError, Deal, DealDraft, Pipeline};

/// Where a lead came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeadSource {
    /// A form on the tenant's website.
    Website,
    /// Someone recommended the tenant.
    Referral,
    /// A marketing campaign.
    Campaign,
    /// A file import.
    Import,
    /// Typed in by a user (the default).
    #[default]
    Manual,
    /// Anything else.
    Other,
}

/// How far a lead has come; see the module's table for the moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Nobody has dealt with it yet.
    New,
    /// Someone got in touch.
    Contacted,
    /// Worth selling to: it may be converted.
    Qualified,
    /// Not worth selling to, for now.
    Unqualified,
    /// Converted into a contact (and maybe a company and a deal); final.
    Converted,
}

impl LeadStatus {
    /// The name in the API and the database (`qualified`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Contacted => "contacted",
            Self::Qualified => "qualified",
            Self::Unqualified => "unqualified",
            Self::Converted => "converted",
        }
    }

    /// Whether a lead may move from this status to `to` by a status change.
    #[must_use]
    pub const fn can_become(self, to: Self) -> bool {
        use LeadStatus::{Contacted, New, Qualified, Unqualified};
        matches!(
            (self, to),
            (New, Contacted | Qualified | Unqualified)
                | (Contacted, Qualified | Unqualified)
                | (Qualified, Contacted | Unqualified)
                | (Unqualified, Contacted)
        )
    }
}

impl std::fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lead's status, with what its conversion produced once converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LeadState {
    /// Nobody has dealt with it yet.
    New,
    /// Someone got in touch.
    Contacted,
    /// Worth selling to: it may be converted.
    Qualified,
    /// Not worth selling to, for now.
    Unqualified,
    /// Converted; final.
    #[serde(rename_all = "camelCase")]
    Converted {
        /// The contact it became or was linked to; `None` once that contact
        /// was deleted (the lead stays converted: it converts once).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
        contact_id: Option<ContactId>,
        /// The company it became or was linked to, if any.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
        company_id: Option<CompanyId>,
        /// The deal opened for it, if any.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
        deal_id: Option<DealId>,
        /// When it was converted.
        converted_at: DateTime<Utc>,
    },
}

impl LeadState {
    /// The status, without what a conversion produced.
    #[must_use]
    pub const fn status(&self) -> LeadStatus {
        match self {
            Self::New => LeadStatus::New,
            Self::Contacted => LeadStatus::Contacted,
            Self::Qualified => LeadStatus::Qualified,
            Self::Unqualified => LeadStatus::Unqualified,
            Self::Converted { .. } => LeadStatus::Converted,
        }
    }
}

/// Someone who might buy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f26", "name": "Sam Taylor", "email": "sam@acme.example",
    "phone": "+49301234567", "companyName": "Acme GmbH", "source": "website", "status": "qualified",
    "estimatedValue": {"amountMinor": 1200000, "currency": "EUR"},
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["trade-fair-2026"],
    "createdAt": "2026-03-02T09:00:00Z", "updatedAt": "2026-03-04T15:30:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Lead {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: LeadId,
    /// The person's name.
    pub name: String,
    /// Their email address, normalised.
    pub email: Option<String>,
    /// Their phone number, in E.164 form.
    pub phone: Option<String>,
    /// The company they work for, as they gave it.
    pub company_name: Option<String>,
    /// Where the lead came from.
    pub source: LeadSource,
    /// Its status (`status`), and once converted what it became.
    #[serde(flatten)]
    pub state: LeadState,
    /// What a sale might be worth.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub estimated_value: Option<Money>,
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

impl Lead {
    /// Its status.
    #[must_use]
    pub const fn status(&self) -> LeadStatus {
        self.state.status()
    }

    /// The lead moved to `to` at `now`, if the module's table allows it.
    pub fn change_status(&self, to: LeadStatus, now: DateTime<Utc>) -> Result<Self, CrmError> {
        let from = self.status();
        if from == LeadStatus::Converted {
            return Err(CrmError::LeadConverted);
        }
        if from == to {
            return Ok(self.clone());
        }
        let state = match to {
            _ if !from.can_become(to) => return Err(CrmError::LeadTransition { from, to }),
            LeadStatus::Contacted => LeadState::Contacted,
            LeadStatus::Qualified => LeadState::Qualified,
            LeadStatus::Unqualified => LeadState::Unqualified,
            // No move leads to these; `can_become` said so above.
            LeadStatus::New | LeadStatus::Converted => return Err(CrmError::LeadTransition { from, to }),
        };
        Ok(Self { state, updated_at: now, ..self.clone() })
    }
}

/// Creates a lead or changes one (`POST`/`PUT /api/v1/crm/leads`): a change
/// replaces every field but the status, which moves by [`ChangeLeadStatus`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Sam Taylor", "email": "Sam@Acme.example", "phone": "030 1234567", "companyName": "Acme GmbH",
    "source": "website", "estimatedValue": {"amountMinor": 1200000, "currency": "EUR"},
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23", "tags": ["trade-fair-2026"]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadDraft {
    /// The person's name, 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub name: String,
    /// Their email address, any case (kept lower-cased).
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 254))]
    pub email: Option<String>,
    /// Their phone number: international, or national in the tenant's country
    /// (kept in E.164 form).
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 40))]
    pub phone: Option<String>,
    /// The company they work for, 1 to 200 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 200), custom(plain_text_opt))]
    pub company_name: Option<String>,
    /// Where the lead came from (`manual` when absent).
    #[serde(default)]
    #[garde(skip)]
    pub source: LeadSource,
    /// What a sale might be worth; not negative.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    #[serde(default)]
    #[garde(custom(amount_opt))]
    pub estimated_value: Option<Money>,
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

#[allow(clippy::ref_option)] // garde hands optional fields over as `&Option<T>`
impl LeadDraft {
    /// The new lead `id` as the draft describes it, checked, with status
    /// `new`; a national phone number is read in the country of `calling_code`.
    pub fn validated(
        self,
        id: LeadId,
        calling_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Lead, CrmError> {
        self.build(id, LeadState::New, calling_code, now, now)
    }

    /// `lead` changed to what the draft describes, checked; its id, status and
    /// creation time stay. A converted lead is a record of the past and does not change.
    pub fn apply(
        self,
        lead: &Lead,
        calling_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Lead, CrmError> {
        if lead.status() == LeadStatus::Converted {
            return Err(CrmError::LeadConverted);
        }
        self.build(lead.id, lead.state, calling_code, lead.created_at, now)
    }

    fn build(
        self,
        id: LeadId,
        state: LeadState,
        calling_code: Option<&str>,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Lead, CrmError> {
        let mut errors = garde_errors(&self);
        let email = self.email.as_deref().and_then(|text| {
            let email = normalise_email(text);
            if email.is_none() {
                errors.0.push(FieldError { field: "email".into(), message: "not an email address".into() });
            }
            email
        });
        let phone = self.phone.as_deref().and_then(|text| {
            let phone = normalise_phone(text, calling_code);
            if phone.is_none() {
                errors.0.push(FieldError {
                    field: "phone".into(),
                    message:
                        "not a phone number: 8 to 15 digits, with +country code or in the tenant's country"
                            .into(),
                });
            }
            phone
        });
        if !errors.is_empty() {
            return Err(CrmError::Invalid(errors));
        }
        Ok(Lead {
            id,
            name: self.name.trim().to_owned(),
            email,
            phone,
            company_name: trimmed(self.company_name),
            source: self.source,
            state,
            estimated_value: self.estimated_value,
            owner_id: self.owner_id,
            tags: normalise_tags(&self.tags),
            created_at,
            updated_at: now,
        })
    }
}

/// Moves a lead to another status (`POST /api/v1/crm/leads/{id}/status`);
/// conversion has its own operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"status": "qualified"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeLeadStatus {
    /// The status to move to.
    pub status: LeadStatus,
}

impl ChangeLeadStatus {
    /// `lead` moved to the status asked for at `now`.
    pub fn apply(self, lead: &Lead, now: DateTime<Utc>) -> Result<Lead, CrmError> {
        lead.change_status(self.status, now)
    }
}

/// Converts a qualified lead (`POST /api/v1/crm/leads/{id}/convert`).
/// Without ids, the contact and company are matched or created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "contactType": "prospect",
    "deal": {"pipelineId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f27",
             "stageId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f28", "title": "Acme: 40 flats"}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConvertLead {
    /// Link this contact rather than the one matched by email.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub contact_id: Option<ContactId>,
    /// Link this company rather than the one matched by domain or name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    #[garde(skip)]
    pub company_id: Option<CompanyId>,
    /// The type of a contact created from the lead (`prospect` when absent).
    #[serde(default)]
    #[garde(skip)]
    pub contact_type: ContactType,
    /// A deal to open for the lead, if any.
    #[serde(default)]
    #[garde(dive)]
    pub deal: Option<DealFromLead>,
}

/// The deal a conversion opens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DealFromLead {
    /// Its pipeline.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub pipeline_id: PipelineId,
    /// Its stage, one of the pipeline's.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub stage_id: StageId,
    /// 1 to 200 characters; the lead's company name, else its name, when absent.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 200), custom(plain_text_opt))]
    pub title: Option<String>,
    /// Its value, not negative; the lead's estimated value when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    #[serde(default)]
    #[garde(custom(amount_opt))]
    pub value: Option<Money>,
}

/// The ids the records a conversion creates get, chosen by the caller
/// (`ConversionIds::default()` makes fresh ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversionIds {
    /// For a new contact.
    pub contact_id: ContactId,
    /// For a new company.
    pub company_id: CompanyId,
    /// For a new deal.
    pub deal_id: DealId,
}

/// The contact a conversion ends at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactStep {
    /// One the tenant has.
    Link {
        /// The contact.
        contact_id: ContactId,
        /// The company to set on it, as it had none.
        set_company: Option<CompanyId>,
    },
    /// A new one, made from the lead.
    Create(Box<Contact>),
}

/// The company a conversion ends at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompanyStep {
    /// One the tenant has.
    Link {
        /// The company.
        company_id: CompanyId,
    },
    /// A new one, made from the lead's company name.
    Create(Box<Company>),
}

/// What converting a lead changes; the store writes it in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionPlan {
    /// The lead, converted.
    pub lead: Lead,
    /// The contact to link or create.
    pub contact: ContactStep,
    /// The company to link or create, if any.
    pub company: Option<CompanyStep>,
    /// The deal to open, if asked for.
    pub deal: Option<Deal>,
}

impl ConversionPlan {
    /// The contact the lead ends at.
    #[must_use]
    pub fn contact_id(&self) -> ContactId {
        match &self.contact {
            ContactStep::Link { contact_id, .. } => *contact_id,
            ContactStep::Create(contact) => contact.id,
        }
    }

    /// The company the lead ends at, if any.
    #[must_use]
    pub fn company_id(&self) -> Option<CompanyId> {
        self.company.as_ref().map(|step| match step {
            CompanyStep::Link { company_id } => *company_id,
            CompanyStep::Create(company) => company.id,
        })
    }
}

/// Plans the conversion of `lead` at `now`. `contacts` and `companies` are
/// the candidates the store found (those with the lead's email, domain or
/// company name, and those the command names).
///
/// The contact: the one the command names, else the one with the lead's
/// email address, else a new one from the lead. The company: the one the
/// command names, else the one with the domain of the lead's email (not a
/// free-mail provider's), else the one with the lead's company name
/// (normalised), else a new one if the lead has a company name. A deal's
/// value defaults to the lead's estimated value, and one of the two is needed.
#[allow(clippy::too_many_arguments)] // the loaded records, the command, who, the ids and the time
pub fn plan_conversion(
    lead: &Lead,
    contacts: &[Contact],
    companies: &[Company],
    command: &ConvertLead,
    pipeline: Option<&Pipeline>,
    by: UserId,
    ids: ConversionIds,
    now: DateTime<Utc>,
) -> Result<ConversionPlan, CrmError> {
    let errors = garde_errors(command);
    if !errors.is_empty() {
        return Err(CrmError::Invalid(errors));
    }
    match lead.status() {
        LeadStatus::Qualified => {}
        LeadStatus::Converted => return Err(CrmError::LeadConverted),
        status => return Err(CrmError::LeadNotQualified(status)),
    }

    let email_domain = lead.email.as_deref().and_then(company_domain);
    let company = match command.company_id {
        Some(id) => Some(companies.iter().find(|c| c.id == id).ok_or(CrmError::CompanyNotFound)?),
        None => email_domain
            .as_deref()
            .and_then(|domain| company_with_domain(companies, domain))
            .or_else(|| lead.company_name.as_deref().and_then(|name| company_with_name(companies, name))),
    };
    let company = match (company, &lead.company_name) {
        (Some(found), _) => Some(CompanyStep::Link { company_id: found.id }),
        (None, Some(name)) => Some(CompanyStep::Create(Box::new(Company {
            id: ids.company_id,
            name: name.clone(),
            domain: email_domain,
            industry: None,
            size: None,
            address: None,
            owner_id: lead.owner_id,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
        }))),
        (None, None) => None,
    };
    let company_id = company.as_ref().map(|step| match step {
        CompanyStep::Link { company_id } => *company_id,
        CompanyStep::Create(created) => created.id,
    });

    let existing = match command.contact_id {
        Some(id) => Some(contacts.iter().find(|c| c.id == id).ok_or(CrmError::ContactNotFound)?),
        None => lead.email.as_deref().and_then(|email| contact_with_email(contacts, email)),
    };
    let contact = match existing {
        Some(found) => ContactStep::Link {
            contact_id: found.id,
            set_company: if found.company_id.is_none() { company_id } else { None },
        },
        None => ContactStep::Create(Box::new(contact_from(
            lead,
            command.contact_type,
            ids.contact_id,
            company_id,
            now,
        ))),
    };
    let contact_id = match &contact {
        ContactStep::Link { contact_id, .. } => *contact_id,
        ContactStep::Create(created) => created.id,
    };

    let deal = match &command.deal {
        None => None,
        Some(asked) => {
            let value = asked.value.or(lead.estimated_value).ok_or_else(|| {
                CrmError::Invalid(ValidationErrors::field(
                    "deal.value",
                    "the lead has no estimated value: give the deal's value",
                ))
            })?;
            let title = trimmed(asked.title.clone())
                .or_else(|| lead.company_name.clone())
                .unwrap_or_else(|| lead.name.clone());
            // The deal is made by the deals' own rules: the stage is an open one of the pipeline.
            let pipeline =
                pipeline.filter(|p| p.id == asked.pipeline_id).ok_or(CrmError::PipelineNotFound)?;
            let draft = DealDraft {
                title,
                value,
                pipeline_id: asked.pipeline_id,
                stage_id: Some(asked.stage_id),
                probability: None,
                expected_close_date: None,
                owner_id: lead.owner_id,
                contact_id: Some(contact_id),
                company_id,
            };
            Some(draft.validated(ids.deal_id, pipeline, by, now)?)
        }
    };

    let converted = Lead {
        state: LeadState::Converted {
            contact_id: Some(contact_id),
            company_id,
            deal_id: deal.as_ref().map(|d| d.id),
            converted_at: now,
        },
        updated_at: now,
        ..lead.clone()
    };
    Ok(ConversionPlan { lead: converted, contact, company, deal })
}

/// A new contact with the lead's name, email, phone, owner and tags.
fn contact_from(
    lead: &Lead,
    contact_type: ContactType,
    id: ContactId,
    company_id: Option<CompanyId>,
    now: DateTime<Utc>,
) -> Contact {
    Contact {
        id,
        // Splitting a full name into first and last goes wrong too often to guess.
        first_name: None,
        last_name: None,
        display_name: lead.name.clone(),
        contact_type,
        status: ContactStatus::Active,
        emails: lead
            .email
            .iter()
            .map(|address| ContactEmail { address: address.clone(), label: EmailLabel::Work, primary: true })
            .collect(),
        phones: lead
            .phone
            .iter()
            .map(|number| ContactPhone { number: number.clone(), label: PhoneLabel::Work, primary: true })
            .collect(),
        company_id,
        owner_id: lead.owner_id,
        tags: lead.tags.clone(),
        created_at: now,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use portico_kernel::{Currency, DomainError, ErrorKind};
    use serde_json::json;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 9, 0, 0).unwrap()
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("EUR").unwrap())
    }

    /// Sam Taylor of Acme GmbH, worth 12,000.00 EUR, in `state`.
    fn lead(state: LeadState) -> Lead {
        Lead {
            id: LeadId::new(),
            name: "Sam Taylor".into(),
            email: Some("sam@acme.example".into()),
            phone: Some("+49301234567".into()),
            company_name: Some("Acme GmbH".into()),
            source: LeadSource::Website,
            state,
            estimated_value: Some(eur(1_200_000)),
            owner_id: Some(UserId::new()),
            tags: vec!["trade-fair-2026".into()],
            created_at: day(1),
            updated_at: day(1),
        }
    }

    fn contact_with(email: &str) -> Contact {
        let draft: crate::ContactDraft =
            serde_json::from_value(json!({"displayName": "Sam", "emails": [{"address": email}]})).unwrap();
        draft.validated(ContactId::new(), None, day(1)).unwrap()
    }

    fn company_named(name: &str, domain: Option<&str>) -> Company {
        let draft: crate::CompanyDraft =
            serde_json::from_value(json!({"name": name, "domain": domain})).unwrap();
        draft.validated(CompanyId::new(), day(1)).unwrap()
    }

    fn convert(body: serde_json::Value) -> ConvertLead {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn lead_status_moves_follow_the_table() {
        use LeadStatus::{Contacted, Converted, New, Qualified, Unqualified};
        let allowed = [
            (New, Contacted),
            (New, Qualified),
            (New, Unqualified),
            (Contacted, Qualified),
            (Contacted, Unqualified),
            (Qualified, Contacted),
            (Qualified, Unqualified),
            (Unqualified, Contacted),
        ];
        let all = [New, Contacted, Qualified, Unqualified, Converted];
        for from in all {
            for to in all {
                assert_eq!(from.can_become(to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn an_unqualified_lead_goes_back_to_contacted_not_straight_to_qualified() {
        let unqualified = lead(LeadState::Unqualified);
        let contacted = unqualified.change_status(LeadStatus::Contacted, day(2)).unwrap();
        assert_eq!((contacted.status(), contacted.updated_at), (LeadStatus::Contacted, day(2)));
        let err = unqualified.change_status(LeadStatus::Qualified, day(2)).unwrap_err();
        assert!(matches!(
            err,
            CrmError::LeadTransition { from: LeadStatus::Unqualified, to: LeadStatus::Qualified }
        ));
        assert_eq!((err.code(), err.kind()), ("crm.lead_transition", ErrorKind::Conflict));
        assert_eq!(err.to_string(), "a lead cannot go from unqualified to qualified");
    }

    #[test]
    fn no_status_change_converts_a_lead_or_makes_it_new_again() {
        let qualified = lead(LeadState::Qualified);
        assert!(matches!(
            qualified.change_status(LeadStatus::Converted, day(2)),
            Err(CrmError::LeadTransition { to: LeadStatus::Converted, .. })
        ));
        assert!(matches!(
            qualified.change_status(LeadStatus::New, day(2)),
            Err(CrmError::LeadTransition { to: LeadStatus::New, .. })
        ));
    }

    #[test]
    fn asking_for_the_status_a_lead_has_changes_nothing() {
        let contacted = lead(LeadState::Contacted);
        let command: ChangeLeadStatus = serde_json::from_value(json!({"status": "contacted"})).unwrap();
        assert_eq!(command.apply(&contacted, day(9)).unwrap(), contacted);
    }

    #[test]
    fn a_converted_lead_changes_no_more() {
        let converted = lead(LeadState::Converted {
            contact_id: Some(ContactId::new()),
            company_id: None,
            deal_id: None,
            converted_at: day(2),
        });
        for to in [LeadStatus::Contacted, LeadStatus::Converted] {
            assert!(matches!(converted.change_status(to, day(3)), Err(CrmError::LeadConverted)));
        }
        let draft: LeadDraft = serde_json::from_value(json!({"name": "Sam"})).unwrap();
        assert!(matches!(draft.apply(&converted, None, day(3)), Err(CrmError::LeadConverted)));
    }

    #[test]
    fn a_lead_draft_keeps_email_and_phone_normalised_and_starts_new() {
        let draft: LeadDraft = serde_json::from_value(json!({
            "name": " Sam Taylor ", "email": "Sam@ACME.example", "phone": "030 1234567",
            "companyName": "Acme GmbH", "source": "referral",
            "estimatedValue": {"amountMinor": 1200000, "currency": "EUR"}, "tags": ["a", "A"]
        }))
        .unwrap();
        let lead = draft.validated(LeadId::new(), Some("49"), day(1)).unwrap();
        assert_eq!(lead.name, "Sam Taylor");
        assert_eq!(
            (lead.email.as_deref(), lead.phone.as_deref()),
            (Some("sam@acme.example"), Some("+49301234567"))
        );
        assert_eq!((lead.status(), lead.source), (LeadStatus::New, LeadSource::Referral));
        assert_eq!((lead.estimated_value, lead.tags), (Some(eur(1_200_000)), vec!["a".to_owned()]));
    }

    #[test]
    fn a_lead_draft_names_each_bad_field() {
        let draft: LeadDraft = serde_json::from_value(json!({
            "name": "", "email": "sam at acme", "phone": "030 1234567",
            "estimatedValue": {"amountMinor": -1, "currency": "EUR"}
        }))
        .unwrap();
        let Err(CrmError::Invalid(errors)) = draft.validated(LeadId::new(), None, day(1)) else {
            panic!("refused")
        };
        let mut fields = errors.fields();
        fields.sort_unstable();
        assert_eq!(fields, ["email", "estimatedValue", "name", "phone"]);
        assert!(serde_json::from_value::<LeadDraft>(json!({"name": "Sam", "status": "new"})).is_err());
    }

    #[test]
    fn a_lead_is_written_with_its_status_beside_its_fields() {
        let contact_id = ContactId::new();
        let converted = lead(LeadState::Converted {
            contact_id: Some(contact_id),
            company_id: None,
            deal_id: None,
            converted_at: day(2),
        });
        let json = serde_json::to_value(&converted).unwrap();
        assert_eq!(json["status"], "converted");
        assert_eq!(json["contactId"], contact_id.to_string());
        assert_eq!(json["convertedAt"], "2026-03-02T09:00:00Z");
        assert_eq!(serde_json::from_value::<Lead>(json).unwrap(), converted);
        let fresh = serde_json::to_value(lead(LeadState::New)).unwrap();
        assert_eq!((fresh["status"].as_str(), fresh.get("contactId")), (Some("new"), None));
    }

    #[test]
    fn conversion_links_the_contact_with_the_leads_email_and_the_company_with_its_domain() {
        let sam = contact_with("SAM@acme.example");
        let acme = company_named("Acme Holding", Some("www.acme.example"));
        let qualified = lead(LeadState::Qualified);
        let ids = ConversionIds::default();
        let plan = plan_conversion(
            &qualified,
            std::slice::from_ref(&sam),
            std::slice::from_ref(&acme),
            &convert(json!({})),
            None,
            UserId::new(),
            ids,
            day(4),
        )
        .unwrap();
        assert_eq!(plan.contact, ContactStep::Link { contact_id: sam.id, set_company: Some(acme.id) });
        assert_eq!(plan.company, Some(CompanyStep::Link { company_id: acme.id }));
        assert_eq!(plan.deal, None);
        assert_eq!(
            plan.lead.state,
            LeadState::Converted {
                contact_id: Some(sam.id),
                company_id: Some(acme.id),
                deal_id: None,
                converted_at: day(4)
            }
        );
        assert_eq!(plan.lead.updated_at, day(4));
    }

    #[test]
    fn conversion_creates_the_contact_and_company_when_nothing_matches() {
        let qualified = lead(LeadState::Qualified);
        let ids = ConversionIds::default();
        let command = convert(json!({"contactType": "customer"}));
        let plan = plan_conversion(
            &qualified,
            &[contact_with("other@acme.example")],
            &[],
            &command,
            None,
            UserId::new(),
            ids,
            day(4),
        )
        .unwrap();
        let ContactStep::Create(contact) = &plan.contact else { panic!("a new contact: {:?}", plan.contact) };
        assert_eq!((contact.id, contact.display_name.as_str()), (ids.contact_id, "Sam Taylor"));
        assert_eq!(
            (contact.primary_email(), contact.primary_phone()),
            (Some("sam@acme.example"), Some("+49301234567"))
        );
        assert_eq!((contact.contact_type, contact.company_id), (ContactType::Customer, Some(ids.company_id)));
        assert_eq!((contact.owner_id, &contact.tags), (qualified.owner_id, &qualified.tags));
        let Some(CompanyStep::Create(company)) = &plan.company else {
            panic!("a new company: {:?}", plan.company)
        };
        assert_eq!((company.id, company.name.as_str()), (ids.company_id, "Acme GmbH"));
        assert_eq!((company.domain.as_deref(), company.owner_id), (Some("acme.example"), qualified.owner_id));
        assert_eq!((plan.contact_id(), plan.company_id()), (ids.contact_id, Some(ids.company_id)));
    }

    #[test]
    fn with_a_free_mail_address_the_company_is_matched_by_name() {
        let qualified = Lead {
            email: Some("sam@gmail.com".into()),
            company_name: Some("ACME gmbh".into()),
            ..lead(LeadState::Qualified)
        };
        let webmail = company_named("Google", None);
        let acme = company_named("Acme", None);
        let plan = plan_conversion(
            &qualified,
            &[],
            &[webmail, acme.clone()],
            &convert(json!({})),
            None,
            UserId::new(),
            ConversionIds::default(),
            day(4),
        )
        .unwrap();
        assert_eq!(plan.company, Some(CompanyStep::Link { company_id: acme.id }));
    }

    #[test]
    fn a_lead_without_a_company_name_or_matching_domain_gets_no_company() {
        let qualified = Lead { company_name: None, ..lead(LeadState::Qualified) };
        let plan = plan_conversion(
            &qualified,
            &[],
            &[],
            &convert(json!({})),
            None,
            UserId::new(),
            ConversionIds::default(),
            day(4),
        )
        .unwrap();
        assert_eq!((&plan.company, plan.company_id()), (&None, None));
        let ContactStep::Create(contact) = plan.contact else { panic!("a new contact") };
        assert_eq!(contact.company_id, None);
    }

    #[test]
    fn a_lead_converts_once() {
        let qualified = lead(LeadState::Qualified);
        let plan = plan_conversion(
            &qualified,
            &[],
            &[],
            &convert(json!({})),
            None,
            UserId::new(),
            ConversionIds::default(),
            day(4),
        )
        .unwrap();
        let again = plan_conversion(
            &plan.lead,
            &[],
            &[],
            &convert(json!({})),
            None,
            UserId::new(),
            ConversionIds::default(),
            day(5),
        );
        let err = again.unwrap_err();
        assert!(matches!(err, CrmError::LeadConverted));
        assert_eq!((err.code(), err.kind()), ("crm.lead_converted", ErrorKind::Conflict));
    }

    #[test]
    fn only_a_qualified_lead_converts() {
        for state in [LeadState::New, LeadState::Contacted, LeadState::Unqualified] {
            let result = plan_conversion(
                &lead(state),
                &[],
                &[],
                &convert(json!({})),
                None,
                UserId::new(),
                ConversionIds::default(),
                day(4),
            );
            let err = result.unwrap_err();
            assert!(matches!(err, CrmError::LeadNotQualified(status) if status == state.status()));
            assert_eq!(err.code(), "crm.lead_not_qualified");
        }
    }

    #[test]
    fn the_deal_takes_the_leads_estimated_value_and_company_name_unless_given() {
        let qualified = lead(LeadState::Qualified);
        let pipeline = crate::Pipeline::default_sales(PipelineId::new(), day(1));
        let stage_id = pipeline.entry_stage().unwrap().id;
        let (ids, seller) = (ConversionIds::default(), UserId::new());
        let command = convert(json!({"deal": {"pipelineId": pipeline.id, "stageId": stage_id}}));
        let plan =
            plan_conversion(&qualified, &[], &[], &command, Some(&pipeline), seller, ids, day(4)).unwrap();
        let deal = plan.deal.unwrap();
        assert_eq!(
            (deal.id, deal.pipeline_id, deal.stage_id, deal.title.as_str(), deal.value),
            (ids.deal_id, pipeline.id, stage_id, "Acme GmbH", eur(1_200_000))
        );
        assert_eq!(
            (deal.contact_id, deal.company_id, deal.owner_id),
            (Some(ids.contact_id), Some(ids.company_id), qualified.owner_id.unwrap_or(seller))
        );
        assert!(
            matches!(plan.lead.state, LeadState::Converted { deal_id: Some(id), .. } if id == ids.deal_id)
        );
        let given = convert(json!({"deal": {
            "pipelineId": pipeline.id, "stageId": stage_id, "title": "40 flats",
            "value": {"amountMinor": 500000, "currency": "EUR"}
        }}));
        let deal = plan_conversion(&qualified, &[], &[], &given, Some(&pipeline), seller, ids, day(4))
            .unwrap()
            .deal
            .unwrap();
        assert_eq!((deal.title.as_str(), deal.value), ("40 flats", eur(500_000)));
    }

    #[test]
    fn the_deal_of_a_conversion_follows_the_deals_rules() {
        let qualified = lead(LeadState::Qualified);
        let pipeline = crate::Pipeline::default_sales(PipelineId::new(), day(1));
        let won = pipeline.won_stage().unwrap().id;
        let convert_into = |pipeline_id: PipelineId, stage_id: StageId, given: Option<&crate::Pipeline>| {
            let command = convert(json!({"deal": {"pipelineId": pipeline_id, "stageId": stage_id}}));
            plan_conversion(
                &qualified,
                &[],
                &[],
                &command,
                given,
                UserId::new(),
                ConversionIds::default(),
                day(4),
            )
        };
        // A deal opens in an open stage, of the pipeline named, which must be given.
        assert!(convert_into(pipeline.id, won, Some(&pipeline)).is_err(), "not into the won stage");
        let elsewhere = convert_into(pipeline.id, StageId::new(), Some(&pipeline)).unwrap_err();
        assert_eq!(elsewhere.code(), "crm.stage_not_in_pipeline");
        let missing = convert_into(PipelineId::new(), won, Some(&pipeline)).unwrap_err();
        assert_eq!(missing.code(), "crm.pipeline_not_found");
        assert_eq!(convert_into(pipeline.id, won, None).unwrap_err().code(), "crm.pipeline_not_found");
    }

    #[test]
    fn a_deal_needs_a_value_when_the_lead_has_none() {
        let qualified = Lead { estimated_value: None, ..lead(LeadState::Qualified) };
        let pipeline = crate::Pipeline::default_sales(PipelineId::new(), day(1));
        let stage_id = pipeline.entry_stage().unwrap().id;
        let command = convert(json!({"deal": {"pipelineId": pipeline.id, "stageId": stage_id}}));
        let result = plan_conversion(
            &qualified,
            &[],
            &[],
            &command,
            Some(&pipeline),
            UserId::new(),
            ConversionIds::default(),
            day(4),
        );
        let Err(CrmError::Invalid(errors)) = result else { panic!("refused") };
        assert_eq!(errors.fields(), ["deal.value"]);
    }

    #[test]
    fn a_contact_or_company_the_command_names_wins_and_must_exist() {
        let qualified = lead(LeadState::Qualified);
        let by_email = contact_with("sam@acme.example");
        let named = contact_with("samantha@elsewhere.example");
        let command = convert(json!({"contactId": named.id}));
        let plan = plan_conversion(
            &qualified,
            &[by_email.clone(), named.clone()],
            &[],
            &command,
            None,
            UserId::new(),
            ConversionIds::default(),
            day(4),
        )
        .unwrap();
        assert_eq!(plan.contact_id(), named.id);
        let missing = convert(json!({"contactId": ContactId::new()}));
        let err = plan_conversion(
            &qualified,
            &[by_email],
            &[],
            &missing,
            None,
            UserId::new(),
            ConversionIds::default(),
            day(4),
        )
        .unwrap_err();
        assert_eq!((err.code(), err.kind()), ("crm.contact_not_found", ErrorKind::NotFound));
        let no_company = convert(json!({"companyId": CompanyId::new()}));
        let err = plan_conversion(
            &qualified,
            &[],
            &[],
            &no_company,
            None,
            UserId::new(),
            ConversionIds::default(),
            day(4),
        )
        .unwrap_err();
        assert_eq!(err.code(), "crm.company_not_found");
    }
}
