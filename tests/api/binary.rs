//! The production path without Docker: the real `bootstrap` binary, run as Lambda runs it against
//! a Lambda Runtime API on 127.0.0.1, fed every file in `events/` — what
//! `sam local invoke -e events/<file>` would do.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use standin::{Outcome, RuntimeApi};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::helpers::{
    LambdaAnswer, PLACEHOLDER, TestApp, challenge, event_text, github_token, moto,
};
use crate::metrics::assert_emf;

const USER: &str = "github|1001";

/// The real binary with the test app's configuration, pointed at `runtime`.
pub(crate) fn start_bootstrap(
    app: &TestApp,
    runtime: &RuntimeApi,
    extra: &[(&str, &str)],
) -> Child {
    let mut command = bootstrap(app, runtime);
    command.envs(extra.iter().copied());
    command.spawn().expect("bootstrap starts")
}

/// The command that starts the real binary as Lambda does (its AWS environment included) with
/// the test app's configuration, pointed at `runtime`.
pub fn bootstrap(app: &TestApp, runtime: &RuntimeApi) -> Command {
    bootstrap_as(&[env!("CARGO_BIN_EXE_bootstrap").into()], app, runtime)
}

/// As [`bootstrap`], the process being `program`: a binary, or a runner, its arguments and the
/// binary (`qemu-aarch64 -L /usr/aarch64-linux-gnu bootstrap`). A bare runner name is looked up
/// in the test's `PATH`: the function's own environment has none.
pub fn bootstrap_as(program: &[String], app: &TestApp, runtime: &RuntimeApi) -> Command {
    let (first, arguments) = program.split_first().expect("a program");
    let mut command = Command::new(on_path(first));
    command
        .args(arguments)
        .env_clear()
        .envs(app.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "auth0-idp-proxy")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto().endpoint())
        .env("AWS_LAMBDA_LOG_LEVEL", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `name` as a path: itself when it has a slash, else the first match in `PATH`.
fn on_path(name: &str) -> std::path::PathBuf {
    if name.contains('/') {
        return name.into();
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| name.into())
}

/// Stops `child` and returns what it wrote.
pub async fn output_of(mut child: Child) -> String {
    let _ = child.start_kill();
    let _ = child.wait().await;
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut text).await;
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text).await;
    }
    text
}

/// A real `bootstrap` under its own Runtime API: events in, Lambda responses out.
pub struct RealBinary {
    runtime: RuntimeApi,
    child: Child,
    /// What the binary writes, read as it writes it: a pipe left unread fills (64 KiB of the
    /// SDK's debug lines) and then blocks the binary in its next log line.
    output: Vec<tokio::task::JoinHandle<String>>,
}

