//! `check`: a deployed stack (its `samconfig.toml`, its secret, its API URL) against the tenant.
//! Each misconfiguration is a [`Finding`] with a code, why it matters and its fix; any finding
//! makes the exit code non-zero.
//!
//! The stack is learned from the `samconfig.toml` that setup wrote and `sam deploy` used, and
//! the API URL from `--api-url` (the stack's `ApiUrl` output): reading CloudFormation itself
//! would add an AWS SDK crate for one value the operator has on screen after `sam deploy`.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use auth0_idp_proxy::credentials::Credentials;
use auth0_idp_proxy::idp::connections::TokenSourceKind;

use crate::deployment::{AppRole, Deployment, TOKEN_VAULT_GRANT};
use crate::management::Management;
use crate::operator::{CHECK_SCOPES, OperatorToken};
use crate::options::CheckOptions;
use crate::plan::{self, APP_FIELDS};
use crate::samconfig::SamConfig;
use crate::secret::{self, SecretStore};
use crate::{FAILED, USAGE, keys, live};

/// The environment variable that may hold a user's access token for `GET /identities`.
pub const USER_TOKEN_VAR: &str = "DEPLOY_USER_TOKEN";

/// One misconfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable code, for scripts and docs/deploy.md.
    pub code: &'static str,
    /// What is wrong, naming the object.
    pub what: String,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it: a command or a Dashboard path.
    pub fix: String,
}

const SETUP_FIX: &str = "run cargo run -p deploy -- setup … --apply again (docs/deploy.md)";

fn finding(code: &'static str, what: String, why: &'static str, fix: impl Into<String>) -> Finding {
    Finding {
        code,
        what,
        why,
        fix: fix.into(),
    }
}

/// Runs `check`; returns the exit code.
pub async fn run(options: CheckOptions, env: &dyn Fn(&str) -> Option<String>) -> u8 {
    let config = match std::fs::read_to_string(&options.samconfig)
        .map_err(|e| e.to_string())
        .and_then(|text| SamConfig::parse(&text))
    {
        Ok(config) => config,
        Err(e) => {
            eprintln!(
                "check: {}: {e} (setup writes it)",
                options.samconfig.display()
            );
            return USAGE;
        }
    };
    let p = |name: &str| config.parameters.get(name).cloned().unwrap_or_default();
    // `*` lets every origin call the API: no particular origin for the SPA to list.
    let origins: Vec<String> = p("AllowedOrigins")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_owned)
        .collect();
    let deployment = match Deployment::new(
        &p("Auth0Domain"),
        &p("Auth0Audience"),
        options.name.as_deref().unwrap_or(&config.stack_name),
        origins,
        Some(&p("IdpConnections")),
        Some(&p("IdpTokenSource")),
        p("TokenTable") != "Disabled",
    ) {
        Ok(deployment) => deployment,
        Err(e) => {
            eprintln!("check: samconfig.toml: {e}");
            return USAGE;
        }
    };
    let token = match OperatorToken::for_command(options.token_file.as_deref(), env, CHECK_SCOPES) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("check: {error}");
            return USAGE;
        }
    };
    let client = secret::manager_client(Some(&config.region)).await;
    let store = match &options.secret_file {
        Some(path) => SecretStore::File(path.clone()),
        None => SecretStore::Manager {
            client: client.clone(),
            id: p("CredentialsSecretArn"),
        },
    };
    // The keys secret the template generates, named after the stack.
    let keys_store = match &options.keys_secret_file {
        Some(path) => SecretStore::File(path.clone()),
        None => SecretStore::Manager {
            client,
            id: keys::keys_secret_name(&config.stack_name),
        },
    };
    let user_token = env(USER_TOKEN_VAR)
        .filter(|t| !t.trim().is_empty())
        .map(SecretString::from);
    match check(
        &deployment,
        token,
        &store,
        &keys_store,
        options.api_url.as_deref(),
        user_token.as_ref(),
    )
    .await
    {
        Ok(findings) if findings.is_empty() => {
            if options.api_url.is_none() {
                println!(
                    "check: the live API was not called (give --api-url, the stack's ApiUrl)."
                );
            } else if user_token.is_none() {
                println!(
                    "check: GET /identities was not tried (set {USER_TOKEN_VAR} to a user's access token)."
                );
            }
            println!("check: no finding: the stack, its secret and the tenant agree.");
            0
        }
        Ok(findings) => {
            for f in &findings {
                println!(
                    "✗ [{}] {}\n    why: {}\n    fix: {}",
                    f.code, f.what, f.why, f.fix
                );
            }
            println!("check: {} finding(s).", findings.len());
            FAILED
        }
        Err(message) => {
            eprintln!("check: {message}");
            FAILED
        }
    }
}

