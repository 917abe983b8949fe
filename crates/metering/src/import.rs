//! Readings imported from a CSV file (`POST /api/v1/metering/readings/import`).
//!
//! [`ReadingsImport`] is pushed the upload chunk by chunk as it streams in
//! and keeps only the rows it has read and the errors, never the file. The
//! file is UTF-8 CSV (RFC 4180, a byte order mark skipped, CRLF or LF) whose
//! first record is the header: `at` and `value`, and the meter as
//! `meterId` or as `serialNumber` (one of the two), and optionally
//! `estimated` (`true`/`false`, `yes`/`no`, `1`/`0`; empty is `false`), in
//! any order and case. `at` is RFC 3339 with its offset
//! (`2026-03-01T08:00:00+01:00`); `value` is a decimal number with a point.
//! Blank lines are skipped.
//!
//! A file is all or nothing: [`ReadingsImport::finish`] gives the rows when
//! every line reads, and the store then checks each reading as a batch's,
//! reporting a refused one by its line; otherwise the report lists the bad
//! lines with stable codes.
//!
//! ```
//! use portico_metering::{MeterRef, ReadingsImport};
//!
//! let mut import = ReadingsImport::new();
//! import.feed(b"serialNumber,at,value\r\nE-1,2026-03-01T08:00:00Z,47");
//! import.feed(b"11.5\r\n");
//! let rows = import.finish().unwrap();
//! assert_eq!(rows[0].meter, MeterRef::SerialNumber("E-1".into()));
//! assert_eq!((rows[0].line, rows[0].value.to_string()), (2, "4711.5".to_owned()));
//! ```

use chrono::{DateTime, Utc};
use portico_kernel::MeterId;
use portico_kernel::csv::{Framing, ImportReport, RecordSink};
use rust_decimal::Decimal;

use crate::{InService, Meter, in_service_at};

/// The most data rows one file may hold.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// The longest field, in bytes: a longer one is refused, not buffered.
const FIELD_MAX: usize = 200;
/// Fields of a record kept: more are counted, not buffered (a line of
/// commas must not fill the memory).
const FIELDS_KEPT: usize = 16;

/// How a row names its meter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MeterRef {
    /// By id.
    Id(MeterId),
    /// By the serial number printed on it (of the meter in service at the reading's time).
    SerialNumber(String),
}

/// One row of an import, read (not yet checked against the meter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedReading {
    /// The line of the file the record starts on (the header is line 1).
    pub line: u64,
    /// The meter.
    pub meter: MeterRef,
    /// When it was read.
    pub at: DateTime<Utc>,
    /// The value.
    pub value: Decimal,
    /// Whether it is an estimate.
    pub estimated: bool,
}

/// Which of `meters` `serial` names at `at`: the one with that number in
/// service then (see [`in_service_at`]).
#[must_use]
pub fn meter_by_serial<'m>(meters: &'m [Meter], serial: &str, at: DateTime<Utc>) -> InService<'m> {
    in_service_at(meters.iter().filter(|m| m.serial_number.as_deref() == Some(serial)), at)
}

/// A column a readings file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    MeterId,
    SerialNumber,
    At,
    Value,
    Estimated,
}

impl Column {
    const ALL: [Self; 5] = [Self::MeterId, Self::SerialNumber, Self::At, Self::Value, Self::Estimated];

    const fn name(self) -> &'static str {
        match self {
            Self::MeterId => "meterId",
            Self::SerialNumber => "serialNumber",
            Self::At => "at",
            Self::Value => "value",
            Self::Estimated => "estimated",
        }
    }
}

/// Reads a readings file pushed in chunks.
#[derive(Debug, Default)]
pub struct ReadingsImport {
    framing: Framing,
    rows: Rows,
}

impl ReadingsImport {
    /// An import at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next bytes of the file; chunks may end anywhere.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.framing.feed(chunk, &mut self.rows);
    }

    /// Ends the file: its rows in file order when every line reads,
    /// otherwise the report of what is wrong.
    pub fn finish(mut self) -> Result<Vec<ImportedReading>, ImportReport> {
        self.framing.finish(&mut self.rows);
        let mut rows = self.rows;
        match rows.columns {
            None if !rows.stopped => rows.report.add(1, "import.empty", "the file is empty".to_owned()),
            Some(_) if rows.report.rows == 0 => {
                rows.report.add(1, "import.empty", "the file has a header but no rows".to_owned());
            }
            _ => {}
        }
        if rows.report.error_count == 0 { Ok(rows.read) } else { Err(rows.report) }
    }
}

