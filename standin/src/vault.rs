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
//! The tenant's token endpoint reads the request and hands the exchange here with the few facts
//! of the tenant it needs ([`TenantFacts`]); the `Tenant` methods that configure Token Vault call
//! [`VaultState`]'s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use crate::fault::{Fault, Injected, play, take_fault};
use crate::idp::Idp;
use crate::keys::TestKey;
use crate::lock;
use crate::m2m_client::M2M_CLIENT_ID;
use crate::oauth_error::oauth_error;
use crate::opaque_token::new_token;

/// The grant of Token Vault's exchanges.
pub(crate) const GRANT_TYPE: &str =
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

/// The scopes of a tokenset connected by [`VaultState::connect`] without scopes: what the
/// exchange answered before scopes were tracked, so existing tests see the same answer.
pub(crate) const DEFAULT_SCOPES: [&str; 2] = ["openid", "profile"];

/// A connection with Token Vault enabled: the stand-in IdP whose tokens it keeps.
#[derive(Debug)]
pub(crate) struct VaultConnection {
    pub(crate) idp: Idp,
    lifetime: Duration,
    /// Its Auth0 id (`con_…`), as the Management API's connected accounts name it.
    pub(crate) id: String,
}

/// What Token Vault keeps for one (user, connection): the tokenset and the connected account
/// it stands for.
#[derive(Debug)]
struct Tokenset {
    access_token: String,
    expires_at: Instant,
    profile: Value,
    /// The IdP scopes granted, in the order first granted.
    scopes: Vec<String>,
    /// The connected account's id (`cac_…`) and creation time (ISO 8601), kept across renewals
    /// and added scopes.
    account_id: String,
    created_at: String,
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
    /// Enables Token Vault for `connection`, whose tokens the stand-in `idp` issues and accepts;
    /// each lives `lifetime`.
    pub(crate) fn enable(&self, connection: &str, idp: &Idp, lifetime: Duration) {
        lock(&self.connections).insert(
            connection.to_owned(),
            VaultConnection {
                idp: idp.clone(),
                lifetime,
                id: format!("con_{:0>16}", new_token("")),
            },
        );
    }

    /// Lets `client_id` exchange callers' tokens of `api`; `secret` `None`: the M2M client's.
    pub(crate) fn add_client(&self, client_id: &str, secret: Option<&str>, api: &str) {
        lock(&self.clients).insert(
            client_id.to_owned(),
            VaultClient {
                secret: secret.map(str::to_owned),
                api: api.to_owned(),
            },
        );
    }

    /// Keeps a new tokenset for (user, connection) granting `scopes`, its token accepted by the
    /// IdP for the user whose profile is `profile`; returns that token. A tokenset there before
    /// is replaced, its account (id, creation time) kept.
    pub(crate) fn connect(
        &self,
        user_id: &str,
        connection: &str,
        profile: Value,
        scopes: &[String],
    ) -> String {
        let key = (user_id.to_owned(), connection.to_owned());
        let mut tokenset = issue(self, connection, profile, scopes.to_vec());
        if let Some(before) = lock(&self.tokensets).get(&key) {
            tokenset.account_id.clone_from(&before.account_id);
            tokenset.created_at.clone_from(&before.created_at);
        }
        let token = tokenset.access_token.clone();
        lock(&self.tokensets).insert(key, tokenset);
        token
    }

    /// Adds `scopes` to the tokenset of (user, connection), as a completed incremental consent
    /// does: a new token carrying all of them replaces the stored one (the old one stays valid
    /// at the IdP until it expires). Returns the new token; `None` if nothing is connected.
    pub(crate) fn grant(
        &self,
        user_id: &str,
        connection: &str,
        scopes: &[String],
    ) -> Option<String> {
        let (profile, mut merged) = {
            let tokensets = lock(&self.tokensets);
            let tokenset = tokensets.get(&(user_id.to_owned(), connection.to_owned()))?;
            (tokenset.profile.clone(), tokenset.scopes.clone())
        };
        for scope in scopes {
            if !merged.contains(scope) {
                merged.push(scope.clone());
            }
        }
        Some(self.connect(user_id, connection, profile, &merged))
    }

