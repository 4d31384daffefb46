//! Reads contacts from CSV text, one record at a time, without holding the
//! file in memory.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Chain, Cursor, Read};

use phonenumber::country;
use serde_json::{Map, Value};

use super::{ImportError, RowError};
use crate::fields::{FieldDef, FieldId};
use crate::model::ContactFields;

/// The longest first line accepted; a longer one is not a CSV header.
const MAX_HEADER_BYTES: u64 = 1 << 20;
/// The longest record accepted; a longer one means an unbalanced quote.
const MAX_RECORD_BYTES: u64 = 16 << 20;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One data record of the file, read into contact fields or refused.
// Nearly every record is a contact, moved once into its batch; boxing it
// would cost an allocation per row to shrink the rare refusal.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Row {
    /// A valid contact, with the line its record starts on and its values
    /// in the account's fields.
    Contact(u64, ContactFields, Vec<(FieldId, String)>),
    /// A record that cannot be imported, and why.
    Invalid(RowError),
}

/// The input as the CSV parser sees it: the sniffed first line, then the rest.
type Input<R> = Tracked<Chain<Cursor<Vec<u8>>, BufReader<R>>>;

/// A CSV reader that yields contacts.
pub(crate) struct ContactReader<R: Read> {
    csv: csv::Reader<Input<R>>,
    columns: Vec<Column>,
    fields: Vec<FieldDef>,
    region: country::Id,
    record: csv::ByteRecord,
    line_offset: u64,
}

impl<R: Read> ContactReader<R> {
    /// Reads the header, sniffs the delimiter and maps the columns: a
    /// column named as one of `fields` by key or label (case aside) holds
    /// that field's values, unless it names one of the contact's own.
    pub(crate) fn open(
        reader: R,
        region: country::Id,
        fields: Vec<FieldDef>,
    ) -> Result<Self, ImportError> {
        let mut input = BufReader::with_capacity(64 * 1024, reader);
        let mut first = Vec::new();
        let mut line_offset = 0;
        let mut at_start = true;
        loop {
            first.clear();
            let n = (&mut input)
                .take(MAX_HEADER_BYTES)
                .read_until(b'\n', &mut first)
                .map_err(ImportError::Read)?;
            if n == 0 {
                return Err(ImportError::Empty);
            }
            if at_start && first.starts_with(BOM) {
                first.drain(..BOM.len());
            }
            at_start = false;
            if n as u64 >= MAX_HEADER_BYTES && !first.ends_with(b"\n") {
                return Err(ImportError::NotCsv(
                    "the first line is longer than 1 MiB".into(),
                ));
            }
            if !first.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            // Leading blank lines are dropped here and counted back into line numbers.
            line_offset += 1;
        }
        let delimiter = sniff_delimiter(&first);
        let tracked = Tracked {
            inner: Cursor::new(first).chain(input),
            read: 0,
            record_start: Cell::new(0),
            quotes: 0,
            eof: false,
        };
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(tracked);
        let headers = csv.byte_headers().map_err(csv_fatal)?.clone();
        let mut names = Vec::with_capacity(headers.len());
        for h in headers.iter() {
            let name = std::str::from_utf8(h)
                .map_err(|_| ImportError::NotCsv("the header row is not UTF-8 text".into()))?;
            names.push(name.trim().to_owned());
        }
        let columns = map_columns(&names, &fields);
        if !columns.contains(&Column::Phone) {
            return Err(ImportError::NoPhoneColumn);
        }
        Ok(ContactReader {
            csv,
            columns,
            fields,
            region,
            record: csv::ByteRecord::new(),
            line_offset,
        })
    }

