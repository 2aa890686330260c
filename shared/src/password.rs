//! argon2id password hashing on a blocking thread, with a dummy check for unknown users.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::PasswordConfig;
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
    /// unknown username costs the same time as a wrong password, and answers `false`.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, PasswordError> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let password = password.expose().as_bytes();
            let Some(phc) = stored else {
                let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password_into(password, DUMMY_SALT, &mut output)
                    .map_err(|e| PasswordError::Hash(e.to_string()))?;
                return Ok(false);
            };
            let hash = PasswordHash::new(&phc).map_err(|_| PasswordError::CorruptHash)?;
            Ok(argon2().verify_password(password, &hash).is_ok())
        })
        .await?
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: these tests check behaviour, not cost.
    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&PasswordConfig {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
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
        assert!(h.verify(pw("correct horse"), Some(phc.clone())).await.unwrap());
        assert!(!h.verify(pw("correct horsf"), Some(phc)).await.unwrap());
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
    async fn unknown_user_never_verifies_even_with_the_dummy_password() {
        let h = hasher();
        assert!(
            !h.verify(pw("dummy password for unknown users"), None)
                .await
                .unwrap()
        );
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
