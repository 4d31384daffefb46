//! The supervisors' stream across nodes, against a real `nats-server`:
//! several nodes in one process, each with its own bus and hub, sharing
//! one JetStream stream.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use crm::events::{AgentState, Event, EventBus};
use crm::model::{AccountId, UserId};
use crm::testing::nats::TestNats;
use dashboard::stream::hub::{HubConfig, StreamHub};
use dashboard::stream::shared::SharedStream;

const WAIT: Duration = Duration::from_secs(20);

fn agent(account: i64, user: i64, state: AgentState, s: i64) -> Event {
    Event::AgentState {
        account: AccountId(account),
        user_id: UserId(user),
        username: format!("agent{user}"),
        state,
        pause_code: None,
        at: Utc
            .timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .expect("valid"),
    }
}

/// A node as far as the stream goes: its bus and its hub.
struct Node {
    bus: EventBus,
    hub: Arc<StreamHub>,
    link: SharedStream,
}

async fn node(nats: &TestNats, name: &str) -> Node {
    seeded_node(nats, name, &[]).await
}

/// A node that seeds its wallboards with `seed` (as it reads the agents
/// logged in from the database) before it reads the stream.
async fn seeded_node(nats: &TestNats, name: &str, seed: &[Event]) -> Node {
    let link = SharedStream::connect(&nats.url, name)
        .await
        .expect("connects to NATS");
    let bus = EventBus::default();
    link.publish_from(&bus);
    let hub = link
        .start(HubConfig::default(), seed)
        .await
        .expect("reads the stream");
    Node { bus, hub, link }
}

/// The JSON texts of an account's frames after `since`, as a client
/// resuming from it is sent them.
fn frames(hub: &StreamHub, account: i64, since: u64) -> Vec<String> {
    hub.initial(AccountId(account), Some(since))
        .frames
        .iter()
        .map(|f| {
            let at = if f[1] == 126 { 4 } else { 2 };
            String::from_utf8_lossy(&f[at..]).into_owned()
        })
        .collect()
}

fn snapshot(hub: &StreamHub, account: i64) -> bytes::Bytes {
    hub.framed_snapshot(AccountId(account)).0
}