/// Reads `pipe` to its end.
fn drain(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl RealBinary {
    /// The real binary with `app`'s configuration and `extra` variables.
    pub async fn start(app: &TestApp, extra: &[(&str, &str)]) -> Self {
        Self::start_as(&[env!("CARGO_BIN_EXE_bootstrap").into()], app, extra).await
    }

    /// As [`RealBinary::start`], the process being `program` ([`bootstrap_as`]).
    pub async fn start_as(program: &[String], app: &TestApp, extra: &[(&str, &str)]) -> Self {
        let runtime = RuntimeApi::start().await.expect("runtime API");
        let mut command = bootstrap_as(program, app, &runtime);
        command.envs(extra.iter().copied());
        let mut child = command.spawn().expect("bootstrap starts");
        let mut output = Vec::new();
        if let Some(out) = child.stdout.take() {
            output.push(drain(out));
        }
        if let Some(err) = child.stderr.take() {
            output.push(drain(err));
        }
        Self {
            runtime,
            child,
            output,
        }
    }

    /// The Lambda response to `event`, as the caller gets it.
    pub async fn invoke(&self, event: &Value) -> LambdaAnswer {
        let text = event.to_string();
        answer(self.runtime.invoke(&text, BUDGET, WAIT).await)
    }

    /// The streamed response to `event` (`RESPONSE_MODE=streaming`), handed over at its prelude
    /// while the body is still coming.
    pub async fn invoke_streamed(&self, event: &Value) -> standin::Streamed {
        match self.runtime.invoke(&event.to_string(), BUDGET, WAIT).await {
            Some(Outcome::Streamed(streamed)) => streamed,
            other => panic!("no streamed response: {other:?}"),
        }
    }

    /// The Lambda response to `event` handed to the binary as Lambda hands an event to a frozen
    /// environment: once the binary is idle (waiting for its next invocation) it is frozen
    /// ([`RealBinary::freeze`]), `while_frozen` runs, the event is handed out while the process
    /// is still stopped, and only then is it thawed — so that the event and whatever
    /// `while_frozen` did to its sockets are both there to read when it resumes.
    pub async fn invoke_after_freeze(
        &self,
        event: &Value,
        while_frozen: impl Future<Output = ()>,
    ) -> LambdaAnswer {
        assert!(
            self.runtime.until_waiting(|n| n == 1, WAIT).await,
            "the binary never became idle"
        );
        self.freeze().await;
        let invocation = self
            .runtime
            .queue(&event.to_string(), BUDGET)
            .expect("the Runtime API is up");
        assert!(
            self.runtime.until_waiting(|n| n == 0, WAIT).await,
            "the event was not handed out"
        );
        while_frozen.await;
        self.thaw().await;
        answer(invocation.outcome(WAIT).await)
    }

    /// Stops the process as Lambda's freeze stops an execution environment between invocations
    /// (SIGSTOP: every thread, its timers and its sockets' readers with it); returns once the
    /// kernel reports it stopped.
    pub async fn freeze(&self) {
        self.signal("STOP", |state| state == 'T').await;
    }

    /// Resumes a [`RealBinary::freeze`]d process; returns once the kernel reports it running.
    pub async fn thaw(&self) {
        self.signal("CONT", |state| state != 'T').await;
    }

    /// Sends `signal` and waits (a bounded poll of `/proc`: the kernel offers nothing to await)
    /// until the process's state satisfies `reached`.
    async fn signal(&self, signal: &str, reached: impl Fn(char) -> bool) {
        let pid = self.child.id().expect("the binary is running");
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {pid}");
        let stat = format!("/proc/{pid}/stat");
        for _ in 0..1000 {
            let text = std::fs::read_to_string(&stat).expect("the binary's /proc entry");
            // `pid (comm) state …`: the state follows the last `)`.
            let state = text
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            if state.is_some_and(&reached) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the binary did not take SIG{signal} within 5 s");
    }

    /// Stops the binary and returns what it wrote.
    pub async fn logs(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let mut text = String::new();
        for reader in self.output {
            text.push_str(&reader.await.unwrap_or_default());
        }
        text
    }
}

/// An invocation's deadline.
const BUDGET: Duration = Duration::from_secs(10);
/// The longest a test waits for the binary.
const WAIT: Duration = Duration::from_secs(30);

/// The caller's answer in `outcome`; panics if there is none.
fn answer(outcome: Option<Outcome>) -> LambdaAnswer {
    match outcome {
        Some(Outcome::Response(value)) => {
            let size = value.to_string().len();
            LambdaAnswer::from_value(value, size)
        }
        other => panic!("no response: {other:?}"),
    }
}

/// The names of the sample events in `events/`, sorted.
fn sample_events() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
        .expect("events/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// The status each sample event must get with a valid token in place of the placeholder.
fn expected_status(name: &str) -> u16 {
    if name.contains("missing-token") || name.contains("malformed-token") {
        401
    } else {
        200
    }
}

#[tokio::test]
async fn the_real_binary_answers_every_sample_event_under_a_runtime_api() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let child = start_bootstrap(
        &app,
        &runtime,
        &[("METRICS_NAMESPACE", "auth0-idp-proxy/test-stack")],
    );

    let names = sample_events();
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        let event = event_text(name).replace(PLACEHOLDER, &jwt);
        let outcome = runtime
            .invoke(&event, Duration::from_secs(10), Duration::from_secs(30))
            .await;
        let Some(Outcome::Response(response)) = outcome else {
            panic!(
                "{name}: no response: {outcome:?}; logs: {}",
                output_of(child).await
            );
        };
        assert_eq!(
            response["statusCode"],
            expected_status(name),
            "{name}: {response}"
        );
        let body: Value =
            serde_json::from_str(response["body"].as_str().expect("text body")).expect("JSON body");
        match expected_status(name) {
            401 => {
                assert_eq!(body["error"], "invalid_token", "{name}");
                let headers = response["headers"].as_object().expect("headers");
                // RFC 6750 §3.1: no credentials at all get the bare challenge.
                let challenge = if name.contains("missing-token") {
                    challenge(None)
                } else {
                    challenge(Some("invalid_token"))
                };
                assert_eq!(headers["www-authenticate"], challenge.as_str(), "{name}");
            }
            _ if name.contains("identities") => {
                assert_eq!(body["identities"][0]["connection"], "github", "{name}")
            }
            _ => assert!(
                body.get("login").is_some() || body[0].get("full_name").is_some(),
                "{name}: {body}"
            ),
        }
        assert!(
            !response.to_string().contains(&github_token(USER)),
            "{name}"
        );
    }
    assert!(runtime.init_errors().is_empty());
    // One environment: one secret read, one token exchange, one JWKS fetch for all events.
    assert_eq!(app.tenant.token_calls(), 1);
    assert_eq!(app.tenant.jwks_calls(), 1);

    let logs = output_of(child).await;
    // On stdout, one EMF summary line per event, in the namespace the template sets.
    let summaries: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "invocation")
        .collect();
    assert_eq!(summaries.len(), names.len(), "JSON summary lines: {logs}");
    for line in &summaries {
        assert_emf(line);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "auth0-idp-proxy/test-stack"
        );
        assert!(!line.to_string().contains(USER), "no user id: {line}");
    }
    // And one audit line per event, beside it: the user, the call, never the query string.
    let audits: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "audit")
        .collect();
    assert_eq!(audits.len(), names.len(), "audit lines: {logs}");
    for line in &audits {
        assert_eq!(line["source_ip"], "203.0.113.7", "{line}");
        assert!(!line.to_string().contains("sort=updated"), "{line}");
        match line["status"].as_u64() {
            Some(200) => assert_eq!(line["sub"], USER, "{line}"),
            _ => assert_eq!(line["error"], "invalid_token", "{line}"),
        }
    }
    let repos = audits
        .iter()
        .find(|line| line["path"] == "/user/repos")
        .expect("the repositories call is audited");
    assert_eq!(repos["idp_status"], 200, "{repos}");
    assert!(repos["idp_request_id"].is_string(), "{repos}");
    for secret in [
        jwt.as_str(),
        &github_token(USER),
        &app.client_secret.lock().expect("lock"),
    ] {
        assert!(!logs.contains(secret), "a secret reached the binary's logs");
    }
    for token in app.tenant.issued_tokens() {
        assert!(!logs.contains(&token));
    }
}

