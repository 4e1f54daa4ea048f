//! State shared by every execution environment of the function (`TOKEN_TABLE`): a DynamoDB table
//! under the memory caches, so that one Management API token, one read of a user and one refresh
//! grant serve the whole fleet, and a rotated single-use refresh token outlives the environment
//! that obtained it.
//!
//! - [`table`]: the table on the wire (versions, leases, conditional writes);
//! - [`seal`]: AES-256-GCM, with each item's key as associated data.
//!
//! The table is a cache: every failure of it (down, throttled, hanging, a value that does not
//! open) is logged and the caller carries on as if `TOKEN_TABLE` were unset.

pub mod seal;
pub mod table;

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deadline::Deadline;
use seal::Sealer;
pub use table::TablePolicy;
use table::{Expect, TableError, TokenTable, now_millis};

/// How often a waiting environment looks whether the lease holder's result has arrived.
const POLL: Duration = Duration::from_millis(40);

/// A value as the table holds it.
#[derive(Debug, Clone)]
pub struct Record<T> {
    /// The opened value; `None` for an item with no value (only a lease) or one that does not
    /// open (logged).
    pub value: Option<T>,
    /// The item's version, for the next conditional write.
    pub version: u64,
}

/// Whose turn it is to do a piece of fleet-wide work (an exchange, a refresh grant).
#[derive(Debug)]
pub enum Turn<T> {
    /// Another environment did it: its result.
    Theirs(T),
    /// This environment holds the lease: do the work, then [`Fleet::finish`] or
    /// [`Fleet::abandon`]. `seen` is the value the table held when the lease was taken.
    Mine {
        /// The value before the work.
        seen: Option<T>,
    },
    /// Another environment holds the lease past this invocation's deadline.
    Busy,
}

/// The table with the keys to open its values, for one invocation.
#[derive(Clone, Copy)]
pub struct Fleet<'a> {
    table: &'a TokenTable,
    sealer: &'a Sealer,
    /// This environment's lease owner id.
    owner: &'a str,
}

/// Logs that the table failed and that the function carries on without it.
pub fn degraded(what: &str, error: &TableError) {
    crate::telemetry::token_table_degraded();
    tracing::warn!(operation = what, error = %error, "token table degraded; carrying on without it");
}

impl<'a> Fleet<'a> {
    /// The table `table`, its values sealed with `sealer`, leases held as `owner`.
    pub fn new(table: &'a TokenTable, sealer: &'a Sealer, owner: &'a str) -> Self {
        Self {
            table,
            sealer,
            owner,
        }
    }

    /// The record at `pk`, if any; a dead item (past `expires_at`) reads as absent.
    pub async fn read<T: DeserializeOwned>(
        &self,
        pk: &str,
        deadline: &Deadline,
    ) -> Result<Option<Record<T>>, TableError> {
        let Some(item) = self.table.get(pk, deadline).await? else {
            return Ok(None);
        };
        let alive = item.expires_at == 0 || item.expires_at * 1000 > now_millis();
        let value = item.data.as_deref().filter(|_| alive).and_then(|sealed| {
            match self.sealer.open(pk, sealed) {
                Ok(plain) => serde_json::from_slice(&plain).ok(),
                Err(error) => {
                    tracing::warn!(error = %error, "token table value ignored");
                    None
                }
            }
        });
        Ok(Some(Record {
            value,
            version: item.version,
        }))
    }

    async fn store<T: Serialize>(
        &self,
        pk: &str,
        value: &T,
        expires: SystemTime,
        expect: Expect<'_>,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        let plain = serde_json::to_vec(value).map_err(|e| TableError::Failed(e.to_string()))?;
        let sealed = self
            .sealer
            .seal(pk, &plain)
            .map_err(|e| TableError::Failed(e.to_string()))?;
        self.table
            .write(pk, sealed, table::epoch_seconds(expires), expect, deadline)
            .await
    }

    /// Writes `value` at `pk` if the item is still at `version` (0: no value yet).
    /// `Ok(false)`: another environment wrote first.
    pub async fn write<T: Serialize>(
        &self,
        pk: &str,
        value: &T,
        expires: SystemTime,
        version: u64,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        self.store(pk, value, expires, Expect::Version(version), deadline)
            .await
    }

