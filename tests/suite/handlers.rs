//! Every function's handler, driven by the `events/` fixtures and by the client flows, against
//! a fresh table of the DynamoDB embedded in the test process (Dynoxide). No service to start.

use integration_tests::faults::Fault;
use integration_tests::test_util::{ISSUER, PASSWORD, header, mint, signing_key, tampered};
use integration_tests::{
    Answer, Api, Apps, Call, FIXTURE_SESSION_ID, FIXTURE_USER_ID, an_event, fixture, fixture_json, login,
    protected, request, sign_up, signed_up_user, start_fixture_session, with_body,
};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::store::{CreateUser, SessionStore, UserRecord};

async fn users(apps: &Apps, event: &Value) -> Answer {
    users::handle(&apps.users, request(event)).await.unwrap().into()
}

async fn token(apps: &Apps, event: &Value) -> Answer {
    token::handle(&apps.token, request(event)).await.unwrap().into()
}

async fn protected_event(apps: &Apps, event: &Value) -> Answer {
    protected::handle(&apps.protected, request(event))
        .await
        .unwrap()
        .into()
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

/// The fixtures' `alice`, signed up through the `users/valid.json` event; her id.
async fn alice(apps: &Apps) -> String {
    let response = users(apps, &fixture_json("users/valid.json", "")).await;
    assert_eq!(response.status, 201, "{response:?}");
    response.body["id"].as_str().unwrap().to_owned()
}

mod users_route {
    use super::*;

    #[tokio::test]
    async fn valid_sign_up_is_201_with_id_and_username() {
        let apps = Apps::embedded().await;
        let response = users(&apps, &fixture_json("users/valid.json", "")).await;
        assert_eq!(response.status, 201);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.body["username"], "alice");
        assert_eq!(response.body["id"].as_str().unwrap().len(), 36, "a UUID");
        assert_eq!(
            response.body.as_object().unwrap().len(),
            2,
            "nothing but id and username: {}",
            response.body
        );
    }

    #[tokio::test]
    async fn password_is_stored_as_an_argon2id_hash() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let stored = apps.user("alice").await.unwrap();
        assert!(
            stored.password_hash.starts_with("$argon2id$v=19$"),
            "{}",
            stored.password_hash
        );
        assert!(!stored.password_hash.contains(PASSWORD));
    }

    #[tokio::test]
    async fn base64_encoded_body_is_decoded_like_api_gateway_sends_it() {
        let apps = Apps::embedded().await;
        let event = fixture_json("users/base64-body.json", "");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(users(&apps, &event).await.status, 201);
        assert_eq!(apps.user_count().await, 1);
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
            (
                "users/invalid-username.json",
                400,
                "username may contain only ASCII letters, digits, '.', '_' and '-', and must start with a letter or digit",
            ),
        ];
        for (name, status, expected) in cases {
            let apps = Apps::embedded().await;
            let response = users(&apps, &fixture_json(name, "")).await;
            assert_eq!(response.status, status, "{name}");
            assert_eq!(response.msg(), expected, "{name}");
            assert_eq!(apps.user_count().await, 0, "{name} wrote a user");
        }
    }

    #[tokio::test]
    async fn a_wrong_method_is_405_with_allow_naming_the_routes_method() {
        let apps = Apps::embedded().await;
        let response = users(&apps, &fixture_json("users/wrong-method.json", "")).await;
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("POST, OPTIONS"));
        let response = apps
            .call(Call::new(lambda_http::http::Method::POST, "/protected"))
            .await;
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("GET, OPTIONS"));
    }

    #[tokio::test]
    async fn taken_username_is_409_in_any_letter_case() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        for name in ["alice", "ALICE", "Alice"] {
            let response = sign_up(&apps, name, "another password 123").await;
            assert_eq!(response.status, 409, "{name}");
            assert_eq!(response.msg(), "Username is already taken");
        }
        assert_eq!(apps.user_count().await, 1);
    }

    #[tokio::test]
    async fn store_failure_is_503_with_a_msg() {
        let apps = Apps::embedded().await;
        apps.faults.arm("*", usize::MAX, Fault::Refused);
        let response = users(&apps, &fixture_json("users/valid.json", "")).await;
        assert_eq!(response.status, 503);
        assert_eq!(response.msg(), "User store unavailable, try again shortly");
        assert_eq!(response.header("retry-after"), Some("1"));
    }

    #[tokio::test]
    async fn preflight_is_answered_without_touching_the_store() {
        let apps = Apps::embedded().await;
        let mut event = fixture_json("users/valid.json", "");
        event["httpMethod"] = json!("OPTIONS");
        event["requestContext"]["httpMethod"] = json!("OPTIONS");
        assert_eq!(users(&apps, &event).await.status, 204);
        assert_eq!(apps.user_count().await, 0);
    }

    #[tokio::test]
    async fn preflight_from_an_allowed_origin_names_the_routes_method() {
        let mut apps = Apps::embedded().await;
        apps.protected.responder = shared::http::Responder::new(shared::CorsConfig {
            allowed_origins: vec!["https://app.example".into()],
        });
        let call = Call::new(lambda_http::http::Method::OPTIONS, "/protected")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET");
        let response = apps.call(call).await;
        assert_eq!(response.status, 204);
        assert_eq!(
            response.header("access-control-allow-methods"),
            Some("GET, OPTIONS")
        );
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://app.example")
        );
    }
}