    /// Returns the next record, or `None` at the end of the file.
    ///
    /// Only a failure to read the input is an error; a bad record is a
    /// [`Row::Invalid`] and reading goes on.
    pub(crate) fn next_row(&mut self) -> Result<Option<Row>, ImportError> {
        loop {
            let more = self.csv.read_byte_record(&mut self.record);
            let after = self.csv.position().clone();
            self.csv.get_ref().record_start.set(after.byte());
            match more {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => match e.into_kind() {
                    csv::ErrorKind::Io(io) => return Err(ImportError::Read(io)),
                    other => {
                        let reason = format!("unreadable record: {other:?}");
                        let line = after.line() + self.line_offset;
                        return Ok(Some(Row::Invalid(RowError { line, reason })));
                    }
                },
            }
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            // A record's position is where reading resumed, which may be a
            // skipped blank line, so its first line is counted back from its end.
            let newlines: u64 = self
                .record
                .iter()
                .map(|f| f.iter().filter(|b| **b == b'\n').count() as u64)
                .sum();
            let at_eof = self.csv.get_ref().eof;
            let line = after
                .line()
                .saturating_sub(u64::from(!at_eof) + newlines)
                .max(2)
                + self.line_offset;
            return Ok(Some(self.row(line, at_eof)));
        }
    }

    fn row(&self, line: u64, at_eof: bool) -> Row {
        let invalid = |reason: String| Row::Invalid(RowError { line, reason });
        if at_eof && self.csv.get_ref().quotes % 2 == 1 {
            return invalid("the file ends inside a quoted field; it may be cut off".into());
        }
        if self.record.len() != self.columns.len() {
            return invalid(format!(
                "expected {} fields, found {}",
                self.columns.len(),
                self.record.len()
            ));
        }
        let mut fields = ContactFields::default();
        let mut custom = Map::new();
        let mut values = Vec::new();
        let mut phone = "";
        let mut raw = None;
        for (i, (column, bytes)) in self.columns.iter().zip(self.record.iter()).enumerate() {
            let Ok(value) = std::str::from_utf8(bytes) else {
                return invalid(format!("field {} is not valid UTF-8", i + 1));
            };
            let value = value.trim();
            match column {
                Column::FirstName => fields.first_name = value.to_owned(),
                Column::LastName => fields.last_name = value.to_owned(),
                Column::Phone => phone = value,
                Column::PhoneRaw => raw = optional(value),
                Column::Email => fields.email = optional(value),
                Column::Address => fields.postal_address = optional(value),
                Column::Profession => fields.profession = optional(value),
                Column::TimeZone => {
                    if !value.is_empty() && value.parse::<chrono_tz::Tz>().is_err() {
                        return invalid(format!("unknown time zone {value:?}"));
                    }
                    fields.time_zone = optional(value);
                }
                Column::Field(f) => {
                    let def = &self.fields[*f];
                    match def.read_text(value) {
                        Ok(Some(v)) => values.push((def.id, v)),
                        Ok(None) => {}
                        // The reason names the field and what it takes, never the value.
                        Err(e) => return invalid(e.to_string()),
                    }
                }
                Column::Custom(name) if !value.is_empty() => {
                    custom.insert(name.clone(), Value::String(value.to_owned()));
                }
                Column::Custom(_) | Column::Ignored => {}
            }
        }
        if phone.is_empty() {
            return invalid("no phone number".into());
        }
        match e164(phone, self.region) {
            Ok(n) => fields.phone_e164 = n,
            Err(reason) => return invalid(reason.into()),
        }
        fields.phone_raw = raw.unwrap_or_else(|| phone.to_owned());
        fields.custom_fields = Value::Object(custom);
        if let Some(reason) = fields.too_long() {
            return invalid(reason);
        }
        Row::Contact(line, fields, values)
    }
}

/// Reads a region given by its two-letter country code, such as GB.
pub fn region(code: &str) -> Result<country::Id, String> {
    code.trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("{code:?} is not a country code such as GB"))
}

/// Returns a number in E.164 form, read with a default region.
pub fn e164(text: &str, region: country::Id) -> Result<String, &'static str> {
    if text.len() > 64 {
        return Err("too long to be a phone number");
    }
    // The parser is fed untrusted text; a panic in it must not end the import.
    let parsed = std::panic::catch_unwind(|| {
        let n = phonenumber::parse(Some(region), text).ok()?;
        Some((
            phonenumber::is_valid(&n),
            n.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    });
    match parsed {
        Ok(Some((true, e164))) => Ok(e164),
        Ok(Some((false, _))) => Err("not a valid phone number"),
        Ok(None) | Err(_) => Err("not a phone number"),
    }
}

/// A contact field a column maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    FirstName,
    LastName,
    Phone,
    PhoneRaw,
    Email,
    Address,
    Profession,
    TimeZone,
    /// A column dialcrm itself writes on export, such as attempt counts.
    Ignored,
    /// A field the account defined, by its place among the fields.
    Field(usize),
    Custom(String),
}

