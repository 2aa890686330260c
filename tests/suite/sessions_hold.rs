//! Sessions that hold against what a user or an attacker can do to them: an old token sent
//! again within the grace period, a signer that cannot be loaded, access tokens of an ended
//! session, two refresh cookies in one request. In process, on the apps' settable clock.

use std::sync::Arc;

use integration_tests::*;
use serde_json::json;
use shared::clock::Clock;
use shared::test_util::PASSWORD;

use crate::dynamodb::store_apps;

/// The refresh token a `POST /token/refresh` in the body answered, asserting the 200.
fn next_token(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["refresh_token"].as_str().unwrap().to_owned()
}

// --- 1. the grace period hands out no used token --------------------------------------------

#[tokio::test]
async fn a_token_two_generations_old_gets_nothing_within_the_grace_period() {
    two_generations_old(Apps::embedded().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_a_token_two_generations_old_gets_nothing_within_the_grace_period() {
    two_generations_old(store_apps().await).await;
}

async fn two_generations_old(apps: Apps) {
    let (_, t1) = body_session(&apps).await;
    let t2 = next_token(&body_post(&apps, "/token/refresh", &t1).await);
    apps.clock.advance(1);
    let t3 = next_token(&body_post(&apps, "/token/refresh", &t2).await);
    apps.clock.advance(1);
    // T1's successor T2 is used: T1 gets no token, and the chain is not walked to T3.
    let answer = body_post(&apps, "/token/refresh", &t1).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.body.get("refresh_token"), None);
    assert_eq!(answer.body.get("token"), None);
    // T2 is the newest token but one: its duplicate gets T3, the live token, as a lost answer's
    // retry must.
    assert_eq!(next_token(&body_post(&apps, "/token/refresh", &t2).await), t3);
    // Nothing was revoked: T3 goes on.
    let t4 = next_token(&body_post(&apps, "/token/refresh", &t3).await);
    assert_ne!(t4, t3);
}

#[tokio::test]
async fn a_late_grace_answer_never_sets_a_used_cookie_in_a_browser() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut jar = CookieJar::default();
    browser_login(&apps, &mut jar, &user.name, PASSWORD).await;
    let first = jar.header_for("/token/refresh").unwrap();
    // Tab A refreshes twice; tab B's request, sent with the first cookie, arrives after both.
    assert_eq!(
        cookie_post(&apps, &mut jar, "/token/refresh", None).await.status,
        200
    );
    assert_eq!(
        cookie_post(&apps, &mut jar, "/token/refresh", None).await.status,
        200
    );
    let live = jar.refresh_token().unwrap();
    let late = apps
        .call(Call::post_json("/token/refresh", &json!({})).header("cookie", &first))
        .await;
    assert_eq!(late.status, 401, "{late:?}");
    assert!(set_cookies(&late).is_empty(), "{late:?}");
    // The browser still holds the live token, and it refreshes.
    assert_eq!(jar.refresh_token().unwrap(), live);
    assert_eq!(
        cookie_post(&apps, &mut jar, "/token/refresh", None).await.status,
        200
    );
}

// --- 2. nothing can fail after the commit -----------------------------------------------------

/// A signer whose key set cannot be read: Secrets Manager on a port nothing listens on.
async fn unreachable_signer() -> token::Signer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sdk = integration_tests::dynamo::sdk_config(
        &format!("http://127.0.0.1:{port}"),
        integration_tests::dynamo::functions_client(),
    )
    .await;
    let timeouts = shared::keystore::Timeouts {
        connect: std::time::Duration::from_millis(100),
        attempt: std::time::Duration::from_millis(100),
        operation: std::time::Duration::from_millis(200),
    };
    token::Signer::FromSecret {
        store: shared::keystore::SecretsKeyStore::new(&sdk, "keys", timeouts),
        kid: test_util::issuer().kid().to_owned(),
        settings: test_util::token_settings(),
        loaded: tokio::sync::OnceCell::new(),
    }
}

#[tokio::test]
async fn a_refresh_whose_signer_cannot_be_loaded_is_a_503_and_leaves_the_token_unused() {
    let mut apps = Apps::embedded().await;
    let (_, t1) = body_session(&apps).await;
    apps.token.signer = unreachable_signer().await;
    let answer = body_post(&apps, "/token/refresh", &t1).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        apps.refresh_records()
            .await
            .iter()
            .all(|r| !r.contains_key("used_at")),
        "the token was used although no answer could be signed"
    );
    // Another instance, whose key loads, long after any grace period: the token still works,
    // and nothing was revoked.
    apps.token.signer = token::Signer::Ready(test_util::issuer());
    apps.clock.advance(60);
    let t2 = next_token(&body_post(&apps, "/token/refresh", &t1).await);
    next_token(&body_post(&apps, "/token/refresh", &t2).await);
}

