//! The world the function talks to, all on 127.0.0.1: moto's Secrets Manager, a stand-in Auth0
//! tenant and a stand-in GitHub (optionally behind counting [`Relay`]s), the function's
//! configuration for them, and callers with linked GitHub identities.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth0_idp_proxy::fleet::TablePolicy;
use auth0_idp_proxy::{App, Config, upstream};
use aws_sdk_secretsmanager::Client as SecretsClient;
use serde_json::json;
use standin::{Idp, M2M_CLIENT_ID, Moto, Tenant, TokenBuilder, secrets_client};

use crate::relay::{Delay, Relay};

/// The API identifier the callers' tokens are issued for.
const AUDIENCE: &str = "https://proxy.example.test/api";
/// The committed sample event of a proxied call, `GET /idp/github/user`.
const EVENT: &str = include_str!("../../events/http-api-idp-github-user.json");
/// Where the sample event's token goes.
const PLACEHOLDER: &str = "REPLACE_WITH_AN_AUTH0_ACCESS_TOKEN";

/// Stand-ins and the function's configuration for them.
pub struct World {
    /// The stand-in Auth0 tenant, with its call counters.
    pub tenant: Tenant,
    /// The stand-in GitHub API, with its call counter.
    pub github: Idp,
    /// The relays in front of the tenant and GitHub, when the world was started with them.
    pub relays: Option<Relays>,
    /// The fleet's token table, once [`World::add_token_table`] made it.
    pub table: Option<Table>,
    moto_endpoint: String,
    secret_id: String,
    client_secret: String,
}

/// A token table in moto's DynamoDB, reached through a relay that adds a delay to each request.
pub struct Table {
    name: String,
    /// The function's DynamoDB client, through the relay.
    pub client: aws_sdk_dynamodb::Client,
    _relay: Relay,
}

/// Relays that count connections to each origin.
pub struct Relays {
    /// In front of the Auth0 tenant (JWKS, token endpoint, Management API).
    pub auth0: Relay,
    /// In front of GitHub.
    pub github: Relay,
}

/// The function in-process, and how many Secrets Manager requests it made.
pub struct InProcess {
    /// The handler's state, nothing fetched yet.
    pub app: App,
    secret_reads: Arc<AtomicUsize>,
}

impl InProcess {
    /// Secrets Manager requests so far.
    pub fn secret_reads(&self) -> usize {
        self.secret_reads.load(Ordering::SeqCst)
    }
}

impl World {
    /// Fresh stand-ins and a fresh secret in `moto`; with `relays`, the function reaches the
    /// tenant and GitHub through relays that add that delay.
    pub async fn start(moto: &Moto, relays: Option<Delay>) -> Result<Self, String> {
        match relays {
            Some(delay) => Self::start_split(moto, Some((delay, delay))).await,
            None => Self::start_split(moto, None).await,
        }
    }

