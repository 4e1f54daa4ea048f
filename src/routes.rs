//! Which route a request asks for, the same way for HTTP API (v2), REST API (v1) and Function URL
//! events.
//!
//! Routing works on the raw path of the event, never on `Request::uri()`: lambda_http builds the
//! URI through a URL parser that resolves `..` segments, which would let `/idp/x/../../identities`
//! reach another route unseen.

use http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// A route of the function's HTTP interface (README, "How a request flows").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /identities`.
    Identities,
    /// `{METHOD} /idp/{connection}/{path…}`: `path` is the raw rest of the path (leading `/`
    /// included, possibly empty), still to be normalised and checked.
    Idp {
        /// The connection name, as written in the path.
        connection: &'a str,
        /// The rest of the path after the connection name.
        path: &'a str,
    },
}

/// The name a request's route goes by in the summary line (the `Route` dimension of the
/// metrics) and in the audit line: a fixed set, so that no name a caller made up becomes a
/// dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteName {
    /// A CORS preflight (`OPTIONS`), on any path.
    Preflight,
    /// [`Route::Identities`].
    Identities,
    /// [`Route::Idp`].
    Idp,
    /// No route matched, or the event was refused before it was a request.
    Unrouted,
}

impl RouteName {
    /// The name of the route of a request of `method` for `route`: a preflight whatever its
    /// path, since it is answered before routing.
    pub fn of(route: Option<&Route<'_>>, method: &Method) -> Self {
        match route {
            _ if method == Method::OPTIONS => Self::Preflight,
            Some(Route::Identities) => Self::Identities,
            Some(Route::Idp { .. }) => Self::Idp,
            None => Self::Unrouted,
        }
    }

    /// The name as written in the lines: `preflight`, `identities`, `idp` or `none`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::Identities => "identities",
            Self::Idp => "idp",
            Self::Unrouted => "none",
        }
    }
}

/// The path the client asked for, without the API Gateway stage: percent-encoded as sent for
/// HTTP API and Function URL events.
pub fn request_path(request: &Request) -> &str {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() {
        request.uri().path()
    } else {
        raw
    };
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.as_deref(),
        _ => None,
    };
    match stage {
        Some(stage) if stage != "$default" => strip_stage(path, stage),
        _ => path,
    }
}

/// The function's own URL for `connection`'s routes, as the caller reached it:
/// `{scheme}://{host}{prefix}/idp/{connection}`, where `prefix` is whatever precedes the routed
/// path in the caller's URL (a REST API stage, a named HTTP API stage, a custom domain's base
/// path). `None` when the request says no host, or the prefix is not a plain path.
pub fn own_url(request: &Request, connection: &str) -> Option<String> {
    let (origin, full) = caller_target(request)?;
    let prefix = full.strip_suffix(request_path(request))?;
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~/%$".contains(&b);
    prefix
        .bytes()
        .all(plain)
        .then(|| format!("{origin}{prefix}/idp/{connection}"))
}

/// The URL the caller sent `request` to, without its query: `https://{host}{path}` with the REST
/// API stage, named HTTP API stage or custom domain base path in the path, as the caller wrote
/// it. What a DPoP proof's `htu` must name.
pub fn caller_url(request: &Request) -> Option<String> {
    let (origin, full) = caller_target(request)?;
    Some(format!("{origin}{full}"))
}

/// `scheme://authority` and the whole path the caller used (before any stage is taken off).
fn caller_target(request: &Request) -> Option<(String, &str)> {
    let uri = request.uri();
    let authority = uri.authority()?;
    let scheme = uri.scheme_str().unwrap_or("https");
    let raw = request.raw_http_path();
    let full = match request.request_context_ref() {
        // A REST API's `path` has neither stage nor base path; the context's has both.
        Some(RequestContext::ApiGatewayV1(context)) => context.path.as_deref().unwrap_or(raw),
        _ if raw.is_empty() => uri.path(),
        _ => raw,
    };
    Some((format!("{scheme}://{authority}"), full))
}

/// `/prod/identities` → `/identities` for the stage `prod`; any other path as it is.
fn strip_stage<'a>(path: &'a str, stage: &str) -> &'a str {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path)
}

