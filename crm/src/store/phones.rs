//! Desk phone credentials: per user, a SIP username and the digest HA1 values
//! the registrar checks answers against, never the password.
//!
//! HA1 is `H(username ":" realm ":" password)` (RFC 3261 §22.4, RFC 8760),
//! kept for MD5 and SHA-256 so a phone may answer either. It is a fast hash
//! and, for its realm, as good as the password to whoever reads it; so a
//! desk phone password must be long, and must differ from the user's login
//! password, which would otherwise be exposed to cheap guessing.

use chrono::{DateTime, Utc};
use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{on_pool, Store};
use crate::model::{AccountId, Actor, UserId};
use crate::{password, privacy, StoreError};

/// Fewest characters in a desk phone password.
pub const MIN_SIP_PASSWORD_LEN: usize = 12;

/// Most characters in a desk phone password.
pub const MAX_SIP_PASSWORD_LEN: usize = 128;

/// Most characters in a SIP username.
pub const MAX_SIP_USERNAME_LEN: usize = 64;

/// A user's desk phone credentials, as the registrar needs them; `Debug`
/// never prints the HA1 values.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SipCredential {
    /// The account the user belongs to.
    pub account_id: AccountId,
    /// The user the phone registers as.
    pub user_id: UserId,
    /// The username the phone authenticates with.
    pub sip_username: String,
    /// The realm the HA1 values were computed for.
    pub realm: String,
    /// MD5 HA1, lower-case hex.
    pub ha1_md5: String,
    /// SHA-256 HA1, lower-case hex.
    pub ha1_sha256: String,
}

impl std::fmt::Debug for SipCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredential")
            .field("account_id", &self.account_id)
            .field("user_id", &self.user_id)
            .field("sip_username", &self.sip_username)
            .field("realm", &self.realm)
            .field("ha1", &"<redacted>")
            .finish()
    }
}

/// A user of an account who has a desk phone credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeskPhone {
    /// The user.
    pub user_id: UserId,
    /// The user's login name.
    pub username: String,
    /// The username the phone authenticates with.
    pub sip_username: String,
    /// The realm the credential is for.
    pub realm: String,
    /// Whether the user is active; an inactive user's phone cannot register.
    pub active: bool,
    /// When the credential was first set.
    pub created_at: DateTime<Utc>,
    /// When the password or SIP username last changed.
    pub updated_at: DateTime<Utc>,
}

/// The name under which the registrar's nonce secret is kept in `server_secrets`.
const NONCE_SECRET_NAME: &str = "sip_nonces";

/// The secret every node signs and checks the registrar's nonces with;
/// `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SipNonceSecret(String);

impl SipNonceSecret {
    /// Returns the secret's bytes, for the registrar's nonce key.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for SipNonceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipNonceSecret(***)")
    }
}

const DESK_PHONE_SELECT: &str = "SELECT c.user_id, u.username, c.sip_username, c.realm, u.active, \
     c.created_at, c.updated_at FROM sip_credentials c JOIN users u ON u.id = c.user_id";

