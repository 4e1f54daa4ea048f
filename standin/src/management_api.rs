//! The stand-in tenant's Management API for what `deploy setup` and `deploy check` call:
//! `/api/v2/resource-servers`, `/api/v2/clients`, `/api/v2/client-grants` and
//! `/api/v2/connections`, each with `GET` (a page of the list, or one by id), `POST` and
//! `PATCH`, answered as Auth0 documents them: `page` / `per_page` / `include_totals`
//! pagination, `201` on a creation, `409` on a duplicate, `404` for an unknown id, `400
//! invalid_body` for a property the endpoint does not take, and `403 insufficient_scope`
//! naming the scopes when the caller's token lacks them. Error bodies are Auth0's:
//! `{"statusCode", "error", "message", "errorCode"}`.
//!
//! Sources, read rather than remembered: `api-evangelist/auth0`
//! `openapi/_original/auth0-management-api-openapi.yml` (each endpoint's scopes, query
//! parameters, request properties with `additionalProperties: false`, 409 descriptions) and
//! `auth0/terraform-provider-auth0` `test/data/recordings/` (real answers: what a creation
//! returns, paged bodies, the `404 inexistent_client` / `inexistent_resource_server` /
//! `inexistent_connection` bodies, a `409 custom_domain_conflict` body). Not confirmed by any
//! of them, and kept as written: the `errorCode` of the three `409`s below, the client grant's
//! `409` message and `404` code, the `invalid_query_string` code, and the `400` messages'
//! wording (only `invalid_body` and the `Payload validation error:` prefix are seen).
//!
//! Callers authenticate with an operator token minted by [`ManagementApi::operator_token`];
//! the scopes it was minted with are the ones the endpoints check. Clients created here may
//! also use the tenant's client-credentials grant once they hold a grant on the Management API
//! ([`ManagementApi::accepts_client`]), so that a function configured by `deploy setup` works
//! against the same stand-in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::lock;
use crate::opaque_token::new_token;

/// Auth0's largest `per_page`.
const MAX_PER_PAGE: usize = 100;
/// Auth0's `per_page` when the request names none: 50 (`GET /clients`), 100 for connections
/// (the OpenAPI's parameter descriptions).
const DEFAULT_PER_PAGE: usize = 50;
const DEFAULT_PER_PAGE_CONNECTIONS: usize = 100;

/// One kind of Management API object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    ResourceServers,
    Clients,
    ClientGrants,
    Connections,
}

impl Kind {
    /// The path segment after `/api/v2/`.
    fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "resource-servers" => Some(Self::ResourceServers),
            "clients" => Some(Self::Clients),
            "client-grants" => Some(Self::ClientGrants),
            "connections" => Some(Self::Connections),
            _ => None,
        }
    }

    /// The noun in the scopes (`read:client_grants`) and in a paged answer's list key.
    fn noun(self) -> &'static str {
        match self {
            Self::ResourceServers => "resource_servers",
            Self::Clients => "clients",
            Self::ClientGrants => "client_grants",
            Self::Connections => "connections",
        }
    }

    /// The field that holds an object's id.
    fn id_field(self) -> &'static str {
        match self {
            Self::Clients => "client_id",
            _ => "id",
        }
    }

    /// The singular of [`Kind::noun`] in Auth0's messages and `inexistent_…` codes.
    fn singular(self) -> &'static str {
        match self {
            Self::ResourceServers => "resource_server",
            Self::Clients => "client",
            Self::ClientGrants => "client_grant",
            Self::Connections => "connection",
        }
    }

    /// Whether a `POST` (`create`) or a `PATCH` takes `property`; Auth0 refuses any other
    /// with `400 invalid_body` (`additionalProperties: false` in its OpenAPI).
    fn takes(self, create: bool, property: &str) -> bool {
        let lists: [&[&str]; 2] = match (self, create) {
            (Self::ResourceServers, true) => [RESOURCE_SERVER_CREATE, &[]],
            (Self::ResourceServers, false) => [&RESOURCE_SERVER_CREATE[1..], &[]],
            (Self::Clients, true) => [CLIENT_COMMON, CLIENT_CREATE],
            (Self::Clients, false) => [CLIENT_COMMON, CLIENT_UPDATE],
            (Self::ClientGrants, true) => [CLIENT_GRANT_CREATE, &[]],
            (Self::ClientGrants, false) => [CLIENT_GRANT_UPDATE, &[]],
            (Self::Connections, true) => [CONNECTION_CREATE, &[]],
            (Self::Connections, false) => [&CONNECTION_CREATE[2..], &[]],
        };
        lists.iter().any(|list| list.contains(&property))
    }

    /// The scopes of which the caller needs one for `verb` (`read`, `create`, `update`): each
    /// endpoint's `security` in the OpenAPI.
    fn scopes(self, verb: &str) -> Vec<String> {
        let extra: &[&str] = match (self, verb) {
            (Self::Clients, "read") => &[
                "read:client_keys",
                "read:client_credentials",
                "read:client_summary",
            ],
            (Self::Clients, "update") => &[
                "update:client_keys",
                "update:client_credentials",
                "update:client_token_vault_privileged_access",
            ],
            _ => &[],
        };
        std::iter::once(format!("{verb}:{}", self.noun()))
            .chain(extra.iter().map(|s| (*s).to_owned()))
            .collect()
    }
}

