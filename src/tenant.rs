//! The Auth0 tenant's origin, as every client of the tenant (the Management API, the token
//! endpoint, Token Vault's exchange, the JWKS) joins its endpoints to it.

use url::Url;

/// The Auth0 tenant's origin: `https://tenant.auth0.com`, or `http://127.0.0.1:port` for a stand-in.
///
/// Stored without a trailing slash so that endpoint paths can be appended verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantOrigin(String);

impl TenantOrigin {
    /// Parses a bare domain (https implied) or a full `scheme://host[:port]` origin.
    ///
    /// Plain http is accepted only for loopback hosts, so that a typo cannot send the M2M secret
    /// over the network in clear text.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim().trim_end_matches('/');
        if value.is_empty() {
            return Err("empty".into());
        }
        let with_scheme = if value.contains("://") {
            value.to_owned()
        } else {
            format!("https://{value}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| format!("not a domain or origin ({e})"))?;
        let host = url.host_str().ok_or("no host")?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials".into());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("must be a domain or an origin, without path, query or fragment".into());
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => return Err("http is only allowed for a loopback host".into()),
            other => return Err(format!("unsupported scheme {other:?}")),
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The origin without a trailing slash, e.g. `https://example.us.auth0.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{origin}{path}`; `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
