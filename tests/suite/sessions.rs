//! Sessions through the public routes: `POST /token`, `/token/refresh`, `/logout`,
//! `/logout/all` and `/password`. Each flow is written once against [`Api`] and run in process
//! (the handlers on a fresh table of the embedded DynamoDB, a settable clock) and, in `./dev
//! test`, through the local API in front of `cargo lambda watch`, with a cookie jar as a browser
//! keeps one. Flows that need time to pass (grace, idle, absolute lifetime) run in process, on
//! the fixed clock; their `store_` variants run them on the store suite's DynamoDB
//! ([`integration_tests::Apps::for_store_suite`]).

use std::sync::Arc;
use std::time::Duration;

use integration_tests::*;

use crate::dynamodb::store_apps;
use integration_tests::faults::Fault;
use serde_json::json;
use shared::SessionConfig;
use shared::store::dynamodb::{REFRESH_PREFIX, SESSION_PREFIX};
use shared::test_util::PASSWORD;
use tokio::task::JoinSet;

const DAY: u64 = 86_400;
const NEW_PASSWORD: &str = "a brand new passphrase";

fn local_api() -> HttpApi {
    HttpApi::local_api()
}

/// A user signed up with [`PASSWORD`], logged in from a browser: the jar holds the cookies.
async fn browser_user(api: &impl Api) -> (User, CookieJar) {
    let user = signed_up_user(api).await;
    let mut jar = CookieJar::default();
    let answer = browser_login(api, &mut jar, &user.name, PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body.get("refresh_token"),
        None,
        "a browser gets the token only in the cookie"
    );
    (
        User {
            token: answer.body["token"].as_str().unwrap().to_owned(),
            ..user
        },
        jar,
    )
}

fn access_token(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["token"].as_str().unwrap().to_owned()
}

// --- flows, over any transport --------------------------------------------------------------

/// login → refresh → refresh: each refresh answers a new access token and rotates the cookie;
/// the newest access token reaches `protected`.
async fn refresh_rotates_the_cookie(api: &impl Api) {
    let (user, mut jar) = browser_user(api).await;
    let mut seen = vec![jar.refresh_token().unwrap()];
    for _ in 0..2 {
        let answer = cookie_post(api, &mut jar, "/token/refresh", None).await;
        let token = access_token(&answer);
        assert_eq!(answer.body["user_id"], json!(user.id));
        assert_eq!(answer.body["token_type"], "Bearer");
        assert!(answer.body["expires_in"].as_u64().unwrap() > 0);
        assert_eq!(answer.body.get("refresh_token"), None);
        let rotated = jar.refresh_token().unwrap();
        assert!(!seen.contains(&rotated), "the refresh token is rotated");
        seen.push(rotated);
        let me = protected(api, Some(&format!("Bearer {token}"))).await;
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(me.body["username"], json!(user.name));
    }
}

/// A client that asks for the token in the body gets it there (and no cookie), and sends it back
/// in the body.
async fn body_clients_get_and_send_the_token_in_the_body(api: &impl Api) {
    let user = signed_up_user(api).await;
    let answer = body_login(api, &user.name, PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(set_cookies(&answer).is_empty(), "no cookie: {answer:?}");
    let first = answer.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 43);
    let answer = body_post(api, "/token/refresh", &first).await;
    access_token(&answer);
    assert!(set_cookies(&answer).is_empty());
    let second = answer.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    access_token(&body_post(api, "/token/refresh", &second).await);
}

/// Tokens never issued, and malformed ones, are 401 and revoke nothing.
async fn forged_and_random_tokens_are_refused_and_revoke_nothing(api: &impl Api) {
    let (_, mut jar) = browser_user(api).await;
    let real = jar.refresh_token().unwrap();
    let mut forged = real.clone().into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for token in [
        forged.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "not-a-token",
        "",
        &format!("{real}x"),
    ] {
        let answer = body_post(api, "/token/refresh", token).await;
        assert_eq!(answer.status, 401, "{token:?}: {answer:?}");
        assert_eq!(answer.msg(), "Invalid or expired refresh token");
    }
    let missing = api.call(Call::post_json("/token/refresh", &json!({}))).await;
    assert_eq!(missing.status, 401, "{missing:?}");
    access_token(&cookie_post(api, &mut jar, "/token/refresh", None).await);
}

