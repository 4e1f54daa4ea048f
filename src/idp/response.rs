//! The IdP's answer shaped for the caller (docs/proxy-behaviour.md, "What the proxy passes,
//! rewrites and refuses"):
//! - passed: status, body byte for byte, and a fixed set of headers (`Content-Type`,
//!   `Content-Encoding`, `ETag`, `Last-Modified`, `x-ratelimit-*`, …); a `304` or a `HEAD`
//!   answer has no body (a `HEAD`'s `Content-Length` is passed too: it says what the `GET`'s
//!   body would be);
//! - rewritten: `Link` URLs into the connection's API base become the function's own URL for the
//!   same route (others are dropped), `Cache-Control: public` becomes `private`, and the IdP's
//!   `WWW-Authenticate` is renamed `X-IdP-WWW-Authenticate`, so that it never reads as this
//!   API's own challenge;
//! - refused: an answer that carries the IdP access token anywhere (an endpoint that echoes its
//!   request), or whose compression hides what it carries.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Response};
use url::Url;

use super::guard::{self, Guard};
use crate::deadline::Deadline;
use crate::secret::IdpAccessToken;
use crate::streaming::StreamedBody;

/// The header the IdP's own `WWW-Authenticate` reaches the caller in.
pub const IDP_WWW_AUTHENTICATE: HeaderName = HeaderName::from_static("x-idp-www-authenticate");

/// Response headers of the IdP that reach the caller as they are, besides the `x-ratelimit-*`
/// family. Never `Set-Cookie`, `Location` (signed URLs carry credentials) or anything else.
const PASSED_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_LANGUAGE,
    header::CONTENT_ENCODING,
    header::ETAG,
    header::EXPIRES,
    header::LAST_MODIFIED,
    header::RETRY_AFTER,
    header::VARY,
];

/// Why an IdP answer is not passed on (502 `upstream_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeAnswer {
    /// The IdP access token appears in the body or a header.
    #[error("the IdP's answer carries the IdP access token")]
    CarriesToken,
    /// A `Content-Encoding` the function cannot inflate to check it.
    #[error("the IdP's answer is in an encoding the function cannot check ({0})")]
    Encoding(String),
    /// The compressed body does not inflate, or inflates past the bound.
    #[error("the IdP's compressed answer cannot be checked")]
    Uninflatable,
}

/// Where the caller's `Link` URLs point: the connection's API base, and the function's own URL
/// for the same connection.
pub struct Links<'a> {
    /// The URL the IdP was called at, to resolve relative links.
    pub upstream: &'a Url,
    /// The connection's API base.
    pub api_base: &'a Url,
    /// `https://{host}{prefix}/idp/{connection}`, or `None` when the request's own URL is not
    /// known (every link is then dropped).
    pub own: Option<&'a str>,
}

/// The IdP's answer, before it becomes the caller's response.
pub struct IdpResponse {
    /// The IdP's status.
    pub status: StatusCode,
    /// Its headers, all of them: [`IdpResponse::shape`] picks.
    pub headers: HeaderMap,
    /// Its body, read whole; empty while it is still [`pending`](IdpResponse::pending).
    pub body: Vec<u8>,
    /// A successful answer's body left unread, to be streamed to the caller
    /// (`RESPONSE_MODE=streaming`).
    pub pending: Option<Pending>,
}

/// An answer whose body is still at the IdP, to be read before `deadline`.
pub struct Pending {
    /// The answer, its body unread.
    pub response: reqwest::Response,
    /// The invocation's deadline, which the body's reading keeps too.
    pub deadline: Deadline,
}

