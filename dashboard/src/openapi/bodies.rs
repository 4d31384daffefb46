//! What each route of [`crate::access::RULES`] reads from a request's body
//! and answers with, named by the Rust types the handlers read and write,
//! so that the description's schemas are derived from them.
//!
//! A test holds this table to `RULES` in both directions, and fails when a
//! route that takes a body (POST, PUT, PATCH) is not here, whether it reads
//! one or is declared to read none.

use crm::edit::{ContactChange, NewContact};
use crm::fields::{FieldChange, FieldDef, NewField};
use crm::import::ImportJob;
use crm::model::{AuditEntry, Campaign, Contact, ContactList, User};
use crm::script::Script;
use crm::store::aggregate::ActionCount;
use crm::store::callbacks::UpcomingCallback;
use crm::store::campaign_settings::CampaignSettings;
use crm::store::erasure::ErasureReport;
use crm::store::merge::{MergeRecord, MergeRequest, Merged};
use crm::store::queues::Queue;
use crm::store::scripts::CampaignScript;
use crm::store::suppression::DncReport;
use crm::store::timeline::TimelineEntry;
use crm::store::webhooks::{Delivery, Endpoint};
use crm::store::Unmerged;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::api::account_fields::Removed;
use crate::api::account_privacy::Privacy;
use crate::api::campaign_scripts::{Preview, PreviewRequest};
use crate::api::campaign_settings::{Attach, NewCampaign, Started};
use crate::api::campaigns::Agents;
use crate::api::contact_edit::SavedContact;
use crate::api::contact_merge::Duplicates;
use crate::api::contact_search::SearchResults;
use crate::api::contacts::ContactCard;
use crate::api::dial_level::DialLevel;
use crate::api::dnc::{Entry, Listed, NewEntry, Settings};
use crate::api::estimate::Estimate;
use crate::api::listen::{LegOffer, ModeBody, Sdp};
use crate::api::lists::NewList;
use crate::api::pause_codes::PauseCodes;
use crate::api::queues::{Members, QueueBody};
use crate::api::reports::Report;
use crate::api::users::{AccountView, ActiveBody, NewUser, Retention};
use crate::api::webhooks::{ChangeBody, NewBody, WithSecret};
use crate::auth::{LoginRequest, Me, PasswordChange};

/// Puts a body's schema in a generator's definitions and returns what
/// refers to it.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// One route's bodies.
#[derive(Debug, Clone, Copy)]
pub struct Bodies {
    /// The HTTP method, as in [`crate::access::Rule`].
    pub method: &'static str,
    /// The path, as in [`crate::access::Rule`].
    pub path: &'static str,
    /// What the request carries.
    pub takes: Takes,
    /// What a success answers.
    pub gives: Gives,
}

/// What a route reads from the request's body.
#[derive(Debug, Clone, Copy)]
pub enum Takes {
    /// No body: the route reads none.
    Nothing,
    /// A JSON body of a type.
    Json(SchemaFn),
    /// A JSON body of a type, or none at all.
    OptionalJson(SchemaFn),
    /// A body in one of these media types, read as it comes.
    Media(&'static [&'static str]),
}

/// What a route answers with when it succeeds.
#[derive(Debug, Clone, Copy)]
pub struct Gives {
    /// The statuses of success, the usual one first.
    pub statuses: &'static [u16],
    /// The body they carry.
    pub content: Content,
}

