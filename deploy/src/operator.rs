//! The operator's Management API token: read from `AUTH0_MANAGEMENT_TOKEN` or a file, kept in a
//! redacted type, sent only in the Management API's `Authorization` header; never written,
//! logged or printed. Its `scope` claim is read without verifying the token (the tenant
//! verifies it) to name a missing scope before any call.

use std::path::Path;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// The environment variable that may hold the operator's token.
pub const TOKEN_VAR: &str = "AUTH0_MANAGEMENT_TOKEN";

/// What `setup` calls, and so the scopes its token needs (docs/deploy.md lists them).
/// `read:client_keys` reads an existing application's secret when the credentials secret must
/// be written again for it.
pub const SETUP_SCOPES: &[&str] = &[
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "read:clients",
    "create:clients",
    "update:clients",
    "read:client_keys",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
];

/// What `check` calls: reads only.
pub const CHECK_SCOPES: &[&str] = &[
    "read:resource_servers",
    "read:clients",
    "read:client_grants",
    "read:connections",
];

/// Why the operator's token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Neither the variable nor a file gives a token.
    #[error("no Management API token: set {TOKEN_VAR} or give --token-file PATH")]
    Missing,
    /// The token file cannot be read.
    #[error("--token-file {path}: cannot be read")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token's `scope` claim lacks scopes the command needs.
    #[error("the Management API token lacks {}: grant them to the token's application (Dashboard > Applications > APIs > Auth0 Management API > Machine to Machine Applications) or make a token that has them", .0.join(", "))]
    MissingScopes(Vec<String>),
}

/// The operator's Management API token. `Debug` shows `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct OperatorToken(SecretString);

impl OperatorToken {
    /// The token from `--token-file`, else from [`TOKEN_VAR`].
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, OperatorError> {
        let text = match file {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|source| OperatorError::Unreadable {
                    path: path.display().to_string(),
                    source,
                })?
            }
            None => env(TOKEN_VAR).ok_or(OperatorError::Missing)?,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(OperatorError::Missing);
        }
        Ok(Self(SecretString::from(text.to_owned())))
    }

    /// The token a command runs with: loaded as [`OperatorToken::load`], holding `needed`
    /// ([`OperatorToken::require`]).
    pub fn for_command(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        needed: &[&str],
    ) -> Result<Self, OperatorError> {
        let token = Self::load(file, env)?;
        token.require(needed)?;
        Ok(token)
    }

    /// The token, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The scopes of its `scope` claim; `None` when it is not a JWT with one (then the tenant's
    /// `403 insufficient_scope` names a missing scope).
    pub fn scopes(&self) -> Option<Vec<String>> {
        let payload = self.expose().split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let scope = claims.get("scope")?.as_str()?;
        Some(scope.split_whitespace().map(str::to_owned).collect())
    }

    /// Checks up front that the token carries every scope of `needed`, when it says.
    pub fn require(&self, needed: &[&str]) -> Result<(), OperatorError> {
        let Some(held) = self.scopes() else {
            return Ok(());
        };
        let missing: Vec<String> = needed
            .iter()
            .filter(|scope| !held.iter().any(|h| h == *scope))
            .map(|s| (*s).to_owned())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(OperatorError::MissingScopes(missing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(claims: &str) -> OperatorToken {
        let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let text = format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(claims));
        OperatorToken::load(None, &|_| Some(text.clone())).expect("a token")
    }

    #[test]
    fn a_missing_scope_is_named_before_any_call() {
        let token = token_with(r#"{"scope":"read:clients read:client_grants"}"#);
        let error = token
            .require(&["read:clients", "read:connections"])
            .expect_err("lacks one");
        assert!(
            error.to_string().contains("lacks read:connections:"),
            "{error}"
        );
        assert!(token.require(&["read:clients"]).is_ok());
    }

    #[test]
    fn an_opaque_token_is_left_to_the_tenant_and_never_shown() {
        let token = OperatorToken::load(None, &|_| Some("opaque-secret".into())).expect("a token");
        assert_eq!(token.scopes(), None);
        assert!(token.require(SETUP_SCOPES).is_ok());
        assert!(!format!("{token:?}").contains("opaque-secret"));
        assert!(matches!(
            OperatorToken::load(None, &|_| None),
            Err(OperatorError::Missing)
        ));
    }
}
