//! Secrets Manager clients for moto: dummy credentials, `aws_config`'s defaults but for the
//! endpoint, and optionally a count of the requests they transmit. (The real binary configures
//! its SDK with `auth0_idp_proxy::aws`; `tests/api/sdk_config.rs` drives that one against moto.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_secretsmanager::config::{
    ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_secretsmanager::error::BoxError;

/// Counts the Secrets Manager requests a client transmits (retries included).
#[derive(Debug, Clone)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A Secrets Manager client for the server at `endpoint` (moto), counting the requests it
/// transmits into `counter` when given one.
pub async fn secrets_client(endpoint: &str, counter: Option<Arc<AtomicUsize>>) -> Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "standin", "standin", None, None, "standin",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    let mut config = aws_sdk_secretsmanager::config::Builder::from(&sdk);
    if let Some(counter) = counter {
        config = config.interceptor(CountRequests(counter));
    }
    Client::from_conf(config.build())
}
