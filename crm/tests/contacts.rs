//! Contacts found, created and edited by hand, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::edit::{ContactChange, NewContact};
use crm::import::OnDuplicate;
use crm::model::*;
use crm::search::{ContactQuery, Criterion, Field, Sort};
use crm::store::{Saved, SearchScope};
use crm::testing::TestDb;
use crm::{Backend, Store, StoreError};
use phonenumber::country;

crm::on_both_backends!(
    search_finds_by_number_name_email_and_postal_code,
    search_pages_and_sorts,
    agents_find_only_leads_of_their_campaigns,
    number_and_name_searches_use_an_index,
    an_edit_needs_the_version_it_read,
    of_two_concurrent_edits_one_wins_and_one_is_told,
    a_changed_number_is_checked_again,
    a_changed_or_erased_address_is_no_longer_found,
    a_new_contact_goes_on_its_list_in_the_lists_region,
    the_store_refuses_fields_longer_than_an_edit_allows,
    members_and_values_cannot_cross_accounts,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn actor(account: &Account, user: Option<&User>) -> Actor {
    Actor {
        account_id: Some(account.id),
        user_id: user.map(|u| u.id),
        ..Actor::default()
    }
}

async fn add(
    s: &Store,
    a: &Account,
    first: &str,
    last: &str,
    phone: &str,
    extra: serde_json::Value,
) -> Saved {
    let mut body = serde_json::json!({
        "first_name": first, "last_name": last, "phone": phone, "region": "GB"
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let new: NewContact = serde_json::from_value(body).expect("a valid new contact");
    s.add_contact(&actor(a, None), &new, t0())
        .await
        .expect("created")
}

async fn find(s: &Store, a: &Account, scope: SearchScope, text: &str) -> Vec<String> {
    let regions = s.search_regions(a.id).await.expect("regions");
    let q = ContactQuery::parse(text, Field::Any, &regions, Sort::Name, None, None)
        .expect("a valid search");
    s.search_contacts(a.id, scope, &q)
        .await
        .expect("searched")
        .contacts
        .into_iter()
        .map(|c| format!("{} {}", c.fields.first_name, c.fields.last_name))
        .collect()
}

async fn search_finds_by_number_name_email_and_postal_code(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let b = s.create_account("b", 1, t0()).await.expect("account");
    add(s, &a, "Ada", "Lovelace", "07400 100001",
        serde_json::json!({"email": "Ada@Example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH"})).await;
    add(
        s,
        &a,
        "Adam",
        "Smith",
        "07400 100002",
        serde_json::json!({"postal_address": "Panmure House, Edinburgh EH8 8BE"}),
    )
    .await;
    add(
        s,
        &a,
        "Mary",
        "Adamson",
        "07400 100003",
        serde_json::json!({}),
    )
    .await;
    add(
        s,
        &b,
        "Ada",
        "Lovelace",
        "07400 100001",
        serde_json::json!({}),
    )
    .await;
    let all = SearchScope::Account;

    assert_eq!(find(s, &a, all, "+44 7400 100002").await, ["Adam Smith"]);
    assert_eq!(find(s, &a, all, "(07400) 100-002").await, ["Adam Smith"]);
    // A name matches at the start of the first or the last name, any case.
    assert_eq!(
        find(s, &a, all, "ada").await,
        ["Mary Adamson", "Ada Lovelace", "Adam Smith"]
    );
    assert_eq!(find(s, &a, all, "ADA LOVE").await, ["Ada Lovelace"]);
    assert_eq!(find(s, &a, all, "lovelace ada").await, ["Ada Lovelace"]);
    assert!(
        find(s, &a, all, "velace").await.is_empty(),
        "a prefix, not a fragment"
    );
    assert_eq!(find(s, &a, all, "ada@example").await, ["Ada Lovelace"]);
    assert_eq!(find(s, &a, all, "sw1y 4jh").await, ["Ada Lovelace"]);
    assert_eq!(find(s, &a, all, "EH8 8BE").await, ["Adam Smith"]);
    assert!(
        find(s, &a, all, "EH8 4JH").await.is_empty(),
        "the words of a phrase, together"
    );
    // Another account's contact with the same name and number stays unseen.
    assert_eq!(find(s, &b, all, "ada").await, ["Ada Lovelace"]);
    assert_eq!(find(s, &b, all, "07400 100002").await, Vec::<String>::new());
    db
}

async fn search_pages_and_sorts(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    for (i, last) in ["Baker", "Abbot", "Carter", "Dyer", "Evans"]
        .iter()
        .enumerate()
    {
        add(
            s,
            &a,
            "Pat",
            last,
            &format!("07400 10010{i}"),
            serde_json::json!({}),
        )
        .await;
    }
    let page = |n, sort| {
        let q = ContactQuery::parse(
            "pat",
            Field::Any,
            &[country::Id::GB],
            sort,
            Some(n),
            Some(2),
        )
        .expect("valid");
        async move {
            let p = s
                .search_contacts(a.id, SearchScope::Account, &q)
                .await
                .expect("page");
            let names: Vec<String> = p.contacts.into_iter().map(|c| c.fields.last_name).collect();
            (names, p.has_more)
        }
    };
    // A last name the word begins comes before a first name it begins; each
    // group in name order, pages running on from one group into the next.
    add(s, &a, "Ann", "Patel", "07400 100109", serde_json::json!({})).await;
    let pages = |sort| async move {
        let mut all = Vec::new();
        for n in 1..=3 {
            let (names, more) = page(n, sort).await;
            all.push(names.join(" "));
            assert_eq!(more, n < 3, "page {n}");
        }
        all
    };
    assert_eq!(
        pages(Sort::Name).await,
        ["Patel Abbot", "Baker Carter", "Dyer Evans"]
    );
    assert_eq!(
        pages(Sort::NameDesc).await,
        ["Patel Evans", "Dyer Carter", "Baker Abbot"]
    );
    let (created, _) = page(1, Sort::CreatedDesc).await;
    assert_eq!(created, ["Patel", "Evans"]);
    let everyone = ContactQuery::parse("", Field::Any, &[], Sort::Name, None, None).expect("valid");
    assert_eq!(everyone.criterion, Criterion::All);
    let p = s
        .search_contacts(a.id, SearchScope::Account, &everyone)
        .await
        .expect("page");
    let names: Vec<&str> = p
        .contacts
        .iter()
        .map(|c| c.fields.last_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Abbot", "Baker", "Carter", "Dyer", "Evans", "Patel"]
    );
    assert!(!p.has_more);
    db
}

async fn agents_find_only_leads_of_their_campaigns(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 2, t0()).await.expect("account");
    let agent = s
        .create_user(a.id, "al", "$argon2id$test", Role::Agent, t0())
        .await
        .expect("user");
    let list = s.create_list(a.id, "L", "GB", t0()).await.expect("list");
    let other = s.create_list(a.id, "M", "GB", t0()).await.expect("list");
    let mine = add(s, &a, "Nell", "Gwyn", "07400 100201", serde_json::json!({})).await;
    add(s, &a, "Nell", "Dunn", "07400 100202", serde_json::json!({})).await;
    s.add_to_list(a.id, list.id, mine.contact.id, t0())
        .await
        .expect("member");
    let c = s
        .create_campaign(a.id, "C", "+441632960000", t0())
        .await
        .expect("campaign");
    let d = s
        .create_campaign(a.id, "D", "+441632960000", t0())
        .await
        .expect("campaign");
    s.attach_list(a.id, c.id, list.id, 0)
        .await
        .expect("attached");
    s.attach_list(a.id, d.id, other.id, 0)
        .await
        .expect("attached");
    s.sync_leads(a.id, c.id, t0()).await.expect("leads");
    let scope = SearchScope::Agent(agent.id);
    assert!(
        find(s, &a, scope, "nell").await.is_empty(),
        "not assigned to any campaign"
    );
    s.assign_agents(a.id, d.id, &[agent.id])
        .await
        .expect("assigned");
    assert!(
        find(s, &a, scope, "nell").await.is_empty(),
        "D has no lead for Nell"
    );
    s.assign_agents(a.id, c.id, &[agent.id])
        .await
        .expect("assigned");
    assert_eq!(find(s, &a, scope, "nell").await, ["Nell Gwyn"]);
    assert!(find(s, &a, scope, "07400 100202").await.is_empty());
    assert_eq!(find(s, &a, SearchScope::Account, "nell").await.len(), 2);
    db
}

async fn number_and_name_searches_use_an_index(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let b = s.create_account("b", 1, t0()).await.expect("account");
    // Enough rows in two accounts that a planner prefers an index to a scan.
    for account in [&a, &b] {
        let list = s
            .create_list(account.id, "bulk", "GB", t0())
            .await
            .expect("list");
        for batch in 0..4 {
            let rows: Vec<ContactFields> = (0..1000)
                .map(|i| {
                    let n = batch * 1000 + i;
                    ContactFields {
                        first_name: word(n + 7),
                        last_name: word(n),
                        phone_e164: format!("+4474001{n:05}"),
                        phone_raw: String::new(),
                        email: Some(format!("p{n}@example.org")),
                        postal_address: Some(format!("{n} High St, Town AB{} {}CD", n % 90, n % 9)),
                        custom_fields: serde_json::json!({}),
                        ..ContactFields::default()
                    }
                })
                .collect();
            s.import_batch(account.id, list.id, &rows, OnDuplicate::Skip, t0())
                .await
                .expect("imported");
        }
    }
    if let Some(pool) = s.postgres_pool() {
        sqlx::query("ANALYZE contacts")
            .execute(pool)
            .await
            .expect("analysed");
    }
    let regions = [country::Id::GB];
    for (text, index) in [
        ("07400 101234", "contacts_account_phone"),
        (&word(1234)[..4], "contacts_last_name"),
        (
            &format!("{} {}", word(1241), word(1234)),
            "contacts_first_name",
        ),
        ("p123@", "contacts_email"),
    ] {
        let q =
            ContactQuery::parse(text, Field::Any, &regions, Sort::Name, None, None).expect("valid");
        let plan = s
            .explain_search(a.id, SearchScope::Account, &q)
            .await
            .expect("plan")
            .join("\n");
        assert!(plan.contains(index), "{text:?} should use {index}:\n{plan}");
        let scanned = match s.backend() {
            Backend::Sqlite => plan.lines().any(|l| l.trim_start().starts_with("SCAN c")),
            Backend::Postgres => plan.contains("Seq Scan on contacts"),
        };
        assert!(!scanned, "{text:?} scans every contact:\n{plan}");
    }
    // A prefix that a thousand share reads a page's rows in index order: no
    // sort inside either half, only of the page's candidates at the end.
    let q = ContactQuery::parse("Ka", Field::Any, &regions, Sort::Name, None, None).expect("valid");
    let plan = s
        .explain_search(a.id, SearchScope::Account, &q)
        .await
        .expect("plan");
    match s.backend() {
        Backend::Sqlite => {
            let sorts: Vec<&String> = plan.iter().filter(|l| l.contains("TEMP B-TREE")).collect();
            assert_eq!(sorts.len(), 1, "{plan:#?}");
            assert_eq!(
                plan.last(),
                sorts.first().copied(),
                "only the outer sort: {plan:#?}"
            );
            assert!(plan
                .iter()
                .any(|l| l.contains("USING INDEX contacts_first_name")));
        }
        Backend::Postgres => {
            for (i, line) in plan.iter().enumerate() {
                if line.contains("Scan using contacts_last_name")
                    || line.contains("Scan using contacts_first_name")
                {
                    assert!(
                        i > 0 && plan[i - 1].contains("Limit"),
                        "each half stops after a page: {plan:#?}"
                    );
                }
            }
            assert!(
                plan.iter().any(|l| l.contains("contacts_first_name")),
                "{plan:#?}"
            );
        }
    }
    let q = ContactQuery::parse("AB12 3CD", Field::Any, &regions, Sort::Name, None, None)
        .expect("valid");
    let plan = s
        .explain_search(a.id, SearchScope::Account, &q)
        .await
        .expect("plan")
        .join("\n");
    let words = match s.backend() {
        Backend::Sqlite => "contact_addresses VIRTUAL TABLE",
        Backend::Postgres => "contacts_address_words",
    };
    assert!(
        plan.contains(words),
        "a postal code uses the address index:\n{plan}"
    );
    // And the plans find what they should.
    let name = |n| format!("{} {}", word(n + 7), word(n));
    assert_eq!(
        find(s, &a, SearchScope::Account, "07400 101234").await,
        [name(1234)]
    );
    assert_eq!(
        find(s, &a, SearchScope::Account, &name(3999)).await,
        [name(3999)]
    );
    db
}

/// Returns a distinct name-like word for each number: letters only, as a
/// name search expects.
fn word(n: usize) -> String {
    let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "we", "zu"];
    let mut w = String::new();
    let mut n = n;
    for _ in 0..4 {
        w.push_str(syllables[n % 10]);
        n /= 10;
    }
    let mut chars = w.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => w,
    }
}

