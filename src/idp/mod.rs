//! The identity provider side: the connection table, path normalisation, the IdP token's
//! lifecycle (cache, renewal), and the proxied call itself, which carries the IdP token in and
//! brings only safe headers back.

pub mod allow;
pub mod catalogue;
pub mod connections;
pub mod consent;
pub mod download;
pub mod fleet_source;
pub mod guard;
pub mod host;
pub mod identity_source;
pub mod oauth1;
pub mod path;
mod presented;
pub mod renewal;
pub mod response;
pub mod tokens;
pub mod vault_source;

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use url::Url;

use crate::credentials::{CredentialStore, CredentialsError};
use crate::deadline::Deadline;
use crate::secret::IdpAccessToken;
use crate::service::Service;
use crate::upstream::{self, Http, RetryPolicy, UpstreamCause, UpstreamError};
use allow::Verdict;
use connections::Connection;
use path::{IdpPath, PathError};
use presented::Presented;
pub use response::{IdpResponse, Pending, UnsafeAnswer};

/// Cap on one IdP call, within the invocation's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(8);

/// Largest IdP body read: no larger one fits in Lambda's 6 MB response, whatever its encoding.
/// Whether a smaller one fits is decided on the whole Lambda response (`event::fit`).
const MAX_IDP_BODY_BYTES: usize = crate::event::MAX_RESPONSE_BYTES;

/// Request headers of the caller that reach the IdP; everything else (its `Authorization`,
/// cookies, hop-by-hop and forwarding headers) stays behind.
const FORWARDED_REQUEST_HEADERS: &[HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// Why a proxied call failed.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// The method or path is not allowed, or would leave the connection's API.
    #[error(transparent)]
    ForbiddenPath(#[from] PathError),
    /// The allow rules that match need permissions or scopes the caller's token lacks.
    #[error("this call needs the caller's token to carry {}", .0.join(" "))]
    InsufficientScope(Vec<String>),
    /// The user must connect the account or log in again, for a usable token or for scopes it
    /// lacks.
    #[error(transparent)]
    Consent(#[from] consent::Consent),
    /// The IdP failed, timed out or answered garbage.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The IdP's answer cannot be passed on (it carries the IdP token, or hides what it carries).
    #[error(transparent)]
    Unsafe(#[from] UnsafeAnswer),
    /// An OAuth 1.0a token, and no consumer key and secret to sign its calls with: the secret
    /// has no `idp_clients` entry for the connection.
    #[error(
        "OAuth 1.0a calls of connection {connection:?} are signed with the secret's idp_clients.{connection}, which is missing"
    )]
    NoSigningClient {
        /// The connection.
        connection: String,
    },
    /// The call could not be signed.
    #[error(transparent)]
    Signing(#[from] oauth1::SignError),
    /// The secret, read for the consumer key and secret of an OAuth 1.0a call, is unavailable.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

impl UpstreamCause for IdpError {
    fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            Self::Upstream(error) => Some(error),
            _ => None,
        }
    }
}

/// What the caller asked the IdP for, validated.
pub struct IdpRequest<'a> {
    /// The connection.
    pub connection: &'a Connection,
    /// The method.
    pub method: Method,
    /// The upstream URL, proven to stay under the connection's API base.
    pub url: Url,
    /// The caller's headers (filtered before forwarding).
    pub headers: &'a HeaderMap,
    /// The request body, forwarded for methods other than GET and HEAD.
    pub body: &'a [u8],
    /// The IdP scopes the matching allow rules name for this call.
    pub idp_scopes: Vec<allow::ScopeNeed>,
    /// Whether a successful answer's body streams to the caller (`RESPONSE_MODE=streaming`)
    /// rather than being read whole: off unless the caller says so.
    pub streams: bool,
}

impl<'a> IdpRequest<'a> {
    /// Validates a call of `method` on the raw `path` for `connection`, by a caller holding the
    /// permissions and scopes `holds` says: the path normalises, an allow rule matches and its
    /// needs are met, and the URL stays under the API base. Nothing is sent before this holds.
    pub fn new(
        connection: &'a Connection,
        method: Method,
        raw_path: &str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
        body: &'a [u8],
        holds: &dyn Fn(&str) -> bool,
    ) -> Result<Self, IdpError> {
        let path = path::normalise(raw_path)?;
        Self::checked(connection, method, &path, query, headers, body, holds)
    }

