//! A stand-in identity provider on 127.0.0.1 (GitHub- or Google-like): an API that answers for the
//! access tokens it issued or was given (until they expire), a token endpoint for refresh-token
//! grants, a record of every request, and paths that misbehave. Every answer carries a new
//! `x-github-request-id`, as GitHub's do.
//!
//! - `GET /user`, `/oauth2/v3/userinfo`, `/v1.0/me`: the profile of the token's user;
//! - `GET /user/repos`, for a profile with `public_repos` (else the echo below): that many
//!   repositories, paginated as GitHub does (`per_page`, default 30, at most 100; `page`) with a
//!   `Link` header of `next`, `last`, `first` and `prev` URLs on this stand-in's origin;
//! - `GET /avatars/u/{id}`: a generated SVG avatar, no token needed (as GitHub's avatar host);
//! - `/redirect`: a 302 to another origin; `/fail`: 500; `/hang`: never answers; any path
//!   answers 503 while [`Idp::fail_next`] says so;
//! - `GET /user/repos?per_page=&page=`: a list of [`LIST_SIZE`] repositories in pages, with
//!   GitHub's `Link` header (`next`, `prev`, `first`, `last`) into the stand-in's own origin;
//! - `/conditional`: an `ETag` and `Last-Modified` resource that answers `If-None-Match` and
//!   `If-Modified-Since` with `304` and no body, `Cache-Control: public`;
//! - `/bytes/{kind}?size=N`: bodies that text handling would alter: `binary` (bytes 0 to 255
//!   over and over, no `Content-Type`), `latin1` (`caf\xe9` labelled ISO-8859-1),
//!   `invalid-utf8-json`, `gzip` (a gzip JSON body with its `Content-Encoding`), `controls`
//!   (`size` × U+0001 as `text/plain`: six times larger JSON-escaped) and `quotes` (a JSON
//!   string of `size` × `\"`); `binary` from 1 MiB up is generated as it is sent, never held
//!   whole; `text`: `size` bytes of plain ASCII; `token-late` (`-gzip`): `size` bytes of text with the caller's own token in the
//!   middle (gzip-compressed for `-gzip`), for the streamed token guard;
//!   `token-late-identity-gzip`: `token-late-gzip` with `Content-Encoding: identity` and
//!   `Content-Encoding: gzip` as two field lines;
//! - `/headers/repeated?status=N`: repeated fields, as GitHub and proxies send them: two
//!   `Vary` ([`REPEATED_VARY`]), three `Link` (one into the API, one half into it, one
//!   elsewhere), two `WWW-Authenticate` challenges, two `x-ratelimit-limit`; status N (200);
//! - `/headers/latin1-etag`: an `ETag` in ISO-8859-1 (`"caf\xe9"`, obs-text, which HTTP
//!   allows and a Lambda response cannot carry) beside a JSON body and a `Vary`;
//! - `/echo/headers`: the request's headers in the body (the IdP token included);
//!   `/echo/link`: a `Link` whose URL carries the token;
//! - `/claims`: Microsoft Graph's claims challenge (401, `error="insufficient_claims"`);
//!   `/refused`: a 401 whatever the token, as a resource that refuses for its own reasons;
//! - `POST /token`, `POST /login/oauth/access_token` and, for a per-user host's own token
//!   endpoint (Shopify's shop), `POST /<host>/admin/oauth/access_token`, where a refresh token
//!   bound to a host ([`Idp::issue_refresh_token_at`]) is accepted at that host's alone: the
//!   refresh-token grant, errors shaped
//!   as the [`Flavor`] does (GitHub: 200 with `error`; Google: 400), under [`RefreshRules`] that
//!   each flavour starts with and a test may set to a provider's own (client authentication,
//!   single-use, rotating or reusable refresh tokens, JSON or form answers, `expires_in` or not);
//! - anything else: an echo of the method, path, query and body;
//! - `/<a.host.name>/<path>` (a first segment of two dots or more, as a per-user host's stand-in
//!   origin is called): as `<path>`, with links under `/<a.host.name>`.
//!
//! Every API answer carries a `Set-Cookie` and an `X-OAuth-Scopes` header that the proxy must not
//! pass on, beside `ETag`, `Link` and rate-limit headers that it should.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use crate::lock;
use crate::opaque_token::new_token;
use crate::scopes::{
    Requirement, ScopeDialect, github_headers, refusal, requirement_for, satisfied,
};

/// How many repositories `/user/repos` lists.
pub const LIST_SIZE: usize = 5;

/// The `ETag` and `Last-Modified` of `/conditional`.
pub const CONDITIONAL_ETAG: &str = "\"conditional-v1\"";
/// See [`CONDITIONAL_ETAG`].
pub const CONDITIONAL_LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

/// The `WWW-Authenticate` of `/claims`, as Microsoft Graph sends a claims challenge.
pub const CLAIMS_CHALLENGE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=\"";

