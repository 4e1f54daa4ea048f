//! The invariants the fuzz targets assert, in one place: the targets in `fuzz_targets/` call these
//! functions on libFuzzer's inputs, and `tests/fuzz_regressions.rs` (stable, `cargo test`) calls
//! them on every seed and every kept crash. Each function panics when an invariant breaks, and
//! returns quietly for an input the code under test refuses, as long as the refusal is a right one.
//!
//! Only the proxy's own crate and its dependencies are used, so that the root crate's test can
//! include this file as a module.

use std::str;
use std::sync::LazyLock;

use auth0_idp_proxy::auth::{self, AuthError, MAX_TOKEN_BYTES};
use auth0_idp_proxy::idp::catalogue;
use auth0_idp_proxy::idp::connections::{AllowRule, Connection, Connections, Refresh};
use auth0_idp_proxy::idp::path::{self, IdpPath, PathError};
use auth0_idp_proxy::idp::{IdpError, IdpRequest};
use auth0_idp_proxy::routes::{self, Route};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method};
use percent_encoding::percent_decode_str;
use url::Url;

/// The checks of one target: panic on an input that breaks an invariant.
pub type Check = fn(&[u8]);

/// Every target, by name, as `fuzz_targets/` and `fuzz/seeds/` name them.
pub const TARGETS: &[(&str, Check)] = &[
    ("token_precheck", token_precheck),
    ("route_path", route_path),
    ("connections_config", connections_config),
];

/// The `Authorization` header values, one per line (none for an empty input), through
/// `bearer_token`, `precheck` and `jsonwebtoken::decode_header` as `Authenticator::authenticate`
/// chains them; every line is also prechecked as a bare token.
pub fn token_precheck(data: &[u8]) {
    let mut headers = HeaderMap::new();
    if !data.is_empty() {
        for line in data.split(|b| *b == b'\n') {
            let Ok(value) = HeaderValue::from_bytes(line) else {
                return;
            };
            headers.append(AUTHORIZATION, value);
        }
    }
    let values: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
    match auth::bearer_token(&headers) {
        Ok(token) => {
            let [value] = values[..] else {
                panic!(
                    "a token was taken from {} Authorization headers",
                    values.len()
                );
            };
            let value = value
                .to_str()
                .expect("a token comes from a visible-ASCII header");
            let (scheme, rest) = value.split_once(' ').expect("a bearer header has a space");
            assert!(scheme.eq_ignore_ascii_case("bearer"), "scheme {scheme:?}");
            assert!(!token.is_empty(), "an empty token is no token");
            assert_eq!(
                token,
                rest.trim(),
                "the token is the header's rest, trimmed"
            );
            assert!(value.len() <= MAX_TOKEN_BYTES + "Bearer ".len());
            check_token(token);
        }
        Err(AuthError::Missing) => assert!(
            values.is_empty() || values.len() == 1,
            "several headers are not a missing token"
        ),
        Err(AuthError::NotBearer | AuthError::Oversized | AuthError::Malformed) => {}
        Err(other) => panic!("bearer_token refused with {other:?}"),
    }
    if let Ok(text) = str::from_utf8(data) {
        for line in text.split('\n') {
            check_token(line);
        }
    }
}

/// `precheck` accepts exactly the tokens of at most [`MAX_TOKEN_BYTES`] made of three non-empty
/// base64url segments; only those reach `decode_header`, which must not panic on them.
fn check_token(token: &str) {
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let segments: Vec<&str> = token.split('.').collect();
    let well_formed = segments.len() == 3
        && segments
            .iter()
            .all(|s| !s.is_empty() && s.bytes().all(base64url));
    match auth::precheck(token) {
        Ok(()) => {
            assert!(token.len() <= MAX_TOKEN_BYTES, "oversized token accepted");
            assert!(well_formed, "malformed token {token:?} accepted");
            // Whatever the header says, decoding it is the next step and must fail cleanly.
            let _ = jsonwebtoken::decode_header(token);
        }
        Err(AuthError::Oversized) => assert!(token.len() > MAX_TOKEN_BYTES),
        Err(AuthError::Malformed) => {
            assert!(token.len() <= MAX_TOKEN_BYTES, "size is checked first");
            assert!(!well_formed, "well-formed token {token:?} refused");
        }
        Err(other) => panic!("precheck refused with {other:?}"),
    }
}

