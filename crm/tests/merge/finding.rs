//! Likely duplicates of one contact, and the account's pages of pairs.

use crm::duplicates::DuplicateReason;
use crm::model::*;
use crm::store::duplicates::DuplicatePair;
use crm::testing::TestDb;
use crm::StoreError;

use crate::fixture::*;

pub async fn duplicates_are_found_by_email_number_and_name_at_a_postcode(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    let b = s.create_account("b", 1, t0()).await.expect("account").id;
    define(s, a, "second_phone").await;
    let ada = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Ada", "last_name": "Lovelace", "phone": "+447400100001",
            "email": "ada@example.org", "postal_address": "12 St James's Sq, London SW1Y 4JH",
            "custom_fields": { "work_phone": "07400 100099" }
        }),
    )
    .await;
    let typo = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Adah", "last_name": "Lovelace", "phone": "+447400100002",
            "postal_address": "Flat 2, 12 St James's Square, London SW1Y 4JH"
        }),
    )
    .await;
    let reordered = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Lovelace", "last_name": "Ada", "phone": "+447400100003",
            "postal_address": "SW1Y 4JH"
        }),
    )
    .await;
    let mail = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Augusta", "last_name": "King", "phone": "+447400100004",
            "email": "ADA@Example.org"
        }),
    )
    .await;
    let holder = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Charles", "last_name": "Babbage", "phone": "+447400100005",
            "fields": { "second_phone": "07400 100001" }
        }),
    )
    .await;
    let work = add(
        s,
        a,
        serde_json::json!({
            "first_name": "A.", "last_name": "King", "phone": "+447400100099"
        }),
    )
    .await;
    // Same postcode, other person; and the same email in another account.
    let neighbour = add(
        s,
        a,
        serde_json::json!({
            "first_name": "Mary", "last_name": "Somerville", "phone": "+447400100006",
            "postal_address": "14 St James's Sq, London SW1Y 4JH"
        }),
    )
    .await;
    add(
        s,
        b,
        serde_json::json!({
            "first_name": "Ada", "last_name": "Lovelace", "phone": "+447400100001",
            "email": "ada@example.org", "postal_address": "SW1Y 4JH"
        }),
    )
    .await;

    let found = s.duplicates_of(a, ada.id).await.expect("duplicates");
    let ids: Vec<ContactId> = found.iter().map(|d| d.contact.id).collect();
    assert_eq!(
        ids,
        [typo.id, reordered.id, mail.id, holder.id, work.id],
        "{found:#?}"
    );
    assert_eq!(
        reasons_of(&found, typo.id),
        [DuplicateReason::SimilarNamePostcode]
    );
    assert_eq!(
        reasons_of(&found, reordered.id),
        [DuplicateReason::SimilarNamePostcode]
    );
    assert_eq!(reasons_of(&found, mail.id), [DuplicateReason::SameEmail]);
    assert_eq!(reasons_of(&found, holder.id), [DuplicateReason::SameNumber]);
    assert_eq!(reasons_of(&found, work.id), [DuplicateReason::SameNumber]);
    assert!(!ids.contains(&neighbour.id));

    // From the other side too: the holder wrote Ada's number in a field.
    let theirs = s.duplicates_of(a, holder.id).await.expect("duplicates");
    assert_eq!(reasons_of(&theirs, ada.id), [DuplicateReason::SameNumber]);

    // A contact merged away is no one's duplicate, and has none.
    merge(s, a, ada.id, typo.id).await;
    let found = s.duplicates_of(a, ada.id).await.expect("duplicates");
    assert!(found.iter().all(|d| d.contact.id != typo.id), "{found:#?}");
    assert!(s.duplicates_of(a, typo.id).await.expect("none").is_empty());
    assert!(matches!(
        s.duplicates_of(b, ada.id).await,
        Err(StoreError::NotFound)
    ));
    db
}

pub async fn the_account_pages_list_each_pair_once(db: TestDb) -> TestDb {
    let s = &db.store;
    let a = s.create_account("a", 1, t0()).await.expect("account").id;
    define(s, a, "other_phone").await;
    // 1 and 4 share an email; 2 wrote 5's number in a field and 5 wrote
    // 2's in its custom fields; 3 and 6 are one name at one postcode; 8
    // wrote 7's number in its custom fields.
    let c1 = add(
        s,
        a,
        serde_json::json!({ "first_name": "One", "phone": "+447400200001",
        "email": "one@example.org" }),
    )
    .await;
    let c2 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Two", "phone": "+447400200002",
        "fields": { "other_phone": "+44 7400 200005" } }),
    )
    .await;
    let c3 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Grace", "last_name": "Hopper",
        "phone": "+447400200003", "postal_address": "1 Navy Way, York YO1 7HH" }),
    )
    .await;
    let c4 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Four", "phone": "+447400200004",
        "email": "One@Example.org" }),
    )
    .await;
    let c5 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Five", "phone": "+447400200005",
        "custom_fields": { "old": "07400 200002" } }),
    )
    .await;
    let c6 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Hopper", "last_name": "Grace",
        "phone": "+447400200006", "postal_address": "YO1 7HH" }),
    )
    .await;
    let c7 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Seven", "phone": "+447400200007" }),
    )
    .await;
    // Only the later contact holds the earlier one's number, in its custom
    // fields, which no index reads: its own page lists the pair.
    let c8 = add(
        s,
        a,
        serde_json::json!({ "first_name": "Eight", "phone": "+447400200008",
            "custom_fields": { "landline": "+44 7400 200007" } }),
    )
    .await;

    let mut pairs: Vec<(ContactId, ContactId, Vec<DuplicateReason>)> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = s.duplicate_pairs(a, after, 2).await.expect("page");
        pages += 1;
        assert!(page.scanned <= 2);
        pairs.extend(
            page.pairs
                .into_iter()
                .map(|DuplicatePair { a, b, reasons }| (a.id, b.id, reasons)),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "the cursor moves on");
    }
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (c1.id, c4.id, vec![DuplicateReason::SameEmail]),
            (c2.id, c5.id, vec![DuplicateReason::SameNumber]),
            (c3.id, c6.id, vec![DuplicateReason::SimilarNamePostcode]),
            (c7.id, c8.id, vec![DuplicateReason::SameNumber]),
        ]
    );
    assert!(matches!(
        s.duplicate_pairs(a, None, 0).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.duplicate_pairs(a, None, 501).await,
        Err(StoreError::Invalid(_))
    ));
    db
}
