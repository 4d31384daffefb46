//! CSV import and export of call lists, run against both backends.

use chrono::{DateTime, TimeZone, Utc};
use crm::export::ListExport;
use crm::fields::{FieldKind, NewField};
use crm::import::{import_csv, ImportError, ImportOptions, ImportSummary, OnDuplicate};
use crm::model::*;
use crm::testing::{incompressible_text, TestDb};
use crm::{Store, StoreError};
use vocab::CallRef;

crm::on_both_backends!(
    bom_semicolons_and_custom_fields_are_read,
    quoted_newlines_keep_line_numbers_true,
    invalid_rows_are_reported_and_the_rest_goes_on,
    duplicates_are_skipped_or_updated,
    suppressed_numbers_are_imported_but_flagged,
    a_foreign_accounts_list_is_refused,
    bad_files_write_nothing,
    progress_is_reported_across_batches,
    export_carries_history_and_imports_back_the_same,
    batch_edges_keep_errors_duplicates_and_values,
    overlong_fields_are_row_errors,
    an_import_stopped_part_way_reports_what_it_wrote,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
        .single()
        .expect("valid time")
}

struct Fixture {
    account: Account,
    actor: Actor,
    list: ContactList,
}

async fn fixture(store: &Store, name: &str) -> Fixture {
    let account = store.create_account(name, 5, t0()).await.expect("account");
    let list = store
        .create_list(account.id, "leads", "GB", t0())
        .await
        .expect("list");
    let actor = Actor {
        account_id: Some(account.id),
        ..Actor::default()
    };
    Fixture {
        account,
        actor,
        list,
    }
}

async fn import(
    store: &Store,
    f: &Fixture,
    csv: &[u8],
    on_duplicate: OnDuplicate,
) -> Result<ImportSummary, ImportError> {
    let options = ImportOptions {
        on_duplicate,
        batch_size: 3,
        ..ImportOptions::default()
    };
    import_csv(
        store,
        &f.actor,
        f.list.id,
        csv.to_owned_reader(),
        &options,
        t0(),
        |_| {},
    )
    .await
}

/// A file that breaks off: its bytes, then a read error instead of their end.
struct BreaksOff {
    bytes: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for BreaksOff {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.bytes.read(buf)? {
            0 => Err(std::io::Error::other("the upload broke off")),
            n => Ok(n),
        }
    }
}

/// Gives test bytes an owned reader the import can move to its thread.
trait OwnedReader {
    fn to_owned_reader(&self) -> std::io::Cursor<Vec<u8>>;
}

impl OwnedReader for [u8] {
    fn to_owned_reader(&self) -> std::io::Cursor<Vec<u8>> {
        std::io::Cursor::new(self.to_vec())
    }
}

async fn members(store: &Store, f: &Fixture) -> Vec<Contact> {
    store
        .list_contacts(f.account.id, f.list.id, 10_000, 0)
        .await
        .expect("contacts")
}

async fn bom_semicolons_and_custom_fields_are_read(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let csv = "\u{feff}First Name;LAST_NAME;Mobile;E-mail;Job Title;TimeZone;Region;Notes\r\n\
               Mirela;Quistgaard;07400 100123;m@example.org;Welder;Europe/London;North;\"a; b\"\r\n\
               Tobiah;Fenwick-Oyelaran;+1 212 555 0134;;;;;\r\n";
    let summary = import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports");
    assert_eq!(summary.rows_read, 2);
    assert_eq!(summary.imported, 2);
    assert_eq!(summary.invalid, 0, "{:?}", summary.errors);
    let got = members(s, &f).await;
    assert_eq!(got.len(), 2);
    let m = &got[0].fields;
    assert_eq!(m.first_name, "Mirela");
    assert_eq!(m.last_name, "Quistgaard");
    assert_eq!(m.phone_e164, "+447400100123");
    assert_eq!(m.phone_raw, "07400 100123");
    assert_eq!(m.email.as_deref(), Some("m@example.org"));
    assert_eq!(m.profession.as_deref(), Some("Welder"));
    assert_eq!(m.time_zone.as_deref(), Some("Europe/London"));
    assert_eq!(
        m.custom_fields,
        serde_json::json!({"Region": "North", "Notes": "a; b"})
    );
    let t = &got[1].fields;
    assert_eq!(t.phone_e164, "+12125550134");
    assert_eq!(t.email, None);
    assert_eq!(t.custom_fields, serde_json::json!({}));
    db
}

