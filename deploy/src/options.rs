//! The command line: `setup` and `check` and their flags. Tokens are never flags (a flag lands
//! in shell history and process listings): they come from the environment or a file.

use std::path::PathBuf;

/// What `--help` prints.
pub const USAGE: &str = "\
usage: cargo run -p deploy -- setup --domain TENANT --audience API_IDENTIFIER [options] [--apply]
       cargo run -p deploy -- check [--samconfig PATH] [--secret-file PATH] [--api-url URL]
                                    [--name NAME]

The operator's Management API token: AUTH0_MANAGEMENT_TOKEN, or --token-file PATH.
A user's access token for check's GET /identities: DEPLOY_USER_TOKEN (optional).

setup options:
  --domain TENANT            tenant domain (example.us.auth0.com) or origin
  --audience ID              the API identifier (AUTH0_AUDIENCE)
  --name NAME                names the API, the applications and the stack (auth0-idp-proxy)
  --spa-origin ORIGIN        the SPA's origin (repeatable): web origins, allowed origins,
                             ALLOWED_ORIGINS; its callback and logout URL unless --spa-callback
  --spa-callback URL         the SPA's callback URL (repeatable)
  --idp-connections JSON     IDP_CONNECTIONS: every connection the deployment serves, by name
                             ({} for the catalogue's defaults)
  --idp-connections-file F   the same, from a file
  --idp-token-source SOURCE  identities (default) or token_vault
  --token-table on|off       the DynamoDB token table (on)
  --region REGION            the stack's region (AWS_REGION, else us-east-1)
  --secret-id NAME           the credentials secret's name (NAME/credentials)
  --secret-arn ARN           its ARN, for samconfig.toml when it is kept in a file
  --secret-file PATH         write the secret's value to PATH (mode 0600) ...
  --create-secret            ... or create/update it in Secrets Manager
  --samconfig PATH           where to write samconfig.toml (./samconfig.toml)
  --token-file PATH          read the Management API token from PATH
  --apply                    make the changes (without it: show the plan only)

check options:
  --samconfig PATH           the samconfig.toml setup wrote (./samconfig.toml)
  --secret-file PATH         read the secret's value from PATH, not Secrets Manager
  --keys-secret-file PATH    read the token table's keys secret from PATH, not Secrets Manager
                             (where the stack keeps it: <stack name>-token-table-keys)
  --api-url URL              the stack's ApiUrl output: call it without and with a token
  --name NAME                setup's --name, where the stack's name differs from it
  --token-file PATH          read the Management API token from PATH";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `--help`.
    Help,
    /// `setup` (boxed: its flags are many).
    Setup(Box<SetupOptions>),
    /// `check`.
    Check(CheckOptions),
}

/// Where the credentials secret's value goes (setup) or comes from (check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPlace {
    /// A local file (mode 0600), for the operator to store with the AWS CLI.
    File(PathBuf),
    /// AWS Secrets Manager, the secret named in `samconfig.toml` or `--secret-id`.
    Manager,
}

/// `setup`'s flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOptions {
    /// `--domain`.
    pub domain: String,
    /// `--audience`.
    pub audience: String,
    /// `--name`.
    pub name: String,
    /// `--spa-origin`.
    pub spa_origins: Vec<String>,
    /// `--spa-callback`.
    pub spa_callbacks: Vec<String>,
    /// `--idp-connections` (or the file's text).
    pub idp_connections: Option<String>,
    /// `--idp-token-source`.
    pub idp_token_source: Option<String>,
    /// `--token-table`.
    pub token_table: bool,
    /// `--region`.
    pub region: Option<String>,
    /// `--secret-id`.
    pub secret_id: Option<String>,
    /// `--secret-arn`.
    pub secret_arn: Option<String>,
    /// `--secret-file` or `--create-secret`.
    pub secret: SecretPlace,
    /// `--samconfig`.
    pub samconfig: PathBuf,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// `--apply`.
    pub apply: bool,
}

/// `check`'s flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// `--samconfig`.
    pub samconfig: PathBuf,
    /// `--secret-file`: the secret's value from a file instead of Secrets Manager.
    pub secret_file: Option<PathBuf>,
    /// `--keys-secret-file`: the token table's keys secret from a file instead of Secrets
    /// Manager.
    pub keys_secret_file: Option<PathBuf>,
    /// `--api-url`: the stack's `ApiUrl` output.
    pub api_url: Option<String>,
    /// `--name`: what setup's `--name` was, where the stack's name differs from it.
    pub name: Option<String>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
}

