//! The tenant's state against what the deployment needs, as a list of changes: what setup
//! shows, and with `--apply` makes. Each change says what it does and why, never a secret.
//!
//! What is sent is what Auth0 takes, as public sources show it:
//! - the API: `signing_alg`, `enforce_policies`, `token_dialect: access_token_authz` and
//!   `scopes: [{value, description}]`, in a `POST` and a `PATCH` (`auth0/terraform-provider-auth0`
//!   `test/data/recordings/TestAccResourceServer.yaml`, `TestAccResourceServerScopes.yaml`);
//! - the applications: `app_type`, `callbacks`, `web_origins`, `allowed_origins`,
//!   `allowed_logout_urls`, `grant_types`, `token_endpoint_auth_method` (the create and update
//!   schemas of `api-evangelist/auth0` `openapi/_original/auth0-management-api-openapi.yml`,
//!   both `additionalProperties: false`);
//! - Token Vault's Custom API Client: `{"name", "app_type": "resource_server",
//!   "resource_server_identifier", "grant_types": [the Token Vault grant]}` (`auth0/docs-v2`
//!   `main/docs/secure/call-apis-on-users-behalf/token-vault/configure-token-vault.mdx`, and
//!   `TestAccClientResourceServer.yaml`). `resource_server_identifier` is a creation property
//!   only: the update schema has no such property, so the client is found by it and never
//!   patched on it;
//! - a client grant: `{"client_id", "audience", "scope"}`, and a `PATCH` of `scope` alone (the
//!   update schema takes `scope`, `allow_all_scopes`, `allow_any_organization`,
//!   `authorization_details_types`, `organization_usage`; `TestAccClientGrant.yaml`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use crate::deployment::{AppRole, Deployment, TOKEN_VAULT_GRANT};
use crate::management::{Management, ManagementError};

/// The fields of an application that setup and check read: never its secret.
pub const APP_FIELDS: &str = "client_id,name,app_type,callbacks,web_origins,allowed_origins,allowed_logout_urls,grant_types,token_endpoint_auth_method,resource_server_identifier";

/// What the tenant holds of the deployment.
#[derive(Debug, Clone, Default)]
pub struct TenantState {
    /// The API whose identifier is the audience.
    pub api: Option<Value>,
    /// The deployment's applications, found by name.
    pub apps: BTreeMap<AppRole, Value>,
    /// The M2M application's grant on the Management API.
    pub grant: Option<Value>,
}

/// Reads the deployment's objects from the tenant.
pub async fn read(
    management: &Management,
    deployment: &Deployment,
) -> Result<TenantState, ManagementError> {
    let api = management
        .list(
            "resource-servers",
            "resource_servers",
            &[("identifiers", deployment.audience.as_str())],
        )
        .await?
        .into_iter()
        .find(|rs| rs["identifier"] == deployment.audience.as_str());
    let clients = management
        .list(
            "clients",
            "clients",
            &[("fields", APP_FIELDS), ("include_fields", "true")],
        )
        .await?;
    let mut apps = BTreeMap::new();
    for role in [AppRole::M2m, AppRole::Spa] {
        let name = deployment.app_name(role);
        if let Some(app) = clients.iter().find(|c| c["name"] == name.as_str()) {
            apps.insert(role, app.clone());
        }
    }
    // The Custom API Client is the one linked to the API, whatever its name (the Dashboard
    // names it after the API).
    if let Some(app) = clients.iter().find(|c| {
        c["app_type"] == "resource_server"
            && c["resource_server_identifier"] == deployment.audience.as_str()
    }) {
        apps.insert(AppRole::TokenVault, app.clone());
    }
    let grant = match apps
        .get(&AppRole::M2m)
        .and_then(|a| a["client_id"].as_str())
    {
        Some(client_id) => {
            grant_of(management, client_id, &deployment.management_audience()).await?
        }
        None => None,
    };
    Ok(TenantState { api, apps, grant })
}

/// `client_id`'s grant on `audience`, if any.
pub async fn grant_of(
    management: &Management,
    client_id: &str,
    audience: &str,
) -> Result<Option<Value>, ManagementError> {
    Ok(management
        .list(
            "client-grants",
            "client_grants",
            &[("client_id", client_id), ("audience", audience)],
        )
        .await?
        .into_iter()
        .find(|g| g["client_id"] == client_id && g["audience"] == audience))
}

/// The SPA's URLs.
#[derive(Debug, Clone, Default)]
pub struct SpaUrls {
    /// Web origins and allowed origins.
    pub origins: Vec<String>,
    /// Callback (and logout) URLs.
    pub callbacks: Vec<String>,
}

