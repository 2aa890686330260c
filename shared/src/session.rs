//! Sessions: a login starts one; opaque refresh tokens keep it going, each used once.
//!
//! A refresh token is 32 random bytes (base64url, 43 characters). The store keeps only its
//! SHA-256, as the key of a `REFRESH#` record naming its session, user and issue time, and the
//! time it was used (and then its successor, sealed with it). A refresh ([`Sessions::refresh`])
//! reads that record (one strongly
//! consistent read), then in one transaction marks it used, stores its successor, touches the
//! session and checks that the session and the user's session epoch are still the ones it was
//! issued under. So of any number of concurrent refreshes with one token exactly one rotates it.
//!
//! - **Reuse**: a used token presented again once the grace period after its use is over revokes
//!   its whole session (every token of that login) and is refused; the newest token of the
//!   session is then refused too. Only a token whose hash is stored can do this: a guessed or
//!   forged token finds no record and revokes nothing.
//! - **Grace**: less than `REFRESH_GRACE_SECONDS` after its use (a retry after a lost answer, a
//!   request that raced its twin), a used token gets a new access token and the same successor
//!   the first refresh returned (kept on the used token's record, sealed with the used token,
//!   which only its holder has), but only while that successor is unused: the used token must
//!   be the session's newest but one. A token whose successor was used too gets nothing (and
//!   revokes nothing: whoever sends it learns nothing, and the holder of the live token goes
//!   on), so a grace answer never hands out a token that was used when it was checked (one
//!   strongly consistent read, at once with the session's; the holder of the successor may use
//!   it the next moment, as it may any token it holds), and the chain of successors is never
//!   walked forward. Nothing is revoked and the session keeps one live token.
//! - **Lifetimes**: a session ends `SESSION_ABSOLUTE_SECONDS` after its login however often it
//!   is refreshed, and a token not used within `SESSION_IDLE_SECONDS` of its issue is refused.
//!   Both are checked here, on every use: the table's TTL deletes records late.
//! - **Epoch**: each user has a session epoch (0 until first changed). Logging out everywhere
//!   and changing the password add one; a session and every access token carry the epoch they
//!   were issued under, and one from an older epoch is refused (`protected` compares it on every
//!   request).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::clock::Clock;
use crate::config::{ConfigError, Env, Source, int_in_range, lookup};
use crate::events::{Client, EndedBy, EventConfig, EventKind, SecurityEvent};
use crate::store::{GraceCheck, RotateOutcome, SessionStore, StoreError};
pub use crate::store::{NewSession, RefreshRecord, TokenHash};
use std::time::Duration;

/// Bytes of randomness in a refresh token (256 bits).
pub const REFRESH_TOKEN_BYTES: usize = 32;
/// Length of a refresh token as text: base64url of 32 bytes, without padding.
pub const REFRESH_TOKEN_LENGTH: usize = 43;

/// A refresh token as the client holds it. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

