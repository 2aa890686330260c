//! The signing keys at rest: one Secrets Manager secret holding the key set as JSON (its format:
//! `crate::key_set`), written by the key-set function (the stack's custom resource) and read by
//! the issuing function alone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use secrecy::{ExposeSecret, SecretString};

pub use crate::key_set::{KeyState, StoredKey, StoredKeySet};
use crate::store::StoreError;

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
}
