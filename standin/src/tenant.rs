//! A stand-in Auth0 tenant on 127.0.0.1: the JWKS, the token endpoint (client-credentials
//! grant, and Token Vault's exchange in [`crate::vault`]) and the Management API's
//! `GET /api/v2/users/{id}`, with switches to rotate keys and the
//! client secret, to make endpoints fail ([`JwksMode`], [`Fault`]), and counters of the calls
//! each served (failed ones included); and the sign-in side a single page application uses
//! (OpenID Connect discovery, `/authorize`, the authorization-code grant, `/v2/logout`, and
//! DPoP-bound tokens for a sign-in that sends a proof: see [`crate::login`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::fault::{Fault, Injected, play, take_fault};
use crate::idp::Idp;
use crate::keys::{TestKey, TokenBuilder};
use crate::lock;
use crate::login::{self, Login, MintIdpToken, SpaClient};
use crate::m2m_client::M2M_CLIENT_ID;
use crate::management_api::ManagementApi;
use crate::oauth_error::oauth_error;
use crate::opaque_token::new_token;
use crate::rate_limit::{Api, Limits, Plan};
pub use crate::tenant_state::JwksMode;
use crate::tenant_state::MyAccount;
use crate::tenant_state::{TenantState, issuer_of};
use crate::vault::{self, TenantFacts, VaultState};

/// A running stand-in tenant. Dropping it does not stop the server; it lives until the process
/// (test binary or demo) ends.
#[derive(Debug, Clone)]
pub struct Tenant {
    addr: SocketAddr,
    state: Arc<TenantState>,
}

impl Tenant {
    /// Starts a tenant that publishes the primary test key and accepts the M2M client
    /// [`M2M_CLIENT_ID`] with `client_secret`.
    pub async fn start(client_secret: &str) -> std::io::Result<Self> {
        let state = Arc::new(TenantState {
            jwks_calls: AtomicUsize::new(0),
            published: Mutex::new(vec![TestKey::Primary]),
            jwks_mode: Mutex::new(JwksMode::Serve),
            token_calls: AtomicUsize::new(0),
            token_fault: Mutex::new(None),
            client_secret: Mutex::new(client_secret.to_owned()),
            management_token_lifetime: Mutex::new(86_400),
            issued: Mutex::new(HashMap::new()),
            user_calls: AtomicUsize::new(0),
            user_fault: Mutex::new(None),
            user_requests: Mutex::new(Vec::new()),
            users: Mutex::new(HashMap::new()),
            login: Login::default(),
            vault: VaultState::default(),
            management: ManagementApi::default(),
            my_account: MyAccount::default(),
            limits: Limits::default(),
        });
        let router = Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/oauth/token", post(token).options(token_preflight))
            .route("/api/v2/users/{id}", get(user))
            .route(
                "/api/v2/users/{id}/connected-accounts",
                get(user_connected_accounts),
            )
            .route("/authorize", get(authorize).post(pick))
            .route("/v2/logout", get(logout))
            .merge(crate::my_account::router())
            .with_state(Arc::clone(&state))
            .merge(state.management.router());
        let addr = crate::serve(router).await?;
        let tenant = Self { addr, state };
        // The My Account API exists in every tenant (once activated, which the stand-in is).
        tenant.register_api(&tenant.my_account_audience());
        Ok(tenant)
    }

    /// `http://127.0.0.1:port`: the value for `AUTH0_DOMAIN`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `iss` of this tenant's tokens: the origin with a trailing slash, as Auth0's.
    pub fn issuer(&self) -> String {
        format!("{}/", self.origin())
    }

    /// A Management API token for an operator, carrying `scopes` (signed, with them in its
    /// `scope` claim, as Auth0's); the Management API ([`crate::management_api`]) checks them.
    pub fn operator_token(&self, scopes: &[&str]) -> String {
        let token = self
            .token(&format!("{}/api/v2/", self.origin()), "operator@clients")
            .claim("aud", format!("{}/api/v2/", self.origin()))
            .claim("scope", scopes.join(" "))
            .claim("gty", "client-credentials")
            .sign();
        self.state.management.add_operator(&token, scopes);
        token
    }

    /// As [`Tenant::operator_token`], but opaque (no readable `scope` claim): only the
    /// Management API's `403 insufficient_scope` says what it lacks.
    pub fn opaque_operator_token(&self, scopes: &[&str]) -> String {
        let token = new_token("operator-");
        self.state.management.add_operator(&token, scopes);
        token
    }

