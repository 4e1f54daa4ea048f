//! AWS clients for moto: dummy credentials, `aws_config`'s defaults but for the endpoint;
//! Secrets Manager clients optionally count the requests they transmit; DynamoDB's make the
//! token table as `template.yaml` does. (The real binary configures its SDK with
//! `auth0_idp_proxy::aws`; `tests/api/sdk_config.rs` drives that one against moto.)

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

/// The SDK configuration for moto at `endpoint`.
async fn moto_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "standin", "standin", None, None, "standin",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A DynamoDB client for the server at `endpoint` (moto).
pub async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&moto_config(endpoint).await)
}

/// Creates the token table `name` as `template.yaml` declares it: partition key `pk` (String),
/// on demand, TTL on `expires_at`.
pub async fn create_token_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let text = |e: &dyn std::fmt::Display| e.to_string();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| text(&e))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| text(&e))?,
        )
        .send()
        .await
        .map_err(|e| text(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(|e| text(&e))?,
        )
        .send()
        .await
        .map_err(|e| text(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// A Secrets Manager client for the server at `endpoint` (moto), counting the requests it
/// transmits into `counter` when given one.
pub async fn secrets_client(endpoint: &str, counter: Option<Arc<AtomicUsize>>) -> Client {
    let sdk = moto_config(endpoint).await;
    let mut config = aws_sdk_secretsmanager::config::Builder::from(&sdk);
    if let Some(counter) = counter {
        config = config.interceptor(CountRequests(counter));
    }
    Client::from_conf(config.build())
}
