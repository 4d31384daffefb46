//! The REST API. Each handler takes the caller from the session, checks the
//! role, and scopes every query by the caller's account.

pub(crate) mod account_fields;
pub(crate) mod account_privacy;
mod callbacks;
pub(crate) mod campaign_scripts;
pub(crate) mod campaign_settings;
pub(crate) mod campaigns;
pub(crate) mod contact_edit;
pub(crate) mod contact_merge;
pub(crate) mod contact_search;
mod contact_timeline;
pub(crate) mod contacts;
pub(crate) mod dial_level;
pub(crate) mod dnc;
pub(crate) mod estimate;
mod imports;
pub(crate) mod listen;
pub(crate) mod lists;
pub(crate) mod pause_codes;
mod privacy;
pub(crate) mod queues;
pub(crate) mod reports;
pub(crate) mod users;
pub(crate) mod webhooks;

use axum::Router;

use crate::AppState;

pub use listen::Listeners;

/// Returns the API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(users::routes())
        .merge(account_privacy::routes())
        .merge(account_fields::routes())
        .merge(lists::routes())
        .merge(pause_codes::routes())
        .merge(privacy::routes())
        .merge(contacts::routes())
        .merge(contact_merge::routes())
        .merge(dnc::routes())
        .merge(campaigns::routes())
        .merge(imports::routes())
        .merge(campaign_settings::routes())
        .merge(campaign_scripts::routes())
        .merge(reports::routes())
        .merge(dial_level::routes())
        .merge(estimate::routes())
        .merge(listen::routes())
        .merge(webhooks::routes())
        .merge(queues::routes())
        .merge(callbacks::routes())
}
