//! Per-request work, in process: token issue and verify (beside ring's bare P-256 verify of the
//! same signature), the authorizer end to end (event JSON in, policy JSON out) and the protected
//! route with the in-memory store.
//! `cargo bench -p benchmarks --bench requests`; `./scripts/bench.sh` checks the budgets.

// Benchmark set-up: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequest;
use benchmarks::{ISSUER, USERNAME, mint_tokens, signed_parts, verifier};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use integration_tests::{Apps, fixture, sign_up};
use lambda_runtime::{Context, LambdaEvent};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

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
        b.iter(|| issuer.issue_access(ISSUER, black_box(benchmarks::USER_ID), black_box(USERNAME)))
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
        issuer: Some(ISSUER.into()),
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
    let apps = Apps::in_memory();
    let created = rt.block_on(sign_up(&apps, USERNAME, benchmarks::PASSWORD));
    let user_id = created.body["id"].as_str().unwrap().to_owned();
    let token = apps.issuer.issue_access(ISSUER, &user_id, USERNAME).token;
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

criterion_group!(benches, tokens, authorizer, protected);
criterion_main!(benches);
