//! The demo's world: a stand-in Auth0 tenant (with the sample frontend registered as a single
//! page application, refresh tokens and a Multi-Resource Refresh Token policy for the My Account
//! API), a stand-in GitHub, a stand-in Google served through Token Vault (its Drive needs a Drive
//! scope) and moto's Secrets Manager, all on 127.0.0.1, and three demo users — one whose GitHub
//! token works, one whose token GitHub has revoked, one who has not connected Google yet.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use auth0_idp_proxy::Config;
use serde_json::{Value, json};
use standin::{Flavor, Idp, M2M_CLIENT_ID, Moto, ScopeDialect, SpaClient, Tenant};

/// The demo's API identifier.
pub const AUDIENCE: &str = "https://auth0-idp-proxy.local/api";
/// The sample frontend's client id in the stand-in tenant.
pub const SPA_CLIENT_ID: &str = "demo-spa-client";
/// The demo user whose GitHub token works.
pub const DEMO_USER: &str = "github|1001";
/// The demo user whose GitHub token GitHub has revoked: the page shows the reconnect flow.
pub const REVOKED_USER: &str = "github|2002";
/// The demo user who has not connected Google: the page shows the Connected Accounts flow.
pub const UNCONNECTED_USER: &str = "github|3003";
/// The demo API's Custom API Client, which performs Token Vault exchanges.
const VAULT_CLIENT_ID: &str = "demo-api-client";
/// The Token Vault connection of the demo.
const GOOGLE: &str = "google-oauth2";
/// What stand-in Google's Drive (`/drive/v3/…`) accepts: the catalogue's Drive scopes, the
/// read-only one first, as Google documents them for `files.list`.
const DRIVE_SCOPES: [&str; 5] = [
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.file",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
    "https://www.googleapis.com/auth/drive.metadata",
];
/// How long the stand-in Google's Token Vault tokens live (see where it is set).
pub const GOOGLE_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30);
/// The My Account API scopes the sample frontend's refresh token may get a token with (the
/// SPA SDK's `connectAccountWithRedirect` asks for the first; the page lists and deletes).
const MY_ACCOUNT_SCOPES: [&str; 3] = [
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
];

/// What the demo started. The servers live as long as the process.
pub struct Demo {
    /// The stand-in Auth0 tenant.
    pub tenant: Tenant,
    /// The stand-in GitHub.
    pub github: Idp,
    /// The stand-in Google, served through the tenant's Token Vault.
    pub google: Idp,
    /// With `--fleet`: the token table's name in moto's DynamoDB.
    pub token_table: Option<String>,
    /// With `--fleet`: the client for the token table in moto.
    pub dynamodb: Option<aws_sdk_dynamodb::Client>,
    _moto: Moto,
}

/// The GitHub profile of the demo user with GitHub id `id`.
fn github_profile(github: &Idp, id: u64) -> Value {
    let (login, name, repos) = match id {
        1001 => ("octocat", "The Octocat", 42),
        3003 => ("monalisa", "Mona Lisa", 2),
        _ => ("hubot", "Hubot", 3),
    };
    json!({
        "login": login,
        "id": id,
        "name": format!("{name} (stand-in)"),
        "avatar_url": format!("{}/avatars/u/{id}", github.origin()),
        "html_url": format!("https://github.com/{login}"),
        "public_repos": repos,
    })
}

/// Records the stand-in GitHub tokens issued, for the browser test (`--idp-tokens-file`).
#[derive(Clone)]
struct TokenLog(Option<Arc<Mutex<std::fs::File>>>);

impl TokenLog {
    fn open(path: Option<&PathBuf>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self(Some(Arc::new(Mutex::new(file)))))
    }

    fn record(&self, token: &str) {
        if let Some(file) = &self.0 {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            // A test reads this file; a failed write makes its check fail, not the demo.
            let _ = writeln!(file, "{token}");
        }
    }

    /// Records each token Token Vault hands out or renews, as it appears (a connection made
    /// in the browser mints them inside the tenant, where no hook sees them).
    fn follow_vault(&self, tenant: &Tenant) {
        if self.0.is_none() {
            return;
        }
        let (log, tenant) = (self.clone(), tenant.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let issued = tenant.vault_tokens_issued();
                for token in issued.iter().skip(seen) {
                    log.record(token);
                }
                seen = issued.len();
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        });
    }
}

