//! The live picture of one account: agents, calls and campaign figures,
//! kept by applying events in order. A sans-IO core: events go in, a
//! snapshot comes out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crm::events::{AgentState, CallPhase, CampaignFigures, Event};
use crm::model::{CampaignId, QueueId, UserId};
use serde::Serialize;
use vocab::CallRef;

/// One agent on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    /// The agent.
    pub user_id: UserId,
    /// The login name.
    pub username: String,
    /// What they are doing.
    pub state: AgentState,
    /// Why they paused.
    pub pause_code: Option<String>,
    /// Since when they are in this state.
    pub since: DateTime<Utc>,
}

/// One live call on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallView {
    /// The call's opaque reference.
    pub call_ref: CallRef,
    /// The campaign that placed it.
    pub campaign_id: Option<CampaignId>,
    /// Where it is.
    pub state: CallPhase,
    /// The agent on it.
    pub agent: Option<UserId>,
    /// When the call started.
    pub started: DateTime<Utc>,
}

/// A campaign's latest figures from one node dialling it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignView {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The node whose figures they are.
    pub node: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: CampaignFigures,
    /// When they were taken.
    pub at: DateTime<Utc>,
}

/// A trunk's tile on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrunkView {
    /// The node whose gateway holds it.
    pub node: String,
    /// Its name.
    pub trunk: String,
    /// Whether it takes new calls.
    pub up: bool,
    /// Since when it is in this state (or since it was first seen).
    pub since: DateTime<Utc>,
}

/// A queue's tile from one node: its callers waiting and agents free there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueView {
    /// The queue.
    pub queue_id: QueueId,
    /// The node whose switchboard reported it.
    pub node: String,
    /// Callers waiting.
    pub waiting: u32,
    /// How long the caller waiting longest had waited, in seconds, at `at`.
    pub longest_wait_secs: u64,
    /// Agents free to take its calls.
    pub agents_free: u32,
    /// Today's service level, when the node had read it.
    pub service_level: Option<f64>,
    /// When it was reported.
    pub at: DateTime<Utc>,
}

/// How much older than a campaign's newest figures another node's may be
/// and still count: runners report every second.
const FIGURES_STALE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// The state a snapshot shows.
#[derive(Debug, Default, Clone)]
pub struct Wallboard {
    agents: BTreeMap<UserId, AgentView>,
    calls: BTreeMap<CallRef, CallView>,
    campaigns: BTreeMap<(CampaignId, String), CampaignView>,
    trunks: BTreeMap<(String, String), TrunkView>,
    queues: BTreeMap<(QueueId, String), QueueView>,
}

/// A snapshot of a wallboard, ready to serialise.
#[derive(Debug, Serialize)]
pub struct Snapshot<'a> {
    /// The agents, by id.
    pub agents: Vec<&'a AgentView>,
    /// The live calls, by reference.
    pub calls: Vec<&'a CallView>,
    /// The campaigns' figures, by id and node: one entry for each node
    /// dialling the campaign, to be added up.
    pub campaigns: Vec<&'a CampaignView>,
    /// The trunks, by node and name.
    pub trunks: Vec<&'a TrunkView>,
    /// The queues, by id and node: one entry for each node taking its
    /// calls, to be added up.
    pub queues: Vec<&'a QueueView>,
}

