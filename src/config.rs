//! Configuration read once per cold start from the environment (README, "Configuration").

use crate::auth::dpop::DpopMode;
use crate::streaming::ResponseMode;
use std::num::NonZeroUsize;
use std::time::Duration;

use url::Url;

use crate::idp::connections::{Connections, TokenSourceKind};
use crate::idp::tokens::TokenPolicy;
pub use crate::tenant::TenantOrigin;

/// Why the function cannot start: always names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{0} is required but not set")]
    Missing(&'static str),
    /// A variable is set to a value the function cannot use.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The environment variable at fault.
        var: &'static str,
        /// What is wrong with its value (never the value of a secret).
        reason: String,
    },
}

impl ConfigError {
    fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var,
            reason: reason.into(),
        }
    }
}

/// Which browser origins may call the function (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// No cross-origin caller is allowed (the default).
    #[default]
    None,
    /// Any origin (`*`): acceptable because the function never uses cookies.
    Any,
    /// Exactly these origins, compared byte for byte with the request's `Origin` header.
    List(Vec<String>),
}

impl AllowedOrigins {
    fn parse(value: &str) -> Result<Self, String> {
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(Self::None);
        }
        if items == ["*"] {
            return Ok(Self::Any);
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let url = Url::parse(item).map_err(|_| format!("{item:?} is not an origin"))?;
            let origin = url.origin();
            if !origin.is_tuple() || url.path() != "/" || item.ends_with('/') {
                return Err(format!(
                    "{item:?} is not an origin (scheme://host[:port], no path)"
                ));
            }
            origins.push(origin.ascii_serialization());
        }
        Ok(Self::List(origins))
    }

    /// Whether a request from `origin` may read the response.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::None => false,
            Self::Any => true,
            Self::List(list) => list.iter().any(|o| o == origin),
        }
    }
}

