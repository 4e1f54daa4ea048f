//! How a connection is built: a catalogue entry with its parameters filled in ([`draft`]), and
//! an `IDP_CONNECTIONS` entry merged over it ([`merge`]) or standing on its own. Every field is
//! checked here, once, at start-up (or when a connection is first learned from an identity).

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::{AllowRule, Connection, TokenHeader, TokenSourceKind};
use crate::idp::catalogue::{self, Entry, Refresh, TokenAuth};
use crate::idp::host::HostRule;

/// The fields of one entry of `IDP_CONNECTIONS`; all optional for a connection with a
/// catalogue entry. Unknown fields are refused, except the parameters its entry names.
#[derive(Debug, Deserialize)]
pub(super) struct Override {
    pub(super) strategy: Option<String>,
    api_base: Option<String>,
    allow: Option<Vec<String>>,
    token_url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    token_header: Option<catalogue::TokenHeader>,
    token_auth: Option<TokenAuth>,
    refresh: Option<Refresh>,
    refresh_scopes: Option<Vec<String>>,
    token_source: Option<TokenSourceKind>,
    path_characters: Option<String>,
    api_host: Option<catalogue::ApiHost>,
    /// A loopback stand-in that per-user host calls go to (tests only, [`HostRule`]).
    api_host_origin: Option<String>,
    /// Every other field: the entry's `{param}` values, checked against its `params`.
    #[serde(flatten)]
    pub(super) params: BTreeMap<String, serde_json::Value>,
}

/// A connection before `IDP_CONNECTIONS` is merged over it: a catalogue entry with its
/// parameters filled in, whose API base may still be missing (a parameter or a per-user host it
/// needs).
pub(super) struct Draft {
    name: String,
    strategy: String,
    providers: Vec<String>,
    api_base: Option<Url>,
    allow: Vec<AllowRule>,
    token_url: Option<Url>,
    refresh: Refresh,
    headers: Vec<(HeaderName, HeaderValue)>,
    token_header: Option<TokenHeader>,
    token_auth: TokenAuth,
    token_lifetime: Option<Duration>,
    refresh_scopes: Vec<String>,
    token_source: TokenSourceKind,
    path_characters: Vec<char>,
    api_host: Option<HostRule>,
}

