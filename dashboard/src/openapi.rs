//! The API's description in OpenAPI 3.1, served at `/api/openapi.json`.
//!
//! It is built from [`crate::access::RULES`], the table a test holds every
//! registered route to in both directions, so a route cannot be added,
//! removed or given other roles without the description following:
//! paths, methods, path parameters, whether a session is needed and which
//! roles may call. Bodies are described in docs/api.md.

use serde_json::{json, Map, Value};

use crate::access::{Rule, Who, RULES};
use crate::auth::SESSION_COOKIE;

/// The description, for this version of the service.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for rule in RULES {
        let item = paths
            .entry(rule.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(rule.method.to_ascii_lowercase(), operation(rule));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dialcrm",
            "version": version,
            "description": "The HTTP API of dialcrm, an open contact-centre dialler and telephony CRM. \
                Every route acts within the caller's account, taken from the session. \
                Request and response bodies are described in docs/api.md.",
        },
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE },
            },
        },
        "paths": paths,
    })
}

fn operation(rule: &Rule) -> Value {
    let (security, roles) = match rule.who {
        Who::Public => (json!([]), json!([])),
        Who::AnyRole => (
            json!([{ "session": [] }]),
            json!(["agent", "supervisor", "admin"]),
        ),
        Who::Roles(roles) => (
            json!([{ "session": [] }]),
            roles.iter().map(|r| json!(r.as_str())).collect(),
        ),
    };
    let parameters: Vec<Value> = rule
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
        })
        .collect();
    let websocket = matches!(rule.path, "/api/stream" | "/api/agent/ws");
    let mut responses = Map::new();
    if websocket {
        responses.insert(
            "101".into(),
            json!({ "description": "Switching to the websocket" }),
        );
    } else {
        responses.insert("200".into(), json!({ "description": "Done" }));
    }
    if rule.who != Who::Public {
        responses.insert("401".into(), json!({ "description": "No live session" }));
        responses.insert(
            "403".into(),
            json!({ "description": "The caller's role may not" }),
        );
    }
    if !parameters.is_empty() {
        responses.insert(
            "404".into(),
            json!({ "description": "No such row in the caller's account" }),
        );
    }
    json!({
        "summary": rule.summary,
        "tags": [tag(rule.path)],
        "security": security,
        "x-dialcrm-roles": roles,
        "parameters": parameters,
        "responses": responses,
    })
}

/// The first segment after `/api`, or the path's own first segment.
fn tag(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or_default();
    let name = if first == "api" {
        segments.next().unwrap_or_default()
    } else {
        first
    };
    name.split(['.', '{']).next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_described_once_with_its_parameters_and_roles() {
        let doc = document("test");
        let paths = doc["paths"].as_object().expect("paths");
        let described: usize = paths
            .values()
            .map(|item| item.as_object().expect("item").len())
            .sum();
        assert_eq!(described, RULES.len(), "one operation per rule");
        for rule in RULES {
            let op = &doc["paths"][rule.path][rule.method.to_ascii_lowercase()];
            assert!(
                op["summary"].as_str().is_some_and(|s| s.len() > 10),
                "{} {} has a summary",
                rule.method,
                rule.path
            );
            let params = op["parameters"].as_array().expect("parameters").len();
            assert_eq!(params, rule.path.matches('{').count(), "{}", rule.path);
        }
        let start = &doc["paths"]["/api/campaigns/{id}/start"]["post"];
        assert_eq!(start["x-dialcrm-roles"], json!(["supervisor", "admin"]));
        assert_eq!(start["security"], json!([{ "session": [] }]));
        assert_eq!(start["parameters"][0]["name"], "id");
        let login = &doc["paths"]["/api/login"]["post"];
        assert_eq!(login["security"], json!([]));
        assert_eq!(
            doc["paths"]["/api/stream"]["get"]["responses"]["101"]["description"],
            "Switching to the websocket"
        );
        assert_eq!(tag("/api/lists/{id}/export.csv"), "lists");
        assert_eq!(tag("/api/audit.csv"), "audit");
        assert_eq!(tag("/healthz"), "healthz");
    }
}
