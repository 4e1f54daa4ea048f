//! `local`: the function's real handler behind a local HTTP API, run by `dev/run`.
//!
//! With no `AUTH0_DOMAIN` in the environment it runs the demo ([`demo`]): stand-ins for Auth0,
//! GitHub and Secrets Manager on 127.0.0.1, the sample frontend on a second origin, and a first
//! call shown going through. With the function's variables set (see README), it serves the same
//! handler against your real tenant and secret. Options: [`options::USAGE`].
//!
//! Layout: `options` (the command line), `gateway` (an HTTP request as API Gateway's v2 event),
//! `demo` (the stand-ins and demo users), `page` (the sample frontend's origin).

mod demo;
mod gateway;
mod options;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use auth0_idp_proxy::{App, Config, aws, telemetry, upstream};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use options::{Command, Options};

/// Binds 127.0.0.1:`port`; a busy port is named, with the option that changes it.
async fn bind(port: u16, option: &str) -> Result<(tokio::net::TcpListener, String), String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "port {port} is already in use (another dev/run?): choose another with {option} N, or {option} 0 for any free port"
            ),
            _ => format!("cannot listen on 127.0.0.1:{port} ({option}): {e}"),
        })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, format!("http://{addr}")))
}

async fn api(State(app): State<Arc<App>>, request: Request) -> Response {
    match gateway::to_event(request).await {
        Ok(event) => gateway::invoke(&app, &event).await,
        Err(status) => status.into_response(),
    }
}

