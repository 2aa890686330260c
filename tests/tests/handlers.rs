//! Every function's handler, driven by the `events/` fixtures, against the in-memory store.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerResponse;
use integration_tests::{Apps, body_json, fixture, fixture_json, request, tampered, with_body};
use lambda_http::{Body, Response};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use shared::store::UserStore;
use shared::user::Username;

const PASSWORD: &str = "correct horse battery staple";
/// The user id the `protected/authorizer-context.json` fixture carries.
const FIXTURE_USER_ID: &str = "0b5f3c8e-9a1d-4e2b-8c7f-1d2e3f4a5b6c";

async fn users(apps: &Apps, event: &Value) -> Response<Body> {
    users::handle(&apps.users, request(event)).await.unwrap()
}

async fn token(apps: &Apps, event: &Value) -> Response<Body> {
    token::handle(&apps.token, request(event)).await.unwrap()
}

async fn protected(apps: &Apps, event: &Value) -> Response<Body> {
    protected::handle(&apps.protected, request(event)).await.unwrap()
}

async fn authorize(
    apps: &Apps,
    name: &str,
    token: &str,
) -> Result<authorizer::AuthorizerResponse, Diagnostic> {
    let payload = serde_json::from_str(&fixture(name, token)).unwrap();
    authorizer::handle(&apps.authorizer, LambdaEvent::new(payload, Context::default()))
        .await
        .map_err(Diagnostic::from)
}

fn msg(response: &Response<Body>) -> String {
    body_json(response)["msg"]
        .as_str()
        .unwrap_or_else(|| panic!("no msg in {response:?}"))
        .to_owned()
}

/// Signs up alice through the handler and returns her id.
async fn alice(apps: &Apps) -> String {
    let response = users(apps, &fixture_json("users/valid.json", "")).await;
    assert_eq!(response.status(), 201);
    body_json(&response)["id"].as_str().unwrap().to_owned()
}

async fn alice_token(apps: &Apps) -> String {
    alice(apps).await;
    let response = token(apps, &fixture_json("token/valid.json", "")).await;
    assert_eq!(response.status(), 200);
    body_json(&response)["token"].as_str().unwrap().to_owned()
}

mod users_route {
    use super::*;

    #[tokio::test]
    async fn valid_sign_up_is_201_with_id_and_username() {
        let apps = Apps::in_memory();
        let response = users(&apps, &fixture_json("users/valid.json", "")).await;
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = body_json(&response);
        assert_eq!(body["username"], "alice");
        assert_eq!(body["id"].as_str().unwrap().len(), 36, "a UUID");
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "nothing but id and username: {body}"
        );
    }

    #[tokio::test]
    async fn password_is_stored_as_an_argon2id_hash() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        let stored = apps
            .store
            .find_by_username(&Username::parse("alice").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            stored.password_hash.starts_with("$argon2id$v=19$"),
            "{}",
            stored.password_hash
        );
        assert!(!stored.password_hash.contains(PASSWORD));
    }

    #[tokio::test]
    async fn base64_encoded_body_is_decoded_like_api_gateway_sends_it() {
        let apps = Apps::in_memory();
        let event = fixture_json("users/base64-body.json", "");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(users(&apps, &event).await.status(), 201);
        assert_eq!(apps.store.len(), 1);
    }

    #[tokio::test]
    async fn invalid_fixtures_are_rejected_with_a_msg_and_nothing_is_written() {
        let cases = [
            ("users/malformed-json.json", 400, "Request body is not valid JSON"),
            ("users/missing-password.json", 400, "\"password\" is required"),
            (
                "users/short-password.json",
                400,
                "password must be at least 8 characters",
            ),
            (
                "users/wrong-content-type.json",
                415,
                "Content-Type must be application/json",
            ),
            ("users/wrong-method.json", 405, "Method not allowed"),
        ];
        for (name, status, expected) in cases {
            let apps = Apps::in_memory();
            let response = users(&apps, &fixture_json(name, "")).await;
            assert_eq!(response.status(), status, "{name}");
            assert_eq!(msg(&response), expected, "{name}");
            assert!(apps.store.is_empty(), "{name} wrote a user");
        }
        let apps = Apps::in_memory();
        let response = users(&apps, &fixture_json("users/invalid-username.json", "")).await;
        assert_eq!(response.status(), 400);
        assert!(msg(&response).starts_with("username may contain only"));
    }

    #[tokio::test]
    async fn taken_username_is_409_in_any_letter_case() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        for name in ["alice", "ALICE", "Alice"] {
            let response = apps.sign_up(name, "another password 123").await;
            assert_eq!(response.status(), 409, "{name}");
            assert_eq!(msg(&response), "Username is already taken");
        }
        assert_eq!(apps.store.len(), 1);
    }

    #[tokio::test]
    async fn store_failure_is_503_with_a_msg() {
        let apps = Apps::in_memory();
        apps.store.set_unavailable(true);
        let response = users(&apps, &fixture_json("users/valid.json", "")).await;
        assert_eq!(response.status(), 503);
        assert_eq!(msg(&response), "User store unavailable, try again shortly");
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[tokio::test]
    async fn preflight_is_answered_without_touching_the_store() {
        let apps = Apps::in_memory();
        let mut event = fixture_json("users/valid.json", "");
        event["httpMethod"] = json!("OPTIONS");
        event["requestContext"]["httpMethod"] = json!("OPTIONS");
        assert_eq!(users(&apps, &event).await.status(), 204);
        assert!(apps.store.is_empty());
    }
}

