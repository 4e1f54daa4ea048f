//! The connection table: for each Auth0 connection, the one API base the function will call, the
//! methods and paths it may call there, where its IdP tokens come from, and the token endpoint for
//! refresh grants.
//!
//! Every entry of the provider catalogue ([`super::catalogue`]) is built in under its strategy
//! name. A connection of another name is served by the entry of its strategy: `strategy` in its
//! `IDP_CONNECTIONS` entry, else the identity's `provider` ([`Connections::for_strategy`]).
//! `IDP_CONNECTIONS` (JSON) overrides any field, fills an entry's parameters (a Microsoft Entra
//! tenant) or adds connections of its own. `IDP_TOKEN_SOURCE` sets the token source of every
//! connection that does not name its own.

mod checks;
mod learned;
mod resolve;
mod spec;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use url::Url;

pub use super::allow::AllowRule;
use super::catalogue;
pub use super::catalogue::{Refresh, TokenAuth};
use super::host::{HostError, HostRule};
use learned::Learned;
pub use resolve::ResolveError;
use spec::BuildError;
pub use spec::Spec;

/// One connection's entry.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The Auth0 connection name.
    pub name: String,
    /// The catalogue entry it is served by (an Auth0 strategy name); `None` for a connection of
    /// `IDP_CONNECTIONS` alone.
    pub strategy: Option<String>,
    /// The identity `provider` values its entry is for (the catalogue's `providers`): the
    /// IdP token of an identity of another provider is never sent to this API. Empty for a
    /// connection of `IDP_CONNECTIONS` alone, which is not checked.
    pub providers: Vec<String>,
    /// Scheme, host, port and base path of the IdP's API, without a trailing slash.
    pub api_base: Url,
    /// What may be called there.
    pub allow: Vec<AllowRule>,
    /// The provider's token endpoint, for refresh-token grants; `None` where it has none (or
    /// where a parameter it needs is not configured). For a token endpoint on the user's own
    /// host (`token_path_on_host`), a placeholder on [`UNRESOLVED_HOST`](super::host::UNRESOLVED_HOST)
    /// until [`Connection::for_host`] puts it on the user's checked host.
    pub token_url: Option<Url>,
    /// The path of a token endpoint on the user's own API host (`https://{host}/…` in the
    /// catalogue: Shopify's per-shop endpoint): [`Connection::for_host`] fills it with the host
    /// the `api_host` rule checked, and with nothing else.
    pub token_path_on_host: Option<String>,
    /// How the provider's refresh tokens behave.
    pub refresh: Refresh,
    /// Headers the provider expects on every call (the caller's own may override them).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The header the token goes in where it is not `Authorization: Bearer` (Shopify's
    /// `X-Shopify-Access-Token`); no `Authorization` header is sent then.
    pub token_header: Option<TokenHeader>,
    /// How the IdP app authenticates at `token_url`.
    pub token_auth: TokenAuth,
    /// The access token lifetime the provider documents, taken where a grant's answer leaves
    /// `expires_in` out (Salesforce's two hours); `None`: unknown, so the token is used for
    /// `TokenPolicy::max_age` and then looked up again.
    pub token_lifetime: Option<std::time::Duration>,
    /// Scopes to send with a refresh grant, where the provider wants them (Microsoft).
    pub refresh_scopes: Vec<String>,
    /// Where the connection's IdP tokens come from.
    pub token_source: TokenSourceKind,
    /// Characters of [`path::GUARDED`](super::path::GUARDED) that this connection's paths may
    /// hold (`IDP_CONNECTIONS`' `path_characters`); none by default.
    pub path_characters: Vec<char>,
    /// Where its pre-signed download redirects may point, followed without the token.
    pub downloads: super::download::DownloadHosts,
    /// A second API origin for file content (Dropbox's), with its own rules.
    pub content: Option<ContentOrigin>,
    /// How the provider says that a token lacks a scope (RFC 6750's challenge is read for all).
    pub scope_answer: super::catalogue::ScopeAnswer,
    /// Where the API host is per user (Salesforce, Shopify): the rule that reads and checks it;
    /// `api_base` is then a placeholder that never resolves until [`Connection::for_host`].
    pub api_host: Option<HostRule>,
}

