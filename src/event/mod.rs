//! The Lambda side of an invocation: the API Gateway or Function URL event checked and turned
//! into a request, and the handler's response turned into the Lambda response, byte for byte and
//! within Lambda's response limit.
//!
//! lambda_http's own adapter does both jobs, but
//! - it panics on some hostile event fields before any handler runs (a body flagged base64 that
//!   is not, a `Host` or `X-Forwarded-Proto` that makes no URL, a control character in
//!   `rawQueryString`, a URI over 64 KiB): the caller then gets API Gateway's opaque 502;
//! - it decodes the handler's body again whenever the `Content-Type` looks textual or is
//!   missing, whatever body kind the handler chose: `caf\xe9` labelled ISO-8859-1 comes back as
//!   UTF-8, binary without a `Content-Type` gets `U+FFFD` for every byte over `0x7F`.
//!
//! - its payload v2 writer keeps one value per header name (a second `Vary`, `Link` or
//!   challenge is lost), and a header value that is not UTF-8 fails the whole response, which
//!   then reaches the caller as a bare 500.
//!
//! So the function runs on lambda_runtime with this module as its adapter: [`into_request`]
//! checks the fields that lambda_http's conversion would choke on, [`fit`] drops (and counts)
//! the header values a Lambda response cannot carry, chooses the body's encoding and measures
//! the serialized response, and [`serialize`] writes it as Lambda expects: every value of a
//! repeated field in `multiValueHeaders` (payload v1), or joined with `, ` (payload v2, RFC 9110
//! §5.3) with `Set-Cookie` apart in `cookies`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, Method, header};
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Request, RequestExt};
use url::Url;

use crate::routes;

mod response;

pub use response::{MAX_RESPONSE_BYTES, TooLarge, body_len, fit, prelude, serialize};

/// `http::Uri` refuses longer URIs; lambda_http would panic on them.
const MAX_URI_BYTES: usize = u16::MAX as usize - 1;

/// Which Lambda response shape the event's service expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A REST API (payload v1): headers in `multiValueHeaders`.
    RestApi,
    /// An HTTP API (payload v2) or a Function URL: headers in `headers`, cookies apart.
    HttpApi,
}

impl Origin {
    /// The shape for a request converted from an event.
    pub fn of(request: &Request) -> Self {
        match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(_)) => Self::RestApi,
            _ => Self::HttpApi,
        }
    }
}

/// Why an event cannot be a request (400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// `isBase64Encoded` with a body that is not base64.
    #[error("the request body is not valid base64")]
    Body,
    /// The `Host` (or the context's domain name) is not a host name.
    #[error("the request's host is not a valid host name")]
    Host,
    /// `X-Forwarded-Proto` is neither `http` nor `https`.
    #[error("the request's X-Forwarded-Proto is neither http nor https")]
    Scheme,
    /// The path and query make no valid URI (a control character, over 64 KiB).
    #[error("the request's path or query is not a valid URI")]
    Uri,
    /// Not an API Gateway or Function URL event, or one lambda_http could not convert.
    #[error("the event is not a request this function can read")]
    Unreadable,
}

/// An event refused before it became a request: its shape and headers, to answer it all the
/// same.
#[derive(Debug)]
pub struct Refused {
    /// The response shape.
    pub origin: Origin,
    /// Whether the method asked for is `HEAD` (answered without a body).
    pub head: bool,
    /// The event's headers (for CORS).
    pub headers: HeaderMap,
    /// Why.
    pub error: EventError,
}

/// The event as a request, once every field lambda_http's conversion relies on is checked.
pub fn into_request(mut event: LambdaRequest) -> Result<Request, Refused> {
    canonicalise_method(&mut event);
    let (origin, checked, headers) = match &event {
        LambdaRequest::ApiGatewayV1(e) => (Origin::RestApi, check_v1(e), v1_headers(e)),
        LambdaRequest::ApiGatewayV2(e) => (Origin::HttpApi, check_v2(e), e.headers.clone()),
        _ => (
            Origin::HttpApi,
            Err(EventError::Unreadable),
            HeaderMap::new(),
        ),
    };
    let head = match &event {
        LambdaRequest::ApiGatewayV1(e) => e.http_method == Method::HEAD,
        LambdaRequest::ApiGatewayV2(e) => e.request_context.http.method == Method::HEAD,
        _ => false,
    };
    let refuse = |error| Refused {
        origin,
        head,
        headers: headers.clone(),
        error,
    };
    checked.map_err(refuse)?;
    // Every field it could panic on is checked above; a panic all the same (a future version's
    // new check) is still answered, not left to end the invocation.
    let mut request = catch_unwind(AssertUnwindSafe(|| Request::from(event))).map_err(|_| {
        tracing::error!("lambda_http could not convert a checked event");
        refuse(EventError::Unreadable)
    })?;
    if origin == Origin::RestApi {
        // lambda_http lets `headers` (one value each) replace `multiValueHeaders`; two
        // `Authorization` values must stay two, to be refused as an HTTP API's are.
        let authorization: Vec<_> = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .cloned()
            .collect();
        if authorization.len() > 1 {
            request.headers_mut().remove(header::AUTHORIZATION);
            for value in authorization {
                request.headers_mut().append(header::AUTHORIZATION, value);
            }
        }
    }
    Ok(request)
}

