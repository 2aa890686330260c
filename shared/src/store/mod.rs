//! The store boundary: object-safe traits per capability, each what one IAM grant allows
//! ([`access`] declares their requests), implemented once, by the DynamoDB store; a function's
//! `App` holds only the capabilities its role grants. Tests run that store against an embedded
//! DynamoDB (Dynoxide) and inject faults at its HTTP client.
//!
//! `Ok(None)` means "no such user"; `Err` is only ever an infrastructure failure.

pub mod access;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "dynamodb")]
pub mod retry;
#[cfg(feature = "aws")]
pub mod sdk_config;
#[cfg(feature = "aws")]
pub mod tls;

use async_trait::async_trait;

use crate::config::{ConfigError, Env, Source, int_in_range, required};
use crate::events::{Client, SecurityEvent};
use crate::user::Username;
use std::time::Duration;

/// A stored user, with the password hash. Only the login path reads the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable user id (UUID v4), the `sub` of the user's tokens.
    pub id: String,
    /// The name as the user chose it; unique case-insensitively.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The user's session epoch: 0 at sign-up, one more at each "log out everywhere" and
    /// password change. Sessions and access tokens of an older epoch are refused.
    pub epoch: u64,
    /// The verified email address, the only one recovery uses; `None` until one is verified.
    pub email: Option<String>,
    /// The hash of the newest password-reset token; an older token is refused.
    pub reset_hash: Option<String>,
    /// The second factor, once enrolment is confirmed.
    pub totp: Option<TotpState>,
    /// A started TOTP enrolment waiting for its first code.
    pub totp_pending: Option<PendingTotp>,
    /// The user's passkeys, as listed (the credentials are `PASSKEY#` items).
    pub passkeys: Vec<PasskeySummary>,
}

/// A confirmed TOTP second factor, as the user item holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpState {
    /// The secret, sealed ([`crate::mfa::SealingKey`]); never stored in the clear.
    pub sealed_secret: String,
    /// The last time step whose code was accepted: a code of it or an earlier step is refused.
    pub last_step: u64,
    /// The hashes of the unused recovery codes.
    pub recovery: Vec<String>,
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState")
            .field("last_step", &self.last_step)
            .field("recovery_codes", &self.recovery.len())
            .finish_non_exhaustive()
    }
}

/// A started enrolment: the secret sealed, until when it may be confirmed.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingTotp {
    pub sealed_secret: String,
    pub until: u64,
}

impl std::fmt::Debug for PendingTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTotp")
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// A passkey as its user sees it listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasskeySummary {
    /// The credential id, base64url.
    pub id: String,
    pub name: String,
    pub created_at: u64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("epoch", &self.epoch)
            .field("email", &self.email.as_ref().map(|_| "[redacted]"))
            .field("totp", &self.totp)
            .field("passkeys", &self.passkeys.len())
            .finish_non_exhaustive()
    }
}

/// What the protected route may read of a user: no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub id: String,
    pub username: String,
    /// See [`UserRecord::epoch`].
    pub epoch: u64,
}

impl From<&UserRecord> for UserProfile {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id.clone(),
            username: user.username.clone(),
            epoch: user.epoch,
        }
    }
}

/// The SHA-256 of a refresh token, as stored and looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

/// A session as it starts at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Random id (UUID v4).
    pub session_id: String,
    pub user_id: String,
    /// The user's name as chosen, for the access tokens the session mints.
    pub username: String,
    /// The user's item key (the lowercase name), to check the user's epoch on each refresh.
    pub username_key: String,
    /// The user's session epoch at login.
    pub epoch: u64,
    /// Unix seconds.
    pub started_at: u64,
    /// When the store may delete the session's records (its absolute end).
    pub expires_at: u64,
    /// Where it started: listed in "Your devices".
    pub client: Client,
    /// The event written with it (the login, or the change that started it).
    pub event: SecurityEvent,
}

