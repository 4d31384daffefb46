//! The carrier's signalling: a UAS answering INVITE, CANCEL, BYE and OPTIONS over UDP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::Method;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::{CarrierConfig, Counters, Outcome};
use crate::sip::message::{header_value, uri_of, OutgoingRequest, OutgoingResponse};
use crate::sip::outbound::{contact, via, IdGenerator, ALLOW};
use crate::sip::parse::parse_message;
use crate::sip::sdp::{self, LocalMedia};
use crate::sip::transaction::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use crate::sip::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ring,
    Answer,
    Busy,
    HangUp,
}

struct UasCall {
    invite: rsip::Request,
    key: TransactionKey,
    peer: SocketAddr,
    tag: String,
    outcome: Outcome,
    answered: bool,
    /// Pending actions, soonest first.
    plan: Vec<(Instant, Action)>,
    media_stop: Option<oneshot::Sender<()>>,
}

/// The carrier's UAS state.
pub(super) struct Uas {
    config: CarrierConfig,
    socket: UdpSocket,
    local: SocketAddr,
    /// Source of the message being handled: where the caller's requests go.
    last_source: SocketAddr,
    layer: TransactionLayer,
    ids: IdGenerator,
    rng: StdRng,
    calls: HashMap<String, UasCall>,
    /// What people play, and what machines do.
    samples: [Arc<[i16]>; 2],
    counters: Arc<Counters>,
}

impl Uas {
    pub fn new(
        config: CarrierConfig,
        socket: UdpSocket,
        samples: [Arc<[i16]>; 2],
        counters: Arc<Counters>,
    ) -> Self {
        let local = socket.local_addr().unwrap_or(config.sip_addr);
        Uas {
            rng: StdRng::seed_from_u64(config.seed),
            ids: IdGenerator::from_seed(config.seed),
            config,
            socket,
            local,
            last_source: local,
            layer: TransactionLayer::new(TimerConfig::default()),
            calls: HashMap::new(),
            samples,
            counters,
        }
    }

