//! Behind a NAT, the provider and browsers must reach the gateway at the
//! address the operator advertises, not the one it binds. With the gateway
//! bound to every address and `advertised_ip` set to another of this
//! machine's addresses, the agent leg's only ICE candidate and the trunk
//! call's SDP name the advertised address, and a call bridged between them
//! carries audio both ways through it.

mod common;
#[path = "common/softphone.rs"]
mod softphone;

use std::net::IpAddr;
use std::time::Duration;

use sip_gateway::carrier::Outcome;
use sip_gateway::gateway::{CallEventKind, Gateway, GatewayConfig, TrunkConfig};
use sip_gateway::media::tone::dominant_frequency;

use common::{carrier, request, wait_for};
use softphone::Softphone;

/// The candidate addresses an SDP names.
fn candidates(sdp: &str) -> Vec<IpAddr> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|l| l.split_whitespace().nth(4)?.parse().ok())
        .collect()
}

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_the_gateway_at_its_advertised_address() {
    // 127.0.0.2 is this machine (all of 127/8 is loopback), but neither the
    // bound address nor the one the route to the carrier would pick.
    let advertised: IpAddr = "127.0.0.2".parse().expect("address");
    let customer = carrier(Outcome::Answer, Some(1000.0)).await;
    let config = GatewayConfig {
        sip_udp: "0.0.0.0:0".parse().expect("address"),
        sip_tcp: None,
        advertised_ip: Some(advertised),
        t1: Duration::from_millis(50),
        ..GatewayConfig::loopback()
    };
    let trunks = vec![TrunkConfig::new("customer", customer.sip_addr())];
    let gateway = Gateway::start(config, trunks).await.expect("starts");
    let phone = Softphone::attach(&gateway, 440.0)
        .await
        .expect("the agent's peer connects to the advertised address");
    assert_eq!(candidates(&phone.answer), [advertised], "{}", phone.answer);

    let mut events = gateway.events();
    let call = gateway
        .dial(request("customer", LIMIT))
        .await
        .expect("dials");
    wait_for(&mut events, call, LIMIT, |k| *k == CallEventKind::Answered).await;
    gateway.bridge(call, phone.call_ref).await.expect("bridged");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heard = phone.hear_for(Duration::from_millis(800)).await;
    assert_eq!(
        dominant_frequency(&heard, &[440.0, 1000.0], 8000, 1e-4),
        Some(1000.0),
        "the agent hears the customer through the advertised address"
    );
    let received = customer.stats().rtp_received;
    assert!(
        received > 20,
        "the customer's media went to the advertised address and the agent's came back: {received} packets"
    );
    gateway.hangup(call).await.expect("hangs up");

    // Without advertised_ip, a loopback gateway names its bound address.
    let plain = Gateway::start(GatewayConfig::loopback(), Vec::new())
        .await
        .expect("starts");
    let phone = Softphone::attach(&plain, 440.0).await.expect("connects");
    assert_eq!(
        candidates(&phone.answer),
        ["127.0.0.1".parse::<IpAddr>().expect("address")]
    );
}
