//! Fields an account defines for its contacts, on both backends: their
//! definitions, values checked by kind, search and filters, imports and
//! exports, and what removing a field does.

use std::io::Cursor;

use chrono::{DateTime, TimeZone, Utc};
use crm::edit::{ContactChange, NewContact};
use crm::export::ListExport;
use crm::fields::{FieldChange, FieldKind, NewField};
use crm::import::{import_csv, ImportOptions, OnDuplicate};
use crm::model::*;
use crm::search::{ContactQuery, Field, Sort};
use crm::store::{Saved, SearchScope};
use crm::testing::{incompressible_text, TestDb};
use crm::{Backend, Store, StoreError};
use phonenumber::country;
use serde_json::{json, Value};

crm::on_both_backends!(
    fields_are_defined_changed_and_listed_in_order,
    values_are_checked_by_kind_and_required_fields_enforced,
    a_choice_held_by_contacts_cannot_be_taken_away,
    search_matches_text_fields_and_filters_by_value,
    a_field_value_search_uses_its_index,
    imports_map_columns_to_fields_and_report_bad_values,
    exports_write_the_exported_fields,
    removing_a_field_erases_its_values_and_is_audited,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn admin(account: &Account) -> Actor {
    Actor {
        account_id: Some(account.id),
        ..Actor::default()
    }
}

async fn define(s: &Store, a: &Account, body: Value) -> Result<crm::fields::FieldDef, StoreError> {
    let new: NewField = serde_json::from_value(body).expect("a well-formed definition");
    s.define_field(&admin(a), &new, t0()).await
}

/// Defines the fields most tests use: a text, a number, a date, a choice
/// list and a yes/no, the date required.
async fn standard_fields(s: &Store, a: &Account) {
    for body in [
        json!({ "key": "company", "label": "Company", "kind": "text" }),
        json!({ "key": "policy_value", "label": "Policy value", "kind": "number", "on_card": false }),
        json!({ "key": "renewal", "label": "Renewal date", "kind": "date", "required": true }),
        json!({ "key": "plan", "label": "Plan", "kind": "choice", "choices": ["Gold", "Silver"] }),
        json!({ "key": "opt_in", "label": "Opted in", "kind": "yes_no", "exported": false }),
    ] {
        define(s, a, body).await.expect("defined");
    }
}

fn object(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().expect("a JSON object")
}

async fn add(
    s: &Store,
    a: &Account,
    first: &str,
    phone: &str,
    fields: Value,
) -> Result<Saved, StoreError> {
    let new = NewContact {
        first_name: first.into(),
        last_name: "Tester".into(),
        phone: phone.into(),
        region: Some("GB".into()),
        fields: Some(object(fields)),
        ..NewContact::default()
    };
    s.add_contact(&admin(a), &new, t0()).await
}

fn refusal<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Invalid(m)) => m,
        other => panic!("expected a 400-style refusal, got {other:?}"),
    }
}

