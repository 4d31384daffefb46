//! Starts the service for a test and talks to it like a client would.

use std::future::Future;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use crm::model::{Account, Role};
use crm::testing::{TestBackend, TestDb};
use dashboard::SetClock;
use dialcrm::{App, Settings};

/// A running service with its own database and a clock the test moves.
pub struct TestApp {
    pub app: App,
    pub db: TestDb,
    pub clock: Arc<SetClock>,
    pub base: String,
    /// The settings it was started with.
    pub settings: Settings,
    /// Over HTTPS: the host name clients use and the authority they trust.
    pub tls: Option<TestTls>,
}

/// How test clients reach a service that serves HTTPS.
#[derive(Clone)]
pub struct TestTls {
    /// The name clients connect to (resolved to the loopback address).
    pub host: String,
    /// The test authority's certificate, PEM.
    pub authority_pem: String,
}

/// Runs each named test once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                $crate::helpers::run(crm::testing::TestBackend::Sqlite, super::$name).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                $crate::helpers::run(crm::testing::TestBackend::Postgres, super::$name).await
            })*
        }
    };
}
pub(crate) use on_both_backends;

/// Starts an app on the backend, runs the test, and tears everything down.
pub async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let Some(app) = spawn_app(backend, false).await else {
        return;
    };
    let app = test(app).await;
    app.app.stop().await.expect("clean shutdown");
    app.db.finish().await;
}

/// A page test's scratch folder: emptied when made, removed when dropped.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    /// `dialcrm-NAME-PID` in the temporary folder.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dialcrm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `body` on the app for at most `limit`, stops the app either way,
/// then fails the test, naming `what`, if the body failed or ran out of time.
pub async fn run_then_stop(
    t: TestApp,
    what: &str,
    limit: std::time::Duration,
    body: impl AsyncFnOnce(&TestApp) -> anyhow::Result<()>,
) {
    let outcome = tokio::time::timeout(limit, body(&t)).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{what}: {e:?}"),
        Err(_) => panic!("{what} took longer than {} s", limit.as_secs()),
    }
}

/// Starts the service on a free port over a fresh, migrated database.
pub async fn spawn_app(backend: TestBackend, demo: bool) -> Option<TestApp> {
    spawn_app_with(backend, demo, Vec::new()).await
}

/// Starts the service as [`spawn_app`] does, dialling through `trunks`.
pub async fn spawn_app_with(
    backend: TestBackend,
    demo: bool,
    trunks: Vec<sip_gateway::gateway::TrunkConfig>,
) -> Option<TestApp> {
    spawn_app_tuned(backend, demo, trunks, None, |_| {}).await
}

/// Starts the service as [`spawn_app_with`] does, over HTTPS when `tls`
/// is given, with `tune` applied to its settings.
pub async fn spawn_app_tuned(
    backend: TestBackend,
    demo: bool,
    trunks: Vec<sip_gateway::gateway::TrunkConfig>,
    tls: Option<TestTls>,
    tune: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let clock = Arc::new(SetClock::new(
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
            .single()
            .expect("valid time"),
    ));
    let mut settings = Settings {
        database_url: dialcrm::settings::Secret::new(db.url.clone()),
        http_addr: "127.0.0.1:0".parse().expect("valid address"),
        demo,
        trunks,
        recordings_dir: db.dir().map_or_else(
            || std::env::temp_dir().join(format!("dialcrm-recordings-{}", std::process::id())),
            |d| d.join("recordings"),
        ),
        gateway: Some(sip_gateway::gateway::GatewayConfig {
            t1: std::time::Duration::from_millis(100),
            ..sip_gateway::gateway::GatewayConfig::loopback()
        }),
        ..Settings::default()
    };
    tune(&mut settings);
    let app = App::start_with_clock(&settings, clock.clone())
        .await
        .expect("the service starts");
    let base = base_url(&app, tls.as_ref());
    Some(TestApp {
        app,
        db,
        clock,
        base,
        settings,
        tls,
    })
}

fn base_url(app: &App, tls: Option<&TestTls>) -> String {
    match tls {
        Some(t) => format!("https://{}:{}", t.host, app.http_addr.port()),
        None => app.base_url(),
    }
}

impl TestApp {
    /// Stops the service and starts it again on the same database and
    /// clock, as an operator's restart would.
    pub async fn restart(mut self) -> TestApp {
        self.app.stop().await.expect("clean shutdown");
        self.app = App::start_with_clock(&self.settings, self.clock.clone())
            .await
            .expect("the service starts again");
        self.base = base_url(&self.app, self.tls.as_ref());
        self
    }

    /// Starts another node of the service, named `node`, on the same database.
    pub async fn another_node(&self, node: &str) -> App {
        let settings = Settings {
            node_id: node.into(),
            ..self.settings.clone()
        };
        App::start_with_clock(&settings, self.clock.clone())
            .await
            .expect("the second node starts")
    }

