//! The connection table: for each Auth0 connection, the one API base the function will call, the
//! methods and paths it may call there, where its IdP tokens come from, and the token endpoint for
//! refresh grants.
//!
//! Built in for the common social providers; `IDP_CONNECTIONS` (JSON) overrides fields of a
//! built-in connection or adds new ones. `IDP_TOKEN_SOURCE` sets the token source of every
//! connection that does not name its own.

use std::collections::{BTreeMap, HashMap};

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use url::Url;

/// One rule of a connection's allow-list: `"GET /user/**"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The method, or `None` for `*` (any method).
    method: Option<Method>,
    /// The path pattern, one element per segment.
    pattern: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Exactly this segment.
    Literal(String),
    /// `*`: any one segment.
    One,
    /// `**`: any number of segments, none included.
    Any,
}

impl AllowRule {
    /// Parses `"METHOD /path/glob"`: `*` stands for one segment, `**` for any number of them,
    /// and a method of `*` for any method.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let (method, path) = rule
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("allow rule {rule:?} is not \"METHOD /path\""))?;
        let method = match method {
            "*" => None,
            m if m.bytes().all(|b| b.is_ascii_uppercase()) && !m.is_empty() => Some(
                Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method in {rule:?}"))?,
            ),
            _ => {
                return Err(format!(
                    "allow rule {rule:?}: method must be uppercase or *"
                ));
            }
        };
        let path = path.trim();
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| format!("allow rule {rule:?}: path must start with /"))?;
        let pattern = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/')
                .map(|segment| match segment {
                    "" => Err(format!("allow rule {rule:?} has an empty segment")),
                    "*" => Ok(Pattern::One),
                    "**" => Ok(Pattern::Any),
                    "." | ".." => Err(format!("allow rule {rule:?} has a dot segment")),
                    s if s.contains('*') => {
                        Err(format!("allow rule {rule:?}: * must be a whole segment"))
                    }
                    s => Ok(Pattern::Literal(s.to_owned())),
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self { method, pattern })
    }

    /// Whether `method` on the decoded `segments` is allowed by this rule.
    pub fn matches(&self, method: &Method, segments: &[String]) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && glob(&self.pattern, segments)
    }
}

/// Whether `pattern` matches all of `segments`, in pattern × segments steps. Backtracking instead
/// would take time polynomial in the path's length with the number of `**` as the exponent: a rule
/// like `GET /**/a/**/a/**/b` and a caller's path of a few hundred segments make a CPU sink.
fn glob(pattern: &[Pattern], segments: &[String]) -> bool {
    // matched[j]: the pattern's elements so far match exactly `segments[..j]`.
    let mut matched = vec![false; segments.len() + 1];
    matched[0] = true;
    for element in pattern {
        if *element == Pattern::Any {
            for j in 1..matched.len() {
                matched[j] |= matched[j - 1];
            }
            continue;
        }
        // Right to left, so that `matched[j - 1]` is still the previous element's.
        for j in (1..matched.len()).rev() {
            matched[j] = matched[j - 1]
                && match element {
                    Pattern::Literal(literal) => *literal == segments[j - 1],
                    _ => true,
                };
        }
        matched[0] = false;
    }
    matched[segments.len()]
}

/// One connection's entry.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The Auth0 connection name.
    pub name: String,
    /// Scheme, host, port and base path of the IdP's API, without a trailing slash.
    pub api_base: Url,
    /// What may be called there.
    pub allow: Vec<AllowRule>,
    /// The provider's token endpoint, for refresh-token grants; `None` where it has none.
    pub token_url: Option<Url>,
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

/// How the IdP app's client credentials travel in a refresh grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1's alternative; what
    /// GitHub, Google and Microsoft accept).
    Body,
    /// HTTP Basic authentication (Bitbucket).
    Basic,
}