/// The two `Vary` fields of `/headers/repeated`, as GitHub sends them.
pub const REPEATED_VARY: [&str; 2] = [
    "Accept, Authorization, Cookie, X-GitHub-OTP",
    "Accept-Encoding, Accept, X-Requested-With",
];
/// The two `WWW-Authenticate` challenges of `/headers/repeated`.
pub const REPEATED_CHALLENGES: [&str; 2] =
    ["Bearer realm=\"stand-in\"", "Basic realm=\"stand-in\""];
/// The two `x-ratelimit-limit` values of `/headers/repeated`.
pub const REPEATED_RATE_LIMITS: [&str; 2] = ["5000", "60"];
/// The ISO-8859-1 `ETag` of `/headers/latin1-etag`, as bytes on the wire.
pub const LATIN1_ETAG: &[u8] = b"\"caf\xe9\"";

/// One request as the stand-in IdP received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub path_and_query: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the token endpoint answers, after the provider it stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// GitHub: form-encoded answers unless `Accept: application/json`, errors as HTTP 200 with
    /// an `error` member (`bad_refresh_token`), single-use (rotating) refresh tokens.
    GitHub,
    /// Google: JSON answers, errors as HTTP 400 (`invalid_grant`), refresh tokens kept.
    Google,
}

/// What a form value percent-encodes: all but what `application/x-www-form-urlencoded` leaves
/// as it is.
const FORM_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// How a token endpoint treats refresh grants, after a provider's documented behaviour; the
/// stand-in enforces each rule as that provider does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRules {
    /// How the IdP app must authenticate; `None`: either way (Google, GitHub).
    pub client_auth: Option<ClientAuth>,
    /// What becomes of a refresh token once presented.
    pub refresh: RefreshBehaviour,
    /// The format of the endpoint's answers, errors included.
    pub answer: AnswerFormat,
    /// Whether answers carry `expires_in`.
    pub expires_in: bool,
}

/// How an IdP app authenticates at a token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic only (Fitbit, Bitbucket): credentials in the body are `invalid_client`.
    Basic,
    /// `client_id` and `client_secret` in the body only (Box): a Basic header is
    /// `invalid_client`.
    Body,
}

/// What becomes of a refresh token once presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshBehaviour {
    /// It stays valid, and no new one is issued (Google).
    Reusable,
    /// A new one comes with every grant, and the old one still works (Microsoft).
    Rotating,
    /// A new one comes with every grant, and the old one is dead: presenting it again is
    /// `invalid_grant` (Box, Fitbit, GitHub Apps).
    SingleUse,
}

/// The format of a token endpoint's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// JSON, as RFC 6749 §5.1 says.
    Json,
    /// A form-encoded body, whatever the request's `Accept`.
    Form,
    /// A form-encoded body unless `Accept: application/json` (GitHub).
    FormUnlessJson,
}

impl Flavor {
    fn rules(self) -> RefreshRules {
        match self {
            Self::GitHub => RefreshRules {
                client_auth: None,
                refresh: RefreshBehaviour::SingleUse,
                answer: AnswerFormat::FormUnlessJson,
                expires_in: true,
            },
            Self::Google => RefreshRules {
                client_auth: None,
                refresh: RefreshBehaviour::Reusable,
                answer: AnswerFormat::Json,
                expires_in: true,
            },
        }
    }
}

#[derive(Debug)]
struct Grant {
    profile: Value,
    expires_at: Option<Instant>,
    /// The scopes the token carries; `None`: unknown (tokens of the IdP's own flows), which
    /// counts as none where a requirement is configured.
    scopes: Option<Vec<String>>,
}

#[derive(Debug)]
pub(crate) struct IdpState {
    flavor: Flavor,
    calls: AtomicUsize,
    tokens: Mutex<HashMap<String, Grant>>,
    requests: Mutex<Vec<Recorded>>,
    clients: Mutex<HashMap<String, String>>,
    refresh_tokens: Mutex<HashMap<String, Value>>,
    rules: Mutex<RefreshRules>,
    /// GitHub Apps: a renewal revokes the user's earlier access tokens too.
    revoke_on_renewal: AtomicBool,
    token_lifetime: Mutex<Duration>,
    token_delay: Mutex<Duration>,
    grants: AtomicUsize,
    failures: AtomicUsize,
    presented: Mutex<Vec<String>>,
    client_auth: Mutex<Vec<&'static str>>,
    issued: Mutex<Vec<String>>,
    /// The header the API reads the token from and the text around it (Shopify's
    /// `x-shopify-access-token`, whole; Yandex's `authorization`, after `OAuth `); `None`:
    /// `Authorization: Bearer`.
    token_header: Mutex<Option<(String, String, String)>>,
    /// Refresh tokens that only the token endpoint of one host accepts (a Shopify shop's), by
    /// token: the host.
    host_refresh_tokens: Mutex<HashMap<String, String>>,
    /// The host each grant was sent to (`/<host>/…/access_token`), in order; `None`: `/token`.
    grant_hosts: Mutex<Vec<Option<String>>>,
    /// What `require_scope` configured.
    requirements: Mutex<Vec<Requirement>>,
    /// The consent side ([`crate::consent`]): codes waiting for the tenant.
    pub(crate) consent: crate::consent::ConsentState,
}

