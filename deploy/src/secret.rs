//! The credentials secret (`CREDENTIALS_SECRET_ID`): its value, built from the applications
//! setup made, and where it is kept: a local file (mode 0600) for the operator to store, or
//! AWS Secrets Manager (the SDK's standard environment: `AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, …). The value is only ever held in a [`SecretString`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

/// Why the secret cannot be read or written. Never holds its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Secrets Manager refused or failed.
    #[error("Secrets Manager, secret {id}: {message}")]
    Manager {
        /// The secret's name or ARN.
        id: String,
        /// The SDK's error, with its code.
        message: String,
    },
}

/// Where the secret is kept.
#[derive(Debug, Clone)]
pub enum SecretStore {
    /// A local file.
    File(PathBuf),
    /// Secrets Manager's secret `id` (name or ARN).
    Manager {
        /// The client.
        client: Client,
        /// The secret's name or ARN.
        id: String,
    },
}

/// A Secrets Manager client for `region` (else the SDK's own choice), every call bounded.
pub async fn manager_client(region: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build(),
    );
    if let Some(region) = region.filter(|r| !r.is_empty()) {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    Client::new(&loader.load().await)
}

fn manager_error(id: &str, error: impl std::error::Error) -> SecretError {
    SecretError::Manager {
        id: id.to_owned(),
        message: aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string(),
    }
}

impl SecretStore {
    /// The secret's value; `None` when there is none yet.
    pub async fn read(&self) -> Result<Option<SecretString>, SecretError> {
        match self {
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(SecretString::from(text))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(SecretError::File {
                    path: path.display().to_string(),
                    source,
                }),
            },
            Self::Manager { client, id } => {
                match client.get_secret_value().secret_id(id).send().await {
                    Ok(output) => Ok(output.secret_string.map(SecretString::from)),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(manager_error(id, e)),
                }
            }
        }
    }

    /// The secret's ARN in Secrets Manager, when it exists there.
    pub async fn arn(&self) -> Result<Option<String>, SecretError> {
        let Self::Manager { client, id } = self else {
            return Ok(None);
        };
        match client.describe_secret().secret_id(id).send().await {
            Ok(output) => Ok(output.arn),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(manager_error(id, e)),
        }
    }

    /// Writes `value`: the file (created 0600, readable by its owner only), or the secret
    /// (created if absent, else a new version). Returns the secret's ARN in Secrets Manager.
    pub async fn write(&self, value: &SecretString) -> Result<Option<String>, SecretError> {
        match self {
            Self::File(path) => {
                let error = |source| SecretError::File {
                    path: path.display().to_string(),
                    source,
                };
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                    options.mode(0o600);
                    // A file that already existed keeps its mode through open: narrow it first.
                    if path.exists() {
                        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                            .map_err(error)?;
                    }
                }
                let mut file = options.open(path).map_err(error)?;
                file.write_all(value.expose_secret().as_bytes())
                    .map_err(error)?;
                Ok(None)
            }
            Self::Manager { client, id } => {
                if self.arn().await?.is_some() {
                    let output = client
                        .put_secret_value()
                        .secret_id(id)
                        .secret_string(value.expose_secret())
                        .send()
                        .await
                        .map_err(|e| manager_error(id, e))?;
                    return Ok(output.arn);
                }
                let output = client
                    .create_secret()
                    .name(id)
                    .description("auth0-idp-proxy: the M2M application's credentials (written by deploy setup)")
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| manager_error(id, e))?;
                Ok(output.arn)
            }
        }
    }
}

/// An application's id and secret.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, redacted.
    pub client_secret: SecretString,
}

/// The secret's JSON: the M2M client, the Token Vault client when there is one, and whatever
/// else `previous` held (`idp_clients`, which only the operator can fill in). The token table's
/// keys are not here: the stack generates them in a secret of their own.
pub fn value(
    m2m: &AppCredentials,
    vault: Option<&AppCredentials>,
    previous: Option<&SecretString>,
) -> SecretString {
    let mut object: Map<String, Value> = previous
        .and_then(|p| serde_json::from_str(p.expose_secret()).ok())
        .unwrap_or_default();
    object.insert("client_id".into(), json!(m2m.client_id));
    object.insert(
        "client_secret".into(),
        json!(m2m.client_secret.expose_secret()),
    );
    match vault {
        Some(vault) => {
            object.insert(
                "token_vault_client".into(),
                json!({"client_id": vault.client_id, "client_secret": vault.client_secret.expose_secret()}),
            );
        }
        None => {
            object.remove("token_vault_client");
        }
    }
    SecretString::from(Value::Object(object).to_string())
}

/// A field of the secret's JSON object, as text (ids only: never call it for a secret).
pub fn field(secret: &SecretString, path: &[&str]) -> Option<String> {
    let value: Value = serde_json::from_str(secret.expose_secret()).ok()?;
    path.iter()
        .try_fold(&value, |v, key| v.get(*key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}
