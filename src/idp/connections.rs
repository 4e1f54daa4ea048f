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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use url::Url;

pub use super::allow::AllowRule;
use super::catalogue::{self, Entry};
pub use super::catalogue::{Refresh, TokenAuth};

/// Connections served by their strategy's catalogue entry, learned from identities
/// ([`Connections::for_strategy`]), shared by the invocations of one execution environment.
/// Bounded: a name gets here only from an identity the Management API returned.
#[derive(Debug, Default)]
pub struct Learned(std::sync::Mutex<HashMap<String, Arc<Connection>>>);

/// Most connections learned; past it, new ones are served but not kept (a tenant has few connections).
const MAX_LEARNED: usize = 256;

impl Learned {
    /// The connection learned for `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Connection>> {
        // A poisoned lock only means another invocation panicked mid-insert: the map is whole.
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned()
    }

    /// Keeps `connection` and hands it back shared.
    pub fn insert(&self, connection: Connection) -> Arc<Connection> {
        let connection = Arc::new(connection);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_LEARNED {
            map.insert(connection.name.clone(), Arc::clone(&connection));
        }
        connection
    }
}

/// One connection's entry.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The Auth0 connection name.
    pub name: String,
    /// The catalogue entry it is served by (an Auth0 strategy name); `None` for a connection of
    /// `IDP_CONNECTIONS` alone.
    pub strategy: Option<String>,
    /// Scheme, host, port and base path of the IdP's API, without a trailing slash.
    pub api_base: Url,
    /// What may be called there.
    pub allow: Vec<AllowRule>,
    /// The provider's token endpoint, for refresh-token grants; `None` where it has none (or
    /// where a parameter it needs is not configured).
    pub token_url: Option<Url>,
    /// How the provider's refresh tokens behave.
    pub refresh: Refresh,
    /// Headers the provider expects on every call (the caller's own may override them).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How the IdP app authenticates at `token_url`.
    pub token_auth: TokenAuth,
    /// Scopes to send with a refresh grant, where the provider wants them (Microsoft).
    pub refresh_scopes: Vec<String>,
    /// Where the connection's IdP tokens come from.
    pub token_source: TokenSourceKind,
    /// Characters of [`path::GUARDED`](super::path::GUARDED) that this connection's paths may
    /// hold (`IDP_CONNECTIONS`' `path_characters`); none by default.
    pub path_characters: Vec<char>,
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
    pub fn allows(&self, method: &Method, segments: &[String]) -> bool {
        super::allow::verdict(&self.allow, method, segments, &|_| true).is_allowed()
    }

    /// Whether a refresh grant can be run at all: a token endpoint and a provider that renews.
    pub fn renews(&self) -> bool {
        self.token_url.is_some() && self.refresh != Refresh::None
    }
}

/// The fields of one entry of `IDP_CONNECTIONS`; all optional for a connection with a
/// catalogue entry. Unknown fields are refused, except the parameters its entry names.
#[derive(Debug, Deserialize)]
struct Override {
    strategy: Option<String>,
    api_base: Option<String>,
    allow: Option<Vec<String>>,
    token_url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    token_auth: Option<TokenAuth>,
    refresh: Option<Refresh>,
    refresh_scopes: Option<Vec<String>>,
    token_source: Option<TokenSourceKind>,
    path_characters: Option<String>,
    /// Every other field: the entry's `{param}` values, checked against its `params`.
    #[serde(flatten)]
    params: BTreeMap<String, serde_json::Value>,
}

/// A connection before `IDP_CONNECTIONS` is merged over it: a catalogue entry whose API base may
/// still be missing (a parameter or a per-user host it needs).
struct Draft {
    connection: Connection,
    api_base: Option<Url>,
}

/// The connection table.
#[derive(Debug, Clone)]
pub struct Connections {
    /// Every connection by name: the catalogue's entries that need no configuration, under their
    /// strategy name, and `IDP_CONNECTIONS`' entries.
    named: HashMap<String, Connection>,
    /// The catalogue, for connections served by the entry of their strategy.
    catalogue: BTreeMap<String, Entry>,
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
        let catalogue = catalogue::entries()?;
        let mut named = HashMap::with_capacity(catalogue.len());
        for (strategy, entry) in &catalogue {
            let draft = draft(strategy, strategy, entry, &BTreeMap::new(), default_source)
                .map_err(|e| format!("catalogue entry {strategy:?}: {e}"))?;
            if let Some(connection) = draft.complete() {
                named.insert(strategy.clone(), connection);
            }
        }
        let mut table = Self {
            named,
            catalogue,
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
            table.named.insert(name.clone(), connection);
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
        self.named.get(name)
    }

