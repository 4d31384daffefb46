//! The operator's command line.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use crm::model::Role;

use crate::{redact_url, App, Overrides, Settings};

/// dialcrm: an open contact-centre dialler and telephony CRM.
#[derive(Debug, Parser)]
#[command(name = "dialcrm", version, about)]
pub struct Cli {
    /// A TOML config file; flags and DIALCRM_… variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The database URL: sqlite://FILE (created if absent) or postgres://…
    #[arg(
        long,
        global = true,
        env = "DIALCRM_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the service.
    Serve(ServeArgs),
    /// Applies the database migrations and exits.
    Migrate,
    /// Checks the installation: configuration, database, recordings
    /// folder, ports, advertised address and trunks; exits 1 on a failure.
    Doctor,
    /// Writes a consistent copy of a SQLite database to FILE while the
    /// service runs (PostgreSQL: use pg_dump).
    Backup {
        /// The new file to write.
        file: PathBuf,
    },
    /// Manages accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manages users.
    #[command(subcommand)]
    User(UserCommand),
    /// Imports a CSV file into a call list.
    Import(crate::lists_cli::ImportArgs),
    /// Writes a call list as CSV.
    Export(crate::lists_cli::ExportArgs),
    /// Finds and edits contacts.
    #[command(subcommand)]
    Contact(crate::contacts_cli::ContactCommand),
    /// Manages campaigns.
    #[command(subcommand)]
    Campaign(crate::campaigns_cli::CampaignCommand),
    /// Manages an account's do-not-call list.
    #[command(subcommand)]
    Dnc(crate::dnc_cli::DncCommand),
    /// Manages inbound queues: numbers, settings, agents and skills.
    #[command(subcommand)]
    Queue(crate::queues_cli::QueueCommand),
    /// Manages agents' SIP desk phone credentials.
    #[command(subcommand)]
    Phone(crate::phones::PhoneCommand),
    /// Places one call through a trunk and prints what happens.
    Dial(crate::telephony::DialArgs),
    /// Runs the simulated carrier: a SIP endpoint that answers, rings out,
    /// returns busy or acts as an answering machine.
    Carrier(crate::telephony::CarrierArgs),
    /// Runs the dialler's pacer against a simulated shift and prints what
    /// a campaign would do: utilisation, abandons, dials, talk time.
    Simulate(crate::simulate_cli::SimulateArgs),
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the HTTP server listens.
    #[arg(long, env = "DIALCRM_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Do not create the demo account on an empty database.
    #[arg(long)]
    pub no_demo: bool,
    /// Serve HTTPS with this PEM certificate chain (leaf first).
    #[arg(
        long,
        env = "DIALCRM_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "DIALCRM_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate from a local authority made once and
    /// kept beside the database (for a LAN or a trial).
    #[arg(long)]
    pub tls_self_signed: bool,
    /// A name agents use to reach the service (repeatable): added to the
    /// self-signed certificate, checked against a provided one.
    #[arg(long = "tls-name", value_name = "NAME")]
    pub tls_names: Vec<String>,
    /// Serve HTTPS with a certificate from an ACME authority (Let's
    /// Encrypt by default) for this public name (repeatable).
    #[arg(long = "acme-domain", value_name = "NAME")]
    pub acme_domains: Vec<String>,
    /// The contact the ACME authority writes to about the certificate.
    #[arg(long, env = "DIALCRM_ACME_EMAIL", value_name = "ADDRESS")]
    pub acme_email: Option<String>,
    /// Where the ACME account and certificate are kept.
    #[arg(long, value_name = "DIR")]
    pub acme_cache: Option<PathBuf>,
    /// The ACME directory URL (default: Let's Encrypt).
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// The root certificate of a private ACME authority's own HTTPS.
    #[arg(long, value_name = "FILE")]
    pub acme_ca_root: Option<PathBuf>,
    /// A plain-HTTP address that only redirects to HTTPS (e.g. 0.0.0.0:80).
    #[arg(long, env = "DIALCRM_HTTP_REDIRECT_ADDR", value_name = "ADDR")]
    pub http_redirect_addr: Option<SocketAddr>,
    /// Runs the event bus on NATS (with JetStream), shared by every node
    /// given the same URL, e.g. nats://10.0.0.5:4222; needs PostgreSQL.
    #[arg(
        long,
        env = "DIALCRM_NATS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub nats_url: Option<String>,
}

