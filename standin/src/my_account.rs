//! The stand-in tenant's My Account API, connected-accounts part, as Auth0 documents it
//! (`https://{host}/me/v1`, "Connected Accounts" reference pages), and the browser side of a
//! connection:
//!
//! - `POST /me/v1/connected-accounts/connect` (`create:me:connected_accounts`): body
//!   `{connection, redirect_uri, state?, scopes?, code_challenge?, code_challenge_method?,
//!   authorization_params?}` → `201 {connect_uri, auth_session, connect_params: {ticket},
//!   expires_in}`;
//! - `GET /connect?ticket=…` (the `connect_uri` with its ticket, in the browser): a 302 to the
//!   stand-in IdP's consent page ([`crate::consent`]) for the scopes asked for, which comes back
//!   to `GET /login/callback`, which redirects to `redirect_uri` with `connect_code` and `state`
//!   (or `error`, `error_description` and `state` if the user denied);
//! - `POST /me/v1/connected-accounts/complete` (`create:me:connected_accounts`): body
//!   `{auth_session, connect_code, redirect_uri, code_verifier?}` → `201` with the connected
//!   account `{id, connection, access_type, scopes, created_at}`; Token Vault now keeps a
//!   tokenset with the scopes granted before and those just granted (the union);
//! - `GET /me/v1/connected-accounts/accounts?connection=&take=&from=`
//!   (`read:me:connected_accounts`) → `{accounts: [...], next?}`;
//! - `DELETE /me/v1/connected-accounts/accounts/{id}` (`delete:me:connected_accounts`) → 204.
//!
//! Each takes an access token of this tenant for the audience `{issuer}me/` (signature,
//! issuer, expiry, audience; its `scope` claim checked): a bearer token as `Bearer`, a
//! DPoP-bound one (`cnf.jkt`, what the SDK gets with `useDpop: true`) as `DPoP` with a proof
//! by that key for the request (RFC 9449 §7: `htm`, `htu`, `ath`, a fresh `jti`; refused with
//! `WWW-Authenticate: DPoP error="invalid_dpop_proof"`). A bound token sent as `Bearer`, or an
//! unbound one as `DPoP`, is an invalid token. Refusals are RFC 7807 problem details,
//! the shape Auth0 documents for this API (`{type, status, title, detail, validation_errors?}`):
//! 401 for a missing or invalid token, 403 for a missing scope, 400 for a bad body, 404 for an
//! unknown account or session. CORS: preflights and answers for registered web origins.
//!
//! Not confirmed from Auth0's documentation, and kept as written: the `type` and `detail` texts
//! of the problem details (the docs give only the shape), the `WWW-Authenticate` challenges, the
//! `201` of `connect` (the SDK accepts any 2xx), the ticket's `expires_in` (300 s here), the
//! union of scopes on a second connection (the docs say nothing of a reconnect), and the
//! check of `redirect_uri` against the application's Allowed Callback URLs.

// A refusal is the request's one answer, built once: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::consent::{escape, with_query};
use crate::dpop;
use crate::lock;
use crate::opaque_token::new_token;
use crate::tenant_state::{Session, TenantState, issuer_of};

/// How long a connect ticket and its session live.
const SESSION_LIFETIME: Duration = Duration::from_secs(300);
/// The client id the tenant presents at the IdP's consent page.
const TENANT_CLIENT: &str = "auth0-token-vault";

type Shared = Arc<TenantState>;

/// The routes of the My Account API and of the browser side of a connection.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/me/v1/connected-accounts/connect",
            post(connect).options(preflight),
        )
        .route(
            "/me/v1/connected-accounts/complete",
            post(complete).options(preflight),
        )
        .route(
            "/me/v1/connected-accounts/accounts",
            get(list).options(preflight),
        )
        .route(
            "/me/v1/connected-accounts/accounts/{id}",
            delete(remove).options(preflight),
        )
        .route("/connect", get(ticket))
        .route("/login/callback", get(callback))
}

