//! The key set's format at rest: the JSON of the Secrets Manager secret the key-set function
//! (the stack's custom resource) writes and the issuing function alone reads (`keystore`), and
//! of `./dev run`'s `.dev/keys.json`. Here, without the AWS SDK, for everything that writes or
//! reads one (the cold-start benchmark's Secrets Manager stub too).
//!
//! ```json
//! {"keys": [{"kid": "<RFC 7638 thumbprint>", "state": "current", "private_key": "-----BEGIN PRIVATE KEY-----..."}]}
//! ```
//! The private keys are PKCS#8 PEM, so an operator can read one with the AWS CLI and any JOSE
//! library can use it. `Debug` never shows them.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, PublicKeySet, SigningKey, json_error};

/// Where a key stands in its life (see the rotation runbook, docs/keys.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens.
    Current,
    /// Published to the verifiers ahead of signing, so no verifier meets a token it cannot check.
    Next,
    /// Signed tokens until the last rotation; published until those tokens have expired.
    Previous,
}

/// One key of the stored set.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub state: KeyState,
    /// PKCS#8 PEM.
    #[serde(with = "secret_string")]
    pub private_key: SecretString,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

mod secret_string {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.expose_secret())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
        String::deserialize(deserializer).map(SecretString::from)
    }
}

impl StoredKey {
    pub fn new(key: &SigningKey, state: KeyState) -> Self {
        Self {
            kid: key.kid().to_owned(),
            state,
            private_key: key.to_pem().into(),
        }
    }

    /// The key, checked against its recorded kid.
    pub fn signing_key(&self) -> Result<SigningKey, KeyError> {
        let key = SigningKey::from_pem(self.private_key.expose_secret())?;
        if key.kid() != self.kid {
            return Err(KeyError::Kid {
                index: 0,
                kid: self.kid.clone(),
            });
        }
        Ok(key)
    }
}

/// The whole stored set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredKeySet {
    pub keys: Vec<StoredKey>,
}

impl StoredKeySet {
    /// The key whose id is `kid`, to sign with.
    pub fn signing_key(&self, kid: &str) -> Result<SigningKey, KeyError> {
        self.keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyError::UnknownKid(kid.to_owned()))?
            .signing_key()
    }

    /// The public halves of every key in the set: what the verifiers get.
    pub fn public_keys(&self) -> Result<PublicKeySet, KeyError> {
        let keys = self
            .keys
            .iter()
            .map(|k| k.signing_key().map(|key| key.public_key().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PublicKeySet::of(keys))
    }

    /// The set stored as `text`. The error says where the text is wrong, never what it holds.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "the key set's secret does not hold a key set ({})",
                json_error(&e)
            )
        })
    }

    /// The key in `state`, if any.
    pub fn in_state(&self, state: KeyState) -> Option<&StoredKey> {
        self.keys.iter().find(|k| k.state == state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{next_signing_key, signing_key};

    fn set() -> StoredKeySet {
        StoredKeySet {
            keys: vec![
                StoredKey::new(&signing_key(), KeyState::Current),
                StoredKey::new(&next_signing_key(), KeyState::Next),
            ],
        }
    }

    #[test]
    fn a_stored_set_round_trips_through_json_and_never_shows_in_debug() {
        let text = serde_json::to_string(&set()).unwrap();
        let read: StoredKeySet = serde_json::from_str(&text).unwrap();
        assert_eq!(
            read.signing_key(signing_key().kid()).unwrap().kid(),
            signing_key().kid()
        );
        assert_eq!(
            read.in_state(KeyState::Next).unwrap().kid,
            next_signing_key().kid()
        );
        let debug = format!("{read:?}");
        assert!(
            !debug.contains("PRIVATE KEY") && debug.contains("redacted"),
            "{debug}"
        );
    }

    #[test]
    fn a_secret_that_is_not_a_key_set_is_refused_without_quoting_it() {
        let private = signing_key().to_pem();
        for text in [
            format!(r#"{{"keys": [{{"kid": 1, "state": "current", "private_key": {private:?}}}]}}"#),
            format!(r#"{{"keys": "{}"}}"#, private.replace('\n', "")),
            private.clone(),
        ] {
            let error = format!("{:#}", StoredKeySet::from_json(&text).unwrap_err());
            assert!(error.contains("does not hold a key set"), "{error}");
            let body = private.lines().nth(1).unwrap();
            assert!(
                !error.contains(&body[..20]),
                "the error quotes the secret: {error}"
            );
        }
    }

    #[test]
    fn the_verifiers_get_every_key_of_the_set() {
        let public = set().public_keys().unwrap();
        let kids: Vec<_> = public.kids().collect();
        assert_eq!(kids, [signing_key().kid(), next_signing_key().kid()]);
    }

    #[test]
    fn a_missing_kid_or_a_key_under_another_kid_is_refused() {
        let mut set = set();
        assert!(matches!(set.signing_key("nope"), Err(KeyError::UnknownKid(_))));
        set.keys[0].kid = next_signing_key().kid().to_owned();
        assert!(set.keys[0].signing_key().is_err());
    }
}
