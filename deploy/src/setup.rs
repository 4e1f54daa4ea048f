//! `setup`: reads the tenant, shows the plan, and with `--apply` makes the tenant, the
//! credentials secret and `samconfig.toml` match the deployment. A second run finds nothing to
//! change and sends no write.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::deployment::{AppRole, Deployment};
use crate::management::{Management, ManagementError};
use crate::operator::{OperatorToken, SETUP_SCOPES};
use crate::options::{SecretPlace, SetupOptions};
use crate::plan::{self, Change, SpaUrls};
use crate::samconfig::SamConfig;
use crate::secret::{self, AppCredentials, SecretStore};
use crate::{FAILED, USAGE};

/// Runs `setup`; returns the exit code.
pub async fn run(options: SetupOptions, env: &dyn Fn(&str) -> Option<String>) -> u8 {
    let deployment = match Deployment::new(
        &options.domain,
        &options.audience,
        &options.name,
        options.spa_origins.clone(),
        options.idp_connections.as_deref(),
        options.idp_token_source.as_deref(),
        options.token_table,
    ) {
        Ok(deployment) => deployment,
        Err(message) => {
            eprintln!("setup: {message}");
            return USAGE;
        }
    };
    let token = match OperatorToken::for_command(options.token_file.as_deref(), env, SETUP_SCOPES) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("setup: {error}");
            return USAGE;
        }
    };
    match setup(&options, &deployment, token, env).await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("setup: {message}");
            FAILED
        }
    }
}

/// The secret must be (re)written: why, or `None` when it already fits.
fn secret_reason(
    previous: Option<&SecretString>,
    m2m: Option<&str>,
    vault: Option<&str>,
) -> Option<&'static str> {
    let Some(previous) = previous else {
        return Some("there is none yet");
    };
    if auth0_idp_proxy::credentials::Credentials::parse(previous.expose_secret()).is_err() {
        return Some("it is not the documented JSON");
    }
    if m2m.is_none() || secret::field(previous, &["client_id"]).as_deref() != m2m {
        return Some("it is not the M2M application's");
    }
    if secret::field(previous, &["token_vault_client", "client_id"]).as_deref() != vault {
        return Some("its token_vault_client is not the Token Vault client's");
    }
    None
}

async fn setup(
    options: &SetupOptions,
    deployment: &Deployment,
    token: OperatorToken,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let http = crate::http_client().map_err(|e| crate::report(&e))?;
    let management = Management::new(http, deployment.origin.clone(), token);
    let region = options
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let secret_id = options
        .secret_id
        .clone()
        .unwrap_or_else(|| format!("{}/credentials", deployment.name));
    let store = match &options.secret {
        SecretPlace::File(path) => SecretStore::File(path.clone()),
        SecretPlace::Manager => SecretStore::Manager {
            client: secret::manager_client(Some(&region)).await,
            id: secret_id.clone(),
        },
    };
    let spa = SpaUrls {
        origins: options.spa_origins.clone(),
        callbacks: if options.spa_callbacks.is_empty() {
            options.spa_origins.clone()
        } else {
            options.spa_callbacks.clone()
        },
    };

    let state = plan::read(&management, deployment)
        .await
        .map_err(|e| crate::report(&e))?;
    let changes = plan::changes(deployment, &state, &spa);
    let id_of = |role| {
        state
            .apps
            .get(&role)
            .and_then(|a| a["client_id"].as_str())
            .map(str::to_owned)
    };
    let vault_id = if deployment.uses_token_vault() {
        id_of(AppRole::TokenVault)
    } else {
        None
    };
    let previous = store.read().await.map_err(|e| crate::report(&e))?;
    let secret_reason = secret_reason(
        previous.as_ref(),
        id_of(AppRole::M2m).as_deref(),
        vault_id.as_deref(),
    );
    let arn = match &options.secret {
        SecretPlace::File(_) => options.secret_arn.clone(),
        SecretPlace::Manager => store.arn().await.map_err(|e| crate::report(&e))?,
    };
    let samconfig = |arn: Option<&str>| samconfig_of(deployment, &region, arn);
    let current_samconfig = std::fs::read_to_string(&options.samconfig).ok();
    let samconfig_changes = current_samconfig.as_deref()
        != Some(samconfig(arn.as_deref()).render().as_str())
        || (secret_reason.is_some() && arn.is_none() && options.secret == SecretPlace::Manager);

    println!(
        "Tenant {} · API {} · connections: {}",
        deployment.origin.as_str(),
        deployment.audience,
        served_names(deployment)
    );
    let secret_place = match &options.secret {
        SecretPlace::File(path) => format!("file {} (mode 0600)", path.display()),
        SecretPlace::Manager => format!("Secrets Manager secret {secret_id}"),
    };
    let count =
        changes.len() + usize::from(secret_reason.is_some()) + usize::from(samconfig_changes);
    if count == 0 {
        println!(
            "Nothing to change: the tenant, the credentials secret and {} already match.",
            options.samconfig.display()
        );
        return Ok(());
    }
    println!("Plan ({count} changes):");
    for change in &changes {
        println!("  {change}");
    }
    if let Some(reason) = secret_reason {
        println!("  + write the credentials secret to the {secret_place}: {reason}");
    }
    if samconfig_changes {
        println!(
            "  + write {} (the stack's parameters; no secret)",
            options.samconfig.display()
        );
    }
    if !options.apply {
        println!("Nothing was changed. Run the same command with --apply to make these changes.");
        return Ok(());
    }

    let mut created: BTreeMap<AppRole, AppCredentials> = BTreeMap::new();
    for change in &changes {
        apply(&management, deployment, change, &state, &mut created)
            .await
            .map_err(|e| crate::report(&e))?;
        println!("  done: {change}");
    }
    let mut arn = arn;
    if secret_reason.is_some() {
        let m2m = credentials_of(&management, &state, &created, AppRole::M2m).await?;
        let vault = match deployment.uses_token_vault() {
            true => Some(credentials_of(&management, &state, &created, AppRole::TokenVault).await?),
            false => None,
        };
        let value = secret::value(&m2m, vault.as_ref(), previous.as_ref());
        if let Some(written) = store.write(&value).await.map_err(|e| crate::report(&e))? {
            arn = Some(written);
        }
        println!("  done: the credentials secret is in the {secret_place}");
    }
    let text = samconfig(arn.as_deref()).render();
    if current_samconfig.as_deref() != Some(text.as_str()) {
        std::fs::write(&options.samconfig, text)
            .map_err(|e| format!("{}: {e}", options.samconfig.display()))?;
        println!("  done: {} written", options.samconfig.display());
    }
    println!(
        "Applied. Next: sam build, then sam deploy --guided (docs/deploy.md), then cargo run -p deploy -- check --api-url <ApiUrl>."
    );
    if arn.is_none() {
        println!(
            "Store the secret's file in Secrets Manager (aws secretsmanager create-secret --name {secret_id} --secret-string file://…) and give its ARN as CredentialsSecretArn."
        );
    }
    Ok(())
}

