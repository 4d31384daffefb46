//! Server digest authentication (RFC 3261 §22.4, RFC 7616, RFC 8760): challenges, stateless
//! nonces, and answers checked against a stored HA1.
//!
//! A nonce is 64 hex digits: the time it was issued (8 bytes), a random salt (8 bytes) and a
//! tag (16 bytes), the tag being HMAC-SHA256, cut to 128 bits, over the time, the salt, the realm
//! and the client's IP address under a secret every node shares. So any node can tell whether a
//! nonce is one of ours, how old it is and that it was issued to this address, with no state:
//! a nonce seen from another address is refused, and one older than its lifetime is answered
//! with `stale=true`. Only `qop=auth` answers are accepted, for MD5 and SHA-256; responses are
//! compared in constant time.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::digest::{parse_params, qop_name, Algorithm, Qop};

/// How long a nonce is accepted after it was issued.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// How far ahead of this node's clock a nonce may be dated, as other nodes' clocks differ.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Longest parameter value taken from an Authorization header, in bytes.
pub const MAX_PARAM_LEN: usize = 1024;

/// The secret that signs nonces; every node of a service must share it.
#[derive(Clone)]
pub struct NonceKey(Vec<u8>);

impl NonceKey {
    /// Creates a key from a secret of at least 16 bytes; `None` when it is shorter.
    pub fn new(secret: &[u8]) -> Option<Self> {
        (secret.len() >= 16).then(|| NonceKey(secret.to_vec()))
    }

    /// Creates a key from 32 random bytes, for a single node or a test.
    pub fn random() -> Self {
        NonceKey((0..32).map(|_| rand::random::<u8>()).collect())
    }
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, issued to this address, within its lifetime.
    Fresh,
    /// Ours and issued to this address, but older than its lifetime.
    Stale,
    /// Not ours, altered, issued to another address, or dated in the future.
    Invalid,
}

/// A user's stored secrets for one realm: the two HA1 values, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    /// The realm the HA1 values were computed for.
    pub realm: String,
    /// MD5(username ":" realm ":" password) in lower-case hex.
    pub ha1_md5: String,
    /// SHA-256(username ":" realm ":" password) in lower-case hex.
    pub ha1_sha256: String,
}

impl StoredCredentials {
    /// Computes both HA1 values from a password, as provisioning does.
    pub fn from_password(username: &str, realm: &str, password: &str) -> Self {
        let a1 = format!("{username}:{realm}:{password}");
        StoredCredentials {
            realm: realm.to_string(),
            ha1_md5: Algorithm::Md5.hash(&a1),
            ha1_sha256: Algorithm::Sha256.hash(&a1),
        }
    }

    /// Returns the HA1 for an algorithm, or `None` for one we do not accept.
    pub fn ha1(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Md5 => Some(&self.ha1_md5),
            Algorithm::Sha256 => Some(&self.ha1_sha256),
            Algorithm::Md5Sess | Algorithm::Sha256Sess => None,
        }
    }
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("realm", &self.realm)
            .field("ha1", &"<redacted>")
            .finish()
    }
}

/// A parsed Authorization (or Proxy-Authorization) header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The username the client authenticates as.
    pub username: String,
    /// The protection space the answer is for.
    pub realm: String,
    /// The nonce being answered.
    pub nonce: String,
    /// The Request-URI as the client hashed it.
    pub uri: String,
    /// The response digest, in lower-case hex.
    pub response: String,
    /// Hash algorithm (MD5 when the header names none).
    pub algorithm: Algorithm,
    /// Quality of protection, absent in the RFC 2069 form.
    pub qop: Option<Qop>,
    /// Nonce count, present with a qop.
    pub nc: Option<u32>,
    /// The client's nonce, present with a qop.
    pub cnonce: Option<String>,
    /// Opaque value echoed from the challenge.
    pub opaque: Option<String>,
}