async fn quoted_newlines_keep_line_numbers_true(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let csv = "name,phone,address\n\
               Ann,07400100001,\"1 High St\nLeeds\nLS1 1AA\"\n\
               \n\
               Bob,,\"2 Low St\r\nYork\"\n\
               Cy,07400100003,here\n\
               Di,12,\"cut off\nhere";
    let summary = import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports");
    assert_eq!(summary.rows_read, 4);
    assert_eq!(summary.imported, 2);
    let lines: Vec<u64> = summary.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![6, 9], "{:?}", summary.errors);
    assert_eq!(summary.errors[0].reason, "no phone number");
    assert!(
        summary.errors[1].reason.contains("cut off"),
        "{:?}",
        summary.errors[1]
    );
    let got = members(s, &f).await;
    assert_eq!(
        got[0].fields.postal_address.as_deref(),
        Some("1 High St\nLeeds\nLS1 1AA")
    );
    assert_eq!(
        got[0].fields.custom_fields,
        serde_json::json!({"name": "Ann"})
    );
    db
}

async fn invalid_rows_are_reported_and_the_rest_goes_on(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let mut csv = b"first_name,phone,time_zone\n\
                    Ann,07400100001,\n\
                    Bob,,\n\
                    Cy,not a number,\n\
                    Di,0123,\n\
                    Ed,07400100005\n\
                    Fay,07400100006,Mars/Olympus\n"
        .to_vec();
    csv.extend_from_slice(b"G\xff\xfeg,07400100007,\n");
    csv.extend_from_slice(b"Hal,07400100008,Europe/Paris,extra\n");
    csv.extend_from_slice(b"Ivy,07400100009,America/New_York\n");
    let summary = import(s, &f, &csv, OnDuplicate::Skip)
        .await
        .expect("imports");
    assert_eq!(summary.rows_read, 9);
    assert_eq!(summary.imported, 2);
    assert_eq!(summary.invalid, 7);
    let got: Vec<(u64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "no phone number"),
            (4, "not a phone number"),
            (5, "not a valid phone number"),
            (6, "expected 3 fields, found 2"),
            (7, "unknown time zone \"Mars/Olympus\""),
            (8, "field 1 is not valid UTF-8"),
            (9, "expected 3 fields, found 4"),
        ]
    );
    for e in &summary.errors {
        assert!(
            !e.reason.contains("0740"),
            "a reason never repeats the number"
        );
    }
    let numbers: Vec<String> = members(s, &f)
        .await
        .into_iter()
        .map(|c| c.fields.phone_e164)
        .collect();
    assert_eq!(numbers, vec!["+447400100001", "+447400100009"]);
    db
}