impl RefreshToken {
    /// A new token from the system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        // ring's SystemRandom reads getrandom(2); it fails only where no OS randomness exists,
        // and then no token may be issued at all.
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the operating system's random number generator is unavailable");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token a client presented, if it has the shape of one (43 base64url characters that
    /// decode to 32 bytes). Anything else cannot be a token of ours and is not looked up.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == REFRESH_TOKEN_LENGTH
            && URL_SAFE_NO_PAD
                .decode(text)
                .is_ok_and(|bytes| bytes.len() == REFRESH_TOKEN_BYTES);
        ok.then(|| Self(text.to_owned()))
    }

    /// The token, to hand to its client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps in place of the token: its SHA-256, base64url. A fast hash is
    /// enough: the token is 256 random bits, not a password that could be guessed.
    pub fn hash(&self) -> TokenHash {
        TokenHash(URL_SAFE_NO_PAD.encode(digest(&SHA256, self.0.as_bytes())))
    }

    /// `successor`, sealed so that only a holder of this token can open it: AES-256-GCM under a
    /// key derived from this token (HKDF-SHA256), a random nonce, this token's hash as the
    /// associated data; base64url of nonce ‖ ciphertext ‖ tag. Stored on this token's record, it
    /// lets a retry within the grace period get the very successor the first request got (its
    /// answer may have been lost) while the store alone, which holds only hashes, cannot read it.
    pub fn seal(&self, successor: &RefreshToken) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the operating system's random number generator is unavailable");
        let mut sealed = successor.0.clone().into_bytes();
        // Sealing fails only for inputs over GCM's 64 GiB limit; a token is 43 bytes.
        #[allow(clippy::expect_used)]
        self.successor_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.hash().0.as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM seals 43 bytes");
        URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat())
    }

    /// The successor sealed by [`Self::seal`] with this token; `None` if `sealed` was not.
    pub fn open(&self, sealed: &str) -> Option<RefreshToken> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut ciphertext = ciphertext.to_vec();
        let plain = self
            .successor_key()
            .open_in_place(nonce, Aad::from(self.hash().0.as_bytes()), &mut ciphertext)
            .ok()?;
        RefreshToken::parse(std::str::from_utf8(plain).ok()?)
    }

    fn successor_key(&self) -> LessSafeKey {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"jwt-auth refresh token successor v1");
        let key: UnboundKey = salt
            .extract(self.0.as_bytes())
            .expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .map(UnboundKey::from)
            // expand fails only for an output longer than 255 hashes; a key is 32 bytes.
            .unwrap_or_else(|_| unreachable!("HKDF-SHA256 gives a 32-byte key"));
        LessSafeKey::new(key)
    }
}

/// What a presented (and found) refresh token may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Unused and within both lifetimes: rotate it.
    Rotate,
    /// Used within the grace period: a new access token and the successor already issued.
    Grace,
    /// Used before, after the grace period: the session is revoked.
    Reuse,
    /// Past the session's absolute lifetime, or unused for longer than the idle timeout.
    Expired,
}

/// The verdict on `record` at `now` under `config`; pure, so every edge is tested alone.
pub fn judge(record: &RefreshRecord, now: u64, config: &SessionConfig) -> Verdict {
    let absolute_end = record.started_at.saturating_add(config.absolute.as_secs());
    match record.used_at {
        // Reuse is judged first: an old stolen token must revoke the session even when it is
        // also past its own idle time (the session it belongs to may still be alive).
        Some(used) if now >= used.saturating_add(config.grace.as_secs()) => Verdict::Reuse,
        _ if now >= absolute_end => Verdict::Expired,
        Some(_) => Verdict::Grace,
        None if now >= record.issued_at.saturating_add(config.idle.as_secs()) => Verdict::Expired,
        None => Verdict::Rotate,
    }
}

/// Why a refresh was refused. The client learns only "invalid refresh token"; this is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no refresh token was presented")]
    Missing,
    #[error("the refresh token is not one this service issued")]
    Unknown,
    #[error("the refresh token or its session has expired")]
    Expired,
    #[error("the refresh token was used before: its session is revoked")]
    Reused,
    #[error("the session was ended (logout, logout everywhere or a password change)")]
    Ended,
    #[error(
        "the refresh token was used, and its successor too: within the grace period only the previous token gets the live one"
    )]
    Superseded,
}

/// The outcome of a refresh that is allowed.
#[derive(Debug)]
pub struct Refreshed {
    pub record: RefreshRecord,
    /// The successor token: a new one, or for a duplicate within the grace period the one the
    /// first request got (still unused).
    pub token: RefreshToken,
    /// Whether this was a duplicate within the grace period (nothing was written).
    pub duplicate: bool,
}

/// Whose session starts: the user as the login read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionUser<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    /// The user's item key (the lowercase name).
    pub username_key: &'a str,
    pub epoch: u64,
}

/// A session just started: its id (the `sid` of its access tokens) and its first token.
#[derive(Debug)]
pub struct Started {
    pub session_id: String,
    pub token: RefreshToken,
}