#[tokio::test]
async fn a_login_whose_signer_cannot_be_loaded_is_a_503_and_starts_no_session() {
    let mut apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let sessions = apps.refresh_records().await.len();
    apps.token.signer = unreachable_signer().await;
    let answer = login(&apps, &user.name, PASSWORD).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        apps.refresh_records().await.len(),
        sessions,
        "a session was started"
    );
    assert_eq!(
        apps.attempts(&user.name, apps.token.throttle.current_window())
            .await,
        0,
        "an attempt was counted though no password was checked"
    );
}

// --- 3. revocation reaches the session's access tokens -----------------------------------------

#[tokio::test]
async fn logout_ends_the_sessions_access_tokens_at_protected() {
    logout_ends_access_tokens(Apps::embedded().await).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_logout_ends_the_sessions_access_tokens_at_protected() {
    logout_ends_access_tokens(store_apps().await).await;
}

async fn logout_ends_access_tokens(apps: Apps) {
    let (user, t1) = body_session(&apps).await;
    let (other, _) = {
        let answer = body_login(&apps, &user.name, PASSWORD).await;
        (access_of(&answer), ())
    };
    assert_eq!(protected(&apps, Some(&user.bearer())).await.status, 200);
    assert_eq!(body_post(&apps, "/logout", &t1).await.status, 204);
    let answer = protected(&apps, Some(&user.bearer())).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    for path in ["/logout/all", "/password"] {
        let body = json!({"current_password": PASSWORD, "new_password": "another passphrase"});
        let answer = bearer_post(&apps, path, &user.token, &body).await;
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
    }
    // The user's other session is not touched.
    let answer = protected(&apps, Some(&format!("Bearer {other}"))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

fn access_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn reuse_detection_ends_the_sessions_access_tokens_at_protected() {
    let apps = Apps::embedded().await;
    let (_, t1) = body_session(&apps).await;
    let rotated = body_post(&apps, "/token/refresh", &t1).await;
    let access = access_of(&rotated);
    apps.clock.advance(60);
    assert_eq!(body_post(&apps, "/token/refresh", &t1).await.status, 401);
    let answer = protected(&apps, Some(&format!("Bearer {access}"))).await;
    assert_eq!(answer.status, 401, "{answer:?}");
}

// --- 5. cookie tossing ----------------------------------------------------------------------------

#[tokio::test]
async fn two_refresh_cookies_are_refused_and_neither_is_used() {
    let apps = Apps::embedded().await;
    let victim = signed_up_user(&apps).await;
    let attacker = signed_up_user(&apps).await;
    let mut victims = CookieJar::default();
    browser_login(&apps, &mut victims, &victim.name, PASSWORD).await;
    let mut attackers = CookieJar::default();
    browser_login(&apps, &mut attackers, &attacker.name, PASSWORD).await;
    let (v, a) = (
        victims.refresh_token().unwrap(),
        attackers.refresh_token().unwrap(),
    );
    for path in ["/token/refresh", "/logout"] {
        for cookie in [
            format!("refresh_token={a}; refresh_token={v}"),
            format!("refresh_token={v}; refresh_token={a}"),
        ] {
            let call = Call::post_json(path, &json!({})).header("cookie", &cookie);
            let answer = apps.call(call).await;
            assert_eq!(answer.status, 400, "{path} {cookie}: {answer:?}");
            assert!(set_cookies(&answer).is_empty(), "{answer:?}");
        }
    }
    // Neither session was rotated nor ended.
    assert_eq!(
        cookie_post(&apps, &mut victims, "/token/refresh", None)
            .await
            .status,
        200
    );
    assert_eq!(
        cookie_post(&apps, &mut attackers, "/token/refresh", None)
            .await
            .status,
        200
    );
}

// --- 7. limits per client address ------------------------------------------------------------------

/// The apps with `per_client` failed logins and sign-ups allowed per address and window.
/// The clock stands at the start of an hour, so the first window of each limit is whole.
async fn apps_limited_per_client(per_client: u32) -> Apps {
    limited_per_client(Apps::embedded().await, per_client)
}

fn limited_per_client(mut apps: Apps, per_client: u32) -> Apps {
    let now = apps.clock.now();
    apps.clock.set(now - now % 3600);
    let throttle = shared::LoginThrottleConfig {
        max_failures_per_client: per_client,
        ..TEST_THROTTLE
    };
    apps.token.throttle =
        shared::throttle::LoginThrottle::new(throttle, apps.store.clone(), apps.clock.clone());
    let sign_ups = shared::SignUpLimitConfig {
        max_per_client: per_client,
        ..TEST_SIGN_UPS
    };
    apps.users.sign_ups =
        shared::throttle::SignUpThrottle::new(sign_ups, apps.store.clone(), apps.clock.clone());
    apps
}

async fn login_from(apps: &Apps, address: &str, username: &str, password: &str) -> Answer {
    apps.call(Call::post_json("/token", &credentials(username, password)).from_ip(address))
        .await
}

#[tokio::test]
async fn a_new_unknown_name_in_every_login_meets_the_limit_of_its_address() {
    let apps = apps_limited_per_client(10).await;
    let user = signed_up_user(&apps).await;
    for i in 0..10 {
        // Names that could exist and names that cannot: each costs a hash, each is counted.
        let name = if i % 2 == 0 {
            unique_name("ghost")
        } else {
            format!("no such name {i}")
        };
        let answer = login_from(&apps, "203.0.113.7", &name, PASSWORD).await;
        assert_eq!(answer.status, 401, "{i}: {answer:?}");
    }
    let refused = login_from(&apps, "203.0.113.7", &unique_name("ghost"), PASSWORD).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("900"));
    assert_eq!(refused.msg(), "Too many failed login attempts, try again later");
    // The right password from that address waits too; from another address it goes through.
    assert_eq!(
        login_from(&apps, "203.0.113.7", &user.name, PASSWORD)
            .await
            .status,
        429
    );
    assert_eq!(
        login_from(&apps, "198.51.100.1", &user.name, PASSWORD)
            .await
            .status,
        200
    );
    // One IPv6 /64 is one address; the next /64 is another.
    for _ in 0..10 {
        let answer = login_from(&apps, "2001:db8:0:1::7", &unique_name("ghost"), PASSWORD).await;
        assert_eq!(answer.status, 401);
    }
    assert_eq!(
        login_from(&apps, "2001:db8:0:1:ffff::1", "ghost-v6", PASSWORD)
            .await
            .status,
        429
    );
    assert_eq!(
        login_from(&apps, "2001:db8:0:2::1", "ghost-v6", PASSWORD)
            .await
            .status,
        401
    );
    // The window ends: the address may try again.
    apps.clock.advance(900);
    assert_eq!(
        login_from(&apps, "203.0.113.7", "ghost-late", PASSWORD)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn right_passwords_are_not_counted_against_their_address() {
    right_passwords_not_counted(Apps::embedded().await, "192.0.2.1").await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_right_passwords_are_not_counted_against_their_address() {
    right_passwords_not_counted(store_apps().await, &unique_address()).await;
}

/// An address no other test of this run, or of an earlier run on the same table, uses.
fn unique_address() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2])
}

async fn right_passwords_not_counted(apps: Apps, address: &str) {
    // Signed up first: on a shared table the fixture's address has signed up many users.
    let user = signed_up_user(&apps).await;
    let apps = limited_per_client(apps, 3);
    for _ in 0..10 {
        let answer = login_from(&apps, address, &user.name, PASSWORD).await;
        assert_eq!(
            answer.status, 200,
            "an office behind one address logs in: {answer:?}"
        );
    }
    for _ in 0..3 {
        let answer = login_from(&apps, address, &unique_name("ghost"), PASSWORD).await;
        assert_eq!(answer.status, 401, "{answer:?}");
    }
    let answer = login_from(&apps, address, &unique_name("ghost"), PASSWORD).await;
    assert_eq!(answer.status, 429, "{answer:?}");
}

#[tokio::test]
async fn concurrent_logins_from_one_address_check_at_most_the_limit() {
    concurrent_logins(Apps::embedded().await, "203.0.113.9".into()).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_concurrent_logins_from_one_address_check_at_most_the_limit() {
    concurrent_logins(store_apps().await, unique_address()).await;
}

async fn concurrent_logins(apps: Apps, address: String) {
    let apps = Arc::new(limited_per_client(apps, 10));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (apps, address) = (apps.clone(), address.clone());
        tasks.spawn(async move {
            login_from(&apps, &address, &unique_name("ghost"), PASSWORD)
                .await
                .status
        });
    }
    let statuses = tasks.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (10, 30), "{statuses:?}");
}

#[tokio::test]
async fn sign_ups_of_one_address_are_limited_and_counted_before_hashing() {
    let apps = apps_limited_per_client(3).await;
    let sign_up_from = |address: &'static str, name: String| {
        let apps = &apps;
        async move {
            apps.call(Call::post_json("/users", &credentials(&name, PASSWORD)).from_ip(address))
                .await
        }
    };
    let taken = unique_name("taken");
    assert_eq!(sign_up_from("203.0.113.20", taken.clone()).await.status, 201);
    // A taken name costs a hash too, and is counted.
    assert_eq!(sign_up_from("203.0.113.20", taken).await.status, 409);
    assert_eq!(sign_up_from("203.0.113.20", unique_name("new")).await.status, 201);
    let refused = sign_up_from("203.0.113.20", unique_name("new")).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("3600"));
    assert_eq!(
        refused.msg(),
        "Too many sign-ups from this address, try again later"
    );
    // A request the rules refuse costs nothing and is not counted; another address signs up.
    assert_eq!(sign_up_from("203.0.113.21", "x".into()).await.status, 400);
    assert_eq!(sign_up_from("203.0.113.21", unique_name("new")).await.status, 201);
}

