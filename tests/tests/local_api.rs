//! End to end through `tools/local-api` (the template's API Gateway, emulated on 127.0.0.1) in
//! front of the built functions under `cargo lambda watch`: the routes a client calls when
//! deployed, with the real authorizer in front of `/protected` and the template's gateway
//! responses for API Gateway's own errors.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use integration_tests::{service_env, tampered};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// What the API answered: status, headers and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap();
        Self {
            base: service_env("TEST_API_ENDPOINT"),
            http,
        }
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn protected(&self, authorization: Option<&str>) -> Answer {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
        self.call("GET", "/protected", &headers, None).await
    }
}

fn unique_name() -> String {
    format!("api-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn credentials(name: &str) -> Value {
    json!({"username": name, "password": PASSWORD})
}

/// Signs a user up and logs in through the API; returns (user id, token).
async fn signed_up_user(api: &Api, name: &str) -> (String, String) {
    let created = api.call("POST", "/users", &[], Some(credentials(name))).await;
    assert_eq!(created.status, 201, "{created:?}");
    let login = api.call("POST", "/token", &[], Some(credentials(name))).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.body["token_type"], "Bearer");
    let id = created.body["id"].as_str().unwrap().to_owned();
    (id, login.body["token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn sign_up_token_then_protected_through_the_api_and_its_authorizer() {
    let api = Api::new();
    let name = unique_name();
    let (id, token) = signed_up_user(&api, &name).await;
    let bearer = format!("Bearer {token}");
    let me = api.protected(Some(&bearer)).await;
    assert_eq!(
        (me.status, &me.body),
        (200, &json!({"id": id, "username": name})),
        "{me:?}"
    );
    assert!(me.header("x-amzn-requestid").is_some());
    // Again, now from the authorizer's cache.
    let again = api.protected(Some(&bearer)).await;
    assert_eq!((again.status, &again.body), (200, &me.body));
}

#[tokio::test]
async fn no_token_is_the_gateway_response_401_with_cors_headers() {
    let api = Api::new();
    let origin = service_env("TEST_ALLOWED_ORIGIN");
    let answer = api.call("GET", "/protected", &[("origin", &origin)], None).await;
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
async fn a_tampered_or_malformed_token_is_401() {
    let api = Api::new();
    let (_, token) = signed_up_user(&api, &unique_name()).await;
    let tampered = format!("Bearer {}", tampered(&token));
    // The first is refused by the authorizer, the others by the ValidationExpression.
    for authorization in [tampered.as_str(), "Bearer not-a-jwt", "Basic YWxpY2U6cHc="] {
        let answer = api.protected(Some(authorization)).await;
        assert_eq!(
            (answer.status, &answer.body),
            (401, &json!({"msg": "Missing or invalid token"})),
            "{authorization}"
        );
    }
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_with_cors_headers() {
    let api = Api::new();
    let origin = service_env("TEST_ALLOWED_ORIGIN");
    for path in ["/users", "/token", "/protected"] {
        let answer = api
            .call(
                "OPTIONS",
                path,
                &[
                    ("origin", &origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type, authorization"),
                ],
                None,
            )
            .await;
        assert!(matches!(answer.status, 200 | 204), "{path}: {answer:?}");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some(origin.as_str()),
            "{path}"
        );
        assert!(answer.header("access-control-allow-methods").is_some(), "{path}");
    }
}

#[tokio::test]
async fn an_unknown_route_is_api_gateways_403() {
    let api = Api::new();
    let answer = api.call("GET", "/nope", &[], None).await;
    assert_eq!(
        (answer.status, &answer.body),
        (403, &json!({"msg": "Missing Authentication Token"}))
    );
}
