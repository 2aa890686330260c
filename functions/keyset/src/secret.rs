//! The key set's secret in Secrets Manager: read (a secret without a value yet is an empty set)
//! and written as a new version whose id is derived from the CloudFormation request, so a
//! request applied twice at once writes at most one version.

use std::future::Future;
use std::time::Duration;

pub use shared::keystore::Saved;
use shared::keystore::{SecretsKeyStore, StoredKeySet, Timeouts};

/// Where the key set lives. [`SecretsManager`] deployed; an in-memory one in tests.
pub trait KeySetSecret: Sync {
    /// The current set; empty when the secret has no value yet.
    fn load(&self, secret_id: &str) -> impl Future<Output = anyhow::Result<StoredKeySet>> + Send;
    /// Writes `set` as the current version `version` (32 to 64 characters).
    fn save(
        &self,
        secret_id: &str,
        set: &StoredKeySet,
        version: &str,
    ) -> impl Future<Output = anyhow::Result<Saved>> + Send;
}

/// Timeouts of every Secrets Manager call: a silent endpoint must leave time to answer
/// CloudFormation before the function's own timeout.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    attempt: Duration::from_secs(5),
    operation: Duration::from_secs(15),
};

/// Secrets Manager, through `shared::keystore` (the store the token function reads with).
#[derive(Debug, Clone)]
pub struct SecretsManager {
    store: SecretsKeyStore,
}

impl SecretsManager {
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self {
            store: SecretsKeyStore::new(sdk_config, "", TIMEOUTS),
        }
    }
}

impl KeySetSecret for SecretsManager {
    async fn load(&self, secret_id: &str) -> anyhow::Result<StoredKeySet> {
        Ok(self.store.for_secret(secret_id).load().await?)
    }

    async fn save(&self, secret_id: &str, set: &StoredKeySet, version: &str) -> anyhow::Result<Saved> {
        Ok(self.store.for_secret(secret_id).save(set, version).await?)
    }
}

/// A version id (Secrets Manager's `ClientRequestToken`, 32 to 64 characters) that is the same
/// for every run of one CloudFormation request: its `RequestId`, a UUID, when it fits.
pub fn version_id(request_id: &str) -> String {
    let id: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    format!("{id:0>32}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_are_the_request_id_within_secrets_managers_bounds() {
        let uuid = "5b5c2f1e-8f7a-4b4c-9d6e-1f2a3b4c5d6e";
        assert_eq!(version_id(uuid), uuid);
        assert_eq!(version_id("abc").len(), 32);
        assert!(version_id("abc").ends_with("abc"));
        assert_eq!(version_id(&"x".repeat(100)).len(), 64);
        assert_eq!(version_id("a b/c"), format!("{:0>32}", "abc"));
    }
}
