//! The stand-in tenant's sign-in side: enough OpenID Connect for Auth0's own SPA SDK
//! (`@auth0/auth0-spa-js`) to sign a user in against it, checked as Auth0 checks it.
//!
//! - `GET /.well-known/openid-configuration`: discovery;
//! - `GET /authorize`: the authorization-code flow with PKCE (S256 only) for a registered single
//!   page application: `client_id` known, `redirect_uri` one of its allowed callback URLs,
//!   `state` and `code_challenge` required; a small page to pick a demo user (what Universal
//!   Login would show), or, with `prompt=none`, the answer for the session cookie at once;
//!   `response_mode` `query` (a redirect) or `web_message` (a page that posts the answer to the
//!   opener's origin, if it is an allowed web origin, as the SDK's silent iframe expects);
//! - `POST /authorize`: the picked user: sets the session cookie and answers with a code;
//! - `POST /oauth/token` with `grant_type=authorization_code` (form or JSON): the code once, by
//!   the client it was issued to, with the same `redirect_uri` and a `code_verifier` whose
//!   SHA-256 is the challenge; answers an access token for the requested API and an RS256 ID
//!   token (`iss`, `aud` = client id, `nonce`, profile claims) — CORS-open to allowed origins;
//! - `GET /v2/logout`: ends the session; redirects only to an allowed logout URL.
//!
//! DPoP (RFC 9449), as Auth0 does it for the SDK's `useDpop: true`: a token request (code or
//! refresh token) with a `DPoP` proof, checked as RFC 9449 §4.3 says (see [`crate::dpop`]) for
//! `POST {issuer}oauth/token`, gets an access token bound to the proof's key (`cnf.jkt`) and
//! `"token_type": "DPoP"`; a bad proof gets `400 invalid_dpop_proof`. An authorization request's
//! `dpop_jkt` binds its code to that key (RFC 9449 §10), and a refresh token issued with a proof
//! is bound to its key (§5): each is then exchanged only with a proof by the same key. Without
//! a proof, bearer tokens as before.
//!
//! Signing in with `connection=NAME` stands for a fresh login at that identity provider: the
//! IdP token Auth0 keeps for the user's identity there is replaced by a new one, minted by the
//! hook [`crate::Tenant::on_connection_login`] installed (this is how a user re-consents).
//! Signing in without it reuses the account as it is, like a password or an existing session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::dpop::{self, Replay};
use crate::keys::TokenBuilder;
use crate::lock;
use crate::opaque_token::new_token;

/// The session cookie of the stand-in's login (on the tenant's origin only).
const SESSION_COOKIE: &str = "standin_session";
/// How long an authorization code may wait for its exchange (Auth0: 60 s… ten minutes at most).
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// Lifetime of the access and ID tokens issued at sign-in.
const TOKEN_LIFETIME_SECS: i64 = 3600;

/// A single page application registered in the stand-in tenant, as in Auth0's dashboard
/// (Applications → Single Page Application → Settings).
#[derive(Debug, Clone, Default)]
pub struct SpaClient {
    /// The application's client id.
    pub client_id: String,
    /// Allowed Callback URLs: exact `redirect_uri` values.
    pub callback_urls: Vec<String>,
    /// Allowed Logout URLs: exact `returnTo` values.
    pub logout_urls: Vec<String>,
    /// Allowed Web Origins: where the token endpoint answers CORS and silent sign-in posts to.
    pub web_origins: Vec<String>,
}

/// Mints a fresh IdP access token for a fresh login at a connection, from the user's id at the
/// IdP; installed by whoever runs that IdP's stand-in.
pub type MintIdpToken = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// An issued authorization code, waiting for its exchange.
#[derive(Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    audience: Option<String>,
    scope: String,
    sub: String,
    auth_time: i64,
    expires: Instant,
    /// The authorization request's `dpop_jkt`: the key whose proof the exchange needs.
    dpop_jkt: Option<String>,
}

