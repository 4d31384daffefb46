//! Certificates from an ACME certificate authority (RFC 8555): Let's
//! Encrypt by default, or any other (a company's own, or a test server).
//!
//! The authority checks that we hold the name by TLS-ALPN-01 (RFC 8737):
//! it connects to the name on the HTTPS port asking for `acme-tls/1`, and
//! the server answers with a one-off certificate carrying the challenge's
//! digest. So only the HTTPS port need be reachable — no port 80, no DNS
//! changes. The account, the certificate and its key are cached in a
//! folder; a renewal that fails leaves the last certificate in service and
//! is tried again at the next check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;

use super::cert::{self, Facts};
use super::listener::CertStore;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How the service obtains its certificate from an ACME authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The names the certificate is for; the first is the main one.
    pub domains: Vec<String>,
    /// Where the authority writes about expiry and problems.
    pub email: Option<String>,
    /// Where the account, the certificate and its key are kept.
    pub cache_dir: PathBuf,
    /// The authority's directory URL.
    pub directory: String,
    /// The root certificate (PEM) the authority's own HTTPS is checked
    /// against, for a private authority; the system's roots otherwise.
    pub ca_root: Option<PathBuf>,
    /// A certificate this close to expiry is renewed.
    pub renew_before: Duration,
    /// How often the certificate's expiry is looked at.
    pub check_every: Duration,
}

impl AcmeSettings {
    /// Settings for `domains` with the defaults: Let's Encrypt, renewal 30
    /// days before expiry, looked at twice a day.
    pub fn new(domains: Vec<String>, cache_dir: PathBuf) -> Self {
        AcmeSettings {
            domains,
            email: None,
            cache_dir,
            directory: LETS_ENCRYPT.into(),
            ca_root: None,
            renew_before: Duration::from_secs(30 * 86_400),
            check_every: Duration::from_secs(12 * 3600),
        }
    }

    fn cert_file(&self) -> PathBuf {
        self.cache_dir.join("cert.pem")
    }

    fn key_file(&self) -> PathBuf {
        self.cache_dir.join("key.pem")
    }

    fn account_file(&self) -> PathBuf {
        self.cache_dir.join("account.json")
    }
}

/// Puts the cached certificate in service if it is for every domain and
/// still valid, and returns its facts; `None` when there is none to serve
/// and one must be obtained before the service can answer. A cached one
/// due for renewal is served while [`keep_renewed`] renews it, so a
/// restart never waits on the authority.
pub fn load_cached(
    settings: &AcmeSettings,
    store: &CertStore,
    now: DateTime<Utc>,
) -> Option<Facts> {
    let (cert, key) = (settings.cert_file(), settings.key_file());
    if !cert.exists() {
        return None;
    }
    match cert::load(&cert, &key, &settings.domains, now) {
        Ok(loaded) => {
            store.set(loaded.key.clone());
            Some(loaded.facts)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the cached ACME certificate is unusable: obtaining a new one");
            None
        }
    }
}

fn due(facts: &Facts, settings: &AcmeSettings, now: DateTime<Utc>) -> bool {
    let before = chrono::Duration::from_std(settings.renew_before).unwrap_or(chrono::Duration::MAX);
    facts.not_after - now <= before
}