#[tokio::test]
async fn the_real_binary_refuses_to_start_with_bad_configuration() {
    let app = TestApp::spawn().await;
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let child = start_bootstrap(
        &app,
        &runtime,
        &[("AUTH0_DOMAIN", "http://auth0.example.com")],
    );
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("AUTH0_DOMAIN"), "{text}");
}

/// The HTTP behaviours of `speaks_http.rs` once more, through the real binary: what reaches the Runtime
/// API is the Lambda response itself, so a body altered by a text conversion, a response over
/// Lambda's limit (the stand-in refuses it as Lambda does) or a panic would all show here.
#[tokio::test]
async fn the_real_binary_speaks_http_under_a_runtime_api() {
    use crate::helpers::idp_event;
    use crate::speaks_http::{expected_bytes, gunzip, hostile_events};
    use serde_json::json;

    let app = TestApp::spawn_with(
        &[("ALLOWED_ORIGINS", "https://app.example.com")],
        auth0_idp_proxy::auth::jwks::KeyPolicy::default(),
    )
    .await;
    let jwt = app.token(USER).sign();
    let real = RealBinary::start(&app, &[]).await;
    let invoke = async |event: serde_json::Value| real.invoke(&event).await;
    let get = |path: &str, query: &str| idp_event("GET", path, query, &jwt, &[]);

    for kind in ["binary", "latin1", "invalid-utf8-json"] {
        let answer = invoke(get(&format!("/idp/github/bytes/{kind}"), "size=256")).await;
        assert_eq!(
            (answer.status, answer.body.clone()),
            (200, expected_bytes(kind)),
            "{kind}"
        );
    }
    let gzip = invoke(get("/idp/github/bytes/gzip", "")).await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&gzip.body), r#"{"compressed":true}"#);

    // 18 MiB if escaped, 4 MiB as base64: it reaches the caller whole.
    let controls = invoke(get("/idp/github/bytes/controls", "size=3145728")).await;
    assert_eq!(controls.status, 200);
    assert!(controls.body.len() == 3 << 20 && controls.body.iter().all(|b| *b == 1));
    // Over the limit only once encoded: the documented JSON 502, not Lambda's refusal.
    let big = invoke(get("/idp/github/bytes/binary", "size=4800000")).await;
    big.assert_error(502, "upstream_error");
    assert_eq!(
        big.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );

    let not_modified = invoke(idp_event(
        "GET",
        "/idp/github/conditional",
        "",
        &jwt,
        &[("if-none-match", json!(standin::CONDITIONAL_ETAG))],
    ))
    .await;
    assert_eq!(not_modified.status, 304);
    assert!(!not_modified.has_body);
    assert_eq!(not_modified.header("etag"), Some(standin::CONDITIONAL_ETAG));

    let page = invoke(get("/idp/github/user/repos", "per_page=3")).await;
    assert_eq!(
        page.header("link"),
        Some(
            "<https://abc123defg.execute-api.us-east-1.amazonaws.com/idp/github/user/repos?per_page=3&page=2>; rel=\"next\", \
             <https://abc123defg.execute-api.us-east-1.amazonaws.com/idp/github/user/repos?per_page=3&page=2>; rel=\"last\""
        )
    );

    for (what, event) in hostile_events(&jwt) {
        let answer = invoke(event).await;
        assert_eq!(answer.status, 400, "{what}");
        answer.assert_error(400, "invalid_request");
    }
    // Still the same environment: one JWKS fetch for everything.
    assert_eq!(app.tenant.jwks_calls(), 1);
    let logs = real.logs().await;
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains(&github_token(USER)));
}

