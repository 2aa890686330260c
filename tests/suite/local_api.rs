//! End to end through `tools/local-api` (the template's API Gateway, emulated on 127.0.0.1) in
//! front of the built functions under `cargo lambda watch`: the routes a client calls when
//! deployed, with the real authorizer in front of `/protected` and the template's gateway
//! responses for API Gateway's own errors.

use std::sync::Arc;

use integration_tests::test_util::{PASSWORD, tampered};
use integration_tests::{
    Api as _, Call, HttpApi, login, protected, service_env, sign_up, signed_up_user, unique_name,
};
use lambda_http::http::Method;
use serde_json::json;
use tokio::task::JoinSet;

#[tokio::test]
#[ignore = "needs ./dev test (local API)"]
async fn sign_up_token_then_protected_through_the_api_and_its_authorizer() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    let me = protected(&api, Some(&user.bearer())).await;
    assert_eq!(
        (me.status, &me.body),
        (200, &json!({"id": user.id, "username": user.name})),
        "{me:?}"
    );
    assert!(me.header("x-amzn-requestid").is_some());
    // Again, now from the authorizer's cache.
    let again = protected(&api, Some(&user.bearer())).await;
    assert_eq!((again.status, &again.body), (200, &me.body));
}

#[tokio::test]
#[ignore = "needs ./dev test (local API)"]
async fn no_token_is_the_gateway_response_401_with_cors_headers() {
    let api = HttpApi::local_api();
    let origin = service_env("TEST_ALLOWED_ORIGIN");
    let answer = api.call(Call::get("/protected").header("origin", &origin)).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.body, json!({"msg": "Missing or invalid token"}));
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(origin.as_str())
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

#[tokio::test]
#[ignore = "needs ./dev test (local API)"]
async fn a_tampered_or_malformed_token_is_401() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    let tampered = format!("Bearer {}", tampered(&user.token));
    // The first is refused by the authorizer, the others by the ValidationExpression.
    for authorization in [tampered.as_str(), "Bearer not-a-jwt", "Basic YWxpY2U6cHc="] {
        let answer = protected(&api, Some(authorization)).await;
        assert_eq!(
            (answer.status, &answer.body),
            (401, &json!({"msg": "Missing or invalid token"})),
            "{authorization}"
        );
    }
}

#[tokio::test]
#[ignore = "needs ./dev test (local API)"]
async fn a_preflight_from_an_allowed_origin_is_answered_with_cors_headers() {
    let api = HttpApi::local_api();
    let origin = service_env("TEST_ALLOWED_ORIGIN");
    for (path, method) in [("/users", "POST"), ("/token", "POST"), ("/protected", "GET")] {
        let answer = api
            .call(
                Call::new(Method::OPTIONS, path)
                    .header("origin", &origin)
                    .header("access-control-request-method", method)
                    .header("access-control-request-headers", "content-type, authorization"),
            )
            .await;
        assert!(matches!(answer.status, 200 | 204), "{path}: {answer:?}");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some(origin.as_str()),
            "{path}"
        );
        assert_eq!(
            answer.header("access-control-allow-methods"),
            Some(format!("{method}, OPTIONS").as_str()),
            "{path}"
        );
    }
}

#[tokio::test]
#[ignore = "needs ./dev test (local API)"]
async fn an_unknown_route_is_api_gateways_403() {
    let api = HttpApi::local_api();
    let answer = api.call(Call::get("/nope")).await;
    assert_eq!(
        (answer.status, &answer.body),
        (403, &json!({"msg": "Missing Authentication Token"}))
    );
}

/// The burst of the login-limit finding, through the API as deployed: the functions run with
/// several concurrent instances each (`cargo lambda watch --concurrency`), and still only the
/// limit's worth of passwords is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ./dev test (local API)"]
async fn a_burst_of_wrong_passwords_gets_only_the_limit_checked() {
    let api = Arc::new(HttpApi::local_api());
    let name = unique_name("burst");
    assert_eq!(sign_up(&*api, &name, PASSWORD).await.status, 201);
    let mut tasks = JoinSet::new();
    for _ in 0..30 {
        let (api, name) = (api.clone(), name.clone());
        tasks.spawn(async move { login(&*api, &name, "wrong password").await.status });
    }
    let statuses = tasks.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
}
