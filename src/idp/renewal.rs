//! The refresh-token grant (RFC 6749 §6) against a connection's token endpoint, with the IdP app's
//! own client credentials from the secret's `idp_clients`.
//!
//! The `oauth2` crate builds the request and parses the answer; the shared HTTP clients send it,
//! bounded by the invocation's deadline. Nothing here logs or returns a token in an error.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use url::Url;

use super::catalogue::Refresh;
use super::connections::{Connection, TokenAuth};
use super::tokens::source::Renewed;
use crate::credentials::ClientCredentials;
use crate::deadline::Deadline;
use crate::secret::{IdpAccessToken, IdpRefreshToken};
use crate::service::Service;
use crate::upstream::{self, Http, UpstreamError, printable_code};

/// Cap on one refresh grant, within the invocation's deadline.
const GRANT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest token endpoint answer read.
const MAX_GRANT_BODY_BYTES: usize = 64 * 1024;

/// Why a refresh grant gave no token.
#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    /// The provider refused the refresh token (expired, revoked, or already used): only a new
    /// login helps.
    #[error("the identity provider refused the refresh token")]
    InvalidGrant,
    /// The provider refused the IdP app's client credentials: a configuration fault.
    #[error("the identity provider rejected the function's client ({0})")]
    ClientRejected(String),
    /// The token endpoint failed, timed out or answered garbage.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Runs the refresh-token grant for `connection` at its `token_url` with `refresh_token`.
pub async fn refresh(
    http: &Http,
    connection: &Connection,
    token_url: &Url,
    client: &ClientCredentials,
    refresh_token: &IdpRefreshToken,
    deadline: &Deadline,
) -> Result<Renewed, RenewalError> {
    let oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            client.client_secret.expose_secret().to_owned(),
        ))
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
        .set_auth_type(match connection.token_auth {
            TokenAuth::Body => AuthType::RequestBody,
            TokenAuth::Basic => AuthType::BasicAuth,
        });
    let refresh_token = RefreshToken::new(refresh_token.expose().to_owned());
    // The future owns its client handle and deadline: `oauth2` wants it to outlive the borrow of
    // this closure.
    let deadline = *deadline;
    let send = |request: HttpRequest| send_grant(http.clone(), request, deadline);
    let answer = oauth
        .exchange_refresh_token(&refresh_token)
        .add_scopes(connection.refresh_scopes.iter().cloned().map(Scope::new))
        .request_async(&send)
        .await;
    crate::telemetry::renewal(answer.is_ok());
    match answer {
        Ok(token) => {
            let rotated = token
                .refresh_token()
                .map(|t| IdpRefreshToken::new(t.secret().as_str()));
            Ok(Renewed {
                access_token: IdpAccessToken::new(token.access_token().secret().as_str()),
                // A single-use token is dead once presented, whether or not a new one came.
                spent: rotated.is_none() && connection.refresh == Refresh::SingleUse,
                refresh_token: rotated,
                // Where the answer leaves it out, the lifetime the provider documents.
                expires_in: token.expires_in().or(connection.token_lifetime),
                shared: false,
            })
        }
        // The error variants that carry a body (`Parse`) are dropped here unread: the body of a
        // token endpoint's answer may hold a token.
        Err(RequestTokenError::ServerResponse(error)) => Err(classify(error.error())),
        Err(RequestTokenError::Request(error)) => Err(error.into()),
        Err(RequestTokenError::Parse(..) | RequestTokenError::Other(_)) => {
            Err(UpstreamError::garbage(Service::Idp, "unreadable token endpoint answer").into())
        }
    }
}

/// What an OAuth error code means for the caller.
fn classify(code: &BasicErrorResponseType) -> RenewalError {
    match code {
        BasicErrorResponseType::InvalidGrant => RenewalError::InvalidGrant,
        BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
            RenewalError::ClientRejected(code.to_string())
        }
        // GitHub's own codes for a dead refresh token.
        BasicErrorResponseType::Extension(code)
            if matches!(code.as_str(), "bad_refresh_token" | "expired_refresh_token") =>
        {
            RenewalError::InvalidGrant
        }
        BasicErrorResponseType::Extension(code) if code == "incorrect_client_credentials" => {
            RenewalError::ClientRejected(code.clone())
        }
        other => RenewalError::Upstream(UpstreamError::garbage(
            Service::Idp,
            format!("token endpoint error {}", printable_code(other.as_ref())),
        )),
    }
}

