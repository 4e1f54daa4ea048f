//! The stand-in IdP's scope checks: a test says which path prefix needs which scope (any of a
//! list) with [`crate::Idp::require_scope`], and a call whose token holds none of them gets the
//! provider's own insufficient-scope answer, in the [`ScopeDialect`] named there.
//!
//! Sources, read rather than remembered: RFC 6750 §3.1 (`insufficient_scope`); Google answers
//! quoted in public issues (`googleapis/google-api-python-client`, `analogdotnow/Analog#296`,
//! `kwent/react-google-contacts#6`: the `WWW-Authenticate` with `realm="https://accounts.google.com/"`
//! and the JSON body with `ACCESS_TOKEN_SCOPE_INSUFFICIENT`); GitHub's "Scopes for OAuth apps"
//! (`X-OAuth-Scopes`, `X-Accepted-OAuth-Scopes`, comma and space separated); Microsoft Graph answers
//! quoted in `microsoftgraph/*` issues (`Authorization_RequestDenied`, `innerError` with `date`,
//! `request-id`, `client-request-id`). Not confirmed: the `metadata.method` Google names for a
//! given path (the stand-in derives one from the path), and GitHub's exact status and body for a
//! missing scope (its docs say 403, or 404 where the resource is private; the stand-in answers 403
//! with GitHub's usual `{"message", "documentation_url"}` body).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// How a provider says that a token lacks a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeDialect {
    /// RFC 6750 §3.1: 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
    /// scope="…"` and no body to speak of.
    Rfc6750,
    /// Google APIs: 403, a `WWW-Authenticate` challenge with Google's realm and the scopes
    /// accepted, and the JSON error with `ACCESS_TOKEN_SCOPE_INSUFFICIENT`.
    Google,
    /// GitHub (OAuth apps): 403 with `X-OAuth-Scopes` (granted) and `X-Accepted-OAuth-Scopes`
    /// (accepted); both headers also on the successes of the path.
    GitHub,
    /// Microsoft Graph: 403 `Authorization_RequestDenied`.
    Graph,
}

/// One configured requirement: calls under `prefix` need one of `any_of`.
#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    pub(crate) prefix: String,
    pub(crate) any_of: Vec<String>,
    pub(crate) dialect: ScopeDialect,
}

/// The requirement for `path`: the one of longest prefix, so a test can narrow a broad rule.
pub(crate) fn requirement_for<'a>(
    requirements: &'a [Requirement],
    path: &str,
) -> Option<&'a Requirement> {
    requirements
        .iter()
        .filter(|r| path.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len())
}

/// Whether `granted` satisfies `requirement` (holds one of its scopes).
pub(crate) fn satisfied(requirement: &Requirement, granted: &[String]) -> bool {
    requirement.any_of.iter().any(|s| granted.contains(s))
}

/// The provider's refusal of a call to `path` (method `method`) whose token holds `granted`.
pub(crate) fn refusal(
    requirement: &Requirement,
    granted: &[String],
    method: &str,
    path: &str,
) -> Response {
    let accepted = requirement.any_of.join(" ");
    match requirement.dialect {
        ScopeDialect::Rfc6750 => {
            let challenge = format!(
                "Bearer error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token.\", scope=\"{accepted}\""
            );
            with_header(
                (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({"error": "insufficient_scope"})),
                )
                    .into_response(),
                "www-authenticate",
                &challenge,
            )
        }
        ScopeDialect::Google => {
            let (service, google_method) = google_names(method, path);
            let body = json!({"error": {
                "code": 403,
                "message": "Request had insufficient authentication scopes.",
                "errors": [{
                    "message": "Insufficient Permission",
                    "domain": "global",
                    "reason": "insufficientPermissions",
                }],
                "status": "PERMISSION_DENIED",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "domain": "googleapis.com",
                    "metadata": {"method": google_method, "service": service},
                }],
            }});
            let challenge = format!(
                "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{accepted}\""
            );
            with_header(
                (StatusCode::FORBIDDEN, axum::Json(body)).into_response(),
                "www-authenticate",
                &challenge,
            )
        }
        ScopeDialect::GitHub => github_headers(
            (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "403",
                })),
            )
                .into_response(),
            granted,
            &requirement.any_of,
        ),
        ScopeDialect::Graph => {
            let id = crate::new_token("");
            let body = json!({"error": {
                "code": "Authorization_RequestDenied",
                "message": "Insufficient privileges to complete the operation.",
                "innerError": {
                    "date": iso_now(),
                    "request-id": format!("00000000-0000-4000-8000-{:0>12}", &id[id.len().saturating_sub(12)..]),
                    "client-request-id": format!("00000000-0000-4000-9000-{:0>12}", &id[id.len().saturating_sub(12)..]),
                },
            }});
            (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
        }
    }
}

/// GitHub's two scope headers, comma and space separated (what GitHub sends on every answer
/// to a request made with an OAuth token).
pub(crate) fn github_headers(
    mut response: Response,
    granted: &[String],
    accepted: &[String],
) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-oauth-scopes", granted.join(", ")),
        ("x-accepted-oauth-scopes", accepted.join(", ")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Google's `service` and `method` for a call, derived from the path as Google's REST paths
/// read (`/drive/v3/files` → `drive.googleapis.com`, `drive.v3.Files.List`): the stand-in has no
/// discovery document to name the real RPC.
fn google_names(method: &str, path: &str) -> (String, String) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let api = segments.first().copied().unwrap_or("www");
    let version = segments.get(1).copied().unwrap_or("v1");
    let resource = segments
        .get(2)
        .map(|r| {
            let mut chars = r.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "Resource".to_owned());
    let verb = match (method, segments.len() > 3) {
        ("GET", false) => "List",
        ("GET", true) => "Get",
        ("POST", _) => "Create",
        ("DELETE", _) => "Delete",
        ("PATCH" | "PUT", _) => "Update",
        _ => "Call",
    };
    (
        format!("{api}.googleapis.com"),
        format!("{api}.{version}.{resource}.{verb}"),
    )
}

/// Now as an ISO 8601 UTC timestamp with seconds (`2024-05-01T12:00:00Z`), without a date
/// library: days since the epoch to a civil date (Howard Hinnant's algorithm).
pub(crate) fn iso_now() -> String {
    iso_at(crate::now())
}

/// `secs` since the epoch as an ISO 8601 UTC timestamp with seconds.
pub(crate) fn iso_at(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_are_civil() {
        assert_eq!(iso_at(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_at(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn google_names_follow_the_path() {
        assert_eq!(
            google_names("GET", "/drive/v3/files"),
            (
                "drive.googleapis.com".to_owned(),
                "drive.v3.Files.List".to_owned()
            )
        );
        assert_eq!(
            google_names("GET", "/drive/v3/files/abc").1,
            "drive.v3.Files.Get"
        );
    }

    #[test]
    fn the_longest_prefix_wins() {
        let rule = |prefix: &str, scope: &str| Requirement {
            prefix: prefix.to_owned(),
            any_of: vec![scope.to_owned()],
            dialect: ScopeDialect::Rfc6750,
        };
        let rules = [rule("/a/", "broad"), rule("/a/b/", "narrow")];
        assert_eq!(
            requirement_for(&rules, "/a/b/c").map(|r| r.any_of[0].as_str()),
            Some("narrow")
        );
        assert_eq!(
            requirement_for(&rules, "/a/x").map(|r| r.any_of[0].as_str()),
            Some("broad")
        );
        assert!(requirement_for(&rules, "/z").is_none());
    }
}
