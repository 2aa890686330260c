//! Per-request costs on the DynamoDB emulator, each timed in alternation with its floor (what the
//! request cannot avoid: its store calls), so that each ratio comes from the same moments of a
//! noisy machine:
//!
//! - **refresh**: `token::handle` of `events/token/refresh-body.json` with a fresh refresh token,
//!   on the DynamoDB store, beside the two store calls a refresh cannot do without, made
//!   directly on the same store for another fresh token: the strongly consistent read of the
//!   token's record (`find_refresh`, a `GetItem`) and the conditional write that rotates it
//!   (`rotate`, one `TransactWriteItems`: the token marked used if unused, its successor
//!   stored, the session touched if not revoked, the user's epoch checked);
//! - **protected**: `protected::handle` of `events/protected/authorizer-context.json` (behind the
//!   authorizer, as deployed: the verdict names the bench's user and session), beside the two reads
//!   it cannot do without, made at once: strongly consistent `GetItem`s of the same user item and
//!   of the token's session.
//!
//! Needs `STORE_BENCH_ENDPOINT` (a DynamoDB endpoint on 127.0.0.1) and `STORE_BENCH_TABLE` (a
//! table made from template.yaml): `./dev load`, which `./scripts/bench.sh` runs, sets both
//! against its emulator. Without them it says so and exits 0 (it is not a test); bench.sh fails
//! when its output is missing. `STORE_PAIRS` pairs of each (default 100); the medians and ratios
//! are printed and written to `$BENCH_OUT_DIR/store-ratio.json`.

// Benchmark set-up: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The in-process apps' calls nest many handler futures (and the round-trip counting around them).
#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use benchmarks::{ISSUER, PASSWORD, USERNAME, interleaved, ms};
use integration_tests::{Apps, body_json, fixture, sign_up};
use shared::StoreConfig;
use shared::Subject;
use shared::session::{RefreshToken, Started};
use shared::store::dynamodb::{DynamoUserStore, PARTITION_KEY, SESSION_PREFIX, USER_PREFIX};
use shared::store::tls::{self, ProxyConfig, TrustedRoots};
use shared::store::{RotateOutcome, SessionStore as _};
use shared::user::Username;

struct Bench {
    rt: tokio::runtime::Runtime,
    apps: Apps,
    client: aws_sdk_dynamodb::Client,
    table: String,
    user_id: String,
    username: String,
    username_key: String,
}

fn setup(endpoint: &str, table: &str) -> Bench {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sdk = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(tls::http_client(TrustedRoots::Amazon, ProxyConfig::disabled()))
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "bench",
            ))
            .load(),
    );
    // Longer than the functions' timeouts: the emulator's transactions slow down as its table
    // grows, and a retried rotation would find its token used. This measures costs, not timeouts.
    let config = StoreConfig {
        table: table.into(),
        connect_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(10),
    };
    // The floor's client: the store's settings, the store's timeouts.
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .read_timeout(config.attempt_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .operation_timeout(config.operation_timeout)
                    .build(),
            )
            .build(),
    );
    let table_handle = rt.block_on(integration_tests::dynamo::Table::named(endpoint, table.into()));
    let apps = Apps::with_store(DynamoUserStore::new(&sdk, &config), table_handle);
    // A user of its own per run: the emulator may outlive one run of this bench.
    let username = format!("{USERNAME}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let created = rt.block_on(sign_up(&apps, &username, PASSWORD));
    assert_eq!(created.status, 201, "{created:?}");
    Bench {
        user_id: created.body["id"].as_str().unwrap().to_owned(),
        username_key: Username::parse(&username).unwrap().key(),
        username,
        rt,
        apps,
        client,
        table: table.into(),
    }
}

impl Bench {
    /// One strongly consistent read of the user's item, as `find_profile` reads it.
    async fn read(&self) {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                PARTITION_KEY,
                AttributeValue::S(format!("{USER_PREFIX}{}", self.username_key)),
            )
            .projection_expression("user_id, username, epoch")
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert!(output.item.is_some());
    }

    /// The user's item and the session's, read at once, as `find_caller` reads them (the
    /// protected route's floor since it checks the session too).
    async fn reads(&self, session_id: &str) {
        let session = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                PARTITION_KEY,
                AttributeValue::S(format!("{SESSION_PREFIX}{session_id}")),
            )
            .projection_expression("pk, revoked_at, expires_at")
            .consistent_read(true)
            .send();
        let ((), session) = tokio::join!(self.read(), session);
        assert!(session.unwrap().item.is_some());
    }

    /// A new session of the user, as a login starts it (outside every timing).
    fn session(&self) -> Started {
        self.rt
            .block_on(self.apps.token.sessions.start(
                shared::session::SessionUser {
                    user_id: &self.user_id,
                    username: &self.username,
                    username_key: &self.username_key,
                    epoch: 0,
                },
                &shared::events::Client::unknown(),
                shared::events::EventKind::LoginSucceeded(shared::events::LoginMethod::Password),
            ))
            .unwrap()
    }

    /// The first refresh token of a new session.
    fn fresh_token(&self) -> RefreshToken {
        self.session().token
    }
}

