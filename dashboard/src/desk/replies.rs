//! The page's messages: the welcome, and the desk's replies with the
//! contact cards and dispositions they carry.

use crm::model::{CampaignId, CampaignStatus, ContactId};
use crm::script::{Merge, Rendered};
use crm::store::SearchScope;
use dialer_core::desk::Reply;
use sip_gateway::gateway::CallRef;

use super::protocol::{
    CampaignSummary, CardField, ContactCard, InboundCard, ServerMessage, VERSION,
};
use super::session::{error, Session};

/// How many of the newest timeline entries a card carries.
const CARD_TIMELINE: usize = 10;

impl Session {
    /// Returns the first message of a connection: who the agent is and
    /// what they may work.
    pub(super) async fn welcome(&self) -> ServerMessage {
        let account = self.user.account_id;
        let mut campaigns = Vec::new();
        let mine = self
            .state
            .store
            .agent_campaigns(account, self.user.id)
            .await
            .unwrap_or_default();
        if let Ok(all) = self.state.store.campaigns(account).await {
            for c in all {
                if mine.contains(&c.id)
                    && c.status == CampaignStatus::Running
                    && self.floor.is_running(c.id).await
                {
                    campaigns.push(CampaignSummary {
                        id: c.id,
                        name: c.name,
                    });
                }
            }
        }
        ServerMessage::Welcome {
            version: VERSION,
            username: self.user.username.clone(),
            campaigns,
            audio: self.state.legs.get(self.user.id).is_some()
                || self.floor.rung_phone(self.user.id).is_some(),
            pause_codes: self
                .state
                .store
                .pause_codes(account)
                .await
                .unwrap_or_default(),
        }
    }

    /// Returns the page's message for a reply of the desk; `None` for a
    /// call whose contact card cannot be found.
    pub(super) async fn render(&self, reply: Reply<CallRef>) -> Option<ServerMessage> {
        Some(match reply {
            Reply::State {
                state,
                campaign,
                reason,
            } => ServerMessage::State {
                state,
                campaign_id: campaign,
                reason,
            },
            Reply::Preview { lead, contact } => {
                let card = match contact {
                    Some(c) => self.card_of(c).await,
                    None => None,
                };
                let script = match (&card, self.desk.campaign()) {
                    (Some(card), Some(campaign)) => self.script(campaign, card).await,
                    _ => None,
                };
                ServerMessage::Preview {
                    lead_id: lead,
                    contact: card.map(Box::new),
                    script: script.map(Box::new),
                }
            }
            Reply::Call { call } => {
                let (card, campaign) = self.card(call).await?;
                let script = match campaign {
                    Some(campaign) => self.script(campaign, &card).await,
                    None => None,
                };
                let inbound = self.inbound(call, &card).await;
                let voicemail = match (campaign, &inbound) {
                    (Some(campaign), None) => self.leaves_voicemail(campaign).await,
                    _ => false,
                };
                ServerMessage::Call {
                    call_ref: call,
                    contact: Box::new(card),
                    inbound,
                    script: script.map(Box::new),
                    voicemail,
                }
            }
            Reply::Controls { call, controls } => ServerMessage::CallControls {
                call_ref: call,
                held: controls.held,
                recording: controls.recording.as_str(),
            },
            Reply::Dialling { call, number } => ServerMessage::Dialling {
                call_ref: call,
                number,
            },
            Reply::NotConnected { call, cause } => ServerMessage::NotConnected {
                call_ref: call,
                cause,
            },
            Reply::CallEnded {
                call,
                cause,
                wrap_up_secs,
            } => ServerMessage::CallEnded {
                call_ref: call,
                cause,
                dispositions: self.dispositions(call).await,
                wrap_up_secs,
            },
            Reply::WrapUpExpired { call } => ServerMessage::WrapUpExpired { call_ref: call },
            Reply::Saved { call } => ServerMessage::Saved { call_ref: call },
            Reply::MessageLeft { call } => ServerMessage::VoicemailLeft { call_ref: call },
            Reply::Refused(refusal) => error(refusal.to_string()),
        })
    }

