//! The DynamoDB table itself, on the wire: one item per key, with a version for conditional
//! writes, an optional lease, a sealed value, and `expires_at` for DynamoDB's TTL.
//!
//! Every call is bounded by the invocation's deadline (and a short cap of its own), and reports
//! its time to the invocation's summary line. Failures are [`TableError`]s; callers degrade.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::deadline::Deadline;
use crate::service::Service;
use crate::telemetry;

/// How long table calls may take, and how long a failing table is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePolicy {
    /// Cap on one table call: a hanging table must leave time for Auth0.
    pub call_timeout: Duration,
    /// How long the table is left alone after it failed: one invocation pays for finding it
    /// down, the next ones in this environment go straight to memory and Auth0.
    pub back_off: Duration,
}

impl Default for TablePolicy {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(1),
            back_off: Duration::from_secs(15),
        }
    }
}

/// Why a table call gave no answer. Never carries an item's value.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The call ran past its cap or the deadline.
    #[error("the token table did not answer in time")]
    Timeout,
    /// The table failed moments ago in this environment; it is left alone for a while.
    #[error("the token table failed recently; not tried")]
    BackingOff,
    /// DynamoDB refused or failed the call (throttling included).
    #[error("the token table failed: {0}")]
    Failed(String),
}

/// One item as read.
#[derive(Debug, Clone, Default)]
pub struct RawItem {
    /// The sealed value, if one was written.
    pub data: Option<Vec<u8>>,
    /// Bumped by every value write; 0 for an item that only ever held a lease.
    pub version: u64,
    /// Epoch seconds after which the item is dead, whether or not DynamoDB deleted it yet.
    pub expires_at: u64,
    /// Who holds the lease, if anyone.
    pub lease_owner: Option<String>,
    /// Until when (epoch milliseconds) the lease holds.
    pub lease_until: u64,
}

/// What a value write requires of the item, checked by DynamoDB in the same call.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// The item is at this version (0: it holds no value yet).
    Version(u64),
    /// This environment holds the item's lease.
    LeaseOwner(&'a str),
}

/// Epoch seconds of `time`.
pub fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Epoch milliseconds now.
pub fn now_millis() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn read_number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The table, shared by every invocation of an execution environment.
pub struct TokenTable {
    client: Client,
    name: String,
    policy: TablePolicy,
    // A std lock: held only to read or set the instant.
    down_until: std::sync::Mutex<Option<Instant>>,
}

