//! `deploy setup` and `deploy check` end to end on loopback: the binary against the stand-in
//! tenant's Management API, Secrets Manager in moto, and the function's own handler serving
//! the "deployed" API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use auth0_idp_proxy::{App, Config, upstream};
use serde_json::{Value, json};
use standin::{Moto, Tenant, profile, secrets_client};

/// Scopes the operator's token gets in these tests: what setup and check document, and
/// `create:connections` / `update:connections` to lay out the tenant as an operator would in
/// the Dashboard.
fn operator_scopes() -> Vec<&'static str> {
    let mut scopes: Vec<&str> = deploy::operator::SETUP_SCOPES.to_vec();
    scopes.extend(deploy::operator::CHECK_SCOPES);
    scopes.extend(["create:connections", "update:connections"]);
    scopes
}

const AUDIENCE: &str = "https://proxy.example.com/api";
const SPA_ORIGIN: &str = "http://127.0.0.1:5173";

/// github reads identities (an OAuth App: no refresh), google-oauth2 is on Token Vault; one
/// rule needs a permission.
fn connections_json() -> String {
    json!({
        "github": {"refresh": "none", "allow": ["GET /user/**", "POST /user/repos needs github:write"]},
        "google-oauth2": {"token_source": "token_vault"},
    })
    .to_string()
}

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("moto: {e} (source dev/venv.sh)")))
}

/// A fresh directory for one test's files.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deploy-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// The tenant, as an operator left it before setup: its connections made in the Dashboard.
async fn tenant_with(connections: &[Value]) -> (Tenant, String) {
    let tenant = Tenant::start("unused-m2m-secret").await.expect("tenant");
    let token = tenant.operator_token(&operator_scopes());
    let http = reqwest::Client::new();
    for connection in connections {
        let response = http
            .post(format!("{}/api/v2/connections", tenant.origin()))
            .bearer_auth(&token)
            .json(connection)
            .send()
            .await
            .expect("stand-in answers");
        assert_eq!(response.status(), 201, "{connection}");
    }
    (tenant, token)
}

fn standard_connections() -> Vec<Value> {
    vec![
        json!({"name": "github", "strategy": "github", "options": {"client_id": "gh", "client_secret": "gh-app-secret"}}),
        // Token Vault on: the purpose "Connected Accounts for Token Vault".
        json!({"name": "google-oauth2", "strategy": "google-oauth2", "connected_accounts": {"active": true}}),
    ]
}

/// The deploy binary's run: exit code, stdout, stderr.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `deploy args…` in `dir` with `env` (and moto's endpoint for Secrets Manager) on a
/// blocking thread, so that the stand-ins keep serving.
async fn deploy(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deploy"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("AUTH0_MANAGEMENT_TOKEN")
        .env_remove("DEPLOY_USER_TOKEN")
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto().endpoint())
        .env("AWS_ACCESS_KEY_ID", "standin")
        .env("AWS_SECRET_ACCESS_KEY", "standin")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        command.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("the deploy binary runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// One test's tenant, working directory and setup command line.
struct Fixture {
    dir: PathBuf,
    tenant: Tenant,
    /// The operator's token, with [`operator_scopes`].
    token: String,
    /// `--idp-connections`.
    connections: String,
    /// Where the secret goes: `--secret-file …` or `--create-secret …`.
    secret: Vec<&'static str>,
}

impl Fixture {
    /// A tenant holding the connections `made`; setup to be run for `connections`, its secret
    /// in a file.
    async fn new(name: &str, made: &[Value], connections: String) -> Self {
        let (tenant, token) = tenant_with(made).await;
        Self {
            dir: workdir(name),
            tenant,
            token,
            connections,
            secret: vec!["--secret-file", "secret.json"],
        }
    }

    /// The standard tenant and connections.
    async fn standard(name: &str) -> Self {
        Self::new(name, &standard_connections(), connections_json()).await
    }

    /// `deploy args…` with the operator's token and `env`.
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec![("AUTH0_MANAGEMENT_TOKEN", self.token.as_str())];
        all.extend_from_slice(env);
        deploy(&self.dir, args, &all).await
    }

    /// setup's command line, `--apply` when `apply`.
    fn setup_args(&self, apply: bool) -> Vec<String> {
        let origin = self.tenant.origin();
        let mut args: Vec<String> = [
            "setup",
            "--domain",
            &origin,
            "--audience",
            AUDIENCE,
            "--name",
            "proxy-test",
            "--spa-origin",
            SPA_ORIGIN,
            "--idp-connections",
            &self.connections,
        ]
        .iter()
        .chain(&self.secret)
        .map(|a| (*a).to_owned())
        .collect();
        if apply {
            args.push("--apply".into());
        }
        args
    }

    /// setup, with `token` in the environment (none: no token at all).
    async fn setup_with(&self, apply: bool, token: Option<&str>) -> Run {
        let args = self.setup_args(apply);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = token
            .map(|t| ("AUTH0_MANAGEMENT_TOKEN", t))
            .into_iter()
            .collect();
        deploy(&self.dir, &args, &env).await
    }

    /// setup with the operator's token.
    async fn setup(&self, apply: bool) -> Run {
        self.setup_with(apply, Some(&self.token)).await
    }

    /// setup --apply, which must succeed.
    async fn applied(&self) -> Run {
        let run = self.setup(true).await;
        assert_eq!(run.code, 0, "{}", run.all());
        run
    }
}

