//! The provider catalogue: every built-in provider, keyed by Auth0 strategy name (the identity's
//! `provider`), kept as data in `catalogue.json` beside its JSON Schema
//! (`catalogue.schema.json`).
//!
//! An entry says where the provider's API is, what may be called there by default, how its
//! tokens are renewed, and what a team must set up in Auth0 and at the provider. The build
//! (`build.rs`) checks every entry against the schema and the rules between its fields, and
//! compiles in only what the function reads at run time, entry by entry ([`text`]); the
//! connection table ([`super::connections`]) turns those into connections. The whole entry,
//! setup prose included, is read from the data file by the generated providers page and the
//! tests ([`Entry`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The catalogue as the build split it: each strategy with the JSON text of its entry's run-time
/// members, sorted by strategy.
const SPLIT: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalogue_entries.rs"));

/// Where `strategy` stands among the entries (sorted by strategy), if it has one.
pub fn position(strategy: &str) -> Option<usize> {
    SPLIT.binary_search_by(|&(name, _)| name.cmp(strategy)).ok()
}

/// The run-time members of `strategy`'s entry, as JSON text (what a
/// [`Spec`](super::connections::Spec) is read from); `None` if it has no entry.
pub fn text(strategy: &str) -> Option<&'static str> {
    position(strategy).map(|index| SPLIT[index].1)
}

/// Every strategy with an entry, sorted (in the order of [`position`]).
pub fn strategies() -> impl ExactSizeIterator<Item = &'static str> {
    SPLIT.iter().map(|&(strategy, _)| strategy)
}

/// A second API origin that serves file content (Dropbox's `content.dropboxapi.com`): a call
/// that one of its rules allows goes there, with the connection's token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentApi {
    /// Scheme, host and base path of the content API.
    pub api_base: String,
    /// Its allow rules.
    pub allow: Vec<String>,
}

/// One provider as the data file describes it: the run-time members and the documentation.
/// Read by the providers page and the tests, never by the function ([`text`] is what it reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The provider's name as people know it.
    pub display_name: String,
    /// Which kind of Auth0 connection serves it.
    pub kind: Kind,
    /// The `provider` values Auth0 writes in the identities of such a connection; `None`: the
    /// strategy name itself (a custom social connection's are `["oauth2"]`).
    pub providers: Option<Vec<String>>,
    /// Scheme, host and base path of the provider's API, with `{param}` placeholders; `None`
    /// where the host is per user.
    pub api_base: Option<String>,
    /// Where a per-user API host comes from.
    pub api_host: Option<ApiHost>,
    /// Default allow rules (`"METHOD /path/glob"`).
    pub allow: Vec<String>,
    /// How the provider says that a token lacks a scope.
    #[serde(default)]
    pub scope_answer: ScopeAnswer,
    /// Host patterns of the provider's pre-signed download URLs.
    #[serde(default)]
    pub download_hosts: Vec<String>,
    /// A second API origin for file content, with its own rules.
    pub content_api: Option<ContentApi>,
    /// Headers the API needs on every call.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The header and format the token goes in, where it is not `Authorization: Bearer`.
    pub token_header: Option<TokenHeader>,
    /// The token endpoint for refresh grants; `None` where the provider has none.
    pub token_url: Option<String>,
    /// How the IdP app authenticates at `token_url`.
    #[serde(default)]
    pub token_auth: TokenAuth,
    /// What the token endpoint answers when JSON is not asked for.
    #[serde(default)]
    pub token_response: TokenResponse,
    /// How the provider's refresh tokens behave.
    pub refresh: Refresh,
    /// Whether the token endpoint's answer carries `expires_in`.
    pub expires_in: ExpiresIn,
    /// Guarded characters the provider's API paths need.
    pub path_characters: Option<String>,
    /// Scopes a refresh grant must send.
    #[serde(default)]
    pub refresh_scopes: Vec<String>,
    /// Names of the `{param}` placeholders.
    #[serde(default)]
    pub params: Vec<String>,
    /// What the Auth0 connection needs so that a usable (and renewable) token is stored.
    pub auth0_setup: String,
    /// What the provider's app needs.
    pub provider_setup: String,
    /// The provider's API documentation.
    pub docs: String,
    /// The provider documents consulted for this entry.
    #[serde(default)]
    pub sources: Vec<String>,
    /// What could not be confirmed from the provider's own documentation.
    pub unconfirmed: Option<String>,
}

