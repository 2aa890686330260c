//! An in-memory [`UserStore`] for tests and benchmarks: same contract, no network.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CreateOutcome, LoginAttempts, StoreError, UserRecord, UserStore};
use crate::user::Username;

/// Users keyed by case-folded name. Can be switched to fail every call, to test 503 paths.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: Mutex<HashMap<String, UserRecord>>,
    failures: Mutex<HashMap<(String, u64), u32>>,
    unavailable: std::sync::atomic::AtomicBool,
}

impl MemoryUserStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail with [`StoreError`] (or succeed again with `false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable
            .store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    /// Number of stored users.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, UserRecord>> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_available(&self) -> Result<(), StoreError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError(anyhow::anyhow!("memory store switched off")));
        }
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create(&self, user: &UserRecord) -> Result<CreateOutcome, StoreError> {
        self.check_available()?;
        let key = user.username.to_ascii_lowercase();
        let mut users = self.lock();
        if users.contains_key(&key) {
            return Ok(CreateOutcome::UsernameTaken);
        }
        users.insert(key, user.clone());
        Ok(CreateOutcome::Created)
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        self.check_available()?;
        Ok(self.lock().get(&username.key()).cloned())
    }
}

#[async_trait]
impl LoginAttempts for MemoryUserStore {
    async fn failures(&self, username_key: &str, window: u64) -> Result<u32, StoreError> {
        self.check_available()?;
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(failures
            .get(&(username_key.to_owned(), window))
            .copied()
            .unwrap_or(0))
    }

    async fn record_failure(
        &self,
        username_key: &str,
        window: u64,
        _expires_at: u64,
    ) -> Result<u32, StoreError> {
        self.check_available()?;
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry((username_key.to_owned(), window)).or_insert(0);
        *count += 1;
        Ok(*count)
    }

    async fn clear_failures(&self, username_key: &str, window: u64) -> Result<(), StoreError> {
        self.check_available()?;
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(&(username_key.to_owned(), window));
        Ok(())
    }
}