/// What the records mean.
#[derive(Debug, Default)]
struct Rows {
    /// The header's columns, once read.
    columns: Option<Vec<Option<Column>>>,
    stopped: bool,
    line: u64,
    field: Vec<u8>,
    too_long: bool,
    fields: Vec<Option<String>>,
    /// Fields of the current record, kept or not.
    field_count: usize,
    read: Vec<ImportedReading>,
    report: ImportReport,
}

impl RecordSink for Rows {
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
        if self.too_long {
            return;
        }
        if self.field.len() + bytes.len() > FIELD_MAX {
            self.too_long = true;
            self.field.clear();
        } else {
            self.field.extend_from_slice(bytes);
        }
    }

    fn end_field(&mut self) {
        let text = if std::mem::take(&mut self.too_long) {
            None
        } else {
            String::from_utf8(std::mem::take(&mut self.field)).ok()
        };
        self.field.clear();
        self.field_count += 1;
        if self.fields.len() < FIELDS_KEPT {
            self.fields.push(text);
        }
    }

    fn end_record(&mut self) {
        let fields = std::mem::take(&mut self.fields);
        let count = self.field_count;
        if count <= FIELDS_KEPT && fields.iter().all(|f| f.as_deref().is_some_and(|t| t.trim().is_empty())) {
            return;
        }
        match &self.columns {
            None if count > FIELDS_KEPT => {
                let reason = format!("the header has {count} columns; a readings file has at most 5");
                self.report.add(self.line, "import.unknown_column", reason);
                self.stopped = true;
            }
            None => self.header(&fields),
            Some(columns) => {
                self.report.rows += 1;
                if self.report.rows > MAX_IMPORT_ROWS as u64 {
                    let reason = format!("the file has more than {MAX_IMPORT_ROWS} rows; split it");
                    self.report.add(self.line, "import.too_many_rows", reason);
                    self.stopped = true;
                    return;
                }
                match read_row(columns, &fields, count) {
                    Ok((meter, at, value, estimated)) if self.report.error_count == 0 => {
                        self.read.push(ImportedReading { line: self.line, meter, at, value, estimated });
                    }
                    Ok(_) => {}
                    Err((code, reason)) => {
                        self.report.add(self.line, code, reason);
                        // All or nothing: no row is kept once one is wrong.
                        self.read = Vec::new();
                    }
                }
            }
        }
    }
}

impl Rows {
    fn header(&mut self, fields: &[Option<String>]) {
        let line = self.line;
        let mut columns = Vec::with_capacity(fields.len());
        for (index, field) in fields.iter().enumerate() {
            let name =
                field.as_deref().map(|t| t.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'));
            let column =
                name.and_then(|n| Column::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(n)));
            match column {
                Some(column) if columns.contains(&Some(column)) => {
                    self.report.add(
                        line,
                        "import.duplicate_column",
                        format!("the header has {} twice", column.name()),
                    );
                }
                Some(column) => columns.push(Some(column)),
                None => {
                    let expected = Column::ALL.map(Column::name).join(", ");
                    let reason = format!("column {} of the header is not one of {expected}", index + 1);
                    self.report.add(line, "import.unknown_column", reason);
                }
            }
        }
        let has = |c: Column| columns.contains(&Some(c));
        for required in [Column::At, Column::Value] {
            if !has(required) {
                self.report.add(
                    line,
                    "import.missing_column",
                    format!("the header has no {} column", required.name()),
                );
            }
        }
        if has(Column::MeterId) == has(Column::SerialNumber) {
            let reason = "the header names the meter by meterId or by serialNumber (one of them)".to_owned();
            self.report.add(line, "import.missing_column", reason);
        }
        if self.report.error_count > 0 {
            self.stopped = true;
        } else {
            self.columns = Some(columns);
        }
    }
}