    /// The connection `name` (not itself in the table) served by the catalogue entry of
    /// `strategy`, the identity's `provider` as the Management API says it. `Err` says why that
    /// entry cannot serve it without configuration (no such entry, or a parameter it needs).
    /// The table's connection named after the strategy, `IDP_CONNECTIONS`' changes included,
    /// is the one followed, so that an override of `github` holds for every GitHub connection.
    pub fn for_strategy(&self, name: &str, strategy: &str) -> Result<Connection, String> {
        if self.catalogue.contains_key(strategy)
            && let Some(named) = self.named.get(strategy)
        {
            return Ok(Connection {
                name: name.to_owned(),
                ..named.clone()
            });
        }
        let entry = self
            .catalogue
            .get(strategy)
            .ok_or_else(|| format!("no catalogue entry for strategy {strategy:?}"))?;
        draft(name, strategy, entry, &BTreeMap::new(), self.default_source)?
            .complete()
            .ok_or_else(|| {
                format!(
                    "strategy {strategy:?} needs an IDP_CONNECTIONS entry for {name:?} ({})",
                    needs(entry)
                )
            })
    }

    /// The names of the connections whose tokens come from `source`, sorted.
    pub fn served_by(&self, source: TokenSourceKind) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .named
            .values()
            .filter(|c| c.token_source == source)
            .map(|c| c.name.as_str())
            .collect();
        names.sort_unstable();
        names
    }

    /// The connection of `IDP_CONNECTIONS` entry `value` for `name`: merged over the catalogue
    /// entry of its `strategy` (else of its name), or a connection of its own.
    fn configured(&self, name: &str, value: &serde_json::Value) -> Result<Connection, String> {
        let entry: Override = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let strategy = match &entry.strategy {
            Some(strategy) if !self.catalogue.contains_key(strategy) => {
                return Err(format!("no catalogue entry for strategy {strategy:?}"));
            }
            Some(strategy) => Some(strategy.as_str()),
            None => self.catalogue.contains_key(name).then_some(name),
        };
        if let Some(dialect) = strategy.and_then(|s| self.catalogue[s].unsupported_dialect()) {
            return Err(format!(
                "strategy {:?} needs {dialect}, which this version does not speak",
                strategy.unwrap_or_default()
            ));
        }
        let params = params(strategy.and_then(|s| self.catalogue.get(s)), &entry.params)?;
        let base = match strategy {
            Some(strategy) => Some(draft(
                name,
                strategy,
                &self.catalogue[strategy],
                &params,
                self.default_source,
            )?),
            None => None,
        };
        merge(name, base, entry, self.default_source)
    }
}