impl NewSession {
    /// The record of the session's first refresh token, issued at its start.
    pub fn first_record(&self) -> RefreshRecord {
        RefreshRecord {
            session_id: self.session_id.clone(),
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            username_key: self.username_key.clone(),
            epoch: self.epoch,
            started_at: self.started_at,
            issued_at: self.started_at,
            used_at: None,
            successor: None,
        }
    }
}

/// A stored refresh token (found by its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub session_id: String,
    pub user_id: String,
    pub username: String,
    pub username_key: String,
    pub epoch: u64,
    /// When the session started (its login).
    pub started_at: u64,
    /// When this token was issued.
    pub issued_at: u64,
    /// When it was used to refresh, if it was.
    pub used_at: Option<u64>,
    /// Its successor, sealed with it ([`crate::session::RefreshToken::seal`]), once it was used.
    pub successor: Option<String>,
}

/// What a route that accepts an access token reads of the token's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// When it was revoked (logout, reuse detected), if it was.
    pub revoked_at: Option<u64>,
    /// Its absolute end (the login plus `SESSION_ABSOLUTE_SECONDS`).
    pub expires_at: u64,
}

impl SessionStatus {
    /// Unrevoked and before its absolute end at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// The user an access token names and the token's session, as one read found them (`None`:
/// no such user, no such session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller<U> {
    pub user: Option<U>,
    pub session: Option<SessionStatus>,
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

/// Sign-up ([`access::Capability::CreateUser`]).
#[async_trait]
pub trait CreateUser: Send + Sync {
    /// Stores `user` unless its name is taken; atomic, so concurrent sign-ups of one name
    /// produce exactly one `Created`.
    async fn create(&self, user: &UserRecord) -> Result<CreateOutcome, StoreError>;
}

/// The login's read of a user ([`access::Capability::FindUser`]).
#[async_trait]
pub trait FindUser: Send + Sync {
    /// The user with this name (case-insensitively), password hash included, or `None`.
    async fn find_by_username(&self, username: &Username) -> Result<Option<UserRecord>, StoreError>;
}

/// A stored hash redone with new settings ([`access::Capability::RehashPassword`]).
#[async_trait]
pub trait RehashPassword: Send + Sync {
    /// Replaces the password hash with `new` only while it is still `current` (one conditional
    /// write): `false` when it changed meanwhile or the user is gone, and nothing was written.
    async fn replace_password_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError>;
}

/// What a route that accepts an access token reads ([`access::Capability::ReadCaller`]).
#[async_trait]
pub trait ReadCaller: Send + Sync {
    /// The id, name and epoch of the user with this name, read without the password hash, and
    /// the session `session_id`: both strongly consistent, read at once (one round trip).
    async fn find_caller(
        &self,
        username: &Username,
        session_id: &str,
    ) -> Result<Caller<UserProfile>, StoreError>;
}

/// A password change ([`access::Capability::ChangePassword`]).
#[async_trait]
pub trait ChangePassword: Send + Sync {
    /// As [`ReadCaller::find_caller`], with the user's password hash.
    async fn find_caller_with_hash(
        &self,
        username: &Username,
        session_id: &str,
    ) -> Result<Caller<UserRecord>, StoreError>;

