//! The nodes serving one database, and the fencing token their lead writes
//! carry.
//!
//! A node joins at start and takes a new epoch; it beats its heart every
//! few seconds. When a node's heart has been silent longer than the
//! timeout, a surviving node declares it down, which also raises its epoch,
//! and closes what it left open ([`Store::recover_node`]). Every lease a
//! node takes is stamped with the epoch it holds, and every write it makes
//! on a lead requires that stamp: a node declared dead that wakes up (a
//! paused VM, a network partition) or an old process replaced by a new one
//! under the same name cannot land a late write after another took over.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{on_pool, Backend, Store};
use crate::StoreError;

/// Who holds a lead lease: a node's name and the epoch it joined with.
///
/// A holder made from a bare name has epoch 0: it may lease only while no
/// node of that name has joined (tools and tests that run no membership).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    name: Arc<str>,
    epoch: i64,
}

impl Holder {
    /// A holder with a known epoch.
    pub fn new(name: &str, epoch: i64) -> Self {
        Holder {
            name: name.into(),
            epoch,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The epoch the node joined with.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }
}

impl From<&str> for Holder {
    fn from(name: &str) -> Self {
        Holder::new(name, 0)
    }
}

impl From<&String> for Holder {
    fn from(name: &String) -> Self {
        Holder::new(name, 0)
    }
}

impl From<&Holder> for Holder {
    fn from(holder: &Holder) -> Self {
        holder.clone()
    }
}

/// A node as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    /// Its name.
    pub name: String,
    /// Its current epoch.
    pub epoch: i64,
    /// `up`, `down` (declared dead by a survivor) or `left` (stopped cleanly).
    pub state: String,
    /// When it last joined.
    pub started_at: DateTime<Utc>,
    /// When its heart last beat.
    pub seen_at: DateTime<Utc>,
    /// When it was declared down.
    pub down_at: Option<DateTime<Utc>>,
    /// When what it left open was closed.
    pub recovered_at: Option<DateTime<Utc>>,
    /// The node that closed it.
    pub recovered_by: Option<String>,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The node is still the member it joined as; its leases were renewed.
    Alive {
        /// How many leases were renewed.
        renewed: u64,
    },
    /// The node was declared dead, or another process joined under its
    /// name: it must stop dialling and join again.
    Fenced,
}