/// The values of `entry`'s parameters in an `IDP_CONNECTIONS` entry's other fields: every one
/// given, each a checked string, and no field that is not one of them.
fn params(
    entry: Option<&Entry>,
    fields: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, String> {
    let wanted = entry.map_or(&[][..], |e| e.params.as_slice());
    if let Some(unknown) = fields.keys().find(|k| !wanted.contains(k)) {
        return Err(format!("unknown field `{unknown}`"));
    }
    let mut values = BTreeMap::new();
    for name in wanted {
        let value = match fields.get(name) {
            Some(serde_json::Value::String(value)) => value.trim(),
            Some(_) => return Err(format!("{name} must be a string")),
            None => return Err(format!("{name} is required for this strategy")),
        };
        catalogue::param_value(name, value)?;
        values.insert(name.clone(), value.to_owned());
    }
    Ok(values)
}

/// What an entry needs before it can serve a connection, for error messages.
fn needs(entry: &Entry) -> String {
    if let Some(dialect) = entry.unsupported_dialect() {
        return format!("{dialect}, which this version does not speak");
    }
    match (entry.params.is_empty(), &entry.api_base) {
        (false, _) => format!("parameters {}", entry.params.join(", ")),
        (true, None) => "an api_base".to_owned(),
        (true, Some(_)) => "nothing".to_owned(),
    }
}

/// The connection `name` as catalogue `entry` (of `strategy`) describes it, with `params`
/// filled in. A token endpoint whose parameter is missing is left out (not renewable); an API
/// base that cannot be had is left for `IDP_CONNECTIONS` to give.
fn draft(
    name: &str,
    strategy: &str,
    entry: &Entry,
    params: &BTreeMap<String, String>,
    default_source: TokenSourceKind,
) -> Result<Draft, String> {
    let filled = |text: &Option<String>, field: &str| -> Result<Option<Url>, String> {
        text.as_deref()
            .and_then(|t| catalogue::fill(t, params))
            .map(|t| api_url(&t, field))
            .transpose()
    };
    // An entry whose dialect is not spoken yet serves nothing rather than something wrong.
    let api_base = match entry.unsupported_dialect() {
        Some(_) => None,
        None => filled(&entry.api_base, "api_base")?,
    };
    let token_url = filled(&entry.token_url, "token_url")?;
    let connection = Connection {
        name: name.to_owned(),
        strategy: Some(strategy.to_owned()),
        // Replaced by `complete` or `merge`; never served while `Draft::api_base` is `None`.
        api_base: api_base
            .clone()
            .unwrap_or_else(|| Url::parse("https://invalid./").expect("a valid URL")),
        allow: allow_rules(&entry.allow)?,
        token_url,
        refresh: entry.refresh,
        headers: parse_headers(entry.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        token_auth: entry.token_auth,
        refresh_scopes: scopes(entry.refresh_scopes.clone())?,
        token_source: default_source,
        path_characters: Vec::new(),
    };
    Ok(Draft {
        connection,
        api_base,
    })
}

impl Draft {
    /// The connection, if its API base is known.
    fn complete(self) -> Option<Connection> {
        let api_base = self.api_base?;
        Some(Connection {
            api_base,
            ..self.connection
        })
    }
}

fn allow_rules(rules: &[String]) -> Result<Vec<AllowRule>, String> {
    rules.iter().map(|r| AllowRule::parse(r)).collect()
}

fn scopes(scopes: Vec<String>) -> Result<Vec<String>, String> {
    if scopes
        .iter()
        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err("refresh_scopes must be single, non-empty scopes".to_owned());
    }
    Ok(scopes)
}

fn merge(
    name: &str,
    base: Option<Draft>,
    entry: Override,
    default_source: TokenSourceKind,
) -> Result<Connection, String> {
    let api_base = match (
        entry.api_base,
        base.as_ref().and_then(|b| b.api_base.clone()),
    ) {
        (Some(url), _) => api_url(&url, "api_base")?,
        (None, Some(url)) => url,
        (None, None) => return Err("api_base is required for this connection".to_owned()),
    };
    let base = base.map(|b| b.connection);
    let allow = match entry.allow {
        Some(rules) => allow_rules(&rules)?,
        None => match &base {
            Some(base) => base.allow.clone(),
            None => vec![AllowRule::parse(DEFAULT_ALLOW)?],
        },
    };
    let token_url = match entry.token_url {
        Some(url) if url.is_empty() => None,
        Some(url) => Some(api_url(&url, "token_url")?),
        None => base.as_ref().and_then(|b| b.token_url.clone()),
    };
    // A connection of its own with a token endpoint renews with a plain refresh token unless
    // it says otherwise.
    let refresh = match (entry.refresh, &base, &token_url) {
        (Some(refresh), _, _) => refresh,
        (None, _, None) => Refresh::None,
        (None, Some(base), Some(_)) if base.refresh != Refresh::None => base.refresh,
        (None, _, Some(_)) => Refresh::RefreshToken,
    };
    let refresh_scopes = match entry.refresh_scopes {
        Some(scopes) => self::scopes(scopes)?,
        None => base
            .as_ref()
            .map(|b| b.refresh_scopes.clone())
            .unwrap_or_default(),
    };
    let token_source = entry.token_source.unwrap_or(default_source);
    let token_auth = entry
        .token_auth
        .or(base.as_ref().map(|b| b.token_auth))
        .unwrap_or_default();
    let path_characters = match entry.path_characters {
        Some(characters) => {
            let characters: Vec<char> = characters.chars().collect();
            if let Some(c) = characters
                .iter()
                .find(|c| !super::path::GUARDED.contains(c))
            {
                return Err(format!(
                    "path_characters: {c:?} is not refused by default; list only ; and look-alike dots"
                ));
            }
            characters
        }
        None => Vec::new(),
    };
    let strategy = base.as_ref().and_then(|b| b.strategy.clone());
    let headers = match entry.headers {
        Some(headers) => parse_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        None => base.map(|b| b.headers).unwrap_or_default(),
    };
    Ok(Connection {
        name: name.to_owned(),
        strategy,
        api_base,
        allow,
        token_url,
        refresh,
        headers,
        token_auth,
        path_characters,
        refresh_scopes,
        token_source,
    })
}

/// The allow-list of a connection of `IDP_CONNECTIONS` alone: read-only calls anywhere under the
/// API base.
const DEFAULT_ALLOW: &str = "GET /**";

/// An https URL (plain http only for a loopback stand-in), without credentials, query or
/// fragment, stored without a trailing slash.
fn api_url(text: &str, field: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{field}: {e}"))?;
    // Trimmed after parsing: the parser can still leave a trailing slash (`/v1/..`, `/v1/%2e%2e`,
    // `/v1/ `), and the root stays `/`.
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("{field} must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{field} must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{field} must not have a query or fragment"));
    }
    Ok(url)
}

/// Extra headers, minus those the function sets itself.
fn parse_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    headers
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("bad header name {name:?}"))?;
            if matches!(name.as_str(), "authorization" | "cookie" | "host") {
                return Err(format!("header {name} cannot be configured"));
            }
            let value =
                HeaderValue::from_str(value).map_err(|_| format!("bad value for {name}"))?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::allow::segments;
    use super::*;

    #[test]
    fn every_catalogue_entry_without_parameters_is_built_in_read_only() {
        let table = Connections::new(None).expect("built-ins");
        let entries = catalogue::entries().expect("catalogue");
        for (strategy, entry) in &entries {
            let Some(connection) = table.get(strategy) else {
                assert!(
                    !entry.params.is_empty()
                        || entry.api_base.is_none()
                        || entry.unsupported_dialect().is_some(),
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
            r#"{"corp-shop": {"strategy": "shopify", "api_base": "https://x.myshopify.com"}}"#,
            r#"{"x-oauth1": {"strategy": "twitter"}}"#,
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
}
