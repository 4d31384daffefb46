//! The description against the access rules, the bodies' table and the
//! bodies the service really reads and writes.

use serde_json::{json, Value};

use super::bodies::{self, Takes};
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

#[test]
fn every_route_that_may_carry_a_body_names_it_or_none() {
    for rule in RULES {
        let Some(entry) = bodies::of(rule.method, rule.path) else {
            panic!(
                "{} {} is not in BODIES: name the type its handler reads \
                 (or Takes::Nothing) and the one it answers with",
                rule.method, rule.path
            );
        };
        if !matches!(rule.method, "POST" | "PUT" | "PATCH") {
            assert!(
                matches!(entry.takes, Takes::Nothing),
                "{} {} takes no body",
                rule.method,
                rule.path
            );
        }
    }
    // No entry is left over from a route that went, and the table reads
    // beside RULES line by line.
    let table: Vec<_> = bodies::BODIES.iter().map(|b| (b.method, b.path)).collect();
    let rules: Vec<_> = RULES.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(table, rules);
}

#[test]
fn every_reference_resolves_to_a_named_schema() {
    let doc = document("test");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(refs.len() > 100, "{} references", refs.len());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} points outside components/schemas"));
        assert!(schemas.contains_key(name), "{r} resolves to nothing");
    }
    for name in schemas.keys() {
        // schemars numbers a second type of the same name: give it one.
        assert!(
            !name.ends_with(|c: char| c.is_ascii_digit()),
            "{name}: two types share a name"
        );
    }
}