/// The connection table the `route_path` target calls into: the built-ins, one with narrow rules,
/// and two with a base path (one of them a loopback stand-in with a trailing slash).
const ROUTE_TABLE: &str = r#"{
  "github": {"allow": ["GET /user", "GET /user/**", "POST /user/repos", "GET /repos/*/*/issues/**",
                       "PUT /repos/**/comments/**/reactions/*"]},
  "graph": {"api_base": "https://graph.example.com/v1.0", "allow": ["* /me/**", "GET /users/*/photo/$value"]},
  "standin": {"api_base": "http://127.0.0.1:9999/api/", "allow": ["* /**"]},
  "matrix": {"api_base": "https://matrix.example.com", "path_characters": ";\u2024\u2025@",
             "allow": ["GET /user/**", "GET /user/emails needs pii:read", "* /files/**",
                       "GET /files/secret needs files:secret"]}
}"#;

static TABLE: LazyLock<Connections> =
    LazyLock::new(|| Connections::from_json(ROUTE_TABLE).expect("the route table is valid"));

static ROUTE_RULES: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(ROUTE_TABLE).expect("the route table is JSON"));

/// The provider catalogue's entries, for the allow rules of the built-in connections.
static CATALOGUE: LazyLock<
    std::collections::BTreeMap<String, auth0_idp_proxy::idp::catalogue::Entry>,
> = LazyLock::new(|| auth0_idp_proxy::idp::catalogue::entries().expect("the catalogue parses"));

/// The allow rules of `connection` in [`ROUTE_TABLE`], else its catalogue entry's.
fn route_rules(connection: &str) -> Vec<&'static str> {
    match ROUTE_RULES[connection]["allow"].as_array() {
        Some(rules) => rules.iter().filter_map(serde_json::Value::as_str).collect(),
        None => CATALOGUE
            .get(connection)
            .map(|entry| entry.allow.iter().map(String::as_str).collect())
            .unwrap_or_default(),
    }
}