/// Calls `path` with `token` and prints the answer, as the demo's first proof of life.
async fn show(http: &reqwest::Client, api: &str, path: &str, token: &str) -> Result<(), String> {
    let url = format!("{api}{path}");
    let response = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    println!(
        "GET {path} -> {status}\n{}\n",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// The ready output's mode line: where fleet state lives, as a deployment would keep it.
fn mode_line(demo_table: Option<&str>, token_table: bool) -> String {
    match (demo_table, token_table) {
        (Some(table), _) => format!(
            "mode: token table {table} in moto's DynamoDB (--fleet): the Management API token, IdP tokens and rate budgets are kept there, sealed, as a deployment's instances share them with TOKEN_TABLE"
        ),
        (None, true) => "mode: token table (TOKEN_TABLE): the Management API token, IdP tokens and rate budgets are kept there".to_owned(),
        (None, false) => "mode: memory: tokens and rate budgets live in this process only (--fleet keeps them in a token table in moto's DynamoDB)".to_owned(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{}", options::USAGE);
            return std::process::ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("dev/run: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dev/run: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    // Request logs are on by default: the function's one summary line per invocation is `info`.
    // The function's own line format: its summary line is pre-rendered JSON.
    let _ = tracing_subscriber::fmt()
        .json()
        .event_format(telemetry::LogFormat::default())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();

    let demo_mode = std::env::var_os("AUTH0_DOMAIN").is_none();
    if options.spa_port.is_some() || options.other_spa_port.is_some() {
        page::check_sdk()?;
    }
    let (api_listener, api_origin) = bind(options.port, "--port").await?;
    let mut pages = Vec::new();
    if let Some(port) = options.spa_port {
        pages.push(bind(port, "--spa-port").await?);
    }
    if let Some(port) = options.other_spa_port {
        pages.push(bind(port, "--other-spa-port").await?);
    }
    let page_origins: Vec<String> = pages.iter().map(|(_, origin)| origin.clone()).collect();

    // The function's own SDK configuration outside the demo, for Secrets Manager and, where
    // `TOKEN_TABLE` names one, the token table.
    let (config, secrets, demo, dynamodb) = if demo_mode {
        let (config, secrets, demo) = demo::start(
            &page_origins,
            options.idp_tokens_file.as_ref(),
            options.fleet,
        )
        .await?;
        let dynamodb = demo.dynamodb.clone();
        (config, secrets, Some(demo), dynamodb)
    } else {
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let aws = aws::load().await;
        let dynamodb = config
            .token_table
            .is_some()
            .then(|| aws_sdk_dynamodb::Client::new(&aws));
        (
            config,
            aws_sdk_secretsmanager::Client::new(&aws),
            None,
            dynamodb,
        )
    };
    let http = upstream::build_client().map_err(|e| e.to_string())?;
    let app = App::new(config, http, secrets);
    let app = Arc::new(match &dynamodb {
        Some(client) => app.with_token_table(client),
        None => app,
    });
    let router = Router::new().fallback(api).with_state(app);
    tokio::spawn(async move { axum::serve(api_listener, router).await });

    let page_config = Arc::new(match &demo {
        Some(demo) => demo::page_config(demo, &api_origin),
        None if pages.is_empty() => Value::Null,
        None => page::real_tenant_config(&api_origin)?,
    });
    for (listener, _) in pages {
        let router = Router::new()
            .fallback(page::serve)
            .with_state(Arc::clone(&page_config));
        tokio::spawn(async move { axum::serve(listener, router).await });
    }

    println!("auth0-idp-proxy: the function's handler is serving {api_origin}");
    let demo_table = demo.as_ref().and_then(|d| d.token_table.as_deref());
    println!("{}", mode_line(demo_table, dynamodb.is_some()));
    if let Some(demo) = &demo {
        println!(
            "demo: stand-in Auth0 tenant {}, stand-in GitHub {}, stand-in Google {} (through the tenant's Token Vault), {} (all on 127.0.0.1)\n",
            demo.tenant.origin(),
            demo.github.origin(),
            demo.google.origin(),
            match demo.token_table {
                Some(_) => "moto's Secrets Manager and DynamoDB",
                None => "moto's Secrets Manager",
            }
        );
        // An Auth0 access token, as the frontend's getTokenSilently() would return: the
        // GitHub token itself stays in the function and is never printed.
        let token = demo.tenant.token(demo::AUDIENCE, demo::DEMO_USER).sign();
        let http = reqwest::Client::new();
        show(&http, &api_origin, "/identities", &token).await?;
        show(&http, &api_origin, "/idp/github/user", &token).await?;
        // Served through Auth0 Token Vault's exchange, not the Management API.
        show(
            &http,
            &api_origin,
            "/idp/google-oauth2/oauth2/v3/userinfo",
            &token,
        )
        .await?;
        // With --once the server is gone when this is read: no command it cannot serve.
        if !options.once {
            println!(
                "Call it with curl. An Auth0 access token is what a frontend gets from Auth0's SPA SDK\n\
                 (getTokenSilently, audience {aud}); in the demo the stand-in tenant signed this one for\n\
                 {user}, valid for an hour (run dev/run again for a new one):\n\n  \
                 TOKEN={token}\n  \
                 curl -H \"Authorization: Bearer $TOKEN\" {api_origin}/idp/github/user\n",
                aud = demo::AUDIENCE,
                user = demo::DEMO_USER,
            );
        }
    }
    if let Some(origin) = page_origins.first() {
        println!("Sample frontend: open {origin}/ and sign in as a demo user.");
    }
    println!(
        "READY {}",
        json!({
            "api": api_origin,
            "spa": page_origins.first(),
            "other_spa": page_origins.get(1),
            "tenant": demo.as_ref().map(|d| d.tenant.origin()),
            "github": demo.as_ref().map(|d| d.github.origin()),
            "google": demo.as_ref().map(|d| d.google.origin()),
            "token_table": demo.as_ref().and_then(|d| d.token_table.clone()),
        })
    );
    if options.once {
        println!(
            "--once: the demo calls went through; the server stops now (dev/run without --once keeps it serving)."
        );
        return Ok(());
    }
    println!(
        "Request logs follow (stderr, one JSON line per call; RUST_LOG=warn quiets them). Ctrl-C stops."
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mode_line_names_where_state_lives() {
        let fleet = super::mode_line(Some("t"), true);
        assert!(
            fleet.starts_with("mode: token table t in moto's DynamoDB"),
            "{fleet}"
        );
        let real = super::mode_line(None, true);
        assert!(
            real.starts_with("mode: token table (TOKEN_TABLE)"),
            "{real}"
        );
        let memory = super::mode_line(None, false);
        assert!(memory.starts_with("mode: memory"), "{memory}");
    }
}