mod token_route {
    use super::*;

    #[tokio::test]
    async fn valid_login_returns_a_bearer_token_for_the_user() {
        let apps = Apps::embedded().await;
        let id = alice(&apps).await;
        let response = token(&apps, &fixture_json("token/valid.json", "")).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("cache-control"), Some("no-store"));
        assert_eq!(response.body["user_id"], id.as_str());
        assert_eq!(response.body["token_type"], "Bearer");
        assert_eq!(response.body["expires_in"], 900);
        let claims = apps
            .protected
            .verifier
            .verify_access(response.body["token"].as_str().unwrap(), ISSUER)
            .unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!(claims.username, "alice");
    }

    #[tokio::test]
    async fn login_is_case_insensitive_on_the_username() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        assert_eq!(login(&apps, "ALICE", PASSWORD).await.status, 200);
    }

    #[tokio::test]
    async fn unknown_user_and_wrong_password_get_the_same_401() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let wrong = token(&apps, &fixture_json("token/wrong-password.json", "")).await;
        let unknown = token(&apps, &fixture_json("token/unknown-user.json", "")).await;
        let bad_name = login(&apps, "not a valid name!", PASSWORD).await;
        for response in [&wrong, &unknown, &bad_name] {
            assert_eq!(response.status, 401);
            assert_eq!(response.msg(), "Bad username or password");
        }
        assert_eq!(wrong.headers, unknown.headers);
        assert_eq!(wrong.body, unknown.body);
    }

    #[tokio::test]
    async fn invalid_fixtures_are_400() {
        let apps = Apps::embedded().await;
        for (name, expected) in [
            ("token/malformed-json.json", "Request body is not valid JSON"),
            ("token/empty-body.json", "Request body is required"),
        ] {
            let response = token(&apps, &fixture_json(name, "")).await;
            assert_eq!(response.status, 400, "{name}");
            assert_eq!(response.msg(), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn store_failure_is_503() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        apps.faults.arm("*", usize::MAX, Fault::Refused);
        let response = token(&apps, &fixture_json("token/valid.json", "")).await;
        assert_eq!(response.status, 503);
    }

    #[tokio::test]
    async fn the_token_response_debug_output_never_shows_the_token() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let response = token(&apps, &fixture_json("token/valid.json", "")).await;
        let parsed: token::TokenResponse = serde_json::from_value(response.body.clone()).unwrap();
        let debug = format!("{parsed:?}");
        assert!(!debug.contains(&parsed.token), "{debug}");
        assert!(
            debug.contains("redacted") && debug.contains(&parsed.user_id),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn a_hash_with_old_argon2_parameters_is_upgraded_at_login() {
        let apps = Apps::embedded().await;
        let old = shared::password::PasswordHasher::new(&shared::PasswordConfig {
            memory_kib: 2048,
            iterations: 2,
            parallelism: 1,
        })
        .unwrap();
        let password = shared::user::Password::parse_new(PASSWORD.into()).unwrap();
        let user = UserRecord {
            id: "5a2e7d4c-0000-4000-8000-00000000000a".into(),
            username: "olduser".into(),
            password_hash: old.hash(password).await.unwrap(),
            epoch: 0,
            email: None,
            reset_hash: None,
            totp: None,
            totp_pending: None,
            passkeys: Vec::new(),
        };
        apps.store.create(&user).await.unwrap();
        assert!(user.password_hash.starts_with("$argon2id$v=19$m=2048,t=2,p=1$"));

        assert_eq!(login(&apps, "olduser", PASSWORD).await.status, 200);
        let stored = apps.user("olduser").await.unwrap().password_hash;
        assert!(stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{stored}");
        // The new hash still holds the same password, and a second login leaves it alone.
        assert_eq!(login(&apps, "olduser", PASSWORD).await.status, 200);
        assert_eq!(apps.user("olduser").await.unwrap().password_hash, stored);
    }
}

/// Brute-force protection on `/token`, with the default limit of 5 attempts per window.
mod login_throttle {
    use super::*;

    #[tokio::test]
    async fn sixth_attempt_in_a_window_is_429_with_retry_after_even_with_the_right_password() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        for _ in 0..5 {
            assert_eq!(login(&apps, "alice", "wrong password").await.status, 401);
        }
        for password in ["wrong password", PASSWORD] {
            let response = login(&apps, "alice", password).await;
            assert_eq!(response.status, 429);
            assert_eq!(response.msg(), "Too many failed login attempts, try again later");
            let retry_after: u64 = response.header("retry-after").unwrap().parse().unwrap();
            let now = apps.clock.now();
            assert_eq!(retry_after, 900 - now % 900, "the rest of the window");
        }
    }

    #[tokio::test]
    async fn the_limit_lifts_when_the_window_ends() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        for _ in 0..5 {
            login(&apps, "alice", "wrong password").await;
        }
        let refused = login(&apps, "alice", PASSWORD).await;
        let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        apps.clock.advance(retry_after - 1);
        assert_eq!(login(&apps, "alice", PASSWORD).await.status, 429);
        apps.clock.advance(1);
        assert_eq!(login(&apps, "alice", PASSWORD).await.status, 200);
    }

    #[tokio::test]
    async fn unknown_usernames_are_throttled_the_same_way() {
        let apps = Apps::embedded().await;
        for _ in 0..5 {
            assert_eq!(login(&apps, "nobody", PASSWORD).await.status, 401);
        }
        assert_eq!(login(&apps, "nobody", PASSWORD).await.status, 429);
        assert_eq!(
            login(&apps, "NOBODY", PASSWORD).await.status,
            429,
            "counted case-insensitively"
        );
    }

    #[tokio::test]
    async fn a_success_resets_the_count() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        for _ in 0..4 {
            assert_eq!(login(&apps, "alice", "wrong password").await.status, 401);
        }
        assert_eq!(login(&apps, "alice", PASSWORD).await.status, 200);
        for _ in 0..5 {
            assert_eq!(login(&apps, "alice", "wrong password").await.status, 401);
        }
        assert_eq!(login(&apps, "alice", PASSWORD).await.status, 429);
    }

    #[tokio::test]
    async fn failures_of_one_user_do_not_lock_another() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        for _ in 0..6 {
            login(&apps, "bob", "wrong password").await;
        }
        assert_eq!(login(&apps, "alice", PASSWORD).await.status, 200);
    }

    #[tokio::test]
    async fn a_reservation_that_cannot_be_written_is_503_even_with_the_right_password() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        apps.faults.arm("UpdateItem", usize::MAX, Fault::Refused);
        let response = login(&apps, "alice", PASSWORD).await;
        assert_eq!(response.status, 503);
        assert_eq!(response.header("retry-after"), Some("1"));
    }

    #[tokio::test]
    async fn a_count_that_cannot_be_cleared_does_not_fail_a_right_password() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        apps.faults.arm("DeleteItem", usize::MAX, Fault::Refused);
        let response = login(&apps, "alice", PASSWORD).await;
        assert_eq!(response.status, 200, "{response:?}");
        let window = apps.token.throttle.current_window();
        assert_eq!(apps.attempts("alice", window).await, 1);
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
            let apps = Apps::embedded().await;
            let event = with_body(fixture_json(&format!("{route}/valid.json"), ""), &body);
            let response = match route {
                "users" => users(&apps, &event).await,
                _ => token(&apps, &event).await,
            };
            assert!(
                (400..500).contains(&response.status),
                "/{route} {case}: {}",
                response.status
            );
            assert!(!response.msg().is_empty(), "/{route} {case}");
            assert_eq!(apps.user_count().await, 0, "/{route} {case} wrote a user");
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
        let apps = Apps::embedded().await;
        let body = format!(r#"{{"username": "bob", "password": "{}"}}"#, "a".repeat(1 << 20));
        let event = with_body(fixture_json("users/valid.json", ""), &body);
        assert_eq!(users(&apps, &event).await.status, 413);
    }

    #[tokio::test]
    async fn base64_body_that_is_not_json_is_400() {
        let apps = Apps::embedded().await;
        let mut event = fixture_json("users/base64-body.json", "");
        event["body"] = json!("bm90IGpzb24="); // "not json"
        let response = users(&apps, &event).await;
        assert_eq!(response.status, 400);
        assert_eq!(response.msg(), "Request body is not valid JSON");
    }

    #[tokio::test]
    async fn unicode_usernames_are_rejected_at_sign_up() {
        for name in ["björn", "алиса", "ａｌｉｃｅ", "ali\u{200b}ce", "😀😀😀"] {
            let apps = Apps::embedded().await;
            let response = sign_up(&apps, name, PASSWORD).await;
            assert_eq!(response.status, 400, "{name}");
            assert_eq!(apps.user_count().await, 0);
        }
    }

    #[tokio::test]
    async fn unicode_username_at_login_is_a_plain_401() {
        let apps = Apps::embedded().await;
        let response = login(&apps, "ａｌｉｃｅ", PASSWORD).await;
        assert_eq!(response.status, 401);
        assert_eq!(response.msg(), "Bad username or password");
    }
}