/// A running stand-in IdP.
#[derive(Debug, Clone)]
pub struct Idp {
    addr: SocketAddr,
    state: Arc<IdpState>,
}

impl Idp {
    /// Starts a GitHub-like stand-in IdP that accepts no token yet.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_as(Flavor::GitHub).await
    }

    /// Starts a stand-in IdP of the given flavor that accepts no token yet.
    pub async fn start_as(flavor: Flavor) -> std::io::Result<Self> {
        let state = Arc::new(IdpState {
            flavor,
            calls: AtomicUsize::new(0),
            tokens: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
            rules: Mutex::new(flavor.rules()),
            revoke_on_renewal: AtomicBool::new(false),
            token_lifetime: Mutex::new(Duration::from_secs(3600)),
            token_delay: Mutex::new(Duration::ZERO),
            grants: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            presented: Mutex::new(Vec::new()),
            client_auth: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
            token_header: Mutex::new(None),
            host_refresh_tokens: Mutex::new(HashMap::new()),
            grant_hosts: Mutex::new(Vec::new()),
            requirements: Mutex::new(Vec::new()),
            consent: crate::consent::ConsentState::default(),
        });
        let router = Router::new()
            .route("/token", post(token))
            .route("/login/oauth/access_token", post(token))
            // A per-user host's token endpoint (Shopify's shop), as `api_host_origin` sends it.
            .route("/{host}/admin/oauth/access_token", post(token_at_host))
            .route("/avatars/u/{id}", get(avatar))
            .route(
                crate::consent::AUTHORIZE_PATH,
                get(crate::consent::page).post(decide),
            )
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let addr = crate::serve(router).await?;
        Ok(Self { addr, state })
    }

    /// `http://127.0.0.1:port`: the `api_base` to configure for a connection.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Auth0 strategy of a connection to this IdP: `github` or `google-oauth2`, by flavor.
    pub fn strategy(&self) -> &'static str {
        match self.state.flavor {
            Flavor::GitHub => "github",
            Flavor::Google => "google-oauth2",
        }
    }

    /// `{origin}/token`: the `token_url` to configure for a connection.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.origin())
    }

    /// Accepts `token` as the access token of the user whose profile is `profile`.
    pub fn grant(&self, token: &str, profile: Value) {
        self.grant_until(token, profile, None);
    }

    /// Accepts `token` for `lifetime` from now.
    pub fn grant_for(&self, token: &str, profile: Value, lifetime: Duration) {
        self.grant_until(token, profile, Some(Instant::now() + lifetime));
    }

    fn grant_until(&self, token: &str, profile: Value, expires_at: Option<Instant>) {
        lock(&self.state.tokens).insert(
            token.to_owned(),
            Grant {
                profile,
                expires_at,
                scopes: None,
            },
        );
    }

    /// Accepts `token` for `lifetime` from now, carrying `scopes` (what the user granted): a
    /// path given a requirement by [`Idp::require_scope`] checks them.
    pub fn grant_scoped(&self, token: &str, profile: Value, lifetime: Duration, scopes: &[String]) {
        lock(&self.state.tokens).insert(
            token.to_owned(),
            Grant {
                profile,
                expires_at: Some(Instant::now() + lifetime),
                scopes: Some(scopes.to_vec()),
            },
        );
    }

    /// The scopes `token` carries: `None` for a token unknown here or whose scopes are unknown.
    pub fn token_scopes(&self, token: &str) -> Option<Vec<String>> {
        lock(&self.state.tokens).get(token)?.scopes.clone()
    }

    /// Calls under path `prefix` (as the IdP sees it, after a per-user host's segment) need one
    /// of `any_of`: a token holding none of them gets `dialect`'s insufficient-scope answer. The
    /// longest matching prefix applies. Tokens of unknown scopes (those of [`Idp::grant`] and
    /// refresh grants) hold none here; paths without a requirement are not checked.
    pub fn require_scope(&self, prefix: &str, any_of: &[&str], dialect: ScopeDialect) {
        let mut requirements = lock(&self.state.requirements);
        requirements.retain(|r| r.prefix != prefix);
        requirements.push(Requirement {
            prefix: prefix.to_owned(),
            any_of: any_of.iter().map(|s| (*s).to_owned()).collect(),
            dialect,
        });
    }

    /// Redeems a consent code the consent page sent to `redirect_uri`: the scopes granted, once.
    pub(crate) fn redeem_consent(&self, code: &str, redirect_uri: &str) -> Option<Vec<String>> {
        self.state.consent.redeem(code, redirect_uri)
    }

    /// `{origin}/oauth/authorize`: the stand-in IdP's consent page (see [`crate::consent`]).
    pub fn authorize_url(&self) -> String {
        format!("{}{}", self.origin(), crate::consent::AUTHORIZE_PATH)
    }

    /// Makes `token` expired from now on (as a stored token dies after its lifetime).
    pub fn expire(&self, token: &str) {
        if let Some(grant) = lock(&self.state.tokens).get_mut(token) {
            grant.expires_at = Some(Instant::now());
        }
    }

    /// Registers the IdP app that may run refresh grants.
    pub fn register_client(&self, client_id: &str, client_secret: &str) {
        lock(&self.state.clients).insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// Accepts `refresh_token` for new access tokens of the user whose profile is `profile`.
    pub fn issue_refresh_token(&self, refresh_token: &str, profile: Value) {
        lock(&self.state.refresh_tokens).insert(refresh_token.to_owned(), profile);
    }

    /// Stops accepting `refresh_token` (the user revoked the app's access).
    pub fn revoke_refresh_token(&self, refresh_token: &str) {
        lock(&self.state.refresh_tokens).remove(refresh_token);
    }

    /// Makes the API read the token from header `name` (lowercase), whole, as Shopify's Admin
    /// API reads `X-Shopify-Access-Token`, and ignore `Authorization`.
    pub fn set_token_header(&self, name: &str) {
        *lock(&self.state.token_header) = Some((name.to_owned(), String::new(), String::new()));
    }

    /// Makes the API read the token from header `name` (lowercase) in `format`, `{token}`
    /// standing for it (Yandex's `authorization`, `OAuth {token}`), and ignore anything else.
    pub fn set_token_header_format(&self, name: &str, format: &str) {
        let (prefix, suffix) = format.split_once("{token}").unwrap_or((format, ""));
        *lock(&self.state.token_header) =
            Some((name.to_owned(), prefix.to_owned(), suffix.to_owned()));
    }

    /// Accepts `refresh_token` for new access tokens of the user whose profile is `profile`, at
    /// the token endpoint of `host` alone (`/<host>/admin/oauth/access_token`), as a shop's
    /// refresh token is its own; so are the refresh tokens its grants issue.
    pub fn issue_refresh_token_at(&self, host: &str, refresh_token: &str, profile: Value) {
        self.issue_refresh_token(refresh_token, profile);
        lock(&self.state.host_refresh_tokens).insert(refresh_token.to_owned(), host.to_owned());
    }

    /// The host each grant was sent to, in order (`None`: the plain `/token`).
    pub fn grant_hosts(&self) -> Vec<Option<String>> {
        lock(&self.state.grant_hosts).clone()
    }

    /// Whether each grant replaces the refresh token it used (single use) or keeps it
    /// (reusable).
    pub fn set_rotation(&self, rotate: bool) {
        lock(&self.state.rules).refresh = if rotate {
            RefreshBehaviour::SingleUse
        } else {
            RefreshBehaviour::Reusable
        };
    }

    /// Makes the token endpoint enforce `rules` from now on.
    pub fn set_refresh_rules(&self, rules: RefreshRules) {
        *lock(&self.state.rules) = rules;
    }

    /// Whether a renewal also revokes the access tokens issued before it to the same user, as
    /// GitHub Apps do with expiring user tokens.
    pub fn set_revoke_on_renewal(&self, revoke: bool) {
        self.state.revoke_on_renewal.store(revoke, Ordering::SeqCst);
    }

    /// The lifetime (`expires_in`) of access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.state.token_lifetime) = lifetime;
    }

    /// How long the token endpoint takes to answer, to widen races in tests.
    pub fn set_token_delay(&self, delay: Duration) {
        *lock(&self.state.token_delay) = delay;
    }

    /// Makes the next `count` API requests fail with 503, whatever their token.
    pub fn fail_next(&self, count: usize) {
        self.state.failures.store(count, Ordering::SeqCst);
    }

    /// How many requests its API received (the token endpoint's not included).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// How many grants its token endpoint received.
    pub fn grants(&self) -> usize {
        self.state.grants.load(Ordering::SeqCst)
    }

    /// The refresh tokens presented to its token endpoint, in order.
    pub fn presented_refresh_tokens(&self) -> Vec<String> {
        lock(&self.state.presented).clone()
    }

    /// How each grant's client authenticated: `"basic"` or `"body"`.
    pub fn grant_client_auth(&self) -> Vec<&'static str> {
        lock(&self.state.client_auth).clone()
    }

    /// Every access and refresh token its token endpoint issued (to prove none is logged).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Every request its API received.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }
}