mod token_route {
    use super::*;

    #[tokio::test]
    async fn valid_login_returns_a_bearer_token_for_the_user() {
        let apps = Apps::in_memory();
        let id = alice(&apps).await;
        let response = token(&apps, &fixture_json("token/valid.json", "")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body = body_json(&response);
        assert_eq!(body["user_id"], id.as_str());
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        let claims = apps
            .protected
            .verifier
            .verify_access(body["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!(claims.username, "alice");
    }

    #[tokio::test]
    async fn login_is_case_insensitive_on_the_username() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        let response = apps.login("ALICE", PASSWORD).await;
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn unknown_user_and_wrong_password_get_the_same_401() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        let wrong = token(&apps, &fixture_json("token/wrong-password.json", "")).await;
        let unknown = token(&apps, &fixture_json("token/unknown-user.json", "")).await;
        let bad_name = apps.login("not a valid name!", PASSWORD).await;
        for response in [&wrong, &unknown, &bad_name] {
            assert_eq!(response.status(), 401);
            assert_eq!(msg(response), "Bad username or password");
        }
        assert_eq!(wrong.headers(), unknown.headers());
        assert_eq!(body_json(&wrong), body_json(&unknown));
    }

    #[tokio::test]
    async fn invalid_fixtures_are_400() {
        let apps = Apps::in_memory();
        for (name, expected) in [
            ("token/malformed-json.json", "Request body is not valid JSON"),
            ("token/empty-body.json", "Request body is required"),
        ] {
            let response = token(&apps, &fixture_json(name, "")).await;
            assert_eq!(response.status(), 400, "{name}");
            assert_eq!(msg(&response), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn store_failure_is_503() {
        let apps = Apps::in_memory();
        apps.store.set_unavailable(true);
        let response = token(&apps, &fixture_json("token/valid.json", "")).await;
        assert_eq!(response.status(), 503);
    }
}

/// Brute-force protection on `/token`, with the default limit of 5 failures per window.
mod login_throttle {
    use super::*;

    #[tokio::test]
    async fn sixth_failure_in_a_window_is_429_with_retry_after_even_with_the_right_password() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        for _ in 0..5 {
            assert_eq!(apps.login("alice", "wrong password").await.status(), 401);
        }
        for password in ["wrong password", PASSWORD] {
            let response = apps.login("alice", password).await;
            assert_eq!(response.status(), 429);
            assert_eq!(msg(&response), "Too many failed login attempts, try again later");
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=86_400).contains(&retry_after), "{retry_after}");
        }
    }

    #[tokio::test]
    async fn unknown_usernames_are_throttled_the_same_way() {
        let apps = Apps::in_memory();
        for _ in 0..5 {
            assert_eq!(apps.login("nobody", PASSWORD).await.status(), 401);
        }
        assert_eq!(apps.login("nobody", PASSWORD).await.status(), 429);
        assert_eq!(
            apps.login("NOBODY", PASSWORD).await.status(),
            429,
            "counted case-insensitively"
        );
    }

    #[tokio::test]
    async fn a_success_resets_the_count() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        for _ in 0..4 {
            assert_eq!(apps.login("alice", "wrong password").await.status(), 401);
        }
        assert_eq!(apps.login("alice", PASSWORD).await.status(), 200);
        for _ in 0..5 {
            assert_eq!(apps.login("alice", "wrong password").await.status(), 401);
        }
        assert_eq!(apps.login("alice", PASSWORD).await.status(), 429);
    }

    #[tokio::test]
    async fn failures_of_one_user_do_not_lock_another() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        for _ in 0..6 {
            apps.login("bob", "wrong password").await;
        }
        assert_eq!(apps.login("alice", PASSWORD).await.status(), 200);
    }

