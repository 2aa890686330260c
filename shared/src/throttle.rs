//! Brute-force and abuse limits, each reserved with one conditional write before the work it
//! guards, in fixed windows (`window = now / length`), so that however many requests arrive at
//! once, from however many function instances, no more than the limit get through.
//!
//! - `POST /token` ([`LoginThrottle`]): each attempt is reserved per username (existing or not,
//!   `LOGIN_MAX_FAILURES`) and per client address (`LOGIN_MAX_FAILURES_PER_IP`) before any
//!   password is hashed; a right password clears the username's count and takes its one back
//!   from the address's, so the address counts failures only. Then 429 with `Retry-After` (the
//!   rest of the window).
//! - `POST /users` ([`SignUpThrottle`]): each sign-up is reserved per client address
//!   (`SIGNUP_MAX_PER_IP`) before its password is hashed; every sign-up counts.
//!
//! An address is the request's source IP as API Gateway saw it ([`ClientKey`]); an IPv6
//! address counts as its /64, the block one subscriber gets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{ConfigError, Env, Source, int_in_range};
use crate::error::ApiError;
use crate::store::{LoginAttempts, MailAttempts, Reservation, SignUpAttempts};
use crate::user::EmailAddress;

/// The counter key of a client address: `client/<IPv4>` or `client/<IPv6 /64>`, or
/// `client/unknown` for a request that carries none (only a direct invoke: API Gateway always
/// sets one). No username can equal it: usernames hold no `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey(String);

