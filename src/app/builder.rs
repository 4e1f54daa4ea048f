//! [`AppBuilder`]: the choices made before the function's state is built, so that each part of
//! it (the Management API client with its fleet table above all) is built once.

use std::sync::Arc;

use super::App;
use crate::auth::Authenticator;
use crate::auth::jwks::KeyPolicy;
use crate::auth::replay::Replays;
use crate::config::Config;
use crate::cors::Cors;
use crate::credentials::{CredentialStore, SecretsSource};
use crate::fleet::{FleetTable, TablePolicy};
use crate::idp::tokens::IdpTokens;
use crate::kill_switch::KillSwitch;
use crate::management::Management;
use crate::upstream::Http;

/// The choices made before [`App`] is built ([`App::builder`]): each part of the state is then
/// built once, with all of them.
pub struct AppBuilder {
    config: Config,
    http: Http,
    secrets: SecretsSource,
    key_policy: KeyPolicy,
    fleet: Option<Arc<FleetTable>>,
}

impl AppBuilder {
    /// The defaults: memory only, the JWKS cache's own timings.
    pub(super) fn new(config: Config, http: Http, secrets: SecretsSource) -> Self {
        Self {
            config,
            http,
            secrets,
            key_policy: KeyPolicy::default(),
            fleet: None,
        }
    }

    /// The JWKS cache timings (tests shorten them).
    pub fn key_policy(mut self, policy: KeyPolicy) -> Self {
        self.key_policy = policy;
        self
    }

    /// Shares tokens with the rest of the fleet through `TOKEN_TABLE`, reached with `dynamodb`
    /// and the call timings of `policy` (tests lengthen them on a loaded machine, or keep them
    /// short to prove a hanging table is left behind). Without `TOKEN_TABLE` in the
    /// configuration, or without a client (`None`), nothing changes (memory only).
    pub fn token_table<'c>(
        mut self,
        dynamodb: impl Into<Option<&'c aws_sdk_dynamodb::Client>>,
        policy: TablePolicy,
    ) -> Self {
        self.fleet = self
            .config
            .token_table
            .clone()
            .zip(dynamodb.into())
            .map(|(name, dynamodb)| Arc::new(FleetTable::new(dynamodb, name, policy)));
        self
    }

    /// The state. Nothing is fetched yet.
    pub fn build(self) -> App {
        let Self {
            config,
            http,
            secrets,
            key_policy,
            fleet,
        } = self;
        let kill_switch = config
            .kill_switch_secret_id
            .clone()
            .map(|id| KillSwitch::new(secrets.clone(), id));
        // The table's keys secret matters only with the table.
        let keys_secret_id = config
            .token_table
            .as_ref()
            .and(config.token_store_keys_secret_id.clone());
        let credentials = Arc::new(
            CredentialStore::new(secrets, config.credentials_secret_id.clone())
                .with_keys_secret(keys_secret_id),
        );
        App {
            // A DPoP proof's `jti` is checked across the fleet where the table is on.
            auth: Authenticator::with_replays(
                &config,
                http.clone(),
                key_policy,
                Replays::new(fleet.clone()),
            ),
            cors: Cors::new(config.allowed_origins.clone()),
            management: Management::new(
                http.clone(),
                config.auth0_origin.clone(),
                Arc::clone(&credentials),
                fleet.clone(),
            ),
            credentials,
            fleet,
            tokens: IdpTokens::new(config.idp_tokens),
            kill_switch,
            http,
            config,
        }
    }
}
