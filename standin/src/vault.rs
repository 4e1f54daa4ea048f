//! The stand-in tenant's Token Vault: the access token exchange at `/oauth/token` as Auth0
//! documents it, with the tokensets it keeps per (user, connection).
//!
//! The exchange takes form or JSON bodies; it checks the client (a Custom API Client linked to an
//! API, or the M2M client where allowed), the grant and token-type URNs, the connection, and the
//! subject token: an access token of this tenant (signature with a published key, issuer, expiry)
//! for the API the client is linked to. It answers the tokenset's access token and its remaining
//! life, renewing it first at the stand-in IdP when it has expired, as Auth0 does with the IdP's
//! refresh token. [`Fault`]s make it fail, throttle or refuse; counters tell what it served.
//!
//! Every other grant goes on to the tenant's own token endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use crate::idp::Idp;
use crate::lock;
use crate::tenant::{
    Fault, Injected, M2M_CLIENT_ID, Tenant, TenantState, new_token, oauth_error, play, take_fault,
};

/// The grant of Token Vault's exchanges.
const GRANT_TYPE: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// The only subject token type of the access token exchange.
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The token asked for: the connection's IdP access token.
const REQUESTED_TOKEN_TYPE: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// A client allowed to exchange, and the API (identifier) it is linked to.
#[derive(Debug)]
struct VaultClient {
    /// `None`: the M2M client, with the tenant's current M2M secret.
    secret: Option<String>,
    api: String,
}

/// A connection with Token Vault enabled: the stand-in IdP whose tokens it keeps.
#[derive(Debug)]
struct VaultConnection {
    idp: Idp,
    lifetime: Duration,
}

/// What Token Vault keeps for one (user, connection).
#[derive(Debug)]
struct Tokenset {
    access_token: String,
    expires_at: Instant,
    profile: Value,
}

/// The Token Vault part of the tenant's state.
#[derive(Debug, Default)]
pub(crate) struct VaultState {
    exchanges: AtomicUsize,
    clients: Mutex<HashMap<String, VaultClient>>,
    connections: Mutex<HashMap<String, VaultConnection>>,
    tokensets: Mutex<HashMap<(String, String), Tokenset>>,
    fault: Mutex<Option<Injected>>,
    subject_tokens: Mutex<Vec<String>>,
    issued: Mutex<Vec<String>>,
}

impl VaultState {
    /// Ends the injected faults.
    pub(crate) fn heal(&self) {
        *lock(&self.fault) = None;
    }
}

impl Tenant {
    /// Enables Token Vault for `connection`, whose tokens the stand-in `idp` issues and accepts;
    /// each lives `lifetime`.
    pub fn enable_token_vault(&self, connection: &str, idp: &Idp, lifetime: Duration) {
        lock(&self.state.vault.connections).insert(
            connection.to_owned(),
            VaultConnection {
                idp: idp.clone(),
                lifetime,
            },
        );
    }

    /// Lets `client_id` perform the access token exchange for callers' tokens of `api`: a
    /// Custom API Client linked to that API. `client_secret` `None` stands for the M2M client
    /// [`M2M_CLIENT_ID`] with its current secret.
    pub fn add_token_vault_client(&self, client_id: &str, client_secret: Option<&str>, api: &str) {
        lock(&self.state.vault.clients).insert(
            client_id.to_owned(),
            VaultClient {
                secret: client_secret.map(str::to_owned),
                api: api.to_owned(),
            },
        );
    }

    /// The user connects their account at `connection` (Token Vault enabled): Auth0 now keeps a
    /// tokenset, whose access token the IdP accepts for the user whose profile is `profile`.
    /// Returns that access token.
    pub fn connect_account(&self, user_id: &str, connection: &str, profile: Value) -> String {
        let key = (user_id.to_owned(), connection.to_owned());
        let tokenset = self.issue_vault_token(connection, profile);
        let token = tokenset.access_token.clone();
        lock(&self.state.vault.tokensets).insert(key, tokenset);
        token
    }

    /// The user disconnects the account: Auth0 keeps no tokenset for it any more.
    pub fn disconnect_account(&self, user_id: &str, connection: &str) {
        lock(&self.state.vault.tokensets).remove(&(user_id.to_owned(), connection.to_owned()));
    }

    /// Auth0 renews the user's token at `connection` now (with the IdP's refresh token); the
    /// old one stays valid at the IdP until it expires. Returns the new token.
    pub fn renew_vault_token(&self, user_id: &str, connection: &str) -> Option<String> {
        let key = (user_id.to_owned(), connection.to_owned());
        let profile = lock(&self.state.vault.tokensets).get(&key)?.profile.clone();
        let tokenset = self.issue_vault_token(connection, profile);
        let token = tokenset.access_token.clone();
        lock(&self.state.vault.tokensets).insert(key, tokenset);
        Some(token)
    }

    fn issue_vault_token(&self, connection: &str, profile: Value) -> Tokenset {
        issue(&self.state.vault, connection, profile)
    }

    /// How many Token Vault exchanges the token endpoint served (of any outcome).
    pub fn vault_exchanges(&self) -> usize {
        self.state.vault.exchanges.load(Ordering::SeqCst)
    }