mod protected_route {
    use super::*;

    /// The fixtures' user `alice`, logged in: her session is the one their verdict names.
    async fn fixture_user(apps: &Apps) {
        apps.store
            .create(&UserRecord {
                id: FIXTURE_USER_ID.into(),
                username: "alice".into(),
                password_hash: "unused".into(),
                epoch: 0,
                email: None,
                reset_hash: None,
                totp: None,
                totp_pending: None,
                passkeys: Vec::new(),
            })
            .await
            .unwrap();
        start_fixture_session(apps.store.as_ref(), apps.clock.now()).await;
    }

    /// The `authorizer-context.json` fixture with its verdict's `exp` set to `exp`.
    fn with_exp(exp: Value) -> Value {
        let mut event = fixture_json("protected/authorizer-context.json", "${TOKEN}");
        event["requestContext"]["authorizer"]["exp"] = exp;
        event
    }

    #[tokio::test]
    async fn authorizer_context_identifies_the_caller_without_a_token_check() {
        let apps = Apps::embedded().await;
        fixture_user(&apps).await;
        // The fixture's Authorization header is left as the literal placeholder: API Gateway
        // already checked the token, and the function trusts its context.
        let response = protected_event(
            &apps,
            &fixture_json("protected/authorizer-context.json", "${TOKEN}"),
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, json!({"id": FIXTURE_USER_ID, "username": "alice"}));
    }

