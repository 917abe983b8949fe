//! Duplicates: contacts that share a normalised email address or an E.164
//! phone number, companies that share a domain or a normalised name; and
//! the merge of two of them into one. Detection looks only at the records
//! the caller gives; a merge is a plan the store carries out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use portico_kernel::{
    ActivityId, CompanyId, ContactId, DealId, FieldError, LeadId, TicketId, ValidationErrors,
};

use crate::CrmError;
use crate::contact::{Company, Contact, ContactEmail, ContactPhone, MAX_CHANNELS, MAX_TAGS};
use crate::normalise::{
    company_domain, normalise_company_name, normalise_email, normalise_phone, normalise_tags,
};

/// What two records have in common that makes them look like one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchReason {
    /// The same email address, normalised.
    Email,
    /// The same phone number, in E.164 form.
    Phone,
    /// The same web domain.
    Domain,
    /// The same company name, normalised.
    Name,
}

/// Contacts that share one email address or phone number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "reason": "phone", "value": "+49301234567",
    "contactIds": ["01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f21", "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f24"]
})))]
#[serde(rename_all = "camelCase")]
pub struct ContactDuplicates {
    /// What they share.
    pub reason: MatchReason,
    /// The shared value, normalised.
    pub value: String,
    /// The contacts, two or more, in the order they were given.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub contact_ids: Vec<ContactId>,
}

/// Companies that share one domain or normalised name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "reason": "domain", "value": "acme.example",
    "companyIds": ["01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f22", "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f25"]
})))]
#[serde(rename_all = "camelCase")]
pub struct CompanyDuplicates {
    /// What they share.
    pub reason: MatchReason,
    /// The shared value, normalised.
    pub value: String,
    /// The companies, two or more, in the order they were given.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub company_ids: Vec<CompanyId>,
}

/// Every group of `contacts` that share a normalised email address or an
/// E.164 phone number (national numbers read in the country of
/// `calling_code`), one group per shared value, ordered by reason and
/// value. Two contacts sharing both an email and a phone are in two groups.
#[must_use]
pub fn find_duplicate_contacts(contacts: &[Contact], calling_code: Option<&str>) -> Vec<ContactDuplicates> {
    let mut groups: BTreeMap<(MatchReason, String), Vec<ContactId>> = BTreeMap::new();
    for contact in contacts {
        let emails = contact.emails.iter().filter_map(|e| normalise_email(&e.address));
        let phones = contact.phones.iter().filter_map(|p| normalise_phone(&p.number, calling_code));
        let keys = emails.map(|e| (MatchReason::Email, e)).chain(phones.map(|p| (MatchReason::Phone, p)));
        for key in keys {
            add_once(groups.entry(key).or_default(), contact.id);
        }
    }
    groups
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((reason, value), contact_ids)| ContactDuplicates { reason, value, contact_ids })
        .collect()
}

/// Every group of `companies` that share a domain or a normalised name, one
/// group per shared value, ordered by reason and value.
#[must_use]
pub fn find_duplicate_companies(companies: &[Company]) -> Vec<CompanyDuplicates> {
    let mut groups: BTreeMap<(MatchReason, String), Vec<CompanyId>> = BTreeMap::new();
    for company in companies {
        let domain = company.domain.as_deref().and_then(company_domain).map(|d| (MatchReason::Domain, d));
        let name = normalise_company_name(&company.name).map(|n| (MatchReason::Name, n));
        for key in domain.into_iter().chain(name) {
            add_once(groups.entry(key).or_default(), company.id);
        }
    }
    groups
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((reason, value), company_ids)| CompanyDuplicates { reason, value, company_ids })
        .collect()
}

fn add_once<T: PartialEq>(ids: &mut Vec<T>, id: T) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// The contact of `contacts` with the email address `email` (any spelling):
/// one whose primary address it is first, then the oldest.
#[must_use]
pub fn contact_with_email<'c>(contacts: &'c [Contact], email: &str) -> Option<&'c Contact> {
    let email = normalise_email(email)?;
    contacts
        .iter()
        .filter_map(|contact| {
            let found =
                contact.emails.iter().find(|e| normalise_email(&e.address).as_ref() == Some(&email))?;
            Some((!found.primary, contact.created_at, contact.id, contact))
        })
        .min_by_key(|(not_primary, created_at, id, _)| (*not_primary, *created_at, *id))
        .map(|(.., contact)| contact)
}