/// Why an Authorization header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// The scheme is not Digest.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A parameter every answer carries is absent.
    #[error("authorization lacks {0}")]
    Missing(&'static str),
    /// A parameter appears twice.
    #[error("authorization repeats a parameter")]
    Duplicate,
    /// A parameter is too long or not of its form (nc, response, qop).
    #[error("malformed authorization parameter {0}")]
    Malformed(&'static str),
    /// The algorithm is one we do not know.
    #[error("unknown digest algorithm")]
    UnknownAlgorithm,
}

impl Authorization {
    /// Parses an Authorization value; junk gives an error, never a panic.
    pub fn parse(value: &str) -> Result<Self, AuthorizationError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthorizationError::NotDigest);
        }
        let params = parse_params(rest);
        for (i, (key, _)) in params.iter().enumerate() {
            if params[..i].iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Err(AuthorizationError::Duplicate);
            }
        }
        let get = |name: &'static str| -> Result<Option<String>, AuthorizationError> {
            match params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                Some((_, v)) if v.len() > MAX_PARAM_LEN => Err(AuthorizationError::Malformed(name)),
                Some((_, v)) => Ok(Some(v.clone())),
                None => Ok(None),
            }
        };
        let need = |name: &'static str| get(name)?.ok_or(AuthorizationError::Missing(name));
        let algorithm = match get("algorithm")? {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5-sess") => Algorithm::Md5Sess,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(a) if a.eq_ignore_ascii_case("SHA-256-sess") => Algorithm::Sha256Sess,
            Some(_) => return Err(AuthorizationError::UnknownAlgorithm),
        };
        let qop = match get("qop")? {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(q) if q.eq_ignore_ascii_case("auth-int") => Some(Qop::AuthInt),
            Some(_) => return Err(AuthorizationError::Malformed("qop")),
        };
        let nc = match get("nc")? {
            None => None,
            Some(nc) if nc.len() == 8 && nc.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let count = u32::from_str_radix(&nc, 16)
                    .map_err(|_| AuthorizationError::Malformed("nc"))?;
                Some(count)
            }
            Some(_) => return Err(AuthorizationError::Malformed("nc")),
        };
        let cnonce = get("cnonce")?;
        if qop.is_some() && (nc.is_none() || cnonce.is_none()) {
            return Err(AuthorizationError::Missing("nc and cnonce"));
        }
        let response = need("response")?.to_ascii_lowercase();
        let hex_len = match algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => 32,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 64,
        };
        if response.len() != hex_len || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthorizationError::Malformed("response"));
        }
        Ok(Authorization {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response,
            algorithm,
            qop,
            nc,
            cnonce,
            opaque: get("opaque")?,
        })
    }
}

/// Why an answer was refused before any password was involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The answer is for another realm: challenge again.
    OtherRealm,
    /// The nonce is not one we issued to this address: challenge again, not stale.
    InvalidNonce,
    /// The answer is not of a form we accept (algorithm, qop, uri): 400.
    BadRequest(&'static str),
}

/// Issues challenges and checks answers for one realm.
#[derive(Debug, Clone)]
pub struct DigestServer {
    realm: String,
    key: NonceKey,
    lifetime: Duration,
}

impl DigestServer {
    /// Creates a server for `realm` signing nonces with `key`, valid for [`NONCE_LIFETIME`].
    pub fn new(realm: impl Into<String>, key: NonceKey) -> Self {
        DigestServer {
            realm: realm.into(),
            key,
            lifetime: NONCE_LIFETIME,
        }
    }

    /// Returns the realm challenges name.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Returns a new nonce for a client at `client`, issued at `wall`.
    pub fn nonce(&self, client: IpAddr, wall: SystemTime, salt: u64) -> String {
        let issued = unix_secs(wall);
        let tag = self.tag(issued, salt, client);
        format!("{issued:016x}{salt:016x}{}", hex::encode(tag))
    }