/// A second API origin of a connection that serves file content (Dropbox's
/// `content.dropboxapi.com`): a call one of its rules allows goes there, with the connection's
/// token; every other call goes to the connection's API under its own rules.
#[derive(Debug, Clone)]
pub struct ContentOrigin {
    /// Scheme, host, port and base path of the content API.
    pub api_base: Url,
    /// What may be called there.
    pub allow: Vec<AllowRule>,
}

/// A header other than `Authorization: Bearer` that carries the token: its name, and the text
/// around the token in its value (`{token}` in the configured format).
#[derive(Debug, Clone)]
pub struct TokenHeader {
    /// The header's name.
    pub name: HeaderName,
    prefix: String,
    suffix: String,
}

impl TokenHeader {
    /// Parses a catalogue entry's or `IDP_CONNECTIONS`' `token_header`: a header name and a
    /// format holding `{token}` once, the rest of it valid in a header value.
    pub fn parse(name: &str, format: &str) -> Result<Self, String> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("token_header: bad header name {name:?}"))?;
        if matches!(name.as_str(), "cookie" | "host") {
            return Err(format!("token_header: the token cannot go in {name}"));
        }
        let (prefix, suffix) = format
            .split_once("{token}")
            .filter(|(_, suffix)| !suffix.contains("{token}"))
            .ok_or("token_header: format must hold {token} once")?;
        HeaderValue::from_str(&format!("{prefix}{suffix}"))
            .map_err(|_| "token_header: format is not a header value".to_owned())?;
        Ok(Self {
            name,
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The header's value for `token`, marked sensitive; `None` if the token cannot be one.
    pub fn value(&self, token: &str) -> Option<HeaderValue> {
        let mut value =
            HeaderValue::from_str(&format!("{}{token}{}", self.prefix, self.suffix)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// Where a connection's IdP tokens come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSourceKind {
    /// The user's `identities[]` from the Management API, renewed by the function with refresh
    /// grants.
    #[default]
    Identities,
    /// Auth0 Token Vault: Auth0 keeps and renews the tokens and hands an access token out through
    /// a token exchange.
    TokenVault,
}

impl TokenSourceKind {
    /// Parses a value of `IDP_TOKEN_SOURCE`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "identities" => Ok(Self::Identities),
            "token_vault" => Ok(Self::TokenVault),
            _ => Err("must be identities or token_vault".to_owned()),
        }
    }

    /// The name used in the configuration and in `GET /identities`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identities => "identities",
            Self::TokenVault => "token_vault",
        }
    }
}

impl Connection {
    /// Whether `method` on `segments` is allowed to a caller holding every permission the
    /// rules need ([`super::allow::verdict`] says what a given caller lacks).
    /// `segments` are read both as written and as the upstream may serve them
    /// ([`super::path::served`]); a path that cannot be served as a resource is not allowed.
    pub fn allows(&self, method: &Method, segments: &[String]) -> bool {
        let Ok(served) = super::path::served(segments) else {
            return false;
        };
        super::allow::verdict(&self.allow, method, segments, served.as_deref(), &|_| true)
            .is_allowed()
    }

    /// This connection as it serves one user: with a per-user host, the API base of the host
    /// read from `profile` (`{"user": …, "identity": …}`) and checked; otherwise itself.
    pub fn for_host(&self, profile: &serde_json::Value) -> Result<Self, HostError> {
        let Some(rule) = &self.api_host else {
            return Ok(self.clone());
        };
        let host = rule.host_for(profile)?;
        let token_url = match &self.token_path_on_host {
            // The user's own host's token endpoint (Shopify's shop): the host just checked.
            Some(path) => Some(rule.url_on(host, path)?),
            // A token endpoint on another user's host of the same pattern (a configured
            // Experience Cloud site) is not this user's: no refresh token or app secret goes
            // there.
            None => self.token_url.clone().filter(|url| match url.host_str() {
                Some(token_host) if super::host::fits(rule.pattern(), token_host) => {
                    token_host == host
                }
                _ => true,
            }),
        };
        Ok(Self {
            api_base: rule.base_on(host)?,
            token_url,
            ..self.clone()
        })
    }