    /// Changes the password: replaces the hash with `new` and adds one to the session epoch
    /// (every session and access token of the user ends), in one write conditioned on the hash
    /// still being `current`, so of two racing changes one wins, with `event` in the same
    /// transaction. `false`: nothing was written.
    async fn change_password(
        &self,
        username: &Username,
        current: &str,
        new: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
}

/// Log out everywhere ([`access::Capability::EndAllSessions`]).
#[async_trait]
pub trait EndAllSessions: Send + Sync {
    /// Adds one to the session epoch of the user `username` whose id is `user_id`, in one
    /// conditional write, with `event` in the same transaction; `false` when no such user exists.
    async fn end_all_sessions(
        &self,
        username: &Username,
        user_id: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
}

/// Account deletion ([`access::Capability::DeleteAccount`]).
#[async_trait]
pub trait DeleteAccount: Send + Sync {
    /// Deletes the user `username` while it is still `user_id` with the password hash
    /// `password_hash`, and with it the claim of its verified address `email` (one conditional
    /// transaction): `false` when the user changed meanwhile or is gone, and nothing was deleted.
    /// Once it is gone no access token of it passes a route that reads the store, no refresh
    /// token of it rotates, and its name and address are free.
    async fn delete_user(
        &self,
        username: &Username,
        user_id: &str,
        password_hash: &str,
        email: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Deletes every item that holds `user_id` but the user item (sessions, refresh tokens),
    /// found on the table's [`access::USER_INDEX`] with a `Query`, never a `Scan`; how many.
    /// The index is eventually consistent: an item written a moment before may be found by the
    /// next call only, which a repeated deletion makes.
    async fn delete_items_of(&self, user_id: &str) -> Result<usize, StoreError>;
}

/// The answer to a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is marked used and its successor stored.
    Rotated,
    /// The old token was used meanwhile (a concurrent refresh won); nothing was written.
    AlreadyUsed,
    /// The session is revoked, or the user's epoch moved on (or the user is gone); nothing
    /// was written.
    SessionEnded,
}

/// What [`SessionStore::check_grace`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceCheck {
    /// The session goes on and the successor is its live token: the duplicate may have it.
    SuccessorUnused,
    /// The successor was used too (or is gone): the duplicate is two generations old.
    SuccessorUsed,
    /// The session is revoked, or the user's epoch moved on (or the user is gone).
    SessionEnded,
}

/// Sessions and their refresh tokens, stored by hash only ([`access::Capability::Sessions`]).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session and its first token's hash, in one transaction.
    async fn start_session(&self, session: &NewSession, first: &TokenHash) -> Result<(), StoreError>;

    /// The record of the token with this hash, read strongly consistently; `None` if unknown.
    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, StoreError>;

    /// In one transaction: marks `old` used at `now` (keeping `sealed`, its successor sealed
    /// with it) if it is still unused, stores `new` as its successor (records deletable after
    /// `expires_at`), notes the session's last use (at `now`, from `ip`), and requires the
    /// session to be unrevoked and the user to still have the record's id and epoch.
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        old: &TokenHash,
        record: &RefreshRecord,
        new: &TokenHash,
        sealed: &str,
        now: u64,
        expires_at: u64,
        ip: Option<&str>,
    ) -> Result<RotateOutcome, StoreError>;

    /// What a duplicate of `record`'s token within the grace period may get: whether the
    /// session is unrevoked and its user still at the record's epoch, and whether `successor`
    /// (the token's successor) is still unused. One strongly consistent read of the three.
    async fn check_grace(
        &self,
        record: &RefreshRecord,
        successor: &TokenHash,
    ) -> Result<GraceCheck, StoreError>;

