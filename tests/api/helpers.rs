//! `TestApp`: the function's handler wired to a stand-in tenant on 127.0.0.1, fed the sample
//! events; and the captured logs, to prove that no token ever reaches them.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::{App, Config, telemetry, upstream};
use aws_sdk_secretsmanager::Client as SecretsClient;
use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Context, LambdaEvent, Request, RequestExt};
use serde_json::{Value, json};
use standin::{Idp, M2M_CLIENT_ID, Moto, MotoLink, Tenant, TokenBuilder, secrets_client};

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
        // The function's own line format, so that the tests read the lines CloudWatch gets.
        tracing_subscriber::fmt()
            .json()
            .event_format(telemetry::LogFormat::default())
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

/// moto's Secrets Manager server, one for the whole test binary.
pub static MOTO: OnceLock<Moto> = OnceLock::new();

/// The shared moto server, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("{e}")))
}

/// A unique name or value for this process.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The IdP access token the stand-in GitHub accepts for `sub`.
pub fn github_token(sub: &str) -> String {
    format!(
        "gho_standin_{}",
        sub.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// The handler under test and its stand-ins.
pub struct TestApp {
    /// The stand-in Auth0 tenant.
    pub tenant: Tenant,
    /// The stand-in GitHub API, configured as the `github` connection's `api_base`.
    pub github: Idp,
    /// The handler, configured for the stand-ins.
    pub app: App,
    /// The handler's way to moto: cut it to take Secrets Manager down.
    pub secrets_manager: MotoLink,
    /// The credentials secret's name in moto.
    pub secret_id: String,
    /// The M2M client secret currently stored.
    pub client_secret: Mutex<String>,
    /// The function's environment, as the handler was configured (for the real binary too).
    pub env: Vec<(String, String)>,
    secret_reads: Arc<AtomicUsize>,
    admin: SecretsClient,
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

    /// Asserts a 429 `rate_limited` whose `Retry-After` is about `seconds` (one less allowed, for
    /// the clock's tick between the stand-in's answer and this check).
    pub fn assert_rate_limited_for(&self, seconds: u64) {
        self.assert_error(429, "rate_limited");
        let retry_after: u64 = self.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("whole seconds");
        assert!(
            (seconds - 1..=seconds).contains(&retry_after),
            "Retry-After: {retry_after}"
        );
    }

    /// Asserts a 401 for a request with no credentials: the bare RFC 6750 §3.1 challenge, no
    /// error code in it, beside the DPoP one (both schemes accepted, the default).
    pub fn assert_no_credentials(&self) {
        self.assert_error(401, "invalid_token");
        assert_eq!(self.headers["www-authenticate"], challenge(None).as_str());
    }

    /// Asserts a 401 `invalid_token` with the RFC 6750 challenge, beside the DPoP one.
    pub fn assert_invalid_token(&self) {
        self.assert_error(401, "invalid_token");
        assert_eq!(
            self.headers["www-authenticate"],
            challenge(Some("invalid_token")).as_str()
        );
    }
}

impl TestApp {
    /// The handler with the required configuration only.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[], KeyPolicy::default()).await
    }

    /// The handler with extra environment variables and JWKS cache timings. `{github}` in a
    /// value stands for the stand-in GitHub's origin.
    pub async fn spawn_with(vars: &[(&str, &str)], policy: KeyPolicy) -> Self {
        capture_logs();
        let moto = moto();
        let client_secret = unique("m2m-secret-");
        let tenant = Tenant::start(&client_secret)
            .await
            .expect("stand-in tenant starts");
        let github = Idp::start().await.expect("stand-in GitHub starts");
        let admin = secrets_client(moto.endpoint(), None).await;
        let secret_id = unique("auth0-idp-proxy/test-");
        admin
            .create_secret()
            .name(&secret_id)
            .secret_string(credentials_json(&client_secret))
            .send()
            .await
            .expect("secret created in moto");

        let mut env: Vec<(String, String)> = vec![
            ("AUTH0_DOMAIN".into(), tenant.origin()),
            ("AUTH0_AUDIENCE".into(), AUDIENCE.into()),
            ("CREDENTIALS_SECRET_ID".into(), secret_id.clone()),
            (
                "IDP_CONNECTIONS".into(),
                json!({"github": {"api_base": github.origin()}}).to_string(),
            ),
        ];
        env.extend(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.replace("{github}", &github.origin()))),
        );
        let config = Config::from_lookup(|name| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("test configuration is valid");
        let http = upstream::build_client().expect("HTTP client");
        let secret_reads = Arc::new(AtomicUsize::new(0));
        let secrets_manager = moto.link().await.expect("relay to moto");
        let secrets =
            secrets_client(&secrets_manager.endpoint(), Some(Arc::clone(&secret_reads))).await;
        Self {
            app: App::builder(config, http, secrets)
                .key_policy(policy)
                .build(),
            secrets_manager,
            tenant,
            github,
            secret_id,
            client_secret: Mutex::new(client_secret),
            env,
            secret_reads,
            admin,
        }
    }

    /// A valid token for `sub`, to adjust before signing. The user exists in the tenant with a
    /// GitHub identity (unless added otherwise before), whose token the stand-in GitHub accepts.
    pub fn token(&self, sub: &str) -> TokenBuilder {
        if !self.tenant.has_user(sub) {
            let token = github_token(sub);
            self.tenant
                .add_user(standin::profile(sub, &[("github", "1001", &token)]));
            self.github
                .grant(&token, json!({"login": "octocat", "id": 1001, "for": sub}));
        }
        self.tenant.token(AUDIENCE, sub)
    }

    /// How many Secrets Manager requests the function made.
    pub fn secret_reads(&self) -> usize {
        self.secret_reads.load(Ordering::SeqCst)
    }

    /// Rotates the M2M client secret: in moto first, then at the tenant, as a rotation lambda
    /// would.
    pub async fn rotate_client_secret(&self) -> String {
        let new = unique("m2m-rotated-");
        self.admin
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(credentials_json(&new))
            .send()
            .await
            .expect("secret rotated in moto");
        self.tenant.set_client_secret(&new);
        *self.client_secret.lock().unwrap_or_else(|e| e.into_inner()) = new.clone();
        new
    }

    /// Replaces the secret's text (valid or not).
    pub async fn put_secret(&self, text: &str) {
        self.admin
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(text)
            .send()
            .await
            .expect("secret written in moto");
    }

    /// Writes `text` as the secret `id` (another than the credentials), creating it if need be.
    pub async fn write_secret(&self, id: &str, text: &str) {
        let put = self
            .admin
            .put_secret_value()
            .secret_id(id)
            .secret_string(text)
            .send()
            .await;
        if put.is_err() {
            self.admin
                .create_secret()
                .name(id)
                .secret_string(text)
                .send()
                .await
                .expect("secret created in moto");
        }
    }

    /// Sends the sample event `events/{name}` with the placeholder replaced by `token`.
    pub async fn call(&self, name: &str, token: &str) -> TestResponse {
        self.send(event(name, token)).await
    }

    /// Another execution environment of the same function (same configuration, its own
    /// memory), sharing the fleet table through `dynamodb` when `TOKEN_TABLE` is configured.
    pub async fn environment(
        &self,
        dynamodb: &aws_sdk_dynamodb::Client,
        policy: auth0_idp_proxy::fleet::TablePolicy,
    ) -> App {
        self.environment_with(dynamodb, policy, &[]).await
    }

    /// As [`TestApp::environment`], with `extra` variables over the configuration (an updated
    /// deployment of the same function).
    pub async fn environment_with(
        &self,
        dynamodb: &aws_sdk_dynamodb::Client,
        policy: auth0_idp_proxy::fleet::TablePolicy,
        extra: &[(&str, &str)],
    ) -> App {
        let config = Config::from_lookup(|name| {
            extra
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .or_else(|| {
                    self.env
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
        })
        .expect("test configuration is valid");
        let http = upstream::build_client().expect("HTTP client");
        let secrets = secrets_client(moto().endpoint(), None).await;
        App::builder(config, http, secrets)
            .token_table(dynamodb, policy)
            .build()
    }

    /// Runs `event` (an event's JSON text) through the function's Lambda entry point, as the
    /// real binary does: the event checks, the handler, and the Lambda response as written.
    pub async fn invoke(&self, event: &str) -> LambdaAnswer {
        self.invoke_traced(event).await.0
    }

    /// As [`TestApp::invoke`], with the invocation's request id, to find its summary line.
    pub async fn invoke_traced(&self, event: &str) -> (LambdaAnswer, String) {
        let (event, request_id) = lambda_event(event, "invoke-", 10_000);
        let raw = self.app.invoke(event).await;
        (LambdaAnswer::parse(raw.get()), request_id)
    }

    /// Runs `event` through the function's streaming entry point (`RESPONSE_MODE=streaming`),
    /// as the real binary does: the prelude, the body as streamed, and how the stream ended
    /// (`None`: whole), with the invocation's request id.
    pub async fn invoke_streamed(&self, event: &str) -> StreamedAnswer {
        let (event, request_id) = lambda_event(event, "stream-", 30_000);
        let streamed = self.app.invoke_streamed(event).await;
        let prelude: Value = serde_json::from_slice(&streamed.prelude).expect("a JSON prelude");
        let mut body = Vec::new();
        let mut cut = None;
        let mut stream = streamed.body;
        while let Some(item) = futures_util::StreamExt::next(&mut stream).await {
            match item {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(reason) => cut = Some(reason),
            }
        }
        StreamedAnswer {
            prelude,
            body,
            cut,
            request_id,
        }
    }

    /// Sends a request.
    pub async fn send(&self, request: Request) -> TestResponse {
        send_to(&self.app, request).await
    }
}

/// The Lambda event of `event` (its JSON text) as lambda_runtime hands it over, with a new
/// request id starting `prefix` and a deadline `budget_ms` away; and that request id.
fn lambda_event(event: &str, prefix: &str, budget_ms: u64) -> (LambdaEvent<LambdaRequest>, String) {
    let payload: LambdaRequest =
        serde_json::from_str(event).expect("an event lambda_runtime deserializes");
    let mut context = Context::default();
    context.request_id = unique(prefix);
    let request_id = context.request_id.clone();
    context.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        + budget_ms;
    (LambdaEvent::new(payload, context), request_id)
}

/// Sends a request to `app`.
pub async fn send_to(app: &App, request: Request) -> TestResponse {
    let response = app.handle(request).await;
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

/// A streamed answer as the caller would get it.
#[derive(Debug)]
pub struct StreamedAnswer {
    /// The metadata prelude: `statusCode`, `headers`, `cookies`.
    pub prelude: Value,
    /// The body bytes streamed.
    pub body: Vec<u8>,
    /// Why the stream was ended early, if it was.
    pub cut: Option<auth0_idp_proxy::streaming::Cut>,
    /// The invocation's request id.
    pub request_id: String,
}

impl StreamedAnswer {
    /// The prelude's `statusCode`.
    pub fn status(&self) -> u64 {
        self.prelude["statusCode"].as_u64().unwrap_or_default()
    }

    /// A header of the prelude.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.prelude["headers"][name].as_str()
    }
}

/// A Lambda response (REST or HTTP API shape) as the Runtime API receives it, taken apart.
#[derive(Debug)]
pub struct LambdaAnswer {
    /// Its JSON text's length: what Lambda's 6 MB limit applies to.
    pub size: usize,
    /// `statusCode`.
    pub status: u16,
    /// Every header value, by lowercase name (`headers` or `multiValueHeaders`).
    pub headers: Vec<(String, String)>,
    /// The body as the caller receives it (base64 decoded where flagged).
    pub body: Vec<u8>,
    /// `isBase64Encoded`.
    pub base64: bool,
    /// Whether the response has a `body` member at all.
    pub has_body: bool,
}

impl LambdaAnswer {
    /// Takes apart the Lambda response `text`.
    pub fn parse(text: &str) -> Self {
        let value: Value = serde_json::from_str(text).expect("a JSON Lambda response");
        Self::from_value(value, text.len())
    }

    /// Takes apart a Lambda response already parsed, `size` bytes as posted.
    pub fn from_value(value: Value, size: usize) -> Self {
        let mut headers = Vec::new();
        for (name, v) in value["headers"].as_object().into_iter().flatten() {
            headers.push((
                name.to_lowercase(),
                v.as_str().unwrap_or_default().to_owned(),
            ));
        }
        for (name, values) in value["multiValueHeaders"].as_object().into_iter().flatten() {
            for v in values.as_array().into_iter().flatten() {
                headers.push((
                    name.to_lowercase(),
                    v.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        let base64 = value["isBase64Encoded"] == true;
        let text = value["body"].as_str().unwrap_or_default();
        let body = if base64 {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("a base64 body")
        } else {
            text.as_bytes().to_vec()
        };
        Self {
            size,
            status: value["statusCode"].as_u64().unwrap_or_default() as u16,
            headers,
            body,
            base64,
            has_body: value.get("body").is_some_and(|b| !b.is_null()),
        }
    }

    /// Asserts that no header or body byte of the answer holds any of `secrets`.
    pub fn assert_hides<S: AsRef<str>>(&self, secrets: &[S]) {
        let text = format!("{:?} {}", self.headers, String::from_utf8_lossy(&self.body));
        for secret in secrets {
            assert!(
                !text.contains(secret.as_ref()),
                "a secret reached the caller"
            );
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, as written: one per field line (payload v2 writes one line
    /// per name, payload v1 one value per line).
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value of header `name`, joined as one field would be.
    pub fn header_joined(&self, name: &str) -> String {
        self.values(name).join(", ")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Asserts the documented error shape and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        let body = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "status; body: {body}");
        assert_eq!(self.json()["error"], code, "error code; body: {body}");
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// The v2 event of `http-api-idp-github-user.json` re-pointed at `GET {path}?{query}` with
/// `token`, and each `(name, value)` of `headers` set (a `null` value removes the header).
pub fn idp_event(
    method: &str,
    path: &str,
    query: &str,
    token: &str,
    headers: &[(&str, Value)],
) -> Value {
    let mut event: Value = serde_json::from_str(
        &event_text("http-api-idp-github-user.json").replace(PLACEHOLDER, token),
    )
    .expect("JSON event");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["rawQueryString"] = json!(query);
    for (name, value) in headers {
        match value {
            Value::Null => {
                event["headers"]
                    .as_object_mut()
                    .expect("headers")
                    .remove(*name);
            }
            value => event["headers"][*name] = value.clone(),
        }
    }
    event
}

/// The `WWW-Authenticate` of a 401 to a bearer request where both schemes are accepted (the
/// default `DPOP=allowed`): the Bearer challenge with `error`, then DPoP's with its algorithms.
pub fn challenge(error: Option<&str>) -> String {
    let bearer = match error {
        Some(error) => format!(r#"Bearer error="{error}""#),
        None => "Bearer".to_owned(),
    };
    format!(
        r#"{bearer}, DPoP algs="{}""#,
        auth0_idp_proxy::auth::dpop::ALGS
    )
}

/// The secret's JSON for the stand-in tenant's M2M client.
pub fn credentials_json(client_secret: &str) -> String {
    json!({"client_id": M2M_CLIENT_ID, "client_secret": client_secret}).to_string()
}

/// The raw text of `events/{name}`.
pub fn event_text(name: &str) -> String {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The v2 sample event for `GET /identities`, re-pointed at `raw_path` (sent as is, unencoded).
pub fn event_at(raw_path: &str, token: &str) -> Request {
    let path = serde_json::to_string(raw_path).expect("a JSON string");
    let text = event_text("http-api-identities.json")
        .replace(PLACEHOLDER, token)
        .replace("\"/identities\"", &path);
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{raw_path}: {e}"))
}

/// The sample event `events/{name}` as lambda_http parses it, with `token` in place of the
/// placeholder.
pub fn event(name: &str, token: &str) -> Request {
    let text = event_text(name).replace(PLACEHOLDER, token);
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `request` with a Lambda context whose deadline is `budget` from now, and a fresh request id.
pub fn within(request: Request, budget: Duration) -> Request {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let mut context = lambda_http::Context::default();
    context.deadline = u64::try_from((now + budget).as_millis()).expect("fits");
    context.request_id = unique("req-");
    request.with_lambda_context(context)
}
