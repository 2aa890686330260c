//! Brute-force protection of `POST /token`. Each login attempt for a username (existing or not)
//! is reserved before its password is checked, with one conditional write that succeeds only
//! while fewer than `LOGIN_MAX_FAILURES` attempts are counted in the current fixed window
//! (`window = now / LOGIN_WINDOW_SECONDS`). So however many requests arrive at once, from however
//! many function instances, at most that many passwords are checked per window; the rest get
//! 429 with `Retry-After` (the rest of the window). A right password clears the count.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::LoginThrottleConfig;
use crate::error::ApiError;
use crate::store::{LoginAttempts, Reservation};

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
    username_key: String,
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

    /// The window `now` falls in, and the second it ends.
    fn window(&self, now: u64) -> (u64, u64) {
        let length = self.config.window.as_secs().max(1);
        let window = now / length;
        (window, (window + 1) * length)
    }

    /// The current window's number, as the counters are keyed.
    pub fn current_window(&self) -> u64 {
        self.window(self.clock.now()).0
    }

    /// Reserves an attempt for `username_key` before its password is checked. At the limit:
    /// [`ApiError::TooManyAttempts`] until the window ends. If the reservation cannot be written:
    /// [`ApiError::StoreUnavailable`], a 503 with no password checked (the limit fails closed).
    pub async fn reserve(&self, username_key: &str) -> Result<Attempt, ApiError> {
        let now = self.clock.now();
        let (window, window_end) = self.window(now);
        // The counter outlives its window by one more, then the table's TTL deletes it.
        let expires_at = window_end + self.config.window.as_secs();
        match self
            .attempts
            .reserve(username_key, window, self.config.max_failures, expires_at)
            .await?
        {
            Reservation::Reserved { attempt } => Ok(Attempt {
                username_key: username_key.to_owned(),
                window,
                number: attempt,
            }),
            Reservation::LimitReached => {
                tracing::warn!("login refused: the attempt limit of this window is reached");
                Err(ApiError::TooManyAttempts {
                    retry_after: window_end - now,
                })
            }
        }
    }

    /// After a right password: forgets the window's count. Best effort: a failed write is
    /// logged, and the login still succeeds (the count then lapses with its window).
    pub async fn succeeded(&self, attempt: Attempt) {
        if let Err(error) = self.attempts.clear(&attempt.username_key, attempt.window).await {
            tracing::warn!(error = %crate::http::error_chain(&error), "could not clear the login attempts");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::memory::{Calls, MemoryUserStore};
    use crate::test_util::FixedClock;

    /// Noon of a day: windows of an hour, the limit at 3.
    const NOON: u64 = 1_800_000_000 - 1_800_000_000 % 86_400 + 43_200;

    fn throttle(store: &Arc<MemoryUserStore>, clock: &Arc<FixedClock>) -> LoginThrottle {
        let config = LoginThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(3600),
        };
        LoginThrottle::new(config, store.clone(), clock.clone())
    }

    fn setup() -> (Arc<MemoryUserStore>, Arc<FixedClock>, LoginThrottle) {
        let store = Arc::new(MemoryUserStore::new());
        let clock = Arc::new(FixedClock::at(NOON));
        let throttle = throttle(&store, &clock);
        (store, clock, throttle)
    }

    #[tokio::test]
    async fn the_limit_of_a_window_is_reserved_then_refused_with_the_rest_of_the_window() {
        let (_, clock, throttle) = setup();
        for expected in 1..=3 {
            assert_eq!(throttle.reserve("alice").await.unwrap().number, expected);
        }
        clock.advance(600);
        let refused = throttle.reserve("alice").await.unwrap_err();
        assert!(
            matches!(refused, ApiError::TooManyAttempts { retry_after: 3000 }),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_new_window_starts_a_new_count() {
        let (_, clock, throttle) = setup();
        for _ in 0..3 {
            let _ = throttle.reserve("alice").await.unwrap();
        }
        clock.advance(3600);
        assert_eq!(throttle.reserve("alice").await.unwrap().number, 1);
    }

    #[tokio::test]
    async fn retry_after_counts_down_to_the_end_of_the_window_at_its_last_second() {
        let (_, clock, throttle) = setup();
        clock.set(NOON + 3599);
        for _ in 0..3 {
            let _ = throttle.reserve("alice").await.unwrap();
        }
        let refused = throttle.reserve("alice").await.unwrap_err();
        assert!(
            matches!(refused, ApiError::TooManyAttempts { retry_after: 1 }),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn success_clears_the_count_and_names_are_counted_apart() {
        let (store, _, throttle) = setup();
        let window = throttle.current_window();
        let _ = throttle.reserve("alice").await.unwrap();
        let _ = throttle.reserve("bob").await.unwrap();
        let attempt = throttle.reserve("alice").await.unwrap();
        assert_eq!(store.attempts("alice", window), 2);
        throttle.succeeded(attempt).await;
        assert_eq!(store.attempts("alice", window), 0);
        assert_eq!(store.attempts("bob", window), 1);
    }

    #[tokio::test]
    async fn a_reservation_that_cannot_be_written_is_a_503() {
        let (store, _, throttle) = setup();
        store.set_failing(Calls::Reserve, true);
        let err = throttle.reserve("alice").await.unwrap_err();
        assert_eq!(err.status(), 503);
    }

    #[tokio::test]
    async fn a_clear_that_cannot_be_written_is_no_error() {
        let (store, _, throttle) = setup();
        let window = throttle.current_window();
        let attempt = throttle.reserve("alice").await.unwrap();
        store.set_failing(Calls::Clear, true);
        throttle.succeeded(attempt).await;
        assert_eq!(
            store.attempts("alice", window),
            1,
            "still counted, lapses with the window"
        );
    }
}
