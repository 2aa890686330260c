//! Lambda entry point for `GET /protected`; the logic is in `lib.rs`.

use lambda_http::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = protected::App::from_env().await?;
    run(service_fn(|req| protected::handle(&app, req))).await
}