/// The route for `path`, or `None` when no route matches.
pub fn route(path: &str) -> Option<Route<'_>> {
    if path == "/identities" || path == "/identities/" {
        return Some(Route::Identities);
    }
    let rest = path.strip_prefix("/idp/")?;
    let (connection, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    is_connection_name(connection).then_some(Route::Idp { connection, path })
}

/// Auth0 connection names: letters, digits, `-` and `_`, at most 128 characters. Anything else
/// (`..`, percent-escapes, dots) cannot name a connection and is not routed.
pub fn is_connection_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The methods a route accepts (a CORS preflight, `OPTIONS`, is accepted everywhere); `None`
/// means the connection's rules decide. The router refuses other methods with a `405` whose
/// `Allow` header is [`allow_header`] of the same list.
pub fn allowed_methods(route: &Route<'_>) -> Option<&'static [Method]> {
    match route {
        Route::Identities => Some(&[Method::GET, Method::HEAD, Method::OPTIONS]),
        Route::Idp { .. } => None,
    }
}

/// The method as the function reads it: ASCII upper case. HTTP method names are case-sensitive
/// (RFC 9110 §9.1), but many servers read `get` as `GET`, and the allow rules name methods in
/// upper case only: a `get` checked as an unknown method and forwarded as it is would slip past a
/// rule that guards `GET`. Canonicalised once, when the event becomes a request, so that the
/// rules, the upstream call and the audit line all see the one method that is forwarded.
pub fn canonical_method(method: &Method) -> Method {
    let name = method.as_str();
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return method.clone();
    }
    // An upper-cased token is still a token: this cannot fail for a method that parsed.
    Method::from_bytes(name.to_ascii_uppercase().as_bytes()).unwrap_or_else(|_| method.clone())
}

/// The `Allow` header's value for `methods`: `GET, HEAD, OPTIONS`.
pub fn allow_header(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_identities_and_idp_paths() {
        assert_eq!(route("/identities"), Some(Route::Identities));
        assert_eq!(
            route("/idp/github/user/repos"),
            Some(Route::Idp {
                connection: "github",
                path: "/user/repos"
            })
        );
        assert_eq!(
            route("/idp/github"),
            Some(Route::Idp {
                connection: "github",
                path: ""
            })
        );
        for path in [
            "/",
            "",
            "/identities/x",
            "/idp/",
            "/idp//user",
            "/IDENTITIES",
            "/idpx/github",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }

    #[test]
    fn route_names_are_the_dimension_values() {
        let idp = Route::Idp {
            connection: "github",
            path: "",
        };
        for (route, method, name) in [
            (Some(&Route::Identities), Method::GET, "identities"),
            (Some(&idp), Method::POST, "idp"),
            (Some(&idp), Method::OPTIONS, "preflight"),
            (None, Method::OPTIONS, "preflight"),
            (None, Method::GET, "none"),
        ] {
            assert_eq!(RouteName::of(route, &method).as_str(), name);
        }
    }

    #[test]
    fn allow_lists_exactly_the_methods_the_router_accepts() {
        let methods = allowed_methods(&Route::Identities).expect("fixed methods");
        assert_eq!(allow_header(methods), "GET, HEAD, OPTIONS");
        assert!(methods.contains(&Method::HEAD));
        assert!(!methods.contains(&Method::POST));
    }

    #[test]
    fn methods_are_read_in_upper_case_whatever_their_spelling() {
        for (sent, read) in [
            ("get", Method::GET),
            ("Get", Method::GET),
            ("gET", Method::GET),
            ("head", Method::HEAD),
            ("patch", Method::PATCH),
            ("POST", Method::POST),
        ] {
            let method = Method::from_bytes(sent.as_bytes()).expect("a token");
            assert_eq!(canonical_method(&method), read, "{sent}");
        }
        let odd = Method::from_bytes(b"propFind").expect("a token");
        assert_eq!(canonical_method(&odd).as_str(), "PROPFIND");
    }

    #[test]
    fn strips_only_a_whole_leading_stage_segment() {
        assert_eq!(strip_stage("/prod/identities", "prod"), "/identities");
        assert_eq!(
            strip_stage("/production/identities", "prod"),
            "/production/identities"
        );
        assert_eq!(strip_stage("/identities", "prod"), "/identities");
        assert_eq!(strip_stage("/prod", "prod"), "/prod");
    }
}
