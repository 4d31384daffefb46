//! HTTPS as agents on other computers meet it: a certificate for the name
//! they use, `Secure` cookies, HSTS, the supervisors' stream over TLS, and
//! a plain-HTTP port that only redirects. The binary refuses bad
//! certificate files before it touches anything, and makes, keeps and
//! explains a self-signed one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crm::model::Role;
use crm::testing::TestBackend;
use futures_util::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_tuned, TestApp, TestTls};

/// The name agents' browsers use in these tests; every client maps it to
/// the loopback address, so nothing leaves the machine.
pub(crate) const AGENTS_HOST: &str = "agents.dialcrm.test";

/// A test certificate authority and a server certificate it signed.
pub(crate) struct TestCerts {
    /// What clients need: the name and the authority.
    pub tls: TestTls,
    /// The server's chain and key files.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Base64 of the SHA-256 of the server key's SubjectPublicKeyInfo, as
    /// Chromium's `--ignore-certificate-errors-spki-list` takes it.
    pub spki_sha256: String,
}

impl TestCerts {
    /// Makes an authority and a certificate for `names` in `dir`.
    pub(crate) fn new(dir: &Path, names: &[&str]) -> TestCerts {
        use base64::Engine;
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PublicKeyData};
        use sha2::Digest;
        std::fs::create_dir_all(dir).expect("cert dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("authority");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("leaf");
        let cert = dir.join("server.pem");
        let key_file = dir.join("server.key");
        std::fs::write(&cert, format!("{}{}", leaf.pem(), ca_cert.pem())).expect("write");
        std::fs::write(&key_file, key.serialize_pem()).expect("write");
        let spki = sha2::Sha256::digest(key.subject_public_key_info());
        TestCerts {
            tls: TestTls {
                host: AGENTS_HOST.into(),
                authority_pem: ca_cert.pem(),
            },
            cert,
            key: key_file,
            spki_sha256: base64::engine::general_purpose::STANDARD.encode(spki),
        }
    }
}

