//! How the model's types are read from rows of either backend.
//!
//! The model types derive `sqlx::FromRow` themselves: their ids decode
//! straight from BIGINT columns (`vocab`'s `sqlx` feature) and call
//! references from their hex text. The enums stored as their names decode
//! through the impls below, so a row needs no shape of its own.

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

use super::leads::LeadState;
use super::merge::MergeState;
use super::webhooks::DeliveryStatus;
use crate::fields::FieldKind;
use crate::model::{CampaignStatus, Role};
use crate::webhooks::WebhookEvent;

pub(crate) const CONTACT_COLUMNS: &str = "id, account_id, first_name, last_name, phone_e164, \
     phone_raw, email, postal_address, profession, time_zone, custom_fields, version, created_at, \
     updated_at";

/// Reads enums stored as the names their `as_str` gives and `FromStr` reads.
macro_rules! stored_as_text {
    ($($name:ty),* $(,)?) => {$(
        impl<DB: Database> Type<DB> for $name
        where
            str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $name
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let name = <&'r str as Decode<'r, DB>>::decode(value)?;
                Ok(name.parse::<$name>()?)
            }
        }
    )*};
}

stored_as_text!(
    Role,
    CampaignStatus,
    LeadState,
    WebhookEvent,
    DeliveryStatus,
    FieldKind,
    MergeState
);
