//! The baseline for cold starts: cargo lambda's hello-world function (tracing subscriber,
//! `lambda_runtime`, a current-thread tokio runtime like ours), answering any event with a
//! fixed JSON object. Built with the same profile as the functions.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "message": "Hello, world!" }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    run(service_fn(hello)).await
}
