//! End to end through the built binaries under `cargo lambda watch`, over HTTP on 127.0.0.1:
//! sign up → token → authorizer (Lambda Invoke API) → protected invoked with the authorizer's
//! verdict in `requestContext.authorizer`, as API Gateway builds it.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use integration_tests::{fixture, fixture_json, service_env, tampered};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

struct Lambda {
    base: String,
    http: reqwest::Client,
}

/// What an HTTP call answered: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

impl Lambda {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            base: service_env("TEST_LAMBDA_ENDPOINT"),
            http,
        }
    }

    /// A request to a function's URL (`/lambda-url/<name>/`).
    async fn url(&self, method: &str, function: &str, auth: Option<&str>, body: Option<Value>) -> Answer {
        let url = format!("{}/lambda-url/{function}/", self.base);
        let mut request = self.http.request(method.parse().unwrap(), url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        answer(request.send().await.unwrap()).await
    }

    /// A direct invocation through the Lambda Invoke API, as API Gateway makes one.
    async fn invoke(&self, function: &str, event: &Value) -> Answer {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(event.to_string());
        answer(request.send().await.unwrap()).await
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

fn unique_name() -> String {
    format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn credentials(name: &str) -> Value {
    json!({"username": name, "password": PASSWORD})
}

/// Signs a user up and logs in over HTTP; returns (user id, token).
async fn signed_up_user(lambda: &Lambda, name: &str) -> (String, String) {
    let created = lambda.url("POST", "users", None, Some(credentials(name))).await;
    assert_eq!(created.status, 201, "{created:?}");
    let login = lambda.url("POST", "token", None, Some(credentials(name))).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["user_id"], created.body["id"]);
    let token = login.body["token"].as_str().unwrap().to_owned();
    (created.body["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn sign_up_token_authorizer_then_protected_as_api_gateway_calls_it() {
    let lambda = Lambda::new();
    let name = unique_name();
    let (id, token) = signed_up_user(&lambda, &name).await;

    // API Gateway calls the authorizer with a TOKEN event...
    let event: Value = serde_json::from_str(&fixture("authorizer/valid.json", &token)).unwrap();
    let verdict = lambda.invoke("authorizer", &event).await;
    assert_eq!(verdict.status, 200, "{verdict:?}");
    assert_eq!(verdict.body["principalId"], id.as_str());
    let statement = &verdict.body["policyDocument"]["Statement"][0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(
        statement["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/*/*"
    );

    // ...then the backend with principalId and the context values in requestContext.authorizer.
    let mut request = fixture_json("protected/authorizer-context.json", &token);
    let mut authorizer = verdict.body["context"].as_object().unwrap().clone();
    authorizer.insert("principalId".into(), verdict.body["principalId"].clone());
    authorizer.insert("integrationLatency".into(), json!(7));
    request["requestContext"]["authorizer"] = Value::Object(authorizer);
    let response = lambda.invoke("protected", &request).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body["statusCode"], 200, "{response:?}");
    let body: Value = serde_json::from_str(response.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"id": id, "username": name}));
}

#[tokio::test]
async fn protected_url_verifies_the_bearer_token_itself() {
    let lambda = Lambda::new();
    let name = unique_name();
    let (id, token) = signed_up_user(&lambda, &name).await;
    let ok = lambda
        .url("GET", "protected", Some(&format!("Bearer {token}")), None)
        .await;
    assert_eq!(
        (ok.status, ok.body.clone()),
        (200, json!({"id": id, "username": name}))
    );
}

#[tokio::test]
async fn no_token_or_a_tampered_one_is_401_and_unauthorized() {
    let lambda = Lambda::new();
    let (_, token) = signed_up_user(&lambda, &unique_name()).await;
    let tampered = tampered(&token);

    let missing = lambda.url("GET", "protected", None, None).await;
    assert_eq!(
        (missing.status, &missing.body["msg"]),
        (401, &json!("Missing Authorization header"))
    );
    let bad = lambda
        .url("GET", "protected", Some(&format!("Bearer {tampered}")), None)
        .await;
    assert_eq!(
        (bad.status, &bad.body["msg"]),
        (401, &json!("Invalid or expired token"))
    );

    for event in [
        serde_json::from_str::<Value>(&fixture("authorizer/valid.json", &tampered)).unwrap(),
        serde_json::from_str::<Value>(&fixture("authorizer/missing-token.json", "")).unwrap(),
        serde_json::from_str::<Value>(&fixture("authorizer/expired.json", "")).unwrap(),
    ] {
        let verdict = lambda.invoke("authorizer", &event).await;
        assert_eq!(verdict.body["errorMessage"], "Unauthorized", "{verdict:?}");
        assert!(verdict.body.get("policyDocument").is_none());
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same_over_http() {
    let lambda = Lambda::new();
    let name = unique_name();
    signed_up_user(&lambda, &name).await;
    let wrong = lambda
        .url(
            "POST",
            "token",
            None,
            Some(json!({"username": name, "password": "nope nope"})),
        )
        .await;
    let unknown = lambda
        .url("POST", "token", None, Some(credentials(&unique_name())))
        .await;
    assert_eq!(
        (wrong.status, &wrong.body),
        (401, &json!({"msg": "Bad username or password"}))
    );
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
}

/// Runs the whole flow, failures included, then reads every line the functions and
/// `cargo lambda watch` logged: no password, token, signing secret or Authorization value.
#[tokio::test]
async fn logs_never_contain_passwords_tokens_or_the_secret() {
    let lambda = Lambda::new();
    let log_path = service_env("TEST_WATCH_LOG");
    let secret = service_env("TEST_JWT_SECRET");
    let random = || uuid::Uuid::new_v4().simple().to_string();
    let (name, password, wrong, unknown_password) = (
        unique_name(),
        format!("pw-{}", random()),
        format!("wrong-{}", random()),
        format!("unk-{}", random()),
    );

    let created = lambda
        .url(
            "POST",
            "users",
            None,
            Some(json!({"username": name, "password": password})),
        )
        .await;
    assert_eq!(created.status, 201);
    let login = lambda
        .url(
            "POST",
            "token",
            None,
            Some(json!({"username": name, "password": password})),
        )
        .await;
    let token = login.body["token"].as_str().unwrap().to_owned();
    let bad = lambda
        .url(
            "POST",
            "token",
            None,
            Some(json!({"username": name, "password": wrong})),
        )
        .await;
    assert_eq!(bad.status, 401);
    let body = json!({"username": unique_name(), "password": unknown_password});
    assert_eq!(lambda.url("POST", "token", None, Some(body)).await.status, 401);
    let short = format!("s-{}", &random()[..4]);
    assert_eq!(
        lambda
            .url(
                "POST",
                "users",
                None,
                Some(json!({"username": "x y", "password": short}))
            )
            .await
            .status,
        400
    );

    let tampered = tampered(&token);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{name}:{password}")
        )
    );
    for auth in [
        format!("Bearer {token}"),
        format!("Bearer {tampered}"),
        basic.clone(),
    ] {
        lambda.url("GET", "protected", Some(&auth), None).await;
        let mut event: Value = serde_json::from_str(&fixture("authorizer/valid.json", "")).unwrap();
        event["authorizationToken"] = json!(auth);
        lambda.invoke("authorizer", &event).await;
    }

    // A last request whose log line we can recognise: once it is in the log, so is all the above.
    let marker = lambda
        .url("POST", "users", None, Some(credentials(&unique_name())))
        .await;
    let marker_id = marker.body["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains(&marker_id) {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the marker request never reached {log_path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let (_, signature) = token.rsplit_once('.').unwrap();
    let forbidden = [
        ("password", password.as_str()),
        ("wrong password", wrong.as_str()),
        ("unknown user's password", unknown_password.as_str()),
        ("rejected short password", short.as_str()),
        ("token", token.as_str()),
        ("token signature", signature),
        ("tampered token", tampered.as_str()),
        ("Basic credentials", basic.as_str()),
        ("signing secret", secret.as_str()),
    ];
    for (what, value) in forbidden {
        assert!(!log.contains(value), "the {what} appears in the functions' log");
    }
    assert!(
        !log.to_ascii_lowercase().contains("bearer ey"),
        "an Authorization header value appears in the log"
    );
    assert!(log.contains("user created"), "the log is being read: {log_path}");
}
