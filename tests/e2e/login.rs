//! Login, sessions, throttling and bad request bodies.

use chrono::Duration;
use crm::model::Role;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{client, next_json, on_both_backends, NowUtc, TestApp, Ws};

on_both_backends!(
    login_sets_a_strict_httponly_cookie_and_me_answers,
    wrong_password_and_unknown_user_get_the_same_401,
    repeated_failures_are_slowed_down,
    logout_ends_the_session_and_logout_everywhere_ends_all,
    sessions_expire,
    deactivated_users_cannot_log_in,
    seat_limit_refuses_the_next_agent_by_name,
    malformed_bodies_get_400_naming_the_problem,
    users_change_their_password_without_reusing_old_ones,
    failed_logins_are_still_counted_after_a_restart,
    ending_sessions_closes_the_sockets_opened_with_them,
);

async fn login_sets_a_strict_httponly_cookie_and_me_answers(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let c = client();
    let r = t.try_login(&c, "sue", &pw).await;
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.starts_with("dialcrm_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Strict"));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["home"], "/supervisor");
    let me: serde_json::Value = c
        .get(t.url("/api/me"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "sue");
    assert_eq!(me["role"], "supervisor");
    assert_eq!(me["account"], "acme");
    assert_eq!(t.get_status(&client(), "/api/me").await, 401);
    // The token is stored only as a hash.
    let token = cookie["dialcrm_session=".len()..]
        .split(';')
        .next()
        .expect("value");
    assert!(t
        .db
        .store
        .session(token, t.clock.now_utc())
        .await
        .expect("q")
        .is_none());
    t
}

async fn wrong_password_and_unknown_user_get_the_same_401(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    t.user(&acme, "sue", Role::Supervisor).await;
    let c = client();
    let wrong = t.try_login(&c, "sue", "Not-the-1-password").await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.text().await.expect("body");
    let unknown = t.try_login(&c, "nobody", "Not-the-1-password").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.text().await.expect("body"), wrong_body);
    assert!(wrong_body.contains("wrong username or password"));
    t
}

async fn repeated_failures_are_slowed_down(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    // The waits are exact seconds: time moves only when the test says.
    t.clock.stand_still();
    let c = client();
    for _ in 0..5 {
        assert_eq!(t.try_login(&c, "sue", "Wrong-guess-1").await.status(), 401);
    }
    // Now even the right password must wait.
    let retry = retry_after(t.try_login(&c, "sue", &pw).await);
    assert_eq!(retry, 1);
    t.clock.advance(Duration::seconds(1));
    assert_eq!(t.try_login(&c, "sue", "Wrong-guess-1").await.status(), 401);
    // Each further failure doubles the wait.
    assert_eq!(retry_after(t.try_login(&c, "sue", &pw).await), 2);
    t.clock.advance(Duration::seconds(2));
    assert_eq!(t.try_login(&c, "sue", &pw).await.status(), 200);
    let metrics = t.metrics_text().await;
    assert!(metrics.contains("dialcrm_logins_total{outcome=\"throttled\"} 2"));
    assert!(metrics.contains("dialcrm_logins_total{outcome=\"failed\"} 6"));
    t
}

