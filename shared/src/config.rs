//! Typed configuration, read from the environment once at cold start.
//!
//! Every loader takes a lookup function so tests can supply variables without touching the
//! process environment. A missing or weak setting is an error that names the variable.

use std::time::Duration;

use crate::keys::{PublicKeySet, SigningKey};

/// A configuration error; the message names the variable and never echoes a secret value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, var: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn get(&self, var: &str) -> Option<String> {
        self(var)
    }
}

/// A set but empty variable counts as unset, so `VAR=` in an env file falls back to the default.
pub(crate) fn lookup(src: &dyn Source, var: &'static str) -> Option<String> {
    src.get(var).filter(|v| !v.trim().is_empty())
}

/// A [`Source`] holding exactly `vars`, for tests.
#[cfg(test)]
pub(crate) fn test_source(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k: &str| map.get(k).cloned()
}

fn required(src: &dyn Source, var: &'static str) -> Result<String, ConfigError> {
    lookup(src, var).ok_or(ConfigError::Missing { var })
}

/// An integer in `min..=max`, or `default` when unset.
fn int_in_range(
    src: &dyn Source,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = lookup(src, var) else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        var,
        reason: format!("expected a whole number from {min} to {max}, got {raw:?}"),
    })?;
    if !(min..=max).contains(&value) {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("must be from {min} to {max}, got {value}"),
        });
    }
    Ok(value)
}

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

/// OWASP's argon2id configurations (Password Storage Cheat Sheet), as the least memory in KiB
/// for a number of passes: 46 MiB with one pass, 19 MiB with two, 12 MiB with three, 9 MiB with
/// four, 7 MiB with five or more; all with one lane.
pub const OWASP_ARGON2_MIN_MEMORY_KIB: [(u32, u32); 5] =
    [(1, 47_104), (2, 19_456), (3, 12_288), (4, 9_216), (5, 7_168)];

/// The least memory (KiB) OWASP's table asks for with `iterations` passes.
pub fn owasp_min_memory_kib(iterations: u32) -> u32 {
    OWASP_ARGON2_MIN_MEMORY_KIB
        .iter()
        .rev()
        .find(|(passes, _)| iterations >= *passes)
        .map_or(u32::MAX, |(_, memory)| *memory)
}

/// argon2id cost parameters. Defaults are OWASP's: m = 19456 KiB, t = 2, p = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordConfig {
    /// `ARGON2_MEMORY_KIB`, default 19456, at most 1048576; together with the passes at or
    /// above a row of OWASP's table ([`OWASP_ARGON2_MIN_MEMORY_KIB`]).
    pub memory_kib: u32,
    /// `ARGON2_ITERATIONS`, default 2, from 1 to 10.
    pub iterations: u32,
    /// `ARGON2_PARALLELISM`, default 1, from 1 to 8.
    pub parallelism: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Refuses a memory and pass count below OWASP's table: memory and passes trade against
    /// each other, so neither is enough on its own (7168 KiB passes only with five passes).
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let int = |var, default: u32, min, max| {
            int_in_range(src, var, u64::from(default), min, max).map(|v| v as u32)
        };
        let config = Self {
            memory_kib: int("ARGON2_MEMORY_KIB", d.memory_kib, 7_168, 1_048_576)?,
            iterations: int("ARGON2_ITERATIONS", d.iterations, 1, 10)?,
            parallelism: int("ARGON2_PARALLELISM", d.parallelism, 1, 8)?,
        };
        let least = owasp_min_memory_kib(config.iterations);
        if config.memory_kib < least {
            return Err(ConfigError::Invalid {
                var: "ARGON2_MEMORY_KIB",
                reason: format!(
                    "{} KiB with ARGON2_ITERATIONS={} is below OWASP's minimum of {least} KiB for that many passes (19456 with 2, 12288 with 3, 9216 with 4, 7168 with 5 or more, 47104 with 1)",
                    config.memory_kib, config.iterations
                ),
            });
        }
        Ok(config)
    }
}

/// Where users are stored and how long a store call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `USERS_TABLE`, required: the DynamoDB table name.
    pub table: String,
    /// `DYNAMODB_CONNECT_TIMEOUT_MS`, default 1000.
    pub connect_timeout: Duration,
    /// `DYNAMODB_ATTEMPT_TIMEOUT_MS`, default 1000: one attempt, including reading the answer.
    pub attempt_timeout: Duration,
    /// `DYNAMODB_OPERATION_TIMEOUT_MS`, default 3000: all attempts of one call, retries included.
    pub operation_timeout: Duration,
}