async fn duplicates_are_skipped_or_updated(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let existing = s
        .create_contact(
            f.account.id,
            &ContactFields {
                first_name: "Old".into(),
                phone_e164: "+447400100001".into(),
                phone_raw: "+447400100001".into(),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            t0(),
        )
        .await
        .expect("contact");
    // One number already in the account, one twice in the file (in one batch
    // and across batches: the batch size is 3).
    let csv = "first_name,phone\nA,07400100001\nB,07400100002\nC,+44 7400 100002\nD,07400100003\nE,07400100002\n";
    let skip = import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports");
    assert_eq!(
        (skip.imported, skip.updated, skip.skipped_duplicates),
        (2, 0, 3)
    );
    assert_eq!(
        skip.added_to_list, 3,
        "two new contacts and the existing one"
    );
    let got = members(s, &f).await;
    assert_eq!(got.len(), 3, "the existing contact joined the list");
    assert_eq!(got[0].id, existing.id);
    assert_eq!(got[0].fields.first_name, "Old", "skip leaves it as it was");
    assert_eq!(
        got[1].fields.first_name, "B",
        "skip keeps the first in the file"
    );

    let update = import(s, &f, csv.as_bytes(), OnDuplicate::Update)
        .await
        .expect("imports");
    assert_eq!(
        (update.imported, update.updated, update.skipped_duplicates),
        (0, 5, 0)
    );
    assert_eq!(
        update.added_to_list, 0,
        "all three were on the list already"
    );
    let got = members(s, &f).await;
    assert_eq!(got.len(), 3, "no contact was created twice");
    assert_eq!(got[0].fields.first_name, "A");
    assert_eq!(
        got[1].fields.first_name, "E",
        "update keeps the last in the file"
    );
    assert_eq!(
        s.contacts_by_number(f.account.id, "+447400100002")
            .await
            .expect("lookup")
            .len(),
        1
    );
    db
}

async fn suppressed_numbers_are_imported_but_flagged(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    s.suppress(f.account.id, "+447400100002", "do-not-call", "agent", t0())
        .await
        .expect("suppressed");
    let other = fixture(s, "other").await;
    s.suppress(
        other.account.id,
        "+447400100003",
        "do-not-call",
        "agent",
        t0(),
    )
    .await
    .expect("suppressed elsewhere");
    let csv = "phone\n07400100001\n07400100002\n07400100003\n";
    let summary = import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports");
    assert_eq!(summary.imported, 3);
    assert_eq!(summary.suppressed_flagged, 1);
    assert_eq!(summary.suppressed_lines, vec![3]);
    db
}

async fn a_foreign_accounts_list_is_refused(db: TestDb) -> TestDb {
    let s = &db.store;
    let mine = fixture(s, "acme").await;
    let theirs = fixture(s, "globex").await;
    let intruder = Fixture {
        account: mine.account.clone(),
        actor: mine.actor.clone(),
        list: theirs.list.clone(),
    };
    let r = import(s, &intruder, b"phone\n07400100001\n", OnDuplicate::Skip).await;
    assert!(
        matches!(r, Err(ImportError::Store(StoreError::NotFound))),
        "{r:?}"
    );
    let r = s
        .import_batch(
            mine.account.id,
            theirs.list.id,
            &[],
            OnDuplicate::Skip,
            t0(),
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    let r = ListExport::open(s, &mine.actor, theirs.list.id, t0()).await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    assert!(members(s, &theirs).await.is_empty());
    assert!(s
        .contacts_by_number(mine.account.id, "+447400100001")
        .await
        .expect("q")
        .is_empty());
    db
}

async fn bad_files_write_nothing(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "empty"),
        (b"\xEF\xBB\xBF\n\n  \n", "empty"),
        (b"name,email\nAnn,a@example.org\n", "no phone"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a CSV"),
        (b"{\"phone\": 1}", "no phone"),
    ];
    for (bytes, expected) in cases {
        let e = import(s, &f, bytes, OnDuplicate::Skip)
            .await
            .expect_err("refused");
        assert!(e.to_string().contains(expected), "{e} for {bytes:?}");
    }
    let header_only = import(s, &f, b"phone\n", OnDuplicate::Skip)
        .await
        .expect("ok");
    assert_eq!(header_only, ImportSummary::default());
    assert!(members(s, &f).await.is_empty());
    db
}

async fn progress_is_reported_across_batches(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let mut csv = String::from("phone,seq\n");
    for i in 0..2500 {
        csv.push_str(&format!("07400{:06},{i}\n", 100_000 + i));
    }
    let options = ImportOptions {
        batch_size: 200,
        progress_every: 1000,
        ..ImportOptions::default()
    };
    let mut seen = Vec::new();
    let summary = import_csv(
        s,
        &f.actor,
        f.list.id,
        csv.as_bytes().to_owned_reader(),
        &options,
        t0(),
        |p| seen.push(p.rows_read),
    )
    .await
    .expect("imports");
    assert_eq!(summary.imported, 2500);
    assert_eq!(seen, vec![1000, 2000, 2500]);
    assert_eq!(
        s.list(f.account.id, f.list.id).await.expect("list").size,
        2500
    );
    db
}

async fn export_carries_history_and_imports_back_the_same(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let csv = "first_name,last_name,phone,email,address,profession,tz,Colour,Size\n\
               Ann,Ash,07400100001,a@example.org,\"1 High St\nLeeds\",Baker,Europe/London,red,\n\
               \"Bob \"\"B\"\"\",Birch,07400100002,,,,,,XL\n";
    import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports");
    let ann = members(s, &f).await[0].clone();
    let attempt = s
        .create_attempt(
            f.account.id,
            CallRef::from_u128(1),
            None,
            Some(ann.id),
            t0(),
        )
        .await
        .expect("attempt");
    s.mark_ended(f.account.id, attempt.id, "answered", t0())
        .await
        .expect("ended");
    s.record_interaction(
        f.account.id,
        &NewInteraction {
            contact_id: ann.id,
            user_id: None,
            attempt_id: Some(attempt.id),
            kind: "call".into(),
            disposition: Some("sale".into()),
            notes: None,
        },
        t0(),
    )
    .await
    .expect("interaction");

    let mut out = Vec::new();
    let export = ListExport::open(s, &f.actor, f.list.id, t0())
        .await
        .expect("opens");
    assert_eq!(export.write_all(&mut out).await.expect("written"), 2);
    let text = String::from_utf8(out.clone()).expect("UTF-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "first_name,last_name,phone_e164,phone_raw,email,postal_address,profession,time_zone,\
             Colour,Size,dialcrm_contact_id,dialcrm_attempts,dialcrm_last_outcome,\
             dialcrm_last_disposition,dialcrm_last_interaction_at,dialcrm_other_numbers"
        )
    );
    assert!(
        text.contains(&format!(
            ",red,,{},1,answered,sale,2026-11-27T09:00:00Z,",
            ann.id
        )),
        "{text}"
    );
    let audit = s.audit_entries(f.account.id, 10).await.expect("audit");
    assert!(audit.iter().any(|a| a.action == "list.export"
        && a.target.as_deref() == Some(&format!("list:{}", f.list.id))));

    let g = fixture(s, "globex").await;
    let again = import(s, &g, &out, OnDuplicate::Skip)
        .await
        .expect("re-imports");
    assert_eq!(
        (again.imported, again.invalid),
        (2, 0),
        "{:?}",
        again.errors
    );
    let before: Vec<ContactFields> = members(s, &f).await.into_iter().map(|c| c.fields).collect();
    let after: Vec<ContactFields> = members(s, &g).await.into_iter().map(|c| c.fields).collect();
    assert_eq!(before, after);
    db
}

