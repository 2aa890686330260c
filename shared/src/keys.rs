//! ES256 keys: P-256 signing keys (the issuer's, PKCS#8), the public key set the verifiers hold
//! (a JWKS, RFC 7517), key ids that are RFC 7638 thumbprints, and the jsonwebtoken crypto
//! provider over `ring` that verifies with them.
//!
//! Every key is bound to ES256: a key set holds nothing else, and the verifier never takes the
//! algorithm from a token. `ring` is the provider because its P-256 is assembly (the same code
//! as BoringSSL's), it is already built into the functions for TLS, and unlike jsonwebtoken's
//! `rust_crypto` feature it brings no RSA crate (RUSTSEC-2023-0071) into the tree.

use std::fmt;

use crate::config::{ConfigError, Env, Source, lookup, required};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

/// The only algorithm issued and accepted.
pub const ALGORITHM: Algorithm = Algorithm::ES256;

/// The order n of P-256's group, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// ⌊n / 2⌋: an ECDSA `s` above it is the "high" one of the two valid signatures of a message.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde,
    0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether `signature` (r ‖ s) has the low `s`. ECDSA accepts `(r, s)` and `(r, n − s)` alike,
/// so without this a third party could turn any token into a second valid one; this service
/// signs with low `s` only and refuses the other.
pub fn is_low_s(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] <= HALF_ORDER[..]
}

/// `signature` with its `s` replaced by `n − s` when it is high.
fn with_low_s(mut signature: Vec<u8>) -> Vec<u8> {
    if signature.len() == 64 && !is_low_s(&signature) {
        let mut borrow = 0u16;
        for i in (0..32).rev() {
            let difference = u16::from(ORDER[i]).wrapping_sub(u16::from(signature[32 + i]) + borrow);
            signature[32 + i] = difference as u8;
            borrow = u16::from(difference > 0xff);
        }
    }
    signature
}

/// Where and how a JSON text failed to parse, without serde's message: that can quote the
/// text's values, and the texts here are key sets (a private one, pasted by mistake, included).
pub fn json_error(error: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        error.classify(),
        error.line(),
        error.column()
    )
}

/// The most keys a verifier's set may hold: the current one, and the next or the previous one
/// during a rotation, with room to spare.
pub const MAX_KEYS: usize = 4;

/// Why a key or key set was refused. Never shows key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a JSON Web Key Set: {0}")]
    NotJwks(String),
    #[error("the key set is empty")]
    Empty,
    #[error("the key set holds more than {MAX_KEYS} keys")]
    TooMany,
    #[error("key {0}: only EC keys on P-256 for ES256 signatures are accepted")]
    NotEs256(usize),
    #[error("key {0}: x and y must be 32-byte base64url coordinates")]
    Coordinates(usize),
    #[error("key {index}: kid {kid:?} is not the key's RFC 7638 thumbprint")]
    Kid { index: usize, kid: String },
    #[error("key {0} holds a private key (\"d\"): verifiers get only public keys")]
    Private(usize),
    #[error("two keys share the kid {0:?}")]
    DuplicateKid(String),
    #[error("not a PEM-encoded PKCS#8 private key")]
    NotPem,
    #[error("not a P-256 private key in PKCS#8")]
    NotP256,
    #[error("no key with kid {0:?}")]
    UnknownKid(String),
}

/// An EC public key as a JWK: the members this service reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The RFC 7638 thumbprint of a P-256 public key: SHA-256 over its required members in
/// lexicographic order, base64url.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

/// One public key of a verifier's set, bound to ES256, with its key id.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    x: String,
    y: String,
    key: DecodingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// The key as published: `kty`, `crv`, `x`, `y`, `kid`, `alg`, `use`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: self.x.clone(),
            y: self.y.clone(),
            kid: Some(self.kid.clone()),
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
        }
    }

    /// The jsonwebtoken key that verifies with it (through [`PROVIDER`]).
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    fn from_coordinates(x: &[u8], y: &[u8]) -> Self {
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let kid = thumbprint(&x, &y);
        let key = decoding_key(&x, &y);
        Self { kid, x, y, key }
    }
}