/// Starts the stand-ins and returns the function's configuration for them. `page_origins`:
/// the sample frontend's origins, all registered in the tenant, the first one only allowed by
/// the function's CORS.
pub async fn start(
    page_origins: &[String],
    idp_tokens_file: Option<&PathBuf>,
    fleet: bool,
    streaming: bool,
) -> Result<(Config, aws_sdk_secretsmanager::Client, Demo), String> {
    let tokens = TokenLog::open(idp_tokens_file)?;
    let moto = Moto::start()?;
    let client_secret = format!("demo-secret-{}", std::process::id());
    let tenant = Tenant::start(&client_secret)
        .await
        .map_err(|e| format!("stand-in tenant: {e}"))?;
    let github = Idp::start()
        .await
        .map_err(|e| format!("stand-in GitHub: {e}"))?;

    let github_token = format!("gho_demo_{}", std::process::id());
    github.grant(&github_token, github_profile(&github, 1001));
    tokens.record(&github_token);
    let revoked_token = format!("gho_revoked_{}", std::process::id());
    tokens.record(&revoked_token);
    let mona_token = format!("gho_mona_{}", std::process::id());
    github.grant(&mona_token, github_profile(&github, 3003));
    tokens.record(&mona_token);
    // The note is for the tenant's sign-in page only: the name stays true after a reconnect.
    for (user, token, name, nickname, note) in [
        (
            DEMO_USER,
            &github_token,
            "The Octocat",
            "octocat",
            "GitHub and Google work",
        ),
        (
            REVOKED_USER,
            &revoked_token,
            "Hubot",
            "hubot",
            "starts with a GitHub token GitHub has revoked",
        ),
        (
            UNCONNECTED_USER,
            &mona_token,
            "Mona Lisa",
            "monalisa",
            "has not connected Google yet (Connected Accounts)",
        ),
    ] {
        let id = user.trim_start_matches("github|");
        // Streaming: the same stand-in serves a Box (its files and their signed downloads).
        let mut identities = vec![("github", id, token.as_str())];
        if streaming {
            identities.push(("box", id, token.as_str()));
        }
        let mut profile = standin::profile(user, &identities);
        profile["name"] = json!(name);
        profile["nickname"] = json!(nickname);
        profile["email"] = json!(format!("{nickname}@example.test"));
        profile["app_metadata"] = json!({"demo_note": note});
        profile["picture"] = json!(format!("{}/avatars/u/{id}", github.origin()));
        tenant.add_user(profile);
    }
    // Signing in with `connection=github` is a fresh GitHub login: GitHub issues a new token
    // and Auth0 stores it on the identity (the page's "Reconnect GitHub").
    let minting_github = github.clone();
    let minted = tokens.clone();
    tenant.on_connection_login("github", move |github_id| {
        let token = standin::new_token("gho_fresh_");
        let id = github_id.parse().unwrap_or(0);
        minting_github.grant(&token, github_profile(&minting_github, id));
        minted.record(&token);
        token
    });
    tenant.register_api(AUDIENCE);
    tenant.register_spa(SpaClient {
        client_id: SPA_CLIENT_ID.to_owned(),
        callback_urls: page_origins.to_vec(),
        logout_urls: page_origins.to_vec(),
        web_origins: page_origins.to_vec(),
    });
    // The page's refresh token (it signs in with offline_access) may get a token for the My
    // Account API: the SDK's connectAccountWithRedirect, and the page's list and disconnect.
    tenant.allow_refresh_audience(
        SPA_CLIENT_ID,
        &tenant.my_account_audience(),
        &MY_ACCOUNT_SCOPES,
    );

    let google = Idp::start_as(Flavor::Google)
        .await
        .map_err(|e| format!("stand-in Google: {e}"))?;
    // Google's tokens live an hour; the demo's 30 s, Token Vault renewing them at each exchange
    // past that: the function keeps an exchanged token until shortly before it expires, so a
    // disconnection made on the page shows in the API's answers within seconds.
    tenant.enable_token_vault(GOOGLE, &google, GOOGLE_TOKEN_LIFETIME);
    // Drive answers only a token granted a Drive scope, as Google does (its 403 with
    // ACCESS_TOKEN_SCOPE_INSUFFICIENT): the page's "one more scope" flow.
    google.require_scope("/drive/v3/", &DRIVE_SCOPES, ScopeDialect::Google);
    tenant.add_token_vault_client(VAULT_CLIENT_ID, Some(&client_secret), AUDIENCE);
    // Google through Token Vault: two demo users connected their account (sign-in scopes, no
    // Drive), and the tenant exchanges the caller's token for it with the API's own client.
    // Mona connects hers from the page (Connected Accounts); each user's Google account is
    // the same whenever it is connected.
    for (user, nickname, name) in [
        (DEMO_USER, "octocat", "The Octocat"),
        (REVOKED_USER, "hubot", "Hubot"),
        (UNCONNECTED_USER, "monalisa", "Mona Lisa"),
    ] {
        let profile = json!({
            "email": format!("{nickname}@example.test"),
            "name": format!("{name} (stand-in Google)"),
        });
        tenant.set_idp_profile(user, GOOGLE, profile.clone());
        if user != UNCONNECTED_USER {
            tenant.connect_account(user, GOOGLE, profile);
        }
    }
    // Every token Token Vault holds, those of connections made from the page included.
    tokens.follow_vault(&tenant);

    // With `--fleet`, the token table in moto's DynamoDB, and its keys in their own secret, as
    // the template makes them.
    let table = match fleet {
        true => Some(token_table(&moto).await?),
        false => None,
    };

    let secrets = standin::secrets_client(moto.endpoint(), None).await;
    let keys_secret_id = match &table {
        Some(_) => {
            let id = "auth0-idp-proxy/demo-table-keys";
            let keys = json!({"key": demo_key()?, "previous_keys": []});
            create_secret(&secrets, id, &keys).await?;
            id
        }
        None => "",
    };
    let secret_id = "auth0-idp-proxy/demo";
    let credentials = json!({
        "client_id": M2M_CLIENT_ID,
        "client_secret": client_secret,
        "token_vault_client": {"client_id": VAULT_CLIENT_ID, "client_secret": client_secret},
    });
    create_secret(&secrets, secret_id, &credentials).await?;

    let table_name = table
        .as_ref()
        .map(|(name, _)| name.clone())
        .unwrap_or_default();
    let env = [
        ("TOKEN_TABLE", table_name),
        ("TOKEN_STORE_KEYS_SECRET_ID", keys_secret_id.to_owned()),
        ("AUTH0_DOMAIN", tenant.origin()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("CREDENTIALS_SECRET_ID", secret_id.to_owned()),
        ("IDP_CONNECTIONS", {
            let mut connections = json!({
                "github": {"api_base": github.origin()},
                GOOGLE: {"api_base": google.origin(), "token_source": "token_vault"},
            });
            if streaming {
                connections["box"] = json!({
                    "api_base": github.origin(),
                    "download_host_origin": github.origin(),
                });
            }
            connections.to_string()
        }),
        (
            "RESPONSE_MODE",
            if streaming { "streaming" } else { "buffered" }.to_owned(),
        ),
        (
            "ALLOWED_ORIGINS",
            page_origins.first().cloned().unwrap_or_default(),
        ),
    ];
    let config =
        Config::from_lookup(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .map_err(|e| e.to_string())?;
    Ok((
        config,
        secrets,
        Demo {
            tenant,
            github,
            google,
            token_table: table.as_ref().map(|(name, _)| name.clone()),
            dynamodb: table.map(|(_, client)| client),
            _moto: moto,
        },
    ))
}

/// The page's `config.json` in the demo: with DPoP (the function's default, `DPOP=allowed`),
/// so that the SDK's tokens are bound to its browser key and each call carries a proof.
pub fn page_config(demo: &Demo, api_origin: &str) -> Value {
    json!({
        "domain": demo.tenant.origin(),
        "clientId": SPA_CLIENT_ID,
        "audience": AUDIENCE,
        "api": api_origin,
        "useDpop": true,
    })
}

/// Creates the secret `id` holding `value` in moto's Secrets Manager.
async fn create_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    id: &str,
    value: &Value,
) -> Result<(), String> {
    secrets
        .create_secret()
        .name(id)
        .secret_string(value.to_string())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "moto: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })
}

/// Creates the demo's token table in `moto`, as `template.yaml` declares it.
async fn token_table(moto: &Moto) -> Result<(String, aws_sdk_dynamodb::Client), String> {
    let name = "auth0-idp-proxy-demo-tokens".to_owned();
    let client = standin::dynamodb_client(moto.endpoint()).await;
    standin::create_token_table(&client, &name)
        .await
        .map_err(|e| format!("moto's DynamoDB: {e}"))?;
    Ok((name, client))
}

/// A fresh key for the keys secret, from the system's random source: 48 bytes as 64 characters
/// of base64, as long as the template's generated one.
fn demo_key() -> Result<String, String> {
    use base64::Engine;
    use std::io::Read;
    let mut key = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .map_err(|e| format!("no random key for the token table: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}