/// The client of a grant: HTTP Basic, else `client_id` and `client_secret` in the body.
fn grant_client(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    kinds: &Mutex<Vec<&'static str>>,
    required: Option<ClientAuth>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        lock(kinds).push("basic");
        if required == Some(ClientAuth::Body) || form.contains_key("client_secret") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        // RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(&part.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|text| text.into_owned())
        };
        return Some((decode(id)?, decode(secret)?));
    }
    lock(kinds).push("body");
    if required == Some(ClientAuth::Basic) {
        return None;
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

async fn token(
    State(state): State<Arc<IdpState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    grant(state, None, headers, form).await
}

/// `POST /<host>/admin/oauth/access_token`: the token endpoint of one per-user host.
async fn token_at_host(
    State(state): State<Arc<IdpState>>,
    axum::extract::Path(host): axum::extract::Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    grant(state, Some(host), headers, form).await
}

/// A refresh grant at the token endpoint of `host` (`None`: the stand-in's own `/token`): a
/// refresh token bound to a host is accepted at that host's endpoint only.
async fn grant(
    state: Arc<IdpState>,
    host: Option<String>,
    headers: HeaderMap,
    form: HashMap<String, String>,
) -> Response {
    state.grants.fetch_add(1, Ordering::SeqCst);
    lock(&state.grant_hosts).push(host.clone());
    let delay = *lock(&state.token_delay);
    tokio::time::sleep(delay).await;
    let wants_json = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let rules = *lock(&state.rules);
    let form_answer = match rules.answer {
        AnswerFormat::Json => false,
        AnswerFormat::Form => true,
        AnswerFormat::FormUnlessJson => !wants_json,
    };
    let answer = |fields: Vec<(&str, Value)>| -> Response {
        if form_answer {
            let text = fields
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or(v.to_string(), str::to_owned);
                    let v = percent_encoding::utf8_percent_encode(&v, FORM_VALUE);
                    format!("{k}={v}")
                })
                .collect::<Vec<_>>()
                .join("&");
            return (
                [("content-type", "application/x-www-form-urlencoded")],
                text,
            )
                .into_response();
        }
        axum::Json(Value::Object(
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
        .into_response()
    };
    let error = |status: StatusCode, google: &str, github: &str| -> Response {
        let (status, code) = match state.flavor {
            Flavor::Google => (status, google),
            Flavor::GitHub => (StatusCode::OK, github),
        };
        let mut response = answer(vec![
            ("error", json!(code)),
            ("error_description", json!("refused by the stand-in")),
        ]);
        *response.status_mut() = status;
        response
    };

    let client_ok = grant_client(&headers, &form, &state.client_auth, rules.client_auth)
        .is_some_and(|(id, secret)| lock(&state.clients).get(&id) == Some(&secret));
    if !client_ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "incorrect_client_credentials",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported_grant_type",
        );
    }
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    lock(&state.presented).push(presented.clone());
    let bound = lock(&state.host_refresh_tokens).get(&presented).cloned();
    if bound.is_some_and(|bound| Some(&bound) != host.as_ref()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "bad_refresh_token",
        );
    }
    let profile = {
        let mut refresh_tokens = lock(&state.refresh_tokens);
        match rules.refresh {
            RefreshBehaviour::SingleUse => refresh_tokens.remove(&presented),
            RefreshBehaviour::Reusable | RefreshBehaviour::Rotating => {
                refresh_tokens.get(&presented).cloned()
            }
        }
    };
    let Some(profile) = profile else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "bad_refresh_token",
        );
    };
    let lifetime = *lock(&state.token_lifetime);
    let access_token = new_token("idp-access-");
    if state.revoke_on_renewal.load(Ordering::SeqCst) {
        lock(&state.tokens).retain(|_, grant| grant.profile != profile);
    }
    lock(&state.tokens).insert(
        access_token.clone(),
        Grant {
            profile: profile.clone(),
            expires_at: Some(Instant::now() + lifetime),
            scopes: None,
        },
    );
    lock(&state.issued).push(access_token.clone());
    let mut fields = vec![
        ("access_token", json!(access_token)),
        ("token_type", json!("bearer")),
    ];
    if rules.expires_in {
        fields.push(("expires_in", json!(lifetime.as_secs())));
    }
    if rules.refresh != RefreshBehaviour::Reusable {
        let refresh_token = new_token("idp-refresh-");
        lock(&state.refresh_tokens).insert(refresh_token.clone(), profile);
        if let Some(host) = &host {
            lock(&state.host_refresh_tokens).insert(refresh_token.clone(), host.clone());
        }
        lock(&state.issued).push(refresh_token.clone());
        fields.push(("refresh_token", json!(refresh_token)));
    }
    answer(fields)
}

