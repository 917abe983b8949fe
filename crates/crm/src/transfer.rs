//! Contacts and leads in and out as CSV files: the import's columns, its
//! rows read into drafts, the plan that decides what an import creates and
//! what it skips as a duplicate, and the export's records.
//!
//! An import is read as it streams in ([`ContactImport`], [`LeadImport`]:
//! pushed chunk by chunk, keeping only the rows read and the errors) and is
//! all or nothing: one refused row refuses the file, and the report names
//! every bad line with a stable code and the column at fault. Reasons never
//! repeat an email address or a phone number.
//!
//! The file is UTF-8 CSV (RFC 4180, a byte order mark skipped, CRLF or LF);
//! its first record is the header, naming columns in any order and case.
//! Lists (several emails, phones or tags in one field) are separated by `;`.
//! Blank lines are skipped.
//!
//! - Contacts: `firstName`, `lastName`, `displayName` (at least one of the
//!   three columns), `email`, `phone` (the first of each list is the
//!   primary), `type` (`customer`, `prospect` (default), `partner`,
//!   `vendor`), `status` (`active` (default), `inactive`), `companyName` (the
//!   tenant's company with that normalised name or domain, which must exist),
//!   `tags`, `ownerEmail` (a member of the tenant).
//! - Leads: `name` (required), `email`, `phone`, `companyName`, `source`
//!   (`import` when empty), `status` (`new` (default), `contacted`,
//!   `qualified`, `unqualified`; a converted lead is not imported),
//!   `estimatedValue` (a decimal with a point, in major units) with
//!   `currency` (ISO 4217), `tags`, `ownerEmail`.
//!
//! Duplicates are skipped and reported, never created twice nor changed: a
//! contact whose normalised email or phone (E.164 in the tenant's country)
//! is an existing contact's or an earlier row's; a lead that is an existing
//! lead or an earlier row by its identity: its normalised email; without an
//! email, its normalised name with its phone (E.164); with neither, its
//! normalised name with its normalised company name (none matching none).
//! So a file sent twice creates nothing the second time.
//!
//! The export writes the same columns, so an export imports as it is. A
//! field a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return) is written with a leading `'`, which
//! the import takes away again (as the people export and import do).
//!
//! ```
//! use portico_crm::ContactImport;
//!
//! let mut import = ContactImport::new();
//! import.feed(b"displayName,email,tags\r\nSam Taylor,Sam@Acme.example,vip;ber");
//! import.feed(b"lin\r\n");
//! let rows = import.finish().unwrap();
//! assert_eq!((rows[0].line, rows[0].draft.tags.clone()), (2, vec!["vip".to_owned(), "berlin".to_owned()]));
//! ```

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use portico_kernel::csv::{Framing, ImportReport, MAX_REPORTED, RecordSink};
use portico_kernel::{CompanyId, ContactId, Currency, LeadId, Money, UserId};
use rust_decimal::Decimal;

use crate::normalise::{company_domain, normalise_company_name, normalise_email, normalise_phone};
use crate::{
    Company, Contact, ContactDraft, ContactStatus, ContactType, CrmError, EmailDraft, Lead, LeadDraft,
    LeadSource, LeadState, LeadStatus, MatchReason, PhoneDraft,
};

/// The most data rows one import file may hold.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// What separates the entries of a list field (emails, phones, tags).
pub const LIST_SEPARATOR: char = ';';
/// The longest field, in bytes: a longer one is refused, not buffered.
const FIELD_MAX: usize = 4_000;
/// Fields of a record kept: more are counted, not buffered.
const FIELDS_KEPT: usize = 32;
/// The longest value a reason repeats, in characters.
const SHOWN_MAX: usize = 40;
/// The first characters that make a spreadsheet run a field as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

const INVALID_VALUE: &str = "import.invalid_value";
const UNKNOWN_COMPANY: &str = "import.unknown_company";
const AMBIGUOUS_COMPANY: &str = "import.ambiguous_company";
const UNKNOWN_OWNER: &str = "import.unknown_owner";

type Problem = (&'static str, String);

/// The columns of the contacts file, as the export writes them.
pub const CONTACT_COLUMNS: [&str; 10] = [
    "firstName",
    "lastName",
    "displayName",
    "email",
    "phone",
    "type",
    "status",
    "companyName",
    "tags",
    "ownerEmail",
];

/// The columns of the leads file, as the export writes them.
pub const LEAD_COLUMNS: [&str; 10] = [
    "name",
    "email",
    "phone",
    "companyName",
    "source",
    "status",
    "estimatedValue",
    "currency",
    "tags",
    "ownerEmail",
];

// ------------------------------------------------------------------ reading

/// One contact of an import file, read but not yet checked against the
/// tenant (its company and owner named, not resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactImportRow {
    /// The line the record starts on (the header is line 1).
    pub line: u64,
    /// The contact as the row describes it, without company and owner.
    pub draft: ContactDraft,
    /// The company named, as written.
    pub company: Option<String>,
    /// The owner's email address, normalised.
    pub owner_email: Option<String>,
}

/// One lead of an import file, read but not yet checked against the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadImportRow {
    /// The line the record starts on (the header is line 1).
    pub line: u64,
    /// The lead as the row describes it, without owner.
    pub draft: LeadDraft,
    /// Its status: never `converted`.
    pub status: LeadStatus,
    /// The owner's email address, normalised.
    pub owner_email: Option<String>,
}

/// Reads a contacts file pushed in chunks.
#[derive(Debug, Default)]
pub struct ContactImport {
    framing: Framing,
    table: Table<ContactLayout>,
}

impl ContactImport {
    /// An import at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next bytes of the file; chunks may end anywhere.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.framing.feed(chunk, &mut self.table);
    }

    /// Ends the file: its rows in file order when every line reads,
    /// otherwise the report of what is wrong.
    pub fn finish(mut self) -> Result<Vec<ContactImportRow>, ImportReport> {
        self.framing.finish(&mut self.table);
        self.table.close()
    }
}

/// Reads a leads file pushed in chunks.
#[derive(Debug, Default)]
pub struct LeadImport {
    framing: Framing,
    table: Table<LeadLayout>,
}

impl LeadImport {
    /// An import at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next bytes of the file; chunks may end anywhere.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.framing.feed(chunk, &mut self.table);
    }

    /// Ends the file: its rows in file order when every line reads,
    /// otherwise the report of what is wrong.
    pub fn finish(mut self) -> Result<Vec<LeadImportRow>, ImportReport> {
        self.framing.finish(&mut self.table);
        self.table.close()
    }
}

/// What a kind of file's columns mean.
trait Layout {
    type Row;
    const COLUMNS: &'static [&'static str];
    /// Columns of which the header must name at least one (each list one requirement).
    const REQUIRED: &'static [&'static [&'static str]];
    fn read(line: u64, values: &Values<'_>) -> Result<Self::Row, Vec<Problem>>;
}

/// A data record's values by column name: trimmed, without the export's
/// formula guard, empty for a column the file does not have.
struct Values<'a> {
    layout: &'static [&'static str],
    /// For each field, the index of its column in `layout`.
    columns: &'a [usize],
    fields: Vec<&'a str>,
}

