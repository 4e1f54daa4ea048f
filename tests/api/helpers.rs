//! `TestApp`: the function's handler wired to a stand-in tenant on 127.0.0.1, fed the sample
//! events; and the captured logs, to prove that no token ever reaches them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::{App, Config, upstream};
use lambda_http::{Body, Request};
use serde_json::Value;
use standin::{Tenant, TokenBuilder};

/// The API identifier the test callers' tokens are issued for.
pub const AUDIENCE: &str = "https://proxy.example.test/api";
/// The placeholder the committed events carry where a real token goes.
pub const PLACEHOLDER: &str = "REPLACE_WITH_AN_AUTH0_ACCESS_TOKEN";

/// Every log line written by any test of this binary.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Capture(Arc::clone(&writer)))
            .init();
        buffer
    });
}

/// All logs captured so far, at every level.
pub fn logs() -> String {
    let buffer = LOGS.get().expect("logs are captured once a TestApp exists");
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Asserts that none of `secrets` appears in the captured logs.
pub fn assert_not_logged(secrets: &[&str]) {
    let logs = logs();
    assert!(!logs.is_empty(), "logs were captured");
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret value reached the logs");
    }
}

/// The handler under test and its stand-ins.
pub struct TestApp {
    /// The stand-in Auth0 tenant.
    pub tenant: Tenant,
    /// The handler, configured for the tenant.
    pub app: App,
}

/// A response, taken apart for assertions.
pub struct TestResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    /// Asserts the documented error shape and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.body);
        let body = self.json();
        assert_eq!(body["error"], code, "error code; body: {}", self.body);
        assert!(body["error_description"].is_string(), "error_description");
        assert_eq!(self.headers["content-type"], "application/json");
    }

    /// Asserts a 401 `invalid_token` with the RFC 6750 challenge.
    pub fn assert_invalid_token(&self) {
        self.assert_error(401, "invalid_token");
        assert_eq!(
            self.headers["www-authenticate"],
            r#"Bearer error="invalid_token""#
        );
    }
}

impl TestApp {
    /// The handler with the required configuration only.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[], KeyPolicy::default()).await
    }

    /// The handler with extra environment variables and JWKS cache timings.
    pub async fn spawn_with(vars: &[(&str, &str)], policy: KeyPolicy) -> Self {
        capture_logs();
        let tenant = Tenant::start().await.expect("stand-in tenant starts");
        let origin = tenant.origin();
        let mut env: Vec<(String, String)> = vec![
            ("AUTH0_DOMAIN".into(), origin),
            ("AUTH0_AUDIENCE".into(), AUDIENCE.into()),
            (
                "CREDENTIALS_SECRET_ID".into(),
                "auth0-idp-proxy/test".into(),
            ),
        ];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_lookup(|name| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("test configuration is valid");
        let http = upstream::build_client().expect("HTTP client");
        Self {
            tenant,
            app: App::with_key_policy(config, http, policy),
        }
    }

    /// A valid token for `sub`, to adjust before signing.
    pub fn token(&self, sub: &str) -> TokenBuilder {
        self.tenant.token(AUDIENCE, sub)
    }

    /// Sends the sample event `events/{name}` with the placeholder replaced by `token`.
    pub async fn call(&self, name: &str, token: &str) -> TestResponse {
        self.send(event(name, token)).await
    }

    /// Sends a request.
    pub async fn send(&self, request: Request) -> TestResponse {
        let response = self.app.handle(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.into_body() {
            Body::Empty => String::new(),
            Body::Text(text) => text,
            Body::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => unreachable!("no other body kinds are built"),
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

/// The raw text of `events/{name}`.
pub fn event_text(name: &str) -> String {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The sample event `events/{name}` as lambda_http parses it, with `token` in place of the
/// placeholder.
pub fn event(name: &str, token: &str) -> Request {
    let text = event_text(name).replace(PLACEHOLDER, token);
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}
