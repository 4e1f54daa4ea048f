//! A stand-in identity provider API on 127.0.0.1 (GitHub- or Google-like): answers for the access
//! tokens it was given, records every request it receives, and offers paths that misbehave.
//!
//! - `GET /user`, `/oauth2/v3/userinfo`, `/v1.0/me`: the profile of the token's user;
//! - `/redirect`: a 302 to another origin; `/fail`: 500; `/hang`: never answers;
//! - anything else: an echo of the method, path, query and body.
//!
//! Every answer carries a `Set-Cookie` and an `X-OAuth-Scopes` header that the proxy must not
//! pass on, beside `ETag`, `Link` and rate-limit headers that it should.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;

use crate::lock;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the stand-in IdP received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub path_and_query: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct IdpState {
    calls: AtomicUsize,
    tokens: Mutex<HashMap<String, Value>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running stand-in IdP.
#[derive(Debug, Clone)]
pub struct Idp {
    addr: SocketAddr,
    state: Arc<IdpState>,
}

impl Idp {
    /// Starts a stand-in IdP that accepts no token yet.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(IdpState::default());
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let addr = crate::serve(router).await?;
        Ok(Self { addr, state })
    }

    /// `http://127.0.0.1:port`: the `api_base` to configure for a connection.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepts `token` as the access token of the user whose profile is `profile`.
    pub fn grant(&self, token: &str, profile: Value) {
        lock(&self.state.tokens).insert(token.to_owned(), profile);
    }

    /// How many requests it received.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Every request it received.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }
}

async fn handle(State(state): State<Arc<IdpState>>, request: Request) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&state.requests).push(recorded.clone());

    let bearer = recorded
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let Some(profile) = lock(&state.tokens).get(&bearer).cloned() else {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"stand-in\""),
        );
        return decorate(response);
    };
    let response = match path.as_str() {
        "/user" | "/oauth2/v3/userinfo" | "/v1.0/me" => axum::Json(profile).into_response(),
        "/redirect" => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere?token=leak")],
        )
            .into_response(),
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream broke").into_response(),
        "/hang" => std::future::pending().await,
        _ => axum::Json(json!({
            "method": recorded.method,
            "path_and_query": recorded.path_and_query,
            "body": String::from_utf8_lossy(&recorded.body),
        }))
        .into_response(),
    };
    decorate(response)
}

/// Headers real providers send: some the proxy must return, some it must not.
fn decorate(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("etag", "W/\"stand-in-etag\""),
        (
            "link",
            "<https://api.example.test/user/repos?page=2>; rel=\"next\"",
        ),
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("set-cookie", "idp_session=stand-in-session; HttpOnly"),
        ("x-oauth-scopes", "repo, user"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