    pub async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let next = self.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                _ = &mut stopped => return,
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        if let Ok(message) = parse_message(&buf[..n]) {
                            let now = now();
                            self.last_source = from;
                            self.layer.handle_message(message, from, Transport::Udp, now);
                            self.process(now).await;
                        }
                    }
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                    let now = now();
                    self.layer.handle_timeout(now);
                    self.run_plans(now).await;
                    self.process(now).await;
                }
            }
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        let plans = self
            .calls
            .values()
            .filter_map(|c| c.plan.first().map(|p| p.0));
        plans.chain(self.layer.poll_timeout()).min()
    }

    async fn process(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            if let TransactionEvent::Request {
                key: Some(key),
                request,
            } = event
            {
                self.on_request(key, request, now);
            }
        }
        while let Some(transmit) = self.layer.poll_transmit() {
            let _ = self
                .socket
                .try_send_to(&transmit.payload, transmit.destination);
        }
    }

    fn on_request(&mut self, key: TransactionKey, request: rsip::Request, now: Instant) {
        let call_id = header_value(&request.headers, "Call-ID").unwrap_or_default();
        match request.method {
            Method::Invite if self.calls.contains_key(&call_id) => {
                // A re-INVITE: accept whatever is offered, with the media unchanged.
                let tag = self.calls[&call_id].tag.clone();
                let mut response = self.response(&request, 200, &tag);
                let local = LocalMedia {
                    rtp: self.local,
                    session_id: 1,
                    srtp: None,
                };
                if let Ok((answer, _)) = sdp::answer(&local, 2, &request.body) {
                    set_body(&mut response, answer);
                }
                let _ = self.layer.respond(&key, &response, now);
            }
            Method::Invite => self.on_invite(key, request, call_id, now),
            Method::Cancel => {
                let ok = self.response(&request, 200, "");
                let _ = self.layer.respond(&key, &ok, now);
                if let Some(call) = self.calls.remove(&call_id).filter(|c| !c.answered) {
                    self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                    let terminated = self.response(&call.invite, 487, &call.tag);
                    let _ = self.layer.respond(&call.key, &terminated, now);
                }
            }
            Method::Bye => {
                let tag = self.calls.get(&call_id).map(|c| c.tag.clone());
                let status = if tag.is_some() { 200 } else { 481 };
                let response = self.response(&request, status, "");
                let _ = self.layer.respond(&key, &response, now);
                self.calls.remove(&call_id);
            }
            _ => {
                let tag = self.ids.tag();
                let mut response = self.response(&request, 200, &tag);
                response.headers.push(("Allow".into(), ALLOW.into()));
                let _ = self.layer.respond(&key, &response, now);
            }
        }
    }

    fn on_invite(
        &mut self,
        key: TransactionKey,
        invite: rsip::Request,
        call_id: String,
        now: Instant,
    ) {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let total = self.config.mix.total().max(1);
        let outcome = self.config.mix.pick(self.rng.gen_range(0..total));
        let config = &self.config;
        let mut plan = vec![(now + config.ring_delay, Action::Ring)];
        match outcome {
            Outcome::Answer => plan.push((now + config.answer_delay, Action::Answer)),
            Outcome::Machine => plan.push((now + config.machine_answer_delay, Action::Answer)),
            Outcome::Busy => plan = vec![(now + config.ring_delay, Action::Busy)],
            Outcome::NoAnswer => {}
        }
        plan.sort_by_key(|p| p.0);
        let tag = self.ids.tag();
        let trying = OutgoingResponse::to_request(&invite, 100, None);
        let _ = self.layer.respond(&key, &trying, now);
        let peer = self.last_source;
        self.calls.insert(
            call_id,
            UasCall {
                invite,
                key,
                peer,
                tag,
                outcome,
                answered: false,
                plan,
                media_stop: None,
            },
        );
    }

    async fn run_plans(&mut self, now: Instant) {
        let due: Vec<(String, Action)> = self
            .calls
            .iter_mut()
            .filter(|(_, c)| c.plan.first().is_some_and(|p| p.0 <= now))
            .map(|(id, c)| (id.clone(), c.plan.remove(0).1))
            .collect();
        for (call_id, action) in due {
            self.act(&call_id, action, now).await;
        }
    }

    async fn act(&mut self, call_id: &str, action: Action, now: Instant) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let (invite, key, tag) = (call.invite.clone(), call.key.clone(), call.tag.clone());
        match action {
            Action::Ring => {
                let ringing = self.response(&invite, 180, &tag);
                let _ = self.layer.respond(&key, &ringing, now);
            }
            Action::Busy => {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                let busy = self.response(&invite, 486, &tag);
                let _ = self.layer.respond(&key, &busy, now);
                self.calls.remove(call_id);
            }
            Action::Answer => self.answer(call_id, now).await,
            Action::HangUp => self.hang_up(call_id, now),
        }
    }

    async fn answer(&mut self, call_id: &str, now: Instant) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let (invite, key, tag, outcome) = (
            call.invite.clone(),
            call.key.clone(),
            call.tag.clone(),
            call.outcome,
        );
        let Ok(socket) = UdpSocket::bind(SocketAddr::new(self.local.ip(), 0)).await else {
            return;
        };
        let Ok(rtp) = socket.local_addr() else { return };
        let local = LocalMedia {
            rtp,
            session_id: self.ids.number(),
            srtp: None,
        };
        let offer = if self.counters.no_telephone_events.load(Ordering::Relaxed) {
            without_telephone_event(&invite.body)
        } else {
            invite.body.clone()
        };
        let Ok((answer, media)) = sdp::answer(&local, 1, &offer) else {
            let refused = self.response(&invite, 488, &tag);
            let _ = self.layer.respond(&key, &refused, now);
            self.calls.remove(call_id);
            return;
        };
        let mut ok = self.response(&invite, 200, &tag);
        set_body(&mut ok, answer);
        let _ = self.layer.respond(&key, &ok, now);
        let answered = self.counters.answered.fetch_add(1, Ordering::Relaxed);
        // Legs are numbered in order of answer; u32 wraps only after four billion calls.
        let stamp_leg = self.config.count_frames.then_some(answered as u32);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(super::media::play(
            socket,
            media,
            self.samples[usize::from(outcome == Outcome::Machine)].clone(),
            stamp_leg,
            self.counters.clone(),
            stopped,
        ));
        let hangup = match outcome {
            Outcome::Machine => Some(self.config.machine_greeting),
            _ => self.config.hangup_after,
        };
        if let Some(call) = self.calls.get_mut(call_id) {
            call.answered = true;
            call.media_stop = Some(stop);
            if let Some(after) = hangup {
                call.plan.push((now + after, Action::HangUp));
            }
        }
    }

    fn hang_up(&mut self, call_id: &str, now: Instant) {
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        let invite = &call.invite;
        let target = header_value(&invite.headers, "Contact")
            .map(|c| uri_of(&c).to_string())
            .unwrap_or_else(|| invite.uri.to_string());
        let from = header_value(&invite.headers, "To").unwrap_or_default();
        let request = OutgoingRequest {
            method: Method::Bye,
            uri: target,
            headers: vec![
                (
                    "Via".into(),
                    via(self.local, Transport::Udp, &self.ids.branch()),
                ),
                ("Max-Forwards".into(), "70".into()),
                ("From".into(), format!("{from};tag={}", call.tag)),
                (
                    "To".into(),
                    header_value(&invite.headers, "From").unwrap_or_default(),
                ),
                (
                    "Call-ID".into(),
                    header_value(&invite.headers, "Call-ID").unwrap_or_default(),
                ),
                ("CSeq".into(), "1 BYE".into()),
            ],
            body: Vec::new(),
        };
        let _ = self
            .layer
            .send_request(request, call.peer, Transport::Udp, now);
    }

    fn response(&self, request: &rsip::Request, status: u16, tag: &str) -> OutgoingResponse {
        let tag = (!tag.is_empty()).then_some(tag);
        let mut response = OutgoingResponse::to_request(request, status, tag);
        if matches!(status, 180 | 200) {
            response
                .headers
                .push(("Contact".into(), contact(self.local, Transport::Udp)));
        }
        if status == 486 {
            response.reason = "Busy Here".into();
        }
        response
    }
}

/// Returns an offer with its telephone-event format taken out, so the answer leaves it out.
fn without_telephone_event(offer: &[u8]) -> Vec<u8> {
    let Some(pt) = sdp::negotiate(offer).ok().and_then(|m| m.telephone_event) else {
        return offer.to_vec();
    };
    let text = String::from_utf8_lossy(offer);
    let format = pt.to_string();
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        let about_pt = [format!("a=rtpmap:{pt} "), format!("a=fmtp:{pt} ")]
            .iter()
            .any(|prefix| bare.starts_with(prefix.as_str()));
        if about_pt {
            continue;
        }
        if let Some(media) = bare.strip_prefix("m=audio ") {
            let kept: Vec<&str> = media.split(' ').filter(|f| *f != format).collect();
            out.push_str(&format!("m=audio {}\r\n", kept.join(" ")));
            continue;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

fn set_body(response: &mut OutgoingResponse, sdp: String) {
    response
        .headers
        .push(("Content-Type".into(), "application/sdp".into()));
    response.body = sdp.into_bytes();
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
