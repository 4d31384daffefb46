//! `dialcrm queue …`: inbound queues from the command line: the numbers
//! customers call, how each queue works, and which agents answer it with
//! which skill. A running service routes by the new settings at once.

use anyhow::{bail, Context, Result};
use chrono::NaiveTime;
use clap::{Args, Subcommand};
use crm::model::{Account, Actor};
use crm::store::campaign_settings::{DayHours, WeeklyHours};
use crm::store::queues::{Overflow, Queue, QueueSettings};
use crm::Store;

/// `queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Lists an account's queues with their numbers.
    List(Which),
    /// Creates a queue reached on one or more numbers, its calls logged
    /// against a campaign.
    Create(Create),
    /// Changes a queue: only the flags given change.
    Set(Set),
    /// Puts an agent in a queue with a skill from 1 to 10, or changes it.
    Assign(Assign),
    /// Takes an agent out of a queue.
    Unassign(Unassign),
    /// Lists a queue's agents, best-skilled first.
    Agents(Named),
    /// Deletes a queue; its calls keep their history.
    Delete(Named),
}

/// The account.
#[derive(Debug, Args)]
pub struct Which {
    /// The account's name.
    #[arg(long)]
    pub account: String,
}

/// One queue by name.
#[derive(Debug, Args)]
pub struct Named {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The queue's name.
    #[arg(long)]
    pub name: String,
}

/// How a queue works; every flag optional.
#[derive(Debug, Args, Default)]
pub struct Settings {
    /// Opening hours, as `mon-fri 09:00-17:30, sat 10:00-13:00` (days not
    /// named are closed; `daily` names every day).
    #[arg(long)]
    pub hours: Option<String>,
    /// The time zone of the opening hours (IANA name).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Higher first when an agent in several queues comes free.
    #[arg(long)]
    pub priority: Option<i64>,
    /// The longest a caller waits, in seconds, before the overflow.
    #[arg(long)]
    pub max_wait: Option<u32>,
    /// voicemail, callback (press 1) or hangup.
    #[arg(long)]
    pub overflow: Option<String>,
    /// The service-level target, PERCENT/SECONDS (80/20).
    #[arg(long, value_name = "PERCENT/SECONDS")]
    pub service_level: Option<String>,
    /// Record the queue's calls: true or false.
    #[arg(long, value_name = "BOOL")]
    pub record: Option<bool>,
    /// A WAV every caller hears first; empty for none.
    #[arg(long, value_name = "FILE")]
    pub welcome: Option<String>,
    /// A WAV played while callers wait; empty for the hold tone.
    #[arg(long, value_name = "FILE")]
    pub music: Option<String>,
    /// A WAV played outside opening hours; empty for none (480 then).
    #[arg(long, value_name = "FILE")]
    pub closed: Option<String>,
    /// A WAV inviting a message or a press of 1; empty for a beep.
    #[arg(long, value_name = "FILE")]
    pub voicemail: Option<String>,
}

/// Flags of `queue create`.
#[derive(Debug, Args)]
pub struct Create {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The queue's name.
    #[arg(long)]
    pub name: String,
    /// The campaign its calls are logged against (dispositions, script).
    #[arg(long)]
    pub campaign: String,
    /// A number customers call, E.164; repeat for several.
    #[arg(long = "did", value_name = "NUMBER")]
    pub numbers: Vec<String>,
    #[command(flatten)]
    pub settings: Settings,
}

/// Flags of `queue set`.
#[derive(Debug, Args)]
pub struct Set {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The queue's name.
    #[arg(long)]
    pub name: String,
    /// Route one more number to it.
    #[arg(long = "add-did", value_name = "NUMBER")]
    pub add: Vec<String>,
    /// Stop routing a number to it.
    #[arg(long = "remove-did", value_name = "NUMBER")]
    pub remove: Vec<String>,
    #[command(flatten)]
    pub settings: Settings,
}

/// Flags of `queue assign`.
#[derive(Debug, Args)]
pub struct Assign {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The queue's name.
    #[arg(long)]
    pub name: String,
    /// The agent's username.
    #[arg(long)]
    pub agent: String,
    /// Their skill in the queue, 1 to 10.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub skill: u8,
}

/// Flags of `queue unassign`.
#[derive(Debug, Args)]
pub struct Unassign {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The queue's name.
    #[arg(long)]
    pub name: String,
    /// The agent's username.
    #[arg(long)]
    pub agent: String,
}

