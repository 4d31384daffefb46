//! HTTPS, built in: browsers give the microphone only to secure pages, so
//! agents on other computers need it.
//!
//! Three ways to a certificate, one at a time:
//! - files an operator provides (`--tls-cert`, `--tls-key`), checked at
//!   start ([`cert`]);
//! - a local authority and a certificate it signs for this machine's names,
//!   made once and kept beside the database ([`self_signed`]);
//! - an ACME authority such as Let's Encrypt, renewed in the background
//!   ([`acme`]).
//!
//! [`listener`] serves them: handshakes, certificate swaps, ACME's
//! challenges, and the optional plain-HTTP port that only redirects.

pub mod acme;
pub mod cert;
pub mod listener;
pub mod self_signed;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use acme::AcmeSettings;
use cert::Facts;
use listener::CertStore;

/// The HTTPS settings; TLS is off unless one source is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// The PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Whether to make and use a local authority's certificate.
    pub self_signed: bool,
    /// Names agents use to reach the service: added to a self-signed
    /// certificate, and checked against a provided one.
    pub names: Vec<String>,
    /// A certificate from an ACME authority.
    pub acme: Option<AcmeSettings>,
    /// A plain-HTTP address that only redirects to HTTPS.
    pub redirect_addr: Option<SocketAddr>,
    /// `Strict-Transport-Security`'s max-age; zero sends none.
    pub hsts_max_age: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert: None,
            key: None,
            self_signed: false,
            names: Vec::new(),
            acme: None,
            redirect_addr: None,
            hsts_max_age: Duration::from_secs(180 * 86_400),
        }
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Files the operator provides.
    Files {
        /// The certificate chain.
        cert: &'a Path,
        /// Its key.
        key: &'a Path,
    },
    /// A local authority's, made here.
    SelfSigned,
    /// An ACME authority's.
    Acme(&'a AcmeSettings),
}

impl TlsSettings {
    /// The one source of the certificate, if TLS is on; two sources, or
    /// half of a pair, are refused.
    pub fn source(&self) -> Result<Option<Source<'_>>, String> {
        let files = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some(Source::Files { cert, key }),
            (Some(_), None) => {
                return Err(
                    "a TLS certificate is set without its key: set tls.key (--tls-key)".into(),
                )
            }
            (None, Some(_)) => {
                return Err(
                    "a TLS key is set without its certificate: set tls.cert (--tls-cert)".into(),
                )
            }
            (None, None) => None,
        };
        let sources: Vec<Source<'_>> = files
            .into_iter()
            .chain(self.self_signed.then_some(Source::SelfSigned))
            .chain(self.acme.as_ref().map(Source::Acme))
            .collect();
        if sources.len() > 1 {
            return Err(
                "choose one source of the TLS certificate: files (--tls-cert/--tls-key), \
                        --tls-self-signed, or ACME (--acme-domain)"
                    .into(),
            );
        }
        if let Some(acme) = &self.acme {
            if acme.domains.is_empty() {
                return Err("ACME needs at least one domain (--acme-domain)".into());
            }
        }
        if self.redirect_addr.is_some() && sources.is_empty() {
            return Err("a plain-HTTP redirect port is set but TLS is off".into());
        }
        Ok(sources.into_iter().next())
    }

    /// Whether the service serves HTTPS.
    pub fn enabled(&self) -> bool {
        matches!(self.source(), Ok(Some(_)))
    }
}

/// HTTPS ready to serve: the certificate (unless ACME is yet to issue it)
/// and what to tell the operator.
pub struct Prepared {
    /// The certificates the listener presents.
    pub store: Arc<CertStore>,
    /// The listener's TLS settings.
    pub config: Arc<rustls::ServerConfig>,
    /// Lines for the operator, printed at start.
    pub notes: Vec<String>,
    /// ACME's settings and the certificate in service, if any yet.
    pub acme: Option<(AcmeSettings, Option<Facts>)>,
    /// Files the operator provides, to be watched for a renewed pair.
    pub files: Option<WatchedFiles>,
}

