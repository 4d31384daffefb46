//! Sessions ended on any node close the sockets opened with them, on every
//! node.
//!
//! Ending sessions (a logout, a logout everywhere, a password change, a
//! deactivation) deletes their rows first, then publishes
//! [`Event::SessionsRevoked`]. On one node the bus carries it; with NATS the
//! shared stream brings it to every node. [`Revocations`] follows those
//! events and wakes the sockets of that user, each of which holds its login
//! session through a [`SessionHold`]: it asks the database whether its own
//! session is still live and closes if not. So a socket of a session that
//! survives (another browser after a plain logout, or a login made just
//! after) stays up, and an event seen twice or late is harmless.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crm::events::Event;
use crm::model::UserId;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::AppState;

/// The close code a socket gets when its login session has ended.
pub const CLOSE_SIGNED_OUT: u16 = 4001;

/// The close reason sent with [`CLOSE_SIGNED_OUT`].
pub const SIGNED_OUT_REASON: &str = "your session has ended; log in again";

/// The sockets open on this node, by user, to wake when sessions end.
#[derive(Debug, Default)]
pub struct Revocations {
    users: Mutex<HashMap<UserId, Watched>>,
}

#[derive(Debug)]
struct Watched {
    /// Bumped once per revocation; each socket's receiver sees the change.
    tx: watch::Sender<u64>,
    /// Sockets holding a receiver; the entry goes with the last.
    sockets: usize,
}

impl Revocations {
    /// Returns a watch that wakes when sessions of `user` end.
    pub fn watch(self: &Arc<Self>, user: UserId) -> RevocationWatch {
        let mut users = self.lock();
        let watched = users.entry(user).or_insert_with(|| Watched {
            tx: watch::channel(0).0,
            sockets: 0,
        });
        watched.sockets += 1;
        let mut rx = watched.tx.subscribe();
        rx.mark_unchanged();
        RevocationWatch {
            rx,
            user,
            owner: self.clone(),
        }
    }

    /// Wakes every socket of `user` on this node.
    pub fn revoked(&self, user: UserId) {
        if let Some(watched) = self.lock().get(&user) {
            watched.tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every socket on this node, when revocations may have been
    /// missed: each checks its session, and those that hold stay.
    pub fn recheck_all(&self) {
        for watched in self.lock().values() {
            watched.tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// How many users have sockets watched on this node.
    pub fn users(&self) -> usize {
        self.lock().len()
    }

    /// Wakes the sockets of the users whose sessions the events say ended,
    /// until the events stop.
    pub async fn follow(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<Event>>) {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Event::SessionsRevoked { user_id, .. } = &*event {
                        self.revoked(*user_id);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "revocations may have been missed; every socket checks its session"
                    );
                    self.recheck_all();
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Watched>> {
        // Plain data: a panic elsewhere leaves it usable.
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One socket's wake-up when its user's sessions end; dropping it stops
/// watching.
#[derive(Debug)]
pub struct RevocationWatch {
    rx: watch::Receiver<u64>,
    user: UserId,
    owner: Arc<Revocations>,
}

impl RevocationWatch {
    /// Waits for the next revocation of the user's sessions. Cancel-safe.
    pub async fn changed(&mut self) {
        // The sender lives while any watch of the user does, this one too.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for RevocationWatch {
    fn drop(&mut self) {
        let mut users = self.owner.lock();
        if let Some(watched) = users.get_mut(&self.user) {
            watched.sockets = watched.sockets.saturating_sub(1);
            if watched.sockets == 0 {
                users.remove(&self.user);
            }
        }
    }
}

/// A socket's hold on the login session it was opened with.
pub struct SessionHold {
    state: AppState,
    token_hash: String,
    watch: RevocationWatch,
    /// A revocation was seen and its check not finished (it was cancelled).
    pending: bool,
    /// When the session expires, as last read; `None` until read.
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

/// How soon a socket whose database did not answer asks again when its
/// session expires.
const EXPIRY_RETRY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl SessionHold {
    /// Holds the session `token_hash` of `user`.
    pub fn new(state: &AppState, user: UserId, token_hash: String) -> Self {
        SessionHold {
            watch: state.revocations.watch(user),
            state: state.clone(),
            token_hash,
            pending: false,
            expires: None,
        }
    }

    /// Waits until the session has ended on any node, or expired. Cancel-
    /// safe: a revocation seen while the check was cancelled is checked
    /// next time. The expiry is read once (and again when it comes, as a
    /// session may have been extended), so an open socket costs no query
    /// while nothing happens.
    pub async fn ended(&mut self) {
        loop {
            if !self.pending {
                let expires = match self.expires {
                    Some(at) => at,
                    None => {
                        let now = self.state.clock.now();
                        let at = match self.state.store.session(&self.token_hash, now).await {
                            Ok(Some(s)) => s.expires_at,
                            // Gone already: ended.
                            Ok(None) => return,
                            Err(_) => now + EXPIRY_RETRY,
                        };
                        self.expires = Some(at);
                        at
                    }
                };
                let wait = (expires - self.state.clock.now())
                    .to_std()
                    .unwrap_or(std::time::Duration::ZERO);
                tokio::select! {
                    () = self.watch.changed() => {}
                    () = tokio::time::sleep(wait) => self.expires = None,
                }
                self.pending = true;
            }
            let live = self.live().await;
            self.pending = false;
            if !live {
                return;
            }
        }
    }

    /// Whether the session is still live; a database that does not answer
    /// keeps the socket up.
    pub async fn live(&self) -> bool {
        let now = self.state.clock.now();
        !matches!(
            self.state.store.session(&self.token_hash, now).await,
            Ok(None)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn woken(w: &mut RevocationWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(50), w.changed())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_users_sockets_wake_and_each_does() {
        let r = Arc::new(Revocations::default());
        let mut a1 = r.watch(UserId(1));
        let mut a2 = r.watch(UserId(1));
        let mut b = r.watch(UserId(2));
        assert!(!woken(&mut a1).await, "nothing revoked yet");
        r.revoked(UserId(1));
        assert!(woken(&mut a1).await);
        assert!(woken(&mut a2).await);
        assert!(!woken(&mut b).await, "another user's socket sleeps on");
        r.revoked(UserId(9));
        assert!(!woken(&mut a1).await, "a user with no socket here");
        r.recheck_all();
        assert!(woken(&mut a1).await && woken(&mut b).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_socket_of_a_user_takes_its_entry_away() {
        let r = Arc::new(Revocations::default());
        let a1 = r.watch(UserId(1));
        let a2 = r.watch(UserId(1));
        let _b = r.watch(UserId(2));
        assert_eq!(r.users(), 2);
        drop(a1);
        assert_eq!(r.users(), 2, "one socket of the user is left");
        drop(a2);
        assert_eq!(r.users(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn revocations_on_the_bus_wake_the_users_sockets() {
        let r = Arc::new(Revocations::default());
        let bus = crm::events::EventBus::new(16);
        tokio::spawn(r.clone().follow(bus.subscribe()));
        let mut w = r.watch(UserId(4));
        bus.publish(Event::Alert {
            account: crm::model::AccountId(1),
            alert: "login.failures".into(),
            message: "not a revocation".into(),
            at: chrono::Utc::now(),
        });
        assert!(!woken(&mut w).await);
        bus.publish(Event::SessionsRevoked {
            account: crm::model::AccountId(1),
            user_id: UserId(4),
            at: chrono::Utc::now(),
        });
        assert!(woken(&mut w).await);
    }
}
