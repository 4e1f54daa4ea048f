//! The stand-in tenant's machine-to-machine client: the one the client-credentials grant accepts
//! and Token Vault may let exchange.

/// The M2M client the stand-in tenant accepts by default.
pub const M2M_CLIENT_ID: &str = "m2m-client-id";
