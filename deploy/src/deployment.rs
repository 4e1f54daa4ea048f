//! What a deployment needs of the tenant, derived from its parameters with the function's own
//! parsers: the connection table (`IDP_CONNECTIONS` over the catalogue), the permissions its
//! allow rules' `needs` name, the Management API scopes its token sources call for.

use std::collections::BTreeMap;

use auth0_idp_proxy::config::TenantOrigin;
use auth0_idp_proxy::idp::connections::{Connection, Connections, TokenSourceKind};

/// The Token Vault exchange's grant type, which the exchanging client must be allowed.
pub const TOKEN_VAULT_GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";

/// A deployment: the stack's parameters that concern the tenant.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `Auth0Domain` as the function reads it.
    pub origin: TenantOrigin,
    /// `Auth0Domain` as given.
    pub domain: String,
    /// `Auth0Audience`: the API's identifier.
    pub audience: String,
    /// The name of the stack, the API and the applications.
    pub name: String,
    /// `AllowedOrigins`: the SPA's origins.
    pub origins: Vec<String>,
    /// `IdpConnections`, as given (empty: none).
    pub idp_connections: String,
    /// `IdpTokenSource`.
    pub token_source: TokenSourceKind,
    /// The connection table the function builds from them.
    pub connections: Connections,
    /// `TokenTable` is `Enabled`.
    pub token_table: bool,
}

impl Deployment {
    /// The deployment of these parameters; `Err` names the one at fault.
    pub fn new(
        domain: &str,
        audience: &str,
        name: &str,
        origins: Vec<String>,
        idp_connections: Option<&str>,
        token_source: Option<&str>,
        token_table: bool,
    ) -> Result<Self, String> {
        let origin =
            TenantOrigin::parse(domain).map_err(|e| format!("the domain {domain:?}: {e}"))?;
        let token_source = token_source
            .filter(|s| !s.trim().is_empty())
            .map(TokenSourceKind::parse)
            .transpose()
            .map_err(|e| format!("IdpTokenSource: {e}"))?
            .unwrap_or_default();
        let idp_connections = idp_connections.unwrap_or_default().trim().to_owned();
        let connections = if idp_connections.is_empty() {
            Connections::with_default_source(None, token_source)
        } else {
            Connections::from_json_with_default_source(&idp_connections, token_source)
        }
        .map_err(|e| format!("IdpConnections: {e}"))?;
        if audience.trim().is_empty() {
            return Err("the audience (API identifier) is empty".into());
        }
        Ok(Self {
            origin,
            domain: domain.trim().to_owned(),
            audience: audience.trim().to_owned(),
            name: name.to_owned(),
            origins,
            idp_connections,
            token_source,
            connections,
            token_table,
        })
    }

    /// The connections the deployment serves: those `IdpConnections` names, sorted.
    pub fn served(&self) -> Vec<&Connection> {
        let names: BTreeMap<String, ()> =
            serde_json::from_str::<BTreeMap<String, serde_json::Value>>(
                if self.idp_connections.is_empty() {
                    "{}"
                } else {
                    &self.idp_connections
                },
            )
            .unwrap_or_default()
            .into_keys()
            .map(|k| (k, ()))
            .collect();
        names
            .keys()
            .filter_map(|name| self.connections.get(name))
            .collect()
    }

    /// Every permission the served connections' allow rules need, sorted, each once.
    pub fn permissions(&self) -> Vec<String> {
        let mut permissions: Vec<String> = self
            .served()
            .iter()
            .flat_map(|c| c.allow.iter())
            .flat_map(|rule| rule.needs().iter().cloned())
            .collect();
        permissions.sort_unstable();
        permissions.dedup();
        permissions
    }

    /// The Management API scopes the M2M application needs: `read:users` for every user read
    /// (`GET /identities` included), `read:user_idp_tokens` while a connection reads its IdP
    /// tokens from `identities[]`.
    pub fn m2m_scopes(&self) -> Vec<&'static str> {
        let identities = self
            .served()
            .iter()
            .any(|c| c.token_source == TokenSourceKind::Identities)
            || (self.served().is_empty() && self.token_source == TokenSourceKind::Identities);
        if identities {
            vec!["read:user_idp_tokens", "read:users"]
        } else {
            vec!["read:users"]
        }
    }

    /// Whether some served connection uses Token Vault.
    pub fn uses_token_vault(&self) -> bool {
        self.served()
            .iter()
            .any(|c| c.token_source == TokenSourceKind::TokenVault)
            || (self.served().is_empty() && self.token_source == TokenSourceKind::TokenVault)
    }

    /// The application names setup gives and check looks for.
    pub fn app_name(&self, role: AppRole) -> String {
        match role {
            AppRole::M2m => format!("{} (M2M)", self.name),
            AppRole::Spa => format!("{} (SPA)", self.name),
            AppRole::TokenVault => format!("{} (Token Vault)", self.name),
        }
    }

    /// The Management API's audience.
    pub fn management_audience(&self) -> String {
        self.origin.join("/api/v2/")
    }
}

/// The applications a deployment has in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppRole {
    /// The function's machine-to-machine application (Management API client).
    M2m,
    /// The frontend's single page application.
    Spa,
    /// Token Vault's Custom API Client, linked to the API.
    TokenVault,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(connections: &str, source: Option<&str>) -> Deployment {
        Deployment::new(
            "example.eu.auth0.com",
            "https://api",
            "proxy",
            vec![],
            Some(connections),
            source,
            true,
        )
        .expect("a valid deployment")
    }

    #[test]
    fn permissions_are_every_need_of_the_served_connections_once() {
        let d = deployment(
            r#"{"github": {"allow": ["GET /user/**", "POST /user/repos needs github:write", "DELETE /repos/** needs github:write github:admin"]}}"#,
            None,
        );
        assert_eq!(d.permissions(), ["github:admin", "github:write"]);
        assert!(
            deployment(r#"{"github": {}}"#, None)
                .permissions()
                .is_empty()
        );
    }

    #[test]
    fn token_vault_only_deployments_need_read_users_alone() {
        let vault = deployment(r#"{"google-oauth2": {}}"#, Some("token_vault"));
        assert_eq!(vault.m2m_scopes(), ["read:users"]);
        assert!(vault.uses_token_vault());
        let mixed = deployment(
            r#"{"github": {}, "google-oauth2": {"token_source": "token_vault"}}"#,
            None,
        );
        assert_eq!(mixed.m2m_scopes(), ["read:user_idp_tokens", "read:users"]);
        assert!(Deployment::new("", "a", "n", vec![], None, None, true).is_err());
        assert!(
            Deployment::new("t.auth0.com", "a", "n", vec![], Some("[1]"), None, true)
                .is_err_and(|e| e.contains("IdpConnections"))
        );
    }
}