fn writes(tenant: &Tenant) -> Vec<String> {
    tenant
        .management_requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

/// Serves the function's real handler at a loopback URL, configured as `samconfig.toml` says
/// and reading its secret from moto: the "deployed" API.
async fn serve_function(
    parameters: &std::collections::BTreeMap<String, String>,
    tenant: &Tenant,
) -> String {
    let p = |k: &str| parameters.get(k).cloned().unwrap_or_default();
    let vars = [
        ("AUTH0_DOMAIN", tenant.origin()),
        ("AUTH0_AUDIENCE", p("Auth0Audience")),
        ("CREDENTIALS_SECRET_ID", p("CredentialsSecretArn")),
        ("IDP_CONNECTIONS", p("IdpConnections")),
        ("ALLOWED_ORIGINS", p("AllowedOrigins")),
        ("IDP_TOKEN_SOURCE", p("IdpTokenSource")),
    ];
    let config = Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("samconfig's parameters are a valid configuration");
    let secrets = secrets_client(moto().endpoint(), None).await;
    let app = Arc::new(App::new(
        config,
        upstream::build_client().expect("client"),
        secrets,
    ));
    let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let app = Arc::clone(&app);
        async move {
            let (parts, body) = request.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let request =
                lambda_http::Request::from_parts(parts, lambda_http::Body::from(bytes.to_vec()));
            let (parts, body) = app.handle(request).await.into_parts();
            axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_vec()))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/")
}

