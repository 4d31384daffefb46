//! The store behind the softphone: pause codes per account, and the checks
//! and lease behind a number dialled by hand, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::model::*;
use crm::store::leads::LeadState;
use crm::store::softphone::{default_pause_codes, international_number, PauseCode};
use crm::testing::TestDb;
use crm::{Store, StoreError};

crm::on_both_backends!(
    pause_codes_default_validate_and_reset,
    a_manual_dial_is_checked_for_suppression_hours_and_calls_in_progress,
    a_manual_lead_is_created_leased_once_and_never_for_a_barred_number,
);

/// Wednesday 14 January 2026, 23:00 UTC: 23:00 in London, 18:00 in New York.
fn late() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 23, 0, 0)
        .single()
        .expect("valid time")
}

async fn running_campaign(store: &Store, name: &str) -> (AccountId, CampaignId) {
    let account = store.create_account(name, 10, late()).await.unwrap().id;
    let campaign = store
        .create_campaign(account, "Evening", "+442079460000", late())
        .await
        .unwrap()
        .id;
    store
        .set_campaign_status(account, campaign, CampaignStatus::Running, late())
        .await
        .unwrap();
    (account, campaign)
}

fn code(code: &str, label: &str) -> PauseCode {
    PauseCode {
        code: code.into(),
        label: label.into(),
    }
}

async fn pause_codes_default_validate_and_reset(db: TestDb) -> TestDb {
    let s = &db.store;
    let (a, _) = running_campaign(s, "codes").await;
    let (b, _) = running_campaign(s, "other").await;
    assert_eq!(s.pause_codes(a).await.unwrap(), default_pause_codes());
    let mine = vec![code("coaching", "Coaching"), code("break", "Short break")];
    assert_eq!(s.set_pause_codes(a, Some(&mine)).await.unwrap(), mine);
    assert_eq!(s.pause_codes(a).await.unwrap(), mine);
    assert_eq!(
        s.pause_codes(b).await.unwrap(),
        default_pause_codes(),
        "accounts apart"
    );
    for bad in [
        vec![],
        vec![code("Break", "Capital")],
        vec![code("disconnected", "Reserved")],
        vec![code("x", "")],
        vec![code("x", "One"), code("x", "Twice")],
        vec![code("x", "bell\u{7}")],
        (0..31).map(|i| code(&format!("c{i}"), "Many")).collect(),
    ] {
        assert!(
            matches!(
                s.set_pause_codes(a, Some(&bad)).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad:?} is refused"
        );
    }
    assert_eq!(
        s.pause_codes(a).await.unwrap(),
        mine,
        "refusals change nothing"
    );
    assert_eq!(
        s.set_pause_codes(a, None).await.unwrap(),
        default_pause_codes()
    );
    assert!(matches!(
        s.set_pause_codes(AccountId(999_999), None).await,
        Err(StoreError::NotFound)
    ));
    db
}

async fn a_manual_dial_is_checked_for_suppression_hours_and_calls_in_progress(
    db: TestDb,
) -> TestDb {
    let s = &db.store;
    let (a, c) = running_campaign(s, "checks").await;
    let new_york = s
        .create_contact(
            a,
            &ContactFields {
                first_name: "Evening".into(),
                phone_e164: "+12125550100".into(),
                phone_raw: "+12125550100".into(),
                time_zone: Some("America/New_York".into()),
                custom_fields: serde_json::json!({}),
                ..ContactFields::default()
            },
            late(),
        )
        .await
        .unwrap();
    // 18:00 in New York: inside the default 08:00-21:00.
    let ok = s
        .check_manual_dial(a, c, "+12125550100", late())
        .await
        .unwrap();
    assert_eq!(ok.contact_id, Some(new_york.id));
    assert!(!ok.suppressed && !ok.in_progress);
    assert_eq!(ok.outside_hours, None);
    // 23:00 in London, for a number nobody holds: its zone comes from the number.
    let london = s
        .check_manual_dial(a, c, "+447700900123", late())
        .await
        .unwrap();
    assert_eq!(london.contact_id, None);
    assert_eq!(
        london.outside_hours.as_deref(),
        Some("Wed 23:00 Europe/London")
    );
    s.suppress(a, "+12125550100", "asked", "test", late())
        .await
        .unwrap();
    assert!(
        s.check_manual_dial(a, c, "+12125550100", late())
            .await
            .unwrap()
            .suppressed
    );
    assert!(matches!(
        s.check_manual_dial(a, c, "12125550100", late()).await,
        Err(StoreError::Invalid(_))
    ));
    let (_, foreign) = running_campaign(s, "foreign").await;
    assert!(matches!(
        s.check_manual_dial(a, foreign, "+447700900123", late())
            .await,
        Err(StoreError::NotFound)
    ));
    db
}

async fn a_manual_lead_is_created_leased_once_and_never_for_a_barred_number(db: TestDb) -> TestDb {
    let s = &db.store;
    let (a, c) = running_campaign(s, "leases").await;
    let number = "+447700900321";
    let lease = Duration::minutes(30);
    let first = s
        .lease_manual_lead(a, c, number, "node-a", late(), lease)
        .await
        .unwrap();
    assert_eq!(first.phone_e164, number);
    let contact = s.contact(a, first.contact_id).await.unwrap();
    assert_eq!(
        contact.fields.phone_e164, number,
        "a contact with the number only"
    );
    assert_eq!(contact.fields.first_name, "");
    let lead = s.lead(a, first.id).await.unwrap();
    assert_eq!(lead.state, LeadState::InProgress);
    assert_eq!(lead.lease_owner.as_deref(), Some("node-a"));
    let busy = s.check_manual_dial(a, c, number, late()).await.unwrap();
    assert!(busy.in_progress);
    assert!(matches!(
        s.lease_manual_lead(a, c, number, "node-b", late(), lease)
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Once the call is over (or the lease lapsed), the same contact and lead
    // are dialled again; no second contact appears.
    s.release_lead(a, first.id, "node-a", late()).await.unwrap();
    let again = s
        .lease_manual_lead(a, c, number, "node-b", late(), lease)
        .await
        .unwrap();
    assert_eq!((again.id, again.contact_id), (first.id, first.contact_id));
    assert_eq!(s.contacts_by_number(a, number).await.unwrap().len(), 1);

    s.suppress(a, "+447700900999", "asked", "test", late())
        .await
        .unwrap();
    assert!(matches!(
        s.lease_manual_lead(a, c, "+447700900999", "node-a", late(), lease)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        s.contacts_by_number(a, "+447700900999")
            .await
            .unwrap()
            .is_empty(),
        "nothing is created for a barred number"
    );
    s.set_campaign_status(a, c, CampaignStatus::Paused, late())
        .await
        .unwrap();
    assert!(matches!(
        s.lease_manual_lead(a, c, "+447700900400", "node-a", late(), lease)
            .await,
        Err(StoreError::Invalid(_))
    ));
    db
}

#[test]
fn typed_numbers_become_e164_or_nothing() {
    assert_eq!(
        international_number("+44 20 7946 0000").as_deref(),
        Some("+442079460000")
    );
    assert_eq!(
        international_number("0044-20-7946-0000").as_deref(),
        Some("+442079460000")
    );
    assert_eq!(
        international_number("+1 (212) 555.0100").as_deref(),
        Some("+12125550100")
    );
    assert_eq!(international_number("020 7946 0000"), None, "national form");
    assert_eq!(international_number("+44 20 7946 000a"), None);
    assert_eq!(international_number("+"), None);
    assert_eq!(international_number("+1234567890123456"), None, "too long");
    assert_eq!(international_number(""), None);
}
