//! A connection described as data, and how `IDP_CONNECTIONS` changes it.
//!
//! A [`Spec`] is a catalogue entry's run-time members, or what an `IDP_CONNECTIONS` entry makes
//! of one: the entry's `{param}` placeholders filled from the patch's other fields, then the
//! patch merged over it one level deep ([`patched`]), then the result turned into a
//! [`Connection`] once ([`Spec::build`]), every field checked there. The merge:
//!
//! - each member the patch gives replaces the entry's member whole (an object such as `headers`
//!   too, so that what is written is what is sent); `"token_url": ""` removes the endpoint;
//! - `null` is refused where the entry has the member: it used to mean "as the catalogue
//!   says", and in a merge patch (RFC 7396) it would remove the value, so neither reading is
//!   taken silently; the error says what to write instead. Elsewhere it changes nothing;
//! - `api_base` and `api_host` are one choice, where the API is: a patch that gives one drops
//!   the entry's other;
//! - `refresh` follows a `token_url` the patch gives, unless it gives `refresh` too: a removed
//!   endpoint renews nothing, and an endpoint given to a provider that had none renews with
//!   plain refresh tokens;
//! - `allow` without `content_api` drops the entry's content API: the operator's rules are the
//!   whole policy, and the content API's own rules would take some calls past them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::checks::{
    HOST_PLACEHOLDER, api_url, parse_headers, path_characters, token_path_on_host,
};
use super::{AllowRule, Connection, ContentOrigin, TokenHeader, TokenSourceKind};
use crate::idp::catalogue::ScopeAnswer;
use crate::idp::catalogue::{self, ApiHost, Refresh, TokenAuth};
use crate::idp::download::DownloadHosts;
use crate::idp::host::HostRule;

/// The members an `IDP_CONNECTIONS` entry may give (besides `strategy` and the values of its
/// entry's `params`); `providers`, `params` and `token_lifetime` are the catalogue's alone.
const PATCHABLE: &[&str] = &[
    "api_base",
    "api_host",
    "api_host_origin",
    "allow",
    "headers",
    "token_header",
    "token_url",
    "token_auth",
    "refresh",
    "refresh_scopes",
    "token_source",
    "path_characters",
    "scope_answer",
    "download_hosts",
    "download_host_origin",
    "content_api",
];

/// Parameters an entry had and has no more, with what to write instead: refused at start-up
/// rather than taken silently, as a `null` is.
const RETIRED: &[(&str, &str, &str)] = &[(
    "shopify",
    "shop",
    "each user's token is renewed at the token endpoint of their own shop, the host api_host \
     checked (https://{host}/admin/oauth/access_token), so one connection serves every shop; \
     remove it, or pin one shop for every user with \
     \"api_base\": \"https://SHOP.myshopify.com\"",
)];

/// The allow-list of a connection of `IDP_CONNECTIONS` alone: read-only calls anywhere under the
/// API base.
const DEFAULT_ALLOW: &str = "GET /**";

/// A connection's description: a catalogue entry's run-time members (as `build.rs` compiles
/// them in), with `IDP_CONNECTIONS` merged over them. Every member is optional here; what a
/// connection needs is checked by [`Spec::build`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The identity `provider` values the entry is for (the catalogue's).
    providers: Option<Vec<String>>,
    /// Scheme, host and base path of the API.
    api_base: Option<String>,
    /// A per-user API host.
    api_host: Option<ApiHost>,
    /// A loopback stand-in that per-user host calls go to (tests only, [`HostRule`]).
    api_host_origin: Option<String>,
    /// Allow rules.
    allow: Option<Vec<String>>,
    /// Headers sent on every call.
    headers: Option<BTreeMap<String, String>>,
    /// The header the token goes in, where it is not `Authorization: Bearer`.
    token_header: Option<catalogue::TokenHeader>,
    /// The token endpoint for refresh grants.
    token_url: Option<String>,
    /// How the IdP app authenticates there.
    token_auth: Option<TokenAuth>,
    /// How refresh tokens behave.
    refresh: Option<Refresh>,
    /// The documented access token lifetime in seconds, where answers leave `expires_in` out.
    token_lifetime: Option<u64>,
    /// Guarded characters the API's paths need.
    path_characters: Option<String>,
    /// Scopes a refresh grant sends.
    refresh_scopes: Option<Vec<String>>,
    /// Where the tokens come from.
    token_source: Option<TokenSourceKind>,
    /// How the provider says that a token lacks a scope.
    scope_answer: Option<ScopeAnswer>,
    /// Host patterns of its pre-signed download URLs.
    download_hosts: Option<Vec<String>>,
    /// A loopback stand-in that downloads go to (tests only).
    download_host_origin: Option<String>,
    /// A second API origin for file content, with its own rules.
    content_api: Option<catalogue::ContentApi>,
    /// The entry's `{param}` placeholders.
    params: Option<Vec<String>>,
}