async fn an_edit_needs_the_version_it_read(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 2, t0()).await.expect("account");
    let sue = s
        .create_user(a.id, "sue", "$argon2id$test", Role::Supervisor, t0())
        .await
        .expect("user");
    let saved = add(
        s,
        &a,
        "Ada",
        "Lovelace",
        "07400 100301",
        serde_json::json!({"email": "ada@example.org"}),
    )
    .await;
    let id = saved.contact.id;
    assert_eq!(saved.contact.version, 1);
    let change: ContactChange = serde_json::from_value(serde_json::json!({
        "last_name": "King", "email": "countess@example.org", "first_name": "Ada"
    }))
    .expect("valid");
    let later = t0() + Duration::minutes(5);
    let edited = s
        .edit_contact(&actor(&a, Some(&sue)), id, 1, &change, later)
        .await
        .expect("edited");
    assert_eq!(edited.changed, ["last_name", "email"]);
    assert_eq!(edited.contact.version, 2);
    assert_eq!(edited.contact.updated_at, later);
    assert_eq!(
        s.contact(a.id, id).await.expect("read").fields.last_name,
        "King"
    );

    // A second editor who read version 1 is told, and changes nothing.
    let theirs: ContactChange =
        serde_json::from_value(serde_json::json!({ "last_name": "Byron" })).expect("valid");
    match s
        .edit_contact(&actor(&a, None), id, 1, &theirs, later)
        .await
    {
        Err(StoreError::Stale(m)) => assert!(m.contains("version 2"), "{m}"),
        other => panic!("a stale edit must be refused, got {other:?}"),
    }
    let now = s.contact(a.id, id).await.expect("read");
    assert_eq!((now.fields.last_name.as_str(), now.version), ("King", 2));

    // A change that alters nothing writes nothing.
    let same: ContactChange =
        serde_json::from_value(serde_json::json!({ "last_name": "King" })).expect("valid");
    let kept = s
        .edit_contact(&actor(&a, None), id, 2, &same, later)
        .await
        .expect("no-op");
    assert!(kept.changed.is_empty());
    assert_eq!(s.contact(a.id, id).await.expect("read").version, 2);

    // The audit names the fields, never their values.
    let log = s.audit_entries(a.id, 10).await.expect("audit");
    let edits: Vec<&AuditEntry> = log.iter().filter(|e| e.action == "contact.edit").collect();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].user_id, Some(sue.id));
    assert_eq!(
        edits[0].target.as_deref(),
        Some(format!("contact:{id}").as_str())
    );
    assert_eq!(edits[0].detail.as_deref(), Some("fields=last_name,email"));
    let created = log
        .iter()
        .find(|e| e.action == "contact.create")
        .expect("create audited");
    assert_eq!(
        created.detail.as_deref(),
        Some("fields=first_name,last_name,phone_e164,phone_raw,email")
    );
    for e in &log {
        let text = format!("{e:?}");
        assert!(
            !text.contains("King") && !text.contains("countess") && !text.contains("7400"),
            "{text}"
        );
    }
    // Another account cannot edit it at all.
    let b = s.create_account("b", 1, t0()).await.expect("account");
    assert!(matches!(
        s.edit_contact(&actor(&b, None), id, 2, &theirs, later)
            .await,
        Err(StoreError::NotFound)
    ));
    db
}