    #[tokio::test]
    async fn a_cached_verdict_is_refused_once_its_tokens_exp_has_passed() {
        let apps = Apps::embedded().await;
        fixture_user(&apps).await;
        let now = apps.clock.now();
        // API Gateway writes context values as strings; a number is read the same way.
        for (exp, status) in [
            (json!((now + 60).to_string()), 200),
            (json!(now + 60), 200),
            (json!((now - 2).to_string()), 200),
            (json!((now - 6).to_string()), 401),
            (json!((now - 3600).to_string()), 401),
            (json!("soon"), 401),
            (Value::Null, 401),
        ] {
            let response = protected_event(&apps, &with_exp(exp.clone())).await;
            assert_eq!(response.status, status, "exp {exp}");
            if status == 401 {
                assert_eq!(response.msg(), "Invalid or expired token");
            }
        }
    }

    #[tokio::test]
    async fn a_context_whose_sub_is_not_the_principal_is_refused() {
        let apps = Apps::embedded().await;
        fixture_user(&apps).await;
        let mut event = fixture_json("protected/authorizer-context.json", "${TOKEN}");
        event["requestContext"]["authorizer"]["sub"] = json!("someone-else");
        assert_eq!(protected_event(&apps, &event).await.status, 401);
    }

    #[tokio::test]
    async fn a_verdict_of_an_ended_or_unknown_session_is_401() {
        let apps = Apps::embedded().await;
        fixture_user(&apps).await;
        let event = fixture_json("protected/authorizer-context.json", "${TOKEN}");
        assert_eq!(protected_event(&apps, &event).await.status, 200);
        apps.store
            .revoke_session(
                FIXTURE_SESSION_ID,
                apps.clock.now(),
                &an_event(FIXTURE_USER_ID, apps.clock.now()),
            )
            .await
            .unwrap();
        let response = protected_event(&apps, &event).await;
        assert_eq!(response.status, 401, "revoked: {response:?}");
        assert_eq!(response.msg(), "Invalid or expired token");
        let mut unknown = event.clone();
        unknown["requestContext"]["authorizer"]["sid"] = json!("no-such-session");
        assert_eq!(protected_event(&apps, &unknown).await.status, 401, "unknown");
        let mut missing = event;
        missing["requestContext"]["authorizer"]
            .as_object_mut()
            .unwrap()
            .remove("sid");
        assert_eq!(protected_event(&apps, &missing).await.status, 401, "no sid");
    }