/// Why a description cannot be built into a connection.
#[derive(Debug)]
pub(super) enum BuildError {
    /// It says nowhere where the API is (a parameter or `api_base` missing).
    NoApi,
    /// A member is not valid, in words.
    Invalid(String),
}

impl From<String> for BuildError {
    fn from(reason: String) -> Self {
        Self::Invalid(reason)
    }
}

impl Spec {
    /// The catalogue entry of `strategy` with no configuration: a placeholder without a value
    /// leaves its URL out (a token endpoint not renewable, an API base to be given).
    pub(super) fn of_entry(strategy: &str) -> Option<Self> {
        let mut entry = entry(strategy).ok()?;
        fill(&mut entry, &BTreeMap::new());
        serde_json::from_value(Value::Object(entry))
            .map_err(|error| compiled_in_fault(strategy, &error.to_string()))
            .ok()
    }

    /// What the entry needs before it can serve a connection, for error messages.
    pub(super) fn needs(&self) -> String {
        match (&self.params, &self.api_base, &self.api_host) {
            (Some(params), _, _) if !params.is_empty() => {
                format!("parameters {}", params.join(", "))
            }
            (_, None, None) => "an api_base".to_owned(),
            _ => "nothing".to_owned(),
        }
    }

    /// The connection `name` this describes: served by the entry of `strategy` (`None`: a
    /// connection of `IDP_CONNECTIONS` alone), its tokens from `default_source` unless it
    /// names its own. Every member is checked here.
    pub(super) fn build(
        self,
        name: &str,
        strategy: Option<&str>,
        default_source: TokenSourceKind,
    ) -> Result<Connection, BuildError> {
        let api_host = match self.api_host {
            Some(host) => Some(HostRule::new(
                &host.pattern,
                host.path.as_deref(),
                &host.fields,
            )?),
            None => None,
        };
        let api_host = match (api_host, self.api_host_origin) {
            (Some(rule), Some(origin)) => Some(rule.with_standin_origin(&origin)?),
            (None, Some(_)) => return Err("api_host_origin needs an api_host".to_owned().into()),
            (rule, None) => rule,
        };
        // A per-user host is substituted per call; until then the base cannot resolve.
        let api_base = match (&api_host, self.api_base) {
            (Some(rule), _) => rule.unresolved_base(),
            (None, Some(url)) => api_url(&url, "api_base")?,
            (None, None) => return Err(BuildError::NoApi),
        };
        let allow = match self.allow {
            Some(rules) => rules.iter().map(|r| AllowRule::parse(r)).collect(),
            None => AllowRule::parse(DEFAULT_ALLOW).map(|rule| vec![rule]),
        }?;
        let (token_url, token_path_on_host) = match self.token_url {
            None => (None, None),
            Some(url) => match (token_path_on_host(&url)?, &api_host) {
                (None, _) => (Some(api_url(&url, "token_url")?), None),
                // On the user's own host: filled per user from the checked host.
                (Some(path), Some(_)) => (Some(HostRule::unresolved_url(&path)), Some(path)),
                // One host pinned for every user (`api_base`): the token endpoint is on it.
                (Some(path), None) => {
                    let mut pinned = api_base.clone();
                    pinned.set_path(&path);
                    (Some(pinned), None)
                }
            },
        };
        let refresh = self.refresh.unwrap_or(match token_url {
            Some(_) => Refresh::RefreshToken,
            None => Refresh::None,
        });
        let refresh_scopes = self.refresh_scopes.unwrap_or_default();
        if refresh_scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err("refresh_scopes must be single, non-empty scopes"
                .to_owned()
                .into());
        }
        Ok(Connection {
            name: name.to_owned(),
            strategy: strategy.map(str::to_owned),
            // A connection of `IDP_CONNECTIONS` alone is for no provider in particular.
            providers: match strategy {
                Some(strategy) => self.providers.unwrap_or_else(|| vec![strategy.to_owned()]),
                None => Vec::new(),
            },
            api_base,
            allow,
            token_url,
            token_path_on_host,
            refresh,
            headers: parse_headers(self.headers.unwrap_or_default())?,
            token_header: self
                .token_header
                .map(|h| TokenHeader::parse(&h.name, &h.format))
                .transpose()?,
            token_auth: self.token_auth.unwrap_or_default(),
            token_lifetime: self.token_lifetime.map(Duration::from_secs),
            refresh_scopes,
            token_source: self.token_source.unwrap_or(default_source),
            scope_answer: self.scope_answer.unwrap_or_default(),
            downloads: DownloadHosts::new(
                self.download_hosts.unwrap_or_default(),
                self.download_host_origin.as_deref(),
            )?,
            content: self
                .content_api
                .map(|content| {
                    Ok::<_, BuildError>(ContentOrigin {
                        api_base: api_url(&content.api_base, "content_api.api_base")?,
                        allow: content
                            .allow
                            .iter()
                            .map(|r| AllowRule::parse(r))
                            .collect::<Result<_, _>>()?,
                    })
                })
                .transpose()?,
            path_characters: match self.path_characters {
                Some(characters) => path_characters(&characters)?,
                None => Vec::new(),
            },
            api_host,
        })
    }
}

