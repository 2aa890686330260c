//! Access-token claims, and the issuer and verifier built once at cold start.
//!
//! Tokens are JWS compact serialization, ES256 (P-256, see [`crate::keys`]), typed `at+jwt`
//! (RFC 9068) with a `kid` that is the signing key's RFC 7638 thumbprint and a `token_use` claim,
//! so a token of another type (a refresh token, later) is never accepted as an access token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Env, Source, int_in_range, lookup};
use crate::keys::{ALGORITHM, PublicKeySet, SigningKey, install_provider};
use std::time::Duration;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Tokens longer than this are rejected before any decoding. Ours are about 400 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// What a token may be used for, carried in the `token_use` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    /// Sent as `Authorization: Bearer` to protected routes.
    Access,
    /// Exchanged for new access tokens; never accepted by a protected route.
    Refresh,
}

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3). Issued as one string; a token
/// listing several is accepted when ours is among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Audience, E> {
                Ok(Audience::One(value.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut many = Vec::new();
                while let Some(one) = seq.next_element::<String>()? {
                    many.push(one);
                }
                Ok(Audience::Many(many))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// The claims of an access token. Every field is required when verifying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Audience,
    /// The user id.
    pub sub: String,
    pub username: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// A unique token id (UUID v4).
    pub jti: String,
    pub token_use: TokenUse,
    /// The user's session epoch when the token was issued (see `session`): `protected` refuses
    /// the token once the user's epoch has moved on (log out everywhere, password change).
    /// Absent counts as 0, so a token without it is refused once the epoch has moved at all.
    #[serde(default)]
    pub epoch: u64,
    /// The session the token was issued in (its login): routes that read the store refuse the
    /// token once that session has ended (logout, reuse detected, its absolute lifetime).
    /// Required: a token without one is refused.
    pub sid: String,
}

/// Whom an access token is issued to, and in which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The user id, the token's `sub`.
    pub user_id: &'a str,
    pub username: &'a str,
    /// The user's session epoch when the session started.
    pub epoch: u64,
    /// The session id, the token's `sid`.
    pub session_id: &'a str,
}

/// A freshly issued token, with its lifetime in seconds. `Debug` never shows the token.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub claims: Claims,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("claims", &self.claims)
            .finish()
    }
}

/// Signs access tokens with one ES256 key. Build once (per key) and reuse.
pub struct TokenIssuer {
    key: SigningKey,
    /// `{"typ":"at+jwt","alg":"ES256","kid":...}`, base64url: the same for every token.
    header: String,
    settings: TokenSettings,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.key.kid())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(settings: TokenSettings, key: SigningKey) -> Self {
        let header = serde_json::json!({"typ": ACCESS_TOKEN_TYP, "alg": "ES256", "kid": key.kid()});
        Self {
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            key,
            settings,
        }
    }

    /// The key id tokens are signed under.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// Issues an access token for `subject`, valid from now for the configured TTL, with
    /// `issuer` as `iss`. Cannot fail: it runs after the write that commits a login or refresh.
    pub fn issue_access(&self, issuer: &str, subject: Subject<'_>) -> IssuedToken {
        self.issue_access_at(issuer, subject, jsonwebtoken::get_current_timestamp())
    }

    /// As [`Self::issue_access`], as if the time were `now` (seconds since the epoch).
    pub fn issue_access_at(&self, issuer: &str, subject: Subject<'_>, now: u64) -> IssuedToken {
        let expires_in = self.settings.access_ttl.as_secs();
        let claims = Claims {
            iss: issuer.to_owned(),
            aud: Audience::One(self.settings.audience.clone()),
            sub: subject.user_id.to_owned(),
            username: subject.username.to_owned(),
            iat: now,
            nbf: now,
            exp: now + expires_in,
            jti: uuid::Uuid::new_v4().to_string(),
            token_use: TokenUse::Access,
            epoch: subject.epoch,
            sid: subject.session_id.to_owned(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let message = format!("{}.{payload}", self.header);
        let signature = URL_SAFE_NO_PAD.encode(self.key.sign(message.as_bytes()));
        IssuedToken {
            token: format!("{message}.{signature}"),
            expires_in,
            claims,
        }
    }
}

/// Why a token was rejected. For logs only: clients are told no more than "invalid token".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is not three base64url segments")]
    Malformed,
    #[error("token header is invalid")]
    BadHeader,
    #[error("token header has a critical extension (crit) this verifier does not support")]
    CriticalHeader,
    #[error("token algorithm is not ES256")]
    Algorithm,
    #[error("token type is not {ACCESS_TOKEN_TYP}")]
    Type,
    #[error("token key id is unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("token lifetime (exp - iat) is longer than the configured access-token lifetime")]
    Lifetime,
    #[error("token issuer is wrong")]
    Issuer,
    #[error("token audience is wrong")]
    Audience,
    #[error("token claims are invalid: {0}")]
    Claims(String),
    #[error("token is a {0:?} token, not an access token")]
    WrongUse(TokenUse),
}

