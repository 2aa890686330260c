//! local-api over HTTP on 127.0.0.1, in front of a fake Lambda Invoke API that records every
//! invocation: routing, the TOKEN authorizer and its cache, the 401/403/500 mapping, CORS,
//! gateway responses, base64 bodies and the shape of the proxy event. Both servers run on
//! the test's runtime and stop with it.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use local_api::{Gateway, LambdaClient, Options, serve, spec};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/api.yaml");
const ORIGIN: &str = "http://app.test";
const STAGE_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:localapi01/test";

/// What the fake Invoke API answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn ok(output: Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![],
        body: output.to_string(),
    }
}

/// A function error as cargo lambda watch 1.9 answers it: HTTP 500 and Lambda's error JSON.
fn failed(message: &str) -> Reply {
    Reply {
        status: 500,
        headers: vec![],
        body: json!({"errorType": "Error", "errorMessage": message}).to_string(),
    }
}

/// A function error as AWS answers it: HTTP 200 with `X-Amz-Function-Error`.
fn failed_like_aws(message: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("x-amz-function-error", "Unhandled")],
        body: json!({"errorType": "Error", "errorMessage": message}).to_string(),
    }
}

type Script = dyn Fn(&str, &Value) -> Reply + Send + Sync;

/// A fake of `cargo lambda watch`'s Invoke API on 127.0.0.1: answers with `script` and
/// records (function, event) for every invocation.
struct FakeLambda {
    endpoint: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeLambda {
    async fn start(script: Arc<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (script, recorded) = (script.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let (script, recorded) = (script.clone(), recorded.clone());
                        async move {
                            let path = request.uri().path().to_owned();
                            let function = path
                                .strip_prefix("/2015-03-31/functions/")
                                .and_then(|p| p.strip_suffix("/invocations"))
                                .expect("an Invoke API path")
                                .to_owned();
                            assert_eq!(request.headers()["content-type"], "application/json");
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let event: Value = serde_json::from_slice(&body).unwrap();
                            let reply = script(&function, &event);
                            recorded.lock().unwrap().push((function, event));
                            let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
                            *response.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
                            for (name, value) in reply.headers {
                                response.headers_mut().insert(name, value.parse().unwrap());
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { endpoint, calls }
    }

    /// The events `function` received, in order.
    fn events(&self, function: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(f, _)| f == function)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// The fake authorizer: the token says what it answers.
fn authorizer(event: &Value) -> Reply {
    assert_eq!(event["type"], "TOKEN");
    let method_arn = event["methodArn"].as_str().unwrap();
    let allow = |resource: Value, context: Value| {
        ok(json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}
            ]},
            "context": context
        }))
    };
    let stage = json!(format!("{STAGE_ARN}/*/*"));
    let context = json!({"sub": "user-1", "n": 7, "admin": true});
    match event["authorizationToken"].as_str().unwrap() {
        "Bearer good-1" => allow(stage, context),
        "Bearer narrow-1" => allow(json!(method_arn), context),
        "Bearer deny-1" => ok(json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": stage}
            ]}
        })),
        "Bearer nested-1" => allow(stage, json!({"claims": {"sub": "user-1"}})),
        "Bearer garbage-1" => Reply {
            status: 200,
            headers: vec![],
            body: "not json".into(),
        },
        "Bearer crash-1" => failed("boom"),
        "Bearer aws-1" => failed_like_aws("Unauthorized"),
        _ => failed("Unauthorized"),
    }
}

/// The fake backends: `/items/crash`, `/items/aws-crash` and `/items/malformed` misbehave,
/// `/upload` echoes its body back base64-encoded, everything else answers `{"ok": true}`.
fn backend(event: &Value) -> Reply {
    match event["path"].as_str().unwrap() {
        "/items/crash" => failed("boom"),
        "/items/aws-crash" => failed_like_aws("boom"),
        "/items/malformed" => ok(json!({"body": "no status"})),
        "/upload" => {
            let body = event["body"].as_str().unwrap_or_default();
            let bytes = if event["isBase64Encoded"] == true {
                BASE64.decode(body).unwrap()
            } else {
                body.as_bytes().to_vec()
            };
            ok(json!({
                "statusCode": 200,
                "headers": {"content-type": "application/octet-stream"},
                "body": BASE64.encode(bytes),
                "isBase64Encoded": true
            }))
        }
        _ => ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-one": "1"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": "{\"ok\":true}"
        })),
    }
}