async fn fields_are_defined_changed_and_listed_in_order(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let b = s.create_account("b", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;
    let keys: Vec<String> = s
        .fields(a.id)
        .await
        .expect("fields")
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(
        keys,
        ["company", "policy_value", "renewal", "plan", "opt_in"]
    );
    assert!(
        s.fields(b.id).await.expect("fields").is_empty(),
        "per account"
    );
    let plan = s.field(a.id, "plan").await.expect("plan");
    assert_eq!(plan.kind, FieldKind::Choice);
    assert_eq!(plan.choices, ["Gold", "Silver"]);
    assert!(plan.on_card && plan.exported && !plan.required);

    // A key or label taken, case aside, is a conflict; another account may have it.
    assert!(matches!(
        define(s, &a, json!({ "key": "company", "kind": "text" })).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        define(
            s,
            &a,
            json!({ "key": "firm", "label": "COMPANY", "kind": "text" })
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    define(s, &b, json!({ "key": "company", "kind": "text" }))
        .await
        .expect("b's own");
    // A key or label an import reads as the contact's own column is refused.
    let m = refusal(define(s, &a, json!({ "key": "mobile", "kind": "text" })).await);
    assert!(m.contains("own column"), "{m}");
    let m = refusal(
        define(
            s,
            &a,
            json!({ "key": "mail", "label": "E-mail", "kind": "text" }),
        )
        .await,
    );
    assert!(m.contains("own column"), "{m}");

    // Changes: label, flags, position; the key and kind stay.
    let change: FieldChange =
        serde_json::from_value(json!({ "label": "Firm", "position": 0, "required": true }))
            .expect("valid");
    let changed = s
        .change_field(&admin(&a), "company", &change, t0())
        .await
        .expect("changed");
    assert_eq!((changed.label.as_str(), changed.required), ("Firm", true));
    let kind: FieldChange = serde_json::from_value(json!({ "kind": "number" })).expect("valid");
    assert!(refusal(s.change_field(&admin(&a), "company", &kind, t0()).await).contains("kind"));
    let keys: Vec<String> = s
        .fields(a.id)
        .await
        .expect("fields")
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(
        keys,
        ["company", "policy_value", "renewal", "plan", "opt_in"]
    );
    let first = s.fields(a.id).await.expect("fields").remove(0);
    assert_eq!((first.key.as_str(), first.position), ("company", 0));
    assert!(matches!(
        s.change_field(&admin(&b), "plan", &change, t0()).await,
        Err(StoreError::NotFound)
    ));

    let audit = s.audit_entries(a.id, 20).await.expect("audit");
    let actions: Vec<(&str, Option<&str>, Option<&str>)> = audit
        .iter()
        .filter(|e| e.action.starts_with("field."))
        .map(|e| (e.action.as_str(), e.target.as_deref(), e.detail.as_deref()))
        .collect();
    assert_eq!(actions.len(), 6, "{actions:?}");
    assert_eq!(
        actions[0],
        (
            "field.change",
            Some("field:company"),
            Some("changed=label,required,position")
        )
    );
    assert_eq!(actions[5], ("field.define", Some("field:company"), None));
    db
}

async fn values_are_checked_by_kind_and_required_fields_enforced(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;

    let saved = add(
        s,
        &a,
        "Ada",
        "07400 100001",
        json!({
            "company": " Analytical Engines Ltd ", "policy_value": "1250.50",
            "renewal": "2027-03-31", "plan": "gold", "opt_in": true
        }),
    )
    .await
    .expect("created");
    assert_eq!(
        Value::Object(saved.contact.values.clone().into_iter().collect()),
        json!({
            "company": "Analytical Engines Ltd", "policy_value": 1250.5,
            "renewal": "2027-03-31", "plan": "Gold", "opt_in": true
        })
    );
    assert_eq!(
        saved.changed,
        [
            "first_name",
            "last_name",
            "phone_e164",
            "phone_raw",
            "field.company",
            "field.policy_value",
            "field.renewal",
            "field.plan",
            "field.opt_in"
        ]
    );
    let id = saved.contact.id;
    // Read back through every path: one, a list page, a search.
    let read = s.contact(a.id, id).await.expect("contact");
    assert_eq!(read.values, saved.contact.values);
    assert_eq!(read.values["policy_value"], json!(1250.5));

    // Bad values are refused naming the field, and nothing is written.
    for (fields, says) in [
        (
            json!({ "renewal": "31/03/2027" }),
            "renewal (Renewal date) must be a date",
        ),
        (
            json!({ "renewal": "2027-01-01", "policy_value": "lots" }),
            "policy_value",
        ),
        (
            json!({ "renewal": "2027-01-01", "plan": "Bronze" }),
            "Gold, Silver",
        ),
        (
            json!({ "renewal": "2027-01-01", "opt_in": "perhaps" }),
            "yes or no",
        ),
        (
            json!({ "renewal": "2027-01-01", "shoe_size": 9 }),
            "shoe_size",
        ),
        (
            json!({ "company": "No renewal" }),
            "required fields have no value: renewal",
        ),
        (json!({ "renewal": "" }), "renewal"),
        (
            json!({ "renewal": "2027-01-01", "company": "長".repeat(1001) }),
            "longer than 1000 characters",
        ),
        (
            json!({ "renewal": "2027-01-01", "company": incompressible_text(950) }),
            "longer than 2000 bytes as UTF-8",
        ),
    ] {
        let m = refusal(add(s, &a, "Bad", "07400 100099", fields.clone()).await);
        assert!(m.contains(says), "{fields}: {m}");
    }
    assert!(s
        .contacts_by_number(a.id, "+447400100099")
        .await
        .expect("looked up")
        .is_empty());
    // Up to the limits, a value goes in and is found, on PostgreSQL too,
    // whose search index refuses an entry much over 2.7 KB.
    let long = incompressible_text(660);
    let kept = add(
        s,
        &a,
        "Long",
        "07400 100098",
        json!({ "renewal": "2027-01-01", "company": long }),
    )
    .await
    .expect("660 three-byte characters are allowed");
    assert_eq!(kept.contact.values["company"], json!(long));

    // An edit sets and clears values by key, keeps the rest, and counts a version.
    let change = ContactChange {
        fields: Some(object(
            json!({ "plan": "Silver", "company": null, "opt_in": "no" }),
        )),
        ..ContactChange::default()
    };
    let edited = s
        .edit_contact(&admin(&a), id, 1, &change, t0())
        .await
        .expect("edited");
    assert_eq!(
        edited.changed,
        ["field.company", "field.plan", "field.opt_in"]
    );
    assert_eq!(edited.contact.version, 2);
    assert_eq!(edited.contact.values.get("company"), None);
    assert_eq!(edited.contact.values["plan"], "Silver");
    assert_eq!(edited.contact.values["opt_in"], false);
    assert_eq!(edited.contact.values["renewal"], "2027-03-31");
    let log = s.audit_entries(a.id, 5).await.expect("audit");
    assert_eq!(
        log[0].detail.as_deref(),
        Some("fields=field.company,field.plan,field.opt_in"),
        "names, never values"
    );
    // The same values again change nothing and keep the version.
    let same = ContactChange {
        fields: Some(object(json!({ "plan": "silver", "opt_in": false }))),
        ..ContactChange::default()
    };
    let kept = s
        .edit_contact(&admin(&a), id, 2, &same, t0())
        .await
        .expect("nothing to do");
    assert!(kept.changed.is_empty());
    assert_eq!(kept.contact.version, 2);
    // A required field may change but not be cleared; a stale version writes no value.
    let clear = ContactChange {
        fields: Some(object(json!({ "renewal": null }))),
        ..ContactChange::default()
    };
    let m = refusal(s.edit_contact(&admin(&a), id, 2, &clear, t0()).await);
    assert!(m.contains("renewal") && m.contains("not cleared"), "{m}");
    let later = ContactChange {
        fields: Some(object(json!({ "renewal": "2028-01-31" }))),
        ..ContactChange::default()
    };
    assert!(matches!(
        s.edit_contact(&admin(&a), id, 1, &later, t0()).await,
        Err(StoreError::Stale(_))
    ));
    assert_eq!(
        s.contact(a.id, id).await.expect("contact").values["renewal"],
        "2027-03-31"
    );
    let saved = s
        .edit_contact(&admin(&a), id, 2, &later, t0())
        .await
        .expect("changed");
    assert_eq!(saved.contact.values["renewal"], "2028-01-31");
    // A contact that came in without the required field (older than the
    // field, or imported) can still be corrected.
    let old = s
        .create_contact(
            a.id,
            &ContactFields {
                first_name: "Old".into(),
                phone_e164: "+447400100077".into(),
                phone_raw: "07400 100077".into(),
                custom_fields: json!({}),
                ..ContactFields::default()
            },
            t0(),
        )
        .await
        .expect("contact");
    let rename = ContactChange {
        first_name: Some("Older".into()),
        ..ContactChange::default()
    };
    s.edit_contact(&admin(&a), old.id, 1, &rename, t0())
        .await
        .expect("a change that leaves the missing field alone");
    db
}

async fn a_choice_held_by_contacts_cannot_be_taken_away(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;
    let gold = add(
        s,
        &a,
        "Goldie",
        "07400 100001",
        json!({ "renewal": "2027-01-01", "plan": "Gold" }),
    )
    .await
    .expect("created");
    let change = |choices: Value| -> FieldChange {
        serde_json::from_value(json!({ "choices": choices })).expect("valid")
    };
    match s
        .change_field(
            &admin(&a),
            "plan",
            &change(json!(["Silver", "Bronze"])),
            t0(),
        )
        .await
    {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains("1 contacts hold the choices Gold"), "{m}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Spelled anew, case aside: the values follow.
    s.change_field(
        &admin(&a),
        "plan",
        &change(json!(["GOLD", "Silver", "Bronze"])),
        t0(),
    )
    .await
    .expect("respelled");
    assert_eq!(
        s.contact(a.id, gold.contact.id)
            .await
            .expect("contact")
            .values["plan"],
        "GOLD"
    );
    // A choice no one holds goes.
    s.change_field(&admin(&a), "plan", &change(json!(["GOLD", "Bronze"])), t0())
        .await
        .expect("Silver taken away");
    db
}

async fn find(
    s: &Store,
    a: &Account,
    scope: SearchScope,
    text: &str,
    filters: &[(&str, &str)],
) -> Vec<String> {
    let regions = s.search_regions(a.id).await.expect("regions");
    let mut q =
        ContactQuery::parse(text, Field::Any, &regions, Sort::Name, None, None).expect("valid");
    for (key, value) in filters {
        let def = s.field(a.id, key).await.expect("a field");
        q = q.filter(&def, value).expect("a valid filter");
    }
    s.search_contacts(a.id, scope, &q)
        .await
        .expect("searched")
        .contacts
        .into_iter()
        .map(|c| c.fields.first_name)
        .collect()
}

async fn search_matches_text_fields_and_filters_by_value(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let b = s.create_account("b", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;
    define(
        s,
        &a,
        json!({ "key": "notes_internal", "label": "Internal", "kind": "text", "on_card": false }),
    )
    .await
    .expect("defined");
    for (first, phone, fields) in [
        (
            "Ada",
            "07400 100001",
            json!({ "company": "Acme Rockets", "plan": "Gold", "renewal": "2027-01-01", "opt_in": true }),
        ),
        (
            "Bea",
            "07400 100002",
            json!({ "company": "Acorn Ltd", "plan": "Silver", "renewal": "2027-02-01" }),
        ),
        (
            "Acton",
            "07400 100003",
            json!({ "company": "Zenith", "plan": "Gold", "renewal": "2027-01-01", "notes_internal": "Acme lead" }),
        ),
        (
            "Cy",
            "07400 100004",
            json!({ "company": "AB12 Holdings", "renewal": "2027-01-01", "policy_value": 12.5 }),
        ),
    ] {
        add(s, &a, first, phone, fields).await.expect("created");
    }
    add(s, &b, "Other", "07400 100001", json!({}))
        .await
        .expect("b's contact");
    let all = SearchScope::Account;

    // A name search also finds contacts whose text field the text begins,
    // after those whose name it begins.
    assert_eq!(find(s, &a, all, "ac", &[]).await, ["Acton", "Ada", "Bea"]);
    assert_eq!(find(s, &a, all, "acme", &[]).await, ["Acton", "Ada"]);
    assert_eq!(find(s, &a, all, "ACME ROCK", &[]).await, ["Ada"]);
    assert!(
        find(s, &a, all, "rockets", &[]).await.is_empty(),
        "a prefix, not a fragment"
    );
    // The other readings too: text read as a postal code finds a value it begins.
    assert_eq!(find(s, &a, all, "AB12 h", &[]).await, ["Cy"]);
    // Filters: exact values by kind, together with the text or alone.
    assert_eq!(
        find(s, &a, all, "", &[("plan", "gold")]).await,
        ["Acton", "Ada"]
    );
    assert_eq!(find(s, &a, all, "ad", &[("plan", "Gold")]).await, ["Ada"]);
    assert_eq!(
        find(s, &a, all, "", &[("plan", "Gold"), ("opt_in", "yes")]).await,
        ["Ada"]
    );
    assert_eq!(
        find(s, &a, all, "", &[("renewal", "2027-02-01")]).await,
        ["Bea"]
    );
    assert_eq!(
        find(s, &a, all, "", &[("policy_value", "12.50")]).await,
        ["Cy"]
    );
    assert_eq!(
        find(s, &a, all, "", &[("company", "acorn ltd")]).await,
        ["Bea"]
    );
    // Sorted otherwise than by name, the same contacts come.
    let regions = [country::Id::GB];
    let q = ContactQuery::parse("acme", Field::Any, &regions, Sort::CreatedDesc, None, None)
        .expect("valid");
    let page = s.search_contacts(a.id, all, &q).await.expect("searched");
    let names: Vec<&str> = page
        .contacts
        .iter()
        .map(|c| c.fields.first_name.as_str())
        .collect();
    assert_eq!(names, ["Acton", "Ada"]);
    assert_eq!(
        page.contacts[1].values["company"], "Acme Rockets",
        "values come with the page"
    );
    // Text meant for a name does not look in fields.
    let q =
        ContactQuery::parse("acme", Field::Name, &regions, Sort::Name, None, None).expect("valid");
    assert!(s
        .search_contacts(a.id, all, &q)
        .await
        .expect("searched")
        .contacts
        .is_empty());
    // A bad filter value is refused naming the field.
    let plan = s.field(a.id, "plan").await.expect("plan");
    let q = ContactQuery::parse("", Field::Any, &regions, Sort::Name, None, None).expect("valid");
    assert!(refusal(q.clone().filter(&plan, "Bronze")).contains("plan"));
    assert!(refusal(q.filter(&plan, " ")).contains("needs a value"));
    // Another account finds nothing of a's values.
    assert!(find(s, &b, all, "acme", &[]).await.is_empty());

    // An agent's search looks only in fields shown on the card.
    let agent = s
        .create_user(a.id, "al", "$argon2id$test", Role::Agent, t0())
        .await
        .expect("agent");
    let list = s.create_list(a.id, "L", "GB", t0()).await.expect("list");
    for c in s
        .search_contacts(
            a.id,
            all,
            &ContactQuery::parse("", Field::Any, &regions, Sort::Name, None, None).expect("valid"),
        )
        .await
        .expect("all")
        .contacts
    {
        s.add_to_list(a.id, list.id, c.id, t0())
            .await
            .expect("member");
    }
    let campaign = s
        .create_campaign(a.id, "C", "+441632960000", t0())
        .await
        .expect("campaign");
    s.attach_list(a.id, campaign.id, list.id, 0)
        .await
        .expect("attached");
    s.sync_leads(a.id, campaign.id, t0()).await.expect("leads");
    s.assign_agents(a.id, campaign.id, &[agent.id])
        .await
        .expect("assigned");
    let theirs = SearchScope::Agent(agent.id);
    assert_eq!(
        find(s, &a, theirs, "acme", &[]).await,
        ["Ada"],
        "Internal is not on the card"
    );
    assert_eq!(find(s, &a, all, "acme", &[]).await, ["Acton", "Ada"]);
    db
}

async fn a_field_value_search_uses_its_index(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let company = define(s, &a, json!({ "key": "company", "kind": "text" }))
        .await
        .expect("defined");
    let list = s.create_list(a.id, "bulk", "GB", t0()).await.expect("list");
    for batch in 0..4 {
        let rows: Vec<ContactFields> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                ContactFields {
                    first_name: format!("F{n}"),
                    last_name: format!("L{n}"),
                    phone_e164: format!("+4474001{n:05}"),
                    phone_raw: String::new(),
                    custom_fields: json!({}),
                    ..ContactFields::default()
                }
            })
            .collect();
        let values: Vec<Vec<(crm::fields::FieldId, String)>> = (0..1000)
            .map(|i| vec![(company.id, firm(batch * 1000 + i))])
            .collect();
        s.import_batch_with_values(a.id, list.id, &rows, &values, OnDuplicate::Skip, t0())
            .await
            .expect("imported");
    }
    if let Some(pool) = s.postgres_pool() {
        sqlx::query("ANALYZE")
            .execute(pool)
            .await
            .expect("analysed");
    }
    let regions = [country::Id::GB];
    // Text read as a name, in name order (three parts) and in another (a
    // union of ids), and a filter alone.
    let name = firm(3999);
    for (text, sort, want) in [
        (name.as_str(), Sort::Name, "F3999"),
        (name.as_str(), Sort::Created, "F3999"),
        ("", Sort::Name, "F1234"),
    ] {
        let mut q =
            ContactQuery::parse(text, Field::Any, &regions, sort, None, None).expect("valid");
        if text.is_empty() {
            q = q.filter(&company, &firm(1234)).expect("filter");
        }
        let plan = s
            .explain_search(a.id, SearchScope::Account, &q)
            .await
            .expect("plan")
            .join("\n");
        assert!(
            plan.contains("contact_field_values_search"),
            "{text:?} {sort:?} should use the values index:\n{plan}"
        );
        let scanned = match s.backend() {
            Backend::Sqlite => plan.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("SCAN c") || l.starts_with("SCAN v")
            }),
            Backend::Postgres => plan.contains("Seq Scan on contact"),
        };
        assert!(!scanned, "{text:?} {sort:?} scans a table:\n{plan}");
        if s.backend() == Backend::Sqlite {
            // The contacts a value matched are read by id, not found by
            // walking every contact of the account in the sort's order.
            assert!(
                plan.contains("SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"),
                "{text:?} {sort:?}:\n{plan}"
            );
            if sort == Sort::Name {
                assert!(
                    !plan.lines().any(|l| l.ends_with("(account_id=?)")),
                    "{text:?} {sort:?} walks the whole account:\n{plan}"
                );
            }
        }
        let found = s
            .search_contacts(a.id, SearchScope::Account, &q)
            .await
            .expect("found");
        let names: Vec<&str> = found
            .contacts
            .iter()
            .map(|c| c.fields.first_name.as_str())
            .collect();
        assert_eq!(names, [want]);
    }
    db
}

/// A company name made of letters only, one per number: `Firm` and the
/// number in base 26 (`Firm bab`), so that a search reads it as a name.
fn firm(n: usize) -> String {
    let mut letters = String::new();
    let mut n = n;
    for _ in 0..3 {
        letters.insert(0, char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    format!("Firm {letters}")
}

async fn imports_map_columns_to_fields_and_report_bad_values(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;
    let list = s
        .create_list(a.id, "Spring", "GB", t0())
        .await
        .expect("list");
    // Columns by key and by label, any case; one bad value per bad row; a
    // row without the required renewal date is imported all the same.
    let csv = "first_name,phone,COMPANY,Policy value,Renewal date,plan,Opted in,favourite colour\n\
               Ada,07400 100001,Acme,100,2027-01-31,gold,yes,green\n\
               Bea,07400 100002,Acorn,lots,2027-01-31,Gold,no,\n\
               Cy,07400 100003,Zenith,5,2027-02-30,Silver,,\n\
               Di,07400 100004,,,,Bronze,,\n\
               Ed,07400 100005,,,,,,blue\n";
    let actor = admin(&a);
    let actor = &actor;
    let run = |csv: String, on_duplicate| async move {
        import_csv(
            s,
            actor,
            list.id,
            Cursor::new(csv.into_bytes()),
            &ImportOptions {
                on_duplicate,
                ..ImportOptions::default()
            },
            t0(),
            |_| {},
        )
        .await
        .expect("imported")
    };
    let summary = run(csv.to_owned(), OnDuplicate::Skip).await;
    assert_eq!((summary.imported, summary.invalid), (2, 3), "{summary:?}");
    let reasons: Vec<(u64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3);
    assert_eq!(reasons[0].0, 3);
    assert!(
        reasons[0]
            .1
            .contains("policy_value (Policy value) must be a number"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, 4);
    assert!(
        reasons[1]
            .1
            .contains("renewal (Renewal date) must be a date"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2].0, 5);
    assert!(reasons[2].1.contains("Gold, Silver") && !reasons[2].1.contains("Bronze"));
    let ada = &s
        .contacts_by_number(a.id, "+447400100001")
        .await
        .expect("ada")[0];
    assert_eq!(
        Value::Object(ada.values.clone().into_iter().collect()),
        json!({ "company": "Acme", "policy_value": 100, "renewal": "2027-01-31", "plan": "Gold", "opt_in": true })
    );
    assert_eq!(
        ada.fields.custom_fields,
        json!({ "favourite colour": "green" })
    );
    let ed = &s
        .contacts_by_number(a.id, "+447400100005")
        .await
        .expect("ed")[0];
    assert!(
        ed.values.is_empty(),
        "a required field may be missing on import"
    );

    // Update: a value given replaces, an empty cell keeps what was there.
    let again =
        "first_name,phone,company,plan\nAda,07400 100001,Acme Two,\nEd,07400 100005,Edco,Silver\n";
    let summary = run(again.to_owned(), OnDuplicate::Update).await;
    assert_eq!(summary.updated, 2, "{summary:?}");
    let ada = &s
        .contacts_by_number(a.id, "+447400100001")
        .await
        .expect("ada")[0];
    assert_eq!(ada.values["company"], "Acme Two");
    assert_eq!(ada.values["plan"], "Gold");
    let ed = &s
        .contacts_by_number(a.id, "+447400100005")
        .await
        .expect("ed")[0];
    assert_eq!(
        (ed.values["company"].clone(), ed.values["plan"].clone()),
        (json!("Edco"), json!("Silver"))
    );
    // Skip leaves a known contact's values as they are.
    let skipped = "phone,company\n07400 100005,Nope\n";
    run(skipped.to_owned(), OnDuplicate::Skip).await;
    let ed = &s
        .contacts_by_number(a.id, "+447400100005")
        .await
        .expect("ed")[0];
    assert_eq!(ed.values["company"], "Edco");
    db
}

async fn exports_write_the_exported_fields(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;
    let list = s
        .create_list(a.id, "Spring", "GB", t0())
        .await
        .expect("list");
    let saved = add(
        s,
        &a,
        "Ada",
        "07400 100001",
        json!({ "company": "Acme, Inc.", "policy_value": 7, "renewal": "2027-01-31", "plan": "Gold", "opt_in": true }),
    )
    .await
    .expect("created");
    s.add_to_list(a.id, list.id, saved.contact.id, t0())
        .await
        .expect("member");
    let mut out = Vec::new();
    ListExport::open(s, &admin(&a), list.id, t0())
        .await
        .expect("opened")
        .write_all(&mut out)
        .await
        .expect("written");
    let text = String::from_utf8(out).expect("UTF-8");
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    assert!(
        header.contains(",time_zone,company,policy_value,renewal,plan,dialcrm_contact_id,"),
        "exported fields by key, in order, opt_in left out: {header}"
    );
    let row = lines.next().expect("a row");
    assert!(row.contains(",\"Acme, Inc.\",7,2027-01-31,Gold,"), "{row}");

    // The export imports again into another account's fields, by key.
    let b = s.create_account("b", 1, t0()).await.expect("account");
    standard_fields(s, &b).await;
    let b_list = s.create_list(b.id, "Back", "GB", t0()).await.expect("list");
    let summary = import_csv(
        s,
        &admin(&b),
        b_list.id,
        Cursor::new(text.clone().into_bytes()),
        &ImportOptions::default(),
        t0(),
        |_| {},
    )
    .await
    .expect("imported");
    assert_eq!((summary.imported, summary.invalid), (1, 0), "{summary:?}");
    let back = &s
        .contacts_by_number(b.id, "+447400100001")
        .await
        .expect("back")[0];
    assert_eq!(back.values["company"], "Acme, Inc.");
    assert_eq!(back.values["policy_value"], 7);
    assert_eq!(back.values.get("opt_in"), None, "not exported");
    db
}

async fn removing_a_field_erases_its_values_and_is_audited(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    standard_fields(s, &a).await;
    let mut ids = Vec::new();
    for (first, phone) in [("Ada", "07400 100001"), ("Bea", "07400 100002")] {
        let saved = add(
            s,
            &a,
            first,
            phone,
            json!({ "company": "Acme", "renewal": "2027-01-01" }),
        )
        .await
        .expect("created");
        ids.push(saved.contact.id);
    }
    assert_eq!(
        s.remove_field(&admin(&a), "company", t0())
            .await
            .expect("removed"),
        2
    );
    for id in &ids {
        let c = s.contact(a.id, *id).await.expect("contact");
        assert_eq!(c.values.get("company"), None);
        assert_eq!(c.values["renewal"], "2027-01-01", "other fields stay");
    }
    assert!(matches!(
        s.field(a.id, "company").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.remove_field(&admin(&a), "company", t0()).await,
        Err(StoreError::NotFound)
    ));
    // Defined again, it starts empty.
    define(s, &a, json!({ "key": "company", "kind": "text" }))
        .await
        .expect("defined again");
    assert_eq!(
        s.contact(a.id, ids[0])
            .await
            .expect("contact")
            .values
            .get("company"),
        None
    );
    let regions = [country::Id::GB];
    let q =
        ContactQuery::parse("acme", Field::Any, &regions, Sort::Name, None, None).expect("valid");
    assert!(s
        .search_contacts(a.id, SearchScope::Account, &q)
        .await
        .expect("searched")
        .contacts
        .is_empty());
    let count: i64 = match (s.sqlite_pool(), s.postgres_pool()) {
        (Some(p), _) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM contact_field_values WHERE value = 'Acme'")
                .fetch_one(p)
                .await
                .expect("count")
        }
        (_, Some(p)) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM contact_field_values WHERE value = 'Acme'")
                .fetch_one(p)
                .await
                .expect("count")
        }
        _ => unreachable!("a store has one pool"),
    };
    assert_eq!(count, 0);
    db
}
