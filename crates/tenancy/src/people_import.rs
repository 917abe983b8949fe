//! Bulk import of a tenant's people from a CSV file, and the CSV export of them.
//!
//! [`ImportParser`] is pushed the upload chunk by chunk as it streams in and
//! keeps only the rows it has validated and the errors, never the file. An
//! import is all-or-nothing: [`ImportParser::finish`] gives the rows when
//! every line is right, and otherwise an [`ImportReport`] of the bad lines,
//! each with a stable code. Reasons never repeat an email address or a phone
//! number: reports end up in logs, screenshots and support tickets.
//!
//! The file is UTF-8 (a leading byte order mark is skipped) with RFC 4180
//! quoting and CRLF or LF line ends. Its first record is the header, naming
//! the columns `email` and `name` (required) and `phone`, `kind` and `role`
//! (optional) in any order and case. Blank lines, and lines of empty fields
//! such as spreadsheets write for empty rows, are skipped.
//!
//! An export ([`export_header`], [`export_record`]) can be imported as it
//! is. Its `status` and `createdAt` columns are read-only: the header may
//! name them (in any case), and their values are ignored, not checked. Any
//! other column is refused. A field the export guarded against spreadsheet
//! formulas (`'+49 30 1234`) loses that `'` before it is checked; see
//! [`export_record`].
//!
//! ```
//! use portico_tenancy::people_import::ImportParser;
//! use portico_tenancy::{MembershipKind, Role};
//!
//! let mut parser = ImportParser::new();
//! parser.feed(b"email,name,kind\r\nann@example.com,Ann Lee,stu");
//! parser.feed(b"dent\r\n");
//! let rows = parser.finish().unwrap();
//! assert_eq!((rows[0].line, rows[0].kind, rows[0].role), (2, MembershipKind::Student, Role::Viewer));
//! ```

use std::collections::HashMap;

use serde::Serialize;

use portico_kernel::csv::{Framing, RecordSink};
pub use portico_kernel::csv::{ImportReport, MAX_REPORTED, RowError};

use crate::{Email, MembershipKind, Role};

/// The most data rows one file may hold.
pub const MAX_ROWS: usize = 100_000;

/// The longest field, in bytes: a longer one is refused, not buffered.
const FIELD_MAX: usize = 1_000;
/// The longest name, in characters.
const NAME_MAX: usize = 200;
/// The longest kind or role value a reason repeats, in characters.
const SHOWN_MAX: usize = 40;
/// The first characters that make a spreadsheet run a field as a formula:
/// the export puts a `'` before them, and the import takes it away.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

const UNKNOWN_COLUMN: &str = "import.unknown_column";
const MISSING_COLUMN: &str = "import.missing_column";
const DUPLICATE_COLUMN: &str = "import.duplicate_column";
const EMPTY: &str = "import.empty";
const FIELD_COUNT: &str = "import.field_count";
const FIELD_TOO_LONG: &str = "import.field_too_long";
const ENCODING: &str = "import.encoding";
const INVALID_EMAIL: &str = "import.invalid_email";
const DUPLICATE_EMAIL: &str = "import.duplicate_email";
const INVALID_NAME: &str = "import.invalid_name";
const INVALID_PHONE: &str = "import.invalid_phone";
const INVALID_KIND: &str = "import.invalid_kind";
const INVALID_ROLE: &str = "import.invalid_role";
const ROLE_NOT_ALLOWED: &str = "import.role_not_allowed";
const TOO_MANY_ROWS: &str = "import.too_many_rows";

/// One person to import, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The line of the file the record starts on (the header is line 1).
    pub line: u64,
    /// The person's address, normalised; no other row of the file has it.
    pub email: Email,
    /// Display name, trimmed.
    pub name: String,
    /// Phone number as written (trimmed), if given.
    pub phone: Option<String>,
    /// What the person is to the tenant (`staff` when not given).
    pub kind: MembershipKind,
    /// The role (from the kind when not given); never a platform role.
    pub role: Role,
}

/// Reads an import file pushed in chunks and validates it as it goes.
pub struct ImportParser {
    framing: Framing,
    batch: Batch,
}

impl ImportParser {
    /// A parser at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self { framing: Framing::new(), batch: Batch::new() }
    }

    /// Reads the next bytes of the file. Chunks may end anywhere, even inside
    /// a field, a character or a line end. Once the header is refused or the
    /// file has more than [`MAX_ROWS`] rows, the rest is ignored.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.framing.feed(chunk, &mut self.batch);
    }

    /// Ends the file: its rows, in file order, when every line is right;
    /// otherwise the report of what is wrong.
    pub fn finish(mut self) -> Result<Vec<ImportRow>, ImportReport> {
        self.framing.finish(&mut self.batch);
        self.batch.close()
    }
}

impl Default for ImportParser {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ImportParser {
    /// Counts only: the rows hold people's addresses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportParser")
            .field("rows", &self.batch.row_count)
            .field("error_count", &self.batch.error_count)
            .finish_non_exhaustive()
    }
}

