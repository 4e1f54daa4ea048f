//! The one place where errors become HTTP responses (DESIGN.md, "Errors").
//!
//! Every boundary has its own error enum; [`ApiError`] gathers them and decides status, `error`
//! code, extra headers and log level. Client mistakes are logged at `debug`, infrastructure
//! failures at `error` with their cause chain. No description ever contains a token.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::upstream::UpstreamError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller could not be authenticated, or lacks the required scope.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No route matches the path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed {
        /// Methods the route accepts, for the `Allow` header.
        allow: &'static str,
    },
    /// The route is reserved for a feature not built yet.
    #[error("this route is not implemented yet")]
    NotImplemented,
}

/// How an error is answered.
struct Answer {
    status: StatusCode,
    code: &'static str,
    /// `WWW-Authenticate`, `Allow` or `Retry-After`, as needed.
    header: Option<(header::HeaderName, String)>,
    /// Whether the caller (rather than the function or an upstream) is at fault: decides the
    /// log level.
    client_fault: bool,
}

impl Answer {
    fn client(status: StatusCode, code: &'static str) -> Self {
        Self {
            status,
            code,
            header: None,
            client_fault: true,
        }
    }

    fn upstream(error: &UpstreamError) -> Self {
        let (status, code) = match error {
            UpstreamError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
        };
        Self {
            status,
            code,
            header: None,
            client_fault: false,
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.header = Some((name, value));
        self
    }
}

impl ApiError {
    fn answer(&self) -> Answer {
        match self {
            Self::Auth(AuthError::InsufficientScope(scope)) => {
                Answer::client(StatusCode::FORBIDDEN, "insufficient_scope").with_header(
                    header::WWW_AUTHENTICATE,
                    format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                )
            }
            Self::Auth(AuthError::KeysUnavailable(Some(source))) => Answer::upstream(source),
            Self::Auth(AuthError::KeysUnavailable(None)) => Answer {
                status: StatusCode::BAD_GATEWAY,
                code: "upstream_error",
                header: None,
                client_fault: false,
            },
            Self::Auth(_) => Answer::client(StatusCode::UNAUTHORIZED, "invalid_token").with_header(
                header::WWW_AUTHENTICATE,
                r#"Bearer error="invalid_token""#.to_owned(),
            ),
            Self::NotFound => Answer::client(StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { allow } => {
                Answer::client(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
                    .with_header(header::ALLOW, (*allow).to_owned())
            }
            Self::NotImplemented => Answer::client(StatusCode::NOT_IMPLEMENTED, "not_implemented"),
        }
    }

    /// The documented JSON response for this error, logged at the level its cause deserves.
    pub fn into_response(self) -> Response<Body> {
        let answer = self.answer();
        let description = self.to_string();
        if answer.client_fault {
            tracing::debug!(status = answer.status.as_u16(), error = answer.code, %description, "request refused");
        } else {
            tracing::error!(status = answer.status.as_u16(), error = answer.code, cause = %error_chain(&self), "request failed");
        }
        let mut response = json_response(
            answer.status,
            &json!({ "error": answer.code, "error_description": description }),
        );
        if let Some((name, value)) = answer.header
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// `error: cause: cause…`, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A JSON response of the function's own; never cached by browsers or proxies.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Service;

    fn parts(error: ApiError) -> (u16, serde_json::Value, http::HeaderMap) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let Body::Text(text) = response.into_body() else {
            panic!("text body expected")
        };
        (
            status,
            serde_json::from_str(&text).expect("JSON body"),
            headers,
        )
    }

    #[test]
    fn auth_failures_are_401_with_www_authenticate() {
        let (status, body, headers) = parts(AuthError::Expired.into());
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], "the token has expired");
        assert_eq!(
            headers["www-authenticate"],
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(headers["content-type"], "application/json");
    }

    #[test]
    fn missing_scope_is_403_insufficient_scope() {
        let (status, body, headers) =
            parts(AuthError::InsufficientScope("proxy:call".into()).into());
        assert_eq!(status, 403);
        assert_eq!(body["error"], "insufficient_scope");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .expect("ascii")
                .contains(r#"scope="proxy:call""#)
        );
    }

    #[test]
    fn unavailable_keys_are_upstream_errors() {
        let (status, body, _) =
            parts(AuthError::KeysUnavailable(Some(UpstreamError::Timeout(Service::Jwks))).into());
        assert_eq!(
            (status, body["error"].as_str()),
            (504, Some("upstream_timeout"))
        );
        let (status, body, _) = parts(
            AuthError::KeysUnavailable(Some(UpstreamError::Status {
                service: Service::Jwks,
                status: 500,
            }))
            .into(),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("upstream_error"))
        );
    }

    #[test]
    fn routing_errors() {
        let (status, body, _) = parts(ApiError::NotFound);
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
        let (status, _, headers) = parts(ApiError::MethodNotAllowed {
            allow: "GET, OPTIONS",
        });
        assert_eq!(status, 405);
        assert_eq!(headers["allow"], "GET, OPTIONS");
    }
}
