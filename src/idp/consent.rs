//! What the user must do before a call can be made, said so that a frontend can do it: connect
//! the account (Auth0's Connected Accounts, for Token Vault connections) or log in again through
//! the connection, with the IdP scopes to ask for.
//!
//! Two moments lead here. Before a call: the IdP token's granted scopes are known (Token Vault's
//! exchange answers `scope`) and lack one that the matching allow rules name (`idp-scopes`), so
//! nothing is sent. After a call: the IdP answered that the token lacks a scope, in its own
//! dialect ([`ScopeAnswer`]): an RFC 6750 `insufficient_scope` challenge (every provider),
//! Google's `ACCESS_TOKEN_SCOPE_INSUFFICIENT`, GitHub's `X-Accepted-OAuth-Scopes` beside
//! `X-OAuth-Scopes`, or Microsoft Graph's 403 where the rules name the scopes.

use http::{HeaderMap, StatusCode, header};

use super::allow::ScopeNeed;
pub use super::catalogue::ScopeAnswer;
use super::connections::TokenSourceKind;

/// What the frontend should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Connect the account again, or with more scopes, through Auth0's Connected Accounts (My
    /// Account API): the connection's tokens are in Token Vault.
    Connect,
    /// Log in again through the connection, asking for the scopes (`connection_scope`).
    Login,
}

impl Action {
    /// The action for a connection whose tokens come from `source`.
    pub fn for_source(source: TokenSourceKind) -> Self {
        match source {
            TokenSourceKind::TokenVault => Self::Connect,
            TokenSourceKind::Identities => Self::Login,
        }
    }

    /// The name in the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Login => "login",
        }
    }
}

/// Why consent is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No usable IdP token: none held, or the IdP refused even a renewed one.
    NoToken,
    /// The token lacks scopes the call needs.
    ScopesMissing,
}

/// What the user must do at one connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Consent {
    /// The connection.
    pub connection: String,
    /// Connect the account, or log in again.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The IdP scopes to ask for: those the call lacks, then those already granted where known,
    /// so that consenting to exactly these keeps what works now.
    pub scopes: Vec<String>,
    /// The IdP scopes the call lacks (empty for [`Reason::NoToken`]).
    pub missing: Vec<String>,
}

impl Consent {
    /// No usable token at `connection`: the scopes the call needs are the ones to ask for.
    pub fn no_token(connection: &str, source: TokenSourceKind, needs: &[ScopeNeed]) -> Self {
        Self {
            connection: connection.to_owned(),
            action: Action::for_source(source),
            reason: Reason::NoToken,
            scopes: needs.iter().map(|n| n.ask().to_owned()).collect(),
            missing: Vec::new(),
        }
    }

    /// The token at `connection` lacks `missing`; it was granted `granted`, where known.
    pub fn scopes_missing(
        connection: &str,
        source: TokenSourceKind,
        missing: Vec<String>,
        granted: Option<&[&str]>,
    ) -> Self {
        let mut scopes = missing.clone();
        for scope in granted.into_iter().flatten() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push((*scope).to_owned());
            }
        }
        Self {
            connection: connection.to_owned(),
            action: Action::for_source(source),
            reason: Reason::ScopesMissing,
            scopes,
            missing,
        }
    }

    fn describe(&self) -> String {
        let how = match self.action {
            Action::Connect => "connect the account",
            Action::Login => "log in",
        };
        match self.reason {
            Reason::NoToken => format!(
                "the user must {how} with connection {:?} again",
                self.connection
            ),
            Reason::ScopesMissing => format!(
                "the user's token at connection {:?} lacks {}: {how} again, asking for them",
                self.connection,
                self.missing.join(" ")
            ),
        }
    }
}

/// The needs that a token granted `granted` does not meet, each as the scope to ask for.
pub fn unmet(needs: &[ScopeNeed], granted: &[&str]) -> Vec<String> {
    needs
        .iter()
        .filter(|need| !need.met_by(granted))
        .map(|need| need.ask().to_owned())
        .collect()
}