/// The body of a success.
#[derive(Debug, Clone, Copy)]
pub enum Content {
    /// No body.
    Nothing,
    /// JSON of a type.
    Json(SchemaFn),
    /// JSON built by hand in the handler, described in docs/api.md.
    UntypedJson,
    /// JSON of a type, or CSV when `?format=csv` or `Accept: text/csv`
    /// asks for it.
    JsonOrCsv(SchemaFn),
    /// A body in a media type other than JSON.
    Media(&'static str),
    /// A switch to a websocket (`101`).
    Websocket,
}

/// Every route's bodies, in the order of [`crate::access::RULES`].
pub const BODIES: &[Bodies] = &[
    get("/healthz", ok(Content::Media("text/plain"))),
    get("/api/openapi.json", ok(Content::UntypedJson)),
    get("/metrics", ok(Content::Media(crate::metrics::CONTENT_TYPE))),
    post("/api/login", body::<LoginRequest>(), ok(json::<Me>())),
    post("/api/logout", Takes::Nothing, NO_CONTENT),
    post("/api/logout-everywhere", Takes::Nothing, NO_CONTENT),
    get("/api/me", ok(json::<Me>())),
    post("/api/me/password", body::<PasswordChange>(), NO_CONTENT),
    get("/api/account", ok(json::<AccountView>())),
    get("/api/account/retention", ok(json::<Retention>())),
    put(
        "/api/account/retention",
        body::<Retention>(),
        ok(json::<Retention>()),
    ),
    get("/api/account/privacy", ok(json::<Privacy>())),
    put(
        "/api/account/privacy",
        body::<Privacy>(),
        ok(json::<Privacy>()),
    ),
    get("/api/account/pause-codes", ok(json::<PauseCodes>())),
    put(
        "/api/account/pause-codes",
        body::<PauseCodes>(),
        ok(json::<PauseCodes>()),
    ),
    get("/api/account/fields", ok(json::<Vec<FieldDef>>())),
    post(
        "/api/account/fields",
        body::<NewField>(),
        created(json::<FieldDef>()),
    ),
    patch(
        "/api/account/fields/{key}",
        body::<FieldChange>(),
        ok(json::<FieldDef>()),
    ),
    delete("/api/account/fields/{key}", ok(json::<Removed>())),
    get("/api/users", ok(json::<Vec<User>>())),
    post("/api/users", body::<NewUser>(), created(json::<User>())),
    get("/api/users/{id}", ok(json::<User>())),
    post(
        "/api/users/{id}/active",
        body::<ActiveBody>(),
        ok(json::<User>()),
    ),
    get("/api/lists", ok(json::<Vec<ContactList>>())),
    post(
        "/api/lists",
        body::<NewList>(),
        created(json::<ContactList>()),
    ),
    get("/api/lists/{id}", ok(json::<ContactList>())),
    get("/api/lists/{id}/contacts", ok(json::<Vec<Contact>>())),
    post(
        "/api/lists/{id}/import",
        Takes::Media(&["text/csv", "application/csv", "text/plain"]),
        Gives {
            statuses: &[202],
            content: Content::UntypedJson,
        },
    ),
    get("/api/lists/{id}/export.csv", ok(Content::Media("text/csv"))),
    get("/api/imports/{id}", ok(json::<ImportJob>())),
    get("/api/contacts", ok(json::<SearchResults>())),
    post(
        "/api/contacts",
        body::<NewContact>(),
        created(json::<SavedContact>()),
    ),
    patch(
        "/api/contacts/{id}",
        Takes::Json(contact_edit),
        ok(json::<SavedContact>()),
    ),
    get(
        "/api/contacts/{id}/timeline",
        ok(json::<Vec<TimelineEntry>>()),
    ),
    get("/api/callbacks", ok(json::<Vec<UpcomingCallback>>())),
    get("/api/contacts/{id}", ok(json::<ContactCard>())),
    get(
        "/api/contacts/{id}/export.zip",
        ok(Content::Media("application/zip")),
    ),
    get("/api/contacts/duplicates", ok(json::<Duplicates>())),
    post(
        "/api/contacts/merge",
        body::<MergeRequest>(),
        ok(json::<Merged>()),
    ),
    get("/api/contacts/merges", ok(json::<Vec<MergeRecord>>())),
    post(
        "/api/contacts/merge/{id}/undo",
        Takes::Nothing,
        ok(json::<Unmerged>()),
    ),
    post(
        "/api/contacts/{id}/erase",
        Takes::Nothing,
        ok(json::<ErasureReport>()),
    ),
    post(
        "/api/dnc",
        body::<NewEntry>(),
        Gives {
            statuses: &[201, 200],
            content: json::<Entry>(),
        },
    ),
    get("/api/dnc/{number}", ok(json::<Entry>())),
    delete("/api/dnc/{number}", NO_CONTENT),
    get("/api/dnc", ok(json::<Vec<Listed>>())),
    get("/api/dnc/settings", ok(json::<Settings>())),
    put(
        "/api/dnc/settings",
        body::<Settings>(),
        ok(json::<Settings>()),
    ),
    post(
        "/api/dnc/import",
        Takes::Media(&["text/plain", "text/csv"]),
        ok(json::<DncReport>()),
    ),
    get("/api/campaigns", ok(json::<Vec<Campaign>>())),
    post(
        "/api/campaigns",
        body::<NewCampaign>(),
        created(json::<Campaign>()),
    ),
    get("/api/campaigns/{id}", ok(json::<Campaign>())),
    get("/api/campaigns/{id}/agents", ok(json::<Agents>())),
    put(
        "/api/campaigns/{id}/agents",
        body::<Agents>(),
        ok(json::<Agents>()),
    ),
    get(
        "/api/campaigns/{id}/settings",
        ok(json::<CampaignSettings>()),
    ),
    put(
        "/api/campaigns/{id}/settings",
        body::<CampaignSettings>(),
        ok(json::<CampaignSettings>()),
    ),
    get("/api/queues", ok(json::<Vec<Queue>>())),
    post("/api/queues", body::<QueueBody>(), created(json::<Queue>())),
    get("/api/queues/{id}", ok(json::<Queue>())),
    patch("/api/queues/{id}", body::<QueueBody>(), ok(json::<Queue>())),
    delete("/api/queues/{id}", NO_CONTENT),
    get("/api/queues/{id}/agents", ok(json::<Members>())),
    put(
        "/api/queues/{id}/agents",
        body::<Members>(),
        ok(json::<Members>()),
    ),
    get("/api/campaigns/{id}/script", ok(json::<CampaignScript>())),
    put(
        "/api/campaigns/{id}/script",
        body::<Script>(),
        ok(json::<CampaignScript>()),
    ),
    post(
        "/api/campaigns/{id}/script/preview",
        body::<PreviewRequest>(),
        ok(json::<Preview>()),
    ),
    post(
        "/api/campaigns/{id}/lists",
        body::<Attach>(),
        ok(json::<Campaign>()),
    ),
    post(
        "/api/campaigns/{id}/start",
        Takes::Nothing,
        ok(json::<Started>()),
    ),
    post(
        "/api/campaigns/{id}/pause",
        Takes::Nothing,
        ok(json::<Campaign>()),
    ),
    put(
        "/api/campaigns/{id}/dial-level",
        body::<DialLevel>(),
        ok(json::<DialLevel>()),
    ),
    get("/api/campaigns/{id}/estimate", ok(json::<Estimate>())),
    get(
        "/api/reports/agents",
        ok(Content::JsonOrCsv(schema::<Report>)),
    ),
    get(
        "/api/reports/campaigns",
        ok(Content::JsonOrCsv(schema::<Report>)),
    ),
    get(
        "/api/reports/queues",
        ok(Content::JsonOrCsv(schema::<Report>)),
    ),
    get("/api/audit", ok(json::<Vec<AuditEntry>>())),
    get("/api/audit.csv", ok(Content::Media("text/csv"))),
    get("/api/audit/counts", ok(json::<Vec<ActionCount>>())),
    get("/api/webhooks", ok(json::<Vec<Endpoint>>())),
    post(
        "/api/webhooks",
        body::<NewBody>(),
        created(json::<WithSecret>()),
    ),
    get("/api/webhooks/{id}", ok(json::<Endpoint>())),
    patch(
        "/api/webhooks/{id}",
        body::<ChangeBody>(),
        ok(json::<WithSecret>()),
    ),
    delete("/api/webhooks/{id}", NO_CONTENT),
    get("/api/webhooks/{id}/deliveries", ok(json::<Vec<Delivery>>())),
    post(
        "/api/webhooks/{id}/test",
        Takes::Nothing,
        Gives {
            statuses: &[202],
            content: json::<Delivery>(),
        },
    ),
    post("/api/listen", body::<Sdp>(), ok(json::<Sdp>())),
    delete("/api/listen", NO_CONTENT),
    post(
        "/api/listen/{call_ref}",
        Takes::OptionalJson(schema::<ModeBody>),
        NO_CONTENT,
    ),
    post(
        "/api/listen/{call_ref}/leg",
        body::<LegOffer>(),
        ok(json::<Sdp>()),
    ),
    get("/api/stream", WEBSOCKET),
    get("/api/agent/ws", WEBSOCKET),
];

/// Returns the entry of a route, if the table has one.
pub fn of(method: &str, path: &str) -> Option<&'static Bodies> {
    BODIES.iter().find(|b| b.method == method && b.path == path)
}

