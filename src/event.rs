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

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::value::RawValue;
use url::Url;

use crate::telemetry;

/// Lambda's limit on a synchronous invocation's response payload: 6 MB, as the Lambda
/// response's JSON text (the body after JSON escaping or base64, with status and headers).
/// Lambda's own figure is 6,291,556 bytes; this stays 100 bytes under it.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

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
pub fn into_request(event: LambdaRequest) -> Result<Request, Refused> {
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

/// Lambda's answer would be over [`MAX_RESPONSE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the answer would be {size} bytes as a Lambda response, over Lambda's limit")]
pub struct TooLarge {
    /// The smallest serialized size found.
    pub size: usize,
}

/// `response` ready for Lambda: the header values it cannot carry dropped, each logged by name
/// and counted (the `HeaderValuesDropped` metric), never the answer; its size as the Lambda
/// response measured; and a text body that would only fit base64-encoded (JSON escaping can make
/// text six times larger) switched to binary. Byte for byte the same for the caller either way.
pub fn fit(origin: Origin, response: Response<Body>) -> Result<Response<Body>, TooLarge> {
    let (mut parts, body) = response.into_parts();
    let (headers, dropped) = writable(std::mem::take(&mut parts.headers));
    parts.headers = headers;
    for name in dropped {
        tracing::warn!(
            header = name.as_str(),
            "a response header value is not UTF-8, which a Lambda response cannot carry: dropped"
        );
        telemetry::header_value_dropped();
    }
    let response = Response::from_parts(parts, body);
    // Most answers are far under the limit even as escaped as JSON can make them: measured
    // exactly only when that bound does not settle it.
    if size_bound(&response) <= MAX_RESPONSE_BYTES {
        return Ok(response);
    }
    let size = serialized_size(origin, &response);
    if size <= MAX_RESPONSE_BYTES {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Body::Text(text) = body else {
        return Err(TooLarge { size });
    };
    let binary = Response::from_parts(parts, Body::Binary(text.into_bytes()));
    let base64_size = serialized_size(origin, &binary);
    if base64_size <= MAX_RESPONSE_BYTES {
        Ok(binary)
    } else {
        Err(TooLarge {
            size: size.min(base64_size),
        })
    }
}

/// The Lambda response's JSON text for `response`, as the Runtime API receives it.
pub fn serialize(origin: Origin, response: Response<Body>) -> Box<RawValue> {
    let mut text = Vec::new();
    write(origin, response, &mut text);
    let text = String::from_utf8(text).unwrap_or_default();
    RawValue::from_string(text).unwrap_or_else(|_| {
        // serde_json's own output is JSON; this is never reached.
        RawValue::from_string("{\"statusCode\":500}".to_owned()).unwrap_or_default()
    })
}

/// The exact length of [`serialize`]'s output, without copying the body: the response is
/// serialized with an empty body, and the body's encoded length added.
fn serialized_size(origin: Origin, response: &Response<Body>) -> usize {
    let (skeleton_body, body_len) = match response.body() {
        Body::Text(text) => {
            let mut counter = Counter(0);
            // The escaped string, quotes included; the skeleton's `""` counts the quotes.
            let _ = serde_json::to_writer(&mut counter, text.as_str());
            (Body::Text(String::new()), counter.0 - 2)
        }
        Body::Binary(bytes) => (Body::Binary(Vec::new()), bytes.len().div_ceil(3) * 4),
        _ => (Body::Empty, 0),
    };
    let mut skeleton = Response::new(skeleton_body);
    *skeleton.status_mut() = response.status();
    *skeleton.headers_mut() = response.headers().clone();
    let mut counter = Counter(0);
    write(origin, skeleton, &mut counter);
    counter.0 + body_len
}

/// No less than [`serialized_size`], for either origin, counted without writing anything: JSON
/// escapes a byte into at most six (`\u001f`), base64 makes four of three, and each header and
/// the response's own members add a bounded amount of punctuation and names.
fn size_bound(response: &Response<Body>) -> usize {
    /// The members of an empty Lambda response (`statusCode`, `headers`, `multiValueHeaders`,
    /// `cookies`, `body`, `isBase64Encoded`), with room to spare.
    const SKELETON: usize = 256;
    /// Quotes, colon, brackets, commas and a joining `, ` around one header value.
    const PER_VALUE: usize = 16;
    let headers: usize = response
        .headers()
        .iter()
        .map(|(name, value)| 6 * (name.as_str().len() + value.len()) + PER_VALUE)
        .sum();
    let body = match response.body() {
        Body::Text(text) => 6 * text.len(),
        Body::Binary(bytes) => bytes.len().div_ceil(3) * 4,
        _ => 0,
    };
    SKELETON + headers + body
}

/// Writes the Lambda response for `response` (what lambda_http's adapter would, minus its
/// second decoding of the body).
fn write(origin: Origin, response: Response<Body>, out: &mut impl Write) {
    let (parts, body) = response.into_parts();
    let (is_base64_encoded, body) = match body {
        Body::Empty => (false, None),
        Body::Text(text) => (false, Some(Body::Text(text))),
        Body::Binary(bytes) => (true, Some(Body::Binary(bytes))),
        _ => (false, None),
    };
    let status_code = i64::from(parts.status.as_u16());
    let written = match origin {
        Origin::RestApi => {
            let mut lambda = ApiGatewayProxyResponse::default();
            lambda.status_code = status_code;
            // Only `multiValueHeaders`: API Gateway merges both fields, which would repeat them.
            lambda.multi_value_headers = writable(parts.headers).0;
            lambda.body = body;
            lambda.is_base64_encoded = is_base64_encoded;
            serde_json::to_writer(out, &lambda)
        }
        Origin::HttpApi => {
            let mut headers = writable(parts.headers).0;
            let mut lambda = ApiGatewayV2httpResponse::default();
            // An HTTP API takes cookies apart from the headers: one `Set-Cookie` each, as they
            // cannot be joined (RFC 6265 §3).
            lambda.cookies = headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            headers.remove(header::SET_COOKIE);
            lambda.status_code = status_code;
            lambda.headers = one_line_each(&headers);
            lambda.body = body;
            lambda.is_base64_encoded = is_base64_encoded;
            serde_json::to_writer(out, &lambda)
        }
    };
    if let Err(error) = written {
        tracing::error!(%error, "the Lambda response could not be written");
    }
}

/// `headers` without the values a Lambda response cannot carry, and the names of those dropped:
/// its headers are JSON strings, so a value that is not UTF-8 (obs-text such as a Latin-1
/// `ETag`, which HTTP allows) has no place in it.
fn writable(headers: HeaderMap) -> (HeaderMap, Vec<HeaderName>) {
    let is_utf8 = |value: &HeaderValue| std::str::from_utf8(value.as_bytes()).is_ok();
    if headers.values().all(is_utf8) {
        return (headers, Vec::new());
    }
    let mut kept = HeaderMap::with_capacity(headers.len());
    let mut dropped = Vec::new();
    for (name, value) in &headers {
        if is_utf8(value) {
            kept.append(name.clone(), value.clone());
        } else {
            dropped.push(name.clone());
        }
    }
    (kept, dropped)
}

/// Each field as one line, its values joined with `, ` in their order (RFC 9110 §5.3): payload
/// v2's `headers` holds one string per name.
fn one_line_each(headers: &HeaderMap) -> HeaderMap {
    let mut lines = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut line = Vec::new();
        for (index, value) in headers.get_all(name).iter().enumerate() {
            if index > 0 {
                line.extend_from_slice(b", ");
            }
            line.extend_from_slice(value.as_bytes());
        }
        // Valid values joined by `, ` make a valid value.
        if let Ok(value) = HeaderValue::from_bytes(&line) {
            lines.insert(name.clone(), value);
        }
    }
    lines
}

/// Counts the bytes written to it.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn response(body: Body, content_type: &str) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.parse().expect("value"));
        response
    }

    #[test]
    fn measures_exactly_what_it_writes() {
        for body in [
            Body::Empty,
            Body::Text("plain \"quoted\" \u{1} text é".to_owned()),
            Body::Binary((0..=255).collect()),
            Body::Binary(vec![1, 2]),
        ] {
            for origin in [Origin::RestApi, Origin::HttpApi] {
                let response = response(body.clone(), "text/plain");
                let size = serialized_size(origin, &response);
                assert_eq!(serialize(origin, response).get().len(), size, "{origin:?}");
            }
        }
    }

    #[test]
    fn the_quick_bound_is_never_under_the_exact_size() {
        let worst = "\u{1f}\"\\".repeat(50);
        for body in [
            Body::Empty,
            Body::Text(String::new()),
            Body::Text(worst.clone()),
            Body::Binary(vec![0; 1]),
            Body::Binary((0..=255).collect()),
        ] {
            let mut answer = response(body, "text/plain");
            for (name, value) in [
                ("set-cookie", "a=\"1\""),
                ("set-cookie", "b=2"),
                ("x-a", "\""),
                ("x-a", "\\"),
                ("x", ""),
            ] {
                answer.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            for origin in [Origin::RestApi, Origin::HttpApi] {
                let exact = serialized_size(origin, &answer);
                assert!(size_bound(&answer) >= exact, "{origin:?}: {exact}");
            }
        }
        let bare = Response::new(Body::Empty);
        for origin in [Origin::RestApi, Origin::HttpApi] {
            assert!(size_bound(&bare) >= serialized_size(origin, &bare));
        }
    }

    #[test]
    fn binary_bodies_are_base64_and_text_stays_text() {
        let raw = serialize(
            Origin::HttpApi,
            response(Body::Binary(vec![0xe9, 0]), "x/y"),
        );
        let value: serde_json::Value = serde_json::from_str(raw.get()).expect("JSON");
        assert_eq!(value["isBase64Encoded"], true);
        assert_eq!(value["body"], "6QA=");
        let raw = serialize(
            Origin::RestApi,
            response(Body::Text("café".into()), "text/plain"),
        );
        let value: serde_json::Value = serde_json::from_str(raw.get()).expect("JSON");
        assert_eq!(value["isBase64Encoded"], false);
        assert_eq!(value["body"], "café");
        assert_eq!(value["multiValueHeaders"]["content-type"][0], "text/plain");
    }

    #[test]
    fn text_that_only_fits_as_base64_is_switched_and_larger_is_refused() {
        // 3 MiB of U+0001: 18 MiB escaped, 4 MiB base64.
        let controls = "\u{1}".repeat(3 << 20);
        let fitted = fit(
            Origin::HttpApi,
            response(Body::Text(controls), "text/plain"),
        )
        .expect("fits as base64");
        assert!(matches!(fitted.body(), Body::Binary(b) if b.len() == 3 << 20));
        // 4.6 MiB of binary: 6.1 MiB base64.
        let big = response(
            Body::Binary(vec![0xff; 4_823_450]),
            "application/octet-stream",
        );
        let error = fit(Origin::HttpApi, big).expect_err("too large");
        assert!(error.size > MAX_RESPONSE_BYTES);
        let small = response(Body::Text("{}".into()), "application/json");
        assert!(matches!(
            fit(Origin::RestApi, small).expect("fits").body(),
            Body::Text(_)
        ));
    }

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