/// The oldest company of `companies` whose domain is the company domain of
/// `text` (a domain, website or email address); none for free-mail providers.
#[must_use]
pub fn company_with_domain<'c>(companies: &'c [Company], text: &str) -> Option<&'c Company> {
    let domain = company_domain(text)?;
    oldest(companies, |c| c.domain.as_deref().and_then(company_domain).as_ref() == Some(&domain))
}

/// The oldest company of `companies` whose name normalises as `name` does
/// ("ACME GmbH" finds "Acme").
#[must_use]
pub fn company_with_name<'c>(companies: &'c [Company], name: &str) -> Option<&'c Company> {
    let name = normalise_company_name(name)?;
    oldest(companies, |c| normalise_company_name(&c.name).as_ref() == Some(&name))
}

fn oldest(companies: &[Company], matches: impl Fn(&Company) -> bool) -> Option<&Company> {
    companies.iter().filter(|c| matches(c)).min_by_key(|c| (c.created_at, c.id))
}

/// Merges one contact into another (`POST /api/v1/crm/contacts/merge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "keepId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f21", "mergedId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f24"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeContacts {
    /// The contact that stays and gains the other's details and records.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub keep_id: ContactId,
    /// The contact that goes; another than `keepId`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub merged_id: ContactId,
}

impl MergeContacts {
    /// The command, checked: a contact cannot be merged into itself.
    pub fn validated(self) -> Result<Self, CrmError> {
        if self.keep_id == self.merged_id { Err(CrmError::MergeIntoItself) } else { Ok(self) }
    }
}

/// Merges one company into another (`POST /api/v1/crm/companies/merge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "keepId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f22", "mergedId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f25"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeCompanies {
    /// The company that stays and gains the other's details and records.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub keep_id: CompanyId,
    /// The company that goes; another than `keepId`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub merged_id: CompanyId,
}

impl MergeCompanies {
    /// The command, checked: a company cannot be merged into itself.
    pub fn validated(self) -> Result<Self, CrmError> {
        if self.keep_id == self.merged_id { Err(CrmError::MergeIntoItself) } else { Ok(self) }
    }
}

/// The records that point at a contact, as the store found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactLinks {
    /// Activities linked to it.
    pub activities: Vec<ActivityId>,
    /// Deals whose contact it is.
    pub deals: Vec<DealId>,
    /// Leads converted into it.
    pub leads: Vec<LeadId>,
    /// Support tickets it requested (every record that can name a contact is listed here).
    pub tickets: Vec<TicketId>,
}

/// What merging one contact into another changes; the store writes it in
/// one transaction, with the audit row that records the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactMerge {
    /// The kept contact, with what it gained.
    pub kept: Contact,
    /// The merged contact as it was, for the record; the store deletes it.
    pub merged: Contact,
    /// The records that pointed at the merged contact: each now points at the kept one.
    pub repoint: ContactLinks,
    /// When the merge happened.
    pub merged_at: DateTime<Utc>,
}

/// Merges `merged` into `keep`; `links` are the records that point at
/// `merged`. The kept contact's own values win; it gains what it lacks of
/// the other's: names, company, owner, and every email address, phone
/// number and tag it does not have yet (its primaries stay primary). It was
/// created when the earlier of the two was.
pub fn merge_contacts(
    keep: &Contact,
    merged: &Contact,
    links: ContactLinks,
    now: DateTime<Utc>,
) -> Result<ContactMerge, CrmError> {
    if keep.id == merged.id {
        return Err(CrmError::MergeIntoItself);
    }
    let mut kept = keep.clone();
    kept.first_name = keep.first_name.clone().or_else(|| merged.first_name.clone());
    kept.last_name = keep.last_name.clone().or_else(|| merged.last_name.clone());
    kept.company_id = keep.company_id.or(merged.company_id);
    kept.owner_id = keep.owner_id.or(merged.owner_id);
    kept.emails = gain(&keep.emails, &merged.emails);
    kept.phones = gain(&keep.phones, &merged.phones);
    kept.tags = normalise_tags(&[keep.tags.as_slice(), merged.tags.as_slice()].concat());
    kept.created_at = keep.created_at.min(merged.created_at);
    kept.updated_at = now;
    Ok(ContactMerge { kept, merged: merged.clone(), repoint: links, merged_at: now })
}