fn decoding_key(x: &str, y: &str) -> DecodingKey {
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    for coordinate in [x, y] {
        point.extend(URL_SAFE_NO_PAD.decode(coordinate).unwrap_or_default());
    }
    DecodingKey::from_ec_der(&point)
}

/// The verifiers' keys, looked up by `kid`. Build once at cold start.
#[derive(Debug, Clone)]
pub struct PublicKeySet {
    keys: Vec<PublicKey>,
}

impl PublicKeySet {
    /// Reads a JWKS. Every key must be an EC P-256 key whose `alg`, if given, is ES256 and
    /// whose `use`, if given, is `sig`; its `kid`, if given, must be its RFC 7638 thumbprint
    /// (a key is always known by its thumbprint, so a set cannot give two keys one id).
    pub fn from_jwks(text: &str) -> Result<Self, KeyError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| KeyError::NotJwks(json_error(&e)))?;
        if let Some(index) = value["keys"]
            .as_array()
            .and_then(|keys| keys.iter().position(|k| k.get("d").is_some()))
        {
            return Err(KeyError::Private(index));
        }
        let jwks: Jwks = serde_json::from_value(value).map_err(|e| KeyError::NotJwks(json_error(&e)))?;
        if jwks.keys.is_empty() {
            return Err(KeyError::Empty);
        }
        if jwks.keys.len() > MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        let mut keys: Vec<PublicKey> = Vec::with_capacity(jwks.keys.len());
        for (index, jwk) in jwks.keys.into_iter().enumerate() {
            let bound = jwk.kty == "EC"
                && jwk.crv == "P-256"
                && jwk.alg.as_deref().is_none_or(|alg| alg == "ES256")
                && jwk.use_.as_deref().is_none_or(|u| u == "sig");
            if !bound {
                return Err(KeyError::NotEs256(index));
            }
            let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(c).is_ok_and(|bytes| bytes.len() == 32);
            if !coordinate(&jwk.x) || !coordinate(&jwk.y) {
                return Err(KeyError::Coordinates(index));
            }
            let kid = thumbprint(&jwk.x, &jwk.y);
            if let Some(given) = jwk.kid.filter(|given| *given != kid) {
                return Err(KeyError::Kid { index, kid: given });
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(KeyError::DuplicateKid(kid));
            }
            keys.push(PublicKey {
                key: decoding_key(&jwk.x, &jwk.y),
                kid,
                x: jwk.x,
                y: jwk.y,
            });
        }
        Ok(Self { keys })
    }

    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// The set as published at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.iter().map(PublicKey::jwk).collect(),
        }
    }

    /// A set of these public keys.
    pub fn of(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }
}

/// A P-256 private key that signs ES256 tokens, with its key id. `Debug` never shows it.
pub struct SigningKey {
    pkcs8: SecretBox<[u8]>,
    pair: EcdsaKeyPair,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system random source works");
        Self::from_pkcs8(pkcs8.as_ref()).expect("ring reads the PKCS#8 it wrote")
    }

    /// A key from its PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .map_err(|_| KeyError::NotP256)?;
        let point = pair.public_key().as_ref();
        let public = PublicKey::from_coordinates(&point[1..33], &point[33..65]);
        Ok(Self {
            pkcs8: SecretBox::new(der.to_vec().into_boxed_slice()),
            pair,
            public,
        })
    }

    /// A key from PEM (`-----BEGIN PRIVATE KEY-----`, PKCS#8), as `openssl genpkey -algorithm
    /// EC -pkeyopt ec_paramgen_curve:P-256` writes it.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body: String = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|rest| rest.strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or(KeyError::NotPem)?
            .split_whitespace()
            .collect();
        let der = STANDARD.decode(body).map_err(|_| KeyError::NotPem)?;
        Self::from_pkcs8(&der)
    }

    /// The key as PKCS#8 PEM. A secret: write it only where the key belongs.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(self.pkcs8.expose_secret());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// The key as PKCS#8 DER. A secret.
    pub fn pkcs8(&self) -> &[u8] {
        self.pkcs8.expose_secret()
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The ES256 signature of `message`: r ‖ s, 64 bytes (RFC 7518 §3.4), with the low `s`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), message)
            .expect("P-256 signing with the system random source cannot fail");
        with_low_s(signature.as_ref().to_vec())
    }
}

