//! Lambda entry point of the key-set custom resource; the logic is in `lib.rs`.

// The custom resource's future (the runtime, the handler, the Secrets Manager SDK's calls
// nested in it) is deeper than rustc's default layout query depth of 128.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = keyset::App::from_env().await;
    run(service_fn(|event| keyset::handle(&app, event))).await
}