    /// Tells whether `nonce` is ours, issued to `client`, and still within its lifetime at `wall`.
    pub fn check_nonce(&self, nonce: &str, client: IpAddr, wall: SystemTime) -> NonceCheck {
        if nonce.len() != 64 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return NonceCheck::Invalid;
        }
        let (Ok(issued), Ok(salt), Ok(tag)) = (
            u64::from_str_radix(&nonce[..16], 16),
            u64::from_str_radix(&nonce[16..32], 16),
            hex::decode(&nonce[32..]),
        ) else {
            return NonceCheck::Invalid;
        };
        if !bool::from(self.tag(issued, salt, client)[..].ct_eq(tag.as_slice())) {
            return NonceCheck::Invalid;
        }
        let now = unix_secs(wall);
        if issued > now.saturating_add(CLOCK_SKEW.as_secs()) {
            return NonceCheck::Invalid;
        }
        match now.saturating_sub(issued) > self.lifetime.as_secs() {
            true => NonceCheck::Stale,
            false => NonceCheck::Fresh,
        }
    }

    /// Returns the WWW-Authenticate values for a nonce, SHA-256 first as RFC 8760 §2.4 orders
    /// by preference, then MD5 for phones that know nothing else.
    pub fn challenges(&self, nonce: &str, stale: bool) -> [String; 2] {
        [Algorithm::Sha256, Algorithm::Md5].map(|algorithm| {
            let mut value = format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                quote(&self.realm),
                algorithm.name()
            );
            if stale {
                value.push_str(", stale=true");
            }
            value
        })
    }

    /// Checks everything about an answer except the password: realm, algorithm, qop, the URI
    /// against the Request-URI, and the nonce.
    ///
    /// Returns whether the nonce is fresh or stale; a stale nonce's answer is still worth
    /// verifying, since `stale=true` is only for clients that know the password.
    pub fn precheck(
        &self,
        auth: &Authorization,
        request_uri: &rsip::Uri,
        client: IpAddr,
        wall: SystemTime,
    ) -> Result<NonceCheck, Refusal> {
        if auth.realm != self.realm {
            return Err(Refusal::OtherRealm);
        }
        if !matches!(auth.algorithm, Algorithm::Md5 | Algorithm::Sha256) {
            return Err(Refusal::BadRequest("unsupported algorithm"));
        }
        if auth.qop != Some(Qop::Auth) || auth.nc == Some(0) {
            return Err(Refusal::BadRequest(
                "qop=auth with a nonce count is required",
            ));
        }
        if !same_uri(&auth.uri, request_uri) {
            return Err(Refusal::BadRequest(
                "digest uri differs from the Request-URI",
            ));
        }
        match self.check_nonce(&auth.nonce, client, wall) {
            NonceCheck::Invalid => Err(Refusal::InvalidNonce),
            check => Ok(check),
        }
    }

    fn tag(&self, issued: u64, salt: u64, client: IpAddr) -> [u8; 16] {
        // A key of any length is valid for HMAC, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0)
            .expect("HMAC accepts keys of any length");
        mac.update(&issued.to_be_bytes());
        mac.update(&salt.to_be_bytes());
        mac.update(&(self.realm.len() as u64).to_be_bytes());
        mac.update(self.realm.as_bytes());
        mac.update(&ip_bytes(client));
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }
}

/// Tells whether an answer's response matches the one `ha1` gives for this request, comparing
/// in constant time. Only `qop=auth` answers can match.
pub fn verify_response(auth: &Authorization, method: &str, ha1: &str) -> bool {
    let (Some(qop @ Qop::Auth), Some(nc), Some(cnonce)) = (auth.qop, auth.nc, &auth.cnonce) else {
        return false;
    };
    let algorithm = auth.algorithm;
    let ha2 = algorithm.hash(&format!("{method}:{}", auth.uri));
    let expected = algorithm.hash(&format!(
        "{ha1}:{}:{nc:08x}:{cnonce}:{}:{ha2}",
        auth.nonce,
        qop_name(qop)
    ));
    bool::from(expected.as_bytes().ct_eq(auth.response.as_bytes()))
}

/// Tells whether the URI a client hashed names the Request-URI, compared as parsed (rsip
/// rewrites some parts, such as `transport=`, the same way on both sides).
pub fn same_uri(digest_uri: &str, request_uri: &rsip::Uri) -> bool {
    // rsip is nom-based and has shown no panics, but this text comes from outside.
    let parsed = std::panic::catch_unwind(|| rsip::Uri::try_from(digest_uri));
    match parsed {
        Ok(Ok(uri)) => uri.to_string() == request_uri.to_string(),
        _ => false,
    }
}

fn unix_secs(wall: SystemTime) -> u64 {
    wall.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
#[path = "digest_server_tests.rs"]
mod tests;