/// jsonwebtoken's crypto, provided by `ring`, for ES256 only: any other algorithm is refused
/// before a key is even read (the verifier also checks the algorithm first).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        compute_digest,
        ..KeyUtils::new_unimplemented()
    },
};

/// Installs [`PROVIDER`] for this process; done by every issuer and verifier constructor.
///
/// # Panics
/// If another provider was installed first (a jsonwebtoken crypto feature turned on somewhere in
/// the build): its checks would replace ours (ES256 only, low-S), so nothing may start with it.
pub fn install_provider() {
    if let Err(installed) = PROVIDER.install_default() {
        assert!(
            std::ptr::eq(installed, &PROVIDER),
            "another jsonwebtoken CryptoProvider is installed; shared::keys::PROVIDER must be the only one"
        );
    }
}

struct RingSigner(EcdsaKeyPair);

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.0
            .sign(&SystemRandom::new(), message)
            .map(|s| with_low_s(s.as_ref().to_vec()))
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        ALGORITHM
    }
}

struct RingVerifier(Vec<u8>);

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        if !is_low_s(signature) {
            return Err(signature::Error::new());
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        ALGORITHM
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    if *algorithm != ALGORITHM {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        key.as_bytes(),
        &SystemRandom::new(),
    )
    .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    Ok(Box::new(RingSigner(pair)))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    if *algorithm != ALGORITHM {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier(key.try_get_as_bytes()?.to_vec())))
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> JwtResult<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

// --- settings ------------------------------------------------------------------------------

/// `JWT_PUBLIC_KEYS`, required by every verifier: the JWKS of the keys tokens may be signed
/// with (the current key, and during a rotation the next or previous one).
pub fn public_keys(src: &dyn Source) -> Result<PublicKeySet, ConfigError> {
    let var = "JWT_PUBLIC_KEYS";
    PublicKeySet::from_jwks(&required(src, var)?).map_err(|e| ConfigError::Invalid {
        var,
        reason: e.to_string(),
    })
}

/// Where the issuing function's private key comes from.
#[derive(Debug)]
pub enum SigningKeySource {
    /// `JWT_SIGNING_KEY`: the key itself, PKCS#8 PEM (local development and tests).
    Pem(Box<SigningKey>),
    /// `JWT_SIGNING_KEY_SECRET` (a Secrets Manager secret id holding the key set) and
    /// `JWT_SIGNING_KEY_ID` (the `kid` of the key to sign with): read on first use (deployed).
    Secret { secret_id: String, kid: String },
}

