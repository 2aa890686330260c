//! The signing keys at rest: one Secrets Manager secret holding the key set as JSON, written by
//! the key-set function (the stack's custom resource) and read by the issuing function alone.
//!
//! ```json
//! {"keys": [{"kid": "<RFC 7638 thumbprint>", "state": "current", "private_key": "-----BEGIN PRIVATE KEY-----..."}]}
//! ```
//! The private keys are PKCS#8 PEM, so an operator can read one with the AWS CLI and any JOSE
//! library can use it. `Debug` never shows them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, PublicKeySet, SigningKey, json_error};
use crate::store::StoreError;

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

/// Timeouts of the issuing function's Secrets Manager calls: a silent endpoint must not hang a
/// login.
pub const LOGIN_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(5),
};

/// Connect, per-attempt and whole-operation timeouts of every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
}

/// What [`SecretsKeyStore::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The set is the secret's new current version.
    Written,
    /// A version with this id exists already (with another value): another run of the same
    /// request got there first.
    VersionTaken,
}

/// The Secrets Manager action of [`SecretsKeyStore::load`], as IAM names it (the IAM check holds
/// each function's declared actions against its role).
pub const LOAD: &str = "secretsmanager:GetSecretValue";
/// The Secrets Manager action of [`SecretsKeyStore::save`].
pub const SAVE: &str = "secretsmanager:PutSecretValue";

/// The key set's secret in Secrets Manager: `GetSecretValue` and `PutSecretValue` only.
///
/// The client is built on the first request, not here: `Client::from_conf` parses the SDK's
/// endpoint partition table and sets up its runtime plugins (a few hundred microseconds), and a
/// function that reads its keys on first use should not pay that in its cold start
/// (BENCHMARKS.md, "Round three").
#[derive(Debug, Clone)]
pub struct SecretsKeyStore {
    sdk_config: Arc<aws_config::SdkConfig>,
    timeouts: Timeouts,
    /// Shared by the copies [`Self::for_secret`] makes: one client for every secret.
    client: Arc<OnceLock<Client>>,
    secret_id: String,
}

impl SecretsKeyStore {
    pub fn new(sdk_config: &aws_config::SdkConfig, secret_id: &str, timeouts: Timeouts) -> Self {
        Self {
            sdk_config: Arc::new(sdk_config.clone()),
            timeouts,
            client: Arc::default(),
            secret_id: secret_id.to_owned(),
        }
    }

    /// The same client on another secret.
    pub fn for_secret(&self, secret_id: &str) -> Self {
        Self {
            secret_id: secret_id.to_owned(),
            ..self.clone()
        }
    }

    /// The client, built by the first request of any copy.
    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let timeouts = TimeoutConfig::builder()
                .connect_timeout(self.timeouts.connect)
                .read_timeout(self.timeouts.attempt)
                .operation_attempt_timeout(self.timeouts.attempt)
                .operation_timeout(self.timeouts.operation)
                .build();
            let config = aws_sdk_secretsmanager::config::Builder::from(&*self.sdk_config)
                .timeout_config(timeouts)
                .build();
            Client::from_conf(config)
        })
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The stored set (the secret's current version); empty when the secret has no value yet
    /// (the template creates it empty, and the key-set function's first run fills it).
    pub async fn load(&self) -> Result<StoredKeySet, StoreError> {
        let Some(text) = self.load_text().await? else {
            return Ok(StoredKeySet::default());
        };
        StoredKeySet::from_json(text.expose_secret()).map_err(StoreError)
    }

    /// The secret's current value as text; `None` when it has none yet.
    pub async fn load_text(&self) -> Result<Option<SecretString>, StoreError> {
        let output = match self
            .client()
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
        {
            Ok(output) => output,
            // A secret without a current version. A secret that does not exist at all answers
            // the same; the write that follows fails on it, naming it.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetSecretValueError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(StoreError(
                    anyhow::Error::new(e.into_service_error()).context("GetSecretValue"),
                ));
            }
        };
        let text = output
            .secret_string()
            .context("the secret holds binary data, not text")
            .map_err(StoreError)?;
        Ok(Some(SecretString::from(text.to_owned())))
    }

    /// Stores `set` as the secret's new current version with the id `version` (Secrets
    /// Manager's `ClientRequestToken`, 32 to 64 characters), so that two runs of one request
    /// write at most one version.
    pub async fn save(&self, set: &StoredKeySet, version: &str) -> Result<Saved, StoreError> {
        let text = serde_json::to_string(set)
            .context("serializing the key set")
            .map_err(StoreError)?;
        match self
            .client()
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(text)
            .client_request_token(version)
            .send()
            .await
        {
            Ok(_) => Ok(Saved::Written),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutSecretValueError::ResourceExistsException(_))
                ) =>
            {
                Ok(Saved::VersionTaken)
            }
            Err(e) => Err(StoreError(
                anyhow::Error::new(e.into_service_error()).context("PutSecretValue"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{next_signing_key, signing_key};

    #[test]
    fn the_client_is_built_by_the_first_request_not_at_cold_start() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let timeouts = Timeouts {
            connect: Duration::from_millis(100),
            attempt: Duration::from_millis(100),
            operation: Duration::from_millis(200),
        };
        let store = SecretsKeyStore::new(&sdk, "keys", timeouts);
        let other = store.for_secret("mfa");
        assert!(store.client.get().is_none(), "built at construction");
        let _ = other.client();
        assert!(store.client.get().is_some(), "the copies share one client");
    }

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