/// A certificate and key the operator renews in place (certbot, a
/// company's PKI): a new pair is picked up without a restart, which would
/// drain every call.
#[derive(Debug, Clone)]
pub struct WatchedFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The names it must be for.
    pub names: Vec<String>,
}

impl WatchedFiles {
    fn stamp(&self) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }

    /// Looks at the files every `every`; when either changed, loads the
    /// pair and serves it if it passes the start-up checks. A pair that
    /// fails is looked at again once (a renewal may be caught between
    /// writing the certificate and the key); failing still, the one in
    /// service stays and `alert` is told why, once.
    pub async fn keep_fresh(
        self,
        store: Arc<CertStore>,
        every: Duration,
        alert: impl Fn(String) + Send + 'static,
    ) {
        let mut seen = self.stamp();
        let mut failing = None;
        loop {
            tokio::time::sleep(every).await;
            let now = self.stamp();
            if now.is_none() || now == seen {
                continue;
            }
            match cert::load(&self.cert, &self.key, &self.names, Utc::now()) {
                Ok(loaded) => {
                    tracing::info!(
                        file = %self.cert.display(),
                        expires = %loaded.facts.not_after,
                        "TLS certificate reloaded"
                    );
                    store.set(loaded.key);
                    seen = now;
                    failing = None;
                }
                Err(_) if failing != now => failing = now,
                Err(e) => {
                    seen = now;
                    let message = format!("the changed TLS certificate was not loaded: {e}; the previous one stays in service");
                    tracing::error!("{message}");
                    alert(message);
                }
            }
        }
    }
}

/// Reads or makes the certificate, refusing what a browser would refuse;
/// `state_dir` is where a self-signed certificate is kept.
pub fn prepare(
    settings: &TlsSettings,
    state_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Option<Prepared>, String> {
    let Some(source) = settings.source()? else {
        return Ok(None);
    };
    let store = Arc::new(CertStore::default());
    let mut notes = Vec::new();
    let mut acme = None;
    let mut files = None;
    match source {
        Source::Files { cert, key } => {
            let loaded = cert::load(cert, key, &settings.names, now)?;
            notes.push(format!(
                "TLS certificate {} for {}, valid until {}",
                cert.display(),
                loaded.facts.names_text(),
                loaded.facts.not_after.format("%Y-%m-%d")
            ));
            if loaded.facts.not_after - now < chrono::Duration::days(14) {
                tracing::warn!(
                    file = %cert.display(),
                    expires = %loaded.facts.not_after,
                    "the TLS certificate expires within 14 days: replace it and restart"
                );
            }
            store.set(loaded.key);
            files = Some(WatchedFiles {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                names: settings.names.clone(),
            });
        }
        Source::SelfSigned => {
            let names = self_signed::machine_names(&settings.names);
            let dir = state_dir.join("dialcrm-tls");
            let made = self_signed::ensure(&dir, &names, now)?;
            notes.push(format!(
                "self-signed TLS certificate for {}",
                made.loaded.facts.names_text()
            ));
            notes.push(format!(
                "agents' browsers trust the authority {} once (SHA-256 {})",
                made.authority_file.display(),
                made.authority_fingerprint
            ));
            if made.new_authority {
                notes.push(
                    "  this authority is new: install it as a trusted authority on agents' computers \
                     (docs/deployment.md), comparing the fingerprint"
                        .into(),
                );
            }
            store.set(made.loaded.key);
        }
        Source::Acme(settings) => {
            let facts = acme::load_cached(settings, &store, now);
            notes.push(match &facts {
                Some(f) => format!(
                    "TLS certificate for {} from {}, valid until {}",
                    f.names_text(),
                    settings.directory,
                    f.not_after.format("%Y-%m-%d")
                ),
                None => format!(
                    "TLS certificate for {} obtained from {}",
                    settings.domains.join(", "),
                    settings.directory
                ),
            });
            acme = Some((settings.clone(), facts));
        }
    }
    let config = listener::server_config(store.clone(), acme.is_some());
    Ok(Some(Prepared {
        store,
        config,
        notes,
        acme,
        files,
    }))
}