fn map_columns(names: &[String], fields: &[FieldDef]) -> Vec<Column> {
    let mut columns: Vec<Column> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let mut column = column_of(name);
        if let Column::Custom(custom) = &column {
            let wanted = custom.to_lowercase();
            if let Some(f) = fields
                .iter()
                .position(|d| d.key == wanted || d.label.to_lowercase() == wanted)
            {
                column = Column::Field(f);
            }
        }
        // The first column of a kind wins; later ones are kept as custom fields.
        if !matches!(column, Column::Custom(_) | Column::Ignored) && columns.contains(&column) {
            column = Column::Custom(name.clone());
        }
        if column == Column::Custom(String::new()) {
            column = Column::Custom(format!("column_{}", i + 1));
        }
        columns.push(column);
    }
    columns
}

fn column_of(name: &str) -> Column {
    let key: String = name
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    match key.as_str() {
        "firstname" | "forename" | "givenname" => Column::FirstName,
        "lastname" | "surname" | "familyname" => Column::LastName,
        "phone" | "number" | "telephone" | "mobile" | "tel" | "phonenumber" | "phonee164"
        | "telephonenumber" | "mobilenumber" | "mobilephone" => Column::Phone,
        "phoneraw" => Column::PhoneRaw,
        "email" | "emailaddress" => Column::Email,
        "address" | "postaladdress" => Column::Address,
        "profession" | "jobtitle" | "occupation" => Column::Profession,
        "timezone" | "tz" => Column::TimeZone,
        k if k.starts_with("dialcrm") => Column::Ignored,
        _ => Column::Custom(name.trim().to_owned()),
    }
}

/// Returns whether an import reads a column of this name as one of a
/// contact's own fields (or one dialcrm writes on export), not as a field
/// the account defined.
pub fn is_contact_column(name: &str) -> bool {
    !matches!(column_of(name), Column::Custom(_))
}

fn optional(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Picks `;`, tab or `,`, whichever separates most fields of the header.
fn sniff_delimiter(line: &[u8]) -> u8 {
    let (mut in_quotes, mut commas, mut semicolons, mut tabs) = (false, 0, 0, 0);
    for &b in line {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => commas += 1,
            b';' if !in_quotes => semicolons += 1,
            b'\t' if !in_quotes => tabs += 1,
            _ => {}
        }
    }
    if semicolons > commas && semicolons >= tabs {
        b';'
    } else if tabs > commas {
        b'\t'
    } else {
        b','
    }
}

fn csv_fatal(e: csv::Error) -> ImportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ImportError::Read(io),
        other => ImportError::NotCsv(format!("{other:?}")),
    }
}

/// Counts what passes through: bytes, quotes, and whether the end was hit.
struct Tracked<R> {
    inner: R,
    read: u64,
    /// Where the record being parsed began, set by the reader.
    record_start: Cell<u64>,
    quotes: u64,
    eof: bool,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read.saturating_sub(self.record_start.get()) > MAX_RECORD_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a record is longer than 16 MiB; is a quote left open?",
            ));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        self.read += n as u64;
        self.quotes += buf[..n].iter().filter(|b| **b == b'"').count() as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_with_the_default_region() {
        let gb = country::Id::GB;
        assert_eq!(e164("07400 100123", gb), Ok("+447400100123".into()));
        assert_eq!(e164("+44 (0)20 7123 4567", gb), Ok("+442071234567".into()));
        assert_eq!(e164("+1 212-555-0134", gb), Ok("+12125550134".into()));
        assert_eq!(
            e164("212 555 0134", country::Id::US),
            Ok("+12125550134".into())
        );
        assert!(e164("0123", gb).is_err());
        assert!(e164("not a number", gb).is_err());
        assert!(e164(&"9".repeat(200), gb).is_err());
    }
}
