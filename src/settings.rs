//! The service's settings: defaults, then a TOML file, then `DIALCRM_…`
//! environment variables and command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use sip_gateway::gateway::{GatewayConfig, TrunkConfig};

use crate::tls::{AcmeSettings, TlsSettings};

/// A value that never shows in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Returns the secret; call sites are where it is deliberately used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The database URL; its scheme picks SQLite or PostgreSQL. It may hold a
    /// password, so it is kept secret.
    pub database_url: Secret<String>,
    /// Where the HTTP server listens.
    pub http_addr: SocketAddr,
    /// Whether a first start seeds the demo account.
    pub demo: bool,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// How long a stopping node waits for its calls in progress (and their
    /// wrap-ups) to end before it stops anyway.
    pub drain_timeout: Duration,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For`
    /// names the client, for the audit log and the login throttle.
    pub trusted_proxies: Vec<String>,
    /// Whether the session cookie is marked `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// The caller ID `dial` presents when none is given.
    pub caller_id: Option<String>,
    /// The SIP gateway's sockets and timers; when absent, loopback on free
    /// ports without trunks (the demo's simulated carrier) or the standard
    /// SIP port with them.
    pub gateway: Option<GatewayConfig>,
    /// This node's name in lead leases; the host name by default.
    pub node_id: String,
    /// How long a node's heart may be silent before a survivor declares it
    /// dead and closes what it left open (10 s by default).
    pub node_timeout: Duration,
    /// The supervisors' stream: its replay, its writers and their rests
    /// (`stream_max_rest_ms` in the file).
    pub stream: dashboard::stream::hub::HubConfig,
    /// The VoIP providers' trunks, in failover order.
    pub trunks: Vec<TrunkConfig>,
    /// Where call recordings are written (stereo WAVs, one per connected
    /// call of a campaign that records).
    pub recordings_dir: PathBuf,
    /// HTTPS: off unless a certificate source is given.
    pub tls: TlsSettings,
    /// The NATS server (`nats://[user:password@]host:port`) that carries
    /// the event bus between nodes; without it the bus stays in process.
    /// It may hold a password, so it is kept secret.
    pub nats_url: Option<Secret<String>>,
    /// How this node sends webhook deliveries.
    pub webhooks: WebhookSettings,
    /// Agents' SIP desk phones registering with the gateway.
    pub phones: PhoneSettings,
}

/// How agents' desk phones register: the realm their SIP passwords are set
/// for, and which digest algorithms they are challenged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneSettings {
    /// The digest realm; changing it means setting every SIP password again.
    pub realm: String,
    /// Offer SHA-256 (RFC 8760) before MD5. Off by default: many desk
    /// phones answer the first challenge whatever its algorithm, or give up
    /// when SHA-256 is offered at all.
    pub sha256: bool,
}

impl Default for PhoneSettings {
    fn default() -> Self {
        PhoneSettings {
            realm: "dialcrm".into(),
            sha256: false,
        }
    }
}

/// How this node sends the deliveries of accounts' webhook endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettings {
    /// The deadline of one attempt: connecting, sending and the answer.
    pub timeout: Duration,
    /// Attempts per delivery in all, the first included.
    pub max_attempts: u32,
    /// The wait after a first failure; it doubles with each further one.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// Deliveries in flight to one endpoint from this node at most.
    pub per_endpoint: usize,
    /// CA certificates (PEM) to trust for https endpoints instead of the
    /// system's.
    pub ca_file: Option<PathBuf>,
    /// Days delivered and failed deliveries stay in the delivery log.
    pub keep_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: Duration::from_secs(10),
            max_attempts: 12,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(2 * 3600),
            per_endpoint: 4,
            ca_file: None,
            keep_days: 30,
        }
    }
}

