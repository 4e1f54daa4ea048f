//! What an authenticated caller may do: the [`Caller`] the rest of the function sees, the
//! permissions and scopes its token carries, and the function-wide `REQUIRED_SCOPE`.

use super::{AuthError, Authenticator};
use crate::secret::CallerToken;

/// The authenticated caller. `user_id` is the verified `sub` claim: the only user id the function
/// ever acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The Auth0 user id, e.g. `github|42`.
    pub user_id: String,
    /// The verified token itself: the subject token of a Token Vault exchange, and used for
    /// nothing else.
    pub token: CallerToken,
    /// The words of the token's `scope` claim and its RBAC `permissions`, for the allow rules
    /// that need some of them.
    pub scopes: Vec<String>,
}

impl Caller {
    /// Whether the caller's token carries `scope`, in its `scope` claim or its `permissions`.
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl Authenticator {
    /// Whether the authenticated `caller` may use the function at all: its token carries
    /// `REQUIRED_SCOPE`, where one is configured.
    pub fn authorize(&self, caller: &Caller) -> Result<(), AuthError> {
        match &self.required_scope {
            Some(scope) if !caller.holds(scope) => Err(AuthError::InsufficientScope(scope.clone())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Claims;
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn scope_is_granted_by_scope_or_permissions() {
        let map = json!({"sub": "u", "scope": "read:a proxy:call", "permissions": ["other"]});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let parsed = Claims {
            sub: "u",
            iss: "i",
            aud: vec!["a"],
            exp: 1,
            nbf: None,
            scope: map.get("scope").and_then(Value::as_str),
            permissions: vec!["other"],
        };
        assert_eq!(parsed.scopes(), ["read:a", "proxy:call", "other"]);
        let caller = Caller {
            user_id: "u".to_owned(),
            token: CallerToken::new("t"),
            scopes: parsed.scopes(),
        };
        assert!(caller.holds("proxy:call"));
        assert!(caller.holds("other"));
        assert!(!caller.holds("proxy"));
    }
}