impl ClientKey {
    pub fn of(address: Option<IpAddr>) -> Self {
        let address = match address.map(|a| a.to_canonical()) {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        };
        Self(format!("client/{address}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Fixed windows of one length: the window `now` falls in, and the second it ends.
#[derive(Debug, Clone, Copy)]
struct Windows(Duration);

impl Windows {
    fn at(self, now: u64) -> (u64, u64) {
        let length = self.0.as_secs().max(1);
        let window = now / length;
        (window, (window + 1) * length)
    }

    /// When a counter of the window ending at `end` may be deleted: one window later.
    fn expiry(self, end: u64) -> u64 {
        end + self.0.as_secs()
    }
}

/// What a reserved attempt counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Counted {
    /// A username's key: cleared after a right password.
    Name(String),
    /// A client address: one taken back after a right password.
    Client(ClientKey),
}

/// The login limit: its settings, the counters and the clock. Build once at cold start.
pub struct LoginThrottle {
    config: LoginThrottleConfig,
    attempts: Arc<dyn LoginAttempts>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A reserved attempt: it stays counted unless the password proves right.
#[derive(Debug)]
#[must_use = "a reserved attempt is counted until `LoginThrottle::succeeded` clears it"]
pub struct Attempt {
    counted: Counted,
    window: u64,
    /// Which attempt of the window this is, from 1.
    pub number: u32,
}

impl LoginThrottle {
    pub fn new(config: LoginThrottleConfig, attempts: Arc<dyn LoginAttempts>, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            attempts,
            clock,
        }
    }

    pub fn config(&self) -> &LoginThrottleConfig {
        &self.config
    }

    fn windows(&self) -> Windows {
        Windows(self.config.window)
    }

    /// The current window's number, as the counters are keyed.
    pub fn current_window(&self) -> u64 {
        self.windows().at(self.clock.now()).0
    }

    /// Reserves an attempt for `username_key` before its password is checked. At the limit:
    /// [`ApiError::TooManyAttempts`] until the window ends. If the reservation cannot be written:
    /// [`ApiError::StoreUnavailable`], a 503 with no password checked (the limit fails closed).
    pub async fn reserve(&self, username_key: &str) -> Result<Attempt, ApiError> {
        self.reserve_counted(Counted::Name(username_key.to_owned()), self.config.max_failures)
            .await
    }

    /// Reserves an attempt for the client address `client`, as [`Self::reserve`] for a name,
    /// under `LOGIN_MAX_FAILURES_PER_IP`.
    pub async fn reserve_client(&self, client: &ClientKey) -> Result<Attempt, ApiError> {
        self.reserve_counted(
            Counted::Client(client.clone()),
            self.config.max_failures_per_client,
        )
        .await
    }

    async fn reserve_counted(&self, counted: Counted, limit: u32) -> Result<Attempt, ApiError> {
        let now = self.clock.now();
        let (window, window_end) = self.windows().at(now);
        let key = match &counted {
            Counted::Name(key) => key.as_str(),
            Counted::Client(client) => client.as_str(),
        };
        match self
            .attempts
            .reserve(key, window, limit, self.windows().expiry(window_end))
            .await?
        {
            Reservation::Reserved { attempt } => Ok(Attempt {
                counted,
                window,
                number: attempt,
            }),
            Reservation::LimitReached => {
                match counted {
                    Counted::Name(_) => {
                        tracing::warn!(
                            "login refused: this username's attempt limit of the window is reached"
                        )
                    }
                    Counted::Client(client) => tracing::warn!(
                        client = client.as_str(),
                        "login refused: this client address's attempt limit of the window is reached"
                    ),
                }
                Err(ApiError::TooManyAttempts {
                    retry_after: window_end - now,
                })
            }
        }
    }

    /// After a right password: forgets the name's count of the window, or takes the attempt
    /// back from the address's. Best effort: a failed write is logged, and the login still
    /// succeeds (the count then lapses with its window).
    pub async fn succeeded(&self, attempt: Attempt) {
        let result = match &attempt.counted {
            Counted::Name(key) => self.attempts.clear(key, attempt.window).await,
            Counted::Client(client) => self.attempts.release(client.as_str(), attempt.window).await,
        };
        if let Err(error) = result {
            tracing::warn!(error = %crate::http::error_chain(&error), "could not clear the login attempts");
        }
    }

    /// Deletes every live count of the name `key` (this window's and the last one's, whose
    /// counters have not expired yet), for a deleted account, whose name must leave nothing
    /// behind. Counters past their TTL are DynamoDB's to delete.
    pub async fn forget(&self, key: &str) -> Result<(), crate::store::StoreError> {
        let window = self.current_window();
        let (this, last) = tokio::join!(
            self.attempts.clear(key, window),
            self.attempts.clear(key, window.saturating_sub(1))
        );
        this.and(last)
    }

    /// Takes back one attempt of the client address in the current window, counted by an
    /// earlier request (a passkey sign-in's options) that this one completed. Best effort.
    pub async fn release_client(&self, client: &ClientKey) {
        if let Err(error) = self
            .attempts
            .release(client.as_str(), self.current_window())
            .await
        {
            tracing::warn!(error = %crate::http::error_chain(&error), "could not take back a client's attempt");
        }
    }

    /// Takes back an attempt whose password was never checked (the other limit refused the
    /// request, or the store failed): it must not count, so that an address at its limit cannot
    /// go on spending usernames' budgets, nor a locked name its address's. Best effort.
    pub async fn cancel(&self, attempt: Attempt) {
        let key = match &attempt.counted {
            Counted::Name(key) => key.as_str(),
            Counted::Client(client) => client.as_str(),
        };
        if let Err(error) = self.attempts.release(key, attempt.window).await {
            tracing::warn!(error = %crate::http::error_chain(&error), "could not take back an unchecked login attempt");
        }
    }
}

/// The sign-up limit per client address. Build once at cold start.
pub struct SignUpThrottle {
    config: SignUpLimitConfig,
    attempts: Arc<dyn SignUpAttempts>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SignUpThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignUpThrottle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SignUpThrottle {
    pub fn new(config: SignUpLimitConfig, attempts: Arc<dyn SignUpAttempts>, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            attempts,
            clock,
        }
    }

    /// Counts a sign-up from `client` before its password is hashed: at the limit,
    /// [`ApiError::TooManySignUps`] until the window ends; a reservation that cannot be written
    /// is a 503 (the limit fails closed).
    pub async fn reserve(&self, client: &ClientKey) -> Result<(), ApiError> {
        let windows = Windows(self.config.window);
        let now = self.clock.now();
        let (window, window_end) = windows.at(now);
        match self
            .attempts
            .reserve_sign_up(
                client.as_str(),
                window,
                self.config.max_per_client,
                windows.expiry(window_end),
            )
            .await?
        {
            Reservation::Reserved { .. } => Ok(()),
            Reservation::LimitReached => {
                tracing::warn!(
                    client = client.as_str(),
                    "sign-up refused: this client address's limit of the window is reached"
                );
                Err(ApiError::TooManySignUps {
                    retry_after: window_end - now,
                })
            }
        }
    }
}

// --- settings ------------------------------------------------------------------------------

/// Brute-force protection of `POST /token`: failed logins are counted per username (existing
/// or not) and per client address in fixed windows; at either limit the route answers 429
/// until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottleConfig {
    /// `LOGIN_MAX_FAILURES`, default 5, from 1 to 1000: failures allowed per username and window.
    pub max_failures: u32,
    /// `LOGIN_MAX_FAILURES_PER_IP`, default 100, from 1 to 100000: failures allowed per client
    /// address (an IPv6 address's /64) and window. Generous, because an office or a carrier's
    /// NAT puts many users behind one address; it bounds the argon2 work one address can cause
    /// with a new name in every request.
    pub max_failures_per_client: u32,
    /// `LOGIN_WINDOW_SECONDS`, default 900 (15 minutes), from 10 to 86400.
    pub window: Duration,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            max_failures_per_client: 100,
            window: Duration::from_secs(900),
        }
    }
}