/// The event's method in upper case ([`routes::canonical_method`]), in every field lambda_http
/// reads it from.
fn canonicalise_method(event: &mut LambdaRequest) {
    match event {
        LambdaRequest::ApiGatewayV1(e) => {
            e.http_method = routes::canonical_method(&e.http_method);
            e.request_context.http_method =
                routes::canonical_method(&e.request_context.http_method);
        }
        LambdaRequest::ApiGatewayV2(e) => {
            e.request_context.http.method =
                routes::canonical_method(&e.request_context.http.method);
        }
        _ => {}
    }
}

/// A REST API event's headers, every value of `multiValueHeaders` kept.
fn v1_headers(event: &ApiGatewayProxyRequest) -> HeaderMap {
    let mut headers = event.multi_value_headers.clone();
    for (name, value) in &event.headers {
        if !headers.contains_key(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

fn check_v1(event: &ApiGatewayProxyRequest) -> Result<(), EventError> {
    check_body(event.body.as_deref(), event.is_base64_encoded)?;
    let query = if event.multi_value_query_string_parameters.is_empty() {
        event.query_string_parameters.to_query_string()
    } else {
        event.multi_value_query_string_parameters.to_query_string()
    };
    let headers = v1_headers(event);
    let host = host(&headers, event.request_context.domain_name.as_deref());
    let path = with_stage(
        event.request_context.stage.as_deref(),
        event.path.as_deref().unwrap_or_default(),
    );
    check_uri(&headers, host, &path, &query)
}

fn check_v2(event: &ApiGatewayV2httpRequest) -> Result<(), EventError> {
    check_body(event.body.as_deref(), event.is_base64_encoded)?;
    let host = host(&event.headers, event.request_context.domain_name.as_deref());
    let path = with_stage(
        event.request_context.stage.as_deref(),
        event.raw_path.as_deref().unwrap_or_default(),
    );
    check_uri(
        &event.headers,
        host,
        &path,
        event.raw_query_string.as_deref().unwrap_or_default(),
    )
}

fn check_body(body: Option<&str>, base64: bool) -> Result<(), EventError> {
    match body {
        Some(body) if base64 => STANDARD
            .decode(body)
            .map(drop)
            .map_err(|_| EventError::Body),
        _ => Ok(()),
    }
}

/// The host lambda_http builds the URI with: the `Host` header, else the context's domain.
fn host<'a>(headers: &'a HeaderMap, domain: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(domain)
}

/// The path lambda_http puts in the URI: the stage in front, unless it is `$default` or there.
fn with_stage(stage: Option<&str>, path: &str) -> String {
    match stage {
        Some(stage) if stage != "$default" && !path.starts_with(&format!("/{stage}/")) => {
            format!("/{stage}{path}")
        }
        _ => path.to_owned(),
    }
}

/// The URI lambda_http would build must parse, as a URL and as an `http::Uri`.
fn check_uri(
    headers: &HeaderMap,
    host: Option<&str>,
    path: &str,
    query: &str,
) -> Result<(), EventError> {
    let url = match host {
        None => Url::parse(&format!("http://localhost{path}"))
            .map(|u| u.path().to_owned())
            .map_err(|_| EventError::Uri)?,
        Some(host) => {
            let scheme = match headers.get("x-forwarded-proto") {
                None => "https",
                Some(value) => match value.to_str().map(str::to_ascii_lowercase).as_deref() {
                    Ok("http") => "http",
                    Ok("https") => "https",
                    _ => return Err(EventError::Scheme),
                },
            };
            if !is_authority(host) {
                return Err(EventError::Host);
            }
            Url::parse(&format!("{scheme}://{host}{path}"))
                .map_err(|_| EventError::Uri)?
                .to_string()
        }
    };
    let uri = if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    };
    if uri.len() > MAX_URI_BYTES || http::Uri::try_from(uri.as_str()).is_err() {
        return Err(EventError::Uri);
    }
    Ok(())
}

/// A host name or IP literal with an optional port, and nothing else: it ends up in the URLs of
/// rewritten `Link` headers.
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        && Url::parse(&format!("https://{host}/"))
            .is_ok_and(|u| u.host_str().is_some() && u.path() == "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn stages_go_in_front_of_the_path_once() {
        assert_eq!(with_stage(Some("prod"), "/identities"), "/prod/identities");
        assert_eq!(
            with_stage(Some("prod"), "/prod/identities"),
            "/prod/identities"
        );
        assert_eq!(with_stage(Some("$default"), "/identities"), "/identities");
        assert_eq!(with_stage(None, "/x"), "/x");
    }

    #[test]
    fn authorities_are_host_names_or_ip_literals_with_a_port() {
        for good in [
            "api.example.com",
            "127.0.0.1:3000",
            "[::1]:8080",
            "a-b.example",
        ] {
            assert!(is_authority(good), "{good}");
        }
        for bad in [
            "",
            "exa mple.com",
            "a/b",
            "a@b",
            "a?b",
            "a#b",
            "\u{e9}.com",
            "a:b:c:d",
        ] {
            assert!(!is_authority(bad), "{bad}");
        }
    }
}