impl Store {
    /// Sets the desk phone password of a user of the actor's account, under
    /// `sip_username` or else the user's own username; audited as
    /// `sip_credential.set`.
    ///
    /// The password is 12 to 128 printable ASCII characters (phones differ
    /// in how they encode anything else, and the HA1 would then not match)
    /// and not the user's login password. A SIP username is 1 to 64 letters,
    /// digits, `.`, `_` or `-`, and taken by nobody else in any case
    /// ([`StoreError::Conflict`] when it is).
    pub async fn set_sip_password(
        &self,
        actor: &Actor,
        user: UserId,
        sip_username: Option<&str>,
        realm: &str,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<DeskPhone, StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let target = self.user(account, user).await?;
        let sip_username = valid_sip_username(sip_username.unwrap_or(&target.username))?;
        let realm = valid_realm(realm)?;
        check_sip_password(new_password)?;
        let (_, login_hash) = self
            .credentials(&target.username)
            .await?
            .ok_or(StoreError::NotFound)?;
        let candidate = new_password.to_owned();
        // The login check is a deliberately slow hash: keep it off the runtime.
        let reused = tokio::task::spawn_blocking(move || password::verify(&candidate, &login_hash))
            .await
            .map_err(|_| StoreError::Password)?;
        if reused {
            return Err(StoreError::Invalid(
                "the desk phone password must differ from the login password".into(),
            ));
        }
        let a1 = format!("{sip_username}:{realm}:{new_password}");
        let ha1_md5 = hex::encode(Md5::digest(a1.as_bytes()));
        let ha1_sha256 = hex::encode(Sha256::digest(a1.as_bytes()));
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO sip_credentials (user_id, account_id, sip_username, realm, ha1_md5, \
             ha1_sha256, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (user_id) DO UPDATE SET sip_username = excluded.sip_username, \
             realm = excluded.realm, ha1_md5 = excluded.ha1_md5, \
             ha1_sha256 = excluded.ha1_sha256, updated_at = excluded.updated_at"
        )
        .bind(user.0)
        .bind(account.0)
        .bind(sip_username)
        .bind(realm)
        .bind(&ha1_md5)
        .bind(&ha1_sha256)
        .bind(now)
        .execute(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("SIP username {sip_username:?} is taken"))
            }
            other => other,
        })?
        .rows_affected());
        self.audit(
            actor,
            "sip_credential.set",
            Some(&format!("user:{user}")),
            now,
        )
        .await?;
        let sql = format!("{DESK_PHONE_SELECT} WHERE c.user_id = $1 AND c.account_id = $2");
        let row: DeskPhone = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(user.0)
            .bind(account.0)
            .fetch_one(pool)
            .await?);
        Ok(row)
    }

    /// Returns the desk phone credentials registered under `sip_username`,
    /// exactly as written, for the registrar; `None` when there are none or
    /// the user is inactive.
    pub async fn sip_credential(
        &self,
        sip_username: &str,
    ) -> Result<Option<SipCredential>, StoreError> {
        let row: Option<SipCredential> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT c.account_id, c.user_id, c.sip_username, c.realm, c.ha1_md5, c.ha1_sha256 \
             FROM sip_credentials c JOIN users u ON u.id = c.user_id \
             WHERE c.sip_username = $1 AND u.active = TRUE"
        )
        .bind(sip_username)
        .fetch_optional(pool)
        .await?);
        Ok(row)
    }

    /// Removes the desk phone credential of a user of the actor's account;
    /// audited as `sip_credential.remove`. [`StoreError::NotFound`] when the
    /// user has none.
    pub async fn remove_sip_credential(
        &self,
        actor: &Actor,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let account = actor.account_id.ok_or(StoreError::NotFound)?;
        let done = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM sip_credentials WHERE user_id = $1 AND account_id = $2"
        )
        .bind(user.0)
        .bind(account.0)
        .execute(pool)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.audit(
            actor,
            "sip_credential.remove",
            Some(&format!("user:{user}")),
            now,
        )
        .await
    }

    /// Returns the registrar's nonce secret, creating it on first use, the
    /// same on every node of the service.
    pub async fn sip_nonce_secret(&self, now: DateTime<Utc>) -> Result<SipNonceSecret, StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING"
        )
        .bind(NONCE_SECRET_NAME)
        .bind(privacy::new_account_key())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        let secret: String = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT secret FROM server_secrets WHERE name = $1"
        )
        .bind(NONCE_SECRET_NAME)
        .fetch_one(pool)
        .await?);
        Ok(SipNonceSecret(secret))
    }

    /// Returns the account's users who have a desk phone credential, by
    /// username.
    pub async fn desk_phones(&self, account: AccountId) -> Result<Vec<DeskPhone>, StoreError> {
        let sql = format!("{DESK_PHONE_SELECT} WHERE c.account_id = $1 ORDER BY u.username");
        let rows: Vec<DeskPhone> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(account.0)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }
}

/// Returns the SIP username, or why it cannot be one.
fn valid_sip_username(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > MAX_SIP_USERNAME_LEN || !plain {
        return Err(StoreError::Invalid(format!(
            "a SIP username is 1 to {MAX_SIP_USERNAME_LEN} letters, digits, '.', '_' or '-'; \
             give one when the login name is not"
        )));
    }
    Ok(name)
}

/// Returns the realm, or why it cannot be one.
fn valid_realm(realm: &str) -> Result<&str, StoreError> {
    let realm = realm.trim();
    let plain = realm
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'));
    if realm.is_empty() || realm.len() > 128 || !plain {
        return Err(StoreError::Invalid(
            "a realm is 1 to 128 printable characters without spaces or quotes".into(),
        ));
    }
    Ok(realm)
}

fn check_sip_password(candidate: &str) -> Result<(), StoreError> {
    let printable = candidate.bytes().all(|b| (b' '..=b'~').contains(&b));
    if !(MIN_SIP_PASSWORD_LEN..=MAX_SIP_PASSWORD_LEN).contains(&candidate.len()) || !printable {
        return Err(StoreError::Invalid(format!(
            "a desk phone password is {MIN_SIP_PASSWORD_LEN} to {MAX_SIP_PASSWORD_LEN} \
             printable ASCII characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_realms_and_passwords_are_checked() {
        assert_eq!(valid_sip_username(" alice.b-2_x ").unwrap(), "alice.b-2_x");
        for bad in [
            "",
            "a b",
            "alice@example.com",
            "al\"ice",
            "émile",
            &"a".repeat(65),
        ] {
            assert!(valid_sip_username(bad).is_err(), "{bad:?}");
        }
        assert_eq!(valid_realm("pbx.example.com").unwrap(), "pbx.example.com");
        for bad in ["", "a realm", "r\"x", "r\\x", &"r".repeat(129)] {
            assert!(valid_realm(bad).is_err(), "{bad:?}");
        }
        assert!(check_sip_password("twelve chars").is_ok());
        for bad in [
            "eleven char",
            "tab\tin the middle",
            "naïve password 1",
            &"p".repeat(129),
        ] {
            assert!(check_sip_password(bad).is_err(), "{bad:?}");
        }
        let credential = SipCredential {
            account_id: AccountId(1),
            user_id: UserId(2),
            sip_username: "alice".into(),
            realm: "r".into(),
            ha1_md5: "feedface".into(),
            ha1_sha256: "deadbeef".into(),
        };
        let printed = format!("{credential:?}");
        assert!(!printed.contains("feedface") && !printed.contains("deadbeef"));
    }
}