    #[tokio::test]
    async fn a_verdict_is_refused_after_its_sessions_absolute_end() {
        let apps = Apps::embedded().await;
        fixture_user(&apps).await;
        let event = fixture_json("protected/authorizer-context.json", "${TOKEN}");
        apps.clock.advance(30 * 86_400 - 1);
        assert_eq!(protected_event(&apps, &event).await.status, 200);
        apps.clock.advance(1);
        assert_eq!(protected_event(&apps, &event).await.status, 401);
    }

    #[tokio::test]
    async fn authorizer_context_for_a_deleted_user_is_401() {
        let apps = Apps::embedded().await;
        let response = protected_event(&apps, &fixture_json("protected/authorizer-context.json", "x")).await;
        assert_eq!(response.status, 401);
        assert_eq!(response.msg(), "User no longer exists");
    }

    #[tokio::test]
    async fn bearer_token_is_verified_when_there_is_no_authorizer_context() {
        let apps = Apps::embedded().await;
        let user = signed_up_user(&apps).await;
        let response = protected_event(&apps, &fixture_json("protected/bearer.json", &user.token)).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, json!({"id": user.id, "username": user.name}));
    }

    #[tokio::test]
    async fn missing_token_is_401_with_a_bearer_challenge() {
        let apps = Apps::embedded().await;
        let response = protected_event(&apps, &fixture_json("protected/no-token.json", "")).await;
        assert_eq!(response.status, 401);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(response.msg(), "Missing Authorization header");
    }

    #[tokio::test]
    async fn invalid_tokens_are_401() {
        let apps = Apps::embedded().await;
        let user = signed_up_user(&apps).await;
        let tampered = tampered(&user.token);
        for event in [
            fixture_json("protected/expired-token.json", ""),
            fixture_json("protected/basic-auth.json", ""),
            fixture_json("protected/bearer.json", &tampered),
            fixture_json("protected/bearer.json", ""),
            fixture_json("protected/bearer.json", "not.a.jwt"),
        ] {
            let response = protected_event(&apps, &event).await;
            assert_eq!(response.status, 401, "{}", event["headers"]["Authorization"]);
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer error=\"invalid_token\"")
            );
            assert_eq!(response.msg(), "Invalid or expired token");
        }
    }

    #[tokio::test]
    async fn a_token_for_a_name_taken_again_by_someone_else_is_401() {
        let apps = Apps::embedded().await;
        let claims = integration_tests::test_util::claims(
            FIXTURE_USER_ID,
            "alice",
            jsonwebtoken::get_current_timestamp(),
        );
        let token = mint(&header("ES256"), &claims, &signing_key());
        alice(&apps).await; // another alice, with another id
        let response = protected(&apps, Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status, 401);
        assert_eq!(response.msg(), "User no longer exists");
    }
}