const NO_CONTENT: Gives = Gives {
    statuses: &[204],
    content: Content::Nothing,
};

const WEBSOCKET: Gives = Gives {
    statuses: &[101],
    content: Content::Websocket,
};

const fn get(path: &'static str, gives: Gives) -> Bodies {
    Bodies {
        method: "GET",
        path,
        takes: Takes::Nothing,
        gives,
    }
}

const fn delete(path: &'static str, gives: Gives) -> Bodies {
    Bodies {
        method: "DELETE",
        path,
        takes: Takes::Nothing,
        gives,
    }
}

const fn post(path: &'static str, takes: Takes, gives: Gives) -> Bodies {
    Bodies {
        method: "POST",
        path,
        takes,
        gives,
    }
}

const fn put(path: &'static str, takes: Takes, gives: Gives) -> Bodies {
    Bodies {
        method: "PUT",
        path,
        takes,
        gives,
    }
}

const fn patch(path: &'static str, takes: Takes, gives: Gives) -> Bodies {
    Bodies {
        method: "PATCH",
        path,
        takes,
        gives,
    }
}

const fn ok(content: Content) -> Gives {
    Gives {
        statuses: &[200],
        content,
    }
}

const fn created(content: Content) -> Gives {
    Gives {
        statuses: &[201],
        content,
    }
}

