//! The ids of the CRM's rows, as types rather than bare numbers.
//!
//! Each is the row's BIGINT key, written on the wire as that plain number;
//! with the `sqlx` feature each binds and decodes as that number too.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type! {
    /// Identifies an account (a tenant).
    AccountId,
    /// Identifies a user.
    UserId,
    /// Identifies a contact.
    ContactId,
    /// Identifies a call list.
    ListId,
    /// Identifies a campaign.
    CampaignId,
    /// Identifies a contact's place in one campaign.
    LeadId,
    /// Identifies a call attempt.
    AttemptId,
    /// Identifies an interaction.
    InteractionId,
    /// Identifies a webhook endpoint.
    WebhookId,
    /// Identifies one delivery of an event to a webhook endpoint.
    DeliveryId,
    /// Identifies an inbound queue.
    QueueId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_bare_number_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&CampaignId(42)).ok().as_deref(),
            Some("42")
        );
        assert_eq!(serde_json::from_str::<LeadId>("7").ok(), Some(LeadId(7)));
        assert_eq!(UserId(3).to_string(), "3");
    }
}
