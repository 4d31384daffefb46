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
    /// The path as registered, with `{id}` (or `{call_ref}`) for a row of
    /// the caller's account.
    pub path: &'static str,
    /// Who may call it.
    pub who: Who,
}

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];
const AGENTS: &[Role] = &[Role::Agent];

const fn rule(method: &'static str, path: &'static str, who: Who) -> Rule {
    Rule { method, path, who }
}

/// Every API route and who may call it.
pub const RULES: &[Rule] = &[
    rule("GET", "/healthz", Who::Public),
    rule("GET", "/metrics", Who::Public),
    rule("POST", "/api/login", Who::Public),
    rule("POST", "/api/logout", Who::AnyRole),
    rule("POST", "/api/logout-everywhere", Who::AnyRole),
    rule("GET", "/api/me", Who::AnyRole),
    rule("POST", "/api/me/password", Who::AnyRole),
    rule("GET", "/api/account", Who::Roles(MANAGERS)),
    rule("GET", "/api/account/retention", Who::Roles(ADMINS)),
    rule("PUT", "/api/account/retention", Who::Roles(ADMINS)),
    rule("GET", "/api/account/privacy", Who::Roles(ADMINS)),
    rule("PUT", "/api/account/privacy", Who::Roles(ADMINS)),
    rule("GET", "/api/account/pause-codes", Who::AnyRole),
    rule("PUT", "/api/account/pause-codes", Who::Roles(MANAGERS)),
    rule("GET", "/api/users", Who::Roles(MANAGERS)),
    rule("POST", "/api/users", Who::Roles(MANAGERS)),
    rule("GET", "/api/users/{id}", Who::Roles(MANAGERS)),
    rule("POST", "/api/users/{id}/active", Who::Roles(MANAGERS)),
    rule("GET", "/api/lists", Who::Roles(MANAGERS)),
    rule("POST", "/api/lists", Who::Roles(MANAGERS)),
    rule("GET", "/api/lists/{id}", Who::Roles(MANAGERS)),
    rule("GET", "/api/lists/{id}/contacts", Who::Roles(MANAGERS)),
    rule("POST", "/api/lists/{id}/import", Who::Roles(MANAGERS)),
    rule("GET", "/api/lists/{id}/export.csv", Who::Roles(MANAGERS)),
    rule("GET", "/api/imports/{id}", Who::Roles(MANAGERS)),
    rule("GET", "/api/contacts", Who::AnyRole),
    rule("POST", "/api/contacts", Who::Roles(MANAGERS)),
    rule("GET", "/api/contacts/{id}", Who::AnyRole),
    rule("PATCH", "/api/contacts/{id}", Who::AnyRole),
    rule("GET", "/api/contacts/{id}/timeline", Who::AnyRole),
    rule("GET", "/api/contacts/{id}/export.zip", Who::Roles(ADMINS)),
    rule("POST", "/api/contacts/{id}/erase", Who::Roles(ADMINS)),
    rule("GET", "/api/campaigns", Who::AnyRole),
    rule("POST", "/api/campaigns", Who::Roles(MANAGERS)),
    rule("GET", "/api/campaigns/{id}", Who::AnyRole),
    rule("GET", "/api/campaigns/{id}/agents", Who::Roles(MANAGERS)),
    rule("PUT", "/api/campaigns/{id}/agents", Who::Roles(MANAGERS)),
    rule("GET", "/api/campaigns/{id}/settings", Who::Roles(MANAGERS)),
    rule("PUT", "/api/campaigns/{id}/settings", Who::Roles(MANAGERS)),
    rule("POST", "/api/campaigns/{id}/lists", Who::Roles(MANAGERS)),
    rule("POST", "/api/campaigns/{id}/start", Who::Roles(MANAGERS)),
    rule("POST", "/api/campaigns/{id}/pause", Who::Roles(MANAGERS)),
    rule(
        "PUT",
        "/api/campaigns/{id}/dial-level",
        Who::Roles(MANAGERS),
    ),
    rule("GET", "/api/reports/agents", Who::Roles(MANAGERS)),
    rule("GET", "/api/reports/campaigns", Who::Roles(MANAGERS)),
    rule("GET", "/api/audit", Who::Roles(ADMINS)),
    rule("GET", "/api/audit.csv", Who::Roles(ADMINS)),
    rule("GET", "/api/audit/counts", Who::Roles(ADMINS)),
    rule("POST", "/api/listen", Who::Roles(MANAGERS)),
    rule("DELETE", "/api/listen", Who::Roles(MANAGERS)),
    rule("POST", "/api/listen/{call_ref}", Who::Roles(MANAGERS)),
    rule("GET", "/api/stream", Who::Roles(MANAGERS)),
    rule("GET", "/api/agent/ws", Who::Roles(AGENTS)),
];