/// A problem details answer (RFC 7807), as the My Account API shapes its errors.
fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        axum::Json(
            json!({"type": kind, "status": status.as_u16(), "title": title, "detail": detail}),
        ),
    )
        .into_response()
}

/// A 400 naming the field at fault in `validation_errors`.
fn invalid(field: &str, detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/problem+json")],
        axum::Json(json!({
            "type": "invalid_request",
            "status": 400,
            "title": "Bad Request",
            "detail": detail,
            "validation_errors": [{"detail": detail, "field": field, "pointer": format!("/{field}"), "source": "body"}],
        })),
    )
        .into_response()
}

/// The CORS headers for the request's origin, if it is an allowed web origin of a registered
/// application.
fn cors(state: &TenantState, headers: &HeaderMap) -> Vec<(header::HeaderName, HeaderValue)> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Vec::new();
    };
    if !origin
        .to_str()
        .is_ok_and(|o| state.login.web_origin_allowed(o))
    {
        return Vec::new();
    }
    vec![
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, auth0-client, dpop"),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        ),
        (
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        ),
        (header::VARY, HeaderValue::from_static("Origin")),
    ]
}

fn with_cors(state: &TenantState, headers: &HeaderMap, mut response: Response) -> Response {
    response.headers_mut().extend(cors(state, headers));
    response
}

async fn preflight(State(state): State<Shared>, headers: HeaderMap) -> Response {
    crate::preflight_answer(cors(&state, &headers))
}

/// A 401 for the token itself, with the challenge of the scheme it came with.
fn invalid_token(dpop_scheme: bool, detail: &str) -> Response {
    let mut response = problem(StatusCode::UNAUTHORIZED, "unauthorized", detail);
    let challenge = if dpop_scheme {
        "DPoP error=\"invalid_token\""
    } else {
        "Bearer error=\"invalid_token\""
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// A 401 for the request's DPoP proof (RFC 9449 §7.1).
fn invalid_proof(detail: &str) -> Response {
    let mut response = problem(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", detail);
    if let Ok(challenge) = HeaderValue::from_str(&format!(
        "DPoP error=\"invalid_dpop_proof\", algs=\"{}\"",
        dpop::PROOF_ALGS.join(" ")
    )) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// Checks the request's DPoP proof for `token`, bound to `jkt`: one `DPoP` header, a proof by
/// that key for `method` and the URL called, with the token's `ath`, not seen before.
fn check_proof(
    state: &TenantState,
    headers: &HeaderMap,
    (method, uri): (&str, &Uri),
    token: &str,
    jkt: &str,
) -> Result<(), Response> {
    let proof = dpop::proof_header(headers)
        .map_err(|e| invalid_proof(&e))?
        .ok_or_else(|| invalid_proof("A DPoP proof is required with a DPoP-bound token"))?;
    let now = crate::now();
    let url = format!("{}{}", issuer_of(headers).trim_end_matches('/'), uri.path());
    let expected = dpop::Expected {
        method,
        url: &url,
        access_token: Some(token),
        now,
    };
    let verified = dpop::verify(proof, expected).map_err(|e| invalid_proof(&e))?;
    if verified.jkt != jkt {
        return Err(invalid_proof(
            "The DPoP proof's key is not the one the token is bound to",
        ));
    }
    if !state.login.dpop_replay.first_use(&verified, now) {
        return Err(invalid_proof("The DPoP proof's jti was used before"));
    }
    Ok(())
}

/// The caller: `(sub, azp)` of a valid token for `{issuer}me/` holding `scope`, sent with the
/// scheme its binding asks for (and for a DPoP-bound one, its proof for `request`: the method
/// and the URI called).
fn caller(
    state: &TenantState,
    headers: &HeaderMap,
    request: (&str, &Uri),
    scope: &str,
) -> Result<(String, String), Response> {
    let issuer = issuer_of(headers);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (dpop_scheme, token) = match authorization.strip_prefix("DPoP ") {
        Some(token) => (true, token),
        None => (
            false,
            authorization.strip_prefix("Bearer ").unwrap_or_default(),
        ),
    };
    let published = lock(&state.published).clone();
    let Some(claims) =
        crate::vault::verify_claims(&published, &issuer, token, &format!("{issuer}me/"))
    else {
        return Err(invalid_token(dpop_scheme, "Invalid token"));
    };
    let bound = claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str);
    match (bound, dpop_scheme) {
        (Some(jkt), true) => check_proof(state, headers, request, token, jkt)?,
        (Some(_), false) => {
            return Err(invalid_token(
                false,
                "A DPoP-bound token must be sent with the DPoP scheme",
            ));
        }
        (None, true) => return Err(invalid_token(true, "The token is not DPoP-bound")),
        (None, false) => {}
    }
    let holds = claims
        .get("scope")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split_whitespace().any(|s| s == scope));
    if !holds {
        let mut response = problem(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            &format!("Insufficient scope, expected: {scope}"),
        );
        if let Ok(challenge) = HeaderValue::from_str(&format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
        )) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        return Err(response);
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok((text("sub"), text("azp")))
}

/// A JSON object body, or the 400 for one that is not.
fn object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("body", "The body must be a JSON object")),
    }
}

