//! The checks of a connection's fields that are not types of their own: URLs it will call,
//! headers it will send, path characters it lets through. Run once per connection, at start-up
//! (or when a connection is first learned from an identity).

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use url::Url;

/// `path_characters`: only characters refused by default may be let through.
pub(super) fn path_characters(characters: &str) -> Result<Vec<char>, String> {
    let characters: Vec<char> = characters.chars().collect();
    if let Some(c) = characters
        .iter()
        .find(|c| !crate::idp::path::GUARDED.contains(c))
    {
        return Err(format!(
            "path_characters: {c:?} is not refused by default; list only ;, @ and look-alike dots"
        ));
    }
    Ok(characters)
}

/// An https URL (plain http only for a loopback stand-in), without credentials, query or
/// fragment, stored without a trailing slash.
pub(super) fn api_url(text: &str, field: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{field}: {e}"))?;
    // Trimmed after parsing: the parser can still leave a trailing slash (`/v1/..`, `/v1/%2e%2e`,
    // `/v1/ `), and the root stays `/`.
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("{field} must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{field} must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{field} must not have a query or fragment"));
    }
    Ok(url)
}

/// The placeholder a token endpoint may have for its whole host: the user's own checked API host
/// (Shopify's per-shop `https://{host}/admin/oauth/access_token`), never a host of its own.
pub(crate) const HOST_PLACEHOLDER: &str = "{host}";

/// The path of a `token_url` of the form `https://{host}/path` (`None` for a URL without the
/// placeholder): `{host}` must be the whole host, so that it can only ever be filled with the
/// user's host the connection's `api_host` checked (or a pinned `api_base`'s), and the path must
/// be plain, as [`api_url`] leaves it.
pub(super) fn token_path_on_host(text: &str) -> Result<Option<String>, String> {
    if !text.contains(HOST_PLACEHOLDER) {
        return Ok(None);
    }
    let refused = || {
        format!(
            "token_url: {HOST_PLACEHOLDER} must be the whole host, as in \
             https://{HOST_PLACEHOLDER}/path"
        )
    };
    let path = text
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_prefix(HOST_PLACEHOLDER))
        .filter(|path| path.is_empty() || path.starts_with('/'))
        .filter(|path| !path.contains(['{', '}', '\\']))
        .ok_or_else(refused)?;
    // The path as `api_url` would keep it on any host: no query, fragment or credentials, no
    // dot segments or encodings the parser would change.
    let probe = api_url(&format!("https://host.invalid{path}"), "token_url")?;
    if probe.path().trim_end_matches('/') != path.trim_end_matches('/') {
        return Err(format!("token_url: path {path:?} is not plain"));
    }
    Ok(Some(probe.path().trim_end_matches('/').to_owned()))
}

/// Extra headers, minus those the function sets itself.
pub(super) fn parse_headers(
    headers: BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("bad header name {name:?}"))?;
            if matches!(name.as_str(), "authorization" | "cookie" | "host") {
                return Err(format!("header {name} cannot be configured"));
            }
            let value =
                HeaderValue::from_str(value).map_err(|_| format!("bad value for {name}"))?;
            Ok((name, value))
        })
        .collect()
}
