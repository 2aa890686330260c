//! Fixtures for tests, benchmarks and fuzzing, never built into a Lambda binary (feature
//! `test-util`): the test signing key and token settings, token minting (issued or
//! hand-crafted, as an attacker would), cheap argon2 parameters and a settable clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::{PasswordConfig, SigningSecret, TokenConfig};

/// The password of the `events/` fixtures' user `alice`.
pub const PASSWORD: &str = "correct horse battery staple";

/// The HS256 key tests, benchmarks and fuzzing sign with. The expired fixtures in `events/` are
/// signed with it too (`scripts/generate_events.py`), so they fail on expiry, not on the key.
pub const TEST_SECRET: &[u8] = b"integration-test-secret-0123456789abcdef";

/// The issuer and audience the functions use by default.
pub const ISSUER: &str = "jwt-auth";
pub const AUDIENCE: &str = "jwt-auth-api";
pub const KEY_ID: &str = "v1";

/// Cheap argon2 parameters, far below OWASP's: tests check behaviour, not cost.
pub const CHEAP_ARGON2: PasswordConfig = PasswordConfig {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// The token settings of a function configured with `JWT_SECRET` = [`TEST_SECRET`] and every
/// other variable at its default.
pub fn token_config() -> TokenConfig {
    TokenConfig {
        secret: SigningSecret::new("JWT_SECRET", TEST_SECRET.to_vec()).expect("the test secret is valid"),
        key_id: KEY_ID.into(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        access_ttl: Duration::from_secs(900),
        leeway: Duration::from_secs(5),
    }
}

/// Every claim an access token must carry.
pub const REQUIRED_CLAIMS: [&str; 9] = [
    "exp",
    "sub",
    "iss",
    "aud",
    "nbf",
    "iat",
    "jti",
    "username",
    "token_use",
];

/// The header of an access token signed with `alg`.
pub fn header(alg: &str) -> Value {
    json!({"alg": alg, "typ": "at+jwt", "kid": KEY_ID})
}

/// The claims of a valid access token for `sub`/`username`, issued at `now` for ten minutes.
pub fn claims(sub: &str, username: &str, now: u64) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "username": username,
        "iat": now, "nbf": now, "exp": now + 600, "jti": "test", "token_use": "access"
    })
}

/// Signs raw header and payload texts with HMAC-`alg` under `key`, as anyone holding the key
/// could, whatever the texts say.
pub fn mint_raw(header: &str, payload: &str, alg: Algorithm, key: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(key).expect("a non-empty HMAC key");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).expect("HMAC signing cannot fail");
    format!("{message}.{signature}")
}

/// Signs `header` and `claims` with `key`, using the HMAC the header's `alg` names (HS256 for
/// anything else, so a token can claim one algorithm and be signed with another).
pub fn mint(header: &Value, claims: &Value, key: &[u8]) -> String {
    let alg = match header["alg"].as_str() {
        Some("HS384") => Algorithm::HS384,
        Some("HS512") => Algorithm::HS512,
        _ => Algorithm::HS256,
    };
    mint_raw(&header.to_string(), &claims.to_string(), alg, key)
}

/// `token` with the first character of its signature changed: still well-formed base64url and
/// the same length, but the signature no longer matches. (Changing the last character is not
/// enough: it carries only four bits of the MAC, so a substitute can decode to the same bytes.)
pub fn tampered(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT has a signature part");
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    format!("{signed}.{flipped}{}", &signature[1..])
}

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    pub fn at(now: u64) -> Self {
        Self(AtomicU64::new(now))
    }

    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