    /// `METHOD /path?query` of every request the Management API's configuration endpoints
    /// (resource servers, clients, client grants, connections) served.
    pub fn management_requests(&self) -> Vec<String> {
        self.state.management.requests()
    }

    /// A valid token of this tenant for `audience` and `sub`, to adjust before signing.
    pub fn token(&self, audience: &str, sub: &str) -> TokenBuilder {
        TokenBuilder::new(&self.issuer(), audience, sub)
    }

    /// How many times the JWKS was requested.
    pub fn jwks_calls(&self) -> usize {
        self.state.jwks_calls.load(Ordering::SeqCst)
    }

    /// Replaces the published signing keys (key rotation, or removal).
    pub fn publish(&self, keys: &[TestKey]) {
        *lock(&self.state.published) = keys.to_vec();
    }

    /// Changes how the JWKS endpoint behaves.
    pub fn set_jwks_mode(&self, mode: JwksMode) {
        *lock(&self.state.jwks_mode) = mode;
    }

    /// How many token requests (of any outcome) the token endpoint served.
    pub fn token_calls(&self) -> usize {
        self.state.token_calls.load(Ordering::SeqCst)
    }

    /// Makes the next `times` token requests misbehave as `fault` (`usize::MAX`: until
    /// [`Tenant::heal`]).
    pub fn fail_token_endpoint(&self, fault: Fault, times: usize) {
        *lock(&self.state.token_fault) = Injected::new(fault, times);
    }

    /// Makes the next `times` Management API user reads misbehave as `fault` (`usize::MAX`:
    /// until [`Tenant::heal`]).
    pub fn fail_management_api(&self, fault: Fault, times: usize) {
        *lock(&self.state.user_fault) = Injected::new(fault, times);
    }

    /// Ends every injected fault: the JWKS serves, the token endpoint and the Management API
    /// answer normally.
    pub fn heal(&self) {
        *lock(&self.state.jwks_mode) = JwksMode::Serve;
        *lock(&self.state.token_fault) = None;
        *lock(&self.state.user_fault) = None;
        self.state.vault.heal();
    }

    /// Rotates the M2M client secret: the old one is refused from now on.
    pub fn set_client_secret(&self, secret: &str) {
        *lock(&self.state.client_secret) = secret.to_owned();
    }

    /// The `expires_in` of Management API tokens issued from now on, in seconds.
    pub fn set_management_token_lifetime(&self, seconds: u64) {
        *lock(&self.state.management_token_lifetime) = seconds;
    }