impl ContactMerge {
    /// The merge, if the kept contact stays within [`MAX_CHANNELS`] email
    /// addresses and phone numbers and [`MAX_TAGS`] tags; otherwise refused,
    /// naming each list that would overflow, so nothing is dropped silently
    /// (the caller removes some from either contact and merges again).
    pub fn within_limits(self) -> Result<Self, CrmError> {
        let mut errors = ValidationErrors::default();
        overflow(&mut errors, "emails", self.kept.emails.len(), MAX_CHANNELS);
        overflow(&mut errors, "phones", self.kept.phones.len(), MAX_CHANNELS);
        overflow(&mut errors, "tags", self.kept.tags.len(), MAX_TAGS);
        if errors.is_empty() { Ok(self) } else { Err(CrmError::Invalid(errors)) }
    }
}

/// Names `field` in `errors` when a merge would leave it with more than `max` entries.
fn overflow(errors: &mut ValidationErrors, field: &str, count: usize, max: usize) {
    if count > max {
        errors.0.push(FieldError {
            field: field.into(),
            message: format!("the merged contact would have {count}; at most {max}: remove some first"),
        });
    }
}

/// An email address or phone number of a contact, as a merge sees it.
trait Channel: Clone {
    /// What makes two entries the same.
    fn key(&self) -> String;
    /// Whether it is the primary one.
    fn primary(&self) -> bool;
    /// Makes it the primary one, or not.
    fn set_primary(&mut self, primary: bool);
}

impl Channel for ContactEmail {
    fn key(&self) -> String {
        normalise_email(&self.address).unwrap_or_else(|| self.address.clone())
    }

    fn primary(&self) -> bool {
        self.primary
    }

    fn set_primary(&mut self, primary: bool) {
        self.primary = primary;
    }
}

impl Channel for ContactPhone {
    fn key(&self) -> String {
        normalise_phone(&self.number, None).unwrap_or_else(|| self.number.clone())
    }

    fn primary(&self) -> bool {
        self.primary
    }

    fn set_primary(&mut self, primary: bool) {
        self.primary = primary;
    }
}

/// `kept` followed by the entries of `other` it lacks. The kept list's
/// primary stays; exactly one is primary when there are any (the other's,
/// when the kept list had none).
fn gain<T: Channel>(kept: &[T], other: &[T]) -> Vec<T> {
    let mut all: Vec<T> = kept.to_vec();
    for entry in other {
        if !all.iter().any(|seen| seen.key() == entry.key()) {
            all.push(entry.clone());
        }
    }
    let chosen = all.iter().position(Channel::primary).unwrap_or(0);
    for (index, entry) in all.iter_mut().enumerate() {
        entry.set_primary(index == chosen);
    }
    all
}

/// The records that point at a company, as the store found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyLinks {
    /// Contacts who work there.
    pub contacts: Vec<ContactId>,
    /// Activities linked to it.
    pub activities: Vec<ActivityId>,
    /// Deals whose company it is.
    pub deals: Vec<DealId>,
    /// Leads converted into it.
    pub leads: Vec<LeadId>,
}

/// What merging one company into another changes; the store writes it in
/// one transaction, with the audit row that records the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyMerge {
    /// The kept company, with what it gained.
    pub kept: Company,
    /// The merged company as it was, for the record; the store deletes it.
    pub merged: Company,
    /// The records that pointed at the merged company: each now points at the kept one.
    pub repoint: CompanyLinks,
    /// When the merge happened.
    pub merged_at: DateTime<Utc>,
}

/// Merges `merged` into `keep`; `links` are the records that point at
/// `merged`. The kept company's own values win; it gains what it lacks of
/// the other's (domain, industry, size, address, owner) and its tags. It was
/// created when the earlier of the two was.
pub fn merge_companies(
    keep: &Company,
    merged: &Company,
    links: CompanyLinks,
    now: DateTime<Utc>,
) -> Result<CompanyMerge, CrmError> {
    if keep.id == merged.id {
        return Err(CrmError::MergeIntoItself);
    }
    let kept = Company {
        domain: keep.domain.clone().or_else(|| merged.domain.clone()),
        industry: keep.industry.clone().or_else(|| merged.industry.clone()),
        size: keep.size.or(merged.size),
        address: keep.address.clone().or_else(|| merged.address.clone()),
        owner_id: keep.owner_id.or(merged.owner_id),
        tags: normalise_tags(&[keep.tags.as_slice(), merged.tags.as_slice()].concat()),
        created_at: keep.created_at.min(merged.created_at),
        updated_at: now,
        ..keep.clone()
    };
    Ok(CompanyMerge { kept, merged: merged.clone(), repoint: links, merged_at: now })
}

