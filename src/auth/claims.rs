//! The claims of a caller's token the function uses, type-checked and checked against the
//! deployment's rules on every sight of the token.

use std::time::Duration;

use serde_json::{Map, Value};

use super::verified::Window;
use super::{AuthError, Rules};

/// Clock skew tolerated on `exp` and `nbf`.
pub(super) const LEEWAY: Duration = Duration::from_secs(30);

/// The refusal jsonwebtoken's error stands for.
pub(super) fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => AuthError::Algorithm,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::Claim(claim_name(claim))
        }
        _ => AuthError::Malformed,
    }
}

/// A `'static` name for the claims jsonwebtoken reports, so errors need no allocation.
fn claim_name(claim: &str) -> &'static str {
    ["exp", "nbf", "iss", "aud", "sub"]
        .into_iter()
        .find(|c| *c == claim)
        .unwrap_or("registered")
}

/// The claims the function uses, type-checked: jsonwebtoken validates values, not every type.
pub(super) struct Claims<'a> {
    /// The user: the verified subject.
    pub(super) sub: &'a str,
    /// The issuer.
    pub(super) iss: &'a str,
    /// The audiences, one or several.
    pub(super) aud: Vec<&'a str>,
    /// Expiry, Unix seconds.
    pub(super) exp: u64,
    /// Not before, Unix seconds.
    pub(super) nbf: Option<u64>,
    /// The space-separated scopes.
    pub(super) scope: Option<&'a str>,
    /// RBAC permissions.
    pub(super) permissions: Vec<&'a str>,
}

impl<'a> Claims<'a> {
    /// The claims of `map`, each of the type the function reads it as.
    pub(super) fn from_map(map: &'a Map<String, Value>) -> Result<Self, AuthError> {
        let sub = match map.get("sub") {
            // `.` and `..` would be dot segments in the Management API's user path, naming
            // another endpoint; no Auth0 user id is one.
            Some(Value::String(s)) if !s.is_empty() && s != "." && s != ".." => s.as_str(),
            _ => return Err(AuthError::Claim("sub")),
        };
        let Some(Value::String(iss)) = map.get("iss") else {
            return Err(AuthError::Claim("iss"));
        };
        let aud = match map.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(AuthError::Claim("aud")))
                .collect::<Result<_, _>>()?,
            _ => return Err(AuthError::Claim("aud")),
        };
        let seconds = |claim: &'static str| match map.get(claim) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(AuthError::Claim(claim)),
            Some(_) => Err(AuthError::Claim(claim)),
        };
        let exp = seconds("exp")?.ok_or(AuthError::Claim("exp"))?;
        let nbf = seconds("nbf")?;
        seconds("iat")?;
        let scope = match map.get("scope") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(AuthError::Claim("scope")),
        };
        let permissions = match map.get("permissions") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(AuthError::Claim("permissions")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(AuthError::Claim("permissions")),
        };
        Ok(Self {
            sub,
            iss: iss.as_str(),
            aud,
            exp,
            nbf,
            scope,
            permissions,
        })
    }

    /// The checks of the values, at `now`, in jsonwebtoken's order: run on every sight of a
    /// token, after jsonwebtoken's own on the first, so that a token seen before is held to the
    /// same rules at the time it is presented again.
    pub(super) fn check(&self, rules: &Rules, now: u64) -> Result<(), AuthError> {
        let window = self.window();
        if now > window.until {
            return Err(AuthError::Expired);
        }
        if now < window.from {
            return Err(AuthError::NotYetValid);
        }
        if self.iss != rules.issuer {
            return Err(AuthError::Issuer);
        }
        if !self.aud.contains(&rules.audience.as_str()) {
            return Err(AuthError::Audience);
        }
        Ok(())
    }

    /// When the token may be used: `nbf` to `exp`, each widened by [`LEEWAY`].
    pub(super) fn window(&self) -> Window {
        let leeway = LEEWAY.as_secs();
        Window {
            from: self.nbf.map_or(0, |nbf| nbf.saturating_sub(leeway)),
            until: self.exp.saturating_add(leeway),
        }
    }

    /// The words of the `scope` claim, then the RBAC `permissions`.
    pub(super) fn scopes(&self) -> Vec<String> {
        let words = self.scope.into_iter().flat_map(str::split_ascii_whitespace);
        words
            .chain(self.permissions.iter().copied())
            .map(str::to_owned)
            .collect()
    }
}