    #[tokio::test]
    async fn counter_store_failure_is_503_not_an_open_door() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        apps.store.set_unavailable(true);
        assert_eq!(apps.login("alice", PASSWORD).await.status(), 503);
    }
}

/// Bad input to `/users` and `/token`: always a 4xx with a `msg`, never a 5xx, nothing written.
mod bad_input {
    use super::*;

    fn bodies() -> Vec<(&'static str, String)> {
        vec![
            ("malformed JSON", r#"{"username": "bob""#.into()),
            ("JSON array", r#"["bob", "password123"]"#.into()),
            ("JSON number", "42".into()),
            ("JSON null", "null".into()),
            ("JSON string", r#""bob""#.into()),
            ("missing username", r#"{"password": "password123"}"#.into()),
            ("missing both", "{}".into()),
            (
                "username a number",
                r#"{"username": 12345, "password": "password123"}"#.into(),
            ),
            (
                "password an object",
                r#"{"username": "bob", "password": {"a": 1}}"#.into(),
            ),
            (
                "password a bool",
                r#"{"username": "bob", "password": true}"#.into(),
            ),
            (
                "empty username",
                r#"{"username": "", "password": "password123"}"#.into(),
            ),
            ("empty password", r#"{"username": "bob", "password": ""}"#.into()),
            (
                "unknown field",
                r#"{"username": "bob", "password": "password123", "role": "admin"}"#.into(),
            ),
            (
                "duplicate field",
                r#"{"username": "bob", "password": "password123", "password": "x"}"#.into(),
            ),
            ("whitespace only", "   ".into()),
            (
                "1 MiB body",
                format!(r#"{{"username": "bob", "password": "{}"}}"#, "a".repeat(1 << 20)),
            ),
            (
                "password over 1024 bytes",
                format!(r#"{{"username": "bob", "password": "{}"}}"#, "a".repeat(1025)),
            ),
            (
                "invalid UTF-8 escape",
                r#"{"username": "\ud800", "password": "password123"}"#.into(),
            ),
        ]
    }

    async fn check_all(route: &str) {
        for (case, body) in bodies() {
            let apps = Apps::in_memory();
            let event = with_body(fixture_json(&format!("{route}/valid.json"), ""), &body);
            let response = match route {
                "users" => users(&apps, &event).await,
                _ => token(&apps, &event).await,
            };
            let status = response.status().as_u16();
            assert!((400..500).contains(&status), "/{route} {case}: {status}");
            assert!(!msg(&response).is_empty(), "/{route} {case}");
            assert!(apps.store.is_empty(), "/{route} {case} wrote a user");
        }
    }

    #[tokio::test]
    async fn users_route_answers_every_bad_body_with_a_4xx() {
        check_all("users").await;
    }

    #[tokio::test]
    async fn token_route_answers_every_bad_body_with_a_4xx() {
        check_all("token").await;
    }

    #[tokio::test]
    async fn one_mib_body_is_413() {
        let apps = Apps::in_memory();
        let body = format!(r#"{{"username": "bob", "password": "{}"}}"#, "a".repeat(1 << 20));
        let event = with_body(fixture_json("users/valid.json", ""), &body);
        assert_eq!(users(&apps, &event).await.status(), 413);
    }

    #[tokio::test]
    async fn base64_body_that_is_not_json_is_400() {
        let apps = Apps::in_memory();
        let mut event = fixture_json("users/base64-body.json", "");
        event["body"] = json!("bm90IGpzb24="); // "not json"
        let response = users(&apps, &event).await;
        assert_eq!(response.status(), 400);
        assert_eq!(msg(&response), "Request body is not valid JSON");
    }

    #[tokio::test]
    async fn unicode_usernames_are_rejected_at_sign_up() {
        for name in ["björn", "алиса", "ａｌｉｃｅ", "ali\u{200b}ce", "😀😀😀"] {
            let apps = Apps::in_memory();
            let response = apps.sign_up(name, PASSWORD).await;
            assert_eq!(response.status(), 400, "{name}");
            assert!(apps.store.is_empty());
        }
    }

    #[tokio::test]
    async fn unicode_username_at_login_is_a_plain_401() {
        let apps = Apps::in_memory();
        let response = apps.login("ａｌｉｃｅ", PASSWORD).await;
        assert_eq!(response.status(), 401);
        assert_eq!(msg(&response), "Bad username or password");
    }
}

mod protected_route {
    use super::*;

    #[tokio::test]
    async fn authorizer_context_identifies_the_caller_without_a_token_check() {
        let apps = Apps::in_memory();
        apps.store
            .create(&shared::store::UserRecord {
                id: FIXTURE_USER_ID.into(),
                username: "alice".into(),
                password_hash: "unused".into(),
            })
            .await
            .unwrap();
        // The fixture's Authorization header is left as the literal placeholder: API Gateway
        // already checked the token, and the function trusts its context.
        let response = protected(
            &apps,
            &fixture_json("protected/authorizer-context.json", "${TOKEN}"),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            body_json(&response),
            json!({"id": FIXTURE_USER_ID, "username": "alice"})
        );
    }

    #[tokio::test]
    async fn authorizer_context_for_a_deleted_user_is_401() {
        let apps = Apps::in_memory();
        let response = protected(&apps, &fixture_json("protected/authorizer-context.json", "x")).await;
        assert_eq!(response.status(), 401);
        assert_eq!(msg(&response), "User no longer exists");
    }

    #[tokio::test]
    async fn bearer_token_is_verified_when_there_is_no_authorizer_context() {
        let apps = Apps::in_memory();
        let token = alice_token(&apps).await;
        let response = protected(&apps, &fixture_json("protected/bearer.json", &token)).await;
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["username"], "alice");
    }

    #[tokio::test]
    async fn missing_token_is_401_with_a_bearer_challenge() {
        let apps = Apps::in_memory();
        let response = protected(&apps, &fixture_json("protected/no-token.json", "")).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(msg(&response), "Missing Authorization header");
    }

    #[tokio::test]
    async fn invalid_tokens_are_401() {
        let apps = Apps::in_memory();
        let token = alice_token(&apps).await;
        let tampered = tampered(&token);
        for event in [
            fixture_json("protected/expired-token.json", ""),
            fixture_json("protected/basic-auth.json", ""),
            fixture_json("protected/bearer.json", &tampered),
            fixture_json("protected/bearer.json", ""),
            fixture_json("protected/bearer.json", "not.a.jwt"),
        ] {
            let response = protected(&apps, &event).await;
            assert_eq!(response.status(), 401, "{}", event["headers"]["Authorization"]);
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\""
            );
            assert_eq!(msg(&response), "Invalid or expired token");
        }
    }

    #[tokio::test]
    async fn expired_token_signed_with_our_key_is_401() {
        let apps = Apps::in_memory();
        alice(&apps).await;
        let stored = apps
            .store
            .find_by_username(&Username::parse("alice").unwrap())
            .await
            .unwrap()
            .unwrap();
        let old = apps
            .issuer
            .issue_access_at(&stored.id, "alice", 1_600_000_000)
            .unwrap();
        let response = protected(&apps, &fixture_json("protected/bearer.json", &old.token)).await;
        assert_eq!(response.status(), 401);
    }
}

mod authorizer_fn {
    use super::*;

    #[tokio::test]
    async fn valid_token_gets_an_allow_policy_for_the_whole_stage() {
        let apps = Apps::in_memory();
        let token = alice_token(&apps).await;
        let response = authorize(&apps, "authorizer/valid.json", &token).await.unwrap();
        let json = serde_json::to_value(&response).unwrap();
        let id = apps.protected.verifier.verify_access(&token).unwrap().sub;
        assert_eq!(
            json,
            json!({
                "principalId": id,
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/*/*"
                    }]
                },
                "context": {"sub": id, "username": "alice"}
            })
        );
        // The shape API Gateway reads, as the AWS event types model it.
        let typed: ApiGatewayCustomAuthorizerResponse = serde_json::from_value(json).unwrap();
        assert_eq!(typed.principal_id.as_deref(), Some(id.as_str()));
    }

    #[tokio::test]
    async fn context_values_are_flat_scalars() {
        let apps = Apps::in_memory();
        let token = alice_token(&apps).await;
        let response = authorize(&apps, "authorizer/valid.json", &token).await.unwrap();
        let context = serde_json::to_value(&response.context).unwrap();
        assert!(
            context
                .as_object()
                .unwrap()
                .values()
                .all(|v| !v.is_object() && !v.is_array())
        );
    }

    #[tokio::test]
    async fn every_invalid_token_fails_with_exactly_unauthorized() {
        let apps = Apps::in_memory();
        let token = alice_token(&apps).await;
        let tampered = tampered(&token);
        let cases = [
            ("authorizer/expired.json", ""),
            ("authorizer/missing-token.json", ""),
            ("authorizer/empty-bearer.json", ""),
            ("authorizer/basic-scheme.json", ""),
            ("authorizer/garbage.json", ""),
            ("authorizer/valid.json", tampered.as_str()),
        ];
        for (name, token) in cases {
            let err = authorize(&apps, name, token).await.unwrap_err();
            assert_eq!(err.error_message, "Unauthorized", "{name}");
        }
    }
}
