//! Campaign settings: defaults, validation and tenancy, on both backends.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use crm::model::*;
use crm::store::campaign_settings::{CampaignSettings, DayHours, DialMode, Disposition};
use crm::testing::TestDb;
use crm::StoreError;

crm::on_both_backends!(
    unsaved_settings_are_the_lawful_defaults,
    settings_round_trip,
    unlawful_settings_are_refused,
    settings_are_scoped_to_their_account,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .expect("valid time")
}

async fn campaign(db: &TestDb, account: &str) -> (AccountId, CampaignId) {
    let a = db.store.create_account(account, 5, t0()).await.unwrap().id;
    let c = db
        .store
        .create_campaign(a, "Spring", "+442079460000", t0())
        .await
        .unwrap()
        .id;
    (a, c)
}

async fn unsaved_settings_are_the_lawful_defaults(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "defaults").await;
    let s = db.store.campaign_settings(a, c).await.unwrap();
    assert_eq!(s, CampaignSettings::defaults("+442079460000"));
    assert_eq!(s.ring_timeout_secs, 20);
    assert_eq!(s.abandon_target_bp, 300);
    let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
    let nine_pm = NaiveTime::from_hms_opt(21, 0, 0).unwrap();
    assert_eq!(
        s.calling_hours.sun,
        Some(DayHours {
            start: eight,
            end: nine_pm
        })
    );
    assert!(s
        .disposition("do_not_call")
        .is_some_and(|d| d.suppresses && d.ends_lead));
    s.validate().unwrap();
    db
}

async fn settings_round_trip(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "round-trip").await;
    let mut s = db.store.campaign_settings(a, c).await.unwrap();
    s.mode = DialMode::Predictive;
    s.caller_id = "+12125550000".into();
    s.trunk = "carrier-east".into();
    s.calling_hours.sun = None;
    s.default_time_zone = "America/Chicago".into();
    s.max_attempts = 7;
    s.retry_delays.machine = None;
    s.dispositions.push(Disposition {
        name: "left_voicemail".into(),
        suppresses: false,
        schedules_callback: false,
        ends_lead: false,
    });
    s.abandon_target_bp = 250;
    s.ring_timeout_secs = 30;
    s.abandon_message_path = Some("messages/abandon.wav".into());
    s.wrap_up_limit_secs = 45;
    s.max_dial_level = 2.5;
    s.record_calls = false;
    assert!(!s.detect_machines, "off unless asked for");
    s.detect_machines = true;
    assert_eq!(
        s.retry_delays.voicemail,
        Some(2 * 86_400),
        "two days by default"
    );
    s.voicemail_message_path = Some("messages/voicemail.wav".into());
    s.retry_delays.voicemail = Some(3 * 86_400);
    let saved = db
        .store
        .update_campaign_settings(a, c, &s, t0())
        .await
        .unwrap();
    assert_eq!(saved, s);
    assert_eq!(db.store.campaign_settings(a, c).await.unwrap(), s);
    assert_eq!(
        db.store.campaign(a, c).await.unwrap().caller_id,
        "+12125550000"
    );
    let policy = saved.retry_policy();
    assert_eq!((policy.max_attempts, policy.machine), (7, None));
    assert_eq!(policy.voicemail, Some(chrono::TimeDelta::days(3)));
    assert!(!policy.reserves_agent);
    // A second save updates the same row.
    s.mode = DialMode::Preview;
    let again = db
        .store
        .update_campaign_settings(a, c, &s, t0())
        .await
        .unwrap();
    assert_eq!(again.mode, DialMode::Preview);
    db
}

/// One edit to a campaign's settings.
type Change = dyn Fn(&mut CampaignSettings);

async fn unlawful_settings_are_refused(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "unlawful").await;
    let base = db.store.campaign_settings(a, c).await.unwrap();
    let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    let cases: Vec<(&str, Box<Change>)> = vec![
        ("ring under 15 s", Box::new(|s| s.ring_timeout_secs = 14)),
        ("abandon over 3%", Box::new(|s| s.abandon_target_bp = 301)),
        ("no caller ID", Box::new(|s| s.caller_id = String::new())),
        (
            "caller ID not E.164",
            Box::new(|s| s.caller_id = "020 7946 0000".into()),
        ),
        (
            "unknown zone",
            Box::new(|s| s.default_time_zone = "Mars/Olympus".into()),
        ),
        ("no attempts", Box::new(|s| s.max_attempts = 0)),
        (
            "empty voicemail message",
            Box::new(|s| s.voicemail_message_path = Some(String::new())),
        ),
        ("dial level under 1", Box::new(|s| s.max_dial_level = 0.5)),
        (
            "inverted hours",
            Box::new(move |s| {
                s.calling_hours.mon = Some(DayHours {
                    start: hm(21),
                    end: hm(8),
                })
            }),
        ),
        (
            "duplicate disposition",
            Box::new(|s| {
                let d = s.dispositions[0].clone();
                s.dispositions.push(d);
            }),
        ),
    ];
    for (what, change) in cases {
        let mut s = base.clone();
        change(&mut s);
        let result = db.store.update_campaign_settings(a, c, &s, t0()).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{what}: {result:?}"
        );
    }
    assert_eq!(db.store.campaign_settings(a, c).await.unwrap(), base);
    db
}

async fn settings_are_scoped_to_their_account(db: TestDb) -> TestDb {
    let (a, c) = campaign(&db, "owner").await;
    let (b, _) = campaign(&db, "intruder").await;
    assert!(matches!(
        db.store.campaign_settings(b, c).await,
        Err(StoreError::NotFound)
    ));
    let mut s = db.store.campaign_settings(a, c).await.unwrap();
    s.trunk = "hijacked".into();
    assert!(matches!(
        db.store.update_campaign_settings(b, c, &s, t0()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(db.store.campaign_settings(a, c).await.unwrap().trunk, "");
    db
}