    /// As [`World::start`], with one delay for Auth0 and another for GitHub.
    pub async fn start_split(moto: &Moto, relays: Option<(Delay, Delay)>) -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let client_secret = format!("bench-m2m-secret-{}-{n}", std::process::id());
        let secret_id = format!("auth0-idp-proxy/bench-{}-{n}", std::process::id());
        let tenant = Tenant::start(&client_secret)
            .await
            .map_err(|e| format!("stand-in tenant: {e}"))?;
        let github = Idp::start()
            .await
            .map_err(|e| format!("stand-in GitHub: {e}"))?;
        secrets_client(moto.endpoint(), None)
            .await
            .create_secret()
            .name(&secret_id)
            .secret_string(
                json!({"client_id": M2M_CLIENT_ID, "client_secret": client_secret}).to_string(),
            )
            .send()
            .await
            .map_err(|e| format!("creating the secret in moto: {e}"))?;
        let relays = match relays {
            Some((auth0, github_delay)) => Some(Relays {
                auth0: Relay::start(&tenant.origin(), auth0).await?,
                github: Relay::start(&github.origin(), github_delay).await?,
            }),
            None => None,
        };
        Ok(Self {
            tenant,
            github,
            relays,
            table: None,
            moto_endpoint: moto.endpoint().to_owned(),
            secret_id,
            client_secret,
        })
    }

    /// Makes the fleet's token table in `moto` (reached through a relay adding `delay` to each
    /// request), puts a key for it in the secret, and configures `TOKEN_TABLE`.
    pub async fn add_token_table(&mut self, moto: &Moto, delay: Delay) -> Result<(), String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "bench-tokens-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let admin = standin::dynamodb_client(moto.endpoint()).await;
        standin::create_token_table(&admin, &name).await?;
        let relay = Relay::start(moto.endpoint(), delay).await?;
        let client = standin::dynamodb_client(&relay.origin()).await;
        self.secrets(None)
            .await
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(
                json!({
                    "client_id": M2M_CLIENT_ID,
                    "client_secret": self.client_secret,
                    // A fixed bench key: nothing here is secret.
                    "token_store_keys": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="],
                })
                .to_string(),
            )
            .send()
            .await
            .map_err(|e| format!("secret with token_store_keys: {e}"))?;
        self.table = Some(Table {
            name,
            client,
            _relay: relay,
        });
        Ok(())
    }

    /// The Auth0 origin the function is configured with (the relay's, if any).
    fn auth0_origin(&self) -> String {
        match &self.relays {
            Some(relays) => relays.auth0.origin(),
            None => self.tenant.origin(),
        }
    }

    /// The GitHub API origin the function is configured with (the relay's, if any).
    pub fn github_origin(&self) -> String {
        match &self.relays {
            Some(relays) => relays.github.origin(),
            None => self.github.origin(),
        }
    }

    /// The function's own variables (those of README's Configuration).
    fn function_env(&self) -> Vec<(String, String)> {
        let github = self.github_origin();
        let table = self
            .table
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        vec![
            ("TOKEN_TABLE".into(), table),
            ("AUTH0_DOMAIN".into(), self.auth0_origin()),
            ("AUTH0_AUDIENCE".into(), AUDIENCE.into()),
            ("CREDENTIALS_SECRET_ID".into(), self.secret_id.clone()),
            (
                "IDP_CONNECTIONS".into(),
                json!({"github": {"api_base": github}}).to_string(),
            ),
        ]
    }

    /// The environment of the real binary under a Runtime API at `runtime_api`: the function's
    /// variables and what Lambda sets, with moto as Secrets Manager.
    pub fn process_env(&self, runtime_api: &str) -> Vec<(String, String)> {
        let mut env = self.function_env();
        env.extend(lambda_env(runtime_api));
        env.extend(
            [
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("AWS_SESSION_TOKEN", "bench"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &self.moto_endpoint),
                ("AWS_ENDPOINT_URL_DYNAMODB", &self.moto_endpoint),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env
    }

    /// The real `bootstrap` started under a Runtime API with [`World::process_env`] and `extra`
    /// variables, its logs appended to `log`.
    pub async fn function(
        &self,
        bootstrap: &std::path::Path,
        extra: &[(&str, String)],
        log: &std::path::Path,
    ) -> Result<crate::lambda::Function, String> {
        crate::lambda::Function::start(
            bootstrap,
            |runtime| {
                let mut env = self.process_env(runtime);
                env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
                env
            },
            log,
        )
        .await
    }

    /// The function's configuration, parsed as `bootstrap` parses its environment.
    pub fn config(&self) -> Result<Config, String> {
        let env = self.function_env();
        Config::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .map_err(|e| format!("configuration: {e}"))
    }

    /// The handler wired as `bootstrap` wires it: one shared HTTP client, Secrets Manager at moto.
    pub async fn in_process(&self) -> Result<InProcess, String> {
        let secret_reads = Arc::new(AtomicUsize::new(0));
        let secrets = self.secrets(Some(Arc::clone(&secret_reads))).await;
        let app = App::builder(self.config()?, http_client()?, secrets);
        Ok(InProcess {
            app: app
                .token_table(
                    self.table.as_ref().map(|table| &table.client),
                    TablePolicy::default(),
                )
                .build(),
            secret_reads,
        })
    }

    /// A Secrets Manager client for moto, counting its requests into `counter`.
    pub async fn secrets(&self, counter: Option<Arc<AtomicUsize>>) -> SecretsClient {
        secrets_client(&self.moto_endpoint, counter).await
    }

    /// Caller number `n`: a user of the tenant with a linked GitHub identity whose token the
    /// stand-in GitHub accepts. Returns the caller's signed access token.
    pub fn caller(&self, n: usize) -> String {
        let sub = format!("github|{}", 1000 + n);
        if !self.tenant.has_user(&sub) {
            let token = github_token(n);
            self.tenant.add_user(standin::profile(
                &sub,
                &[("github", &n.to_string(), &token)],
            ));
            self.github
                .grant(&token, json!({"login": format!("user{n}"), "id": n}));
        }
        TokenBuilder::new(&format!("{}/", self.auth0_origin()), AUDIENCE, &sub).sign()
    }
}

/// The function's shared HTTP clients, as `bootstrap` builds them.
pub fn http_client() -> Result<upstream::Http, String> {
    upstream::build_client().map_err(|e| format!("HTTP client: {e}"))
}

/// The GitHub access token of caller `n`.
pub fn github_token(n: usize) -> String {
    format!("gho_bench_{n}")
}

/// The sample event `GET /idp/github/user` carrying `jwt`, as API Gateway sends it.
pub fn event(jwt: &str) -> String {
    EVENT.replace(PLACEHOLDER, jwt)
}

/// What Lambda sets for any function, pointing at the Runtime API at `runtime_api`.
pub fn lambda_env(runtime_api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", "auth0-idp-proxy"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_LAMBDA_LOG_LEVEL", "info"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into()
}