type Problem = (&'static str, String);

fn read_row(
    columns: &[Option<Column>],
    fields: &[Option<String>],
    count: usize,
) -> Result<(MeterRef, DateTime<Utc>, Decimal, bool), Problem> {
    if count != columns.len() || fields.len() != columns.len() {
        return Err(("import.field_count", format!("expected {} fields, found {count}", columns.len())));
    }
    let (mut meter, mut at, mut value, mut estimated) = (None, None, None, false);
    for (column, field) in columns.iter().zip(fields) {
        let Some(column) = column else { continue };
        let Some(text) = field.as_deref() else {
            let reason = format!("{} is not UTF-8 or longer than {FIELD_MAX} bytes", column.name());
            return Err(("import.invalid_field", reason));
        };
        let text = text.trim();
        let shown = shown(text);
        match column {
            Column::MeterId => {
                let id = text.parse::<MeterId>().map_err(|_| {
                    ("import.invalid_meter", format!("meterId \"{shown}\" is not a meter id"))
                })?;
                meter = Some(MeterRef::Id(id));
            }
            Column::SerialNumber if text.is_empty() || text.chars().any(char::is_control) => {
                return Err((
                    "import.invalid_meter",
                    "serialNumber is empty or holds control characters".to_owned(),
                ));
            }
            Column::SerialNumber => meter = Some(MeterRef::SerialNumber(text.to_owned())),
            Column::At => {
                let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| {
                    ("import.invalid_time", format!("at \"{shown}\" is not an RFC 3339 time with an offset"))
                })?;
                at = Some(parsed.with_timezone(&Utc));
            }
            Column::Value => {
                let parsed = text
                    .parse::<Decimal>()
                    .ok()
                    .filter(|_| {
                        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                    })
                    .ok_or_else(|| {
                        ("import.invalid_value", format!("value \"{shown}\" is not a decimal number"))
                    })?;
                value = Some(parsed);
            }
            Column::Estimated => {
                estimated = match text.to_ascii_lowercase().as_str() {
                    "" | "false" | "no" | "0" => false,
                    "true" | "yes" | "1" => true,
                    _ => {
                        return Err((
                            "import.invalid_estimated",
                            format!("estimated \"{shown}\" is not true or false"),
                        ));
                    }
                }
            }
        }
    }
    match (meter, at, value) {
        (Some(meter), Some(at), Some(value)) => Ok((meter, at, value, estimated)),
        _ => Err(("import.field_count", "the row lacks a field".to_owned())),
    }
}

