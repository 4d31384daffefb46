//! Uploaded CSV bytes: the contact importer's parsing and validation layer.
//!
//! `crm::import::read_contacts` is what `import_csv` runs on the upload before anything
//! reaches the store, so no database is needed: the header sniffing, the delimiter guess,
//! quoting, line numbering, the column mapping and each row's checks (UTF-8, time zone,
//! phone number to E.164) all run here. Every accepted row must hold an E.164 number.

#![no_main]

use libfuzzer_sys::fuzz_target;
use phonenumber::country;

fuzz_target!(|data: &[u8]| {
    let mut last_line = 0;
    let _ = crm::import::read_contacts(data, country::Id::GB, |row| {
        let line = match row {
            Ok((line, fields)) => {
                assert!(
                    fields.phone_e164.starts_with('+'),
                    "an accepted row without an E.164 number"
                );
                line
            }
            Err(error) => error.line,
        };
        assert!(line >= 1, "line numbers start at 1");
        assert!(line >= last_line, "rows come in file order");
        last_line = line;
    });
});