/// Issue 22 through the real binary, in both payloads: repeated fields (two `Vary`, `Link`s,
/// challenges, rate limits) reach the caller, a Latin-1 `ETag` is dropped and counted and never
/// the answer, and every error of the function's own varies on `Authorization` and `Origin`
/// once; each summary line's status is the status the caller got.
#[tokio::test]
async fn the_real_binary_keeps_repeated_fields_and_drops_only_unwritable_values() {
    use crate::speaks_http::{
        assert_latin1_etag_dropped, assert_own_error, assert_repeated_fields, latin1_events,
        own_error_events, repeated_events,
    };

    let app = TestApp::spawn_with(
        &[("ALLOWED_ORIGINS", "https://app.example.com")],
        auth0_idp_proxy::auth::jwks::KeyPolicy::default(),
    )
    .await;
    let jwt = app.token(USER).sign();
    let real = RealBinary::start(&app, &[]).await;
    let mut statuses = Vec::new();
    for status in [200, 403] {
        for (payload, event, own) in repeated_events(&jwt, status) {
            let answer = real.invoke(&event).await;
            assert_eq!(answer.status, status, "{payload:?}");
            assert_repeated_fields(&answer, payload, &own);
            statuses.push((status, false));
        }
    }
    for (payload, event) in latin1_events(&jwt) {
        let answer = real.invoke(&event).await;
        assert_latin1_etag_dropped(&answer, payload);
        statuses.push((200, true));
    }
    for (payload, status, code, event) in own_error_events(&jwt) {
        let answer = real.invoke(&event).await;
        assert_own_error(&answer, payload, status, code);
        statuses.push((status, false));
    }
    let logs = real.logs().await;
    let summaries: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "invocation")
        .collect();
    assert_eq!(summaries.len(), statuses.len(), "{logs}");
    for (line, (status, dropped)) in summaries.iter().zip(&statuses) {
        assert_emf(line);
        assert_eq!(line["status"], *status, "the status the caller got: {line}");
        assert_eq!(
            line.get("HeaderValuesDropped").is_some(),
            *dropped,
            "{line}"
        );
    }
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains(&github_token(USER)));
    assert!(!logs.contains(&jwt));
}

