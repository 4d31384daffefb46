//! Callers handed between the nodes of the service: a node with a caller
//! waiting and no free agent of the queue, where another node has one,
//! calls that node through the trunk that leads to it (a peer trunk named
//! by its `node_id`) and bridges the caller into that call. The receiving
//! node takes the call's attempt over from the shared database (the
//! INVITE's caller ID names the attempt, nothing else of the CRM), so the
//! call keeps its start, caller and queue and is counted once, where it
//! ends; the caller keeps their place and their overflow time, and skips
//! the welcome they heard. A call that does not get there (refused, or no
//! answer) waits again where it was.
//!
//! Each node learns the others' free agents from their queue statuses on
//! the shared bus; a call is handed over at most once, and never back.

use std::sync::Arc;
use std::time::Duration;

use crm::events::{CallPhase, Event};
use crm::model::AttemptId;
use dialer_core::acd::{QueueId, Waiting};
use sip_gateway::gateway::{CallEventKind, CallRef, DialRequest};
use tokio::sync::{broadcast, mpsc};

use super::{e164, Caller, Stage, Switchboard};

/// How long the other node has to answer a call handed to it.
const HANDOVER_RING: Duration = Duration::from_secs(10);

/// The other nodes a switchboard may hand callers to.
#[derive(Debug, Default)]
pub struct Peers {
    /// The names of the trunks that lead to them: each their `node_id`.
    pub trunks: Vec<String>,
    /// The events of every node (the shared bus), where their queue
    /// statuses say how many agents they have free.
    pub events: Option<broadcast::Receiver<Arc<Event>>>,
}

/// The next event of the shared bus; never, without one.
pub(super) async fn next_peer_event(
    events: &mut Option<broadcast::Receiver<Arc<Event>>>,
) -> Result<Arc<Event>, broadcast::error::RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

impl Switchboard {
    /// Notes another node's free agents, from its queue status.
    pub(super) fn peer_event(&mut self, event: &Event) {
        if let Event::QueueStatus {
            queue_id,
            node,
            agents_free,
            ..
        } = event
        {
            if node != self.floor.node() && self.peers.contains(node) {
                self.remote
                    .entry(*queue_id)
                    .or_default()
                    .insert(node.clone(), *agents_free);
            }
        }
    }

    /// Hands each queue's longest-waiting caller to another node when no
    /// agent of the queue is free here and one is there.
    pub(super) async fn hand_over_waiting(&mut self) {
        let queues: Vec<QueueId> = self.remote.keys().copied().collect();
        for queue in queues {
            if self.acd.free_in(queue) > 0 {
                continue;
            }
            for (call, _) in self.acd.waiting_in(queue) {
                let Some(caller) = self.calls.get(&call) else {
                    continue;
                };
                if caller.handed_in || caller.stage != Stage::Waiting {
                    continue;
                }
                let Some(node) = self.freest_peer(queue, &caller.tried) else {
                    break;
                };
                self.hand_over(call, queue, node).await;
            }
        }
    }

    /// The other node with the most free agents of `queue`, not yet tried.
    fn freest_peer(&self, queue: QueueId, tried: &[String]) -> Option<String> {
        self.remote
            .get(&queue)?
            .iter()
            .filter(|(node, free)| **free > 0 && !tried.contains(node))
            .max_by_key(|(node, free)| (**free, std::cmp::Reverse((*node).clone())))
            .map(|(node, _)| node.clone())
    }