    /// Whose turn it is to do the work whose result lands at `pk`: `done` tells a result that
    /// makes the work unnecessary. Waits, within the deadline, while another environment holds
    /// the lease; a lease is held for `hold` at most, so an environment that died mid-work
    /// blocks the others no longer than that.
    pub async fn take_turn<T: DeserializeOwned>(
        &self,
        pk: &str,
        done: impl Fn(&T) -> bool,
        hold: Duration,
        deadline: &Deadline,
    ) -> Result<Turn<T>, TableError> {
        loop {
            let record = self.read::<T>(pk, deadline).await?;
            let version = record.as_ref().map_or(0, |r| r.version);
            let seen = match record.and_then(|r| r.value) {
                Some(value) if done(&value) => return Ok(Turn::Theirs(value)),
                seen => seen,
            };
            let until = now_millis() + u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
            if self
                .table
                .acquire(pk, self.owner, until, version, deadline)
                .await?
            {
                return Ok(Turn::Mine { seen });
            }
            // Someone holds the lease or wrote meanwhile: look again shortly.
            if deadline.remaining() < POLL * 2 {
                return Ok(Turn::Busy);
            }
            let jitter = POLL.mul_f64(fastrand::f64() * 0.5);
            tokio::time::sleep(POLL + jitter).await;
        }
    }

    /// Writes the lease holder's result and releases the lease.
    pub async fn finish<T: Serialize>(
        &self,
        pk: &str,
        value: &T,
        expires: SystemTime,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        self.store(pk, value, expires, Expect::LeaseOwner(self.owner), deadline)
            .await
    }

    /// Releases the lease without a result (the work failed).
    pub async fn abandon(&self, pk: &str, deadline: &Deadline) {
        self.table.release(pk, self.owner, deadline).await;
    }

    /// Counts one more use of the budget `pk` unless `limit` is reached; the count dies at
    /// `expires`. `Ok(false)`: the budget is spent.
    pub async fn spend(
        &self,
        pk: &str,
        limit: u64,
        expires: SystemTime,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        self.table
            .count(pk, limit, table::epoch_seconds(expires), deadline)
            .await
    }
}

/// The table as the application state holds it, with this environment's lease owner id.
pub struct FleetTable {
    table: TokenTable,
    owner: String,
    // Set once the unusable-keys error has been logged, so it is logged once per environment.
    warned: std::sync::atomic::AtomicBool,
}

impl FleetTable {
    /// The table `name` through `client`, its calls bounded as `policy` says.
    pub fn new(client: &aws_sdk_dynamodb::Client, name: String, policy: TablePolicy) -> Self {
        Self {
            table: TokenTable::new(client, name, policy),
            owner: format!("{:016x}", fastrand::u64(..)),
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Records the item `pk` unless it is there already, the item dying at `expires_at` (Unix
    /// seconds): `Ok(true)` the first time in the fleet, `Ok(false)` after. Nothing is sealed
    /// (the item holds no value), so the table's keys are not needed.
    pub async fn first_sight(
        &self,
        pk: &str,
        expires_at: u64,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        self.table.count(pk, 1, expires_at, deadline).await
    }

    /// The table with the `keys` read with the credentials, or `None` when they cannot be
    /// used: then the function runs as if `TOKEN_TABLE` were unset, never writing a value in
    /// plaintext. Each invocation that wanted the table and could not have it is counted (the
    /// `TokenTableKeysUnusable` metric, which the template alarms on); the cause is logged once
    /// per environment.
    pub fn with_keys<'a>(&'a self, keys: &'a Result<Sealer, seal::KeyError>) -> Option<Fleet<'a>> {
        match keys {
            Ok(sealer) => Some(Fleet::new(&self.table, sealer, &self.owner)),
            Err(error) => {
                crate::telemetry::token_table_keys_unusable();
                if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::error!(
                        error = %crate::telemetry::error_chain(error),
                        "TOKEN_TABLE is set but the table's keys cannot be used; running without \
                         the table"
                    );
                }
                None
            }
        }
    }
}