/// Longest error body read for a provider's dialect: their scope errors are small.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether the IdP's answer (`status`, `headers`, `body`) says that the token lacks a scope, in
/// RFC 6750's form or `dialect`'s; if so, the scopes to ask for: those the matching rules name
/// (`needs`) that the token is not known to have, else those the answer names. The rules come
/// first because they know which scopes are alternatives: Google's challenge lists every scope
/// that would do (`drive.readonly drive`), where RFC 6749 would read a list as all needed.
pub fn refused_for_scope(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    dialect: ScopeAnswer,
    needs: &[ScopeNeed],
    granted: Option<&[&str]>,
) -> Option<Vec<String>> {
    let from_rules = || unmet(needs, granted.unwrap_or_default());
    // Nothing to ask for is no consent answer: the IdP's own answer then passes on, rather
    // than a request to consent to what was granted already.
    let nonempty = |scopes: Vec<String>| (!scopes.is_empty()).then_some(scopes);
    if status == StatusCode::FORBIDDEN
        && let Some(named) = insufficient_scope_challenge(headers)
    {
        return nonempty(from_rules()).or_else(|| nonempty(named));
    }
    match dialect {
        ScopeAnswer::Rfc6750 => None,
        ScopeAnswer::Google => (status == StatusCode::FORBIDDEN
            && error_body(body).is_some_and(|body| google_scope_error(&body)))
        .then(from_rules)
        .and_then(nonempty),
        ScopeAnswer::Github => github_scopes(status, headers, from_rules()),
        ScopeAnswer::Graph => {
            let denied = status == StatusCode::FORBIDDEN
                && error_body(body).is_some_and(|body| {
                    matches!(
                        body.pointer("/error/code").and_then(|c| c.as_str()),
                        Some("Authorization_RequestDenied" | "ErrorAccessDenied")
                    )
                });
            denied.then(from_rules).and_then(nonempty)
        }
    }
}

/// The scopes of a `WWW-Authenticate: Bearer error="insufficient_scope"` challenge (empty when
/// it names none); `None` without such a challenge.
fn insufficient_scope_challenge(headers: &HeaderMap) -> Option<Vec<String>> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(bearer_params)
        .find(|params| param(params, "error") == Some("insufficient_scope"))
        .map(|params| {
            param(&params, "scope")
                .unwrap_or_default()
                .split(' ')
                // Scope tokens only (RFC 6749 §3.3), a bounded number of them.
                .filter(|s| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b)))
                .take(MAX_NAMED_SCOPES)
                .map(str::to_owned)
                .collect()
        })
}

/// Most scopes taken from one challenge.
const MAX_NAMED_SCOPES: usize = 32;

/// The auth-params of a `Bearer` challenge (RFC 7235 §2.1: names case-insensitive, values a
/// token or a quoted string with `\` escapes), lowercase names; `None` for another scheme or a
/// challenge that does not parse. One challenge per header value is read: a value holding
/// several schemes is read up to the next scheme.
fn bearer_params(challenge: &str) -> Option<Vec<(String, String)>> {
    let rest = challenge.trim_start();
    let (scheme, mut rest) = rest.split_at(rest.find(' ').unwrap_or(rest.len()));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(params);
        }
        let name_end = rest.find(['=', ' ', ','])?;
        let name = rest[..name_end].to_ascii_lowercase();
        let after = rest[name_end..].trim_start();
        // A bare word: the next scheme of a list of challenges.
        let Some(value) = after.strip_prefix('=') else {
            return Some(params);
        };
        let value = value.trim_start();
        let (value, next) = match value.strip_prefix('"') {
            Some(quoted) => {
                let mut text = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (_, '\\') => text.push(chars.next()?.1),
                        (at, '"') => break at + 1,
                        (_, c) => text.push(c),
                    }
                };
                (text, &quoted[end..])
            }
            None => {
                let end = value.find([',', ' ']).unwrap_or(value.len());
                (value[..end].to_owned(), &value[end..])
            }
        };
        params.push((name, value));
        rest = next;
    }
}

/// The value of auth-param `name` (lowercase) among `params`.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The body as JSON, where it is small enough to be an error and parses.
fn error_body(body: &[u8]) -> Option<serde_json::Value> {
    (body.len() <= MAX_ERROR_BODY)
        .then(|| serde_json::from_slice(body).ok())
        .flatten()
}

/// Google's error model: `error.details[].reason` (an `ErrorInfo`) names the missing scope.
fn google_scope_error(body: &serde_json::Value) -> bool {
    body.pointer("/error/details")
        .and_then(|d| d.as_array())
        .is_some_and(|details| {
            details.iter().any(|detail| {
                detail.get("reason").and_then(|r| r.as_str())
                    == Some("ACCESS_TOKEN_SCOPE_INSUFFICIENT")
            })
        })
}