/// Everything the function needs to know, parsed and validated once per cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Auth0 tenant (`AUTH0_DOMAIN`).
    pub auth0_origin: TenantOrigin,
    /// Expected `iss` claim: `AUTH0_ISSUER`, else `{origin}/`.
    pub issuer: String,
    /// Expected member of the `aud` claim (`AUTH0_AUDIENCE`).
    pub audience: String,
    /// Secret name or ARN holding the M2M credentials (`CREDENTIALS_SECRET_ID`).
    pub credentials_secret_id: String,
    /// A scope that every caller's token must carry (`REQUIRED_SCOPE`).
    pub required_scope: Option<String>,
    /// The built-in connection table with `IDP_CONNECTIONS` merged over it, each connection's
    /// token source defaulting to `IDP_TOKEN_SOURCE`.
    pub connections: Connections,
    /// CORS allow-list (`ALLOWED_ORIGINS`).
    pub allowed_origins: AllowedOrigins,
    /// How many IdP tokens are cached, for how long, and when a refused one is tried again
    /// (`IDP_TOKEN_CACHE_SIZE`, `IDP_TOKEN_MAX_AGE`, `IDP_TOKEN_REFUSAL_RECHECK`).
    pub idp_tokens: TokenPolicy,
    /// How long an invocation may take when the runtime gives no deadline (tests, local runs).
    pub default_budget: Duration,
    /// The DynamoDB table shared by the fleet (`TOKEN_TABLE`); `None`: memory only.
    pub token_table: Option<String>,
    /// The Secrets Manager secret of the table's keys (`TOKEN_STORE_KEYS_SECRET_ID`, which the
    /// template generates); `None`: the credentials secret's `token_store_keys`. Read only with
    /// `TOKEN_TABLE`.
    pub token_store_keys_secret_id: Option<String>,
    /// The Secrets Manager secret of the operator's kill switch (`KILL_SWITCH_SECRET_ID`);
    /// `None`: no switch.
    pub kill_switch_secret_id: Option<String>,
    /// How answers reach Lambda (`RESPONSE_MODE`: `buffered`, the default, or `streaming`).
    pub response_mode: ResponseMode,
    /// Which caller tokens are accepted (`DPOP`: `off`, `allowed`, the default, or `required`).
    pub dpop: DpopMode,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let auth0_origin = TenantOrigin::parse(&required("AUTH0_DOMAIN")?)
            .map_err(|reason| ConfigError::invalid("AUTH0_DOMAIN", reason))?;
        let issuer = match get("AUTH0_ISSUER") {
            Some(issuer) => {
                let url = Url::parse(issuer.trim())
                    .map_err(|e| ConfigError::invalid("AUTH0_ISSUER", e.to_string()))?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(ConfigError::invalid(
                        "AUTH0_ISSUER",
                        "must be an http(s) URL",
                    ));
                }
                issuer.trim().to_owned()
            }
            None => format!("{}/", auth0_origin.as_str()),
        };
        let audience = required("AUTH0_AUDIENCE")?.trim().to_owned();
        let credentials_secret_id = required("CREDENTIALS_SECRET_ID")?.trim().to_owned();
        let required_scope = match get("REQUIRED_SCOPE") {
            Some(scope) if scope.trim().contains(char::is_whitespace) => {
                return Err(ConfigError::invalid(
                    "REQUIRED_SCOPE",
                    "must be a single scope",
                ));
            }
            other => other.map(|s| s.trim().to_owned()),
        };
        let token_source = get("IDP_TOKEN_SOURCE")
            .map(|v| TokenSourceKind::parse(&v))
            .transpose()
            .map_err(|reason| ConfigError::invalid("IDP_TOKEN_SOURCE", reason))?
            .unwrap_or_default();
        let connections = match get("IDP_CONNECTIONS") {
            None => Connections::with_default_source(None, token_source),
            Some(json) => Connections::from_json_with_default_source(&json, token_source),
        }
        .map_err(|reason| ConfigError::invalid("IDP_CONNECTIONS", reason))?;
        let allowed_origins = get("ALLOWED_ORIGINS")
            .map(|v| AllowedOrigins::parse(&v))
            .transpose()
            .map_err(|reason| ConfigError::invalid("ALLOWED_ORIGINS", reason))?
            .unwrap_or_default();

        let number = |name: &'static str, range: std::ops::RangeInclusive<u64>| {
            get(name)
                .map(|v| match v.trim().parse::<u64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(ConfigError::invalid(
                        name,
                        format!(
                            "must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )),
                })
                .transpose()
        };
        let defaults = TokenPolicy::default();
        let idp_tokens = TokenPolicy {
            capacity: number("IDP_TOKEN_CACHE_SIZE", 1..=100_000)?
                .and_then(|n| NonZeroUsize::new(usize::try_from(n).ok()?))
                .unwrap_or(defaults.capacity),
            max_age: number("IDP_TOKEN_MAX_AGE", 1..=3_600)?
                .map_or(defaults.max_age, Duration::from_secs),
            refusal_recheck: number("IDP_TOKEN_REFUSAL_RECHECK", 1..=3_600)?
                .map_or(defaults.refusal_recheck, Duration::from_secs),
        };

        Ok(Self {
            auth0_origin,
            issuer,
            audience,
            credentials_secret_id,
            required_scope,
            connections,
            allowed_origins,
            idp_tokens,
            default_budget: Duration::from_secs(10),
            token_table: get("TOKEN_TABLE")
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty()),
            token_store_keys_secret_id: get("TOKEN_STORE_KEYS_SECRET_ID")
                .map(|id| secret_id("TOKEN_STORE_KEYS_SECRET_ID", &id))
                .transpose()?,
            kill_switch_secret_id: get("KILL_SWITCH_SECRET_ID").map(|id| id.trim().to_owned()),
            response_mode: get("RESPONSE_MODE")
                .map(|v| ResponseMode::parse(&v))
                .transpose()
                .map_err(|reason| ConfigError::invalid("RESPONSE_MODE", reason))?
                .unwrap_or_default(),
            dpop: get("DPOP")
                .map(|v| DpopMode::parse(&v))
                .transpose()
                .map_err(|reason| ConfigError::invalid("DPOP", reason))?
                .unwrap_or_default(),
        })
    }
}