    /// The scopes granted to (user, connection), `None` if nothing is connected.
    pub(crate) fn scopes(&self, user_id: &str, connection: &str) -> Option<Vec<String>> {
        lock(&self.tokensets)
            .get(&(user_id.to_owned(), connection.to_owned()))
            .map(|t| t.scopes.clone())
    }

    /// The IdP profile of (user, connection)'s tokenset, if one is kept.
    pub(crate) fn profile(&self, user_id: &str, connection: &str) -> Option<Value> {
        lock(&self.tokensets)
            .get(&(user_id.to_owned(), connection.to_owned()))
            .map(|t| t.profile.clone())
    }

    /// Whether Token Vault is enabled for `connection`.
    pub(crate) fn enabled(&self, connection: &str) -> bool {
        lock(&self.connections).contains_key(connection)
    }

    /// The stand-in IdP of `connection`, if Token Vault is enabled for it.
    pub(crate) fn idp(&self, connection: &str) -> Option<Idp> {
        lock(&self.connections)
            .get(connection)
            .map(|c| c.idp.clone())
    }

    /// The user's connected accounts as the Management API's `ConnectedAccount`: `id`,
    /// `connection`, `connection_id`, `strategy`, `access_type`, `scopes`, `created_at`; by
    /// connection name, so the order is stable.
    pub(crate) fn connected_accounts(&self, user_id: &str) -> Vec<Value> {
        let connections = lock(&self.connections);
        let tokensets = lock(&self.tokensets);
        let mut accounts: Vec<(&String, &Tokenset)> = tokensets
            .iter()
            .filter(|((user, _), _)| user == user_id)
            .map(|((_, connection), tokenset)| (connection, tokenset))
            .collect();
        accounts.sort_by(|a, b| a.0.cmp(b.0));
        accounts
            .into_iter()
            .map(|(connection, tokenset)| {
                let enabled = connections.get(connection);
                json!({
                    "id": tokenset.account_id,
                    "connection": connection,
                    "connection_id": enabled.map(|c| c.id.clone()).unwrap_or_default(),
                    "strategy": enabled.map(|c| c.idp.strategy()).unwrap_or("oauth2"),
                    "access_type": "offline",
                    "scopes": tokenset.scopes,
                    "created_at": tokenset.created_at,
                })
            })
            .collect()
    }

    /// The connection of the user's connected account `account_id`, if it is theirs.
    pub(crate) fn account_connection(&self, user_id: &str, account_id: &str) -> Option<String> {
        lock(&self.tokensets)
            .iter()
            .find(|((user, _), t)| user == user_id && t.account_id == account_id)
            .map(|((_, connection), _)| connection.clone())
    }

    /// Forgets the tokenset of (user, connection).
    pub(crate) fn disconnect(&self, user_id: &str, connection: &str) {
        lock(&self.tokensets).remove(&(user_id.to_owned(), connection.to_owned()));
    }

    /// Replaces the tokenset of (user, connection) with a new one for the same profile and
    /// scopes; returns its token, `None` if there was none.
    pub(crate) fn renew(&self, user_id: &str, connection: &str) -> Option<String> {
        let (profile, scopes) = {
            let tokensets = lock(&self.tokensets);
            let tokenset = tokensets.get(&(user_id.to_owned(), connection.to_owned()))?;
            (tokenset.profile.clone(), tokenset.scopes.clone())
        };
        Some(self.connect(user_id, connection, profile, &scopes))
    }

    /// How many exchanges were served (of any outcome).
    pub(crate) fn exchanges(&self) -> usize {
        self.exchanges.load(Ordering::SeqCst)
    }

    /// The subject tokens presented to the exchange, in order.
    pub(crate) fn subject_tokens(&self) -> Vec<String> {
        lock(&self.subject_tokens).clone()
    }

    /// Every IdP access token handed out or renewed.
    pub(crate) fn issued(&self) -> Vec<String> {
        lock(&self.issued).clone()
    }

