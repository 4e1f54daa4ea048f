//! The caller's linked identities: the token-free view that `GET /identities` answers.

use std::borrow::Cow;

use serde::Serialize;

use crate::credentials::Credentials;
use crate::idp::connections::{Connection, Connections, TokenSourceKind};
use crate::management::User;

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
    /// an access token for it. For a connection served through Token Vault, whether Auth0 holds
    /// one is known only by asking for it: the call itself answers `reconsent_required` if not.
    pub callable: bool,
    /// Whether the token can be renewed: a refresh token, a token endpoint and the IdP app's
    /// client credentials are all present, or Auth0 renews it itself (Token Vault).
    pub renewable: bool,
    /// Where the function gets the connection's token: `identities` or `token_vault`; absent
    /// for a connection that is not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_source: Option<&'static str>,
    /// The catalogue entry (an Auth0 strategy name) that serves the connection; absent for a
    /// connection of `IDP_CONNECTIONS` alone or one that is not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// The body of `GET /identities`.
#[derive(Debug, Serialize)]
pub struct IdentitiesView<'a> {
    /// The caller's Auth0 user id (the verified `sub`).
    pub user_id: &'a str,
    /// The linked identities, primary first.
    pub identities: Vec<IdentityView<'a>>,
    /// Every configured connection served through Token Vault, linked identity or not (an
    /// account connected for Token Vault need not be one of the user's identities).
    pub token_vault_connections: Vec<&'a str>,
    /// The same connections with the user's state at each: connected or not, and the scopes
    /// granted where Auth0 says.
    pub token_vault: Vec<VaultState<'a>>,
}

/// The user's state at one Token Vault connection, as Auth0's profile tells it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct VaultState<'a> {
    /// The connection.
    pub connection: &'a str,
    /// Whether Auth0 holds the user's account there: connected through Connected Accounts, or
    /// an identity from a login through the connection (whose tokens Token Vault keeps too).
    pub connected: bool,
    /// The scopes granted, where a connected account says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<&'a [String]>,
}

/// The token-free view of `user`'s identities.
pub fn view<'a>(
    user: &'a User,
    connections: &'a Connections,
    credentials: &Credentials,
) -> IdentitiesView<'a> {
    let identities = user
        .identities
        .iter()
        .map(|identity| {
            // A connection not in the table is served by its strategy's entry, if one can.
            let resolved = match connections.get(&identity.connection) {
                Some(connection) => Some(Cow::Borrowed(connection)),
                None => connections
                    .for_strategy(&identity.connection, &identity.provider)
                    .ok()
                    .map(Cow::Owned),
            };
            let connection = resolved.as_deref();
            let source = connection.map(|c| c.token_source);
            let (callable, renewable) = match source {
                None => (false, false),
                Some(TokenSourceKind::TokenVault) => (true, true),
                // An identity of another provider than the entry's is never called.
                Some(TokenSourceKind::Identities)
                    if !connection.is_some_and(|c| c.serves_provider(&identity.provider)) =>
                {
                    (false, false)
                }
                Some(TokenSourceKind::Identities) => (
                    identity.access_token.is_some(),
                    identity.refresh_token.is_some()
                        && connection.is_some_and(Connection::renews)
                        && credentials.idp_clients.contains_key(&identity.connection),
                ),
            };
            IdentityView {
                connection: &identity.connection,
                provider: &identity.provider,
                user_id: &identity.user_id,
                is_social: identity.is_social,
                callable,
                renewable,
                token_source: source.map(TokenSourceKind::as_str),
                strategy: connection.and_then(|c| c.strategy.clone()),
            }
        })
        .collect();
    let token_vault_connections = connections.served_by(TokenSourceKind::TokenVault);
    let token_vault = token_vault_connections
        .iter()
        .map(|&name| {
            let account = user
                .connected_accounts
                .iter()
                .find(|a| a.connection == name);
            VaultState {
                connection: name,
                connected: account.is_some() || user.identity(name).is_some(),
                scopes: account.and_then(|a| a.scopes.as_deref()),
            }
        })
        .collect();
    IdentitiesView {
        user_id: &user.user_id,
        identities,
        token_vault_connections,
        token_vault,
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
            user.identity("github").map(|i| i.user_id.as_str()),
            Some("42")
        );
        assert!(user.identity("facebook").is_none());
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
        assert_eq!(view.identities[0].token_source, Some("identities"));
        assert_eq!(view.identities[2].token_source, None);
        assert!(view.token_vault_connections.is_empty());
    }

    #[test]
    fn view_says_which_connections_are_served_through_token_vault() {
        let user = user();
        let connections = Connections::from_json(
            r#"{"github": {"token_source": "token_vault"}, "my-vault": {"api_base": "https://api.example.com", "token_source": "token_vault"}}"#,
        )
        .expect("valid");
        let credentials =
            Credentials::parse(r#"{"client_id": "m", "client_secret": "s"}"#).expect("valid");
        let view = view(&user, &connections, &credentials);
        let github = &view.identities[1];
        assert_eq!(github.token_source, Some("token_vault"));
        assert!(github.callable && github.renewable);
        assert_eq!(view.token_vault_connections, ["github", "my-vault"]);
    }
}
