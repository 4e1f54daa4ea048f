//! The Management API client: every list read page by page (`page`, `per_page`,
//! `include_totals`), writes as `POST` and `PATCH`, Auth0's error bodies turned into
//! [`ManagementError`], a missing scope named. Each call is bounded by [`crate::HTTP_TIMEOUT`].
//!
//! The shapes, as public sources show them: a paged list answers `{"start", "limit", "total",
//! <list>}` (`auth0/terraform-provider-auth0` `test/data/recordings/TestAccClientGrant.yaml`,
//! `TestAccDataClients.yaml`); `per_page` is at most 100 (`api-evangelist/auth0`
//! `openapi/_original/auth0-management-api-openapi.yml`); an error answers `{"statusCode",
//! "error", "message", "errorCode"}` (the recordings' `404 inexistent_client`, `409
//! custom_domain_conflict`), and a missing scope `403 insufficient_scope` with `Insufficient
//! scope, expected any of: a,b` (the message quoted in `auth0/auth0-cli#538`).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use auth0_idp_proxy::config::TenantOrigin;

use crate::operator::OperatorToken;

/// The largest page Auth0 serves.
const PER_PAGE: usize = 100;

/// Why a Management API call failed. Never holds a token or a response body that could.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// The token lacks a scope the call needs (`403 insufficient_scope`).
    #[error("the Management API token lacks {} (needed for {call})", lacking(.scopes))]
    InsufficientScope {
        /// The scopes Auth0 named, any of which would do.
        scopes: Vec<String>,
        /// The call refused.
        call: String,
    },
    /// The tenant refused the token (`401`): expired, for another tenant, or not a
    /// Management API token.
    #[error("the tenant refuses the Management API token ({call}): make a new one for this tenant")]
    Unauthorized {
        /// The call refused.
        call: String,
    },
    /// Auth0 answered another error.
    #[error("{call}: {status} {message}{}", .code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        /// The call.
        call: String,
        /// Its status.
        status: StatusCode,
        /// Auth0's `message`.
        message: String,
        /// Auth0's `errorCode`.
        code: Option<String>,
    },
    /// No answer, or not the documented JSON.
    #[error("{call}: no usable answer from the tenant")]
    Transport {
        /// The call.
        call: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

/// The tenant's Management API, called with the operator's token.
#[derive(Debug, Clone)]
pub struct Management {
    http: reqwest::Client,
    origin: TenantOrigin,
    token: OperatorToken,
}

impl Management {
    /// A client of `origin`'s Management API.
    pub fn new(http: reqwest::Client, origin: TenantOrigin, token: OperatorToken) -> Self {
        Self {
            http,
            origin,
            token,
        }
    }

    /// Every object of the list at `/api/v2/{path}` (answered under `key` when paged), with
    /// `query`'s filters.
    pub async fn list(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, ManagementError> {
        let mut all = Vec::new();
        for page in 0.. {
            let page_text = page.to_string();
            let per_page = PER_PAGE.to_string();
            let mut params: Vec<(&str, &str)> = query.to_vec();
            params.extend([
                ("page", page_text.as_str()),
                ("per_page", per_page.as_str()),
                ("include_totals", "true"),
            ]);
            let body = self.send(Method::GET, path, &params, None).await?;
            let items = body
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = body.get("total").and_then(Value::as_u64).unwrap_or(0);
            let fetched = items.len();
            all.extend(items);
            if fetched == 0 || all.len() as u64 >= total {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /api/v2/{path}` with `query`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ManagementError> {
        self.send(Method::GET, path, query, None).await
    }

    /// `POST /api/v2/{path}`: the created object.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ManagementError> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    /// `PATCH /api/v2/{path}`: the updated object.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ManagementError> {
        self.send(Method::PATCH, path, &[], Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ManagementError> {
        // The call as errors name it: the path without a query, never a value from a body.
        let call = format!("{method} /api/v2/{path}");
        let mut request = self
            .http
            .request(method, self.origin.join(&format!("/api/v2/{path}")))
            .bearer_auth(self.token.expose())
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |source| ManagementError::Transport {
            call: call.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(transport);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
        let message = text("message").unwrap_or_default();
        match status {
            StatusCode::UNAUTHORIZED => Err(ManagementError::Unauthorized { call }),
            StatusCode::FORBIDDEN if text("errorCode").as_deref() == Some("insufficient_scope") => {
                // "Insufficient scope, expected any of: read:clients,read:client_keys"
                let named = message
                    .rsplit_once(": ")
                    .map_or(message.as_str(), |(_, s)| s);
                let scopes = named
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                Err(ManagementError::InsufficientScope { scopes, call })
            }
            _ => Err(ManagementError::Refused {
                call,
                status,
                message,
                code: text("errorCode"),
            }),
        }
    }
}

/// `read:clients`, or `any of read:clients, read:client_keys` when Auth0 names several.
fn lacking(scopes: &[String]) -> String {
    match scopes {
        [one] => one.clone(),
        several => format!("any of {}", several.join(", ")),
    }
}

/// `value` percent-encoded as one path segment (an API identifier is a URL).
pub fn segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}