async fn batch_edges_keep_errors_duplicates_and_values(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    s.define_field(
        &f.actor,
        &NewField {
            key: "tier".into(),
            kind: Some(FieldKind::Choice),
            choices: vec!["gold".into(), "silver".into(), "bronze".into()],
            ..NewField::default()
        },
        t0(),
    )
    .await
    .expect("field");
    // Batches of three records: a broken row ends the first batch; a number
    // comes back at the start of the next batch, inside a batch, and two
    // batches later; a bad value ends the third batch's first row.
    let csv = "first_name,phone,tier,note\n\
               A,07400100001,gold,\n\
               B,07400100002,silver,\n\
               Broken,,gold,\n\
               C,+44 7400 100002,bronze,\n\
               D,07400100003,,\n\
               E,07400 100003,gold,\n\
               F,07400100004,platinum,\n\
               G,07400100001,silver,\n\
               Zoë O'Brien-Ünal,07400100005,,\"say \"\"hi\"\" \\ then\nbye ✓\"\n";
    let skip = import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports");
    assert_eq!(
        (
            skip.rows_read,
            skip.imported,
            skip.skipped_duplicates,
            skip.invalid
        ),
        (9, 4, 3, 2),
        "{skip:?}"
    );
    assert_eq!(skip.added_to_list, 4);
    let lines: Vec<u64> = skip.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 8], "{:?}", skip.errors);
    let got = members(s, &f).await;
    let names: Vec<&str> = got.iter().map(|c| c.fields.first_name.as_str()).collect();
    assert_eq!(
        names,
        vec!["A", "B", "D", "Zoë O'Brien-Ünal"],
        "skip keeps the first"
    );
    let tiers: Vec<Option<&serde_json::Value>> = got.iter().map(|c| c.values.get("tier")).collect();
    assert_eq!(
        tiers,
        vec![Some(&"gold".into()), Some(&"silver".into()), None, None]
    );
    assert_eq!(
        got[3].fields.custom_fields,
        serde_json::json!({"note": "say \"hi\" \\ then\nbye ✓"}),
        "text comes back byte for byte"
    );

    let update = import(s, &f, csv.as_bytes(), OnDuplicate::Update)
        .await
        .expect("imports");
    assert_eq!(
        (
            update.imported,
            update.updated,
            update.skipped_duplicates,
            update.invalid
        ),
        (0, 7, 0, 2),
        "{update:?}"
    );
    assert_eq!(update.added_to_list, 0);
    let got = members(s, &f).await;
    let names: Vec<&str> = got.iter().map(|c| c.fields.first_name.as_str()).collect();
    assert_eq!(
        names,
        vec!["G", "C", "E", "Zoë O'Brien-Ünal"],
        "update keeps the last"
    );
    let tiers: Vec<Option<&serde_json::Value>> = got.iter().map(|c| c.values.get("tier")).collect();
    assert_eq!(
        tiers,
        vec![
            Some(&"silver".into()),
            Some(&"bronze".into()),
            Some(&"gold".into()),
            None
        ],
        "an updated contact takes the values its last row holds"
    );
    assert_eq!(got[1].fields.phone_raw, "+44 7400 100002");
    let versions: Vec<i64> = got.iter().map(|c| c.version).collect();
    assert_eq!(
        versions,
        vec![3, 3, 2, 2],
        "one update per batch a number is in"
    );
    db
}

