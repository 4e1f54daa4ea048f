//! [`SingleFlight`]: a value shared by concurrent invocations, loaded by one of them at a time.
//!
//! Used for the M2M credentials and the Management API token: under Lambda Managed Instances
//! several invocations run at once in one environment, and a cold or expired value must cost one
//! upstream call, not one per invocation.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::telemetry::{self, Cache};

/// The invocation's deadline passed while it waited for another invocation's load.
#[derive(Debug, Clone, Copy)]
pub struct WaitExpired;

/// Waits for `lock`, no longer than the deadline.
pub async fn lock_within<'a>(
    lock: &'a tokio::sync::Mutex<()>,
    deadline: &Deadline,
) -> Result<tokio::sync::MutexGuard<'a, ()>, WaitExpired> {
    let wait = deadline.timeout(Duration::MAX).ok_or(WaitExpired)?;
    tokio::time::timeout(wait, lock.lock())
        .await
        .map_err(|_| WaitExpired)
}

/// A shared value and the lock that makes its loads single-flight.
pub struct SingleFlight<T> {
    // A std lock: held only to copy the `Arc` in or out, never across an await.
    current: RwLock<Option<Arc<T>>>,
    // Held for the whole load, so that invocations arriving meanwhile wait and reuse its result.
    loading: tokio::sync::Mutex<()>,
    // Whose hits and misses the invocation's summary line reports, if anyone's.
    reported_as: Option<Cache>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self {
            current: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            reported_as: None,
        }
    }
}

impl<T> SingleFlight<T> {
    /// An empty value whose hits and misses the invocation's summary line reports as `cache`.
    pub fn reported_as(cache: Cache) -> Self {
        Self {
            reported_as: Some(cache),
            ..Self::default()
        }
    }

    fn report(&self, hit: bool) {
        if let Some(cache) = self.reported_as {
            telemetry::cache_lookup(cache, hit);
        }
    }

    /// The current value, if any, without loading.
    pub fn peek(&self) -> Option<Arc<T>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current value if `usable` says so; otherwise one caller runs `load` while the others
    /// wait and then take its result if usable (or load in turn if it failed). A failed load
    /// stores nothing, so the next caller tries again.
    ///
    /// To replace a value known to be bad (a rejected secret, a revoked token), pass a `usable`
    /// that refuses that very value (see [`SingleFlight::is`]): callers that saw the same bad
    /// value then share one reload.
    pub async fn get_or_load<E, F, Fut>(
        &self,
        deadline: &Deadline,
        usable: impl Fn(&Arc<T>) -> bool,
        load: F,
    ) -> Result<Arc<T>, E>
    where
        E: From<WaitExpired>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.peek().filter(&usable) {
            self.report(true);
            return Ok(value);
        }
        let _guard = lock_within(&self.loading, deadline).await?;
        if let Some(value) = self.peek().filter(&usable) {
            // Another invocation loaded it meanwhile: no call of this one's.
            self.report(true);
            return Ok(value);
        }
        self.report(false);
        let value = Arc::new(load().await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&value));
        Ok(value)
    }

    /// Forgets the current value if it is still `stale`.
    pub fn invalidate(&self, stale: &Arc<T>) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, stale)) {
            *current = None;
        }
    }

    /// Whether `candidate` is the very value `stale` (not merely equal to it).
    pub fn is(candidate: &Arc<T>, stale: &Arc<T>) -> bool {
        Arc::ptr_eq(candidate, stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[derive(Debug)]
    struct Failed;

    impl From<WaitExpired> for Failed {
        fn from(_: WaitExpired) -> Self {
            Failed
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load() {
        let cell = Arc::new(SingleFlight::<u32>::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let deadline = Deadline::after(Duration::from_secs(5));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cell, loads) = (Arc::clone(&cell), Arc::clone(&loads));
                tokio::spawn(async move {
                    cell.get_or_load(
                        &deadline,
                        |_| true,
                        || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, Failed>(7)
                        },
                    )
                    .await
                    .map(|v| *v)
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task").expect("value"), 7);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_load_stores_nothing_and_the_next_caller_retries() {
        let cell = SingleFlight::<u32>::default();
        let deadline = Deadline::after(Duration::from_secs(5));
        let failed = cell
            .get_or_load(&deadline, |_| true, || async { Err::<u32, _>(Failed) })
            .await;
        assert!(failed.is_err());
        assert!(cell.peek().is_none());
        let value = cell
            .get_or_load(&deadline, |_| true, || async { Ok::<_, Failed>(1) })
            .await
            .expect("value");
        assert_eq!(*value, 1);
    }

    #[tokio::test]
    async fn reloading_a_stale_value_happens_once_for_all_who_saw_it() {
        let cell = SingleFlight::<u32>::default();
        let deadline = Deadline::after(Duration::from_secs(5));
        let stale = cell
            .get_or_load(&deadline, |_| true, || async { Ok::<_, Failed>(1) })
            .await
            .expect("value");
        let not_stale = |v: &Arc<u32>| !SingleFlight::is(v, &stale);
        let first = cell
            .get_or_load(&deadline, not_stale, || async { Ok::<_, Failed>(2) })
            .await
            .expect("reloaded");
        let second = cell
            .get_or_load(&deadline, not_stale, || async { Ok::<_, Failed>(3) })
            .await
            .expect("shared");
        assert_eq!((*first, *second), (2, 2));
        cell.invalidate(&stale);
        assert_eq!(
            cell.peek().map(|v| *v),
            Some(2),
            "only the stale value is forgotten"
        );
        cell.invalidate(&first);
        assert!(cell.peek().is_none());
    }

    #[tokio::test]
    async fn the_summary_line_learns_which_invocation_loaded_and_which_hit() {
        let cell = SingleFlight::<u32>::reported_as(Cache::Credentials);
        let deadline = Deadline::after(Duration::from_secs(5));
        let load = || async { Ok::<_, Failed>(1) };
        let (_, cold) = telemetry::traced(cell.get_or_load(&deadline, |_| true, load)).await;
        let (_, warm) = telemetry::traced(cell.get_or_load(&deadline, |_| true, load)).await;
        assert_eq!(cold.cache(Cache::Credentials), Some(false));
        assert_eq!(warm.cache(Cache::Credentials), Some(true));
        assert_eq!(warm.cache(Cache::Jwks), None);
        let silent = SingleFlight::<u32>::default();
        let (_, trace) = telemetry::traced(silent.get_or_load(&deadline, |_| true, load)).await;
        assert_eq!(trace, telemetry::Trace::default());
    }

    #[tokio::test]
    async fn waiting_past_the_deadline_gives_up() {
        let cell = Arc::new(SingleFlight::<u32>::default());
        let slow = Arc::clone(&cell);
        tokio::spawn(async move {
            let deadline = Deadline::after(Duration::from_secs(5));
            let _ = slow
                .get_or_load(
                    &deadline,
                    |_| true,
                    || async {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        Ok::<_, Failed>(1)
                    },
                )
                .await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let short = Deadline::after(Duration::from_millis(50));
        let result = cell
            .get_or_load(&short, |_| true, || async { Ok::<_, Failed>(2) })
            .await;
        assert!(result.is_err());
    }
}