/// `POST /oauth/authorize`: the user's decision on the consent page ([`crate::consent`]).
async fn decide(
    State(state): State<Arc<IdpState>>,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    crate::consent::decide(&state.consent, &form)
}

async fn handle(State(state): State<Arc<IdpState>>, request: Request) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&state.requests).push(recorded.clone());
    let failing = state
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return decorate((StatusCode::SERVICE_UNAVAILABLE, "try again").into_response());
    }

    // A pre-signed download URL (Box's `dl.boxcloud.com/d/1/…`, through the function's
    // `download_host_origin`): served without any credential, as the real ones are.
    if let Some(rest) = path.strip_prefix("/d/1/") {
        let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        let size = query.get("size").and_then(|s| s.parse().ok()).unwrap_or(16);
        let _id = rest;
        return decorate(body_of_kind("binary", size));
    }
    let token_header = lock(&state.token_header).clone();
    let bearer = match &token_header {
        Some((name, prefix, suffix)) => recorded
            .header(name)
            .and_then(|h| h.strip_prefix(prefix.as_str()))
            .and_then(|h| h.strip_suffix(suffix.as_str())),
        None => recorded
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ")),
    }
    .unwrap_or_default()
    .to_owned();
    let live = lock(&state.tokens)
        .get(&bearer)
        .filter(|g| g.expires_at.is_none_or(|t| t > Instant::now()))
        .map(|g| (g.profile.clone(), g.scopes.clone()));
    let Some((profile, scopes)) = live else {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"stand-in\""),
        );
        return decorate(response);
    };
    let host = recorded.header("host").unwrap_or_default().to_owned();
    // A per-user host's stand-in (`api_host_origin`) is called at `/<host>/<path>`: answered as
    // `<path>`, its links under `/<host>`. Two dots tell a host from a segment like `v1.0`.
    let (host, path) = match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
        Some((first, rest)) if first.matches('.').count() >= 2 => {
            (format!("{host}/{first}"), format!("/{rest}"))
        }
        _ => (host, path),
    };
    let requirement = requirement_for(&lock(&state.requirements), &path).cloned();
    let granted = scopes.unwrap_or_default();
    if let Some(requirement) = &requirement
        && !satisfied(requirement, &granted)
    {
        return decorate(refusal(requirement, &granted, &recorded.method, &path));
    }
    // GitHub sends its scope headers on every answer to a token request, successes included.
    let github = requirement
        .filter(|r| r.dialect == ScopeDialect::GitHub)
        .map(|r| r.any_of);
    let response = answer(&parts, &recorded, profile, &bearer, host, path).await;
    match github {
        Some(accepted) => github_headers(response, &granted, &accepted),
        None => response,
    }
}