    /// Revokes the session and writes `event`, in one transaction, unless it is revoked already
    /// (then nothing is written: the first revocation and its event stay). Unknown ids are no
    /// error. `true`: revoked now.
    async fn revoke_session(
        &self,
        session_id: &str,
        now: u64,
        event: &SecurityEvent,
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

/// Login-attempt counters for brute-force protection ([`access::Capability::CountLoginAttempts`]), in fixed windows numbered
/// `unix time / window length`, keyed per username (its key) or per client address (a
/// [`crate::throttle::ClientKey`], which no username can equal).
#[async_trait]
pub trait LoginAttempts: Send + Sync {
    /// Counts one more attempt for `key` in `window` if fewer than `limit` are counted, in one
    /// conditional write, so concurrent callers can never reserve more than `limit`. The record
    /// may be deleted after `expires_at` (unix seconds).
    async fn reserve(
        &self,
        key: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError>;

    /// Forgets the attempts of `window` (after a successful login: the username's count).
    async fn clear(&self, key: &str, window: u64) -> Result<(), StoreError>;

    /// Takes back one reserved attempt of `window`, if any is counted (after a successful
    /// login: the client address's count, which counts failures only).
    async fn release(&self, key: &str, window: u64) -> Result<(), StoreError>;
}

/// Sign-up counters per client address, in fixed windows as [`LoginAttempts`]
/// ([`access::Capability::CountSignUps`]).
#[async_trait]
pub trait SignUpAttempts: Send + Sync {
    /// Counts one more sign-up from `client` in `window` if fewer than `limit` are counted, in
    /// one conditional write; the record may be deleted after `expires_at`.
    async fn reserve_sign_up(
        &self,
        client: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError>;
}

/// Mail counters per recipient and per client address, in fixed windows as [`LoginAttempts`]
/// ([`access::Capability::CountMail`]): `key` is `to/<address>` or `client/<address>`.
#[async_trait]
pub trait MailAttempts: Send + Sync {
    /// Counts one more message for `key` in `window` if fewer than `limit` are counted, in one
    /// conditional write; the record may be deleted after `expires_at`.
    async fn reserve_mail(
        &self,
        key: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError>;
}

/// Who holds a verified address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailOwner {
    pub user_id: String,
    pub username_key: String,
}

/// A pending verification of `email` for the user, stored by its token's hash.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    pub user_id: String,
    pub username_key: String,
    pub email: String,
    /// The user's session epoch when the link was issued: a password change or reset, or log
    /// out everywhere, ends the link.
    pub epoch: u64,
    pub expires_at: u64,
}

impl std::fmt::Debug for VerificationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationRecord")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What confirming an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is the user's, the token used, the old address's claim let go.
    Done,
    /// Another account holds the address (it verified it first); nothing was written.
    Taken,
    /// The token was used meanwhile, or the user is gone or changed its address since the
    /// token was issued; nothing was written.
    Stale,
}

/// The start of an address verification ([`access::Capability::StartVerification`]).
#[async_trait]
pub trait StartVerification: Send + Sync {
    /// Who holds the verified address `email_key` (a strongly consistent read), if anyone.
    async fn email_owner(&self, email_key: &str) -> Result<Option<EmailOwner>, StoreError>;

    /// Stores a pending verification under its token's hash.
    async fn start_verification(
        &self,
        hash: &TokenHash,
        record: &VerificationRecord,
    ) -> Result<(), StoreError>;
}

/// An address verified from its link ([`access::Capability::VerifyEmail`]).
#[async_trait]
pub trait VerifyEmail: Send + Sync {
    /// The pending verification of this hash (strongly consistent), if any.
    async fn find_verification(&self, hash: &TokenHash) -> Result<Option<VerificationRecord>, StoreError>;

    /// In one transaction: claims the record's address for its user (unless another account
    /// holds it), sets it as the user's address (while the user is still `record.user_id` and
    /// its address still `previous`), deletes the token, and lets go of the previous address's
    /// claim, and writes `event`.
    async fn confirm_email(
        &self,
        hash: &TokenHash,
        record: &VerificationRecord,
        previous: Option<&str>,
        event: &SecurityEvent,
    ) -> Result<Confirmed, StoreError>;
}

/// A password-reset token, stored by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRecord {
    pub user_id: String,
    pub username_key: String,
    pub expires_at: u64,
}

/// Password reset by a mailed token ([`access::Capability::ResetPassword`]).
#[async_trait]
pub trait ResetPassword: Send + Sync {
    /// Stores the token and makes it the user's newest (an older one stops working), in one
    /// transaction, while the user is still `record.user_id`; `false`: it is not, and nothing
    /// was written.
    async fn issue_reset(&self, hash: &TokenHash, record: &ResetRecord) -> Result<bool, StoreError>;

    /// The token of this hash (strongly consistent), if any.
    async fn find_reset(&self, hash: &TokenHash) -> Result<Option<ResetRecord>, StoreError>;