impl Values<'_> {
    fn get(&self, name: &str) -> &str {
        self.columns
            .iter()
            .zip(&self.fields)
            .find(|(column, _)| self.layout.get(**column) == Some(&name))
            .map_or("", |(_, value)| value)
    }

    fn optional(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split(LIST_SEPARATOR)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// What the records of a file mean: the header, the rows and the errors.
struct Table<L: Layout> {
    /// For each header field, its column's index in `L::COLUMNS`, once read.
    columns: Option<Vec<usize>>,
    stopped: bool,
    line: u64,
    field: Vec<u8>,
    too_long: bool,
    /// The record's fields so far: `None` when not UTF-8 or too long.
    fields: Vec<Option<String>>,
    field_count: usize,
    rows: Vec<L::Row>,
    report: ImportReport,
}

impl<L: Layout> Default for Table<L> {
    fn default() -> Self {
        Self {
            columns: None,
            stopped: false,
            line: 0,
            field: Vec::new(),
            too_long: false,
            fields: Vec::new(),
            field_count: 0,
            rows: Vec::new(),
            report: ImportReport::default(),
        }
    }
}

impl<L: Layout> std::fmt::Debug for Table<L> {
    /// Counts only: the rows hold people's names and addresses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("line", &self.line)
            .field("rows", &self.report.rows)
            .field("error_count", &self.report.error_count)
            .finish_non_exhaustive()
    }
}

impl<L: Layout> RecordSink for Table<L> {
    fn is_stopped(&self) -> bool {
        self.stopped
    }

    fn start_record(&mut self, line: u64) {
        self.line = line;
        self.fields.clear();
        self.field_count = 0;
        self.field.clear();
        self.too_long = false;
    }

    fn field_bytes(&mut self, bytes: &[u8]) {
        if self.too_long || self.fields.len() >= FIELDS_KEPT {
            return;
        }
        if self.field.len() + bytes.len() > FIELD_MAX {
            self.too_long = true;
            self.field = Vec::new();
        } else {
            self.field.extend_from_slice(bytes);
        }
    }

    fn end_field(&mut self) {
        let bytes = std::mem::take(&mut self.field);
        let text = if std::mem::take(&mut self.too_long) { None } else { String::from_utf8(bytes).ok() };
        self.field_count += 1;
        if self.fields.len() < FIELDS_KEPT {
            self.fields.push(text);
        }
    }

    fn end_record(&mut self) {
        let fields = std::mem::take(&mut self.fields);
        let count = self.field_count;
        let blank = fields.iter().all(|f| f.as_deref().is_some_and(|t| t.trim().is_empty()));
        if count <= FIELDS_KEPT && blank {
            return;
        }
        match self.columns.take() {
            None => self.header(&fields, count),
            Some(columns) => {
                self.row(&columns, &fields, count);
                self.columns = Some(columns);
            }
        }
    }
}

impl<L: Layout> Table<L> {
    fn header(&mut self, fields: &[Option<String>], count: usize) {
        let line = self.line;
        let expected = L::COLUMNS.join(", ");
        if count > FIELDS_KEPT {
            let reason =
                format!("the header has {count} columns; this file has at most {}", L::COLUMNS.len());
            self.report.add(line, "import.unknown_column", reason);
        }
        let mut columns = Vec::with_capacity(fields.len());
        for (index, field) in fields.iter().enumerate() {
            let name =
                field.as_deref().map(|t| t.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'));
            let column = name.and_then(|n| L::COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(n)));
            match column {
                Some(column) if columns.contains(&column) => {
                    let reason = format!("the header has the {} column twice", L::COLUMNS[column]);
                    self.report.add(line, "import.duplicate_column", reason);
                }
                Some(column) => columns.push(column),
                None => {
                    // A header holding an address is most likely a data row.
                    let hint = if name.is_some_and(|n| n.contains('@')) {
                        "; is the header line missing?"
                    } else {
                        ""
                    };
                    let reason = format!(
                        "column {}{} is not one of {expected}{hint}",
                        index + 1,
                        quoted(name.unwrap_or(""))
                    );
                    self.report.add(line, "import.unknown_column", reason);
                }
            }
        }
        for required in L::REQUIRED {
            if !required.iter().any(|name| columns.iter().any(|c| L::COLUMNS.get(*c) == Some(name))) {
                let reason = format!("the header has no {} column", required.join(" or "));
                self.report.add(line, "import.missing_column", reason);
            }
        }
        if self.report.error_count > 0 {
            self.stopped = true;
        } else {
            self.columns = Some(columns);
        }
    }

    fn row(&mut self, columns: &[usize], fields: &[Option<String>], count: usize) {
        let line = self.line;
        self.report.rows += 1;
        if self.report.rows > MAX_IMPORT_ROWS as u64 {
            let reason = format!("the file has more than {MAX_IMPORT_ROWS} rows; split it");
            self.report.add(line, "import.too_many_rows", reason);
            self.stopped = true;
            return;
        }
        let problems = if count != columns.len() || fields.len() != columns.len() {
            vec![("import.field_count", format!("expected {} fields, found {count}", columns.len()))]
        } else if let Some((column, _)) = columns.iter().zip(fields).find(|(_, f)| f.is_none()) {
            let name = L::COLUMNS.get(*column).copied().unwrap_or_default();
            vec![("import.invalid_field", format!("{name} is not UTF-8 or longer than {FIELD_MAX} bytes"))]
        } else {
            let fields =
                fields.iter().map(|f| unguarded(f.as_deref().unwrap_or_default().trim()).trim()).collect();
            match L::read(line, &Values { layout: L::COLUMNS, columns, fields }) {
                Ok(row) => {
                    if self.report.error_count == 0 {
                        self.rows.push(row);
                    }
                    return;
                }
                Err(problems) => problems,
            }
        };
        for (code, reason) in problems {
            self.report.add(line, code, reason);
        }
        // All or nothing: no row is kept once one is wrong.
        self.rows = Vec::new();
    }

    fn close(mut self) -> Result<Vec<L::Row>, ImportReport> {
        match self.columns {
            None if !self.stopped => self.report.add(1, "import.empty", "the file is empty".to_owned()),
            Some(_) if self.report.rows == 0 => {
                self.report.add(1, "import.empty", "the file has a header but no rows".to_owned());
            }
            _ => {}
        }
        if self.report.error_count == 0 { Ok(self.rows) } else { Err(self.report) }
    }
}

/// One of `allowed` (in any case), `default` when empty; else the problem naming `column`.
fn choice<T: Copy>(column: &str, text: &str, allowed: &[(&str, T)], default: T) -> Result<T, Problem> {
    if text.is_empty() {
        return Ok(default);
    }
    allowed.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|(_, value)| *value).ok_or_else(
        || {
            let names: Vec<&str> = allowed.iter().map(|(name, _)| *name).collect();
            (INVALID_VALUE, format!("{column}{} is not one of {}", quoted(text), names.join(", ")))
        },
    )
}

/// The owner's address of a row, normalised.
fn owner_email(values: &Values<'_>, problems: &mut Vec<Problem>) -> Option<String> {
    let text = values.get("ownerEmail");
    if text.is_empty() {
        return None;
    }
    let email = normalise_email(text);
    if email.is_none() {
        problems.push((INVALID_VALUE, "ownerEmail: not an email address".to_owned()));
    }
    email
}

struct ContactLayout;