impl StoreConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let ms = |var, default| int_in_range(src, var, default, 10, 20_000).map(Duration::from_millis);
        let config = Self {
            table: required(src, "USERS_TABLE")?,
            connect_timeout: ms("DYNAMODB_CONNECT_TIMEOUT_MS", 1_000)?,
            attempt_timeout: ms("DYNAMODB_ATTEMPT_TIMEOUT_MS", 1_000)?,
            operation_timeout: ms("DYNAMODB_OPERATION_TIMEOUT_MS", 3_000)?,
        };
        if config.attempt_timeout > config.operation_timeout {
            return Err(ConfigError::Invalid {
                var: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
                reason: "must not exceed DYNAMODB_OPERATION_TIMEOUT_MS".into(),
            });
        }
        Ok(config)
    }
}

/// Brute-force protection of `POST /token`: failed logins are counted per username (existing
/// or not) and per client address in fixed windows; at either limit the route answers 429
/// until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottleConfig {
    /// `LOGIN_MAX_FAILURES`, default 5, from 1 to 1000: failures allowed per username and window.
    pub max_failures: u32,
    /// `LOGIN_MAX_FAILURES_PER_IP`, default 100, from 1 to 100000: failures allowed per client
    /// address (an IPv6 address's /64) and window. Generous, because an office or a carrier's
    /// NAT puts many users behind one address; it bounds the argon2 work one address can cause
    /// with a new name in every request.
    pub max_failures_per_client: u32,
    /// `LOGIN_WINDOW_SECONDS`, default 900 (15 minutes), from 10 to 86400.
    pub window: Duration,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            max_failures_per_client: 100,
            window: Duration::from_secs(900),
        }
    }
}

impl LoginThrottleConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let max = int_in_range(src, "LOGIN_MAX_FAILURES", u64::from(d.max_failures), 1, 1000)?;
        let per_client = int_in_range(
            src,
            "LOGIN_MAX_FAILURES_PER_IP",
            u64::from(d.max_failures_per_client),
            1,
            100_000,
        )?;
        Ok(Self {
            max_failures: u32::try_from(max).unwrap_or(u32::MAX),
            max_failures_per_client: u32::try_from(per_client).unwrap_or(u32::MAX),
            window: Duration::from_secs(int_in_range(
                src,
                "LOGIN_WINDOW_SECONDS",
                d.window.as_secs(),
                10,
                86_400,
            )?),
        })
    }
}

/// The sign-up limit of `POST /users`: sign-ups (taken names included) are counted per client
/// address in fixed windows; at the limit the route answers 429 until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignUpLimitConfig {
    /// `SIGNUP_MAX_PER_IP`, default 100, from 1 to 100000: sign-ups allowed per client address
    /// (an IPv6 address's /64) and window; generous, for the same reason as the login limit.
    pub max_per_client: u32,
    /// `SIGNUP_WINDOW_SECONDS`, default 3600 (an hour), from 10 to 86400.
    pub window: Duration,
}

impl Default for SignUpLimitConfig {
    fn default() -> Self {
        Self {
            max_per_client: 100,
            window: Duration::from_secs(3600),
        }
    }
}

impl SignUpLimitConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let max = int_in_range(src, "SIGNUP_MAX_PER_IP", u64::from(d.max_per_client), 1, 100_000)?;
        Ok(Self {
            max_per_client: u32::try_from(max).unwrap_or(u32::MAX),
            window: Duration::from_secs(int_in_range(
                src,
                "SIGNUP_WINDOW_SECONDS",
                d.window.as_secs(),
                10,
                86_400,
            )?),
        })
    }
}

/// Session lifetimes (see `session`): all in seconds, each with bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// `SESSION_ABSOLUTE_SECONDS`, default 2592000 (30 days), from 3600 (an hour) to 7776000
    /// (90 days): a session ends this long after its login, however often it is refreshed.
    pub absolute: Duration,
    /// `SESSION_IDLE_SECONDS`, default 604800 (7 days), from 900 (15 minutes) to the absolute
    /// lifetime: a refresh token not used within this long of its issue is refused.
    pub idle: Duration,
    /// `REFRESH_GRACE_SECONDS`, default 5, at most 60: for how long after its use a refresh
    /// token presented again counts as a duplicate of that request (answered with an access
    /// token and the successor the first request got, while that successor is unused) rather
    /// than as a reuse (which revokes the session). 0: no grace at all.
    pub grace: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            absolute: Duration::from_secs(30 * 86_400),
            idle: Duration::from_secs(7 * 86_400),
            grace: Duration::from_secs(5),
        }
    }
}

