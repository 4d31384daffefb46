//! SIP over TLS towards trunks: which CAs a trunk's certificate must chain to, and which
//! name it must carry.
//!
//! The gateway is always the TLS client: it opens the connection to the trunk and the
//! trunk's requests come back on it. Certificates are checked by rustls's WebPKI verifier
//! against the trunk's `ca_file` or the system's roots; the name checked (and sent as SNI)
//! is the trunk's `tls_name`, else its host.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::config::TrunkConfig;

/// How to open TLS to one trunk.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    /// The trunk's name, for logs.
    pub trunk: String,
    /// The name its certificate must carry, also sent as SNI when it is a DNS name.
    pub name: ServerName<'static>,
    /// The rustls client set up with the trunk's roots.
    pub connector: TlsConnector,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("trunk", &self.trunk)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The system's CA certificates, read at most once however many trunks use them.
#[derive(Debug, Default)]
pub(crate) struct SystemRoots(Option<Arc<RootCertStore>>);

impl SystemRoots {
    fn get(&mut self) -> Result<Arc<RootCertStore>, String> {
        if let Some(roots) = &self.0 {
            return Ok(roots.clone());
        }
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a system CA certificate could not be read");
        }
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(
                "no system CA certificates found (install ca-certificates, or set ca_file)".into(),
            );
        }
        let roots = Arc::new(roots);
        self.0 = Some(roots.clone());
        Ok(roots)
    }
}

/// Builds the TLS client for a trunk; the message names what is wrong with its settings.
pub(crate) fn target(config: &TrunkConfig, system: &mut SystemRoots) -> Result<TlsTarget, String> {
    let name = config.tls_name()?;
    let name = ServerName::try_from(name.clone())
        .map_err(|_| format!("tls_name {name:?} is not a host name or IP address"))?;
    let roots = match &config.ca_file {
        Some(path) => Arc::new(roots_from(path)?),
        None => system.get()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsTarget {
        trunk: config.name.clone(),
        name,
        connector: TlsConnector::from(Arc::new(client)),
    })
}

/// Reads every CA certificate of a PEM file.
fn roots_from(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read ca_file {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_file {shown} is not PEM: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("ca_file {shown} holds no usable CA certificate"));
    }
    Ok(roots)
}