/// Runs a queue command.
pub async fn run(store: &Store, command: QueueCommand) -> Result<()> {
    let now = chrono::Utc::now();
    match command {
        QueueCommand::List(w) => {
            let account = account(store, &w.account).await?;
            println!(
                "{:<6} {:<24} {:<10} {:<9} {:<8} numbers",
                "id", "name", "overflow", "max wait", "level"
            );
            for q in store.queues(account.id).await? {
                println!(
                    "{:<6} {:<24} {:<10} {:<9} {:<8} {}",
                    q.id,
                    q.name,
                    q.settings.overflow.as_str(),
                    format!("{}s", q.settings.max_wait_secs),
                    format!(
                        "{}/{}",
                        q.settings.service_level_pct, q.settings.service_level_secs
                    ),
                    q.numbers.join(" ")
                );
            }
        }
        QueueCommand::Create(c) => {
            let account = account(store, &c.account).await?;
            let campaign = store
                .campaigns(account.id)
                .await?
                .into_iter()
                .find(|x| x.name == c.campaign)
                .with_context(|| format!("no campaign named {:?}", c.campaign))?;
            let mut settings = QueueSettings::new(campaign.id);
            apply(&c.settings, &mut settings)?;
            let queue = store
                .create_queue(account.id, &c.name, &settings, &c.numbers, now)
                .await?;
            audit(store, &account, "queue.create", &queue, now).await?;
            println!(
                "queue {} created (id {}), reached on {}",
                queue.name,
                queue.id,
                if queue.numbers.is_empty() {
                    "no number yet".to_owned()
                } else {
                    queue.numbers.join(", ")
                }
            );
        }
        QueueCommand::Set(set) => {
            let (account, queue) = named(store, &set.account, &set.name).await?;
            let mut settings = queue.settings.clone();
            apply(&set.settings, &mut settings)?;
            store
                .update_queue(account.id, queue.id, &settings, now)
                .await?;
            for number in &set.remove {
                store
                    .remove_queue_number(account.id, number)
                    .await
                    .with_context(|| format!("{number} does not route to this account"))?;
            }
            for number in &set.add {
                store
                    .add_queue_number(account.id, queue.id, number, now)
                    .await?;
            }
            audit(store, &account, "queue.update", &queue, now).await?;
            let queue = store.queue(account.id, queue.id).await?;
            println!("queue {} updated: {}", queue.name, queue.numbers.join(", "));
        }
        QueueCommand::Assign(a) => {
            let (account, queue) = named(store, &a.account, &a.name).await?;
            let user = user(store, &account, &a.agent).await?;
            store
                .assign_queue_agent(account.id, queue.id, user, a.skill)
                .await?;
            audit(store, &account, "queue.assign_agents", &queue, now).await?;
            println!("{} answers {} with skill {}", a.agent, queue.name, a.skill);
        }
        QueueCommand::Unassign(a) => {
            let (account, queue) = named(store, &a.account, &a.name).await?;
            let user = user(store, &account, &a.agent).await?;
            store
                .unassign_queue_agent(account.id, queue.id, user)
                .await
                .with_context(|| format!("{} does not answer {}", a.agent, queue.name))?;
            audit(store, &account, "queue.assign_agents", &queue, now).await?;
            println!("{} no longer answers {}", a.agent, queue.name);
        }
        QueueCommand::Agents(n) => {
            let (account, queue) = named(store, &n.account, &n.name).await?;
            for m in store.queue_members(account.id, queue.id).await? {
                println!("{:<24} skill {}", m.username, m.skill);
            }
        }
        QueueCommand::Delete(n) => {
            let (account, queue) = named(store, &n.account, &n.name).await?;
            store.delete_queue(account.id, queue.id).await?;
            audit(store, &account, "queue.delete", &queue, now).await?;
            println!("queue {} deleted", queue.name);
        }
    }
    Ok(())
}