/// The header of the people export.
#[must_use]
pub fn export_header() -> String {
    export_record(&["email", "name", "phone", "kind", "role", "status", "createdAt"])
}

/// One CSV record, ending in CRLF. A field holding a comma, a quote or a line
/// break is quoted (quotes doubled). A field starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return gets a leading `'`, so that a spreadsheet shows
/// it as text instead of running it as a formula (CSV injection). That
/// includes phone numbers: `+49 30 1234` is written `'+49 30 1234`.
///
/// Import undoes the guard: a field starting with `'` immediately followed by
/// one of those characters has that one `'` removed before it is checked, so
/// `'+49 30 1234` is imported as `+49 30 1234`. A value that itself starts
/// with `'` and one of those characters is not guarded on export, and so
/// loses its `'` on a round trip.
#[must_use]
pub fn export_record(fields: &[&str]) -> String {
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

/// A column an import file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    Name,
    Phone,
    Kind,
    Role,
    /// Read-only column of an export: accepted, its values ignored.
    Status,
    /// Read-only column of an export: accepted, its values ignored.
    CreatedAt,
}

impl Column {
    const ALL: [Self; 7] =
        [Self::Email, Self::Name, Self::Phone, Self::Kind, Self::Role, Self::Status, Self::CreatedAt];

    /// The name as the export writes it.
    const fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
            Self::Phone => "phone",
            Self::Kind => "kind",
            Self::Role => "role",
            Self::Status => "status",
            Self::CreatedAt => "createdAt",
        }
    }

    /// The column of a lowercased header name.
    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|column| column.name().eq_ignore_ascii_case(name))
    }

    /// Whether the import ignores the column's values.
    const fn is_ignored(self) -> bool {
        matches!(self, Self::Status | Self::CreatedAt)
    }
}

/// Where the file is.
enum Stage {
    /// Before the header; `columns` are the known, distinct names it has
    /// so far (in order while `valid`).
    Header { columns: Vec<Column>, valid: bool },
    /// Reading data rows with these columns.
    Rows { columns: Vec<Column> },
    /// The header was refused or the file is too long: the rest is not read.
    Stopped,
}

/// A field of a data record, at most [`FIELD_MAX`] bytes of it.
struct Field {
    bytes: Vec<u8>,
    too_long: bool,
}

/// The record being read.
#[derive(Default)]
struct Draft {
    line: u64,
    field: Vec<u8>,
    field_too_long: bool,
    /// Its fields, as many as the header has (the rest are only counted).
    fields: Vec<Field>,
    count: usize,
    /// Whether every field so far is empty or white space.
    blank: bool,
    /// How many errors were listed and counted before it: a blank header
    /// line takes back the errors of its empty column names.
    errors_before: (usize, u64),
}

/// What the records mean: the header, the rows and the errors.
struct Batch {
    stage: Stage,
    record: Draft,
    rows: Vec<ImportRow>,
    row_count: u64,
    /// The line each address was first seen on.
    emails: HashMap<Email, u64>,
    errors: Vec<RowError>,
    error_count: u64,
}

