//! Password work with the OWASP default parameters (argon2id, m = 19456 KiB, t = 2, p = 1):
//! hash, verify, a whole login through `token::handle` (on a store whose HTTP client answers at
//! once: the login's own work, no store's time) beside a bare argon2 verify of the same PHC
//! string, and what building a `PasswordHasher` costs at cold start.
//!
//! After the criterion groups, the login and the bare verify are also timed in alternation
//! (`LOGIN_PAIRS`, default 30 pairs) so their ratio comes from the same moments of a noisy machine;
//! the ratio is printed, and written to `$BENCH_OUT_DIR/login-ratio.json` when that is set.

// Benchmark set-up: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use argon2::password_hash::PasswordVerifier as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};
use benchmarks::{PASSWORD, Stats, USERNAME, interleaved, ms};
use criterion::{BatchSize, Criterion, SamplingMode};
use integration_tests::dynamo::{self, Table};
use integration_tests::faults::{self, Faults};
use integration_tests::{Apps, FunctionStores, fixture_json, request, with_body};
use lambda_http::Request;
use shared::password::{Check, PasswordHasher};
use shared::user::Password;
use shared::{PasswordConfig, SessionConfig};

struct Setup {
    rt: tokio::runtime::Runtime,
    hasher: PasswordHasher,
    apps: Apps,
    phc: String,
    unknown_users: AtomicUsize,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let hasher = PasswordHasher::new(&PasswordConfig::default()).unwrap();
    let phc = rt.block_on(hasher.hash(password())).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    // The test apps with the OWASP hasher in place of the cheap one, on a store whose HTTP client
    // answers at once, as DynamoDB would for this user (its item; a first attempt counted; every
    // write done), so that what is timed is the login's own work: the embedded emulator's SQLite
    // would run on the same pinned core and add its time to the login's, not argon2's.
    let user = serde_json::json!({"Item": {
        "pk": {"S": format!("USER#{USERNAME}")},
        "user_id": {"S": benchmarks::USER_ID},
        "username": {"S": USERNAME},
        "password_hash": {"S": phc},
        "created_at": {"N": "1767225600"},
    }})
    .to_string();
    let key = format!("USER#{USERNAME}");
    let client = faults::canned(move |operation, body| match operation {
        "GetItem" if body["Key"]["pk"]["S"] == key.as_str() => user.clone(),
        "UpdateItem" => r#"{"Attributes":{"attempts":{"N":"1"}}}"#.into(),
        _ => "{}".into(),
    });
    let table = rt.block_on(Table::fresh(dynamo::embedded_endpoint()));
    let store = Arc::new(rt.block_on(table.store("http://127.0.0.1:9", client)));
    let functions = FunctionStores::shared(&store);
    let mut apps = Apps::with_sessions(store, functions, table, Faults::none(), SessionConfig::default());
    apps.token.hasher = hasher.clone();
    Setup {
        rt,
        hasher,
        apps,
        phc,
        unknown_users: AtomicUsize::new(0),
    }
}

impl Setup {
    /// A login for a user that does not exist, a new name each time so that no failure
    /// counting (brute-force throttling) ever short-cuts the password check.
    fn unknown_user_request(&self) -> Request {
        let n = self.unknown_users.fetch_add(1, Ordering::Relaxed);
        login_request(&format!("nobody{n}"))
    }
}

fn password() -> Password {
    Password::parse_existing(PASSWORD.into()).unwrap()
}

fn login_request(username: &str) -> Request {
    let body = serde_json::json!({"username": username, "password": PASSWORD}).to_string();
    request(&with_body(fixture_json("token/valid.json", ""), &body))
}

fn bare_verify(phc: &str) -> bool {
    let hash = PasswordHash::new(phc).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
        .verify_password(black_box(PASSWORD.as_bytes()), &hash)
        .is_ok()
}

fn benches(c: &mut Criterion, s: &Setup) {
    let login_status =
        s.rt.block_on(token::handle(&s.apps.token, login_request(USERNAME)))
            .unwrap()
            .status();
    assert_eq!(login_status, 200, "the benchmark login must succeed");
    assert!(bare_verify(&s.phc));

    let mut group = c.benchmark_group("password");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group.bench_function("hash_owasp", |b| {
        b.to_async(&s.rt).iter(|| s.hasher.hash(password()))
    });
    group.bench_function("verify_owasp", |b| {
        b.to_async(&s.rt).iter(|| async {
            let check = s.hasher.verify(password(), Some(s.phc.clone())).await.unwrap();
            assert_eq!(check, Check::Right { rehash: None });
        })
    });
    // Paid by every token and users cold start: building the hasher, which hashes nothing.
    group.bench_function("hasher_new_owasp", |b| {
        b.iter(|| PasswordHasher::new(black_box(&PasswordConfig::default())).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("login");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group.bench_function("token_handle_owasp", |b| {
        b.to_async(&s.rt).iter_batched(
            || login_request(USERNAME),
            |req| async { token::handle(&s.apps.token, req).await.unwrap() },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("token_handle_unknown_user_owasp", |b| {
        b.to_async(&s.rt).iter_batched(
            || s.unknown_user_request(),
            |req| async { token::handle(&s.apps.token, req).await.unwrap() },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("argon2_verify_bare_owasp", |b| {
        b.iter(|| assert!(bare_verify(&s.phc)))
    });
    group.finish();
}

/// Login and bare verify in alternation, so both see the same machine; the first two pairs warm
/// caches and the blocking thread pool.
fn side_by_side(s: &Setup, pairs: usize) -> (Stats, Stats) {
    interleaved(
        pairs,
        2,
        || {
            let req = login_request(USERNAME);
            let start = Instant::now();
            let response = s.rt.block_on(token::handle(&s.apps.token, req)).unwrap();
            let elapsed = start.elapsed();
            assert_eq!(response.status(), 200);
            elapsed
        },
        || {
            let start = Instant::now();
            assert!(bare_verify(&s.phc));
            start.elapsed()
        },
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs each bench once in test mode: skip the long comparison then.
    let test_mode = args.iter().any(|a| a == "--test");
    // From the environment: criterion refuses command-line arguments it does not know.
    let pairs = std::env::var("LOGIN_PAIRS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let s = setup();
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion, &s);
    criterion.final_summary();
    if test_mode {
        return;
    }

    let (login, bare) = side_by_side(&s, pairs);
    let ratio = login.median.as_secs_f64() / bare.median.as_secs_f64();
    println!(
        "login vs bare argon2 verify, {pairs} interleaved pairs: login median {:.2} ms, bare verify median {:.2} ms, ratio {ratio:.3}",
        ms(login.median),
        ms(bare.median),
    );
    if let Ok(dir) = std::env::var("BENCH_OUT_DIR") {
        let report = serde_json::json!({
            "pairs": pairs,
            "login_median_ms": ms(login.median),
            "login_p90_ms": ms(login.p90),
            "bare_verify_median_ms": ms(bare.median),
            "bare_verify_p90_ms": ms(bare.p90),
            "ratio": ratio,
        });
        let path = std::path::Path::new(&dir).join("login-ratio.json");
        std::fs::write(&path, report.to_string())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