/// A session that ended or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The session operations, over a store and a clock. Build once at cold start.
pub struct Sessions {
    config: SessionConfig,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    events: EventConfig,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions whose events are kept as long as [`EventConfig::default`] says.
    pub fn new(config: SessionConfig, store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            store,
            clock,
            events: EventConfig::default(),
        }
    }

    /// The same, its events kept as `events` says.
    pub fn with_events(self, events: EventConfig) -> Self {
        Self { events, ..self }
    }

    /// An event of `kind` for `user_id` (`None`: no account), now, from `client`, kept as the
    /// configuration says.
    pub fn event(&self, kind: EventKind, user_id: Option<&str>, client: &Client) -> SecurityEvent {
        SecurityEvent::new(kind, user_id, client, self.clock.now(), &self.events)
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Starts a session for a user who just proved the password, from `client`, with the event
    /// `kind` (the login); returns its id and first token. The event is logged once stored.
    pub async fn start(
        &self,
        user: SessionUser<'_>,
        client: &Client,
        kind: EventKind,
    ) -> Result<Started, StoreError> {
        let (session, token) = self.prepare(user, client, kind);
        self.store.start_session(&session, &token.hash()).await?;
        session.event.log();
        tracing::info!(session_id = %session.session_id, "session started");
        Ok(Started {
            session_id: session.session_id,
            token,
        })
    }

    /// A session for the user starting now and its first refresh token, not yet stored: for a
    /// write that starts it together with what it depends on (the second step of a login, a
    /// passkey sign-in, a change to the second factor), in one transaction.
    /// Its event (`kind`, from `client`) goes into the same write: log it
    /// ([`SecurityEvent::log`]) once that write succeeded.
    pub fn prepare(
        &self,
        user: SessionUser<'_>,
        client: &Client,
        kind: EventKind,
    ) -> (NewSession, RefreshToken) {
        let now = self.clock.now();
        let session = NewSession {
            // UUID v7: a list of sessions orders the ones of one second by it, so by time. Not a
            // secret (the access tokens carry it); its 74 random bits still make it unguessable.
            session_id: uuid::Uuid::now_v7().to_string(),
            user_id: user.user_id.to_owned(),
            username: user.username.to_owned(),
            username_key: user.username_key.to_owned(),
            epoch: user.epoch,
            started_at: now,
            expires_at: self.expires_at(now),
            client: client.clone(),
            event: SecurityEvent::new(kind, Some(user.user_id), client, now, &self.events),
        };
        (session, RefreshToken::generate())
    }

    /// When the records of a session started at `started_at` may be deleted: its absolute end.
    fn expires_at(&self, started_at: u64) -> u64 {
        started_at.saturating_add(self.config.absolute.as_secs())
    }

    /// Uses `token` once, for `client`: rotated (a successor; the session's last use is
    /// `client`'s), a duplicate within the grace period (no successor), or refused. A refused
    /// reuse has revoked the session.
    pub async fn refresh(&self, token: Option<&str>, client: &Client) -> Result<Refreshed, RefreshError> {
        let token = token.ok_or(Refused::Missing)?;
        let token = RefreshToken::parse(token).ok_or(Refused::Unknown)?;
        let hash = token.hash();
        let record = self.store.find_refresh(&hash).await?.ok_or(Refused::Unknown)?;
        let now = self.clock.now();
        match judge(&record, now, &self.config) {
            Verdict::Expired => Err(Refused::Expired.into()),
            Verdict::Reuse => Err(self.reused(&record, client).await),
            Verdict::Grace => self.grace(&token, record).await,
            Verdict::Rotate => {
                let next = RefreshToken::generate();
                let outcome = self
                    .store
                    .rotate(
                        &hash,
                        &record,
                        &next.hash(),
                        &token.seal(&next),
                        now,
                        self.expires_at(record.started_at),
                        client.ip.as_deref(),
                    )
                    .await?;
                match outcome {
                    RotateOutcome::Rotated => {
                        tracing::info!(session_id = %record.session_id, "refresh token rotated");
                        Ok(Refreshed {
                            record,
                            token: next,
                            duplicate: false,
                        })
                    }
                    // Another request rotated it first: this one is its duplicate.
                    RotateOutcome::AlreadyUsed => {
                        let record = self.store.find_refresh(&hash).await?.ok_or(Refused::Unknown)?;
                        match judge(&record, self.clock.now(), &self.config) {
                            Verdict::Grace => self.grace(&token, record).await,
                            Verdict::Reuse => Err(self.reused(&record, client).await),
                            Verdict::Rotate | Verdict::Expired => Err(Refused::Expired.into()),
                        }
                    }
                    RotateOutcome::SessionEnded => {
                        tracing::info!(session_id = %record.session_id, "refresh refused: the session has ended");
                        Err(Refused::Ended.into())
                    }
                }
            }
        }
    }

    /// A duplicate within the grace period: the session must still be alive and the successor
    /// the first request got still unused; the answer is that successor, so the client ends up
    /// with the one live token.
    async fn grace(&self, token: &RefreshToken, record: RefreshRecord) -> Result<Refreshed, RefreshError> {
        // Only this code writes `successor`, sealed with the token it follows; a record without
        // one it can open has nothing to hand out.
        let successor = record
            .successor
            .as_deref()
            .and_then(|sealed| token.open(sealed))
            .ok_or(Refused::Superseded)?;
        match self.store.check_grace(&record, &successor.hash()).await? {
            GraceCheck::SessionEnded => Err(Refused::Ended.into()),
            GraceCheck::SuccessorUsed => {
                tracing::warn!(
                    session_id = %record.session_id,
                    "refresh token two generations old sent within the grace period: refused, nothing handed out"
                );
                Err(Refused::Superseded.into())
            }
            GraceCheck::SuccessorUnused => {
                tracing::info!(session_id = %record.session_id, "refresh token used again within the grace period");
                Ok(Refreshed {
                    record,
                    token: successor,
                    duplicate: true,
                })
            }
        }
    }

    /// Revokes the session of a reused token (presented by `client`), with its event; the
    /// refusal to answer, or the store's failure. Every detection whose session is revoked is
    /// logged and counted, also when it was revoked already (the event is stored once, with the
    /// revocation); one whose revocation failed is not (a 503: the next one detects it again).
    async fn reused(&self, record: &RefreshRecord, client: &Client) -> RefreshError {
        tracing::warn!(session_id = %record.session_id, user_id = %record.user_id, "refresh token reused: session revoked");
        let event = self.event(EventKind::ReuseDetected, Some(&record.user_id), client);
        match self
            .store
            .revoke_session(&record.session_id, self.clock.now(), &event)
            .await
        {
            Ok(_) => {
                event.log();
                Refused::Reused.into()
            }
            // Not revoked: a 503, and the next presentation detects it again.
            Err(e) => e.into(),
        }
    }

    /// Ends the session of `token`, if it is one of ours (logout by `client`). Unknown tokens
    /// end nothing.
    pub async fn end(&self, token: Option<&str>, client: &Client) -> Result<(), StoreError> {
        let Some(token) = token.and_then(RefreshToken::parse) else {
            return Ok(());
        };
        let Some(record) = self.store.find_refresh(&token.hash()).await? else {
            return Ok(());
        };
        let event = self.event(
            EventKind::SessionEnded(EndedBy::Logout),
            Some(&record.user_id),
            client,
        );
        if self
            .store
            .revoke_session(&record.session_id, self.clock.now(), &event)
            .await?
        {
            event.log();
        }
        tracing::info!(session_id = %record.session_id, "session ended (logout)");
        Ok(())
    }
}

