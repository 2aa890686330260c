//! argon2id password hashing on a blocking thread, with a dummy check for unknown users and
//! an upgrade of hashes made with other parameters when their password is next proven right.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::{ConfigError, Env, Source, int_in_range};
use crate::user::Password;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored password hash is not a valid PHC string")]
    CorruptHash,
    #[error("password hashing task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes and verifies passwords with argon2id. Cheap to clone; build once at cold start.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
}

/// Salt of the stand-in computation for unknown users; its output is thrown away.
const DUMMY_SALT: &[u8] = b"unknown-user-dummy-salt";

impl PasswordHasher {
    /// Checks the parameters; no hashing happens here, so cold start pays nothing for it.
    pub fn new(config: &PasswordConfig) -> Result<Self, PasswordError> {
        let params = Params::new(config.memory_kib, config.iterations, config.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Self { params })
    }

    /// Hashes `password` to a PHC string with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, PasswordError> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, password.expose().as_bytes())).await?
    }

    /// Checks `password` against `stored`. When `stored` is `None` (the user does not exist) it
    /// runs the same argon2id computation with the current parameters and a fixed salt, so an
    /// unknown username costs the same time as a wrong password, and answers [`Check::Wrong`].
    ///
    /// A right password whose hash was made with other parameters (or another argon2 variant)
    /// is hashed again with the configured ones, in the same blocking task, and the new PHC
    /// string is returned for the caller to store (OWASP's upgrade on login): after a change of
    /// `ARGON2_*`, each user's hash moves to the new cost at their next login, so known and
    /// unknown names soon cost the same again.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<Check, PasswordError> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let password = password.expose().as_bytes();
            let Some(phc) = stored else {
                let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password_into(password, DUMMY_SALT, &mut output)
                    .map_err(|e| PasswordError::Hash(e.to_string()))?;
                return Ok(Check::Wrong);
            };
            let hash = PasswordHash::new(&phc).map_err(|_| PasswordError::CorruptHash)?;
            if argon2().verify_password(password, &hash).is_err() {
                return Ok(Check::Wrong);
            }
            let rehash = if made_with(&hash, &params) {
                None
            } else {
                Some(hash_blocking(&params, password)?)
            };
            Ok(Check::Right { rehash })
        })
        .await?
    }
}

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Wrong password, or no such user.
    Wrong,
    /// The password is right. `rehash` is a new hash with the configured parameters when the
    /// stored one was made with others.
    Right { rehash: Option<String> },
}

/// Whether `hash` is argon2id v1.3 with exactly `params` (memory, passes, lanes, output length).
fn made_with(hash: &PasswordHash, params: &Params) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(0x13)
        && stored.m_cost() == params.m_cost()
        && stored.t_cost() == params.t_cost()
        && stored.p_cost() == params.p_cost()
        && stored.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
            == params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, PasswordError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

// --- settings ------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::CHEAP_ARGON2;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&CHEAP_ARGON2).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse_existing(s.into()).unwrap()
    }

    #[tokio::test]
    async fn hash_is_an_argon2id_phc_string_with_the_configured_parameters() {
        let h = PasswordHasher::new(&PasswordConfig::default()).unwrap();
        let phc = h.hash(pw("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }

    #[tokio::test]
    async fn right_password_verifies_and_wrong_one_does_not() {
        let h = hasher();
        let phc = h.hash(pw("correct horse")).await.unwrap();
        assert_eq!(
            h.verify(pw("correct horse"), Some(phc.clone())).await.unwrap(),
            Check::Right { rehash: None }
        );
        assert_eq!(
            h.verify(pw("correct horsf"), Some(phc)).await.unwrap(),
            Check::Wrong
        );
    }

    #[tokio::test]
    async fn same_password_hashes_differently_each_time() {
        let h = hasher();
        assert_ne!(
            h.hash(pw("same")).await.unwrap(),
            h.hash(pw("same")).await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_hash_made_with_other_parameters_is_rehashed_with_the_configured_ones() {
        let old = PasswordHasher::new(&PasswordConfig {
            memory_kib: 2048,
            ..CHEAP_ARGON2
        })
        .unwrap();
        let phc = old.hash(pw("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=2048,t=1,p=1$"), "{phc}");

        let current = hasher();
        let Check::Right { rehash: Some(new) } = current
            .verify(pw("correct horse"), Some(phc.clone()))
            .await
            .unwrap()
        else {
            panic!("a right password with old parameters must be rehashed")
        };
        assert!(new.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{new}");
        assert_eq!(
            current.verify(pw("correct horse"), Some(new)).await.unwrap(),
            Check::Right { rehash: None }
        );
        // A wrong password never yields a new hash.
        assert_eq!(
            current.verify(pw("wrong"), Some(phc)).await.unwrap(),
            Check::Wrong
        );
    }

    #[tokio::test]
    async fn another_argon2_variant_is_rehashed_as_argon2id() {
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
        assert!(argon2i.starts_with("$argon2i$"), "{argon2i}");
        let Check::Right { rehash: Some(new) } =
            hasher().verify(pw("correct horse"), Some(argon2i)).await.unwrap()
        else {
            panic!("an argon2i hash must be upgraded")
        };
        assert!(new.starts_with("$argon2id$"), "{new}");
    }

    #[tokio::test]
    async fn corrupt_stored_hash_is_an_error_not_a_match() {
        let h = hasher();
        assert!(matches!(
            h.verify(pw("x"), Some("not-a-phc".into())).await,
            Err(PasswordError::CorruptHash)
        ));
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source as source;

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
}
