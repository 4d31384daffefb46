//! Password hashing with argon2id.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use crate::StoreError;

/// Hashes a password with argon2id and a fresh random salt, in PHC format.
pub fn hash(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| StoreError::Password)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| StoreError::Password)
}

/// Returns whether `password` matches the PHC-format `hash`.
pub fn verify(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody has, for spending the same time on unknown
/// usernames as on known ones.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password never used").unwrap_or_default())
}

/// Checks a new password against the account policy: at least 8 characters
/// with an upper-case letter, a lower-case letter and a digit.
pub fn check_policy(password: &str) -> Result<(), String> {
    let long_enough = password.chars().count() >= 8;
    let upper = password.chars().any(|c| c.is_uppercase());
    let lower = password.chars().any(|c| c.is_lowercase());
    let digit = password.chars().any(|c| c.is_ascii_digit());
    if long_enough && upper && lower && digit {
        Ok(())
    } else {
        Err("a password needs at least 8 characters, with an upper-case letter, a lower-case letter and a digit".into())
    }
}

/// Generates a random password that meets the policy.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    loop {
        let candidate: String = (0..16)
            .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
            .collect();
        if check_policy(&candidate).is_ok() {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let h = hash("Correct1horse").expect("hashing works");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct1horse", &h));
        assert!(!verify("correct1horse", &h));
        assert!(!verify("Correct1horse", "not a phc string"));
    }

    #[test]
    fn policy_wants_length_cases_and_a_digit() {
        assert!(check_policy("Abcdefg1").is_ok());
        assert!(check_policy("Abcdef1").is_err());
        assert!(check_policy("abcdefg1").is_err());
        assert!(check_policy("ABCDEFG1").is_err());
        assert!(check_policy("Abcdefgh").is_err());
        for _ in 0..20 {
            assert!(check_policy(&generate()).is_ok());
        }
    }
}