/// Logout ends the session (and clears the cookie); it is idempotent, and 204 for anything.
async fn logout_ends_the_session(api: &impl Api) {
    let (_, mut jar) = browser_user(api).await;
    let token = jar.refresh_token().unwrap();
    let answer = cookie_post(api, &mut jar, "/logout", None).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    let cleared = set_cookies(&answer);
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared
            .iter()
            .all(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0"))
    );
    assert!(jar.is_empty());
    let answer = body_post(api, "/token/refresh", &token).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    for again in [
        body_post(api, "/logout", &token).await,
        body_post(api, "/logout", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await,
        api.call(Call::post_json("/logout", &json!({}))).await,
    ] {
        assert_eq!(again.status, 204, "{again:?}");
    }
}

/// Logout everywhere ends every session and every access token issued before it.
async fn logout_everywhere_ends_every_session_and_access_token(api: &impl Api) {
    let (user, mut phone) = browser_user(api).await;
    let mut laptop = CookieJar::default();
    let old_access = access_token(&browser_login(api, &mut laptop, &user.name, PASSWORD).await);
    let body_client = body_login(api, &user.name, PASSWORD).await;
    let body_token = body_client.body["refresh_token"].as_str().unwrap().to_owned();

    let answer = bearer_post(api, "/logout/all", &user.token, &json!({})).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    for token in [&user.token, &old_access] {
        let me = protected(api, Some(&format!("Bearer {token}"))).await;
        assert_eq!(me.status, 401, "an access token from before: {me:?}");
    }
    for jar in [&mut phone, &mut laptop] {
        let answer = cookie_post(api, jar, "/token/refresh", None).await;
        assert_eq!(answer.status, 401, "{answer:?}");
    }
    assert_eq!(body_post(api, "/token/refresh", &body_token).await.status, 401);
    // The old access token cannot log out everywhere again; a new login works.
    assert_eq!(
        bearer_post(api, "/logout/all", &user.token, &json!({}))
            .await
            .status,
        401
    );
    let mut jar = CookieJar::default();
    let fresh = access_token(&browser_login(api, &mut jar, &user.name, PASSWORD).await);
    assert_eq!(protected(api, Some(&format!("Bearer {fresh}"))).await.status, 200);
    access_token(&cookie_post(api, &mut jar, "/token/refresh", None).await);
}

/// A password change: the old password and every old session stop working, the new one works.
async fn a_password_change_ends_every_session(api: &impl Api) {
    let (user, mut jar) = browser_user(api).await;
    let change = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let answer = bearer_post(api, "/password", &user.token, &change).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(login(api, &user.name, PASSWORD).await.status, 401, "old password");
    assert_eq!(
        cookie_post(api, &mut jar, "/token/refresh", None).await.status,
        401
    );
    assert_eq!(protected(api, Some(&user.bearer())).await.status, 401);
    let fresh = access_token(&login(api, &user.name, NEW_PASSWORD).await);
    assert_eq!(protected(api, Some(&format!("Bearer {fresh}"))).await.status, 200);
    // Invalid changes are refused before anything is checked or written.
    for (body, status) in [
        (
            json!({"current_password": NEW_PASSWORD, "new_password": "short"}),
            400,
        ),
        (json!({"current_password": NEW_PASSWORD}), 400),
        (
            json!({"current_password": NEW_PASSWORD, "new_password": NEW_PASSWORD, "x": 1}),
            400,
        ),
    ] {
        let answer = bearer_post(api, "/password", &fresh, &body).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
    }
    assert_eq!(protected(api, Some(&format!("Bearer {fresh}"))).await.status, 200);
}

/// Wrong current passwords are counted by the login limit: after the limit, 429, even with the
/// right one; the password is unchanged.
async fn wrong_current_passwords_are_counted_by_the_login_limit(api: &impl Api) {
    let user = signed_up_user(api).await;
    let wrong = json!({"current_password": "not the password at all", "new_password": NEW_PASSWORD});
    // The login of `signed_up_user` cleared its window; five wrong guesses fill it.
    for _ in 0..5 {
        let answer = bearer_post(api, "/password", &user.token, &wrong).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.msg(), "Current password is wrong");
    }
    let right = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let answer = bearer_post(api, "/password", &user.token, &right).await;
    assert_eq!(answer.status, 429, "{answer:?}");
    assert!(answer.header("retry-after").is_some());
    assert_eq!(
        login(api, &user.name, PASSWORD).await.status,
        429,
        "the same limit as login"
    );
}