    /// Calls `node` for a waiting caller, who hears the music meanwhile.
    async fn hand_over(&mut self, call: CallRef, queue: QueueId, node: String) {
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        // Counted as taken until that node says otherwise.
        if let Some(free) = self.remote.get_mut(&queue).and_then(|q| q.get_mut(&node)) {
            *free = free.saturating_sub(1);
        }
        caller.tried.push(node.clone());
        let number = if caller
            .number
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'+')
        {
            caller.number.clone()
        } else {
            e164(&caller.number).unwrap_or_default()
        };
        let peer = CallRef::random();
        let request = DialRequest {
            number,
            // The attempt the other node takes over, nothing of the caller:
            // padded, as a caller ID has at least three digits.
            caller_id: format!("{:010}", caller.attempt.0),
            trunk: node.clone(),
            ring_timeout: HANDOVER_RING,
            call_ref: peer,
            detect_machine: false,
        };
        self.acd.call_gone(call);
        caller.stage = Stage::HandingOver { peer };
        self.handovers.insert(peer, call);
        let (tx, events) = mpsc::unbounded_channel();
        self.forward_events(peer, events);
        tracing::info!(%call, %node, "handing a caller to another node with a free agent");
        if let Err(e) = self.gateway.dial_watched(request, tx).await {
            tracing::warn!(%call, %node, error = %e, "a caller could not be handed to another node");
            self.handovers.remove(&peer);
            self.back_in_queue(call).await;
        }
    }

    /// An event of a call carrying a caller to another node.
    pub(super) async fn peer_call_event(&mut self, peer: CallRef, event: CallEventKind) {
        let Some(&call) = self.handovers.get(&peer) else {
            return;
        };
        match event {
            CallEventKind::Answered => {
                let handing =
                    self.calls.get(&call).map(|c| c.stage) == Some(Stage::HandingOver { peer });
                if !handing {
                    self.handovers.remove(&peer);
                    let _ = self.gateway.hangup(peer).await;
                    return;
                }
                self.stop_waiting_sound(call).await;
                if let Err(e) = self.gateway.bridge(call, peer).await {
                    tracing::warn!(%call, error = %e, "bridging a caller to another node failed");
                    let _ = self.gateway.hangup(call).await;
                    return;
                }
                let Some(caller) = self.calls.get_mut(&call) else {
                    return;
                };
                caller.stage = Stage::HandedOver { peer };
                let (account, campaign, queue) = (
                    caller.account,
                    caller.queue.settings.campaign_id,
                    caller.queue.id,
                );
                tracing::info!(%call, "caller handed over");
                // The other node shows it under its own reference from now on.
                let cause = Some("handed_over".into());
                let told = self.call_event(account, call, campaign, CallPhase::Ended, None, cause);
                self.bus.publish(told);
                self.publish_queue(account, queue);
            }
            CallEventKind::Ended { .. } => {
                self.handovers.remove(&peer);
                match self.calls.get(&call).map(|c| c.stage) {
                    // The other node is done with it: so is the caller.
                    Some(Stage::HandedOver { .. }) => {
                        let _ = self.gateway.hangup(call).await;
                    }
                    // It never got there: the caller waits on here.
                    Some(Stage::HandingOver { .. }) => self.back_in_queue(call).await,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A caller whose handing over failed waits again in their place, the
    /// music still playing.
    async fn back_in_queue(&mut self, call: CallRef) {
        let now = Self::now();
        let Some(caller) = self.calls.get_mut(&call) else {
            return;
        };
        caller.stage = Stage::Waiting;
        let since = caller.wait_since.unwrap_or(now);
        let waiting = Waiting {
            call,
            queue: caller.queue.id,
            since,
            priority: caller.queue.settings.priority,
            preferred: None,
            prefer_until: None,
            overflow_at: Some(
                since + Duration::from_secs(u64::from(caller.queue.settings.max_wait_secs)),
            ),
        };
        let (account, queue) = (caller.account, caller.queue.id);
        self.acd.call_waiting(waiting, now);
        // Past its overflow time meanwhile: the overflow comes at once.
        self.acd.handle_timeout(now);
        self.publish_queue(account, queue);
    }

    /// Takes a caller another node hands over: the call's attempt comes
    /// here, and the caller waits in the queue with the time they waited
    /// there, without the welcome again.
    pub(super) async fn handed_in(
        &mut self,
        call_ref: CallRef,
        number: String,
        attempt: Option<String>,
    ) {
        let attempt = attempt
            .and_then(|a| a.trim_start_matches('+').parse::<i64>().ok())
            .map(AttemptId);
        let routed = match (attempt, self.route(&number).await) {
            (Some(attempt), Ok(Some(queue))) => (attempt, queue),
            (_, Err(e)) => {
                tracing::warn!(call = %call_ref, error = %e, "routing a handed-over call failed");
                let _ = self.gateway.reject(call_ref, 503).await;
                return;
            }
            _ => {
                tracing::info!(call = %call_ref, "another node handed over a call that is not ours");
                let _ = self.gateway.reject(call_ref, 404).await;
                return;
            }
        };
        let (attempt, queue) = routed;
        let wall = self.clock.now();
        let moved = self
            .store
            .inbound_call_moved(&queue, attempt, call_ref, &self.floor.holder(), wall)
            .await;
        let (arrived, started) = match moved {
            Ok(Some(moved)) => moved,
            Ok(None) => {
                tracing::info!(call = %call_ref, "a handed-over call's attempt is gone");
                let _ = self.gateway.reject(call_ref, 404).await;
                return;
            }
            Err(e) => {
                tracing::warn!(call = %call_ref, error = %e, "taking over a handed-over call failed");
                let _ = self.gateway.reject(call_ref, 503).await;
                return;
            }
        };
        if let Err(e) = self.gateway.answer(call_ref).await {
            tracing::info!(call = %call_ref, error = %e, "a handed-over call went before the answer");
        }
        let now = Self::now();
        let waited = (wall - started).to_std().unwrap_or_default();
        let answered = now.checked_sub(waited).unwrap_or(now);
        let (account, campaign, queue_id) =
            (queue.account_id, queue.settings.campaign_id, queue.id);
        tracing::info!(call = %call_ref, "a caller handed over by another node waits here");
        self.calls.insert(
            call_ref,
            Caller {
                account,
                contact: arrived.contact_id,
                stage: Stage::Waiting,
                deadline: None,
                recording: None,
                music: false,
                last_agent: arrived.last_agent,
                queue,
                answered,
                waited: None,
                phone: None,
                number,
                attempt,
                wait_since: Some(answered),
                handed_in: true,
                tried: Vec::new(),
            },
        );
        self.publish_queued(account, call_ref, campaign);
        self.wait(call_ref).await;
        self.publish_queue(account, queue_id);
    }
}