/// The `events/` fixtures that carry an expired token fail on expiry, not on their key.
mod expired_fixtures {
    use super::*;

    fn token_of(authorization: &str) -> String {
        authorization.strip_prefix("Bearer ").unwrap().to_owned()
    }

    #[test]
    fn are_signed_with_the_test_key_and_expired() {
        let verifier = integration_tests::test_util::verifier();
        let authorizer = fixture_json("authorizer/expired.json", "");
        let protected = fixture_json("protected/expired-token.json", "");
        for authorization in [
            authorizer["authorizationToken"].as_str().unwrap(),
            protected["headers"]["Authorization"].as_str().unwrap(),
        ] {
            assert_eq!(
                verifier.verify_access(&token_of(authorization), ISSUER),
                Err(shared::VerifyError::Expired)
            );
        }
    }
}

mod authorizer_fn {
    use super::*;

    #[tokio::test]
    async fn valid_token_gets_an_allow_policy_for_the_whole_stage() {
        let apps = Apps::embedded().await;
        let user = signed_up_user(&apps).await;
        let response = authorize(&apps, "authorizer/valid.json", &user.token)
            .await
            .unwrap();
        let exp = apps
            .protected
            .verifier
            .verify_access(&user.token, ISSUER)
            .unwrap()
            .exp;
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "principalId": user.id,
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Action": ["execute-api:Invoke"],
                        "Effect": "Allow",
                        "Resource": ["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/*/*"]
                    }]
                },
                "context": {
                    "sub": user.id, "username": user.name, "exp": exp, "epoch": 0,
                    "sid": integration_tests::sid_of(&user.token),
                },
                "usageIdentifierKey": null
            })
        );
    }

    #[tokio::test]
    async fn every_invalid_token_fails_with_exactly_unauthorized() {
        let apps = Apps::embedded().await;
        let user = signed_up_user(&apps).await;
        let tampered = tampered(&user.token);
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

    #[tokio::test]
    async fn a_method_arn_that_is_not_execute_api_is_a_500_not_an_allow() {
        let apps = Apps::embedded().await;
        let user = signed_up_user(&apps).await;
        let mut event = fixture_json("authorizer/valid.json", &user.token);
        event["methodArn"] = json!("arn:aws:lambda:us-east-1:123456789012:function:x");
        let payload = serde_json::from_value(event).unwrap();
        let err = authorizer::handle(&apps.authorizer, LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap_err();
        assert_eq!(err, authorizer::AuthorizerError::InvalidMethodArn);
    }
}