const fn body<T: JsonSchema>() -> Takes {
    Takes::Json(schema::<T>)
}

const fn json<T: JsonSchema>() -> Content {
    Content::Json(schema::<T>)
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The body of `PATCH /api/contacts/{id}`: a [`ContactChange`] with the
/// `version` of the contact it was made to, which the handler takes out
/// before reading the rest as the change.
fn contact_edit(generator: &mut SchemaGenerator) -> Schema {
    const NAME: &str = "ContactEdit";
    if !generator.definitions().contains_key(NAME) {
        let mut edit = ContactChange::json_schema(generator);
        edit.insert(
            "description".into(),
            "The changes to a contact, and the version of it they were made to: a field left \
             out keeps its value, and a nullable field given as null is cleared."
                .into(),
        );
        let version = json!({
            "description": "The contact's version as read; a stale one is a 409.",
            "type": "integer",
            "format": "int64",
        });
        if let Some(Value::Object(properties)) = edit.get_mut("properties") {
            properties.insert("version".into(), version);
        }
        match edit.get_mut("required") {
            Some(Value::Array(required)) => required.push("version".into()),
            _ => {
                edit.insert("required".into(), json!(["version"]));
            }
        }
        generator
            .definitions_mut()
            .insert(NAME.into(), edit.to_value());
    }
    super::reference(generator, NAME)
}
