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

on_both_backends!(an_agents_desk_phone_registers_with_the_password_the_cli_set);

const PASSWORD: &str = "correct-horse-battery";

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
