//! The login and sign-up limits ([`shared::throttle`]) over the real store on a fresh table of
//! the embedded DynamoDB: windows, `Retry-After`, per name and per address, and a store that
//! cannot be written (faults injected at the SDK's client).

use std::sync::Arc;
use std::time::Duration;

use integration_tests::Apps;
use integration_tests::faults::Fault;
use integration_tests::test_util::FixedClock;
use shared::error::ApiError;
use shared::store::dynamodb::DynamoUserStore;
use shared::throttle::{ClientKey, LoginThrottle, SignUpThrottle};
use shared::{LoginThrottleConfig, SignUpLimitConfig};

/// Noon of a day: windows of an hour, the limit at 3.
const NOON: u64 = 1_800_000_000 - 1_800_000_000 % 86_400 + 43_200;

fn throttle(store: &Arc<DynamoUserStore>, clock: &Arc<FixedClock>) -> LoginThrottle {
    let config = LoginThrottleConfig {
        max_failures: 3,
        max_failures_per_client: 10,
        window: Duration::from_secs(3600),
    };
    LoginThrottle::new(config, store.clone(), clock.clone())
}

/// The apps on a fresh table (for its store, counters and faults), and a throttle over that
/// store on a clock standing at [`NOON`].
async fn setup() -> (Apps, Arc<FixedClock>, LoginThrottle) {
    let apps = Apps::embedded().await;
    let clock = Arc::new(FixedClock::at(NOON));
    let throttle = throttle(&apps.store, &clock);
    (apps, clock, throttle)
}

#[tokio::test]
async fn the_limit_of_a_window_is_reserved_then_refused_with_the_rest_of_the_window() {
    let (_, clock, throttle) = setup().await;
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
    let (_, clock, throttle) = setup().await;
    for _ in 0..3 {
        let _ = throttle.reserve("alice").await.unwrap();
    }
    clock.advance(3600);
    assert_eq!(throttle.reserve("alice").await.unwrap().number, 1);
}

#[tokio::test]
async fn retry_after_counts_down_to_the_end_of_the_window_at_its_last_second() {
    let (_, clock, throttle) = setup().await;
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
    let (apps, _, throttle) = setup().await;
    let window = throttle.current_window();
    let _ = throttle.reserve("alice").await.unwrap();
    let _ = throttle.reserve("bob").await.unwrap();
    let attempt = throttle.reserve("alice").await.unwrap();
    assert_eq!(apps.attempts("alice", window).await, 2);
    throttle.succeeded(attempt).await;
    assert_eq!(apps.attempts("alice", window).await, 0);
    assert_eq!(apps.attempts("bob", window).await, 1);
}

#[tokio::test]
async fn a_reservation_that_cannot_be_written_is_a_503() {
    let (apps, _, throttle) = setup().await;
    apps.faults.arm("UpdateItem", usize::MAX, Fault::Refused);
    let err = throttle.reserve("alice").await.unwrap_err();
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn a_clear_that_cannot_be_written_is_no_error() {
    let (apps, _, throttle) = setup().await;
    let window = throttle.current_window();
    let attempt = throttle.reserve("alice").await.unwrap();
    apps.faults.arm("DeleteItem", usize::MAX, Fault::Refused);
    throttle.succeeded(attempt).await;
    assert_eq!(
        apps.attempts("alice", window).await,
        1,
        "still counted, lapses with the window"
    );
}

#[tokio::test]
async fn an_address_counts_failures_only_a_success_takes_its_attempt_back() {
    let (apps, _, throttle) = setup().await;
    let window = throttle.current_window();
    let client = ClientKey::of(Some("198.51.100.1".parse().unwrap()));
    for expected in 1..=4 {
        let attempt = throttle.reserve_client(&client).await.unwrap();
        assert_eq!(attempt.number, expected);
    }
    let right = throttle.reserve_client(&client).await.unwrap();
    throttle.succeeded(right).await;
    assert_eq!(apps.attempts(client.as_str(), window).await, 4);
    for _ in 5..=10 {
        let _ = throttle.reserve_client(&client).await.unwrap();
    }
    let refused = throttle.reserve_client(&client).await.unwrap_err();
    assert!(matches!(refused, ApiError::TooManyAttempts { .. }), "{refused:?}");
    // Another address, and any name, are counted apart.
    let other = ClientKey::of(Some("198.51.100.2".parse().unwrap()));
    assert_eq!(throttle.reserve_client(&other).await.unwrap().number, 1);
    assert_eq!(throttle.reserve("alice").await.unwrap().number, 1);
}

#[tokio::test]
async fn sign_ups_of_an_address_are_limited_per_window_with_the_rest_of_it() {
    let apps = Apps::embedded().await;
    let clock = Arc::new(FixedClock::at(NOON + 100));
    let config = SignUpLimitConfig {
        max_per_client: 2,
        window: Duration::from_secs(3600),
    };
    let throttle = SignUpThrottle::new(config, apps.store.clone(), clock.clone());
    let client = ClientKey::of(Some("192.0.2.9".parse().unwrap()));
    throttle.reserve(&client).await.unwrap();
    throttle.reserve(&client).await.unwrap();
    let refused = throttle.reserve(&client).await.unwrap_err();
    assert!(
        matches!(refused, ApiError::TooManySignUps { retry_after: 3500 }),
        "{refused:?}"
    );
    throttle
        .reserve(&ClientKey::of(Some("192.0.2.10".parse().unwrap())))
        .await
        .unwrap();
    clock.advance(3500);
    throttle.reserve(&client).await.unwrap();
    apps.faults.arm("UpdateItem", usize::MAX, Fault::Refused);
    assert_eq!(throttle.reserve(&client).await.unwrap_err().status(), 503);
}
