//! The core shared by the auth functions: configuration, token issuing and verification,
//! password hashing, the user store, the error type and HTTP helpers.
//!
//! Without features it holds only what the authorizer needs (config and tokens: no AWS SDK,
//! no HTTP stack). `api` adds the HTTP side; `dynamodb` adds the DynamoDB store.

pub mod claims;
pub mod config;

#[cfg(feature = "api")]
pub mod error;
#[cfg(feature = "api")]
pub mod http;
#[cfg(feature = "api")]
pub mod password;
#[cfg(feature = "api")]
pub mod store;
#[cfg(feature = "api")]
pub mod user;

pub use claims::{Claims, KeyError, TokenIssuer, TokenUse, TokenVerifier, VerifyError, bearer_token};
pub use config::{ConfigError, CorsConfig, LoginThrottleConfig, PasswordConfig, StoreConfig, TokenConfig};
