//! Lambda entry point for `POST /token`; the logic is in `lib.rs`.

use lambda_http::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = token::App::from_env().await?;
    run(service_fn(|req| token::handle(&app, req))).await
}