impl Wallboard {
    /// Applies one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::AgentState {
                user_id,
                username,
                state,
                pause_code,
                at,
                ..
            } => {
                if *state == AgentState::LoggedOut {
                    self.agents.remove(user_id);
                } else {
                    self.agents.insert(
                        *user_id,
                        AgentView {
                            user_id: *user_id,
                            username: username.clone(),
                            state: *state,
                            pause_code: pause_code.clone(),
                            since: *at,
                        },
                    );
                }
            }
            Event::CallState {
                call_ref,
                campaign_id,
                state,
                agent,
                at,
                ..
            } => {
                if matches!(state, CallPhase::Ended) {
                    self.calls.remove(call_ref);
                } else {
                    let view = self.calls.entry(*call_ref).or_insert_with(|| CallView {
                        call_ref: *call_ref,
                        campaign_id: *campaign_id,
                        state: *state,
                        agent: None,
                        started: *at,
                    });
                    view.state = *state;
                    if *state == CallPhase::Voicemail {
                        // A message being left has no agent on it any more.
                        view.agent = None;
                    } else if agent.is_some() {
                        view.agent = *agent;
                    }
                }
            }
            Event::CampaignFigures {
                campaign_id,
                node,
                figures,
                at,
                ..
            } => {
                self.campaigns.insert(
                    (*campaign_id, node.clone()),
                    CampaignView {
                        campaign_id: *campaign_id,
                        node: node.clone(),
                        figures: figures.clone(),
                        at: *at,
                    },
                );
                // A node that stopped dialling the campaign (or died) no
                // longer counts beside those that report every second.
                let cutoff = *at - FIGURES_STALE;
                self.campaigns
                    .retain(|(c, _), v| c != campaign_id || v.at >= cutoff);
            }
            Event::TrunkState {
                node,
                trunk,
                up,
                at,
                ..
            } => self.note_trunk(node, trunk, *up, *at),
            Event::QueueStatus {
                queue_id,
                node,
                waiting,
                longest_wait_secs,
                agents_free,
                service_level,
                at,
                ..
            } => {
                self.queues.insert(
                    (*queue_id, node.clone()),
                    QueueView {
                        queue_id: *queue_id,
                        node: node.clone(),
                        waiting: *waiting,
                        longest_wait_secs: *longest_wait_secs,
                        agents_free: *agents_free,
                        service_level: *service_level,
                        at: *at,
                    },
                );
            }
            Event::ImportProgress { .. }
            | Event::ContactEdited { .. }
            | Event::Alert { .. }
            | Event::PreviewOffered { .. }
            | Event::DialRefused { .. }
            | Event::QueueCall { .. }
            | Event::AgentNotAnswering { .. }
            | Event::SessionsRevoked { .. } => {}
        }
    }

    /// Returns what a newly connected wallboard should show.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            agents: self.agents.values().collect(),
            calls: self.calls.values().collect(),
            campaigns: self.campaigns.values().collect(),
            trunks: self.trunks.values().collect(),
            queues: self.queues.values().collect(),
        }
    }

    /// Notes a trunk's state; a repeat of the same state keeps its start.
    pub fn note_trunk(&mut self, node: &str, trunk: &str, up: bool, at: DateTime<Utc>) {
        let key = (node.to_owned(), trunk.to_owned());
        if self.trunks.get(&key).is_none_or(|t| t.up != up) {
            self.trunks.insert(
                key,
                TrunkView {
                    node: node.to_owned(),
                    trunk: trunk.to_owned(),
                    up,
                    since: at,
                },
            );
        }
    }

    /// The trunks as this wallboard knows them, to seed another's.
    pub fn trunks(&self) -> impl Iterator<Item = &TrunkView> {
        self.trunks.values()
    }

    /// Starts a wallboard that already knows the trunks.
    pub fn with_trunks<'a>(trunks: impl IntoIterator<Item = &'a TrunkView>) -> Wallboard {
        Wallboard {
            trunks: trunks
                .into_iter()
                .map(|t| ((t.node.clone(), t.trunk.clone()), t.clone()))
                .collect(),
            ..Wallboard::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use crm::model::AccountId;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .expect("valid")
    }

    fn call(call_ref: u128, state: CallPhase, agent: Option<i64>, t: i64) -> Event {
        Event::CallState {
            account: AccountId(1),
            call_ref: CallRef::from_u128(call_ref),
            campaign_id: Some(CampaignId(7)),
            state,
            agent: agent.map(UserId),
            cause: None,
            at: at(t),
        }
    }

    #[test]
    fn a_queue_tile_keeps_each_nodes_latest_report() {
        let status = |node: &str, waiting: u32, level: Option<f64>, t: i64| Event::QueueStatus {
            account: AccountId(1),
            queue_id: QueueId(4),
            node: node.into(),
            waiting,
            longest_wait_secs: 12,
            agents_free: 1,
            service_level: level,
            at: at(t),
        };
        let mut w = Wallboard::default();
        w.apply(&status("a", 2, None, 0));
        w.apply(&status("b", 1, Some(0.9), 1));
        w.apply(&status("a", 3, Some(0.8), 2));
        let seen: Vec<(String, u32, Option<f64>)> = w
            .snapshot()
            .queues
            .iter()
            .map(|q| (q.node.clone(), q.waiting, q.service_level))
            .collect();
        assert_eq!(
            seen,
            [
                ("a".to_owned(), 3, Some(0.8)),
                ("b".to_owned(), 1, Some(0.9))
            ]
        );
    }

    #[test]
    fn each_node_s_campaign_figures_are_kept_until_the_node_stops_reporting() {
        let figures = |node: &str, lines: u32, t: i64| Event::CampaignFigures {
            account: AccountId(1),
            campaign_id: CampaignId(7),
            node: node.into(),
            figures: CampaignFigures {
                lines_in_use: lines,
                ..CampaignFigures::default()
            },
            at: at(t),
        };
        let mut w = Wallboard::default();
        w.apply(&figures("a", 3, 0));
        w.apply(&figures("b", 2, 1));
        w.apply(&figures("a", 4, 2));
        let lines = |w: &Wallboard| -> Vec<(String, u32)> {
            w.snapshot()
                .campaigns
                .iter()
                .map(|c| (c.node.clone(), c.figures.lines_in_use))
                .collect()
        };
        assert_eq!(
            lines(&w),
            [("a".to_owned(), 4), ("b".to_owned(), 2)],
            "one entry per node, the latest of each"
        );
        // b stops reporting (it died, or stopped dialling the campaign).
        w.apply(&figures("a", 1, 11));
        assert_eq!(lines(&w), [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        w.apply(&figures("a", 1, 12));
        assert_eq!(lines(&w), [("a".to_owned(), 1)], "b no longer counts");
    }

    #[test]
    fn a_trunk_tile_keeps_its_start_until_its_state_changes() {
        let trunk = |up: bool, t: i64| Event::TrunkState {
            account: AccountId(1),
            node: "n1".into(),
            trunk: "main".into(),
            up,
            at: at(t),
        };
        let mut w = Wallboard::default();
        w.apply(&trunk(true, 0));
        w.apply(&trunk(true, 5));
        assert_eq!(
            w.snapshot().trunks[0].since,
            at(0),
            "a repeat keeps the start"
        );
        w.apply(&trunk(false, 9));
        let s = w.snapshot();
        assert_eq!(s.trunks.len(), 1);
        assert!(!s.trunks[0].up);
        assert_eq!(s.trunks[0].since, at(9));
        let seeded = Wallboard::with_trunks(w.trunks());
        assert_eq!(seeded.snapshot().trunks, s.trunks);
        assert!(seeded.snapshot().agents.is_empty());
    }

    #[test]
    fn a_call_appears_connects_and_leaves() {
        let mut w = Wallboard::default();
        w.apply(&call(1, CallPhase::Dialling, None, 0));
        w.apply(&call(1, CallPhase::Answered, None, 5));
        w.apply(&call(1, CallPhase::Connected, Some(3), 6));
        let s = w.snapshot();
        assert_eq!(s.calls.len(), 1);
        assert_eq!(s.calls[0].state, CallPhase::Connected);
        assert_eq!(s.calls[0].agent, Some(UserId(3)));
        assert_eq!(s.calls[0].started, at(0));
        w.apply(&call(1, CallPhase::Ended, None, 60));
        assert!(w.snapshot().calls.is_empty());
    }

    #[test]
    fn a_call_left_a_voicemail_by_its_agent_shows_no_agent() {
        let mut w = Wallboard::default();
        w.apply(&call(1, CallPhase::Dialling, None, 0));
        w.apply(&call(1, CallPhase::Connected, Some(3), 6));
        w.apply(&call(1, CallPhase::Voicemail, Some(3), 9));
        let s = w.snapshot();
        assert_eq!(s.calls[0].state, CallPhase::Voicemail);
        assert_eq!(s.calls[0].agent, None, "the agent moved on");
    }

    #[test]
    fn agents_come_and_go() {
        let mut w = Wallboard::default();
        let agent = |state, t| Event::AgentState {
            account: AccountId(1),
            user_id: UserId(3),
            username: "al".into(),
            state,
            pause_code: None,
            at: at(t),
        };
        w.apply(&agent(AgentState::Paused, 0));
        w.apply(&agent(AgentState::Ready, 10));
        assert_eq!(w.snapshot().agents[0].state, AgentState::Ready);
        assert_eq!(w.snapshot().agents[0].since, at(10));
        w.apply(&agent(AgentState::LoggedOut, 20));
        assert!(w.snapshot().agents.is_empty());
    }
}