    /// Every Management API token issued so far (to prove none of them is logged).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).keys().cloned().collect()
    }

    /// Revokes every Management API token issued so far.
    pub fn revoke_management_tokens(&self) {
        let now = Instant::now();
        for expires in lock(&self.state.issued).values_mut() {
            *expires = now;
        }
    }

    /// Adds (or replaces) a user profile, keyed by its `user_id`.
    pub fn add_user(&self, profile: Value) {
        let id = profile["user_id"].as_str().unwrap_or_default().to_owned();
        lock(&self.state.users).insert(id, profile);
    }

    /// Whether a profile for `user_id` exists.
    pub fn has_user(&self, user_id: &str) -> bool {
        lock(&self.state.users).contains_key(user_id)
    }

    /// How many user reads (`GET /api/v2/users/{id}` and `…/{id}/connected-accounts`) were
    /// served.
    pub fn user_calls(&self) -> usize {
        self.state.user_calls.load(Ordering::SeqCst)
    }

    /// The profile of `user_id`, as the Management API would return it (with its
    /// `connected_accounts`).
    pub fn user(&self, user_id: &str) -> Option<Value> {
        user_read(&self.state, user_id, &Uri::from_static("/"))
    }

    /// Registers a single page application that may sign users in (see [`crate::login`]).
    pub fn register_spa(&self, client: SpaClient) {
        self.state.login.register_client(client);
    }

    /// Adds a refresh token policy to the single page application `client_id` (Auth0's
    /// Multi-Resource Refresh Token, `refresh_token.policies`): its refresh tokens may then get
    /// access tokens for `audience` with (at most) `scopes`, e.g. the My Account API
    /// ([`Tenant::my_account_audience`]) with `create:me:connected_accounts`.
    pub fn allow_refresh_audience(&self, client_id: &str, audience: &str, scopes: &[&str]) {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.state
            .login
            .add_refresh_policy(client_id, audience, &scopes);
    }

    /// `{origin}/me/`: the My Account API's audience (see [`crate::my_account`]).
    pub fn my_account_audience(&self) -> String {
        format!("{}/me/", self.origin())
    }

    /// The user's account at the IdP of `connection` is `profile`: what a connection through the
    /// My Account API stores (otherwise the profile of a tokenset kept before, else one made of
    /// the user's identity there: `id`, `sub`, `login` = the IdP user id, and the user's `email`
    /// and `name`).
    pub fn set_idp_profile(&self, user_id: &str, connection: &str, profile: Value) {
        self.state
            .my_account
            .set_profile(user_id, connection, profile);
    }

    /// Registers an API: an `audience` that sign-ins may ask access tokens for.
    pub fn register_api(&self, identifier: &str) {
        self.state.login.register_api(identifier);
    }

    /// Makes a sign-in with `connection=NAME` a fresh login at that IdP: `mint` is given the
    /// user's id at the IdP and returns the new IdP access token, which replaces the one stored
    /// on that identity (re-consent).
    pub fn on_connection_login(
        &self,
        connection: &str,
        mint: impl Fn(&str) -> String + Send + Sync + 'static,
    ) {
        let mint: MintIdpToken = Arc::new(mint);
        self.state.login.on_connection_login(connection, mint);
    }

    /// The raw path and query of every user request, as sent on the wire.
    pub fn user_requests(&self) -> Vec<String> {
        lock(&self.state.user_requests).clone()
    }

    /// Enables Token Vault for `connection`, whose tokens the stand-in `idp` issues and accepts;
    /// each lives `lifetime`.
    pub fn enable_token_vault(&self, connection: &str, idp: &Idp, lifetime: Duration) {
        self.state.vault.enable(connection, idp, lifetime);
    }

    /// Lets `client_id` perform the access token exchange for callers' tokens of `api`: a
    /// Custom API Client linked to that API. `client_secret` `None` stands for the M2M client
    /// [`M2M_CLIENT_ID`] with its current secret.
    pub fn add_token_vault_client(&self, client_id: &str, client_secret: Option<&str>, api: &str) {
        self.state.vault.add_client(client_id, client_secret, api);
    }

    /// The user connects their account at `connection` (Token Vault enabled): Auth0 now keeps a
    /// tokenset, whose access token the IdP accepts for the user whose profile is `profile`.
    /// Returns that access token. Its scopes are `openid profile` (a sign-in's), which the
    /// exchange answers as `scope` and the IdP knows, as it answered before scopes were tracked.
    pub fn connect_account(&self, user_id: &str, connection: &str, profile: Value) -> String {
        let scopes = crate::vault::DEFAULT_SCOPES.map(str::to_owned);
        self.state
            .vault
            .connect(user_id, connection, profile, &scopes)
    }

    /// As [`Tenant::connect_account`], the user having granted exactly `scopes` at the IdP: the
    /// exchange answers them as `scope` (space-separated) and the IdP's token carries them.
    /// Returns the IdP access token.
    pub fn connect_account_with_scopes(
        &self,
        user_id: &str,
        connection: &str,
        profile: Value,
        scopes: &[&str],
    ) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.state
            .vault
            .connect(user_id, connection, profile, &scopes)
    }

    /// The user grants `scopes` more at `connection`, as a completed incremental consent does:
    /// Token Vault's tokenset now holds the union, with a new IdP access token carrying it (the
    /// old token stays valid at the IdP until it expires). Returns the new token; `None` if the
    /// user has no connected account there.
    pub fn grant_scopes(&self, user_id: &str, connection: &str, scopes: &[&str]) -> Option<String> {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.state.vault.grant(user_id, connection, &scopes)
    }

    /// The IdP scopes Token Vault holds for the user at `connection`, `None` if not connected.
    pub fn granted_scopes(&self, user_id: &str, connection: &str) -> Option<Vec<String>> {
        self.state.vault.scopes(user_id, connection)
    }

    /// The user's connected accounts, as the Management API and the My Account API list them.
    pub fn connected_accounts(&self, user_id: &str) -> Vec<Value> {
        self.state.vault.connected_accounts(user_id)
    }

    /// The user disconnects the account: Auth0 keeps no tokenset for it any more.
    pub fn disconnect_account(&self, user_id: &str, connection: &str) {
        self.state.vault.disconnect(user_id, connection);
    }

    /// Auth0 renews the user's token at `connection` now (with the IdP's refresh token); the
    /// old one stays valid at the IdP until it expires. Returns the new token.
    pub fn renew_vault_token(&self, user_id: &str, connection: &str) -> Option<String> {
        self.state.vault.renew(user_id, connection)
    }

    /// How many Token Vault exchanges the token endpoint served (of any outcome).
    pub fn vault_exchanges(&self) -> usize {
        self.state.vault.exchanges()
    }

    /// The subject tokens presented to the exchange, in order.
    pub fn vault_subject_tokens(&self) -> Vec<String> {
        self.state.vault.subject_tokens()
    }

    /// Every IdP access token Token Vault handed out or renewed (to prove none is logged).
    pub fn vault_tokens_issued(&self) -> Vec<String> {
        self.state.vault.issued()
    }

    /// Makes the next `times` exchanges misbehave as `fault` (`usize::MAX`: until
    /// [`Tenant::heal`]); [`Fault::Refuse`] plays Auth0 refusing them.
    pub fn fail_token_vault(&self, fault: Fault, times: usize) {
        self.state.vault.fail(fault, times);
    }

    /// Enforces `plan`'s documented rate limits from now on (see [`crate::rate_limit`]): the
    /// Management API's user reads and the token endpoint answer `429` with Auth0's
    /// `x-ratelimit-*` headers past them. Off unless called.
    pub fn enforce_plan(&self, plan: Plan) {
        self.state.limits.enforce(Some(plan));
    }

    /// Requests of `kind` the enforced plan let through: `user_read`, `client_credentials`,
    /// `token_exchange` or `other_grant`.
    pub fn plan_admitted(&self, kind: &str) -> usize {
        self.state.limits.admitted(kind)
    }

    /// Requests of `kind` (as [`Tenant::plan_admitted`]) the enforced plan answered `429`.
    pub fn plan_refused(&self, kind: &str) -> usize {
        self.state.limits.refused(kind)
    }
}

