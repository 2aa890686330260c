//! Per-request work, in process: token issue and verify (beside ring's bare P-256 verify of the
//! same signature), the authorizer end to end (event JSON in, policy JSON out), the protected
//! route and a session refresh (the handler, and the session logic alone) on the embedded DynamoDB (Dynoxide, over HTTP on 127.0.0.1).
//! `cargo bench -p benchmarks --bench requests`; `./scripts/bench.sh` checks the budgets.

// Benchmark set-up: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequest;
use benchmarks::{ISSUER, USERNAME, mint_tokens, signed_parts, verifier};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use integration_tests::{Apps, body_json, fixture, login, sign_up};
use lambda_runtime::{Context, LambdaEvent};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use shared::session::RefreshToken;
use shared::user::Username;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn tokens(c: &mut Criterion) {
    let issuer = shared::test_util::issuer();
    let verifier = verifier();
    let token = mint_tokens(1).pop().unwrap();
    let (message, signature) = signed_parts(&token).unwrap();
    let point = benchmarks::public_key_point();
    let mut group = c.benchmark_group("token");
    group.bench_function("issue", |b| {
        b.iter(|| {
            issuer.issue_access(
                ISSUER,
                shared::test_util::subject(black_box(benchmarks::USER_ID), black_box(USERNAME)),
            )
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| verifier.verify_access(black_box(&token), ISSUER).unwrap())
    });
    // The floor: ring's P-256 verify of the same message and signature, nothing else.
    group.bench_function("p256_verify_bare", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&point))
                .verify(black_box(&message), black_box(&signature))
                .unwrap()
        })
    });
    group.finish();
}

fn authorizer(c: &mut Criterion) {
    let app = authorizer::App {
        verifier: verifier(),
        issuer: shared::Issuer::Fixed(ISSUER.into()),
    };
    let token = mint_tokens(1).pop().unwrap();
    let event_json = fixture("authorizer/valid.json", &token);
    let event: ApiGatewayCustomAuthorizerRequest = serde_json::from_str(&event_json).unwrap();
    assert!(
        authorizer::authorize(&app, &event).is_ok(),
        "the fixture must be allowed"
    );
    let rt = runtime();

    let mut group = c.benchmark_group("authorizer");
    // The decision on a parsed event.
    group.bench_function("authorize", |b| {
        b.iter(|| authorizer::authorize(&app, black_box(&event)).unwrap())
    });
    // One invocation as the runtime sees it: event JSON in, handler, response JSON out.
    group.bench_function("invoke_json", |b| {
        b.to_async(&rt).iter(|| async {
            let payload: ApiGatewayCustomAuthorizerRequest =
                serde_json::from_str(black_box(&event_json)).unwrap();
            let response = authorizer::handle(&app, LambdaEvent::new(payload, Context::default()))
                .await
                .unwrap();
            serde_json::to_vec(&response).unwrap()
        })
    });
    group.finish();
}

