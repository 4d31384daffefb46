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

/// Hashes many numbers under one account's key, as [`number_hash`] does.
///
/// The key is read and scheduled once, so an import hashes a million numbers
/// without decoding the key a million times.
#[derive(Clone)]
pub struct NumberHasher {
    keyed: Hmac<Sha256>,
}

impl NumberHasher {
    /// Prepares the hash of an account's key (hex, or its bytes when not hex).
    pub fn new(account_key_hex: &str) -> Self {
        let key =
            hex::decode(account_key_hex).unwrap_or_else(|_| account_key_hex.as_bytes().to_vec());
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        NumberHasher { keyed }
    }

    /// Returns the hex hash of an E.164 number, equal to [`number_hash`]'s.
    pub fn hash(&self, e164: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(e164.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
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

    #[test]
    fn a_prepared_hasher_gives_the_same_hashes() {
        let key = new_account_key();
        let hasher = NumberHasher::new(&key);
        for n in ["+447700900123", "+12125550134", ""] {
            assert_eq!(hasher.hash(n), number_hash(&key, n));
        }
        // A key that is not hex is used as its bytes, by both.
        let odd = NumberHasher::new("not hex");
        assert_eq!(
            odd.hash("+447700900123"),
            number_hash("not hex", "+447700900123")
        );
    }
}
