//! `local`: the function's real handler behind a local HTTP API.
//!
//! With no `AUTH0_DOMAIN` in the environment it runs the demo: a stand-in Auth0 tenant, a
//! stand-in GitHub and moto's Secrets Manager, all on 127.0.0.1, and shows a signed demo token
//! going through `GET /identities` and `GET /idp/github/user`; and a stand-in Google whose
//! `google-oauth2` connection is served through the tenant's Token Vault exchange
//! (`GET /idp/google-oauth2/oauth2/v3/userinfo`). With the function's variables set
//! (see README), it serves the same handler against your real tenant and secret.
//!
//! Options: `--port N` (default 3000; 0 picks one), `--spa-port N` to serve `examples/spa` on a
//! second origin (allowed by CORS), `--other-spa-port N` to serve it on a third origin that is
//! not allowed, and `--once` to run the demo calls and exit.

mod gateway;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use auth0_idp_proxy::{App, Config, upstream};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use standin::{Flavor, Idp, M2M_CLIENT_ID, Moto, Tenant};

/// The demo's API identifier.
const AUDIENCE: &str = "https://auth0-idp-proxy.local/api";
/// The demo user whose GitHub token works, and one whose token GitHub has revoked.
const DEMO_USER: &str = "github|1001";
const REVOKED_USER: &str = "github|2002";
/// The demo API's Custom API Client, which performs Token Vault exchanges.
const VAULT_CLIENT_ID: &str = "demo-api-client";

struct Options {
    port: u16,
    spa_port: Option<u16>,
    other_spa_port: Option<u16>,
    once: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 3000,
        spa_port: None,
        other_spa_port: None,
        once: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut port = |name: &str| -> Result<u16, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a port number"))
        };
        match arg.as_str() {
            "--port" => options.port = port("--port")?,
            "--spa-port" => options.spa_port = Some(port("--spa-port")?),
            "--other-spa-port" => options.other_spa_port = Some(port("--other-spa-port")?),
            "--once" => options.once = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

async fn bind(port: u16) -> std::io::Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let origin = format!("http://{}", listener.local_addr()?);
    Ok((listener, origin))
}

/// What the demo started, for the banner and the sample page's `/config.json`.
struct Demo {
    tenant: Tenant,
    _github: Idp,
    _google: Idp,
    _moto: Moto,
    github_token: String,
}

