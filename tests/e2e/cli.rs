//! The `dialcrm` binary as an operator runs it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::helpers::client;

const BIN: &str = env!("CARGO_BIN_EXE_dialcrm");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcrm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn dialcrm(dir: &PathBuf) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("DIALCRM_DATABASE_URL")
        .env_remove("DIALCRM_HTTP_ADDR")
        .env_remove("DIALCRM_PASSWORD")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    c
}

#[tokio::test]
async fn serve_starts_with_the_demo_and_its_printed_logins_work() {
    let dir = temp_dir("serve");
    let mut child = dialcrm(&dir)
        .args(["serve", "--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut base = None;
    let mut logins = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            if let Some(url) = line.strip_prefix("dialcrm is listening on ") {
                base = Some(url.to_owned());
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() == 3 && ["admin", "supervisor", "agent"].contains(&words[2]) {
                logins.push((words[0].to_owned(), words[1].to_owned()));
            }
            if logins.len() == 4 {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("serve prints its URL and the demo logins");
    let base = base.expect("the URL was printed");
    assert!(dir.join("dialcrm.db").exists(), "the default SQLite file");
    for (username, password) in &logins {
        let c = client();
        let r = c
            .post(format!("{base}/api/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200, "demo login {username}");
    }
    let health = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops on SIGTERM")
        .expect("wait");
    assert!(status.success(), "clean shutdown exits 0: {status:?}");
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
    }
    assert!(rest.contains("dialcrm stopped"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `dialcrm simulate` runs the pacer the service runs, with the operator's
/// figures: its JSON is the library's simulation of the same parameters,
/// the same seed gives the same run, and bad parameters get a clear error.
#[tokio::test]
async fn simulate_prints_what_the_pacer_would_do_and_refuses_bad_parameters() {
    let dir = temp_dir("simulate");
    let args = [
        "simulate",
        "--agents",
        "10",
        "--answer-rate",
        "0.3",
        "--machine-rate",
        "0.05",
        "--busy-rate",
        "0.1",
        "--talk-mean",
        "60",
        "--wrap",
        "5",
        "--ring-timeout",
        "25",
        "--hours",
        "2",
        "--seed",
        "7",
        "--mode",
        "predictive",
        "--json",
    ];
    let run = || async {
        let out = dialcrm(&dir).args(args).output().await.expect("runs");
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("one JSON object")
    };
    let first = run().await;
    assert_eq!(first, run().await, "the same seed gives the same run");
    let expected = dialer_core::simulation::simulate(&dialer_core::simulation::SimConfig {
        mode: dialer_core::pacer::Mode::Predictive,
        agents: 10,
        answer_rate: 0.3,
        machine_rate: 0.05,
        busy_rate: 0.1,
        talk_mean: Duration::from_secs(60),
        wrap: Duration::from_secs(5),
        ring_timeout: Duration::from_secs(25),
        duration: Duration::from_secs(2 * 3600),
        seed: 7,
    });
    assert_eq!(first["utilisation"], expected.utilisation);
    assert_eq!(first["abandon_rate"], expected.abandon_rate);
    assert_eq!(first["live_answers"], expected.live);
    assert_eq!(first["dials"], expected.dials);
    assert_eq!(
        first["talk_minutes_per_agent_hour"],
        expected.talk_minutes_per_agent_hour
    );
    assert!(expected.dials > 0 && expected.live > 0, "{expected:?}");
    // The human form says the same.
    let out = dialcrm(&dir)
        .args(&args[..args.len() - 1])
        .output()
        .await
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("utilisation") && text.contains(&expected.dials.to_string()),
        "{text}"
    );

    for (bad, says) in [
        (
            vec!["--answer-rate", "1.5"],
            "--answer-rate must be a share between 0 and 1",
        ),
        (
            vec!["--answer-rate", "0.6", "--busy-rate", "0.6"],
            "must not exceed 1",
        ),
        (vec!["--agents", "0"], "--agents must be between 1 and 1000"),
        (vec!["--hours=-1"], "--hours must be above 0"),
        (
            vec!["--mode", "preview"],
            "agents pace preview calls themselves",
        ),
        (vec!["--talk-mean", "abc"], "invalid value 'abc'"),
    ] {
        let out = dialcrm(&dir)
            .arg("simulate")
            .args(&bad)
            .output()
            .await
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} must fail");
        assert!(stderr.contains(says), "{bad:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `dialcrm simulate --campaign` takes the rates and the talk time from
/// the campaign's own calls, on both backends, and refuses a campaign with
/// too little history.
#[tokio::test]
async fn simulate_learns_a_campaign_s_rates_from_its_calls_on_sqlite() {
    simulate_from_history(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn simulate_learns_a_campaign_s_rates_from_its_calls_on_postgres() {
    simulate_from_history(crm::testing::TestBackend::Postgres).await;
}

async fn simulate_from_history(backend: crm::testing::TestBackend) {
    use chrono::Utc;
    use crm::model::ContactFields;
    let Some(db) = crm::testing::TestDb::new(backend).await else {
        return;
    };
    let dir = temp_dir(&format!("simulate-history-{backend:?}"));
    let s = &db.store;
    let now = Utc::now();
    let acme = s.create_account("acme", 1, now).await.expect("account");
    let spring = s
        .create_campaign(acme.id, "Spring", "+441632960000", now)
        .await
        .expect("campaign");
    // A campaign without calls.
    s.create_campaign(acme.id, "Quiet", "+441632960000", now)
        .await
        .expect("campaign");
    let contact = s
        .create_contact(
            acme.id,
            &ContactFields {
                first_name: "Ada".into(),
                phone_e164: "+447400900701".into(),
                phone_raw: "+447400900701".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            now,
        )
        .await
        .expect("contact");
    seed_history(s, acme.id, spring.id, contact.id, now).await;
    let out = dialcrm(&dir)
        .args(["simulate", "--account", "acme", "--campaign", "Spring"])
        .args(["--agents", "5", "--hours", "1", "--seed", "3", "--json"])
        .args(["--database-url", &db.url])
        .output()
        .await
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "100 calls; answer rate 0.350, machine rate 0.100, busy rate 0.200, mean talk 60 s"
        ),
        "{stderr}"
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let expected = dialer_core::simulation::simulate(&dialer_core::simulation::SimConfig {
        mode: dialer_core::pacer::Mode::Predictive,
        agents: 5,
        answer_rate: 0.35,
        machine_rate: 0.1,
        busy_rate: 0.2,
        talk_mean: Duration::from_secs(60),
        wrap: Duration::from_secs(10),
        ring_timeout: Duration::from_secs(20),
        duration: Duration::from_secs(3600),
        seed: 3,
    });
    assert_eq!(got["dials"], expected.dials, "{got}");
    assert_eq!(got["utilisation"], expected.utilisation, "{got}");
    let out = dialcrm(&dir)
        .args(["simulate", "--account", "acme", "--campaign", "Quiet"])
        .args(["--database-url", &db.url])
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too few to go by"),
        "{out:?}"
    );
    db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_database_urls_exit_with_a_clear_message() {
    let dir = temp_dir("badurl");
    let cases = [
        (
            "mysql://root@127.0.0.1/x",
            "unsupported database URL scheme",
        ),
        (
            "postgres://postgres@127.0.0.1:1/nothing",
            "opening the database",
        ),
        ("sqlite:///no/such/folder/x.db", "opening the database"),
    ];
    for (url, expect) in cases {
        let out = dialcrm(&dir)
            .args(["serve", "--no-demo", "--http-addr", "127.0.0.1:0"])
            .args(["--database-url", url])
            .output()
            .await
            .expect("runs");
        assert!(!out.status.success(), "{url} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{url}: {stderr}");
        assert!(!stderr.contains("panicked"), "{url}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn accounts_and_users_are_managed_from_the_command_line() {
    let dir = temp_dir("users");
    let db = format!("sqlite://{}", dir.join("ops.db").display());
    let out = dialcrm(&dir)
        .args(["migrate", "--database-url", &db])
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dialcrm(&dir)
        .args([
            "account",
            "create",
            "acme",
            "--seats",
            "3",
            "--database-url",
            &db,
        ])
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 seats"));

    let add = |username: &'static str, role: &'static str, password: &'static str| {
        let mut c = dialcrm(&dir);
        c.args(["user", "add", "--account", "acme", "--username", username])
            .args(["--role", role, "--database-url", &db])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        async move {
            let mut child = c.spawn().expect("runs");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(format!("{password}\n").as_bytes())
                .await
                .expect("write");
            drop(stdin);
            child.wait_with_output().await.expect("output")
        }
    };
    let ok = add("carol", "supervisor", "Str0ng-enough").await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let weak = add("dave", "agent", "weak").await;
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("8 characters"));
    let bad_role = add("erin", "boss", "Str0ng-enough").await;
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("unknown role"));
    let dup = add("carol", "agent", "Str0ng-enough").await;
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));

    let out = dialcrm(&dir)
        .args(["user", "list", "--account", "acme", "--database-url", &db])
        .output()
        .await
        .expect("runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("carol") && listing.contains("supervisor"));
    assert!(!listing.contains("dave"));

    // The user just added logs in to a served instance over HTTP.
    let store = crm::Store::connect(&db).await.expect("open");
    let (user, hash) = store
        .credentials("carol")
        .await
        .expect("q")
        .expect("carol exists");
    assert!(crm::password::verify("Str0ng-enough", &hash));
    assert_eq!(user.role, crm::model::Role::Supervisor);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn campaigns_started_from_the_command_line_dial_on_a_running_service_sqlite() {
    campaign_cli(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn campaigns_started_from_the_command_line_dial_on_a_running_service_postgres() {
    campaign_cli(crm::testing::TestBackend::Postgres).await;
}

async fn campaign_cli(backend: crm::testing::TestBackend) {
    let Some(t) = crate::helpers::spawn_app(backend, false).await else {
        return;
    };
    let dir = temp_dir(&format!("campaign-{backend:?}"));
    let acme = t.account("acme", 5).await;
    let now = chrono::Utc::now();
    t.db.store
        .create_list(acme.id, "Leads", "GB", now)
        .await
        .expect("list");
    let cli = |args: &[&str]| {
        let mut c = dialcrm(&dir);
        c.args(args).args(["--database-url", &t.db.url]);
        async move { c.output().await.expect("runs") }
    };
    let out = cli(&[
        "campaign",
        "create",
        "--account",
        "acme",
        "--name",
        "Autumn",
        "--caller-id",
        "+441632960000",
        "--mode",
        "preview",
        "--list",
        "Leads",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = cli(&[
        "campaign",
        "create",
        "--account",
        "acme",
        "--name",
        "Bad",
        "--caller-id",
        "+441632960000",
        "--list",
        "Nope",
    ])
    .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no list named"));
    let campaign = t.db.store.campaigns(acme.id).await.expect("q")[0].clone();
    assert_eq!(campaign.name, "Autumn");
    assert!(!t.app.floor.is_running(campaign.id).await);

    let out = cli(&["campaign", "start", "--account", "acme", "--name", "Autumn"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The running service follows the database on its next reconcile.
    t.app.floor.reconcile().await.expect("reconcile");
    assert!(
        t.app.floor.is_running(campaign.id).await,
        "the service dials it"
    );
    let listing = cli(&["campaign", "list", "--account", "acme"]).await;
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        text.contains("Autumn") && text.contains("running") && text.contains("preview"),
        "{text}"
    );

    // Settings change from the command line under the API's rules.
    let out = cli(&[
        "campaign",
        "set",
        "--account",
        "acme",
        "--name",
        "Autumn",
        "--mode",
        "predictive",
        "--abandon-target",
        "2.5",
        "--max-dial-level",
        "3",
        "--record",
        "false",
        "--recycle",
        "no_answer:7",
        "--recycle",
        "machine:3",
        "--recycle-max-attempts",
        "8",
        "--callback-grace",
        "45",
        "--voicemail-message",
        "/srv/dialcrm/messages/autumn.wav",
        "--voicemail-retry",
        "72",
    ])
    .await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("predictive") && said.contains("2.50 %"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings =
        t.db.store
            .campaign_settings(acme.id, campaign.id)
            .await
            .expect("q");
    assert_eq!(settings.mode.as_str(), "predictive");
    assert_eq!(settings.abandon_target_bp, 250);
    assert!(!settings.record_calls);
    let rules: Vec<(&str, u32)> = settings
        .recycle
        .iter()
        .map(|r| (r.outcome.as_str(), r.after_days))
        .collect();
    assert_eq!(rules, [("no_answer", 7), ("machine", 3)]);
    assert_eq!(settings.recycle_max_attempts, 8);
    assert_eq!(settings.callback_grace_minutes, 45);
    assert!(said.contains("no_answer after 7 d"), "{said}");
    assert_eq!(
        settings.voicemail_message_path.as_deref(),
        Some("/srv/dialcrm/messages/autumn.wav")
    );
    assert_eq!(settings.retry_delays.voicemail, Some(72 * 3600));
    assert!(
        said.contains("voicemail message left, retried after 72 h"),
        "{said}"
    );
    let out = cli(&[
        "campaign",
        "set",
        "--account",
        "acme",
        "--name",
        "Autumn",
        "--voicemail-retry",
        "soon",
    ])
    .await;
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && why.contains("--voicemail-retry"),
        "{why}"
    );
    let out = cli(&[
        "campaign",
        "set",
        "--account",
        "acme",
        "--name",
        "Autumn",
        "--voicemail-message",
        "none",
        "--voicemail-retry",
        "never",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings =
        t.db.store
            .campaign_settings(acme.id, campaign.id)
            .await
            .expect("q");
    assert_eq!(settings.voicemail_message_path, None);
    assert_eq!(settings.retry_delays.voicemail, None);
    let unlawful = cli(&[
        "campaign",
        "set",
        "--account",
        "acme",
        "--name",
        "Autumn",
        "--abandon-target",
        "5",
    ])
    .await;
    assert!(!unlawful.status.success(), "above the legal abandon rate");
    let why = String::from_utf8_lossy(&unlawful.stderr);
    assert!(why.contains("abandon"), "{why}");
    let unchanged =
        t.db.store
            .campaign_settings(acme.id, campaign.id)
            .await
            .expect("q");
    assert_eq!(
        unchanged.abandon_target_bp, 250,
        "a refused change changes nothing"
    );

    let out = cli(&["campaign", "pause", "--account", "acme", "--name", "Autumn"]).await;
    assert!(out.status.success());
    t.app.floor.reconcile().await.expect("reconcile");
    assert!(
        !t.app.floor.is_running(campaign.id).await,
        "the service stops dialling"
    );
    let audit = t.db.store.audit_entries(acme.id, 10).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "campaign.start"));
    assert!(audit.iter().any(|e| e.action == "campaign.settings"));
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_running_sqlite_service_is_backed_up_and_the_copy_serves() {
    let Some(t) = crate::helpers::spawn_app(crm::testing::TestBackend::Sqlite, false).await else {
        return;
    };
    let dir = temp_dir("backup");
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", crm::model::Role::Supervisor).await;
    let copy = dir.join("copy.db");
    let backup = |file: &std::path::Path, url: &str| {
        let mut c = dialcrm(&dir);
        c.arg("backup").arg(file).args(["--database-url", url]);
        async move { c.output().await.expect("runs") }
    };
    let out = backup(&copy, &t.db.url).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up"));
    // Backing up over a file is refused, and says so.
    let again = backup(&copy, &t.db.url).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    // The copy is a whole database: a service started on it lets sue in.
    let restored = crm::Store::connect(&format!("sqlite://{}", copy.display()))
        .await
        .expect("the copy opens");
    restored.migrate().await.expect("and is current");
    let (user, hash) = restored
        .credentials("sue")
        .await
        .expect("query")
        .expect("sue is in the copy");
    assert_eq!(user.account_id, acme.id);
    assert!(crm::password::verify(&pw, &hash), "with her password");
    restored.close().await;
    t.app.stop().await.expect("stops");
    t.db.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_backups_are_pointed_to_pg_dump() {
    let dir = temp_dir("backup-pg");
    let out = dialcrm(&dir)
        .arg("backup")
        .arg(dir.join("x.db"))
        .args(["--database-url", crm::testing::DEFAULT_POSTGRES_URL])
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    if stderr.contains("cannot connect") && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!("\n!!!!! SKIPPING the PostgreSQL backup check: no server answers. !!!!!\n");
        return;
    }
    assert!(stderr.contains("pg_dump"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn doctor_passes_a_good_installation_and_names_each_fault_of_a_broken_one() {
    let dir = temp_dir("doctor");
    // A trunk that answers its ping.
    let trunk = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let trunk_port = trunk.local_addr().expect("addr").port();
    let answering = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = trunk.recv_from(&mut buf).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let mut answer = String::from("SIP/2.0 200 OK\r\n");
            for line in request.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
                let name = line.split(':').next().unwrap_or("");
                if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
                    answer.push_str(line);
                    answer.push_str("\r\n");
                }
            }
            answer.push_str("Content-Length: 0\r\n\r\n");
            let _ = trunk.send_to(answer.as_bytes(), from).await;
        }
    });
    let free_udp = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port()
    };
    let free_tcp = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port()
    };
    let certs = crate::https::TestCerts::new(&dir.join("good-tls"), &["agents.dialcrm.test"]);
    let other = crate::https::TestCerts::new(&dir.join("other-tls"), &["agents.dialcrm.test"]);
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        format!(
            "database_url = \"sqlite://{db}\"\nhttp_addr = \"127.0.0.1:{http}\"\n\
             recordings_dir = \"{rec}\"\n\n[gateway]\nsip_udp = \"127.0.0.1:{sip}\"\n\
             rtp_port_min = 0\nrtp_port_max = 0\nadvertised_ip = \"127.0.0.1\"\n\n\
             [tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nnames = [\"agents.dialcrm.test\"]\n\n\
             [[trunks]]\nname = \"main\"\nhost = \"127.0.0.1\"\nport = {trunk_port}\n",
            db = dir.join("d.db").display(),
            http = free_tcp(),
            rec = dir.join("rec").display(),
            sip = free_udp(),
            cert = certs.cert.display(),
            key = certs.key.display(),
        ),
    )
    .expect("write");
    let doctor = |config: &std::path::Path| {
        let mut c = dialcrm(&dir);
        c.arg("doctor").arg("--config").arg(config);
        async move { c.output().await.expect("runs") }
    };
    let out = doctor(&good).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "ok    configuration",
        "ok    database",
        "ok    recordings",
        "ok    http",
        "ok    sip",
        "ok    advertised_ip: 127.0.0.1 is an address of this machine",
        "ok    trunk main: 127.0.0.1",
        "matches its key, is for agents.dialcrm.test and is valid until",
        "all checks passed",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains("ok    sip: udp receive buffer 4096 KiB")
            || text.contains("note  sip: udp receive buffer"),
        "{text}"
    );

    // Broken: the HTTP port taken, recordings a file, a private address
    // that is not this machine's, and a trunk host with a bad port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let file = dir.join("not-a-folder");
    std::fs::write(&file, b"x").expect("write");
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "database_url = \"sqlite://{db}\"\nhttp_addr = \"{http}\"\nrecordings_dir = \"{rec}\"\n\n\
             [gateway]\nsip_udp = \"127.0.0.1:{sip}\"\nrtp_port_min = 0\nrtp_port_max = 0\n\
             advertised_ip = \"10.255.255.254\"\n\n\
             [tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\n[[trunks]]\nname = \"main\"\n\
             host = \"127.0.0.1:port\"\n",
            db = dir.join("d.db").display(),
            http = taken.local_addr().expect("addr"),
            rec = file.display(),
            sip = free_udp(),
            cert = certs.cert.display(),
            key = other.key.display(),
        ),
    )
    .expect("write");
    let out = doctor(&broken).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for line in [
        "FAIL  http",
        "FAIL  recordings",
        "FAIL  advertised_ip: 10.255.255.254 is not an address of this machine",
        "FAIL  trunk main",
        "FAIL  tls: the TLS key",
        "does not match the certificate",
        "5 check(s) failed",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(
        text.contains("ok    database"),
        "what works still says so: {text}"
    );

    // A file that does not parse is a failure too, and nothing else is tried.
    let unparsable = dir.join("bad.toml");
    std::fs::write(&unparsable, "no_such_setting = 1\n").expect("write");
    let out = doctor(&unparsable).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("FAIL  configuration"), "{text}");
    answering.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_do_not_call_list_is_kept_from_the_command_line() {
    let dir = temp_dir("dnc");
    let db = format!("sqlite://{}", dir.join("d.db").display());
    let cli = |args: &[&str]| {
        let mut c = dialcrm(&dir);
        c.args(["--database-url", &db]).args(args);
        async move { c.output().await.expect("runs") }
    };
    assert!(cli(&["account", "create", "acme", "--seats", "2"])
        .await
        .status
        .success());
    let out = cli(&["dnc", "add", "--account", "acme", "07400 900777"]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("+447400900777 is now on"),
        "{said}"
    );
    let out = cli(&["dnc", "check", "--account", "acme", "+447400900777"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("is on the list"));
    let file = dir.join("dnc.txt");
    std::fs::write(&file, "07400900778\nrubbish\n+447400900777\n").expect("write");
    let out = cli(&[
        "dnc",
        "import",
        "--account",
        "acme",
        file.to_str().expect("utf-8"),
    ])
    .await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("3 lines: 1 added, 1 already on the list, 1 invalid")
            && said.contains("line 2:"),
        "{said}"
    );
    let out = cli(&["dnc", "remove", "--account", "acme", "+447400900777"]).await;
    assert!(out.status.success());
    let out = cli(&["dnc", "check", "--account", "acme", "+447400900777"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("is not on the list"));
    let out = cli(&["dnc", "add", "--account", "acme", "not-a-number"]).await;
    assert!(!out.status.success());
    // Kept numbers are listed; the others by their hash's start; off again,
    // they are forgotten.
    let out = cli(&["dnc", "keep-numbers", "--account", "acme", "on"]).await;
    assert!(out.status.success());
    cli(&["dnc", "add", "--account", "acme", "07400 900779"]).await;
    let out = cli(&["dnc", "list", "--account", "acme"]).await;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(lines[0].starts_with('#'), "not kept: {said}");
    assert!(lines[1].starts_with("+447400900779\t"), "{said}");
    let out = cli(&["dnc", "keep-numbers", "--account", "acme", "off"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 numbers forgotten"));
    let out = cli(&["dnc", "list", "--account", "acme"]).await;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.lines().all(|l| l.starts_with('#')), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Plants 100 finished calls of a campaign in the last day: 30 talked for
/// 60 s, 5 abandoned, 10 machines, 20 busy, 35 unanswered.
pub(crate) async fn seed_history(
    s: &crm::Store,
    account: crm::model::AccountId,
    campaign: crm::model::CampaignId,
    contact: crm::model::ContactId,
    now: chrono::DateTime<chrono::Utc>,
) {
    use chrono::TimeDelta;
    for i in 0..100i64 {
        let at = now - TimeDelta::minutes(10 * i + 5);
        let call = sip_gateway::gateway::CallRef::random();
        s.open_attempt(account, call, campaign, contact, "n1", at)
            .await
            .expect("attempt");
        let outcome = match i {
            0..30 => {
                s.mark_call_answered(account, call, at)
                    .await
                    .expect("answered");
                s.mark_connected(account, call, at)
                    .await
                    .expect("connected");
                "answered"
            }
            30..35 => {
                s.mark_call_answered(account, call, at)
                    .await
                    .expect("answered");
                s.mark_abandoned(account, call, at)
                    .await
                    .expect("abandoned");
                "abandoned"
            }
            35..45 => "machine",
            45..65 => "busy",
            _ => "no_answer",
        };
        let id = s.attempt_by_ref(account, call).await.expect("attempt").id;
        let end = if outcome == "answered" {
            at + TimeDelta::seconds(60)
        } else {
            at
        };
        s.mark_ended(account, id, outcome, end)
            .await
            .expect("ended");
    }
}