fn served_names(deployment: &Deployment) -> String {
    let served: Vec<String> = deployment
        .served()
        .iter()
        .map(|c| format!("{} ({})", c.name, c.token_source.as_str()))
        .collect();
    if served.is_empty() {
        "none named in IdpConnections".into()
    } else {
        served.join(", ")
    }
}

/// The stack's `samconfig.toml` for `deployment`.
pub fn samconfig_of(deployment: &Deployment, region: &str, arn: Option<&str>) -> SamConfig {
    let mut parameters = BTreeMap::from([
        ("Auth0Domain".to_owned(), deployment.domain.clone()),
        ("Auth0Audience".to_owned(), deployment.audience.clone()),
        ("AllowedOrigins".to_owned(), deployment.origins.join(",")),
        (
            "IdpTokenSource".to_owned(),
            deployment.token_source.as_str().to_owned(),
        ),
        (
            "TokenTable".to_owned(),
            if deployment.token_table {
                "Enabled"
            } else {
                "Disabled"
            }
            .to_owned(),
        ),
    ]);
    if !deployment.idp_connections.is_empty() {
        parameters.insert("IdpConnections".into(), deployment.idp_connections.clone());
    }
    if let Some(arn) = arn {
        parameters.insert("CredentialsSecretArn".into(), arn.to_owned());
    }
    SamConfig {
        stack_name: deployment.name.clone(),
        region: region.to_owned(),
        parameters,
    }
}

async fn apply(
    management: &Management,
    deployment: &Deployment,
    change: &Change,
    state: &plan::TenantState,
    created: &mut BTreeMap<AppRole, AppCredentials>,
) -> Result<(), ManagementError> {
    match change {
        Change::CreateApi(body) => management.post("resource-servers", body).await.map(drop),
        Change::UpdateApi { id, body } => management
            .patch(
                &format!("resource-servers/{}", crate::management::segment(id)),
                body,
            )
            .await
            .map(drop),
        Change::CreateApp { role, body } => {
            let app = management.post("clients", body).await?;
            let text = |field: &str| app[field].as_str().unwrap_or_default().to_owned();
            created.insert(
                *role,
                AppCredentials {
                    client_id: text("client_id"),
                    client_secret: SecretString::from(text("client_secret")),
                },
            );
            Ok(())
        }
        Change::UpdateApp { id, body, .. } => management
            .patch(&format!("clients/{}", crate::management::segment(id)), body)
            .await
            .map(drop),
        Change::Grant {
            id: Some(id),
            scopes,
        } => management
            .patch(
                &format!("client-grants/{}", crate::management::segment(id)),
                &serde_json::json!({ "scope": scopes }),
            )
            .await
            .map(drop),
        Change::Grant { id: None, scopes } => {
            let client_id = created
                .get(&AppRole::M2m)
                .map(|c| c.client_id.clone())
                .or_else(|| {
                    state
                        .apps
                        .get(&AppRole::M2m)
                        .and_then(|a| a["client_id"].as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            management
                .post(
                    "client-grants",
                    &serde_json::json!({
                        "client_id": client_id,
                        "audience": deployment.management_audience(),
                        "scope": scopes,
                    }),
                )
                .await
                .map(drop)
        }
    }
}

/// The id and secret of the `role` application: as created now, else read from the tenant
/// (`read:client_keys`).
async fn credentials_of(
    management: &Management,
    state: &plan::TenantState,
    created: &BTreeMap<AppRole, AppCredentials>,
    role: AppRole,
) -> Result<AppCredentials, String> {
    if let Some(credentials) = created.get(&role) {
        return Ok(credentials.clone());
    }
    let id = state
        .apps
        .get(&role)
        .and_then(|a| a["client_id"].as_str())
        .ok_or("an application setup should have made is missing")?;
    let app = management
        .get(
            &format!("clients/{}", crate::management::segment(id)),
            &[
                ("fields", "client_id,client_secret"),
                ("include_fields", "true"),
            ],
        )
        .await
        .map_err(|e| crate::report(&e))?;
    let secret = app["client_secret"]
        .as_str()
        .ok_or("the tenant did not return the application's secret (read:client_keys)")?;
    Ok(AppCredentials {
        client_id: id.to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
    })
}
