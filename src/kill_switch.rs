//! The operator's kill switch (docs/operating.md, "Alarms and what to do"): the users and connections whose calls are
//! stopped, in the Secrets Manager secret `KILL_SWITCH_SECRET_ID` as
//! `{"users": ["github|42"], "connections": ["gitlab"]}`.
//!
//! Secrets Manager rather than the fleet table, so that one switch works the same with and
//! without `TOKEN_TABLE`, and is read through the client and endpoint the function already has
//! (a VPC deployment needs no new endpoint). A list is used for [`MAX_AGE`] after it was read,
//! so an edit stops calls in every warm environment within that time plus one read, and in a new
//! environment at once. Unlike the table (a cache, skipped when it fails), a switch that cannot
//! be read is not skipped: the last list read stays in force and is read again after
//! [`RETRY_AFTER_FAILURE`]; an environment that never read one answers 503, and for that same
//! time answers it at once rather than waiting out the outage again on every request.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::credentials;
use crate::deadline::Deadline;
use crate::secret::SecretReadError;
use crate::single_flight::{SingleFlight, WaitExpired};

/// How long a list read is used before it is read again: well inside the minute an operator
/// is promised, at one read per environment every half minute while it serves calls.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// How long the last list is kept after a failed read before the secret is tried again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// What is stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillList {
    /// Auth0 user ids (`sub`) whose every call is refused.
    #[serde(default)]
    pub users: BTreeSet<String>,
    /// Connection names whose IdP route is refused for everyone.
    #[serde(default)]
    pub connections: BTreeSet<String>,
}

/// Why a call is not made.
#[derive(Debug, thiserror::Error)]
pub enum KillSwitchError {
    /// The caller is on the list (403 `user_blocked`).
    #[error("an operator has stopped this user's calls")]
    UserBlocked,
    /// The connection is on the list (403 `connection_blocked`).
    #[error("an operator has stopped calls to connection {0:?}")]
    ConnectionBlocked(String),
    /// No list could ever be read in this environment (503 `kill_switch_unavailable`).
    #[error("the kill switch cannot be read")]
    Unavailable(#[source] SecretReadError),
    /// No list was ever read, and the last try failed too recently to try again (503
    /// `kill_switch_unavailable`, at once rather than after another read that waits out the
    /// same outage).
    #[error("the kill switch could not be read {0:?} ago")]
    FailedRecently(Duration),
}

impl From<WaitExpired> for KillSwitchError {
    fn from(_: WaitExpired) -> Self {
        Self::Unavailable(SecretReadError::Timeout)
    }
}

/// A list, when it was read, and whether it is the last one kept after a failed read.
#[derive(Debug)]
struct Loaded {
    list: KillList,
    read_at: Instant,
    kept: bool,
}

impl Loaded {
    /// Whether the list is still used at `now`, each list being used for `max_age`, one kept
    /// after a failure until the next try.
    fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        let age = if self.kept {
            RETRY_AFTER_FAILURE.min(max_age)
        } else {
            max_age
        };
        now.saturating_duration_since(self.read_at) < age
    }
}

/// The kill switch of one execution environment.
pub struct KillSwitch {
    client: credentials::BoundedClient,
    secret_id: String,
    max_age: Duration,
    current: SingleFlight<Loaded>,
    /// When a read last failed with no list to keep.
    failed_at: std::sync::Mutex<Option<Instant>>,
}

impl KillSwitch {
    /// The switch in `secret_id`, read through a client of `source` (configured as the
    /// credentials' reads are), each list used for [`MAX_AGE`]. Nothing is read until asked.
    pub fn new(source: credentials::SecretsSource, secret_id: String) -> Self {
        Self {
            client: credentials::BoundedClient::new(source),
            secret_id,
            max_age: MAX_AGE,
            current: SingleFlight::default(),
            failed_at: std::sync::Mutex::new(None),
        }
    }