/// The header fields the verifier decides on, read before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Verifies access tokens against a set of public keys looked up by `kid`, each bound to ES256.
/// Build once at cold start.
pub struct TokenVerifier {
    keys: PublicKeySet,
    validation: Validation,
    audience: String,
    leeway: u64,
    /// The longest `exp - iat` accepted: the configured access-token lifetime plus the leeway.
    max_lifetime: u64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.kids().collect::<Vec<_>>())
            .field("aud", &self.audience)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(settings: &TokenSettings, keys: PublicKeySet) -> Self {
        install_provider();
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        // The issuer is checked below, against the one the caller expects.
        validation.iss = None;
        validation.set_audience(&[&settings.audience]);
        validation.leeway = settings.leeway.as_secs();
        Self {
            keys,
            validation,
            audience: settings.audience.clone(),
            leeway: settings.leeway.as_secs(),
            max_lifetime: settings.access_ttl.as_secs() + settings.leeway.as_secs(),
        }
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// The public keys this verifier trusts.
    pub fn keys(&self) -> &PublicKeySet {
        &self.keys
    }

    /// Verifies `token` as an access token issued by `issuer` and returns its claims.
    pub fn verify_access(&self, token: &str, issuer: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLarge);
        }
        let segments: Vec<&str> = token.split('.').collect();
        let base64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if segments.len() != 3 || segments.iter().any(|s| s.is_empty() || !base64url(s)) {
            return Err(VerifyError::Malformed);
        }

        let header: RawHeader = URL_SAFE_NO_PAD
            .decode(segments[0])
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(VerifyError::BadHeader)?;
        if header.crit.is_some() {
            return Err(VerifyError::CriticalHeader);
        }
        if header.alg != "ES256" {
            return Err(VerifyError::Algorithm);
        }
        if !header.typ.as_deref().is_some_and(is_access_typ) {
            return Err(VerifyError::Type);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(VerifyError::UnknownKey)?;

        let data = jsonwebtoken::decode::<Claims>(token, key.decoding_key(), &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey => VerifyError::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => VerifyError::Algorithm,
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
                ErrorKind::InvalidAudience => VerifyError::Audience,
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => VerifyError::Malformed,
                other => VerifyError::Claims(format!("{other:?}")),
            },
        )?;
        let claims = data.claims;

        if claims.iss != issuer {
            return Err(VerifyError::Issuer);
        }
        if claims.iat > jsonwebtoken::get_current_timestamp() + self.leeway {
            return Err(VerifyError::IssuedInFuture);
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime {
            return Err(VerifyError::Lifetime);
        }
        if claims.token_use != TokenUse::Access {
            return Err(VerifyError::WrongUse(claims.token_use));
        }
        if claims.sub.is_empty() || claims.username.is_empty() || claims.sid.is_empty() {
            return Err(VerifyError::Claims("empty sub, username or sid".into()));
        }
        Ok(claims)
    }
}