impl Layout for ContactLayout {
    type Row = ContactImportRow;
    const COLUMNS: &'static [&'static str] = &CONTACT_COLUMNS;
    const REQUIRED: &'static [&'static [&'static str]] = &[&["firstName", "lastName", "displayName"]];

    fn read(line: u64, values: &Values<'_>) -> Result<ContactImportRow, Vec<Problem>> {
        use ContactType::{Customer, Partner, Prospect, Vendor};
        let mut problems = Vec::new();
        let types =
            [("customer", Customer), ("prospect", Prospect), ("partner", Partner), ("vendor", Vendor)];
        let contact_type = choice("type", values.get("type"), &types, Prospect).unwrap_or_else(|problem| {
            problems.push(problem);
            Prospect
        });
        let statuses = [("active", ContactStatus::Active), ("inactive", ContactStatus::Inactive)];
        let status = choice("status", values.get("status"), &statuses, ContactStatus::Active).unwrap_or_else(
            |problem| {
                problems.push(problem);
                ContactStatus::Active
            },
        );
        let owner_email = owner_email(values, &mut problems);
        let draft = ContactDraft {
            first_name: values.optional("firstName"),
            last_name: values.optional("lastName"),
            display_name: values.optional("displayName"),
            contact_type,
            status,
            emails: values
                .list("email")
                .into_iter()
                .map(|address| EmailDraft { address, label: Default::default(), primary: false })
                .collect(),
            phones: values
                .list("phone")
                .into_iter()
                .map(|number| PhoneDraft { number, label: Default::default(), primary: false })
                .collect(),
            company_id: None,
            owner_id: None,
            tags: values.list("tags"),
        };
        if problems.is_empty() {
            Ok(ContactImportRow { line, draft, company: values.optional("companyName"), owner_email })
        } else {
            Err(problems)
        }
    }
}

struct LeadLayout;

impl Layout for LeadLayout {
    type Row = LeadImportRow;
    const COLUMNS: &'static [&'static str] = &LEAD_COLUMNS;
    const REQUIRED: &'static [&'static [&'static str]] = &[&["name"]];

    fn read(line: u64, values: &Values<'_>) -> Result<LeadImportRow, Vec<Problem>> {
        use LeadSource::{Campaign, Import, Manual, Other, Referral, Website};
        use LeadStatus::{Contacted, Converted, New, Qualified, Unqualified};
        let mut problems = Vec::new();
        let sources = [
            ("website", Website),
            ("referral", Referral),
            ("campaign", Campaign),
            ("import", Import),
            ("manual", Manual),
            ("other", Other),
        ];
        let source = choice("source", values.get("source"), &sources, Import).unwrap_or_else(|problem| {
            problems.push(problem);
            Import
        });
        let status_text = values.get("status");
        let status = if status_text.eq_ignore_ascii_case(Converted.as_str()) {
            let reason = "status: a converted lead is not imported (a lead converts by its own operation)";
            problems.push((INVALID_VALUE, reason.to_owned()));
            New
        } else {
            let statuses = [
                ("new", New),
                ("contacted", Contacted),
                ("qualified", Qualified),
                ("unqualified", Unqualified),
            ];
            choice("status", status_text, &statuses, New).unwrap_or_else(|problem| {
                problems.push(problem);
                New
            })
        };
        let estimated_value = match estimated_value(values.get("estimatedValue"), values.get("currency")) {
            Ok(value) => value,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let owner_email = owner_email(values, &mut problems);
        let draft = LeadDraft {
            name: values.get("name").to_owned(),
            email: values.optional("email"),
            phone: values.optional("phone"),
            company_name: values.optional("companyName"),
            source,
            estimated_value,
            owner_id: None,
            tags: values.list("tags"),
        };
        if problems.is_empty() {
            Ok(LeadImportRow { line, draft, status, owner_email })
        } else {
            Err(problems)
        }
    }
}

/// `estimatedValue` (major units, a decimal with a point) in `currency`; both or neither.
fn estimated_value(amount: &str, currency: &str) -> Result<Option<Money>, Problem> {
    match (amount.is_empty(), currency.is_empty()) {
        (true, true) => return Ok(None),
        (false, true) => return Err((INVALID_VALUE, "currency: needed with an estimatedValue".to_owned())),
        (true, false) => return Err((INVALID_VALUE, "estimatedValue: needed with a currency".to_owned())),
        (false, false) => {}
    }
    let currency = Currency::parse(&currency.to_ascii_uppercase())
        .map_err(|_| (INVALID_VALUE, format!("currency{} is not an ISO 4217 code", quoted(currency))))?;
    let not_a_number =
        || (INVALID_VALUE, "estimatedValue: not a decimal number with a point (1200.50)".to_owned());
    if !amount.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(not_a_number());
    }
    let decimal: Decimal = amount.parse().map_err(|_| not_a_number())?;
    if decimal.normalize().scale() > u32::from(currency.exponent()) {
        let reason =
            format!("estimatedValue: {} takes at most {} decimals", currency.code(), currency.exponent());
        return Err((INVALID_VALUE, reason));
    }
    Money::from_decimal(decimal, currency)
        .map(Some)
        .map_err(|_| (INVALID_VALUE, "estimatedValue: out of range".to_owned()))
}

/// `text` without the `'` the export puts before a field that a
/// spreadsheet would run as a formula.
fn unguarded(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => text,
    }
}

/// ` "value"` for a reason (cut short), or nothing when the value may be
/// personal: with an `@` or a digit it may be an address or a phone number.
fn quoted(value: &str) -> String {
    if value.is_empty() || value.chars().any(|c| c == '@' || c.is_ascii_digit()) {
        return String::new();
    }
    let shown: String = value.chars().take(SHOWN_MAX).collect();
    format!(" {shown:?}")
}

// ----------------------------------------------------------------- planning

/// A row skipped because it is someone the tenant (or the file) has already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "line": 7, "matchedBy": "email", "existingId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f21", "sameAsLine": null
})))]
#[serde(rename_all = "camelCase")]
pub struct SkippedRow {
    /// The line of the skipped row.
    pub line: u64,
    /// What matched, normalised: `email` or `phone` (for a lead without an
    /// email: its name and phone), or `name` (a lead with neither: its name
    /// and company name).
    pub matched_by: MatchReason,
    /// The existing record it matched, if it matched one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub existing_id: Option<MatchedId>,
    /// The earlier line of the file it matched, if it matched one.
    pub same_as_line: Option<u64>,
}

/// The existing record a skipped row matched: a contact's id or a lead's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum MatchedId {
    /// A contact's.
    Contact(ContactId),
    /// A lead's.
    Lead(LeadId),
}

/// What an import did: rows read, records created, rows skipped as duplicates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "rows": 120, "created": 118, "duplicates": 2,
    "skipped": [
        {"line": 7, "matchedBy": "email", "existingId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f21", "sameAsLine": null},
        {"line": 40, "matchedBy": "phone", "existingId": null, "sameAsLine": 12}
    ]
})))]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: u64,
    /// Records created.
    pub created: u64,
    /// Rows skipped as duplicates (of a record the tenant has, or of an earlier row).
    pub duplicates: u64,
    /// The first 1,000 of those rows, in line order.
    pub skipped: Vec<SkippedRow>,
}

impl ImportSummary {
    fn skip(&mut self, row: SkippedRow) {
        self.duplicates += 1;
        if self.skipped.len() < MAX_REPORTED {
            self.skipped.push(row);
        }
    }
}

/// The values an import of contacts is matched on: look these up in the
/// tenant before planning it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactLookups {
    /// Normalised emails of the rows.
    pub emails: Vec<String>,
    /// Phones of the rows in E.164 form.
    pub phones: Vec<String>,
    /// Company domains named.
    pub company_domains: Vec<String>,
    /// Company names named, normalised.
    pub company_names: Vec<String>,
    /// Owners' emails, normalised.
    pub owner_emails: Vec<String>,
}

/// The values an import of leads is matched on: look these up in the
/// tenant before planning it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadLookups {
    /// Normalised emails of the rows.
    pub emails: Vec<String>,
    /// Phones in E.164 form of the rows without an email.
    pub phones: Vec<String>,
    /// Names of the rows with neither email nor phone: trimmed, spaces
    /// collapsed, lower-cased (see [`LeadLookups::name_key`]).
    pub names: Vec<String>,
    /// Owners' emails, normalised.
    pub owner_emails: Vec<String>,
}

