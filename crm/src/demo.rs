//! The demo account a first start creates, so a call can be tried at once.

use chrono::{DateTime, Utc};

use crate::model::{Account, ContactFields, Role};
use crate::store::campaign_settings::{CampaignSettings, DayHours, DialMode, WeeklyHours};
use crate::{password, Store, StoreError};

/// A demo user's login, printed once at first start.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// The username.
    pub username: String,
    /// The generated password, shown only this once.
    pub password: String,
    /// The user's role.
    pub role: Role,
}

/// What the demo seeding created.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The demo account.
    pub account: Account,
    /// The users and their passwords.
    pub logins: Vec<DemoLogin>,
    /// How many contacts the demo list holds.
    pub contacts: usize,
}

const FIRST_NAMES: [&str; 10] = [
    "Ada", "Bram", "Cora", "Dev", "Edith", "Farid", "Greta", "Hugo", "Iris", "Jonas",
];
const LAST_NAMES: [&str; 5] = ["Ashdown", "Brightwater", "Calloway", "Dunmore", "Everly"];
const PROFESSIONS: [&str; 5] = ["Teacher", "Engineer", "Nurse", "Carpenter", "Accountant"];

/// Creates the demo account: an admin, a supervisor and two agents with
/// random passwords, a paused demo campaign both agents are assigned to,
/// and a list of 50 fictitious contacts whose numbers lie in Ofcom's range
/// reserved for drama.
pub async fn seed(store: &Store, now: DateTime<Utc>) -> Result<Demo, StoreError> {
    let account = store.create_account("demo", 10, now).await?;
    let mut logins = Vec::new();
    let mut agents = Vec::new();
    for (username, role) in [
        ("admin", Role::Admin),
        ("supervisor", Role::Supervisor),
        ("agent1", Role::Agent),
        ("agent2", Role::Agent),
    ] {
        let pw = password::generate();
        let user = store
            .create_user(account.id, username, &password::hash(&pw)?, role, now)
            .await?;
        if role == Role::Agent {
            agents.push(user.id);
        }
        logins.push(DemoLogin {
            username: username.into(),
            password: pw,
            role,
        });
    }
    let list = store
        .create_list(account.id, "Demo list", "GB", now)
        .await?;
    let campaign = store
        .create_campaign(account.id, "Demo campaign", "+441632960000", now)
        .await?;
    store
        .attach_list(account.id, campaign.id, list.id, 0)
        .await?;
    // A new campaign has nobody assigned; the demo's agents work this one.
    store
        .assign_agents(account.id, campaign.id, &agents)
        .await?;
    // The demo's contacts are fictitious and its carrier simulated, so its
    // campaign may call at any hour: a newcomer can try a call at night.
    let mut settings = CampaignSettings::defaults(&campaign.caller_id);
    settings.mode = DialMode::Progressive;
    settings.calling_hours = WeeklyHours::every_day(DayHours::all_day());
    store
        .update_campaign_settings(account.id, campaign.id, &settings, now)
        .await?;
    let mut contacts = 0;
    for i in 0..50usize {
        let first = FIRST_NAMES[i % FIRST_NAMES.len()];
        let last = LAST_NAMES[i / FIRST_NAMES.len()];
        let number = format!("{:03}", 100 + i);
        let fields = ContactFields {
            first_name: first.into(),
            last_name: last.into(),
            phone_e164: format!("+447700900{number}"),
            phone_raw: format!("07700 900{number}"),
            email: Some(format!(
                "{}.{}@example.org",
                first.to_lowercase(),
                last.to_lowercase()
            )),
            postal_address: Some(format!("{} Demo Street, Exampleton", i + 1)),
            profession: Some(PROFESSIONS[i % PROFESSIONS.len()].into()),
            time_zone: Some("Europe/London".into()),
            custom_fields: serde_json::json!({ "source": "demo" }),
        };
        let contact = store.create_contact(account.id, &fields, now).await?;
        store
            .add_to_list(account.id, list.id, contact.id, now)
            .await?;
        contacts += 1;
    }
    Ok(Demo {
        account,
        logins,
        contacts,
    })
}