impl IdpResponse {
    /// A `401` whose challenge is about this request, not the token: Microsoft Graph's claims
    /// challenge (`error="insufficient_claims"`) asks for a token with more claims.
    pub fn is_claims_challenge(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
            && self
                .headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("insufficient_claims")))
    }

    /// The response for the caller of `method`, or the reason it cannot have it.
    pub fn shape(
        self,
        method: &Method,
        links: &Links<'_>,
        token: &IdpAccessToken,
    ) -> Result<Response<Body>, UnsafeAnswer> {
        let mut headers = shape_headers(&self.headers, links);
        // The length of the body its `GET` would get: a `HEAD` answer's own header.
        if let (&Method::HEAD, Some(length)) = (method, self.headers.get(header::CONTENT_LENGTH)) {
            headers.insert(header::CONTENT_LENGTH, length.clone());
        }
        // The token, and an OAuth 1.0a token's secret: neither may reach the caller.
        let secrets: Vec<&[u8]> = std::iter::once(token.expose())
            .chain(token.secret().map(|s| s.expose()))
            .map(str::as_bytes)
            .collect();
        if secrets
            .iter()
            .any(|secret| headers.values().any(|v| contains(v.as_bytes(), secret)))
        {
            return Err(UnsafeAnswer::CarriesToken);
        }
        let bodiless = *method == Method::HEAD
            || matches!(
                self.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            );
        // Every coding line: the caller's client applies them all.
        let codings = headers.get_all(header::CONTENT_ENCODING);
        let encoded = headers.contains_key(header::CONTENT_ENCODING);
        let mut streamed = None;
        let body = match self.pending {
            _ if bodiless => Body::Empty,
            Some(pending) => {
                let guard = Guard::for_codings(token, codings, guard::MAX_INFLATED_STREAMED)?;
                let stream = guard::guarded(pending.response, guard, pending.deadline);
                streamed = Some(StreamedBody::new(stream));
                Body::Empty
            }
            None if self.body.is_empty() => Body::Empty,
            None => {
                Guard::for_codings(token, codings, guard::MAX_INFLATED_BUFFERED)?
                    .check_whole(&self.body)?;
                as_body(self.body, encoded)
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        if let Some(streamed) = streamed {
            response.extensions_mut().insert(streamed);
        }
        Ok(response)
    }
}

/// `Body::Text` only for UTF-8 that is not compressed: Lambda's text body is a JSON string, so
/// the caller gets exactly these bytes. Everything else is binary, base64 in the Lambda
/// response, whatever its `Content-Type` says.
fn as_body(bytes: Vec<u8>, encoded: bool) -> Body {
    if encoded {
        return Body::Binary(bytes);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Body::Text(text),
        Err(error) => Body::Binary(error.into_bytes()),
    }
}

/// Whether `needle` (not empty) is in `haystack`: searched, not compared at every offset, since
/// every answer's body and headers are searched for the token.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// The headers that reach the caller, rewritten where they must be.
fn shape_headers(upstream: &HeaderMap, links: &Links<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let hop_by_hop = nominated(upstream);
    for (name, value) in upstream {
        if hop_by_hop.iter().any(|n| n == name.as_str()) {
            continue;
        }
        if PASSED_HEADERS.contains(name) || name.as_str().starts_with("x-ratelimit-") {
            headers.append(name.clone(), value.clone());
        } else if name == header::WWW_AUTHENTICATE {
            headers.append(IDP_WWW_AUTHENTICATE, value.clone());
        } else if name == header::CACHE_CONTROL {
            headers.append(name.clone(), private(value));
        } else if name == header::LINK
            && let Some(value) = rewrite_links(value, links)
        {
            headers.append(name.clone(), value);
        }
    }
    headers
}

/// The fields the IdP's `Connection` header nominates (RFC 9110 §7.6.1): hop-by-hop, meant for
/// the function's own connection to the IdP and never passed on, whatever their name. Header
/// names are lower case in a `HeaderMap`, so the nominated names are compared in lower case.
fn nominated(upstream: &HeaderMap) -> Vec<String> {
    upstream
        .get_all(header::CONNECTION)
        .iter()
        // Bytes, not text: a value with one byte past ASCII still nominates its other names.
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|name| String::from_utf8_lossy(name).trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// `Cache-Control` with `public` replaced by `private`: every answer depends on the caller.
fn private(value: &HeaderValue) -> HeaderValue {
    let Ok(text) = value.to_str() else {
        return HeaderValue::from_static("private");
    };
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .map(|d| {
            if d.eq_ignore_ascii_case("public") {
                "private"
            } else {
                d
            }
        })
        .filter(|d| !d.is_empty())
        .collect();
    HeaderValue::from_str(&directives.join(", "))
        .unwrap_or_else(|_| HeaderValue::from_static("private"))
}

/// A `Link` value (RFC 8288) with every link into the API base rewritten and every other link
/// dropped; `None` when none is left.
fn rewrite_links(value: &HeaderValue, links: &Links<'_>) -> Option<HeaderValue> {
    let own = links.own?;
    let text = value.to_str().ok()?;
    let kept: Vec<String> = parse_links(text)
        .into_iter()
        .filter_map(|(target, params)| {
            let target = links.upstream.join(target).ok()?;
            let rest = under_base(&target, links.api_base)?;
            let query = target.query().map(|q| format!("?{q}")).unwrap_or_default();
            Some(format!("<{own}{rest}{query}>{params}"))
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join(", ")).ok()
}

/// The path of `url` after `base`'s, if `url` is on `base`'s origin and under its path.
fn under_base<'u>(url: &'u Url, base: &Url) -> Option<&'u str> {
    if url.origin() != base.origin() || url.username() != "" || url.password().is_some() {
        return None;
    }
    let base_path = base.path().trim_end_matches('/');
    let rest = url.path().strip_prefix(base_path)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// `<target>; params, <target>; params`: each link's target and its parameters as written
/// (`; rel="next"`). A comma inside `<…>` or a quoted string does not end a link.
fn parse_links(text: &str) -> Vec<(&str, &str)> {
    let mut links = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some(after) = rest.strip_prefix('<') else {
            return links;
        };
        let Some(close) = after.find('>') else {
            return links;
        };
        let target = &after[..close];
        let tail = &after[close + 1..];
        let mut quoted = false;
        let end = tail
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == ',' && !quoted
            })
            .map_or(tail.len(), |(i, _)| i);
        links.push((target, tail[..end].trim_end()));
        rest = &tail[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links<'a>(upstream: &'a Url, base: &'a Url, own: Option<&'a str>) -> Links<'a> {
        Links {
            upstream,
            api_base: base,
            own,
        }
    }

    #[test]
    fn fields_the_connection_header_nominates_are_dropped_with_it() {
        let base = Url::parse("https://api.github.com").expect("url");
        let upstream = Url::parse("https://api.github.com/user").expect("url");
        let mut idp = HeaderMap::new();
        idp.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, ETag"),
        );
        idp.append(
            header::CONNECTION,
            HeaderValue::from_static(" X-RateLimit-Remaining "),
        );
        idp.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        idp.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
        idp.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
        idp.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let shaped = shape_headers(&idp, &links(&upstream, &base, None));
        assert!(shaped.get(header::ETAG).is_none());
        assert!(shaped.get("x-ratelimit-remaining").is_none());
        assert!(shaped.get(header::CONNECTION).is_none());
        assert_eq!(shaped["x-ratelimit-limit"], "5000");
        assert_eq!(shaped[header::CONTENT_TYPE], "application/json");
        // A value that is not visible ASCII throughout still nominates its names.
        let mut idp = HeaderMap::new();
        idp.insert(
            header::CONNECTION,
            HeaderValue::from_bytes(b"ETag, x\x80").expect("obs-text is a valid value"),
        );
        idp.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        let shaped = shape_headers(&idp, &links(&upstream, &base, None));
        assert!(shaped.get(header::ETAG).is_none());
    }

    #[test]
    fn links_into_the_api_become_the_functions_own_and_others_go() {
        let base = Url::parse("https://graph.example.com/v1.0").expect("url");
        let upstream = Url::parse("https://graph.example.com/v1.0/me/items").expect("url");
        let own = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/idp/graph";
        let value = HeaderValue::from_static(
            "<https://graph.example.com/v1.0/me/items?page=2&ids=1,2>; rel=\"next\", \
             <https://evil.example.com/v1.0/me>; rel=\"prev\", \
             <https://graph.example.com/v2/other>; rel=\"x\", \
             <?page=9>; rel=\"last\"; title=\"a, b\"",
        );
        let rewritten =
            rewrite_links(&value, &links(&upstream, &base, Some(own))).expect("kept links");
        assert_eq!(
            rewritten,
            "<https://abc.execute-api.eu-west-1.amazonaws.com/prod/idp/graph/me/items?page=2&ids=1,2>; rel=\"next\", \
             <https://abc.execute-api.eu-west-1.amazonaws.com/prod/idp/graph/me/items?page=9>; rel=\"last\"; title=\"a, b\""
        );
        assert_eq!(rewrite_links(&value, &links(&upstream, &base, None)), None);
        let elsewhere = HeaderValue::from_static("<https://evil.example.com/x>; rel=\"next\"");
        assert_eq!(
            rewrite_links(&elsewhere, &links(&upstream, &base, Some(own))),
            None
        );
    }

    #[test]
    fn returns_only_safe_headers_and_renames_the_challenge() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("etag", "\"abc\""),
            ("x-ratelimit-remaining", "4999"),
            ("set-cookie", "session=secret"),
            (
                "location",
                "https://objects.example.com/?X-Amz-Signature=abc",
            ),
            ("www-authenticate", "Bearer error=\"insufficient_claims\""),
            ("x-oauth-scopes", "repo"),
            ("authorization", "Bearer leaked"),
            ("cache-control", "public, max-age=60"),
        ] {
            upstream.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let url = Url::parse("https://api.example.com/").expect("url");
        let safe = shape_headers(&upstream, &links(&url, &url, None));
        let names: Vec<&str> = safe.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "content-encoding",
                "etag",
                "x-ratelimit-remaining",
                "x-idp-www-authenticate",
                "cache-control"
            ]
        );
        assert_eq!(safe["cache-control"], "private, max-age=60");
    }

    #[test]
    fn an_answer_that_carries_an_oauth1_token_secret_is_refused() {
        let url = Url::parse("https://api.x.com/").expect("url");
        let token = IdpAccessToken::new("42-token")
            .with_secret(Some(crate::secret::TokenSecret::new("ts-secret")));
        let answer = |body: &str, header: &'static str| IdpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::from_iter([(
                HeaderName::from_static("etag"),
                HeaderValue::from_static(header),
            )]),
            body: body.as_bytes().to_vec(),
            pending: None,
        };
        let shape =
            |answer: IdpResponse| answer.shape(&Method::GET, &links(&url, &url, None), &token);
        assert!(shape(answer(r#"{"id": "42"}"#, "\"v1\"")).is_ok());
        for unsafe_answer in [
            answer(r#"{"echo": "ts-secret"}"#, "\"v1\""),
            answer(r#"{"id": "42"}"#, "\"ts-secret\""),
            answer(r#"{"echo": "42-token"}"#, "\"v1\""),
        ] {
            assert!(matches!(
                shape(unsafe_answer),
                Err(UnsafeAnswer::CarriesToken)
            ));
        }
    }

    #[test]
    fn public_caching_becomes_private() {
        let value = HeaderValue::from_static("public, max-age=60, s-maxage=60");
        assert_eq!(private(&value), "private, max-age=60, s-maxage=60");
        assert_eq!(private(&HeaderValue::from_static("no-cache")), "no-cache");
    }

    #[test]
    fn finds_a_token_split_across_inflated_chunks() {
        use flate2::Compression;
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut data = vec![b'a'; 64 * 1024 - 3];
        data.extend_from_slice(b"gho_secret");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&data).expect("write");
        let gz = encoder.finish().expect("gzip");
        let gzip = HeaderValue::from_static("gzip");
        let check = |token: &str, body: &[u8]| {
            Guard::new(
                &IdpAccessToken::new(token),
                Some(&gzip),
                guard::MAX_INFLATED_BUFFERED,
            )
            .and_then(|g| g.check_whole(body))
        };
        assert_eq!(check("gho_secret", &gz), Err(UnsafeAnswer::CarriesToken));
        assert_eq!(check("gho_other", &gz), Ok(()));
        assert_eq!(check("x", b"not gzip"), Err(UnsafeAnswer::Uninflatable));
    }

    #[test]
    fn bodies_are_text_only_when_utf8_and_uncompressed() {
        assert!(matches!(as_body(b"caf\xc3\xa9".to_vec(), false), Body::Text(t) if t == "café"));
        assert!(matches!(as_body(b"caf\xe9".to_vec(), false), Body::Binary(b) if b == b"caf\xe9"));
        assert!(matches!(as_body(b"plain".to_vec(), true), Body::Binary(_)));
    }
}