/// `[HOST\n]METHOD /path?query` (`GET` when there is no space): routed, normalised and, for a
/// configured connection, turned into the upstream URL as the handler does. For a per-user host
/// connection (`salesforce`, `shopify`, ...), HOST is the value the user's profile holds (a
/// default org host without a first line): whatever passes the check is inside the connection's
/// pattern, and the upstream URL's host is exactly it, over https.
pub fn route_path(data: &[u8]) {
    let Ok(text) = str::from_utf8(data) else {
        return;
    };
    let (host_value, text) = match text.split_once('\n') {
        Some((host, rest)) => (Some(host), rest),
        None => (None, text),
    };
    let (method, target) = text.split_once(' ').unwrap_or(("GET", text));
    let Ok(sent) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    // The event's method as the function reads it: upper case, whatever the spelling.
    let method = routes::canonical_method(&sent);
    assert!(
        !method.as_str().bytes().any(|b| b.is_ascii_lowercase()),
        "{method} is not canonical"
    );
    assert!(
        method.as_str().eq_ignore_ascii_case(sent.as_str()),
        "{sent} became {method}"
    );
    let (raw_path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    // The whole path as an IdP path too: the fuzzer need not find `/idp/{name}` to test it.
    let _ = check_normalise(raw_path);
    let Some(Route::Idp { connection, path }) = check_route(raw_path) else {
        return;
    };
    let normalised = check_normalise(path);
    let Some(table_entry) = TABLE.get(connection) else {
        return;
    };
    let per_user;
    let table_entry = match check_host(table_entry, host_value) {
        HostCheck::Fixed => table_entry,
        HostCheck::Refused => return,
        HostCheck::Serves(connection) => {
            per_user = connection;
            &*per_user
        }
    };
    if let Ok(path) = &normalised {
        let matching = reference_matching(connection, &method, &path.segments);
        assert_eq!(
            table_entry.allows(&method, &path.segments),
            matching.is_some(),
            "{method} {:?} at {connection}",
            path.segments
        );
        // A caller holding nothing is let through only where no matching rule, under either
        // reading of the path, needs anything.
        let guarded = path::check_guarded(&path.segments, &table_entry.path_characters).is_ok();
        if let (Some(needs), true) = (&matching, guarded) {
            let headers = HeaderMap::new();
            let holding_nothing = IdpRequest::new(
                table_entry,
                method.clone(),
                &path.encoded,
                None,
                &headers,
                b"",
                &|_| false,
            );
            match holding_nothing {
                Ok(_) => assert!(
                    needs.is_empty(),
                    "{method} {:?} passed without {needs:?}",
                    path.segments
                ),
                Err(IdpError::InsufficientScope(missing)) => {
                    assert!(!needs.is_empty());
                    for need in needs {
                        assert!(missing.iter().any(|m| m == need), "{need} not named");
                    }
                }
                Err(other) => panic!("{method} {:?}: {other:?}", path.segments),
            }
        }
    }
    check_request(table_entry, &method, path, query);
}

/// What a connection's per-user host check made of a profile's value.
enum HostCheck {
    /// A fixed `api_base`: no host is read.
    Fixed,
    /// The value was refused.
    Refused,
    /// The connection as it serves that user.
    Serves(Box<Connection>),
}

/// The connection's host check on `value` (as `urls.custom_domain`, `myshopify_domain`) against
/// a naive reading of the README's rule: lowercase letters, digits and inner `-` in one label
/// (at most 63) for the pattern's `*`, the rest equal to the pattern; a bare host or
/// `https://HOST[/path]`.
fn check_host(connection: &Connection, value: Option<&str>) -> HostCheck {
    let Some(rule) = &connection.api_host else {
        return HostCheck::Fixed;
    };
    let value = value.unwrap_or("acme.my.salesforce.com");
    let profile = serde_json::json!({
        "user": {"urls": {"custom_domain": value, "rest": value}, "myshopify_domain": value},
        "identity": {"profileData": {"urls": {"custom_domain": value, "rest": value}, "myshopify_domain": value}},
    });
    let host = match value.strip_prefix("https://") {
        Some(rest) => rest.split('/').next().unwrap_or_default(),
        None => value,
    };
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let pattern = rule.pattern();
    let expected = !value.contains("://") || value.starts_with("https://");
    let expected = expected
        && match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .and_then(|l| l.strip_suffix('.'))
                .is_some_and(label_ok),
            None => host == pattern,
        };
    match connection.for_host(&profile) {
        Ok(serving) => {
            assert!(expected, "{value:?} passed for {pattern}");
            let base = &serving.api_base;
            assert_eq!(base.scheme(), "https", "{base}");
            assert_eq!(base.host_str(), Some(host), "{base} for {value:?}");
            assert_eq!(base.port(), None, "{base}");
            assert!(base.username().is_empty() && base.password().is_none());
            HostCheck::Serves(Box::new(serving))
        }
        Err(_) => {
            assert!(!expected, "{value:?} refused for {pattern}");
            HostCheck::Refused
        }
    }
}

/// The `needs` of every rule of `connection` that matches `method` on `segments` as written or as
/// the upstream serves them (README: rules match the path the upstream serves); `None` when no
/// rule matches, or the path cannot be served as a resource.
fn reference_matching(
    connection: &str,
    method: &Method,
    segments: &[String],
) -> Option<Vec<&'static str>> {
    let served = match reference_served(segments) {
        Ok(served) => served,
        Err(()) => return None,
    };
    let rules = route_rules(connection);
    let matching: Vec<&str> = rules
        .iter()
        .filter(|rule| {
            reference_allows(rule, method, segments)
                || served
                    .as_ref()
                    .is_some_and(|served| reference_allows(rule, method, served))
        })
        .copied()
        .collect();
    if matching.is_empty() {
        return None;
    }
    Some(
        matching
            .iter()
            .filter_map(|rule| rule_parts(rule))
            .flat_map(|(_, _, needs, _)| needs)
            .collect(),
    )
}

