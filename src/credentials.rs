//! The function's own credentials, from the AWS Secrets Manager secret `CREDENTIALS_SECRET_ID`:
//! the M2M client that may read users and their IdP tokens, optionally the IdP apps' own
//! clients for refresh grants, and optionally the client that performs Token Vault exchanges.
//!
//! Read once per execution environment (the read starts during the cold start), and again only
//! when Auth0 rejects the client (the secret was rotated) or after a failed read: a failed read
//! stores nothing, so the first invocation after Secrets Manager recovers reads it.
//!
//! With the fleet table on and `TOKEN_STORE_KEYS_SECRET_ID` set, the table's keys secret is read
//! beside it, at the same times: its keys (or why they cannot be used) take the place of the
//! credentials secret's `token_store_keys`. A failure of that read spoils only the keys.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client as SecretsClient;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::deadline::Deadline;
use crate::fleet::seal::{self, KeyError, Sealer};
pub use crate::secret::SecretReadError;
use crate::service::Service;
use crate::single_flight::{SingleFlight, WaitExpired};
use crate::telemetry::{self, Cache};
use crate::upstream::{RetryPolicy, UpstreamCause, UpstreamError};

/// Cap on one Secrets Manager read, SDK retries included, within the invocation's deadline.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Cap on one connection attempt to Secrets Manager: short enough that a black-holed endpoint
/// leaves time for a retry within [`READ_TIMEOUT`] (the SDK's default is 3.1 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// An OAuth client: id and secret. `Debug` never shows the secret.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret, redacted in `Debug`.
    pub client_secret: SecretString,
}

/// The parsed secret.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The M2M application that calls the Management API.
    #[serde(flatten)]
    pub m2m: ClientCredentials,
    /// The IdP apps' own clients, by connection name, for refresh-token grants.
    #[serde(default)]
    pub idp_clients: HashMap<String, ClientCredentials>,
    /// The fleet table's keys, or why they cannot be used: from the keys secret when
    /// `TOKEN_STORE_KEYS_SECRET_ID` is set, else the secret's `token_store_keys`. A problem with
    /// them disables the table (logged and counted), never the function.
    #[serde(
        rename = "token_store_keys",
        default = "no_store_keys",
        deserialize_with = "store_keys"
    )]
    pub store_keys: Result<Sealer, KeyError>,
    /// The client that performs Auth0 Token Vault exchanges (a Custom API Client linked to the
    /// API the callers' tokens are for); the M2M client when absent.
    #[serde(default)]
    pub token_vault_client: Option<ClientCredentials>,
}

fn no_store_keys() -> Result<Sealer, KeyError> {
    Err(KeyError::Missing)
}

/// Any JSON is accepted here, so that bad keys cannot make the whole secret unreadable.
fn store_keys<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Result<Sealer, KeyError>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    let Some(list) = value.as_array() else {
        return Ok(Err(KeyError::Missing));
    };
    let keys = list
        .iter()
        .enumerate()
        .map(|(i, key)| key.as_str().ok_or(KeyError::Invalid(i)))
        .collect::<Result<Vec<_>, _>>();
    Ok(keys.and_then(|keys| Sealer::from_base64(&keys)))
}

impl Credentials {
    /// Parses the secret's JSON. Errors carry only a position: a serde message could quote part
    /// of the secret.
    pub fn parse(text: &str) -> Result<Self, CredentialsError> {
        let credentials: Self =
            serde_json::from_str(text).map_err(|e| CredentialsError::Malformed {
                line: e.line(),
                column: e.column(),
            })?;
        let blank = |c: &ClientCredentials| {
            c.client_id.trim().is_empty() || c.client_secret.expose_secret().trim().is_empty()
        };
        if blank(&credentials.m2m)
            || credentials.idp_clients.values().any(blank)
            || credentials.token_vault_client.as_ref().is_some_and(blank)
        {
            return Err(CredentialsError::Blank);
        }
        Ok(credentials)
    }

    /// The client for Token Vault exchanges: `token_vault_client`, else the M2M client.
    pub fn vault_client(&self) -> &ClientCredentials {
        self.token_vault_client.as_ref().unwrap_or(&self.m2m)
    }
}

