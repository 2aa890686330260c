//! User enumeration by timing: the median `POST /token` time for an unknown username against
//! that of a known username with a wrong password, interleaved in one run so both see the same
//! machine noise. Release build, OWASP argon2 parameters, the embedded DynamoDB (both paths make the
//! same single store lookup). Prints both medians, their ratio, and PASS when within 10%.
//!
//! cargo bench -p benchmarks --bench enumeration

// Bench code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The in-process apps' calls nest many handler futures (and the round-trip counting around them).
#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use integration_tests::{Apps, login, sign_up};
use shared::password::PasswordHasher;
use shared::throttle::LoginThrottle;
use shared::{LoginThrottleConfig, PasswordConfig};

const ROUNDS: usize = 150;

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut apps = Apps::embedded().await;
        let owasp = PasswordHasher::new(&PasswordConfig::default()).unwrap();
        apps.users.hasher = owasp.clone();
        apps.token.hasher = owasp;
        // The limit would answer 429 after 5 failures; this measures the password path.
        let generous = LoginThrottleConfig {
            max_failures: 1000,
            max_failures_per_client: 100_000,
            window: Duration::from_secs(86_400),
        };
        apps.token.throttle = LoginThrottle::new(generous, apps.store.clone(), apps.clock.clone());
        assert_eq!(
            sign_up(&apps, "alice", "correct horse battery staple")
                .await
                .status,
            201
        );

        // Warm up both paths.
        for _ in 0..5 {
            login(&apps, "alice", "wrong password").await;
            login(&apps, "nobody", "wrong password").await;
        }
        let (mut wrong, mut unknown) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
        for i in 0..ROUNDS {
            let unknown_name = format!("nobody{i}");
            let started = Instant::now();
            assert_eq!(login(&apps, "alice", "wrong password").await.status, 401);
            wrong.push(started.elapsed());
            let started = Instant::now();
            assert_eq!(login(&apps, &unknown_name, "wrong password").await.status, 401);
            unknown.push(started.elapsed());
        }
        let (wrong, unknown) = (median(&mut wrong), median(&mut unknown));
        let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
        println!(
            "login, wrong password (known user): median {:>8.2} ms",
            wrong.as_secs_f64() * 1e3
        );
        println!(
            "login, unknown user:                median {:>8.2} ms",
            unknown.as_secs_f64() * 1e3
        );
        let verdict = if (ratio - 1.0).abs() <= 0.10 {
            "PASS"
        } else {
            "FAIL"
        };
        println!("{verdict} unknown / wrong = {ratio:.3} (budget: within 10%, {ROUNDS} interleaved rounds)");
    });
}