fn text(body: &Map<String, Value>, field: &str) -> Option<String> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A connected account as the My Account API shows it (the Management API's shape without
/// `connection_id` and `strategy`).
fn mine(account: &Value) -> Value {
    let mut account = account.clone();
    if let Some(map) = account.as_object_mut() {
        map.remove("connection_id");
        map.remove("strategy");
    }
    account
}

async fn connect(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = start(&state, &headers, &uri, &body);
    with_cors(&state, &headers, answer.unwrap_or_else(|refusal| refusal))
}

fn start(
    state: &TenantState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Response, Response> {
    let (sub, azp) = caller(
        state,
        headers,
        ("POST", uri),
        "create:me:connected_accounts",
    )?;
    let body = object(body)?;
    let connection =
        text(&body, "connection").ok_or_else(|| invalid("connection", "connection is required"))?;
    let redirect_uri = text(&body, "redirect_uri")
        .ok_or_else(|| invalid("redirect_uri", "redirect_uri is required"))?;
    if !state.vault.enabled(&connection) {
        return Err(invalid(
            "connection",
            &format!("The connection {connection} is not enabled for Connected Accounts"),
        ));
    }
    if let Some(client) = state.login.registered(&azp)
        && !client.callback_urls.contains(&redirect_uri)
    {
        return Err(invalid(
            "redirect_uri",
            "redirect_uri is not in the application's Allowed Callback URLs",
        ));
    }
    let code_challenge = text(&body, "code_challenge");
    if code_challenge.is_some() && text(&body, "code_challenge_method").as_deref() != Some("S256") {
        return Err(invalid(
            "code_challenge_method",
            "code_challenge_method must be S256",
        ));
    }
    let scopes: Vec<String> = match body.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(invalid("scopes", "scopes must be an array of strings")),
    };
    let auth_session = new_token("as_");
    let ticket = new_token("tkt_");
    lock(&state.my_account.sessions).insert(
        auth_session.clone(),
        Session {
            sub,
            connection,
            redirect_uri,
            state: text(&body, "state"),
            code_challenge,
            scopes,
            ticket: ticket.clone(),
            idp_state: new_token("idps_"),
            connect_code: None,
            granted: Vec::new(),
            expires: Instant::now() + SESSION_LIFETIME,
        },
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "connect_uri": format!("{}connect", issuer_of(headers)),
            "auth_session": auth_session,
            "connect_params": {"ticket": ticket},
            "expires_in": SESSION_LIFETIME.as_secs(),
        })),
    )
        .into_response())
}

