//! The one test binary: handler, attack, DynamoDB, key, end-to-end and local-API suites, as modules
//! sharing the helpers of `integration_tests`. Tests that need a service are `#[ignore]`d with
//! the reason; `./dev test` starts the services and runs them with `--include-ignored`.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The session flows nest many handler futures, generic over the store.
#![recursion_limit = "256"]

mod accounts;
mod attacks;
mod devices;
mod docs;
mod dynamodb;
mod e2e;
mod handlers;
mod iam;
mod interop;
mod jwks;
mod keyset;
mod limits;
mod local_api;
mod mfa;
mod openapi;
mod passkeys;
mod recovery;
mod rotation;
mod round_trips;
mod session_events;
mod sessions;
mod sessions_hold;
mod soak;
mod template;