type Problem = (&'static str, String);

impl RecordSink for Batch {
    fn is_stopped(&self) -> bool {
        matches!(self.stage, Stage::Stopped)
    }

    fn start_record(&mut self, line: u64) {
        self.record = Draft {
            line,
            field: std::mem::take(&mut self.record.field),
            blank: true,
            errors_before: (self.errors.len(), self.error_count),
            ..Draft::default()
        };
        self.record.field.clear();
    }

    fn field_bytes(&mut self, bytes: &[u8]) {
        let record = &mut self.record;
        record.blank &= bytes.iter().all(u8::is_ascii_whitespace);
        let kept = match &self.stage {
            Stage::Header { .. } => true,
            // The values of ignored columns are not kept, so never refused.
            Stage::Rows { columns } => columns.get(record.count).is_some_and(|column| !column.is_ignored()),
            Stage::Stopped => false,
        };
        if !kept || record.field_too_long {
            return;
        }
        if record.field.len() + bytes.len() > FIELD_MAX {
            record.field_too_long = true;
            record.field = Vec::new();
        } else {
            record.field.extend_from_slice(bytes);
        }
    }

    fn end_field(&mut self) {
        let bytes = std::mem::take(&mut self.record.field);
        let too_long = std::mem::replace(&mut self.record.field_too_long, false);
        let index = self.record.count;
        self.record.count += 1;
        match &mut self.stage {
            Stage::Header { columns, valid } => {
                if let Some((code, reason)) = header_problem(index, &bytes, too_long, columns) {
                    *valid = false;
                    self.report(self.record.line, code, reason);
                }
            }
            Stage::Rows { columns } if index < columns.len() => {
                self.record.fields.push(Field { bytes, too_long });
            }
            Stage::Rows { .. } | Stage::Stopped => {}
        }
    }

    fn end_record(&mut self) {
        match self.stage {
            Stage::Header { .. } => self.end_header(),
            Stage::Rows { .. } => self.end_row(),
            Stage::Stopped => {}
        }
    }
}

impl Batch {
    fn new() -> Self {
        Self {
            stage: Stage::Header { columns: Vec::new(), valid: true },
            record: Draft::default(),
            rows: Vec::new(),
            row_count: 0,
            emails: HashMap::new(),
            errors: Vec::new(),
            error_count: 0,
        }
    }

    fn end_header(&mut self) {
        if self.record.blank {
            let (listed, counted) = self.record.errors_before;
            self.errors.truncate(listed);
            self.error_count = counted;
            self.stage = Stage::Header { columns: Vec::new(), valid: true };
            return;
        }
        let Stage::Header { columns, mut valid } = std::mem::replace(&mut self.stage, Stage::Stopped) else {
            return;
        };
        for required in [Column::Email, Column::Name] {
            if !columns.contains(&required) {
                valid = false;
                let reason = format!("the header has no {} column", required.name());
                self.report(self.record.line, MISSING_COLUMN, reason);
            }
        }
        if valid {
            self.stage = Stage::Rows { columns };
        }
    }

    fn end_row(&mut self) {
        if self.record.blank {
            return;
        }
        let line = self.record.line;
        self.row_count += 1;
        if self.row_count > MAX_ROWS as u64 {
            self.report(line, TOO_MANY_ROWS, format!("the file has more than {MAX_ROWS} rows; split it"));
            self.stage = Stage::Stopped;
            return;
        }
        let Stage::Rows { columns } = &self.stage else { return };
        let fields = std::mem::take(&mut self.record.fields);
        match read_row(line, columns, &fields, self.record.count, &mut self.emails) {
            Ok(row) if self.error_count == 0 => self.rows.push(row),
            Ok(_) => {}
            Err(problems) => {
                for (code, reason) in problems {
                    self.report(line, code, reason);
                }
            }
        }
    }

    fn report(&mut self, line: u64, code: &'static str, reason: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(RowError { line, code, reason });
        }
        // All or nothing: once a line is wrong no row is imported, so none is kept.
        if !self.rows.is_empty() {
            self.rows = Vec::new();
        }
    }

    fn close(mut self) -> Result<Vec<ImportRow>, ImportReport> {
        match self.stage {
            Stage::Header { .. } => self.report(1, EMPTY, "the file is empty".to_owned()),
            Stage::Rows { .. } if self.row_count == 0 => {
                self.report(1, EMPTY, "the file has a header but no rows".to_owned());
            }
            Stage::Rows { .. } | Stage::Stopped => {}
        }
        if self.error_count == 0 {
            Ok(self.rows)
        } else {
            Err(ImportReport { rows: self.row_count, error_count: self.error_count, errors: self.errors })
        }
    }
}

/// What is wrong with the header's column `index` (0-based), if anything;
/// a known name not seen before is added to `columns`.
fn header_problem(index: usize, bytes: &[u8], too_long: bool, columns: &mut Vec<Column>) -> Option<Problem> {
    let number = index + 1;
    if too_long {
        return Some((
            FIELD_TOO_LONG,
            format!("column {number} of the header is longer than {FIELD_MAX} bytes"),
        ));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some((ENCODING, format!("column {number} of the header is not valid UTF-8")));
    };
    // A second byte order mark (files joined by hand) is not part of the name.
    let name = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').to_lowercase();
    match Column::named(&name) {
        Some(column) if columns.contains(&column) => {
            Some((DUPLICATE_COLUMN, format!("the header has the {} column twice", column.name())))
        }
        Some(column) => {
            columns.push(column);
            None
        }
        None if name.is_empty() => {
            Some((UNKNOWN_COLUMN, format!("column {number} of the header has no name")))
        }
        None => {
            let expected = listed(Column::ALL.into_iter().map(Column::name));
            // A header holding an address is most likely a data row.
            let hint = if name.contains('@') { "; is the header line missing?" } else { "" };
            let reason = format!("column {number}{} is not one of {expected}{hint}", quoted(&name));
            Some((UNKNOWN_COLUMN, reason))
        }
    }
}

