//! The verifier the targets share: the same construction as the functions', with a fixed key.

use std::time::Duration;

use shared::config::SigningSecret;
use shared::{TokenConfig, TokenVerifier};

pub const SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef-0123456789";

pub fn config() -> TokenConfig {
    TokenConfig {
        secret: SigningSecret::new("JWT_SECRET", SECRET.to_vec()).expect("fuzz secret is long enough"),
        key_id: "v1".into(),
        issuer: "jwt-auth".into(),
        audience: "jwt-auth-api".into(),
        access_ttl: Duration::from_secs(900),
        leeway: Duration::from_secs(5),
    }
}

pub fn verifier() -> TokenVerifier {
    TokenVerifier::new(&config()).expect("fuzz key is valid")
}
