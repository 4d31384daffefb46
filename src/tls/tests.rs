//! The certificate checks, as an operator meets them: each bad input is
//! refused with the file and the problem named.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use rcgen::{CertificateParams, KeyPair};

use super::cert::{self, Facts};
use super::self_signed;
use super::{prepare, AcmeSettings, TlsSettings};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dialcrm-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `names`, valid over the given years.
fn pair(names: &[&str], years: (i32, i32)) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params");
    p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let cert = p.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

#[test]
fn a_good_pair_loads_with_its_names_and_dates() {
    let s = Scratch::new("good");
    let (c, k) = pair(&["agents.example.com", "10.0.0.5"], (2026, 2027));
    let (c, k) = (s.file("c.pem", &c), s.file("k.pem", &k));
    let loaded =
        cert::load(&c, &k, &names(&["agents.example.com", "10.0.0.5"]), now()).expect("loads");
    assert_eq!(loaded.facts.names, ["agents.example.com", "10.0.0.5"]);
    assert_eq!(
        loaded.facts.not_after.format("%Y-%m-%d").to_string(),
        "2027-01-01"
    );
}

#[test]
fn each_bad_input_names_the_file_and_the_problem() {
    let s = Scratch::new("bad");
    let (c1, k1) = pair(&["agents.example.com"], (2026, 2027));
    let (_, k2) = pair(&["agents.example.com"], (2026, 2027));
    let (old, old_key) = pair(&["agents.example.com"], (2020, 2021));
    let cert = s.file("cert.pem", &c1);
    let key = s.file("key.pem", &k1);
    let other_key = s.file("other.key", &k2);
    let expired = s.file("expired.pem", &old);
    let expired_key = s.file("expired.key", &old_key);
    let junk = s.file("junk.pem", "this is not PEM\n");
    let missing = s.0.join("missing.pem");
    let load =
        |c: &Path, k: &Path, n: &[&str]| cert::load(c, k, &names(n), now()).expect_err("refused");

    let e = load(&missing, &key, &[]);
    assert!(
        e.contains("missing.pem") && e.contains("no such file"),
        "{e}"
    );
    let e = load(&junk, &key, &[]);
    assert!(
        e.contains("junk.pem") && e.contains("holds no certificate"),
        "{e}"
    );
    let e = load(&cert, &junk, &[]);
    assert!(
        e.contains("junk.pem") && e.contains("holds no private key"),
        "{e}"
    );
    // A key file holding only a certificate.
    let e = load(&cert, &cert, &[]);
    assert!(
        e.contains("cert.pem") && e.contains("no private key"),
        "{e}"
    );
    let e = load(&cert, &other_key, &[]);
    assert!(
        e.contains("other.key") && e.contains("does not match") && e.contains("cert.pem"),
        "{e}"
    );
    let e = load(&expired, &expired_key, &[]);
    assert!(
        e.contains("expired.pem") && e.contains("expired on 2021-01-01"),
        "{e}"
    );
    let e = load(&cert, &key, &["agents.example.com", "dialler.example.org"]);
    assert!(
        e.contains("cert.pem")
            && e.contains("is for agents.example.com")
            && e.contains("not for dialler.example.org"),
        "{e}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Root reads anything; the check is only meaningful for others.
        let locked = s.file("locked.key", &k1);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        if std::fs::read(&locked).is_err() {
            let e = load(&cert, &locked, &[]);
            assert!(
                e.contains("locked.key") && e.contains("permission denied"),
                "{e}"
            );
        }
    }
}

#[test]
fn names_match_as_browsers_match_them() {
    let f = Facts {
        names: names(&["*.example.com", "example.com", "10.0.0.5", "2001:db8::1"]),
        not_before: now(),
        not_after: now(),
    };
    assert!(f.covers("agents.example.com"));
    assert!(f.covers("AGENTS.Example.com."));
    assert!(f.covers("example.com"));
    assert!(!f.covers("a.b.example.com"), "a wildcard is one label");
    assert!(!f.covers("badexample.com"));
    assert!(f.covers("10.0.0.5"));
    assert!(f.covers("[2001:db8::1]"));
    assert!(!f.covers("10.0.0.6"));
    assert!(!f.covers("*.example.com.evil"));
}

#[test]
fn one_source_at_a_time_and_no_half_pairs() {
    let mut t = TlsSettings::default();
    assert!(t.source().expect("off").is_none());
    t.cert = Some("c.pem".into());
    assert!(t.source().expect_err("half").contains("--tls-key"));
    t.key = Some("k.pem".into());
    assert!(t.source().expect("files").is_some());
    t.self_signed = true;
    assert!(t.source().expect_err("two").contains("choose one"));
    let mut t = TlsSettings {
        acme: Some(AcmeSettings::new(Vec::new(), "cache".into())),
        ..TlsSettings::default()
    };
    assert!(t.source().expect_err("no domain").contains("--acme-domain"));
    t.acme = None;
    t.redirect_addr = Some("127.0.0.1:80".parse().expect("addr"));
    assert!(t
        .source()
        .expect_err("redirect without TLS")
        .contains("TLS is off"));
}