/// The artifact that ships is the one tested (.ci/run, after `sam build`): `SHIPPED_BOOTSTRAP`,
/// the aarch64 `bootstrap` that `sam build` makes, run through `SHIPPED_BOOTSTRAP_RUNNER`
/// (Debian's qemu-user: `qemu-aarch64 -L /usr/aarch64-linux-gnu`), and `REFERENCE_BOOTSTRAP`,
/// the x86-64 release build, each a cold environment under its own Runtime API with the same
/// stand-ins, answer every sample event byte for byte the same, and as expected. Without those
/// variables (a plain `cargo test`) there is nothing to compare: the test says so and passes.
#[tokio::test]
async fn the_shipped_bootstrap_answers_every_sample_event_as_the_x86_64_release_build() {
    let (Ok(shipped), Ok(reference)) = (
        std::env::var("SHIPPED_BOOTSTRAP"),
        std::env::var("REFERENCE_BOOTSTRAP"),
    ) else {
        eprintln!("SHIPPED_BOOTSTRAP and REFERENCE_BOOTSTRAP are unset: nothing to compare");
        return;
    };
    let mut emulated: Vec<String> = std::env::var("SHIPPED_BOOTSTRAP_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    emulated.push(shipped);
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let names = sample_events();
    assert!(names.len() >= 8, "{names:?}");

    let mut answers: Vec<Vec<Value>> = Vec::new();
    for program in [emulated, vec![reference]] {
        // Info: the SDKs' debug lines cost seconds under emulation and are not compared.
        let real = RealBinary::start_as(&program, &app, &[("AWS_LAMBDA_LOG_LEVEL", "info")]).await;
        let mut these = Vec::new();
        for name in &names {
            let event = event_text(name).replace(PLACEHOLDER, &jwt);
            let outcome = real
                .runtime
                .invoke(&event, Duration::from_secs(10), Duration::from_secs(60))
                .await;
            let Some(Outcome::Response(response)) = outcome else {
                panic!(
                    "{program:?} {name}: no response: {outcome:?}; logs: {}",
                    real.logs().await
                );
            };
            assert_eq!(
                response["statusCode"],
                expected_status(name),
                "{program:?} {name}: {response}"
            );
            these.push(response);
        }
        assert!(real.runtime.init_errors().is_empty(), "{program:?}");
        let logs = real.logs().await;
        assert!(!logs.contains("panicked"), "{program:?}: {logs}");
        answers.push(these);
    }
    for (name, (shipped, reference)) in names.iter().zip(answers[0].iter().zip(&answers[1])) {
        assert_eq!(
            shipped, reference,
            "{name}: the shipped aarch64 bootstrap answers otherwise than the x86-64 build"
        );
    }
}