    /// Sets the password to `new_hash` and ends every session (one more epoch), and deletes the
    /// token, in one transaction, while the token is still the user's newest; `false`: it is not
    /// (used, superseded, or the user is gone), and nothing was written.
    async fn reset_password(
        &self,
        hash: &TokenHash,
        record: &ResetRecord,
        new_hash: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
}

/// How a code of the second step is used up, in the write that accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// A TOTP code of this time step: only while the user's last accepted step is earlier.
    Step(u64),
    /// A recovery code with this hash: only while it is among the unused, and then no more.
    Recovery(String),
}

/// A change to a user's second factor; each is conditioned on the state it was decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpChange {
    /// Confirms the pending enrolment `pending` (sealed secret) with a code of `step`, and
    /// stores the recovery codes' hashes.
    Enable {
        pending: String,
        step: u64,
        recovery: Vec<String>,
    },
    /// Turns off the second factor whose sealed secret is `secret`, with `used`.
    Disable { secret: String, used: CodeUse },
    /// Replaces the recovery codes of the second factor `secret`, with `used`.
    Regenerate {
        secret: String,
        used: CodeUse,
        recovery: Vec<String>,
    },
}

/// A login waiting for its second step, stored by its ticket's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRecord {
    pub user_id: String,
    pub username_key: String,
    /// The user's epoch at the password step: a password change meanwhile ends the ticket.
    pub epoch: u64,
    pub expires_at: u64,
}

/// The user a change applies to, as it was read: the write is conditioned on the id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAt<'a> {
    pub username_key: &'a str,
    pub user_id: &'a str,
    pub epoch: u64,
}