/// One change to the tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create the API.
    CreateApi(Value),
    /// Update the API's `fields` with `body`.
    UpdateApi {
        /// Its id.
        id: String,
        /// The fields to set.
        body: Value,
    },
    /// Create an application.
    CreateApp {
        /// Which.
        role: AppRole,
        /// Its settings.
        body: Value,
    },
    /// Update an application.
    UpdateApp {
        /// Which.
        role: AppRole,
        /// Its client id.
        id: String,
        /// The fields to set.
        body: Value,
    },
    /// Grant the M2M application these Management API scopes (a new grant, or the existing one
    /// set to exactly them).
    Grant {
        /// The existing grant's id.
        id: Option<String>,
        /// The scopes.
        scopes: Vec<String>,
    },
}

fn role_name(role: AppRole) -> &'static str {
    match role {
        AppRole::M2m => "M2M application",
        AppRole::Spa => "single page application",
        AppRole::TokenVault => "Token Vault Custom API Client",
    }
}

fn keys(body: &Value) -> String {
    body.as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateApi(body) => write!(
                f,
                "+ create the API {} (RS256, RBAC on, permissions in the access token; permissions: {})",
                body["identifier"],
                permission_list(body)
            ),
            Self::UpdateApi { body, .. } => write!(f, "~ update the API: {}", keys(body)),
            Self::CreateApp { role, body } => {
                write!(f, "+ create the {} {}", role_name(*role), body["name"])
            }
            Self::UpdateApp { role, body, .. } => {
                write!(f, "~ update the {}: {}", role_name(*role), keys(body))
            }
            Self::Grant { id: None, scopes } => write!(
                f,
                "+ grant the M2M application the Management API scopes {}",
                scopes.join(" ")
            ),
            Self::Grant {
                id: Some(_),
                scopes,
            } => write!(
                f,
                "~ set the M2M application's Management API scopes to exactly {}",
                scopes.join(" ")
            ),
        }
    }
}

