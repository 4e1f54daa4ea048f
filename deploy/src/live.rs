//! The deployed API, called as a frontend would: without a token (the function's own bare
//! challenges are expected) and, given a user's access token, `GET /identities`.

use secrecy::{ExposeSecret, SecretString};

/// What the API answered that it should not have: `(code, what)`.
pub type Problem = (&'static str, String);

/// `GET {api}identities` without a token must be `401` with the function's bare challenges, as
/// its `DPOP` mode makes them: `Bearer` (off), `Bearer, DPoP algs="…"` (allowed) or
/// `DPoP algs="…"` (required).
pub async fn challenge(http: &reqwest::Client, api: &str) -> Result<(), Problem> {
    let url = identities_url(api);
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| ("api_unreachable", format!("GET {url}: {e}")))?;
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let dpop = format!(r#"DPoP algs="{}""#, auth0_idp_proxy::auth::dpop::ALGS);
    let bare = ["Bearer".to_owned(), format!("Bearer, {dpop}"), dpop.clone()];
    if status == reqwest::StatusCode::UNAUTHORIZED
        && challenge.as_ref().is_some_and(|c| bare.contains(c))
    {
        return Ok(());
    }
    Err((
        "api_challenge",
        format!(
            "GET {url} without a token answered {status} with WWW-Authenticate {challenge:?}, not 401 Bearer (or its DPoP challenges)"
        ),
    ))
}

/// `GET {api}identities` with the user's token must be `200` with `identities`.
pub async fn identities(
    http: &reqwest::Client,
    api: &str,
    token: &SecretString,
) -> Result<usize, Problem> {
    let url = identities_url(api);
    let response = http
        .get(&url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(|e| ("api_unreachable", format!("GET {url}: {e}")))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match body["identities"].as_array() {
        Some(list) if status.is_success() => Ok(list.len()),
        _ => Err((
            "identities_failed",
            format!(
                "GET {url} with the user's token answered {status} {}",
                body["error"].as_str().unwrap_or("(no error code)")
            ),
        )),
    }
}

fn identities_url(api: &str) -> String {
    format!("{}/identities", api.trim_end_matches('/'))
}
