//! Fresh opaque tokens (access, refresh, session, code…) for every stand-in that issues one.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh opaque token: unique in the process, unguessable enough for a stand-in.
pub fn new_token(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{:04}{nanos:09}",
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}
