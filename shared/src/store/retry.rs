//! Retrying DynamoDB's transaction conflicts, which the SDK does not retry.
//!
//! A plain write to an item that an in-flight transaction holds fails with
//! `TransactionConflictException`, and a transaction that meets another write on one of its items
//! is cancelled with the reason `TransactionConflict` ("Transaction conflict handling in
//! DynamoDB", DynamoDB Developer Guide; "Error handling with DynamoDB" lists
//! `TransactionConflictException` as "OK to retry? Yes"). Neither is in the SDK's retry
//! classification (throttling and transient errors only). Here the refresh's transaction holds
//! the user's and the session's items for a moment, so "log out everywhere", a password change,
//! the rehash and a logout can meet it: each retries a bounded number of times, with full
//! jitter, and the whole operation, retries included, stays within the operation timeout.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use ring::rand::{SecureRandom, SystemRandom};

/// The retry policy for transaction conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictRetry {
    /// Tries in all, the first included (default 4).
    pub attempts: u32,
    /// The bound of the first backoff; each retry doubles it, up to `cap` (default 20 ms).
    pub base: Duration,
    /// The largest backoff bound (default 200 ms).
    pub cap: Duration,
    /// The whole operation, every try and backoff included, ends within this: the store's
    /// operation timeout.
    pub budget: Duration,
}

impl ConflictRetry {
    /// The default policy within `budget`.
    pub fn within(budget: Duration) -> Self {
        Self {
            attempts: 4,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            budget,
        }
    }

    /// Sends `request` with `send`, and again (a clone) after a random backoff while
    /// `conflicted` says its error is a transaction conflict, up to [`Self::attempts`] tries.
    /// An operation that outlasts [`Self::budget`] ends as a timeout error.
    pub async fn retry<B, T, E, R, F, Fut>(
        &self,
        request: B,
        send: F,
        conflicted: fn(&SdkError<E, R>) -> bool,
    ) -> Result<T, SdkError<E, R>>
    where
        B: Clone,
        F: Fn(B) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
    {
        let tries = async {
            let mut attempt = 1;
            loop {
                match send(request.clone()).await {
                    Err(err) if attempt < self.attempts && conflicted(&err) => {
                        let delay = self.backoff(attempt);
                        tracing::info!(
                            attempt,
                            delay_ms = delay.as_millis() as u64,
                            "DynamoDB transaction conflict: retrying"
                        );
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    result => return result,
                }
            }
        };
        match tokio::time::timeout(self.budget, tries).await {
            Ok(result) => result,
            Err(_) => Err(SdkError::timeout_error(
                "the operation, with its retries of transaction conflicts, outlasted the operation timeout",
            )),
        }
    }

    /// The pause after try `attempt` (from 1), with full jitter: a random time up to
    /// `min(cap, base × 2^(attempt - 1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let bound = self.base.saturating_mul(1 << (attempt - 1).min(16)).min(self.cap);
        let mut bytes = [0u8; 4];
        // Without OS randomness the backoff is the bound itself: still bounded, only not spread.
        let fraction = match SystemRandom::new().fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        bound.mul_f64(fraction)
    }
}

/// A plain write's error says an in-flight transaction holds the item.
pub fn write_conflicted<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("TransactionConflictException"))
}

/// Whether the reasons of a cancelled transaction (`None` for an item that did not fail) are
/// conflicts only: no condition failed, so the same transaction may succeed when tried again.
pub fn only_conflicts<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    let mut conflict = false;
    for code in codes {
        match code {
            None | Some("None") => {}
            Some("TransactionConflict") => conflict = true,
            Some(_) => return false,
        }
    }
    conflict
}