#[tokio::test]
async fn concurrent_sign_ups_from_one_address_get_at_most_the_limit_through() {
    concurrent_sign_ups(Apps::embedded().await, "203.0.113.30".into()).await;
}

#[tokio::test]
#[ignore = "the store suite on TEST_DYNAMODB_ENDPOINT (./dev test, ./dev test-store): in process it repeats its in_process_ twin"]
async fn store_concurrent_sign_ups_from_one_address_get_at_most_the_limit_through() {
    concurrent_sign_ups(store_apps().await, unique_address()).await;
}

async fn concurrent_sign_ups(apps: Apps, address: String) {
    let apps = Arc::new(limited_per_client(apps, 5));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (apps, address) = (apps.clone(), address.clone());
        tasks.spawn(async move {
            let call =
                Call::post_json("/users", &credentials(&unique_name("rush"), PASSWORD)).from_ip(&address);
            apps.call(call).await.status
        });
    }
    let statuses = tasks.join_all().await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((created, refused), (5, 15), "{statuses:?}");
}

#[tokio::test]
async fn an_address_at_its_limit_spends_no_usernames_budget_and_a_locked_name_no_addresss() {
    let apps = apps_limited_per_client(3).await;
    let window = apps.token.throttle.current_window();
    for _ in 0..3 {
        assert_eq!(
            login_from(&apps, "203.0.113.50", &unique_name("ghost"), PASSWORD)
                .await
                .status,
            401
        );
    }
    // The address is at its limit: trying a real user's name from it is refused and counts nothing.
    let victim = signed_up_user(&apps).await;
    for _ in 0..10 {
        assert_eq!(
            login_from(&apps, "203.0.113.50", &victim.name, "wrong password")
                .await
                .status,
            429
        );
    }
    assert_eq!(
        apps.attempts(&victim.name, window).await,
        0,
        "no attempt of the victim's counted"
    );
    assert_eq!(
        login_from(&apps, "198.51.100.50", &victim.name, PASSWORD)
            .await
            .status,
        200
    );

    // A name at its limit (5): its refused attempts do not count against the address.
    let locked = signed_up_user(&apps).await;
    for i in 0..5 {
        let address = format!("198.51.100.{}", 70 + i);
        assert_eq!(
            login_from(&apps, &address, &locked.name, "wrong password")
                .await
                .status,
            401
        );
    }
    for _ in 0..5 {
        assert_eq!(
            login_from(&apps, "198.51.100.99", &locked.name, PASSWORD)
                .await
                .status,
            429
        );
    }
    let address = shared::throttle::ClientKey::of(Some("198.51.100.99".parse().unwrap()));
    assert_eq!(apps.attempts(address.as_str(), window).await, 0);
}

#[tokio::test]
async fn a_session_past_its_absolute_end_ends_its_access_tokens_at_every_route() {
    let apps = Apps::embedded().await;
    let (user, _) = body_session(&apps).await;
    let body = json!({"current_password": PASSWORD, "new_password": "another passphrase"});
    // The clock of the store's checks moves; the access token itself is still within its `exp`.
    apps.clock.advance(30 * 86_400);
    assert_eq!(protected(&apps, Some(&user.bearer())).await.status, 401);
    for path in ["/logout/all", "/password"] {
        let answer = bearer_post(&apps, path, &user.token, &body).await;
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
        assert_eq!(answer.msg(), "Invalid or expired token");
    }
}