async fn start_demo(
    allowed_origins: &str,
) -> Result<(Config, aws_sdk_secretsmanager::Client, Demo), String> {
    let moto = Moto::start()?;
    let client_secret = format!("demo-secret-{}", std::process::id());
    let tenant = Tenant::start(&client_secret)
        .await
        .map_err(|e| e.to_string())?;
    let github = Idp::start().await.map_err(|e| e.to_string())?;
    let github_token = format!("gho_demo_{}", std::process::id());
    tenant.add_user(standin::profile(
        DEMO_USER,
        &[("github", "1001", &github_token)],
    ));
    tenant.add_user(standin::profile(
        REVOKED_USER,
        &[("github", "2002", "gho_revoked_at_github")],
    ));
    github.grant(
        &github_token,
        json!({"login": "octocat", "id": 1001, "name": "The Octocat (stand-in)"}),
    );
    // Google through Token Vault: the demo user connected the account, and the tenant exchanges
    // the caller's token for it with the API's own client.
    let google = Idp::start_as(Flavor::Google)
        .await
        .map_err(|e| e.to_string())?;
    tenant.enable_token_vault(
        "google-oauth2",
        &google,
        std::time::Duration::from_secs(3600),
    );
    tenant.add_token_vault_client(VAULT_CLIENT_ID, Some(&client_secret), AUDIENCE);
    tenant.connect_account(
        DEMO_USER,
        "google-oauth2",
        json!({"email": "octocat@example.test", "name": "The Octocat (stand-in Google)"}),
    );

    let secrets = standin::secrets_client(moto.endpoint(), None).await;
    let secret_id = "auth0-idp-proxy/demo";
    secrets
        .create_secret()
        .name(secret_id)
        .secret_string(
            json!({
                "client_id": M2M_CLIENT_ID,
                "client_secret": client_secret,
                "token_vault_client": {"client_id": VAULT_CLIENT_ID, "client_secret": client_secret},
            })
            .to_string(),
        )
        .send()
        .await
        .map_err(|e| {
            format!(
                "moto: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;

    let env = [
        ("AUTH0_DOMAIN", tenant.origin()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("CREDENTIALS_SECRET_ID", secret_id.to_owned()),
        (
            "IDP_CONNECTIONS",
            json!({
                "github": {"api_base": github.origin()},
                "google-oauth2": {"api_base": google.origin(), "token_source": "token_vault"},
            })
            .to_string(),
        ),
        ("ALLOWED_ORIGINS", allowed_origins.to_owned()),
    ];
    let config =
        Config::from_lookup(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .map_err(|e| e.to_string())?;
    Ok((
        config,
        secrets,
        Demo {
            tenant,
            _github: github,
            _google: google,
            _moto: moto,
            github_token,
        },
    ))
}

#[derive(Clone)]
struct Served {
    app: Arc<App>,
}

async fn api(State(served): State<Served>, request: Request) -> Response {
    match gateway::to_event(request).await {
        Ok(event) => gateway::invoke(&served.app, &event).await,
        Err(status) => status.into_response(),
    }
}

/// Serves the sample page's files, and `config.json` telling it where the API and tenant are.
async fn serve_page(State(config): State<Arc<Value>>, request: Request) -> Response {
    let name = match request.uri().path() {
        "/" => "index.html",
        "/config.json" => return axum::Json(config.as_ref().clone()).into_response(),
        path => path.trim_start_matches('/'),
    };
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/spa"));
    // Only files that exist in the folder, by exact name: no path ever reaches the file system.
    let known = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.file_name().to_str() == Some(name));
    if !known {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    };
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn show(http: &reqwest::Client, url: &str, token: &str) -> Result<(), String> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    println!(
        "GET {url} -> {status}\n{}\n",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();

    let (api_listener, api_origin) = bind(options.port).await.map_err(|e| e.to_string())?;
    let spa = match options.spa_port {
        Some(port) => Some(bind(port).await.map_err(|e| e.to_string())?),
        None => None,
    };
    let other_spa = match options.other_spa_port {
        Some(port) => Some(bind(port).await.map_err(|e| e.to_string())?),
        None => None,
    };

    let demo_mode = std::env::var("AUTH0_DOMAIN").is_err();
    let (config, secrets, demo) = if demo_mode {
        let allowed = spa.as_ref().map(|(_, o)| o.clone()).unwrap_or_default();
        let (config, secrets, demo) = start_demo(&allowed).await?;
        (config, secrets, Some(demo))
    } else {
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        (config, aws_sdk_secretsmanager::Client::new(&aws), None)
    };
    let http = upstream::build_client().map_err(|e| e.to_string())?;
    let app = Arc::new(App::new(config, http, secrets));

    let router = Router::new().fallback(api).with_state(Served { app });
    tokio::spawn(async move { axum::serve(api_listener, router).await });
    let page_config = Arc::new(json!({
        "api": api_origin,
        "tenant": demo.as_ref().map(|d| d.tenant.origin()),
        "audience": AUDIENCE,
        "demo_users": [DEMO_USER, REVOKED_USER],
    }));
    let mut spa_origins = Vec::new();
    for (listener, origin) in spa.into_iter().chain(other_spa) {
        let router = Router::new()
            .fallback(serve_page)
            .with_state(Arc::clone(&page_config));
        tokio::spawn(async move { axum::serve(listener, router).await });
        spa_origins.push(origin);
    }

    println!("auth0-idp-proxy: the function's handler is serving {api_origin}");
    if let Some(demo) = &demo {
        println!(
            "demo mode: stand-in Auth0 tenant {}, stand-in GitHub, moto Secrets Manager (all on 127.0.0.1)\n",
            demo.tenant.origin()
        );
        let token = demo.tenant.token(AUDIENCE, DEMO_USER).sign();
        println!("a signed demo access token for {DEMO_USER}:\n{token}\n");
        let client = reqwest::Client::new();
        show(&client, &format!("{api_origin}/identities"), &token).await?;
        show(&client, &format!("{api_origin}/idp/github/user"), &token).await?;
        show(
            &client,
            &format!("{api_origin}/idp/google-oauth2/oauth2/v3/userinfo"),
            &token,
        )
        .await?;
        println!("try it: curl -H 'authorization: Bearer {token}' {api_origin}/idp/github/user");
    }
    for origin in &spa_origins {
        println!("sample frontend: {origin}/");
    }
    println!(
        "READY {}",
        json!({
            "api": api_origin,
            "spa": spa_origins.first(),
            "other_spa": spa_origins.get(1),
            "tenant": demo.as_ref().map(|d| d.tenant.origin()),
            "idp_token": demo.as_ref().map(|d| d.github_token.clone()),
        })
    );
    if options.once {
        return Ok(());
    }
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}