/// A refresh token issued at sign-in (`offline_access`), and what it may be exchanged for.
#[derive(Debug, Clone)]
struct RefreshGrant {
    client_id: String,
    sub: String,
    /// The audience and scope of the sign-in that issued it.
    audience: Option<String>,
    scope: String,
    auth_time: i64,
    /// The DPoP key it is bound to (issued with a proof): refreshed only with that key's proof.
    jkt: Option<String>,
}

/// The scopes of a sign-in a refresh token carries to any audience its MRRT policies allow:
/// those of OpenID Connect and `offline_access`, which no API's policy lists.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// One refresh token policy: an audience and the scopes allowed for it.
type Policy = (String, Vec<String>);

/// What the sign-in side keeps: registered clients and APIs, sessions, codes, hooks, refresh
/// tokens and each client's refresh token policies (MRRT).
#[derive(Default)]
pub(crate) struct Login {
    clients: Mutex<Vec<SpaClient>>,
    apis: Mutex<Vec<String>>,
    sessions: Mutex<HashMap<String, String>>,
    codes: Mutex<HashMap<String, Code>>,
    minters: Mutex<HashMap<String, MintIdpToken>>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    /// client id → its `refresh_token.policies`: (audience, scopes).
    policies: Mutex<HashMap<String, Vec<Policy>>>,
    /// The DPoP proofs accepted lately, each usable once (token endpoint and My Account API).
    pub(crate) dpop_replay: Replay,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").finish_non_exhaustive()
    }
}

impl Login {
    pub(crate) fn register_client(&self, client: SpaClient) {
        let mut clients = lock(&self.clients);
        clients.retain(|c| c.client_id != client.client_id);
        clients.push(client);
    }

    pub(crate) fn register_api(&self, identifier: &str) {
        lock(&self.apis).push(identifier.to_owned());
    }

    /// Adds a refresh token policy to `client_id` (Auth0's `refresh_token.policies`): its
    /// refresh tokens may get access tokens for `audience` with (at most) `scopes`.
    pub(crate) fn add_refresh_policy(&self, client_id: &str, audience: &str, scopes: &[String]) {
        let mut policies = lock(&self.policies);
        let list = policies.entry(client_id.to_owned()).or_default();
        list.retain(|(a, _)| a != audience);
        list.push((audience.to_owned(), scopes.to_vec()));
    }

    /// Whether `origin` is an allowed web origin of some registered application.
    pub(crate) fn web_origin_allowed(&self, origin: &str) -> bool {
        lock(&self.clients)
            .iter()
            .any(|c| c.web_origins.iter().any(|o| o == origin))
    }

    /// The registered application `client_id`, if any.
    pub(crate) fn registered(&self, client_id: &str) -> Option<SpaClient> {
        self.client(client_id)
    }

    pub(crate) fn on_connection_login(&self, connection: &str, mint: MintIdpToken) {
        lock(&self.minters).insert(connection.to_owned(), mint);
    }

    fn client(&self, client_id: &str) -> Option<SpaClient> {
        lock(&self.clients)
            .iter()
            .find(|c| c.client_id == client_id)
            .cloned()
    }

    /// The CORS headers for `origin` if some registered application allows it.
    pub(crate) fn cors(&self, headers: &HeaderMap) -> Vec<(header::HeaderName, HeaderValue)> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Vec::new();
        };
        let allowed = origin.to_str().is_ok_and(|origin| {
            lock(&self.clients)
                .iter()
                .any(|c| c.web_origins.iter().any(|o| o == origin))
        });
        if !allowed {
            return Vec::new();
        }
        vec![
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, auth0-client, dpop"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            ),
            (header::VARY, HeaderValue::from_static("Origin")),
        ]
    }
}

/// The parameters of one authorization request, checked.
#[derive(Debug, Clone)]
struct AuthorizeRequest {
    client: SpaClient,
    redirect_uri: String,
    web_message: bool,
    state: String,
    nonce: Option<String>,
    code_challenge: String,
    audience: Option<String>,
    scope: String,
    connection: Option<String>,
    /// `login_hint`: the email (or user id) of the account to continue with.
    login_hint: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): the thumbprint of the DPoP key the code is bound to.
    dpop_jkt: Option<String>,
    prompt_none: bool,
    /// Every parameter as received, to carry through the picking page's form.
    raw: Vec<(String, String)>,
}