/// A profile as the Management API returns it, with one identity per `(connection, user id at
/// the IdP, access token)`.
pub fn profile(user_id: &str, identities: &[(&str, &str, &str)]) -> Value {
    let identities: Vec<Value> = identities
        .iter()
        .map(|(connection, idp_user_id, access_token)| {
            json!({
                "provider": connection,
                "connection": connection,
                "user_id": idp_user_id,
                "access_token": access_token,
                "isSocial": true,
            })
        })
        .collect();
    json!({
        "user_id": user_id,
        "email": "user@example.com",
        "name": "Stand-in User",
        "identities": identities,
        "logins_count": 3,
    })
}

/// A token request's fields: a JSON object (as the SPA SDK may send them; values that are not
/// strings in their JSON text), else a form; `None` if the body is neither.
fn token_fields(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
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

/// `POST /oauth/token`: Token Vault's exchange (in [`crate::vault`]), a sign-in's
/// authorization-code grant (in [`crate::login`]) or the client-credentials grant.
async fn token(State(state): State<Arc<TenantState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = token_fields(&headers, &body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    state.token_calls.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let kind = match field("grant_type") {
        vault::GRANT_TYPE => "token_exchange",
        "client_credentials" => "client_credentials",
        _ => "other_grant",
    };
    if let Some(refused) = state.limits.admit(Api::Authentication, kind) {
        return refused;
    }
    let fault = take_fault(&state.token_fault);
    let issuer = issuer_of(&headers);
    if field("grant_type") == vault::GRANT_TYPE {
        let tenant = TenantFacts {
            fault,
            m2m_secret: lock(&state.client_secret).clone(),
            published: lock(&state.published).clone(),
            issuer,
        };
        return vault::exchange(&state.vault, tenant, &fields).await;
    }
    if let Some(fault) = fault {
        return play(fault).await;
    }
    if field("grant_type") == "authorization_code" || field("grant_type") == "refresh_token" {
        let cors = state.login.cors(&headers);
        // A DPoP proof asks for tokens bound to its key (RFC 9449 §5); a bad one is refused.
        let jkt = match login::token_proof(&state.login, &headers, &issuer) {
            Ok(jkt) => jkt,
            Err(description) => {
                let mut response =
                    oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", &description);
                response.headers_mut().extend(cors);
                return response;
            }
        };
        let users = lock(&state.users).clone();
        let answer = if field("grant_type") == "refresh_token" {
            login::refresh(&state.login, &users, &issuer, &fields, jkt.as_deref())
        } else {
            login::exchange_code(&state.login, &users, &issuer, &fields, jkt.as_deref())
        };
        let mut response = match answer {
            Ok(tokens) => axum::Json(tokens).into_response(),
            Err((status, error, description)) => oauth_error(status, error, &description),
        };
        response.headers_mut().extend(cors);
        return response;
    }
    if field("grant_type") != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant");
    }
    let created = (state.management).accepts_client(
        field("client_id"),
        field("client_secret"),
        &format!("{issuer}api/v2/"),
    );
    if !created
        && (field("client_id") != M2M_CLIENT_ID
            || field("client_secret") != *lock(&state.client_secret))
    {
        // What Auth0 answers for a wrong client secret.
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    }
    if field("audience") != format!("{issuer}api/v2/") {
        return oauth_error(StatusCode::FORBIDDEN, "access_denied", "Service not found");
    }
    let lifetime = *lock(&state.management_token_lifetime);
    let access_token = new_token("mgmt-");
    lock(&state.issued).insert(
        access_token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": "read:users read:user_idp_tokens",
    }))
    .into_response()
}