fn protected(c: &mut Criterion) {
    let rt = runtime();
    let apps = rt.block_on(Apps::embedded());
    rt.block_on(sign_up(&apps, USERNAME, benchmarks::PASSWORD));
    // A token of a live session, as a login issues it.
    let token = rt.block_on(login(&apps, USERNAME, benchmarks::PASSWORD)).body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let event_json = fixture("protected/bearer.json", &token);
    let first = rt.block_on(protected::handle(
        &apps.protected,
        lambda_http::request::from_str(&event_json).unwrap(),
    ));
    assert_eq!(first.unwrap().status(), 200, "the fixture must reach the user");

    let mut group = c.benchmark_group("protected");
    // Event JSON parsed into a request, Bearer token verified, user looked up, 200 built.
    group.bench_function("invoke_json", |b| {
        b.to_async(&rt).iter(|| async {
            let request = lambda_http::request::from_str(black_box(&event_json)).unwrap();
            protected::handle(&apps.protected, request).await.unwrap()
        })
    });
    // The handler alone, on a request parsed outside the timing.
    group.bench_function("handle", |b| {
        b.to_async(&rt).iter_batched(
            || lambda_http::request::from_str(&event_json).unwrap(),
            |request| async { protected::handle(&apps.protected, request).await.unwrap() },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Refreshes timed per batch: each batch gets a fresh store and its tokens before the timing.
const SESSION_BATCH: u64 = 1_000;

/// The apps on a fresh table of the embedded DynamoDB holding [`USERNAME`], and a way to start one of her
/// sessions (as a login does, without the password check).
struct SessionBench {
    apps: Apps,
    user_id: String,
    username_key: String,
}

impl SessionBench {
    async fn new() -> Self {
        let apps = Apps::embedded().await;
        let created = sign_up(&apps, USERNAME, benchmarks::PASSWORD).await;
        assert_eq!(created.status, 201, "{created:?}");
        Self {
            user_id: created.body["id"].as_str().unwrap().to_owned(),
            username_key: Username::parse(USERNAME).unwrap().key(),
            apps,
        }
    }

    async fn start(&self) -> RefreshToken {
        self.apps
            .token
            .sessions
            .start(
                shared::session::SessionUser {
                    user_id: &self.user_id,
                    username: USERNAME,
                    username_key: &self.username_key,
                    epoch: 0,
                },
                &shared::events::Client::unknown(),
                shared::events::EventKind::LoginSucceeded(shared::events::LoginMethod::Password),
            )
            .await
            .unwrap()
            .token
    }
}

/// The time `routine` takes on `iters` inputs, each made by `setup` outside the timing, in
/// batches of [`SESSION_BATCH`] on a fresh [`SessionBench`] each (so millions of iterations do
/// not pile up sessions in one store). Criterion's async `iter_batched` runs its setup inside the
/// runtime, where the async session start cannot be awaited; hence `iter_custom` and this.
async fn batched<I, O>(
    iters: u64,
    setup: impl AsyncFn(&SessionBench) -> I,
    routine: impl AsyncFn(&SessionBench, I) -> O,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(SESSION_BATCH);
        left -= n;
        let bench = SessionBench::new().await;
        let mut inputs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            inputs.push(setup(&bench).await);
        }
        let mut outputs = Vec::with_capacity(n as usize);
        let begin = Instant::now();
        for input in inputs {
            outputs.push(routine(&bench, input).await);
        }
        total += begin.elapsed();
        drop(black_box(outputs));
    }
    total
}

fn sessions(c: &mut Criterion) {
    let rt = runtime();
    // `events/token/refresh-body.json`: a client that keeps its refresh token in the body.
    let template = fixture("token/refresh-body.json", "${TOKEN}");
    let event = |token: &RefreshToken| {
        lambda_http::request::from_str(&template.replace("${TOKEN}", token.expose())).unwrap()
    };
    let refresh = async |bench: &SessionBench, request| {
        let response = token::handle(&bench.apps.token, request).await.unwrap();
        assert_eq!(response.status(), 200);
        response
    };
    rt.block_on(async {
        let bench = SessionBench::new().await;
        let presented = bench.start().await;
        let response = refresh(&bench, event(&presented)).await;
        let rotated = body_json(&response)["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(rotated, presented.expose(), "the token must be rotated");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "body mode sets no cookie"
        );
    });

    let mut group = c.benchmark_group("session");
    // `token::handle` of a refresh with a fresh token each time (the event parsed outside the
    // timing): find the token, rotate it, sign an access token, build the 200.
    group.bench_function("refresh_body", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| batched(iters, async |bench| event(&bench.start().await), &refresh))
    });
    // `Sessions::refresh` alone on the same store: the lookup and the rotation, no HTTP, no JWT.
    group.bench_function("refresh_bare", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            batched(
                iters,
                async |bench| bench.start().await,
                async |bench, token: RefreshToken| {
                    let refreshed = bench
                        .apps
                        .token
                        .sessions
                        .refresh(Some(token.expose()), &shared::events::Client::unknown())
                        .await
                        .unwrap();
                    assert!(!refreshed.duplicate, "rotated");
                    refreshed
                },
            )
        })
    });
    group.finish();
}

criterion_group!(benches, tokens, authorizer, protected, sessions);
criterion_main!(benches);
