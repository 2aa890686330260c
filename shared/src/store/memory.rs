//! An in-memory store for tests and benchmarks (feature `test-util`): the same contracts as the
//! DynamoDB store, no network, and switches to make any call fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{CreateOutcome, LoginAttempts, Reservation, StoreError, UserProfile, UserRecord, UserStore};
use crate::user::Username;

/// Which calls a switched-off store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// Every call.
    All,
    /// Only `LoginAttempts::reserve`.
    Reserve,
    /// Only `LoginAttempts::clear`.
    Clear,
}

/// Users keyed by case-folded name, and login-attempt counts.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: Mutex<HashMap<String, UserRecord>>,
    attempts: Mutex<HashMap<(String, u64), u32>>,
    fail_all: AtomicBool,
    fail_reserve: AtomicBool,
    fail_clear: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryUserStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `calls` fail with [`StoreError`] (or succeed again with `false`).
    pub fn set_failing(&self, calls: Calls, failing: bool) {
        let switch = match calls {
            Calls::All => &self.fail_all,
            Calls::Reserve => &self.fail_reserve,
            Calls::Clear => &self.fail_clear,
        };
        switch.store(failing, Ordering::SeqCst);
    }

    /// Number of stored users.
    pub fn len(&self) -> usize {
        lock(&self.users).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored record of `username`, as the store holds it.
    pub fn user(&self, username: &str) -> Option<UserRecord> {
        lock(&self.users).get(&username.to_ascii_lowercase()).cloned()
    }

    /// Attempts counted for `username_key` in `window`.
    pub fn attempts(&self, username_key: &str, window: u64) -> u32 {
        lock(&self.attempts)
            .get(&(username_key.to_owned(), window))
            .copied()
            .unwrap_or(0)
    }

    fn check(&self, also: &AtomicBool) -> Result<(), StoreError> {
        if self.fail_all.load(Ordering::SeqCst) || also.load(Ordering::SeqCst) {
            return Err(StoreError(anyhow::anyhow!("memory store switched off")));
        }
        Ok(())
    }

    fn check_all(&self) -> Result<(), StoreError> {
        self.check(&self.fail_all)
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create(&self, user: &UserRecord) -> Result<CreateOutcome, StoreError> {
        self.check_all()?;
        let key = user.username.to_ascii_lowercase();
        let mut users = lock(&self.users);
        if users.contains_key(&key) {
            return Ok(CreateOutcome::UsernameTaken);
        }
        users.insert(key, user.clone());
        Ok(CreateOutcome::Created)
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        self.check_all()?;
        Ok(lock(&self.users).get(&username.key()).cloned())
    }

    async fn find_profile(&self, username: &Username) -> Result<Option<UserProfile>, StoreError> {
        self.check_all()?;
        Ok(lock(&self.users).get(&username.key()).map(|u| UserProfile {
            id: u.id.clone(),
            username: u.username.clone(),
        }))
    }

    async fn replace_password_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.check_all()?;
        let mut users = lock(&self.users);
        match users.get_mut(&username.key()) {
            Some(user) if user.password_hash == current => {
                user.password_hash = new.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl LoginAttempts for MemoryUserStore {
    async fn reserve(
        &self,
        username_key: &str,
        window: u64,
        limit: u32,
        _expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        self.check(&self.fail_reserve)?;
        let mut attempts = lock(&self.attempts);
        let count = attempts.entry((username_key.to_owned(), window)).or_insert(0);
        if *count >= limit {
            return Ok(Reservation::LimitReached);
        }
        *count += 1;
        Ok(Reservation::Reserved { attempt: *count })
    }

    async fn clear(&self, username_key: &str, window: u64) -> Result<(), StoreError> {
        self.check(&self.fail_clear)?;
        lock(&self.attempts).remove(&(username_key.to_owned(), window));
        Ok(())
    }
}