/// The connection `name` as catalogue `entry` (of `strategy`) describes it, with `params`
/// filled in. A token endpoint whose parameter is missing is left out (not renewable); an API
/// base that cannot be had is left for `IDP_CONNECTIONS` to give.
pub(super) fn draft(
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
    let api_host = host_rule(entry.api_host.as_ref())?;
    // A per-user host is substituted per call; until then the base cannot resolve.
    let api_base = match &api_host {
        Some(rule) => Some(rule.unresolved_base()),
        None => filled(&entry.api_base, "api_base")?,
    };
    Ok(Draft {
        name: name.to_owned(),
        strategy: strategy.to_owned(),
        providers: entry.providers(strategy),
        api_base,
        allow: allow_rules(&entry.allow)?,
        token_url: filled(&entry.token_url, "token_url")?,
        refresh: entry.refresh,
        headers: parse_headers(entry.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        token_header: token_header(entry.token_header.as_ref())?,
        token_auth: entry.token_auth,
        token_lifetime: entry.documented_lifetime(),
        refresh_scopes: scopes(entry.refresh_scopes.clone())?,
        token_source: default_source,
        path_characters: match &entry.path_characters {
            Some(characters) => path_characters(characters)?,
            None => Vec::new(),
        },
        api_host,
    })
}

impl Draft {
    /// The connection, if its API base is known.
    pub(super) fn complete(self) -> Option<Connection> {
        Some(Connection {
            api_base: self.api_base?,
            name: self.name,
            strategy: Some(self.strategy),
            providers: self.providers,
            allow: self.allow,
            token_url: self.token_url,
            refresh: self.refresh,
            headers: self.headers,
            token_header: self.token_header,
            token_auth: self.token_auth,
            token_lifetime: self.token_lifetime,
            refresh_scopes: self.refresh_scopes,
            token_source: self.token_source,
            path_characters: self.path_characters,
            api_host: self.api_host,
        })
    }
}

/// The values of `entry`'s parameters in an `IDP_CONNECTIONS` entry's other fields: every one
/// given, each a checked string, and no field that is not one of them.
pub(super) fn params(
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
pub(super) fn needs(entry: &Entry) -> String {
    match (entry.params.is_empty(), &entry.api_base) {
        (false, _) => format!("parameters {}", entry.params.join(", ")),
        (true, None) => "an api_base".to_owned(),
        (true, Some(_)) => "nothing".to_owned(),
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

/// The connection `name` of `IDP_CONNECTIONS` entry `entry`: merged over `base` (its
/// strategy's draft) where it has one, else a connection of its own.
pub(super) fn merge(
    name: &str,
    base: Option<Draft>,
    entry: Override,
    default_source: TokenSourceKind,
) -> Result<Connection, String> {
    let api_host = match (entry.api_host, &base) {
        (Some(configured), _) => host_rule(Some(&configured))?,
        (None, Some(base)) => base.api_host.clone(),
        (None, None) => None,
    };
    // A fixed base given here replaces the per-user host.
    let api_host = api_host.filter(|_| entry.api_base.is_none());
    let api_host = match (api_host, entry.api_host_origin) {
        (Some(rule), Some(origin)) => Some(rule.with_standin_origin(&origin)?),
        (None, Some(_)) => return Err("api_host_origin needs an api_host".to_owned()),
        (rule, None) => rule,
    };
    let api_base = match (
        entry.api_base,
        base.as_ref().and_then(|b| b.api_base.clone()),
    ) {
        _ if api_host.is_some() => api_host
            .as_ref()
            .map(HostRule::unresolved_base)
            .expect("some"),
        (Some(url), _) => api_url(&url, "api_base")?,
        (None, Some(url)) => url,
        (None, None) => return Err("api_base is required for this connection".to_owned()),
    };
    let allow = match (entry.allow, &base) {
        (Some(rules), _) => allow_rules(&rules)?,
        (None, Some(base)) => base.allow.clone(),
        (None, None) => vec![AllowRule::parse(DEFAULT_ALLOW)?],
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
    let token_auth = entry
        .token_auth
        .or(base.as_ref().map(|b| b.token_auth))
        .unwrap_or_default();
    let path_characters = match (entry.path_characters, &base) {
        (Some(characters), _) => path_characters(&characters)?,
        (None, Some(base)) => base.path_characters.clone(),
        (None, None) => Vec::new(),
    };
    let headers = match (entry.headers, &base) {
        (Some(headers), _) => parse_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        (None, Some(base)) => base.headers.clone(),
        (None, None) => Vec::new(),
    };
    let token_header = match (entry.token_header, &base) {
        (Some(configured), _) => token_header(Some(&configured))?,
        (None, Some(base)) => base.token_header.clone(),
        (None, None) => None,
    };
    let token_lifetime = base.as_ref().and_then(|b| b.token_lifetime);
    let (strategy, providers) = match base {
        Some(base) => (Some(base.strategy), base.providers),
        None => (None, Vec::new()),
    };
    Ok(Connection {
        name: name.to_owned(),
        strategy,
        providers,
        token_header,
        api_base,
        allow,
        token_url,
        refresh,
        headers,
        token_auth,
        token_lifetime,
        path_characters,
        refresh_scopes,
        token_source: entry.token_source.unwrap_or(default_source),
        api_host,
    })
}

fn host_rule(host: Option<&catalogue::ApiHost>) -> Result<Option<HostRule>, String> {
    host.map(|h| HostRule::new(&h.pattern, h.path.as_deref(), &h.fields))
        .transpose()
}

fn token_header(header: Option<&catalogue::TokenHeader>) -> Result<Option<TokenHeader>, String> {
    header
        .map(|h| TokenHeader::parse(&h.name, &h.format))
        .transpose()
}

/// `IDP_CONNECTIONS`' `path_characters`: only characters refused by default may be let through.
fn path_characters(characters: &str) -> Result<Vec<char>, String> {
    let characters: Vec<char> = characters.chars().collect();
    if let Some(c) = characters
        .iter()
        .find(|c| !crate::idp::path::GUARDED.contains(c))
    {
        return Err(format!(
            "path_characters: {c:?} is not refused by default; list only ;, @ and look-alike dots"
        ));
    }
    Ok(characters)
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