impl LoginThrottleConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let max = int_in_range(src, "LOGIN_MAX_FAILURES", u64::from(d.max_failures), 1, 1000)?;
        let per_client = int_in_range(
            src,
            "LOGIN_MAX_FAILURES_PER_IP",
            u64::from(d.max_failures_per_client),
            1,
            100_000,
        )?;
        Ok(Self {
            max_failures: u32::try_from(max).unwrap_or(u32::MAX),
            max_failures_per_client: u32::try_from(per_client).unwrap_or(u32::MAX),
            window: Duration::from_secs(int_in_range(
                src,
                "LOGIN_WINDOW_SECONDS",
                d.window.as_secs(),
                10,
                86_400,
            )?),
        })
    }
}

/// The sign-up limit of `POST /users`: sign-ups (taken names included) are counted per client
/// address in fixed windows; at the limit the route answers 429 until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignUpLimitConfig {
    /// `SIGNUP_MAX_PER_IP`, default 100, from 1 to 100000: sign-ups allowed per client address
    /// (an IPv6 address's /64) and window; generous, for the same reason as the login limit.
    pub max_per_client: u32,
    /// `SIGNUP_WINDOW_SECONDS`, default 3600 (an hour), from 10 to 86400.
    pub window: Duration,
}

impl Default for SignUpLimitConfig {
    fn default() -> Self {
        Self {
            max_per_client: 100,
            window: Duration::from_secs(3600),
        }
    }
}

impl SignUpLimitConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let max = int_in_range(src, "SIGNUP_MAX_PER_IP", u64::from(d.max_per_client), 1, 100_000)?;
        Ok(Self {
            max_per_client: u32::try_from(max).unwrap_or(u32::MAX),
            window: Duration::from_secs(int_in_range(
                src,
                "SIGNUP_WINDOW_SECONDS",
                d.window.as_secs(),
                10,
                86_400,
            )?),
        })
    }
}

/// Mail sends limited per recipient (silently: no answer may tell whether a message went) and
/// requests that may send one limited per client address (429). Build once at cold start.
pub struct MailThrottle {
    config: MailLimitConfig,
    attempts: Arc<dyn MailAttempts>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MailThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailThrottle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MailThrottle {
    pub fn new(config: MailLimitConfig, attempts: Arc<dyn MailAttempts>, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            attempts,
            clock,
        }
    }

    async fn reserve(&self, key: &str, limit: u32) -> Result<Result<(), u64>, crate::store::StoreError> {
        let windows = Windows(self.config.window);
        let now = self.clock.now();
        let (window, window_end) = windows.at(now);
        Ok(
            match self
                .attempts
                .reserve_mail(key, window, limit, windows.expiry(window_end))
                .await?
            {
                Reservation::Reserved { .. } => Ok(()),
                Reservation::LimitReached => Err(window_end - now),
            },
        )
    }

    /// Counts a request from `client` that may send mail, whether or not it will: at the limit,
    /// [`ApiError::TooManyRequests`] until the window ends.
    pub async fn reserve_client(&self, client: &ClientKey) -> Result<(), ApiError> {
        self.reserve(client.as_str(), self.config.max_per_client)
            .await?
            .map_err(|retry_after| {
                tracing::warn!(
                    client = client.as_str(),
                    "mail request refused: the address's limit is reached"
                );
                ApiError::TooManyRequests { retry_after }
            })
    }