/// A value as a reason repeats it: at most 40 characters.
fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        shown.push('…');
    }
    shown.replace('"', "\"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(bytes: &[u8]) -> Result<Vec<ImportedReading>, ImportReport> {
        let mut import = ReadingsImport::new();
        // Fed a few bytes at a time: chunks end anywhere.
        for chunk in bytes.chunks(3) {
            import.feed(chunk);
        }
        import.finish()
    }

    fn codes(report: &ImportReport) -> Vec<(u64, &'static str)> {
        report.errors.iter().map(|e| (e.line, e.code)).collect()
    }

    #[test]
    fn rows_are_read_with_their_lines_in_any_column_order() {
        let id = MeterId::new();
        let file = format!(
            "\u{feff}Value,AT,meterId,estimated\r\n\r\n12.5,2026-03-01T08:00:00+01:00,{id},yes\n\"13\",2026-03-02T07:00:00Z,{id},\n"
        );
        let rows = import(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, &rows[0].meter, rows[0].estimated), (3, &MeterRef::Id(id), true));
        assert_eq!(rows[0].at.to_rfc3339(), "2026-03-01T07:00:00+00:00");
        assert_eq!((rows[1].line, rows[1].value, rows[1].estimated), (4, Decimal::from(13), false));
    }

    #[test]
    fn every_bad_line_is_reported_and_nothing_is_kept() {
        let file = "serialNumber,at,value\n\
                    E-1,2026-03-01T08:00:00Z,1\n\
                    E-1,2026-03-01 08:00,2\n\
                    E-1,2026-03-01T09:00:00Z,\"12,5\"\n\
                    E-1,2026-03-01T10:00:00Z\n\
                    ,2026-03-01T11:00:00Z,1e3\n";
        let report = import(file.as_bytes()).unwrap_err();
        assert_eq!(
            codes(&report),
            [
                (3, "import.invalid_time"),
                (4, "import.invalid_value"),
                (5, "import.field_count"),
                (6, "import.invalid_meter")
            ]
        );
        assert_eq!((report.rows, report.error_count), (5, 4));
        assert_eq!(report.errors[1].reason, "value \"12,5\" is not a decimal number");
    }

    #[test]
    fn a_header_without_its_columns_is_refused() {
        let report = import(b"meterId,serialNumber,value,colour\n").unwrap_err();
        assert_eq!(
            codes(&report),
            [(1, "import.unknown_column"), (1, "import.missing_column"), (1, "import.missing_column")]
        );
        assert_eq!(
            codes(&import(b"at,value,at,serialNumber\n").unwrap_err()),
            [(1, "import.duplicate_column")]
        );
        assert_eq!(codes(&import(b"").unwrap_err()), [(1, "import.empty")]);
        assert_eq!(codes(&import(b"serialNumber,at,value\r\n").unwrap_err()), [(1, "import.empty")]);
    }

    #[test]
    fn long_fields_and_bad_utf8_are_refused_without_buffering() {
        let mut file = b"serialNumber,at,value\n".to_vec();
        file.extend(std::iter::repeat_n(b'9', 10_000));
        file.extend_from_slice(b",2026-03-01T08:00:00Z,1\nE-\xff,2026-03-01T08:00:00Z,1\n");
        let report = import(&file).unwrap_err();
        assert_eq!(codes(&report), [(2, "import.invalid_field"), (3, "import.invalid_field")]);
    }

    #[test]
    fn a_file_longer_than_the_limit_stops_at_it() {
        let mut file = String::from("serialNumber,at,value\n");
        for _ in 0..=MAX_IMPORT_ROWS {
            file.push_str("E-1,2026-03-01T08:00:00Z,1\n");
        }
        let report = ReadingsImport::new();
        let mut report = report;
        report.feed(file.as_bytes());
        let report = report.finish().unwrap_err();
        assert_eq!(codes(&report), [(MAX_IMPORT_ROWS as u64 + 2, "import.too_many_rows")]);
    }

    fn meter(serial: &str, from: u32, until: Option<u32>) -> Meter {
        let day = |d| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, d, 0, 0, 0).unwrap();
        Meter {
            id: MeterId::new(),
            place: crate::MeterPlace::Subject { subject: "s".into() },
            kind: crate::MeterKind::Water,
            unit: "m3".into(),
            mode: crate::ReadingMode::Register { digits: None },
            serial_number: Some(serial.into()),
            active_from: day(from),
            active_until: until.map(day),
            start_reading: Some(Decimal::ZERO),
            replaces: None,
        }
    }

    #[test]
    fn a_serial_number_names_the_meter_in_service_and_the_closing_one_at_a_replacement() {
        let day = |d| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, d, 0, 0, 0).unwrap();
        let old = meter("W-1", 1, Some(10));
        let new = meter("W-1", 10, None);
        let elsewhere = meter("W-2", 1, None);
        let meters = [old.clone(), new.clone(), elsewhere];
        assert_eq!(meter_by_serial(&meters, "W-1", day(5)), InService::One(&meters[0]));
        assert_eq!(
            meter_by_serial(&meters, "W-1", day(10)),
            InService::One(&meters[0]),
            "the closing reading"
        );
        assert_eq!(meter_by_serial(&meters, "W-1", day(11)), InService::One(&meters[1]));
        assert_eq!(meter_by_serial(&meters, "W-3", day(11)), InService::None);
        let twins = [meter("W-9", 1, None), meter("W-9", 3, None)];
        assert_eq!(meter_by_serial(&twins, "W-9", day(2)), InService::One(&twins[0]));
        assert_eq!(meter_by_serial(&twins, "W-9", day(5)), InService::Several);
    }

    #[test]
    fn a_line_of_commas_is_counted_not_kept() {
        let mut file = b"serialNumber,at,value\n".to_vec();
        file.extend(std::iter::repeat_n(b',', 100_000));
        file.extend_from_slice(b"\n");
        let report = import(&file).unwrap_err();
        assert_eq!(codes(&report), [(2, "import.field_count")]);
        assert_eq!(report.errors[0].reason, "expected 3 fields, found 100001");
        let header = vec![b','; 50];
        assert_eq!(codes(&import(&header).unwrap_err()), [(1, "import.unknown_column")]);
    }
}
