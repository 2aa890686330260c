//! The handler, driven by the `events/jwks/` fixtures: the documents served, their headers, the
//! issuer from configuration and from the request's stage, refusals, and a bad configuration.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jwks::{App, MAX_AGE_SECONDS, handle};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::PublicKeySet;
use shared::config::ConfigError;
use shared::test_util::{ISSUER, jwks_json, kid, next_signing_key, signing_key};

/// The issuer of the fixtures' stage: API `a1b2c3d4e5`, stage `dev`, in us-east-1.
const STAGE_URL: &str = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev";

fn source(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |var: &str| vars.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
}

/// The function as deployed with `JWT_ISSUER` = [`ISSUER`] and the test key set.
fn app() -> App {
    App::from_source(&source(&[
        ("JWT_PUBLIC_KEYS", &jwks_json()),
        ("JWT_ISSUER", ISSUER),
    ]))
    .unwrap()
}

/// `events/jwks/<name>.json`.
fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/jwks/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// `event` as API Gateway hands it to the function, answered.
async fn answer(app: &App, event: &Value) -> Response<Body> {
    let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    handle(app, request).await.unwrap()
}

/// The fixture `events/jwks/<name>.json`, answered.
async fn call(app: &App, name: &str) -> Response<Body> {
    answer(app, &fixture(name)).await
}

fn body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_key_set_served_is_exactly_the_configured_one() {
    let two_keys = PublicKeySet::of([
        signing_key().public_key().clone(),
        next_signing_key().public_key().clone(),
    ]);
    let configured = serde_json::to_string(&two_keys.jwks()).unwrap();
    let app = App::from_source(&source(&[
        ("JWT_PUBLIC_KEYS", &configured),
        ("JWT_ISSUER", ISSUER),
    ]))
    .unwrap();

    let response = call(&app, "jwks").await;
    assert_eq!(response.status(), 200);
    let served = body(&response);
    assert_eq!(served, serde_json::from_str::<Value>(&configured).unwrap());
    assert_eq!(served["keys"][0]["kid"], kid());
    assert_eq!(served["keys"][1]["kid"], next_signing_key().kid());
    for key in served["keys"].as_array().unwrap() {
        let mut members: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(
            (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
            (&json!("EC"), &json!("P-256"), &json!("ES256"), &json!("sig"))
        );
    }
}

#[tokio::test]
async fn private_or_unknown_members_in_the_configured_keys_are_never_served() {
    let mut jwks: Value = serde_json::from_str(&jwks_json()).unwrap();
    jwks["keys"][0]["d"] = json!("c2VjcmV0LXNjYWxhci1ub3QtdG8tYmUtcHVibGlzaGVk");
    jwks["keys"][0]["x5c"] = json!(["MIIB"]);
    jwks["keys"][0].as_object_mut().unwrap().remove("kid");
    jwks["keys"][0].as_object_mut().unwrap().remove("use");
    let configured = jwks.to_string();
    // Refusing such a variable at the start would be as safe as dropping the members.
    let Ok(app) = App::from_source(&source(&[
        ("JWT_PUBLIC_KEYS", &configured),
        ("JWT_ISSUER", ISSUER),
    ])) else {
        return;
    };

    let response = call(&app, "jwks").await;
    let text = std::str::from_utf8(response.body().as_ref()).unwrap();
    assert!(!text.contains("\"d\"") && !text.contains("c2VjcmV0"), "{text}");
    assert_eq!(
        body(&response),
        serde_json::from_str::<Value>(&jwks_json()).unwrap()
    );
}

#[tokio::test]
async fn both_documents_are_public_cacheable_json_readable_from_any_origin() {
    let app = app();
    for name in ["jwks", "openid-configuration"] {
        let response = call(&app, name).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(
            header(&response, "content-type"),
            Some("application/json"),
            "{name}"
        );
        // Five minutes: the wait the rotation runbook keeps between publishing and signing.
        assert_eq!(
            header(&response, "cache-control"),
            Some("public, max-age=300"),
            "{name}"
        );
        assert_eq!(MAX_AGE_SECONDS, 300);
        assert_eq!(
            header(&response, "x-content-type-options"),
            Some("nosniff"),
            "{name}"
        );
        assert_eq!(
            header(&response, "access-control-allow-credentials"),
            None,
            "{name}"
        );
    }
    // The jwks fixture comes from a page on another site (`Origin: https://app.example.com`).
    let response = call(&app, "jwks").await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn discovery_names_the_configured_issuer_and_the_key_set_under_it() {
    let response = call(&app(), "openid-configuration").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body(&response),
        json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/.well-known/jwks.json")})
    );
}

#[tokio::test]
async fn without_jwt_issuer_the_issuer_is_the_url_of_the_requests_stage() {
    let app = App::from_source(&source(&[
        ("JWT_PUBLIC_KEYS", &jwks_json()),
        ("AWS_REGION", "us-east-1"),
    ]))
    .unwrap();
    let response = call(&app, "openid-configuration").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body(&response),
        json!({"issuer": STAGE_URL, "jwks_uri": format!("{STAGE_URL}/.well-known/jwks.json")})
    );
}