/// The CORS preflight of a sign-in's token request, answered for allowed web origins only.
async fn token_preflight(State(state): State<Arc<TenantState>>, headers: HeaderMap) -> Response {
    crate::preflight_answer(state.login.cors(&headers))
}

async fn discovery(headers: HeaderMap) -> Response {
    axum::Json(login::discovery(&issuer_of(&headers))).into_response()
}

async fn authorize(
    State(state): State<Arc<TenantState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let users = lock(&state.users).clone();
    login::authorize(&state.login, &users, &headers, &params)
}

async fn pick(
    State(state): State<Arc<TenantState>>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    let mut users = lock(&state.users);
    login::pick(&state.login, &mut users, &params)
}

async fn logout(
    State(state): State<Arc<TenantState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    login::logout(&state.login, &headers, &params)
}

/// The profile Auth0's Management API returns for `user_id`: the stored one, with the user's
/// Token Vault connected accounts as `connected_accounts` (the Management API's
/// `ConnectedAccount` shape) unless a `fields` list that leaves it out was asked for.
fn user_read(state: &TenantState, user_id: &str, uri: &Uri) -> Option<Value> {
    let mut profile = lock(&state.users).get(user_id).cloned()?;
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let listed = param("fields")
        .is_none_or(|fields| fields.split(',').any(|f| f.trim() == "connected_accounts"));
    let include = param("include_fields") != Some("false");
    if (param("fields").is_none() || listed == include)
        && let Some(map) = profile.as_object_mut()
    {
        map.insert(
            "connected_accounts".to_owned(),
            Value::Array(state.vault.connected_accounts(user_id)),
        );
    }
    Some(profile)
}

/// Counts, records and authenticates a Management API user read; `Err` is the answer to give.
#[allow(clippy::result_large_err)] // the request's one answer, built once
async fn admit_user_read(
    state: &TenantState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Response> {
    state.user_calls.fetch_add(1, Ordering::SeqCst);
    lock(&state.user_requests).push(
        uri.path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    if let Some(refused) = state.limits.admit(Api::Management, "user_read") {
        return Err(refused);
    }
    if let Some(fault) = take_fault(&state.user_fault) {
        return Err(play(fault).await);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    let live = lock(&state.issued)
        .get(bearer)
        .is_some_and(|expires| *expires > Instant::now());
    if !live {
        return Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}),
            ),
        )
            .into_response());
    }
    Ok(())
}

fn inexistent_user() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})),
    )
        .into_response()
}

async fn user(
    State(state): State<Arc<TenantState>>,
    uri: Uri,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(answer) = admit_user_read(&state, &uri, &headers).await {
        return answer;
    }
    match user_read(&state, &id, &uri) {
        Some(profile) => axum::Json(profile).into_response(),
        None => inexistent_user(),
    }
}

/// `GET /api/v2/users/{id}/connected-accounts`: `{"connected_accounts": [...]}` (all of them:
/// a stand-in user has fewer than a page, so no `next`). Counted as a user read.
async fn user_connected_accounts(
    State(state): State<Arc<TenantState>>,
    uri: Uri,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(answer) = admit_user_read(&state, &uri, &headers).await {
        return answer;
    }
    if !lock(&state.users).contains_key(&id) {
        return inexistent_user();
    }
    axum::Json(json!({"connected_accounts": state.vault.connected_accounts(&id)})).into_response()
}

async fn jwks(State(state): State<Arc<TenantState>>) -> Response {
    state.jwks_calls.fetch_add(1, Ordering::SeqCst);
    let mode = *lock(&state.jwks_mode);
    match mode {
        JwksMode::Serve => {
            let keys: Vec<_> = lock(&state.published).iter().map(|k| k.jwk()).collect();
            axum::Json(json!({ "keys": keys })).into_response()
        }
        JwksMode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        JwksMode::Hang => std::future::pending().await,
    }
}