/// The description an `IDP_CONNECTIONS` entry `patch` makes of the catalogue entry of `strategy`
/// (`None`: a connection of its own): the entry's parameters filled from the patch's other
/// fields, then the patch merged over it (the module's rules).
pub(super) fn patched(strategy: Option<&str>, patch: &Map<String, Value>) -> Result<Spec, String> {
    let mut entry = match strategy {
        Some(strategy) => entry(strategy)?,
        None => Map::new(),
    };
    let wanted: Vec<String> = match entry.get("params") {
        Some(params) => serde_json::from_value(params.clone()).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let mut changes = Map::new();
    let mut given = BTreeMap::new();
    for (field, value) in patch {
        if field == "strategy" {
            continue;
        }
        if PATCHABLE.contains(&field.as_str()) {
            changes.insert(field.clone(), value.clone());
        } else if wanted.contains(field) {
            given.insert(field.clone(), value);
        } else if let Some((_, _, instead)) = RETIRED
            .iter()
            .find(|(of, name, _)| Some(*of) == strategy && name == field)
        {
            return Err(format!("`{field}` is no longer a parameter: {instead}"));
        } else {
            return Err(format!("unknown field `{field}`"));
        }
    }
    let mut params = BTreeMap::new();
    for name in &wanted {
        let value = match given.get(name) {
            Some(Value::String(value)) => value.trim(),
            Some(_) => return Err(format!("{name} must be a string")),
            None => return Err(format!("{name} is required for this strategy")),
        };
        catalogue::param_value(name, value)?;
        params.insert(name.clone(), value.to_owned());
    }
    fill(&mut entry, &params);
    // Allow rules an operator writes are the connection's whole policy: the entry's content API
    // (whose own rules would take some calls past them) goes with the entry's rules, unless the
    // operator gives one too.
    if changes.contains_key("allow") && !changes.contains_key("content_api") {
        entry.remove("content_api");
    }
    normalise(&mut changes, &entry)?;
    for (field, value) in changes {
        match value {
            Value::Null => entry.remove(&field),
            value => entry.insert(field, value),
        };
    }
    serde_json::from_value(Value::Object(entry)).map_err(|e| e.to_string())
}

/// The run-time members of `strategy`'s catalogue entry.
fn entry(strategy: &str) -> Result<Map<String, Value>, String> {
    let text = catalogue::text(strategy)
        .ok_or_else(|| format!("no catalogue entry for strategy {strategy:?}"))?;
    serde_json::from_str(text).map_err(|error| {
        compiled_in_fault(strategy, &error.to_string());
        format!("the catalogue entry for strategy {strategy:?} does not parse: {error}")
    })
}

/// Logs a compiled-in entry that the function cannot read: the build's checks and the unit
/// tests rule it out, so it is a defect to see, not a connection to leave silently unknown.
pub(super) fn compiled_in_fault(strategy: &str, reason: &str) {
    tracing::error!(
        strategy,
        reason,
        "a compiled-in catalogue entry cannot be read"
    );
}

/// The entry's `api_base` and `token_url` with `params` filled in; one whose placeholder has no
/// value is left out. A token endpoint's `{host}` stays: it is the user's host, filled per user.
fn fill(entry: &mut Map<String, Value>, params: &BTreeMap<String, String>) {
    let mut with_host = params.clone();
    with_host.insert("host".to_owned(), HOST_PLACEHOLDER.to_owned());
    for field in ["api_base", "token_url"] {
        let params = if field == "token_url" {
            &with_host
        } else {
            params
        };
        let filled = match entry.get(field) {
            Some(Value::String(text)) => catalogue::fill(text, params),
            _ => continue,
        };
        match filled {
            Some(url) => entry.insert(field.to_owned(), Value::String(url)),
            None => entry.remove(field),
        };
    }
}

/// The patch's changes as the merge applies them: `""` for `token_url` as `null`, the API's
/// place as one choice, and `refresh` following a `token_url` given alone (the module's rules).
fn normalise(changes: &mut Map<String, Value>, entry: &Map<String, Value>) -> Result<(), String> {
    if let Some((field, _)) = changes
        .iter()
        .find(|(field, value)| value.is_null() && entry.contains_key(*field))
    {
        let empty = match field.as_str() {
            "token_url" => ", or \"\" for no token endpoint",
            "allow" => ", or [] to allow nothing",
            "headers" => ", or {} for no extra headers",
            "refresh_scopes" => ", or [] for none",
            "download_hosts" => ", or [] to follow no download",
            _ => "",
        };
        return Err(format!(
            "{field}: null is not read as \"as the catalogue says\" any more, nor as removing \
             it: leave {field} out to keep the catalogue's value{empty}"
        ));
    }
    changes.retain(|_, value| !value.is_null());
    if matches!(changes.get("token_url"), Some(Value::String(url)) if url.is_empty()) {
        changes.insert("token_url".to_owned(), Value::Null);
    }
    let given = |field: &str| changes.get(field).is_some_and(|v| !v.is_null());
    if given("api_base") {
        changes.insert("api_host".to_owned(), Value::Null);
    } else if given("api_host") {
        changes.insert("api_base".to_owned(), Value::Null);
    }
    if let (Some(url), None) = (changes.get("token_url"), changes.get("refresh")) {
        let renews = entry
            .get("refresh")
            .and_then(Value::as_str)
            .filter(|refresh| *refresh != Refresh::None.as_str());
        let refresh = match (url, renews) {
            (Value::Null, _) => Refresh::None.as_str(),
            (_, Some(refresh)) => refresh,
            (_, None) => Refresh::RefreshToken.as_str(),
        };
        changes.insert("refresh".to_owned(), Value::String(refresh.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `IDP_CONNECTIONS` entry `patch` over the entry of `strategy`, built as `name`.
    fn connection(strategy: Option<&str>, patch: Value) -> Result<Connection, String> {
        let Value::Object(patch) = patch else {
            panic!("a patch is an object")
        };
        patched(strategy, &patch)?
            .build("c", strategy, TokenSourceKind::Identities)
            .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn a_member_given_replaces_the_entrys_whole_and_the_rest_stays() {
        let github = connection(Some("github"), serde_json::json!({"headers": {"x-a": "1"}}))
            .expect("valid");
        let names: Vec<&str> = github.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-a"], "headers replaced whole, not merged");
        assert_eq!(github.refresh, Refresh::SingleUse);
        assert_eq!(github.api_base.as_str(), "https://api.github.com/");
        assert_eq!(github.providers, ["github"]);
    }

    #[test]
    fn the_api_is_one_choice_of_base_or_per_user_host() {
        let fixed = connection(
            Some("salesforce"),
            serde_json::json!({"api_base": "https://acme.my.salesforce.com"}),
        )
        .expect("valid");
        assert!(fixed.api_host.is_none());
        assert_eq!(fixed.api_base.host_str(), Some("acme.my.salesforce.com"));
        let per_user = connection(
            Some("github"),
            serde_json::json!({"api_host": {"pattern": "*.ghe.com", "fields": ["/user/x"]}}),
        )
        .expect("valid");
        assert!(per_user.api_host.is_some());
    }

    #[test]
    fn refresh_follows_a_token_url_given_alone() {
        let removed =
            connection(Some("github"), serde_json::json!({"token_url": ""})).expect("valid");
        assert_eq!((removed.token_url, removed.refresh), (None, Refresh::None));
        let url = "https://graph.facebook.com/oauth/access_token";
        let given =
            connection(Some("facebook"), serde_json::json!({"token_url": url})).expect("valid");
        assert_eq!(given.refresh, Refresh::RefreshToken);
        let moved =
            connection(Some("github"), serde_json::json!({"token_url": url})).expect("valid");
        assert_eq!(
            moved.refresh,
            Refresh::SingleUse,
            "the entry's way of renewing"
        );
        let said = connection(
            Some("facebook"),
            serde_json::json!({"token_url": url, "refresh": "rotating"}),
        )
        .expect("valid");
        assert_eq!(said.refresh, Refresh::Rotating);
        let alone = connection(None, serde_json::json!({"api_base": "https://api.example"}))
            .expect("valid");
        assert_eq!(alone.refresh, Refresh::None);
        assert!(alone.providers.is_empty() && alone.allows(&http::Method::GET, &["x".into()]));
    }

    #[test]
    fn a_null_that_would_change_the_entry_is_refused_naming_the_field() {
        for field in ["token_url", "allow", "headers", "refresh"] {
            let error = connection(Some("github"), serde_json::json!({ field: null }))
                .expect_err("refused");
            assert!(error.starts_with(&format!("{field}: null")), "{error}");
        }
        // Where the entry has no such member, null changes nothing, as before.
        let github =
            connection(Some("github"), serde_json::json!({"token_header": null})).expect("valid");
        assert!(github.token_header.is_none());
    }

    #[test]
    fn parameters_are_required_checked_and_fill_only_the_entrys_urls() {
        let entra = connection(
            Some("waad"),
            serde_json::json!({"tenant": "contoso.example"}),
        )
        .expect("valid");
        assert_eq!(
            entra.token_url.as_ref().map(url::Url::as_str),
            Some("https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token")
        );
        for (patch, want) in [
            (
                serde_json::json!({}),
                "tenant is required for this strategy",
            ),
            (serde_json::json!({"tenant": 1}), "tenant must be a string"),
            (
                serde_json::json!({"tenant": "a/b"}),
                "tenant must be a DNS name",
            ),
            (
                serde_json::json!({"tenant": "x", "colour": 1}),
                "unknown field `colour`",
            ),
            (
                serde_json::json!({"tenant": "x", "params": []}),
                "unknown field `params`",
            ),
        ] {
            let error = connection(Some("waad"), patch).expect_err("refused");
            assert!(error.starts_with(want), "{error}");
        }
    }
}