impl Store {
    /// Joins `name` to the service with a new epoch, fencing any earlier
    /// process of that name, and returns the holder its leases carry.
    ///
    /// Returns also whether a process of that name looked alive (its heart
    /// beat within `timeout`): two nodes configured with one name.
    pub async fn join_node(
        &self,
        name: &str,
        now: DateTime<Utc>,
        timeout: TimeDelta,
    ) -> Result<(Holder, bool), StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("a node needs a name".into()));
        }
        let before: Option<NodeRow> = self.node(name).await?;
        let clash = before
            .as_ref()
            .is_some_and(|n| n.state == "up" && now - n.seen_at < timeout);
        let epoch: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO nodes (name, epoch, state, started_at, seen_at) \
             VALUES ($1, 1, 'up', $2, $2) \
             ON CONFLICT (name) DO UPDATE SET epoch = nodes.epoch + 1, state = 'up', \
             started_at = $2, seen_at = $2, down_at = NULL, recovered_at = NULL, \
             recovered_by = NULL \
             RETURNING epoch"
        )
        .bind(name)
        .bind(now)
        .fetch_one(pool)
        .await?);
        Ok((Holder::new(name, epoch), clash))
    }

    /// Beats `holder`'s heart and renews its leases to `now + lease`, or
    /// tells it that it was fenced.
    pub async fn beat(
        &self,
        holder: &Holder,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Beat, StoreError> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE nodes SET seen_at = $1 WHERE name = $2 AND epoch = $3 AND state = 'up'"
        )
        .bind(now)
        .bind(holder.name())
        .bind(holder.epoch())
        .execute(pool)
        .await?
        .rows_affected());
        if n == 0 {
            return Ok(Beat::Fenced);
        }
        let renewed = self.renew_leases(holder, now, lease).await?;
        Ok(Beat::Alive { renewed })
    }

    /// Marks `holder` as stopped cleanly: nobody will recover it.
    pub async fn leave_node(&self, holder: &Holder, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE nodes SET state = 'left', seen_at = $1 \
             WHERE name = $2 AND epoch = $3 AND state = 'up'"
        )
        .bind(now)
        .bind(holder.name())
        .bind(holder.epoch())
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Declares down every node but `survivor` whose heart has been silent
    /// since before `now - timeout`, raising its epoch (so its late writes
    /// fail), and returns the nodes `survivor` must now recover: those it
    /// declared, and those declared earlier whose recovery never finished
    /// (the survivor that declared them died too).
    ///
    /// Of several survivors racing, each node is declared by one.
    pub async fn declare_dead(
        &self,
        survivor: &Holder,
        now: DateTime<Utc>,
        timeout: TimeDelta,
    ) -> Result<Vec<String>, StoreError> {
        let cutoff = now - timeout;
        let mut dead: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "UPDATE nodes SET state = 'down', epoch = epoch + 1, down_at = $1, \
             recovered_by = $2 \
             WHERE state = 'up' AND seen_at < $3 AND name <> $2 RETURNING name"
        )
        .bind(now)
        .bind(survivor.name())
        .bind(cutoff)
        .fetch_all(pool)
        .await?);
        // A recovery left unfinished for a whole timeout is taken over.
        let orphaned: Vec<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "UPDATE nodes SET down_at = $1, recovered_by = $2 \
             WHERE state = 'down' AND recovered_at IS NULL AND down_at < $3 \
             AND name <> $2 RETURNING name"
        )
        .bind(now)
        .bind(survivor.name())
        .bind(cutoff)
        .fetch_all(pool)
        .await?);
        dead.extend(orphaned);
        dead.sort();
        dead.dedup();
        Ok(dead)
    }

    /// Records that what the node `name` left open was closed.
    pub async fn node_recovered(&self, name: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE nodes SET recovered_at = $1 WHERE name = $2 AND state = 'down'"
        )
        .bind(now)
        .bind(name)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Returns whether `holder` is still the member it joined as.
    pub async fn holds_membership(&self, holder: &Holder) -> Result<bool, StoreError> {
        Ok(match self.node(holder.name()).await? {
            None => holder.epoch() == 0,
            Some(n) => n.epoch == holder.epoch() && n.state == "up",
        })
    }

    /// Returns one node.
    pub async fn node(&self, name: &str) -> Result<Option<NodeRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT name, epoch, state, started_at, seen_at, down_at, recovered_at, \
             recovered_by FROM nodes WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(pool)
        .await?))
    }

    /// Returns every node that ever joined, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT name, epoch, state, started_at, seen_at, down_at, recovered_at, \
             recovered_by FROM nodes ORDER BY name"
        )
        .fetch_all(pool)
        .await?))
    }
}

/// The SQL condition "the node named by parameter `$name` with epoch
/// `$epoch` is still the member it joined as" (a holder of epoch 0: no node
/// of that name joined). On PostgreSQL the node's row is share-locked until
/// the write's transaction ends, so no survivor declares it dead half-way
/// through a write and then misses what that write leased.
pub(super) fn still_member(backend: Backend, name: u32, epoch: u32) -> String {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR SHARE",
    };
    format!(
        "((${epoch} = 0 AND NOT EXISTS (SELECT 1 FROM nodes WHERE name = ${name})) \
         OR EXISTS (SELECT 1 FROM nodes WHERE name = ${name} AND epoch = ${epoch} \
         AND state = 'up'{lock}))"
    )
}

/// The error a fenced node's write gets.
pub(super) fn fenced(holder: &Holder) -> StoreError {
    StoreError::Refused(format!(
        "node {} (epoch {}) no longer holds its leases: it was declared down or replaced",
        holder.name(),
        holder.epoch()
    ))
}
