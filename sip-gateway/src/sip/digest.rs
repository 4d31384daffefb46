//! Client digest authentication (RFC 2617, RFC 7616, RFC 8760) for 401 and 407 challenges.

use md5::Md5;
use sha2::{Digest, Sha256};

/// Hash algorithm named in a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (the default when a challenge names none).
    Md5,
    /// MD5 with the session variant of HA1.
    Md5Sess,
    /// SHA-256 (RFC 8760).
    Sha256,
    /// SHA-256 with the session variant of HA1.
    Sha256Sess,
}

impl Algorithm {
    /// Returns the name written in `algorithm=` parameters.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Returns the lower-case hex digest of `data` under this algorithm.
    pub(crate) fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                hex::encode(Sha256::digest(data.as_bytes()))
            }
        }
    }

    fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

/// Quality of protection chosen for a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// Authentication of the request line only.
    Auth,
    /// Authentication including a hash of the body.
    AuthInt,
}

/// Which header carried the challenge, and so which header answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// WWW-Authenticate in a 401, answered with Authorization.
    Www,
    /// Proxy-Authenticate in a 407, answered with Proxy-Authorization.
    Proxy,
}

impl ChallengeKind {
    /// Returns the name of the header that answers this challenge.
    pub fn answer_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// A parsed digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value echoed back unchanged.
    pub opaque: Option<String>,
    /// Hash algorithm.
    pub algorithm: Algorithm,
    /// Chosen qop, or `None` for the RFC 2069 compatible form.
    pub qop: Option<Qop>,
    /// Whether the server says the previous nonce was stale (credentials were fine).
    pub stale: bool,
}

/// Username and password for a trunk; `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authentication username.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a challenge could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not Digest.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A required parameter (realm or nonce) is missing.
    #[error("challenge lacks {0}")]
    MissingParam(&'static str),
    /// The algorithm is not one we implement.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The server offers only qop values we do not implement.
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
}

impl Challenge {
    /// Parses a WWW-Authenticate or Proxy-Authenticate value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest);
        }
        let params = parse_params(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5-sess") => Algorithm::Md5Sess,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(a) if a.eq_ignore_ascii_case("SHA-256-sess") => Algorithm::Sha256Sess,
            Some(a) => return Err(DigestError::UnsupportedAlgorithm(a)),
        };
        let qop = match get("qop") {
            None => None,
            Some(list) => {
                let offered: Vec<String> = list
                    .split(',')
                    .map(|q| q.trim().to_ascii_lowercase())
                    .collect();
                if offered.iter().any(|q| q == "auth") {
                    Some(Qop::Auth)
                } else if offered.iter().any(|q| q == "auth-int") {
                    Some(Qop::AuthInt)
                } else {
                    return Err(DigestError::UnsupportedQop(list));
                }
            }
        };
        Ok(Challenge {
            realm: get("realm").ok_or(DigestError::MissingParam("realm"))?,
            nonce: get("nonce").ok_or(DigestError::MissingParam("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Builds the Authorization or Proxy-Authorization value for one request.
    ///
    /// `uri` must be the Request-URI exactly as sent on the wire; `cnonce` and `nc` are only
    /// used when the challenge asked for a qop (or a -sess algorithm).
    pub fn respond(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
        nc: u32,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!(
            "{}:{}:{}",
            credentials.username, self.realm, credentials.password
        ));
        if alg.is_session() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                let body_hash = alg.hash(&String::from_utf8_lossy(body));
                alg.hash(&format!("{method}:{uri}:{body_hash}"))
            }
            _ => alg.hash(&format!("{method}:{uri}")),
        };
        let nc = format!("{nc:08x}");
        let response = match self.qop {
            Some(qop) => alg.hash(&format!(
                "{ha1}:{}:{nc}:{cnonce}:{}:{ha2}",
                self.nonce,
                qop_name(qop)
            )),
            None => alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(&credentials.username),
            quote(&self.realm),
            quote(&self.nonce),
            alg.name()
        );
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        if let Some(qop) = self.qop {
            out.push_str(&format!(
                ", qop={}, nc={nc}, cnonce=\"{cnonce}\"",
                qop_name(qop)
            ));
        }
        out
    }
}

/// Returns the token written in `qop=` parameters.
pub(crate) fn qop_name(qop: Qop) -> &'static str {
    match qop {
        Qop::Auth => "auth",
        Qop::AuthInt => "auth-int",
    }
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Splits `k=v, k="quoted, v"` into pairs, unescaping quoted strings.
pub(crate) fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            chars.by_ref().find(|c| *c == ',');
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.push((key, value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(header: &'a str, name: &str) -> &'a str {
        let start = header.find(&format!("{name}=")).unwrap() + name.len() + 1;
        header[start..]
            .trim_start_matches('"')
            .split(['"', ','])
            .next()
            .unwrap()
    }

    #[test]
    fn rfc2617_example() {
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(challenge.qop, Some(Qop::Auth));
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let header = challenge.respond(&creds, "GET", "/dir/index.html", b"", "0a4f113b", 1);
        assert_eq!(
            field(&header, "response"),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(field(&header, "nc"), "00000001");
        assert_eq!(field(&header, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    }

    #[test]
    fn rfc7616_sha256_example() {
        let challenge = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        };
        let header = challenge.respond(
            &creds,
            "GET",
            "/dir/index.html",
            b"",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert_eq!(
            field(&header, "response"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(header.contains("algorithm=SHA-256"));
    }

    #[test]
    fn no_qop_uses_rfc2069_form() {
        let challenge =
            Challenge::parse("Digest realm=\"r\",nonce=\"n\",algorithm=MD5,stale=TRUE").unwrap();
        assert!(challenge.stale);
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let header = challenge.respond(&creds, "INVITE", "sip:1@h;transport=tcp", b"", "c", 1);
        let ha1 = Algorithm::Md5.hash("u:r:p");
        let ha2 = Algorithm::Md5.hash("INVITE:sip:1@h;transport=tcp");
        let expected = Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}"));
        assert_eq!(field(&header, "response"), expected);
        assert!(!header.contains("qop"));
        assert!(header.contains("uri=\"sip:1@h;transport=tcp\""));
    }

    #[test]
    fn rejects_unknown_schemes_and_algorithms() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-512-256"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            Challenge::parse("Digest nonce=\"y\""),
            Err(DigestError::MissingParam("realm"))
        );
        assert!(format!(
            "{:?}",
            Credentials {
                username: "u".into(),
                password: "secret".into()
            }
        )
        .contains("redacted"));
    }
}
