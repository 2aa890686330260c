//! Helpers for the integration and end-to-end tests: fixtures from `events/`, apps wired to
//! the in-memory store with cheap argon2 parameters, and the services `./dev test` starts.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::config::SigningSecret;
use shared::http::Responder;
use shared::password::PasswordHasher;
use shared::store::memory::MemoryUserStore;
use shared::store::{LoginAttempts, UserStore};
use shared::{PasswordConfig, TokenConfig, TokenIssuer, TokenVerifier};

/// The secret the in-process apps sign with. Tests only.
pub const TEST_SECRET: &[u8] = b"integration-test-secret-0123456789abcdef";

/// Cheap argon2 parameters: the handler tests check behaviour, not cost.
pub const CHEAP_ARGON2: PasswordConfig = PasswordConfig {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// The default limit, in day-long windows so no test straddles a window boundary.
pub const TEST_THROTTLE: shared::LoginThrottleConfig = shared::LoginThrottleConfig {
    max_failures: 5,
    window: Duration::from_secs(86_400),
};

/// The `events/` folder at the workspace root.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The text of `events/<name>`, with `${TOKEN}` replaced by `token`.
pub fn fixture(name: &str, token: &str) -> String {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.replace("${TOKEN}", token)
}

/// The fixture as JSON, for tests that edit it before use.
pub fn fixture_json(name: &str, token: &str) -> Value {
    serde_json::from_str(&fixture(name, token)).expect("fixture is JSON")
}

/// An API Gateway proxy event turned into the request lambda_http hands to a handler.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("fixture is a valid API Gateway event")
}

/// `fixture` with its body replaced by `body` (sent as plain text).
pub fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = Value::String(body.into());
    event["isBase64Encoded"] = Value::Bool(false);
    event
}

pub fn token_config() -> TokenConfig {
    TokenConfig {
        secret: SigningSecret::new("JWT_SECRET", TEST_SECRET.to_vec()).expect("test secret is long enough"),
        key_id: "v1".into(),
        issuer: "jwt-auth".into(),
        audience: "jwt-auth-api".into(),
        access_ttl: Duration::from_secs(900),
        leeway: Duration::from_secs(5),
    }
}

/// The four functions' apps, sharing one store.
pub struct Apps<S = MemoryUserStore> {
    pub store: Arc<S>,
    pub users: users::App,
    pub token: token::App,
    pub protected: protected::App,
    pub authorizer: authorizer::App,
    pub issuer: TokenIssuer,
}

impl Apps<MemoryUserStore> {
    pub fn in_memory() -> Self {
        Self::with_store(Arc::new(MemoryUserStore::new()))
    }
}

impl<S: UserStore + LoginAttempts + 'static> Apps<S> {
    pub fn with_store(store: Arc<S>) -> Self {
        let dyn_store: Arc<dyn UserStore> = store.clone();
        let hasher = PasswordHasher::new(&CHEAP_ARGON2).expect("cheap argon2 parameters are valid");
        let verifier = || TokenVerifier::new(&token_config()).expect("test key is valid");
        let issuer = || TokenIssuer::new(&token_config()).expect("test key is valid");
        Self {
            users: users::App {
                store: dyn_store.clone(),
                hasher: hasher.clone(),
                responder: Responder::default(),
            },
            token: token::App {
                store: dyn_store.clone(),
                attempts: store.clone(),
                throttle: TEST_THROTTLE,
                hasher,
                issuer: issuer(),
                responder: Responder::default(),
            },
            protected: protected::App {
                store: dyn_store,
                verifier: verifier(),
                responder: Responder::default(),
            },
            authorizer: authorizer::App { verifier: verifier() },
            issuer: issuer(),
            store,
        }
    }

    pub async fn sign_up(&self, username: &str, password: &str) -> Response<Body> {
        let event = with_body(
            fixture_json("users/valid.json", ""),
            &serde_json::json!({"username": username, "password": password}).to_string(),
        );
        users::handle(&self.users, request(&event))
            .await
            .expect("infallible")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response<Body> {
        let event = with_body(
            fixture_json("token/valid.json", ""),
            &serde_json::json!({"username": username, "password": password}).to_string(),
        );
        token::handle(&self.token, request(&event))
            .await
            .expect("infallible")
    }
}

/// `token` with the first character of its signature changed: still well-formed base64url and the
/// same length, but the signature no longer matches. (Changing the last character is not enough:
/// it carries only four bits of the 256-bit MAC, so a substitute can decode to the same bytes.)
pub fn tampered(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT has a signature part");
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    format!("{signed}.{flipped}{}", &signature[1..])
}

/// A response body parsed as JSON (an empty body is `null`).
pub fn body_json(response: &Response<Body>) -> Value {
    let bytes: &[u8] = response.body().as_ref();
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("body is not JSON ({e}): {bytes:?}"))
}

/// A variable that `./dev test` sets for the tests that need a running service. Missing means
/// the service is not there: the test fails and says how to run it, it is never skipped.
pub fn service_env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: this test needs the services that `./dev test` starts (moto, cargo lambda watch)")
    })
}
