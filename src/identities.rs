//! The caller's linked identities: which one a route's connection picks, and the token-free view
//! that `GET /identities` answers.

use serde::Serialize;

use crate::credentials::Credentials;
use crate::idp::connections::Connections;
use crate::management::{Identity, User};

/// The identity of `user` at `connection`: matched by connection name, never simply the first
/// (with linked accounts, the first is the primary login, not necessarily the one asked for).
pub fn pick<'a>(user: &'a User, connection: &str) -> Option<&'a Identity> {
    user.identities.iter().find(|i| i.connection == connection)
}

/// One identity as `GET /identities` shows it: never a token.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct IdentityView<'a> {
    /// The Auth0 connection name.
    pub connection: &'a str,
    /// The provider.
    pub provider: &'a str,
    /// The user's id at the provider.
    pub user_id: &'a str,
    /// Whether the connection is social.
    pub is_social: bool,
    /// Whether `/idp/{connection}/…` can be called: the connection is configured and Auth0 holds
    /// an access token for it.
    pub callable: bool,
    /// Whether the function can renew the token: a refresh token, a token endpoint and the IdP
    /// app's client credentials are all present.
    pub renewable: bool,
}

/// The body of `GET /identities`.
#[derive(Debug, Serialize)]
pub struct IdentitiesView<'a> {
    /// The caller's Auth0 user id (the verified `sub`).
    pub user_id: &'a str,
    /// The linked identities, primary first.
    pub identities: Vec<IdentityView<'a>>,
}

/// The token-free view of `user`'s identities.
pub fn view<'a>(
    user: &'a User,
    connections: &Connections,
    credentials: &Credentials,
) -> IdentitiesView<'a> {
    let identities = user
        .identities
        .iter()
        .map(|identity| {
            let connection = connections.get(&identity.connection);
            IdentityView {
                connection: &identity.connection,
                provider: &identity.provider,
                user_id: &identity.user_id,
                is_social: identity.is_social,
                callable: connection.is_some() && identity.access_token.is_some(),
                renewable: identity.refresh_token.is_some()
                    && connection.is_some_and(|c| c.token_url.is_some())
                    && credentials.idp_clients.contains_key(&identity.connection),
            }
        })
        .collect();
    IdentitiesView {
        user_id: &user.user_id,
        identities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        serde_json::from_value(serde_json::json!({
            "user_id": "google-oauth2|1",
            "identities": [
                {"connection": "google-oauth2", "provider": "google-oauth2", "user_id": "1", "isSocial": true,
                 "access_token": "ya29.secret", "refresh_token": "1//refresh-secret"},
                {"connection": "github", "provider": "github", "user_id": 42, "isSocial": true,
                 "access_token": "gho_secret"},
                {"connection": "Username-Password-Authentication", "provider": "auth0", "user_id": "abc", "isSocial": false}
            ]
        }))
        .expect("profile")
    }

    #[test]
    fn picks_the_identity_of_the_connection_not_the_first() {
        let user = user();
        assert_eq!(
            pick(&user, "github").map(|i| i.user_id.as_str()),
            Some("42")
        );
        assert!(pick(&user, "facebook").is_none());
    }

    #[test]
    fn view_shows_no_token_and_says_what_is_callable_and_renewable() {
        let user = user();
        let connections = Connections::new(None).expect("built-ins");
        let credentials = Credentials::parse(
            r#"{"client_id": "m", "client_secret": "s", "idp_clients": {"google-oauth2": {"client_id": "g", "client_secret": "gs"}}}"#,
        )
        .expect("credentials");
        let view = view(&user, &connections, &credentials);
        let text = serde_json::to_string(&view).expect("json");
        for secret in ["ya29.secret", "refresh-secret", "gho_secret"] {
            assert!(!text.contains(secret));
        }
        let flags: Vec<(bool, bool)> = view
            .identities
            .iter()
            .map(|i| (i.callable, i.renewable))
            .collect();
        assert_eq!(flags, [(true, true), (true, false), (false, false)]);
    }
}
