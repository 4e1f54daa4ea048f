//! `deploy`: from an Auth0 tenant and an AWS account to a deployment known to be right.
//!
//! `setup` reads what the deployment needs (the connection table and its allow rules, as the
//! function itself parses them), compares it with the tenant through the Management API, shows
//! the plan and, with `--apply`, makes the tenant match; it writes `samconfig.toml` and the
//! credentials secret. `check` compares a deployed stack with the tenant and names each
//! misconfiguration with why it matters and its fix.
//!
//! # Layout
//! - [`options`]: the command line.
//! - [`operator`]: the operator's Management API token: where it is read from, the scopes it
//!   carries, never printed.
//! - [`management`]: the Management API client: pages, writes, Auth0's errors.
//! - [`deployment`]: what a deployment needs of the tenant, derived from its parameters.
//! - [`samconfig`]: `samconfig.toml`, written by setup and read by check.
//! - [`secret`]: the credentials secret's value and where it is kept (a file or Secrets
//!   Manager).
//! - [`keys`]: the token table's keys: the one place that validates them.
//! - [`plan`]: the tenant's state against the deployment's needs, as changes to apply.
//! - [`setup`]: the `setup` command.
//! - [`check`]: the `check` command and its findings.
//! - [`live`]: the deployed API, called without and with a user's token.

pub mod check;
pub mod deployment;
pub mod keys;
pub mod live;
pub mod management;
pub mod operator;
pub mod options;
pub mod plan;
pub mod samconfig;
pub mod secret;
pub mod setup;

use std::time::Duration;

use options::Command;

/// The limit on every HTTP call this tool makes.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The exit code of a run that found a misconfiguration or could not finish.
pub const FAILED: u8 = 1;
/// The exit code of a command line or input the tool cannot use.
pub const USAGE: u8 = 2;

/// Runs the command in `args` (without the program's name), reading the environment through
/// `env`; returns the process's exit code. Output goes to stdout, problems to stderr; neither
/// ever holds a token or a client secret.
pub async fn run(args: Vec<String>, env: &dyn Fn(&str) -> Option<String>) -> u8 {
    let command = match options::parse(args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}\n(cargo run -p deploy -- --help lists every option)");
            return USAGE;
        }
    };
    match command {
        Command::Help => {
            println!("{}", options::USAGE);
            0
        }
        Command::Setup(options) => setup::run(*options, env).await,
        Command::Check(options) => check::run(options, env).await,
    }
}

/// `error` and each of its causes, as one line for the operator: `a: b: c`.
pub fn report(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

/// The HTTP client for the tenant and the deployed API: every call bounded by [`HTTP_TIMEOUT`],
/// no redirect followed (a redirect would carry the operator's token elsewhere).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
