//! Fixtures for tests, benchmarks and fuzzing, never built into a Lambda binary (feature
//! `test-util`): the test signing keys and token settings, token minting (issued or
//! hand-crafted, as an attacker would), cheap argon2 parameters and a settable clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::claims::TokenSettings;
use crate::claims::{Subject, TokenIssuer, TokenVerifier};
use crate::clock::Clock;
use crate::keys::{PublicKeySet, SigningKey};
#[cfg(feature = "api")]
use crate::password::PasswordConfig;

/// The password of the `events/` fixtures' user `alice`.
pub const PASSWORD: &str = "correct horse battery staple";

/// The P-256 key tests, benchmarks and fuzzing sign with (PKCS#8). Public, so worthless
/// anywhere else. The expired fixtures in `events/` are signed with it too
/// (`scripts/generate_events.py`), so they fail on expiry, not on the key.
pub const TEST_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfaFsXymrJXHZuVOF
HUIPC/pCe2PPSmj88KNCLl59zFahRANCAASOwJzUmtoWGF7jcbPaZyqe8SlYCRKE
wgyVJcVgGV7/7rJsbBiVgyf3GaXKJcL2OSGx4SJXsUPutcT3WKc7W2pe
-----END PRIVATE KEY-----
";

/// A second test key: the next key of a rotation.
pub const NEXT_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgB2zOswvFiwjJh0we
hrSMUk9iGh8jKWemEUioq6/DQPGhRANCAAThznWYSA/QAz44BCIWTm5pBOUqXx4g
ttwxmGD6eunW0VrP5H6AP4YpOLe7UkaTJr5S6R0+ONPd9dgefoTtAVrO
-----END PRIVATE KEY-----
";

/// A key no verifier trusts: an attacker's.
pub const ATTACKER_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcKYLUn/HEzuixMLZ
w52rqHGt1ELohwugn7VndX2FC8+hRANCAARZsPDQfVN6lVOlW2k3WltkmVHeL/HK
p2imUSHuuFZSieHXtlw5eGTF6Co9ETLFF8j/pOiQDI9gWrP4rCYLYWlP
-----END PRIVATE KEY-----
";

/// The issuer and audience of the test tokens.
pub const ISSUER: &str = "https://auth.test";
pub const AUDIENCE: &str = "jwt-auth-api";

/// Cheap argon2 parameters, far below OWASP's: tests check behaviour, not cost.
#[cfg(feature = "api")]
pub const CHEAP_ARGON2: PasswordConfig = PasswordConfig {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// The session id of hand-made test tokens ([`claims`], [`subject`]): no store holds it, so
/// routes that read the store refuse such a token unless the test started that session.
pub const SESSION_ID: &str = "test-session";

/// Every claim an access token must carry.
pub const REQUIRED_CLAIMS: [&str; 10] = [
    "exp",
    "sub",
    "iss",
    "aud",
    "nbf",
    "iat",
    "jti",
    "username",
    "token_use",
    "sid",
];

pub fn signing_key() -> SigningKey {
    SigningKey::from_pem(TEST_SIGNING_KEY).expect("the test key is a P-256 PKCS#8 key")
}

pub fn next_signing_key() -> SigningKey {
    SigningKey::from_pem(NEXT_SIGNING_KEY).expect("the next test key is a P-256 PKCS#8 key")
}

pub fn attacker_key() -> SigningKey {
    SigningKey::from_pem(ATTACKER_SIGNING_KEY).expect("the attacker's key is a P-256 PKCS#8 key")
}

/// The key id of [`TEST_SIGNING_KEY`].
pub fn kid() -> String {
    signing_key().kid().to_owned()
}

/// The verifiers' key set: the test key's public half.
pub fn public_keys() -> PublicKeySet {
    PublicKeySet::of([signing_key().public_key().clone()])
}

/// [`public_keys`] as the JWKS `JWT_PUBLIC_KEYS` holds.
pub fn jwks_json() -> String {
    serde_json::to_string(&public_keys().jwks()).expect("a JWKS serializes")
}

/// The settings of a function with `JWT_ISSUER` = [`ISSUER`] and every other variable at its
/// default.
pub fn token_settings() -> TokenSettings {
    TokenSettings {
        issuer: Some(ISSUER.into()),
        audience: AUDIENCE.into(),
        access_ttl: Duration::from_secs(900),
        leeway: Duration::from_secs(5),
    }
}

pub fn issuer() -> TokenIssuer {
    TokenIssuer::new(token_settings(), signing_key())
}

pub fn verifier() -> TokenVerifier {
    TokenVerifier::new(&token_settings(), public_keys())
}

/// The header of an access token claiming `alg`, under the test key's id.
pub fn header(alg: &str) -> Value {
    json!({"alg": alg, "typ": "at+jwt", "kid": kid()})
}

/// The claims of a valid access token for `sub`/`username` in session [`SESSION_ID`], issued at
/// `now` for ten minutes.
pub fn claims(sub: &str, username: &str, now: u64) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "username": username,
        "iat": now, "nbf": now, "exp": now + 600, "jti": "test", "token_use": "access",
        "sid": SESSION_ID
    })
}

/// `user_id`/`username` at epoch 0 in session [`SESSION_ID`], to issue a token to.
pub fn subject<'a>(user_id: &'a str, username: &'a str) -> Subject<'a> {
    Subject {
        user_id,
        username,
        epoch: 0,
        session_id: SESSION_ID,
    }
}

fn message(header: &str, payload: &str) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// Raw header and payload texts signed with ES256 under `key`, as anyone holding the key could,
/// whatever the texts say.
pub fn mint_raw(header: &str, payload: &str, key: &SigningKey) -> String {
    let message = message(header, payload);
    let signature = URL_SAFE_NO_PAD.encode(key.sign(message.as_bytes()));
    format!("{message}.{signature}")
}

/// `header` and `claims` signed with ES256 under `key`, whatever `alg` the header claims.
pub fn mint(header: &Value, claims: &Value, key: &SigningKey) -> String {
    mint_raw(&header.to_string(), &claims.to_string(), key)
}

/// Raw texts signed with HMAC under `secret` (any bytes, the empty key included), with SHA-256,
/// -384 or -512 as `alg` names `HS256`, `HS384` or `HS512` (SHA-256 for anything else).
pub fn mint_hmac_raw(header: &str, payload: &str, alg: &str, secret: &[u8]) -> String {
    let algorithm = match alg {
        "HS384" => ring::hmac::HMAC_SHA384,
        "HS512" => ring::hmac::HMAC_SHA512,
        _ => ring::hmac::HMAC_SHA256,
    };
    let message = message(header, payload);
    let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm, secret), message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// `header` and `claims` signed with the HMAC the header's `alg` names, under `secret`.
pub fn mint_hmac(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let alg = header["alg"].as_str().unwrap_or("HS256");
    mint_hmac_raw(&header.to_string(), &claims.to_string(), alg, secret)
}

/// `token` with the first character of its signature changed: still well-formed base64url and
/// the same length, but the signature no longer matches.
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