fn options(parameters: &[(&str, &str)]) -> Options {
    let mut options = Options::default();
    options.parameters.insert("AllowedOrigin".into(), ORIGIN.into());
    for (name, value) in parameters {
        options.parameters.insert((*name).into(), (*value).into());
    }
    options.functions.insert("FilesFunction".into(), "files".into());
    options
}

/// The fake Lambda and local-api in front of it; the base URL of local-api.
struct Setup {
    lambda: FakeLambda,
    base: String,
    http: reqwest::Client,
}

async fn setup_with(parameters: &[(&str, &str)]) -> Setup {
    let lambda = FakeLambda::start(Arc::new(|function: &str, event: &Value| match function {
        "auth" => authorizer(event),
        _ => backend(event),
    }))
    .await;
    let base = start_api(&lambda.endpoint, options(parameters)).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Setup { lambda, base, http }
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

async fn start_api(lambda_endpoint: &str, options: Options) -> String {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let api = spec::load(&text, &options).unwrap();
    let client = LambdaClient::new(lambda_endpoint, Duration::from_secs(10)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        Arc::new(Gateway::new(api, client)),
        std::future::pending(),
    ));
    base
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

impl Setup {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            bytes: response.bytes().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("origin", ORIGIN)];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        self.send("GET", path, &headers, None).await
    }
}

#[tokio::test]
async fn an_open_route_invokes_its_function_without_the_authorizer() {
    let s = setup().await;
    let answer = s.get("/hello", None).await;
    assert_eq!((answer.status, answer.json()), (200, json!({"ok": true})));
    let events = s.lambda.events("hello");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["resource"], "/hello");
    assert!(events[0]["requestContext"].get("authorizer").is_none());
    assert!(s.lambda.events("auth").is_empty());
}

