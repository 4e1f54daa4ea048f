//! The token table's keys: the one place that validates them, by the function's own rule.
//!
//! With the table on, the stack generates the keys in a secret of its own, named after the
//! stack ([`keys_secret_name`]); the function reads it through `TOKEN_STORE_KEYS_SECRET_ID`
//! (docs/fleet-state.md). Nobody writes a key by hand.

use secrecy::{ExposeSecret, SecretString};

use auth0_idp_proxy::credentials::Credentials;
use auth0_idp_proxy::fleet::seal;

/// The name the template gives the stack's keys secret.
pub fn keys_secret_name(stack: &str) -> String {
    format!("{stack}-token-table-keys")
}

/// Whether the keys secret whose JSON is `secret` holds keys the function can use; `Err` says
/// why not, never quoting a key.
pub fn table_keys(secret: &SecretString) -> Result<(), String> {
    seal::keys_from_secret(secret.expose_secret())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether the credentials secret `secret` still holds usable `token_store_keys` (a stack from
/// before the generated keys): they still open the table's items.
pub fn legacy_keys(secret: &SecretString) -> bool {
    Credentials::parse(secret.expose_secret()).is_ok_and(|c| c.store_keys.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_functions_own_rule_decides() {
        let generated = format!(r#"{{"key": "{}", "previous_keys": []}}"#, "a1".repeat(32));
        assert_eq!(table_keys(&SecretString::from(generated)), Ok(()));
        let weak = r#"{"key": "short", "previous_keys": []}"#;
        let error = table_keys(&SecretString::from(weak)).expect_err("too short");
        assert!(!error.contains("short"), "{error}");
        assert!(table_keys(&SecretString::from("not json")).is_err());
        assert_eq!(keys_secret_name("proxy"), "proxy-token-table-keys");
        assert!(!legacy_keys(&SecretString::from(
            r#"{"client_id":"c","client_secret":"s"}"#
        )));
    }
}