// `POST` bodies' properties (the api-evangelist copy's request schemas, and the newer ones of
// `auth0/node-auth0` `src/management/api/requests/requests.ts`); `identifier` (resource servers)
// and `name`, `strategy` (connections) come first: a `PATCH` takes the rest.
#[rustfmt::skip]
const RESOURCE_SERVER_CREATE: &[&str] = &[
    "identifier", "allow_offline_access", "allow_online_access", "authorization_details",
    "authorization_policy", "consent_policy", "enforce_policies", "name", "proof_of_possession",
    "scopes", "signing_alg", "signing_secret", "skip_consent_for_verifiable_first_party_clients",
    "subject_type_authorization", "token_dialect", "token_encryption", "token_lifetime",
    "allow_online_access_with_ephemeral_sessions",
];
#[rustfmt::skip]
const CONNECTION_CREATE: &[&str] = &[
    "name", "strategy", "authentication", "connected_accounts", "display_name", "enabled_clients",
    "is_domain_connection", "metadata", "options", "realms", "show_as_button",
    "cross_app_access_requesting_app", "cross_app_access_resource_app",
];
#[rustfmt::skip]
const CLIENT_GRANT_CREATE: &[&str] = &[
    "allow_all_scopes", "allow_any_organization", "audience", "authorization_details_types",
    "client_id", "default_for", "organization_usage", "scope", "subject_type",
];
#[rustfmt::skip]
const CLIENT_GRANT_UPDATE: &[&str] = &[
    "allow_all_scopes", "allow_any_organization", "authorization_details_types",
    "organization_usage", "scope",
];
/// A client's properties common to `POST` and `PATCH`.
#[rustfmt::skip]
const CLIENT_COMMON: &[&str] = &[
    "addons", "allowed_clients", "allowed_logout_urls", "allowed_origins", "app_type",
    "async_approval_notification_channels", "callbacks", "client_aliases",
    "client_authentication_methods", "client_metadata", "compliance_level",
    "cross_origin_authentication", "cross_origin_loc", "custom_login_page", "custom_login_page_on",
    "custom_login_page_preview", "default_organization", "description", "encryption_key",
    "express_configuration", "form_template", "grant_types", "initiate_login_uri", "is_first_party",
    "is_token_endpoint_ip_header_trusted", "jwt_configuration", "logo_uri", "mobile",
    "my_organization_configuration", "name", "native_social_login", "oidc_backchannel_logout",
    "oidc_conformant", "oidc_logout", "organization_discovery_methods",
    "organization_require_behavior", "organization_usage", "par_request_expiry",
    "redirection_policy", "refresh_token", "require_proof_of_possession",
    "require_pushed_authorization_requests", "session_transfer", "signed_request_object",
    "skip_non_verifiable_callback_uri_confirmation_prompt", "sso", "sso_disabled",
    "third_party_security_mode", "token_endpoint_auth_method", "token_exchange", "token_quota",
    "web_origins", "fedcm_login", "identity_assertion_authorization_grant",
    "token_vault_privileged_access",
];
// A client's link to an API is set at its creation only; its secret can be set by a `PATCH`.
const CLIENT_CREATE: &[&str] = &["resource_server_identifier"];
const CLIENT_UPDATE: &[&str] = &["client_secret"];

#[derive(Debug, Default)]
struct Store {
    objects: HashMap<Kind, Vec<Value>>,
    /// Operator tokens and the scopes each was minted with.
    operators: HashMap<String, Vec<String>>,
    /// `METHOD /path?query` of every Management API request served here.
    requests: Vec<String>,
}

/// The Management API's state, shared with the tenant that serves it.
#[derive(Debug, Clone, Default)]
pub struct ManagementApi {
    store: Arc<Mutex<Store>>,
}