#[tokio::test]
async fn path_variables_greedy_paths_any_methods_and_trailing_slashes_are_matched() {
    let s = setup().await;
    assert_eq!(s.get("/items/42", Some("good-1")).await.status, 200);
    assert_eq!(
        s.send("DELETE", "/items", &[("authorization", "Bearer good-1")], None)
            .await
            .status,
        200
    );
    assert_eq!(s.get("/files/a/b.txt", None).await.status, 200);
    assert_eq!(s.get("/hello/", None).await.status, 200);

    let items = s.lambda.events("items");
    assert_eq!(
        (&items[0]["resource"], &items[0]["pathParameters"]),
        (&json!("/items/{id}"), &json!({"id": "42"}))
    );
    assert_eq!(
        (&items[1]["resource"], &items[1]["httpMethod"]),
        (&json!("/items"), &json!("DELETE"))
    );
    let files = s.lambda.events("files");
    assert_eq!(files[0]["pathParameters"], json!({"proxy": "a/b.txt"}));
    assert_eq!(files[0]["resource"], "/files/{proxy+}");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_missing_authentication_token() {
    let s = setup().await;
    for (method, path) in [
        ("GET", "/nope"),
        ("POST", "/hello"),
        ("GET", "/files"),
        ("OPTIONS", "/nope"),
    ] {
        let answer = s.send(method, path, &[("origin", ORIGIN)], None).await;
        assert_eq!(answer.status, 403, "{method} {path}");
        assert_eq!(
            answer.json(),
            json!({"msg": "Missing Authentication Token", "type": "MISSING_AUTHENTICATION_TOKEN"})
        );
        // DEFAULT_4XX's header, mapped from the request's Origin.
        assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
        assert_eq!(
            answer.header("x-amzn-errortype"),
            Some("MissingAuthenticationTokenException")
        );
    }
    assert!(s.lambda.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_or_malformed_token_is_401_before_the_authorizer_runs() {
    let s = setup().await;
    let missing = s.get("/items/1", None).await;
    let empty = s
        .send(
            "GET",
            "/items/1",
            &[("authorization", ""), ("origin", ORIGIN)],
            None,
        )
        .await;
    let basic = s
        .send(
            "GET",
            "/items/1",
            &[("authorization", "Basic dXNlcg=="), ("origin", ORIGIN)],
            None,
        )
        .await;
    let upper = s.get("/items/1", Some("GOOD-1")).await;
    for answer in [&missing, &empty, &basic, &upper] {
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json()["msg"], "Missing or invalid token");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
    // $context.requestId, and the same id in the header.
    assert_eq!(missing.json()["id"], missing.header("x-amzn-requestid").unwrap());
    assert!(s.lambda.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn authorizer_outcomes_map_to_401_403_and_500() {
    let s = setup().await;
    let cases = [
        ("bad-1", 401, json!("Missing or invalid token")),
        ("aws-1", 401, json!("Missing or invalid token")),
        (
            "deny-1",
            403,
            json!("User is not authorized to access this resource with an explicit deny"),
        ),
        ("crash-1", 500, Value::Null),
        ("nested-1", 500, Value::Null),
        ("garbage-1", 500, Value::Null),
    ];
    for (token, status, msg) in cases.clone() {
        let answer = s.get("/items/1", Some(token)).await;
        assert_eq!((answer.status, &answer.json()["msg"]), (status, &msg), "{token}");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some(ORIGIN),
            "{token}"
        );
    }
    assert_eq!(s.lambda.events("auth").len(), cases.len());
    assert!(s.lambda.events("items").is_empty());
}

#[tokio::test]
async fn an_allow_hands_the_principal_and_string_context_to_the_backend() {
    let s = setup().await;
    let answer = s.get("/items/42", Some("good-1")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        s.lambda.events("auth"),
        vec![json!({
            "type": "TOKEN",
            "authorizationToken": "Bearer good-1",
            "methodArn": format!("{STAGE_ARN}/GET/items/42")
        })]
    );
    let mut authorizer = s.lambda.events("items")[0]["requestContext"]["authorizer"].clone();
    assert!(authorizer["integrationLatency"].is_u64());
    authorizer.as_object_mut().unwrap().remove("integrationLatency");
    assert_eq!(
        authorizer,
        json!({"principalId": "user-1", "sub": "user-1", "n": "7", "admin": "true"})
    );
}

#[tokio::test]
async fn a_cached_verdict_is_reused_across_routes() {
    let s = setup().await;
    assert_eq!(s.get("/items/1", Some("good-1")).await.status, 200);
    assert_eq!(s.get("/items/2", Some("good-1")).await.status, 200);
    assert_eq!(
        s.send("POST", "/items", &[("authorization", "Bearer good-1")], None)
            .await
            .status,
        200
    );
    assert_eq!(s.lambda.events("auth").len(), 1);
    assert_eq!(s.lambda.events("items").len(), 3);
    // A cached verdict reports no authorizer latency.
    assert_eq!(
        s.lambda.events("items")[1]["requestContext"]["authorizer"]["integrationLatency"],
        0
    );
}

#[tokio::test]
async fn a_policy_naming_only_the_method_arn_denies_the_next_route_from_the_cache() {
    let s = setup().await;
    assert_eq!(s.get("/items/1", Some("narrow-1")).await.status, 200);
    let second = s.get("/items/2", Some("narrow-1")).await;
    assert_eq!(
        (second.status, second.json()),
        (
            403,
            json!({"msg": "User is not authorized to access this resource", "type": "ACCESS_DENIED"})
        )
    );
    assert_eq!(s.lambda.events("auth").len(), 1);
    assert_eq!(s.lambda.events("items").len(), 1);
}

#[tokio::test]
async fn reauthorize_every_zero_calls_the_authorizer_every_time() {
    let s = setup_with(&[("CacheSeconds", "0")]).await;
    assert_eq!(s.get("/items/1", Some("narrow-1")).await.status, 200);
    assert_eq!(s.get("/items/2", Some("narrow-1")).await.status, 200);
    assert_eq!(s.lambda.events("auth").len(), 2);
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway() {
    let s = setup().await;
    let headers = [("origin", ORIGIN), ("access-control-request-method", "GET")];
    let preflight = s.send("OPTIONS", "/items/1", &headers, None).await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,OPTIONS")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("Authorization,Content-Type")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    assert!(preflight.bytes.is_empty());
    let any = s.send("OPTIONS", "/items", &headers, None).await;
    assert_eq!(
        any.header("access-control-allow-methods"),
        Some("DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT")
    );
    // AddDefaultAuthorizerToCorsPreflight: false, so no token and no authorizer.
    assert!(s.lambda.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn binary_bodies_travel_base64_both_ways_and_text_stays_text() {
    let s = setup().await;
    let bytes = vec![0u8, 1, 2, 0xff, b'a'];
    let answer = s
        .send(
            "POST",
            "/upload",
            &[("content-type", "application/octet-stream")],
            Some(bytes.clone()),
        )
        .await;
    assert_eq!((answer.status, answer.bytes.to_vec()), (200, bytes.clone()));
    assert_eq!(answer.header("content-type"), Some("application/octet-stream"));
    // Not UTF-8 and no binary media type: base64 too, rather than mangled.
    s.send(
        "POST",
        "/upload",
        &[("content-type", "text/plain")],
        Some(vec![0xff, 0xfe]),
    )
    .await;
    s.send(
        "POST",
        "/upload",
        &[("content-type", "application/json")],
        Some(b"{\"a\":1}".to_vec()),
    )
    .await;

    let events = s.lambda.events("hello");
    assert_eq!(
        (&events[0]["isBase64Encoded"], &events[0]["body"]),
        (&json!(true), &json!(BASE64.encode(&bytes)))
    );
    assert_eq!(
        (&events[1]["isBase64Encoded"], &events[1]["body"]),
        (&json!(true), &json!("//4="))
    );
    assert_eq!(
        (&events[2]["isBase64Encoded"], &events[2]["body"]),
        (&json!(false), &json!("{\"a\":1}"))
    );
}

#[tokio::test]
async fn the_backend_gets_a_rest_proxy_event_and_its_response_is_translated() {
    let s = setup().await;
    let answer = s
        .send(
            "GET",
            "/items/42?a=1&a=2&b=x%20y",
            &[
                ("authorization", "Bearer good-1"),
                ("x-custom", "one"),
                ("x-custom", "two"),
                ("user-agent", "tests"),
            ],
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-one"), Some("1"));
    let cookies: Vec<_> = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);

    let event = &s.lambda.events("items")[0];
    assert_eq!(event["resource"], "/items/{id}");
    assert_eq!(event["path"], "/items/42");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["queryStringParameters"], json!({"a": "2", "b": "x y"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"a": ["1", "2"], "b": ["x y"]})
    );
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["stageVariables"], Value::Null);
    assert_eq!(
        (&event["body"], &event["isBase64Encoded"]),
        (&Value::Null, &json!(false))
    );
    assert_eq!(event["headers"]["x-custom"], "two");
    assert_eq!(event["multiValueHeaders"]["x-custom"], json!(["one", "two"]));
    assert_eq!(event["headers"]["user-agent"], "tests");
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(event["headers"]["authorization"], "Bearer good-1");

    let context = &event["requestContext"];
    assert_eq!(context["stage"], "test");
    assert_eq!(context["apiId"], "localapi01");
    assert_eq!(context["accountId"], "123456789012");
    assert_eq!(context["httpMethod"], "GET");
    assert_eq!(context["resourcePath"], "/items/{id}");
    // The path the client used: this API serves the stage at its root, as a custom domain
    // without a base path does.
    assert_eq!(context["path"], "/items/42");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(context["identity"]["userAgent"], "tests");
    assert_eq!(context["requestId"], answer.header("x-amzn-requestid").unwrap());
    assert!(context["requestTimeEpoch"].is_u64());
    let time = context["requestTime"].as_str().unwrap();
    assert_eq!(
        (time.len(), &time[2..3], &time[6..7], &time[20..]),
        (26, "/", "/", " +0000"),
        "{time}"
    );
}

#[tokio::test]
async fn function_errors_and_malformed_responses_are_502() {
    let s = setup().await;
    for path in ["/items/crash", "/items/aws-crash", "/items/malformed"] {
        let answer = s.get(path, Some("good-1")).await;
        assert_eq!(
            (answer.status, answer.json()),
            (502, json!({"msg": "Internal server error"})),
            "{path}"
        );
        assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
    }
}

#[tokio::test]
async fn an_unreachable_lambda_endpoint_is_a_gateway_error() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let base = start_api(&closed, options(&[])).await;
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 504);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body, json!({"msg": "Internal server error"}));
}

#[test]
fn template_problems_are_named() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let mut no_origin = options(&[]);
    no_origin.parameters.clear();
    let err = spec::load(&text, &no_origin).unwrap_err().to_string();
    assert!(err.contains("--parameter AllowedOrigin="), "{err}");

    let mut no_binary = options(&[]);
    no_binary.functions = HashMap::new();
    let err = spec::load(&text, &no_binary).unwrap_err().to_string();
    assert!(err.contains("--function FilesFunction="), "{err}");

    let request_authorizer = text.replace(
        "Identity:\n",
        "FunctionPayloadType: REQUEST\n            Identity:\n",
    );
    let err = spec::load(&request_authorizer, &options(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("REQUEST authorizers are not emulated"), "{err}");
}

#[test]
fn the_fixture_reads_as_the_api_gateway_would_configure_it() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let api = spec::load(&text, &options(&[])).unwrap();
    assert_eq!((api.logical_id.as_str(), api.stage.as_str()), ("Api", "test"));
    let auth = &api.authorizers["TokenAuth"];
    assert_eq!(
        (auth.function.as_str(), auth.header.as_str(), auth.ttl),
        ("auth", "Authorization", Duration::from_secs(300))
    );
    let mut routes: Vec<_> = api
        .routes
        .iter()
        .map(|r| format!("{} {} {} {:?}", r.method, r.resource, r.function, r.authorizer))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "ANY /items items Some(\"TokenAuth\")",
            "GET /files/{proxy+} files None",
            "GET /hello hello None",
            "GET /items/{id} items Some(\"TokenAuth\")",
            "POST /upload hello None",
        ]
    );
    assert_eq!(api.binary_media_types, ["application/octet-stream"]);
    assert_eq!(api.preflight_authorizer, None);
}

