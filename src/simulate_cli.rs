//! `dialcrm simulate`: the operator's what-if. It runs the dialler's own
//! pacer and abandon ledger against a simulated population on a virtual
//! clock (answer, machine and busy rates, log-normal talk times, a fixed
//! wrap-up) and prints what the campaign would have done: utilisation,
//! abandon rate, live answers, dials and talk minutes per agent-hour. The
//! same seed gives the same figures. With `--campaign`, the answer, machine
//! and busy rates and the mean talk time come from that campaign's last 30
//! days of calls instead.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use crm::store::compliance::HISTORY_DAYS;
use dialer_core::pacer::Mode;
use dialer_core::simulation::{simulate, SimConfig, SimReport};
use serde::Serialize;

/// Flags of `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Agents logged in for the whole run (1 to 1,000).
    #[arg(long, default_value_t = 25)]
    pub agents: u64,
    /// Share of dials a person answers (0 to 1).
    #[arg(long, default_value_t = 0.25)]
    pub answer_rate: f64,
    /// Share of dials a machine answers (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub machine_rate: f64,
    /// Share of dials that are busy (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub busy_rate: f64,
    /// Mean talk time of a connected call, in seconds (log-normal).
    #[arg(long, default_value_t = 90.0, value_name = "SECS")]
    pub talk_mean: f64,
    /// Wrap-up after each call, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub wrap: f64,
    /// How long an unanswered call rings, in seconds.
    #[arg(long, default_value_t = 20.0, value_name = "SECS")]
    pub ring_timeout: f64,
    /// Length of the shift simulated, in hours (at most a week).
    #[arg(long, default_value_t = 8.0)]
    pub hours: f64,
    /// Seed of the random source: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `predictive` or `progressive` (preview is paced by the agents).
    #[arg(long, default_value = "predictive")]
    pub mode: String,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Take the rates and the mean talk time from this campaign's last 30
    /// days of calls (with --account).
    #[arg(long, requires = "account")]
    pub campaign: Option<String>,
    /// The account of --campaign.
    #[arg(long, requires = "campaign")]
    pub account: Option<String>,
}

/// What `simulate` prints, under these names in JSON.
#[derive(Debug, Serialize)]
struct Figures {
    mode: &'static str,
    agents: u64,
    hours: f64,
    utilisation: f64,
    abandon_rate: f64,
    live_answers: u64,
    abandons: u64,
    dials: u64,
    talk_minutes_per_agent_hour: f64,
}

/// Checks the flags and turns them into a simulation's parameters.
pub fn config(args: &SimulateArgs) -> Result<SimConfig> {
    let mode = match args.mode.to_ascii_lowercase().as_str() {
        "predictive" => Mode::Predictive,
        "progressive" => Mode::Progressive,
        "preview" => bail!(
            "--mode preview cannot be simulated: agents pace preview calls themselves \
             (use progressive or predictive)"
        ),
        other => bail!("--mode {other:?} is not a dialling mode: use predictive or progressive"),
    };
    if !(1..=1000).contains(&args.agents) {
        bail!("--agents must be between 1 and 1000, not {}", args.agents);
    }
    for (flag, rate) in [
        ("--answer-rate", args.answer_rate),
        ("--machine-rate", args.machine_rate),
        ("--busy-rate", args.busy_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            bail!("{flag} must be a share between 0 and 1, not {rate}");
        }
    }
    let answered = args.answer_rate + args.machine_rate + args.busy_rate;
    if answered > 1.0 {
        bail!(
            "--answer-rate, --machine-rate and --busy-rate add up to {answered}: \
             they are shares of the same dials and must not exceed 1"
        );
    }
    if args.answer_rate <= 0.0 {
        bail!("--answer-rate must be above 0: nobody would ever be reached");
    }
    let seconds = |flag: &str, v: f64, min: f64, max: f64| -> Result<Duration> {
        if !(min..=max).contains(&v) {
            bail!("{flag} must be between {min} and {max} seconds, not {v}");
        }
        Ok(Duration::from_secs_f64(v))
    };
    let talk_mean = seconds("--talk-mean", args.talk_mean, 1.0, 3600.0)?;
    let wrap = seconds("--wrap", args.wrap, 0.0, 3600.0)?;
    let ring_timeout = seconds("--ring-timeout", args.ring_timeout, 5.0, 120.0)?;
    if !(args.hours > 0.0 && args.hours <= 168.0) {
        bail!(
            "--hours must be above 0 and at most 168, not {}",
            args.hours
        );
    }
    Ok(SimConfig {
        mode,
        agents: args.agents,
        answer_rate: args.answer_rate,
        machine_rate: args.machine_rate,
        busy_rate: args.busy_rate,
        talk_mean,
        wrap,
        ring_timeout,
        duration: Duration::from_secs_f64(args.hours * 3600.0),
        seed: args.seed,
    })
}