fn page(status: StatusCode, text: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><title>Connect account</title><h1>Connect account</h1><p>{}</p>",
            escape(text)
        )),
    )
        .into_response()
}

/// `GET /connect?ticket=…`: on to the IdP's consent page for the session's scopes.
async fn ticket(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let ticket = params.get("ticket").map(String::as_str).unwrap_or_default();
    let session = lock(&state.my_account.sessions)
        .values()
        .find(|s| s.ticket == ticket && s.expires > Instant::now() && s.connect_code.is_none())
        .cloned();
    let Some(session) = session else {
        return page(StatusCode::BAD_REQUEST, "Invalid or expired ticket.");
    };
    let Some(idp) = state.vault.idp(&session.connection) else {
        return page(StatusCode::BAD_REQUEST, "The connection is not enabled.");
    };
    let callback = format!("{}login/callback", issuer_of(&headers));
    Redirect::to(&with_query(
        &idp.authorize_url(),
        &[
            ("response_type", "code".to_owned()),
            ("client_id", TENANT_CLIENT.to_owned()),
            ("redirect_uri", callback),
            ("scope", session.scopes.join(" ")),
            ("state", session.idp_state),
        ],
    ))
    .into_response()
}

/// `GET /login/callback`: the IdP's answer; back to the application with a `connect_code`.
async fn callback(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let mut sessions = lock(&state.my_account.sessions);
    let Some(session) = sessions
        .values_mut()
        .find(|s| s.idp_state == get("state") && s.expires > Instant::now())
    else {
        return page(StatusCode::BAD_REQUEST, "Unknown or expired connection.");
    };
    let back_state: Vec<(&str, String)> =
        session.state.iter().map(|s| ("state", s.clone())).collect();
    if !get("error").is_empty() {
        let mut fields = vec![
            ("error", get("error").to_owned()),
            ("error_description", get("error_description").to_owned()),
        ];
        fields.extend(back_state);
        return Redirect::to(&with_query(&session.redirect_uri, &fields)).into_response();
    }
    let callback = format!("{}login/callback", issuer_of(&headers));
    let granted = state
        .vault
        .idp(&session.connection)
        .and_then(|idp| idp.redeem_consent(get("code"), &callback));
    let Some(granted) = granted else {
        let mut fields = vec![
            ("error", "access_denied".to_owned()),
            (
                "error_description",
                "The identity provider refused the code".to_owned(),
            ),
        ];
        fields.extend(back_state);
        return Redirect::to(&with_query(&session.redirect_uri, &fields)).into_response();
    };
    let connect_code = new_token("cc_");
    session.connect_code = Some(connect_code.clone());
    session.granted = granted;
    let mut fields = vec![("connect_code", connect_code)];
    fields.extend(back_state);
    Redirect::to(&with_query(&session.redirect_uri, &fields)).into_response()
}

async fn complete(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = finish(&state, &headers, &uri, &body);
    with_cors(&state, &headers, answer.unwrap_or_else(|refusal| refusal))
}