    /// Whether an identity of `provider` is one this connection's entry is for: its IdP token
    /// may be sent to this API.
    pub fn serves_provider(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }

    /// Whether a refresh grant can be run at all: a token endpoint and a provider that renews.
    pub fn renews(&self) -> bool {
        self.token_url.is_some() && self.refresh != Refresh::None
    }
}

/// The connection table.
#[derive(Debug, Clone)]
pub struct Connections {
    /// `IDP_CONNECTIONS`' connections by name (a catalogue entry's name included, overridden).
    named: HashMap<String, Arc<Connection>>,
    /// The catalogue's entries that need no configuration, served under their strategy name, at
    /// each entry's [`catalogue::position`]: each built on first use, so that cold init builds
    /// only what it serves (every entry is proven to build by the unit tests).
    /// Boxed, so that making the slots at cold init touches one page, not one per entry.
    built_in: Box<[OnceLock<Option<Arc<Connection>>>]>,
    /// Connections served by their strategy's entry, as learned from identities
    /// ([`Connections::resolve`]).
    learned: Learned,
    /// `IDP_TOKEN_SOURCE`.
    default_source: TokenSourceKind,
}

impl Connections {
    /// The built-in table with `IDP_CONNECTIONS` (already parsed as a JSON object) merged over it,
    /// every connection on the Management API's identities unless it names its own source.
    pub fn new(
        overrides: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Self, String> {
        Self::with_default_source(overrides, TokenSourceKind::Identities)
    }

    /// As [`Connections::new`], with `default_source` (`IDP_TOKEN_SOURCE`) for every connection
    /// whose entry does not set `token_source`.
    pub fn with_default_source(
        overrides: Option<&serde_json::Map<String, serde_json::Value>>,
        default_source: TokenSourceKind,
    ) -> Result<Self, String> {
        let built_in = catalogue::strategies().map(|_| OnceLock::new()).collect();
        let mut table = Self {
            named: HashMap::new(),
            built_in,
            learned: Learned::default(),
            default_source,
        };
        for (name, value) in overrides.into_iter().flatten() {
            // A name no route can reach would be configured for nothing: say so at start-up.
            if !crate::routes::is_connection_name(name) {
                return Err(format!(
                    "connection {name:?}: a name is 1 to 128 letters, digits, - or _"
                ));
            }
            let connection = table
                .configured(name, value)
                .map_err(|e| format!("connection {name:?}: {e}"))?;
            table.named.insert(name.clone(), Arc::new(connection));
        }
        Ok(table)
    }

    /// Parses `IDP_CONNECTIONS` text as [`Connections::new`] would see it.
    pub fn from_json(text: &str) -> Result<Self, String> {
        Self::from_json_with_default_source(text, TokenSourceKind::Identities)
    }

    /// Parses `IDP_CONNECTIONS` text as [`Connections::with_default_source`] would see it.
    pub fn from_json_with_default_source(
        text: &str,
        default_source: TokenSourceKind,
    ) -> Result<Self, String> {
        match serde_json::from_str(text).map_err(|e| e.to_string())? {
            serde_json::Value::Object(map) => Self::with_default_source(Some(&map), default_source),
            _ => Err("must be a JSON object keyed by connection name".to_owned()),
        }
    }

    /// The connection called `name`, built in or configured.
    pub fn get(&self, name: &str) -> Option<&Connection> {
        self.named_or_built_in(name).map(|c| &**c)
    }

    /// The connection called `name`, built in or configured, shared.
    fn named_or_built_in(&self, name: &str) -> Option<&Arc<Connection>> {
        if let Some(connection) = self.named.get(name) {
            return Some(connection);
        }
        let index = catalogue::position(name)?;
        self.built_in[index]
            .get_or_init(|| self.built_in_connection(name).map(Arc::new))
            .as_ref()
    }

    /// Whether `name` is a connection this environment knows without reading anything:
    /// configured, built in, or learned from an identity before.
    pub fn is_known(&self, name: &str) -> bool {
        self.get(name).is_some() || self.learned.get(name).is_some()
    }

    /// The catalogue entry `strategy` as the connection of that name, if it needs no
    /// configuration.
    fn built_in_connection(&self, strategy: &str) -> Option<Connection> {
        match Spec::of_entry(strategy)?.build(strategy, Some(strategy), self.default_source) {
            Ok(connection) => Some(connection),
            // A parameter it needs: served only as configured.
            Err(BuildError::NoApi) => None,
            Err(BuildError::Invalid(reason)) => {
                spec::compiled_in_fault(strategy, &reason);
                None
            }
        }
    }

    /// The connection `name` (not itself in the table) served by the catalogue entry of
    /// `strategy`, the identity's `provider` as the Management API says it. `Err` says why that
    /// entry cannot serve it without configuration (no such entry, or a parameter it needs).
    /// The table's connection named after the strategy, `IDP_CONNECTIONS`' changes included,
    /// is the one followed, so that an override of `github` holds for every GitHub connection.
    pub fn for_strategy(&self, name: &str, strategy: &str) -> Result<Connection, String> {
        if catalogue::position(strategy).is_some()
            && let Some(named) = self.get(strategy)
        {
            return Ok(Connection {
                name: name.to_owned(),
                ..named.clone()
            });
        }
        let spec = Spec::of_entry(strategy)
            .ok_or_else(|| format!("no catalogue entry for strategy {strategy:?}"))?;
        let needs = spec.needs();
        spec.build(name, Some(strategy), self.default_source)
            .map_err(|error| match error {
                BuildError::NoApi => format!(
                    "strategy {strategy:?} needs an IDP_CONNECTIONS entry for {name:?} ({needs})"
                ),
                BuildError::Invalid(reason) => reason,
            })
    }

    /// The names of the connections whose tokens come from `source`, sorted.
    pub fn served_by(&self, source: TokenSourceKind) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .named
            .keys()
            .map(String::as_str)
            .chain(
                catalogue::strategies()
                    .filter(|k| !self.named.contains_key(*k))
                    // As long-lived as the names before them, for `chain`.
                    .map(|k| -> &str { k }),
            )
            .filter_map(|name| self.get(name))
            .filter(|c| c.token_source == source)
            .map(|c| c.name.as_str())
            .collect();
        names.sort_unstable();
        names
    }

