//! The smallest useful `lambda_runtime` function: answers every event with a fixed JSON object.
//! Built with the same release profile as `bootstrap`, it is the yardstick for cold init.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"hello": "world"}))
    }))
    .await
}