/// Every entry of the data file, by strategy, read from the source tree: for the providers page,
/// the tests and the fuzz targets (the function itself reads only [`text`]).
pub fn entries() -> Result<BTreeMap<String, Entry>, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/idp/catalogue.json");
    let json = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Entry::all(&json)
}

impl Entry {
    /// Every entry of the catalogue text `json` (the data file), by strategy.
    pub fn all(json: &str) -> Result<BTreeMap<String, Self>, String> {
        let mut entries: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("catalogue.json: {e}"))?;
        entries.remove("$schema");
        entries
            .into_iter()
            .map(|(strategy, entry)| {
                let entry = serde_json::from_value(entry)
                    .map_err(|e| format!("catalogue.json: {strategy}: {e}"))?;
                Ok((strategy, entry))
            })
            .collect()
    }

    /// The `provider` values of the identities this entry (of `strategy`) serves.
    pub fn providers(&self, strategy: &str) -> Vec<String> {
        self.providers
            .clone()
            .unwrap_or_else(|| vec![strategy.to_owned()])
    }
}

/// A per-user API host: the pattern it must fit and where it is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiHost {
    /// The host pattern (`*.my.salesforce.com`).
    pub pattern: String,
    /// The base path under that host, prefixed to every route path (the allow rules see the
    /// route path without it); none where the allow rules name whole paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where the host comes from, in words: documentation, not compiled in, and accepted (and
    /// ignored) in `IDP_CONNECTIONS` as it always was.
    #[serde(default, skip_serializing)]
    pub from: Option<String>,
    /// JSON pointers read in order, into `{"user": <the user's root profile>, "identity": <the
    /// connection's identity>}` as the Management API returns them (`/user/urls/custom_domain`,
    /// `/identity/profileData/myshopify_domain`); a root field must be in
    /// `management::USER_FIELDS` to be returned at all.
    pub fields: Vec<String>,
}

/// A header other than `Authorization: Bearer` for the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenHeader {
    /// The header's name.
    pub name: String,
    /// Its value, with `{token}` for the token.
    pub format: String,
}

/// What a token endpoint answers when JSON is not asked for (the function always asks for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenResponse {
    /// A JSON object (RFC 6749 §5.1).
    #[default]
    Json,
    /// A form-encoded body (GitHub).
    Form,
}

/// Which kind of Auth0 connection serves a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One of Auth0's social connections.
    Social,
    /// An enterprise connection, named by the tenant (`acme-entra`).
    Enterprise,
    /// A custom social connection (Auth0's Token Vault integrations).
    Custom,
}

/// Whether a token endpoint's answer carries `expires_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ExpiresIn {
    /// Always, sometimes or never, as the provider documents it.
    Said(Presence),
    /// Left out, and the access token lives this many seconds, as documented (compiled in as
    /// the connection's lifetime).
    Documented(u64),
}

/// How often a token endpoint's answer carries `expires_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// In every answer.
    Always,
    /// In some (GitHub: only for expiring tokens).
    Sometimes,
    /// In none: the token does not expire.
    Never,
}

/// How a provider says that a token lacks a scope, beyond RFC 6750's challenge (which is read
/// for every provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeAnswer {
    /// Only a `403` with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1).
    #[default]
    Rfc6750,
    /// Google APIs: a `403` whose error details carry `ACCESS_TOKEN_SCOPE_INSUFFICIENT`.
    Google,
    /// GitHub: `X-Accepted-OAuth-Scopes` (what the call accepts) with none of them in
    /// `X-OAuth-Scopes` (what the token has), on a `403` or the `404` GitHub answers for what
    /// a token may not see.
    Github,
    /// Microsoft Graph: a `403` `Authorization_RequestDenied` or `ErrorAccessDenied`, read as a
    /// missing scope only where the rules name the scopes (Graph names none).
    Graph,
}

/// How the IdP app's client credentials travel in a refresh grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1's alternative; what
    /// GitHub, Google and Microsoft accept).
    #[default]
    Body,
    /// HTTP Basic authentication (Bitbucket).
    Basic,
}