/// The segments as a server that normalises Unicode (NFKC) and reads matrix parameters serves
/// them: each in its compatibility form, the ideographic full stops as dots, cut at its first
/// `;`. `None` when that is the path as written; `Err` for a segment that would read as nothing
/// or as a dot segment.
fn reference_served(segments: &[String]) -> Result<Option<Vec<String>>, ()> {
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
    let mut served = Vec::new();
    for segment in segments {
        let normal = nfkc
            .normalize(segment)
            .replace(['\u{3002}', '\u{ff61}'], ".");
        let read = normal.split(';').next().unwrap_or_default().to_owned();
        if read.is_empty() || read == "." || read == ".." {
            return Err(());
        }
        served.push(read);
    }
    Ok((served != segments).then_some(served))
}

/// The allow-rule semantics of the README, naively: the method or `*`, then `*` for one segment,
/// `**` for any number, anything else for itself. For texts `AllowRule::parse` accepts.
fn reference_allows(rule: &str, method: &Method, segments: &[String]) -> bool {
    let Some((rule_method, path, _, _)) = rule_parts(rule) else {
        return false;
    };
    let path = path.trim_start_matches('/');
    let pattern: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // `HEAD` wherever `GET` is allowed (README).
    let method_matches = rule_method == "*"
        || rule_method == method.as_str()
        || (*method == Method::HEAD && rule_method == "GET");
    method_matches && reference_glob(&pattern, segments)
}

/// A rule's method, path and what it `needs` (the words after the path), split as the README
/// says.
/// A rule's parts as the oracle reads them: method, path, `needs` scopes, `idp-scopes` lists.
type RuleParts<'a> = (&'a str, &'a str, Vec<&'a str>, Vec<Vec<&'a str>>);

fn rule_parts(rule: &str) -> Option<RuleParts<'_>> {
    let (method, rest) = rule.trim().split_once(' ')?;
    let mut words = rest.split_whitespace();
    let path = words.next().unwrap_or_default();
    let (mut needs, mut idp) = (Vec::new(), Vec::new());
    let (mut clause, mut seen) = ("", Vec::new());
    for word in words {
        // A clause's word starts it once; after that it is a scope like any other.
        if matches!(word, "needs" | "idp-scopes") && !seen.contains(&word) {
            seen.push(word);
            clause = word;
        } else if clause == "needs" {
            needs.push(word);
        } else {
            idp.push(word.split('|').collect());
        }
    }
    Some((method, path, needs, idp))
}

/// Backtracking, so exponential in the number of `**`: only for short inputs.
fn reference_glob(pattern: &[&str], segments: &[String]) -> bool {
    match pattern.split_first() {
        None => segments.is_empty(),
        Some((&"**", rest)) => {
            (0..=segments.len()).any(|skip| reference_glob(rest, &segments[skip..]))
        }
        Some((head, rest)) => segments.split_first().is_some_and(|(segment, tail)| {
            (*head == "*" || head == segment) && reference_glob(rest, tail)
        }),
    }
}

/// `route` yields only well-formed connection names and splits the path without losing a byte.
fn check_route(raw: &str) -> Option<Route<'_>> {
    let route = routes::route(raw);
    match &route {
        Some(Route::Identities) => assert!(raw == "/identities" || raw == "/identities/"),
        Some(Route::Idp { connection, path }) => {
            assert!(
                is_connection_name(connection),
                "routed to connection {connection:?}"
            );
            assert!(path.is_empty() || path.starts_with('/'), "rest {path:?}");
            assert_eq!(format!("/idp/{connection}{path}"), raw);
        }
        None => {
            let name = raw
                .strip_prefix("/idp/")
                .map(|rest| rest.split('/').next().unwrap_or(rest));
            assert!(
                !name.is_some_and(is_connection_name),
                "{raw:?} names a connection but was not routed"
            );
        }
    }
    route
}