#[test]
fn the_local_authority_is_kept_and_the_server_certificate_follows_the_names() {
    let s = Scratch::new("selfsigned");
    let first =
        self_signed::ensure(&s.0, &names(&["dialler.lan", "10.1.2.3"]), now()).expect("made");
    assert!(first.new_authority && first.issued);
    assert!(first.loaded.facts.covers("dialler.lan") && first.loaded.facts.covers("10.1.2.3"));
    // The chain carries the authority, which signed the leaf.
    assert_eq!(first.loaded.key.cert.len(), 2);

    let again =
        self_signed::ensure(&s.0, &names(&["dialler.lan", "10.1.2.3"]), now()).expect("kept");
    assert!(
        !again.new_authority && !again.issued,
        "nothing new on a second start"
    );
    assert_eq!(again.loaded.key.cert[0], first.loaded.key.cert[0]);

    let more =
        self_signed::ensure(&s.0, &names(&["dialler.lan", "agents.lan"]), now()).expect("reissued");
    assert!(!more.new_authority, "the authority agents trust stays");
    assert!(more.issued);
    assert_eq!(more.authority_fingerprint, first.authority_fingerprint);
    assert!(more.loaded.facts.covers("agents.lan"));

    // Near its expiry, the server certificate is issued afresh.
    let late = now() + chrono::Days::new(380);
    let renewed = self_signed::ensure(&s.0, &names(&["dialler.lan"]), late).expect("renewed");
    assert!(renewed.issued && !renewed.new_authority);
    assert!(renewed.loaded.facts.not_after > more.loaded.facts.not_after);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(s.0.join(key))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{key} is readable by its owner only");
        }
    }
}

#[test]
fn prepare_refuses_bad_files_before_anything_starts() {
    let s = Scratch::new("prepare");
    let t = TlsSettings {
        cert: Some(s.0.join("nope.pem")),
        key: Some(s.0.join("nope.key")),
        ..TlsSettings::default()
    };
    let e = prepare(&t, &s.0, now()).err().expect("refused");
    assert!(e.contains("nope.pem"), "{e}");
    let t = TlsSettings {
        self_signed: true,
        names: names(&["agents.dialcrm.test"]),
        ..TlsSettings::default()
    };
    let p = prepare(&t, &s.0, now()).expect("prepared").expect("on");
    assert!(p.store.is_set());
    assert!(
        p.notes.iter().any(|n| n.contains("SHA-256")),
        "{:?}",
        p.notes
    );
    assert!(s.0.join("dialcrm-tls").join("ca.pem").exists());
}

#[test]
fn machine_names_put_the_given_ones_first_without_repeats() {
    let n = self_signed::machine_names(&names(&["Agents.Example", "localhost"]));
    assert_eq!(n[0], "agents.example");
    assert_eq!(n.iter().filter(|x| *x == "localhost").count(), 1);
    assert!(n.iter().any(|x| x == "127.0.0.1"));
}

#[tokio::test]
async fn a_pair_renewed_in_place_is_served_and_a_broken_one_is_not() {
    let s = Scratch::new("reload");
    let (c1, k1) = pair(&["agents.example.com"], (2026, 2027));
    let (cert, key) = (s.file("c.pem", &c1), s.file("k.pem", &k1));
    let t = TlsSettings {
        cert: Some(cert.clone()),
        key: Some(key.clone()),
        names: names(&["agents.example.com"]),
        ..TlsSettings::default()
    };
    let p = prepare(&t, &s.0, now()).expect("prepared").expect("on");
    let first = p.store.current().expect("served").cert[0].clone();
    let (tx, mut alerts) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(p.files.expect("watched").keep_fresh(
        p.store.clone(),
        std::time::Duration::from_millis(20),
        move |m| {
            let _ = tx.send(m);
        },
    ));
    // Renewed in place: the new pair is served.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (c2, k2) = pair(&["agents.example.com"], (2026, 2028));
    std::fs::write(&key, &k2).expect("write");
    std::fs::write(&cert, &c2).expect("write");
    let renewed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let now = p.store.current().expect("served").cert[0].clone();
            if now != first {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the renewed certificate is served");
    assert_eq!(
        Facts::of(renewed.as_ref())
            .expect("facts")
            .not_after
            .format("%Y")
            .to_string(),
        "2028"
    );
    while alerts.try_recv().is_ok() {}
    // A key that does not match: the renewed certificate stays, an alert says why.
    let (_, k3) = pair(&["agents.example.com"], (2026, 2028));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    std::fs::write(&key, &k3).expect("write");
    let said = tokio::time::timeout(std::time::Duration::from_secs(5), alerts.recv())
        .await
        .expect("an alert")
        .expect("message");
    assert!(
        said.contains("does not match") && said.contains("stays in service"),
        "{said}"
    );
    assert_eq!(p.store.current().expect("served").cert[0], renewed);
    watcher.abort();
}