// --- settings ------------------------------------------------------------------------------

/// Session lifetimes (see `session`): all in seconds, each with bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// `SESSION_ABSOLUTE_SECONDS`, default 2592000 (30 days), from 3600 (an hour) to 7776000
    /// (90 days): a session ends this long after its login, however often it is refreshed.
    pub absolute: Duration,
    /// `SESSION_IDLE_SECONDS`, default 604800 (7 days), from 900 (15 minutes) to the absolute
    /// lifetime: a refresh token not used within this long of its issue is refused.
    pub idle: Duration,
    /// `REFRESH_GRACE_SECONDS`, default 5, at most 60: for how long after its use a refresh
    /// token presented again counts as a duplicate of that request (answered with an access
    /// token and the successor the first request got, while that successor is unused) rather
    /// than as a reuse (which revokes the session). 0: no grace at all.
    pub grace: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            absolute: Duration::from_secs(30 * 86_400),
            idle: Duration::from_secs(7 * 86_400),
            grace: Duration::from_secs(5),
        }
    }
}

impl SessionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let absolute = int_in_range(
            src,
            "SESSION_ABSOLUTE_SECONDS",
            d.absolute.as_secs(),
            3600,
            90 * 86_400,
        )?;
        let idle = int_in_range(
            src,
            "SESSION_IDLE_SECONDS",
            d.idle.as_secs().min(absolute),
            900,
            absolute,
        )?;
        let grace = int_in_range(src, "REFRESH_GRACE_SECONDS", d.grace.as_secs(), 0, 60)?;
        Ok(Self {
            absolute: Duration::from_secs(absolute),
            idle: Duration::from_secs(idle),
            grace: Duration::from_secs(grace),
        })
    }
}