fn samconfig(dir: &Path) -> deploy::samconfig::SamConfig {
    let text =
        std::fs::read_to_string(dir.join("samconfig.toml")).expect("setup wrote samconfig.toml");
    deploy::samconfig::SamConfig::parse(&text).expect("readable")
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_twice_changes_nothing_the_second_time() {
    let f = Fixture::standard("twice").await;
    let (dir, tenant, token) = (&f.dir, &f.tenant, &f.token);
    let before = writes(tenant).len();

    let plan = f.setup(false).await;
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("+ create the API"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("Token Vault Custom API Client"),
        "{}",
        plan.stdout
    );
    assert_eq!(writes(tenant).len(), before, "a plan writes nothing");
    assert!(!dir.join("secret.json").exists() && !dir.join("samconfig.toml").exists());

    f.applied().await;
    let after_first = writes(tenant).len();
    assert_eq!(
        after_first - before,
        5,
        "API, three applications, one grant: {:?}",
        writes(tenant)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("secret.json"))
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let samconfig_text = std::fs::read_to_string(dir.join("samconfig.toml")).expect("written");
    let secret_text = std::fs::read_to_string(dir.join("secret.json")).expect("written");

    // What setup made is what Auth0 documents (plan.rs names the sources).
    let listed = |path: &'static str| {
        let (origin, token) = (tenant.origin(), token.clone());
        async move {
            reqwest::Client::new()
                .get(format!("{origin}/api/v2/{path}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("stand-in answers")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let clients = listed("clients").await;
    let app = |name: &str| {
        clients
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {clients}"))
    };
    let m2m = app("proxy-test (M2M)");
    assert_eq!(
        (
            &m2m["app_type"],
            &m2m["token_endpoint_auth_method"],
            &m2m["grant_types"]
        ),
        (
            &json!("non_interactive"),
            &json!("client_secret_post"),
            &json!(["client_credentials"])
        )
    );
    let vault = app("proxy-test (Token Vault)");
    assert_eq!(
        (
            &vault["app_type"],
            &vault["resource_server_identifier"],
            &vault["grant_types"]
        ),
        (
            &json!("resource_server"),
            &json!(AUDIENCE),
            &json!([deploy::deployment::TOKEN_VAULT_GRANT])
        )
    );
    let api = listed("resource-servers").await[0].clone();
    assert_eq!(
        (
            &api["signing_alg"],
            &api["enforce_policies"],
            &api["token_dialect"]
        ),
        (&json!("RS256"), &json!(true), &json!("access_token_authz"))
    );

    let second = f.setup(true).await;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stdout.contains("Nothing to change"),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("Plan"), "{}", second.stdout);
    assert_eq!(
        writes(tenant).len(),
        after_first,
        "no write reached the tenant: {:?}",
        writes(tenant)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("samconfig.toml")).expect("kept"),
        samconfig_text
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("secret.json")).expect("kept"),
        secret_text
    );
    assert!(!samconfig_text.contains("client_secret") && !samconfig_text.contains(token.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_adopts_the_custom_api_client_the_dashboard_made() {
    let f = Fixture::standard("adopt").await;
    let (origin, token) = (f.tenant.origin(), f.token.clone());
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{origin}/api/v2/{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // The API and its Custom API Client, as the Dashboard makes them (its own name).
    let response = post(
        "resource-servers",
        json!({"name": "Proxy", "identifier": AUDIENCE}),
    )
    .await
    .expect("stand-in answers");
    assert_eq!(response.status(), 201);
    let response = post(
        "clients",
        json!({"name": "Proxy (Test Application)", "app_type": "resource_server",
               "resource_server_identifier": AUDIENCE,
               "grant_types": [deploy::deployment::TOKEN_VAULT_GRANT]}),
    )
    .await
    .expect("stand-in answers");
    let custom: Value = response.json().await.expect("JSON");

    let plan = f.setup(false).await;
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("~ update the API"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("Token Vault Custom API Client"),
        "{}",
        plan.stdout
    );
    f.applied().await;
    let secret: Value =
        serde_json::from_str(&std::fs::read_to_string(f.dir.join("secret.json")).expect("written"))
            .expect("JSON");
    assert_eq!(
        secret["token_vault_client"]["client_id"],
        custom["client_id"]
    );
    assert!(
        !writes(&f.tenant)
            .iter()
            .any(|w| w.starts_with("PATCH /api/v2/clients")),
        "the linked client is not patched: {:?}",
        writes(&f.tenant)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_then_check_on_a_fresh_tenant_reports_no_finding_and_prints_no_secret() {
    let mut f = Fixture::standard("fresh").await;
    f.secret = vec!["--create-secret", "--secret-id", "proxy-test/fresh"];
    let setup = f.applied().await;
    let (dir, tenant, token) = (&f.dir, &f.tenant, &f.token);

    let config = samconfig(dir);
    let arn = config
        .parameters
        .get("CredentialsSecretArn")
        .expect("the secret's ARN")
        .clone();
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
    assert_eq!(config.parameters["IdpConnections"], f.connections);
    let stored = secrets_client(moto().endpoint(), None)
        .await
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .expect("setup created the secret")
        .secret_string
        .expect("text");
    let stored: Value = serde_json::from_str(&stored).expect("JSON");
    assert!(
        stored.get("token_store_keys").is_none(),
        "setup writes no table key: the stack generates them"
    );
    // The keys secret the template generates, under the name it gives it.
    let key = "k3y".repeat(22);
    let keys_value = json!({"key": key, "previous_keys": []}).to_string();
    let keys_id = deploy::keys::keys_secret_name(&config.stack_name);
    let admin = secrets_client(moto().endpoint(), None).await;
    if admin
        .create_secret()
        .name(&keys_id)
        .secret_string(&keys_value)
        .send()
        .await
        .is_err()
    {
        admin
            .put_secret_value()
            .secret_id(&keys_id)
            .secret_string(&keys_value)
            .send()
            .await
            .expect("the keys secret in moto");
    }

    let api = serve_function(&config.parameters, tenant).await;
    tenant.add_user(profile(
        "github|42",
        &[("github", "42", "gho_user_idp_token")],
    ));
    let user_token = tenant.token(AUDIENCE, "github|42").sign();
    let check = f
        .run(
            &["check", "--api-url", &api],
            &[("DEPLOY_USER_TOKEN", user_token.as_str())],
        )
        .await;
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(check.stdout.contains("no finding"), "{}", check.stdout);

    let secrets = [
        token.as_str(),
        user_token.as_str(),
        stored["client_secret"].as_str().expect("M2M secret"),
        stored["token_vault_client"]["client_secret"]
            .as_str()
            .expect("Token Vault client secret"),
        key.as_str(),
    ];
    for run in [&setup, &check] {
        for secret in secrets {
            assert!(
                !run.all().contains(secret),
                "a secret in the output:\n{}",
                run.all()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_each_misconfiguration() {
    // "box" is configured but never made in the tenant; "dropbox" is made with another strategy.
    let mut made = standard_connections();
    made.push(json!({"name": "dropbox", "strategy": "github"}));
    let connections = json!({
        "github": {"allow": ["GET /user/**", "POST /user/repos needs github:write"]},
        "google-oauth2": {"token_source": "token_vault"},
        "box": {"refresh": "none"},
        "dropbox": {"refresh": "none"},
    })
    .to_string();
    let f = Fixture::new("broken", &made, connections).await;
    f.applied().await;
    let (dir, tenant, token) = (&f.dir, &f.tenant, &f.token);
    let origin = tenant.origin();

    // Break the tenant as a hurried operator might, through the Management API.
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Value| {
        let request = http
            .request(method, format!("{origin}/api/v2/{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let response = request.send().await.expect("stand-in answers");
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.expect("JSON")
        }
    };
    let get = |path: &str| call(reqwest::Method::GET, path.to_owned(), Value::Null);
    let api = get("resource-servers?include_totals=true").await["resource_servers"][0].clone();
    call(
        reqwest::Method::PATCH,
        format!("resource-servers/{}", api["id"].as_str().expect("id")),
        json!({"enforce_policies": false, "scopes": [], "signing_alg": "HS256"}),
    )
    .await;
    let clients = get("clients").await;
    let app = |suffix: &str| {
        clients
            .as_array()
            .expect("a list")
            .iter()
            .find(|c| c["name"].as_str().is_some_and(|n| n.ends_with(suffix)))
            .and_then(|c| c["client_id"].as_str())
            .expect("setup made it")
            .to_owned()
    };
    call(
        reqwest::Method::PATCH,
        format!("clients/{}", app("(SPA)")),
        json!({"web_origins": []}),
    )
    .await;
    call(
        reqwest::Method::PATCH,
        format!("clients/{}", app("(Token Vault)")),
        json!({"grant_types": []}),
    )
    .await;
    let grant = get(&format!("client-grants?client_id={}", app("(M2M)"))).await[0].clone();
    call(
        reqwest::Method::PATCH,
        format!("client-grants/{}", grant["id"].as_str().expect("id")),
        json!({"scope": ["read:users", "update:users"]}),
    )
    .await;
    let listed = get("connections").await;
    let id_of = |name: &str| {
        listed
            .as_array()
            .expect("a list")
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["id"].as_str())
            .expect("made")
            .to_owned()
    };
    call(
        reqwest::Method::PATCH,
        format!("connections/{}", id_of("github")),
        json!({"connected_accounts": {"active": true}}),
    )
    .await;
    call(
        reqwest::Method::PATCH,
        format!("connections/{}", id_of("google-oauth2")),
        json!({"connected_accounts": {"active": false}}),
    )
    .await;
    // The table's keys secret holds a key too short to seal with.
    std::fs::write(
        dir.join("keys.json"),
        json!({"key": "too-short", "previous_keys": []}).to_string(),
    )
    .expect("written");

    // An API URL that is not the function: the tenant itself answers 404 there.
    let not_the_api = format!("{origin}/");
    let check = f
        .run(
            &[
                "check",
                "--secret-file",
                "secret.json",
                "--keys-secret-file",
                "keys.json",
                "--api-url",
                &not_the_api,
            ],
            &[],
        )
        .await;
    assert_eq!(check.code, 1, "{}", check.all());
    let mut codes: Vec<&str> = check
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("✗ [")?.split_once(']').map(|(code, _)| code))
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "api_challenge",
            "api_permissions_missing",
            "api_rbac_off",
            "api_signing_alg",
            "connection_missing",
            "connection_strategy",
            "connection_vault_off",
            "connection_vault_on",
            "idp_client_missing",
            "m2m_scopes_extra",
            "m2m_scopes_missing",
            "spa_origins",
            "token_table_keys",
            "vault_client",
        ],
        "{}",
        check.stdout
    );
    for line in ["why: ", "fix: "] {
        assert_eq!(
            check.stdout.matches(line).count(),
            codes.len(),
            "{}",
            check.stdout
        );
    }
    assert!(
        check.stdout.contains("lacks read:user_idp_tokens"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("also holds update:users"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("connection box does not exist"),
        "{}",
        check.stdout
    );
    assert!(!check.all().contains("gh-app-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_or_foreign_secret_is_named_without_being_printed() {
    let f = Fixture::standard("secret").await;
    f.applied().await;
    let dir = &f.dir;
    let check_args = ["check", "--secret-file", "secret.json"];

    std::fs::write(
        dir.join("secret.json"),
        r#"{"client_id": "x", "client_secret": "very-private" "#,
    )
    .expect("written");
    let malformed = f.run(&check_args, &[]).await;
    assert_eq!(malformed.code, 1, "{}", malformed.all());
    assert!(
        malformed.stdout.contains("[secret_malformed]"),
        "{}",
        malformed.stdout
    );
    assert!(!malformed.all().contains("very-private"));

    std::fs::write(
        dir.join("secret.json"),
        r#"{"client_id": "someone-else", "client_secret": "very-private"}"#,
    )
    .expect("written");
    let foreign = f.run(&check_args, &[]).await;
    assert_eq!(foreign.code, 1, "{}", foreign.all());
    for code in ["[secret_client_mismatch]", "[m2m_grant_missing]"] {
        assert!(foreign.stdout.contains(code), "{code}: {}", foreign.stdout);
    }
    assert!(!foreign.all().contains("very-private"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_lacking_a_scope_is_told_which() {
    let f = Fixture::new("scopes", &[], connections_json()).await;
    let tenant = &f.tenant;
    let weak = tenant.operator_token(&["read:resource_servers", "read:clients"]);
    let run = f.setup_with(false, Some(&weak)).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("create:resource_servers"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("read:client_grants"), "{}", run.stderr);
    assert!(!run.all().contains(weak.as_str()));
    assert!(
        writes(tenant).is_empty() && tenant.management_requests().is_empty(),
        "nothing was called"
    );

    let none = f.setup_with(false, None).await;
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("AUTH0_MANAGEMENT_TOKEN"),
        "{}",
        none.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opaque_token_s_missing_scope_is_named_from_auth0_s_answer() {
    let f = Fixture::new("opaque", &[], connections_json()).await;
    let reads_only = f.tenant.opaque_operator_token(&[
        "read:resource_servers",
        "read:clients",
        "read:client_grants",
    ]);
    let run = f.setup_with(true, Some(&reads_only)).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("lacks create:resource_servers (needed for POST /api/v2/resource-servers)"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains(reads_only.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_finds_its_applications_beyond_the_first_page() {
    let f = Fixture::standard("pages").await;
    let (tenant, token) = (&f.tenant, &f.token);
    let origin = tenant.origin();
    let http = reqwest::Client::new();
    // 150 applications made before: setup's own land on the second page of 100.
    for i in 0..150 {
        let response = http
            .post(format!("{origin}/api/v2/clients"))
            .bearer_auth(token)
            .json(&json!({"name": format!("other app {i}"), "app_type": "spa"}))
            .send()
            .await
            .expect("stand-in answers");
        assert_eq!(response.status(), 201);
    }
    f.applied().await;
    let before = writes(tenant).len();
    let again = f.setup(true).await;
    assert!(
        again.stdout.contains("Nothing to change"),
        "{}",
        again.all()
    );
    assert_eq!(writes(tenant).len(), before);
    assert!(
        tenant
            .management_requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v2/clients?") && r.contains("page=1")),
        "the second page was read"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stand_in_management_api_answers_as_auth0_documents() {
    let (tenant, token) = tenant_with(&[]).await;
    let origin = tenant.origin();
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{origin}/api/v2/{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("stand-in answers");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("JSON"),
            )
        }
    };
    let api = json!({"name": "a", "identifier": "https://a"});
    let (status, created) = send(
        reqwest::Method::POST,
        "resource-servers",
        &token,
        Some(api.clone()),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(created["signing_alg"], "RS256");
    let (status, conflict) =
        send(reqwest::Method::POST, "resource-servers", &token, Some(api)).await;
    assert_eq!(status, 409);
    assert_eq!(conflict["statusCode"], 409);
    assert_eq!(conflict["error"], "Conflict");
    assert!(
        conflict["message"].is_string() && conflict["errorCode"].is_string(),
        "{conflict}"
    );
    let (status, missing) = send(reqwest::Method::GET, "clients/nope", &token, None).await;
    assert_eq!(
        (status, missing["errorCode"].as_str()),
        (404, Some("inexistent_client"))
    );
    let (status, readonly) = send(
        reqwest::Method::PATCH,
        &format!("resource-servers/{}", created["id"].as_str().expect("id")),
        &token,
        Some(json!({"identifier": "https://b"})),
    )
    .await;
    assert_eq!(status, 400, "{readonly}");
    let weak = tenant.operator_token(&["read:clients"]);
    let (status, refused) = send(reqwest::Method::GET, "connections", &weak, None).await;
    assert_eq!(status, 403);
    assert_eq!(refused["errorCode"], "insufficient_scope");
    assert_eq!(
        refused["message"],
        "Insufficient scope, expected any of: read:connections"
    );
    for i in 0..3 {
        send(
            reqwest::Method::POST,
            "clients",
            &token,
            Some(json!({"name": format!("c{i}")})),
        )
        .await;
    }
    let (_, page) = send(
        reqwest::Method::GET,
        "clients?page=1&per_page=2&include_totals=true",
        &weak,
        None,
    )
    .await;
    assert_eq!(
        (
            page["start"].as_u64(),
            page["limit"].as_u64(),
            page["total"].as_u64()
        ),
        (Some(2), Some(2), Some(3))
    );
    assert_eq!(page["clients"].as_array().map(Vec::len), Some(1));
    assert!(
        page["clients"][0].get("client_secret").is_none(),
        "a secret only with read:client_keys"
    );
    let (_, bare) = send(reqwest::Method::GET, "clients?per_page=2", &token, None).await;
    assert_eq!(
        bare.as_array().map(Vec::len),
        Some(2),
        "without include_totals, a bare array"
    );

    // Reading clients takes any of four scopes; the summary one shows four fields.
    let none = tenant.operator_token(&["read:connections"]);
    let (status, refused) = send(reqwest::Method::GET, "clients", &none, None).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused["message"],
        "Insufficient scope, expected any of: read:clients,read:client_keys,read:client_credentials,read:client_summary"
    );
    let summary = tenant.operator_token(&["read:client_summary"]);
    let (status, listed) = send(reqwest::Method::GET, "clients", &summary, None).await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = listed[0]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert!(
        keys.iter()
            .all(|k| ["client_id", "name", "app_type", "description"].contains(&k.as_str())),
        "{keys:?}"
    );

    // Properties an endpoint does not take are refused, as its schema says.
    let client_id = bare[0]["client_id"].as_str().expect("an id").to_owned();
    let (status, refused) = send(
        reqwest::Method::PATCH,
        &format!("clients/{client_id}"),
        &token,
        Some(json!({"resource_server_identifier": "https://a"})),
    )
    .await;
    assert_eq!(
        (status, refused["errorCode"].as_str()),
        (400, Some("invalid_body"))
    );
    let management = format!("{origin}/api/v2/");
    let (status, grant) = send(
        reqwest::Method::POST,
        "client-grants",
        &token,
        Some(json!({"client_id": client_id, "audience": management, "scope": ["read:users"]})),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    let (status, refused) = send(
        reqwest::Method::PATCH,
        &format!("client-grants/{}", grant["id"].as_str().expect("id")),
        &token,
        Some(json!({"client_id": "another", "scope": []})),
    )
    .await;
    assert_eq!(
        (status, refused["errorCode"].as_str()),
        (400, Some("invalid_body"))
    );
    let (status, _) = send(
        reqwest::Method::POST,
        "client-grants",
        &token,
        Some(json!({"client_id": client_id, "audience": "https://nowhere", "scope": []})),
    )
    .await;
    assert_eq!(
        status, 404,
        "a grant's audience must be an API of the tenant"
    );

    // `identifiers` filters the APIs.
    let (_, found) = send(
        reqwest::Method::GET,
        "resource-servers?identifiers=https%3A%2F%2Fa&include_totals=true",
        &token,
        None,
    )
    .await;
    assert_eq!(found["total"], 1);
    let (_, found) = send(
        reqwest::Method::GET,
        "resource-servers?identifiers=https%3A%2F%2Fb",
        &token,
        None,
    )
    .await;
    assert_eq!(found, json!([]));
}