/// Why an authorization request is refused.
enum Refusal {
    /// The client or redirect URI cannot be trusted: shown on the tenant's own page, never
    /// redirected (RFC 6749 §4.1.2.1).
    Page(String),
    /// Sent back to the (trusted) redirect URI as `error` and `error_description`.
    Redirect(Box<AuthorizeRequest>, &'static str, String),
}

fn check(login: &Login, params: &HashMap<String, String>) -> Result<AuthorizeRequest, Refusal> {
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let client_id = get("client_id").unwrap_or_default();
    let client = login
        .client(&client_id)
        .ok_or_else(|| Refusal::Page(format!("Unknown client: {client_id:?}.")))?;
    let redirect_uri = get("redirect_uri").unwrap_or_default();
    if !client.callback_urls.contains(&redirect_uri) {
        return Err(Refusal::Page(format!(
            "Callback URL mismatch. {redirect_uri:?} is not in the list of Allowed Callback URLs of application {client_id:?}."
        )));
    }
    let web_message = match get("response_mode").as_deref() {
        None | Some("query") => false,
        Some("web_message") => true,
        Some(other) => {
            return Err(Refusal::Page(format!(
                "Unsupported response_mode {other:?}."
            )));
        }
    };
    let mut raw: Vec<(String, String)> =
        params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    raw.sort();
    let request = AuthorizeRequest {
        client,
        redirect_uri,
        web_message,
        state: get("state").unwrap_or_default(),
        nonce: get("nonce"),
        code_challenge: get("code_challenge").unwrap_or_default(),
        audience: get("audience"),
        scope: get("scope").unwrap_or_else(|| "openid".to_owned()),
        connection: get("connection"),
        login_hint: get("login_hint"),
        dpop_jkt: get("dpop_jkt"),
        prompt_none: get("prompt").as_deref() == Some("none"),
        raw,
    };
    if web_message && !origin_allowed(&request.client, &request.redirect_uri) {
        return Err(Refusal::Page(format!(
            "The origin of {:?} is not in the list of Allowed Web Origins.",
            request.redirect_uri
        )));
    }
    let invalid = |text: &str| {
        Err(Refusal::Redirect(
            Box::new(request.clone()),
            "invalid_request",
            text.to_owned(),
        ))
    };
    if get("response_type").as_deref() != Some("code") {
        return invalid("response_type must be code");
    }
    if request.state.is_empty() {
        return invalid("state is required");
    }
    if request.code_challenge.is_empty() || get("code_challenge_method").as_deref() != Some("S256")
    {
        return invalid("PKCE is required: code_challenge with code_challenge_method=S256");
    }
    if let Some(audience) = &request.audience
        && !lock(&login.apis).contains(audience)
    {
        return Err(Refusal::Redirect(
            Box::new(request.clone()),
            "access_denied",
            format!("Service not found: {audience}"),
        ));
    }
    Ok(request)
}

fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

fn origin_allowed(client: &SpaClient, url: &str) -> bool {
    client.web_origins.iter().any(|o| o == origin_of(url))
}

fn session_of(login: &Login, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)?
        .1;
    lock(&login.sessions).get(id).cloned()
}