    /// Counts a message to `to`: `false` at the limit, when it must not be sent (and the answer
    /// must not change).
    pub async fn reserve_recipient(&self, to: &EmailAddress) -> Result<bool, crate::store::StoreError> {
        let reserved = self
            .reserve(&recipient_key(to), self.config.max_per_recipient)
            .await?
            .is_ok();
        if !reserved {
            tracing::warn!(to = ?to, "mail not sent: the recipient's limit is reached");
        }
        Ok(reserved)
    }
}

/// The counter key of a recipient: `to/` and the base64url SHA-256 of the lowercased address, so
/// that no counter holds an address (nothing of a deleted account's address is left in them).
fn recipient_key(to: &EmailAddress) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, to.key().as_bytes());
    format!(
        "to/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// The mail limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLimitConfig {
    /// `MAIL_MAX_PER_ADDRESS`, default 3, from 1 to 100: messages to one address per window.
    pub max_per_recipient: u32,
    /// `MAIL_MAX_PER_IP`, default 20, from 1 to 100000: requests that may send mail, per client
    /// address (an IPv6 address's /64) and window.
    pub max_per_client: u32,
    /// `MAIL_WINDOW_SECONDS`, default 3600 (an hour), from 60 to 86400.
    pub window: Duration,
}

impl Default for MailLimitConfig {
    fn default() -> Self {
        Self {
            max_per_recipient: 3,
            max_per_client: 20,
            window: Duration::from_secs(3600),
        }
    }
}

impl MailLimitConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let count = |var, default: u32, max| {
            int_in_range(src, var, u64::from(default), 1, max).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        Ok(Self {
            max_per_recipient: count("MAIL_MAX_PER_ADDRESS", d.max_per_recipient, 100)?,
            max_per_client: count("MAIL_MAX_PER_IP", d.max_per_client, 100_000)?,
            window: Duration::from_secs(int_in_range(
                src,
                "MAIL_WINDOW_SECONDS",
                d.window.as_secs(),
                60,
                86_400,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_are_the_address_or_an_ipv6_addresss_64() {
        let key = |a: &str| ClientKey::of(Some(a.parse().unwrap())).as_str().to_owned();
        assert_eq!(key("203.0.113.7"), "client/203.0.113.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "client/2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:ffff::1"),
            key("2001:db8:1:2::9"),
            "one /64, one key"
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(
            key("::ffff:203.0.113.7"),
            "client/203.0.113.7",
            "IPv4-mapped is IPv4"
        );
        assert_eq!(ClientKey::of(None).as_str(), "client/unknown");
        // Never a username's key: usernames hold no '/'.
        assert!(crate::user::Username::parse(&key("203.0.113.7")).is_err());
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn login_throttle_defaults_and_bounds() {
        assert_eq!(
            LoginThrottleConfig::from_source(&source(&[])).unwrap(),
            LoginThrottleConfig::default()
        );
        let err = LoginThrottleConfig::from_source(&source(&[("LOGIN_MAX_FAILURES", "0")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOGIN_MAX_FAILURES",
                ..
            }
        ));
        let err = LoginThrottleConfig::from_source(&source(&[("LOGIN_WINDOW_SECONDS", "5")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOGIN_WINDOW_SECONDS",
                ..
            }
        ));
        let set = LoginThrottleConfig::from_source(&source(&[("LOGIN_MAX_FAILURES_PER_IP", "250")])).unwrap();
        assert_eq!(set.max_failures_per_client, 250);
        let err =
            LoginThrottleConfig::from_source(&source(&[("LOGIN_MAX_FAILURES_PER_IP", "0")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOGIN_MAX_FAILURES_PER_IP",
                ..
            }
        ));
    }

    #[test]
    fn sign_up_limit_defaults_and_bounds() {
        assert_eq!(
            SignUpLimitConfig::from_source(&source(&[])).unwrap(),
            SignUpLimitConfig::default()
        );
        let set = SignUpLimitConfig::from_source(&source(&[
            ("SIGNUP_MAX_PER_IP", "7"),
            ("SIGNUP_WINDOW_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!((set.max_per_client, set.window.as_secs()), (7, 60));
        for (var, value) in [
            ("SIGNUP_MAX_PER_IP", "0"),
            ("SIGNUP_MAX_PER_IP", "100001"),
            ("SIGNUP_WINDOW_SECONDS", "9"),
        ] {
            let err = SignUpLimitConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: v, .. } if v == var),
                "{var}={value}"
            );
        }
    }
}
