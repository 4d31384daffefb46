//! Who may call each route of the API: one table, checked by a test that
//! walks every route with every role and a foreign account, and that fails
//! when a route exists without a rule here.
//!
//! The handlers enforce these rules themselves (`CurrentUser::require`);
//! this table is the statement they are tested against.

use crm::model::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Anyone, without a session.
    Public,
    /// Any logged-in user of any role.
    AnyRole,
    /// Logged-in users with one of these roles.
    Roles(&'static [Role]),
}

/// One route's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The HTTP method.
    pub method: &'static str,
    /// The path as registered, with `{id}` (or `{call_ref}`, `{key}`) for
    /// a row of the caller's account.
    pub path: &'static str,
    /// Who may call it.
    pub who: Who,
    /// What it does, for the API's description.
    pub summary: &'static str,
}

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];
const AGENTS: &[Role] = &[Role::Agent];

const fn rule(method: &'static str, path: &'static str, who: Who, summary: &'static str) -> Rule {
    Rule {
        method,
        path,
        who,
        summary,
    }
}

/// Every API route and who may call it.
pub const RULES: &[Rule] = &[
    rule(
        "GET",
        "/healthz",
        Who::Public,
        "Whether the service can serve: 200, or 503 when the database does not answer or the node drains",
    ),
    rule(
        "GET",
        "/api/openapi.json",
        Who::Public,
        "This description of the API",
    ),
    rule(
        "GET",
        "/metrics",
        Who::Public,
        "The service's metrics in the OpenMetrics text format",
    ),
    rule(
        "POST",
        "/api/login",
        Who::Public,
        "Log in with a username and password; sets the session cookie",
    ),
    rule(
        "POST",
        "/api/logout",
        Who::AnyRole,
        "End this session",
    ),
    rule(
        "POST",
        "/api/logout-everywhere",
        Who::AnyRole,
        "End every session of the caller",
    ),
    rule(
        "GET",
        "/api/me",
        Who::AnyRole,
        "The caller: user, role and account",
    ),
    rule(
        "POST",
        "/api/me/password",
        Who::AnyRole,
        "Change the caller's password",
    ),
    rule(
        "GET",
        "/api/account",
        Who::Roles(MANAGERS),
        "The caller's account",
    ),
    rule(
        "GET",
        "/api/account/retention",
        Who::Roles(ADMINS),
        "How long the account keeps interactions, recordings and agent states",
    ),
    rule(
        "PUT",
        "/api/account/retention",
        Who::Roles(ADMINS),
        "Change the account's retention periods",
    ),
    rule(
        "GET",
        "/api/account/privacy",
        Who::Roles(ADMINS),
        "The account's privacy settings",
    ),
    rule(
        "PUT",
        "/api/account/privacy",
        Who::Roles(ADMINS),
        "Change the account's privacy settings",
    ),
    rule(
        "GET",
        "/api/account/pause-codes",
        Who::AnyRole,
        "The reasons agents may give for pausing",
    ),
    rule(
        "PUT",
        "/api/account/pause-codes",
        Who::Roles(MANAGERS),
        "Replace the account's pause codes",
    ),
    rule(
        "GET",
        "/api/account/fields",
        Who::AnyRole,
        "The contact fields the account defines (agents: those shown on the card)",
    ),
    rule(
        "POST",
        "/api/account/fields",
        Who::Roles(ADMINS),
        "Define a contact field: text, number, date, choice list or yes/no",
    ),
    rule(
        "PATCH",
        "/api/account/fields/{key}",
        Who::Roles(ADMINS),
        "Change a contact field's label, choices, flags or position",
    ),
    rule(
        "DELETE",
        "/api/account/fields/{key}",
        Who::Roles(ADMINS),
        "Remove a contact field, erasing every value held in it",
    ),
    rule(
        "GET",
        "/api/users",
        Who::Roles(MANAGERS),
        "The account's users",
    ),
    rule(
        "POST",
        "/api/users",
        Who::Roles(MANAGERS),
        "Add a user to the account, within its seats",
    ),
    rule(
        "GET",
        "/api/users/{id}",
        Who::Roles(MANAGERS),
        "One user of the account",
    ),
    rule(
        "POST",
        "/api/users/{id}/active",
        Who::Roles(MANAGERS),
        "Activate or deactivate a user",
    ),
    rule(
        "GET",
        "/api/lists",
        Who::Roles(MANAGERS),
        "The account's call lists",
    ),
    rule(
        "POST",
        "/api/lists",
        Who::Roles(MANAGERS),
        "Create a call list",
    ),
    rule(
        "GET",
        "/api/lists/{id}",
        Who::Roles(MANAGERS),
        "One call list",
    ),
    rule(
        "GET",
        "/api/lists/{id}/contacts",
        Who::Roles(MANAGERS),
        "A call list's contacts, paged",
    ),
    rule(
        "POST",
        "/api/lists/{id}/import",
        Who::Roles(MANAGERS),
        "Import a CSV file into a call list; the report names bad rows",
    ),
    rule(
        "GET",
        "/api/lists/{id}/export.csv",
        Who::Roles(MANAGERS),
        "A call list as CSV",
    ),
    rule(
        "GET",
        "/api/imports/{id}",
        Who::Roles(MANAGERS),
        "An import's progress and report",
    ),
    rule(
        "GET",
        "/api/contacts",
        Who::AnyRole,
        "Search the account's contacts by name, number, email, postal code or field values (agents: their campaigns' leads)",
    ),
    rule(
        "POST",
        "/api/contacts",
        Who::Roles(MANAGERS),
        "Create a contact, optionally on a list",
    ),
    rule(
        "PATCH",
        "/api/contacts/{id}",
        Who::AnyRole,
        "Change a contact's fields, naming the version read (agents: their call's or callback's contact)",
    ),
    rule(
        "GET",
        "/api/contacts/{id}/timeline",
        Who::AnyRole,
        "A contact's calls, notes, callbacks, edits and lists, newest first",
    ),
    rule(
        "GET",
        "/api/callbacks",
        Who::AnyRole,
        "Callbacks booked and not yet made, soonest first (agents: their own; supervisors: the account's, or one agent's with user)",
    ),
    rule(
        "GET",
        "/api/contacts/{id}",
        Who::AnyRole,
        "A contact's card (agents: contacts of their campaigns only)",
    ),
    rule(
        "GET",
        "/api/contacts/{id}/export.zip",
        Who::Roles(ADMINS),
        "Everything held about a contact (subject access)",
    ),
    rule(
        "GET",
        "/api/contacts/duplicates",
        Who::Roles(MANAGERS),
        "Likely duplicates (same email, same number, similar name at one postal code): of one contact with contact_id, else a page of the account's pairs",
    ),
    rule(
        "POST",
        "/api/contacts/merge",
        Who::Roles(MANAGERS),
        "Merge one contact into another, each at the version read: history moves, empty fields are filled, suppression is the union",
    ),
    rule(
        "GET",
        "/api/contacts/merges",
        Who::Roles(MANAGERS),
        "The account's merges, newest first (of one contact with contact_id)",
    ),
    rule(
        "POST",
        "/api/contacts/merge/{id}/undo",
        Who::Roles(MANAGERS),
        "Undo a merge within its day: both contacts as they were",
    ),
    rule(
        "POST",
        "/api/contacts/{id}/erase",
        Who::Roles(ADMINS),
        "Erase a contact, keeping their do-not-call record",
    ),
    rule(
        "POST",
        "/api/dnc",
        Who::Roles(MANAGERS),
        "Put a number on the account's do-not-call list",
    ),
    rule(
        "GET",
        "/api/dnc/{number}",
        Who::Roles(MANAGERS),
        "Whether a number is on the account's do-not-call list, and why",
    ),
    rule(
        "DELETE",
        "/api/dnc/{number}",
        Who::Roles(MANAGERS),
        "Take a number off the do-not-call list (never an erased person's)",
    ),
    rule(
        "GET",
        "/api/dnc",
        Who::Roles(MANAGERS),
        "Read the do-not-call list back, with the numbers where the account keeps them",
    ),
    rule(
        "GET",
        "/api/dnc/settings",
        Who::Roles(MANAGERS),
        "Whether the account keeps its do-not-call list's numbers",
    ),
    rule(
        "PUT",
        "/api/dnc/settings",
        Who::Roles(ADMINS),
        "Keep the do-not-call list's numbers, or forget them (hashes stay)",
    ),
    rule(
        "POST",
        "/api/dnc/import",
        Who::Roles(MANAGERS),
        "Import a do-not-call list: one number per line, or a CSV whose first column is the number",
    ),
    rule(
        "GET",
        "/api/campaigns",
        Who::AnyRole,
        "The account's campaigns (agents: those they work)",
    ),
    rule(
        "POST",
        "/api/campaigns",
        Who::Roles(MANAGERS),
        "Create a paused campaign",
    ),
    rule(
        "GET",
        "/api/campaigns/{id}",
        Who::AnyRole,
        "One campaign of the account",
    ),
    rule(
        "GET",
        "/api/campaigns/{id}/agents",
        Who::Roles(MANAGERS),
        "The agents assigned to a campaign",
    ),
    rule(
        "PUT",
        "/api/campaigns/{id}/agents",
        Who::Roles(MANAGERS),
        "Set the agents who work a campaign",
    ),
    rule(
        "GET",
        "/api/campaigns/{id}/settings",
        Who::Roles(MANAGERS),
        "A campaign's settings: mode, pacing, hours, retries, dispositions",
    ),
    rule(
        "PUT",
        "/api/campaigns/{id}/settings",
        Who::Roles(MANAGERS),
        "Change a campaign's settings under the compliance rules",
    ),
    rule(
        "GET",
        "/api/queues",
        Who::Roles(MANAGERS),
        "The account's inbound queues with their numbers and settings",
    ),
    rule(
        "POST",
        "/api/queues",
        Who::Roles(MANAGERS),
        "Create an inbound queue: its name, numbers, campaign and settings",
    ),
    rule(
        "GET",
        "/api/queues/{id}",
        Who::Roles(MANAGERS),
        "One inbound queue",
    ),
    rule(
        "PATCH",
        "/api/queues/{id}",
        Who::Roles(MANAGERS),
        "Change an inbound queue's settings or numbers",
    ),
    rule(
        "DELETE",
        "/api/queues/{id}",
        Who::Roles(MANAGERS),
        "Delete an inbound queue; its calls keep their history",
    ),
    rule(
        "GET",
        "/api/queues/{id}/agents",
        Who::Roles(MANAGERS),
        "The agents answering a queue, with their skills",
    ),
    rule(
        "PUT",
        "/api/queues/{id}/agents",
        Who::Roles(MANAGERS),
        "Set the agents answering a queue and their skills (1 to 10)",
    ),
    rule(
        "GET",
        "/api/campaigns/{id}/script",
        Who::Roles(MANAGERS),
        "A campaign's call script: sections of text with merge fields",
    ),
    rule(
        "PUT",
        "/api/campaigns/{id}/script",
        Who::Roles(MANAGERS),
        "Replace a campaign's call script; unknown merge fields are named",
    ),
    rule(
        "POST",
        "/api/campaigns/{id}/script/preview",
        Who::Roles(MANAGERS),
        "Render a campaign's script, or a draft, with a chosen or made-up contact",
    ),
    rule(
        "POST",
        "/api/campaigns/{id}/lists",
        Who::Roles(MANAGERS),
        "Attach a call list to a campaign",
    ),
    rule(
        "POST",
        "/api/campaigns/{id}/start",
        Who::Roles(MANAGERS),
        "Start dialling a campaign",
    ),
    rule(
        "POST",
        "/api/campaigns/{id}/pause",
        Who::Roles(MANAGERS),
        "Stop dialling a campaign for now",
    ),
    rule(
        "PUT",
        "/api/campaigns/{id}/dial-level",
        Who::Roles(MANAGERS),
        "Cap a campaign's dial level",
    ),
    rule(
        "GET",
        "/api/campaigns/{id}/estimate",
        Who::Roles(MANAGERS),
        "Estimate predictive and progressive dialling for a campaign from its last 30 days of calls",
    ),
    rule(
        "GET",
        "/api/reports/agents",
        Who::Roles(MANAGERS),
        "Agents' time by state and calls, as JSON or CSV",
    ),
    rule(
        "GET",
        "/api/reports/campaigns",
        Who::Roles(MANAGERS),
        "Campaigns' calls, answers and abandons, as JSON or CSV",
    ),
    rule(
        "GET",
        "/api/reports/queues",
        Who::Roles(MANAGERS),
        "Inbound queues over a period: offered, answered, abandoned, service level, speed of answer",
    ),
    rule(
        "GET",
        "/api/audit",
        Who::Roles(ADMINS),
        "The account's audit log, filtered and paged",
    ),
    rule(
        "GET",
        "/api/audit.csv",
        Who::Roles(ADMINS),
        "The account's audit log as CSV",
    ),
    rule(
        "GET",
        "/api/audit/counts",
        Who::Roles(ADMINS),
        "Audit entries counted by action",
    ),
    rule(
        "GET",
        "/api/webhooks",
        Who::Roles(ADMINS),
        "The account's webhook endpoints, without their secrets",
    ),
    rule(
        "POST",
        "/api/webhooks",
        Who::Roles(ADMINS),
        "Add a webhook endpoint for chosen events; its signing secret is shown once",
    ),
    rule(
        "GET",
        "/api/webhooks/{id}",
        Who::Roles(ADMINS),
        "One webhook endpoint of the account",
    ),
    rule(
        "PATCH",
        "/api/webhooks/{id}",
        Who::Roles(ADMINS),
        "Change a webhook endpoint's URL, events, contact fields or state, or rotate its secret",
    ),
    rule(
        "DELETE",
        "/api/webhooks/{id}",
        Who::Roles(ADMINS),
        "Delete a webhook endpoint with its delivery log",
    ),
    rule(
        "GET",
        "/api/webhooks/{id}/deliveries",
        Who::Roles(ADMINS),
        "A webhook endpoint's deliveries, newest first: status, attempts, last error, next try",
    ),
    rule(
        "POST",
        "/api/webhooks/{id}/test",
        Who::Roles(ADMINS),
        "Send a signed test delivery (ping) to a webhook endpoint",
    ),
    rule(
        "POST",
        "/api/listen",
        Who::Roles(MANAGERS),
        "Start a listening leg for the supervisor's browser (WebRTC offer in, answer out)",
    ),
    rule(
        "DELETE",
        "/api/listen",
        Who::Roles(MANAGERS),
        "End the supervisor's listening leg",
    ),
    rule(
        "POST",
        "/api/listen/{call_ref}",
        Who::Roles(MANAGERS),
        "Listen to a live call of the account",
    ),
    rule(
        "POST",
        "/api/listen/{call_ref}/leg",
        Who::Roles(MANAGERS),
        "Listen to a live call with a new leg made wherever the call is held (WebRTC offer in, answer out)",
    ),
    rule(
        "GET",
        "/api/stream",
        Who::Roles(MANAGERS),
        "The supervisors' live stream (websocket): a snapshot, then numbered events",
    ),
    rule(
        "GET",
        "/api/agent/ws",
        Who::Roles(AGENTS),
        "The agent's desk (websocket): state, calls, contact card, wrap-up",
    ),
];
