//! A DPoP proof's `jti` is used once (RFC 9449 §11.1): remembered until the proof's `iat` is out
//! of the window, in this execution environment's memory and, where the fleet's token table is
//! on, in the table with a conditional write, so that a proof replayed to another execution
//! environment is refused too.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, SHA256_OUTPUT_LEN, digest};
use lru::LruCache;

use super::dpop::IAT_WINDOW;
use crate::deadline::Deadline;
use crate::fleet::{self, FleetTable};

/// Proof ids remembered in memory: at 60 bytes each, a few megabytes. The oldest go first; they
/// are the ones out of the window already.
const REMEMBERED: NonZeroUsize = NonZeroUsize::new(50_000).expect("not zero");

/// The `jti`s seen.
pub struct Replays {
    // A std lock: held for one lookup or insert, never across an await.
    seen: Mutex<LruCache<[u8; SHA256_OUTPUT_LEN], u64>>,
    fleet: Option<Arc<FleetTable>>,
}

impl Replays {
    /// Remembered in memory, and in `fleet` where given.
    pub fn new(fleet: Option<Arc<FleetTable>>) -> Self {
        Self {
            seen: Mutex::new(LruCache::new(REMEMBERED)),
            fleet,
        }
    }

    /// Whether the proof `jti` of the key `jkt`, issued at `iat`, is seen for the first time
    /// (and now recorded) at `now`. A table that fails leaves the answer to memory (counted as
    /// the table degraded): a replay to another environment then goes unnoticed until it is back.
    pub async fn first_sight(
        &self,
        jkt: &str,
        jti: &str,
        iat: u64,
        now: u64,
        deadline: &Deadline,
    ) -> bool {
        let id = Self::id(jkt, jti);
        // Kept until the proof could no longer pass the `iat` check.
        let until = iat.max(now) + IAT_WINDOW.as_secs() + 1;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get(&id).is_some_and(|&kept| kept >= now) {
                return false;
            }
            seen.put(id, until);
        }
        let Some(table) = &self.fleet else {
            return true;
        };
        let pk = format!("dpop#{}", hex(&id));
        match table.first_sight(&pk, until, deadline).await {
            Ok(first) => first,
            Err(error) => {
                fleet::degraded("dpop replay check", &error);
                true
            }
        }
    }

    /// What a proof is remembered by: the SHA-256 of its key's thumbprint and its `jti`, so
    /// that neither is kept (nor written to the table) as it is.
    fn id(jkt: &str, jti: &str) -> [u8; SHA256_OUTPUT_LEN] {
        let mut input = Vec::with_capacity(jkt.len() + jti.len() + 1);
        input.extend_from_slice(jkt.as_bytes());
        input.push(0);
        input.extend_from_slice(jti.as_bytes());
        let mut id = [0; SHA256_OUTPUT_LEN];
        id.copy_from_slice(digest(&SHA256, &input).as_ref());
        id
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_jti_passes_once_per_key_within_the_window() {
        let replays = Replays::new(None);
        let deadline = Deadline::after(Duration::from_secs(1));
        assert!(
            replays
                .first_sight("k1", "j1", 1_000, 1_000, &deadline)
                .await
        );
        assert!(
            !replays
                .first_sight("k1", "j1", 1_000, 1_030, &deadline)
                .await
        );
        assert!(
            replays
                .first_sight("k2", "j1", 1_000, 1_030, &deadline)
                .await
        );
        // Past the window the proof fails its `iat` check anyway; the entry is free again.
        assert!(
            replays
                .first_sight("k1", "j1", 1_000, 1_062, &deadline)
                .await
        );
    }
}