/// A Secrets Manager secret name or ARN in `var`: its characters are those AWS allows (letters,
/// digits, `/_+=.@-`, and `:` for an ARN), so that a pasted JSON value or a stray space is a
/// start-up error naming the variable, not a failed read at every cold start.
fn secret_id(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c);
    if value.len() > 2048 || !value.chars().all(allowed) {
        return Err(ConfigError::invalid(
            var,
            "must be a Secrets Manager secret name or ARN",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let base: HashMap<&str, &str> = [
            ("AUTH0_DOMAIN", "example.us.auth0.com"),
            ("AUTH0_AUDIENCE", "https://api.example.com"),
            ("CREDENTIALS_SECRET_ID", "auth0-idp-proxy/m2m"),
        ]
        .into_iter()
        .chain(vars.iter().copied())
        .collect();
        Config::from_lookup(|name| base.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn the_response_mode_is_buffered_unless_streaming_is_asked_for() {
        let mode = |vars: &[(&str, &str)]| config(vars).expect("valid").response_mode;
        assert_eq!(mode(&[]), ResponseMode::Buffered);
        assert_eq!(
            mode(&[("RESPONSE_MODE", "streaming")]),
            ResponseMode::Streaming
        );
        assert_eq!(
            mode(&[("RESPONSE_MODE", "buffered")]),
            ResponseMode::Buffered
        );
        assert!(error_text(&[("RESPONSE_MODE", "stream")]).contains("RESPONSE_MODE"));
    }

    fn error_text(vars: &[(&str, &str)]) -> String {
        config(vars)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn bare_domain_means_https_and_issuer_defaults_to_origin() {
        let config = config(&[]).expect("valid");
        assert_eq!(config.auth0_origin.as_str(), "https://example.us.auth0.com");
        assert_eq!(config.issuer, "https://example.us.auth0.com/");
    }

    #[test]
    fn accepts_loopback_http_origin_with_port() {
        let config = config(&[("AUTH0_DOMAIN", "http://127.0.0.1:8081/")]).expect("valid");
        assert_eq!(config.auth0_origin.as_str(), "http://127.0.0.1:8081");
        assert_eq!(
            config.auth0_origin.join("/oauth/token"),
            "http://127.0.0.1:8081/oauth/token"
        );
    }

    #[test]
    fn rejects_plain_http_to_a_remote_host() {
        assert!(
            error_text(&[("AUTH0_DOMAIN", "http://example.auth0.com")]).contains("AUTH0_DOMAIN")
        );
    }

    #[test]
    fn rejects_domain_with_path_or_credentials() {
        for bad in [
            "example.auth0.com/api",
            "https://user:pw@example.auth0.com",
            "ftp://example.auth0.com",
        ] {
            assert!(
                error_text(&[("AUTH0_DOMAIN", bad)]).contains("AUTH0_DOMAIN"),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_variables_are_named() {
        for var in ["AUTH0_DOMAIN", "AUTH0_AUDIENCE", "CREDENTIALS_SECRET_ID"] {
            let text = error_text(&[(var, "  ")]);
            assert_eq!(text, format!("{var} is required but not set"));
        }
    }

    #[test]
    fn idp_connections_must_be_a_json_object() {
        assert!(error_text(&[("IDP_CONNECTIONS", "[1]")]).contains("IDP_CONNECTIONS"));
        assert!(error_text(&[("IDP_CONNECTIONS", "{")]).contains("IDP_CONNECTIONS"));
        let config = config(&[(
            "IDP_CONNECTIONS",
            r#"{"github":{"api_base":"http://127.0.0.1:9"}}"#,
        )])
        .expect("valid");
        let github = config.connections.get("github").expect("github");
        assert_eq!(github.api_base.as_str(), "http://127.0.0.1:9/");
    }

    #[test]
    fn idp_token_source_sets_the_default_and_connections_may_differ() {
        let default = config(&[]).expect("valid");
        let source =
            |config: &Config, name: &str| config.connections.get(name).expect(name).token_source;
        assert_eq!(source(&default, "github"), TokenSourceKind::Identities);
        let mixed = config(&[
            ("IDP_TOKEN_SOURCE", "token_vault"),
            (
                "IDP_CONNECTIONS",
                r#"{"github": {"token_source": "identities"}}"#,
            ),
        ])
        .expect("valid");
        assert_eq!(source(&mixed, "github"), TokenSourceKind::Identities);
        assert_eq!(source(&mixed, "google-oauth2"), TokenSourceKind::TokenVault);
        assert!(error_text(&[("IDP_TOKEN_SOURCE", "vault")]).contains("IDP_TOKEN_SOURCE"));
    }

    #[test]
    fn allowed_origins_are_exact_origins() {
        let config = config(&[(
            "ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:5173",
        )])
        .expect("valid");
        assert!(config.allowed_origins.allows("https://app.example.com"));
        assert!(config.allowed_origins.allows("http://localhost:5173"));
        assert!(!config.allowed_origins.allows("https://evil.example.com"));
        assert!(
            error_text(&[("ALLOWED_ORIGINS", "https://app.example.com/path")])
                .contains("ALLOWED_ORIGINS")
        );
        assert!(error_text(&[("ALLOWED_ORIGINS", "app.example.com")]).contains("ALLOWED_ORIGINS"));
    }

    #[test]
    fn idp_token_cache_is_configurable_within_bounds() {
        let defaults = config(&[]).expect("valid");
        assert_eq!(defaults.idp_tokens, TokenPolicy::default());
        let set = config(&[
            ("IDP_TOKEN_CACHE_SIZE", "50"),
            ("IDP_TOKEN_MAX_AGE", "60"),
            ("IDP_TOKEN_REFUSAL_RECHECK", "5"),
        ])
        .expect("valid");
        assert_eq!(set.idp_tokens.capacity.get(), 50);
        assert_eq!(set.idp_tokens.max_age, Duration::from_secs(60));
        assert_eq!(set.idp_tokens.refusal_recheck, Duration::from_secs(5));
        for (var, bad) in [
            ("IDP_TOKEN_CACHE_SIZE", "0"),
            ("IDP_TOKEN_CACHE_SIZE", "many"),
            ("IDP_TOKEN_MAX_AGE", "86400"),
            ("IDP_TOKEN_MAX_AGE", "-1"),
            ("IDP_TOKEN_REFUSAL_RECHECK", "0"),
        ] {
            assert!(error_text(&[(var, bad)]).contains(var), "{var}={bad}");
        }
    }

    #[test]
    fn the_keys_secret_is_optional_and_must_be_a_secret_id() {
        assert_eq!(config(&[]).expect("valid").token_store_keys_secret_id, None);
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:proxy-keys-AbCdEf";
        let set = config(&[("TOKEN_STORE_KEYS_SECRET_ID", &format!(" {arn} "))]).expect("valid");
        assert_eq!(set.token_store_keys_secret_id.as_deref(), Some(arn));
        for bad in [r#"{"key": "x"}"#, "two words"] {
            assert!(
                error_text(&[("TOKEN_STORE_KEYS_SECRET_ID", bad)])
                    .contains("TOKEN_STORE_KEYS_SECRET_ID"),
                "{bad}"
            );
        }
    }

    #[test]
    fn issuer_override_and_scope_validation() {
        let config = config(&[("AUTH0_ISSUER", "https://login.example.com/")]).expect("valid");
        assert_eq!(config.issuer, "https://login.example.com/");
        assert!(error_text(&[("AUTH0_ISSUER", "not a url")]).contains("AUTH0_ISSUER"));
        assert!(error_text(&[("REQUIRED_SCOPE", "a b")]).contains("REQUIRED_SCOPE"));
    }
}