/// The second factor ([`access::Capability::SecondFactor`]). Every change ends the user's
/// other sessions (one more epoch) and starts `session` for the caller in the same transaction,
/// so the caller stays signed in and nothing else does.
#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// Keeps `pending` (a sealed secret) until `until` as the user's enrolment in progress,
    /// while the user has no second factor; `false`: it has one (or is gone), nothing written.
    async fn start_totp(&self, user: UserAt<'_>, pending: &PendingTotp) -> Result<bool, StoreError>;

    /// Applies `change` and starts `session` (first refresh token `first`), in one transaction
    /// conditioned on the user's id, epoch and second factor as read; `false`: any of them
    /// changed (or the code was used meanwhile), and nothing was written.
    async fn change_totp(
        &self,
        user: UserAt<'_>,
        change: &TotpChange,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<bool, StoreError>;

    /// Stores a login's ticket under its hash, with no attempts counted.
    async fn issue_ticket(&self, hash: &TokenHash, ticket: &TicketRecord) -> Result<(), StoreError>;

    /// Counts one attempt on the ticket, in one conditional write, while it exists, is unexpired
    /// at `now` and has fewer than `max` attempts; the ticket, or `None` (unknown, expired, used
    /// up: nothing counted).
    async fn spend_ticket(
        &self,
        hash: &TokenHash,
        max: u32,
        now: u64,
    ) -> Result<Option<TicketRecord>, StoreError>;

    /// The second step's commit, one transaction: deletes the ticket, uses `used` up on the
    /// user's second factor `secret` (still at the ticket's id and epoch), and starts `session`;
    /// `false`: the ticket or the code was used meanwhile, or the user changed, and nothing was
    /// written.
    async fn complete_login(
        &self,
        hash: &TokenHash,
        ticket: &TicketRecord,
        secret: &str,
        used: &CodeUse,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<bool, StoreError>;
}

/// A WebAuthn ceremony's state between its two requests.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// `register` or `sign-in`.
    pub kind: String,
    /// The user a registration is for; `None` for a sign-in (the passkey names its user).
    pub user_id: Option<String>,
    /// `webauthn-rs`'s state, JSON.
    pub state: String,
    pub expires_at: u64,
}

impl std::fmt::Debug for ChallengeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeRecord")
            .field("kind", &self.kind)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A stored passkey (`PASSKEY#<credential id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id, base64url.
    pub id: String,
    pub user_id: String,
    pub username_key: String,
    /// `webauthn-rs`'s `Passkey`, JSON: the public key, its sign counter and backup flags.
    pub credential: String,
    /// The sign counter as last accepted (0: the authenticator keeps none).
    pub counter: u32,
}

/// What a passkey sign-in changes of its passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasskeyUse<'a> {
    /// The credential, JSON, with its new counter and backup flags.
    pub credential: &'a str,
    pub counter: u32,
    /// When (unix seconds).
    pub at: u64,
}

/// Passkeys and their ceremonies ([`access::Capability::Passkeys`]).
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Stores a ceremony's state under the random id `id`.
    async fn put_challenge(&self, id: &str, challenge: &ChallengeRecord) -> Result<(), StoreError>;

    /// Deletes the challenge `id` and returns it, in one conditional delete, if it exists and is
    /// unexpired at `now`: a challenge is used once, whatever the ceremony's outcome.
    async fn take_challenge(&self, id: &str, now: u64) -> Result<Option<ChallengeRecord>, StoreError>;

    /// Stores `passkey` (a new credential id) and lists it on its user (`summary`), in one
    /// transaction while the user is still `passkey.user_id`; `false`: the credential is
    /// registered already or the user is gone, nothing written.
    async fn add_passkey(
        &self,
        passkey: &StoredPasskey,
        summary: &PasskeySummary,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;

    /// The passkey with this credential id (strongly consistent), if any.
    async fn find_passkey(&self, id: &str) -> Result<Option<StoredPasskey>, StoreError>;

    /// A passkey sign-in's commit, one transaction: the passkey's credential and counter
    /// replaced by `used`'s (while its counter is still `passkey.counter`), its user still at
    /// `user`'s id and epoch, and `session` started; `false`: either changed meanwhile, nothing
    /// written.
    async fn sign_in_with_passkey(
        &self,
        passkey: &StoredPasskey,
        used: &PasskeyUse<'_>,
        user: UserAt<'_>,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<bool, StoreError>;

    /// Deletes the user's passkey `id` and its listing, in one transaction; `false`: it is not
    /// the user's (or is gone already), nothing written.
    async fn remove_passkey(
        &self,
        user: UserAt<'_>,
        id: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
}

/// Where a listing goes on: the sort key of the last item a page held, `<unix seconds, 10
/// digits>#<uuid>` as base64url to the client, for whom it is opaque. Only a well-formed one is accepted, and it
/// only ever moves within the caller's own list (the list comes from the caller's token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub at: u64,
    /// The item's id (a session's or an event's UUID).
    pub id: uuid::Uuid,
}

impl ListCursor {
    /// The longest cursor accepted, as text.
    pub const MAX_LENGTH: usize = 96;

    /// The item's sort key in the list index: the time zero-padded, then the id, so the index
    /// orders by time and ties by id.
    pub fn sort_key(&self) -> String {
        sort_key(self.at, &self.id.to_string())
    }

    /// The cursor of the item with this sort key, if it is one of ours.
    pub fn from_sort_key(key: &str) -> Option<Self> {
        let (at, id) = key.split_once('#')?;
        if at.len() != 10 || !at.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id = uuid::Uuid::try_parse(id).ok()?;
        Some(Self {
            at: at.parse().ok()?,
            id,
        })
    }

    /// As the client gets it.
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.sort_key())
    }

    /// A cursor a client sent back; `None` for anything this API did not give out.
    pub fn parse(text: &str) -> Option<Self> {
        use base64::Engine;
        if text.len() > Self::MAX_LENGTH {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let cursor = Self::from_sort_key(std::str::from_utf8(&bytes).ok()?)?;
        // One spelling only: the canonical text of what it decodes to.
        (cursor.encode() == text).then_some(cursor)
    }
}

/// The sort key of an item listed at `at` (unix seconds) with id `id`.
pub fn sort_key(at: u64, id: &str) -> String {
    format!("{at:010}#{id}")
}

/// A page of a listing, newest first, and where the next one starts (`None`: no more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<ListCursor>,
}

