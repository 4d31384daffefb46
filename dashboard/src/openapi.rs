//! The API's description in OpenAPI 3.1, served at `/api/openapi.json`.
//!
//! It is built from [`crate::access::RULES`], the table a test holds every
//! registered route to in both directions, so a route cannot be added,
//! removed or given other roles without the description following:
//! paths, methods, path parameters, whether a session is needed and which
//! roles may call.
//!
//! Bodies come from [`bodies::BODIES`], which names for each rule the Rust
//! type its handler reads and the one it answers with; their JSON Schemas
//! (2020-12, as OpenAPI 3.1 uses) are derived from those types with
//! `schemars`, serde's attributes included, and put under
//! `components/schemas`. Request bodies are read as they deserialize and
//! answers as they serialize: where the two differ for one type (a field
//! that may be left out of a request but is always answered), the request's
//! schema is named with `Request` after the type's name. Bodies that are
//! not JSON get their media type, and JSON built by hand gets its media type
//! without a schema; docs/api.md says what those hold.

pub mod bodies;

use std::collections::BTreeMap;

use schemars::generate::{Contract, SchemaSettings};
use schemars::{Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::access::{Rule, Who, RULES};
use crate::auth::SESSION_COOKIE;
use crate::error::ErrorBody;
use bodies::{Bodies, Content, Takes};

/// Where the schemas of the bodies end up.
const COMPONENTS: &str = "/components/schemas";

/// Where request schemas are made, apart from the answers', until
/// [`merge`] names them.
const REQUESTS: &str = "/x-request-schemas";

/// The description, for this version of the service.
pub fn document(version: &str) -> Value {
    let mut schemas = Generators {
        requests: generator(REQUESTS, Contract::Deserialize),
        answers: generator(COMPONENTS, Contract::Serialize),
    };
    let error = schemas.answers.subschema_for::<ErrorBody>().to_value();
    let mut paths = Map::new();
    for rule in RULES {
        let op = operation(
            rule,
            bodies::of(rule.method, rule.path),
            &mut schemas,
            &error,
        );
        let item = paths
            .entry(rule.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(rule.method.to_ascii_lowercase(), op);
        }
    }
    let (components, names) = merge(
        schemas.answers.take_definitions(true),
        schemas.requests.take_definitions(true),
    );
    let mut paths = Value::Object(paths);
    relink(&mut paths, &names);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "dialcrm",
            "version": version,
            "description": "The HTTP API of dialcrm, an open contact-centre dialler and telephony CRM. \
                Every route acts within the caller's account, taken from the session. \
                JSON bodies, of requests and of answers, have their schemas under components/schemas, \
                derived from the types the service reads and writes; errors are {\"error\": \"...\"}. \
                Bodies in other media types (CSV, zip, metrics) and the few JSON answers built by hand \
                are described in docs/api.md.",
        },
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE },
            },
            "schemas": components,
        },
        "paths": paths,
    })
}

/// Returns a `$ref` to the schema a generator keeps under `name`.
pub(crate) fn reference(generator: &SchemaGenerator, name: &str) -> Schema {
    let path = generator
        .settings()
        .definitions_path
        .trim_start_matches('#');
    Schema::new_ref(format!("#{}/{name}", path.trim_end_matches('/')))
}

/// One generator for what requests carry, one for what answers carry:
/// serde may read a type otherwise than it writes it.
struct Generators {
    requests: SchemaGenerator,
    answers: SchemaGenerator,
}

fn generator(path: &str, contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = path.to_owned().into();
            s.meta_schema = None;
            s.contract = contract;
        })
        .into_generator()
}

