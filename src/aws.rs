//! The AWS SDK configuration: built once per cold start, shared by every SDK client (Secrets
//! Manager's, and any other service's built from the same [`SdkConfig`]).
//!
//! Lambda hands a function all the SDK needs as environment variables, so they are read
//! directly instead of through `aws_config`'s default chain, whose profile files, SSO, web
//! identity, container and IMDS providers and system root scan cost about 5 ms of a cold start
//! (README, "Performance"). In this order:
//!
//! 1. `SDK_CONFIG=load-defaults`: `aws_config::load_defaults` exactly as before, the system's
//!    roots included (a benchmark knob, to measure the difference).
//! 2. Any of [`CHAIN_ONLY`] set: the default chain, which alone understands them.
//! 3. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN` and
//!    `AWS_ACCOUNT_ID` when set) and a region from `AWS_REGION`, else `AWS_DEFAULT_REGION`: these,
//!    and nothing else. Endpoints from `AWS_ENDPOINT_URL_<SERVICE>` (`_SECRETS_MANAGER`,
//!    `_DYNAMODB`), else `AWS_ENDPOINT_URL`. No file is read.
//! 4. Otherwise (a developer's machine with a profile, a container credentials endpoint): the
//!    default chain, which reads the environment first, then the profile files, and so on.
//!
//! Every way but the first uses [`https_client`]: the compiled-in roots the function's own HTTP
//! client trusts, over the same rustls and aws-lc-rs.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_types::sdk_config::SharedHttpClient;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// The variable that selects the old way: `SDK_CONFIG=load-defaults`.
pub const KNOB: &str = "SDK_CONFIG";

/// Settings only the default chain understands: when one is set, the chain runs.
pub const CHAIN_ONLY: [&str; 4] = [
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
];

/// Where the configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The environment variables Lambda sets, read directly.
    Environment,
    /// `aws_config`'s default chain, with the compiled-in roots.
    DefaultChain,
    /// `aws_config::load_defaults`, the system's roots included: the old way.
    LoadDefaults,
}

impl Source {
    /// The name logged at cold start.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::DefaultChain => "default chain",
            Self::LoadDefaults => "load_defaults",
        }
    }
}

/// The `AWS_…` variables (and [`KNOB`]), captured once: what the configuration may read.
#[derive(Debug, Clone, Default)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// The process's environment.
    pub fn capture() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// An environment of `vars`; only the `AWS_…` ones and [`KNOB`] are kept.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(
            vars.into_iter()
                .filter(|(name, _)| name.starts_with("AWS_") || name == KNOB)
                .collect(),
        )
    }

    /// A variable's value; empty counts as unset, as the SDK's own providers count it.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// Which way the configuration is built from this environment.
    pub fn source(&self) -> Source {
        if self
            .get(KNOB)
            .is_some_and(|v| v.eq_ignore_ascii_case("load-defaults"))
        {
            Source::LoadDefaults
        } else if CHAIN_ONLY.iter().any(|name| self.get(name).is_some()) {
            Source::DefaultChain
        } else if self.credentials().is_some() && self.region().is_some() {
            Source::Environment
        } else {
            Source::DefaultChain
        }
    }

    /// The static credentials Lambda sets for the execution role, session token included.
    fn credentials(&self) -> Option<Credentials> {
        let mut builder = Credentials::builder()
            .access_key_id(self.get("AWS_ACCESS_KEY_ID")?)
            .secret_access_key(self.get("AWS_SECRET_ACCESS_KEY")?)
            .provider_name("Environment");
        builder.set_session_token(self.get("AWS_SESSION_TOKEN").map(str::to_owned));
        if let Some(account) = self.get("AWS_ACCOUNT_ID") {
            builder = builder.account_id(account);
        }
        Some(builder.build())
    }

    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, as the default region chain reads them.
    fn region(&self) -> Option<Region> {
        self.get("AWS_REGION")
            .or_else(|| self.get("AWS_DEFAULT_REGION"))
            .map(|r| Region::new(r.to_owned()))
    }

    /// The configuration read from these variables alone, or `None` when they do not suffice.
    fn direct(&self, http: SharedHttpClient) -> Option<SdkConfig> {
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(self.region()?)
            .credentials_provider(SharedCredentialsProvider::new(self.credentials()?))
            .http_client(http)
            .service_config(self.clone());
        builder.set_endpoint_url(self.get("AWS_ENDPOINT_URL").map(str::to_owned));
        Some(builder.build())
    }
}

