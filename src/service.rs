//! [`Service`]: which remote service a call went to, named in errors, logs and the invocation's
//! summary line. A leaf: every layer that calls out or reports on calls names services with it.

/// Which remote service a call went to; named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The tenant's `/.well-known/jwks.json`.
    Jwks,
    /// The tenant's `/oauth/token`.
    TokenEndpoint,
    /// The tenant's Management API v2.
    ManagementApi,
    /// AWS Secrets Manager.
    SecretsManager,
    /// The DynamoDB table shared by the fleet (`TOKEN_TABLE`).
    TokenTable,
    /// An identity provider's API or token endpoint.
    Idp,
}

impl Service {
    /// Every service, in the order the summary line reports their times.
    pub const ALL: [Self; 6] = [
        Self::SecretsManager,
        Self::TokenEndpoint,
        Self::ManagementApi,
        Self::Jwks,
        Self::Idp,
        Self::TokenTable,
    ];

    /// A short, stable name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jwks => "jwks",
            Self::TokenEndpoint => "token",
            Self::ManagementApi => "management",
            Self::SecretsManager => "secrets",
            Self::TokenTable => "table",
            Self::Idp => "idp",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Jwks => "the Auth0 JWKS endpoint",
            Self::TokenEndpoint => "the Auth0 token endpoint",
            Self::ManagementApi => "the Auth0 Management API",
            Self::SecretsManager => "AWS Secrets Manager",
            Self::TokenTable => "the token table",
            Self::Idp => "the identity provider",
        })
    }
}