/// Starts the service over HTTPS with a test certificate for [`AGENTS_HOST`].
pub(crate) async fn spawn_https(
    backend: TestBackend,
    trunks: Vec<sip_gateway::gateway::TrunkConfig>,
    dir: &Path,
    redirect: bool,
) -> Option<(TestApp, TestCerts)> {
    let certs = TestCerts::new(dir, &[AGENTS_HOST]);
    let (cert, key) = (certs.cert.clone(), certs.key.clone());
    let t = spawn_app_tuned(backend, false, trunks, Some(certs.tls.clone()), |s| {
        s.tls.cert = Some(cert);
        s.tls.key = Some(key);
        s.tls.names = vec![AGENTS_HOST.into()];
        if redirect {
            s.tls.redirect_addr = Some("127.0.0.1:0".parse().expect("addr"));
        }
    })
    .await?;
    Some((t, certs))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcrm-https-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[tokio::test]
async fn https_sets_secure_cookies_and_hsts_and_carries_the_stream() {
    let dir = scratch("serve");
    let Some((t, certs)) = spawn_https(TestBackend::Sqlite, Vec::new(), &dir, true).await else {
        return;
    };
    assert!(
        t.base.starts_with("https://agents.dialcrm.test:"),
        "{}",
        t.base
    );
    let acme = t.account("acme", 5).await;
    let password = t.user(&acme, "sue", Role::Supervisor).await;

    let r = t.try_login(&t.client(), "sue", &password).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.contains("; Secure"),
        "the session cookie is Secure: {cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let hsts = r.headers()["strict-transport-security"]
        .to_str()
        .expect("ascii");
    assert_eq!(hsts, "max-age=15552000");
    let session = cookie.split(';').next().expect("pair").to_owned();

    // The HTTPS port speaks nothing but TLS.
    let plain = crate::helpers::client()
        .get(format!("http://{}/healthz", t.app.http_addr))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP on the HTTPS port is not served"
    );

    // The redirect port sends every path to HTTPS, and serves nothing itself.
    let redirect = t.app.redirect_addr.expect("a redirect port");
    let r = crate::helpers::client()
        .get(format!("http://{redirect}/agent?tab=calls"))
        .header("host", format!("{AGENTS_HOST}:{}", redirect.port()))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!(
            "https://{AGENTS_HOST}:{}/agent?tab=calls",
            t.app.http_addr.port()
        )
        .as_str()
    );
    let r = crate::helpers::client()
        .get(format!("http://{redirect}/api/login"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 308, "not even the API is served in clear");

    // The supervisors' stream over TLS: the snapshot arrives.
    let mut ws = wss(&t, &certs, &session, "/api/stream").await;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a frame within 10 s")
        .expect("open")
        .expect("frame");
    let Message::Text(text) = first else {
        panic!("a text frame, got {first:?}");
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["type"], "snapshot", "{v}");

    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Opens a websocket over TLS to `path`, trusting the test authority.
async fn wss(
    t: &TestApp,
    certs: &TestCerts,
    session: &str,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(certs.tls.authority_pem.as_bytes()).expect("PEM"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(t.app.http_addr).await.expect("connects");
    let name = ServerName::try_from(AGENTS_HOST.to_owned()).expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the certificate is trusted for the name");
    let origin = format!("https://{AGENTS_HOST}:{}", t.app.http_addr.port());
    let mut req = format!("wss://{AGENTS_HOST}:{}{path}", t.app.http_addr.port())
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("cookie", session.parse().expect("header"));
    req.headers_mut()
        .insert("origin", origin.parse().expect("header"));
    tokio_tungstenite::client_async(req, tls)
        .await
        .expect("the websocket opens over TLS")
        .0
}

const BIN: &str = env!("CARGO_BIN_EXE_dialcrm");

fn dialcrm(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.current_dir(dir)
        .env_remove("DIALCRM_DATABASE_URL")
        .env_remove("DIALCRM_HTTP_ADDR")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    c
}

#[tokio::test]
async fn serve_refuses_bad_certificates_naming_the_file_and_touching_nothing() {
    let dir = scratch("refuse");
    let good = TestCerts::new(&dir.join("good"), &[AGENTS_HOST]);
    let other = TestCerts::new(&dir.join("other"), &[AGENTS_HOST]);
    let cert = good.cert.display().to_string();
    let key = good.key.display().to_string();
    let other_key = other.key.display().to_string();
    let missing = dir.join("missing.pem").display().to_string();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["--tls-cert", &missing, "--tls-key", &key],
            "missing.pem",
            "no such file",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &other_key],
            "does not match",
            "other/server.key",
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-name",
                "dialler.example.org",
            ],
            "not for dialler.example.org",
            "good/server.pem",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &key, "--tls-self-signed"],
            "choose one",
            "--tls-self-signed",
        ),
    ];
    for (flags, says, names) in cases {
        let out = dialcrm(&dir)
            .args(["serve", "--http-addr", "127.0.0.1:0"])
            .args(&flags)
            .output()
            .await
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} must not start");
        assert!(
            stderr.contains(says) && stderr.contains(names),
            "{flags:?}: {stderr}"
        );
    }
    assert!(
        !dir.join("dialcrm.db").exists(),
        "a refused start creates no database"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_self_signed_start_prints_its_authority_and_keeps_it_across_restarts() {
    let dir = scratch("selfsigned");
    let first = start_self_signed(&dir).await;
    assert!(
        first.new_authority,
        "the first start says the authority is new"
    );
    let authority = std::fs::read_to_string(dir.join("dialcrm-tls/ca.pem")).expect("ca.pem");
    let der = CertificateDer::from_pem_slice(authority.as_bytes()).expect("PEM");
    let fingerprint = {
        use sha2::Digest;
        sha2::Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    assert_eq!(
        first.fingerprint, fingerprint,
        "the printed fingerprint is the authority's"
    );
    // A browser that trusts the authority reaches the service by its name.
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(authority.as_bytes()).expect("PEM"))
        .resolve(AGENTS_HOST, first.addr)
        .build()
        .expect("client");
    let url = format!("https://{AGENTS_HOST}:{}/healthz", first.addr.port());
    let r = client.get(&url).send().await.expect("trusted over HTTPS");
    assert_eq!(r.status(), 200);
    drop(first.child);

    let second = start_self_signed(&dir).await;
    assert!(!second.new_authority, "a restart keeps the authority");
    assert_eq!(second.fingerprint, fingerprint);
    drop(second.child);
    let _ = std::fs::remove_dir_all(&dir);
}

struct SelfSignedStart {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
    fingerprint: String,
    new_authority: bool,
}

async fn start_self_signed(dir: &Path) -> SelfSignedStart {
    let mut child = dialcrm(dir)
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--no-demo",
            "--tls-self-signed",
            "--tls-name",
            AGENTS_HOST,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut addr, mut fingerprint, mut new_authority) = (None, None, false);
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(url) = line.strip_prefix("dialcrm is listening on https://") {
                addr = Some(url.parse().expect("address"));
            }
            if let Some((_, fp)) = line.split_once("(SHA-256 ") {
                fingerprint = Some(fp.trim_end_matches(')').to_owned());
            }
            new_authority |= line.contains("this authority is new");
            if line.contains("log in:") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("serve prints its URL");
    SelfSignedStart {
        child,
        addr: addr.expect("an https URL"),
        fingerprint: fingerprint.expect("a fingerprint"),
        new_authority,
    }
}
