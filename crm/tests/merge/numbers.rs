//! A merged contact's numbers: the kept contact keeps them beside its own,
//! through merges of merges; an undo puts them back as the rows they were;
//! a search, an inbound call, an export and a subject access find them;
//! erasure deletes them and keeps each suppressed.

use chrono::Duration;
use crm::export::ListExport;
use crm::model::*;
use crm::store::SearchScope;
use crm::testing::TestDb;
use vocab::CallRef;

use crate::fixture::*;

fn numbers(c: &Contact) -> Vec<&str> {
    c.other_numbers
        .iter()
        .map(|n| n.phone_e164.as_str())
        .collect()
}

pub async fn numbers_follow_merges_and_an_undo_puts_them_back_exactly(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("acme", 1, t0()).await.expect("account").id;
    let list = s.create_list(a, "L", "GB", t0()).await.expect("list").id;
    let ada = add(
        s,
        a,
        serde_json::json!({ "first_name": "Ada", "phone": "+447400400001", "list_id": list }),
    )
    .await;
    let adah = add(
        s,
        a,
        serde_json::json!({ "first_name": "Adah", "phone": "07400 400002", "region": "GB" }),
    )
    .await;
    let countess = add(
        s,
        a,
        serde_json::json!({ "last_name": "Lovelace", "phone": "+447400400003" }),
    )
    .await;

    // The countess into Adah, for good after its day.
    merge(s, a, adah.id, countess.id).await;
    assert_eq!(
        s.finalise_merges(t0() + Duration::hours(25))
            .await
            .expect("run"),
        1
    );
    let adah_then = s.contact(a, adah.id).await.expect("Adah");
    assert_eq!(numbers(&adah_then), ["+447400400003"]);

    // Adah into Ada: her own number and the countess's come along.
    let id = merge(s, a, ada.id, adah.id).await;
    let kept = s.contact(a, ada.id).await.expect("Ada");
    assert_eq!(
        kept.fields.phone_e164, "+447400400001",
        "the number dialled"
    );
    // Oldest first: the countess's number became Adah's before Adah's
    // became Ada's.
    assert_eq!(numbers(&kept), ["+447400400003", "+447400400002"]);
    assert_eq!(
        kept.other_numbers[1].phone_raw, "07400 400002",
        "as it was written"
    );

    // Undone: Ada has none, Adah has the countess's number as it was.
    s.undo_merge(&actor(a), id, t0() + Duration::hours(1))
        .await
        .expect("undone");
    assert!(s
        .contact(a, ada.id)
        .await
        .expect("Ada")
        .other_numbers
        .is_empty());
    assert_eq!(
        s.contact(a, adah.id).await.expect("Adah").other_numbers,
        adah_then.other_numbers,
        "the same row, its writing and its time"
    );

    // Merged again and made final, Ada keeps both for good.
    merge(s, a, ada.id, adah.id).await;
    assert_eq!(
        s.finalise_merges(t0() + Duration::hours(49))
            .await
            .expect("run"),
        1
    );
    let ada_now = s.contact(a, ada.id).await.expect("Ada");
    assert_eq!(numbers(&ada_now), ["+447400400003", "+447400400002"]);

    // A search by either number finds Ada.
    for text in ["07400 400002", "+44 7400 400003"] {
        let q = crm::search::ContactQuery::parse(
            text,
            crm::search::Field::Any,
            &[phonenumber::country::Id::GB],
            crm::search::Sort::Name,
            None,
            None,
        )
        .expect("query");
        let found = s
            .search_contacts(a, SearchScope::Account, &q)
            .await
            .expect("search");
        assert_eq!(
            found.contacts.iter().map(|c| c.id).collect::<Vec<_>>(),
            [ada.id],
            "{text}"
        );
    }
    // The countess calls in, long after her record was deleted: it is Ada.
    let campaign = s
        .create_campaign(a, "In", "+441632960000", t0())
        .await
        .expect("campaign")
        .id;
    let queue = s
        .create_queue(
            a,
            "Inbound",
            &crm::store::queues::QueueSettings::new(campaign),
            &["+441632960555".to_owned()],
            t0(),
        )
        .await
        .expect("queue");
    let arrived = s
        .inbound_call_arrived(
            &queue,
            Some("+447400400003"),
            CallRef::random(),
            &crm::store::nodes::Holder::from("n1"),
            t0() + Duration::hours(50),
        )
        .await
        .expect("arrived");
    assert_eq!((arrived.contact_id, arrived.known), (Some(ada.id), true));

    // The list's export and the subject access carry them.
    let mut out = Vec::new();
    ListExport::open(s, &actor(a), list, t0())
        .await
        .expect("opens")
        .write_all(&mut out)
        .await
        .expect("written");
    let csv = String::from_utf8(out).expect("UTF-8");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("Ada").split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == "dialcrm_other_numbers")
        .expect("the column");
    assert_eq!(row[at], "+447400400003;+447400400002", "{csv}");
    let sar = s.subject_access(a, ada.id).await.expect("subject access");
    assert_eq!(numbers(&sar.contact), ["+447400400003", "+447400400002"]);
    assert!(sar.other_suppressions.is_empty(), "neither is suppressed");
    s.suppress(a, "+447400400003", "asked", "agent", t0())
        .await
        .expect("suppressed");
    let sar = s.subject_access(a, ada.id).await.expect("subject access");
    assert_eq!(sar.other_suppressions.len(), 1);
    assert_eq!(sar.other_suppressions[0].reason, "asked");

    // Erased, Ada's numbers go, each kept suppressed.
    let report = s
        .erase_contact(a, ada.id, &actor(a), t0() + Duration::hours(51))
        .await
        .expect("erased");
    assert_eq!(report.other_numbers_deleted, 2);
    for number in ["+447400400001", "+447400400002", "+447400400003"] {
        assert!(s.is_suppressed(a, number).await.expect("q"), "{number}");
    }
    assert_eq!(count_numbers(s, a).await, 0);
    db
}