    /// As [`IdpRequest::new`], for a path already normalised ([`path::normalise`]): for a
    /// caller that notes the normalised path even when the call is then refused.
    pub fn checked(
        connection: &'a Connection,
        method: Method,
        path: &IdpPath,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
        body: &'a [u8],
        holds: &dyn Fn(&str) -> bool,
    ) -> Result<Self, IdpError> {
        path::check_guarded(&path.segments, &connection.path_characters)?;
        let served = path::served(&path.segments)?;
        let verdict = |rules: &[allow::AllowRule]| {
            allow::verdict(rules, &method, &path.segments, served.as_deref(), holds)
        };
        // A content origin's rules first: a call one of them allows (or would, with more
        // permissions) is the content API's; every other call is the API's, under its rules.
        let (api_base, rules, verdict) = match &connection.content {
            Some(content) => match verdict(&content.allow) {
                Verdict::NotAllowed => (
                    &connection.api_base,
                    &connection.allow,
                    verdict(&connection.allow),
                ),
                found => (&content.api_base, &content.allow, found),
            },
            None => (
                &connection.api_base,
                &connection.allow,
                verdict(&connection.allow),
            ),
        };
        match verdict {
            Verdict::Allowed => {}
            Verdict::Missing(missing) => return Err(IdpError::InsufficientScope(missing)),
            Verdict::NotAllowed => return Err(PathError::NotAllowed.into()),
        }
        Ok(Self {
            url: upstream_url(api_base, path, query)?,
            idp_scopes: allow::idp_scopes(rules, &method, &path.segments, served.as_deref()),
            connection,
            method,
            headers,
            body,
            streams: false,
        })
    }
}

/// `{api_base}{path}?{query}`, refused unless it stays under `api_base`.
fn upstream_url(base: &Url, path: &IdpPath, query: Option<&str>) -> Result<Url, PathError> {
    let mut text = format!("{}{}", base.as_str().trim_end_matches('/'), path.encoded);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        text.push('?');
        text.push_str(query);
    }
    let url = Url::parse(&text).map_err(|_| PathError::LeavesOrigin)?;
    let base_path = base.path().trim_end_matches('/');
    let under_base = url.path() == base_path
        || url.path().starts_with(&format!("{base_path}/"))
        || base_path.is_empty();
    if url.origin() != base.origin() || !under_base || url.fragment().is_some() {
        return Err(PathError::LeavesOrigin);
    }
    Ok(url)
}

/// Calls the IdP with `token`: as a bearer token, in the connection's token header, or, for an
/// OAuth 1.0a token, signing each attempt with the connection's IdP app (the secret's
/// `idp_clients`, read from `credentials` only for such a token). Redirects are not followed
/// (the shared client never does). A 5xx answer is an error, after retries for idempotent
/// methods. Every answer, a retried one included, is handed to `answered` with the token's
/// text as it arrives, for the caller to note (the audit record keeps the last).
pub async fn call(
    http: &Http,
    request: &IdpRequest<'_>,
    token: &IdpAccessToken,
    credentials: &CredentialStore,
    answered: Answered,
    deadline: &Deadline,
) -> Result<IdpResponse, IdpError> {
    let signing = match token.secret() {
        Some(_) => Some(credentials.get(deadline).await?),
        None => None,
    };
    let consumer = signing
        .as_deref()
        .and_then(|c| c.idp_clients.get(&request.connection.name));
    let mut outbound = http.request(request.method.clone(), request.url.clone());
    let mut headers = HeaderMap::new();
    for (name, value) in &request.connection.headers {
        headers.insert(name.clone(), value.clone());
    }
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = request.headers.get(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    // Uncompressed answers, whose bytes can be checked for the token as they are; one that
    // comes compressed all the same is inflated to be checked.
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    let sends_body =
        !matches!(request.method, Method::GET | Method::HEAD) && !request.body.is_empty();
    let presented = Presented::new(request, token, consumer, sends_body)?;
    if let Presented::Fixed(name, value) = &presented {
        headers.insert(name.clone(), value.clone());
    }
    outbound = outbound.headers(headers);
    if sends_body {
        outbound = outbound.body(request.body.to_vec());
    }

    // Only a method that may be repeated is retried after a failure (5xx, connection error); a
    // POST or PATCH that failed may have had its effect. Never beyond the deadline. The same
    // rule put a write on a connection of its own (`Http::request`): no pooled connection that
    // died while the environment was frozen can fail it.
    let policy = if upstream::is_idempotent(&request.method) {
        RetryPolicy::STANDARD
    } else {
        RetryPolicy::ONCE
    };
    let attempt = || {
        let mut attempt = resend(&outbound)?;
        // A signature per attempt: a retry with the same nonce would be refused as a replay.
        if let Presented::Signed {
            consumer,
            secret,
            form,
        } = &presented
        {
            let signed = oauth1::authorization(
                &request.method,
                &request.url,
                form.then_some(request.body),
                consumer,
                token.expose(),
                secret,
            )?;
            attempt = attempt.header(header::AUTHORIZATION, signed);
        }
        Ok(attempt)
    };
    let noted = |status: StatusCode, headers: &HeaderMap| answered(status, headers, token.expose());
    let reading = Reading::of(request.streams, &request.method);
    send_and_read(policy, CALL_TIMEOUT, reading, attempt, noted, deadline).await
}

/// How the last answer's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Whole, within Lambda's 6 MB.
    Whole,
    /// A successful answer's body left to stream; any other answer's read whole (it is small,
    /// and the consent and redirect rules read it).
    StreamSuccess,
}