impl LeadLookups {
    /// A lead's name as the import compares it: trimmed, runs of white
    /// space as one space, lower-cased.
    #[must_use]
    pub fn name_key(name: &str) -> String {
        name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
    }
}

/// What the tenant has that an import's rows name or match.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Contacts with one of the rows' emails or phones (for a contacts import).
    pub contacts: &'a [Contact],
    /// Leads with one of the rows' emails, or without an email and with one
    /// of their phones or names (for a leads import; see [`lead_lookups`]).
    pub leads: &'a [Lead],
    /// Companies with one of the named domains or normalised names.
    pub companies: &'a [Company],
    /// Members of the tenant by normalised email.
    pub members: &'a [(String, UserId)],
}

/// What an import of contacts writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactImportPlan {
    /// The contacts to create, in file order.
    pub contacts: Vec<Contact>,
    /// What to answer.
    pub summary: ImportSummary,
}

/// What an import of leads writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadImportPlan {
    /// The leads to create, in file order.
    pub leads: Vec<Lead>,
    /// What to answer.
    pub summary: ImportSummary,
}

fn sorted_unique(mut values: Vec<String>) -> Vec<String> {
    values.sort_unstable();
    values.dedup();
    values
}

/// The values to look up for `rows`, whose national phones are read in the
/// country of `calling_code`.
#[must_use]
pub fn contact_lookups(rows: &[ContactImportRow], calling_code: Option<&str>) -> ContactLookups {
    let mut lookups = ContactLookups::default();
    for row in rows {
        lookups.emails.extend(row.draft.emails.iter().filter_map(|e| normalise_email(&e.address)));
        lookups
            .phones
            .extend(row.draft.phones.iter().filter_map(|p| normalise_phone(&p.number, calling_code)));
        if let Some(company) = row.company.as_deref() {
            lookups.company_domains.extend(company_domain(company));
            lookups.company_names.extend(normalise_company_name(company));
        }
        lookups.owner_emails.extend(row.owner_email.clone());
    }
    ContactLookups {
        emails: sorted_unique(lookups.emails),
        phones: sorted_unique(lookups.phones),
        company_domains: sorted_unique(lookups.company_domains),
        company_names: sorted_unique(lookups.company_names),
        owner_emails: sorted_unique(lookups.owner_emails),
    }
}

/// The values to look up for `rows`, whose national phones are read in the
/// country of `calling_code`: their normalised emails; the phones of those
/// without an email; the names of those with neither; their owners' emails.
#[must_use]
pub fn lead_lookups(rows: &[LeadImportRow], calling_code: Option<&str>) -> LeadLookups {
    let mut lookups = LeadLookups::default();
    for row in rows {
        let email = row.draft.email.as_deref().and_then(normalise_email);
        let phone = row.draft.phone.as_deref().and_then(|p| normalise_phone(p, calling_code));
        match (email, phone) {
            (Some(email), _) => lookups.emails.push(email),
            (None, Some(phone)) => lookups.phones.push(phone),
            (None, None) => lookups.names.push(LeadLookups::name_key(&row.draft.name)),
        }
        lookups.owner_emails.extend(row.owner_email.clone());
    }
    LeadLookups {
        emails: sorted_unique(lookups.emails),
        phones: sorted_unique(lookups.phones),
        names: sorted_unique(lookups.names),
        owner_emails: sorted_unique(lookups.owner_emails),
    }
}

/// What tells one lead from another to an import: its normalised email;
/// without one, its name with its phone; with neither, its name with its
/// company name (normalised; none when it has none). Reported as `email`,
/// `phone` or `name`.
fn lead_identity(lead: &Lead, calling_code: Option<&str>) -> (MatchReason, String, String) {
    if let Some(email) = lead.email.as_deref().and_then(normalise_email) {
        return (MatchReason::Email, email, String::new());
    }
    let name = LeadLookups::name_key(&lead.name);
    if let Some(phone) = lead.phone.as_deref().and_then(|p| normalise_phone(p, calling_code)) {
        return (MatchReason::Phone, name, phone);
    }
    let company = lead
        .company_name
        .as_deref()
        .map(|c| normalise_company_name(c).unwrap_or_else(|| LeadLookups::name_key(c)))
        .unwrap_or_default();
    (MatchReason::Name, name, company)
}

/// The column of the file a draft's field comes from (`emails[1].address` is `email`).
fn column_of(field: &str) -> &str {
    let head = field.split(['[', '.']).next().unwrap_or(field);
    match head {
        "emails" => "email",
        "phones" => "phone",
        "contactType" => "type",
        _ => head,
    }
}

/// A refused draft's problems, each naming its column.
fn draft_problems(error: CrmError) -> Vec<Problem> {
    match error {
        CrmError::Invalid(errors) => errors
            .0
            .into_iter()
            .map(|e| {
                let message = e.message.replace("emails[", "email [").replace("phones[", "phone [");
                (INVALID_VALUE, format!("{}: {message}", column_of(&e.field)))
            })
            .collect(),
        other => vec![(INVALID_VALUE, other.to_string())],
    }
}

/// The member with this normalised email.
fn member(known: &Known<'_>, email: &str) -> Option<UserId> {
    known.members.iter().find(|(address, _)| address == email).map(|(_, user)| *user)
}

/// The one company of `known` that `text` names by domain or normalised name.
fn company_named(known: &Known<'_>, text: &str) -> Result<CompanyId, Problem> {
    let domain = company_domain(text);
    let key = normalise_company_name(text);
    let mut found: Vec<CompanyId> = known
        .companies
        .iter()
        .filter(|c| {
            (domain.is_some() && c.domain == domain)
                || (key.is_some() && normalise_company_name(&c.name) == key)
        })
        .map(|c| c.id)
        .collect();
    found.dedup();
    match found.as_slice() {
        [id] => Ok(*id),
        [] => Err((
            UNKNOWN_COMPANY,
            "companyName: no company of this tenant has this name or domain; create it first or leave the field empty"
                .to_owned(),
        )),
        _ => Err((
            AMBIGUOUS_COMPANY,
            "companyName: several companies of this tenant have this name; link the contact by hand".to_owned(),
        )),
    }
}

