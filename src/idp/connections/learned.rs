//! The connections one execution environment learned from identities: served by their
//! strategy's catalogue entry, kept so that the next call finds them without deriving again.

use std::collections::HashMap;
use std::sync::Arc;

use super::Connection;

/// Connections served by their strategy's catalogue entry, learned from identities
/// ([`super::Connections::for_strategy`]), shared by the invocations of one execution
/// environment (a clone of the table shares them too). Bounded: a name gets here only from an
/// identity the Management API returned.
#[derive(Debug, Default, Clone)]
pub struct Learned(Arc<std::sync::Mutex<HashMap<String, Arc<Connection>>>>);

/// Most connections learned; past it, new ones are served but not kept (a tenant has few connections).
const MAX_LEARNED: usize = 256;

impl Learned {
    /// The connection learned for `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Connection>> {
        // A poisoned lock only means another invocation panicked mid-insert: the map is whole.
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned()
    }

    /// Keeps `connection` and hands it back shared.
    pub fn insert(&self, connection: Connection) -> Arc<Connection> {
        let connection = Arc::new(connection);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_LEARNED {
            map.insert(connection.name.clone(), Arc::clone(&connection));
        }
        connection
    }
}