#[tokio::test]
async fn the_implicit_api_reads_globals_and_puts_generated_preflights_behind_the_authorizer() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/implicit.yaml"
    ))
    .unwrap();
    let mut options = Options::default();
    options.functions.insert("AppFunction".into(), "app".into());
    let api = spec::load(&text, &options).unwrap();
    assert_eq!(
        (api.logical_id.as_str(), api.stage.as_str()),
        ("ServerlessRestApi", "Prod")
    );
    assert_eq!(api.authorizers["Lambda"].function, "auth");
    assert_eq!(api.authorizers["Lambda"].header, "Authorization");
    assert_eq!(api.preflight_authorizer.as_deref(), Some("Lambda"));

    let lambda = FakeLambda::start(Arc::new(|function: &str, event: &Value| match function {
        "auth" => authorizer(event),
        _ => backend(event),
    }))
    .await;
    let client = LambdaClient::new(&lambda.endpoint, Duration::from_secs(10)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        Arc::new(Gateway::new(api, client)),
        std::future::pending(),
    ));
    let s = Setup {
        lambda,
        base,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };

    assert_eq!(s.get("/", None).await.status, 200);
    assert_eq!(s.lambda.events("app")[0]["requestContext"]["stage"], "Prod");
    let anonymous = s.send("OPTIONS", "/things/1", &[("origin", ORIGIN)], None).await;
    assert_eq!(anonymous.status, 401);
    let preflight = s
        .send(
            "OPTIONS",
            "/things/1",
            &[("origin", ORIGIN), ("authorization", "Bearer narrow-1")],
            None,
        )
        .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("OPTIONS,PUT")
    );
    // ReauthorizeEvery: 0 and a policy naming only that OPTIONS method: the PUT is authorized anew.
    let put = s
        .send(
            "PUT",
            "/things/1",
            &[("authorization", "Bearer narrow-1")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(put.status, 200);
    let methods: Vec<_> = s
        .lambda
        .events("auth")
        .iter()
        .map(|e| e["methodArn"].clone())
        .collect();
    let arn = "arn:aws:execute-api:us-east-1:123456789012:localapi01/Prod";
    assert_eq!(
        methods,
        [
            json!(format!("{arn}/OPTIONS/things/1")),
            json!(format!("{arn}/PUT/things/1"))
        ]
    );
}

#[tokio::test]
async fn a_moved_endpoint_gets_every_invocation_after_the_move() {
    let reply: Arc<Script> = Arc::new(|_: &str, _: &Value| ok(json!({"statusCode": 200, "body": "{}"})));
    let (blue, green) = (
        FakeLambda::start(reply.clone()).await,
        FakeLambda::start(reply).await,
    );
    let client = LambdaClient::new(&blue.endpoint, Duration::from_secs(10)).unwrap();
    client.invoke("token", &json!({})).await.unwrap();
    client.set_endpoint(&format!("{}/", green.endpoint));
    assert_eq!(client.endpoint(), green.endpoint);
    client.invoke("token", &json!({})).await.unwrap();
    client.invoke("protected", &json!({})).await.unwrap();
    assert_eq!(blue.calls.lock().unwrap().len(), 1);
    assert_eq!(green.calls.lock().unwrap().len(), 2);
}