impl WebhookSettings {
    /// Returns the sender's settings for the node named `node`.
    pub fn sender(&self, node: &str) -> dashboard::webhooks::SenderConfig {
        let delta = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        dashboard::webhooks::SenderConfig {
            node: node.to_owned(),
            timeout: self.timeout,
            per_endpoint: self.per_endpoint,
            policy: crm::webhooks::RetryPolicy {
                max_attempts: self.max_attempts,
                base: delta(self.retry_base),
                max: delta(self.retry_max),
            },
            ca_file: self.ca_file.clone(),
            keep: chrono::TimeDelta::days(i64::from(self.keep_days)),
            ..dashboard::webhooks::SenderConfig::default()
        }
    }

    /// Refuses values outside what the sender is built for, naming them.
    fn check(&self) -> Result<()> {
        let secs = self.timeout.as_secs();
        if !(1..=120).contains(&secs) {
            anyhow::bail!("webhooks.timeout_secs must be 1–120, not {secs}");
        }
        if !(1..=100).contains(&self.max_attempts) {
            anyhow::bail!(
                "webhooks.max_attempts must be 1–100, not {}",
                self.max_attempts
            );
        }
        if self.retry_base.is_zero() || self.retry_max < self.retry_base {
            anyhow::bail!(
                "webhooks.retry_base_secs must be at least 1 and at most webhooks.retry_max_secs"
            );
        }
        if !(1..=64).contains(&self.per_endpoint) {
            anyhow::bail!(
                "webhooks.per_endpoint must be 1–64, not {}",
                self.per_endpoint
            );
        }
        if !(1..=3650).contains(&self.keep_days) {
            anyhow::bail!("webhooks.keep_days must be 1–3650, not {}", self.keep_days);
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: Secret::new("sqlite://dialcrm.db".into()),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            demo: true,
            session_ttl: Duration::from_secs(12 * 3600),
            drain_timeout: Duration::from_secs(600),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
            caller_id: None,
            gateway: None,
            node_id: default_node_id(),
            node_timeout: Duration::from_secs(10),
            stream: dashboard::stream::hub::HubConfig::default(),
            trunks: Vec::new(),
            recordings_dir: PathBuf::from("recordings"),
            tls: TlsSettings::default(),
            nats_url: None,
            webhooks: WebhookSettings::default(),
            phones: PhoneSettings::default(),
        }
    }
}

/// The optional TOML file; every key may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    http_addr: Option<SocketAddr>,
    demo: Option<bool>,
    session_ttl_secs: Option<u64>,
    drain_timeout_secs: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    secure_cookies: Option<bool>,
    caller_id: Option<String>,
    gateway: Option<GatewayConfig>,
    node_id: Option<String>,
    node_timeout_secs: Option<u64>,
    stream_max_rest_ms: Option<u64>,
    recordings_dir: Option<PathBuf>,
    #[serde(default)]
    trunks: Vec<TrunkConfig>,
    tls: Option<FileTls>,
    nats_url: Option<String>,
    webhooks: Option<FileWebhooks>,
    phones: Option<FilePhones>,
}

/// The `[phones]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePhones {
    realm: Option<String>,
    sha256: Option<bool>,
}

/// The `[webhooks]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhooks {
    timeout_secs: Option<u64>,
    max_attempts: Option<u32>,
    retry_base_secs: Option<u64>,
    retry_max_secs: Option<u64>,
    per_endpoint: Option<usize>,
    ca_file: Option<PathBuf>,
    keep_days: Option<u32>,
}

/// The `[tls]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
    names: Option<Vec<String>>,
    redirect_http_addr: Option<SocketAddr>,
    hsts_max_age_secs: Option<u64>,
    acme: Option<FileAcme>,
}

/// The `[tls.acme]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAcme {
    domains: Vec<String>,
    email: Option<String>,
    cache_dir: Option<PathBuf>,
    directory: Option<String>,
    ca_root: Option<PathBuf>,
    renew_before_days: Option<u64>,
    check_every_secs: Option<u64>,
}

/// Values from flags or the environment, which override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--database-url` / `DIALCRM_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--http-addr` / `DIALCRM_HTTP_ADDR`.
    pub http_addr: Option<SocketAddr>,
    /// `--no-demo`.
    pub no_demo: bool,
    /// `--nats-url` / `DIALCRM_NATS_URL`.
    pub nats_url: Option<String>,
    /// The TLS flags of `serve`.
    pub tls: TlsOverrides,
}

