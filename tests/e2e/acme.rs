//! A certificate from an ACME authority, end to end against pebble (an
//! RFC 8555 test server) on loopback: the service orders a certificate
//! for `agents.dialcrm.test`, pebble checks it holds the name by
//! TLS-ALPN-01 on the service's own HTTPS port (pebble's DNS answers
//! 127.0.0.1 for every name), and the service serves what was issued.
//! When the authority goes away, renewal fails: the last certificate stays
//! in service, supervisors get an alert, and a restart serves the cached
//! certificate without waiting on the authority.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crm::events::Event;
use crm::model::Role;
use crm::testing::TestBackend;
use dialcrm::tls::AcmeSettings;
use tokio::process::{Child, Command};

use crate::helpers::{spawn_app_tuned, TestApp};
use crate::https::{TestCerts, AGENTS_HOST};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn pebble_or_skip() -> bool {
    let found = ["pebble", "pebble-challtestsrv"].iter().all(|bin| {
        std::process::Command::new(bin)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "pebble must be installed in CI; scripts/install-deps installs it"
        );
        eprintln!("!!! SKIPPING the ACME test: pebble is not installed (scripts/install-deps) !!!");
    }
    found
}

/// pebble and its DNS, on free loopback ports.
struct Pebble {
    pebble: Child,
    _dns: Child,
    directory: String,
    management: SocketAddr,
    /// The authority pebble's own HTTPS is signed by.
    https_root: PathBuf,
}

impl Pebble {
    /// Starts pebble to validate names at `tls_port` on 127.0.0.1.
    async fn start(dir: &Path, tls_port: u16) -> Pebble {
        let (api, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let own = TestCerts::new(&dir.join("pebble-https"), &["127.0.0.1", "localhost"]);
        let https_root = dir.join("pebble-https/root.pem");
        std::fs::write(&https_root, &own.tls.authority_pem).expect("write");
        let config = dir.join("pebble.json");
        let json = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{api}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": own.cert,
            "privateKey": own.key,
            "httpPort": free_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(&config, json.to_string()).expect("write");
        let dns_addr = format!("127.0.0.1:{dns}");
        let dns_child = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &dns_addr,
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble-challtestsrv starts");
        let pebble = Command::new("pebble")
            .args([
                "-config",
                &config.display().to_string(),
                "-dnsserver",
                &dns_addr,
            ])
            // No random sleeps before validating, no nonces refused at random.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", api))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Pebble {
            pebble,
            _dns: dns_child,
            directory: format!("https://127.0.0.1:{api}/dir"),
            management: SocketAddr::from(([127, 0, 0, 1], management)),
            https_root,
        }
    }

    /// The root pebble issues certificates under, as PEM.
    async fn issuing_root(&self) -> String {
        let pem = std::fs::read(&self.https_root).expect("root");
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
            .build()
            .expect("client");
        client
            .get(format!("https://{}/roots/0", self.management))
            .send()
            .await
            .expect("pebble's management answers")
            .text()
            .await
            .expect("PEM")
    }
}

/// A client that trusts only pebble's issuing root and reaches the
/// service by its name.
fn trusting(root: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).expect("PEM"))
        .resolve(AGENTS_HOST, addr)
        .build()
        .expect("client")
}

async fn healthz(client: &reqwest::Client, addr: SocketAddr) -> u16 {
    client
        .get(format!("https://{AGENTS_HOST}:{}/healthz", addr.port()))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| panic!("HTTPS with the issued certificate: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_pebble_is_served_and_a_failed_renewal_keeps_it() {
    if !pebble_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("dialcrm-acme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let port = free_port();
    let mut pebble = Pebble::start(&dir, port).await;
    let mut acme = AcmeSettings::new(vec![AGENTS_HOST.into()], dir.join("acme"));
    acme.directory = pebble.directory.clone();
    acme.ca_root = Some(pebble.https_root.clone());
    acme.email = Some("ops@dialcrm.test".into());
    // Every look at the certificate finds it due, so renewal is tried
    // every two seconds.
    acme.renew_before = Duration::from_secs(100 * 365 * 86_400);
    acme.check_every = Duration::from_secs(2);
    let Some(t) = spawn_app_tuned(TestBackend::Sqlite, false, Vec::new(), None, |s| {
        s.http_addr = SocketAddr::from(([127, 0, 0, 1], port));
        s.tls.acme = Some(acme);
    })
    .await
    else {
        return;
    };
    let t = run(t, &mut pebble, &dir).await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(t: TestApp, pebble: &mut Pebble, dir: &Path) -> TestApp {
    assert!(t.app.https);
    let root = pebble.issuing_root().await;
    let client = trusting(&root, t.app.http_addr);
    assert_eq!(
        healthz(&client, t.app.http_addr).await,
        200,
        "served with pebble's certificate"
    );
    for cached in ["cert.pem", "key.pem", "account.json"] {
        assert!(dir.join("acme").join(cached).exists(), "{cached} is cached");
    }

    // The authority goes away: renewal fails, an alert is raised, and the
    // certificate in service stays.
    let acme_account = t.account("acme", 5).await;
    t.user(&acme_account, "sue", Role::Supervisor).await;
    let mut events = t.app.bus.subscribe();
    let _ = pebble.pebble.kill().await;
    let alert = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(event) = events.recv().await {
                if let Event::Alert {
                    alert,
                    message,
                    account,
                    ..
                } = &*event
                {
                    if alert == "tls.renewal_failed" {
                        return (message.clone(), *account);
                    }
                }
            }
        }
    })
    .await
    .expect("an alert within 30 s of the authority going away");
    assert_eq!(alert.1, acme_account.id);
    assert!(
        alert.0.contains(AGENTS_HOST) && alert.0.contains("the current one expires on"),
        "{}",
        alert.0
    );
    let again = trusting(&root, t.app.http_addr);
    assert_eq!(
        healthz(&again, t.app.http_addr).await,
        200,
        "the last certificate stays in service"
    );

    // A restart while the authority is away serves the cached certificate
    // at once, renewal carrying on in the background.
    let t = t.restart().await;
    let after = trusting(&root, t.app.http_addr);
    assert_eq!(
        healthz(&after, t.app.http_addr).await,
        200,
        "the cached certificate after a restart"
    );
    t
}