impl CompanyMerge {
    /// The merge, if the kept company stays within [`MAX_TAGS`] tags;
    /// otherwise refused, naming `tags`, so nothing is dropped silently.
    pub fn within_limits(self) -> Result<Self, CrmError> {
        let mut errors = ValidationErrors::default();
        overflow(&mut errors, "tags", self.kept.tags.len(), MAX_TAGS);
        if errors.is_empty() { Ok(self) } else { Err(CrmError::Invalid(errors)) }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use portico_kernel::{DomainError, ErrorKind};

    use super::*;
    use crate::contact::{ContactStatus, ContactType, EmailLabel, PhoneLabel};

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 9, 0, 0).unwrap()
    }

    /// A contact with these emails and phones as they were typed; the first of each is primary.
    fn contact(emails: &[&str], phones: &[&str]) -> Contact {
        Contact {
            id: ContactId::new(),
            first_name: None,
            last_name: None,
            display_name: "Sam Taylor".into(),
            contact_type: ContactType::Customer,
            status: ContactStatus::Active,
            emails: emails
                .iter()
                .enumerate()
                .map(|(i, a)| ContactEmail { address: (*a).into(), label: EmailLabel::Work, primary: i == 0 })
                .collect(),
            phones: phones
                .iter()
                .enumerate()
                .map(|(i, n)| ContactPhone { number: (*n).into(), label: PhoneLabel::Work, primary: i == 0 })
                .collect(),
            company_id: None,
            owner_id: None,
            tags: Vec::new(),
            created_at: day(1),
            updated_at: day(1),
        }
    }

    fn company(name: &str, domain: Option<&str>) -> Company {
        Company {
            id: CompanyId::new(),
            name: name.into(),
            domain: domain.map(Into::into),
            industry: None,
            size: None,
            address: None,
            owner_id: None,
            tags: Vec::new(),
            created_at: day(1),
            updated_at: day(1),
        }
    }

    #[test]
    fn contacts_with_one_email_written_differently_are_duplicates() {
        let (a, b, c) = (
            contact(&["Sam@Acme.example"], &[]),
            contact(&["other@acme.example", " sam@acme.example "], &[]),
            contact(&["sam+crm@acme.example"], &[]),
        );
        let groups = find_duplicate_contacts(&[a.clone(), b.clone(), c], None);
        assert_eq!(
            groups,
            [ContactDuplicates {
                reason: MatchReason::Email,
                value: "sam@acme.example".into(),
                contact_ids: vec![a.id, b.id]
            }]
        );
    }

    #[test]
    fn contacts_with_one_phone_written_differently_are_duplicates() {
        let (a, b, c) = (
            contact(&[], &["+49 30 1234567"]),
            contact(&[], &["0049 (30) 123-4567"]),
            contact(&[], &["030 1234567"]),
        );
        let all = [a.clone(), b.clone(), c.clone()];
        let groups = find_duplicate_contacts(&all, Some("49"));
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].reason, groups[0].value.as_str()), (MatchReason::Phone, "+49301234567"));
        assert_eq!(groups[0].contact_ids, [a.id, b.id, c.id]);
        // Without the tenant's calling code the national number reads as nothing.
        assert_eq!(find_duplicate_contacts(&all, None)[0].contact_ids, [a.id, b.id]);
    }

    #[test]
    fn a_contact_is_not_its_own_duplicate() {
        let alone = contact(&["sam@acme.example", "SAM@acme.example"], &["+49301234567", "030 1234567"]);
        assert_eq!(find_duplicate_contacts(&[alone], Some("49")), []);
    }

    #[test]
    fn contacts_sharing_an_email_and_a_phone_are_in_a_group_per_reason() {
        let a = contact(&["sam@acme.example"], &["+49301234567"]);
        let b = contact(&["sam@acme.example"], &["+49 30 1234567"]);
        let groups = find_duplicate_contacts(&[a, b], None);
        let reasons: Vec<_> = groups.iter().map(|g| (g.reason, g.value.as_str())).collect();
        assert_eq!(reasons, [(MatchReason::Email, "sam@acme.example"), (MatchReason::Phone, "+49301234567")]);
    }

    #[test]
    fn companies_with_one_domain_or_one_normalised_name_are_duplicates() {
        let acme = company("Acme GmbH", Some("https://www.acme.example"));
        let acme_inc = company("ACME Inc.", None);
        let beta = company("Beta", Some("acme.example"));
        let groups = find_duplicate_companies(&[acme.clone(), acme_inc.clone(), beta.clone()]);
        assert_eq!(
            groups,
            [
                CompanyDuplicates {
                    reason: MatchReason::Domain,
                    value: "acme.example".into(),
                    company_ids: vec![acme.id, beta.id]
                },
                CompanyDuplicates {
                    reason: MatchReason::Name,
                    value: "acme".into(),
                    company_ids: vec![acme.id, acme_inc.id]
                },
            ]
        );
    }

    #[test]
    fn a_free_mail_domain_never_makes_companies_duplicates() {
        let groups = find_duplicate_companies(&[
            company("Alpha", Some("gmail.com")),
            company("Beta", Some("gmail.com")),
        ]);
        assert_eq!(groups, []);
    }

    #[test]
    fn the_contact_with_an_email_is_the_one_whose_primary_it_is_then_the_oldest() {
        let secondary =
            Contact { created_at: day(1), ..contact(&["x@acme.example", "sam@acme.example"], &[]) };
        let newer = Contact { created_at: day(3), ..contact(&["Sam@acme.example"], &[]) };
        let older = Contact { created_at: day(2), ..contact(&["sam@acme.example"], &[]) };
        let contacts = [secondary.clone(), newer, older.clone()];
        assert_eq!(contact_with_email(&contacts, " SAM@acme.example").map(|c| c.id), Some(older.id));
        assert_eq!(contact_with_email(&contacts[..1], "sam@acme.example").map(|c| c.id), Some(secondary.id));
        assert!(contact_with_email(&contacts, "nobody@acme.example").is_none());
        assert!(contact_with_email(&contacts, "not an email").is_none());
    }

    #[test]
    fn companies_are_found_by_the_domain_of_an_email_or_by_name() {
        let newer = Company { created_at: day(3), ..company("Acme Two", Some("acme.example")) };
        let older = Company { created_at: day(2), ..company("Acme GmbH", Some("acme.example")) };
        let companies = [newer, older.clone()];
        assert_eq!(company_with_domain(&companies, "sam@acme.example").map(|c| c.id), Some(older.id));
        assert!(company_with_domain(&companies, "sam@gmail.com").is_none());
        assert_eq!(company_with_name(&companies, "ACME gmbh").map(|c| c.id), Some(older.id));
    }

    #[test]
    fn a_merged_contact_gains_what_the_kept_one_lacks_without_repeats() {
        let company_id = CompanyId::new();
        let keep = Contact { tags: vec!["VIP".into()], ..contact(&["sam@acme.example"], &["+49301234567"]) };
        let merged = Contact {
            first_name: Some("Sam".into()),
            company_id: Some(company_id),
            tags: vec!["vip".into(), "berlin".into()],
            created_at: Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap(),
            ..contact(&["sam@home.example", "SAM@acme.example"], &["0049 30 1234567", "+491712345678"])
        };
        let links = ContactLinks {
            activities: vec![ActivityId::new(), ActivityId::new()],
            deals: vec![DealId::new()],
            leads: vec![LeadId::new()],
            tickets: vec![TicketId::new()],
        };
        let plan = merge_contacts(&keep, &merged, links.clone(), day(5)).unwrap();
        let emails: Vec<_> = plan.kept.emails.iter().map(|e| (e.address.as_str(), e.primary)).collect();
        assert_eq!(emails, [("sam@acme.example", true), ("sam@home.example", false)]);
        let phones: Vec<_> = plan.kept.phones.iter().map(|p| (p.number.as_str(), p.primary)).collect();
        assert_eq!(phones, [("+49301234567", true), ("+491712345678", false)]);
        assert_eq!(plan.kept.tags, ["VIP", "berlin"]);
        assert_eq!((plan.kept.id, plan.kept.display_name.as_str()), (keep.id, "Sam Taylor"));
        assert_eq!((plan.kept.first_name.as_deref(), plan.kept.company_id), (Some("Sam"), Some(company_id)));
        assert_eq!((plan.kept.created_at, plan.kept.updated_at), (merged.created_at, day(5)));
        assert_eq!(plan.repoint, links, "every linked record moves to the kept contact");
        assert_eq!((plan.merged, plan.merged_at), (merged, day(5)));
    }

    #[test]
    fn a_kept_contact_without_emails_takes_the_others_primary() {
        let keep = contact(&[], &[]);
        let mut merged = contact(&["a@acme.example", "b@acme.example"], &[]);
        merged.emails[0].primary = false;
        merged.emails[1].primary = true;
        let plan = merge_contacts(&keep, &merged, ContactLinks::default(), day(5)).unwrap();
        assert_eq!(plan.kept.primary_email(), Some("b@acme.example"));
        assert_eq!(plan.kept.emails.iter().filter(|e| e.primary).count(), 1);
    }

    #[test]
    fn a_record_cannot_be_merged_into_itself() {
        let sam = contact(&["sam@acme.example"], &[]);
        let err = merge_contacts(&sam, &sam, ContactLinks::default(), day(5)).unwrap_err();
        assert!(matches!(err, CrmError::MergeIntoItself));
        assert_eq!((err.code(), err.kind()), ("crm.merge_into_itself", ErrorKind::Validation));
        let acme = company("Acme", None);
        assert!(matches!(
            merge_companies(&acme, &acme, CompanyLinks::default(), day(5)),
            Err(CrmError::MergeIntoItself)
        ));
        let same = MergeContacts { keep_id: sam.id, merged_id: sam.id };
        assert!(matches!(same.validated(), Err(CrmError::MergeIntoItself)));
        let body = serde_json::json!({"keepId": acme.id, "mergedId": acme.id});
        let command: MergeCompanies = serde_json::from_value(body).unwrap();
        assert!(matches!(command.validated(), Err(CrmError::MergeIntoItself)));
    }

    #[test]
    fn a_merged_company_hands_over_every_linked_record_and_fills_gaps() {
        let keep = Company { industry: Some("Property".into()), ..company("Acme GmbH", None) };
        let merged = Company {
            industry: Some("Real estate".into()),
            tags: vec!["key-account".into()],
            ..company("ACME", Some("acme.example"))
        };
        let links = CompanyLinks {
            contacts: vec![ContactId::new(), ContactId::new()],
            activities: vec![ActivityId::new()],
            deals: vec![DealId::new(), DealId::new()],
            leads: vec![LeadId::new()],
        };
        let plan = merge_companies(&keep, &merged, links.clone(), day(5)).unwrap();
        assert_eq!((plan.kept.id, plan.kept.name.as_str()), (keep.id, "Acme GmbH"));
        assert_eq!(plan.kept.domain.as_deref(), Some("acme.example"), "gained");
        assert_eq!(plan.kept.industry.as_deref(), Some("Property"), "the kept one's wins");
        assert_eq!(plan.kept.tags, ["key-account"]);
        assert_eq!(plan.repoint, links);
        assert_eq!(plan.merged.id, merged.id);
    }

    #[test]
    fn a_merge_past_the_limits_is_refused_naming_each_list() {
        let emails = |from: usize| (from..from + 6).map(|i| format!("p{i}@acme.example")).collect::<Vec<_>>();
        let (a, b) = (emails(0), emails(6));
        let keep = Contact {
            tags: (0..12).map(|i| format!("k{i}")).collect(),
            ..contact(&a.iter().map(String::as_str).collect::<Vec<_>>(), &["+49301234567"])
        };
        let merged = Contact {
            tags: (0..12).map(|i| format!("m{i}")).collect(),
            ..contact(&b.iter().map(String::as_str).collect::<Vec<_>>(), &["+49301234568"])
        };
        let plan = merge_contacts(&keep, &merged, ContactLinks::default(), day(5)).unwrap();
        let Err(CrmError::Invalid(errors)) = plan.within_limits() else { panic!("refused") };
        assert_eq!(errors.fields(), ["emails", "tags"], "12 emails and 24 tags; 2 phones are fine");

        let within =
            merge_contacts(&keep, &contact(&["p0@acme.example"], &[]), ContactLinks::default(), day(5));
        assert_eq!(within.unwrap().within_limits().unwrap().kept.emails.len(), 6);
    }

    #[test]
    fn a_company_merge_past_the_tag_limit_is_refused() {
        let keep = Company { tags: (0..15).map(|i| format!("k{i}")).collect(), ..company("Acme", None) };
        let merged = Company { tags: (0..15).map(|i| format!("m{i}")).collect(), ..company("ACME", None) };
        let plan = merge_companies(&keep, &merged, CompanyLinks::default(), day(5)).unwrap();
        let Err(CrmError::Invalid(errors)) = plan.within_limits() else { panic!("refused") };
        assert_eq!(errors.fields(), ["tags"]);
    }
}