/// The row of a data record, or everything wrong with it. `count` is how many
/// fields the record has; `fields` are the first of them, as many as `columns`.
fn read_row(
    line: u64,
    columns: &[Column],
    fields: &[Field],
    count: usize,
    emails: &mut HashMap<Email, u64>,
) -> Result<ImportRow, Vec<Problem>> {
    if count != columns.len() || fields.len() != columns.len() {
        return Err(vec![(FIELD_COUNT, format!("expected {} fields, found {count}", columns.len()))]);
    }
    if let Some((column, _)) = columns.iter().zip(fields).find(|(_, field)| field.too_long) {
        return Err(vec![(FIELD_TOO_LONG, format!("{} is longer than {FIELD_MAX} bytes", column.name()))]);
    }
    let mut texts = Vec::with_capacity(columns.len());
    for (column, field) in columns.iter().zip(fields) {
        match std::str::from_utf8(&field.bytes) {
            Ok(text) => texts.push(unguarded(text.trim_start()).trim()),
            Err(_) => return Err(vec![(ENCODING, format!("{} is not valid UTF-8", column.name()))]),
        }
    }
    let value =
        |wanted: Column| columns.iter().zip(&texts).find(|(c, _)| **c == wanted).map_or("", |(_, t)| *t);

    let mut problems = Vec::new();
    let email = match Email::parse(value(Column::Email)) {
        Ok(email) => match emails.get(&email) {
            Some(first) => {
                problems.push((DUPLICATE_EMAIL, format!("email is also on line {first}")));
                None
            }
            None => {
                emails.insert(email.clone(), line);
                Some(email)
            }
        },
        Err(_) if value(Column::Email).is_empty() => {
            problems.push((INVALID_EMAIL, "email is empty".to_owned()));
            None
        }
        Err(_) => {
            problems.push((INVALID_EMAIL, "email is not a valid address".to_owned()));
            None
        }
    };

    let name = value(Column::Name);
    let name_problem = if name.is_empty() {
        Some("name is empty".to_owned())
    } else if name.chars().count() > NAME_MAX {
        Some(format!("name is longer than {NAME_MAX} characters"))
    } else if name.chars().any(char::is_control) {
        Some("name contains control characters (line breaks, tabs)".to_owned())
    } else {
        None
    };
    if let Some(reason) = name_problem {
        problems.push((INVALID_NAME, reason));
    }

    let phone = phone(value(Column::Phone));
    if phone.is_err() {
        let reason = "phone must be 5 to 32 characters with at least 5 digits: digits, spaces, - ( ) . \
                      and a leading +";
        problems.push((INVALID_PHONE, reason.to_owned()));
    }

    let kind_text = value(Column::Kind);
    let kind = if kind_text.is_empty() {
        Some(MembershipKind::Staff)
    } else {
        let kind = MembershipKind::from_storage(&kind_text.to_lowercase());
        if kind.is_none() {
            let expected = listed(MembershipKind::ALL.iter().map(|k| k.as_str()));
            problems.push((INVALID_KIND, format!("kind{} is not one of {expected}", quoted(kind_text))));
        }
        kind
    };

    let role_text = value(Column::Role);
    // Built-in tenant roles only: a custom role is given afterwards, by id.
    let importable = |role: &Role| !role.is_platform() && *role != Role::Custom;
    let tenant_roles = || listed(Role::ALL.iter().filter(|r| importable(r)).map(|r| r.as_str()));
    let role = if role_text.is_empty() {
        kind.map(role_of)
    } else {
        match Role::from_storage(&role_text.to_lowercase()) {
            Some(role) if role.is_platform() => {
                let reason =
                    format!("role {} is the platform's own; use one of {}", role.as_str(), tenant_roles());
                problems.push((ROLE_NOT_ALLOWED, reason));
                None
            }
            Some(role) if importable(&role) => Some(role),
            _ => {
                let reason = format!("role{} is not one of {}", quoted(role_text), tenant_roles());
                problems.push((INVALID_ROLE, reason));
                None
            }
        }
    };

    match (email, phone, kind, role) {
        (Some(email), Ok(phone), Some(kind), Some(role)) if problems.is_empty() => {
            Ok(ImportRow { line, email, name: name.to_owned(), phone, kind, role })
        }
        _ => Err(problems),
    }
}

/// `text` without the `'` the export puts before a field that a spreadsheet
/// would run as a formula (see [`export_record`]).
fn unguarded(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => text,
    }
}

/// A trimmed phone number (`None` when empty), or `Err` when it is not one.
fn phone(text: &str) -> Result<Option<String>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    let allowed = text.char_indices().all(|(at, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && at == 0)
    });
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if allowed && (5..=32).contains(&text.chars().count()) && digits >= 5 {
        Ok(Some(text.to_owned()))
    } else {
        Err(())
    }
}

/// The role a kind of member gets when the file names none.
const fn role_of(kind: MembershipKind) -> Role {
    match kind {
        MembershipKind::Owner => Role::Owner,
        MembershipKind::Admin => Role::Admin,
        MembershipKind::Staff => Role::Staff,
        MembershipKind::Student | MembershipKind::Parent | MembershipKind::Viewer => Role::Viewer,
    }
}

fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// ` "value"` for a reason (at most [`SHOWN_MAX`] characters), or nothing when
/// the value may be personal: with an `@` or a digit it may be an address or
/// a phone number that landed in the wrong column.
fn quoted(value: &str) -> String {
    if value.chars().any(|c| c == '@' || c.is_ascii_digit()) {
        return String::new();
    }
    let shown: String = value.chars().take(SHOWN_MAX).collect();
    format!(" {shown:?}")
}