/// Every finding about `deployment`; `Err` when the tenant cannot be read at all.
pub async fn check(
    deployment: &Deployment,
    token: OperatorToken,
    store: &SecretStore,
    keys_store: &SecretStore,
    api_url: Option<&str>,
    user_token: Option<&SecretString>,
) -> Result<Vec<Finding>, String> {
    let http = crate::http_client().map_err(|e| crate::report(&e))?;
    let management = Management::new(http.clone(), deployment.origin.clone(), token);
    let mut findings = Vec::new();

    // The secret: read, parsed as the function parses it, never printed.
    let secret = match store.read().await {
        Ok(Some(secret)) => Some(secret),
        Ok(None) => {
            findings.push(finding(
                "secret_missing",
                "the credentials secret does not exist".into(),
                "the function answers every call 503 credentials_unavailable",
                SETUP_FIX,
            ));
            None
        }
        Err(e) => {
            let what = format!(
                "the credentials secret cannot be read: {}",
                crate::report(&e)
            );
            findings.push(finding(
                "secret_unreadable",
                what,
                "the function answers every call 503 credentials_unavailable",
                "check CredentialsSecretArn in samconfig.toml and your AWS credentials and region",
            ));
            None
        }
    };
    let credentials = secret.as_ref().and_then(|s| match Credentials::parse(s.expose_secret()) {
        Ok(c) => Some(c),
        Err(e) => {
            findings.push(finding("secret_malformed", format!("the credentials secret is not usable: {e}"),
                "the function answers every call 503 credentials_unavailable",
                format!("{SETUP_FIX}, or fix the JSON: {{\"client_id\", \"client_secret\", …}} (README, Configuration)")));
            None
        }
    });
    if deployment.token_table {
        let legacy = secret.as_ref().is_some_and(keys::legacy_keys);
        let problem = match keys_store.read().await {
            Ok(Some(keys)) => keys::table_keys(&keys)
                .err()
                .map(|reason| format!("the token table's keys secret is unusable: {reason}")),
            // A stack from before the generated keys: its `token_store_keys` still serve.
            Ok(None) if legacy => None,
            Ok(None) => Some("the token table's keys secret does not exist".to_owned()),
            Err(e) => Some(format!(
                "the token table's keys secret cannot be read: {}",
                crate::report(&e)
            )),
        };
        if let Some(what) = problem {
            findings.push(finding("token_table_keys", what,
                "the function runs without the fleet table (metric TokenTableKeysUnusable): single-use refresh tokens can be lost and every environment pays its own Management API reads",
                "deploy the stack with TokenTable=Enabled: the template generates the keys (docs/fleet-state.md, Keys); or set TokenTable=Disabled"));
        }
    }

    // The API.
    let permissions = deployment.permissions();
    let state = plan::read(&management, deployment)
        .await
        .map_err(|e| crate::report(&e))?;
    match &state.api {
        None => findings.push(finding(
            "api_missing",
            format!("no API has the identifier {}", deployment.audience),
            "Auth0 issues no access token for this audience: every caller is refused",
            format!(
                "{SETUP_FIX}, or Dashboard > Applications > APIs > Create API with identifier {}",
                deployment.audience
            ),
        )),
        Some(api) => {
            if api["signing_alg"] != "RS256" {
                findings.push(finding("api_signing_alg", format!("the API signs with {}, not RS256", api["signing_alg"]),
                    "the function accepts RS256 tokens only: every call answers 401 invalid_token",
                    "Dashboard > Applications > APIs > the API > Settings > Signing Algorithm: RS256"));
            }
            if !permissions.is_empty()
                && (api["enforce_policies"] != true || api["token_dialect"] != "access_token_authz")
            {
                findings.push(finding("api_rbac_off", "the API does not put permissions in its access tokens (RBAC off, or not \"Add Permissions in the Access Token\")".into(),
                    "allow rules that need a permission refuse every caller 403 insufficient_scope",
                    format!("{SETUP_FIX}, or Dashboard > Applications > APIs > the API > Settings > RBAC Settings: Enable RBAC and Add Permissions in the Access Token")));
            }
            let defined = plan::permissions_of(api);
            let missing: Vec<&str> = permissions
                .iter()
                .map(String::as_str)
                .filter(|p| !defined.contains(p))
                .collect();
            if !missing.is_empty() {
                findings.push(finding("api_permissions_missing", format!("the API does not define {}", missing.join(", ")),
                    "no user can be given what the allow rules need: those calls are refused 403 insufficient_scope",
                    format!("{SETUP_FIX}, or Dashboard > Applications > APIs > the API > Permissions; then give them to users (User Management > Roles)")));
            }
        }
    }

    // The M2M application: the secret's client, its grant of exactly the scopes needed.
    if let Some(credentials) = &credentials {
        let client_id = credentials.m2m.client_id.as_str();
        let setup_m2m_id = state
            .apps
            .get(&AppRole::M2m)
            .and_then(|a| a["client_id"].as_str());
        if setup_m2m_id.is_some_and(|id| id != client_id) {
            findings.push(finding(
                "secret_client_mismatch",
                format!(
                    "the secret's client_id is not the application {:?}",
                    deployment.app_name(AppRole::M2m)
                ),
                "the function reads users with another application than the one setup granted",
                SETUP_FIX,
            ));
        }
        let grant = plan::grant_of(&management, client_id, &deployment.management_audience())
            .await
            .map_err(|e| crate::report(&e))?;
        let wanted = deployment.m2m_scopes();
        match grant {
            None => findings.push(finding("m2m_grant_missing", "the secret's application has no grant on the Management API".into(),
                "the function cannot get a Management API token: every call answers 502 upstream_error",
                format!("{SETUP_FIX}, or Dashboard > Applications > APIs > Auth0 Management API > Machine to Machine Applications: authorize it with {}", wanted.join(" ")))),
            Some(grant) => {
                let held: Vec<&str> = grant["scope"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let lacking: Vec<&str> = wanted.iter().copied().filter(|w| !held.contains(w)).collect();
                let extra: Vec<&str> = held.iter().copied().filter(|h| !wanted.contains(h)).collect();
                if !lacking.is_empty() {
                    findings.push(finding("m2m_scopes_missing", format!("the Management API grant lacks {}", lacking.join(", ")),
                        "user reads fail (403 from Auth0): calls answer 502 upstream_error or find no IdP token",
                        format!("{SETUP_FIX}, or Dashboard > Applications > APIs > Auth0 Management API > Machine to Machine Applications > the application: tick {}", lacking.join(", "))));
                }
                if !extra.is_empty() {
                    findings.push(finding("m2m_scopes_extra", format!("the Management API grant also holds {}", extra.join(", ")),
                        "a leaked secret would give more than the function needs (it never writes)",
                        format!("{SETUP_FIX}, or untick {} on that grant", extra.join(", "))));
                }
            }
        }
        // Token Vault: the exchanging client must be allowed the grant type.
        if deployment.uses_token_vault() {
            let exchanger = credentials.vault_client().client_id.as_str();
            let clients = management
                .list(
                    "clients",
                    "clients",
                    &[("fields", APP_FIELDS), ("include_fields", "true")],
                )
                .await
                .map_err(|e| crate::report(&e))?;
            let allowed = clients.iter().any(|c| {
                c["client_id"] == exchanger
                    && c["grant_types"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|g| g == TOKEN_VAULT_GRANT)
            });
            if !allowed {
                findings.push(finding("vault_client", "the client that performs Token Vault exchanges (token_vault_client, else the M2M client) is not allowed the Token Vault grant".into(),
                    "every call on a token_vault connection answers 502 upstream_error (unauthorized_client)",
                    format!("{SETUP_FIX} (it creates the Custom API Client), or Dashboard > Applications > APIs > the API > Add Application (Custom API Client) with the Token Vault grant")));
            }
        }
        // idp_clients for every connection the function renews itself.
        for connection in deployment.served() {
            if connection.token_source == TokenSourceKind::Identities
                && connection.renews()
                && !credentials.idp_clients.contains_key(&connection.name)
            {
                findings.push(finding("idp_client_missing", format!("connection {}: its tokens are renewed by the function, but the secret has no idp_clients.{}", connection.name, connection.name),
                    "when the IdP token expires the user gets 403 reconsent_required instead of a renewed token",
                    format!("add \"idp_clients\": {{\"{}\": {{\"client_id\": \"…\", \"client_secret\": \"…\"}}}} (the IdP app's own) to the secret, or use token_source token_vault", connection.name)));
            }
        }
    }

    // The SPA's origins against ALLOWED_ORIGINS.
    if !deployment.origins.is_empty() {
        match state.apps.get(&AppRole::Spa) {
            None => findings.push(finding(
                "spa_missing",
                format!("no application {:?}", deployment.app_name(AppRole::Spa)),
                "the frontend has no client to sign users in with",
                SETUP_FIX,
            )),
            Some(spa) => {
                let has = |field: &str, origin: &str| {
                    spa[field]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|o| o == origin)
                };
                let missing: Vec<&str> = deployment
                    .origins
                    .iter()
                    .map(String::as_str)
                    .filter(|o| !has("web_origins", o) || !has("allowed_origins", o))
                    .collect();
                if !missing.is_empty() {
                    findings.push(finding("spa_origins", format!("the SPA's Allowed Web Origins / Allowed Origins (CORS) lack {}", missing.join(", ")),
                        "the SPA SDK's silent token calls from those origins fail (CORS), so the page gets no access token",
                        format!("{SETUP_FIX}, or Dashboard > Applications > the SPA > Settings > Allowed Web Origins and Allowed Origins (CORS)")));
                }
            }
        }
    }

    // Each served connection: exists, with its strategy and the Token Vault setting its source needs.
    // One read per connection, by `name` (a documented filter of `GET /connections`): no
    // paging through a tenant's every connection.
    for connection in deployment.served() {
        let found = management
            .list(
                "connections",
                "connections",
                &[("name", connection.name.as_str())],
            )
            .await
            .map_err(|e| crate::report(&e))?
            .into_iter()
            .find(|c| c["name"] == connection.name.as_str());
        let Some(found) = found else {
            findings.push(finding("connection_missing", format!("connection {} does not exist in the tenant", connection.name),
                "every call to /idp/{connection}/… answers 404 identity_not_linked: no user can have that identity",
                format!("Dashboard > Authentication > Social (or Enterprise) > Create Connection named {} (README's connection table says how)", connection.name)));
            continue;
        };
        // The tenant's strategy is what Auth0 writes as its identities' `provider`: one the
        // entry is for (its own name; `oauth2` for a Marketplace or custom social entry such as
        // Slack or Discord, and only for those).
        if let Some(strategy) = &connection.strategy
            && !connection
                .providers
                .iter()
                .any(|p| found["strategy"] == p.as_str())
        {
            findings.push(finding("connection_strategy", format!("connection {} has strategy {}, the configuration expects {strategy}", connection.name, found["strategy"]),
                "the catalogue entry that serves it speaks another provider's API: calls fail or are refused",
                format!("set \"strategy\" for {} in IdpConnections, or rename the connection", connection.name)));
        }
        // Token Vault on a connection: its purpose "Connected Accounts for Token Vault",
        // `connected_accounts.active` (auth0/docs-v2 `main/docs/secure/call-apis-on-users-behalf/
        // token-vault/connected-accounts-for-token-vault.mdx`; terraform-provider-auth0
        // `test/data/recordings/TestAccConnectionConnectedAccounts.yaml`), or on an OIDC
        // connection `options.federated_connections_access_tokens.active` (terraform-provider-auth0
        // `docs/resources/connection.md`).
        let vault_on = found["connected_accounts"]["active"] == true
            || found["options"]["federated_connections_access_tokens"]["active"] == true;
        match (connection.token_source, vault_on) {
            (TokenSourceKind::TokenVault, false) => findings.push(finding("connection_vault_off", format!("connection {} uses token_source token_vault, but Token Vault is off on it", connection.name),
                "Auth0 holds no token for it: every call answers 403 reconsent_required",
                format!("Dashboard > Authentication > the connection {} > Purpose: Connected Accounts for Token Vault, or set its token_source to identities", connection.name))),
            (TokenSourceKind::Identities, true) => findings.push(finding("connection_vault_on", format!("connection {} has Token Vault on, but its token_source is identities", connection.name),
                "with Token Vault on Auth0 no longer puts IdP tokens in identities[]: every call answers 403 reconsent_required",
                format!("set \"token_source\": \"token_vault\" for {} in IdpConnections (or IdpTokenSource), then sam deploy", connection.name))),
            _ => {}
        }
    }

    // The live API.
    if let Some(api) = api_url {
        if let Err((code, what)) = live::challenge(&http, api).await {
            findings.push(finding(
                code,
                what,
                "the API is not the deployed function, or something in front of it answers",
                "check --api-url against the stack's ApiUrl output (sam list stack-outputs)",
            ));
        } else if let Some(user) = user_token
            && let Err((code, what)) = live::identities(&http, api, user).await
        {
            findings.push(finding(
                code,
                what,
                "a signed-in user cannot use the API",
                "see docs/deploy.md, Troubleshooting, for the error code",
            ));
        }
    }
    Ok(findings)
}