/// Parses the arguments after the program's name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let command = args.next().ok_or("a command is needed: setup or check")?;
    if command == "--help" || command == "-h" {
        return Ok(Command::Help);
    }
    let known: &[&str] = match command.as_str() {
        "setup" => &[
            "--domain",
            "--audience",
            "--name",
            "--spa-origin",
            "--spa-callback",
            "--idp-connections",
            "--idp-connections-file",
            "--idp-token-source",
            "--token-table",
            "--region",
            "--secret-id",
            "--secret-arn",
            "--secret-file",
            "--create-secret",
            "--samconfig",
            "--token-file",
            "--apply",
        ],
        "check" => &[
            "--samconfig",
            "--secret-file",
            "--keys-secret-file",
            "--api-url",
            "--name",
            "--token-file",
        ],
        other => return Err(format!("unknown command {other:?}: setup or check")),
    };
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        if !known.contains(&flag.as_str()) {
            return Err(format!("{command}: unknown option {flag}"));
        }
        let value = if matches!(flag.as_str(), "--apply" | "--create-secret") {
            None
        } else {
            // A value never starts with `--`: `--domain --audience …` lacks the domain.
            let value = args.next().filter(|v| !v.starts_with("--"));
            Some(value.ok_or_else(|| format!("{command}: {flag} needs a value"))?)
        };
        flags.push((flag, value));
    }
    let all = |name: &str| -> Vec<String> {
        flags
            .iter()
            .filter(|(f, _)| f == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    };
    let one = |name: &str| all(name).pop();
    let samconfig = PathBuf::from(one("--samconfig").unwrap_or_else(|| "samconfig.toml".into()));
    let token_file = one("--token-file").map(PathBuf::from);
    if command == "check" {
        return Ok(Command::Check(CheckOptions {
            samconfig,
            secret_file: one("--secret-file").map(PathBuf::from),
            keys_secret_file: one("--keys-secret-file").map(PathBuf::from),
            api_url: one("--api-url"),
            name: one("--name"),
            token_file,
        }));
    }
    let required = |name: &str| one(name).ok_or_else(|| format!("setup: {name} is required"));
    let (domain, audience) = (required("--domain")?, required("--audience")?);
    let idp_connections = match (one("--idp-connections"), one("--idp-connections-file")) {
        (Some(_), Some(_)) => {
            return Err("setup: --idp-connections or --idp-connections-file, not both".into());
        }
        (Some(text), None) => Some(text),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| format!("--idp-connections-file {path}: {e}"))?,
        ),
        (None, None) => None,
    };
    let secret = match (
        one("--secret-file"),
        flags.iter().any(|(f, _)| f == "--create-secret"),
    ) {
        (Some(_), true) => return Err("setup: --secret-file or --create-secret, not both".into()),
        (Some(path), false) => SecretPlace::File(PathBuf::from(path)),
        (None, true) => SecretPlace::Manager,
        (None, false) => {
            return Err(
                "setup: where the secret goes is needed: --secret-file PATH or --create-secret"
                    .into(),
            );
        }
    };
    let token_table = match one("--token-table").as_deref() {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(format!(
                "setup: --token-table must be on or off, not {other:?}"
            ));
        }
    };
    Ok(Command::Setup(Box::new(SetupOptions {
        domain,
        audience,
        name: one("--name").unwrap_or_else(|| "auth0-idp-proxy".into()),
        spa_origins: all("--spa-origin"),
        spa_callbacks: all("--spa-callback"),
        idp_connections,
        idp_token_source: one("--idp-token-source"),
        token_table,
        region: one("--region"),
        secret_id: one("--secret-id"),
        secret_arn: one("--secret-arn"),
        secret,
        samconfig,
        token_file,
        apply: flags.iter().any(|(f, _)| f == "--apply"),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn setup_needs_its_tenant_and_where_the_secret_goes() {
        assert!(parse_line("setup --audience https://api").is_err_and(|e| e.contains("--domain")));
        assert!(
            parse_line("setup --domain t --audience a").is_err_and(|e| e.contains("--secret-file"))
        );
        let Ok(Command::Setup(options)) = parse_line(
            "setup --domain t --audience a --spa-origin http://a --spa-origin http://b --create-secret --apply",
        ) else {
            panic!("a valid setup line");
        };
        assert_eq!(options.spa_origins, ["http://a", "http://b"]);
        assert_eq!(options.secret, SecretPlace::Manager);
        assert!(options.apply && options.token_table);
    }

    #[test]
    fn no_token_is_taken_as_a_flag_and_unknown_flags_are_named() {
        assert!(parse_line("check --token abc").is_err_and(|e| e.contains("--token")));
        assert!(parse_line("deploy").is_err_and(|e| e.contains("setup or check")));
        assert_eq!(parse_line("check --help"), Ok(Command::Help));
        assert_eq!(
            parse_line("setup --domain t --bogus"),
            Err("setup: unknown option --bogus".into())
        );
        assert_eq!(
            parse_line("setup --domain --audience a"),
            Err("setup: --domain needs a value".into())
        );
    }
}
