//! The store boundary: object-safe traits per capability (users, login attempts), each with a
//! DynamoDB implementation and an in-memory one.
//!
//! `Ok(None)` means "no such user"; `Err` is only ever an infrastructure failure.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod memory;
#[cfg(feature = "dynamodb")]
pub mod tls;

use async_trait::async_trait;

use crate::user::Username;

/// A stored user, with the password hash. Only the login path reads the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable user id (UUID v4), the `sub` of the user's tokens.
    pub id: String,
    /// The name as the user chose it; unique case-insensitively.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// What happened to a sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// Another user holds this name (in any letter case). Nothing was written.
    UsernameTaken,
}

/// The store could not answer: unreachable, timed out, throttled, or returned something unreadable.
#[derive(Debug, thiserror::Error)]
#[error("user store unavailable: {0}")]
pub struct StoreError(#[source] pub anyhow::Error);

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores `user` unless its name is taken; atomic, so concurrent sign-ups of one name
    /// produce exactly one `Created`.
    async fn create(&self, user: &UserRecord) -> Result<CreateOutcome, StoreError>;

    /// The user with this name (case-insensitively), or `None`.
    async fn find_by_username(&self, username: &Username) -> Result<Option<UserRecord>, StoreError>;
}

/// Failed-login counters for brute-force protection, in fixed windows numbered
/// `unix time / window length`. Counts are atomic: concurrent failures are never lost.
#[async_trait]
pub trait LoginAttempts: Send + Sync {
    /// Failures recorded for `username_key` in `window` (0 when none).
    async fn failures(&self, username_key: &str, window: u64) -> Result<u32, StoreError>;

    /// Adds one failure and returns the new count. The record may be deleted after `expires_at`
    /// (unix seconds).
    async fn record_failure(
        &self,
        username_key: &str,
        window: u64,
        expires_at: u64,
    ) -> Result<u32, StoreError>;

    /// Forgets the failures of `window` (after a successful login).
    async fn clear_failures(&self, username_key: &str, window: u64) -> Result<(), StoreError>;
}