/// A name or address too long for the search indexes is the row's error;
/// on PostgreSQL it was the database's, and it stopped the import. A long
/// address within the limit, one word of multi-byte characters, goes in.
async fn overlong_fields_are_row_errors(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let text = incompressible_text;
    let csv = format!(
        "first_name,last_name,phone,address\n\
         Ann,Ash,07400100001,1 High St\n\
         {},Birch,07400100002,2 High St\n\
         Cy,{},07400100003,3 High St\n\
         Di,Dale,07400100004,{}\n\
         Ed,Eyre,07400100005,{}\n\
         Fy,Fox,07400100006,6 High St\n",
        text(3000),
        text(201),
        text(1000),
        text(1001),
    );
    let summary = import(s, &f, csv.as_bytes(), OnDuplicate::Skip)
        .await
        .expect("imports the rest");
    assert_eq!((summary.imported, summary.invalid), (3, 3), "{summary:?}");
    let reasons: Vec<(u64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (3, "first_name is longer than 200 characters"),
            (4, "last_name is longer than 200 characters"),
            (6, "postal_address is longer than 1000 characters"),
        ]
    );
    let got = members(s, &f).await;
    let names: Vec<&str> = got.iter().map(|c| c.fields.first_name.as_str()).collect();
    assert_eq!(names, vec!["Ann", "Di", "Fy"]);
    assert_eq!(
        got[1].fields.postal_address.as_deref(),
        Some(text(1000).as_str())
    );
    db
}

/// An import that an error stops keeps the batches it wrote, and its last
/// report counts them: a job's summary is what an operator goes by.
async fn an_import_stopped_part_way_reports_what_it_wrote(db: TestDb) -> TestDb {
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let mut csv = String::from("phone\n");
    for i in 0..1000 {
        csv.push_str(&format!("07400{:06}\n", 200_000 + i));
    }
    let options = ImportOptions {
        batch_size: 200,
        progress_every: 100_000,
        ..ImportOptions::default()
    };
    let mut last = None;
    let result = import_csv(
        s,
        &f.actor,
        f.list.id,
        BreaksOff {
            bytes: std::io::Cursor::new(csv.into_bytes()),
        },
        &options,
        t0(),
        |p| last = Some(p.clone()),
    )
    .await;
    assert!(matches!(result, Err(ImportError::Read(_))), "{result:?}");
    let written = s.list(f.account.id, f.list.id).await.expect("list").size;
    assert!(
        written >= 800,
        "the batches before the break stay: {written}"
    );
    let last = last.expect("a report at the stop");
    assert_eq!(last.imported, written as u64);
    assert_eq!(last.added_to_list, written as u64);
    db
}

/// On PostgreSQL a batch is written in two parts at once; when one part
/// fails, the other has committed, and the import's last report counts it.
#[tokio::test]
async fn postgres_half_of_a_failed_batch_is_counted() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let s = &db.store;
    let f = fixture(s, "acme").await;
    let pool = s.postgres_pool().expect("a PostgreSQL store");
    for statement in [
        "CREATE FUNCTION refuse_one_number() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.phone_e164 = '+447400300050' THEN RAISE EXCEPTION 'refused'; END IF; \
         RETURN NEW; END $$",
        "CREATE TRIGGER refuse_one_number BEFORE INSERT ON contacts \
         FOR EACH ROW EXECUTE FUNCTION refuse_one_number()",
    ] {
        sqlx::query(statement).execute(pool).await.expect(statement);
    }
    let mut csv = String::from("phone\n");
    for i in 0..100 {
        csv.push_str(&format!("07400{:06}\n", 300_000 + i));
    }
    let mut last = None;
    let result = import_csv(
        s,
        &f.actor,
        f.list.id,
        csv.as_bytes().to_owned_reader(),
        &ImportOptions::default(),
        t0(),
        |p| last = Some(p.clone()),
    )
    .await;
    assert!(matches!(result, Err(ImportError::Store(_))), "{result:?}");
    let written = s.list(f.account.id, f.list.id).await.expect("list").size;
    assert!(
        written > 0 && written < 100,
        "one part committed, the other not: {written}"
    );
    let last = last.expect("a report at the stop");
    assert_eq!(last.imported, written as u64);
    assert_eq!(last.added_to_list, written as u64);
    db.finish().await;
}