/// RFC 7515 §4.1.9: media types compare case-insensitively and may omit `application/`.
fn is_access_typ(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ == ACCESS_TOKEN_TYP || typ.strip_prefix("application/") == Some(ACCESS_TOKEN_TYP)
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1; the scheme is
/// case-insensitive). `None` for another scheme or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches(' ');
    (!token.is_empty() && !token.contains(' ')).then_some(token)
}

// --- settings ------------------------------------------------------------------------------

/// Settings every holder of tokens shares: who issues them, for whom, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `JWT_ISSUER`, optional: the `iss` claim issued and required, the URL under which the key
    /// set and discovery documents are served (`<issuer>/.well-known/jwks.json`). When unset, the
    /// issuer is the URL of the API stage a request comes through (see [`stage_url`]): what a
    /// deployment without a custom domain is reachable at, and cannot know at deploy time.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`, default `jwt-auth-api`: the `aud` claim issued and required.
    pub audience: String,
    /// `ACCESS_TOKEN_TTL_SECONDS`, default 900 (15 minutes), from 60 to 3600.
    pub access_ttl: Duration,
    /// `JWT_LEEWAY_SECONDS`, default 5, at most 60: clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

impl TokenSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let issuer = lookup(src, "JWT_ISSUER").map(|i| i.trim().to_owned());
        if let Some(issuer) = &issuer {
            let url = issuer
                .strip_prefix("https://")
                .or_else(|| issuer.strip_prefix("http://"));
            if url.is_none_or(|rest| rest.is_empty() || rest.ends_with('/') || rest.contains(['?', '#', ' ']))
            {
                return Err(ConfigError::Invalid {
                    var: "JWT_ISSUER",
                    reason: format!(
                        "{issuer:?} is not a URL like https://auth.example.com or https://auth.example.com/v1 (no trailing slash, query or fragment)"
                    ),
                });
            }
        }
        Ok(Self {
            issuer,
            audience: lookup(src, "JWT_AUDIENCE").unwrap_or_else(|| "jwt-auth-api".into()),
            access_ttl: Duration::from_secs(int_in_range(src, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 3600)?),
            leeway: Duration::from_secs(int_in_range(src, "JWT_LEEWAY_SECONDS", 5, 0, 60)?),
        })
    }
}

/// Who issues the tokens (`iss`), resolved once at cold start and in one place for every
/// function: `JWT_ISSUER` when set, else the URL of the API Gateway stage each request comes
/// through, in the function's region (`AWS_REGION`, which Lambda always sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    Fixed(String),
    Stage { region: String },
}

impl Issuer {
    /// `settings.issuer` (`JWT_ISSUER`) when set; else the stage's URL in `AWS_REGION`, which
    /// must then be set: an empty region would make every issuer wrong.
    pub fn from_source(settings: &TokenSettings, src: &dyn Source) -> Result<Self, ConfigError> {
        if let Some(issuer) = &settings.issuer {
            return Ok(Self::Fixed(issuer.clone()));
        }
        let region = lookup(src, "AWS_REGION").ok_or(ConfigError::Missing { var: "AWS_REGION" })?;
        Ok(Self::Stage {
            region: region.trim().to_owned(),
        })
    }

    /// The issuer of tokens that come through `api`'s `stage`.
    pub fn of_stage(&self, api_id: &str, stage: &str) -> String {
        match self {
            Self::Fixed(issuer) => issuer.clone(),
            Self::Stage { region } => stage_url(region, api_id, stage),
        }
    }

    /// The issuer whatever the stage, when `JWT_ISSUER` fixes it.
    pub fn fixed(&self) -> Option<&str> {
        match self {
            Self::Fixed(issuer) => Some(issuer),
            Self::Stage { .. } => None,
        }
    }
}