/// The time `run` takes on an input `make` made outside the timing.
fn timed<I>(b: &Bench, make: impl FnOnce() -> I, run: impl AsyncFnOnce(I)) -> Duration {
    let input = make();
    let start = Instant::now();
    b.rt.block_on(run(input));
    start.elapsed()
}

fn main() {
    // `cargo test --benches` runs each bench once in test mode; this one has nothing to check
    // without its emulator.
    let (Ok(endpoint), Ok(table)) = (
        std::env::var("STORE_BENCH_ENDPOINT"),
        std::env::var("STORE_BENCH_TABLE"),
    ) else {
        println!(
            "store: not run (needs STORE_BENCH_ENDPOINT and STORE_BENCH_TABLE; ./scripts/bench.sh sets them)"
        );
        return;
    };
    let pairs = std::env::var("STORE_PAIRS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let b = setup(&endpoint, &table);

    let refresh_template = fixture("token/refresh-body.json", "${TOKEN}");
    let (refresh, refresh_floor) = interleaved(
        pairs,
        2,
        || {
            timed(
                &b,
                || {
                    let token = b.fresh_token();
                    lambda_http::request::from_str(&refresh_template.replace("${TOKEN}", token.expose()))
                        .unwrap()
                },
                async |req| {
                    let response = token::handle(&b.apps.token, req).await.unwrap();
                    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
                },
            )
        },
        || {
            timed(
                &b,
                || {
                    let token = b.fresh_token();
                    let next = RefreshToken::generate();
                    (token.hash(), next.hash(), token.seal(&next))
                },
                async |(old, new, sealed)| {
                    let store = &b.apps.store;
                    let record = store
                        .find_refresh(&old)
                        .await
                        .unwrap()
                        .expect("the token's record");
                    let now = record.started_at;
                    let outcome = store
                        .rotate(&old, &record, &new, &sealed, now, now + 30 * 24 * 3600, None)
                        .await
                        .unwrap();
                    assert!(matches!(outcome, RotateOutcome::Rotated), "{outcome:?}");
                },
            )
        },
    );

    let session_id = b.session().session_id;
    // As deployed: behind the authorizer, whose verdict (the user, the session) API Gateway puts
    // in requestContext.authorizer, so the function reads the store and verifies no signature.
    let protected_event = fixture(
        "protected/authorizer-context.json",
        &b.apps
            .issuer
            .issue_access(
                ISSUER,
                Subject {
                    user_id: &b.user_id,
                    username: &b.username,
                    epoch: 0,
                    session_id: &session_id,
                },
            )
            .token,
    );
    let mut protected_event: serde_json::Value = serde_json::from_str(&protected_event).unwrap();
    let verdict = &mut protected_event["requestContext"]["authorizer"];
    verdict["principalId"] = b.user_id.clone().into();
    verdict["sub"] = b.user_id.clone().into();
    verdict["username"] = b.username.clone().into();
    verdict["sid"] = session_id.clone().into();
    let protected_event = protected_event.to_string();
    let (protected, protected_floor) = interleaved(
        pairs,
        2,
        || {
            timed(
                &b,
                || lambda_http::request::from_str(&protected_event).unwrap(),
                async |req| {
                    let response = protected::handle(&b.apps.protected, req).await.unwrap();
                    assert_eq!(response.status(), 200);
                },
            )
        },
        || timed(&b, || (), async |()| b.reads(&session_id).await),
    );

    let refresh_ratio = refresh.median.as_secs_f64() / refresh_floor.median.as_secs_f64();
    let protected_ratio = protected.median.as_secs_f64() / protected_floor.median.as_secs_f64();
    println!(
        "on the emulator, {pairs} interleaved pairs each: refresh {:.2} ms vs its read and conditional write {:.2} ms ({refresh_ratio:.2}x); \
         protected {:.2} ms vs one read {:.2} ms ({protected_ratio:.2}x)",
        ms(refresh.median),
        ms(refresh_floor.median),
        ms(protected.median),
        ms(protected_floor.median),
    );
    if let Ok(dir) = std::env::var("BENCH_OUT_DIR") {
        let report = serde_json::json!({
            "pairs": pairs,
            "refresh_median_ms": ms(refresh.median),
            "refresh_p90_ms": ms(refresh.p90),
            "refresh_floor_median_ms": ms(refresh_floor.median),
            "refresh_ratio": refresh_ratio,
            "protected_median_ms": ms(protected.median),
            "protected_p90_ms": ms(protected.p90),
            "protected_floor_median_ms": ms(protected_floor.median),
            "protected_ratio": protected_ratio,
        });
        let path = std::path::Path::new(&dir).join("store-ratio.json");
        std::fs::write(&path, report.to_string())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
