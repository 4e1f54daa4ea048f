//! CORS for REST APIs and Function URLs, where API Gateway does not answer preflights itself.
//! An HTTP API with CORS configured answers them before the function runs; the headers added
//! here then agree with it.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

use crate::config::AllowedOrigins;
use crate::vary;

/// Request headers a browser may send cross-origin (template.yaml's HTTP API lists the same).
pub const ALLOW_HEADERS: &str =
    "authorization, dpop, content-type, if-none-match, if-modified-since";
/// Methods a browser may use cross-origin; the connection's allow rules still decide per route.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// Response headers a page may read: validators, pagination, the IdP's rate limit figures and
/// its own challenge (a claims challenge to act on).
pub const EXPOSE_HEADERS: &str = "etag, last-modified, link, retry-after, x-ratelimit-limit, \
     x-ratelimit-remaining, x-ratelimit-reset, x-idp-www-authenticate";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The CORS policy of `ALLOWED_ORIGINS`.
pub struct Cors {
    allowed: AllowedOrigins,
}

impl Cors {
    /// A policy for `allowed`.
    pub fn new(allowed: AllowedOrigins) -> Self {
        Self { allowed }
    }

    /// The `Access-Control-Allow-Origin` value for a request with these headers, if allowed.
    fn allow_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(header::ORIGIN)?;
        match &self.allowed {
            AllowedOrigins::Any => Some(HeaderValue::from_static("*")),
            allowed if origin.to_str().is_ok_and(|o| allowed.allows(o)) => Some(origin.clone()),
            _ => None,
        }
    }

    /// The answer to an `OPTIONS` request: 204, with CORS grants only for an allowed origin (a
    /// browser reads their absence as a refusal).
    pub fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = self.allow_origin(request) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            );
        }
        response
    }

    /// Adds the CORS grant for an allowed origin to an ordinary response.
    pub fn decorate(&self, request: &HeaderMap, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        vary::add(headers, &["origin"]);
        if let Some(origin) = self.allow_origin(request) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_str(origin).expect("origin"),
        );
        headers
    }

    #[test]
    fn preflight_grants_only_listed_origins() {
        let cors = Cors::new(AllowedOrigins::List(vec!["https://app.example.com".into()]));
        let allowed = cors.preflight(&request("https://app.example.com"));
        assert_eq!(allowed.status(), 204);
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert!(
            allowed.headers()["access-control-allow-headers"]
                .to_str()
                .expect("ascii")
                .contains("authorization")
        );
        let refused = cors.preflight(&request("https://evil.example.com"));
        assert!(
            !refused
                .headers()
                .contains_key("access-control-allow-origin")
        );
    }

    #[test]
    fn no_origins_configured_grants_nothing() {
        let cors = Cors::new(AllowedOrigins::None);
        let mut response = Response::new(Body::Empty);
        cors.decorate(&request("https://app.example.com"), &mut response);
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin")
        );
        assert_eq!(response.headers()["vary"], "origin");
    }
}