impl ManagementApi {
    /// The routes, to merge into the tenant's router.
    pub(crate) fn router(&self) -> Router {
        Router::new()
            .route(
                "/api/v2/{kind}",
                get(list).post(create).with_state(self.clone()),
            )
            .route(
                "/api/v2/{kind}/{id}",
                get(one).patch(update).with_state(self.clone()),
            )
    }

    /// Registers `token` as an operator's Management API token carrying `scopes`.
    pub(crate) fn add_operator(&self, token: &str, scopes: &[&str]) {
        lock(&self.store).operators.insert(
            token.to_owned(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        );
    }

    /// `METHOD /path?query` of every request served so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        lock(&self.store).requests.clone()
    }

    /// Whether `client_id` and `client_secret` are a client created here that holds a grant
    /// for `audience`: the client-credentials grant then issues it a token.
    pub(crate) fn accepts_client(
        &self,
        client_id: &str,
        client_secret: &str,
        audience: &str,
    ) -> bool {
        let store = lock(&self.store);
        let of = |kind| store.objects.get(&kind).into_iter().flatten();
        let known = of(Kind::Clients).any(|c| {
            c["client_id"] == client_id && c["client_secret"].as_str() == Some(client_secret)
        });
        known
            && of(Kind::ClientGrants)
                .any(|g| g["client_id"] == client_id && g["audience"] == audience)
    }
}

/// An answer that ends a request early, boxed: a `Response` is large for an `Err`.
type Refusal = Box<Response>;

/// Auth0's error body.
fn error(status: StatusCode, message: &str, code: Option<&str>) -> Response {
    let mut body = json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or_default(),
        "message": message,
    });
    if let Some(code) = code {
        body["errorCode"] = json!(code);
    }
    (status, axum::Json(body)).into_response()
}

/// The caller's scopes, or the `401` Auth0 answers.
fn caller(api: &ManagementApi, headers: &HeaderMap) -> Result<Vec<String>, Refusal> {
    let Some(value) = headers.get("authorization").and_then(|h| h.to_str().ok()) else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Missing authentication",
            None,
        )));
    };
    let token = value.strip_prefix("Bearer ").unwrap_or_default();
    lock(&api.store)
        .operators
        .get(token)
        .cloned()
        .ok_or_else(|| Box::new(error(StatusCode::UNAUTHORIZED, "Invalid token", None)))
}

/// The `403` of a token that holds none of `any_of`, in Auth0's words: `Insufficient scope,
/// expected any of: read:users,read:current_user,read:user_idp_tokens` with `errorCode
/// insufficient_scope` (a real answer quoted in raster-foundry/raster-foundry#2030 and
/// auth0/auth0-cli#538).
fn require(scopes: &[String], any_of: &[String]) -> Result<(), Refusal> {
    if scopes.iter().any(|s| any_of.contains(s)) {
        return Ok(());
    }
    Err(Box::new(error(
        StatusCode::FORBIDDEN,
        &format!("Insufficient scope, expected any of: {}", any_of.join(",")),
        Some("insufficient_scope"),
    )))
}

/// Records the request, resolves the kind and checks the caller holds `verb:noun`.
fn admit(
    api: &ManagementApi,
    method: &Method,
    kind: &str,
    tail: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    verb: &str,
) -> Result<(Kind, Vec<String>), Refusal> {
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    lock(&api.store)
        .requests
        .push(format!("{method} /api/v2/{kind}{tail}{query}"));
    let kind = Kind::from_segment(kind)
        .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, "Not Found", None)))?;
    let scopes = caller(api, headers)?;
    require(&scopes, &kind.scopes(verb))?;
    Ok((kind, scopes))
}

/// An object as the caller may see it: a client's secret only with `read:client_keys` or
/// `read:client_credentials`, and with `read:client_summary` alone only its `client_id`,
/// `app_type`, `name` and `description` (Auth0's `GET /clients` description).
fn visible(kind: Kind, object: &Value, scopes: &[String]) -> Value {
    let mut object = object.clone();
    let holds = |scope: &str| scopes.iter().any(|s| s == scope);
    if kind == Kind::Clients
        && let Some(map) = object.as_object_mut()
    {
        if !holds("read:client_keys") && !holds("read:client_credentials") {
            map.remove("client_secret");
        }
        if !holds("read:clients") && !holds("read:client_keys") {
            map.retain(|k, _| {
                ["client_id", "app_type", "name", "description"].contains(&k.as_str())
            });
        }
    }
    object
}

/// `fields` and `include_fields`, as Auth0 applies them.
fn project(object: Value, params: &[(String, String)]) -> Value {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(fields) = param("fields") else {
        return object;
    };
    let fields: Vec<&str> = fields.split(',').map(str::trim).collect();
    let include = param("include_fields") != Some("false");
    match object {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.contains(&k.as_str()) == include)
                .collect(),
        ),
        other => other,
    }
}

