//! The importer's parsing layer on mangled uploads: whatever the bytes, it
//! returns an answer per record (a contact or a line-numbered refusal) or a
//! clear error, never a panic, and never accepts a row without an E.164
//! number. Inputs are the fuzz seed corpus, mutated from a fixed seed so a
//! failure replays; `cargo fuzz run csv_import` (docs/fuzzing.md) explores
//! further.

use crm::import::read_contacts;
use phonenumber::country;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: [&[u8]; 5] = [
    include_bytes!("../../fuzz/corpus/csv_import/basic.csv"),
    include_bytes!("../../fuzz/corpus/csv_import/crlf_cut_quote.csv"),
    include_bytes!("../../fuzz/corpus/csv_import/ragged_not_utf8.csv"),
    include_bytes!("../../fuzz/corpus/csv_import/semicolon_bom_quoted.csv"),
    include_bytes!("../../fuzz/corpus/csv_import/tabs_blank_lines.csv"),
];

/// Bytes that steer a CSV parser into its corners.
const TRICKY: &[u8] = b"\"\";,\t\r\n\xEF\xBB\xBF\xFF\x00+0 ";

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.gen_range(1..8) {
        let at = rng.gen_range(0..=bytes.len());
        match rng.gen_range(0..5) {
            0 => bytes.truncate(at),
            1 => bytes.insert(at, TRICKY[rng.gen_range(0..TRICKY.len())]),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 if at < bytes.len() => bytes[at] ^= 1 << rng.gen_range(0..8),
            _ => {
                let from = rng.gen_range(0..=bytes.len());
                let len = rng.gen_range(0..=64).min(bytes.len() - from);
                let piece = bytes[from..from + len].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

fn check(input: &[u8]) -> usize {
    let mut last_line = 0;
    let mut rows = 0;
    let _ = read_contacts(input, country::Id::GB, |row| {
        rows += 1;
        let line = match row {
            Ok((line, fields)) => {
                let digits = fields.phone_e164.strip_prefix('+').unwrap_or("");
                assert!(
                    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
                    "an accepted row must hold an E.164 number, got {:?} from {input:?}",
                    fields.phone_e164
                );
                line
            }
            Err(refused) => {
                assert!(!refused.reason.is_empty(), "a refusal says why");
                refused.line
            }
        };
        assert!(line >= 1, "line numbers start at 1");
        assert!(line >= last_line, "records come in file order");
        last_line = line;
    });
    rows
}

#[test]
fn the_seed_files_give_rows() {
    for seed in SEEDS {
        assert!(check(seed) > 0, "{}", String::from_utf8_lossy(seed));
    }
}

#[test]
fn mangled_uploads_never_panic_or_let_a_bad_number_through() {
    let mut rng = StdRng::seed_from_u64(0x0c5f);
    for _ in 0..20_000 {
        let seed = SEEDS[rng.gen_range(0..SEEDS.len())];
        check(&mutate(&mut rng, seed));
    }
    for _ in 0..2_000 {
        let noise: Vec<u8> = (0..rng.gen_range(0..512)).map(|_| rng.gen()).collect();
        check(&noise);
    }
}
