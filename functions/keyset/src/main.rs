//! Lambda entry point of the key-set custom resource; the logic is in `lib.rs`.

use lambda_runtime::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = keyset::App::from_env().await;
    run(service_fn(|event| keyset::handle(&app, event))).await
}
