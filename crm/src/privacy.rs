//! The keyed hashes that identify a suppressed number, or a username or
//! address the login throttle counts, without storing it.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Returns the hex HMAC-SHA-256 of an E.164 number under an account's key.
///
/// The key is per account and random, so the hash cannot be reversed by
/// hashing every possible number without the database's key column.
pub fn number_hash(account_key_hex: &str, e164: &str) -> String {
    keyed_hash(account_key_hex, e164)
}

/// Returns the hex HMAC-SHA-256 of `text` under a hex key (a key that is
/// not hex is used as its bytes).
pub fn keyed_hash(key_hex: &str, text: &str) -> String {
    let key = hex::decode(key_hex).unwrap_or_else(|_| key_hex.as_bytes().to_vec());
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Generates a fresh random account key, hex encoded.
pub fn new_account_key() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    hex::encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_key_and_number() {
        let a = new_account_key();
        let b = new_account_key();
        assert_ne!(a, b);
        let h = number_hash(&a, "+447700900123");
        assert_eq!(h, number_hash(&a, "+447700900123"));
        assert_ne!(h, number_hash(&b, "+447700900123"));
        assert_ne!(h, number_hash(&a, "+447700900124"));
        assert!(!h.contains("447700900123"));
    }
}