impl TokenTable {
    /// The table `name` through `client`. The SDK's own retries are cut to one more attempt
    /// and a short connect timeout: the table is a cache, and waiting on it is worse than Auth0.
    pub fn new(client: &Client, name: String, policy: TablePolicy) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build();
        Self {
            client: Client::from_conf(config),
            name,
            policy,
            down_until: std::sync::Mutex::new(None),
        }
    }

    fn down_until(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.down_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the table as failing, and passes `error` on.
    fn trip(&self, error: TableError) -> TableError {
        *self.down_until() = Some(Instant::now() + self.policy.back_off);
        error
    }

    /// The SDK's error with its service detail (the error code, e.g. throttling), never an
    /// item's value: requests and answers are not part of it.
    fn failed(&self, error: impl std::error::Error) -> TableError {
        self.trip(TableError::Failed(DisplayErrorContext(error).to_string()))
    }

    /// `Ok(true)` for an update that happened, `Ok(false)` for a failed condition, else the
    /// failure.
    fn conditional<T>(
        &self,
        result: Result<Result<T, SdkError<UpdateItemError, HttpResponse>>, TableError>,
    ) -> Result<bool, TableError> {
        match result? {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(error) => Err(self.failed(error)),
        }
    }

    /// An update of the item `pk`, to complete.
    fn update(&self, pk: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(pk.to_owned()))
    }

    /// Runs one call within the deadline, charging its time to the table.
    async fn bounded<T, E>(
        &self,
        deadline: &Deadline,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, TableError> {
        if self
            .down_until()
            .is_some_and(|until| Instant::now() < until)
        {
            return Err(TableError::BackingOff);
        }
        let timeout = deadline
            .timeout(self.policy.call_timeout)
            .ok_or(TableError::Timeout)?;
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, call).await;
        telemetry::upstream_time(Service::TokenTable, started.elapsed());
        result.map_err(|_| self.trip(TableError::Timeout))
    }

    /// The item `pk`, read strongly consistent, or `None` if there is none.
    pub async fn get(&self, pk: &str, deadline: &Deadline) -> Result<Option<RawItem>, TableError> {
        let call = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send();
        let output = self
            .bounded(deadline, call)
            .await?
            .map_err(|e| self.failed(e))?;
        Ok(output.item.map(|item| RawItem {
            data: item
                .get("data")
                .and_then(|v| v.as_b().ok())
                .map(|b| b.as_ref().to_vec()),
            version: read_number(&item, "v"),
            expires_at: read_number(&item, "expires_at"),
            lease_owner: item.get("lease_owner").and_then(|v| v.as_s().ok()).cloned(),
            lease_until: read_number(&item, "lease_until"),
        }))
    }

    /// Writes `data` as the item's value if `expect` holds, bumping its version and releasing
    /// any lease. `Ok(false)`: the condition failed (another environment wrote first).
    pub async fn write(
        &self,
        pk: &str,
        data: Vec<u8>,
        expires_at: u64,
        expect: Expect<'_>,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        let request = self
            .update(pk)
            .update_expression(
                "SET #data = :data, expires_at = :expires, v = if_not_exists(v, :zero) + :one \
                 REMOVE lease_owner, lease_until",
            )
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":data", AttributeValue::B(Blob::new(data)))
            .expression_attribute_values(":expires", number(expires_at))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1));
        // A version write never takes a live lease away from the environment holding it.
        let lease_free = "(attribute_not_exists(lease_until) OR lease_until < :now)";
        let request = match expect {
            Expect::Version(0) => request
                .condition_expression(format!("attribute_not_exists(v) AND {lease_free}"))
                .expression_attribute_values(":now", number(now_millis())),
            Expect::Version(version) => request
                .condition_expression(format!("v = :seen AND {lease_free}"))
                .expression_attribute_values(":seen", number(version))
                .expression_attribute_values(":now", number(now_millis())),
            Expect::LeaseOwner(owner) => request
                .condition_expression("lease_owner = :owner")
                .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned())),
        };
        self.conditional(self.bounded(deadline, request.send()).await)
    }

    /// Takes the item's lease for `owner` until `until_ms`, if nobody holds it and the item is
    /// still at `version`. `Ok(false)`: another environment holds it or wrote meanwhile.
    pub async fn acquire(
        &self,
        pk: &str,
        owner: &str,
        until_ms: u64,
        version: u64,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        let now = now_millis();
        let request = self
            .update(pk)
            .update_expression(
                "SET lease_owner = :owner, lease_until = :until, \
                 expires_at = if_not_exists(expires_at, :expires)",
            )
            .condition_expression(if version == 0 {
                "(attribute_not_exists(lease_until) OR lease_until < :now) \
                 AND attribute_not_exists(v)"
            } else {
                "(attribute_not_exists(lease_until) OR lease_until < :now) AND v = :seen"
            })
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", number(until_ms))
            .expression_attribute_values(":now", number(now))
            // A lease on a new item keeps it no longer than a day if nothing is ever written.
            .expression_attribute_values(":expires", number(now / 1000 + 86_400));
        let request = if version == 0 {
            request
        } else {
            request.expression_attribute_values(":seen", number(version))
        };
        self.conditional(self.bounded(deadline, request.send()).await)
    }

    /// Gives up `owner`'s lease without writing a value.
    pub async fn release(&self, pk: &str, owner: &str, deadline: &Deadline) {
        let request = self
            .update(pk)
            .update_expression("REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()));
        // If this fails, the lease runs out on its own.
        let _ = self.conditional(self.bounded(deadline, request.send()).await);
    }

    /// Adds one to the counter item `pk` unless it already reached `limit`; the item dies at
    /// `expires_at`. `Ok(false)`: the limit is reached.
    pub async fn count(
        &self,
        pk: &str,
        limit: u64,
        expires_at: u64,
        deadline: &Deadline,
    ) -> Result<bool, TableError> {
        let request = self
            .update(pk)
            .update_expression("ADD n :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(n) OR n < :limit")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":limit", number(limit))
            .expression_attribute_values(":expires", number(expires_at))
            .return_values(ReturnValue::None);
        self.conditional(self.bounded(deadline, request.send()).await)
    }
}