/// The TLS flags of `serve` (and their `DIALCRM_…` variables).
#[derive(Debug, Default, Clone)]
pub struct TlsOverrides {
    /// `--tls-cert`.
    pub cert: Option<PathBuf>,
    /// `--tls-key`.
    pub key: Option<PathBuf>,
    /// `--tls-self-signed`.
    pub self_signed: bool,
    /// `--tls-name`, repeatable.
    pub names: Vec<String>,
    /// `--acme-domain`, repeatable.
    pub acme_domains: Vec<String>,
    /// `--acme-email`.
    pub acme_email: Option<String>,
    /// `--acme-cache`.
    pub acme_cache: Option<PathBuf>,
    /// `--acme-directory`.
    pub acme_directory: Option<String>,
    /// `--acme-ca-root`.
    pub acme_ca_root: Option<PathBuf>,
    /// `--http-redirect-addr`.
    pub redirect_addr: Option<SocketAddr>,
}

impl Settings {
    /// Loads the defaults, then the file if given, then the overrides.
    pub fn load(config: Option<&Path>, overrides: &Overrides) -> Result<Settings> {
        let mut s = Settings::default();
        if let Some(path) = config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the config file {}", path.display()))?;
            let file: FileSettings = toml::from_str(&text)
                .with_context(|| format!("parsing the config file {}", path.display()))?;
            s.apply_file(file);
            dashboard::proxies::TrustedProxies::parse(&s.trusted_proxies)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("in the config file {}", path.display()))?;
        }
        if let Some(url) = &overrides.database_url {
            s.database_url = Secret::new(url.clone());
        }
        if let Some(addr) = overrides.http_addr {
            s.http_addr = addr;
        }
        if overrides.no_demo {
            s.demo = false;
        }
        if let Some(url) = &overrides.nats_url {
            s.nats_url = Some(Secret::new(url.clone()));
        }
        s.apply_tls_overrides(&overrides.tls);
        s.tls.source().map_err(anyhow::Error::msg)?;
        s.check_nodes()?;
        s.webhooks.check()?;
        let realm = &s.phones.realm;
        if realm.is_empty()
            || realm.len() > 128
            || !realm
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            anyhow::bail!("phones.realm must be 1–128 printable characters, no quotes: {realm:?}");
        }
        Ok(s)
    }

    /// Refuses a NATS URL over SQLite: NATS is how several nodes share
    /// events, and a SQLite file belongs to one node.
    fn check_nodes(&self) -> Result<()> {
        let sqlite = matches!(
            crm::Store::backend_of(self.database_url.expose()),
            Ok(crm::Backend::Sqlite)
        );
        if self.nats_url.is_some() && sqlite {
            anyhow::bail!(
                "a NATS URL runs several nodes, but SQLite is one node's file: \
                 use PostgreSQL (--database-url postgres://…) with --nats-url, \
                 or leave out --nats-url to run one node on SQLite"
            );
        }
        Ok(())
    }

    fn apply_tls_overrides(&mut self, o: &TlsOverrides) {
        let default_cache = self.state_dir().join("dialcrm-acme");
        let tls = &mut self.tls;
        if let Some(v) = &o.cert {
            tls.cert = Some(v.clone());
        }
        if let Some(v) = &o.key {
            tls.key = Some(v.clone());
        }
        tls.self_signed |= o.self_signed;
        tls.names.extend(o.names.iter().cloned());
        if !o.acme_domains.is_empty() {
            let acme = tls
                .acme
                .get_or_insert_with(|| AcmeSettings::new(Vec::new(), default_cache));
            acme.domains = o.acme_domains.clone();
        }
        if let Some(acme) = &mut tls.acme {
            if let Some(v) = &o.acme_email {
                acme.email = Some(v.clone());
            }
            if let Some(v) = &o.acme_cache {
                acme.cache_dir = v.clone();
            }
            if let Some(v) = &o.acme_directory {
                acme.directory = v.clone();
            }
            if let Some(v) = &o.acme_ca_root {
                acme.ca_root = Some(v.clone());
            }
        }
        if let Some(v) = o.redirect_addr {
            tls.redirect_addr = Some(v);
        }
    }

    /// Where the service keeps what it makes for itself (a self-signed
    /// certificate, ACME's cache): beside a SQLite database, else the
    /// working folder.
    pub fn state_dir(&self) -> PathBuf {
        let url = self.database_url.expose();
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|rest| rest.split('?').next().unwrap_or_default())
            .filter(|file| !file.is_empty() && !file.starts_with(':'))
            .and_then(|file| Path::new(file).parent().map(Path::to_path_buf))
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    fn apply_file(&mut self, file: FileSettings) {
        if let Some(v) = file.database_url {
            self.database_url = Secret::new(v);
        }
        if let Some(v) = file.http_addr {
            self.http_addr = v;
        }
        if let Some(v) = file.demo {
            self.demo = v;
        }
        if let Some(v) = file.session_ttl_secs {
            self.session_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.node_timeout_secs {
            // A silence of zero would declare every node dead at once.
            self.node_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = file.stream_max_rest_ms {
            self.stream.max_rest = Duration::from_millis(v);
        }
        if let Some(v) = file.drain_timeout_secs {
            self.drain_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.trusted_proxies {
            self.trusted_proxies = v;
        }
        if let Some(v) = file.secure_cookies {
            self.secure_cookies = v;
        }
        if let Some(v) = file.caller_id {
            self.caller_id = Some(v);
        }
        if let Some(v) = file.gateway {
            self.gateway = Some(v);
        }
        if let Some(v) = file.node_id {
            self.node_id = v;
        }
        if let Some(v) = file.recordings_dir {
            self.recordings_dir = v;
        }
        if !file.trunks.is_empty() {
            self.trunks = file.trunks;
        }
        if let Some(t) = file.tls {
            self.apply_file_tls(t);
        }
        if let Some(v) = file.nats_url {
            self.nats_url = Some(Secret::new(v));
        }
        if let Some(p) = file.phones {
            if let Some(realm) = p.realm {
                self.phones.realm = realm;
            }
            if let Some(v) = p.sha256 {
                self.phones.sha256 = v;
            }
        }
        if let Some(w) = file.webhooks {
            let hooks = &mut self.webhooks;
            if let Some(v) = w.timeout_secs {
                hooks.timeout = Duration::from_secs(v);
            }
            if let Some(v) = w.max_attempts {
                hooks.max_attempts = v;
            }
            if let Some(v) = w.retry_base_secs {
                hooks.retry_base = Duration::from_secs(v);
            }
            if let Some(v) = w.retry_max_secs {
                hooks.retry_max = Duration::from_secs(v);
            }
            if let Some(v) = w.per_endpoint {
                hooks.per_endpoint = v;
            }
            if w.ca_file.is_some() {
                hooks.ca_file = w.ca_file;
            }
            if let Some(v) = w.keep_days {
                hooks.keep_days = v;
            }
        }
    }

    fn apply_file_tls(&mut self, t: FileTls) {
        let default_cache = self.state_dir().join("dialcrm-acme");
        let tls = &mut self.tls;
        tls.cert = t.cert;
        tls.key = t.key;
        tls.self_signed = t.self_signed.unwrap_or(false);
        tls.names = t.names.unwrap_or_default();
        tls.redirect_addr = t.redirect_http_addr;
        if let Some(v) = t.hsts_max_age_secs {
            tls.hsts_max_age = Duration::from_secs(v);
        }
        tls.acme = t.acme.map(|a| {
            let mut acme = AcmeSettings::new(a.domains, a.cache_dir.unwrap_or(default_cache));
            acme.email = a.email;
            if let Some(d) = a.directory {
                acme.directory = d;
            }
            acme.ca_root = a.ca_root;
            if let Some(days) = a.renew_before_days {
                acme.renew_before = Duration::from_secs(days.saturating_mul(86_400));
            }
            if let Some(secs) = a.check_every_secs {
                acme.check_every = Duration::from_secs(secs.max(1));
            }
            acme
        });
    }
}

impl Settings {
    /// Returns the gateway settings in force.
    pub fn gateway_config(&self) -> GatewayConfig {
        match &self.gateway {
            Some(g) => g.clone(),
            None if self.trunks.is_empty() => GatewayConfig::loopback(),
            None => GatewayConfig::default(),
        }
    }
}

fn default_node_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "dialcrm".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_read_and_a_bad_one_is_named() {
        let dir = std::env::temp_dir().join(format!("dialcrm-proxies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\ndrain_timeout_secs = 30\nstream_max_rest_ms = 20\n",
        )
        .expect("write");
        let s = Settings::load(Some(&good), &Overrides::default()).expect("loads");
        assert_eq!(s.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert_eq!(s.drain_timeout, Duration::from_secs(30));
        assert_eq!(s.stream.max_rest, Duration::from_millis(20));
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "trusted_proxies = [\"10.0.0.0/40\"]\n").expect("write");
        let e = format!(
            "{:#}",
            Settings::load(Some(&bad), &Overrides::default()).unwrap_err()
        );
        assert!(e.contains("10.0.0.0/40") && e.contains("bad.toml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_is_read_from_the_file_and_flags_add_to_it() {
        let dir = std::env::temp_dir().join(format!("dialcrm-tls-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("dialcrm.toml");
        std::fs::write(
            &path,
            "database_url = \"sqlite:///var/lib/dialcrm/crm.db\"\n[tls]\nnames = [\"dialler.lan\"]\n\
             redirect_http_addr = \"0.0.0.0:80\"\nhsts_max_age_secs = 0\n\
             [tls.acme]\ndomains = [\"dialler.example.com\"]\nemail = \"ops@example.com\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("loads");
        let acme = s.tls.acme.as_ref().expect("acme");
        assert_eq!(acme.domains, ["dialler.example.com"]);
        assert_eq!(acme.email.as_deref(), Some("ops@example.com"));
        assert_eq!(acme.cache_dir, Path::new("/var/lib/dialcrm/dialcrm-acme"));
        assert_eq!(acme.directory, crate::tls::acme::LETS_ENCRYPT);
        assert!(s.tls.hsts_max_age.is_zero());
        assert_eq!(
            s.tls.redirect_addr,
            Some("0.0.0.0:80".parse().expect("addr"))
        );
        let o = Overrides {
            tls: TlsOverrides {
                names: vec!["agents.lan".into()],
                acme_directory: Some("https://127.0.0.1:14000/dir".into()),
                ..TlsOverrides::default()
            },
            ..Overrides::default()
        };
        let s = Settings::load(Some(&path), &o).expect("loads");
        assert_eq!(s.tls.names, ["dialler.lan", "agents.lan"]);
        assert_eq!(
            s.tls.acme.as_ref().map(|a| a.directory.as_str()),
            Some("https://127.0.0.1:14000/dir")
        );
        // Two sources of a certificate are refused at load.
        let o = Overrides {
            tls: TlsOverrides {
                self_signed: true,
                ..TlsOverrides::default()
            },
            ..Overrides::default()
        };
        let e = format!("{:#}", Settings::load(Some(&path), &o).unwrap_err());
        assert!(e.contains("choose one"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_nats_url_is_read_needs_postgres_and_never_shows() {
        let dir =
            std::env::temp_dir().join(format!("dialcrm-nats-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("dialcrm.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://postgres@db/crm\"\nnats_url = \"nats://app:n4tspw@nats:4222\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("loads");
        let url = s.nats_url.as_ref().expect("read from the file");
        assert_eq!(url.expose(), "nats://app:n4tspw@nats:4222");
        assert!(!format!("{s:?}").contains("n4tspw"), "Debug hides it");
        let o = Overrides {
            nats_url: Some("nats://10.0.0.5:4222".into()),
            ..Overrides::default()
        };
        let s = Settings::load(Some(&path), &o).expect("loads");
        assert_eq!(
            s.nats_url.as_ref().map(|u| u.expose().as_str()),
            Some("nats://10.0.0.5:4222"),
            "the flag overrides the file"
        );
        assert!(Settings::load(None, &Overrides::default())
            .expect("defaults load")
            .nats_url
            .is_none());
        // SQLite (the default database) with NATS is refused, clearly.
        let e = format!("{:#}", Settings::load(None, &o).unwrap_err());
        assert!(e.contains("SQLite") && e.contains("PostgreSQL"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn webhook_settings_are_read_and_checked() {
        let dir =
            std::env::temp_dir().join(format!("dialcrm-webhook-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("dialcrm.toml");
        std::fs::write(
            &path,
            "[webhooks]\ntimeout_secs = 5\nmax_attempts = 3\nretry_base_secs = 2\n\
             retry_max_secs = 60\nper_endpoint = 2\nca_file = \"/etc/dialcrm/hooks-ca.pem\"\n\
             keep_days = 7\n",
        )
        .expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("loads");
        assert_eq!(
            s.webhooks,
            WebhookSettings {
                timeout: Duration::from_secs(5),
                max_attempts: 3,
                retry_base: Duration::from_secs(2),
                retry_max: Duration::from_secs(60),
                per_endpoint: 2,
                ca_file: Some(PathBuf::from("/etc/dialcrm/hooks-ca.pem")),
                keep_days: 7,
            }
        );
        assert_eq!(
            Settings::load(None, &Overrides::default())
                .expect("defaults load")
                .webhooks,
            WebhookSettings::default()
        );
        for (bad, named) in [
            ("timeout_secs = 0", "timeout_secs"),
            ("max_attempts = 0", "max_attempts"),
            (
                "retry_base_secs = 100\nretry_max_secs = 10",
                "retry_base_secs",
            ),
            ("per_endpoint = 0", "per_endpoint"),
            ("keep_days = 0", "keep_days"),
            ("retries = 3", "retries"),
        ] {
            std::fs::write(&path, format!("[webhooks]\n{bad}\n")).expect("write");
            let e = format!(
                "{:#}",
                Settings::load(Some(&path), &Overrides::default()).unwrap_err()
            );
            assert!(e.contains(named), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_then_overrides() {
        let dir = std::env::temp_dir().join(format!("dialcrm-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("dialcrm.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://u:hunter2@db/x\"\nhttp_addr = \"0.0.0.0:9000\"\nsession_ttl_secs = 60\n",
        )
        .expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("loads");
        assert_eq!(s.database_url.expose(), "postgres://u:hunter2@db/x");
        assert_eq!(s.http_addr.port(), 9000);
        assert_eq!(s.session_ttl, Duration::from_secs(60));
        assert!(!format!("{s:?}").contains("hunter2"), "Debug hides the URL");

        let o = Overrides {
            database_url: Some("sqlite://other.db".into()),
            http_addr: None,
            no_demo: true,
            ..Overrides::default()
        };
        let s = Settings::load(Some(&path), &o).expect("loads");
        assert_eq!(s.database_url.expose(), "sqlite://other.db");
        assert_eq!(s.http_addr.port(), 9000);
        assert!(!s.demo);

        std::fs::write(
            &path,
            "caller_id = \"+441632960000\"\n[gateway]\nsip_udp = \"127.0.0.1:5070\"\n\
             [[trunks]]\nname = \"main\"\nhost = \"127.0.0.1\"\nport = 5080\n\
             username = \"acct\"\npassword = \"pa55word\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("loads");
        assert_eq!(s.trunks.len(), 1);
        assert_eq!(s.trunks[0].password.expose(), "pa55word");
        assert_eq!(s.gateway_config().sip_udp.port(), 5070);
        assert!(
            !format!("{s:?}").contains("pa55word"),
            "Debug hides trunk passwords"
        );

        std::fs::write(&path, "no_such_key = 1\n").expect("write");
        let err = Settings::load(Some(&path), &Overrides::default()).expect_err("unknown key");
        assert!(format!("{err:#}").contains("no_such_key"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
