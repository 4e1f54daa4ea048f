//! Per-user bounds on the Management API: each user's last profile, kept for a short time, and a
//! budget of profile reads a minute, so that no one user can spend the tenant's rate limit
//! (2 requests a second for a whole Free tenant).
//!
//! In memory, per execution environment; with the fleet table, the budget is counted there too,
//! for the whole fleet (`management`).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use tokio::sync::OnceCell;

use crate::deadline::Deadline;
use crate::management::{Management, ManagementError, User};

/// Most profile reads one user may cause a minute (per environment, and with the fleet table
/// for the whole fleet).
pub const READS_PER_MINUTE: u32 = 10;

/// The budget's window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// How long `GET /identities` answers from the last profile read.
pub const IDENTITIES_MAX_AGE: Duration = Duration::from_secs(30);

/// How long a profile without an identity at a connection answers "not linked" for it.
pub const NOT_LINKED_MAX_AGE: Duration = Duration::from_secs(60);

/// Users tracked at once; the least recently seen goes first.
const CAPACITY: usize = 10_000;

/// The caller's profile as one request sees it: read from the Management API at most once in
/// the request, whoever asks (resolving the connection, its per-user host, the token source).
pub struct RequestProfile<'a> {
    management: &'a Management,
    user_id: &'a str,
    read: OnceCell<Arc<User>>,
}

impl<'a> RequestProfile<'a> {
    /// `user_id`'s profile, nothing read yet.
    pub fn new(management: &'a Management, user_id: &'a str) -> Self {
        Self {
            management,
            user_id,
            read: OnceCell::new(),
        }
    }

    /// A profile no older than `max_age`, if one is held: the one read in this request, else
    /// one this environment read recently. Nothing is read.
    pub fn held(&self, max_age: Duration) -> Option<Arc<User>> {
        self.read
            .get()
            .cloned()
            .or_else(|| self.management.recent_user(self.user_id, max_age))
    }

    /// A profile no older than `max_age`: a held one ([`RequestProfile::held`]), else
    /// [`RequestProfile::fresh`].
    pub async fn recent(
        &self,
        max_age: Duration,
        deadline: &Deadline,
    ) -> Result<Arc<User>, ManagementError> {
        match self.held(max_age) {
            Some(user) => Ok(user),
            None => self.fresh(deadline).await,
        }
    }

    /// The profile as Auth0 holds it: read now, the first time it is asked for in this
    /// request; that same read afterwards.
    pub async fn fresh(&self, deadline: &Deadline) -> Result<Arc<User>, ManagementError> {
        self.read
            .get_or_try_init(|| self.management.user(self.user_id, deadline))
            .await
            .cloned()
    }
}

#[derive(Default)]
struct Slot {
    profile: Option<(Arc<User>, Instant)>,
    window_start: Option<Instant>,
    reads: u32,
}

/// Recent profiles and read budgets, by user id.
pub struct Profiles {
    // A std lock: held only to look up or update one slot, never across an await.
    slots: Mutex<LruCache<String, Slot>>,
}

impl Default for Profiles {
    fn default() -> Self {
        Self {
            slots: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl Profiles {
    fn with_slot<T>(&self, user_id: &str, f: impl FnOnce(&mut Slot) -> T) -> T {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        f(slots.get_or_insert_mut(user_id.to_owned(), Slot::default))
    }

    /// The profile of `user_id` read less than `max_age` ago, if any.
    pub fn recent(&self, user_id: &str, max_age: Duration) -> Option<Arc<User>> {
        self.with_slot(user_id, |slot| {
            slot.profile
                .as_ref()
                .filter(|(_, read_at)| read_at.elapsed() < max_age)
                .map(|(user, _)| Arc::clone(user))
        })
    }

    /// Counts one profile read of `user_id` at `now`, unless the user's budget is spent: then
    /// how long until it refills.
    pub fn admit(&self, user_id: &str, now: Instant) -> Result<(), Duration> {
        self.with_slot(user_id, |slot| {
            let start = slot
                .window_start
                .filter(|start| now.saturating_duration_since(*start) < WINDOW);
            match start {
                Some(start) if slot.reads >= READS_PER_MINUTE => {
                    Err(WINDOW.saturating_sub(now.saturating_duration_since(start)))
                }
                Some(_) => {
                    slot.reads += 1;
                    Ok(())
                }
                None => {
                    slot.window_start = Some(now);
                    slot.reads = 1;
                    Ok(())
                }
            }
        })
    }

    /// Keeps `user` as its user's latest profile.
    pub fn record(&self, user: Arc<User>) {
        let user_id = user.user_id.clone();
        self.with_slot(&user_id, |slot| slot.profile = Some((user, Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_a_budget_of_reads_a_minute() {
        let profiles = Profiles::default();
        let t0 = Instant::now();
        for _ in 0..READS_PER_MINUTE {
            assert_eq!(profiles.admit("u", t0), Ok(()));
        }
        let wait = profiles
            .admit("u", t0 + Duration::from_secs(20))
            .expect_err("spent");
        assert_eq!(wait, Duration::from_secs(40));
        assert_eq!(profiles.admit("v", t0), Ok(()), "budgets are per user");
        assert_eq!(profiles.admit("u", t0 + WINDOW), Ok(()), "refilled");
    }

    #[test]
    fn a_recent_profile_is_kept_for_its_max_age() {
        let profiles = Profiles::default();
        let user: User =
            serde_json::from_str(r#"{"user_id": "u", "identities": []}"#).expect("profile");
        profiles.record(Arc::new(user));
        assert!(profiles.recent("u", Duration::from_secs(30)).is_some());
        assert!(profiles.recent("u", Duration::ZERO).is_none());
        assert!(profiles.recent("v", Duration::from_secs(30)).is_none());
    }
}