impl SessionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let absolute = int_in_range(
            src,
            "SESSION_ABSOLUTE_SECONDS",
            d.absolute.as_secs(),
            3600,
            90 * 86_400,
        )?;
        let idle = int_in_range(
            src,
            "SESSION_IDLE_SECONDS",
            d.idle.as_secs().min(absolute),
            900,
            absolute,
        )?;
        let grace = int_in_range(src, "REFRESH_GRACE_SECONDS", d.grace.as_secs(), 0, 60)?;
        Ok(Self {
            absolute: Duration::from_secs(absolute),
            idle: Duration::from_secs(idle),
            grace: Duration::from_secs(grace),
        })
    }
}

/// The `SameSite` attribute of the refresh-token cookie.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CookieSameSite {
    /// Sent only with requests from the API's own site: the app and the API share a registrable
    /// domain (`app.example.com` and `api.example.com`, or `localhost`). The default.
    #[default]
    Strict,
    /// As `Strict`, and also on top-level navigations from other sites (of no use to `fetch`).
    Lax,
    /// Sent cross-site too: an app on another site than the API (the API on its
    /// `execute-api.amazonaws.com` URL). Browsers that block third-party cookies still drop it.
    None,
}

impl CookieSameSite {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let var = "REFRESH_COOKIE_SAMESITE";
        match lookup(src, var).as_deref().map(str::trim) {
            None | Some("Strict") => Ok(Self::Strict),
            Some("Lax") => Ok(Self::Lax),
            Some("None") => Ok(Self::None),
            Some(other) => Err(ConfigError::Invalid {
                var,
                reason: format!("expected Strict, Lax or None, got {other:?}"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Which browser origins may read responses (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// `CORS_ALLOWED_ORIGINS`, default none: comma-separated origins such as
    /// `https://app.example.com`, or `*` for any origin.
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    /// Whether `origin` is one of the configured origins by name (`*` does not count).
    pub fn allows_exactly(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o != "*" && o.eq_ignore_ascii_case(origin))
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let var = "CORS_ALLOWED_ORIGINS";
        let allowed_origins: Vec<String> = lookup(src, var)
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &allowed_origins {
            let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
            if origin != "*" && (!scheme_ok || origin.matches('/').count() != 2) {
                return Err(ConfigError::Invalid {
                    var,
                    reason: format!("{origin:?} is not an origin like https://app.example.com"),
                });
            }
        }
        Ok(Self { allowed_origins })
    }
}

#[cfg(test)]
mod tests {
    use super::test_source as source;
    use super::*;

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

    use crate::test_util::{TEST_SIGNING_KEY, jwks_json, kid};

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

    #[test]
    fn password_config_defaults_are_owasp() {
        let c = PasswordConfig::from_source(&source(&[])).unwrap();
        assert_eq!(
            c,
            PasswordConfig {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    fn argon2(memory: u32, iterations: u32) -> Result<PasswordConfig, ConfigError> {
        let (m, t) = (memory.to_string(), iterations.to_string());
        PasswordConfig::from_source(&source(&[("ARGON2_MEMORY_KIB", &m), ("ARGON2_ITERATIONS", &t)]))
    }

    #[test]
    fn password_memory_below_owasp_minimum_is_rejected() {
        let err = PasswordConfig::from_source(&source(&[("ARGON2_MEMORY_KIB", "1024")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "ARGON2_MEMORY_KIB",
                ..
            }
        ));
    }

    #[test]
    fn every_row_of_owasps_table_is_accepted_and_one_kib_less_is_not() {
        for (passes, memory) in OWASP_ARGON2_MIN_MEMORY_KIB {
            assert!(argon2(memory, passes).is_ok(), "m={memory} t={passes}");
            let err = argon2(memory - 1, passes).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "ARGON2_MEMORY_KIB",
                        ..
                    }
                ),
                "m={} t={passes}: {err}",
                memory - 1
            );
        }
    }

    #[test]
    fn memory_and_passes_are_checked_together() {
        // Each alone is within its own range; together they are below OWASP.
        assert!(argon2(7_168, 1).is_err());
        assert!(argon2(7_168, 4).is_err());
        assert!(argon2(19_455, 2).is_err());
        assert!(argon2(12_288, 2).is_err());
        // More passes than the table's last row keep its memory floor.
        assert!(argon2(7_168, 10).is_ok());
        assert!(argon2(1_048_576, 1).is_ok());
        assert!(argon2(47_104, 1).is_ok());
    }

    #[test]
    fn store_config_requires_the_table() {
        let err = StoreConfig::from_source(&source(&[])).unwrap_err();
        assert_eq!(err, ConfigError::Missing { var: "USERS_TABLE" });
    }

    #[test]
    fn attempt_timeout_may_not_exceed_operation_timeout() {
        let err = StoreConfig::from_source(&source(&[
            ("USERS_TABLE", "users"),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "5000"),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", "2000"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
                ..
            }
        ));
    }

    #[test]
    fn login_throttle_defaults_and_bounds() {
        assert_eq!(
            LoginThrottleConfig::from_source(&source(&[])).unwrap(),
            LoginThrottleConfig::default()
        );
        let err = LoginThrottleConfig::from_source(&source(&[("LOGIN_MAX_FAILURES", "0")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOGIN_MAX_FAILURES",
                ..
            }
        ));
        let err = LoginThrottleConfig::from_source(&source(&[("LOGIN_WINDOW_SECONDS", "5")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOGIN_WINDOW_SECONDS",
                ..
            }
        ));
        let set = LoginThrottleConfig::from_source(&source(&[("LOGIN_MAX_FAILURES_PER_IP", "250")])).unwrap();
        assert_eq!(set.max_failures_per_client, 250);
        let err =
            LoginThrottleConfig::from_source(&source(&[("LOGIN_MAX_FAILURES_PER_IP", "0")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOGIN_MAX_FAILURES_PER_IP",
                ..
            }
        ));
    }

    #[test]
    fn sign_up_limit_defaults_and_bounds() {
        assert_eq!(
            SignUpLimitConfig::from_source(&source(&[])).unwrap(),
            SignUpLimitConfig::default()
        );
        let set = SignUpLimitConfig::from_source(&source(&[
            ("SIGNUP_MAX_PER_IP", "7"),
            ("SIGNUP_WINDOW_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!((set.max_per_client, set.window.as_secs()), (7, 60));
        for (var, value) in [
            ("SIGNUP_MAX_PER_IP", "0"),
            ("SIGNUP_MAX_PER_IP", "100001"),
            ("SIGNUP_WINDOW_SECONDS", "9"),
        ] {
            let err = SignUpLimitConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: v, .. } if v == var),
                "{var}={value}"
            );
        }
    }

    #[test]
    fn session_lifetimes_have_defaults_and_bounds_and_idle_stays_within_absolute() {
        let d = SessionConfig::from_source(&source(&[])).unwrap();
        assert_eq!(d, SessionConfig::default());
        assert_eq!(
            (d.absolute.as_secs(), d.idle.as_secs(), d.grace.as_secs()),
            (2_592_000, 604_800, 5)
        );
        let short = SessionConfig::from_source(&source(&[("SESSION_ABSOLUTE_SECONDS", "3600")])).unwrap();
        assert_eq!(
            short.idle.as_secs(),
            3600,
            "the idle default is capped by the absolute lifetime"
        );
        for (var, value) in [
            ("SESSION_ABSOLUTE_SECONDS", "3599"),
            ("SESSION_ABSOLUTE_SECONDS", "7776001"),
            ("SESSION_IDLE_SECONDS", "899"),
            ("SESSION_IDLE_SECONDS", "2592001"),
            ("REFRESH_GRACE_SECONDS", "61"),
            ("REFRESH_GRACE_SECONDS", "-1"),
        ] {
            let err = SessionConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: v, .. } if v == var),
                "{var}={value}: {err}"
            );
        }
        let edge = SessionConfig::from_source(&source(&[
            ("SESSION_ABSOLUTE_SECONDS", "7776000"),
            ("SESSION_IDLE_SECONDS", "7776000"),
            ("REFRESH_GRACE_SECONDS", "0"),
        ]))
        .unwrap();
        assert_eq!((edge.idle.as_secs(), edge.grace.as_secs()), (7_776_000, 0));
    }

    #[test]
    fn the_cookie_samesite_is_one_of_three_spelled_as_browsers_do() {
        assert_eq!(
            CookieSameSite::from_source(&source(&[])).unwrap(),
            CookieSameSite::Strict
        );
        for value in ["Strict", "Lax", "None"] {
            let parsed = CookieSameSite::from_source(&source(&[("REFRESH_COOKIE_SAMESITE", value)])).unwrap();
            assert_eq!(parsed.as_str(), value);
        }
        for bad in ["strict", "none", "Off"] {
            assert!(CookieSameSite::from_source(&source(&[("REFRESH_COOKIE_SAMESITE", bad)])).is_err());
        }
    }

    #[test]
    fn cors_origins_are_parsed_and_checked() {
        let c = CorsConfig::from_source(&source(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com/, http://localhost:5173",
        )]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        let err =
            CorsConfig::from_source(&source(&[("CORS_ALLOWED_ORIGINS", "app.example.com")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "CORS_ALLOWED_ORIGINS",
                ..
            }
        ));
    }
}