/// Obtains a certificate for the settings' domains, caches it and puts it
/// in service. The HTTPS listener must already be serving `store`.
pub async fn obtain(settings: &AcmeSettings, store: &CertStore) -> Result<Facts> {
    std::fs::create_dir_all(&settings.cache_dir).with_context(|| {
        format!(
            "creating the ACME cache folder {}",
            settings.cache_dir.display()
        )
    })?;
    let account = account(settings).await?;
    let identifiers: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| anyhow!("ordering a certificate: {e}"))?;
    let mut answered = Vec::new();
    let outcome = async {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization =
                authorization.map_err(|e| anyhow!("fetching an authorization: {e}"))?;
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => bail!("an authorization is {other:?}"),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| anyhow!("the authority offers no tls-alpn-01 challenge"))?;
            let name = challenge.identifier().to_string();
            let key = challenge_key(&name, challenge.key_authorization().digest().as_ref())?;
            store.set_challenge(&name, key);
            answered.push(name);
            challenge
                .set_ready()
                .await
                .map_err(|e| anyhow!("answering the challenge: {e}"))?;
        }
        let patience = RetryPolicy::new().timeout(Duration::from_secs(90));
        match order
            .poll_ready(&patience)
            .await
            .map_err(|e| anyhow!("waiting for the authority to check the names: {e}"))?
        {
            OrderStatus::Ready => {}
            status => bail!(
                "the authority did not accept the challenge ({status:?}): is {} reachable from the internet on this HTTPS port?",
                settings.domains.join(", ")
            ),
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| anyhow!("sending the certificate request: {e}"))?;
        let chain_pem = order
            .poll_certificate(&patience)
            .await
            .map_err(|e| anyhow!("fetching the certificate: {e}"))?;
        Ok((key_pem, chain_pem))
    }
    .await;
    for name in &answered {
        store.clear_challenge(name);
    }
    let (key_pem, chain_pem) = outcome?;
    let (cert_file, key_file) = (settings.cert_file(), settings.key_file());
    cert::write_file(&key_file, &key_pem, true).map_err(anyhow::Error::msg)?;
    std::fs::write(&cert_file, &chain_pem)
        .with_context(|| format!("writing {}", cert_file.display()))?;
    let loaded = cert::load(&cert_file, &key_file, &settings.domains, Utc::now())
        .map_err(anyhow::Error::msg)?;
    store.set(loaded.key.clone());
    Ok(loaded.facts)
}

/// Renews the certificate when it is due, forever; a failure is reported
/// to `alert` and tried again at the next check, the last certificate
/// staying in service.
pub async fn keep_renewed(
    settings: AcmeSettings,
    store: Arc<CertStore>,
    mut facts: Option<Facts>,
    alert: impl Fn(String) + Send + 'static,
) {
    loop {
        let now = Utc::now();
        if facts.as_ref().is_none_or(|f| due(f, &settings, now)) {
            match obtain(&settings, &store).await {
                Ok(f) => {
                    tracing::info!(
                        domains = %settings.domains.join(","),
                        expires = %f.not_after,
                        "TLS certificate renewed"
                    );
                    facts = Some(f);
                }
                Err(e) => {
                    let left = facts.as_ref().map_or_else(
                        || "no certificate is in service".to_owned(),
                        |f| {
                            format!(
                                "the current one expires on {}",
                                f.not_after.format("%Y-%m-%d %H:%M UTC")
                            )
                        },
                    );
                    let message = format!(
                        "renewing the TLS certificate for {} failed: {e:#}; {left}",
                        settings.domains.join(", ")
                    );
                    tracing::error!("{message}");
                    alert(message);
                }
            }
        }
        tokio::time::sleep(settings.check_every).await;
    }
}

/// Loads the cached account, or creates one and caches it.
async fn account(settings: &AcmeSettings) -> Result<Account> {
    let builder = || match &settings.ca_root {
        Some(root) => Account::builder_with_root(root)
            .map_err(|e| anyhow!("the ACME CA root {} is unusable: {e}", root.display())),
        None => Account::builder().map_err(|e| anyhow!("setting up the ACME client: {e}")),
    };
    let file = settings.account_file();
    if let Ok(text) = std::fs::read_to_string(&file) {
        match serde_json::from_str::<AccountCredentials>(&text) {
            Ok(credentials) => {
                return builder()?.from_credentials(credentials).await.map_err(|e| {
                    anyhow!("restoring the ACME account from {}: {e}", file.display())
                })
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "the cached ACME account is unreadable: creating a new one")
            }
        }
    }
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .map_err(|e| anyhow!("creating an account at {}: {e}", settings.directory))?;
    let text = serde_json::to_string(&credentials).context("encoding the ACME account")?;
    cert::write_file(&file, &text, true).map_err(anyhow::Error::msg)?;
    Ok(account)
}

/// The certificate that answers a TLS-ALPN-01 challenge for `name`: self
/// signed, for that name only, carrying the key authorization's digest.
fn challenge_key(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>> {
    let key = rcgen::KeyPair::generate().context("generating a challenge key")?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .with_context(|| format!("{name:?} is not a valid domain name"))?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let cert = params
        .self_signed(&key)
        .context("making the challenge certificate")?;
    let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
        .context("reading the challenge key")?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .context("loading the challenge key")?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}