/// Why the credentials are unavailable (answered 503 `credentials_unavailable`).
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Secrets Manager refused or failed the read.
    #[error("the credentials secret cannot be read")]
    Unreadable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Secrets Manager did not answer within the deadline.
    #[error("the credentials secret could not be read within the deadline")]
    Timeout,
    /// The secret holds binary data, not a JSON string.
    #[error("the credentials secret is not a JSON string")]
    NotText,
    /// The secret is not the documented JSON.
    #[error("the credentials secret is malformed (JSON error at line {line}, column {column})")]
    Malformed {
        /// Line of the JSON error.
        line: usize,
        /// Column of the JSON error.
        column: usize,
    },
    /// A client id or secret is empty.
    #[error("the credentials secret has an empty client id or secret")]
    Blank,
    /// Auth0 rejected the client even after the secret was read again.
    #[error("Auth0 rejects the function's client credentials")]
    Rejected,
}

/// How a call made with the function's client failed: Auth0 rejected the client (the secret may
/// have been rotated), or anything else.
#[derive(Debug)]
pub enum ClientAttempt<E> {
    /// Auth0 does not accept the client id and secret.
    Rejected,
    /// Any other failure.
    Failed(E),
}

impl<E: UpstreamCause> UpstreamCause for ClientAttempt<E> {
    fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            Self::Rejected => None,
            Self::Failed(error) => error.upstream(),
        }
    }
}

impl From<WaitExpired> for CredentialsError {
    fn from(_: WaitExpired) -> Self {
        Self::Timeout
    }
}

/// The credentials, shared by all invocations of an execution environment.
pub struct CredentialStore {
    client: BoundedClient,
    secret_id: String,
    // The fleet table's keys secret, read with the credentials when set.
    keys_secret_id: Option<String>,
    current: SingleFlight<Credentials>,
}

impl CredentialStore {
    /// A store reading `secret_id` through a client of `source`; nothing is read (and no
    /// client made) until asked.
    ///
    /// The SDK retries on its own; its retries are given the numbers of the function's own
    /// [`RetryPolicy::STANDARD`] (the SDK's default starts at a 1 s backoff, a third of the read's
    /// budget), and every read is bounded by the invocation's deadline besides.
    pub fn new(source: impl Into<SecretsSource>, secret_id: String) -> Self {
        Self {
            client: BoundedClient::new(source.into()),
            secret_id,
            keys_secret_id: None,
            current: SingleFlight::reported_as(Cache::Credentials),
        }
    }

    /// The same store, reading the fleet table's keys from the secret `keys_secret_id` (when
    /// `Some`) each time it reads the credentials, in place of their `token_store_keys`.
    pub fn with_keys_secret(mut self, keys_secret_id: Option<String>) -> Self {
        self.keys_secret_id = keys_secret_id;
        self
    }

    /// The credentials, read on first use.
    pub async fn get(&self, deadline: &Deadline) -> Result<Arc<Credentials>, CredentialsError> {
        self.current
            .get_or_load(deadline, |_| true, || self.read(deadline))
            .await
    }

    /// Reads the secret again because `rejected` was refused by Auth0; invocations that saw the
    /// same rejected credentials share one read.
    pub async fn reload(
        &self,
        rejected: &Arc<Credentials>,
        deadline: &Deadline,
    ) -> Result<Arc<Credentials>, CredentialsError> {
        self.current
            .get_or_load(
                deadline,
                |c| !SingleFlight::is(c, rejected),
                || self.read(deadline),
            )
            .await
    }

    /// Runs `call` with the credentials; when Auth0 rejects the client, reads the secret again
    /// (it may have been rotated) and runs `call` once more with what it holds now.
    pub async fn with_client<T, E, F, Fut>(&self, deadline: &Deadline, mut call: F) -> Result<T, E>
    where
        E: From<CredentialsError>,
        F: FnMut(Arc<Credentials>) -> Fut,
        Fut: Future<Output = Result<T, ClientAttempt<E>>>,
    {
        let credentials = self.get(deadline).await?;
        match call(Arc::clone(&credentials)).await {
            Ok(value) => return Ok(value),
            Err(ClientAttempt::Failed(error)) => return Err(error),
            Err(ClientAttempt::Rejected) => {
                tracing::warn!("Auth0 rejected the client credentials; reading the secret again");
            }
        }
        let reloaded = self.reload(&credentials, deadline).await?;
        match call(reloaded).await {
            Ok(value) => Ok(value),
            Err(ClientAttempt::Failed(error)) => Err(error),
            Err(ClientAttempt::Rejected) => Err(CredentialsError::Rejected.into()),
        }
    }