/// The answer to an API call whose token is live and holds what the path requires.
async fn answer(
    parts: &axum::http::request::Parts,
    recorded: &Recorded,
    profile: Value,
    bearer: &str,
    host: String,
    path: String,
) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let response = match path.as_str() {
        "/user" | "/oauth2/v3/userinfo" | "/v1.0/me" => axum::Json(profile).into_response(),
        // The sample frontend's demo users: their own repositories, paginated.
        "/user/repos" if recorded.method == "GET" && profile.get("public_repos").is_some() => {
            return repos(&profile, parts.uri.query().unwrap_or_default(), &host);
        }
        "/user/repos" if parts.method == axum::http::Method::GET => list(&host, &query),
        "/conditional" => conditional(&parts.headers),
        "/headers/repeated" => repeated(&host, &query),
        "/headers/latin1-etag" => {
            let mut response = axum::Json(json!({"etag": "latin-1"})).into_response();
            let headers = response.headers_mut();
            headers.insert("vary", HeaderValue::from_static("Accept"));
            if let Ok(etag) = HeaderValue::from_bytes(LATIN1_ETAG) {
                headers.insert("etag", etag);
            }
            response
        }
        // Fields nominated as hop-by-hop by `Connection` (RFC 9110 §7.6.1), among them some
        // that are passed on otherwise.
        "/headers/hop-by-hop" => (
            [
                ("connection", "keep-alive, ETag, X-RateLimit-Remaining"),
                ("etag", "\"hop\""),
                ("x-ratelimit-remaining", "4999"),
                ("x-ratelimit-limit", "5000"),
            ],
            axum::Json(json!({"hop_by_hop": true})),
        )
            .into_response(),
        "/echo/headers" => axum::Json(Value::Object(
            recorded
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), json!(v)))
                .collect(),
        ))
        .into_response(),
        "/echo/link" => (
            [(
                "link",
                format!("<http://{host}/user/repos?access_token={bearer}>; rel=\"next\""),
            )],
            "see the link",
        )
            .into_response(),
        "/claims" => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", CLAIMS_CHALLENGE)],
            axum::Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Continuous access evaluation resulted in claims challenge"}})),
        )
            .into_response(),
        "/refused" => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer realm=\"stand-in\"")],
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response(),
        "/bytes/token-late" | "/bytes/token-late-gzip" => {
            let size = query.get("size").and_then(|s| s.parse().ok()).unwrap_or(16);
            token_late(size, bearer, path.ends_with("-gzip"))
        }
        // `token-late-gzip` with its `Content-Encoding` as two field lines, `identity` then
        // `gzip` (tests/api/streaming_attack.rs): a caller's client applies both.
        "/bytes/token-late-identity-gzip" => {
            let size = query.get("size").and_then(|s| s.parse().ok()).unwrap_or(16);
            let mut response = token_late(size, bearer, true);
            let headers = response.headers_mut();
            headers.remove("content-encoding");
            headers.append("content-encoding", HeaderValue::from_static("identity"));
            headers.append("content-encoding", HeaderValue::from_static("gzip"));
            response
        }
        bytes if bytes.starts_with("/bytes/") => {
            let size = query.get("size").and_then(|s| s.parse().ok()).unwrap_or(16);
            body_of_kind(&bytes["/bytes/".len()..], size)
        }
        "/redirect" => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere?token=leak")],
        )
            .into_response(),
        // Box's download: a 302 to a pre-signed URL on its download host (`to` names another
        // host; `size` passes on to the download).
        content if content.starts_with("/2.0/files/") && content.ends_with("/content") => {
            let id = &content["/2.0/files/".len()..content.len() - "/content".len()];
            let to = query.get("to").map_or("dl.boxcloud.com", String::as_str);
            let size = query.get("size").map_or("16", String::as_str);
            let location = format!("https://{to}/d/1/{id}/download?size={size}");
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert("location", value);
            }
            response
        }
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream broke").into_response(),
        "/hang" => std::future::pending().await,
        _ => axum::Json(json!({
            "method": recorded.method,
            "path_and_query": recorded.path_and_query,
            "body": String::from_utf8_lossy(&recorded.body),
        }))
        .into_response(),
    };
    decorate(response)
}