/// Auth0's connection names: `[A-Za-z0-9_-]{1,128}`.
fn is_connection_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A normalised path has no dot or empty segment, nothing a later hop could decode into a
/// separator, and a canonical encoding that a URL parser keeps as it is.
fn check_normalise(raw: &str) -> Result<IdpPath, PathError> {
    let result = path::normalise(raw);
    let path = match &result {
        Ok(path) => path,
        Err(PathError::DotSegment | PathError::EmptySegment | PathError::ForbiddenCharacter) => {
            return result;
        }
        Err(other) => panic!("normalise refused {raw:?} with {other:?}"),
    };
    let encoded = &path.encoded;
    let inner = encoded
        .strip_prefix('/')
        .expect("an encoded path starts with /");
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let encoded_segments: Vec<&str> = if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('/').collect()
    };
    assert_eq!(encoded_segments.len(), path.segments.len(), "{raw:?}");
    for (encoded_segment, segment) in encoded_segments.iter().zip(&path.segments) {
        assert!(is_canonical_segment(encoded_segment), "{encoded:?}");
        assert!(!matches!(segment.as_str(), "" | "." | ".."), "{raw:?}");
        assert!(
            !segment
                .chars()
                .any(|c| matches!(c, '/' | '\\' | '%') || c.is_control()),
            "segment {segment:?} of {raw:?}"
        );
        assert_eq!(
            percent_decode_str(encoded_segment).decode_utf8().as_deref(),
            Ok(segment.as_str()),
            "the encoding names the segment the rules see"
        );
    }
    let lower = encoded.to_ascii_lowercase();
    for escape in ["%2f", "%5c", "%25", "%2e", "%40"] {
        assert!(!lower.contains(escape), "{encoded:?} has {escape}");
    }
    assert_eq!(
        path::normalise(encoded).as_ref(),
        Ok(path),
        "normalising is idempotent"
    );
    let url = Url::parse(&format!("https://fuzz.invalid{encoded}")).expect("a valid URL path");
    assert_eq!(url.path(), encoded, "a URL parser keeps the canonical path");
    result
}

/// Unreserved characters, sub-delimiters, `:` and `@` (RFC 3986's `pchar`; `@` reaches a URL
/// only where the connection allows it) as they are; anything else as `%XX`, uppercase.
fn is_canonical_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
            if !(i + 2 < bytes.len() && hex(bytes[i + 1]) && hex(bytes[i + 2])) {
                return false;
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            i += 1;
        } else {
            return false;
        }
    }
    !segment.is_empty()
}

