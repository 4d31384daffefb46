//! Certificates as an operator hands them over: PEM files read, checked
//! and explained. Every refusal names the file and the problem, so `serve`
//! never starts half-configured and `doctor` can say what to fix.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate chain and its key, read and checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// What the leaf certificate says of itself.
    pub facts: Facts,
}

/// What a leaf certificate says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The DNS names (possibly `*.` wildcards) and addresses it is for.
    pub names: Vec<String>,
    /// When it starts to be valid.
    pub not_before: DateTime<Utc>,
    /// When it expires.
    pub not_after: DateTime<Utc>,
}

impl Facts {
    /// Reads the names and validity of a DER certificate.
    pub fn of(der: &[u8]) -> Result<Facts, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("is not a valid X.509 certificate ({e})"))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        names.push(d.to_ascii_lowercase())
                    }
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_of(b) {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let at = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Ok(Facts {
            names,
            not_before: at(cert.validity().not_before),
            not_after: at(cert.validity().not_after),
        })
    }

    /// Whether the certificate is for `name` (a host name or an address),
    /// as a browser would match it: names case-insensitively, a wildcard
    /// standing for exactly one leftmost label.
    pub fn covers(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.names.iter().any(|n| n.parse::<IpAddr>() == Ok(ip));
        }
        self.names.iter().any(|n| match n.strip_prefix("*.") {
            Some(suffix) => name
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => *n == name,
        })
    }

    /// The names as a list for messages.
    pub fn names_text(&self) -> String {
        if self.names.is_empty() {
            "no name".into()
        } else {
            self.names.join(", ")
        }
    }
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Reads a PEM certificate chain and its key and checks them: both
/// readable, the key the certificate's, valid now, and for every name in
/// `names`.
pub fn load(
    cert: &Path,
    key: &Path,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<Loaded, String> {
    let loaded = load_pair(cert, key)?;
    check(&loaded.facts, cert, names, now)?;
    Ok(loaded)
}

/// Reads a certificate chain and its key, and checks that they belong
/// together; dates and names are left to [`check`].
pub fn load_pair(cert: &Path, key: &Path) -> Result<Loaded, String> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| {
        format!(
            "the TLS key {} is not a key rustls can use ({e}); use an ECDSA P-256/P-384, \
             Ed25519 or RSA key in PEM",
            key.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(format!(
                "the TLS key {} does not match the certificate {} (they are from different pairs)",
                key.display(),
                cert.display()
            ))
        }
        Err(e) => {
            return Err(format!(
                "the TLS certificate {} and key {} cannot be checked against each other ({e})",
                cert.display(),
                key.display()
            ))
        }
    }
    let facts = Facts::of(certified.cert[0].as_ref())
        .map_err(|e| format!("the TLS certificate {} {e}", cert.display()))?;
    Ok(Loaded {
        key: Arc::new(certified),
        facts,
    })
}

/// Checks a certificate's dates and names.
pub fn check(
    facts: &Facts,
    file: &Path,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<(), String> {
    if facts.not_after <= now {
        return Err(format!(
            "the TLS certificate {} expired on {}",
            file.display(),
            facts.not_after.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if facts.not_before > now {
        return Err(format!(
            "the TLS certificate {} is not valid until {}",
            file.display(),
            facts.not_before.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !facts.covers(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the TLS certificate {} is for {}, not for {} (list the names agents use in the certificate, or fix tls.names)",
            file.display(),
            facts.names_text(),
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Reads every certificate of a PEM file, leaf first.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "the TLS certificate {} is not valid PEM ({e})",
                path.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "the TLS certificate {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "the TLS key {} holds no private key (expected -----BEGIN PRIVATE KEY-----, \
             or an EC or RSA PRIVATE KEY)",
            path.display()
        ),
        e => format!("the TLS key {} is not valid PEM ({e})", path.display()),
    })
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (the service's user must be able to read it)".to_owned()
            }
            _ => e.to_string(),
        };
        format!("cannot read the TLS {what} {}: {why}", path.display())
    })
}

/// The SHA-256 fingerprint of a DER certificate, as browsers show it
/// (colon-separated upper-case hex).
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes a file whole (through a temporary beside it); keys readable by
/// the service's user only.
pub fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
