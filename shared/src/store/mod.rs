//! The store boundary: object-safe traits per capability (users, login attempts), each with a
//! DynamoDB implementation and, for tests and benchmarks only, an in-memory one.
//!
//! `Ok(None)` means "no such user"; `Err` is only ever an infrastructure failure.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
#[cfg(feature = "aws")]
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

/// What the protected route may read of a user: no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub id: String,
    pub username: String,
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

    /// The user with this name (case-insensitively), password hash included, or `None`.
    async fn find_by_username(&self, username: &Username) -> Result<Option<UserRecord>, StoreError>;

    /// The id and name of the user with this name, read without the password hash.
    async fn find_profile(&self, username: &Username) -> Result<Option<UserProfile>, StoreError>;

    /// Replaces the password hash with `new` only while it is still `current` (one conditional
    /// write): `false` when it changed meanwhile or the user is gone, and nothing was written.
    async fn replace_password_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError>;
}

/// The answer to a login-attempt reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Counted: this is attempt number `attempt` of the window.
    Reserved { attempt: u32 },
    /// The window already holds the limit; nothing was written.
    LimitReached,
}

/// Login-attempt counters for brute-force protection, per username key in fixed windows numbered
/// `unix time / window length`.
#[async_trait]
pub trait LoginAttempts: Send + Sync {
    /// Counts one more attempt for `username_key` in `window` if fewer than `limit` are counted,
    /// in one conditional write, so concurrent callers can never reserve more than `limit`. The
    /// record may be deleted after `expires_at` (unix seconds).
    async fn reserve(
        &self,
        username_key: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError>;

    /// Forgets the attempts of `window` (after a successful login).
    async fn clear(&self, username_key: &str, window: u64) -> Result<(), StoreError>;
}
