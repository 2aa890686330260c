//! The core shared by the auth functions: configuration, token issuing and verification,
//! password hashing, the user store, the login limit, the error type, HTTP helpers and logging.
//!
//! Without features it holds only what the authorizer needs (config, tokens, logging: no AWS
//! SDK, no HTTP stack). `api` adds the HTTP side; `dynamodb` adds the DynamoDB store;
//! `test-util` adds fixtures for tests, benchmarks and fuzzing (never in a Lambda binary).

pub mod claims;
pub mod clock;
pub mod config;
pub mod key_set;
pub mod keys;
pub mod logging;
pub mod metrics;

#[cfg(feature = "api")]
pub mod error;
#[cfg(feature = "api")]
pub mod events;
#[cfg(feature = "api")]
pub mod http;
#[cfg(feature = "secrets")]
pub mod keystore;
#[cfg(feature = "mail")]
pub mod mail;
#[cfg(feature = "mfa")]
pub mod mfa;
#[cfg(feature = "api")]
pub mod password;
#[cfg(feature = "api")]
pub mod session;
#[cfg(feature = "api")]
pub mod store;
#[cfg(feature = "api")]
pub mod throttle;
#[cfg(feature = "api")]
pub mod user;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use claims::{
    Audience, Claims, Subject, TokenIssuer, TokenUse, TokenVerifier, VerifyError, bearer_token,
};
pub use claims::{Issuer, TokenSettings};
pub use config::ConfigError;
#[cfg(feature = "api")]
pub use http::CorsConfig;
pub use keys::SigningKeySource;
pub use keys::{KeyError, PublicKeySet, SigningKey};
#[cfg(feature = "api")]
pub use password::PasswordConfig;
#[cfg(feature = "api")]
pub use session::{CookieSameSite, SessionConfig};
#[cfg(feature = "api")]
pub use store::StoreConfig;
#[cfg(feature = "api")]
pub use throttle::{LoginThrottleConfig, SignUpLimitConfig};