#[tokio::test]
async fn the_route_is_the_matched_resource_whatever_base_path_a_custom_domain_adds() {
    let mut event = fixture("jwks");
    event["path"] = json!("/auth/.well-known/jwks.json");
    let response = answer(&app(), &event).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body(&response),
        serde_json::from_str::<Value>(&jwks_json()).unwrap()
    );
}

#[tokio::test]
async fn other_methods_are_405_naming_get() {
    let response = call(&app(), "wrong-method").await;
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("GET, OPTIONS"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(body(&response), json!({"msg": "Method not allowed"}));
}

#[tokio::test]
async fn other_paths_are_404() {
    let response = call(&app(), "unknown-path").await;
    assert_eq!(response.status(), 404);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(body(&response), json!({"msg": "Not found"}));
}

#[test]
fn a_missing_or_bad_key_set_fails_the_start_naming_jwt_public_keys() {
    let other_curve = r#"{"keys":[{"kty":"EC","crv":"P-384","x":"AAAA","y":"AAAA"}]}"#;
    let wrong_kid = {
        let mut jwks: Value = serde_json::from_str(&jwks_json()).unwrap();
        jwks["keys"][0]["kid"] = json!("v1");
        jwks.to_string()
    };
    for bad in [
        "",
        "not json",
        r#"{"keys":[]}"#,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
        other_curve,
        &wrong_kid,
    ] {
        let err = App::from_source(&source(&[("JWT_PUBLIC_KEYS", bad), ("JWT_ISSUER", ISSUER)])).unwrap_err();
        let err = err
            .downcast_ref::<ConfigError>()
            .unwrap_or_else(|| panic!("{bad}: {err}"));
        let var = match err {
            ConfigError::Missing { var } | ConfigError::Invalid { var, .. } => *var,
        };
        assert_eq!(var, "JWT_PUBLIC_KEYS", "{bad}: {err}");
    }
}

#[test]
fn a_bad_issuer_or_no_issuer_and_no_region_fails_the_start_naming_the_variable() {
    let keys = jwks_json();
    let err = App::from_source(&source(&[
        ("JWT_PUBLIC_KEYS", &keys),
        ("JWT_ISSUER", "https://auth.test/"),
    ]))
    .unwrap_err();
    assert!(
        matches!(
            err.downcast_ref(),
            Some(ConfigError::Invalid {
                var: "JWT_ISSUER",
                ..
            })
        ),
        "{err}"
    );
    let err = App::from_source(&source(&[("JWT_PUBLIC_KEYS", &keys)])).unwrap_err();
    assert_eq!(
        err.downcast_ref(),
        Some(&ConfigError::Missing { var: "AWS_REGION" }),
        "{err}"
    );
}