/// An accepted request is allowed by the connection's rules, and its URL is the connection's
/// origin and base path followed by exactly the normalised path the rules saw.
fn check_request(connection: &Connection, method: &Method, raw: &str, query: Option<&str>) {
    let headers = HeaderMap::new();
    // A caller holding no permission: rules that need some refuse with what is missing.
    let result = IdpRequest::new(
        connection,
        method.clone(),
        raw,
        query,
        &headers,
        b"",
        &|_| false,
    );
    let normalised = path::normalise(raw);
    match result {
        Ok(request) => {
            let path = normalised.expect("an accepted path normalises");
            assert!(
                connection.allows(method, &path.segments),
                "{method} {raw:?}"
            );
            let (url, base) = (&request.url, &connection.api_base);
            assert_eq!(url.origin(), base.origin(), "{url} left {base}");
            assert_eq!(url.scheme(), base.scheme());
            assert_eq!(url.host(), base.host());
            assert_eq!(url.port_or_known_default(), base.port_or_known_default());
            assert!(
                url.username().is_empty() && url.password().is_none(),
                "{url}"
            );
            assert!(url.fragment().is_none(), "{url}");
            let base_path = base.path().trim_end_matches('/');
            let rest = url.path().strip_prefix(base_path);
            assert_eq!(rest, Some(path.encoded.as_str()), "{url} under {base}");
            assert_eq!(
                url.query().is_some(),
                query.is_some_and(|q| !q.is_empty()),
                "{url} for query {query:?}"
            );
        }
        Err(IdpError::InsufficientScope(missing)) => {
            let path = normalised.expect("only a normalised path is checked against the rules");
            assert!(!missing.is_empty(), "{method} {raw:?}");
            assert!(
                connection.allows(method, &path.segments),
                "{method} {raw:?}"
            );
        }
        Err(IdpError::ForbiddenPath(PathError::NotAllowed)) => {
            let path = normalised.expect("only a normalised path is checked against the rules");
            assert!(!connection.allows(method, &path.segments));
        }
        Err(IdpError::ForbiddenPath(PathError::LeavesOrigin)) => {
            assert!(normalised.is_ok());
            assert!(
                query.is_some_and(|q| q.contains('#')),
                "{raw:?}?{query:?} refused as leaving {}",
                connection.api_base
            );
        }
        Err(IdpError::ForbiddenPath(PathError::GuardedCharacter)) => {
            // `;`, `@` and look-alike dots are refused per connection, after normalisation.
            let path = normalised.expect("guarded characters are checked on a normalised path");
            assert_eq!(
                path::check_guarded(&path.segments, &connection.path_characters),
                Err(PathError::GuardedCharacter),
                "{raw:?}"
            );
        }
        // A path that normalised but would be served as another resource (a segment that
        // reads as nothing or as a dot segment once cut at `;` or read with its dots).
        Err(IdpError::ForbiddenPath(PathError::DotSegment | PathError::EmptySegment))
            if normalised.is_ok() =>
        {
            let path = normalised.expect("checked");
            assert_eq!(reference_served(&path.segments), Err(()), "{raw:?}");
        }
        Err(IdpError::ForbiddenPath(error)) => assert_eq!(normalised, Err(error)),
        Err(other) => panic!("IdpRequest::new refused {raw:?} with {other:?}"),
    }
}

/// Requests tried on every connection of an accepted table.
const PROBES: &[(Method, &str, Option<&str>)] = &[
    (Method::GET, "", None),
    (Method::GET, "/user/repos", Some("per_page=5")),
    (Method::POST, "/me/messages/", None),
    (Method::DELETE, "/a%20b/caf%C3%A9", None),
];

/// A long path a caller may send, so that an allow rule whose matching grows with the path's
/// length shows up as a slow input (libFuzzer's `-timeout`).
static LONG_PATH: LazyLock<String> = LazyLock::new(|| format!("{}/end", "/a".repeat(100)));

/// The text as one allow rule, then as `IDP_CONNECTIONS`: an accepted table keeps only safe API
/// bases and token URLs, no header the function sets itself, and builds only URLs under its bases.
pub fn connections_config(data: &[u8]) {
    let Ok(text) = str::from_utf8(data) else {
        return;
    };
    check_allow_rule(text);
    let Ok(table) = Connections::from_json(text) else {
        return;
    };
    let overrides: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).expect("an accepted table is a JSON object");
    let entries = catalogue::entries().expect("the catalogue parses");
    // The catalogue's entries that need no configuration are built in under their strategy.
    let mut names: Vec<&str> = entries
        .keys()
        .map(String::as_str)
        .filter(|strategy| table.get(strategy).is_some())
        .collect();
    names.extend(overrides.keys().map(String::as_str));
    // A connection served by its strategy's entry is held to the same rules as a named one.
    let by_strategy: Vec<_> = entries
        .keys()
        .filter_map(|strategy| table.for_strategy("fuzz-connection", strategy).ok())
        .collect();
    for connection in names
        .iter()
        .map(|name| {
            table
                .get(name)
                .expect("every named connection is in the table")
        })
        .chain(&by_strategy)
    {
        let name = connection.name.as_str();
        assert!(names.contains(&name) || name == "fuzz-connection");
        if connection.refresh == Refresh::None {
            assert!(
                !connection.renews(),
                "{name} renews without a refresh grant"
            );
        }
        check_api_url(&connection.api_base);
        if let Some(token_url) = &connection.token_url {
            check_api_url(token_url);
        }
        for (header, _) in &connection.headers {
            assert!(
                !matches!(header.as_str(), "authorization" | "cookie" | "host"),
                "{name} sets {header}"
            );
        }
        let rules = overrides
            .get(name)
            .and_then(|entry| entry.get("allow"))
            .and_then(serde_json::Value::as_array);
        for rule in rules.into_iter().flatten() {
            let rule = rule.as_str().expect("an accepted rule is a string");
            assert!(AllowRule::parse(rule).is_ok(), "{rule:?} was accepted");
            check_allow_rule(rule);
        }
        for (method, raw, query) in PROBES {
            check_request(connection, method, raw, *query);
        }
        check_request(connection, &Method::GET, &LONG_PATH, None);
    }
}

