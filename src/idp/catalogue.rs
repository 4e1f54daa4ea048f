//! The provider catalogue: every built-in provider, keyed by Auth0 strategy name (the identity's
//! `provider`), kept as data in `catalogue.json` and compiled into the binary.
//!
//! An entry says where the provider's API is, what may be called there by default, how its
//! tokens are renewed, and what a team must set up in Auth0 and at the provider. The connection
//! table ([`super::connections`]) turns entries into connections; the unit tests below and
//! `tests/catalogue.rs` prove every entry valid, so a malformed entry fails the tests, never a cold
//! start.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The catalogue as compiled in.
pub const CATALOGUE_JSON: &str = include_str!("catalogue.json");

/// The catalogue split into its entries by the build (`build.rs`): each strategy with its
/// entry's JSON text, sorted by strategy.
const SPLIT: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalogue_entries.rs"));

/// One provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The provider's name as people know it.
    pub display_name: String,
    /// Which kind of Auth0 connection serves it.
    pub kind: Kind,
    /// The `provider` values Auth0 writes in the identities of such a connection: an IdP token
    /// goes only to the API of the provider that issued it. `None`: the strategy name itself,
    /// as Auth0 writes for its social and enterprise connections; a custom social connection
    /// (a Marketplace one such as Discord) is `oauth2`, and must say so.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// Scheme, host and base path of the provider's API; `{param}` placeholders are filled from
    /// the connection's `IDP_CONNECTIONS` entry. `None` where the host is per user.
    pub api_base: Option<String>,
    /// Where a per-user API host comes from, and the pattern it must fit; `None` for a fixed
    /// `api_base` ([`super::host`]).
    #[serde(default)]
    pub api_host: Option<ApiHost>,
    /// Default allow rules (`"METHOD /path/glob"`), read-only unless there is a reason.
    pub allow: Vec<String>,
    /// Headers the API needs on every call (API versions, media types).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The header and format the token goes in; `None`: `Authorization: Bearer`. With one, no
    /// `Authorization` header is sent.
    #[serde(default)]
    pub token_header: Option<TokenHeader>,
    /// The token endpoint for refresh grants, with `{param}` placeholders; `None` where the
    /// provider has no refresh grant.
    pub token_url: Option<String>,
    /// How the IdP app authenticates at `token_url`.
    #[serde(default)]
    pub token_auth: TokenAuth,
    /// How the provider's refresh tokens behave.
    pub refresh: Refresh,
    /// What the token endpoint answers.
    #[serde(default)]
    pub token_response: TokenResponse,
    /// Whether the token endpoint's answer carries `expires_in`: `"always"`, `"sometimes"`,
    /// `"never"`, or the documented lifetime in seconds where it is left out.
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    /// Whether Auth0 stores an OAuth 1.0a `access_token_secret` (X in its `oauth1` mode): an
    /// identity that carries one has its calls signed (RFC 5849, [`super::oauth1`]) with the
    /// secret's `idp_clients.<connection>`; one without is called with its bearer token.
    #[serde(default)]
    pub oauth1: bool,
    /// Characters refused in paths by default that the provider's API paths need (Discord's
    /// `@` in `/users/@me`), as `IDP_CONNECTIONS`' `path_characters`.
    #[serde(default)]
    pub path_characters: Option<String>,
    /// Scopes a refresh grant must send.
    #[serde(default)]
    pub refresh_scopes: Vec<String>,
    /// Names of the `{param}` placeholders, each a field of the connection's `IDP_CONNECTIONS`
    /// entry (`{"acme-entra": {"strategy": "waad", "tenant": "contoso.onmicrosoft.com"}}`).
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
    #[serde(default)]
    pub unconfirmed: Option<String>,
}

/// A per-user API host: the pattern it must fit and where it is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiHost {
    /// The host pattern (`*.my.salesforce.com`).
    pub pattern: String,
    /// The base path under that host, prefixed to every route path (the allow rules see the
    /// route path without it); none where the allow rules name whole paths.
    #[serde(default)]
    pub path: Option<String>,
    /// Where the host comes from, in words.
    #[serde(default)]
    pub from: Option<String>,
    /// JSON pointers read in order, into `{"user": <the user's root profile>, "identity": <the
    /// connection's identity>}` as the Management API returns them (`/user/urls/custom_domain`,
    /// `/identity/profileData/myshopify_domain`); a root field must be in
    /// `management::USER_FIELDS` to be returned at all.
    pub fields: Vec<String>,
}