/// `GET /authorize`.
pub(crate) fn authorize(
    login: &Login,
    users: &HashMap<String, Value>,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    let request = match check(login, params) {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    if request.prompt_none {
        return match session_of(login, headers) {
            Some(sub) => answer(login, &request, &sub),
            None => refuse(Refusal::Redirect(
                Box::new(request),
                "login_required",
                "Login required".to_owned(),
            )),
        };
    }
    Html(pick_page(&request, users)).into_response()
}

/// `POST /authorize`: the user picked on the page.
pub(crate) fn pick(
    login: &Login,
    users: &mut HashMap<String, Value>,
    params: &HashMap<String, String>,
) -> Response {
    let request = match check(login, params) {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    let sub = params.get("demo_user").cloned().unwrap_or_default();
    let Some(profile) = users.get_mut(&sub) else {
        return refuse(Refusal::Redirect(
            Box::new(request),
            "access_denied",
            "No such user".to_owned(),
        ));
    };
    if let Some(connection) = request.connection.clone() {
        // A fresh login at the IdP: Auth0 stores the IdP's new token on that identity.
        let mint = lock(&login.minters).get(&connection).cloned();
        let identity = profile["identities"].as_array_mut().and_then(|ids| {
            ids.iter_mut()
                .find(|i| i["connection"] == connection.as_str())
        });
        match (mint, identity) {
            (Some(mint), Some(identity)) => {
                let idp_user_id = identity["user_id"].as_str().unwrap_or_default().to_owned();
                identity["access_token"] = Value::String(mint(&idp_user_id));
            }
            _ => {
                return refuse(Refusal::Redirect(
                    Box::new(request),
                    "access_denied",
                    format!("{sub} has no identity at connection {connection}"),
                ));
            }
        }
    }
    let session = new_token("session-");
    lock(&login.sessions).insert(session.clone(), sub.clone());
    let mut response = answer(login, &request, &sub);
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A code for `sub`, sent back as the request's `response_mode` says.
fn answer(login: &Login, request: &AuthorizeRequest, sub: &str) -> Response {
    let code = new_token("code-");
    lock(&login.codes).insert(
        code.clone(),
        Code {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            audience: request.audience.clone(),
            scope: request.scope.clone(),
            sub: sub.to_owned(),
            auth_time: crate::now(),
            expires: Instant::now() + CODE_LIFETIME,
            dpop_jkt: request.dpop_jkt.clone(),
        },
    );
    respond(request, &[("code", &code), ("state", &request.state)])
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(text) => (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p>{}</p>",
                escape(&text)
            )),
        )
            .into_response(),
        Refusal::Redirect(request, error, description) => respond(
            &request,
            &[
                ("error", error),
                ("error_description", &description),
                ("state", &request.state),
            ],
        ),
    }
}

/// Sends `fields` to the application: a redirect to its callback URL, or (web_message) a page
/// that posts them to the callback's origin only.
fn respond(request: &AuthorizeRequest, fields: &[(&str, &str)]) -> Response {
    if request.web_message {
        let response: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let message = json!({"type": "authorization_response", "response": response});
        let target = Value::String(origin_of(&request.redirect_uri).to_owned());
        // `</` cannot end the script early: JSON escapes `/` nowhere, so escape it here.
        let script = format!("(window.opener || window.parent).postMessage({message}, {target});")
            .replace("</", "<\\/");
        return Html(format!(
            "<!doctype html><title>Authorization response</title><script>{script}</script>"
        ))
        .into_response();
    }
    let query = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, QUERY)))
        .collect::<Vec<_>>()
        .join("&");
    Redirect::to(&format!("{}?{query}", request.redirect_uri)).into_response()
}

