//! Lambda entry point for the TOKEN authorizer; the logic is in `lib.rs`.

use lambda_runtime::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = authorizer::App::from_env()?;
    run(service_fn(|event| authorizer::handle(&app, event))).await
}
