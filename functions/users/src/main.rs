//! Lambda entry point for `POST /users`; the logic is in `lib.rs`.

use lambda_http::{run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init(env!("CARGO_CRATE_NAME"));
    let app = users::App::from_env().await?;
    run(service_fn(|req| users::handle(&app, req))).await
}