/// `account …`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Creates an account.
    Create {
        /// The account's unique name.
        name: String,
        /// How many agents may be logged in at once.
        #[arg(long)]
        seats: i64,
    },
}

/// `user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user; the password is read from standard input or
    /// DIALCRM_PASSWORD.
    Add {
        /// The account's name.
        #[arg(long)]
        account: String,
        /// The login name.
        #[arg(long)]
        username: String,
        /// agent, supervisor or admin.
        #[arg(long)]
        role: Role,
    },
    /// Lists an account's users.
    List {
        /// The account's name.
        #[arg(long)]
        account: String,
    },
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let mut overrides = Overrides {
        database_url: cli.database_url.clone(),
        ..Overrides::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.http_addr = args.http_addr;
        overrides.no_demo = args.no_demo;
        overrides.nats_url = args.nats_url.clone();
        overrides.tls = crate::settings::TlsOverrides {
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
            self_signed: args.tls_self_signed,
            names: args.tls_names.clone(),
            acme_domains: args.acme_domains.clone(),
            acme_email: args.acme_email.clone(),
            acme_cache: args.acme_cache.clone(),
            acme_directory: args.acme_directory.clone(),
            acme_ca_root: args.acme_ca_root.clone(),
            redirect_addr: args.http_redirect_addr,
        };
    }
    if let Command::Simulate(args) = &cli.command {
        if args.campaign.is_none() {
            // Needs neither the database nor a config file.
            return crate::simulate_cli::run(args);
        }
    }
    if let Command::Doctor = cli.command {
        // Doctor reports a configuration that does not load as a failure.
        if crate::doctor::run(cli.config.as_deref(), &overrides).await {
            return Ok(());
        }
        bail!("the installation needs attention (see the FAIL lines above)");
    }
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Doctor => Ok(()),
        Command::Serve(_) => serve(&settings).await,
        Command::Dial(args) => crate::telephony::dial(&settings, args).await,
        Command::Campaign(c) => {
            crate::campaigns_cli::run(&open_migrated(&settings).await?, c).await
        }
        Command::Carrier(args) => crate::telephony::carrier(args).await,
        Command::Simulate(mut args) => {
            let store = open_migrated(&settings).await?;
            crate::simulate_cli::from_history(&store, &mut args).await?;
            crate::simulate_cli::run(&args)
        }
        Command::Dnc(c) => crate::dnc_cli::run(&open_migrated(&settings).await?, c).await,
        Command::Queue(c) => crate::queues_cli::run(&open_migrated(&settings).await?, c).await,
        Command::Phone(c) => {
            crate::phones::run(&open_migrated(&settings).await?, &settings.phones, c).await
        }
        Command::Backup { file } => {
            let store = open(&settings).await?;
            let started = std::time::Instant::now();
            store
                .backup_to(&file)
                .await
                .with_context(|| format!("backing up to {}", file.display()))?;
            println!(
                "backed up {} to {} in {:.1} s",
                redact_url(settings.database_url.expose()),
                file.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Migrate => {
            let store = open(&settings).await?;
            store
                .migrate()
                .await
                .context("applying database migrations")?;
            println!(
                "migrations applied to {}",
                redact_url(settings.database_url.expose())
            );
            Ok(())
        }
        Command::Account(AccountCommand::Create { name, seats }) => {
            let store = open_migrated(&settings).await?;
            let a = store
                .create_account(&name, seats, chrono::Utc::now())
                .await?;
            println!(
                "account {} created with {} seats (id {})",
                a.name, a.seats, a.id
            );
            Ok(())
        }
        Command::User(UserCommand::Add {
            account,
            username,
            role,
        }) => {
            let password = read_password()?;
            crm::password::check_policy(&password).map_err(anyhow::Error::msg)?;
            let store = open_migrated(&settings).await?;
            let acc = store
                .account_by_name(&account)
                .await
                .with_context(|| format!("finding account {account:?}"))?;
            let hash = crm::password::hash(&password)?;
            let u = store
                .create_user(acc.id, &username, &hash, role, chrono::Utc::now())
                .await?;
            println!("user {} ({}) added to {}", u.username, u.role, acc.name);
            Ok(())
        }
        Command::Import(args) => {
            crate::lists_cli::import(&open_migrated(&settings).await?, args).await
        }
        Command::Export(args) => {
            crate::lists_cli::export(&open_migrated(&settings).await?, args).await
        }
        Command::Contact(c) => crate::contacts_cli::run(&open_migrated(&settings).await?, c).await,
        Command::User(UserCommand::List { account }) => {
            let store = open_migrated(&settings).await?;
            let acc = store
                .account_by_name(&account)
                .await
                .with_context(|| format!("finding account {account:?}"))?;
            println!("{:<24} {:<11} active", "username", "role");
            for u in store.users(acc.id).await? {
                let active = if u.active { "yes" } else { "no" };
                println!("{:<24} {:<11} {active}", u.username, u.role.as_str());
            }
            Ok(())
        }
    }
}

