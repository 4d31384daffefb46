//! A contact's timeline: calls, dispositions and notes, callbacks, edits
//! and list membership, newest first, in one list.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::contact_search::SearchScope;
use super::{on_pool, Store};
use crate::model::{
    AccountId, AttemptId, CampaignId, ContactId, InteractionId, LeadId, ListId, UserId,
};
use crate::StoreError;

/// The most entries one timeline returns.
pub const MAX_TIMELINE: usize = 500;

/// One thing that happened to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TimelineEntry {
    /// When it happened; for a callback, when it is due.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub event: TimelineEvent,
}

/// What happened, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// A call placed to the contact.
    Call {
        /// The attempt.
        attempt_id: AttemptId,
        /// The campaign that placed it, if any.
        campaign_id: Option<CampaignId>,
        /// How it ended, once it has.
        outcome: Option<String>,
        /// Seconds from answer to end, for an answered call that ended.
        talk_secs: Option<i64>,
        /// `outbound` for a call placed to the contact, `inbound` for one
        /// they made to a queue.
        direction: String,
    },
    /// A disposition or note recorded by a user.
    Interaction {
        /// The interaction.
        interaction_id: InteractionId,
        /// Its kind: call, note, …
        interaction_kind: String,
        /// Who recorded it.
        user_id: Option<UserId>,
        /// The call it belongs to.
        attempt_id: Option<AttemptId>,
        /// The disposition chosen.
        disposition: Option<String>,
        /// The notes written.
        notes: Option<String>,
    },
    /// A callback booked with the contact.
    Callback {
        /// The lead that will be called back.
        lead_id: LeadId,
        /// Its campaign.
        campaign_id: CampaignId,
        /// The agent who must make it, or `None` for anyone.
        user_id: Option<UserId>,
    },
    /// The contact created, edited or merged; field names only.
    Edit {
        /// `contact.create` or `contact.edit`, of this contact or of one
        /// merged into it; `contact.merge` (the fields filled) or
        /// `contact.merge_undo` (the fields emptied again).
        action: String,
        /// Who did it; `None` from the command line.
        user_id: Option<UserId>,
        /// The fields set or changed.
        fields: Vec<String>,
    },
    /// The contact put on a list.
    AddedToList {
        /// The list.
        list_id: ListId,
    },
}

impl Store {
    /// Returns up to `limit` entries of a contact's timeline, newest first.
    ///
    /// An agent's scope keeps only the calls of the campaigns they are
    /// assigned to, the interactions of those calls and those campaigns'
    /// callbacks, as the contact card does, and no list membership (lists
    /// are the supervisors'). Edits are kept in every scope: they name
    /// fields, never values. The edits of a contact merged into this one
    /// are part of its story, as its calls and notes are (they moved).
    pub async fn contact_timeline(
        &self,
        account: AccountId,
        contact: ContactId,
        scope: SearchScope,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        self.contact(account, contact).await?;
        let mine = match scope {
            SearchScope::Account => None,
            SearchScope::Agent(user) => Some(self.agent_campaigns(account, user).await?),
        };
        let allowed = |c: Option<CampaignId>| match &mine {
            None => true,
            Some(m) => c.is_some_and(|c| m.contains(&c)),
        };
        let mut entries = Vec::new();
        let attempts = self.attempts_for_contact(account, contact).await?;
        let mut shown = Vec::new();
        for a in attempts.iter().filter(|a| allowed(a.campaign_id)) {
            shown.push(a.id);
            let talk_secs = match (a.answered_at, a.ended_at) {
                (Some(from), Some(to)) => Some((to - from).num_seconds().max(0)),
                _ => None,
            };
            entries.push(TimelineEntry {
                at: a.started_at,
                event: TimelineEvent::Call {
                    attempt_id: a.id,
                    campaign_id: a.campaign_id,
                    outcome: a.outcome.clone(),
                    talk_secs,
                    direction: a.direction.clone(),
                },
            });
        }
        for i in self.interactions_for_contact(account, contact).await? {
            if mine.is_some() && !i.attempt_id.is_some_and(|a| shown.contains(&a)) {
                continue;
            }
            entries.push(TimelineEntry {
                at: i.occurred_at,
                event: TimelineEvent::Interaction {
                    interaction_id: i.id,
                    interaction_kind: i.kind,
                    user_id: i.user_id,
                    attempt_id: i.attempt_id,
                    disposition: i.disposition,
                    notes: i.notes,
                },
            });
        }
        for c in self.callbacks_of_contact(account, contact).await? {
            if allowed(Some(c.campaign_id)) {
                entries.push(TimelineEntry {
                    at: c.callback_at,
                    event: TimelineEvent::Callback {
                        lead_id: c.id,
                        campaign_id: c.campaign_id,
                        user_id: c.callback_user_id,
                    },
                });
            }
        }
        for e in self.edits_of_contact(account, contact).await? {
            let fields = e
                .detail
                .as_deref()
                .and_then(|d| d.split_whitespace().find_map(|w| w.strip_prefix("fields=")))
                .map(|f| {
                    f.split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            entries.push(TimelineEntry {
                at: e.occurred_at,
                event: TimelineEvent::Edit {
                    action: e.action,
                    user_id: e.user_id,
                    fields,
                },
            });
        }
        if mine.is_none() {
            for (list, at) in self.memberships_of_contact(account, contact).await? {
                entries.push(TimelineEntry {
                    at,
                    event: TimelineEvent::AddedToList { list_id: list },
                });
            }
        }
        // Newest first; ties keep the order of the kinds above, which is stable.
        entries.sort_by_key(|e| std::cmp::Reverse(e.at));
        entries.truncate(limit.min(MAX_TIMELINE));
        Ok(entries)
    }

    async fn callbacks_of_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<CallbackRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, campaign_id, callback_at, callback_user_id FROM leads \
             WHERE account_id = $1 AND contact_id = $2 AND callback_at IS NOT NULL"
        )
        .bind(account.0)
        .bind(contact.0)
        .fetch_all(pool)
        .await?))
    }

    async fn edits_of_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<EditRow>, StoreError> {
        let mut targets = vec![format!("contact:{contact}")];
        targets.extend(
            self.merged_into_contact(account, contact)
                .await?
                .into_iter()
                .map(|m| format!("contact:{m}")),
        );
        let marks: Vec<String> = (0..targets.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT action, user_id, detail, occurred_at FROM audit_log \
             WHERE account_id = $1 AND target IN ({}) \
               AND action IN ('contact.create', 'contact.edit', 'contact.merge', \
                              'contact.merge_undo') \
             ORDER BY occurred_at DESC, id DESC LIMIT 500",
            marks.join(", ")
        );
        Ok(on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql).bind(account.0);
            for t in &targets {
                q = q.bind(t);
            }
            q.fetch_all(pool).await?
        }))
    }

    async fn memberships_of_contact(
        &self,
        account: AccountId,
        contact: ContactId,
    ) -> Result<Vec<(ListId, DateTime<Utc>)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT list_id, added_at FROM list_members WHERE account_id = $1 AND contact_id = $2"
        )
        .bind(account.0)
        .bind(contact.0)
        .fetch_all(pool)
        .await?))
    }
}

#[derive(sqlx::FromRow)]
struct CallbackRow {
    id: LeadId,
    campaign_id: CampaignId,
    callback_at: DateTime<Utc>,
    callback_user_id: Option<UserId>,
}

#[derive(sqlx::FromRow)]
struct EditRow {
    action: String,
    user_id: Option<UserId>,
    detail: Option<String>,
    occurred_at: DateTime<Utc>,
}
