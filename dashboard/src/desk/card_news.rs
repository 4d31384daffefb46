//! The contact on the agent's card changed while it is shown (a supervisor
//! corrected it, a merge filled it): the page is sent the card anew with the
//! names of the fields changed, so it shows the contact as it is, or tells
//! an agent with unsaved edits that saving them would be refused.
//!
//! With a stream shared between nodes the edits come from it, every node's
//! (this node's own included, read back); on one node from the bus.

use std::sync::Arc;

use crm::events::Event;
use crm::model::ContactId;
use dialer_core::desk::Phase;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::protocol::ServerMessage;
use super::session::Session;

impl Session {
    /// Remembers which contact the page's card shows, from a message it is
    /// about to be sent.
    pub(super) fn note_card(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::Call { contact, .. } => self.card = Some(contact.id),
            ServerMessage::Preview { contact, .. } => self.card = contact.as_ref().map(|c| c.id),
            // The page closes the card once the wrap-up is over.
            ServerMessage::Saved { .. } | ServerMessage::WrapUpExpired { .. } => self.card = None,
            _ => {}
        }
    }

    /// Returns the card anew when `event` is an edit of the contact on it.
    pub(super) async fn card_news(&mut self, event: &Event) -> Vec<ServerMessage> {
        let Event::ContactEdited {
            account,
            contact_id,
            fields,
            by,
            ..
        } = event
        else {
            return Vec::new();
        };
        if *account != self.user.account_id || self.card != Some(*contact_id) {
            return Vec::new();
        }
        self.card_anew(*contact_id, fields, *by).await
    }

    async fn card_anew(
        &self,
        contact: ContactId,
        fields: &[String],
        by: crm::model::UserId,
    ) -> Vec<ServerMessage> {
        // Read as the agent may see it: the fields on the card only.
        let Some(card) = self.card_of(contact).await else {
            return Vec::new();
        };
        // The names of fields the card does not show are not the agent's.
        let fields = fields
            .iter()
            .filter(|f| match f.strip_prefix("field.") {
                Some(key) => card.card_fields.iter().any(|c| c.key == key),
                None => true,
            })
            .cloned()
            .collect();
        let by = if by == self.user.id {
            Some(self.user.username.clone())
        } else {
            self.state
                .store
                .user(self.user.account_id, by)
                .await
                .ok()
                .map(|u| u.username)
        };
        // The script greets the contact by what the card says of them.
        let of_call = match self.desk.phase() {
            Phase::InCall { call, .. } | Phase::WrapUp { call, .. } => self
                .state
                .store
                .attempt_by_ref(self.user.account_id, *call)
                .await
                .ok()
                .and_then(|a| a.campaign_id),
            _ => None,
        };
        let campaign = of_call.or(self.desk.campaign());
        let script = match campaign {
            Some(campaign) => self.script(campaign, &card).await,
            None => None,
        };
        vec![ServerMessage::ContactEdited {
            contact: Box::new(card),
            fields,
            by,
            script: script.map(Box::new),
        }]
    }
}

/// Waits for the next event of the stream shared between nodes; never,
/// without one (or once it is closed).
pub(super) async fn next_shared(events: &mut Option<Receiver<Arc<Event>>>) -> Arc<Event> {
    loop {
        let Some(rx) = events.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(event) => return event,
            Err(RecvError::Lagged(missed)) => {
                // The card may miss an edit; the version check still refuses
                // a stale save.
                tracing::warn!(missed, "an agent's desk fell behind the shared stream");
            }
            Err(RecvError::Closed) => *events = None,
        }
    }
}
