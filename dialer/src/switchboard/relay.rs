//! Desk phones across nodes: an agent's desk phone registers with one node
//! of the service, while their page may be served by another. That node
//! calls the phone's node through the trunk that leads to it, dialling the
//! phone's relay number (the agent, as [`relay_number`] writes them, with
//! their account as the caller ID); the phone's node rings the phone,
//! answers once it does, and bridges the two calls. The agent's audio leg
//! is then the call between the nodes, carried on to the phone, and
//! everything that works with a leg (outbound, queue calls, hold,
//! recording, listening) works with it. Either end hanging up ends both.

use std::time::Duration;

use crm::model::{AccountId, UserId};
use sip_gateway::gateway::{CallEventKind, CallRef};
use tokio::sync::mpsc;

use super::Switchboard;

/// How a relay number starts: no dialled number of a provider does, so
/// it never reads as a queue's.
const RELAY_PREFIX: &str = "000";

/// How long a desk phone rings for an agent on another node.
const RELAY_RING: Duration = Duration::from_secs(60);

/// The number another node dials to reach `user`'s desk phone here, and
/// the caller ID it presents (their account); `None` for ids too long.
pub fn relay_number(account: AccountId, user: UserId) -> Option<(String, String)> {
    let number = format!("{RELAY_PREFIX}{:012}", user.0);
    let caller = format!("{:010}", account.0);
    (number.len() <= 20 && caller.len() <= 20 && user.0 >= 0 && account.0 >= 0)
        .then_some((number, caller))
}

/// The agent and account a relay number and caller ID name.
fn relayed(number: &str, caller: Option<&str>) -> Option<(AccountId, UserId)> {
    let user = number.strip_prefix(RELAY_PREFIX)?.parse().ok()?;
    let account = caller?.trim_start_matches('+').parse().ok()?;
    Some((AccountId(account), UserId(user)))
}

/// A call from another node carried on to a desk phone here.
pub(super) struct Relay {
    /// The call from the other node.
    pub(super) from: CallRef,
    /// Whether the phone answered (and so the call from the node was).
    pub(super) answered: bool,
}

impl Switchboard {
    /// Whether a call from another node dials a desk phone's relay number.
    pub(super) fn is_relay(number: &str) -> bool {
        number.starts_with(RELAY_PREFIX)
    }

    /// Another node asks for an agent's desk phone registered here: it
    /// rings (and the other node hears it ring); answered, the two calls
    /// are bridged. A phone not registered here gets the other node 404.
    pub(super) async fn relay_in(&mut self, call: CallRef, number: &str, caller: Option<String>) {
        let Some((account, user)) = relayed(number, caller.as_deref()) else {
            let _ = self.gateway.reject(call, 404).await;
            return;
        };
        let phone = match self.store.desk_phones(account).await {
            Ok(phones) => phones.into_iter().find(|p| p.user_id == user),
            Err(e) => {
                tracing::warn!(%call, error = %e, "looking up a desk phone to relay to failed");
                let _ = self.gateway.reject(call, 503).await;
                return;
            }
        };
        let registered = match &phone {
            Some(p) => matches!(self.gateway.phone(&p.sip_username).await, Ok(Some(_))),
            None => false,
        };
        let Some(phone) = phone.filter(|_| registered) else {
            let _ = self.gateway.reject(call, 404).await;
            return;
        };
        let _ = self.gateway.ring(call).await;
        let leg = CallRef::random();
        let (tx, events) = mpsc::unbounded_channel();
        self.forward_events(leg, events);
        self.relays.insert(
            leg,
            Relay {
                from: call,
                answered: false,
            },
        );
        self.relayed_from.insert(call, leg);
        tracing::info!(%call, agent = %user, "ringing a desk phone for an agent on another node");
        if let Err(e) = self
            .gateway
            .call_phone_watched(&phone.sip_username, leg, RELAY_RING, tx)
            .await
        {
            tracing::info!(%call, error = %e, "a desk phone could not be rung for another node");
            self.relays.remove(&leg);
            self.relayed_from.remove(&call);
            let _ = self.gateway.reject(call, 480).await;
        }
    }

    /// An event of a desk phone rung for another node.
    pub(super) async fn relay_phone_event(&mut self, leg: CallRef, event: CallEventKind) {
        match event {
            CallEventKind::Answered => {
                let Some(relay) = self.relays.get_mut(&leg) else {
                    return;
                };
                relay.answered = true;
                let from = relay.from;
                let answered = self.gateway.answer(from).await.is_ok();
                if !answered || self.gateway.bridge(from, leg).await.is_err() {
                    tracing::info!(call = %from, "the other node's call went before the phone answered");
                    let _ = self.gateway.hangup(leg).await;
                }
            }
            CallEventKind::Ended { .. } => {
                let Some(relay) = self.relays.remove(&leg) else {
                    return;
                };
                self.relayed_from.remove(&relay.from);
                if relay.answered {
                    let _ = self.gateway.hangup(relay.from).await;
                } else {
                    let _ = self.gateway.reject(relay.from, 480).await;
                }
            }
            _ => {}
        }
    }

    /// An event of a call from another node relayed to a desk phone.
    pub(super) async fn relay_call_event(&mut self, call: CallRef, event: CallEventKind) {
        if let CallEventKind::Ended { .. } = event {
            if let Some(leg) = self.relayed_from.remove(&call) {
                self.relays.remove(&leg);
                let _ = self.gateway.hangup(leg).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_number_names_the_agent_and_reads_as_no_queue_number() {
        let (number, caller) = relay_number(AccountId(7), UserId(42)).expect("short ids");
        assert_eq!(number, "000000000000042");
        assert!(Switchboard::is_relay(&number));
        assert!(!Switchboard::is_relay("+441632960001"));
        assert_eq!(
            relayed(&number, Some(&caller)),
            Some((AccountId(7), UserId(42)))
        );
        assert_eq!(relayed("+441632960001", Some(&caller)), None);
        assert_eq!(relayed(&number, None), None, "the account is needed");
    }
}