/// Applies the flags given to `s`.
fn apply(flags: &Settings, s: &mut QueueSettings) -> Result<()> {
    if let Some(hours) = &flags.hours {
        s.opening_hours = parse_hours(hours)?;
    }
    if let Some(zone) = &flags.time_zone {
        s.time_zone = zone.clone();
    }
    if let Some(p) = flags.priority {
        s.priority = p;
    }
    if let Some(w) = flags.max_wait {
        s.max_wait_secs = w;
    }
    if let Some(o) = &flags.overflow {
        s.overflow = Overflow::parse(o)?;
    }
    if let Some(level) = &flags.service_level {
        let (pct, secs) = level
            .split_once('/')
            .context("--service-level is PERCENT/SECONDS, such as 80/20")?;
        s.service_level_pct = pct
            .trim()
            .parse()
            .context("the percent of --service-level")?;
        s.service_level_secs = secs
            .trim()
            .parse()
            .context("the seconds of --service-level")?;
    }
    if let Some(r) = flags.record {
        s.record_calls = r;
    }
    let file = |v: &Option<String>, slot: &mut Option<String>| {
        if let Some(v) = v {
            *slot = Some(v.clone()).filter(|v| !v.trim().is_empty());
        }
    };
    file(&flags.welcome, &mut s.welcome_message);
    file(&flags.music, &mut s.hold_music);
    file(&flags.closed, &mut s.closed_message);
    file(&flags.voicemail, &mut s.voicemail_message);
    s.check()?;
    Ok(())
}

/// Reads opening hours: `mon-fri 09:00-17:30, sat 10:00-13:00`; days not
/// named are closed, `daily` names them all.
pub fn parse_hours(text: &str) -> Result<WeeklyHours> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut week: [Option<DayHours>; 7] = [None; 7];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (days, span) = part
            .split_once(char::is_whitespace)
            .with_context(|| format!("{part:?}: write DAYS HH:MM-HH:MM"))?;
        let (start, end) = span
            .trim()
            .split_once('-')
            .with_context(|| format!("{part:?}: the hours are HH:MM-HH:MM"))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .with_context(|| format!("{t:?} is not a time of day (HH:MM)"))
        };
        let hours = DayHours {
            start: time(start)?,
            end: time(end)?,
        };
        if hours.end <= hours.start {
            bail!("{part:?}: a day closes after it opens");
        }
        let day = |d: &str| {
            DAYS.iter()
                .position(|x| *x == d.to_ascii_lowercase())
                .with_context(|| format!("{d:?} is not a day (mon … sun)"))
        };
        let range = match days.to_ascii_lowercase().as_str() {
            "daily" => 0..=6,
            one if !one.contains('-') => {
                let d = day(one)?;
                d..=d
            }
            span => {
                let (a, b) = span.split_once('-').unwrap_or((span, span));
                let (a, b) = (day(a)?, day(b)?);
                if b < a {
                    bail!("{days:?}: a range of days runs forward (mon-fri)");
                }
                a..=b
            }
        };
        for d in range {
            week[d] = Some(hours);
        }
    }
    let [mon, tue, wed, thu, fri, sat, sun] = week;
    Ok(WeeklyHours {
        mon,
        tue,
        wed,
        thu,
        fri,
        sat,
        sun,
    })
}

async fn account(store: &Store, name: &str) -> Result<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("finding account {name:?}"))
}

async fn named(store: &Store, account_name: &str, name: &str) -> Result<(Account, Queue)> {
    let account = account(store, account_name).await?;
    let queue = store
        .queue_named(account.id, name)
        .await
        .with_context(|| format!("no queue named {name:?} in account {}", account.name))?;
    Ok((account, queue))
}

async fn user(store: &Store, account: &Account, username: &str) -> Result<crm::model::UserId> {
    store
        .users(account.id)
        .await?
        .into_iter()
        .find(|u| u.username == username)
        .map(|u| u.id)
        .with_context(|| format!("no user {username:?} in account {}", account.name))
}

async fn audit(
    store: &Store,
    account: &Account,
    action: &str,
    queue: &Queue,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let actor = Actor {
        account_id: Some(account.id),
        user_agent: Some("dialcrm cli".into()),
        ..Actor::default()
    };
    store
        .audit(&actor, action, Some(&format!("queue:{}", queue.id)), now)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_hours_read_as_written() {
        let week = parse_hours("mon-fri 09:00-17:30, sat 10:00-13:00").unwrap();
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        assert_eq!(week.mon.unwrap().start, nine);
        assert_eq!(
            week.fri.unwrap().end,
            NaiveTime::from_hms_opt(17, 30, 0).unwrap()
        );
        assert_eq!(
            week.sat.unwrap().start,
            NaiveTime::from_hms_opt(10, 0, 0).unwrap()
        );
        assert!(week.sun.is_none());
        let daily = parse_hours("daily 00:00-23:59").unwrap();
        assert!(daily.sun.is_some() && daily.wed.is_some());
        for bad in [
            "mon 9-5",
            "fri-mon 09:00-17:00",
            "funday 09:00-10:00",
            "mon 17:00-09:00",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
    }
}