/// How a provider's refresh tokens behave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refresh {
    /// No refresh grant: a token is renewed only by a new login.
    None,
    /// A refresh token that may be used again.
    #[default]
    RefreshToken,
    /// Each refresh answers a new refresh token, which replaces the old one (the old may still
    /// work for a while).
    Rotating,
    /// A refresh token dies when it is used: it must be presented at most once, fleet-wide.
    SingleUse,
}

impl Refresh {
    /// The name used in the catalogue, README and `GET /identities`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::RefreshToken => "refresh_token",
            Self::Rotating => "rotating",
            Self::SingleUse => "single_use",
        }
    }
}

/// `text` with each `{name}` of `params` replaced by its value; `None` if a placeholder has no
/// value. Values are checked by [`param_value`] before they get here.
pub fn fill(text: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}')? + open;
        filled.push_str(&rest[..open]);
        filled.push_str(params.get(&rest[open + 1..close])?);
        rest = &rest[close + 1..];
    }
    filled.push_str(rest);
    Some(filled)
}

/// Checks a placeholder's value: a DNS name, a tenant id or an account id (letters, digits, `-`
/// and inner dots), so that it cannot move a URL's host or path elsewhere.
pub fn param_value(name: &str, value: &str) -> Result<(), String> {
    let labels_ok = value.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if value.is_empty() || value.len() > 253 || !labels_ok {
        return Err(format!(
            "{name} must be a DNS name or an id (letters, digits, - and inner dots)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_compiled_in_with_its_run_time_members_only() {
        let all = entries().expect("catalogue.json");
        assert!(all.contains_key("github"));
        assert_eq!(strategies().len(), all.len());
        for (strategy, entry) in &all {
            let compiled: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(text(strategy).expect("compiled in")).expect("JSON");
            assert_eq!(
                compiled["allow"],
                serde_json::json!(entry.allow),
                "{strategy}"
            );
            for prose in [
                "display_name",
                "auth0_setup",
                "provider_setup",
                "unconfirmed",
            ] {
                assert!(
                    !compiled.contains_key(prose),
                    "{strategy}: {prose} compiled in"
                );
            }
            let lifetime = compiled.get("token_lifetime").and_then(|v| v.as_u64());
            match entry.expires_in {
                ExpiresIn::Documented(seconds) => assert_eq!(lifetime, Some(seconds)),
                ExpiresIn::Said(_) => assert_eq!(lifetime, None, "{strategy}"),
            }
        }
        assert!(text("nope").is_none() && position("nope").is_none());
    }

    #[test]
    fn every_entry_knows_the_providers_auth0_writes_for_it() {
        for (strategy, entry) in entries().expect("catalogue.json") {
            let providers = entry.providers(&strategy);
            match entry.kind {
                // A custom social connection's identities are `oauth2`, whatever its name.
                Kind::Custom => assert_eq!(providers, ["oauth2"], "{strategy}"),
                Kind::Social | Kind::Enterprise => assert_eq!(providers, [strategy.as_str()]),
            }
        }
    }

    #[test]
    fn fill_replaces_placeholders_and_wants_every_one() {
        let params = BTreeMap::from([("tenant".to_owned(), "contoso.example".to_owned())]);
        assert_eq!(
            fill("https://login.example/{tenant}/token", &params).as_deref(),
            Some("https://login.example/contoso.example/token")
        );
        assert_eq!(fill("https://x/{shop}", &params), None);
        assert_eq!(fill("https://x/{tenant", &params), None);
        assert_eq!(fill("https://x/", &params).as_deref(), Some("https://x/"));
    }

    #[test]
    fn param_values_cannot_move_a_url() {
        for good in [
            "contoso.onmicrosoft.com",
            "9188040d-6c67-4c5b-b112-36a304b66dad",
            "42",
        ] {
            assert!(param_value("tenant", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a/b",
            "evil.com#",
            "a..b",
            "user@host",
            "host:443",
            "-a",
            "a?b",
            ".",
            "a b",
            "%2e",
        ] {
            assert!(param_value("tenant", bad).is_err(), "{bad:?}");
        }
    }
}