impl Connection {
    /// Whether `method` on `segments` is allowed.
    /// `HEAD` is allowed wherever `GET` is: it is the same request without the body.
    pub fn allows(&self, method: &Method, segments: &[String]) -> bool {
        let allows = |method| self.allow.iter().any(|rule| rule.matches(method, segments));
        allows(method) || (*method == Method::HEAD && allows(&Method::GET))
    }
}

/// The fields of one entry of `IDP_CONNECTIONS`; all optional for a built-in connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Override {
    api_base: Option<String>,
    allow: Option<Vec<String>>,
    token_url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    token_auth: Option<TokenAuth>,
    refresh_scopes: Option<Vec<String>>,
    token_source: Option<TokenSourceKind>,
    path_characters: Option<String>,
}

/// A built-in connection.
struct BuiltIn {
    name: &'static str,
    api_base: &'static str,
    token_url: Option<&'static str>,
    token_auth: TokenAuth,
    headers: &'static [(&'static str, &'static str)],
}

/// The built-in connections, all read-only (`GET`) by default.
const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "github",
        api_base: "https://api.github.com",
        // GitHub App user tokens expire and are renewed here; it answers form-encoded unless
        // asked for JSON (the grant asks).
        token_url: Some("https://github.com/login/oauth/access_token"),
        token_auth: TokenAuth::Body,
        headers: &[
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
        ],
    },
    BuiltIn {
        name: "google-oauth2",
        api_base: "https://www.googleapis.com",
        token_url: Some("https://oauth2.googleapis.com/token"),
        token_auth: TokenAuth::Body,
        headers: &[],
    },
    BuiltIn {
        name: "windowslive",
        api_base: "https://graph.microsoft.com",
        token_url: Some("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
        token_auth: TokenAuth::Body,
        headers: &[],
    },
    BuiltIn {
        name: "facebook",
        api_base: "https://graph.facebook.com",
        // Facebook has no refresh tokens: long-lived tokens are re-issued only at login.
        token_url: None,
        token_auth: TokenAuth::Body,
        headers: &[],
    },
    BuiltIn {
        name: "bitbucket",
        api_base: "https://api.bitbucket.org",
        token_url: Some("https://bitbucket.org/site/oauth2/access_token"),
        token_auth: TokenAuth::Basic,
        headers: &[],
    },
    BuiltIn {
        name: "linkedin",
        api_base: "https://api.linkedin.com",
        token_url: Some("https://www.linkedin.com/oauth/v2/accessToken"),
        token_auth: TokenAuth::Body,
        headers: &[],
    },
];

/// The names of the built-in connections, which every table has.
pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|b| b.name)
}

/// The default allow-list: read-only calls anywhere under the API base.
const DEFAULT_ALLOW: &str = "GET /**";

/// The connection table.
#[derive(Debug, Clone)]
pub struct Connections(HashMap<String, Connection>);

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
        let mut table = HashMap::new();
        for built_in in BUILT_IN {
            let connection = Connection {
                name: built_in.name.to_owned(),
                api_base: api_url(built_in.api_base, "api_base")?,
                allow: vec![AllowRule::parse(DEFAULT_ALLOW)?],
                token_url: built_in
                    .token_url
                    .map(|u| api_url(u, "token_url"))
                    .transpose()?,
                headers: parse_headers(built_in.headers.iter().map(|(k, v)| (*k, *v)))?,
                token_auth: built_in.token_auth,
                refresh_scopes: Vec::new(),
                token_source: default_source,
                path_characters: Vec::new(),
            };
            table.insert(built_in.name.to_owned(), connection);
        }
        for (name, value) in overrides.into_iter().flatten() {
            // A name no route can reach would be configured for nothing: say so at start-up.
            if !crate::routes::is_connection_name(name) {
                return Err(format!(
                    "connection {name:?}: a name is 1 to 128 letters, digits, - or _"
                ));
            }
            let entry: Override = serde_json::from_value(value.clone())
                .map_err(|e| format!("connection {name:?}: {e}"))?;
            let merged = merge(name, table.remove(name), entry, default_source)
                .map_err(|e| format!("connection {name:?}: {e}"))?;
            table.insert(name.clone(), merged);
        }
        Ok(Self(table))
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

    /// The connection called `name`.
    pub fn get(&self, name: &str) -> Option<&Connection> {
        self.0.get(name)
    }

    /// The names of the connections whose tokens come from `source`, sorted.
    pub fn served_by(&self, source: TokenSourceKind) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .0
            .values()
            .filter(|c| c.token_source == source)
            .map(|c| c.name.as_str())
            .collect();
        names.sort_unstable();
        names
    }
}