impl SigningKeySource {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        match (
            lookup(src, "JWT_SIGNING_KEY"),
            lookup(src, "JWT_SIGNING_KEY_SECRET"),
        ) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid {
                var: "JWT_SIGNING_KEY",
                reason: "set it or JWT_SIGNING_KEY_SECRET, not both".into(),
            }),
            (Some(pem), None) => SigningKey::from_pem(&pem)
                .map(|key| Self::Pem(Box::new(key)))
                .map_err(|e| ConfigError::Invalid {
                    var: "JWT_SIGNING_KEY",
                    reason: e.to_string(),
                }),
            (None, Some(secret_id)) => Ok(Self::Secret {
                secret_id,
                kid: required(src, "JWT_SIGNING_KEY_ID")?,
            }),
            (None, None) => Err(ConfigError::Missing {
                var: "JWT_SIGNING_KEY_SECRET",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TEST_SIGNING_KEY, next_signing_key, signing_key};
    use serde_json::{Value, json};

    fn jwk_value(key: &SigningKey) -> Value {
        serde_json::to_value(key.public_key().jwk()).unwrap()
    }

    fn set_of(keys: Vec<Value>) -> Result<PublicKeySet, KeyError> {
        PublicKeySet::from_jwks(&json!({ "keys": keys }).to_string())
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint_as_jsonwebtoken_computes_it() {
        install_provider();
        let key = signing_key();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_value(&key)).unwrap();
        assert_eq!(key.kid(), jwk.thumbprint(ThumbprintHash::SHA256).unwrap());
        assert_eq!(key.kid().len(), 43, "base64url of 32 bytes");
    }

    #[test]
    fn a_key_survives_pem_and_pkcs8_and_signs_what_its_public_half_verifies() {
        let key = SigningKey::from_pem(TEST_SIGNING_KEY).unwrap();
        assert_eq!(SigningKey::from_pem(&key.to_pem()).unwrap().kid(), key.kid());
        assert_eq!(SigningKey::from_pkcs8(key.pkcs8()).unwrap().kid(), key.kid());
        let signature = key.sign(b"message");
        assert_eq!(signature.len(), 64);
        let point = key.public_key().decoding_key().try_get_as_bytes().unwrap();
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
        assert!(public.verify(b"message", &signature).is_ok());
        assert!(public.verify(b"messagf", &signature).is_err());
    }

    fn high(signature: &[u8]) -> Vec<u8> {
        let mut flipped = signature.to_vec();
        let mut borrow = 0u16;
        for i in (0..32).rev() {
            let difference = u16::from(ORDER[i]).wrapping_sub(u16::from(signature[32 + i]) + borrow);
            flipped[32 + i] = difference as u8;
            borrow = u16::from(difference > 0xff);
        }
        flipped
    }

    #[test]
    fn signatures_are_issued_with_the_low_s_and_the_high_twin_is_refused() {
        install_provider();
        let key = signing_key();
        for _ in 0..64 {
            let signature = key.sign(b"message");
            assert!(is_low_s(&signature));
            let twin = high(&signature);
            assert!(!is_low_s(&twin));
            // Mathematically valid: ring alone accepts it...
            let point = key.public_key().decoding_key().try_get_as_bytes().unwrap();
            assert!(
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(b"message", &twin)
                    .is_ok()
            );
            // ...the provider does not.
            let sig = |s: &[u8]| URL_SAFE_NO_PAD.encode(s);
            let verify = |s: &[u8]| {
                jsonwebtoken::crypto::verify(&sig(s), b"message", key.public_key().decoding_key(), ALGORITHM)
                    .unwrap_or(false)
            };
            assert!(verify(&signature));
            assert!(!verify(&twin));
        }
    }

    #[test]
    fn half_the_order_is_the_highest_low_s() {
        let mut at = vec![0u8; 32];
        at.extend_from_slice(&HALF_ORDER);
        assert!(is_low_s(&at));
        *at.last_mut().unwrap() += 1;
        assert!(!is_low_s(&at));
        assert!(!is_low_s(&[0u8; 63]), "not 64 bytes");
    }

    #[test]
    fn generated_keys_are_new_p256_keys() {
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        assert_ne!(a.kid(), b.kid());
        assert_eq!(SigningKey::from_pkcs8(a.pkcs8()).unwrap().kid(), a.kid());
    }

    #[test]
    fn private_keys_never_show_in_debug() {
        let key = signing_key();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()) && debug.contains("redacted"), "{debug}");
        let body = TEST_SIGNING_KEY.lines().nth(1).unwrap();
        assert!(!debug.contains(body));
    }

    #[test]
    fn a_published_set_reads_back_with_kid_alg_and_use() {
        let set = PublicKeySet::of([
            signing_key().public_key().clone(),
            next_signing_key().public_key().clone(),
        ]);
        let text = serde_json::to_string(&set.jwks()).unwrap();
        let read = PublicKeySet::from_jwks(&text).unwrap();
        assert_eq!(read.kids().collect::<Vec<_>>(), set.kids().collect::<Vec<_>>());
        let first = &set.jwks().keys[0];
        assert_eq!(
            (
                first.kty.as_str(),
                first.crv.as_str(),
                first.alg.as_deref(),
                first.use_.as_deref()
            ),
            ("EC", "P-256", Some("ES256"), Some("sig"))
        );
    }

    #[test]
    fn a_key_without_kid_alg_or_use_is_known_by_its_thumbprint() {
        let mut jwk = jwk_value(&signing_key());
        for member in ["kid", "alg", "use"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        let set = set_of(vec![jwk]).unwrap();
        assert!(set.get(signing_key().kid()).is_some());
    }

    #[test]
    fn keys_not_bound_to_es256_are_refused() {
        let edits: [(&str, Value); 6] = [
            ("kty", json!("RSA")),
            ("kty", json!("oct")),
            ("crv", json!("P-384")),
            ("alg", json!("ES384")),
            ("alg", json!("HS256")),
            ("use", json!("enc")),
        ];
        for (member, value) in edits {
            let mut jwk = jwk_value(&signing_key());
            jwk[member] = value.clone();
            assert_eq!(
                set_of(vec![jwk]).unwrap_err(),
                KeyError::NotEs256(0),
                "{member}: {value}"
            );
        }
    }

    #[test]
    fn coordinates_must_be_32_bytes_of_base64url() {
        for (member, value) in [("x", "AAAA"), ("y", "not base64!"), ("x", "")] {
            let mut jwk = jwk_value(&signing_key());
            jwk[member] = json!(value);
            jwk.as_object_mut().unwrap().remove("kid");
            assert_eq!(
                set_of(vec![jwk]).unwrap_err(),
                KeyError::Coordinates(0),
                "{member}"
            );
        }
    }

    #[test]
    fn a_kid_that_is_not_the_thumbprint_is_refused() {
        let mut jwk = jwk_value(&signing_key());
        jwk["kid"] = json!(next_signing_key().kid());
        assert!(matches!(set_of(vec![jwk]), Err(KeyError::Kid { index: 0, .. })));
    }

    #[test]
    fn a_key_with_its_private_part_is_refused() {
        let mut jwk = jwk_value(&next_signing_key());
        jwk["d"] = json!("a private scalar pasted by mistake");
        assert_eq!(
            set_of(vec![jwk_value(&signing_key()), jwk]).unwrap_err(),
            KeyError::Private(1)
        );
    }

    #[test]
    fn empty_duplicate_and_oversized_sets_are_refused() {
        assert_eq!(set_of(vec![]).unwrap_err(), KeyError::Empty);
        let key = jwk_value(&signing_key());
        assert!(matches!(
            set_of(vec![key.clone(), key.clone()]),
            Err(KeyError::DuplicateKid(_))
        ));
        let many: Vec<Value> = (0..=MAX_KEYS)
            .map(|_| jwk_value(&SigningKey::generate()))
            .collect();
        assert_eq!(set_of(many).unwrap_err(), KeyError::TooMany);
        assert!(matches!(PublicKeySet::from_jwks("[]"), Err(KeyError::NotJwks(_))));
    }

    #[test]
    fn the_provider_verifies_es256_only() {
        install_provider();
        let key = signing_key();
        let der = EncodingKey::from_ec_der(key.pkcs8());
        assert!(jsonwebtoken::crypto::sign(b"m", &der, Algorithm::ES256).is_ok());
        for alg in [
            Algorithm::HS256,
            Algorithm::ES384,
            Algorithm::RS256,
            Algorithm::EdDSA,
        ] {
            assert!(jsonwebtoken::crypto::sign(b"m", &der, alg).is_err(), "{alg:?}");
            assert!(
                jsonwebtoken::crypto::verify("c2ln", b"m", key.public_key().decoding_key(), alg).is_err(),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn pem_that_is_not_a_p256_pkcs8_key_is_refused() {
        assert_eq!(SigningKey::from_pem("not pem").unwrap_err(), KeyError::NotPem);
        let not_base64 = "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----";
        assert_eq!(SigningKey::from_pem(not_base64).unwrap_err(), KeyError::NotPem);
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----";
        assert_eq!(SigningKey::from_pem(not_a_key).unwrap_err(), KeyError::NotP256);
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source as source;
    use crate::test_util::{TEST_SIGNING_KEY, jwks_json, kid};

    #[test]
    fn verifiers_need_the_public_keys_and_refuse_a_bad_set_naming_the_variable() {
        assert_eq!(
            public_keys(&source(&[])).unwrap_err(),
            ConfigError::Missing {
                var: "JWT_PUBLIC_KEYS"
            }
        );
        let keys = public_keys(&source(&[("JWT_PUBLIC_KEYS", &jwks_json())])).unwrap();
        assert_eq!(keys.kids().collect::<Vec<_>>(), [kid()]);
        for bad in [
            "",
            "[]",
            r#"{"keys":[]}"#,
            "not json",
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
        ] {
            if bad.is_empty() {
                continue;
            }
            let err = public_keys(&source(&[("JWT_PUBLIC_KEYS", bad)])).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "JWT_PUBLIC_KEYS",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_signing_key_comes_from_a_pem_or_a_secret_never_both() {
        let pem = source(&[("JWT_SIGNING_KEY", TEST_SIGNING_KEY)]);
        assert!(
            matches!(SigningKeySource::from_source(&pem), Ok(SigningKeySource::Pem(k)) if k.kid() == kid())
        );
        let secret = source(&[
            ("JWT_SIGNING_KEY_SECRET", "arn:secret"),
            ("JWT_SIGNING_KEY_ID", "abc"),
        ]);
        assert!(matches!(
            SigningKeySource::from_source(&secret),
            Ok(SigningKeySource::Secret { secret_id, kid }) if secret_id == "arn:secret" && kid == "abc"
        ));
        let no_kid = source(&[("JWT_SIGNING_KEY_SECRET", "arn:secret")]);
        assert_eq!(
            SigningKeySource::from_source(&no_kid).unwrap_err(),
            ConfigError::Missing {
                var: "JWT_SIGNING_KEY_ID"
            }
        );
        let both = source(&[
            ("JWT_SIGNING_KEY", TEST_SIGNING_KEY),
            ("JWT_SIGNING_KEY_SECRET", "x"),
        ]);
        assert!(SigningKeySource::from_source(&both).is_err());
        assert_eq!(
            SigningKeySource::from_source(&source(&[])).unwrap_err(),
            ConfigError::Missing {
                var: "JWT_SIGNING_KEY_SECRET"
            }
        );
    }

    #[test]
    fn a_bad_signing_key_is_refused_without_echoing_it() {
        let bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----";
        let err = SigningKeySource::from_source(&source(&[("JWT_SIGNING_KEY", bad)])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "JWT_SIGNING_KEY",
                ..
            }
        ));
        assert!(!err.to_string().contains("bm90IGEga2V5"), "{err}");
        let debug = format!(
            "{:?}",
            SigningKeySource::from_source(&source(&[("JWT_SIGNING_KEY", TEST_SIGNING_KEY)]))
        );
        assert!(
            debug.contains("redacted") && !debug.contains("MIGHAgEA"),
            "{debug}"
        );
    }
}
