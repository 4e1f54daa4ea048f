//! Redacted newtypes for the tokens the function handles: one type per kind, so that handing a
//! refresh token where an access token belongs (or the caller's Auth0 token where an IdP token
//! belongs) does not compile, and none prints in `Debug`.
//!
//! Reading the value is an explicit [`expose`](IdpAccessToken::expose) call, made only where the
//! token goes on the wire.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

macro_rules! token_type {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps `value`.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The token itself, for the request that carries it.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        /// Equal when the values are: tells a re-login's new token from one already seen.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose() == other.expose()
            }
        }

        impl Eq for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                SecretString::deserialize(deserializer).map(Self)
            }
        }
    };
}

token_type! {
    /// An OAuth 1.0a token secret (X in its `oauth1` mode): it signs each call to the IdP
    /// (RFC 5849 §3.4.2) and is sent nowhere itself.
    TokenSecret
}

/// An identity provider's access token: sent to the IdP's API, never to the caller. An OAuth
/// 1.0a token carries its token secret too, and its calls are signed instead of carrying it as
/// a bearer token.
#[derive(Clone)]
pub struct IdpAccessToken {
    token: SecretString,
    secret: Option<TokenSecret>,
    /// The scopes it was granted, space-separated, where its issuer said (Token Vault's
    /// exchange answers `scope`): not secret, but true only of this token.
    scopes: Option<Arc<str>>,
}

impl IdpAccessToken {
    /// Wraps `value`, a bearer token.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            token: SecretString::from(value.into()),
            secret: None,
            scopes: None,
        }
    }

    /// This token with the scopes its issuer said it was granted (space-separated).
    pub fn with_scopes(mut self, scopes: Option<&str>) -> Self {
        self.scopes = scopes.map(Arc::from);
        self
    }

    /// The scopes it was granted, where its issuer said: space-separated as RFC 6749 writes
    /// them, or, in a list without a space, comma-separated as some providers write them
    /// (Slack). A scope may hold a comma (RFC 6749 §3.3), so commas split only such a list.
    pub fn scopes(&self) -> Option<Vec<&str>> {
        self.scopes.as_deref().map(|s| {
            let spaced = s.contains(char::is_whitespace);
            s.split(|c: char| c.is_whitespace() || (!spaced && c == ','))
                .filter(|scope| !scope.is_empty())
                .collect()
        })
    }

    /// The scopes as its issuer wrote them, to keep with the token.
    pub fn scopes_text(&self) -> Option<&str> {
        self.scopes.as_deref()
    }

    /// This token with its OAuth 1.0a token secret: its calls are signed.
    pub fn with_secret(mut self, secret: Option<TokenSecret>) -> Self {
        self.secret = secret;
        self
    }

    /// The token itself, for the request that carries it.
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }

    /// The OAuth 1.0a token secret, if this is such a token.
    pub fn secret(&self) -> Option<&TokenSecret> {
        self.secret.as_ref()
    }
}

impl std::fmt::Debug for IdpAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdpAccessToken([redacted])")
    }
}

/// Equal when the token and its secret are: tells a re-login's new token from one already seen.
impl PartialEq for IdpAccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose() && self.secret == other.secret
    }
}

impl Eq for IdpAccessToken {}

impl<'de> Deserialize<'de> for IdpAccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SecretString::deserialize(deserializer).map(|token| Self {
            token,
            secret: None,
            scopes: None,
        })
    }
}

token_type! {
    /// An identity provider's refresh token: sent to the IdP's token endpoint only.
    IdpRefreshToken
}

token_type! {
    /// The caller's own Auth0 access token, once verified: sent to Auth0's token endpoint only,
    /// as the subject token of a Token Vault exchange.
    CallerToken
}

/// Why a secret's text could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretReadError {
    /// Secrets Manager refused or failed the read.
    #[error("the secret cannot be read")]
    Unreadable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Secrets Manager did not answer within the deadline.
    #[error("the secret could not be read within the deadline")]
    Timeout,
    /// The secret holds binary data, not a JSON string.
    #[error("the secret is not a JSON string")]
    NotText,
    /// The secret is not the documented JSON (only a position: a message could quote it).
    #[error("the secret is malformed (JSON error at line {line}, column {column})")]
    Malformed {
        /// Line of the JSON error.
        line: usize,
        /// Column of the JSON error.
        column: usize,
    },
}

#[cfg(test)]
mod tests {

    #[test]
    fn granted_scopes_read_with_spaces_or_commas() {
        let slack = IdpAccessToken::new("t").with_scopes(Some("users:read,channels:history"));
        assert_eq!(slack.scopes(), Some(vec!["users:read", "channels:history"]));
        let spaced = IdpAccessToken::new("t").with_scopes(Some("a b,c  d"));
        assert_eq!(spaced.scopes(), Some(vec!["a", "b,c", "d"]));
        assert_eq!(IdpAccessToken::new("t").scopes(), None);
    }
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let access = IdpAccessToken::new("gho_visible-if-leaked");
        let refresh = IdpRefreshToken::new("ghr_visible-if-leaked");
        let caller = CallerToken::new("eyJ.visible-if-leaked");
        assert_eq!(format!("{access:?}"), "IdpAccessToken([redacted])");
        assert_eq!(format!("{refresh:?}"), "IdpRefreshToken([redacted])");
        assert_eq!(format!("{caller:?}"), "CallerToken([redacted])");
        let signed = IdpAccessToken::new("oauth1-token")
            .with_secret(Some(TokenSecret::new("oauth1-secret-visible-if-leaked")));
        assert_eq!(format!("{signed:?}"), "IdpAccessToken([redacted])");
        assert_ne!(
            signed,
            IdpAccessToken::new("oauth1-token"),
            "the secret counts"
        );
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let token: IdpAccessToken = serde_json::from_str(r#""abc""#).expect("string");
        assert_eq!(token.expose(), "abc");
        assert_eq!(token, IdpAccessToken::new("abc"));
        assert_ne!(token, IdpAccessToken::new("abd"));
    }
}
