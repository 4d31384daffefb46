//! Agents' SIP desk phones: the gateway checks a registering phone against
//! the SIP credentials in the Store (digest hashes only), and `dialcrm
//! phone …` sets, lists and removes them.

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use crm::model::{Account, Actor};
use crm::store::login_failures::{FailureKey, LoginSecret};
use crm::Store;
use sip_gateway::gateway::{
    DirectoryError, Lookup, PhoneDirectory, PhoneOptions, StoredCredentials,
};

use crate::settings::PhoneSettings;

/// Failed registrations of one SIP username, within [`FAILURE_WINDOW`],
/// after which it is refused on every node.
const USERNAME_FAILURES: u32 = 5;

/// Failed registrations from one address, within [`FAILURE_WINDOW`].
const ADDRESS_FAILURES: u32 = 20;

/// How long a failed registration counts.
const FAILURE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// The Store as the gateway's directory of desk phones. Failed
/// registrations are counted in the database (`login_failures`, by keyed
/// hash of the username or address, apart from web logins), so every node
/// refuses a phone another node throttled, and a restart forgets nothing.
struct CrmPhones {
    store: Store,
    realm: String,
    secret: LoginSecret,
}

impl CrmPhones {
    fn keys(&self, sip_username: &str, source: IpAddr) -> [FailureKey; 2] {
        [
            self.secret.sip_username(sip_username),
            self.secret.sip_address(&source.to_string()),
        ]
    }
}

impl PhoneDirectory for CrmPhones {
    fn credentials(&self, sip_username: &str, source: IpAddr) -> Lookup {
        let (store, username, realm) = (
            self.store.clone(),
            sip_username.to_owned(),
            self.realm.clone(),
        );
        let [user_key, address_key] = self.keys(sip_username, source);
        Box::pin(async move {
            let since = chrono::Utc::now() - FAILURE_WINDOW;
            let mut over = false;
            for (key, limit) in [
                (&user_key, USERNAME_FAILURES),
                (&address_key, ADDRESS_FAILURES),
            ] {
                match store.login_failures(&[key]).await {
                    Ok(counted) => {
                        over |= counted.iter().any(|f| f.last >= since && f.count >= limit);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a desk phone's failed registrations failed");
                        return Err(DirectoryError::Unavailable);
                    }
                }
            }
            if over {
                tracing::info!("a desk phone's registration refused: too many failures");
                return Err(DirectoryError::Throttled);
            }
            match store.sip_credential(&username).await {
                // A credential set for another realm cannot be checked: as unknown.
                Ok(Some(c)) if c.realm == realm => Ok(Some(StoredCredentials {
                    realm: c.realm,
                    ha1_md5: c.ha1_md5,
                    ha1_sha256: c.ha1_sha256,
                })),
                Ok(_) => Ok(None),
                Err(e) => {
                    // A database that does not answer must not count as a
                    // wrong password: the phone is told to try again.
                    tracing::warn!(error = %e, "looking up a desk phone failed");
                    Err(DirectoryError::Unavailable)
                }
            }
        })
    }

    fn failed(&self, sip_username: &str, source: IpAddr) {
        let store = self.store.clone();
        let [user_key, address_key] = self.keys(sip_username, source);
        // Counted off the gateway's task, which must not wait on the database.
        tokio::spawn(async move {
            let now = chrono::Utc::now();
            if let Err(e) = store
                .record_login_failure(&[&user_key, &address_key], now, now - FAILURE_WINDOW)
                .await
            {
                tracing::warn!(error = %e, "counting a desk phone's failed registration failed");
            }
        });
    }
}