/// What a bulk import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"rows": 1200, "newAccounts": 1150, "invited": 1200})))]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Rows imported.
    pub rows: u64,
    /// Accounts created for addresses new to the platform.
    pub new_accounts: u64,
    /// Memberships created (invited: each person accepts to sign in).
    pub invited: u64,
}

/// Why an import wrote nothing.
#[derive(Debug)]
pub enum ImportRefused {
    /// Rows that cannot be imported, each with its line.
    Rows(ImportReport),
    /// Another failure.
    Identity(crate::IdentityError),
}

impl From<portico_kernel::InfraError> for ImportRefused {
    fn from(error: portico_kernel::InfraError) -> Self {
        Self::Identity(crate::IdentityError::Store(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_chunks(file: &[u8], size: usize) -> Result<Vec<ImportRow>, ImportReport> {
        let mut parser = ImportParser::new();
        for chunk in file.chunks(size) {
            parser.feed(chunk);
        }
        parser.finish()
    }

    fn parse(file: &str) -> Result<Vec<ImportRow>, ImportReport> {
        parse_in_chunks(file.as_bytes(), usize::MAX)
    }

    fn report(file: &str) -> ImportReport {
        parse(file).expect_err("the file should be refused")
    }

    /// Each listed error as (line, code).
    fn lines(report: &ImportReport) -> Vec<(u64, &'static str)> {
        report.errors.iter().map(|e| (e.line, e.code)).collect()
    }

    fn errors(file: &str) -> Vec<(u64, &'static str)> {
        lines(&report(file))
    }

    fn row(
        line: u64,
        email: &str,
        name: &str,
        phone: Option<&str>,
        kind: MembershipKind,
        role: Role,
    ) -> ImportRow {
        ImportRow {
            line,
            email: Email::parse(email).unwrap(),
            name: name.to_owned(),
            phone: phone.map(str::to_owned),
            kind,
            role,
        }
    }

    const GOOD: &str = "email,Name, PHONE ,kind,role\r\n\
        ann@example.com,Ann Lee,+49 30 1234567,owner,\r\n\
        \r\n\
        BOB@Example.com,\"Zoë, the \"\"Builder\"\"\",,student,\r\n\
        carl@example.com,\"Carl Smith\n\",(030) 123-45,,admin\r\n\
        dora@example.com,Dora,,PARENT,Viewer";

    #[test]
    fn a_good_file_gives_its_rows_whatever_the_chunk_sizes() {
        let expected = vec![
            row(2, "ann@example.com", "Ann Lee", Some("+49 30 1234567"), MembershipKind::Owner, Role::Owner),
            row(4, "bob@example.com", "Zoë, the \"Builder\"", None, MembershipKind::Student, Role::Viewer),
            row(
                5,
                "carl@example.com",
                "Carl Smith",
                Some("(030) 123-45"),
                MembershipKind::Staff,
                Role::Admin,
            ),
            row(7, "dora@example.com", "Dora", None, MembershipKind::Parent, Role::Viewer),
        ];
        assert_eq!(parse(GOOD).unwrap(), expected);
        for size in 1..=7 {
            assert_eq!(parse_in_chunks(GOOD.as_bytes(), size).unwrap(), expected, "chunks of {size}");
        }
    }

    #[test]
    fn a_quoted_line_break_keeps_later_line_numbers_right() {
        let file = "email,name\n\
            a@example.com,\"Ann\n\nLee\"\n\
            b@example.com,Bob\n\
            not-an-email,Carl\n";
        assert_eq!(errors(file), vec![(2, INVALID_NAME), (6, INVALID_EMAIL)]);
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_are_read() {
        let file = "\u{feff}Email,Name\r\nann@example.com,Ann\r\n\r\nbob@example.com,Bob\r\n";
        for size in 1..=7 {
            let rows = parse_in_chunks(file.as_bytes(), size).unwrap();
            assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4], "chunks of {size}");
        }
    }

    #[test]
    fn blank_lines_are_skipped_and_not_counted() {
        let report = report("\n\nemail,name\n\n  \n,\n\"\",\na@example.com,\nb@example.com,Bob\n\n");
        assert_eq!((report.rows, report.errors[0].line, report.errors[0].code), (2, 8, INVALID_NAME));
    }

    #[test]
    fn an_unknown_column_is_named() {
        let report = report("email,name,Age\na@example.com,Ann,3\n");
        assert_eq!(lines(&report), vec![(1, UNKNOWN_COLUMN)]);
        assert!(report.errors[0].reason.contains("\"age\""), "{}", report.errors[0].reason);
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let report = report("email,phone\na@example.com,123456\n");
        assert_eq!(lines(&report), vec![(1, MISSING_COLUMN)]);
        assert!(report.errors[0].reason.contains("name"));
    }

    #[test]
    fn a_column_named_twice_is_refused() {
        assert_eq!(
            errors("email,name,EMAIL\na@example.com,Ann,b@example.com\n"),
            vec![(1, DUPLICATE_COLUMN)]
        );
    }

    #[test]
    fn a_bad_header_is_reported_alone_and_the_rows_are_not_read() {
        let report = report("mail,name,,role,role\nnot-an-email,,,,\n");
        let expected =
            vec![(1, UNKNOWN_COLUMN), (1, UNKNOWN_COLUMN), (1, DUPLICATE_COLUMN), (1, MISSING_COLUMN)];
        assert_eq!((lines(&report), report.rows), (expected, 0));
    }

    #[test]
    fn a_file_without_a_header_is_told_so_without_its_address() {
        let report = report("ann@example.com,Ann\n");
        assert_eq!(report.errors[0].code, UNKNOWN_COLUMN);
        assert!(report.errors[0].reason.contains("header line missing"), "{}", report.errors[0].reason);
        assert!(!report.errors[0].reason.contains('@'));
    }

    #[test]
    fn an_empty_file_or_a_header_alone_is_refused() {
        for file in ["", "\r\n\n", "\u{feff}", "email,name\r\n", "email,name\n,\n\n"] {
            assert_eq!(errors(file), vec![(1, EMPTY)], "{file:?}");
        }
    }

    #[test]
    fn a_record_with_the_wrong_number_of_fields_is_refused() {
        let report = report("email,name,phone\na@example.com,Ann\nb@example.com,Bob,,\n");
        let found: Vec<_> = report.errors.iter().map(|e| (e.line, e.code, e.reason.as_str())).collect();
        assert_eq!(
            found,
            vec![
                (2, FIELD_COUNT, "expected 3 fields, found 2"),
                (3, FIELD_COUNT, "expected 3 fields, found 4")
            ]
        );
    }

    #[test]
    fn a_record_with_many_fields_is_counted_in_full() {
        let file = format!("email,name\na@example.com,Ann{}\n", ",x".repeat(98));
        assert_eq!(report(&file).errors[0].reason, "expected 2 fields, found 100");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let report =
            parse_in_chunks(b"email,name\na@example.com,Ann\nb@example.com,\xff\xfeBob\n", 3).unwrap_err();
        assert_eq!(lines(&report), vec![(3, ENCODING)]);
    }

    #[test]
    fn a_bad_email_is_refused() {
        assert_eq!(
            errors("email,name\nann@example.com,Ann\nann.example.com,Ann\n,Bob\n"),
            vec![(3, INVALID_EMAIL), (4, INVALID_EMAIL)]
        );
    }

    #[test]
    fn a_repeated_email_names_the_first_line() {
        let report =
            report("email,name\nann@example.com,Ann\nbob@example.com,Bob\n Ann@Example.COM ,Ann Lee\n");
        assert_eq!(
            report.errors,
            vec![RowError { line: 4, code: DUPLICATE_EMAIL, reason: "email is also on line 2".to_owned() }]
        );
    }

    #[test]
    fn a_bad_name_is_refused() {
        let long = "x".repeat(NAME_MAX + 1);
        let file = format!(
            "email,name\na@example.com,\nb@example.com,{long}\nc@example.com,\"Ann\tLee\"\nd@example.com,{}\n",
            "é".repeat(NAME_MAX)
        );
        assert_eq!(errors(&file), vec![(2, INVALID_NAME), (3, INVALID_NAME), (4, INVALID_NAME)]);
    }

    #[test]
    fn phones_are_checked() {
        for good in ["", "12345", "+1 (555) 010-0199", "030.123.456", &"1".repeat(32)] {
            let file = format!("email,name,phone\na@example.com,Ann,{good}\n");
            assert!(parse(&file).is_ok(), "{good:?}");
        }
        for bad in ["1234", "+1 2", "12a45", "49+30123456", "++4930123", "(1) (2) 3-4", &"1".repeat(33)] {
            let file = format!("email,name,phone\na@example.com,Ann,{bad}\n");
            assert_eq!(errors(&file), vec![(2, INVALID_PHONE)], "{bad:?}");
        }
    }

    #[test]
    fn a_kind_defaults_to_staff_and_an_unknown_one_is_refused() {
        let rows = parse("email,name,kind\na@example.com,Ann,\nb@example.com,Bob,Admin\n").unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.kind, r.role)).collect::<Vec<_>>(),
            vec![(MembershipKind::Staff, Role::Staff), (MembershipKind::Admin, Role::Admin)]
        );
        let report = report("email,name,kind\na@example.com,Ann,teacher\n");
        assert_eq!((report.errors[0].line, report.errors[0].code), (2, INVALID_KIND));
        assert_eq!(
            report.errors[0].reason,
            "kind \"teacher\" is not one of owner, admin, staff, student, parent, viewer"
        );
    }

    #[test]
    fn a_role_comes_from_the_kind_when_not_given() {
        for (kind, role) in [
            ("owner", Role::Owner),
            ("admin", Role::Admin),
            ("staff", Role::Staff),
            ("student", Role::Viewer),
            ("parent", Role::Viewer),
            ("viewer", Role::Viewer),
        ] {
            let rows = parse(&format!("email,name,kind,role\na@example.com,Ann,{kind},\n")).unwrap();
            assert_eq!(rows[0].role, role, "{kind}");
        }
        let rows = parse("email,name,kind,role\na@example.com,Ann,student,STAFF\n").unwrap();
        assert_eq!(rows[0].role, Role::Staff);
    }

    #[test]
    fn platform_and_unknown_roles_are_refused() {
        let report = report("email,name,role\na@example.com,Ann,platform_admin\nb@example.com,Bob,boss\n");
        assert_eq!(lines(&report), vec![(2, ROLE_NOT_ALLOWED), (3, INVALID_ROLE)]);
        assert_eq!(report.errors[1].reason, "role \"boss\" is not one of owner, admin, staff, viewer");
    }

    #[test]
    fn a_field_over_the_limit_is_refused() {
        let at_limit = "x".repeat(FIELD_MAX);
        let over = "x".repeat(FIELD_MAX + 1);
        let file = format!("email,name\na@example.com,{at_limit}\nb@example.com,{over}\n");
        assert_eq!(errors(&file), vec![(2, INVALID_NAME), (3, FIELD_TOO_LONG)]);
    }

    #[test]
    fn a_huge_field_is_not_buffered() {
        let mut parser = ImportParser::new();
        parser.feed(b"email,name\na@example.com,\"");
        for _ in 0..1_000 {
            parser.feed(&[b'x'; 1_000]);
            assert!(parser.batch.record.field.capacity() <= 2 * FIELD_MAX);
        }
        parser.feed(b"\"\nb@example.com,Bob\n");
        let report = parser.finish().unwrap_err();
        assert_eq!((lines(&report), report.rows), (vec![(2, FIELD_TOO_LONG)], 2));
    }

    #[test]
    fn one_bad_row_among_good_ones_refuses_the_file_with_one_error() {
        let report = report(
            "email,name,kind\na@example.com,Ann,staff\nb@example.com,Bob,pilot\nc@example.com,Carl,parent\n",
        );
        assert_eq!((report.rows, report.error_count), (3, 1));
        assert_eq!(lines(&report), vec![(3, INVALID_KIND)]);
    }

    fn people(count: usize) -> String {
        let mut file = String::from("email,name\n");
        for n in 0..count {
            file.push_str(&format!("p{n}@example.com,P\n"));
        }
        file
    }

    #[test]
    fn a_file_of_max_rows_is_accepted() {
        assert_eq!(parse(&people(MAX_ROWS)).unwrap().len(), MAX_ROWS);
    }

    #[test]
    fn a_row_past_max_rows_stops_the_import() {
        let file = people(MAX_ROWS + 1) + "not-an-email,\n";
        let report = parse_in_chunks(file.as_bytes(), 8_192).unwrap_err();
        assert_eq!(lines(&report), vec![(MAX_ROWS as u64 + 2, TOO_MANY_ROWS)]);
        assert_eq!((report.rows, report.error_count), (MAX_ROWS as u64 + 1, 1));
    }

    #[test]
    fn a_report_lists_the_first_errors_and_counts_them_all() {
        let mut file = String::from("email,name\n");
        for n in 0..MAX_REPORTED + 500 {
            file.push_str(&format!("p{n}.example.com,P\n"));
        }
        let report = report(&file);
        assert_eq!(report.errors.len(), MAX_REPORTED);
        assert_eq!((report.error_count, report.rows), (MAX_REPORTED as u64 + 500, MAX_REPORTED as u64 + 500));
        assert_eq!(report.errors.last().map(|e| e.line), Some(MAX_REPORTED as u64 + 1));
    }

    #[test]
    fn reasons_never_repeat_an_address_or_a_phone_number() {
        let file = "email,name,phone,kind,role\n\
            ann@example.com,Ann,+49 30 1234x,,\n\
            ann@example.com,Ann,,,\n\
            bob@@example.com,Bob,,,\n\
            carl@example.com,Carl,,+49 30 1234,\n\
            dora@example.com,Dora,,,dora@example.com\n\
            eve@example.com,Eve,+49 30 1234,,,\n";
        let report = report(file);
        assert_eq!(report.error_count, 6);
        for error in &report.errors {
            assert!(!error.reason.contains('@') && !error.reason.contains("example"), "{}", error.reason);
            assert!(!error.reason.contains("1234"), "{}", error.reason);
        }
    }

    #[test]
    fn a_kind_or_role_shown_in_a_reason_is_cut_short() {
        let report = report(&format!("email,name,kind\na@example.com,Ann,{}\n", "k".repeat(100)));
        assert!(report.errors[0].reason.contains(&format!("\"{}\"", "k".repeat(SHOWN_MAX))));
        assert!(!report.errors[0].reason.contains(&"k".repeat(SHOWN_MAX + 1)));
    }

    #[test]
    fn export_quotes_fields_that_need_it() {
        assert_eq!(export_header(), "email,name,phone,kind,role,status,createdAt\r\n");
        assert_eq!(
            export_record(&["ann@example.com", "Lee, Ann", "say \"hi\"", "two\nlines", ""]),
            "ann@example.com,\"Lee, Ann\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
        );
    }

    #[test]
    fn export_keeps_spreadsheets_from_running_formulas() {
        assert_eq!(
            export_record(&["=SUM(A1)", "+49 30 1234", "-1", "@cmd", "\tx", "\rx", "a=b"]),
            "'=SUM(A1),'+49 30 1234,'-1,'@cmd,'\tx,\"'\rx\",a=b\r\n"
        );
        assert_eq!(export_record(&["=HYPERLINK(\"x\",\"y\")"]), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"\r\n");
    }

    #[test]
    fn an_export_imports_as_it_is() {
        let people = [
            row(2, "ann@example.com", "Ann Lee", Some("+49 30 1234567"), MembershipKind::Owner, Role::Owner),
            row(3, "bob@example.com", "=Bob", None, MembershipKind::Student, Role::Viewer),
            row(
                4,
                "carl@example.com",
                "Smith, Carl \"CJ\"",
                Some("-030 12345"),
                MembershipKind::Staff,
                Role::Admin,
            ),
            row(5, "-dora@example.com", "@Dora", Some("(030) 123-45"), MembershipKind::Parent, Role::Viewer),
        ];
        let mut file = export_header();
        for person in &people {
            file.push_str(&export_record(&[
                person.email.as_str(),
                &person.name,
                person.phone.as_deref().unwrap_or(""),
                person.kind.as_str(),
                person.role.as_str(),
                "active",
                "2026-01-02T03:04:05Z",
            ]));
        }
        assert!(
            file.contains("'+49 30 1234567") && file.contains("'=Bob") && file.contains("'-dora@"),
            "{file}"
        );
        for size in [1, 2, 3, 7, usize::MAX] {
            assert_eq!(parse_in_chunks(file.as_bytes(), size), Ok(people.to_vec()), "chunks of {size}");
        }
    }

    #[test]
    fn only_a_quote_before_a_formula_character_is_removed() {
        let file = "email,name,phone\n\
            a@example.com,'=Ann,'+49 30 1234\n\
            b@example.com,'Bob',\n\
            c@example.com,\"''=Carl\",\n\
            d@example.com,'@,\n";
        let rows = parse(file).unwrap();
        let found: Vec<_> = rows.iter().map(|r| (r.name.as_str(), r.phone.as_deref())).collect();
        assert_eq!(
            found,
            vec![("=Ann", Some("+49 30 1234")), ("'Bob'", None), ("''=Carl", None), ("@", None)]
        );
        // The guard is taken away before the value is checked.
        assert_eq!(errors("email,name,phone\na@example.com,Ann,'+49\n"), vec![(2, INVALID_PHONE)]);
        assert_eq!(errors("email,name\na@example.com,\"'\t\"\n"), vec![(2, INVALID_NAME)]);
    }

    #[test]
    fn the_status_and_created_at_columns_of_an_export_are_ignored() {
        let file = "Email,name,STATUS,createdat\n\
            a@example.com,Ann,active,2026-01-02T03:04:05Z\n\
            b@example.com,Bob,anything at all,\"not, a date\"\n\
            c@example.com,Carl,,\n";
        let rows = parse(file).unwrap();
        assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["Ann", "Bob", "Carl"]);
        // Their values are not checked, not even for length or encoding.
        let long = format!("email,name,status\na@example.com,Ann,{}\n", "x".repeat(FIELD_MAX + 1));
        assert!(parse(&long).is_ok());
        assert!(parse_in_chunks(b"email,createdAt,name\na@example.com,\xff\xfe,Ann\n", 3).is_ok());
        // They still count as fields and may be named only once.
        assert_eq!(errors("email,name,status\na@example.com,Ann\n"), vec![(2, FIELD_COUNT)]);
        assert_eq!(errors("email,name,status,Status\na@example.com,Ann,,\n"), vec![(1, DUPLICATE_COLUMN)]);
    }

    #[test]
    fn a_truly_unknown_column_is_still_refused_beside_status_and_created_at() {
        let report = report("email,name,status,createdAt,updatedAt\na@example.com,Ann,active,x,y\n");
        assert_eq!((lines(&report), report.rows), (vec![(1, UNKNOWN_COLUMN)], 0));
        assert!(report.errors[0].reason.contains("column 5 \"updatedat\""), "{}", report.errors[0].reason);
    }
}