async fn of_two_concurrent_edits_one_wins_and_one_is_told(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let id = add(
        s,
        &a,
        "Ada",
        "Lovelace",
        "07400 100601",
        serde_json::json!({}),
    )
    .await
    .contact
    .id;
    let who = actor(&a, None);
    for round in 0..10 {
        let version = s.contact(a.id, id).await.expect("read").version;
        let to = |name: &str| -> ContactChange {
            serde_json::from_value(serde_json::json!({ "last_name": format!("{name}{round}") }))
                .expect("valid")
        };
        let (x, y) = (to("Left"), to("Right"));
        let (left, right) = tokio::join!(
            s.edit_contact(&who, id, version, &x, t0()),
            s.edit_contact(&who, id, version, &y, t0()),
        );
        let winner = match (&left, &right) {
            (Ok(w), Err(StoreError::Stale(_))) | (Err(StoreError::Stale(_)), Ok(w)) => w,
            other => panic!("round {round}: one edit must win and one be told: {other:?}"),
        };
        let stored = s.contact(a.id, id).await.expect("read");
        assert_eq!(stored.version, version + 1);
        assert_eq!(stored.fields.last_name, winner.contact.fields.last_name);
    }
    db
}

async fn a_changed_number_is_checked_again(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let saved = add(
        s,
        &a,
        "Ada",
        "Lovelace",
        "07400 100401",
        serde_json::json!({}),
    )
    .await;
    add(s, &a, "Tom", "Other", "07400 100402", serde_json::json!({})).await;
    let id = saved.contact.id;
    assert!(!saved.suppressed);
    let to = |phone: &str| -> ContactChange {
        serde_json::from_value(serde_json::json!({ "phone": phone })).expect("valid")
    };
    let who = actor(&a, None);
    assert!(matches!(
        s.edit_contact(&who, id, 1, &to("0770"), t0()).await,
        Err(StoreError::Invalid(m)) if m.contains("phone")
    ));
    assert!(matches!(
        s.edit_contact(&who, id, 1, &to("07400 100402"), t0()).await,
        Err(StoreError::Conflict(m)) if m.contains("already has this number")
    ));
    s.suppress(a.id, "+447400100499", "asked", "agent", t0())
        .await
        .expect("suppressed");
    let edited = s
        .edit_contact(&who, id, 1, &to("07400 100499"), t0())
        .await
        .expect("saved");
    assert!(
        edited.suppressed,
        "a suppressed number is saved and flagged, as imports do"
    );
    assert_eq!(edited.contact.fields.phone_e164, "+447400100499");
    assert_eq!(edited.contact.fields.phone_raw, "07400 100499");
    assert_eq!(edited.contact.version, 2);
    // Nothing of it reaches the dialler: the number stays suppressed.
    assert!(s.is_suppressed(a.id, "+447400100499").await.expect("q"));
    db
}