/// https, or plain http to a loopback stand-in; no credentials, query or fragment; no trailing
/// slash beyond the root's.
fn check_api_url(url: &Url) {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    };
    assert!(url.host().is_some(), "{url} has no host");
    assert!(
        url.scheme() == "https" || (url.scheme() == "http" && loopback),
        "{url} is neither https nor loopback http"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{url}"
    );
    assert!(url.query().is_none() && url.fragment().is_none(), "{url}");
    assert!(
        url.path() == "/" || !url.path().ends_with('/'),
        "{url} keeps a trailing slash"
    );
}

/// An accepted rule is `METHOD /segments` with an uppercase method or `*`, no empty or dot
/// segment and `*` only as a whole segment; it matches the path it names and nothing longer
/// unless it ends in `**`, and only for its method.
fn check_allow_rule(text: &str) {
    let Ok(rule) = AllowRule::parse(text) else {
        return;
    };
    let (method, path, needs, idp) = rule_parts(text).expect("an accepted rule is METHOD PATH");
    assert_eq!(rule.needs(), needs, "{text:?}");
    let alternatives: Vec<&[String]> = rule.idp_scopes().iter().map(|n| n.alternatives()).collect();
    assert_eq!(alternatives, idp, "{text:?}");
    assert!(
        method == "*" || (!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase())),
        "method {method:?}"
    );
    let rest = path
        .trim()
        .strip_prefix('/')
        .expect("an accepted rule's path starts with /");
    let pattern: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    for segment in &pattern {
        assert!(!matches!(*segment, "" | "." | ".."), "{text:?}");
        assert!(
            !segment.contains('*') || matches!(*segment, "*" | "**"),
            "{text:?}"
        );
    }
    let named: Vec<String> = pattern
        .iter()
        .filter(|s| **s != "**")
        .map(|s| if *s == "*" { "x" } else { s }.to_owned())
        .collect();
    let own = match method {
        "*" => Method::PATCH,
        m => Method::from_bytes(m.as_bytes()).expect("an accepted method"),
    };
    assert!(rule.matches(&own, &named), "{text:?} misses {named:?}");
    if method != "*" {
        let other = if own == Method::GET {
            Method::POST
        } else {
            Method::GET
        };
        assert!(!rule.matches(&other, &named), "{text:?} allows {other}");
    }
    if !pattern.contains(&"**") {
        let mut longer = named.clone();
        longer.push("more".to_owned());
        assert!(!rule.matches(&own, &longer), "{text:?} allows {longer:?}");
    }
    // Paths near the one the rule names, against the naive matcher while that stays cheap.
    if pattern.iter().filter(|s| **s == "**").count() > 4 || named.len() > 12 {
        return;
    }
    let literals: Vec<String> = pattern
        .iter()
        .filter(|s| !s.contains('*'))
        .map(|s| (*s).to_owned())
        .collect();
    let mut near = vec![literals.clone(), [literals, named.clone()].concat()];
    for i in 0..=named.len() {
        let mut with = named.clone();
        with.insert(i, "x".to_owned());
        near.push(with);
        near.push([&named[..i], &named[i.saturating_add(1).min(named.len())..]].concat());
    }
    for segments in near {
        assert_eq!(
            rule.matches(&own, &segments),
            reference_allows(text, &own, &segments),
            "{text:?} on {segments:?}"
        );
    }
}
