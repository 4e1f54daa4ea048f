//! [`Http`]: the HTTP clients every outbound call goes through, made once per cold start.
//!
//! Lambda freezes an execution environment between invocations, and while it is frozen a server
//! (or a NAT gateway, a load balancer) may close, reset or forget an idle keep-alive connection
//! that the function pooled. The function cannot see it until it runs again, and a request sent
//! on such a connection fails once it is already written: nothing tells whether the server read
//! it. A request that can be repeated is simply retried ([`super::retry`]); a write cannot be,
//! so it never goes over a pooled connection at all. Which way a request goes is decided by its
//! method alone ([`is_idempotent`]), the same rule that decides whether it is retried.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use reqwest::{Client, ClientBuilder, IntoUrl, RequestBuilder};
use rustls::pki_types::{Der, TrustAnchor};

/// Longest any single connection attempt may take, whatever the deadline: a dead host should
/// fail fast enough to leave time for a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an idle pooled connection is kept for reads. A connection that died meanwhile costs
/// a read one retry, never its answer.
const READ_POOL_IDLE: Duration = Duration::from_secs(50);

/// The function's HTTP clients: `reads` keeps connections (and their TLS sessions) alive across
/// calls and warm invocations; `writes` opens a connection for each request and closes it after
/// the answer, so that a write is never sent on a connection that died while the environment
/// was frozen. Cheap to clone: both are handles to shared clients.
#[derive(Debug, Clone)]
pub struct Http {
    reads: Client,
    writes: Client,
}

impl Http {
    /// The two clients, each made from `base` (the settings they share: TLS, timeouts,
    /// redirects, user agent) with its own connection policy.
    pub fn build(base: impl Fn() -> ClientBuilder) -> Result<Self, reqwest::Error> {
        Ok(Self {
            reads: base().pool_idle_timeout(READ_POOL_IDLE).build()?,
            // No idle connection is ever kept: each request connects afresh. A connection made
            // for the request cannot have died during a freeze, since Lambda freezes an
            // environment only between invocations.
            writes: base().pool_max_idle_per_host(0).build()?,
        })
    }

    /// A `GET` of `url`, on a pooled connection.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.reads.get(url)
    }

    /// A `POST` to `url`, on a connection of its own.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.writes.post(url)
    }

    /// A `method` request to `url`: on a pooled connection if the method is idempotent, else on
    /// a connection of its own.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        let client = if is_idempotent(&method) {
            &self.reads
        } else {
            &self.writes
        };
        client.request(method, url)
    }
}

/// RFC 9110 §9.2.2: sending it twice has the effect of sending it once. Such a request may go
/// over a pooled connection and be retried after a failure; any other is sent once, on a
/// connection of its own.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Builds the HTTP clients shared by every outbound call.
///
/// They trust Mozilla's roots compiled in (`webpki-root-certs`, as the AWS SDK's client does),
/// not the system's: loading those costs 1.5–4 ms of every cold start here. They come as trust
/// anchors made at build time ([`TRUST_ANCHORS`]), so the cold start parses no certificate
/// either: handed the certificates, reqwest copied and parsed each of them in every init.
pub fn build_client() -> Result<Http, ClientError> {
    let tls = tls_config()?;
    Ok(Http::build(|| {
        Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            // Never follow redirects: a redirect could carry a bearer token to another origin.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("auth0-idp-proxy/", env!("CARGO_PKG_VERSION")))
    })?)
}

/// `webpki-root-certs`' roots as rustls reduces a certificate to a trust anchor, done by build.rs.
const TRUST_ANCHORS: &[TrustAnchor<'static>] =
    include!(concat!(env!("OUT_DIR"), "/trust_anchors.rs"));

/// The clients' TLS: rustls with aws-lc (reqwest's own provider), its safe default versions
/// (1.2 and 1.3), Mozilla's roots, HTTP/1.1 by ALPN as reqwest would offer without HTTP/2.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: TRUST_ANCHORS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Why the shared HTTP clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest refused the clients' settings.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_trusts_every_root_the_sdk_trusts() {
        // The anchors build.rs made, against the certificates of the SDK's trust store
        // (src/aws.rs) reduced to anchors as rustls reduces them.
        let mut from_certs = rustls::RootCertStore::empty();
        let (added, refused) = from_certs
            .add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        assert_eq!(refused, 0);
        assert!(added > 100, "{added}");
        assert_eq!(TRUST_ANCHORS, from_certs.roots);
    }

    #[test]
    fn the_client_builds_with_its_own_tls_configuration() {
        let config = tls_config().expect("TLS configuration");
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        build_client().expect("reqwest takes the preconfigured rustls configuration");
    }

    #[test]
    fn the_idempotent_methods_are_those_of_rfc_9110_and_writes_are_not() {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
        ] {
            assert!(is_idempotent(&method), "{method}");
        }
        let custom = Method::from_bytes(b"PROPPATCH").expect("a method");
        for method in [Method::POST, Method::PATCH, Method::CONNECT, custom] {
            assert!(!is_idempotent(&method), "{method}");
        }
    }
}