    /// The same switch with each list used for `max_age` (tests shorten it to see an edit at
    /// the next call).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// `Ok` unless `user` or the `connection` asked for is stopped.
    pub async fn check(
        &self,
        user: &str,
        connection: Option<&str>,
        deadline: &Deadline,
    ) -> Result<(), KillSwitchError> {
        let now = Instant::now();
        if let Some(ago) = self.failed_recently(now) {
            return Err(KillSwitchError::FailedRecently(ago));
        }
        let loaded = self
            .current
            .get_or_load(
                deadline,
                |l| l.is_fresh(now, self.max_age),
                || self.read(deadline),
            )
            .await?;
        if loaded.list.users.contains(user) {
            return Err(KillSwitchError::UserBlocked);
        }
        match connection {
            Some(name) if loaded.list.connections.contains(name) => {
                Err(KillSwitchError::ConnectionBlocked(name.to_owned()))
            }
            _ => Ok(()),
        }
    }

    /// How long ago a read failed with no list to keep, if that is less than the wait before
    /// the next try ([`RETRY_AFTER_FAILURE`], at most the list's max age).
    fn failed_recently(&self, now: Instant) -> Option<Duration> {
        let failed_at = (*self.failed_at.lock().unwrap_or_else(|e| e.into_inner()))?;
        let ago = now.saturating_duration_since(failed_at);
        (ago < RETRY_AFTER_FAILURE.min(self.max_age)).then_some(ago)
    }

    async fn read(&self, deadline: &Deadline) -> Result<Loaded, KillSwitchError> {
        let read = credentials::read_secret(self.client.get(), &self.secret_id, deadline)
            .await
            .and_then(|text| {
                serde_json::from_str::<KillList>(&text).map_err(|e| SecretReadError::Malformed {
                    line: e.line(),
                    column: e.column(),
                })
            });
        match (read, self.current.peek()) {
            (Ok(list), _) => Ok(Loaded {
                list,
                read_at: Instant::now(),
                kept: false,
            }),
            (Err(error), Some(last)) => {
                tracing::error!(error = %error, "kill switch unreadable; the last list read stays in force");
                Ok(Loaded {
                    list: last.list.clone(),
                    read_at: Instant::now(),
                    kept: true,
                })
            }
            (Err(error), None) => {
                *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                Err(KillSwitchError::Unavailable(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_used_for_its_max_age_and_a_kept_one_until_the_next_try() {
        let now = Instant::now();
        let mut loaded = Loaded {
            list: KillList::default(),
            read_at: now,
            kept: false,
        };
        let just_before = now + MAX_AGE - Duration::from_millis(1);
        assert!(loaded.is_fresh(now, MAX_AGE) && loaded.is_fresh(just_before, MAX_AGE));
        assert!(!loaded.is_fresh(now + MAX_AGE, MAX_AGE));
        assert!(!loaded.is_fresh(now, Duration::ZERO));
        loaded.kept = true;
        assert!(loaded.is_fresh(now + RETRY_AFTER_FAILURE / 2, MAX_AGE));
        assert!(!loaded.is_fresh(now + RETRY_AFTER_FAILURE, MAX_AGE));
        // An edit is in force everywhere within a minute, even just after a failed read.
        assert!(MAX_AGE + RETRY_AFTER_FAILURE < Duration::from_secs(60));
    }

    #[test]
    fn the_document_names_users_and_connections_and_nothing_else() {
        let list: KillList =
            serde_json::from_str(r#"{"users": ["github|42"], "connections": ["gitlab"]}"#)
                .expect("valid");
        assert!(list.users.contains("github|42") && list.connections.contains("gitlab"));
        let empty: KillList = serde_json::from_str("{}").expect("valid");
        assert_eq!(empty, KillList::default());
        for bad in [
            r#"{"user": ["github|42"]}"#,
            r#"{"users": "github|42"}"#,
            r#""github|42""#,
        ] {
            assert!(serde_json::from_str::<KillList>(bad).is_err(), "{bad}");
        }
    }
}