/// What is escaped in a query value: everything but unreserved characters.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page Universal Login stands in for: one button per demo user (only those with an
/// identity at the requested connection, if one is, and only the one `login_hint` names by
/// email or user id, if it names one). A user's `app_metadata.demo_note` is shown beside them.
fn pick_page(request: &AuthorizeRequest, users: &HashMap<String, Value>) -> String {
    let hidden: String = request
        .raw
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let mut ids: Vec<&String> = users.keys().collect();
    ids.sort();
    let buttons: String = ids
        .into_iter()
        .filter(|id| {
            request.connection.as_ref().is_none_or(|c| {
                users[*id]["identities"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i["connection"] == c.as_str()))
            })
        })
        .filter(|id| {
            request.login_hint.as_ref().is_none_or(|hint| {
                id.as_str() == hint.as_str() || users[*id]["email"] == hint.as_str()
            })
        })
        .map(|id| {
            let name = users[id]["name"].as_str().unwrap_or(id);
            let note = users[id]["app_metadata"]["demo_note"]
                .as_str()
                .map(|note| format!(" · {}", escape(note)))
                .unwrap_or_default();
            format!(
                "<button name=\"demo_user\" value=\"{}\">{} <small>{}{note}</small></button>",
                escape(id),
                escape(name),
                escape(id)
            )
        })
        .collect();
    let heading = match &request.connection {
        Some(connection) => format!("Continue with {} (stand-in)", escape(connection)),
        None => "Sign in to the stand-in tenant".to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
button{{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem;text-align:left;cursor:pointer}}
small{{color:#666}}</style></head>
<body><h1>{heading}</h1><p>A local stand-in for Auth0's login page. Pick a demo user:</p>
<form method="post" action="/authorize">{hidden}{buttons}</form></body></html>"#
    )
}

/// The thumbprint of the key of a token request's DPoP proof: `Ok(None)` without a `DPoP`
/// header; `Err` (the `invalid_dpop_proof` description) for several headers, a proof that fails
/// RFC 9449 §4.3's checks for `POST {issuer}oauth/token`, or a `jti` used before.
pub(crate) fn token_proof(
    login: &Login,
    headers: &HeaderMap,
    issuer: &str,
) -> Result<Option<String>, String> {
    let Some(proof) = dpop::proof_header(headers)? else {
        return Ok(None);
    };
    let now = crate::now();
    let url = format!("{issuer}oauth/token");
    let expected = dpop::Expected {
        method: "POST",
        url: &url,
        access_token: None,
        now,
    };
    let verified = dpop::verify(proof, expected)?;
    if !login.dpop_replay.first_use(&verified, now) {
        return Err("the proof's jti was used before".to_owned());
    }
    Ok(Some(verified.jkt))
}

/// The answer for a token request whose proof is missing or by the wrong key, for a grant bound
/// to `bound`.
fn check_binding(
    bound: Option<&str>,
    jkt: Option<&str>,
) -> Result<(), (StatusCode, &'static str, String)> {
    match (bound, jkt) {
        (None, _) => Ok(()),
        (Some(bound), Some(jkt)) if bound == jkt => Ok(()),
        (Some(_), None) => Err((
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "This grant is bound to a DPoP key: a DPoP proof by that key is required".to_owned(),
        )),
        (Some(_), Some(_)) => Err((
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "The DPoP proof's key is not the one this grant is bound to".to_owned(),
        )),
    }
}

/// `POST /oauth/token` with `grant_type=authorization_code`; `jkt`: the thumbprint of the
/// request's DPoP proof key ([`token_proof`]), to bind the tokens to.
pub(crate) fn exchange_code(
    login: &Login,
    users: &HashMap<String, Value>,
    issuer: &str,
    form: &HashMap<String, String>,
    jkt: Option<&str>,
) -> Result<Value, (StatusCode, &'static str, String)> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let invalid_grant = |text: &str| Err((StatusCode::FORBIDDEN, "invalid_grant", text.to_owned()));
    // A code is spent by its first presentation, whatever the outcome (RFC 6749 §4.1.2).
    let Some(code) = lock(&login.codes).remove(field("code")) else {
        return invalid_grant("Invalid authorization code");
    };
    if code.expires < Instant::now() {
        return invalid_grant("Invalid authorization code");
    }
    if code.client_id != field("client_id") {
        return Err((
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The code was issued to another client".to_owned(),
        ));
    }
    if code.redirect_uri != field("redirect_uri") {
        return invalid_grant("redirect_uri does not match the authorization request");
    }
    let verifier = field("code_verifier");
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    if verifier.is_empty() || challenge != code.code_challenge {
        return invalid_grant("Failed to verify code verifier");
    }
    check_binding(code.dpop_jkt.as_deref(), jkt)?;
    let profile = users.get(&code.sub).cloned().unwrap_or(Value::Null);
    let mut tokens = issue_tokens(
        issuer,
        &code.client_id,
        &code.sub,
        code.audience.as_deref(),
        &code.scope,
        code.nonce.as_deref(),
        code.auth_time,
        &profile,
        jkt,
    );
    // `offline_access` asks for a refresh token (Auth0: when the API allows offline access).
    if code.scope.split_whitespace().any(|s| s == "offline_access") {
        let refresh_token = new_token("v1.rt-");
        lock(&login.refresh_tokens).insert(
            refresh_token.clone(),
            RefreshGrant {
                client_id: code.client_id.clone(),
                sub: code.sub.clone(),
                audience: code.audience.clone(),
                scope: code.scope.clone(),
                auth_time: code.auth_time,
                jkt: jkt.map(str::to_owned),
            },
        );
        tokens["refresh_token"] = Value::String(refresh_token);
    }
    Ok(tokens)
}

/// An access token for `audience` (opaque without one, as Auth0's for its `/userinfo`) and an
/// ID token for `client_id`, with the answer's other members; with `jkt`, the access token is
/// bound to that DPoP key (`cnf.jkt`) and its `token_type` is `DPoP`.
#[allow(clippy::too_many_arguments)]
fn issue_tokens(
    issuer: &str,
    client_id: &str,
    sub: &str,
    audience: Option<&str>,
    scope: &str,
    nonce: Option<&str>,
    auth_time: i64,
    profile: &Value,
    jkt: Option<&str>,
) -> Value {
    let now = crate::now();
    let mut id_token = TokenBuilder::new(issuer, client_id, sub)
        .claim("aud", client_id.to_owned())
        .without("scope")
        .without("azp")
        .claim("exp", now + TOKEN_LIFETIME_SECS)
        .claim("auth_time", auth_time)
        .claim("sid", new_token("sid-"));
    for claim in ["name", "nickname", "picture", "email"] {
        if let Some(value) = profile.get(claim) {
            id_token = id_token.claim(claim, value.clone());
        }
    }
    if let Some(nonce) = nonce {
        id_token = id_token.claim("nonce", nonce.to_owned());
    }
    let access_token = match audience {
        Some(audience) => {
            let token = TokenBuilder::new(issuer, audience, sub)
                .claim("azp", client_id.to_owned())
                .claim("scope", scope.to_owned())
                .claim("exp", now + TOKEN_LIFETIME_SECS);
            match jkt {
                Some(jkt) => token.bound_to(jkt),
                None => token,
            }
            .sign()
        }
        // Without an audience Auth0 issues an opaque token for its /userinfo.
        None => new_token("opaque-"),
    };
    json!({
        "access_token": access_token,
        "id_token": id_token.sign(),
        "scope": scope,
        "expires_in": TOKEN_LIFETIME_SECS,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
    })
}

/// `POST /oauth/token` with `grant_type=refresh_token`, as Auth0 answers a public client (SPA)
/// with Multi-Resource Refresh Token: without `audience` (or with the sign-in's), a new token
/// for the sign-in's audience with the scopes asked for among the sign-in's; with another
/// `audience` that one of the client's refresh token policies names, a token for it with the
/// scopes asked for among the policy's and the sign-in's OpenID ones (`openid profile email
/// offline_access`); with an audience no policy names, Auth0 ignores it and answers for the
/// sign-in's audience and scopes (what the SDK then reports as missing scopes). The refresh
/// token rotates (a new one in each answer); the old one stays usable, as within Auth0's reuse
/// interval (the stand-in detects no reuse). `jkt`: the thumbprint of the request's DPoP proof
/// key ([`token_proof`]), to bind the access token to; a refresh token bound to a key needs a
/// proof by that key, and the one that replaces it stays bound to it.
pub(crate) fn refresh(
    login: &Login,
    users: &HashMap<String, Value>,
    issuer: &str,
    form: &HashMap<String, String>,
    jkt: Option<&str>,
) -> Result<Value, (StatusCode, &'static str, String)> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let unknown = || {
        Err((
            StatusCode::FORBIDDEN,
            "invalid_grant",
            "Unknown or invalid refresh token.".to_owned(),
        ))
    };
    let Some(grant) =
        field("refresh_token").and_then(|t| lock(&login.refresh_tokens).get(t).cloned())
    else {
        return unknown();
    };
    if field("client_id") != Some(grant.client_id.as_str()) {
        return unknown();
    }
    check_binding(grant.jkt.as_deref(), jkt)?;
    let asked: Option<Vec<&str>> = field("scope").map(|s| s.split_whitespace().collect());
    let signed_in: Vec<&str> = grant.scope.split_whitespace().collect();
    let among = |allowed: &dyn Fn(&str) -> bool| -> String {
        match &asked {
            Some(asked) => asked
                .iter()
                .filter(|s| allowed(s))
                .copied()
                .collect::<Vec<_>>(),
            None => signed_in.iter().filter(|s| allowed(s)).copied().collect(),
        }
        .join(" ")
    };
    let policy = field("audience")
        .filter(|a| Some(*a) != grant.audience.as_deref())
        .and_then(|audience| {
            lock(&login.policies)
                .get(&grant.client_id)?
                .iter()
                .find(|(a, _)| a == audience)
                .cloned()
        });
    let (audience, scope) = match policy {
        Some((audience, allowed)) => {
            let scope = among(&|s| {
                allowed.iter().any(|a| a == s)
                    || (OIDC_SCOPES.contains(&s) && signed_in.contains(&s))
            });
            (Some(audience), scope)
        }
        None if field("audience").is_none() || field("audience") == grant.audience.as_deref() => {
            (grant.audience.clone(), among(&|s| signed_in.contains(&s)))
        }
        // An audience outside the policies: ignored, as Auth0 does.
        None => (grant.audience.clone(), grant.scope.clone()),
    };
    let profile = users.get(&grant.sub).cloned().unwrap_or(Value::Null);
    let mut tokens = issue_tokens(
        issuer,
        &grant.client_id,
        &grant.sub,
        audience.as_deref(),
        &scope,
        None,
        grant.auth_time,
        &profile,
        jkt,
    );
    if !scope.split_whitespace().any(|s| s == "openid")
        && let Some(map) = tokens.as_object_mut()
    {
        map.remove("id_token");
    }
    let rotated = new_token("v1.rt-");
    lock(&login.refresh_tokens).insert(rotated.clone(), grant);
    tokens["refresh_token"] = Value::String(rotated);
    Ok(tokens)
}