/// A live session as "Your devices" lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: String,
    pub started_at: u64,
    pub last_used_at: u64,
    /// `None` for a session started before devices were recorded.
    pub device: Option<String>,
    pub ip_at_start: Option<String>,
    pub ip_last_used: Option<String>,
}

/// Which sessions are live at a listing: unrevoked (a revoked one leaves the list), before
/// their absolute end (started after `started_after`), used since `idle_since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub now: u64,
    /// `now` less `SESSION_ABSOLUTE_SECONDS`.
    pub started_after: u64,
    /// `now` less `SESSION_IDLE_SECONDS`.
    pub idle_since: u64,
}

/// "Your devices": the caller's sessions ([`access::Capability::Devices`]).
#[async_trait]
pub trait Devices: Send + Sync {
    /// Up to `limit` of the user's live sessions of `epoch`, newest start first, after `after`:
    /// one `Query` on the list index (a page may hold fewer than `limit`: sessions that ended
    /// without leaving the index are skipped).
    async fn list_sessions(
        &self,
        user_id: &str,
        epoch: u64,
        live: Liveness,
        limit: u32,
        after: Option<&ListCursor>,
    ) -> Result<Page<SessionSummary>, StoreError>;

    /// Revokes the session `session_id` and writes `event`, in one transaction, only while it is
    /// one [`Self::list_sessions`] lists (the user's, of `epoch`, unrevoked, live at `live`):
    /// `false` (nothing written) for an unknown id, another user's, or one that ended.
    async fn end_session(
        &self,
        user_id: &str,
        epoch: u64,
        session_id: &str,
        live: Liveness,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
}

/// An event of a user's history, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub at: u64,
    pub kind: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub ip: Option<String>,
    pub device: Option<String>,
}

/// The security history ([`access::Capability::SecurityLog`]).
#[async_trait]
pub trait SecurityLog: Send + Sync {
    /// Writes `event` alone (the best-effort path, where the request writes nothing else).
    async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError>;

    /// Up to `limit` of the user's events, newest first, after `after`: one `Query`.
    async fn list_events(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<&ListCursor>,
    ) -> Result<Page<StoredEvent>, StoreError>;
}

// --- settings ------------------------------------------------------------------------------

/// Where users are stored and how long a store call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `USERS_TABLE`, required: the DynamoDB table name.
    pub table: String,
    /// `DYNAMODB_CONNECT_TIMEOUT_MS`, default 1000.
    pub connect_timeout: Duration,
    /// `DYNAMODB_ATTEMPT_TIMEOUT_MS`, default 1000: one attempt, including reading the answer.
    pub attempt_timeout: Duration,
    /// `DYNAMODB_OPERATION_TIMEOUT_MS`, default 3000: all attempts of one call, retries included.
    pub operation_timeout: Duration,
}

impl StoreConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let ms = |var, default| int_in_range(src, var, default, 10, 20_000).map(Duration::from_millis);
        let config = Self {
            table: required(src, "USERS_TABLE")?,
            connect_timeout: ms("DYNAMODB_CONNECT_TIMEOUT_MS", 1_000)?,
            attempt_timeout: ms("DYNAMODB_ATTEMPT_TIMEOUT_MS", 1_000)?,
            operation_timeout: ms("DYNAMODB_OPERATION_TIMEOUT_MS", 3_000)?,
        };
        if config.attempt_timeout > config.operation_timeout {
            return Err(ConfigError::Invalid {
                var: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
                reason: "must not exceed DYNAMODB_OPERATION_TIMEOUT_MS".into(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn store_config_requires_the_table() {
        let err = StoreConfig::from_source(&source(&[])).unwrap_err();
        assert_eq!(err, ConfigError::Missing { var: "USERS_TABLE" });
    }

    #[test]
    fn attempt_timeout_may_not_exceed_operation_timeout() {
        let err = StoreConfig::from_source(&source(&[
            ("USERS_TABLE", "users"),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "5000"),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", "2000"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
                ..
            }
        ));
    }
}