fn operation(
    rule: &Rule,
    bodies: Option<&Bodies>,
    schemas: &mut Generators,
    error: &Value,
) -> Value {
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
    let failed = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": error } },
        })
    };
    let mut responses = Map::new();
    match bodies {
        Some(bodies) => {
            for status in bodies.gives.statuses {
                let answer = answer(*status, bodies.gives.content, &mut schemas.answers);
                responses.insert(status.to_string(), answer);
            }
        }
        None => {
            responses.insert("200".into(), json!({ "description": "Done" }));
        }
    }
    let request = bodies.and_then(|b| request_body(b.takes, &mut schemas.requests));
    if request.is_some() {
        responses.insert(
            "400".into(),
            failed("The body is malformed or a value is refused; the message names the field"),
        );
    }
    if rule.who != Who::Public {
        responses.insert("401".into(), failed("No live session"));
        responses.insert("403".into(), failed("The caller's role may not"));
    }
    if !parameters.is_empty() {
        responses.insert("404".into(), failed("No such row in the caller's account"));
    }
    let mut op = json!({
        "summary": rule.summary,
        "tags": [tag(rule.path)],
        "security": security,
        "x-dialcrm-roles": roles,
        "parameters": parameters,
        "responses": responses,
    });
    if let (Some(request), Value::Object(op)) = (request, &mut op) {
        op.insert("requestBody".into(), request);
    }
    op
}

/// The `requestBody` of what a route takes; none when it reads no body.
fn request_body(takes: Takes, requests: &mut SchemaGenerator) -> Option<Value> {
    let json_body = |schema: Schema, required: bool| {
        json!({
            "required": required,
            "content": { "application/json": { "schema": schema } },
        })
    };
    match takes {
        Takes::Nothing => None,
        Takes::Json(schema) => Some(json_body(schema(requests), true)),
        Takes::OptionalJson(schema) => Some(json_body(schema(requests), false)),
        Takes::Media(types) => {
            let content: Map<String, Value> =
                types.iter().map(|t| ((*t).to_owned(), json!({}))).collect();
            Some(json!({ "required": true, "content": content }))
        }
    }
}

/// The response object of one status of success.
fn answer(status: u16, content: Content, answers: &mut SchemaGenerator) -> Value {
    let description = match status {
        101 => "Switching to the websocket",
        201 => "Created",
        202 => "Accepted; the work goes on after the answer",
        204 => "Done, with no body",
        _ => "Done",
    };
    let content = match content {
        Content::Nothing | Content::Websocket => None,
        Content::Json(schema) => Some(json!({ "application/json": { "schema": schema(answers) } })),
        Content::UntypedJson => Some(json!({ "application/json": {} })),
        Content::JsonOrCsv(schema) => Some(json!({
            "application/json": { "schema": schema(answers) },
            "text/csv": {},
        })),
        Content::Media(media) => Some(json!({ media: {} })),
    };
    match content {
        Some(content) => json!({ "description": description, "content": content }),
        None => json!({ "description": description }),
    }
}

/// Puts the request schemas beside the answers' under `components/schemas`
/// and returns them with the name each request schema got: its own, or with
/// `Request` after it where an answer's schema of that name differs.
///
/// Renaming one schema changes the `$ref`s of those that use it, which may
/// make them differ in turn, so names are settled until nothing changes.
fn merge(
    answers: Map<String, Value>,
    requests: Map<String, Value>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut names: BTreeMap<String, String> =
        requests.keys().map(|k| (k.clone(), k.clone())).collect();
    loop {
        let mut renamed = false;
        for (name, schema) in &requests {
            if names.get(name) != Some(name) {
                continue;
            }
            let mut linked = schema.clone();
            relink(&mut linked, &names);
            if answers.get(name).is_some_and(|a| *a != linked) {
                let taken = |n: &String| answers.contains_key(n) || requests.contains_key(n);
                let mut new = format!("{name}Request");
                let mut i = 2;
                while taken(&new) || names.values().any(|v| *v == new) {
                    new = format!("{name}Request{i}");
                    i += 1;
                }
                names.insert(name.clone(), new);
                renamed = true;
            }
        }
        if !renamed {
            break;
        }
    }
    let mut components = answers;
    for (name, mut schema) in requests {
        relink(&mut schema, &names);
        let final_name = names.get(&name).cloned().unwrap_or(name);
        components.entry(final_name).or_insert(schema);
    }
    (components, names)
}

/// Points the `$ref`s to request schemas at their names under
/// `components/schemas`.
fn relink(value: &mut Value, names: &BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref" {
                    if let Value::String(r) = v {
                        if let Some(name) = r.strip_prefix(&format!("#{REQUESTS}/")) {
                            let name = names.get(name).map_or(name, String::as_str);
                            *r = format!("#{COMPONENTS}/{name}");
                        }
                    }
                } else {
                    relink(v, names);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| relink(v, names)),
        _ => {}
    }
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
mod tests;