fn merge(
    name: &str,
    base: Option<Connection>,
    entry: Override,
    default_source: TokenSourceKind,
) -> Result<Connection, String> {
    let api_base = match (entry.api_base, &base) {
        (Some(url), _) => api_url(&url, "api_base")?,
        (None, Some(base)) => base.api_base.clone(),
        (None, None) => return Err("api_base is required for a new connection".to_owned()),
    };
    let allow = match entry.allow {
        Some(rules) => rules
            .iter()
            .map(|r| AllowRule::parse(r))
            .collect::<Result<_, _>>()?,
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
    let refresh_scopes = match entry.refresh_scopes {
        Some(scopes) => {
            if scopes
                .iter()
                .any(|s| s.is_empty() || s.contains(char::is_whitespace))
            {
                return Err("refresh_scopes must be single, non-empty scopes".to_owned());
            }
            scopes
        }
        None => base
            .as_ref()
            .map(|b| b.refresh_scopes.clone())
            .unwrap_or_default(),
    };
    let token_source = entry
        .token_source
        .or(base.as_ref().map(|b| b.token_source))
        .unwrap_or(default_source);
    let token_auth = entry
        .token_auth
        .or(base.as_ref().map(|b| b.token_auth))
        .unwrap_or(TokenAuth::Body);
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
        None => base
            .as_ref()
            .map(|b| b.path_characters.clone())
            .unwrap_or_default(),
    };
    let headers = match entry.headers {
        Some(headers) => parse_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        None => base.map(|b| b.headers).unwrap_or_default(),
    };
    Ok(Connection {
        name: name.to_owned(),
        api_base,
        allow,
        token_url,
        headers,
        token_auth,
        path_characters,
        refresh_scopes,
        token_source,
    })
}

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
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn globs_match_segments() {
        let rule = AllowRule::parse("GET /repos/*/*/issues/**").expect("rule");
        assert!(rule.matches(&Method::GET, &segments("/repos/o/r/issues")));
        assert!(rule.matches(&Method::GET, &segments("/repos/o/r/issues/1/comments")));
        assert!(!rule.matches(&Method::GET, &segments("/repos/o/issues")));
        assert!(!rule.matches(&Method::POST, &segments("/repos/o/r/issues")));
        let any = AllowRule::parse("* /user").expect("rule");
        assert!(any.matches(&Method::PATCH, &segments("/user")));
        assert!(!any.matches(&Method::PATCH, &segments("/user/x")));
        let root = AllowRule::parse("GET /").expect("rule");
        assert!(root.matches(&Method::GET, &[]));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "GET",
            "get /x",
            "GET x",
            "GET /a//b",
            "GET /a*",
            "GET /../x",
            "GE-T /x",
        ] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn built_ins_are_read_only() {
        let table = Connections::new(None).expect("built-ins");
        let names: Vec<&str> = built_in_names().collect();
        assert_eq!(
            names,
            [
                "github",
                "google-oauth2",
                "windowslive",
                "facebook",
                "bitbucket",
                "linkedin"
            ]
        );
        for name in names {
            let connection = table.get(name).expect(name);
            assert_eq!(connection.api_base.scheme(), "https");
            assert!(connection.allows(&Method::GET, &segments("/anything/here")));
            assert!(!connection.allows(&Method::POST, &segments("/anything")));
            assert!(!connection.allows(&Method::DELETE, &segments("/anything")));
        }
        assert!(table.get("facebook").expect("fb").token_url.is_none());
        assert!(table.get("google-oauth2").expect("g").token_url.is_some());
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