/// A header other than `Authorization: Bearer` for the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenHeader {
    /// The header's name.
    pub name: String,
    /// Its value, with `{token}` for the token.
    pub format: String,
}

/// What a token endpoint answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenResponse {
    /// A JSON object (RFC 6749 §5.1).
    #[default]
    Json,
    /// A form-encoded body unless JSON is asked for (GitHub).
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

/// How the IdP app's client credentials travel in a refresh grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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

impl Entry {
    /// The access token lifetime the provider documents for answers that leave `expires_in` out
    /// (`expires_in` given as a number of seconds).
    pub fn documented_lifetime(&self) -> Option<std::time::Duration> {
        self.expires_in
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            .map(std::time::Duration::from_secs)
    }

    /// The `provider` values of the identities this entry (of `strategy`) serves.
    pub fn providers(&self, strategy: &str) -> Vec<String> {
        self.providers
            .clone()
            .unwrap_or_else(|| vec![strategy.to_owned()])
    }
}

/// The compiled-in catalogue as the function holds it: split into entries at build time (each
/// one's JSON text), each entry parsed the first time it is needed. Parsing all 33 at once, or
/// even splitting them at cold init, cost more than cold init allows (measured in
/// `bench/run --only init`); [`entries`] parses them all, for the tests that prove every one
/// valid.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Per entry of [`SPLIT`], in its order: the entry once parsed. A cold start makes only
    /// these slots (boxed entries: one page of them), and reads no name and no entry.
    parsed: Box<[OnceLock<Option<Box<Entry>>>]>,
}

impl Catalogue {
    /// The compiled-in catalogue, as the build split it.
    pub fn compiled() -> Self {
        Self {
            parsed: SPLIT.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Where `strategy` stands among the entries (sorted by strategy), if it has one.
    pub fn position(&self, strategy: &str) -> Option<usize> {
        SPLIT.binary_search_by(|&(name, _)| name.cmp(strategy)).ok()
    }

    /// Whether `strategy` has an entry.
    pub fn contains(&self, strategy: &str) -> bool {
        self.position(strategy).is_some()
    }

    /// The entry of `strategy`, parsed on first use; `None` if there is none (or it does not
    /// parse, which the unit tests rule out).
    pub fn get(&self, strategy: &str) -> Option<&Entry> {
        let index = self.position(strategy)?;
        self.parsed[index]
            .get_or_init(|| serde_json::from_str(SPLIT[index].1).ok())
            .as_deref()
    }

    /// Every strategy with an entry, sorted (in the order of [`Catalogue::position`]).
    pub fn strategies(&self) -> impl Iterator<Item = &'static str> + use<> {
        SPLIT.iter().map(|&(strategy, _)| strategy)
    }
}

/// Every entry by strategy name, sorted.
pub fn entries() -> Result<BTreeMap<String, Entry>, String> {
    serde_json::from_str(CATALOGUE_JSON).map_err(|e| format!("catalogue.json: {e}"))
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
    fn the_catalogue_parses() {
        let entries = entries().expect("catalogue.json");
        assert!(entries.contains_key("github"));
        for (strategy, entry) in &entries {
            for param in &entry.params {
                assert!(
                    entry
                        .api_base
                        .iter()
                        .chain(&entry.token_url)
                        .any(|t| t.contains(&format!("{{{param}}}"))),
                    "{strategy}: param {param} is used nowhere"
                );
            }
        }
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
    fn every_entry_parses_when_first_needed() {
        let all = entries().expect("catalogue.json");
        let lazy = Catalogue::compiled();
        assert_eq!(lazy.strategies().count(), all.len());
        for strategy in lazy.strategies() {
            let entry = lazy.get(strategy).expect("parses");
            assert_eq!(entry.display_name, all[strategy].display_name);
        }
        assert!(lazy.get("nope").is_none() && !lazy.contains("nope"));
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