async fn a_changed_or_erased_address_is_no_longer_found(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let saved = add(
        s,
        &a,
        "Ada",
        "Lovelace",
        "07400 100501",
        serde_json::json!({"postal_address": "1 Old Road, Leeds LS1 1AA"}),
    )
    .await;
    let id = saved.contact.id;
    assert_eq!(
        find(s, &a, SearchScope::Account, "LS1 1AA").await,
        ["Ada Lovelace"]
    );
    let change: ContactChange =
        serde_json::from_value(serde_json::json!({ "postal_address": "2 New Road, York YO1 7HH" }))
            .expect("valid");
    s.edit_contact(&actor(&a, None), id, 1, &change, t0())
        .await
        .expect("edited");
    assert!(find(s, &a, SearchScope::Account, "LS1 1AA")
        .await
        .is_empty());
    assert_eq!(
        find(s, &a, SearchScope::Account, "YO1 7HH").await,
        ["Ada Lovelace"]
    );
    s.erase_contact(a.id, id, &actor(&a, None), t0())
        .await
        .expect("erased");
    assert!(find(s, &a, SearchScope::Account, "YO1 7HH")
        .await
        .is_empty());
    assert!(find(s, &a, SearchScope::Account, "ada").await.is_empty());
    db
}

async fn a_new_contact_goes_on_its_list_in_the_lists_region(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let b = s.create_account("b", 1, t0()).await.expect("account");
    let us = s.create_list(a.id, "US", "US", t0()).await.expect("list");
    let foreign = s.create_list(b.id, "B", "GB", t0()).await.expect("list");
    let new = |list: ListId| -> NewContact {
        serde_json::from_value(serde_json::json!({
            "first_name": "Grace", "phone": "(212) 555-0134", "list_id": list
        }))
        .expect("valid")
    };
    let saved = s
        .add_contact(&actor(&a, None), &new(us.id), t0())
        .await
        .expect("created");
    assert_eq!(saved.contact.fields.phone_e164, "+12125550134");
    assert_eq!(
        s.lists_of_contact(a.id, saved.contact.id)
            .await
            .expect("lists"),
        [us.id]
    );
    assert!(matches!(
        s.add_contact(&actor(&a, None), &new(foreign.id), t0()).await,
        Err(StoreError::Invalid(m)) if m.contains("no list")
    ));
    // The number, read as a US one, is now in the account's regions' reach.
    assert_eq!(
        find(s, &a, SearchScope::Account, "212-555-0134").await,
        ["Grace "]
    );
    db
}

