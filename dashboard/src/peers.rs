//! Requests between nodes, over NATS request/reply: a node asks the node
//! holding a call to do what only that node's gateway can, such as making
//! a supervisor's listening leg and pointing it at the call.
//!
//! Each node answers on `dialcrm.node.<node name in hex>`: hex, because a
//! node's name (often a host name, with dots) is not a valid subject token.
//! The nodes trust each other as they trust the database: whoever may
//! publish on the NATS server is one of them (docs/operations.md).

use std::time::Duration;

use crm::model::{AccountId, UserId};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sip_gateway::gateway::CallRef;

use crate::api::listen::{self, Mode};
use crate::{ApiError, AppState};

/// How long a node waits for another's reply; a listening leg is made in
/// well under a second.
const REPLY_WITHIN: Duration = Duration::from_secs(10);

/// What one node asks another.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    /// Make the supervisor's listening leg from the offer and point it at
    /// the call.
    Listen {
        account: AccountId,
        user_id: UserId,
        call_ref: CallRef,
        sdp: String,
        /// Listen, whisper, barge or take over; listen from a node that does not say.
        #[serde(default)]
        mode: Mode,
    },
    /// Put the supervisor's leg, made here before, on the call in a mode.
    Coach {
        account: AccountId,
        user_id: UserId,
        call_ref: CallRef,
        mode: Mode,
    },
    /// Hang up the supervisor's listening leg.
    Unlisten { user_id: UserId },
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum Reply {
    /// The leg's SDP answer.
    Answer { sdp: String },
    /// Done; nothing to say.
    Done,
    /// Refused or failed, with the HTTP status the asking node should give.
    Failed { status: u16, message: String },
}

/// This node's link to the other nodes.
pub struct Peers {
    client: async_nats::Client,
    node: String,
}

/// The subject a node answers on.
fn subject(node: &str) -> String {
    format!("dialcrm.node.{}", hex::encode(node.as_bytes()))
}

impl Peers {
    /// Links the node named `node` to the others through `client`.
    pub fn new(client: async_nats::Client, node: &str) -> Self {
        Peers {
            client,
            node: node.to_owned(),
        }
    }

    /// Asks `node` to make the supervisor's listening leg for `call` from
    /// the browser's `offer`; returns the SDP answer.
    pub async fn listen(
        &self,
        node: &str,
        account: AccountId,
        user_id: UserId,
        call_ref: CallRef,
        sdp: String,
        mode: Mode,
    ) -> Result<String, ApiError> {
        let request = Request::Listen {
            account,
            user_id,
            call_ref,
            sdp,
            mode,
        };
        match self.ask(node, &request).await? {
            Reply::Answer { sdp } => Ok(sdp),
            Reply::Done => Err(ApiError::Internal(format!(
                "node {node} made no listening leg"
            ))),
            Reply::Failed { status, message } => Err(failure(node, status, message)),
        }
    }

    /// Asks `node`, which holds the supervisor's leg and `call`, to put the
    /// leg on the call in `mode`.
    pub async fn coach(
        &self,
        node: &str,
        account: AccountId,
        user_id: UserId,
        call_ref: CallRef,
        mode: Mode,
    ) -> Result<(), ApiError> {
        let request = Request::Coach {
            account,
            user_id,
            call_ref,
            mode,
        };
        match self.ask(node, &request).await? {
            Reply::Done => Ok(()),
            Reply::Answer { .. } => Err(ApiError::Internal(format!(
                "node {node} answered a change of mode with SDP"
            ))),
            Reply::Failed { status, message } => Err(failure(node, status, message)),
        }
    }

    /// Asks `node` to hang up the supervisor's listening leg; a node that
    /// does not answer has no leg left to hang up, or will drop it when the
    /// browser goes.
    pub async fn unlisten(&self, node: &str, user_id: UserId) {
        if let Err(e) = self.ask(node, &Request::Unlisten { user_id }).await {
            tracing::debug!(node, error = %e, "another node did not hang a listening leg up");
        }
    }

    async fn ask(&self, node: &str, request: &Request) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| ApiError::Internal(format!("encoding a request to {node}: {e}")))?;
        let asked = self.client.request(subject(node), body.into());
        let message = match tokio::time::timeout(REPLY_WITHIN, asked).await {
            Ok(Ok(message)) => message,
            Ok(Err(e)) => {
                tracing::warn!(node, error = %e, "another node did not answer");
                return Err(ApiError::Unavailable);
            }
            Err(_) => {
                tracing::warn!(node, "another node did not answer within 10 s");
                return Err(ApiError::Unavailable);
            }
        };
        serde_json::from_slice(&message.payload)
            .map_err(|e| ApiError::Internal(format!("a reply from node {node}: {e}")))
    }

    /// Answers the other nodes' requests until NATS closes the subscription.
    pub async fn serve(self: std::sync::Arc<Self>, state: AppState) {
        let mut requests = match self.client.subscribe(subject(&self.node)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "this node cannot take requests from the others");
                return;
            }
        };
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let state = state.clone();
            let client = self.client.clone();
            tokio::spawn(async move {
                let reply = match serde_json::from_slice::<Request>(&message.payload) {
                    Ok(request) => answer(&state, request).await,
                    Err(e) => Reply::Failed {
                        status: 400,
                        message: format!("not a request this node knows: {e}"),
                    },
                };
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, body.into()).await {
                    tracing::warn!(error = %e, "replying to another node failed");
                }
            });
        }
    }
}

async fn answer(state: &AppState, request: Request) -> Reply {
    match request {
        Request::Listen {
            account,
            user_id,
            call_ref,
            sdp,
            mode,
        } => {
            let made = listen::attach_here(state, user_id, &sdp).await;
            let answer = match made {
                Ok((_, answer)) => answer,
                Err(e) => return failed(e),
            };
            if let Err(e) = listen::point_here(state, account, user_id, call_ref, mode).await {
                listen::hang_up_here(state, user_id).await;
                return failed(e);
            }
            tracing::info!(user = %user_id, call = %call_ref, "listening leg made for another node");
            Reply::Answer { sdp: answer }
        }
        Request::Coach {
            account,
            user_id,
            call_ref,
            mode,
        } => match listen::point_here(state, account, user_id, call_ref, mode).await {
            Ok(()) => {
                tracing::info!(user = %user_id, call = %call_ref, ?mode, "mode changed for another node");
                Reply::Done
            }
            Err(e) => failed(e),
        },
        Request::Unlisten { user_id } => {
            listen::hang_up_here(state, user_id).await;
            Reply::Done
        }
    }
}

fn failed(e: ApiError) -> Reply {
    if let ApiError::Internal(detail) = &e {
        tracing::error!(%detail, "a request from another node failed");
    }
    let status = e.status();
    Reply::Failed {
        status: status.as_u16(),
        message: e.to_string(),
    }
}

/// The asking node's error for another's refusal.
fn failure(node: &str, status: u16, message: String) -> ApiError {
    match status {
        400 => ApiError::BadRequest(message),
        404 => ApiError::NotFound,
        409 => ApiError::Conflict(message),
        503 => ApiError::Unavailable,
        _ => ApiError::Internal(format!("node {node} failed: {message}")),
    }
}