async fn until_at(nodes: &[&Node], seq: u64) {
    for n in nodes {
        assert!(
            n.hub.reach(seq, WAIT).await,
            "a node did not read the stream up to {seq}: at {:?}",
            n.hub.position()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_sees_every_nodes_events_in_one_order_and_a_late_one_alike() {
    let Some(mut nats) = TestNats::start().await else {
        return;
    };
    let a = node(&nats, "node-a").await;
    let b = node(&nats, "node-b").await;
    assert_eq!(a.hub.position(), Some(0), "a new stream starts at 0");

    a.bus.publish(agent(1, 3, AgentState::Paused, 0));
    until_at(&[&a, &b], 1).await;
    a.bus.publish(agent(2, 4, AgentState::Ready, 1));
    until_at(&[&a, &b], 2).await;
    b.bus.publish(agent(1, 5, AgentState::Ready, 2));
    until_at(&[&a, &b], 3).await;
    a.bus.publish(agent(1, 3, AgentState::Ready, 3));
    until_at(&[&a, &b], 4).await;

    // Account 1's events from both nodes, numbered by the stream (2 was
    // account 2's), each once: a node's own events come only from the
    // stream, never again from its bus.
    let on_a = frames(&a.hub, 1, 0);
    assert_eq!(on_a.len(), 3, "{on_a:?}");
    for (frame, (seq, user)) in on_a.iter().zip([(1, 3), (3, 5), (4, 3)]) {
        assert!(
            frame.starts_with(&format!("{{\"type\":\"event\",\"seq\":{seq},")),
            "{frame}"
        );
        assert!(frame.contains(&format!("\"user_id\":{user}")), "{frame}");
    }
    assert_eq!(frames(&b.hub, 1, 0), on_a, "the same frames on both nodes");
    assert_eq!(frames(&b.hub, 2, 0).len(), 1);
    assert_eq!(frames(&a.hub, 1, 1), on_a[1..], "resuming from 1 on either");
    assert_eq!(frames(&b.hub, 1, 3), on_a[2..], "resuming from 3 on either");
    assert_eq!(snapshot(&a.hub, 1), snapshot(&b.hub, 1));
    let snap = String::from_utf8_lossy(&snapshot(&a.hub, 1)).into_owned();
    assert!(snap.contains("\"seq\":4"), "{snap}");
    assert!(
        snap.contains("\"user_id\":3") && snap.contains("\"user_id\":5"),
        "{snap}"
    );

    // A node started later reads what the stream holds before it serves:
    // the same snapshot, the same replay.
    let c = node(&nats, "node-c").await;
    assert_eq!(c.hub.position(), Some(4), "caught up before serving");
    assert_eq!(snapshot(&c.hub, 1), snapshot(&a.hub, 1));
    assert_eq!(snapshot(&c.hub, 2), snapshot(&a.hub, 2));
    assert_eq!(frames(&c.hub, 1, 0), on_a);

    // NATS goes away. A node's event meanwhile waits for it, and reaches
    // every node once it is back; what the stream stored is kept.
    assert!(a.link.connected());
    assert_eq!(a.link.held(), 0);
    nats.kill().await;
    a.bus.publish(agent(1, 3, AgentState::Paused, 4));
    let mut waited = 0;
    while a.link.connected() || a.link.held() != 1 {
        waited += 1;
        assert!(waited < 200, "node A never noticed NATS was gone");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.link.connected() && a.link.held() == 1);
    assert_eq!(b.hub.position(), Some(4), "nothing new while NATS is down");
    nats.restart().await;
    until_at(&[&a, &b, &c], 5).await;
    assert_eq!(a.link.held(), 0, "the held event was stored");
    assert!(a.link.connected());
    for n in [&a, &b, &c] {
        let after = frames(&n.hub, 1, 4);
        assert_eq!(after.len(), 1, "the held event, once: {after:?}");
        assert!(after[0].contains("\"seq\":5") && after[0].contains("\"paused\""));
    }
    let d = node(&nats, "node-d").await;
    assert_eq!(d.hub.position(), Some(5));
    assert_eq!(frames(&d.hub, 1, 0), frames(&a.hub, 1, 0), "nothing lost");
    assert_eq!(snapshot(&d.hub, 1), snapshot(&b.hub, 1));
}

/// An agent whose last change is older than the stream keeps comes from
/// the database's seed; the stream's events land on top of the seed, and
/// two nodes seeded alike show the same snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_agents_show_and_the_stream_s_events_come_on_top() {
    let Some(nats) = TestNats::start().await else {
        return;
    };
    let a = node(&nats, "seed-a").await;
    // Agent 8 changed 30 hours ago (no longer in the stream); agent 9 too,
    // and then again, in the stream.
    let seed = [
        agent(4, 8, AgentState::Paused, -30 * 3600),
        agent(4, 9, AgentState::Ready, -30 * 3600),
    ];
    a.bus.publish(agent(4, 9, AgentState::InCall, 5));
    until_at(&[&a], 1).await;
    let b = seeded_node(&nats, "seed-b", &seed).await;
    let c = seeded_node(&nats, "seed-c", &seed).await;
    let upto = b.hub.position().expect("numbered by the stream");
    until_at(&[&c], upto).await;
    let shown = snapshot(&b.hub, 4);
    let text = String::from_utf8_lossy(&shown);
    assert!(text.contains("agent8"), "the seeded agent shows: {text}");
    assert!(
        text.contains("\"in_call\"") && !text.contains("\"ready\""),
        "the stream's later state is on top of the seed: {text}"
    );
    assert_eq!(snapshot(&c.hub, 4), shown, "alike on every node");
}
