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