/// The cookie routes accept a cookie only from an allowed origin (or no browser), with a JSON
/// content type; CORS lets that origin send credentials.
async fn cookie_requests_from_other_origins_or_forms_are_refused(api: &impl Api, allowed: &str) {
    let (_, mut jar) = browser_user(api).await;
    let before = jar.refresh_token().unwrap();
    for origin in [
        "https://evil.example.com",
        "null",
        "https://app.example.com.evil.com",
    ] {
        let answer = cookie_post(api, &mut jar, "/token/refresh", Some(origin)).await;
        assert_eq!(answer.status, 403, "{origin}: {answer:?}");
        assert_eq!(answer.msg(), "Origin not allowed");
        assert_eq!(answer.header("access-control-allow-credentials"), None);
    }
    let cookie = jar.header_for("/token/refresh").unwrap();
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let call = Call::new(lambda_http::http::Method::POST, "/token/refresh")
            .header("content-type", content_type)
            .header("cookie", &cookie)
            .body("refresh_token=x".into());
        let answer = api.call(call).await;
        assert_eq!(answer.status, 415, "{content_type}: {answer:?}");
    }
    assert_eq!(jar.refresh_token().unwrap(), before, "nothing was rotated");
    let answer = cookie_post(api, &mut jar, "/token/refresh", Some(allowed)).await;
    access_token(&answer);
    assert_eq!(answer.header("access-control-allow-origin"), Some(allowed));
    assert_eq!(answer.header("access-control-allow-credentials"), Some("true"));
}

/// 20 requests with one token at once (a browser with many tabs, retries): one rotates it, the
/// others are its duplicates within the grace period (an access token and the same successor),
/// nothing is revoked, and the one successor keeps the session going.
async fn concurrent_refreshes_leave_one_lineage<A: Api + Send + 'static>(api: Arc<A>) {
    let user = signed_up_user(&*api).await;
    let login = body_login(&*api, &user.name, PASSWORD).await;
    let token = login.body["refresh_token"].as_str().unwrap().to_owned();
    // Concurrent tasks, as concurrent function instances would run them.
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (api, token) = (api.clone(), token.clone());
        tasks.spawn(async move { body_post(&*api, "/token/refresh", &token).await });
    }
    let answers = tasks.join_all().await;
    let mut successors = Vec::new();
    for answer in &answers {
        access_token(answer);
        successors.push(answer.body["refresh_token"].as_str().unwrap().to_owned());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one successor for all: {answers:?}");
    assert_ne!(successors[0], token);
    let next = access_token(&body_post(&*api, "/token/refresh", &successors[0]).await);
    assert_eq!(
        protected(&*api, Some(&format!("Bearer {next}"))).await.status,
        200
    );
}

// --- in process -------------------------------------------------------------------------------