/// The permissions an API defines (its `scopes[].value`).
pub fn permissions_of(api: &Value) -> Vec<&str> {
    api["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["value"].as_str())
        .collect()
}

fn permission_list(api: &Value) -> String {
    let values = permissions_of(api);
    if values.is_empty() {
        "none".into()
    } else {
        values.join(" ")
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// `current` with every one of `wanted` it lacks, or `None` when it lacks none: setup adds, and
/// keeps what an operator added by hand.
fn union(current: &Value, wanted: &[String]) -> Option<Value> {
    let mut list = strings(current);
    let before = list.len();
    for w in wanted {
        if !list.contains(w) {
            list.push(w.clone());
        }
    }
    (list.len() != before).then(|| json!(list))
}

/// The API's permission list for the `needs` of the allow rules.
fn api_scopes(permissions: &[String]) -> Vec<Value> {
    permissions
        .iter()
        .map(|p| json!({"value": p, "description": format!("auth0-idp-proxy: allow rules that need {p}")}))
        .collect()
}

/// The changes that make the tenant serve `deployment`.
pub fn changes(deployment: &Deployment, state: &TenantState, spa: &SpaUrls) -> Vec<Change> {
    let mut changes = Vec::new();
    let permissions = deployment.permissions();
    match &state.api {
        None => changes.push(Change::CreateApi(json!({
            "name": deployment.name,
            "identifier": deployment.audience,
            "signing_alg": "RS256",
            "enforce_policies": true,
            "token_dialect": "access_token_authz",
            "scopes": api_scopes(&permissions),
        }))),
        Some(api) => {
            let mut body = serde_json::Map::new();
            if api["signing_alg"] != "RS256" {
                body.insert("signing_alg".into(), json!("RS256"));
            }
            if api["enforce_policies"] != true {
                body.insert("enforce_policies".into(), json!(true));
            }
            if api["token_dialect"] != "access_token_authz" {
                body.insert("token_dialect".into(), json!("access_token_authz"));
            }
            let existing = api["scopes"].as_array().cloned().unwrap_or_default();
            let missing: Vec<String> = permissions
                .iter()
                .filter(|p| !existing.iter().any(|s| s["value"] == p.as_str()))
                .cloned()
                .collect();
            if !missing.is_empty() {
                let mut scopes = existing;
                scopes.extend(api_scopes(&missing));
                body.insert("scopes".into(), json!(scopes));
            }
            if !body.is_empty() {
                changes.push(Change::UpdateApi {
                    id: api["id"].as_str().unwrap_or_default().to_owned(),
                    body: body.into(),
                });
            }
        }
    }
    // Per role: the settings kept in line, then those a creation alone sets.
    let mut wanted = vec![
        (
            AppRole::M2m,
            // The function sends its secret in the token request's body
            // (src/management/token.rs): `client_secret_post`.
            json!({
                "app_type": "non_interactive",
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["client_credentials"],
            }),
            json!({}),
        ),
        (
            AppRole::Spa,
            json!({
                "app_type": "spa",
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "callbacks": spa.callbacks,
                "allowed_logout_urls": spa.callbacks,
                "web_origins": spa.origins,
                "allowed_origins": spa.origins,
            }),
            json!({}),
        ),
    ];
    if deployment.uses_token_vault() {
        wanted.push((
            AppRole::TokenVault,
            json!({"grant_types": [TOKEN_VAULT_GRANT]}),
            json!({
                "app_type": "resource_server",
                "resource_server_identifier": deployment.audience,
            }),
        ));
    }
    for (role, settings, at_creation) in wanted {
        match state.apps.get(&role) {
            None => {
                let mut body = json!({"name": deployment.app_name(role)});
                for (field, value) in at_creation
                    .as_object()
                    .into_iter()
                    .chain(settings.as_object())
                    .flatten()
                {
                    body[field] = value.clone();
                }
                changes.push(Change::CreateApp { role, body });
            }
            Some(app) => {
                let mut body = serde_json::Map::new();
                for (field, value) in settings.as_object().into_iter().flatten() {
                    let update = match value {
                        Value::Array(_) => union(&app[field], &strings(value)),
                        _ => (app[field] != *value).then(|| value.clone()),
                    };
                    if let Some(update) = update {
                        body.insert(field.clone(), update);
                    }
                }
                if !body.is_empty() {
                    changes.push(Change::UpdateApp {
                        role,
                        id: app["client_id"].as_str().unwrap_or_default().to_owned(),
                        body: body.into(),
                    });
                }
            }
        }
    }
    let scopes: Vec<String> = deployment
        .m2m_scopes()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    match &state.grant {
        None => changes.push(Change::Grant { id: None, scopes }),
        Some(grant) => {
            let mut held = strings(&grant["scope"]);
            held.sort_unstable();
            if held != scopes {
                changes.push(Change::Grant {
                    id: grant["id"].as_str().map(str::to_owned),
                    scopes,
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment::new(
            "example.eu.auth0.com",
            "https://api",
            "proxy",
            vec!["https://app.example.com".into()],
            Some(r#"{"github": {"allow": ["POST /user/repos needs github:write"]}}"#),
            None,
            true,
        )
        .expect("a valid deployment")
    }

    fn spa() -> SpaUrls {
        SpaUrls {
            origins: vec!["https://app.example.com".into()],
            callbacks: vec!["https://app.example.com".into()],
        }
    }

    #[test]
    fn an_empty_tenant_gets_the_api_two_applications_and_the_grant() {
        let changes = changes(&deployment(), &TenantState::default(), &spa());
        assert_eq!(changes.len(), 4, "{changes:?}");
        let Change::CreateApi(api) = &changes[0] else {
            panic!("the API first: {changes:?}");
        };
        assert_eq!(api["token_dialect"], "access_token_authz");
        assert_eq!(api["enforce_policies"], true);
        assert_eq!(permissions_of(api), ["github:write"]);
        assert_eq!(
            changes[3],
            Change::Grant {
                id: None,
                scopes: vec!["read:user_idp_tokens".into(), "read:users".into()]
            }
        );
    }

    #[test]
    fn a_grant_with_more_is_set_back_and_an_operator_s_origins_are_kept() {
        let d = deployment();
        let mut state = TenantState::default();
        for change in changes(&d, &state, &spa()) {
            match change {
                Change::CreateApi(mut api) => {
                    api["id"] = json!("rs_1");
                    state.api = Some(api);
                }
                Change::CreateApp { role, mut body } => {
                    body["client_id"] = json!(format!("{role:?}"));
                    state.apps.insert(role, body);
                }
                _ => {}
            }
        }
        if let Some(spa_app) = state.apps.get_mut(&AppRole::Spa) {
            spa_app["web_origins"] =
                json!(["https://app.example.com", "https://other.example.com"]);
        }
        state.grant = Some(
            json!({"id": "cgr_1", "scope": ["read:users", "read:user_idp_tokens", "update:users"]}),
        );
        assert_eq!(
            changes(&d, &state, &spa()),
            [Change::Grant {
                id: Some("cgr_1".into()),
                scopes: vec!["read:user_idp_tokens".into(), "read:users".into()]
            }]
        );
        state.grant = Some(json!({"id": "cgr_1", "scope": ["read:users", "read:user_idp_tokens"]}));
        assert!(changes(&d, &state, &spa()).is_empty());
    }
}
