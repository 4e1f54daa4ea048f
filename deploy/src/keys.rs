//! The token table's keys: the one place that validates them and makes a new one.
//!
//! Today the function reads the keys from the credentials secret's `token_store_keys` (a list
//! of base64 32-byte keys) with [`auth0_idp_proxy::credentials::Credentials::parse`]; when the
//! keys move to a secret the template generates, [`token_store_keys`] is the function to switch
//! to the library's parser of that secret.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use auth0_idp_proxy::credentials::Credentials;

/// Whether the secret whose JSON is `secret` holds token-table keys the function can use;
/// `Err` says why not, never quoting the secret.
pub fn token_store_keys(secret: &SecretString) -> Result<(), String> {
    let credentials = Credentials::parse(secret.expose_secret()).map_err(|e| e.to_string())?;
    credentials
        .store_keys
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A new key for `token_store_keys`: 32 bytes from the system's random source, base64.
pub fn new_key() -> Result<SecretString, String> {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| "no random source for a token-store key".to_owned())?;
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(key),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_usable_and_a_bad_one_is_named() {
        let key = new_key().expect("a key");
        let good = format!(
            r#"{{"client_id":"c","client_secret":"s","token_store_keys":["{}"]}}"#,
            key.expose_secret()
        );
        assert_eq!(token_store_keys(&SecretString::from(good)), Ok(()));
        let short = r#"{"client_id":"c","client_secret":"s","token_store_keys":["AAAA"]}"#;
        assert!(token_store_keys(&SecretString::from(short)).is_err());
        let none = r#"{"client_id":"c","client_secret":"s"}"#;
        assert!(
            token_store_keys(&SecretString::from(none))
                .is_err_and(|e| e.contains("token_store_keys"))
        );
    }
}
