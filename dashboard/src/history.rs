//! Keeps every agent state change from the bus in the Store, where the
//! supervisors' reports add up the time spent in each state.
//!
//! It listens like any other consumer, so the places that change an
//! agent's state only publish; a write that fails is logged and skipped.

use std::sync::Arc;

use crm::events::Event;
use crm::Store;
use tokio::sync::broadcast::{self, error::RecvError};

/// Writes agent state events, as set on the desks of `node`, until the bus closes.
pub async fn keep_agent_states(
    store: Store,
    node: String,
    mut events: broadcast::Receiver<Arc<Event>>,
) {
    let node = Some(node.as_str()).filter(|n| !n.is_empty());
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "agent state history fell behind the bus");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if let Event::AgentState {
            account,
            user_id,
            state,
            pause_code,
            at,
            ..
        } = event.as_ref()
        {
            let written = store
                .record_agent_state_on(*account, *user_id, *state, pause_code.as_deref(), *at, node)
                .await;
            if let Err(error) = written {
                tracing::warn!(%user_id, %error, "an agent state change was not kept");
            }
        }
    }
}