async fn list(
    State(api): State<ManagementApi>,
    method: Method,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (kind, scopes) = match admit(&api, &method, &kind, "", query.as_deref(), &headers, "read") {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str, default: usize| param(name).map_or(Ok(default), str::parse);
    let (Ok(page), Ok(per_page)) = (
        number("page", 0),
        number(
            "per_page",
            if kind == Kind::Connections {
                DEFAULT_PER_PAGE_CONNECTIONS
            } else {
                DEFAULT_PER_PAGE
            },
        ),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Query validation error: page and per_page must be integers",
            Some("invalid_query_string"),
        );
    };
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return error(
            StatusCode::BAD_REQUEST,
            "Query validation error: 'per_page' must be between 1 and 100",
            Some("invalid_query_string"),
        );
    }
    // The filters Auth0 documents for these lists that setup and check use: (query
    // parameter, the field it matches).
    let filters: &[(&str, &str)] = match kind {
        Kind::ClientGrants => &[("client_id", "client_id"), ("audience", "audience")],
        Kind::Connections => &[("strategy", "strategy"), ("name", "name")],
        Kind::Clients => &[("app_type", "app_type")],
        Kind::ResourceServers => &[("identifiers", "identifier")],
    };
    let all: Vec<Value> = lock(&api.store)
        .objects
        .get(&kind)
        .into_iter()
        .flatten()
        .filter(|object| {
            filters.iter().all(|(param, field)| {
                let wanted: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k == param)
                    .flat_map(|(_, v)| v.split(','))
                    .collect();
                wanted.is_empty() || wanted.iter().any(|w| object[*field] == *w)
            })
        })
        .cloned()
        .collect();
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(page * per_page)
        .take(per_page)
        .map(|object| project(visible(kind, &object, &scopes), &params))
        .collect();
    if param("include_totals") == Some("true") {
        let mut body = Map::new();
        body.insert(kind.noun().to_owned(), Value::Array(items));
        body.insert("start".to_owned(), json!(page * per_page));
        body.insert("limit".to_owned(), json!(per_page));
        body.insert("total".to_owned(), json!(total));
        return axum::Json(Value::Object(body)).into_response();
    }
    axum::Json(Value::Array(items)).into_response()
}

/// The index of the object `id` names: its id, or a resource server's identifier (Auth0 takes
/// either there).
fn position(objects: &[Value], kind: Kind, id: &str) -> Option<usize> {
    objects.iter().position(|o| {
        o[kind.id_field()] == id || (kind == Kind::ResourceServers && o["identifier"] == id)
    })
}

fn inexistent(kind: Kind) -> Response {
    let singular = kind.singular();
    error(
        StatusCode::NOT_FOUND,
        &format!("The {} does not exist", singular.replace('_', " ")),
        Some(&format!("inexistent_{singular}")),
    )
}

async fn one(
    State(api): State<ManagementApi>,
    method: Method,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let tail = format!("/{id}");
    let (kind, scopes) = match admit(
        &api,
        &method,
        &kind,
        &tail,
        query.as_deref(),
        &headers,
        "read",
    ) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let store = lock(&api.store);
    let objects = store
        .objects
        .get(&kind)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match position(objects, kind, &id) {
        Some(index) => {
            axum::Json(project(visible(kind, &objects[index], &scopes), &params)).into_response()
        }
        None => inexistent(kind),
    }
}

/// The `400` of a body holding a property the endpoint does not take, if it holds one.
fn unknown_property(kind: Kind, create: bool, body: &Map<String, Value>) -> Option<Response> {
    let field = body.keys().find(|k| !kind.takes(create, k))?;
    Some(error(
        StatusCode::BAD_REQUEST,
        &format!("Payload validation error: 'Additional properties not allowed: {field}'."),
        Some("invalid_body"),
    ))
}

/// A `400` for a body that misses a required field.
fn missing(field: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        &format!("Payload validation error: 'Missing required property: {field}'."),
        Some("invalid_body"),
    )
}

