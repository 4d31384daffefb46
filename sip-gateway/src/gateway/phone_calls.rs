//! Calls from the gateway to agents' registered desk phones, so that a phone can be an
//! agent's audio leg.
//!
//! The INVITE goes straight to the phone's binding: its contact as Request-URI, sent to the
//! address its REGISTER came from over the same transport (over TCP, through the connection
//! the phone keeps open). It names the service, not anyone in the CRM, offers G.711 over
//! plain RTP, and carries no credentials: a phone that challenges it is not called again.
//! Once placed, the call is like one through a trunk: an RTP leg from the port range, its
//! events on the broadcast, and bridge, record, play, hold, digits and listening apply.

use std::net::SocketAddr;
use std::time::Instant;

use super::engine::{Attempt, CallCore, CallEntry, Engine, PhoneCall, Route};
use super::leg;
use super::types::{CallRef, DialError, DialRequest};
use crate::sip::{Call, PhoneCallParams, Transport};

impl Engine {
    /// Calls the desk phone registered as `call.sip_username`.
    pub(crate) async fn call_phone(
        &mut self,
        call: PhoneCall,
        now: Instant,
    ) -> Result<CallRef, DialError> {
        let PhoneCall {
            sip_username,
            call_ref,
            ring_timeout,
        } = call;
        if self.calls.contains_key(&call_ref) || self.agents.contains_key(&call_ref) {
            return Err(DialError::DuplicateRef);
        }
        let phones = self.phones.as_ref().ok_or(DialError::PhoneNotRegistered)?;
        let target = phones
            .target(&sip_username, now)
            .ok_or(DialError::PhoneNotRegistered)?;
        let domain = phones.realm().to_string();
        let span = tracing::info_span!("call", %call_ref);
        tracing::debug!(parent: &span, user = %sip_username, "calling a desk phone");
        let socket = self.ports.bind().map_err(DialError::NoMediaPort)?;
        let port = socket.local_addr().map_err(DialError::NoMediaPort)?.port();
        let local_sip = self.local_sip_towards(target.address, target.transport);
        let advertised = SocketAddr::new(local_sip.ip(), port);
        let params = PhoneCallParams {
            contact: target.contact,
            username: sip_username,
            domain,
            address: target.address,
            transport: target.transport,
            ring_timeout,
            local_sip,
            local_rtp: advertised,
            timers: self.sip_timers,
        };
        let call = Call::to_phone(params, now)?;
        let call_id = call.call_id().to_string();
        self.attempts.insert(
            call_id.clone(),
            Attempt {
                call: CallCore::Placed(call),
                call_ref,
                route: Route::Phone {
                    address: target.address,
                    transport: target.transport,
                },
                ended: false,
                scheduled: None,
            },
        );
        self.next_leg_id += 1;
        let leg = leg::spawn(
            call_ref,
            self.next_leg_id,
            socket,
            advertised,
            self.config.media_timeout,
            self.leg_events.clone(),
        );
        tracing::info!(parent: &span, transport = ?target.transport, "desk phone called");
        self.calls.insert(
            call_ref,
            CallEntry {
                // No trunk, number or caller ID: nothing of the CRM goes to a phone.
                request: DialRequest {
                    number: String::new(),
                    caller_id: String::new(),
                    trunk: String::new(),
                    ring_timeout,
                    call_ref,
                    detect_machine: false,
                },
                call_id: call_id.clone(),
                fallbacks: Vec::new(),
                leg,
                span,
                answered: false,
                ending: None,
            },
        );
        self.drive(&call_id, now);
        Ok(call_ref)
    }

    /// Returns our SIP address as a phone at `peer` reaches it over `transport`.
    fn local_sip_towards(&self, peer: SocketAddr, transport: Transport) -> SocketAddr {
        let port = match (transport, self.sip_tcp) {
            (Transport::Tcp | Transport::Tls, Some(tcp)) => tcp.port(),
            _ => self.sip_udp.port(),
        };
        let ip = super::local_ip(&self.config, self.sip_udp.ip(), peer);
        SocketAddr::new(ip, port)
    }
}