#[tokio::test]
async fn in_process_refresh_rotates_the_cookie() {
    refresh_rotates_the_cookie(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_body_clients_get_and_send_the_token_in_the_body() {
    body_clients_get_and_send_the_token_in_the_body(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_forged_and_random_tokens_are_refused_and_revoke_nothing() {
    forged_and_random_tokens_are_refused_and_revoke_nothing(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_logout_ends_the_session() {
    logout_ends_the_session(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_logout_everywhere_ends_every_session_and_access_token() {
    logout_everywhere_ends_every_session_and_access_token(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_a_password_change_ends_every_session() {
    a_password_change_ends_every_session(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_wrong_current_passwords_are_counted_by_the_login_limit() {
    wrong_current_passwords_are_counted_by_the_login_limit(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_cookie_requests_from_other_origins_or_forms_are_refused() {
    cookie_requests_from_other_origins_or_forms_are_refused(&Apps::embedded().await, APP_ORIGIN).await;
}

#[tokio::test]
async fn in_process_concurrent_refreshes_leave_one_lineage() {
    concurrent_refreshes_leave_one_lineage(Arc::new(Apps::embedded().await)).await;
}

#[tokio::test]
async fn the_cookie_is_httponly_secure_strict_and_only_for_the_refresh_and_logout_routes() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let answer = login(&apps, &user.name, PASSWORD).await;
    let cookies = set_cookies(&answer);
    let token = CookieJar::default();
    let mut jar = token;
    jar.store(&answer);
    let value = jar.refresh_token().unwrap();
    // The in-process events come through stage v1, as on the execute-api URL.
    assert_eq!(
        cookies,
        [
            format!(
                "refresh_token={value}; Path=/v1/token/refresh; Max-Age=2592000; HttpOnly; Secure; SameSite=Strict"
            ),
            format!(
                "refresh_token={value}; Path=/v1/logout; Max-Age=2592000; HttpOnly; Secure; SameSite=Strict"
            ),
        ]
    );
    // A refresh a day later: the cookie lives until the session's absolute end, not 30 days more.
    apps.clock.advance(DAY);
    let answer = cookie_post(&apps, &mut jar, "/token/refresh", None).await;
    access_token(&answer);
    assert!(
        set_cookies(&answer)
            .iter()
            .all(|c| c.contains(&format!("Max-Age={}", 29 * DAY))),
        "{answer:?}"
    );
}

// Flows on the apps' settable clock, run in process and on the store suite's DynamoDB.

async fn a_reused_token_revokes_its_session_and_the_newest_token_with_it(apps: Apps) {
    let (_, mut jar) = browser_user(&apps).await;
    let first = jar.refresh_token().unwrap();
    access_token(&cookie_post(&apps, &mut jar, "/token/refresh", None).await);
    access_token(&cookie_post(&apps, &mut jar, "/token/refresh", None).await);
    let newest = jar.refresh_token().unwrap();
    apps.clock.advance(5);
    let answer = body_post(&apps, "/token/refresh", &first).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    let answer = body_post(&apps, "/token/refresh", &newest).await;
    assert_eq!(answer.status, 401, "the whole session is revoked: {answer:?}");
    // Another session of the same user is not touched.
    let (_, mut other) = browser_user(&apps).await;
    access_token(&cookie_post(&apps, &mut other, "/token/refresh", None).await);
}

async fn a_duplicate_within_the_grace_period_gets_an_access_token_and_revokes_nothing(apps: Apps) {
    let (_, first) = body_session(&apps).await;
    let rotated = body_post(&apps, "/token/refresh", &first).await;
    let second = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    apps.clock.advance(4);
    // A retry whose first answer was lost, say: it gets the successor the first request got.
    let duplicate = body_post(&apps, "/token/refresh", &first).await;
    access_token(&duplicate);
    assert_eq!(
        duplicate.body["refresh_token"].as_str(),
        Some(second.as_str()),
        "{duplicate:?}"
    );
    // The same in a browser: the cookie is set again to that successor.
    let (_, mut jar) = browser_user(&apps).await;
    let cookie = jar.header_for("/token/refresh").unwrap();
    access_token(&cookie_post(&apps, &mut jar, "/token/refresh", None).await);
    let successor = jar.refresh_token().unwrap();
    let call = Call::post_json("/token/refresh", &json!({})).header("cookie", &cookie);
    let again = apps.call(call).await;
    access_token(&again);
    assert!(
        set_cookies(&again)
            .iter()
            .all(|c| c.starts_with(&format!("refresh_token={successor};"))),
        "{again:?}"
    );
    let next = body_post(&apps, "/token/refresh", &second).await;
    access_token(&next);
    assert!(next.body["refresh_token"].is_string());
}

async fn sessions_end_after_the_idle_timeout_and_the_absolute_lifetime(apps: Apps) {
    let (_, mut jar) = browser_user(&apps).await;
    // Refreshed every 6 days: never idle for 7, yet over at day 30 from the login.
    for day in [6, 12, 18, 24] {
        apps.clock.advance(6 * DAY);
        let answer = cookie_post(&apps, &mut jar, "/token/refresh", None).await;
        assert_eq!(answer.status, 200, "day {day}: {answer:?}");
    }
    apps.clock.advance(6 * DAY);
    let answer = cookie_post(&apps, &mut jar, "/token/refresh", None).await;
    assert_eq!(answer.status, 401, "day 30: {answer:?}");

    let (_, mut idle) = browser_user(&apps).await;
    apps.clock.advance(7 * DAY - 1);
    access_token(&cookie_post(&apps, &mut idle, "/token/refresh", None).await);
    apps.clock.advance(7 * DAY);
    let answer = cookie_post(&apps, &mut idle, "/token/refresh", None).await;
    assert_eq!(answer.status, 401, "7 days unused: {answer:?}");
}

#[tokio::test]
async fn in_process_a_reused_token_revokes_its_session_and_the_newest_token_with_it() {
    a_reused_token_revokes_its_session_and_the_newest_token_with_it(Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_a_duplicate_within_the_grace_period_gets_an_access_token_and_revokes_nothing() {
    a_duplicate_within_the_grace_period_gets_an_access_token_and_revokes_nothing(Apps::embedded().await)
        .await;
}

#[tokio::test]
async fn in_process_sessions_end_after_the_idle_timeout_and_the_absolute_lifetime() {
    sessions_end_after_the_idle_timeout_and_the_absolute_lifetime(Apps::embedded().await).await;
}

#[tokio::test]
async fn a_refresh_whose_write_fails_is_a_503_and_changes_nothing() {
    let apps = Apps::embedded().await;
    let (_, mut jar) = browser_user(&apps).await;
    let token = jar.refresh_token().unwrap();
    apps.faults.arm("TransactWriteItems", usize::MAX, Fault::Refused);
    let answer = cookie_post(&apps, &mut jar, "/token/refresh", None).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(jar.refresh_token().unwrap(), token, "no cookie was set");
    assert!(
        apps.refresh_records()
            .await
            .iter()
            .all(|r| !r.contains_key("used_at"))
    );
    apps.faults.disarm();
    access_token(&cookie_post(&apps, &mut jar, "/token/refresh", None).await);
    apps.faults.arm("*", usize::MAX, Fault::Refused);
    let answer = body_post(&apps, "/logout", &jar.refresh_token().unwrap()).await;
    assert_eq!(answer.status, 503, "{answer:?}");
}

#[tokio::test]
async fn only_hashes_of_refresh_tokens_are_stored() {
    let apps = Apps::embedded().await;
    let (_, mut jar) = browser_user(&apps).await;
    let mut tokens = vec![jar.refresh_token().unwrap()];
    access_token(&cookie_post(&apps, &mut jar, "/token/refresh", None).await);
    tokens.push(jar.refresh_token().unwrap());
    let records = apps.refresh_records().await;
    let stored = format!("{records:?}");
    for token in &tokens {
        assert!(!stored.contains(token.as_str()), "a token is stored in the clear");
    }
    // The login of `signed_up_user`, the browser's login and its one refresh.
    assert_eq!(records.len(), 3);
}

#[tokio::test]
async fn a_grace_of_zero_makes_every_second_use_a_reuse() {
    let config = SessionConfig {
        grace: Duration::ZERO,
        ..SessionConfig::default()
    };
    let apps = Apps::embedded_with(config).await;
    let (_, first) = body_session(&apps).await;
    let second = body_post(&apps, "/token/refresh", &first).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(body_post(&apps, "/token/refresh", &first).await.status, 401);
    assert_eq!(body_post(&apps, "/token/refresh", &second).await.status, 401);
}

// --- through the local API ---------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_refresh_rotates_the_cookie() {
    refresh_rotates_the_cookie(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_body_clients_get_and_send_the_token_in_the_body() {
    body_clients_get_and_send_the_token_in_the_body(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_forged_and_random_tokens_are_refused_and_revoke_nothing() {
    forged_and_random_tokens_are_refused_and_revoke_nothing(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_logout_ends_the_session() {
    logout_ends_the_session(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_logout_everywhere_ends_every_session_and_access_token() {
    logout_everywhere_ends_every_session_and_access_token(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_a_password_change_ends_every_session() {
    a_password_change_ends_every_session(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_wrong_current_passwords_are_counted_by_the_login_limit() {
    wrong_current_passwords_are_counted_by_the_login_limit(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_cookie_requests_from_other_origins_or_forms_are_refused() {
    let origin = service_env("TEST_ALLOWED_ORIGIN");
    cookie_requests_from_other_origins_or_forms_are_refused(&local_api(), &origin).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_concurrent_refreshes_leave_one_lineage() {
    concurrent_refreshes_leave_one_lineage(Arc::new(local_api())).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_cookies_are_set_for_the_routes_at_the_root() {
    // The local API serves the stage at its root, as a custom domain without a base path.
    let api = local_api();
    let user = signed_up_user(&api).await;
    let answer = login(&api, &user.name, PASSWORD).await;
    let mut jar = CookieJar::default();
    jar.store(&answer);
    let value = jar.refresh_token().unwrap();
    assert_eq!(
        set_cookies(&answer),
        [
            format!(
                "refresh_token={value}; Path=/token/refresh; Max-Age=2592000; HttpOnly; Secure; SameSite=Strict"
            ),
            format!(
                "refresh_token={value}; Path=/logout; Max-Age=2592000; HttpOnly; Secure; SameSite=Strict"
            ),
        ]
    );
}

// --- on the store suite's DynamoDB -------------------------------------------------------------

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_a_reused_token_revokes_its_session_and_the_newest_token_with_it() {
    a_reused_token_revokes_its_session_and_the_newest_token_with_it(store_apps().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_a_duplicate_within_the_grace_period_gets_an_access_token_and_revokes_nothing() {
    a_duplicate_within_the_grace_period_gets_an_access_token_and_revokes_nothing(store_apps().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_sessions_end_after_the_idle_timeout_and_the_absolute_lifetime() {
    sessions_end_after_the_idle_timeout_and_the_absolute_lifetime(store_apps().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_twenty_concurrent_refreshes_leave_one_lineage() {
    concurrent_refreshes_leave_one_lineage(Arc::new(store_apps().await)).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_logout_everywhere_ends_every_session_and_access_token() {
    logout_everywhere_ends_every_session_and_access_token(&store_apps().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_a_password_change_ends_every_session() {
    a_password_change_ends_every_session(&store_apps().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_logout_ends_the_session() {
    logout_ends_the_session(&store_apps().await).await;
}

/// What the table holds for a session: the token's SHA-256 as the key, never the token; both
/// items expire at the session's absolute end; a rotation marks the old token used.
#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_the_table_holds_hashes_and_the_sessions_end_as_ttl() {
    let apps = store_apps().await;
    let (_, first) = body_session(&apps).await;
    let hash = shared::session::RefreshToken::parse(&first).unwrap().hash().0;
    let stored = apps
        .table
        .item(&format!("{REFRESH_PREFIX}{hash}"))
        .await
        .expect("the token's hash is the key");
    assert!(
        apps.table
            .item(&format!("{REFRESH_PREFIX}{first}"))
            .await
            .is_none()
    );
    assert!(!format!("{stored:?}").contains(&first));
    let session_id = stored["session_id"].as_s().unwrap().clone();
    let started: u64 = stored["started_at"].as_n().unwrap().parse().unwrap();
    let expires: u64 = stored["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires, started + 30 * DAY);
    let session = apps
        .table
        .item(&format!("{SESSION_PREFIX}{session_id}"))
        .await
        .unwrap();
    assert_eq!(session["expires_at"].as_n().unwrap(), &expires.to_string());
    assert!(!session.contains_key("revoked_at"));

    access_token(&body_post(&apps, "/token/refresh", &first).await);
    let used = apps.table.item(&format!("{REFRESH_PREFIX}{hash}")).await.unwrap();
    assert!(used.contains_key("used_at"));
    assert_eq!(body_post(&apps, "/logout", &first).await.status, 204);
    let session = apps
        .table
        .item(&format!("{SESSION_PREFIX}{session_id}"))
        .await
        .unwrap();
    assert!(session.contains_key("revoked_at"));
}

/// A refresh, a logout or a logout everywhere against a DynamoDB that cannot be reached is a
/// 503 (and changes nothing: nothing could be written).
#[tokio::test]
async fn session_routes_without_dynamodb_are_503() {
    let apps = crate::dynamodb::refused_apps().await;
    let token = shared::session::RefreshToken::generate();
    let access = apps
        .issuer
        .issue_access(
            shared::test_util::ISSUER,
            shared::test_util::subject("user-1", "alice"),
        )
        .token;
    // At once: each waits out the SDK's retries of a refused connection.
    let empty = json!({});
    let (refresh, logout, everywhere) = tokio::join!(
        body_post(&apps, "/token/refresh", token.expose()),
        body_post(&apps, "/logout", token.expose()),
        bearer_post(&apps, "/logout/all", &access, &empty),
    );
    for (path, answer) in [
        ("/token/refresh", refresh),
        ("/logout", logout),
        ("/logout/all", everywhere),
    ] {
        assert_eq!(answer.status, 503, "{path}: {answer:?}");
        assert_eq!(answer.header("retry-after"), Some("1"), "{path}");
    }
}