/// Decides an import of contacts: every row checked (national phones read
/// in the country of `calling_code`), its company and owner resolved in
/// `known`, and each either created (with an id from `new_id`) or skipped
/// as a duplicate of a contact in `known` or of an earlier row. Any refused
/// row refuses the whole import: the report names them all.
pub fn plan_contact_import(
    rows: Vec<ContactImportRow>,
    known: Known<'_>,
    calling_code: Option<&str>,
    now: DateTime<Utc>,
    mut new_id: impl FnMut() -> ContactId,
) -> Result<ContactImportPlan, ImportReport> {
    let mut existing: HashMap<(MatchReason, String), ContactId> = HashMap::new();
    for contact in known.contacts {
        for email in contact.emails.iter().filter_map(|e| normalise_email(&e.address)) {
            existing.entry((MatchReason::Email, email)).or_insert(contact.id);
        }
        for phone in contact.phones.iter().filter_map(|p| normalise_phone(&p.number, calling_code)) {
            existing.entry((MatchReason::Phone, phone)).or_insert(contact.id);
        }
    }
    let mut seen: HashMap<(MatchReason, String), u64> = HashMap::new();
    let mut report = ImportReport { rows: rows.len() as u64, ..ImportReport::default() };
    let mut summary =
        ImportSummary { rows: rows.len() as u64, created: 0, duplicates: 0, skipped: Vec::new() };
    let mut contacts = Vec::new();
    for row in rows {
        let mut problems = Vec::new();
        let mut draft = row.draft;
        if let Some(company) = row.company.as_deref() {
            match company_named(&known, company) {
                Ok(id) => draft.company_id = Some(id),
                Err(problem) => problems.push(problem),
            }
        }
        if let Some(owner) = row.owner_email.as_deref() {
            match member(&known, owner) {
                Some(user) => draft.owner_id = Some(user),
                None => problems.push((UNKNOWN_OWNER, "ownerEmail: no member of this tenant".to_owned())),
            }
        }
        let contact = draft.validated(new_id(), calling_code, now).map_err(draft_problems);
        let contact = match (contact, problems.is_empty()) {
            (Ok(contact), true) => contact,
            (result, _) => {
                problems.extend(result.err().unwrap_or_default());
                for (code, reason) in problems {
                    report.add(row.line, code, reason);
                }
                continue;
            }
        };
        let keys: Vec<(MatchReason, String)> = contact
            .emails
            .iter()
            .map(|e| (MatchReason::Email, e.address.clone()))
            .chain(contact.phones.iter().map(|p| (MatchReason::Phone, p.number.clone())))
            .collect();
        if let Some((key, id)) = keys.iter().find_map(|key| existing.get(key).map(|id| (key, *id))) {
            summary.skip(SkippedRow {
                line: row.line,
                matched_by: key.0,
                existing_id: Some(MatchedId::Contact(id)),
                same_as_line: None,
            });
        } else if let Some((key, line)) = keys.iter().find_map(|key| seen.get(key).map(|line| (key, *line))) {
            summary.skip(SkippedRow {
                line: row.line,
                matched_by: key.0,
                existing_id: None,
                same_as_line: Some(line),
            });
        } else {
            for key in keys {
                seen.insert(key, row.line);
            }
            contacts.push(contact);
        }
    }
    if report.error_count > 0 {
        return Err(report);
    }
    summary.created = contacts.len() as u64;
    Ok(ContactImportPlan { contacts, summary })
}

/// Decides an import of leads: every row checked (national phones read in
/// the country of `calling_code`), its owner resolved in `known`, and each
/// either created (with an id from `new_id`) or skipped as a duplicate: the
/// same identity as a lead in `known` or an earlier row (its normalised
/// email; without one, its name and phone; with neither, its name and
/// company name). Any refused row refuses the whole import.
pub fn plan_lead_import(
    rows: Vec<LeadImportRow>,
    known: Known<'_>,
    calling_code: Option<&str>,
    now: DateTime<Utc>,
    mut new_id: impl FnMut() -> LeadId,
) -> Result<LeadImportPlan, ImportReport> {
    let mut existing: HashMap<(MatchReason, String, String), LeadId> = HashMap::new();
    for lead in known.leads {
        existing.entry(lead_identity(lead, calling_code)).or_insert(lead.id);
    }
    let mut seen: HashMap<(MatchReason, String, String), u64> = HashMap::new();
    let mut report = ImportReport { rows: rows.len() as u64, ..ImportReport::default() };
    let mut summary =
        ImportSummary { rows: rows.len() as u64, created: 0, duplicates: 0, skipped: Vec::new() };
    let mut leads = Vec::new();
    for row in rows {
        let mut problems = Vec::new();
        let mut draft = row.draft;
        if let Some(owner) = row.owner_email.as_deref() {
            match member(&known, owner) {
                Some(user) => draft.owner_id = Some(user),
                None => problems.push((UNKNOWN_OWNER, "ownerEmail: no member of this tenant".to_owned())),
            }
        }
        let lead = draft.validated(new_id(), calling_code, now).map_err(draft_problems);
        let mut lead = match (lead, problems.is_empty()) {
            (Ok(lead), true) => lead,
            (result, _) => {
                problems.extend(result.err().unwrap_or_default());
                for (code, reason) in problems {
                    report.add(row.line, code, reason);
                }
                continue;
            }
        };
        lead.state = match row.status {
            LeadStatus::Contacted => LeadState::Contacted,
            LeadStatus::Qualified => LeadState::Qualified,
            LeadStatus::Unqualified => LeadState::Unqualified,
            // The reader never gives `converted`.
            LeadStatus::New | LeadStatus::Converted => LeadState::New,
        };
        let identity = lead_identity(&lead, calling_code);
        if let Some(id) = existing.get(&identity) {
            summary.skip(SkippedRow {
                line: row.line,
                matched_by: identity.0,
                existing_id: Some(MatchedId::Lead(*id)),
                same_as_line: None,
            });
        } else if let Some(line) = seen.get(&identity) {
            summary.skip(SkippedRow {
                line: row.line,
                matched_by: identity.0,
                existing_id: None,
                same_as_line: Some(*line),
            });
        } else {
            seen.insert(identity, row.line);
            leads.push(lead);
        }
    }
    if report.error_count > 0 {
        return Err(report);
    }
    summary.created = leads.len() as u64;
    Ok(LeadImportPlan { leads, summary })
}

// ---------------------------------------------------------------- exporting

/// Which contacts to export (`POST /api/v1/crm/contacts/export`); every one when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "status": "active", "contactType": "customer", "tag": "vip",
    "ownerId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f23"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactExportFilter {
    /// Only contacts with this status.
    #[serde(default)]
    pub status: Option<ContactStatus>,
    /// Only contacts of this type.
    #[serde(default)]
    pub contact_type: Option<ContactType>,
    /// Only contacts with this tag (in any case).
    #[serde(default)]
    pub tag: Option<String>,
    /// Only contacts this user owns.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Only contacts of this company.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub company_id: Option<CompanyId>,
}

/// Which leads to export (`POST /api/v1/crm/leads/export`); every one when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "status": "qualified", "source": "website", "tag": "trade-fair-2026"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadExportFilter {
    /// Only leads with this status.
    #[serde(default)]
    pub status: Option<LeadStatus>,
    /// Only leads from this source.
    #[serde(default)]
    pub source: Option<LeadSource>,
    /// Only leads with this tag (in any case).
    #[serde(default)]
    pub tag: Option<String>,
    /// Only leads this user owns.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    #[serde(default)]
    pub owner_id: Option<UserId>,
}

/// One CSV record, ending in CRLF: a field holding a comma, a quote or a
/// line break is quoted (quotes doubled), and a field a spreadsheet would
/// run as a formula gets a leading `'` (which the import takes away).
#[must_use]
pub fn csv_record(fields: &[&str]) -> String {
    let mut record = String::new();
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            record.push(',');
        }
        let quoted = field.contains([',', '"', '\r', '\n']);
        if quoted {
            record.push('"');
        }
        if field.starts_with(FORMULA_STARTS) {
            record.push('\'');
        }
        for c in field.chars() {
            if c == '"' {
                record.push('"');
            }
            record.push(c);
        }
        if quoted {
            record.push('"');
        }
    }
    record.push_str("\r\n");
    record
}

/// The header of the contacts export (the import's columns).
#[must_use]
pub fn contact_export_header() -> String {
    csv_record(&CONTACT_COLUMNS)
}

/// The header of the leads export (the import's columns).
#[must_use]
pub fn lead_export_header() -> String {
    csv_record(&LEAD_COLUMNS)
}

/// A list field: the primary entry first, then the others, `;`-separated.
fn primary_first<'a>(entries: impl Iterator<Item = (&'a str, bool)>) -> String {
    let (mut primary, others): (Vec<_>, Vec<_>) = entries.partition(|(_, p)| *p);
    primary.extend(others);
    primary.into_iter().map(|(value, _)| value).collect::<Vec<_>>().join(";")
}