pub async fn erasing_a_merged_contact_takes_its_numbers_from_the_kept_one(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("acme", 1, t0()).await.expect("account").id;
    let kept = add(
        s,
        a,
        serde_json::json!({ "first_name": "Ada", "phone": "+447400500001" }),
    )
    .await;
    let dupe = add(
        s,
        a,
        serde_json::json!({ "first_name": "Adah", "phone": "+447400500002" }),
    )
    .await;
    merge(s, a, kept.id, dupe.id).await;
    assert_eq!(
        numbers(&s.contact(a, kept.id).await.expect("kept")),
        ["+447400500002"]
    );
    // Within the merge's day the merged contact is erased on its own: the
    // number it brought is that person's, and goes with it.
    let report = s
        .erase_contact(a, dupe.id, &actor(a), t0() + Duration::hours(2))
        .await
        .expect("erased");
    assert_eq!(report.other_numbers_deleted, 1);
    assert!(s
        .contact(a, kept.id)
        .await
        .expect("kept")
        .other_numbers
        .is_empty());
    assert!(s.is_suppressed(a, "+447400500002").await.expect("q"));
    assert!(!s.is_suppressed(a, "+447400500001").await.expect("q"));
    db
}

async fn count_numbers(s: &crm::Store, a: AccountId) -> i64 {
    let sql = "SELECT COUNT(*) FROM contact_numbers WHERE account_id = $1";
    match (s.sqlite_pool(), s.postgres_pool()) {
        (Some(p), _) => sqlx::query_scalar(sql).bind(a.0).fetch_one(p).await,
        (_, Some(p)) => sqlx::query_scalar(sql).bind(a.0).fetch_one(p).await,
        _ => unreachable!("one backend or the other"),
    }
    .expect("counted")
}