fn finish(
    state: &TenantState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Response, Response> {
    let (sub, _) = caller(
        state,
        headers,
        ("POST", uri),
        "create:me:connected_accounts",
    )?;
    let body = object(body)?;
    let auth_session = text(&body, "auth_session")
        .ok_or_else(|| invalid("auth_session", "auth_session is required"))?;
    let connect_code = text(&body, "connect_code")
        .ok_or_else(|| invalid("connect_code", "connect_code is required"))?;
    let redirect_uri = text(&body, "redirect_uri")
        .ok_or_else(|| invalid("redirect_uri", "redirect_uri is required"))?;
    // The session is spent by its first completion, whatever the outcome, as a code is.
    let session = lock(&state.my_account.sessions)
        .remove(&auth_session)
        .filter(|s| s.sub == sub && s.expires > Instant::now())
        .ok_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "The connected account request was not found or has expired",
            )
        })?;
    if session.connect_code.as_deref() != Some(connect_code.as_str()) {
        return Err(invalid("connect_code", "Invalid connect_code"));
    }
    if session.redirect_uri != redirect_uri {
        return Err(invalid(
            "redirect_uri",
            "redirect_uri does not match the connect request",
        ));
    }
    if let Some(challenge) = &session.code_challenge {
        let verifier = text(&body, "code_verifier").unwrap_or_default();
        let computed =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
        if verifier.is_empty() || computed != *challenge {
            return Err(invalid("code_verifier", "Failed to verify code_verifier"));
        }
    }
    let profile = lock(&state.my_account.profiles)
        .get(&(sub.clone(), session.connection.clone()))
        .cloned()
        .or_else(|| state.vault.profile(&sub, &session.connection))
        .unwrap_or_else(|| identity_profile(state, &sub, &session.connection));
    // What was granted before stays granted: the IdP's incremental consent adds to it.
    let mut scopes = state
        .vault
        .scopes(&sub, &session.connection)
        .unwrap_or_default();
    for scope in session.granted {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    state
        .vault
        .connect(&sub, &session.connection, profile, &scopes);
    let account = state
        .vault
        .connected_accounts(&sub)
        .into_iter()
        .find(|a| a["connection"] == session.connection.as_str())
        .map(|a| mine(&a))
        .unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, axum::Json(account)).into_response())
}

/// The user's account at the IdP, made of their identity at `connection` (or of the Auth0
/// profile where there is none).
fn identity_profile(state: &TenantState, sub: &str, connection: &str) -> Value {
    let users = lock(&state.users);
    let user = users.get(sub).cloned().unwrap_or(Value::Null);
    let idp_user_id = user["identities"]
        .as_array()
        .and_then(|ids| ids.iter().find(|i| i["connection"] == connection))
        .and_then(|i| i["user_id"].as_str())
        .unwrap_or(sub)
        .to_owned();
    json!({
        "id": idp_user_id,
        "sub": idp_user_id,
        "login": idp_user_id,
        "email": user["email"],
        "name": user["name"],
    })
}

async fn list(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let answer = (|| {
        let (sub, _) = caller(
            &state,
            &headers,
            ("GET", &uri),
            "read:me:connected_accounts",
        )?;
        let take = match params.get("take").map(|t| t.parse::<usize>()) {
            None => 10,
            Some(Ok(take)) if (1..=20).contains(&take) => take,
            Some(_) => return Err(invalid("take", "take must be between 1 and 20")),
        };
        let from = params
            .get("from")
            .and_then(|f| f.parse::<usize>().ok())
            .unwrap_or(0);
        let all: Vec<Value> = state
            .vault
            .connected_accounts(&sub)
            .iter()
            .filter(|a| {
                params
                    .get("connection")
                    .is_none_or(|c| a["connection"] == c.as_str())
            })
            .map(mine)
            .collect();
        let page: Vec<Value> = all.iter().skip(from).take(take).cloned().collect();
        let mut body = json!({"accounts": page});
        // An opaque cursor in Auth0; here the index of the next account.
        if from + take < all.len() {
            body["next"] = json!((from + take).to_string());
        }
        Ok(axum::Json(body).into_response())
    })();
    with_cors(&state, &headers, answer.unwrap_or_else(|refusal| refusal))
}

async fn remove(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let answer = (|| {
        let (sub, _) = caller(
            &state,
            &headers,
            ("DELETE", &uri),
            "delete:me:connected_accounts",
        )?;
        if !id.starts_with("cac_") || !id[4..].chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("id", "id must match ^cac_[A-Za-z0-9]+$"));
        }
        let connection = state.vault.account_connection(&sub, &id).ok_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "The connected account does not exist",
            )
        })?;
        state.vault.disconnect(&sub, &connection);
        Ok(StatusCode::NO_CONTENT.into_response())
    })();
    with_cors(&state, &headers, answer.unwrap_or_else(|refusal| refusal))
}