/// Fields too long for an edit are refused by the store itself too, by the
/// field's name, whichever way they come (an import, a webhook's rule, an
/// older client): on PostgreSQL a name of thousands of characters was the
/// search index's error instead.
async fn the_store_refuses_fields_longer_than_an_edit_allows(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let fields = |first_name: String, email: Option<String>| ContactFields {
        first_name,
        email,
        phone_e164: "+447400100501".into(),
        phone_raw: "07400 100501".into(),
        custom_fields: serde_json::json!({}),
        ..ContactFields::default()
    };
    let long: String = "ü".repeat(201);
    assert!(matches!(
        s.create_contact(a.id, &fields(long.clone(), None), t0()).await,
        Err(StoreError::Invalid(m)) if m == "first_name is longer than 200 characters"
    ));
    let email = format!("{}@example.org", "a".repeat(250));
    assert!(matches!(
        s.create_contact(a.id, &fields("Ada".into(), Some(email)), t0()).await,
        Err(StoreError::Invalid(m)) if m == "email is longer than 254 characters"
    ));
    let at_limit = "ü".repeat(200);
    let saved = s
        .create_contact(a.id, &fields(at_limit.clone(), None), t0())
        .await
        .expect("200 characters are allowed");
    assert_eq!(saved.fields.first_name, at_limit);
    assert!(matches!(
        s.update_contact(a.id, saved.id, &fields(long, None), t0()).await,
        Err(StoreError::Invalid(m)) if m.starts_with("first_name")
    ));
    db
}