async fn serve(settings: &Settings) -> Result<()> {
    let app = App::start(settings).await?;
    let base = app.base_url();
    println!("dialcrm is listening on {base}");
    for note in &app.tls_notes {
        println!("  {note}");
    }
    if let Some(addr) = app.redirect_addr {
        println!("  plain HTTP on {addr} redirects to HTTPS");
    }
    println!("  log in:     {base}/login");
    println!("  health:     {base}/healthz");
    println!("  metrics:    {base}/metrics");
    if let Some(demo) = &app.demo {
        println!(
            "Demo account {:?} created with a campaign and {} contacts.",
            demo.account.name, demo.contacts
        );
        println!("These passwords are shown only this once:");
        for l in &demo.logins {
            println!("  {:<12} {:<18} {}", l.username, l.password, l.role);
        }
    }
    shutdown_signal().await;
    drain(&app, settings.drain_timeout).await;
    tracing::info!("shutting down");
    app.stop().await?;
    println!("dialcrm stopped");
    Ok(())
}

/// Places no new call and waits for the calls in progress and their
/// wrap-ups to end, for at most `timeout`; a second signal ends it at once.
async fn drain(app: &App, timeout: std::time::Duration) {
    app.drain().await;
    tracing::info!(
        timeout_secs = timeout.as_secs(),
        "draining: no new calls; calls in progress continue (signal again to stop at once)"
    );
    let idle = async {
        while !app.is_idle().await {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        _ = idle => tracing::info!("drained: no call in progress"),
        _ = tokio::time::sleep(timeout) => {
            tracing::warn!("drain timeout: stopping with calls in progress");
        }
        _ = shutdown_signal() => tracing::warn!("stopping at once: calls in progress are cut"),
    }
}

async fn open(settings: &Settings) -> Result<crm::Store> {
    let url = settings.database_url.expose();
    crm::Store::connect(url)
        .await
        .with_context(|| format!("opening the database ({})", redact_url(url)))
}

async fn open_migrated(settings: &Settings) -> Result<crm::Store> {
    let store = open(settings).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    Ok(store)
}

fn read_password() -> Result<String> {
    if let Ok(pw) = std::env::var("DIALCRM_PASSWORD") {
        return Ok(pw);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        bail!("no password given: pipe it on standard input or set DIALCRM_PASSWORD");
    }
    Ok(pw)
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
