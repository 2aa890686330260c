//! A soak of the local set-up a developer runs: 1,000 sequential requests of a realistic mix
//! (sign-up, login, wrong password, the protected route) through the local API that `./dev
//! test` starts exactly as `./dev run` does. Every request must be answered, none with a 5xx or
//! an unexpected status, and each well within API Gateway's 29 s integration limit.

use std::time::{Duration, Instant};

use integration_tests::test_util::PASSWORD;
use integration_tests::{Answer, Http, HttpApi, Layout, login, protected, service_env, sign_up, unique_name};

const REQUESTS: usize = 1_000;
/// Far below API Gateway's 29 s: a request that takes this long has hung on something.
const SLOWEST_ALLOWED: Duration = Duration::from_secs(10);

/// Requests sent so far, and the slowest answer with what it answered.
#[derive(Default)]
struct Tally {
    sent: usize,
    slowest: (Duration, String),
}

impl Tally {
    fn record(&mut self, what: String, started: Instant, answer: &Answer, expected: u16) {
        let took = started.elapsed();
        assert_eq!(
            answer.status, expected,
            "request {}, {what}: {answer:?}",
            self.sent
        );
        if took > self.slowest.0 {
            self.slowest = (took, what);
        }
        self.sent += 1;
    }
}

#[tokio::test]
#[ignore = "needs ./dev test (local API)"]
async fn a_thousand_sequential_mixed_requests_are_all_answered_quickly_and_without_5xx() {
    // The client gives up at API Gateway's limit, so a hang fails here instead of stalling.
    let api = HttpApi {
        base: service_env("TEST_API_ENDPOINT"),
        layout: Layout::Gateway,
        http: Http::new(Duration::from_secs(29)),
    };
    let mut tally = Tally::default();
    while tally.sent < REQUESTS {
        let name = unique_name("soak");
        let started = Instant::now();
        let created = sign_up(&api, &name, PASSWORD).await;
        tally.record(format!("sign-up {name}"), started, &created, 201);

        let started = Instant::now();
        let token = login(&api, &name, PASSWORD).await;
        tally.record(format!("login {name}"), started, &token, 200);
        let bearer = format!("Bearer {}", token.body["token"].as_str().unwrap());

        let started = Instant::now();
        let wrong = login(&api, &name, "not the password").await;
        tally.record(format!("wrong password {name}"), started, &wrong, 401);

        for _ in 0..2 {
            let started = Instant::now();
            let me = protected(&api, Some(&bearer)).await;
            tally.record(format!("protected {name}"), started, &me, 200);
        }
    }
    let (sent, slowest) = (tally.sent, tally.slowest);
    assert!(
        slowest.0 < SLOWEST_ALLOWED,
        "the slowest answer took {:?} ({})",
        slowest.0,
        slowest.1
    );
    let report = format!(
        "soak: {sent} sequential requests through the local API, none unanswered or 5xx; slowest {:.0} ms ({})\n",
        slowest.0.as_secs_f64() * 1e3,
        slowest.1
    );
    if let Ok(path) = std::env::var("TEST_SOAK_REPORT") {
        std::fs::write(path, &report).unwrap();
    }
    eprint!("{report}");
}