/// The URL of an API Gateway stage, `https://<api>.execute-api.<region>.amazonaws.com/<stage>`
/// (`.amazonaws.com.cn` in China): the issuer when `JWT_ISSUER` is unset.
pub fn stage_url(region: &str, api_id: &str, stage: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{api_id}.execute-api.{region}.{suffix}/{stage}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKeySet;
    use crate::test_util::{
        ISSUER, attacker_key, header, mint, mint_hmac, mint_raw, next_signing_key, signing_key, tampered,
        token_settings, verifier,
    };
    use serde_json::{Value, json};

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn valid_claims() -> Value {
        crate::test_util::claims("user-1", "alice", now())
    }

    fn ours(header: &Value, claims: &Value) -> String {
        mint(header, claims, &signing_key())
    }

    fn verify(token: &str) -> Result<Claims, VerifyError> {
        verifier().verify_access(token, ISSUER)
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn without(mut claims: Value, key: &str) -> Value {
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    fn issued() -> IssuedToken {
        crate::test_util::issuer().issue_access(ISSUER, crate::test_util::subject("user-1", "alice"))
    }

    fn decoded_part(token: &str, index: usize) -> Value {
        let part = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(index).unwrap())
            .unwrap();
        serde_json::from_slice(&part).unwrap()
    }

    #[test]
    fn issued_token_round_trips_through_the_verifier() {
        let issued = issued();
        let claims = verify(&issued.token).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, Audience::One("jwt-auth-api".into()));
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(claims.nbf, claims.iat);
        assert_eq!(claims.token_use, TokenUse::Access);
        assert_eq!(issued.expires_in, 900);
    }

    #[test]
    fn issued_header_is_es256_at_jwt_with_the_keys_thumbprint_and_aud_is_a_string() {
        let token = issued().token;
        let kid = signing_key().kid().to_owned();
        assert_eq!(
            decoded_part(&token, 0),
            json!({"typ": "at+jwt", "alg": "ES256", "kid": kid})
        );
        let public = signing_key().public_key().jwk();
        assert_eq!(kid, crate::keys::thumbprint(&public.x, &public.y));
        assert_eq!(decoded_part(&token, 1)["aud"], "jwt-auth-api");
        let signature = URL_SAFE_NO_PAD.decode(token.rsplit('.').next().unwrap()).unwrap();
        assert_eq!(signature.len(), 64, "r || s, not DER");
    }

    #[test]
    fn each_token_gets_a_unique_jti() {
        assert_ne!(issued().claims.jti, issued().claims.jti);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let issued = issued();
        assert!(!format!("{issued:?}").contains(&issued.token));
    }

    #[test]
    fn hand_minted_valid_token_is_accepted() {
        assert!(verify(&ours(&header("ES256"), &valid_claims())).is_ok());
    }

    #[test]
    fn a_token_is_accepted_only_for_the_issuer_the_caller_expects() {
        let token = issued().token;
        assert!(verifier().verify_access(&token, ISSUER).is_ok());
        assert_eq!(
            verifier().verify_access(&token, "https://other.test"),
            Err(VerifyError::Issuer)
        );
    }

    #[test]
    fn expired_token_fails() {
        let claims = with(valid_claims(), "exp", json!(now() - 60));
        assert_eq!(
            verify(&ours(&header("ES256"), &claims)),
            Err(VerifyError::Expired)
        );
    }

    #[test]
    fn expired_within_leeway_is_ok() {
        let claims = with(valid_claims(), "exp", json!(now() - 2));
        assert!(verify(&ours(&header("ES256"), &claims)).is_ok());
    }

    #[test]
    fn nbf_in_the_future_fails() {
        let claims = with(valid_claims(), "nbf", json!(now() + 120));
        assert_eq!(
            verify(&ours(&header("ES256"), &claims)),
            Err(VerifyError::NotYetValid)
        );
    }

    #[test]
    fn iat_in_the_future_beyond_leeway_fails() {
        let claims = with(valid_claims(), "iat", json!(now() + 120));
        assert_eq!(
            verify(&ours(&header("ES256"), &claims)),
            Err(VerifyError::IssuedInFuture)
        );
    }

    #[test]
    fn lifetime_longer_than_the_configured_ttl_plus_leeway_fails() {
        let iat = now();
        let at_limit = with(valid_claims(), "exp", json!(iat + 900 + 5));
        assert!(verify(&ours(&header("ES256"), &at_limit)).is_ok());
        let beyond = with(valid_claims(), "exp", json!(iat + 900 + 6));
        assert_eq!(
            verify(&ours(&header("ES256"), &beyond)),
            Err(VerifyError::Lifetime)
        );
        let year = with(valid_claims(), "exp", json!(iat + 365 * 86_400));
        assert_eq!(verify(&ours(&header("ES256"), &year)), Err(VerifyError::Lifetime));
    }

    #[test]
    fn wrong_issuer_fails() {
        let claims = with(valid_claims(), "iss", json!("https://evil.test"));
        assert_eq!(verify(&ours(&header("ES256"), &claims)), Err(VerifyError::Issuer));
    }

    #[test]
    fn wrong_audience_fails() {
        let claims = with(valid_claims(), "aud", json!("other-api"));
        assert_eq!(
            verify(&ours(&header("ES256"), &claims)),
            Err(VerifyError::Audience)
        );
    }

    #[test]
    fn audience_array_containing_ours_is_accepted() {
        let claims = with(valid_claims(), "aud", json!(["other-api", "jwt-auth-api"]));
        let verified = verify(&ours(&header("ES256"), &claims)).unwrap();
        assert!(verified.aud.contains("jwt-auth-api"));
        assert_eq!(
            verified.aud,
            Audience::Many(vec!["other-api".into(), "jwt-auth-api".into()])
        );
    }

    #[test]
    fn audience_array_without_ours_fails() {
        for aud in [json!(["a", "b"]), json!([]), json!(["jwt-auth-api-2"])] {
            let claims = with(valid_claims(), "aud", aud.clone());
            assert_eq!(
                verify(&ours(&header("ES256"), &claims)),
                Err(VerifyError::Audience),
                "{aud}"
            );
        }
    }

    #[test]
    fn audience_of_another_type_fails() {
        for aud in [json!(7), json!([7]), json!({"aud": "jwt-auth-api"}), Value::Null] {
            let claims = with(valid_claims(), "aud", aud.clone());
            assert!(verify(&ours(&header("ES256"), &claims)).is_err(), "{aud}");
        }
    }

    #[test]
    fn a_signature_by_another_key_fails_even_under_our_kid() {
        let token = mint(&header("ES256"), &valid_claims(), &attacker_key());
        assert_eq!(verify(&token), Err(VerifyError::Signature));
    }

    #[test]
    fn every_key_of_the_set_verifies_its_own_tokens_and_only_those() {
        let (current, next) = (signing_key(), next_signing_key());
        let set = PublicKeySet::of([current.public_key().clone(), next.public_key().clone()]);
        let verifier = TokenVerifier::new(&token_settings(), set);
        for key in [&current, &next] {
            let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
            assert!(
                verifier
                    .verify_access(&mint(&h, &valid_claims(), key), ISSUER)
                    .is_ok()
            );
        }
        // The next key's signature under the current key's kid.
        let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": current.kid()});
        assert_eq!(
            verifier.verify_access(&mint(&h, &valid_claims(), &next), ISSUER),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn hmac_algorithms_fail_whatever_secret_signs_them() {
        let public = signing_key().public_key().jwk();
        let secrets: [&[u8]; 3] = [b"a-shared-secret-0123456789abcdef", public.x.as_bytes(), b""];
        for alg in ["HS256", "HS384", "HS512"] {
            for secret in secrets {
                assert_eq!(
                    verify(&mint_hmac(&header(alg), &valid_claims(), secret)),
                    Err(VerifyError::Algorithm),
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn other_asymmetric_algorithms_fail_before_the_key_is_used() {
        for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA", "es256"] {
            assert_eq!(
                verify(&ours(&header(alg), &valid_claims())),
                Err(VerifyError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn alg_none_fails_in_every_casing() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = URL_SAFE_NO_PAD.encode(header(alg).to_string());
            let p = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
            for token in [format!("{h}.{p}."), format!("{h}.{p}.c2ln")] {
                assert!(verify(&token).is_err(), "{alg}: {token}");
            }
        }
    }

    #[test]
    fn tampered_payload_fails() {
        let token = ours(&header("ES256"), &valid_claims());
        let (h, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(with(valid_claims(), "sub", json!("admin")).to_string());
        assert_eq!(
            verify(&format!("{h}.{forged}.{sig}")),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn tampered_signature_fails() {
        let token = ours(&header("ES256"), &valid_claims());
        assert_eq!(verify(&tampered(&token)), Err(VerifyError::Signature));
    }

    #[test]
    fn missing_required_claims_fail() {
        for claim in crate::test_util::REQUIRED_CLAIMS {
            let token = ours(&header("ES256"), &without(valid_claims(), claim));
            assert!(verify(&token).is_err(), "missing {claim} was accepted");
        }
    }

    #[test]
    fn exp_or_nbf_as_strings_fail() {
        for claim in ["exp", "nbf"] {
            let claims = with(valid_claims(), claim, json!((now() + 600).to_string()));
            assert!(
                verify(&ours(&header("ES256"), &claims)).is_err(),
                "{claim} as string"
            );
        }
    }

    #[test]
    fn refresh_token_is_not_an_access_token() {
        let claims = with(valid_claims(), "token_use", json!("refresh"));
        assert_eq!(
            verify(&ours(&header("ES256"), &claims)),
            Err(VerifyError::WrongUse(TokenUse::Refresh))
        );
    }

    #[test]
    fn token_with_plain_jwt_typ_fails() {
        let mut h = header("ES256");
        h["typ"] = json!("JWT");
        assert_eq!(verify(&ours(&h, &valid_claims())), Err(VerifyError::Type));
    }

    #[test]
    fn typ_compares_as_a_media_type() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            let mut h = header("ES256");
            h["typ"] = json!(typ);
            assert!(verify(&ours(&h, &valid_claims())).is_ok(), "{typ}");
        }
    }

    #[test]
    fn unknown_or_missing_kid_fails() {
        let attacker_kid = attacker_key().kid().to_owned();
        for h in [
            json!({"alg": "ES256", "typ": "at+jwt", "kid": "../../dev/null"}),
            json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker_kid}),
            json!({"alg": "ES256", "typ": "at+jwt"}),
        ] {
            assert_eq!(verify(&ours(&h, &valid_claims())), Err(VerifyError::UnknownKey));
        }
    }

    fn mint_payload(payload: &str) -> String {
        mint_raw(&header("ES256").to_string(), payload, &signing_key())
    }

    #[test]
    fn duplicate_claims_fail() {
        let claims = valid_claims().to_string();
        let payload = format!("{},\"sub\":\"admin\"}}", claims.trim_end_matches('}'));
        assert!(verify(&mint_payload(&payload)).is_err());
    }

    #[test]
    fn payload_that_is_not_an_object_fails() {
        for payload in ["[]", "42", "\"sub\"", "null"] {
            assert!(verify(&mint_payload(payload)).is_err(), "{payload}");
        }
    }

    #[test]
    fn header_that_is_not_a_json_object_fails_as_a_bad_header() {
        for h in ["not json", "[]", "{\"typ\":\"at+jwt\"}"] {
            let token = mint_raw(h, &valid_claims().to_string(), &signing_key());
            assert_eq!(verify(&token), Err(VerifyError::BadHeader), "{h}");
        }
    }

    #[test]
    fn any_crit_header_fails_as_an_unsupported_critical_extension() {
        for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
            let mut h = header("ES256");
            h["crit"] = crit.clone();
            h["exp"] = json!(1);
            h["b64"] = json!(true);
            assert_eq!(
                verify(&ours(&h, &valid_claims())),
                Err(VerifyError::CriticalHeader),
                "{crit}"
            );
        }
    }

    #[test]
    fn embedded_jwk_and_jku_headers_are_ignored_never_trusted() {
        let attacker = attacker_key();
        let mut h = header("ES256");
        h["jwk"] = serde_json::to_value(attacker.public_key().jwk()).unwrap();
        h["jku"] = json!("https://evil.test/jwks.json");
        assert_eq!(
            verify(&mint(&h, &valid_claims(), &attacker)),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn oversized_token_fails_before_parsing() {
        assert_eq!(
            verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(VerifyError::TooLarge)
        );
    }

    #[test]
    fn wrong_segment_counts_and_alphabets_fail() {
        let token = ours(&header("ES256"), &valid_claims());
        for bad in [
            String::new(),
            "abc".into(),
            "a.b".into(),
            format!("{token}.extra"),
            token.replacen('.', "+.", 1),
            format!("{token}="),
        ] {
            assert_eq!(verify(&bad), Err(VerifyError::Malformed), "{bad}");
        }
    }

    #[test]
    fn bearer_token_parses_the_scheme_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("abc.def.ghi"), None);
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source;
    use crate::config::test_source as source;

    #[test]
    fn the_issuer_is_jwt_issuer_or_the_stage_in_a_region_that_must_be_set() {
        let settings = |vars: &[(&str, &str)]| TokenSettings::from_source(&test_source(vars)).unwrap();
        let fixed = [("JWT_ISSUER", "https://auth.example.com")];
        assert_eq!(
            Issuer::from_source(&settings(&fixed), &test_source(&fixed)).unwrap(),
            Issuer::Fixed("https://auth.example.com".into())
        );
        for region in [None, Some(""), Some("  ")] {
            let vars: Vec<(&str, &str)> = region.map(|r| ("AWS_REGION", r)).into_iter().collect();
            let err = Issuer::from_source(&settings(&vars), &test_source(&vars)).unwrap_err();
            assert!(
                matches!(err, ConfigError::Missing { var: "AWS_REGION" }),
                "{region:?}: {err}"
            );
        }
        let vars = [("AWS_REGION", "cn-north-1")];
        let issuer = Issuer::from_source(&settings(&vars), &test_source(&vars)).unwrap();
        assert_eq!(
            issuer.of_stage("abc", "v1"),
            "https://abc.execute-api.cn-north-1.amazonaws.com.cn/v1"
        );
        assert_eq!(issuer.fixed(), None);
    }

    #[test]
    fn token_settings_defaults_apply_when_nothing_is_set() {
        let s = TokenSettings::from_source(&source(&[])).unwrap();
        assert_eq!(s.issuer, None, "the issuer is then the stage's URL");
        assert_eq!(s.audience, "jwt-auth-api");
        assert_eq!(s.access_ttl, Duration::from_secs(900));
        assert_eq!(s.leeway, Duration::from_secs(5));
    }

    #[test]
    fn the_issuer_must_be_a_url_without_trailing_slash() {
        for good in [
            "https://auth.example.com",
            "https://a.example.com/v1",
            "http://127.0.0.1:3000",
        ] {
            let s = TokenSettings::from_source(&source(&[("JWT_ISSUER", good)])).unwrap();
            assert_eq!(s.issuer.as_deref(), Some(good));
        }
        for bad in [
            "jwt-auth",
            "https://",
            "https://auth.example.com/",
            "ftp://x",
            "https://a/?q=1",
        ] {
            let err = TokenSettings::from_source(&source(&[("JWT_ISSUER", bad)])).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "JWT_ISSUER",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn stage_urls_follow_the_partition() {
        assert_eq!(
            stage_url("eu-west-1", "abc123", "v1"),
            "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
        );
        assert_eq!(
            stage_url("cn-north-1", "abc123", "v1"),
            "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/v1"
        );
    }

    #[test]
    fn ttl_outside_its_range_or_not_a_number_is_rejected() {
        for bad in ["0", "59", "3601", "-5", "15m", "1e3"] {
            let err = TokenSettings::from_source(&source(&[("ACCESS_TOKEN_TTL_SECONDS", bad)])).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "ACCESS_TOKEN_TTL_SECONDS",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn leeway_above_a_minute_is_rejected() {
        let err = TokenSettings::from_source(&source(&[("JWT_LEEWAY_SECONDS", "61")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "JWT_LEEWAY_SECONDS",
                ..
            }
        ));
    }
}
