//! Lambda entry point for the key set and discovery documents; the logic is in `lib.rs`.

use lambda_http::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = jwks::App::from_env()?;
    run(service_fn(|req| jwks::handle(&app, req))).await
}