async fn create(
    State(api): State<ManagementApi>,
    method: Method,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (kind, _) = match admit(&api, &method, &kind, "", None, &headers, "create") {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Payload validation error: 'Expected type object'.",
            Some("invalid_body"),
        );
    };
    if let Some(refusal) = unknown_property(kind, true, &object) {
        return refusal;
    }
    let mut store = lock(&api.store);
    let exists = |store: &Store, kind: Kind, test: &dyn Fn(&Value) -> bool| {
        store.objects.get(&kind).into_iter().flatten().any(test)
    };
    let text = |object: &Map<String, Value>, field: &str| {
        object.get(field).and_then(Value::as_str).map(str::to_owned)
    };
    match kind {
        Kind::ResourceServers => {
            let Some(identifier) = text(&object, "identifier") else {
                return missing("identifier");
            };
            if exists(&store, kind, &|o| o["identifier"] == identifier.as_str()) {
                // The message is the OpenAPI's 409 description; the code is unconfirmed.
                return error(
                    StatusCode::CONFLICT,
                    "A resource server with the same identifier already exists",
                    Some("resource_server_conflict"),
                );
            }
            object.insert("id".to_owned(), json!(new_token("rs_")));
            // A recorded creation without `signing_alg` answers RS256 (TestAccResourceServer),
            // and leaves `enforce_policies`, `token_dialect` and `scopes` out of the answer.
            object.entry("signing_alg").or_insert(json!("RS256"));
        }
        Kind::Clients => {
            if text(&object, "name").is_none() {
                return missing("name");
            }
            object.insert("client_id".to_owned(), json!(new_token("cl")));
            object.insert("client_secret".to_owned(), json!(new_token("secret-")));
            // As recorded (TestAccDataClientById, TestAccClientResourceServer): the URL lists
            // are left out when not sent, and the grant types default by application type.
            let default_grants = match object.get("app_type").and_then(Value::as_str) {
                Some("resource_server") => json!([]),
                _ => json!([
                    "authorization_code",
                    "implicit",
                    "refresh_token",
                    "client_credentials"
                ]),
            };
            object.entry("grant_types").or_insert(default_grants);
        }
        Kind::ClientGrants => {
            let (Some(client_id), Some(audience)) =
                (text(&object, "client_id"), text(&object, "audience"))
            else {
                return missing("client_id, audience");
            };
            // Auth0's own Management API (`…/api/v2/`) is in every tenant; another audience
            // must be an API of the tenant ("No resource with identifier …", as quoted in
            // auth0/auth0-deploy-cli#29 and #59).
            if !audience.ends_with("/api/v2/")
                && !exists(&store, Kind::ResourceServers, &|r| {
                    r["identifier"] == audience.as_str()
                })
            {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("No resource with identifier {audience}"),
                    None,
                );
            }
            // "Client not found", as quoted in auth0/auth0-deploy-cli#144.
            if !exists(&store, Kind::Clients, &|c| {
                c["client_id"] == client_id.as_str()
            }) {
                return error(
                    StatusCode::NOT_FOUND,
                    "Client not found",
                    Some("inexistent_client"),
                );
            }
            if exists(&store, kind, &|g| {
                g["client_id"] == client_id.as_str() && g["audience"] == audience.as_str()
            }) {
                // Message and code unconfirmed (the OpenAPI's 409 text here is a copy of the
                // resource server's).
                return error(
                    StatusCode::CONFLICT,
                    "A client grant for this client and audience already exists",
                    Some("client_grant_conflict"),
                );
            }
            object.insert("id".to_owned(), json!(new_token("cgr_")));
            object.entry("scope").or_insert(json!([]));
        }
        Kind::Connections => {
            let (Some(name), Some(_)) = (text(&object, "name"), text(&object, "strategy")) else {
                return missing("name, strategy");
            };
            if exists(&store, kind, &|c| c["name"] == name.as_str()) {
                // The message is the OpenAPI's 409 description; the code is unconfirmed.
                return error(
                    StatusCode::CONFLICT,
                    "A connection with the same name already exists",
                    Some("connection_conflict"),
                );
            }
            object.insert("id".to_owned(), json!(new_token("con_")));
            object.entry("options").or_insert(json!({}));
            object.entry("enabled_clients").or_insert(json!([]));
        }
    }
    let object = Value::Object(object);
    store.objects.entry(kind).or_default().push(object.clone());
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

async fn update(
    State(api): State<ManagementApi>,
    method: Method,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let tail = format!("/{id}");
    let (kind, scopes) = match admit(&api, &method, &kind, &tail, None, &headers, "update") {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Payload validation error: 'Expected type object'.",
            Some("invalid_body"),
        );
    };
    if let Some(refusal) = unknown_property(kind, false, &changes) {
        return refusal;
    }
    let mut store = lock(&api.store);
    let objects = store.objects.entry(kind).or_default();
    let Some(index) = position(objects, kind, &id) else {
        return inexistent(kind);
    };
    // Auth0 replaces each top-level property it is sent (`options` as a whole).
    if let Some(object) = objects[index].as_object_mut() {
        object.extend(changes);
    }
    axum::Json(visible(kind, &objects[index], &scopes)).into_response()
}
