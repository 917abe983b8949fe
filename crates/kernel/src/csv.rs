//! Reading CSV (RFC 4180) as it streams in: [`Framing`] turns chunks of
//! bytes into fields and records with csv-core, numbers the physical line
//! each record starts on, and hands them to a [`RecordSink`] that gives
//! them meaning (an import's header, rows and errors). Nothing buffers the
//! file: a sink keeps what it needs.
//!
//! The file is UTF-8 or anything else the sink accepts (a leading byte
//! order mark is skipped), with CRLF or LF line ends; blank lines between
//! records are skipped and still counted.

use csv_core::{ReadRecordResult, Reader};
use serde::Serialize;

/// The most errors a report lists; it counts those beyond.
pub const MAX_REPORTED: usize = 1_000;

/// How many parsed bytes csv-core hands over per call: longer fields arrive
/// in pieces, so memory does not grow with the field.
const WINDOW: usize = 1_024;
/// How many field ends csv-core hands over per call.
const WINDOW_ENDS: usize = 32;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why one line of an import file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "line": 7, "code": "import.invalid_value", "reason": "value \"12,5\" is not a decimal number"
})))]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    /// The physical line the record starts on (the header is line 1).
    pub line: u64,
    /// Stable, machine-readable (`import.field_count`, `import.invalid_value`, …).
    pub code: &'static str,
    /// For people; never repeats personal data (an email address, a phone number).
    pub reason: String,
}

/// Why a file was refused: every error counted, the first [`MAX_REPORTED`] listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "rows": 250,
    "errorCount": 2,
    "errors": [
        {"line": 7, "code": "import.invalid_value", "reason": "value \"12,5\" is not a decimal number"},
        {"line": 12, "code": "import.invalid_kind",
         "reason": "kind \"teacher\" is not one of owner, admin, staff, student, parent, viewer"}
    ]
})))]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Data records read (blank lines and the header not counted).
    pub rows: u64,
    /// Every error found, listed or not.
    pub error_count: u64,
    /// The first [`MAX_REPORTED`] errors, in line order.
    pub errors: Vec<RowError>,
}

impl ImportReport {
    /// Counts an error on `line`, listing it while fewer than [`MAX_REPORTED`] are.
    pub fn add(&mut self, line: u64, code: &'static str, reason: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(RowError { line, code, reason });
        }
    }
}

/// What receives the records [`Framing`] reads, piece by piece.
pub trait RecordSink {
    /// Whether the sink wants no more (a refused header, too many rows):
    /// the rest of the file is not read.
    fn is_stopped(&self) -> bool;
    /// A record starts on physical line `line` (the first line is 1).
    fn start_record(&mut self, line: u64);
    /// More bytes of the current field (a field may arrive in several pieces).
    fn field_bytes(&mut self, bytes: &[u8]);
    /// The current field ended.
    fn end_field(&mut self);
    /// The current record ended (after its last field's `end_field`).
    fn end_record(&mut self);
}

/// Turns bytes into fields and records (with csv-core) and numbers the
/// physical lines they start on.
pub struct Framing {
    reader: Reader,
    window: Vec<u8>,
    ends: Vec<usize>,
    /// The file's first bytes, while they may still be a byte order mark.
    head: Vec<u8>,
    /// Whether csv-core has been given bytes.
    started: bool,
    /// Line feeds consumed so far.
    newlines: u64,
    /// Whether nothing but line ends was consumed since the last record.
    between_records: bool,
    /// How many bytes of the current record were handed over before the
    /// window: csv-core counts field ends from the record's start.
    record_offset: usize,
}

impl Framing {
    /// A reader at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self {
            reader: Reader::new(),
            window: vec![0; WINDOW],
            ends: vec![0; WINDOW_ENDS],
            head: Vec::new(),
            started: false,
            newlines: 0,
            between_records: true,
            record_offset: 0,
        }
    }

    /// Reads the next bytes of the file; chunks may end anywhere, even
    /// inside a field, a character or a line end.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl RecordSink) {
        // The byte order mark is skipped here: csv-core recognises it only
        // in a first chunk of more than three bytes.
        while !self.started {
            let Some((&byte, rest)) = input.split_first() else { return };
            input = rest;
            self.head.push(byte);
            if self.head == BOM {
                self.head.clear();
            } else if !BOM.starts_with(&self.head) {
                self.start(sink);
            }
        }
        self.read(input, sink);
    }

    fn start(&mut self, sink: &mut impl RecordSink) {
        self.started = true;
        let head = std::mem::take(&mut self.head);
        self.read(&head, sink);
    }

    /// Ends the file: the last record, if one is open, is delivered.
    pub fn finish(&mut self, sink: &mut impl RecordSink) {
        if !self.started {
            self.start(sink);
        }
        // Empty input tells csv-core the file has ended: it gives the last
        // record if one is open, and then `End`.
        for _ in 0..2 {
            if sink.is_stopped() {
                return;
            }
            let (result, _, written, ended) = self.reader.read_record(&[], &mut self.window, &mut self.ends);
            self.deliver(written, ended, sink);
            if result != ReadRecordResult::Record {
                return;
            }
            self.end_record(sink);
        }
    }

    fn read(&mut self, mut input: &[u8], sink: &mut impl RecordSink) {
        while !input.is_empty() && !sink.is_stopped() {
            let (result, read, written, ended) =
                self.reader.read_record(input, &mut self.window, &mut self.ends);
            let (consumed, rest) = input.split_at(read.min(input.len()));
            // One call never reads past the end of a record, so `consumed`
            // holds at most one record's start.
            self.count_lines(consumed, sink);
            self.deliver(written, ended, sink);
            if result == ReadRecordResult::Record {
                self.end_record(sink);
            }
            input = rest;
        }
    }

    fn count_lines(&mut self, mut consumed: &[u8], sink: &mut impl RecordSink) {
        let line_feeds = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        if self.between_records {
            // csv-core skips empty lines between records; the record starts
            // at the first other byte.
            if let Some(at) = consumed.iter().position(|&b| b != b'\r' && b != b'\n') {
                let (blank, record) = consumed.split_at(at);
                self.newlines += line_feeds(blank);
                self.between_records = false;
                sink.start_record(self.newlines + 1);
                consumed = record;
            }
        }
        self.newlines += line_feeds(consumed);
    }

    fn deliver(&mut self, written: usize, ended: usize, sink: &mut impl RecordSink) {
        let window = self.window.get(..written).unwrap_or_default();
        let mut from = 0;
        for &end in self.ends.get(..ended).unwrap_or_default() {
            let to = end.saturating_sub(self.record_offset).clamp(from, window.len());
            sink.field_bytes(window.get(from..to).unwrap_or_default());
            sink.end_field();
            from = to;
        }
        sink.field_bytes(window.get(from..).unwrap_or_default());
        self.record_offset += written;
    }

    fn end_record(&mut self, sink: &mut impl RecordSink) {
        self.record_offset = 0;
        self.between_records = true;
        sink.end_record();
    }
}

impl std::fmt::Debug for Framing {
    /// Position only: the window holds the file's content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framing").field("line", &(self.newlines + 1)).finish_non_exhaustive()
    }
}

impl Default for Framing {
    fn default() -> Self {
        Self::new()
    }
}