/// `/user/repos`: page `page` of [`LIST_SIZE`] repositories, `per_page` a page (GitHub's
/// defaults: 30, at most 100), with GitHub's `Link` header into `http://{host}`.
fn list(host: &str, query: &HashMap<String, String>) -> Response {
    let (per_page, page) = paging(query);
    let last = LIST_SIZE.div_ceil(per_page).max(1);
    let repos: Vec<Value> = (1..=LIST_SIZE)
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|i| json!({"id": i, "name": format!("repo-{i}"), "full_name": format!("octocat/repo-{i}")}))
        .collect();
    let links = page_links(host, per_page, page, last);
    let mut response = axum::Json(Value::Array(repos)).into_response();
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        response.headers_mut().insert("link", value);
    }
    response
}

/// `/headers/repeated`: every field that a one-value-per-name writer would cut, each repeated.
fn repeated(host: &str, query: &HashMap<String, String>) -> Response {
    let status = query
        .get("status")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(json!({"repeated": true}))).into_response();
    let links = [
        format!("<http://{host}/user/repos?page=2>; rel=\"next\""),
        format!(
            "<http://{host}/user/repos?page=5>; rel=\"last\", <https://docs.example.test/pagination>; rel=\"help\""
        ),
        "<https://docs.example.test/rate-limits>; rel=\"describedby\"".to_owned(),
    ];
    let fields = REPEATED_VARY
        .iter()
        .map(|v| ("vary", (*v).to_owned()))
        .chain(links.into_iter().map(|l| ("link", l)))
        .chain(
            REPEATED_CHALLENGES
                .iter()
                .map(|c| ("www-authenticate", (*c).to_owned())),
        )
        .chain(
            REPEATED_RATE_LIMITS
                .iter()
                .map(|l| ("x-ratelimit-limit", (*l).to_owned())),
        );
    let headers = response.headers_mut();
    for (name, value) in fields {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}

/// `/conditional`: `304` for a matching `If-None-Match` or an `If-Modified-Since` not before
/// its `Last-Modified` (compared as text: the one date the stand-in serves).
fn conditional(headers: &HeaderMap) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let etag_matches = header("if-none-match").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == CONDITIONAL_ETAG)
    });
    let unmodified = header("if-none-match").is_none()
        && header("if-modified-since") == Some(CONDITIONAL_LAST_MODIFIED);
    let validators = [
        ("etag", CONDITIONAL_ETAG),
        ("last-modified", CONDITIONAL_LAST_MODIFIED),
        ("cache-control", "public, max-age=60"),
    ];
    if etag_matches || unmodified {
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    (validators, axum::Json(json!({"version": 1}))).into_response()
}

/// Bodies from this size up are generated as they are sent, never held whole.
const GENERATED_FROM: usize = 1 << 20;

/// `size` bytes 0 to 255 over and over, generated chunk by chunk as they are sent: a large
/// file's body without the stand-in holding it.
fn generated(size: usize) -> axum::body::Body {
    const CHUNK: usize = 64 * 1024;
    let chunks = (0..size.div_ceil(CHUNK)).map(move |index| {
        let start = index * CHUNK;
        let end = (start + CHUNK).min(size);
        let chunk: Vec<u8> = (start..end).map(|i| (i % 256) as u8).collect();
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(chunk))
    });
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

/// `/bytes/token-late` (`-gzip`): `size` bytes of text with the caller's own token in the
/// middle, as an endpoint that echoes its request deep into a large answer; gzip-compressed with
/// its `Content-Encoding` for `-gzip`.
fn token_late(size: usize, token: &str, gzip: bool) -> Response {
    let half = size / 2;
    let mut body = vec![b'.'; half];
    body.extend_from_slice(token.as_bytes());
    body.resize(size.max(body.len()), b'.');
    let mut response = if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = encoder.write_all(&body);
        let mut response =
            Response::new(axum::body::Body::from(encoder.finish().unwrap_or_default()));
        response
            .headers_mut()
            .insert("content-encoding", HeaderValue::from_static("gzip"));
        response
    } else {
        Response::new(axum::body::Body::from(body))
    };
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    response
}

