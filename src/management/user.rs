//! A user's profile as the Management API gives it, reduced to the fields the function asks for.

use serde::{Deserialize, Deserializer};

use crate::secret::{IdpAccessToken, IdpRefreshToken, TokenSecret};

/// A user's profile, reduced to the fields the function asks for.
#[derive(Debug, Deserialize)]
pub struct User {
    /// The Auth0 user id.
    pub user_id: String,
    /// The linked identities; the first is the primary one.
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// The accounts connected for Token Vault through Connected Accounts (My Account API):
    /// Auth0 keeps them beside `identities`, with the scopes granted.
    #[serde(default)]
    pub connected_accounts: Vec<ConnectedAccount>,
    /// The root profile fields a per-user API host is read from (`urls`, `myshopify_domain`:
    /// [`super::USER_FIELDS`]); nothing else is asked for.
    #[serde(flatten)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

/// An account the user connected for Token Vault, as the Management API shows it (never a token:
/// Auth0 keeps those in Token Vault).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ConnectedAccount {
    /// The Auth0 connection.
    pub connection: String,
    /// The scopes the user granted at the provider, where Auth0 says.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// One identity of a user at one connection. `Debug` never shows the tokens.
#[derive(Debug, Deserialize)]
pub struct Identity {
    /// The Auth0 connection name, e.g. `github`, `google-oauth2`.
    pub connection: String,
    /// The provider, e.g. `github`, `google-oauth2`, `oauth2`.
    pub provider: String,
    /// The user's id at the provider (a number for some providers, a string for others).
    #[serde(deserialize_with = "string_or_number")]
    pub user_id: String,
    /// Whether the connection is a social one.
    #[serde(rename = "isSocial", default)]
    pub is_social: bool,
    /// The IdP access token Auth0 stored at the last login.
    pub access_token: Option<IdpAccessToken>,
    /// The OAuth 1.0a token secret, where the connection speaks OAuth 1.0a (X in its `oauth1`
    /// mode): the access token is then signed with, never sent as a bearer token.
    pub access_token_secret: Option<TokenSecret>,
    /// The IdP refresh token, where the provider issues one.
    pub refresh_token: Option<IdpRefreshToken>,
    /// The access token's lifetime at login, in seconds, where the provider says.
    pub expires_in: Option<u64>,
    /// The provider's profile of a linked (secondary) identity; a primary identity's is the
    /// user's root profile. Read for a per-user API host.
    #[serde(rename = "profileData", default)]
    pub profile_data: Option<serde_json::Value>,
}

impl User {
    /// The identity at `connection`: matched by connection name, never simply the first (with
    /// linked accounts, the first is the primary login, not necessarily the one asked for).
    pub fn identity(&self, connection: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.connection == connection)
    }

    /// What a per-user API host's JSON pointers read: `{"user": <root fields>, "identity":
    /// <the identity at connection>}`. The root fields are the primary identity's (Auth0 keeps
    /// a linked identity's own in its `profileData`), so they are read only where the identity
    /// at `connection` is the primary one: a linked Salesforce identity never takes the host of
    /// another org the user first signed in with.
    pub fn host_view(&self, connection: &str) -> serde_json::Value {
        let identity = self.identity(connection);
        let primary = self
            .identities
            .first()
            .is_some_and(|first| first.connection == connection);
        let root = if primary {
            serde_json::Value::Object(self.profile.clone())
        } else {
            serde_json::Value::Null
        };
        serde_json::json!({
            "user": root,
            "identity": {"profileData": identity.and_then(|i| i.profile_data.as_ref())},
        })
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Text(text) => text,
        Id::Number(number) => number.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_numeric_ids_and_hide_tokens() {
        let user: User =
            serde_json::from_str(include_str!("../../tests/fixtures/management-user.json"))
                .expect("sample profile");
        assert_eq!(user.identities.len(), 2);
        let github = &user.identities[1];
        assert_eq!(github.connection, "github");
        assert_eq!(github.user_id, "1001");
        assert!(github.is_social);
        let debug = format!("{user:?}");
        assert!(!debug.contains("ya29."), "{debug}");
        assert!(!debug.contains("gho_"), "{debug}");
    }

    #[test]
    fn an_oauth1_identity_carries_its_token_secret_hidden() {
        let identity: Identity = serde_json::from_value(serde_json::json!({
            "connection": "twitter", "provider": "twitter", "user_id": 42, "isSocial": true,
            "access_token": "42-tok", "access_token_secret": "ts-hidden"
        }))
        .expect("an oauth1 identity");
        let secret = identity.access_token_secret.as_ref().expect("secret");
        assert_eq!(secret.expose(), "ts-hidden");
        assert!(!format!("{identity:?}").contains("ts-hidden"));
    }

    #[test]
    fn every_root_field_a_host_is_read_from_is_asked_for() {
        let asked: Vec<&str> = super::super::USER_FIELDS.split(',').collect();
        for (strategy, entry) in crate::idp::catalogue::entries().expect("catalogue") {
            for pointer in entry.api_host.iter().flat_map(|h| &h.fields) {
                if let Some(rest) = pointer.strip_prefix("/user/") {
                    let field = rest.split('/').next().unwrap_or_default();
                    assert!(
                        asked.contains(&field),
                        "{strategy}: {field} not in USER_FIELDS"
                    );
                }
            }
        }
    }

    #[test]
    fn the_host_view_holds_root_fields_and_the_identitys_profile() {
        let user: User = serde_json::from_value(serde_json::json!({
            "user_id": "auth0|1", "urls": {"custom_domain": "https://a.my.salesforce.com"},
            "identities": [{"connection": "shop", "provider": "shopify", "user_id": "1",
                            "profileData": {"myshopify_domain": "s.myshopify.com"}}]
        }))
        .expect("a profile");
        let view = user.host_view("shop");
        assert_eq!(
            view.pointer("/user/urls/custom_domain")
                .and_then(|v| v.as_str()),
            Some("https://a.my.salesforce.com")
        );
        assert_eq!(
            view.pointer("/identity/profileData/myshopify_domain")
                .and_then(|v| v.as_str()),
            Some("s.myshopify.com")
        );
        assert!(
            user.host_view("other")
                .pointer("/identity/profileData/x")
                .is_none()
        );
    }

    #[test]
    fn a_linked_identity_never_takes_the_primary_identitys_root_fields() {
        let user: User = serde_json::from_value(serde_json::json!({
            "user_id": "salesforce|a", "urls": {"custom_domain": "https://org-a.my.salesforce.com"},
            "identities": [
                {"connection": "sf-a", "provider": "salesforce", "user_id": "a"},
                {"connection": "sf-b", "provider": "salesforce", "user_id": "b",
                 "profileData": {"urls": {"custom_domain": "https://org-b.my.salesforce.com"}}}]
        }))
        .expect("a profile");
        let host = |connection: &str, pointer: &str| {
            user.host_view(connection)
                .pointer(pointer)
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        assert_eq!(
            host("sf-a", "/user/urls/custom_domain").as_deref(),
            Some("https://org-a.my.salesforce.com")
        );
        assert_eq!(host("sf-b", "/user/urls/custom_domain"), None);
        assert_eq!(
            host("sf-b", "/identity/profileData/urls/custom_domain").as_deref(),
            Some("https://org-b.my.salesforce.com")
        );
    }
}
