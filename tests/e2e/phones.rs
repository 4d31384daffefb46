//! Agents' SIP desk phones with the whole service: an admin sets an
//! agent's SIP password from the command line (kept only as digest
//! hashes), and sipp, playing the agent's desk phone, registers with the
//! running service's gateway with it; a wrong password and a removed
//! credential get 403. Both backends.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crm::model::Role;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::{on_both_backends, TestApp};
use crate::inbound::{free_port, sipp_installed};

on_both_backends!(
    an_agents_desk_phone_registers_with_the_password_the_cli_set,
    a_phone_guessing_passwords_stays_refused_after_a_restart,
);

#[tokio::test]
async fn an_agent_takes_calls_on_their_desk_phone_on_sqlite() {
    desk_phone_day(crm::testing::TestBackend::Sqlite).await;
}

#[tokio::test]
async fn an_agent_takes_calls_on_their_desk_phone_on_postgres() {
    desk_phone_day(crm::testing::TestBackend::Postgres).await;
}

pub(crate) const PASSWORD: &str = "correct-horse-battery";

/// Runs `dialcrm` with `args` against the test's database, `input` on stdin.
async fn dialcrm(t: &TestApp, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialcrm"))
        .env_remove("DIALCRM_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .args(args)
        .args(["--database-url", &t.db.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dialcrm runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("written");
    drop(stdin);
    child.wait_with_output().await.expect("output")
}

/// sipp registering once as `user` with `password`; whether its scenario passed.
async fn register(t: &TestApp, scenario: &str, user: &str, password: &str) -> bool {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let port = free_port();
    let status = Command::new("sipp")
        .arg(t.app.telephony.gateway.sip_udp_addr().to_string())
        .arg("-sf")
        .arg(&path)
        .args(["-s", user, "-au", user, "-ap", password])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "15s", "-timeout_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("sipp finishes")
        .expect("status")
        .success()
}

async fn an_agents_desk_phone_registers_with_the_password_the_cli_set(t: TestApp) -> TestApp {
    if !sipp_installed().await {
        return t;
    }
    let acme = t.account("acme", 5).await;
    t.user(&acme, "al", Role::Agent).await;
    let out = dialcrm(
        &t,
        &[
            "phone",
            "set",
            "--account",
            "acme",
            "--user",
            "al",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(PASSWORD),
        "a password given is not echoed"
    );
    let listed = dialcrm(&t, &["phone", "list", "--account", "acme"], "").await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains("al"));

    // The phone registers, refreshes and unregisters with that password.
    assert!(
        register(&t, "register_phone.xml", "al", PASSWORD).await,
        "registered"
    );
    // A wrong password is refused, and so is a user with no credential.
    assert!(
        register(&t, "register_refused.xml", "al", "not-the-password").await,
        "a wrong password gets 403"
    );
    assert!(
        register(&t, "register_refused.xml", "nobody", PASSWORD).await,
        "an unknown user gets 403"
    );
    // Once removed, the credential no longer registers anything.
    let out = dialcrm(
        &t,
        &["phone", "remove", "--account", "acme", "--user", "al"],
        "",
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        register(&t, "register_refused.xml", "al", PASSWORD).await,
        "a removed credential gets 403"
    );
    // A made-up password is printed once, and works.
    let made = dialcrm(
        &t,
        &["phone", "set", "--account", "acme", "--user", "al"],
        "",
    )
    .await;
    let said = String::from_utf8_lossy(&made.stdout).to_string();
    let password = said
        .lines()
        .find_map(|l| l.split("shown once, kept only as digest hashes): ").nth(1))
        .expect("the password made")
        .trim()
        .to_owned();
    assert!(password.len() >= 12);
    assert!(register(&t, "register_phone.xml", "al", &password).await);
    t
}

/// Five wrong passwords for one SIP username are counted in the database:
/// the phone is refused even with the right password, and still after the
/// service restarts (which forgets the registrar's own counts), while
/// another agent's phone registers as usual.
async fn a_phone_guessing_passwords_stays_refused_after_a_restart(t: TestApp) -> TestApp {
    if !sipp_installed().await {
        return t;
    }
    let acme = t.account("acme", 5).await;
    let s = &t.db.store;
    let now = chrono::Utc::now();
    let actor = crm::model::Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    for name in ["al", "bo"] {
        t.user(&acme, name, Role::Agent).await;
        let user = s.credentials(name).await.expect("q").expect("user").0;
        s.set_sip_password(&actor, user.id, None, "dialcrm", PASSWORD, now)
            .await
            .expect("a SIP password");
    }
    for _ in 0..5 {
        assert!(
            register(&t, "register_refused.xml", "al", "a-guess-1234").await,
            "a wrong password gets 403"
        );
    }
    // The counts are written off the gateway's task: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = t.restart().await;
    assert!(
        register(&t, "register_refused.xml", "al", PASSWORD).await,
        "throttled across the restart, even with the right password"
    );
    assert!(
        register(&t, "register_phone.xml", "bo", PASSWORD).await,
        "another phone from the same address registers"
    );
    t
}

/// The agent chooses their registered desk phone as their audio: the
/// service calls it, sipp (the phone) answers and echoes, and the campaign's
/// call to a customer (the simulated carrier's 440 Hz) is connected into
/// it: the recording hears the customer and the phone's echo of them.
async fn desk_phone_day(backend: crm::testing::TestBackend) {
    use crate::desk::{agent_floor, next, say, wait_for};
    if !sipp_installed().await {
        return;
    }
    let Some(f) = agent_floor(backend, None).await else {
        return;
    };
    let s = &f.t.db.store;
    let acme = &f.acme;
    let now = chrono::Utc::now();
    let actor = crm::model::Actor {
        account_id: Some(acme.id),
        ..Default::default()
    };
    s.set_sip_password(&actor, f.agent.id, None, "dialcrm", PASSWORD, now)
        .await
        .expect("a SIP password");
    // The phone registers, then waits for the service's call and echoes.
    let gateway = f.t.app.telephony.gateway.clone();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp");
    let answers = dir.join("desk_phone_answers_call.xml");
    let mut phone = registered_phone(&gateway, "al", &answers, true).await;

    let list = s.create_list(acme.id, "L", "GB", now).await.expect("list");
    let contact = s
        .create_contact(
            acme.id,
            &crm::model::ContactFields {
                first_name: "Desk".into(),
                phone_e164: "+447700900611".into(),
                phone_raw: "+447700900611".into(),
                time_zone: Some(crate::dialler::DAY_ZONE.into()),
                custom_fields: serde_json::json!({}),
                ..Default::default()
            },
            now,
        )
        .await
        .expect("contact");
    s.add_to_list(acme.id, list.id, contact.id, now)
        .await
        .expect("member");
    let campaign =
        f.t.start_campaign(
            acme,
            list.id,
            "Phones",
            crm::store::campaign_settings::DialMode::Progressive,
            Some("customers"),
            ("sue", &f.sup_pw),
        )
        .await;

    let mut ws = f.open_desk().await;
    assert_eq!(next(&mut ws).await["type"], "welcome");
    say(&mut ws, serde_json::json!({"type": "desk_phone"})).await;
    assert_eq!(wait_for(&mut ws, "desk_phone").await["state"], "ringing");
    assert_eq!(wait_for(&mut ws, "desk_phone").await["state"], "connected");
    say(
        &mut ws,
        serde_json::json!({"type": "ready", "campaign_id": campaign.id.0}),
    )
    .await;
    let card = wait_for(&mut ws, "call").await;
    assert_eq!(card["contact"]["first_name"], "Desk");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    say(&mut ws, serde_json::json!({"type": "hangup"})).await;
    let ended = wait_for(&mut ws, "call_ended").await;
    say(
        &mut ws,
        serde_json::json!({"type": "disposition", "call_ref": ended["call_ref"], "disposition": "sale"}),
    )
    .await;
    wait_for(&mut ws, "saved").await;
    let recordings = s
        .recordings_for_contact(acme.id, contact.id)
        .await
        .expect("recordings");
    assert_eq!(recordings.len(), 1);
    let (left, right) = crate::softphone::channels(std::path::Path::new(&recordings[0].path));
    let candidates = [440.0, 1000.0];
    let middle = |x: &[i16]| x[x.len() / 4..x.len() * 3 / 4].to_vec();
    use sip_gateway::media::tone::dominant_frequency;
    assert_eq!(
        dominant_frequency(&middle(&right), &candidates, 8000, 1e-4),
        Some(440.0),
        "the customer"
    );
    assert_eq!(
        dominant_frequency(&middle(&left), &candidates, 8000, 1e-4),
        Some(440.0),
        "what the desk phone sent the customer: its echo of them"
    );
    // The desk phone stayed the agent's audio across the call; at the end
    // of the shift the service hangs it up.
    let leg =
        f.t.app
            .legs
            .get(f.agent.id)
            .expect("the desk phone is the agent's leg");
    gateway.hangup(leg).await.expect("hung up");
    // Without audio, the waiting agent is paused until it is back.
    assert_eq!(wait_for(&mut ws, "desk_phone").await["state"], "ended");
    let paused = wait_for(&mut ws, "state").await;
    assert_eq!(
        (paused["state"].as_str(), paused["reason"].as_str()),
        (Some("paused"), Some("no_audio"))
    );
    assert!(f.t.app.legs.get(f.agent.id).is_none());
    let status = tokio::time::timeout(Duration::from_secs(20), phone.wait())
        .await
        .expect("sipp ends")
        .expect("status");
    assert!(
        status.success(),
        "the phone's scenario passed: {}",
        sipp_errors(&mut phone).await
    );
    drop(gateway);
    f.t.app.stop().await.expect("stops");
    f.t.db.finish().await;
}

/// Starts sipp as `user`'s desk phone (on 127.0.0.2, so nothing it sends
/// passes for the carriers' on 127.0.0.1), registered with `gateway` with
/// the test's password and waiting for the service's call. sipp takes that
/// INVITE, with a Call-ID of its own, in the out-of-call scenario
/// `call_scenario`; `echo` sends back the audio it hears. A sipp that could
/// not start (a port taken between choosing it and binding it) is started
/// again on other ports; one that never registers fails the test with what
/// sipp said.
pub(crate) async fn registered_phone(
    gateway: &sip_gateway::gateway::Gateway,
    user: &str,
    call_scenario: &std::path::Path,
    echo: bool,
) -> tokio::process::Child {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp");
    let mut said = String::new();
    for _ in 0..3 {
        let (port, media) = (free_port(), free_port());
        let mut phone = Command::new("sipp");
        phone
            .arg(gateway.sip_udp_addr().to_string())
            .arg("-sf")
            .arg(dir.join("desk_phone_answers.xml"))
            .arg("-oocsf")
            .arg(call_scenario)
            .args(["-s", user, "-au", user, "-ap", PASSWORD])
            .args(["-i", "127.0.0.2", "-p", &port.to_string()])
            .args(["-mp", &media.to_string()]);
        if echo {
            phone.arg("-rtp_echo");
        }
        let mut phone = phone
            .args(["-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp runs");
        // Generous: on a loaded machine sipp and the directory's database
        // lookup may take seconds; sipp retransmits every 500 ms meanwhile.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if gateway.phone(user).await.expect("gateway").is_some() {
                return phone;
            }
            if phone.try_wait().expect("sipp's status").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let exited = phone.try_wait().expect("sipp's status");
        said = sipp_errors(&mut phone).await;
        assert!(
            exited.is_some(),
            "{user}'s phone did not register within 30 s: {said}"
        );
    }
    panic!("sipp as {user}'s desk phone would not start: {said}");
}

/// What a sipp that ended said on stderr (a running one is killed first).
pub(crate) async fn sipp_errors(phone: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt;
    let _ = phone.start_kill();
    let _ = phone.wait().await;
    let mut said = String::new();
    if let Some(mut err) = phone.stderr.take() {
        let _ = err.read_to_string(&mut said).await;
    }
    said
}