    /// Makes the next `times` exchanges misbehave as `fault`.
    pub(crate) fn fail(&self, fault: Fault, times: usize) {
        *lock(&self.fault) = Injected::new(fault, times);
    }

    /// Ends the injected faults.
    pub(crate) fn heal(&self) {
        *lock(&self.fault) = None;
    }
}

/// What the exchange needs to know of the tenant it runs in.
#[derive(Debug)]
pub(crate) struct TenantFacts {
    /// The fault the tenant's token endpoint plays for this request, if any: it comes before
    /// Token Vault's own.
    pub(crate) fault: Option<Fault>,
    /// The M2M client's current secret.
    pub(crate) m2m_secret: String,
    /// The tenant's published signing keys: a subject token must be signed with one.
    pub(crate) published: Vec<TestKey>,
    /// The tenant's issuer (`http://{Host}/`): a subject token must name it.
    pub(crate) issuer: String,
}

/// A new tokenset for `connection` granting `scopes`, its token accepted by the connection's
/// IdP (which knows its scopes). A connection without Token Vault gets a token no IdP accepts.
fn issue(vault: &VaultState, connection: &str, profile: Value, scopes: Vec<String>) -> Tokenset {
    let access_token = new_token("vault-");
    let lifetime = match lock(&vault.connections).get(connection) {
        Some(enabled) => {
            enabled
                .idp
                .grant_scoped(&access_token, profile.clone(), enabled.lifetime, &scopes);
            enabled.lifetime
        }
        None => Duration::ZERO,
    };
    lock(&vault.issued).push(access_token.clone());
    Tokenset {
        access_token,
        expires_at: Instant::now() + lifetime,
        profile,
        scopes,
        account_id: new_token("cac_"),
        created_at: crate::scopes::iso_now(),
    }
}

/// `POST /oauth/token` with [`GRANT_TYPE`]: the access token exchange, its request's `params`
/// read by the tenant.
pub(crate) async fn exchange(
    vault: &VaultState,
    tenant: TenantFacts,
    params: &HashMap<String, String>,
) -> Response {
    vault.exchanges.fetch_add(1, Ordering::SeqCst);
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    lock(&vault.subject_tokens).push(param("subject_token").to_owned());
    if let Some(fault) = tenant.fault.or_else(|| take_fault(&vault.fault)) {
        return play(fault).await;
    }

    // The client: its secret, then whether it may use Token Vault, and for which API.
    let m2m_secret = tenant.m2m_secret;
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
    let subject = param("subject_token");
    let Some(sub) = verify_subject(&tenant.published, &tenant.issuer, subject, &api) else {
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
        let renewed = issue(
            vault,
            connection,
            tokenset.profile.clone(),
            tokenset.scopes.clone(),
        );
        // The same connected account, with a fresh token.
        tokenset.access_token = renewed.access_token;
        tokenset.expires_at = renewed.expires_at;
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
        "scope": tokenset.scopes.join(" "),
        "issued_token_type": REQUESTED_TOKEN_TYPE,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The `sub` of `token` if it is an access token of this tenant (a `published` key's signature,
/// its `issuer`, not expired) for `api`.
fn verify_subject(published: &[TestKey], issuer: &str, token: &str, api: &str) -> Option<String> {
    verify_claims(published, issuer, token, api)?["sub"]
        .as_str()
        .map(str::to_owned)
}

/// The claims of `token` if it is an access token of this tenant (a `published` key's
/// signature, its `issuer`, not expired, a `sub`) for `api`.
pub(crate) fn verify_claims(
    published: &[TestKey],
    issuer: &str,
    token: &str,
    api: &str,
) -> Option<Map<String, Value>> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = published
        .iter()
        .find(|k| Some(k.kid()) == header.kid.as_deref())
        .copied()?;
    let key = DecodingKey::from_rsa_pem(key.public_pem().as_bytes()).ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[api]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).ok()?;
    data.claims.get("sub")?.as_str()?;
    Some(data.claims)
}