    /// Returns the full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an account directly in the store.
    pub async fn account(&self, name: &str, seats: i64) -> Account {
        self.db
            .store
            .create_account(name, seats, self.clock.now_utc())
            .await
            .expect("account")
    }

    /// Creates a user with a known password directly in the store.
    pub async fn user(&self, account: &Account, username: &str, role: Role) -> String {
        let password = format!("Pw-{username}-1234");
        let hash = crm::password::hash(&password).expect("hash");
        self.db
            .store
            .create_user(account.id, username, &hash, role, self.clock.now_utc())
            .await
            .expect("user");
        password
    }

    /// Logs in with a fresh cookie-keeping client and returns it.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Client {
        let client = self.client();
        let r = self.try_login(&client, username, password).await;
        assert_eq!(r.status(), 200, "login of {username} failed");
        client
    }

    /// Posts a login and returns the raw response.
    pub async fn try_login(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/api/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request sent")
    }

    /// Returns the status of a GET with the client's session.
    /// The `/metrics` page, as text (it needs no session).
    pub async fn metrics_text(&self) -> String {
        self.client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text")
    }

    pub async fn get_status(&self, client: &reqwest::Client, path: &str) -> u16 {
        client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
            .status()
            .as_u16()
    }
}

/// Returns a client that keeps cookies and does not follow redirects.
pub fn client() -> reqwest::Client {
    client_builder().build().expect("client builds")
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
}

impl TestApp {
    /// Returns a client for this service: over HTTPS, one that trusts the
    /// test authority and reaches the host name at the loopback address.
    pub fn client(&self) -> reqwest::Client {
        let Some(tls) = &self.tls else {
            return client();
        };
        client_builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(tls.authority_pem.as_bytes())
                    .expect("the test authority"),
            )
            .resolve(&tls.host, self.app.http_addr)
            .https_only(true)
            .build()
            .expect("client builds")
    }
}

/// Reads the `now` of a manual clock as UTC.
pub trait NowUtc {
    fn now_utc(&self) -> chrono::DateTime<Utc>;
}

impl NowUtc for SetClock {
    fn now_utc(&self) -> chrono::DateTime<Utc> {
        dashboard::Clock::now(self)
    }
}

impl TestApp {
    /// Logs in and returns the session cookie as a `name=value` pair.
    pub async fn session_cookie(&self, username: &str, password: &str) -> String {
        let r = self.try_login(&self.client(), username, password).await;
        assert_eq!(r.status(), 200, "login of {username} failed");
        session_of(&r)
    }
}

/// The session cookie a login response set, as a `name=value` pair.
pub fn session_of(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// A websocket to the service over plain TCP.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame of a websocket, as JSON; fails the test when none
/// comes within 10 s.
pub async fn next_json(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("stream open")
            .expect("frame ok");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            return serde_json::from_str(&text).expect("JSON frame");
        }
    }
}

impl TestApp {
    /// Creates a campaign dialling `list` in `mode` (through `trunk`, or the
    /// default trunk), assigns every agent of the account to it, and has the
    /// supervisor start it over HTTP.
    pub async fn start_campaign(
        &self,
        account: &Account,
        list: crm::model::ListId,
        name: &str,
        mode: crm::store::campaign_settings::DialMode,
        trunk: Option<&str>,
        supervisor: (&str, &str),
    ) -> crm::model::Campaign {
        self.start_campaign_with(account, list, name, supervisor, |s| {
            s.mode = mode;
            if let Some(trunk) = trunk {
                s.trunk = trunk.into();
            }
        })
        .await
    }

    /// Starts a campaign as [`TestApp::start_campaign`] does, with `tune`
    /// applied to its default settings.
    pub async fn start_campaign_with(
        &self,
        account: &Account,
        list: crm::model::ListId,
        name: &str,
        supervisor: (&str, &str),
        tune: impl FnOnce(&mut crm::store::campaign_settings::CampaignSettings),
    ) -> crm::model::Campaign {
        let s = &self.db.store;
        let now = Utc::now();
        let campaign = s
            .create_campaign(account.id, name, "+441632960000", now)
            .await
            .expect("campaign");
        s.attach_list(account.id, campaign.id, list, 0)
            .await
            .expect("attach");
        let mut settings =
            crm::store::campaign_settings::CampaignSettings::defaults("+441632960000");
        tune(&mut settings);
        s.update_campaign_settings(account.id, campaign.id, &settings, now)
            .await
            .expect("settings");
        let agents: Vec<_> = s
            .users(account.id)
            .await
            .expect("users")
            .into_iter()
            .filter(|u| u.role == Role::Agent)
            .map(|u| u.id)
            .collect();
        s.assign_agents(account.id, campaign.id, &agents)
            .await
            .expect("agents assigned");
        let sup = self.login(supervisor.0, supervisor.1).await;
        let started = sup
            .post(self.url(&format!("/api/campaigns/{}/start", campaign.id)))
            .send()
            .await
            .expect("sent");
        assert_eq!(started.status(), 200, "the supervisor starts the campaign");
        campaign
    }
}