/// Sends the grant `oauth2` built, through the shared client and within the deadline.
async fn send_grant(
    http: Http,
    request: HttpRequest,
    deadline: Deadline,
) -> Result<HttpResponse, UpstreamError> {
    let (mut parts, body) = request.into_parts();
    // `oauth2` puts the IdP app's secret in a Basic header without marking it sensitive.
    if let Some(authorization) = parts.headers.get_mut(http::header::AUTHORIZATION) {
        authorization.set_sensitive(true);
    }
    let outbound = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body);
    let response = upstream::send(outbound, Service::Idp, &deadline, GRANT_TIMEOUT).await?;
    let mut status = response.status();
    let mut headers = response.headers().clone();
    let mut body = upstream::read_body(response, Service::Idp, MAX_GRANT_BODY_BYTES).await?;
    // Some token endpoints answer a form whatever `Accept` says (RFC 6749 wants JSON);
    // `oauth2` reads JSON only, and refuses a success not labelled JSON: relabelled too, or a
    // single-use provider's new tokens would be lost with the old one spent.
    if is_form(&headers) {
        body = form_as_json(&body);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    // GitHub answers a failed grant with 200 and an `error` member; as a 400 it reads as the
    // OAuth error it is rather than as a token response that does not parse.
    if status.is_success() && is_error_body(&body) {
        status = http::StatusCode::BAD_REQUEST;
    }
    let mut answer = HttpResponse::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// Whether `headers` label the body `application/x-www-form-urlencoded`.
fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A form-encoded token answer as the JSON object RFC 6749 §5.1 describes: each field a
/// string, `expires_in` a number where it is one. A field given twice keeps its first value.
fn form_as_json(body: &[u8]) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        let value = match (name.as_ref(), value.parse::<u64>()) {
            ("expires_in" | "refresh_token_expires_in", Ok(seconds)) => seconds.into(),
            _ => serde_json::Value::String(value.into_owned()),
        };
        object.entry(name.into_owned()).or_insert(value);
    }
    serde_json::to_vec(&object).unwrap_or_default()
}

/// A JSON object with an `error` member and no `access_token`.
fn is_error_body(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<serde::de::IgnoredAny>,
        access_token: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body)
        .is_ok_and(|p| p.error.is_some() && p.access_token.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_refresh_tokens_mean_reconsent_and_client_faults_do_not() {
        assert!(matches!(
            classify(&BasicErrorResponseType::InvalidGrant),
            RenewalError::InvalidGrant
        ));
        assert!(matches!(
            classify(&BasicErrorResponseType::Extension(
                "bad_refresh_token".into()
            )),
            RenewalError::InvalidGrant
        ));
        assert!(matches!(
            classify(&BasicErrorResponseType::InvalidClient),
            RenewalError::ClientRejected(_)
        ));
        assert!(matches!(
            classify(&BasicErrorResponseType::Extension(
                "incorrect_client_credentials".into()
            )),
            RenewalError::ClientRejected(_)
        ));
        assert!(matches!(
            classify(&BasicErrorResponseType::InvalidRequest),
            RenewalError::Upstream(_)
        ));
        let odd = classify(&BasicErrorResponseType::Extension(format!(
            "weird\n{}",
            "x".repeat(100)
        )));
        let text = crate::telemetry::error_chain(&odd);
        assert!(!text.contains('\n') && text.len() < 150, "{text}");
    }

    #[test]
    fn form_answers_read_as_the_json_rfc_6749_describes() {
        let json: serde_json::Value = serde_json::from_slice(&form_as_json(
            b"access_token=gho%2Fa&expires_in=28800&refresh_token=ghr_b&scope=&token_type=bearer&expires_in=1",
        ))
        .expect("json");
        assert_eq!(
            json,
            serde_json::json!({"access_token": "gho/a", "expires_in": 28800,
                "refresh_token": "ghr_b", "scope": "", "token_type": "bearer"})
        );
        let error = form_as_json(b"error=bad_refresh_token&error_description=x");
        assert!(is_error_body(&error));
        let mut headers = http::HeaderMap::new();
        assert!(!is_form(&headers));
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
        );
        assert!(is_form(&headers));
    }

    #[test]
    fn error_bodies_are_told_from_token_bodies() {
        assert!(is_error_body(br#"{"error": "bad_refresh_token"}"#));
        assert!(!is_error_body(
            br#"{"access_token": "a", "token_type": "bearer"}"#
        ));
        assert!(!is_error_body(b"access_token=a&token_type=bearer"));
    }
}