/// The database itself refuses a member or a field value whose account is
/// not its list's, contact's or field's (migration 0025), on both backends.
async fn members_and_values_cannot_cross_accounts(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account");
    let b = s.create_account("b", 1, t0()).await.expect("account");
    let list_a = s.create_list(a.id, "a", "GB", t0()).await.expect("list");
    let list_b = s.create_list(b.id, "b", "GB", t0()).await.expect("list");
    let fields = ContactFields {
        phone_e164: "+447400100601".into(),
        phone_raw: "07400 100601".into(),
        custom_fields: serde_json::json!({}),
        ..ContactFields::default()
    };
    let contact_a = s
        .create_contact(a.id, &fields, t0())
        .await
        .expect("contact");
    let field_a = text_field(s, a.id).await;
    let field_b = text_field(s, b.id).await;
    let member = "INSERT INTO list_members (list_id, contact_id, account_id, added_at) \
                  VALUES ($1, $2, $3, '2026-12-02T09:00:00Z')";
    let value = "INSERT INTO contact_field_values (account_id, contact_id, field_id, value) \
                 VALUES ($1, $2, $3, 'gold')";
    // The same statements with the rows' own account are taken, so a refusal
    // below is the keys', not the statement's.
    let cases = [
        // Another account's list, under either account.
        (member, list_b.id.0, contact_a.id.0, a.id.0, false),
        (member, list_b.id.0, contact_a.id.0, b.id.0, false),
        (member, list_a.id.0, contact_a.id.0, a.id.0, true),
        // Another account's field.
        (value, a.id.0, contact_a.id.0, field_b.id.0, false),
        (value, b.id.0, contact_a.id.0, field_b.id.0, false),
        (value, a.id.0, contact_a.id.0, field_a.id.0, true),
    ];
    for (sql, x, y, z, taken) in cases {
        let result = match (s.sqlite_pool(), s.postgres_pool()) {
            (Some(pool), _) => sqlx::query(sql)
                .bind(x)
                .bind(y)
                .bind(z)
                .execute(pool)
                .await
                .map(|_| ()),
            (_, Some(pool)) => sqlx::query(sql)
                .bind(x)
                .bind(y)
                .bind(z)
                .execute(pool)
                .await
                .map(|_| ()),
            _ => panic!("a store on one backend or the other"),
        };
        assert_eq!(
            result.is_ok(),
            taken,
            "{sql} with {x}, {y}, {z}: {result:?}"
        );
    }
    db
}

async fn text_field(s: &Store, account: AccountId) -> crm::fields::FieldDef {
    let actor = Actor {
        account_id: Some(account),
        ..Actor::default()
    };
    let new = crm::fields::NewField {
        key: "tier".into(),
        kind: Some(crm::fields::FieldKind::Text),
        ..crm::fields::NewField::default()
    };
    s.define_field(&actor, &new, t0()).await.expect("field")
}
