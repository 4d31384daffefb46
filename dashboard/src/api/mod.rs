//! The REST API. Each handler takes the caller from the session, checks the
//! role, and scopes every query by the caller's account.

mod account_fields;
mod account_privacy;
mod callbacks;
mod campaign_scripts;
mod campaign_settings;
mod campaigns;
mod contact_edit;
mod contact_merge;
mod contact_search;
mod contact_timeline;
mod contacts;
mod dial_level;
mod dnc;
mod estimate;
mod imports;
pub(crate) mod listen;
mod lists;
mod pause_codes;
mod privacy;
mod queues;
mod reports;
mod users;
mod webhooks;

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