    /// The subject tokens presented to the exchange, in order.
    pub fn vault_subject_tokens(&self) -> Vec<String> {
        lock(&self.state.vault.subject_tokens).clone()
    }

    /// Every IdP access token Token Vault handed out or renewed (to prove none is logged).
    pub fn vault_tokens_issued(&self) -> Vec<String> {
        lock(&self.state.vault.issued).clone()
    }

    /// Makes the next `times` exchanges misbehave as `fault` (`usize::MAX`: until
    /// [`Tenant::heal`]); [`Fault::Refuse`] plays Auth0 refusing them.
    pub fn fail_token_vault(&self, fault: Fault, times: usize) {
        *lock(&self.state.vault.fault) = (times > 0).then_some(Injected {
            fault,
            remaining: times,
        });
    }
}

/// A new tokenset for `connection`, its token accepted by the connection's IdP. A connection
/// without Token Vault gets a token no IdP accepts.
fn issue(vault: &VaultState, connection: &str, profile: Value) -> Tokenset {
    let access_token = new_token("vault-");
    let lifetime = match lock(&vault.connections).get(connection) {
        Some(enabled) => {
            enabled
                .idp
                .grant_for(&access_token, profile.clone(), enabled.lifetime);
            enabled.lifetime
        }
        None => Duration::ZERO,
    };
    lock(&vault.issued).push(access_token.clone());
    Tokenset {
        access_token,
        expires_at: Instant::now() + lifetime,
        profile,
    }
}

/// `POST /oauth/token`: the Token Vault exchange, or the tenant's other grants.
pub(crate) async fn token_endpoint(
    State(state): State<Arc<TenantState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(params) = params(&headers, &body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    if params.get("grant_type").map(String::as_str) == Some(GRANT_TYPE) {
        return exchange(&state, &headers, &params).await;
    }
    crate::tenant::token(State(state), headers, body).await
}

/// The body's parameters: a JSON object, else a form.
fn params(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        let map: Map<String, Value> = serde_json::from_slice(body).ok()?;
        Some(
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(text) => (k, text),
                    other => (k, other.to_string()),
                })
                .collect(),
        )
    } else {
        serde_urlencoded::from_bytes(body).ok()
    }
}

async fn exchange(
    state: &TenantState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    let vault = &state.vault;
    state.token_calls.fetch_add(1, Ordering::SeqCst);
    vault.exchanges.fetch_add(1, Ordering::SeqCst);
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    lock(&vault.subject_tokens).push(param("subject_token").to_owned());
    if let Some(fault) = take_fault(&state.token_fault).or_else(|| take_fault(&vault.fault)) {
        return play(fault).await;
    }

    // The client: its secret, then whether it may use Token Vault, and for which API.
    let m2m_secret = lock(&state.client_secret).clone();
    let api = {
        let clients = lock(&vault.clients);
        let client = clients.get(param("client_id"));
        let expected = match client {
            Some(client) => client.secret.clone().unwrap_or_else(|| m2m_secret.clone()),
            None if param("client_id") == M2M_CLIENT_ID => m2m_secret,
            None => String::new(),
        };
        if expected.is_empty() || param("client_secret") != expected {
            return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
        }
        match client {
            Some(client) => client.api.clone(),
            None => {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "unauthorized_client",
                    "Grant type not allowed for the client.",
                );
            }
        }
    };
    if param("subject_token_type") != SUBJECT_TOKEN_TYPE {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unsupported subject_token_type",
        );
    }
    if param("requested_token_type") != REQUESTED_TOKEN_TYPE {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unsupported requested_token_type",
        );
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let Some(sub) = verify_subject(state, host, param("subject_token"), &api) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid subject_token",
        );
    };
    let connection = param("connection");
    if !lock(&vault.connections).contains_key(connection) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Token Vault is not enabled for this connection",
        );
    }

    let key = (sub, connection.to_owned());
    let mut tokensets = lock(&vault.tokensets);
    let Some(tokenset) = tokensets.get_mut(&key) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "federated_connection_refresh_token_not_found",
            "Federated connection Refresh Token not found.",
        );
    };
    if tokenset.expires_at <= Instant::now() {
        *tokenset = issue(vault, connection, tokenset.profile.clone());
    }
    // Whole seconds, rounded to the nearest: a token just issued says its full lifetime.
    let expires_in = (tokenset
        .expires_at
        .saturating_duration_since(Instant::now())
        .as_millis()
        + 500)
        / 1000;
    axum::Json(json!({
        "access_token": tokenset.access_token,
        "expires_in": expires_in,
        "scope": "openid profile",
        "issued_token_type": REQUESTED_TOKEN_TYPE,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The `sub` of `token` if it is an access token of this tenant (a published key's signature,
/// its issuer, not expired) for `api`.
fn verify_subject(state: &TenantState, host: &str, token: &str, api: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = lock(&state.published)
        .iter()
        .find(|k| Some(k.kid()) == header.kid.as_deref())
        .copied()?;
    let key = DecodingKey::from_rsa_pem(key.public_pem().as_bytes()).ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[format!("http://{host}/")]);
    validation.set_audience(&[api]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).ok()?;
    data.claims["sub"].as_str().map(str::to_owned)
}