    async fn read(&self, deadline: &Deadline) -> Result<Credentials, CredentialsError> {
        let client = self.client.get();
        let keys = async {
            let id = self.keys_secret_id.as_deref()?;
            Some(match read_secret(client, id, deadline).await {
                Ok(text) => seal::keys_from_secret(&text),
                Err(error) => Err(KeyError::Unreadable(Arc::new(error))),
            })
        };
        let (text, keys) = tokio::join!(read_secret(client, &self.secret_id, deadline), keys);
        let mut credentials = Credentials::parse(&text?)?;
        if let Some(keys) = keys {
            // Usable `token_store_keys` still open what they sealed before the keys secret.
            let before = std::mem::replace(&mut credentials.store_keys, Err(KeyError::Missing));
            credentials.store_keys = match (keys, before) {
                (Ok(keys), Ok(before)) => Ok(keys.also_opening(before)),
                (keys, _) => keys,
            };
        }
        tracing::info!(
            idp_clients = credentials.idp_clients.len(),
            "credentials loaded"
        );
        Ok(credentials)
    }
}

impl From<SecretReadError> for CredentialsError {
    fn from(error: SecretReadError) -> Self {
        match error {
            SecretReadError::Unreadable(source) => Self::Unreadable(source),
            SecretReadError::Timeout => Self::Timeout,
            SecretReadError::NotText => Self::NotText,
            SecretReadError::Malformed { line, column } => Self::Malformed { line, column },
        }
    }
}

/// Where Secrets Manager clients come from: a client given (tests point one at moto), or the
/// SDK configuration itself, so that no client is made before the first read (`main`).
#[derive(Clone)]
pub enum SecretsSource {
    /// A client, whose configuration the bounded one starts from.
    Client(SecretsClient),
    /// The SDK configuration, from which the bounded client is made directly.
    Sdk(Box<aws_types::SdkConfig>),
}

impl From<SecretsClient> for SecretsSource {
    fn from(client: SecretsClient) -> Self {
        Self::Client(client)
    }
}

impl From<aws_types::SdkConfig> for SecretsSource {
    fn from(sdk: aws_types::SdkConfig) -> Self {
        Self::Sdk(Box::new(sdk))
    }
}

/// A Secrets Manager client as [`bounded_client`] makes it, made at its first use: making an
/// SDK client is about 0.1–0.3 ms that a cold start without the prefetch need not spend before
/// its first invocation.
pub struct BoundedClient {
    source: SecretsSource,
    bounded: OnceLock<SecretsClient>,
}

impl BoundedClient {
    /// A client from `source`, to be made and bounded at its first use.
    pub fn new(source: SecretsSource) -> Self {
        Self {
            source,
            bounded: OnceLock::new(),
        }
    }

    /// The bounded client.
    pub fn get(&self) -> &SecretsClient {
        self.bounded.get_or_init(|| match &self.source {
            SecretsSource::Client(client) => bounded_client(client.config().to_builder()),
            SecretsSource::Sdk(sdk) => {
                bounded_client(aws_sdk_secretsmanager::config::Builder::from(sdk.as_ref()))
            }
        })
    }
}

/// A client of `config` with the SDK's retries given the numbers of the function's own
/// [`RetryPolicy::STANDARD`] (the SDK's default starts at a 1 s backoff, a third of a read's
/// budget) and a short connect timeout.
fn bounded_client(config: aws_sdk_secretsmanager::config::Builder) -> SecretsClient {
    let policy = RetryPolicy::STANDARD;
    let config = config
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(policy.attempts)
                .with_initial_backoff(policy.base)
                .with_max_backoff(policy.max_backoff),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .build();
    SecretsClient::from_conf(config)
}