/// Service-specific settings for the SDK's service configs, from the environment only:
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` for Secrets Manager's endpoint, `AWS_ENDPOINT_URL_DYNAMODB`
/// for DynamoDB's (the SDK's naming: the service id upper-cased, spaces as `_`). The global
/// `AWS_ENDPOINT_URL` is the [`SdkConfig`]'s own endpoint, which a client takes when this has none.
impl LoadServiceConfig for Environment {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        self.get(&format!("{}_{service}", key.env()))
            .map(str::to_owned)
    }
}

/// Builds the configuration from the process's environment (see the module's documentation for
/// the order) and logs which way was taken.
pub async fn load() -> SdkConfig {
    let (config, source) = load_from(Environment::capture()).await;
    tracing::debug!(source = source.as_str(), "AWS SDK configuration");
    config
}

/// Builds the configuration from `env`. The default chain, when taken, reads the process's
/// environment and files itself.
pub async fn load_from(env: Environment) -> (SdkConfig, Source) {
    let source = env.source();
    let config = match source {
        Source::LoadDefaults => aws_config::load_defaults(BehaviorVersion::latest()).await,
        Source::Environment | Source::DefaultChain => {
            let http = https_client();
            match env.direct(http.clone()) {
                Some(config) if source == Source::Environment => config,
                _ => {
                    aws_config::defaults(BehaviorVersion::latest())
                        .http_client(http)
                        .load()
                        .await
                }
            }
        }
    };
    (config, source)
}

/// The SDK's HTTPS client: rustls on aws-lc-rs (the provider the rest of the binary uses), trusting
/// the same compiled-in Mozilla roots as [`crate::upstream::build_client`] and not the system's.
/// Built, and its TLS configuration with it, when the SDK first asks for a connection (see
/// [`FirstUse`]).
pub fn https_client() -> SharedHttpClient {
    FirstUse::default().into_shared()
}

/// The client [`https_client`] stands for, built now; `None` if the SDK refuses its TLS context
/// (never seen: the context only holds the store).
fn build_https_client() -> Option<SharedHttpClient> {
    let store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(roots_pem());
    match TlsContext::builder().with_trust_store(store).build() {
        Ok(context) => Some(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context)
                .build_https(),
        ),
        Err(error) => {
            tracing::error!(error = %error, "the AWS SDK refused the compiled-in roots; its requests fail");
            None
        }
    }
}

/// The SDK's HTTP client, built at its first use. `aws_smithy_http_client`'s client builds a
/// whole TLS configuration when each SDK client is created (to load the system's roots early),
/// throws it away, and builds it again at the first request; from our PEM roots each build cost
/// about a millisecond of a cold start. And the trust store takes its roots as an owned copy:
/// 280 KB copied, some seventy pages touched, at every init that makes no AWS call. This one
/// builds the client, and the configuration once, when the SDK first sends a request.
#[derive(Debug, Default)]
struct FirstUse(OnceLock<Option<SharedHttpClient>>);

impl FirstUse {
    fn client(&self) -> Option<&SharedHttpClient> {
        self.0.get_or_init(build_https_client).as_ref()
    }
}

impl HttpClient for FirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // The inner client caches its connector per settings: one TLS configuration.
        match self.client() {
            Some(client) => client.http_connector(settings, components),
            // Fails closed: no request rather than one trusting other roots.
            None => SharedHttpConnector::new(Refused),
        }
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.client()?.connector_metadata()
    }
}

/// The connector when the SDK's HTTPS client could not be built: every request fails, and the
/// function answers as it does when Secrets Manager is unreachable.
#[derive(Debug)]
struct Refused;

impl HttpConnector for Refused {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(Err(ConnectorError::other(
            "the AWS SDK's HTTPS client could not be built with the compiled-in roots".into(),
            None,
        )))
    }
}

/// `webpki-root-certs`' roots as one PEM bundle (the SDK's trust store takes PEM only), encoded at
/// build time (build.rs) rather than at each cold start.
fn roots_pem() -> Vec<u8> {
    include_bytes!(concat!(env!("OUT_DIR"), "/roots.pem")).to_vec()
}

#[cfg(test)]
mod tests {
    use aws_credential_types::provider::ProvideCredentials;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;

    const LAMBDA: [(&str, &str); 5] = [
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "role-secret"),
        ("AWS_SESSION_TOKEN", "role-session"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_LAMBDA_FUNCTION_NAME", "auth0-idp-proxy"),
    ];

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        LAMBDA.into_iter().filter(|(k, _)| *k != name).collect()
    }

    fn key<'a>(service: &'a str) -> ServiceConfigKey<'a> {
        ServiceConfigKey::builder()
            .service_id(service)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .expect("all fields set")
    }

    #[tokio::test]
    async fn a_client_that_could_not_be_built_refuses_every_request() {
        let error = Refused
            .call(HttpRequest::empty())
            .await
            .expect_err("no request is sent");
        // An error of its own, not a timeout or an IO error of a connection tried.
        assert!(error.is_other() && error.as_other().is_none(), "{error:?}");
    }

    #[tokio::test]
    async fn lambda_environment_is_read_directly_session_token_included() {
        let (config, source) = load_from(env(&LAMBDA)).await;
        assert_eq!(source, Source::Environment);
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-1"));
        let credentials = config
            .credentials_provider()
            .expect("a provider")
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "role-secret");
        assert_eq!(credentials.session_token(), Some("role-session"));
        // Lambda's credentials last as long as the environment: nothing to refresh.
        assert_eq!(credentials.expiry(), None);
        assert!(config.http_client().is_some());
    }

    #[test]
    fn the_region_may_come_from_aws_default_region() {
        let mut vars = without("AWS_REGION");
        vars.push(("AWS_DEFAULT_REGION", "ap-south-1"));
        let env = env(&vars);
        assert_eq!(env.source(), Source::Environment);
        assert_eq!(env.region(), Some(Region::new("ap-south-1")));
    }

    #[test]
    fn missing_credentials_or_region_leave_it_to_the_default_chain() {
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            assert_eq!(env(&without(name)).source(), Source::DefaultChain, "{name}");
        }
        let mut blank = without("AWS_ACCESS_KEY_ID");
        blank.push(("AWS_ACCESS_KEY_ID", " "));
        assert_eq!(env(&blank).source(), Source::DefaultChain);
        // Without a session token the keys are a user's long-lived ones: still usable directly.
        assert_eq!(
            env(&without("AWS_SESSION_TOKEN")).source(),
            Source::Environment
        );
    }

    #[test]
    fn settings_only_the_chain_understands_send_it_there() {
        for name in CHAIN_ONLY {
            let mut vars = LAMBDA.to_vec();
            vars.push((name, "true"));
            assert_eq!(env(&vars).source(), Source::DefaultChain, "{name}");
        }
    }

    #[test]
    fn the_knob_selects_the_old_way() {
        let mut vars = LAMBDA.to_vec();
        vars.push((KNOB, "load-defaults"));
        assert_eq!(env(&vars).source(), Source::LoadDefaults);
        vars.pop();
        vars.push((KNOB, "something else"));
        assert_eq!(env(&vars).source(), Source::Environment);
    }

    #[test]
    fn service_endpoints_follow_the_sdks_variable_names() {
        let env = env(&[
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5001"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5002"),
        ]);
        assert_eq!(
            env.load_config(key("Secrets Manager")).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            env.load_config(key("DynamoDB")).as_deref(),
            Some("http://127.0.0.1:5001")
        );
        // Other services take the global one, which the SdkConfig carries.
        assert_eq!(env.load_config(key("STS")), None);
        let mut vars: Vec<(&str, &str)> = LAMBDA.to_vec();
        vars.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:5002"));
        let config = self::env(&vars).direct(https_client()).expect("direct");
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5002"));
    }

    #[test]
    fn every_compiled_in_root_reaches_the_sdks_trust_store() {
        // Decoded as the SDK decodes its trust store, then added as it adds them (a root rustls
        // refused would panic at the SDK's first connection).
        let pem = roots_pem();
        let decoded: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(
            decoded.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        for (ours, theirs) in decoded.iter().zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS) {
            assert_eq!(ours.as_ref(), theirs.as_ref());
        }
        let mut store = rustls::RootCertStore::empty();
        let (added, refused) = store.add_parsable_certificates(decoded);
        assert_eq!(refused, 0);
        assert!(added > 100, "{added}");
    }
}