    /// What the card says of an inbound call: its queue and the caller's
    /// do-not-call flag; `None` for a call we placed.
    async fn inbound(&self, call: CallRef, card: &ContactCard) -> Option<InboundCard> {
        let store = &self.state.store;
        let account = self.user.account_id;
        let (_, queue) = store.queue_of_call(account, call).await.ok()??;
        let do_not_call = store
            .is_suppressed(account, &card.contact.fields.phone_e164)
            .await
            .unwrap_or(false);
        Some(InboundCard { queue, do_not_call })
    }

    /// The dispositions of the call's campaign, else of the campaign
    /// joined last: an inbound call is logged against its queue's.
    async fn dispositions(&self, call: CallRef) -> Vec<String> {
        let of_call = self
            .state
            .store
            .attempt_by_ref(self.user.account_id, call)
            .await
            .ok()
            .and_then(|a| a.campaign_id);
        match of_call.or(self.desk.campaign()) {
            Some(c) => self
                .state
                .store
                .campaign_settings(self.user.account_id, c)
                .await
                .map(|s| s.dispositions.into_iter().map(|d| d.name).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Returns the card of a call's contact, and the campaign that placed
    /// the call (none for a manual dial outside a campaign).
    async fn card(&self, call: CallRef) -> Option<(ContactCard, Option<CampaignId>)> {
        let attempt = self
            .state
            .store
            .attempt_by_ref(self.user.account_id, call)
            .await
            .ok()?;
        let card = self.card_of(attempt.contact_id?).await?;
        Some((card, attempt.campaign_id.or(self.desk.campaign())))
    }

    /// Renders a campaign's script with what the card shows; `None` when
    /// the campaign has no script or it cannot be read now (the call goes
    /// on without it, and the failure is logged).
    pub(super) async fn script(
        &self,
        campaign: CampaignId,
        card: &ContactCard,
    ) -> Option<Rendered> {
        let store = &self.state.store;
        let account = self.user.account_id;
        let read = async {
            let saved = store.campaign_script(account, campaign).await?;
            if saved.sections.is_empty() {
                return Ok(None);
            }
            let campaign = store.campaign(account, campaign).await?;
            // The card's values are already only those of the fields it shows.
            let merge = Merge::new()
                .contact(&card.contact.fields, &card.contact.values)
                .campaign(&campaign)
                .agent(&self.user.username);
            Ok::<_, crm::StoreError>(Some(saved.script().render(&merge)))
        };
        match read.await {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::warn!(error = %e, campaign = %campaign, "call script not read");
                None
            }
        }
    }

    pub(super) async fn card_of(&self, contact: ContactId) -> Option<ContactCard> {
        let store = &self.state.store;
        let account = self.user.account_id;
        let mut contact = store.contact(account, contact).await.ok()?;
        let card_fields: Vec<CardField> = store
            .fields(account)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.on_card)
            .map(|f| CardField {
                value: contact
                    .values
                    .get(&f.key)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
                key: f.key,
                label: f.label,
                kind: f.kind,
                choices: f.choices,
                required: f.required,
            })
            .collect();
        // The agent sees the values of the fields the card shows, no others.
        contact
            .values
            .retain(|key, _| card_fields.iter().any(|f| f.key == *key));
        // As on `GET /api/contacts/{id}`: only the interactions of calls
        // placed by the campaigns the agent is assigned to.
        let mine = store
            .agent_campaigns(account, self.user.id)
            .await
            .unwrap_or_default();
        let calls: Vec<_> = store
            .attempts_for_contact(account, contact.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.campaign_id.is_some_and(|c| mine.contains(&c)))
            .map(|a| a.id)
            .collect();
        let mut history = store
            .interactions_for_contact(account, contact.id)
            .await
            .unwrap_or_default();
        history.retain(|i| i.attempt_id.is_some_and(|a| calls.contains(&a)));
        let timeline = store
            .contact_timeline(
                account,
                contact.id,
                SearchScope::Agent(self.user.id),
                CARD_TIMELINE,
            )
            .await
            .unwrap_or_default();
        Some(ContactCard {
            id: contact.id,
            contact,
            history,
            timeline,
            card_fields,
        })
    }
}