    /// The connection of `IDP_CONNECTIONS` entry `value` for `name`: merged over the catalogue
    /// entry of its `strategy` (else of its name), or a connection of its own ([`spec`]).
    fn configured(&self, name: &str, value: &serde_json::Value) -> Result<Connection, String> {
        let serde_json::Value::Object(patch) = value else {
            return Err("an entry must be a JSON object".to_owned());
        };
        let strategy = match patch.get("strategy") {
            Some(serde_json::Value::String(strategy)) => Some(strategy.as_str()),
            Some(_) => return Err("strategy must be a string".to_owned()),
            None => catalogue::position(name).is_some().then_some(name),
        };
        spec::patched(strategy, patch)?
            .build(name, strategy, self.default_source)
            .map_err(|error| match error {
                BuildError::NoApi => "api_base is required for this connection".to_owned(),
                BuildError::Invalid(reason) => reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::allow::segments;
    use super::*;

    #[test]
    fn every_catalogue_entry_without_parameters_is_built_in_read_only() {
        let table = Connections::new(None).expect("built-ins");
        let entries = crate::idp::catalogue::entries().expect("catalogue");
        for (strategy, entry) in &entries {
            let Some(connection) = table.get(strategy) else {
                assert!(
                    !entry.params.is_empty() || entry.api_base.is_none(),
                    "{strategy} needs no configuration but is not built in"
                );
                continue;
            };
            assert_eq!(connection.strategy.as_deref(), Some(strategy.as_str()));
            assert_eq!(connection.api_base.scheme(), "https", "{strategy}");
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                assert!(
                    !connection.allows(&method, &segments("/anything")),
                    "{strategy} allows {method} by default"
                );
            }
        }
        assert!(!table.get("facebook").expect("fb").renews());
        assert!(table.get("google-oauth2").expect("g").renews());
        assert!(table.get("waad").is_some(), "Graph needs no tenant");
        assert!(
            !table.get("waad").expect("waad").renews(),
            "no tenant, no token endpoint"
        );
    }

    #[test]
    fn a_connection_of_another_name_is_served_by_its_strategy() {
        let table = Connections::from_json(
            r#"{"acme-entra": {"strategy": "waad", "tenant": "contoso.onmicrosoft.com"}}"#,
        )
        .expect("valid");
        let entra = table.get("acme-entra").expect("configured");
        assert_eq!(entra.strategy.as_deref(), Some("waad"));
        assert_eq!(entra.api_base.as_str(), "https://graph.microsoft.com/");
        assert_eq!(
            entra.token_url.as_ref().map(Url::as_str),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
        );
        assert_eq!(entra.refresh, Refresh::Rotating);
        assert!(entra.allows(&Method::GET, &segments("/v1.0/me")));

        let github = table.for_strategy("corp-github", "github").expect("github");
        assert_eq!(github.name, "corp-github");
        assert_eq!(github.strategy.as_deref(), Some("github"));
        assert_eq!(github.headers.len(), 2);
        assert!(table.for_strategy("x", "auth0").is_err());
        assert!(table.for_strategy("x", "oauth2").is_err());
    }

    #[test]
    fn parameters_are_required_checked_and_nothing_else_is_accepted() {
        for bad in [
            r#"{"acme-entra": {"strategy": "waad"}}"#,
            r#"{"acme-entra": {"strategy": "waad", "tenant": 42}}"#,
            r#"{"acme-entra": {"strategy": "waad", "tenant": "evil.com/x?"}}"#,
            r#"{"acme-entra": {"strategy": "waad", "tenant": "a", "shop": "b"}}"#,
            r#"{"acme-entra": {"strategy": "nope", "api_base": "https://x.example"}}"#,
            r#"{"mine": {"api_base": "https://x.example", "tenant": "a"}}"#,
        ] {
            assert!(Connections::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_endpoint_on_the_users_host_is_each_users_own_shop() {
        let table = Connections::from_json(
            r#"{"standin-shop": {"strategy": "shopify", "api_host_origin": "http://127.0.0.1:9000"},
                "one-shop": {"strategy": "shopify", "api_base": "https://acme.myshopify.com"},
                "mine": {"api_host": {"pattern": "*.example.com", "fields": ["/user/host"]},
                         "token_url": "https://{host}/oauth/token"},
                "pinned": {"api_base": "https://api.example.com/v2",
                           "token_url": "https://{host}/oauth/token"}}"#,
        )
        .expect("valid");
        // Built in, with no parameter: renewable, its token endpoint nowhere until the host is
        // known.
        let shopify = table.get("shopify").expect("built in");
        assert!(shopify.renews());
        assert_eq!(
            shopify.token_url.as_ref().and_then(Url::host_str),
            Some(super::super::host::UNRESOLVED_HOST)
        );
        let shop = |host: &str| serde_json::json!({"user": {}, "identity": {"profileData": {"myshopify_domain": host}}});
        let token_url = |connection: &Connection, host: &str| {
            connection
                .for_host(&shop(host))
                .map(|c| c.token_url.map(|u| u.to_string()))
        };
        for host in ["acme.myshopify.com", "other-store.myshopify.com"] {
            assert_eq!(
                token_url(shopify, host),
                Ok(Some(format!("https://{host}/admin/oauth/access_token"))),
                "each shop's own"
            );
        }
        // Only the host the pattern let through; a refused one gets no token endpoint at all.
        for refused in [
            "evil.example",
            "a.b.myshopify.com",
            "acme.myshopify.com:8443",
        ] {
            assert_eq!(token_url(shopify, refused), Err(HostError::Refused));
        }
        let standin = table.get("standin-shop").expect("configured");
        assert_eq!(
            token_url(standin, "acme.myshopify.com"),
            Ok(Some(
                "http://127.0.0.1:9000/acme.myshopify.com/admin/oauth/access_token".to_owned()
            ))
        );
        // One shop pinned for every user: its token endpoint is on that shop.
        let one = table
            .get("one-shop")
            .expect("pinned, with no shop parameter");
        assert!(one.api_host.is_none() && one.renews());
        assert_eq!(
            one.token_url.as_ref().map(Url::as_str),
            Some("https://acme.myshopify.com/admin/oauth/access_token")
        );
        // The same for a connection of its own.
        let mine = table.get("mine").expect("mine");
        let profile = serde_json::json!({"user": {"host": "a.example.com"}});
        assert_eq!(
            mine.for_host(&profile)
                .expect("inside")
                .token_url
                .map(String::from),
            Some("https://a.example.com/oauth/token".to_owned())
        );
        let pinned = table.get("pinned").expect("pinned");
        assert_eq!(
            pinned.token_url.as_ref().map(Url::as_str),
            Some("https://api.example.com/oauth/token")
        );
        // `{host}` is a whole host, never part of one or a path segment.
        for bad in [
            r#"{"mine": {"api_base": "https://a.example.com", "token_url": "https://{host}.evil.example/t"}}"#,
            r#"{"mine": {"api_base": "https://a.example.com", "token_url": "https://evil.example/{host}/t"}}"#,
            r#"{"mine": {"api_base": "https://a.example.com", "token_url": "http://{host}/t"}}"#,
            r#"{"mine": {"api_base": "https://a.example.com", "token_url": "https://{host}/t?x=1"}}"#,
            r#"{"mine": {"api_base": "https://a.example.com", "token_url": "https://{host}/a/../t"}}"#,
            r#"{"mine": {"api_base": "https://a.example.com", "token_url": "https://{host}:8443/t"}}"#,
        ] {
            assert!(Connections::from_json(bad).is_err(), "{bad}");
        }
        // The former parameter: refused, saying what to write instead.
        let error = Connections::from_json(r#"{"shopify": {"shop": "acme"}}"#)
            .expect_err("the shop parameter is gone");
        assert!(
            error.contains("`shop` is no longer a parameter") && error.contains("api_base"),
            "{error}"
        );
    }

    #[test]
    fn x_is_built_in_and_a_token_header_may_be_configured() {
        let table = Connections::from_json(
            r#"{"x-oauth1": {"strategy": "twitter"},
                "shop": {"api_base": "https://shop.example.com",
                         "token_header": {"name": "X-Shopify-Access-Token", "format": "{token}"}},
                "github": {"token_header": {"name": "Authorization", "format": "token {token}"}}}"#,
        )
        .expect("valid");
        let x = table
            .get("twitter")
            .expect("X serves without configuration");
        assert_eq!(x.api_base.as_str(), "https://api.x.com/");
        assert!(x.token_header.is_none());
        assert!(table.get("x-oauth1").is_some());
        let shop = table.get("shop").expect("shop");
        let header = shop.token_header.as_ref().expect("token header");
        assert_eq!(header.name, "x-shopify-access-token");
        let value = header.value("shpat_1").expect("a value");
        assert!(value.is_sensitive());
        assert_eq!(value, "shpat_1");
        let github = table.get("github").expect("github").token_header.as_ref();
        assert_eq!(
            github.and_then(|h| h.value("gho_1")).expect("value"),
            "token gho_1"
        );
        assert!(header.value("bad\ntoken").is_none());
        for bad in [
            r#"{"shop": {"api_base": "https://s.example", "token_header": {"name": "X-T", "format": "token"}}}"#,
            r#"{"shop": {"api_base": "https://s.example", "token_header": {"name": "X-T", "format": "{token}{token}"}}}"#,
            r#"{"shop": {"api_base": "https://s.example", "token_header": {"name": "Cookie", "format": "{token}"}}}"#,
            r#"{"shop": {"api_base": "https://s.example", "token_header": {"name": "X T", "format": "{token}"}}}"#,
            r#"{"shop": {"api_base": "https://s.example", "token_header": {"name": "X-T", "format": "a\n{token}"}}}"#,
            r#"{"shop": {"api_base": "https://s.example", "token_header": {"name": "X-T"}}}"#,
        ] {
            assert!(Connections::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overrides_merge_and_add_connections() {
        let table = Connections::from_json(
            r#"{"github": {"api_base": "http://127.0.0.1:9999", "allow": ["GET /user", "POST /user/repos"]},
                "my-oauth": {"api_base": "https://api.example.com/v2", "token_url": "https://auth.example.com/token"}}"#,
        )
        .expect("valid");
        let github = table.get("github").expect("github");
        assert_eq!(github.api_base.as_str(), "http://127.0.0.1:9999/");
        assert!(github.allows(&Method::POST, &segments("/user/repos")));
        assert!(!github.allows(&Method::GET, &segments("/user/repos")));
        assert_eq!(github.headers.len(), 2, "built-in headers kept");
        let custom = table.get("my-oauth").expect("custom");
        assert_eq!(custom.api_base.path(), "/v2");
        assert!(custom.allows(&Method::GET, &segments("/me")));
    }

    #[test]
    fn bad_overrides_are_refused() {
        for bad in [
            r#"{"new": {}}"#,
            r#"{"github": {"api_base": "http://api.github.com"}}"#,
            r#"{"github": {"api_base": "https://u:p@api.github.com"}}"#,
            r#"{"github": {"api_base": "https://api.github.com?x=1"}}"#,
            r#"{"github": {"allow": ["DROP TABLE"]}}"#,
            r#"{"github": {"apibase": "https://x"}}"#,
            r#"{"github": {"headers": {"authorization": "Bearer x"}}}"#,
            r#"{"github": []}"#,
            r#"{"my.conn": {"api_base": "https://api.example.com"}}"#,
            r#"{"": {"api_base": "https://api.example.com"}}"#,
            r#"{"github": {"token_source": "vault"}}"#,
            r#"[]"#,
        ] {
            assert!(Connections::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_sources_default_per_deployment_and_may_be_set_per_connection() {
        let overrides = r#"{"github": {"token_source": "token_vault"},
                            "my-oauth": {"api_base": "https://api.example.com"}}"#;
        let table = Connections::from_json(overrides).expect("valid");
        let source = |table: &Connections, name: &str| table.get(name).expect(name).token_source;
        assert_eq!(source(&table, "github"), TokenSourceKind::TokenVault);
        assert_eq!(source(&table, "google-oauth2"), TokenSourceKind::Identities);
        assert_eq!(source(&table, "my-oauth"), TokenSourceKind::Identities);
        assert_eq!(table.served_by(TokenSourceKind::TokenVault), ["github"]);

        let vault = Connections::from_json_with_default_source(
            r#"{"google-oauth2": {"token_source": "identities"}}"#,
            TokenSourceKind::TokenVault,
        )
        .expect("valid");
        assert_eq!(source(&vault, "github"), TokenSourceKind::TokenVault);
        assert_eq!(source(&vault, "google-oauth2"), TokenSourceKind::Identities);
        assert_eq!(
            TokenSourceKind::parse(" token_vault ").map(TokenSourceKind::as_str),
            Ok("token_vault")
        );
        assert!(TokenSourceKind::parse("vault").is_err());
    }

    #[test]
    fn every_catalogue_entry_builds_with_its_parameters_given() {
        // Built lazily at run time, so a bad field must fail here, not as a 404 later.
        let entries = crate::idp::catalogue::entries().expect("catalogue");
        for (strategy, entry) in &entries {
            let mut patch = serde_json::Map::new();
            for param in &entry.params {
                patch.insert(param.clone(), "example".into());
            }
            let built = spec::patched(Some(strategy), &patch).map(|spec| {
                spec.build(strategy, Some(strategy), TokenSourceKind::Identities)
                    .map(|c| c.api_base)
            });
            assert!(
                matches!(built, Ok(Ok(_))),
                "{strategy}: {:?}",
                built.map(|b| b.map_err(|e| format!("{e:?}")))
            );
        }
    }

    #[test]
    fn a_token_vault_connection_of_its_own_name_takes_its_strategys_entry() {
        // Token Vault reads no identity: only `strategy` can say which entry serves it.
        let table = Connections::from_json(
            r#"{"corp-github": {"strategy": "github", "token_source": "token_vault"}}"#,
        )
        .expect("valid");
        let vault = table.get("corp-github").expect("configured");
        assert_eq!(vault.token_source, TokenSourceKind::TokenVault);
        assert_eq!(vault.strategy.as_deref(), Some("github"));
        assert_eq!(vault.api_base.as_str(), "https://api.github.com/");
        assert_eq!(vault.headers.len(), 2, "the GitHub entry's headers");
        assert!(!vault.allows(&Method::POST, &segments("/user/repos")));
        // Without it, a name the catalogue does not hold needs everything said.
        let alone = Connections::from_json(r#"{"corp-github": {"token_source": "token_vault"}}"#);
        assert!(alone.is_err_and(|e| e.contains("api_base is required")));
    }

    #[test]
    fn per_user_host_entries_serve_with_a_base_that_cannot_resolve_until_the_host_is_read() {
        let table = Connections::from_json(
            r#"{"acme-site": {"strategy": "salesforce-community", "community_domain": "acme.my.site.com",
                              "api_host": {"pattern": "*.my.site.com", "fields": ["/user/urls/rest"]}},
                "one-org": {"strategy": "salesforce", "api_base": "https://acme.my.salesforce.com"}}"#,
        )
        .expect("valid");
        let salesforce = table.get("salesforce").expect("built in");
        assert_eq!(
            salesforce.api_base.host_str(),
            Some(super::super::host::UNRESOLVED_HOST)
        );
        let profile = serde_json::json!({"user": {"urls": {"custom_domain": "https://acme.my.salesforce.com"}}});
        let serving = salesforce.for_host(&profile).expect("inside the pattern");
        assert_eq!(serving.api_base.as_str(), "https://acme.my.salesforce.com/");
        assert!(serving.allows(&Method::GET, &segments("/services/data/v59.0/limits")));
        let site = table.get("acme-site").expect("configured");
        let profile = serde_json::json!({"user": {"urls": {"rest": "https://shop.my.site.com/services/data/v{version}/"}}});
        let other_site = site.for_host(&profile).expect("site");
        assert_eq!(other_site.api_base.host_str(), Some("shop.my.site.com"));
        // The configured token endpoint is acme's site: not one to send shop's refresh token to.
        assert!(site.token_url.is_some() && other_site.token_url.is_none());
        let own = serde_json::json!({"user": {"urls": {"rest": "https://acme.my.site.com/services/data/"}}});
        assert_eq!(site.for_host(&own).expect("site").token_url, site.token_url);
        // A token endpoint off the pattern (Salesforce's login host) serves every org.
        assert_eq!(serving.token_url, salesforce.token_url);
        assert!(serving.token_url.is_some());
        // An api_base instead: one org for every user, no host read.
        let one = table.get("one-org").expect("configured");
        assert!(one.api_host.is_none());
        assert_eq!(
            one.for_host(&serde_json::json!({}))
                .expect("fixed")
                .api_base,
            one.api_base
        );
        for bad in [
            r#"{"salesforce": {"api_host_origin": "https://evil.example"}}"#,
            r#"{"github": {"api_host_origin": "http://127.0.0.1:9"}}"#,
            r#"{"salesforce": {"api_host_origin": "http://127.0.0.1:9/#x"}}"#,
            r#"{"salesforce": {"api_host_origin": "http://:pw@127.0.0.1:9"}}"#,
            r#"{"salesforce": {"api_host": {"pattern": "*", "fields": ["/user/x"]}}}"#,
            r#"{"salesforce": {"api_host": {"pattern": "*.x.com", "fields": ["x"]}}}"#,
        ] {
            assert!(Connections::from_json(bad).is_err(), "{bad}");
        }
    }
}