/// `GET /v2/logout`: ends the session, then returns to `returnTo` if it is an allowed logout
/// URL of `client_id`.
pub(crate) fn logout(
    login: &Login,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    if let Some(cookies) = headers.get(header::COOKIE).and_then(|c| c.to_str().ok()) {
        let mut sessions = lock(&login.sessions);
        for (name, value) in cookies.split(';').filter_map(|c| c.trim().split_once('=')) {
            if name == SESSION_COOKIE {
                sessions.remove(value);
            }
        }
    }
    let clear = (
        header::SET_COOKIE,
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    let Some(return_to) = params.get("returnTo") else {
        return ([clear], Html("<!doctype html><p>Signed out.</p>")).into_response();
    };
    let allowed = params
        .get("client_id")
        .and_then(|id| login.client(id))
        .is_some_and(|c| c.logout_urls.contains(return_to));
    if !allowed {
        return (
            StatusCode::BAD_REQUEST,
            [clear],
            Html(format!(
                "<!doctype html><p>{} is not in the list of Allowed Logout URLs.</p>",
                escape(return_to)
            )),
        )
            .into_response();
    }
    ([clear], Redirect::to(return_to)).into_response()
}

/// `GET /.well-known/openid-configuration`.
pub(crate) fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}authorize"),
        "token_endpoint": format!("{issuer}oauth/token"),
        "jwks_uri": format!("{issuer}.well-known/jwks.json"),
        "end_session_endpoint": format!("{issuer}v2/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "web_message"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["aud", "auth_time", "email", "exp", "iat", "iss", "name", "nickname", "nonce", "picture", "sid", "sub"],
        "dpop_signing_alg_values_supported": dpop::PROOF_ALGS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("https://a.example/cb?x=1"), "https://a.example");
    }
}
