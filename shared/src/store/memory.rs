//! An in-memory store for tests and benchmarks (feature `test-util`): the same contracts as the
//! DynamoDB store, no network, and switches to make any call fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    Caller, CreateOutcome, GraceCheck, LoginAttempts, Reservation, RotateOutcome, SessionStatus,
    SessionStore, SignUpAttempts, StoreError, UserProfile, UserRecord, UserStore,
};
use crate::session::{NewSession, RefreshRecord, TokenHash};
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
    /// Only `SessionStore::rotate`.
    Rotate,
}

/// A stored session: when it was revoked, if it was, and its absolute end.
#[derive(Debug, Clone)]
struct StoredSession {
    revoked_at: Option<u64>,
    expires_at: u64,
}

/// Users keyed by case-folded name, and login-attempt counts.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    users: Mutex<HashMap<String, UserRecord>>,
    attempts: Mutex<HashMap<(String, u64), u32>>,
    sessions: Mutex<HashMap<String, StoredSession>>,
    refresh: Mutex<HashMap<TokenHash, RefreshRecord>>,
    fail_all: AtomicBool,
    fail_rotate: AtomicBool,
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
            Calls::Rotate => &self.fail_rotate,
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

    /// When the session `session_id` was revoked, if it was; `None` also for an unknown id.
    pub fn session_revoked_at(&self, session_id: &str) -> Option<u64> {
        lock(&self.sessions).get(session_id).and_then(|s| s.revoked_at)
    }

    /// The stored refresh records (hashes only), for tests to inspect.
    pub fn refresh_records(&self) -> Vec<(TokenHash, RefreshRecord)> {
        lock(&self.refresh)
            .iter()
            .map(|(h, r)| (h.clone(), r.clone()))
            .collect()
    }

    /// The hash replaced while it is still `current`; `end_sessions` adds one to the epoch too.
    fn replace_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
        end_sessions: bool,
    ) -> Result<bool, StoreError> {
        self.check_all()?;
        let mut users = lock(&self.users);
        match users.get_mut(&username.key()) {
            Some(user) if user.password_hash == current => {
                user.password_hash = new.to_owned();
                user.epoch += u64::from(end_sessions);
                Ok(true)
            }
            _ => Ok(false),
        }
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

    async fn find_caller(
        &self,
        username: &Username,
        session_id: &str,
    ) -> Result<Caller<UserProfile>, StoreError> {
        let Caller { user, session } = self.find_caller_with_hash(username, session_id).await?;
        Ok(Caller {
            user: user.as_ref().map(UserProfile::from),
            session,
        })
    }

    async fn find_caller_with_hash(
        &self,
        username: &Username,
        session_id: &str,
    ) -> Result<Caller<UserRecord>, StoreError> {
        self.check_all()?;
        Ok(Caller {
            user: lock(&self.users).get(&username.key()).cloned(),
            session: lock(&self.sessions).get(session_id).map(|s| SessionStatus {
                revoked_at: s.revoked_at,
                expires_at: s.expires_at,
            }),
        })
    }

    async fn replace_password_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.replace_hash(username, current, new, false)
    }

    async fn change_password(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.replace_hash(username, current, new, true)
    }

    async fn end_all_sessions(&self, username: &Username, user_id: &str) -> Result<bool, StoreError> {
        self.check_all()?;
        let mut users = lock(&self.users);
        match users.get_mut(&username.key()) {
            Some(user) if user.id == user_id => {
                user.epoch += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl SessionStore for MemoryUserStore {
    async fn start_session(&self, session: &NewSession, first: &TokenHash) -> Result<(), StoreError> {
        self.check_all()?;
        let record = session.first_record();
        lock(&self.sessions).insert(
            session.session_id.clone(),
            StoredSession {
                revoked_at: None,
                expires_at: session.expires_at,
            },
        );
        lock(&self.refresh).insert(first.clone(), record);
        Ok(())
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, StoreError> {
        self.check_all()?;
        let record = lock(&self.refresh).get(hash).cloned();
        // A read over the network lets other requests run before the write that follows it:
        // so does this one, so that concurrent refreshes in a test interleave as they would.
        tokio::task::yield_now().await;
        Ok(record)
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        record: &RefreshRecord,
        new: &TokenHash,
        sealed: &str,
        now: u64,
        _expires_at: u64,
    ) -> Result<RotateOutcome, StoreError> {
        self.check(&self.fail_rotate)?;
        // One lock order (users, sessions, refresh) for the whole "transaction".
        let users = lock(&self.users);
        let sessions = lock(&self.sessions);
        let mut refresh = lock(&self.refresh);
        if refresh.get(old).is_none_or(|r| r.used_at.is_some()) {
            return Ok(RotateOutcome::AlreadyUsed);
        }
        let user_ok = users
            .get(&record.username_key)
            .is_some_and(|u| u.id == record.user_id && u.epoch == record.epoch);
        let session_ok = sessions
            .get(&record.session_id)
            .is_some_and(|s| s.revoked_at.is_none());
        if !(user_ok && session_ok) {
            return Ok(RotateOutcome::SessionEnded);
        }
        if let Some(used) = refresh.get_mut(old) {
            used.used_at = Some(now);
            used.successor = Some(sealed.to_owned());
        }
        let successor = RefreshRecord {
            issued_at: now,
            used_at: None,
            successor: None,
            ..record.clone()
        };
        refresh.insert(new.clone(), successor);
        Ok(RotateOutcome::Rotated)
    }

    async fn check_grace(
        &self,
        record: &RefreshRecord,
        successor: &TokenHash,
    ) -> Result<GraceCheck, StoreError> {
        self.check_all()?;
        let user_ok = lock(&self.users)
            .get(&record.username_key)
            .is_some_and(|u| u.id == record.user_id && u.epoch == record.epoch);
        let session_ok = lock(&self.sessions)
            .get(&record.session_id)
            .is_some_and(|s| s.revoked_at.is_none());
        if !(user_ok && session_ok) {
            return Ok(GraceCheck::SessionEnded);
        }
        let unused = lock(&self.refresh)
            .get(successor)
            .is_some_and(|r| r.used_at.is_none());
        Ok(if unused {
            GraceCheck::SuccessorUnused
        } else {
            GraceCheck::SuccessorUsed
        })
    }

    async fn revoke_session(&self, session_id: &str, now: u64) -> Result<(), StoreError> {
        self.check_all()?;
        if let Some(stored) = lock(&self.sessions).get_mut(session_id) {
            stored.revoked_at.get_or_insert(now);
        }
        Ok(())
    }
}

impl MemoryUserStore {
    /// The conditional add of a counter, as the DynamoDB store's `UpdateItem`.
    fn count(&self, key: String, window: u64, limit: u32) -> Reservation {
        let mut attempts = lock(&self.attempts);
        let count = attempts.entry((key, window)).or_insert(0);
        if *count >= limit {
            return Reservation::LimitReached;
        }
        *count += 1;
        Reservation::Reserved { attempt: *count }
    }
}

#[async_trait]
impl LoginAttempts for MemoryUserStore {
    async fn reserve(
        &self,
        key: &str,
        window: u64,
        limit: u32,
        _expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        self.check(&self.fail_reserve)?;
        Ok(self.count(key.to_owned(), window, limit))
    }

    async fn clear(&self, key: &str, window: u64) -> Result<(), StoreError> {
        self.check(&self.fail_clear)?;
        lock(&self.attempts).remove(&(key.to_owned(), window));
        Ok(())
    }

    async fn release(&self, key: &str, window: u64) -> Result<(), StoreError> {
        self.check(&self.fail_clear)?;
        if let Some(count) = lock(&self.attempts).get_mut(&(key.to_owned(), window)) {
            *count = count.saturating_sub(1);
        }
        Ok(())
    }
}

#[async_trait]
impl SignUpAttempts for MemoryUserStore {
    async fn reserve_sign_up(
        &self,
        client: &str,
        window: u64,
        limit: u32,
        _expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        self.check(&self.fail_reserve)?;
        // Its own key space, as the DynamoDB store's SIGNUP# prefix.
        Ok(self.count(format!("signup:{client}"), window, limit))
    }
}