/// `/bytes/{kind}`: a body of `size` units that text handling would alter.
fn body_of_kind(kind: &str, size: usize) -> Response {
    let (content_type, body): (Option<&str>, Vec<u8>) = match kind {
        "binary" if size >= GENERATED_FROM => return Response::new(generated(size)),
        // Plain ASCII: a body that a buffered answer carries as it is (no escaping, no base64).
        "text" => (
            Some("text/plain"),
            b"stand-in file text\n"
                .iter()
                .copied()
                .cycle()
                .take(size)
                .collect(),
        ),
        "binary" => (None, (0..size).map(|i| (i % 256) as u8).collect()),
        "latin1" => (Some("text/plain; charset=iso-8859-1"), b"caf\xe9".to_vec()),
        "invalid-utf8-json" => (
            Some("application/json"),
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
        ),
        "controls" => (Some("text/plain"), vec![1; size]),
        "quotes" => {
            let mut body = b"\"".to_vec();
            body.extend(std::iter::repeat_n(*b"\\\"", size).flatten());
            body.push(b'"');
            (Some("application/json"), body)
        }
        "gzip" => {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = encoder.write_all(b"{\"compressed\":true}");
            let body = encoder.finish().unwrap_or_default();
            let mut response = Response::new(axum::body::Body::from(body));
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("content-encoding", HeaderValue::from_static("gzip"));
            return response;
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = Response::new(axum::body::Body::from(body));
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static(content_type));
    }
    response
}

/// Headers real providers send: some the proxy must return, some it must not. An `ETag` or
/// `Link` of the answer's own stays.
fn decorate(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // GitHub's own id of the request, new on every answer, as the real API sends it.
    static REQUEST_IDS: AtomicUsize = AtomicUsize::new(1);
    let id = format!(
        "C0DE:{:04X}:{:X}",
        REQUEST_IDS.fetch_add(1, Ordering::SeqCst),
        std::process::id()
    );
    if let Ok(id) = HeaderValue::from_str(&id) {
        headers.insert("x-github-request-id", id);
    }
    for (name, value) in [
        ("etag", "W/\"stand-in-etag\""),
        (
            "link",
            "<https://api.example.test/user/repos?page=2>; rel=\"next\"",
        ),
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("set-cookie", "idp_session=stand-in-session; HttpOnly"),
        ("x-oauth-scopes", "repo, user"),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// One page of the token's user's repositories, with GitHub's `Link` header.
fn repos(profile: &Value, query: &str, host: &str) -> Response {
    let params: HashMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
    let (per_page, page) = paging(&params);
    let total = profile["public_repos"].as_u64().unwrap_or(0) as usize;
    let login = profile["login"].as_str().unwrap_or("user");
    let last = total.div_ceil(per_page).max(1);
    let first_index = (page - 1).saturating_mul(per_page);
    let items: Vec<Value> = (first_index..total.min(first_index.saturating_add(per_page)))
        .map(|i| {
            let name = format!("project-{:02}", i + 1);
            let language = ["Rust", "TypeScript", "Python"][i % 3];
            json!({
                "id": 100_000 + i,
                "name": name,
                "full_name": format!("{login}/{name}"),
                "private": false,
                "html_url": format!("https://github.com/{login}/{name}"),
                "description": format!("Stand-in repository {} of {total}", i + 1),
                "language": language,
                "stargazers_count": (i * 7) % 50,
            })
        })
        .collect();
    let links = page_links(host, per_page, page, last);
    let mut response = decorate(axum::Json(items).into_response());
    let headers = response.headers_mut();
    headers.remove("link");
    if let Ok(value) = HeaderValue::from_str(&links.join(", "))
        && !links.is_empty()
    {
        headers.insert("link", value);
    }
    response
}

/// A generated avatar: GitHub serves avatars from a host that needs no token.
async fn avatar(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    let hue = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120" viewBox="0 0 120 120"><rect width="120" height="120" rx="60" fill="hsl({hue},55%,55%)"/><circle cx="60" cy="48" r="22" fill="#fff"/><ellipse cx="60" cy="100" rx="36" ry="24" fill="#fff"/></svg>"##
    );
    ([("content-type", "image/svg+xml")], svg).into_response()
}

/// GitHub's pagination links for page `page` of `last` of `/user/repos` on `host`.
fn page_links(host: &str, per_page: usize, page: usize, last: usize) -> Vec<String> {
    let url = |n: usize| format!("<http://{host}/user/repos?per_page={per_page}&page={n}>");
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    links
}

/// `per_page` and `page` of a list request, as GitHub reads them: 30 a page by default, at most
/// 100, from page 1; zero or garbage counts as absent.
fn paging(query: &HashMap<String, String>) -> (usize, usize) {
    let number = |name: &str, default: usize| {
        query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    (number("per_page", 30).min(100), number("page", 1))
}
