//! Request body parsing for `POST /users` and `POST /token`: any bytes. Never a panic, never
//! a 5xx; what parses has non-empty string fields that then go through the domain parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::http::credentials;
use shared::user::{Password, Username};

fuzz_target!(|data: &[u8]| {
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(lambda_http::Body::Binary(data.to_vec()))
        .expect("static request parts are valid");
    match credentials(&request) {
        Ok(c) => {
            assert!(!c.username.is_empty() && !c.password.is_empty());
            let _ = Username::parse(&c.username);
            let _ = Password::parse_new(c.password);
        }
        Err(err) => assert!(err.status().is_client_error(), "{err:?} is not a 4xx"),
    }
});