/// A contact as a record of the export, with its company's name and its
/// owner's email (as the import reads them back).
#[must_use]
pub fn contact_export_record(contact: &Contact, company: Option<&str>, owner_email: Option<&str>) -> String {
    let emails = primary_first(contact.emails.iter().map(|e| (e.address.as_str(), e.primary)));
    let phones = primary_first(contact.phones.iter().map(|p| (p.number.as_str(), p.primary)));
    csv_record(&[
        contact.first_name.as_deref().unwrap_or_default(),
        contact.last_name.as_deref().unwrap_or_default(),
        &contact.display_name,
        &emails,
        &phones,
        text_of(&contact.contact_type).as_str(),
        text_of(&contact.status).as_str(),
        company.unwrap_or_default(),
        &contact.tags.join(";"),
        owner_email.unwrap_or_default(),
    ])
}

/// A lead as a record of the export, with its owner's email.
#[must_use]
pub fn lead_export_record(lead: &Lead, owner_email: Option<&str>) -> String {
    let amount = lead.estimated_value.map(|m| m.to_decimal().to_string()).unwrap_or_default();
    let currency = lead.estimated_value.map(|m| m.currency().code().to_owned()).unwrap_or_default();
    csv_record(&[
        &lead.name,
        lead.email.as_deref().unwrap_or_default(),
        lead.phone.as_deref().unwrap_or_default(),
        lead.company_name.as_deref().unwrap_or_default(),
        text_of(&lead.source).as_str(),
        lead.status().as_str(),
        &amount,
        &currency,
        &lead.tags.join(";"),
        owner_email.unwrap_or_default(),
    ])
}