/// The gateway's desk-phone options over the Store: the realm, the nonce
/// secret every node shares, and the Store as the directory.
pub async fn options(store: &Store, settings: &PhoneSettings) -> Result<PhoneOptions> {
    let secret = store
        .sip_nonce_secret(chrono::Utc::now())
        .await
        .context("reading the desk phones' nonce secret")?;
    let failures = store
        .login_secret(chrono::Utc::now())
        .await
        .context("reading the secret failed registrations are counted under")?;
    let directory = Arc::new(CrmPhones {
        store: store.clone(),
        realm: settings.realm.clone(),
        secret: failures,
    });
    let mut options = PhoneOptions::new(&settings.realm, secret.as_bytes(), directory)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    options.registrar.md5_only = !settings.sha256;
    Ok(options)
}

/// `phone …`
#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// Gives a user a SIP desk phone credential, or a new password: a
    /// strong one is made and printed once unless --password-stdin.
    Set(Set),
    /// Lists an account's users with a desk phone credential.
    List(Which),
    /// Removes a user's desk phone credential; their phone can no longer register.
    Remove(Who),
}

/// The account.
#[derive(Debug, Args)]
pub struct Which {
    /// The account's name.
    #[arg(long)]
    pub account: String,
}

/// One user.
#[derive(Debug, Args)]
pub struct Who {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The user's username.
    #[arg(long)]
    pub user: String,
}

/// Flags of `phone set`.
#[derive(Debug, Args)]
pub struct Set {
    /// The account's name.
    #[arg(long)]
    pub account: String,
    /// The user's username.
    #[arg(long)]
    pub user: String,
    /// The username the phone authenticates with; the user's by default.
    #[arg(long)]
    pub sip_username: Option<String>,
    /// Read the SIP password from standard input instead of making one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs a desk phone command.
pub async fn run(store: &Store, settings: &PhoneSettings, command: PhoneCommand) -> Result<()> {
    let now = chrono::Utc::now();
    match command {
        PhoneCommand::Set(set) => {
            let account = account(store, &set.account).await?;
            let user = user(store, &account, &set.user).await?;
            let (password, made) = if set.password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading the SIP password from standard input")?;
                (text.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                // 80 random bits, in characters a desk phone's keypad can take.
                (crm::privacy::new_account_key()[..20].to_owned(), true)
            };
            let phone = store
                .set_sip_password(
                    &actor(&account),
                    user,
                    set.sip_username.as_deref(),
                    &settings.realm,
                    &password,
                    now,
                )
                .await?;
            println!(
                "{} registers as {} in realm {}",
                phone.username, phone.sip_username, phone.realm
            );
            if made {
                println!("SIP password (shown once, kept only as digest hashes): {password}");
            }
        }
        PhoneCommand::List(w) => {
            let account = account(store, &w.account).await?;
            println!(
                "{:<24} {:<24} {:<10} updated",
                "user", "SIP username", "active"
            );
            for p in store.desk_phones(account.id).await? {
                println!(
                    "{:<24} {:<24} {:<10} {}",
                    p.username,
                    p.sip_username,
                    p.active,
                    p.updated_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        PhoneCommand::Remove(who) => {
            let account = account(store, &who.account).await?;
            let user = user(store, &account, &who.user).await?;
            store
                .remove_sip_credential(&actor(&account), user, now)
                .await
                .with_context(|| format!("{} has no desk phone credential", who.user))?;
            println!(
                "{} can no longer register a desk phone (a running service drops its binding \
                 when the registration expires)",
                who.user
            );
        }
    }
    Ok(())
}

fn actor(account: &Account) -> Actor {
    Actor {
        account_id: Some(account.id),
        user_agent: Some("dialcrm cli".into()),
        ..Actor::default()
    }
}

async fn account(store: &Store, name: &str) -> Result<Account> {
    store
        .account_by_name(name)
        .await
        .with_context(|| format!("finding account {name:?}"))
}

async fn user(store: &Store, account: &Account, username: &str) -> Result<crm::model::UserId> {
    let found = store
        .users(account.id)
        .await?
        .into_iter()
        .find(|u| u.username == username);
    match found {
        Some(u) => Ok(u.id),
        None => bail!("no user {username:?} in account {}", account.name),
    }
}