async fn logout_ends_the_session_and_logout_everywhere_ends_all(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let one = t.login("sue", &pw).await;
    let two = t.login("sue", &pw).await;
    let three = t.login("sue", &pw).await;
    let r = one.post(t.url("/api/logout")).send().await.expect("sent");
    assert_eq!(r.status(), 204);
    assert_eq!(t.get_status(&one, "/api/me").await, 401);
    assert_eq!(t.get_status(&two, "/api/me").await, 200);
    let r = two
        .post(t.url("/api/logout-everywhere"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    assert_eq!(t.get_status(&two, "/api/me").await, 401);
    assert_eq!(t.get_status(&three, "/api/me").await, 401);
    t
}

async fn sessions_expire(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let c = t.login("sue", &pw).await;
    t.clock.advance(Duration::hours(11));
    assert_eq!(t.get_status(&c, "/api/me").await, 200);
    t.clock.advance(Duration::hours(1));
    assert_eq!(t.get_status(&c, "/api/me").await, 401);
    assert_eq!(t.get_status(&c, "/supervisor").await, 303);
    t
}

async fn deactivated_users_cannot_log_in(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let admin_pw = t.user(&acme, "ada", Role::Admin).await;
    let pw = t.user(&acme, "al", Role::Agent).await;
    let agent = t.login("al", &pw).await;
    let admin = t.login("ada", &admin_pw).await;
    let users: Vec<serde_json::Value> = admin
        .get(t.url("/api/users"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let al = users
        .iter()
        .find(|u| u["username"] == "al")
        .expect("al listed");
    let r = admin
        .post(t.url(&format!("/api/users/{}/active", al["id"])))
        .json(&serde_json::json!({ "active": false }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(t.get_status(&agent, "/api/me").await, 401, "sessions end");
    assert_eq!(t.try_login(&client(), "al", &pw).await.status(), 401);
    t
}

async fn seat_limit_refuses_the_next_agent_by_name(t: TestApp) -> TestApp {
    let acme = t.account("acme", 1).await;
    let a1 = t.user(&acme, "al", Role::Agent).await;
    let a2 = t.user(&acme, "bo", Role::Agent).await;
    let sup = t.user(&acme, "sue", Role::Supervisor).await;
    let al = t.login("al", &a1).await;
    let r = t.try_login(&client(), "bo", &a2).await;
    assert_eq!(r.status(), 403);
    let msg = r.text().await.expect("body");
    assert!(msg.contains("seat limit"), "{msg}");
    assert!(msg.contains("1 agent seats"), "{msg}");
    t.login("sue", &sup).await;
    al.post(t.url("/api/logout")).send().await.expect("sent");
    t.login("bo", &a2).await;
    t
}

async fn malformed_bodies_get_400_naming_the_problem(t: TestApp) -> TestApp {
    let c = client();
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("{\"username\": \"x\"", Some("application/json"), "EOF"),
        (
            "{\"username\": \"x\"}",
            Some("application/json"),
            "password",
        ),
        (
            "{\"username\": 5, \"password\": \"y\"}",
            Some("application/json"),
            "username",
        ),
        ("username=x&password=y", None, "Content-Type"),
    ];
    for (body, content_type, expect) in cases {
        let mut req = c.post(t.url("/api/login")).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.expect("sent");
        assert_eq!(r.status(), 400, "body {body}");
        let msg = r.text().await.expect("text");
        assert!(msg.contains(expect), "{body} → {msg}");
    }
    t
}

fn retry_after(r: reqwest::Response) -> u64 {
    assert_eq!(r.status(), 429);
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After")
}

async fn users_change_their_password_without_reusing_old_ones(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let c = t.login("sue", &pw).await;
    let change = |current: &str, new: &str| {
        c.post(t.url("/api/me/password"))
            .json(&serde_json::json!({"current_password": current, "new_password": new}))
            .send()
    };
    assert_eq!(
        change("Wrong-1-pass", "Brand-new-1")
            .await
            .expect("sent")
            .status(),
        403
    );
    let weak = change(&pw, "weak").await.expect("sent");
    assert_eq!(weak.status(), 400);
    assert!(weak.text().await.expect("text").contains("8 characters"));
    let same = change(&pw, &pw).await.expect("sent");
    assert_eq!(same.status(), 400);
    assert!(same.text().await.expect("text").contains("last 5"));
    assert_eq!(
        change(&pw, "Brand-new-1").await.expect("sent").status(),
        204
    );
    assert_eq!(t.get_status(&c, "/api/me").await, 401, "sessions end");
    assert_eq!(t.try_login(&client(), "sue", &pw).await.status(), 401);
    t.login("sue", "Brand-new-1").await;
    let audit = t.db.store.audit_entries(acme.id, 10).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "password.change"));
    assert!(audit.iter().any(|e| e.action == "password.change_refused"));
    t
}

/// Behind a trusted reverse proxy, the audit log keeps the agent's address
/// (not the proxy's), and the login throttle counts it; a peer that is not
/// trusted cannot claim another address.
#[tokio::test]
async fn a_trusted_proxys_forwarded_address_is_the_one_kept() {
    let Some(t) = crate::helpers::spawn_app(crm::testing::TestBackend::Sqlite, false).await else {
        return;
    };
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    let login = |t: &TestApp, forwarded: &'static str| {
        let request = client()
            .post(t.url("/api/login"))
            .header("x-forwarded-for", forwarded)
            .json(&serde_json::json!({ "username": "sue", "password": pw.clone() }));
        async move { request.send().await.expect("sent").status() }
    };
    // Not trusted: the claim is ignored.
    assert_eq!(login(&t, "203.0.113.7").await, 200);
    let mut t = t;
    t.settings.trusted_proxies = vec!["127.0.0.1".into()];
    let t = t.restart().await;
    // Trusted: the forwarded address is the agent's.
    assert_eq!(login(&t, "198.51.100.23").await, 200);
    let entries = t.db.store.audit_entries(acme.id, 10).await.expect("audit");
    let ips: Vec<Option<&str>> = entries
        .iter()
        .filter(|e| e.action == "login")
        .map(|e| e.ip.as_deref())
        .collect();
    assert!(ips.contains(&Some("198.51.100.23")), "{ips:?}");
    assert!(ips.contains(&Some("127.0.0.1")), "{ips:?}");
    assert!(
        !ips.contains(&Some("203.0.113.7")),
        "an untrusted claim: {ips:?}"
    );
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}

async fn failed_logins_are_still_counted_after_a_restart(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    t.clock.stand_still();
    for _ in 0..5 {
        assert_eq!(
            t.try_login(&client(), "sue", "Wrong-guess-1")
                .await
                .status(),
            401
        );
    }
    let t = t.restart().await;
    assert_eq!(retry_after(t.try_login(&client(), "sue", &pw).await), 1);
    // The forgotten ones go with the minute's housekeeping; these are kept.
    assert_eq!(t.db.store.login_failure_rows().await.expect("rows"), 2);
    t.clock.advance(Duration::seconds(1));
    assert_eq!(t.try_login(&client(), "sue", &pw).await.status(), 200);
    t
}

async fn ending_sessions_closes_the_sockets_opened_with_them(t: TestApp) -> TestApp {
    let acme = t.account("acme", 5).await;
    let sue_pw = t.user(&acme, "sue", Role::Supervisor).await;
    let sam_pw = t.user(&acme, "sam", Role::Supervisor).await;
    let al_pw = t.user(&acme, "al", Role::Agent).await;
    let (one, two) = (
        t.session_cookie("sue", &sue_pw).await,
        t.session_cookie("sue", &sue_pw).await,
    );
    let mut sue = socket(&t, "/api/stream", &one).await;
    assert_eq!(next_json(&mut sue).await["type"], "snapshot");
    let sam_cookie = t.session_cookie("sam", &sam_pw).await;
    let mut sam = socket(&t, "/api/stream", &sam_cookie).await;
    assert_eq!(next_json(&mut sam).await["type"], "snapshot");

    // A plain logout ends that session only: the stream of the other stays.
    assert_eq!(post(&t, &two, "/api/logout").await, 204);
    let al = t.session_cookie("al", &al_pw).await;
    let seen = next_json(&mut sue).await;
    assert_eq!(seen["event"]["username"], "al", "still live: {seen}");
    assert_eq!(next_json(&mut sam).await, seen);

    // Logging out everywhere closes it, and only Sue's.
    assert_eq!(post(&t, &one, "/api/logout-everywhere").await, 204);
    assert_eq!(closed_with(&mut sue).await, 4001);
    let mut desk = socket(&t, "/api/agent/ws", &al).await;
    assert_eq!(next_json(&mut desk).await["type"], "welcome");

    // Changing one's password closes one's own sockets: Al's desk.
    let r = client()
        .post(t.url("/api/me/password"))
        .header("cookie", &al)
        .json(&serde_json::json!({
            "current_password": al_pw,
            "new_password": "Pw-al-changed-5678",
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    assert_eq!(closed_with(&mut desk).await, 4001);
    let out = loop {
        let frame = next_json(&mut sam).await;
        assert_ne!(frame["event"]["kind"], "sessions_revoked", "never sent");
        if frame["event"]["state"] == "logged_out" {
            break frame;
        }
    };
    assert_eq!(out["event"]["username"], "al", "{out}");
    let me = client()
        .get(t.url("/api/me"))
        .header("cookie", &al)
        .send()
        .await
        .expect("sent");
    assert_eq!(me.status(), 401, "the desk's session is gone");
    t
}

async fn post(t: &TestApp, cookie: &str, path: &str) -> u16 {
    client()
        .post(t.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

async fn socket(t: &TestApp, path: &str, cookie: &str) -> Ws {
    let mut req = format!("ws://{}{path}", t.app.http_addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    tokio_tungstenite::connect_async(req)
        .await
        .expect("the websocket opens")
        .0
}

/// Reads past text frames to the server's close, within 5 s, and returns
/// its code.
async fn closed_with(ws: &mut Ws) -> u16 {
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => panic!("a close without a code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the socket failed before a close: {e}"),
                None => panic!("the socket ended without a close"),
            }
        }
    })
    .await
    .expect("the server closes the socket within 5 s")
}

/// A supervisor's stream closes (4001) when its login session expires,
/// not before: the socket reads the expiry once and wakes for it.
#[tokio::test]
async fn a_stream_closes_when_its_session_expires() {
    let Some(t) = crate::helpers::spawn_app_tuned(
        crm::testing::TestBackend::Sqlite,
        false,
        Vec::new(),
        None,
        |s| s.session_ttl = std::time::Duration::from_secs(3),
    )
    .await
    else {
        return;
    };
    let acme = t.account("acme", 5).await;
    let pw = t.user(&acme, "sue", Role::Supervisor).await;
    t.clock.stand_still();
    let cookie = t.session_cookie("sue", &pw).await;
    let mut ws = socket(&t, "/api/stream", &cookie).await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    // Four seconds pass on the wall, none on the service's clock: the
    // session has not expired, and the stream stays open.
    let early = tokio::time::timeout(std::time::Duration::from_secs(4), ws.next()).await;
    assert!(
        early.is_err(),
        "nothing, no close, before expiry: {early:?}"
    );
    // The service's clock passes the expiry: the stream is closed.
    t.clock.advance(Duration::seconds(4));
    assert_eq!(closed_with(&mut ws).await, 4001);
    t.app.stop().await.expect("stops");
    t.db.finish().await;
}