impl Reading {
    /// How a `method` call reads its answer when its answers `stream` (a `HEAD` has no body).
    pub(crate) fn of(stream: bool, method: &Method) -> Self {
        if stream && method != Method::HEAD {
            Self::StreamSuccess
        } else {
            Self::Whole
        }
    }
}

/// A copy of `request` for one more attempt; `Err` where its body cannot be sent again.
pub(crate) fn resend(
    request: &reqwest::RequestBuilder,
) -> Result<reqwest::RequestBuilder, IdpError> {
    request.try_clone().ok_or_else(|| {
        IdpError::from(UpstreamError::garbage(
            Service::Idp,
            "request body cannot be resent",
        ))
    })
}

/// The one way an IdP host is called (its API, or a download host): the requests `attempt`
/// makes, sent under `policy` within `deadline` (each capped at `timeout`), each answer handed
/// to `answered`, a 5xx a failure retried as the policy allows; the last answer read as
/// `reading` says.
pub(crate) async fn send_and_read(
    policy: RetryPolicy,
    timeout: std::time::Duration,
    reading: Reading,
    attempt: impl Fn() -> Result<reqwest::RequestBuilder, IdpError>,
    answered: impl Fn(StatusCode, &HeaderMap),
    deadline: &Deadline,
) -> Result<IdpResponse, IdpError> {
    let response = policy
        .run(deadline, || async {
            let request = attempt()?;
            let response = match reading {
                Reading::Whole => upstream::send(request, Service::Idp, deadline, timeout).await?,
                Reading::StreamSuccess => {
                    upstream::send_for_stream(request, Service::Idp, deadline, timeout).await?
                }
            };
            answered(response.status(), response.headers());
            if response.status().is_server_error() {
                return Err(upstream::status_error(Service::Idp, &response).into());
            }
            Ok::<_, IdpError>(response)
        })
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    if reading == Reading::StreamSuccess && status.is_success() {
        // One that says it is larger than Lambda streams gets the documented error, not a
        // stream cut at the limit.
        if response
            .content_length()
            .is_some_and(|len| len > crate::streaming::MAX_STREAMED_BYTES)
        {
            return Err(UpstreamError::garbage(Service::Idp, "body too large").into());
        }
        return Ok(IdpResponse {
            status,
            headers,
            body: Vec::new(),
            pending: Some(Pending {
                response,
                deadline: *deadline,
            }),
        });
    }
    let body = upstream::read_body(response, Service::Idp, MAX_IDP_BODY_BYTES).await?;
    Ok(IdpResponse {
        status,
        headers,
        body,
        pending: None,
    })
}

/// What [`call`] hands each answer of the IdP to, with the text of the token the call carried:
/// a plain function, so that it costs nothing and the call needs no state of its caller.
pub type Answered = fn(StatusCode, &HeaderMap, &str);

#[cfg(test)]
mod tests {
    use super::*;
    use connections::Connections;

    /// A caller who holds no permission: enough for rules that need none.
    const ANYONE: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn urls_stay_under_the_api_base() {
        let table = Connections::from_json(
            r#"{"graph": {"api_base": "https://graph.example.com/v1.0", "allow": ["GET /**"]}}"#,
        )
        .expect("valid");
        let graph = table.get("graph").expect("graph");
        let headers = HeaderMap::new();
        let request = IdpRequest::new(
            graph,
            Method::GET,
            "/me",
            Some("$select=id"),
            &headers,
            b"",
            ANYONE,
        )
        .expect("allowed");
        assert_eq!(
            request.url.as_str(),
            "https://graph.example.com/v1.0/me?$select=id"
        );
        let github = Connections::new(None).expect("built-ins");
        let github = github.get("github").expect("github");
        let root =
            IdpRequest::new(github, Method::GET, "", None, &headers, b"", ANYONE).expect("root");
        assert_eq!(root.url.as_str(), "https://api.github.com/");
        let colon = IdpRequest::new(
            github,
            Method::GET,
            "/http:evil.example.com",
            None,
            &headers,
            b"",
            ANYONE,
        )
        .expect("a colon in a segment is only a segment");
        assert_eq!(colon.url.host_str(), Some("api.github.com"));
        assert!(matches!(
            IdpRequest::new(
                github,
                Method::GET,
                "/user",
                Some("a#b"),
                &headers,
                b"",
                ANYONE
            ),
            Err(IdpError::ForbiddenPath(PathError::LeavesOrigin))
        ));
    }

    #[test]
    fn methods_outside_the_allow_list_are_refused() {
        let table = Connections::new(None).expect("built-ins");
        let github = table.get("github").expect("github");
        let headers = HeaderMap::new();
        assert!(matches!(
            IdpRequest::new(github, Method::DELETE, "/user", None, &headers, b"", ANYONE),
            Err(IdpError::ForbiddenPath(PathError::NotAllowed))
        ));
    }
}