/// A unit enum's name as the API writes it.
fn text_of(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use portico_kernel::csv::RowError;

    use super::*;
    use crate::{CompanyDraft, EmailLabel};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn contacts(file: &str) -> Result<Vec<ContactImportRow>, ImportReport> {
        let mut import = ContactImport::new();
        // Fed a few bytes at a time: chunks end anywhere.
        for chunk in file.as_bytes().chunks(3) {
            import.feed(chunk);
        }
        import.finish()
    }

    fn leads(file: &str) -> Result<Vec<LeadImportRow>, ImportReport> {
        let mut import = LeadImport::new();
        for chunk in file.as_bytes().chunks(5) {
            import.feed(chunk);
        }
        import.finish()
    }

    fn errors(report: &ImportReport) -> Vec<(u64, &'static str)> {
        report.errors.iter().map(|e| (e.line, e.code)).collect()
    }

    fn nobody() -> Known<'static> {
        Known { contacts: &[], leads: &[], companies: &[], members: &[] }
    }

    fn plan(file: &str, known: Known<'_>) -> Result<ContactImportPlan, ImportReport> {
        plan_contact_import(contacts(file).unwrap(), known, Some("49"), now(), ContactId::new)
    }

    fn contact(email: &str, phone: &str) -> Contact {
        let draft: ContactDraft = serde_json::from_value(serde_json::json!({
            "displayName": "Existing", "emails": [{"address": email}], "phones": [{"number": phone}]
        }))
        .unwrap();
        draft.validated(ContactId::new(), Some("49"), now()).unwrap()
    }

    fn company(name: &str, domain: Option<&str>) -> Company {
        let draft: CompanyDraft =
            serde_json::from_value(serde_json::json!({"name": name, "domain": domain})).unwrap();
        draft.validated(CompanyId::new(), now()).unwrap()
    }

    #[test]
    fn a_contacts_file_reads_into_drafts() {
        let file = "First Name,lastname,EMAIL,phone,type,status,companyName,tags,ownerEmail\r\n";
        let report = contacts(file).unwrap_err();
        assert_eq!(errors(&report), vec![(1, "import.unknown_column")]);

        let file = "firstName,lastName,email,phone,type,status,companyName,tags,ownerEmail\r\n\
            Sam,Taylor,Sam@Acme.example; sam@home.example,'+49 30 1234567,Customer,inactive,Acme GmbH,vip; berlin ;,Owner@Tenant.example\r\n\
            \r\n\
            ,Lee,,,,,,,\r\n";
        let rows = contacts(file).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4]);
        let sam = &rows[0];
        assert_eq!(
            (sam.draft.first_name.as_deref(), sam.draft.last_name.as_deref()),
            (Some("Sam"), Some("Taylor"))
        );
        let emails: Vec<&str> = sam.draft.emails.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(emails, vec!["Sam@Acme.example", "sam@home.example"]);
        assert_eq!(sam.draft.phones[0].number, "+49 30 1234567", "the export's formula guard is taken away");
        assert_eq!(
            (sam.draft.contact_type, sam.draft.status),
            (ContactType::Customer, ContactStatus::Inactive)
        );
        assert_eq!(sam.draft.tags, vec!["vip", "berlin"]);
        assert_eq!(sam.company.as_deref(), Some("Acme GmbH"));
        assert_eq!(sam.owner_email.as_deref(), Some("owner@tenant.example"));
        let lee = &rows[1];
        assert_eq!((lee.draft.first_name.clone(), lee.draft.emails.len()), (None, 0));
        assert_eq!(
            (lee.draft.contact_type, lee.draft.status),
            (ContactType::Prospect, ContactStatus::Active)
        );
    }

    #[test]
    fn a_header_needs_a_name_column_and_each_column_once() {
        let report = contacts("email,phone\r\nsam@acme.example,\r\n").unwrap_err();
        assert_eq!(errors(&report), vec![(1, "import.missing_column")]);
        assert!(report.errors[0].reason.contains("firstName or lastName or displayName"));
        let report =
            contacts("displayName,email,Email\r\nSam,a@acme.example,b@acme.example\r\n").unwrap_err();
        assert_eq!((errors(&report), report.rows), (vec![(1, "import.duplicate_column")], 0));
        let report = contacts("sam@acme.example,Sam\r\n").unwrap_err();
        assert!(report.errors.iter().any(|e| e.reason.contains("is the header line missing?")));
        assert!(report.errors.iter().all(|e| !e.reason.contains("acme")), "{:?}", report.errors);
    }

    #[test]
    fn bad_values_are_reported_by_line_and_column_and_no_row_is_kept() {
        let file = "displayName,type,status,ownerEmail\r\n\
            Sam,customer,active,\r\n\
            Ann,boss,gone,not-an-email\r\n\
            Bob,vendor\r\n";
        let report = contacts(file).unwrap_err();
        assert_eq!(
            report.errors,
            vec![
                RowError {
                    line: 3,
                    code: INVALID_VALUE,
                    reason: "type \"boss\" is not one of customer, prospect, partner, vendor".into()
                },
                RowError {
                    line: 3,
                    code: INVALID_VALUE,
                    reason: "status \"gone\" is not one of active, inactive".into()
                },
                RowError { line: 3, code: INVALID_VALUE, reason: "ownerEmail: not an email address".into() },
                RowError { line: 4, code: "import.field_count", reason: "expected 4 fields, found 2".into() },
            ]
        );
        assert_eq!((report.rows, report.error_count), (3, 4));
    }

    #[test]
    fn an_empty_file_or_a_header_alone_is_refused() {
        for file in ["", "\r\n", "displayName,email\r\n"] {
            assert_eq!(errors(&contacts(file).unwrap_err()), vec![(1, "import.empty")], "{file:?}");
        }
    }

    #[test]
    fn invalid_utf8_and_overlong_fields_are_refused() {
        let mut import = ContactImport::new();
        import.feed(b"displayName,email\r\nSam,\xff\xfe\r\n");
        import.feed(format!("Ann,{}\r\n", "x".repeat(FIELD_MAX + 1)).as_bytes());
        let report = import.finish().unwrap_err();
        assert_eq!(errors(&report), vec![(2, "import.invalid_field"), (3, "import.invalid_field")]);
    }

    #[test]
    fn too_many_rows_stop_the_import() {
        let mut file = String::from("displayName\r\n");
        for n in 0..=MAX_IMPORT_ROWS {
            file.push_str(&format!("P{n}\r\n"));
        }
        let mut import = ContactImport::new();
        import.feed(file.as_bytes());
        let report = import.finish().unwrap_err();
        assert_eq!(errors(&report), vec![(MAX_IMPORT_ROWS as u64 + 2, "import.too_many_rows")]);
    }

    #[test]
    fn a_plan_checks_each_draft_and_names_the_column() {
        let file = "displayName,email,phone,tags\r\n\
            Sam,sam@acme.example,030 1234567,\r\n\
            Ann,ann at acme,,\r\n\
            Bob,bob@acme.example;BOB@acme.example,12,\r\n";
        let report = plan(file, nobody()).unwrap_err();
        let found: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(
            found,
            vec![
                (3, "email: not an email address"),
                (4, "email: the same as email [0]"),
                (
                    4,
                    "phone: not a phone number: 8 to 15 digits, with +country code or in the tenant's country"
                ),
            ]
        );
        assert!(report.errors.iter().all(|e| !e.reason.contains("acme")), "no address is repeated");
    }

    #[test]
    fn a_plan_reads_national_phones_in_the_tenants_country() {
        let plan = plan("displayName,email,phone\r\nSam,Sam@Acme.example,030 1234567\r\n", nobody()).unwrap();
        let sam = &plan.contacts[0];
        assert_eq!(
            (sam.primary_email(), sam.primary_phone()),
            (Some("sam@acme.example"), Some("+49301234567"))
        );
        assert_eq!((sam.created_at, sam.emails[0].label), (now(), EmailLabel::Work));
        assert_eq!((plan.summary.rows, plan.summary.created, plan.summary.duplicates), (1, 1, 0));
    }

    #[test]
    fn a_row_matching_an_existing_contact_however_written_is_skipped() {
        let existing = [contact("jane@example.com", "+49 30 1234567")];
        let known = Known { contacts: &existing, ..nobody() };
        let file = "displayName,email,phone\r\n\
            Jane,Jane@Example.com,\r\n\
            Janet,,030 1234567\r\n\
            John,john@example.com,\r\n";
        let plan = plan(file, known).unwrap();
        assert_eq!(plan.contacts.iter().map(|c| c.display_name.as_str()).collect::<Vec<_>>(), vec!["John"]);
        let matched = Some(MatchedId::Contact(existing[0].id));
        assert_eq!(
            plan.summary.skipped,
            vec![
                SkippedRow {
                    line: 2,
                    matched_by: MatchReason::Email,
                    existing_id: matched,
                    same_as_line: None
                },
                SkippedRow {
                    line: 3,
                    matched_by: MatchReason::Phone,
                    existing_id: matched,
                    same_as_line: None
                },
            ]
        );
        assert_eq!((plan.summary.created, plan.summary.duplicates), (1, 2));
    }

    #[test]
    fn a_second_row_of_the_same_person_is_skipped() {
        let file = "displayName,email,phone\r\n\
            Jane,jane@example.com,\r\n\
            Jane again,JANE@example.com ,\r\n\
            Jim,,+49 30 555 0000\r\n\
            Jimmy,,0049 30 5550000\r\n";
        let plan = plan(file, nobody()).unwrap();
        assert_eq!(plan.contacts.len(), 2);
        assert_eq!(
            plan.summary.skipped,
            vec![
                SkippedRow {
                    line: 3,
                    matched_by: MatchReason::Email,
                    existing_id: None,
                    same_as_line: Some(2)
                },
                SkippedRow {
                    line: 5,
                    matched_by: MatchReason::Phone,
                    existing_id: None,
                    same_as_line: Some(4)
                },
            ]
        );
    }

    #[test]
    fn a_company_is_linked_by_name_or_domain_and_must_exist() {
        let acme = company("ACME GmbH", Some("acme.example"));
        let (globex, globex_too) = (company("Globex", None), company("Globex Inc.", None));
        let companies = [acme.clone(), globex, globex_too];
        let known = Known { companies: &companies, ..nobody() };
        let file = "displayName,companyName\r\nSam,Acme\r\nAnn,www.acme.example\r\nBob,\r\n";
        let plan = plan(file, known).unwrap();
        let linked: Vec<Option<CompanyId>> = plan.contacts.iter().map(|c| c.company_id).collect();
        assert_eq!(linked, vec![Some(acme.id), Some(acme.id), None]);

        let report =
            self::plan("displayName,companyName\r\nSam,Initech\r\nAnn,globex\r\n", known).unwrap_err();
        assert_eq!(errors(&report), vec![(2, UNKNOWN_COMPANY), (3, AMBIGUOUS_COMPANY)]);
    }

    #[test]
    fn an_owner_must_be_a_member() {
        let owner = UserId::new();
        let members = [("owner@tenant.example".to_owned(), owner)];
        let known = Known { members: &members, ..nobody() };
        let plan = plan("displayName,ownerEmail\r\nSam,Owner@Tenant.example\r\n", known).unwrap();
        assert_eq!(plan.contacts[0].owner_id, Some(owner));
        let report = self::plan("displayName,ownerEmail\r\nSam,someone@else.example\r\n", known).unwrap_err();
        assert_eq!(errors(&report), vec![(2, UNKNOWN_OWNER)]);
    }

    #[test]
    fn lookups_hold_each_normalised_value_once() {
        let rows = contacts(
            "displayName,email,phone,companyName,ownerEmail\r\n\
             Sam,Sam@Acme.example,030 1234567,Acme GmbH,o@t.example\r\n\
             Ann,sam@acme.example,+49301234567,acme.example,O@T.example\r\n",
        )
        .unwrap();
        let lookups = contact_lookups(&rows, Some("49"));
        assert_eq!(lookups.emails, vec!["sam@acme.example"]);
        assert_eq!(lookups.phones, vec!["+49301234567"]);
        assert_eq!(lookups.company_domains, vec!["acme.example"]);
        assert_eq!(lookups.company_names, vec!["acme", "acmeexample"]);
        assert_eq!(lookups.owner_emails, vec!["o@t.example"]);
    }

    #[test]
    fn a_leads_file_reads_status_source_and_value() {
        let file = "name,email,source,status,estimatedValue,currency,tags\r\n\
            Sam,Sam@Acme.example,website,Qualified,12000.5,eur,fair\r\n\
            Ann,,,,,,\r\n";
        let rows = leads(file).unwrap();
        assert_eq!((rows[0].status, rows[0].draft.source), (LeadStatus::Qualified, LeadSource::Website));
        let value = rows[0].draft.estimated_value.unwrap();
        assert_eq!((value.amount_minor(), value.currency().code()), (1_200_050, "EUR"));
        assert_eq!((rows[1].status, rows[1].draft.source), (LeadStatus::New, LeadSource::Import));
        assert_eq!(rows[1].draft.estimated_value, None);
    }

    #[test]
    fn a_converted_lead_and_a_bad_value_are_refused() {
        let file = "name,status,estimatedValue,currency\r\n\
            Sam,converted,,\r\n\
            Ann,,12,\r\n\
            Bob,,12.345,EUR\r\n\
            Cy,,1e3,EUR\r\n\
            Di,,10,EURO\r\n";
        let report = leads(file).unwrap_err();
        let found: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(
            found,
            vec![
                (2, "status: a converted lead is not imported (a lead converts by its own operation)"),
                (3, "currency: needed with an estimatedValue"),
                (4, "estimatedValue: EUR takes at most 2 decimals"),
                (5, "estimatedValue: not a decimal number with a point (1200.50)"),
                (6, "currency \"EURO\" is not an ISO 4217 code"),
            ]
        );
        let report = leads("email\r\nsam@acme.example\r\n").unwrap_err();
        assert_eq!(errors(&report), vec![(1, "import.missing_column")]);
    }

    #[test]
    fn a_lead_plan_skips_existing_and_repeated_emails_and_keeps_the_status() {
        let existing: LeadDraft =
            serde_json::from_value(serde_json::json!({"name": "Old", "email": "jane@example.com"})).unwrap();
        let existing = [existing.validated(LeadId::new(), None, now()).unwrap()];
        let known = Known { leads: &existing, ..nobody() };
        let file = "name,email,phone,status\r\n\
            Jane,JANE@example.com,,\r\n\
            Kim,kim@example.com,030 1234567,contacted\r\n\
            Kim again,kim@example.com,,\r\n\
            No Mail,,,\r\n\
            No Mail,,,\r\n";
        let plan = plan_lead_import(leads(file).unwrap(), known, Some("49"), now(), LeadId::new).unwrap();
        let created: Vec<(&str, LeadStatus)> =
            plan.leads.iter().map(|l| (l.name.as_str(), l.status())).collect();
        assert_eq!(
            created,
            vec![("Kim", LeadStatus::Contacted), ("No Mail", LeadStatus::New)],
            "without email, phone or company a lead matches by its name alone"
        );
        assert_eq!(plan.leads[0].phone.as_deref(), Some("+49301234567"));
        assert_eq!(
            plan.summary.skipped,
            vec![
                SkippedRow {
                    line: 2,
                    matched_by: MatchReason::Email,
                    existing_id: Some(MatchedId::Lead(existing[0].id)),
                    same_as_line: None
                },
                SkippedRow {
                    line: 4,
                    matched_by: MatchReason::Email,
                    existing_id: None,
                    same_as_line: Some(3)
                },
                SkippedRow {
                    line: 6,
                    matched_by: MatchReason::Name,
                    existing_id: None,
                    same_as_line: Some(5)
                },
            ]
        );
    }

    #[test]
    fn a_lead_without_an_email_matches_by_name_and_phone_or_name_and_company() {
        let lead = |body: serde_json::Value| {
            let draft: LeadDraft = serde_json::from_value(body).unwrap();
            draft.validated(LeadId::new(), Some("49"), now()).unwrap()
        };
        let existing = [
            lead(serde_json::json!({"name": "Ann Lee", "phone": "+49 30 1234567"})),
            lead(serde_json::json!({"name": "Bob Ray", "companyName": "Acme GmbH"})),
            lead(serde_json::json!({"name": "Cy", "email": "cy@example.com", "phone": "030 7654321"})),
        ];
        let known = Known { leads: &existing, ..nobody() };
        let file = "name,email,phone,companyName\r\n\
            \x20ann  LEE ,,030 1234567,\r\n\
            Ann Lee,,030 9999999,\r\n\
            ANN LEE,,+49 30 999 9999,Other Ltd\r\n\
            bob ray,,,ACME\r\n\
            Bob Ray,,,Initech\r\n\
            Bob  Ray,,,initech inc.\r\n\
            Cy,,030 7654321,\r\n\
            Dee,,,\r\n\
            dee,,,\r\n";
        let rows = leads(file).unwrap();
        let lookups = lead_lookups(&rows, Some("49"));
        assert_eq!(lookups.phones, vec!["+49301234567", "+49307654321", "+49309999999"]);
        assert_eq!(lookups.names, vec!["bob ray", "dee"], "the rows with neither email nor phone");
        let plan = plan_lead_import(rows, known, Some("49"), now(), LeadId::new).unwrap();
        let created: Vec<&str> = plan.leads.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            created,
            vec!["Ann Lee", "Bob Ray", "Cy", "Dee"],
            "another phone, another company; a lead with an email is not one without"
        );
        let skipped: Vec<(u64, MatchReason, Option<MatchedId>, Option<u64>)> = plan
            .summary
            .skipped
            .iter()
            .map(|s| (s.line, s.matched_by, s.existing_id, s.same_as_line))
            .collect();
        assert_eq!(
            skipped,
            vec![
                (2, MatchReason::Phone, Some(MatchedId::Lead(existing[0].id)), None),
                (4, MatchReason::Phone, None, Some(3)),
                (5, MatchReason::Name, Some(MatchedId::Lead(existing[1].id)), None),
                (7, MatchReason::Name, None, Some(6)),
                (10, MatchReason::Name, None, Some(9)),
            ]
        );
    }

    #[test]
    fn export_guards_formulas_and_quotes_what_needs_it() {
        assert_eq!(
            csv_record(&["=SUM(A1)", "+49301234567", "-1", "@cmd", "Lee, Ann", "say \"hi\"", "a=b"]),
            "'=SUM(A1),'+49301234567,'-1,'@cmd,\"Lee, Ann\",\"say \"\"hi\"\"\",a=b\r\n"
        );
        assert_eq!(
            contact_export_header(),
            "firstName,lastName,displayName,email,phone,type,status,companyName,tags,ownerEmail\r\n"
        );
    }

    #[test]
    fn an_exported_contact_imports_as_it_was() {
        let draft: ContactDraft = serde_json::from_value(serde_json::json!({
            "firstName": "=Sam", "lastName": "Taylor, Jr.", "displayName": "Sam \"ST\" Taylor",
            "contactType": "partner", "status": "inactive",
            "emails": [{"address": "sam@home.example"}, {"address": "sam@acme.example", "primary": true}],
            "phones": [{"number": "+49 30 1234567"}, {"number": "+49 171 2345678"}],
            "tags": ["vip", "-later"]
        }))
        .unwrap();
        let original = draft.validated(ContactId::new(), None, now()).unwrap();
        let file = contact_export_header() + &contact_export_record(&original, Some("Acme GmbH"), None);
        assert!(file.contains("'=Sam") && file.contains("'+49301234567;+491712345678"), "{file}");
        let acme = [company("Acme GmbH", None)];
        let known = Known { companies: &acme, ..nobody() };
        let plan = plan_contact_import(contacts(&file).unwrap(), known, None, now(), ContactId::new).unwrap();
        let imported = &plan.contacts[0];
        let mut expected = original.clone();
        expected.emails.sort_by_key(|e| !e.primary);
        assert_eq!(
            Contact { id: original.id, company_id: None, ..imported.clone() },
            expected,
            "the same contact, its primary email first"
        );
        assert_eq!(imported.company_id, Some(acme[0].id));
    }

    #[test]
    fn an_exported_lead_imports_as_it_was() {
        let draft: LeadDraft = serde_json::from_value(serde_json::json!({
            "name": "Sam", "email": "sam@acme.example", "phone": "+49 30 1234567", "companyName": "@Acme",
            "source": "referral", "estimatedValue": {"amountMinor": 1_200_050, "currency": "EUR"}, "tags": ["a", "b"]
        }))
        .unwrap();
        let original =
            draft.validated(LeadId::new(), None, now()).unwrap().change_status(LeadStatus::Qualified, now());
        let original = original.unwrap();
        let file = lead_export_header() + &lead_export_record(&original, None);
        assert!(file.contains(",12000.50,EUR,a;b,"), "{file}");
        let plan = plan_lead_import(leads(&file).unwrap(), nobody(), None, now(), LeadId::new).unwrap();
        assert_eq!(Lead { id: original.id, ..plan.leads[0].clone() }, original);
    }
}
