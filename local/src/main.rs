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

use auth0_idp_proxy::fleet::TablePolicy;
use auth0_idp_proxy::streaming::ResponseMode;
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

/// Widest line of the ready screen: it fits a terminal of 80 columns and 24 lines.
const WIDTH: usize = 80;

/// `text` cut to `width` characters, an ellipsis marking the cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Writes the demo user's Auth0 access token to `demo-token` beside the build (`target/`),
/// readable by its owner only, and returns the file's path, relative to the working directory
/// (dev/run's is the repository) when inside it: the screen names it instead of 900 characters.
fn write_token(token: &str) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let exe = std::env::current_exe().map_err(|e| format!("the token's file: {e}"))?;
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .ok_or("the token's file: no target directory")?;
    let path = dir.join("demo-token");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(token.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(cwd)
                .ok()
                .map(std::path::Path::to_path_buf)
        })
        .unwrap_or(path);
    Ok(shown.display().to_string())
}

/// Calls `path` with `token` and prints the answer on one line, as the demo's first proof of
/// life.
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
    let head = format!("GET {path} -> {status}: ");
    let room = WIDTH.saturating_sub(head.chars().count());
    println!("{head}{}", fit(&body.to_string(), room));
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
            "mode: token table {table} in moto's DynamoDB (--fleet),\n  \
             sealed, shared as a deployment's environments share TOKEN_TABLE"
        ),
        (None, true) => {
            "mode: token table (TOKEN_TABLE): Management token, IdP tokens, rate budgets".to_owned()
        }
        (None, false) => {
            "mode: memory: tokens live in this process (--fleet: in a token table)".to_owned()
        }
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
            options.streaming,
        )
        .await?;
        let dynamodb = demo.dynamodb.clone();
        (config, secrets, Some(demo), dynamodb)
    } else {
        let mut config = Config::from_env().map_err(|e| e.to_string())?;
        if options.streaming {
            config.response_mode = ResponseMode::Streaming;
        }
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
    let app = Arc::new(
        App::builder(config, http, secrets)
            .token_table(dynamodb.as_ref(), TablePolicy::default())
            .build(),
    );
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
    // The demo user's token, in a file rather than on the screen.
    let mut token_file: Option<String> = None;
    let demo_table = demo.as_ref().and_then(|d| d.token_table.as_deref());
    println!("{}", mode_line(demo_table, dynamodb.is_some()));
    if let Some(demo) = &demo {
        let port = |origin: String| {
            origin
                .rsplit_once(':')
                .map_or(origin.clone(), |(_, port)| format!(":{port}"))
        };
        println!(
            "demo on 127.0.0.1: stand-in Auth0 tenant {}, stand-in GitHub {},\n  \
             stand-in Google {} (through Token Vault), {}\n",
            port(demo.tenant.origin()),
            port(demo.github.origin()),
            port(demo.google.origin()),
            match demo.token_table {
                Some(_) => "moto's Secrets Manager, DynamoDB",
                None => "moto's Secrets Manager",
            }
        );
        // An Auth0 access token, as the frontend's getTokenSilently() would return: the
        // GitHub token itself stays in the function and is never printed.
        let token = demo.tenant.token(demo::AUDIENCE, demo::DEMO_USER).sign();
        token_file = Some(write_token(&token)?);
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
            let file = token_file.as_deref().unwrap_or_default();
            println!(
                "\nAn Auth0 access token for {user}, as a frontend gets it (getTokenSilently),\n\
                 valid for an hour, is in {file}. Call the function with it:\n  \
                 curl -H \"Authorization: Bearer $(cat {file})\" \\\n    \
                 {api_origin}/idp/github/user\n",
                user = demo::DEMO_USER,
            );
            // A file larger than any buffered answer, streamed from the stand-in Box's signed
            // download host.
            if options.streaming {
                println!(
                    "Streaming: download a 100 MB file from the stand-in Box:\n  \
                     curl -H \"Authorization: Bearer $(cat {file})\" -o file.bin \\\n    \
                     \"{api_origin}/idp/box/2.0/files/1/content?size=104857600\"\n"
                );
            }
        }
    }
    if let Some(origin) = page_origins.first() {
        println!("Sample frontend: open {origin}/ and sign in as a demo user.");
    }
    // For programs (the browser test, CI's API check): what is not there is left out.
    let mut ready = json!({
        "api": api_origin,
        "spa": page_origins.first(),
        "other_spa": page_origins.get(1),
        "tenant": demo.as_ref().map(|d| d.tenant.origin()),
        "github": demo.as_ref().map(|d| d.github.origin()),
        "google": demo.as_ref().map(|d| d.google.origin()),
        "token_table": demo.as_ref().and_then(|d| d.token_table.clone()),
        "token_file": token_file,
    });
    if let Some(members) = ready.as_object_mut() {
        members.retain(|_, value| !value.is_null());
    }
    println!("READY {ready}");
    if options.once {
        println!(
            "--once: the demo calls went through; the server stops now\n\
             (dev/run without --once keeps it serving)."
        );
        return Ok(());
    }
    println!(
        "Request logs follow (stderr, a JSON line per call; RUST_LOG=warn quiets them).\n\
         Ctrl-C stops."
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
        for line in [fleet, real, memory]
            .iter()
            .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        {
            assert!(line.chars().count() <= super::WIDTH, "{line}");
        }
    }

    #[test]
    fn long_answers_are_cut_to_the_screen() {
        assert_eq!(super::fit("short", 10), "short");
        let cut = super::fit(&"é".repeat(100), 20);
        assert_eq!(cut.chars().count(), 20);
        assert!(cut.ends_with('…'));
    }
}