/// GitHub's scope headers: what the call accepts and what the token has, comma-separated.
/// GitHub sends them on every answer, a `404` for a resource that simply does not exist
/// included, so a `404` counts only where the rules name scopes the token lacks (`from_rules`),
/// and a `403` asks for the rules' scopes where they name any, else for the narrowest accepted
/// one (a `read:` or `public_` scope before the rest, which GitHub lists alphabetically, `admin:`
/// first).
fn github_scopes(
    status: StatusCode,
    headers: &HeaderMap,
    from_rules: Vec<String>,
) -> Option<Vec<String>> {
    let list = |name: &str| -> Option<Vec<&str>> {
        let value = headers.get(name)?.to_str().ok()?;
        Some(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
        )
    };
    let accepted = list("x-accepted-oauth-scopes")?;
    let granted = list("x-oauth-scopes")?;
    if accepted.is_empty() || accepted.iter().any(|scope| granted.contains(scope)) {
        return None;
    }
    match status {
        StatusCode::NOT_FOUND => (!from_rules.is_empty()).then_some(from_rules),
        StatusCode::FORBIDDEN if !from_rules.is_empty() => Some(from_rules),
        StatusCode::FORBIDDEN => {
            let narrowest = accepted
                .iter()
                .find(|s| s.starts_with("read:"))
                .or_else(|| accepted.iter().find(|s| s.starts_with("public_")))
                .or_else(|| accepted.iter().find(|s| !s.starts_with("admin:")))
                .or_else(|| accepted.first())?;
            Some(vec![(*narrowest).to_owned()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::allow::AllowRule;

    fn needs(rule: &str) -> Vec<ScopeNeed> {
        AllowRule::parse(rule).expect("rule").idp_scopes().to_vec()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    value.parse().expect("value"),
                )
            })
            .collect()
    }

    #[test]
    fn a_need_is_met_by_any_of_its_alternatives_and_asks_for_the_first() {
        let needs = needs("GET /drive/v3/** idp-scopes drive.readonly|drive email");
        assert_eq!(unmet(&needs, &["drive", "email"]), Vec::<String>::new());
        assert_eq!(unmet(&needs, &["email"]), ["drive.readonly"]);
        assert_eq!(unmet(&needs, &[]), ["drive.readonly", "email"]);
    }

    #[test]
    fn an_rfc_6750_challenge_is_read_from_every_provider() {
        let challenge = headers(&[(
            "www-authenticate",
            r#"Bearer realm="x", error="insufficient_scope", scope="a b""#,
        )]);
        for dialect in [
            ScopeAnswer::Rfc6750,
            ScopeAnswer::Github,
            ScopeAnswer::Graph,
        ] {
            assert_eq!(
                refused_for_scope(StatusCode::FORBIDDEN, &challenge, b"", dialect, &[], None),
                Some(vec!["a".to_owned(), "b".to_owned()])
            );
        }
        // A 401 is about the token, not its scopes; another error is not about scopes.
        assert_eq!(
            refused_for_scope(
                StatusCode::UNAUTHORIZED,
                &challenge,
                b"",
                ScopeAnswer::Rfc6750,
                &[],
                None
            ),
            None
        );
        let other = headers(&[("www-authenticate", r#"Bearer error="invalid_token""#)]);
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &other,
                b"",
                ScopeAnswer::Rfc6750,
                &[],
                None
            ),
            None
        );
        // A challenge that names no scope asks for what the rules name.
        let bare = headers(&[("www-authenticate", "Bearer error=insufficient_scope")]);
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &bare,
                b"",
                ScopeAnswer::Rfc6750,
                &needs("GET /x idp-scopes s"),
                None
            ),
            Some(vec!["s".to_owned()])
        );
    }

    #[test]
    fn googles_error_details_name_a_missing_scope() {
        let body = br#"{"error":{"code":403,"status":"PERMISSION_DENIED","details":[
            {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}"#;
        let drive = needs("GET /drive/v3/** idp-scopes drive.readonly|drive");
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                body,
                ScopeAnswer::Google,
                &drive,
                None
            ),
            Some(vec!["drive.readonly".to_owned()])
        );
        let quota = br#"{"error":{"code":403,"details":[{"reason":"RATE_LIMIT_EXCEEDED"}]}}"#;
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                quota,
                ScopeAnswer::Google,
                &drive,
                None
            ),
            None
        );
    }

    #[test]
    fn githubs_headers_say_which_scopes_a_call_accepts() {
        let lacking = headers(&[
            ("x-oauth-scopes", "read:user, public_repo"),
            ("x-accepted-oauth-scopes", "admin:org, read:org, write:org"),
        ]);
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &lacking,
                b"",
                ScopeAnswer::Github,
                &[],
                None
            ),
            Some(vec!["read:org".to_owned()]),
            "the narrowest accepted scope, not the first (admin:)"
        );
        // A 404 is a missing resource (GitHub sends its headers on every answer) unless the
        // rules name a scope the token lacks.
        assert_eq!(
            refused_for_scope(
                StatusCode::NOT_FOUND,
                &lacking,
                b"",
                ScopeAnswer::Github,
                &[],
                None
            ),
            None
        );
        let org = needs("GET /orgs/** idp-scopes read:org|admin:org");
        assert_eq!(
            refused_for_scope(
                StatusCode::NOT_FOUND,
                &lacking,
                b"",
                ScopeAnswer::Github,
                &org,
                None
            ),
            Some(vec!["read:org".to_owned()])
        );
        let holding = headers(&[
            ("x-oauth-scopes", "repo, user"),
            ("x-accepted-oauth-scopes", "repo"),
        ]);
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &holding,
                b"",
                ScopeAnswer::Github,
                &[],
                None
            ),
            None,
            "the token has an accepted scope: a permission, not a scope"
        );
        assert_eq!(
            refused_for_scope(
                StatusCode::OK,
                &lacking,
                b"",
                ScopeAnswer::Github,
                &[],
                None
            ),
            None
        );
    }

    #[test]
    fn challenges_are_read_as_auth_params() {
        let read = |value: &str| {
            let map = headers(&[("www-authenticate", value)]);
            insufficient_scope_challenge(&map)
        };
        let scopes = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            read(
                r#"Bearer error_description="needs scope=admin", error="insufficient_scope", scope="read""#
            ),
            scopes(&["read"])
        );
        assert_eq!(
            read(r#"bearer Error="insufficient_scope", Scope="a b""#),
            scopes(&["a", "b"])
        );
        assert_eq!(
            read(r#"Bearer scope="a \"b\"", error=insufficient_scope"#),
            scopes(&["a", "\"b\""])
        );
        assert_eq!(
            read(r#"Bearer realm=" error=insufficient_scope ", error="invalid_token""#),
            None,
            "a quoted realm is not the error"
        );
        assert_eq!(read(r#"Basic realm="x", error="insufficient_scope""#), None);
        assert_eq!(
            read(r#"Bearer error="insufficient_scope", scope="unterminated"#),
            None
        );
    }

    #[test]
    fn an_answer_with_nothing_to_ask_for_passes_on() {
        let body =
            br#"{"error":{"code":403,"details":[{"reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}"#;
        let drive = needs("GET /drive/v3/** idp-scopes drive.readonly|drive");
        // The rules are met, or name nothing: no consent would change anything.
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                body,
                ScopeAnswer::Google,
                &drive,
                Some(&["drive"])
            ),
            None
        );
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                body,
                ScopeAnswer::Google,
                &[],
                None
            ),
            None
        );
        let bare = headers(&[("www-authenticate", "Bearer error=insufficient_scope")]);
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &bare,
                b"",
                ScopeAnswer::Rfc6750,
                &[],
                None
            ),
            None
        );
    }

    #[test]
    fn graphs_403_is_a_missing_scope_only_where_the_rules_name_one() {
        let body = br#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#;
        let mail = needs("GET /v1.0/me/messages idp-scopes Mail.Read|Mail.ReadWrite");
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                body,
                ScopeAnswer::Graph,
                &mail,
                None
            ),
            Some(vec!["Mail.Read".to_owned()])
        );
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                body,
                ScopeAnswer::Graph,
                &[],
                None
            ),
            None
        );
        assert_eq!(
            refused_for_scope(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                body,
                ScopeAnswer::Graph,
                &mail,
                Some(&["Mail.ReadWrite"])
            ),
            None,
            "granted: a permission on the resource, not a scope"
        );
    }

    #[test]
    fn a_consent_asks_for_what_is_missing_and_keeps_what_is_granted() {
        let consent = Consent::scopes_missing(
            "google-oauth2",
            TokenSourceKind::TokenVault,
            vec!["drive.readonly".to_owned()],
            Some(&["openid", "email"]),
        );
        assert_eq!(consent.action, Action::Connect);
        assert_eq!(consent.scopes, ["drive.readonly", "openid", "email"]);
        assert_eq!(consent.missing, ["drive.readonly"]);
        let login = Consent::no_token("github", TokenSourceKind::Identities, &[]);
        assert_eq!(
            (login.action, login.reason),
            (Action::Login, Reason::NoToken)
        );
    }
}