/// The `SameSite` attribute of the refresh-token cookie.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CookieSameSite {
    /// Sent only with requests from the API's own site: the app and the API share a registrable
    /// domain (`app.example.com` and `api.example.com`, or `localhost`). The default.
    #[default]
    Strict,
    /// As `Strict`, and also on top-level navigations from other sites (of no use to `fetch`).
    Lax,
    /// Sent cross-site too: an app on another site than the API (the API on its
    /// `execute-api.amazonaws.com` URL). Browsers that block third-party cookies still drop it.
    None,
}

impl CookieSameSite {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let var = "REFRESH_COOKIE_SAMESITE";
        match lookup(src, var).as_deref().map(str::trim) {
            None | Some("Strict") => Ok(Self::Strict),
            Some("Lax") => Ok(Self::Lax),
            Some("None") => Ok(Self::None),
            Some(other) => Err(ConfigError::Invalid {
                var,
                reason: format!("expected Strict, Lax or None, got {other:?}"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: u64 = 86_400;
    const T0: u64 = 1_800_000_000;

    fn config() -> SessionConfig {
        SessionConfig {
            absolute: Duration::from_secs(30 * DAY),
            idle: Duration::from_secs(7 * DAY),
            grace: Duration::from_secs(5),
        }
    }

    fn record(issued_at: u64, used_at: Option<u64>) -> RefreshRecord {
        RefreshRecord {
            session_id: "s".into(),
            user_id: "u".into(),
            username: "alice".into(),
            username_key: "alice".into(),
            epoch: 0,
            started_at: T0,
            issued_at,
            used_at,
            successor: None,
        }
    }

    #[test]
    fn tokens_are_256_random_bits_in_43_base64url_characters() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), REFRESH_TOKEN_LENGTH);
        assert_eq!(RefreshToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        assert_eq!(format!("{a:?}"), "RefreshToken([redacted])");
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn only_the_shape_of_a_token_is_parsed() {
        let token = RefreshToken::generate();
        let text = token.expose();
        for bad in [
            "",
            &text[1..],
            &format!("{text}A"),
            &format!("{}=", &text[..42]),
            &text.replace(&text[..1], "+"),
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_stored_hash_is_the_sha256_of_the_token_and_not_the_token() {
        let token = RefreshToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        // SHA-256 of the 43 ASCII characters, base64url.
        let expected = URL_SAFE_NO_PAD.encode(digest(&SHA256, token.expose().as_bytes()));
        assert_eq!(token.hash(), TokenHash(expected));
        assert_ne!(token.hash().0, token.expose());
        assert_eq!(token.hash(), token.clone().hash(), "deterministic");
    }

    #[test]
    fn an_unused_token_rotates_until_its_idle_time_or_the_sessions_end() {
        let c = config();
        let issued = T0 + 10 * DAY;
        assert_eq!(judge(&record(issued, None), issued, &c), Verdict::Rotate);
        assert_eq!(
            judge(&record(issued, None), issued + 7 * DAY - 1, &c),
            Verdict::Rotate
        );
        assert_eq!(
            judge(&record(issued, None), issued + 7 * DAY, &c),
            Verdict::Expired
        );
        // Rotation does not extend the session: at day 30 even a fresh token is refused.
        let late = T0 + 30 * DAY - 60;
        assert_eq!(judge(&record(late, None), T0 + 30 * DAY - 1, &c), Verdict::Rotate);
        assert_eq!(judge(&record(late, None), T0 + 30 * DAY, &c), Verdict::Expired);
    }

    #[test]
    fn a_used_token_is_a_duplicate_within_the_grace_period_and_a_reuse_after_it() {
        let c = config();
        let used = T0 + 100;
        assert_eq!(judge(&record(T0, Some(used)), used, &c), Verdict::Grace);
        assert_eq!(judge(&record(T0, Some(used)), used + 4, &c), Verdict::Grace);
        assert_eq!(judge(&record(T0, Some(used)), used + 5, &c), Verdict::Reuse);
        // Long after, past every lifetime, it is still a reuse: the thief is caught.
        assert_eq!(judge(&record(T0, Some(used)), T0 + 40 * DAY, &c), Verdict::Reuse);
        let no_grace = SessionConfig {
            grace: Duration::ZERO,
            ..c
        };
        assert_eq!(judge(&record(T0, Some(used)), used, &no_grace), Verdict::Reuse);
    }

    #[test]
    fn a_successor_sealed_with_a_token_opens_only_with_that_token() {
        let (old, next, other) = (
            RefreshToken::generate(),
            RefreshToken::generate(),
            RefreshToken::generate(),
        );
        let sealed = old.seal(&next);
        assert_eq!(old.open(&sealed), Some(next.clone()));
        assert_ne!(old.seal(&next), sealed, "a fresh nonce each time");
        assert_eq!(other.open(&sealed), None, "another token cannot open it");
        assert!(!sealed.contains(next.expose()));
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(old.open(&URL_SAFE_NO_PAD.encode(tampered)), None);
        for bad in ["", "AAAA", "not base64 !"] {
            assert_eq!(old.open(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn session_lifetimes_have_defaults_and_bounds_and_idle_stays_within_absolute() {
        let d = SessionConfig::from_source(&source(&[])).unwrap();
        assert_eq!(d, SessionConfig::default());
        assert_eq!(
            (d.absolute.as_secs(), d.idle.as_secs(), d.grace.as_secs()),
            (2_592_000, 604_800, 5)
        );
        let short = SessionConfig::from_source(&source(&[("SESSION_ABSOLUTE_SECONDS", "3600")])).unwrap();
        assert_eq!(
            short.idle.as_secs(),
            3600,
            "the idle default is capped by the absolute lifetime"
        );
        for (var, value) in [
            ("SESSION_ABSOLUTE_SECONDS", "3599"),
            ("SESSION_ABSOLUTE_SECONDS", "7776001"),
            ("SESSION_IDLE_SECONDS", "899"),
            ("SESSION_IDLE_SECONDS", "2592001"),
            ("REFRESH_GRACE_SECONDS", "61"),
            ("REFRESH_GRACE_SECONDS", "-1"),
        ] {
            let err = SessionConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: v, .. } if v == var),
                "{var}={value}: {err}"
            );
        }
        let edge = SessionConfig::from_source(&source(&[
            ("SESSION_ABSOLUTE_SECONDS", "7776000"),
            ("SESSION_IDLE_SECONDS", "7776000"),
            ("REFRESH_GRACE_SECONDS", "0"),
        ]))
        .unwrap();
        assert_eq!((edge.idle.as_secs(), edge.grace.as_secs()), (7_776_000, 0));
    }

    #[test]
    fn the_cookie_samesite_is_one_of_three_spelled_as_browsers_do() {
        assert_eq!(
            CookieSameSite::from_source(&source(&[])).unwrap(),
            CookieSameSite::Strict
        );
        for value in ["Strict", "Lax", "None"] {
            let parsed = CookieSameSite::from_source(&source(&[("REFRESH_COOKIE_SAMESITE", value)])).unwrap();
            assert_eq!(parsed.as_str(), value);
        }
        for bad in ["strict", "none", "Off"] {
            assert!(CookieSameSite::from_source(&source(&[("REFRESH_COOKIE_SAMESITE", bad)])).is_err());
        }
    }
}
