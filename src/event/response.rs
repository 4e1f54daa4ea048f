//! The handler's response as the Lambda response: header values it cannot carry dropped and
//! counted, the body's encoding chosen, the size measured against Lambda's limit, and the JSON
//! text written, byte for byte.

use std::io::Write;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use lambda_http::{Body, Response};
use serde_json::value::RawValue;

use super::Origin;
use crate::telemetry;

/// Lambda's limit on a synchronous invocation's response payload: 6 MB, as the Lambda
/// response's JSON text (the body after JSON escaping or base64, with status and headers).
/// Lambda's own figure is 6,291,556 bytes; this stays 100 bytes under it.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Lambda's answer would be over [`MAX_RESPONSE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the answer would be {size} bytes as a Lambda response, over Lambda's limit")]
pub struct TooLarge {
    /// The smallest serialized size found.
    pub size: usize,
}

/// The length of `body` as the caller receives it.
pub fn body_len(body: &Body) -> usize {
    match body {
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    }
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
    let (skeleton_body, encoded_len) = match response.body() {
        Body::Text(text) => {
            let mut counter = Counter(0);
            // The escaped string, quotes included; the skeleton's `""` counts the quotes.
            let _ = serde_json::to_writer(&mut counter, text.as_str());
            (Body::Text(String::new()), counter.0 - 2)
        }
        Body::Binary(bytes) => (Body::Binary(Vec::new()), base64_len(bytes.len())),
        _ => (Body::Empty, 0),
    };
    let mut skeleton = Response::new(skeleton_body);
    *skeleton.status_mut() = response.status();
    *skeleton.headers_mut() = response.headers().clone();
    let mut counter = Counter(0);
    write(origin, skeleton, &mut counter);
    counter.0 + encoded_len
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
        Body::Binary(bytes) => base64_len(bytes.len()),
        _ => 0,
    };
    SKELETON + headers + body
}

/// The length of `len` bytes in base64 (padded), as a binary body is written.
fn base64_len(len: usize) -> usize {
    len.div_ceil(3) * 4
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
            let (headers, cookies) = apart(writable(parts.headers).0);
            let mut lambda = ApiGatewayV2httpResponse::default();
            lambda.cookies = cookies;
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

/// The metadata prelude of `response` as a streamed Lambda response (`statusCode`, `headers`,
/// `cookies`), the same for a Function URL and a REST API streaming its answers: what goes
/// before the eight NUL bytes and the body.
pub fn prelude(response: &Response<Body>) -> Vec<u8> {
    let (headers, cookies) = apart(writable(response.headers().clone()).0);
    let headers: serde_json::Map<String, serde_json::Value> = one_line_each(&headers)
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value.into())
        })
        .collect();
    let prelude = serde_json::json!({
        "statusCode": response.status().as_u16(),
        "headers": headers,
        "cookies": cookies,
    });
    serde_json::to_vec(&prelude).unwrap_or_default()
}

/// `headers` without `Set-Cookie`, and its values: a Lambda response takes cookies apart from
/// the headers, one each, as they cannot be joined (RFC 6265 §3).
fn apart(mut headers: HeaderMap) -> (HeaderMap, Vec<String>) {
    let cookies = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    headers.remove(header::SET_COOKIE);
    (headers, cookies)
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
    fn the_prelude_is_status_one_line_headers_and_cookies() {
        let mut answer = response(Body::Empty, "application/octet-stream");
        for (name, value) in [
            ("vary", "accept"),
            ("vary", "authorization"),
            ("set-cookie", "a=1"),
        ] {
            answer.headers_mut().append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let prelude: serde_json::Value = serde_json::from_slice(&prelude(&answer)).expect("JSON");
        assert_eq!(
            prelude,
            serde_json::json!({
                "statusCode": 200,
                "headers": {"content-type": "application/octet-stream", "vary": "accept, authorization"},
                "cookies": ["a=1"],
            })
        );
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
}
