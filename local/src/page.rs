//! Serves the sample frontend (`examples/spa`) on its own origin: its files, Auth0's SPA SDK
//! from the folder's `node_modules` (installed by npm from `examples/spa/package.json`; no CDN)
//! and `config.json`, which tells the page where the tenant and the API are.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The name the page imports the SDK by.
const SDK_NAME: &str = "auth0-spa-js.production.esm.js";

/// The sample frontend's folder.
pub fn folder() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/spa"))
}

/// The SDK's ES module build, as npm installed it.
pub fn sdk_path() -> PathBuf {
    folder()
        .join("node_modules/@auth0/auth0-spa-js/dist")
        .join(SDK_NAME)
}

/// Fails with the command to run if npm has not installed the SDK.
pub fn check_sdk() -> Result<(), String> {
    if sdk_path().is_file() {
        return Ok(());
    }
    Err(format!(
        "the sample frontend needs Auth0's SPA SDK from npm, and {} is missing: run\n  (cd examples/spa && npm ci)\n(dev/run does this when npm is installed), or pass --no-spa",
        sdk_path().display()
    ))
}

/// The page's `config.json` against a real tenant: `examples/spa/config.json` with `api` set to
/// this local API, and `useDpop` off when the function runs with `DPOP=off` (which refuses the
/// `DPoP` scheme the page would send).
pub fn real_tenant_config(api_origin: &str) -> Result<Value, String> {
    let path = folder().join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    config["api"] = Value::String(api_origin.to_owned());
    let dpop_off = std::env::var("DPOP").is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"));
    if dpop_off {
        config["useDpop"] = Value::Bool(false);
    }
    Ok(config)
}

/// Answers one request for the page's origin.
pub async fn serve(State(config): State<Arc<Value>>, request: Request) -> Response {
    let name = match request.uri().path() {
        "/" => "index.html",
        "/config.json" => return axum::Json(config.as_ref().clone()).into_response(),
        path => path.trim_start_matches('/'),
    };
    let file = if name == SDK_NAME {
        sdk_path()
    } else {
        match published(&folder(), name) {
            Some(file) => file,
            None => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    let content_type = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    match std::fs::read(file) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The page's own files, by exact name: no request path ever reaches the file system, and the
/// npm manifests are not served.
fn published(dir: &Path, name: &str) -> Option<PathBuf> {
    let servable = ["html", "js", "css", "png"];
    let extension = name.rsplit_once('.').map(|(_, e)| e)?;
    if !servable.contains(&extension) {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|entry| entry.file_name().to_str() == Some(name))
        .map(|entry| entry.path())
}