#[test]
fn known_bodies_have_their_real_fields() {
    let doc = document("test");
    let login = request(&doc, "post", "/api/login");
    assert_eq!(login["type"], "object");
    assert_eq!(required(&login), ["username", "password"]);
    let me = answer(&doc, "post", "/api/login", "200");
    for field in ["id", "username", "role", "account_id", "account", "home"] {
        assert!(required(&me).contains(&field), "{field} in {me}");
    }
    assert_eq!(
        me["properties"]["role"]["$ref"],
        "#/components/schemas/Role"
    );
    let roles: Vec<_> = doc["components"]["schemas"]["Role"]["oneOf"]
        .as_array()
        .expect("one of the roles")
        .iter()
        .map(|r| r["const"].clone())
        .collect();
    assert_eq!(roles, [json!("agent"), json!("supervisor"), json!("admin")]);

    let create = request(&doc, "post", "/api/contacts");
    assert_eq!(required(&create), ["phone"]);
    assert_eq!(create["additionalProperties"], false);
    let edit = request(&doc, "patch", "/api/contacts/{id}");
    assert_eq!(required(&edit), ["version"]);
    assert!(edit["properties"]["email"]["type"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("null"))));
    let saved = answer(&doc, "post", "/api/contacts", "201");
    for field in [
        "id",
        "phone_e164",
        "version",
        "fields",
        "changed",
        "suppressed",
    ] {
        assert!(required(&saved).contains(&field), "{field} in {saved}");
    }

    // A field read in requests only when given, always answered: two
    // schemas, the request's named for it.
    let sent = request(&doc, "put", "/api/queues/{id}/agents");
    let sent_agent = resolve(&doc, &sent["properties"]["agents"]["items"]);
    assert_eq!(required(&sent_agent), ["user_id", "skill"]);
    let got = answer(&doc, "put", "/api/queues/{id}/agents", "200");
    let got_agent = resolve(&doc, &got["properties"]["agents"]["items"]);
    assert_eq!(required(&got_agent), ["user_id", "skill", "username"]);
    let paths = &doc["paths"]["/api/queues/{id}/agents"]["put"];
    assert_eq!(
        paths["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/QueueAgentsRequest"
    );
    // One the same both ways is one schema.
    assert_eq!(
        doc["paths"]["/api/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/NewUser"
    );

    // Internally tagged and untagged enums keep serde's shape.
    let timeline = answer(&doc, "get", "/api/contacts/{id}/timeline", "200");
    let entry = resolve(&doc, &timeline["items"]);
    let kinds: Vec<_> = entry["oneOf"]
        .as_array()
        .expect("one of the kinds")
        .iter()
        .map(|v| v["properties"]["kind"]["const"].clone())
        .collect();
    assert!(kinds.contains(&json!("call")), "{kinds:?}");
    let duplicates = answer(&doc, "get", "/api/contacts/duplicates", "200");
    assert_eq!(duplicates["anyOf"].as_array().map(Vec::len), Some(2));
}

#[test]
fn bodies_that_are_not_typed_json_have_their_media_type() {
    let doc = document("test");
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let import = op("post", "/api/lists/{id}/import");
    assert_eq!(import["requestBody"]["required"], true);
    assert!(import["requestBody"]["content"]["text/csv"].is_object());
    assert_eq!(
        import["responses"]["202"]["content"]["application/json"],
        json!({})
    );
    let export = op("get", "/api/lists/{id}/export.csv");
    assert!(export["responses"]["200"]["content"]["text/csv"].is_object());
    let report = &op("get", "/api/reports/agents")["responses"]["200"]["content"];
    assert!(report["text/csv"].is_object());
    assert!(report["application/json"]["schema"]["$ref"].is_string());
    let zip = op("get", "/api/contacts/{id}/export.zip");
    assert!(zip["responses"]["200"]["content"]["application/zip"].is_object());
    for (method, path) in [
        ("post", "/api/logout"),
        ("post", "/api/campaigns/{id}/start"),
        ("get", "/api/me"),
    ] {
        assert!(op(method, path)["requestBody"].is_null(), "{method} {path}");
    }
    let logout = op("post", "/api/logout");
    assert_eq!(
        logout["responses"]["204"],
        json!({ "description": "Done, with no body" })
    );
    // A mode is optional: an empty body listens.
    assert_eq!(
        op("post", "/api/listen/{call_ref}")["requestBody"]["required"],
        false
    );
    let refused = &op("post", "/api/login")["responses"]["400"]["content"]["application/json"];
    assert_eq!(refused["schema"]["$ref"], "#/components/schemas/Error");
}

#[test]
fn real_bodies_conform_to_their_schemas() {
    let doc = document("test");
    // The bodies tests/e2e/contacts.rs sends: accepted ones conform, and
    // those the service refuses for their shape do not.
    let create = request(&doc, "post", "/api/contacts");
    let ada = json!({
        "first_name": "Ada", "last_name": "Lovelace", "phone": "07400 100123",
        "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
        "list_id": 7
    });
    assert_eq!(conforms(&doc, &create, &ada), Ok(()));
    assert!(serde_json::from_value::<crm::edit::NewContact>(ada).is_ok());
    for bad in [
        json!({ "first_name": "No number" }),
        json!({ "phone": "+447400100999", "shoe_size": 9 }),
    ] {
        assert!(conforms(&doc, &create, &bad).is_err(), "{bad}");
        assert!(serde_json::from_value::<crm::edit::NewContact>(bad).is_err());
    }
    let edit = request(&doc, "patch", "/api/contacts/{id}");
    let king = json!({ "version": 1, "last_name": "King", "email": null });
    assert_eq!(conforms(&doc, &edit, &king), Ok(()));
    assert!(conforms(&doc, &edit, &json!({ "last_name": "X" })).is_err());
    assert!(conforms(&doc, &edit, &json!({ "version": "1" })).is_err());

    // What the service writes conforms to what it describes.
    let me = crate::auth::Me {
        id: 3,
        username: "sue".into(),
        role: crm::model::Role::Supervisor,
        account_id: 1,
        account: "acme".into(),
        home: "/supervisor",
    };
    let me = serde_json::to_value(me).expect("JSON");
    assert_eq!(
        conforms(&doc, &answer(&doc, "get", "/api/me", "200"), &me),
        Ok(())
    );
    let user = crm::model::User {
        id: crm::model::UserId(3),
        account_id: crm::model::AccountId(1),
        username: "sue".into(),
        role: crm::model::Role::Agent,
        active: true,
        created_at: chrono::DateTime::UNIX_EPOCH,
    };
    let user = serde_json::to_value(user).expect("JSON");
    let users = answer(&doc, "get", "/api/users", "200");
    assert_eq!(conforms(&doc, &users, &json!([user])), Ok(()));
    assert!(conforms(&doc, &users, &json!([{ "id": 3 }])).is_err());
}

/// Every `$ref` in a value.
fn references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => into.push(r.clone()),
                    _ => references(v, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, into)),
        _ => {}
    }
}

/// The schema a `$ref` points to, or the schema itself.
fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .cloned()
            .unwrap_or_else(|| panic!("{r} resolves")),
        None => schema.clone(),
    }
}

fn request(doc: &Value, method: &str, path: &str) -> Value {
    let schema =
        &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} takes JSON");
    resolve(doc, schema)
}

fn answer(doc: &Value, method: &str, path: &str, status: &str) -> Value {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} answers JSON");
    resolve(doc, schema)
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Checks a value against a schema of the document by hand, for the
/// keywords the derived schemas use: `$ref`, `type`, `required`,
/// `properties`, `additionalProperties: false`, `items`, `anyOf`, `oneOf`.
fn conforms(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{value} is not {types:?}"));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(choices)) = schema.get(key) {
            if !choices.iter().any(|c| conforms(doc, c, value).is_ok()) {
                return Err(format!("{value} is none of {key}"));
            }
        }
    }
    if let Value::Object(fields) = value {
        for name in required(&schema) {
            if !fields.contains_key(name) {
                return Err(format!("{name} is missing"));
            }
        }
        for (name, v) in fields {
            match schema["properties"].get(name) {
                Some(property) => conforms(doc, property, v).map_err(|e| format!("{name}: {e}"))?,
                None if schema["additionalProperties"] == false => {
                    return Err(format!("{name} is not a field"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(each)) = (value, schema.get("items")) {
        for item in items {
            conforms(doc, each, item)?;
        }
    }
    Ok(())
}