/// The text of the secret `secret_id`, read within the deadline (and [`READ_TIMEOUT`]), its
/// time charged to Secrets Manager on the summary line.
pub async fn read_secret(
    client: &SecretsClient,
    secret_id: &str,
    deadline: &Deadline,
) -> Result<String, SecretReadError> {
    let timeout = deadline
        .timeout(READ_TIMEOUT)
        .ok_or(SecretReadError::Timeout)?;
    let call = client.get_secret_value().secret_id(secret_id).send();
    let started = Instant::now();
    let output = tokio::time::timeout(timeout, call).await;
    telemetry::upstream_time(Service::SecretsManager, started.elapsed());
    let output = output.map_err(|_| SecretReadError::Timeout)?.map_err(|e| {
        SecretReadError::Unreadable(
            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                .to_string()
                .into(),
        )
    })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or(SecretReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_json() {
        let credentials = Credentials::parse(
            r#"{"client_id": "m2m", "client_secret": "s3cr3t-value",
                "idp_clients": {"google-oauth2": {"client_id": "g", "client_secret": "gs"}}}"#,
        )
        .expect("valid");
        assert_eq!(credentials.m2m.client_id, "m2m");
        assert_eq!(
            credentials.m2m.client_secret.expose_secret(),
            "s3cr3t-value"
        );
        assert_eq!(credentials.idp_clients["google-oauth2"].client_id, "g");
        assert!(!format!("{credentials:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn store_keys_are_optional_and_bad_ones_spoil_only_themselves() {
        let without =
            Credentials::parse(r#"{"client_id": "m2m", "client_secret": "s"}"#).expect("valid");
        assert!(matches!(without.store_keys.err(), Some(KeyError::Missing)));
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let with = Credentials::parse(&format!(
            r#"{{"client_id": "m2m", "client_secret": "s", "token_store_keys": ["{key}"]}}"#
        ))
        .expect("valid");
        assert!(with.store_keys.is_ok());
        assert!(!format!("{with:?}").contains(key));
        for bad in [r#""one-key""#, r#"[7]"#, r#"["bm90IDMyIGJ5dGVz"]"#] {
            let credentials = Credentials::parse(&format!(
                r#"{{"client_id": "m2m", "client_secret": "s", "token_store_keys": {bad}}}"#
            ))
            .expect("the secret stays usable");
            assert!(credentials.store_keys.is_err(), "{bad}");
        }
    }

    #[test]
    fn idp_clients_are_optional() {
        let credentials =
            Credentials::parse(r#"{"client_id": "m2m", "client_secret": "s"}"#).expect("valid");
        assert!(credentials.idp_clients.is_empty());
        assert_eq!(credentials.vault_client().client_id, "m2m");
    }

    #[test]
    fn a_token_vault_client_is_used_for_exchanges_when_given() {
        let credentials = Credentials::parse(
            r#"{"client_id": "m2m", "client_secret": "s",
                "token_vault_client": {"client_id": "api-client", "client_secret": "vault-secret"}}"#,
        )
        .expect("valid");
        assert_eq!(credentials.vault_client().client_id, "api-client");
        assert!(!format!("{credentials:?}").contains("vault-secret"));
        assert!(matches!(
            Credentials::parse(
                r#"{"client_id": "m2m", "client_secret": "s",
                    "token_vault_client": {"client_id": "", "client_secret": "x"}}"#
            ),
            Err(CredentialsError::Blank)
        ));
    }

    #[test]
    fn malformed_secrets_are_rejected_without_quoting_them() {
        for bad in [
            r#"{"client_id": "m2m"}"#,
            r#"{"client_id": 7, "client_secret": "leaky-secret"}"#,
            r#"{"client_id": "m2m", "client_secret": ["leaky-secret"]}"#,
            "leaky-secret",
        ] {
            let error = Credentials::parse(bad).expect_err(bad);
            assert!(!error.to_string().contains("leaky"), "{error}");
            assert!(matches!(error, CredentialsError::Malformed { .. }));
        }
        assert!(matches!(
            Credentials::parse(r#"{"client_id": "m2m", "client_secret": " "}"#),
            Err(CredentialsError::Blank)
        ));
    }
}