/// Replaces the rates and the mean talk time of `args` by those of the
/// campaign's history, saying so on standard error.
pub async fn from_history(store: &crm::Store, args: &mut SimulateArgs) -> Result<()> {
    let (Some(account), Some(campaign)) = (&args.account, &args.campaign) else {
        return Ok(());
    };
    let account = store
        .account_by_name(account)
        .await
        .with_context(|| format!("finding account {account:?}"))?;
    let found = store
        .campaigns(account.id)
        .await?
        .into_iter()
        .find(|c| &c.name == campaign)
        .with_context(|| format!("no campaign named {campaign:?} in account {}", account.name))?;
    let since = chrono::Utc::now() - chrono::TimeDelta::days(HISTORY_DAYS);
    let h = store.campaign_history(account.id, found.id, since).await?;
    let Some(rates) = h.rates() else {
        bail!(
            "campaign {campaign:?} has {} finished calls and {} live answers in the last {} days: \
             too few to go by; give --answer-rate and --talk-mean instead",
            h.dials,
            h.live,
            HISTORY_DAYS
        );
    };
    args.answer_rate = rates.answer;
    args.machine_rate = rates.machine;
    args.busy_rate = rates.busy;
    if let Some(talk) = h.talk_mean_secs {
        args.talk_mean = talk.max(1.0);
    }
    eprintln!(
        "from campaign {campaign:?}, last {HISTORY_DAYS} days: {} calls; answer rate {:.3}, \
         machine rate {:.3}, busy rate {:.3}, mean talk {:.0} s",
        h.dials, args.answer_rate, args.machine_rate, args.busy_rate, args.talk_mean
    );
    Ok(())
}

/// Runs `dialcrm simulate` with the flags as given (after
/// [`from_history`], when a campaign is named).
pub fn run(args: &SimulateArgs) -> Result<()> {
    let config = config(args)?;
    let report: SimReport = simulate(&config);
    let figures = Figures {
        mode: match config.mode {
            Mode::Predictive => "predictive",
            Mode::Progressive => "progressive",
            Mode::Preview => "preview",
        },
        agents: config.agents,
        hours: args.hours,
        utilisation: report.utilisation,
        abandon_rate: report.abandon_rate,
        live_answers: report.live,
        abandons: report.abandons,
        dials: report.dials,
        talk_minutes_per_agent_hour: report.talk_minutes_per_agent_hour,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
        return Ok(());
    }
    println!(
        "{} dialling, {} agents, {} hours (seed {}):",
        figures.mode, figures.agents, figures.hours, args.seed
    );
    println!("  utilisation                  {:.3}", figures.utilisation);
    println!(
        "  abandon rate                 {:.2} % ({} of {} live answers)",
        figures.abandon_rate * 100.0,
        figures.abandons,
        figures.live_answers
    );
    println!("  dials                        {}", figures.dials);
    println!(
        "  talk minutes per agent-hour  {:.1}",
        figures.talk_minutes_per_agent_hour
    );
    Ok(())
}
