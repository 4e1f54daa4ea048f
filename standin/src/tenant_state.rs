//! The stand-in tenant's state, shared by its routes: the token endpoint and Management API
//! ([`crate::tenant`]) and the My Account API ([`crate::my_account`]), which each import it
//! from here rather than from one another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use axum::http::HeaderMap;
use serde_json::Value;

use crate::fault::Injected;
use crate::keys::TestKey;
use crate::lock;
use crate::login::Login;
use crate::management_api::ManagementApi;
use crate::rate_limit::Limits;
use crate::vault::VaultState;

/// How the JWKS endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    /// Serves the published keys.
    Serve,
    /// Answers 500.
    Fail,
    /// Never answers.
    Hang,
}

#[derive(Debug)]
pub(crate) struct TenantState {
    pub(crate) jwks_calls: AtomicUsize,
    pub(crate) published: Mutex<Vec<TestKey>>,
    pub(crate) jwks_mode: Mutex<JwksMode>,
    pub(crate) token_calls: AtomicUsize,
    pub(crate) token_fault: Mutex<Option<Injected>>,
    pub(crate) client_secret: Mutex<String>,
    pub(crate) management_token_lifetime: Mutex<u64>,
    pub(crate) issued: Mutex<HashMap<String, Instant>>,
    pub(crate) user_calls: AtomicUsize,
    pub(crate) user_fault: Mutex<Option<Injected>>,
    pub(crate) user_requests: Mutex<Vec<String>>,
    pub(crate) users: Mutex<HashMap<String, Value>>,
    pub(crate) login: Login,
    pub(crate) vault: VaultState,
    pub(crate) management: ManagementApi,
    pub(crate) my_account: MyAccount,
    /// A plan's rate limits, when enforced ([`crate::Tenant::enforce_plan`]).
    pub(crate) limits: Limits,
}

/// One connection under way, from `connect` to `complete`.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) sub: String,
    pub(crate) connection: String,
    pub(crate) redirect_uri: String,
    /// The application's `state`, returned with the `connect_code`.
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) ticket: String,
    /// The state sent to the IdP's consent page.
    pub(crate) idp_state: String,
    /// Set once the user consented: the code and the scopes the IdP granted.
    pub(crate) connect_code: Option<String>,
    pub(crate) granted: Vec<String>,
    pub(crate) expires: Instant,
}

/// The My Account API's state: connections under way, and IdP profiles set by tests.
#[derive(Debug, Default)]
pub(crate) struct MyAccount {
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    pub(crate) profiles: Mutex<HashMap<(String, String), Value>>,
}

impl MyAccount {
    pub(crate) fn set_profile(&self, user_id: &str, connection: &str, profile: Value) {
        lock(&self.profiles).insert((user_id.to_owned(), connection.to_owned()), profile);
    }
}

/// The issuer a request to this tenant names: `http://{Host}/`.
pub(crate) fn issuer_of(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    format!("http://{host}/")
}
