//! The session routes driven by their `events/token/` fixtures (refresh by cookie and by body,
//! logout, logout everywhere, password change, account deletion) through `token::handle`, on a fresh table of the embedded DynamoDB.
//! The fixtures' user is `alice` with the id their authorizer context names.

use integration_tests::test_util::{ISSUER, PASSWORD};
use integration_tests::{Answer, Apps, CookieJar, fixture_json, request, set_cookies, sid_of, with_body};
use serde_json::{Value, json};
use shared::session::RefreshToken;
use shared::store::{CreateUser, UserRecord};
use shared::user::Password;

/// The new password in `token/password.json`.
const FIXTURE_NEW_PASSWORD: &str = "a new horse battery staple";
/// `SESSION_ABSOLUTE_SECONDS`' default: a new refresh cookie's `Max-Age` on the fixed clock.
const THIRTY_DAYS: u64 = 30 * 86_400;

async fn token(apps: &Apps, event: &Value) -> Answer {
    token::handle(&apps.token, request(event)).await.unwrap().into()
}

async fn protected(apps: &Apps, event: &Value) -> Answer {
    protected::handle(&apps.protected, request(event))
        .await
        .unwrap()
        .into()
}

/// The user id the fixtures' authorizer context names.
fn fixture_user_id() -> String {
    let event = fixture_json("token/logout-all.json", "");
    event["requestContext"]["authorizer"]["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The fixture `name` as API Gateway sends it after the authorizer allowed `access`: its
/// context names the token's session, as the authorizer's does.
fn verdict(name: &str, access: &str) -> Value {
    let mut event = fixture_json(name, access);
    event["requestContext"]["authorizer"]["sid"] = json!(sid_of(access));
    event
}

/// Alice, stored with the fixtures' user id and [`PASSWORD`].
async fn alice(apps: &Apps) {
    let password = Password::parse_new(PASSWORD.into()).unwrap();
    let user = UserRecord {
        id: fixture_user_id(),
        username: "alice".into(),
        password_hash: apps.token.hasher.hash(password).await.unwrap(),
        epoch: 0,
        email: None,
        reset_hash: None,
        totp: None,
        totp_pending: None,
        passkeys: Vec::new(),
    };
    apps.store.create(&user).await.unwrap();
}

/// Alice logs in through `token/valid.json` as a browser does: her access token, and the jar
/// holding her refresh cookie.
async fn browser_login(apps: &Apps) -> (String, CookieJar) {
    let answer = token(apps, &fixture_json("token/valid.json", "")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let mut jar = CookieJar::default();
    jar.store(&answer);
    (answer.body["token"].as_str().unwrap().to_owned(), jar)
}

/// Alice logs in through `token/valid.json` asking for the refresh token in the body.
async fn body_login(apps: &Apps) -> String {
    let body = json!({"username": "alice", "password": PASSWORD, "refresh_token_in_body": true});
    let answer = token(
        apps,
        &with_body(fixture_json("token/valid.json", ""), &body.to_string()),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["refresh_token"].as_str().unwrap().to_owned()
}

/// `event` with the header `name` set to `value`, in both of the event's header maps.
fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = json!(value);
    event["multiValueHeaders"][name] = json!([value]);
    event
}

/// The two `Set-Cookie`s of the fixtures' stage (`/dev`), with `value` for `max_age` seconds.
fn stage_cookies(value: &str, max_age: u64) -> Vec<String> {
    ["/dev/token/refresh", "/dev/logout"]
        .map(|path| {
            format!(
                "refresh_token={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
            )
        })
        .to_vec()
}

fn assert_refused(answer: &Answer) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.msg(), "Invalid or expired refresh token");
    assert!(set_cookies(answer).is_empty(), "{answer:?}");
}

mod refresh_cookie {
    use super::*;

    #[tokio::test]
    async fn answers_an_access_token_and_rotates_the_cookie_under_the_stage() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (_, mut jar) = browser_login(&apps).await;
        let presented = jar.refresh_token().unwrap();

        let answer = token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let claims = apps
            .protected
            .verifier
            .verify_access(answer.body["token"].as_str().unwrap(), ISSUER)
            .unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.username.as_str()),
            (fixture_user_id().as_str(), "alice")
        );
        assert_eq!(answer.body["user_id"], json!(fixture_user_id()));
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], 900);
        assert_eq!(
            answer.body.get("refresh_token"),
            None,
            "a browser never gets it in a body"
        );
        jar.store(&answer);
        let rotated = jar.refresh_token().unwrap();
        assert_ne!(rotated, presented);
        assert_eq!(set_cookies(&answer), stage_cookies(&rotated, THIRTY_DAYS));
        // The fixture's Origin is the allowed one: CORS with credentials, for that origin only.
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(answer.header("access-control-allow-credentials"), Some("true"));

        let again = token(&apps, &fixture_json("token/refresh-cookie.json", &rotated)).await;
        assert_eq!(
            again.status, 200,
            "the rotated token refreshes in turn: {again:?}"
        );
    }

    #[tokio::test]
    async fn from_another_origin_or_as_a_form_is_refused_and_leaves_the_token_usable() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (_, jar) = browser_login(&apps).await;
        let presented = jar.refresh_token().unwrap();
        let event = fixture_json("token/refresh-cookie.json", &presented);

        let cross_site = token(
            &apps,
            &with_header(event.clone(), "Origin", "https://evil.example.com"),
        )
        .await;
        assert_eq!(cross_site.status, 403, "{cross_site:?}");
        assert_eq!(cross_site.msg(), "Origin not allowed");
        let form = with_header(event.clone(), "Content-Type", "application/x-www-form-urlencoded");
        let form = token(&apps, &with_body(form, "")).await;
        assert_eq!(form.status, 415, "{form:?}");
        for refused in [&cross_site, &form] {
            assert!(set_cookies(refused).is_empty(), "{refused:?}");
        }

        assert_eq!(token(&apps, &event).await.status, 200, "nothing was used up");
    }

    #[tokio::test]
    async fn with_a_token_never_issued_is_401() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        browser_login(&apps).await;
        let random = RefreshToken::generate();
        for presented in [random.expose(), "${TOKEN}"] {
            let answer = token(&apps, &fixture_json("token/refresh-cookie.json", presented)).await;
            assert_refused(&answer);
        }
    }
}

mod refresh_body {
    use super::*;

    #[tokio::test]
    async fn answers_the_rotated_token_in_the_body_and_sets_no_cookie() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let presented = body_login(&apps).await;

        let answer = token(&apps, &fixture_json("token/refresh-body.json", &presented)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body["user_id"], json!(fixture_user_id()));
        apps.protected
            .verifier
            .verify_access(answer.body["token"].as_str().unwrap(), ISSUER)
            .unwrap();
        let rotated = answer.body["refresh_token"].as_str().unwrap();
        assert!(RefreshToken::parse(rotated).is_some(), "{rotated}");
        assert_ne!(rotated, presented);
        assert!(set_cookies(&answer).is_empty(), "{answer:?}");

        let again = token(&apps, &fixture_json("token/refresh-body.json", rotated)).await;
        assert_eq!(
            again.status, 200,
            "the rotated token refreshes in turn: {again:?}"
        );
    }

    #[tokio::test]
    async fn sent_twice_is_a_duplicate_within_the_grace_period_and_a_reuse_after_it() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let presented = body_login(&apps).await;
        let event = fixture_json("token/refresh-body.json", &presented);
        let first = token(&apps, &event).await;
        let rotated = first.body["refresh_token"].as_str().unwrap().to_owned();

        let duplicate = token(&apps, &event).await;
        assert_eq!(duplicate.status, 200, "{duplicate:?}");
        assert!(duplicate.body["token"].is_string());
        assert_eq!(
            duplicate.body["refresh_token"].as_str(),
            Some(rotated.as_str()),
            "the same successor, not a second one"
        );

        apps.clock.advance(apps.token.sessions.config().grace.as_secs());
        assert_refused(&token(&apps, &event).await);
        assert_refused(&token(&apps, &fixture_json("token/refresh-body.json", &rotated)).await);
    }
}

mod logout {
    use super::*;

    #[tokio::test]
    async fn ends_the_session_and_clears_both_cookies() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (_, jar) = browser_login(&apps).await;
        let presented = jar.refresh_token().unwrap();

        let answer = token(&apps, &fixture_json("token/logout.json", &presented)).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(answer.body, Value::Null);
        assert_eq!(set_cookies(&answer), stage_cookies("", 0));

        assert_refused(&token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await);
    }

    #[tokio::test]
    async fn with_a_token_never_issued_is_204_and_ends_no_other_session() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (_, jar) = browser_login(&apps).await;

        let random = RefreshToken::generate();
        let answer = token(&apps, &fixture_json("token/logout.json", random.expose())).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(set_cookies(&answer), stage_cookies("", 0));

        let presented = jar.refresh_token().unwrap();
        let refresh = token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await;
        assert_eq!(refresh.status, 200, "{refresh:?}");
    }
}

mod logout_all {
    use super::*;

    #[tokio::test]
    async fn ends_every_session_and_every_earlier_access_token() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, phone) = browser_login(&apps).await;
        let (_, laptop) = browser_login(&apps).await;

        let answer = token(&apps, &verdict("token/logout-all.json", &access)).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(set_cookies(&answer), stage_cookies("", 0));

        for jar in [&phone, &laptop] {
            let presented = jar.refresh_token().unwrap();
            assert_refused(&token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await);
        }
        let old = protected(&apps, &fixture_json("protected/bearer.json", &access)).await;
        assert_eq!(old.status, 401, "{old:?}");
        let (fresh, _) = browser_login(&apps).await;
        let new = protected(&apps, &fixture_json("protected/bearer.json", &fresh)).await;
        assert_eq!(new.status, 200, "a new login works: {new:?}");
    }

    #[tokio::test]
    async fn a_verdict_of_an_ended_epoch_is_401_and_ends_nothing_more() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, _) = browser_login(&apps).await;
        let event = verdict("token/logout-all.json", &access);
        assert_eq!(token(&apps, &event).await.status, 204);
        let (_, jar) = browser_login(&apps).await;

        // The same verdict (epoch "0") again, as a cached Allow would bring it.
        let answer = token(&apps, &event).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.msg(), "Invalid or expired token");
        assert!(set_cookies(&answer).is_empty());
        let presented = jar.refresh_token().unwrap();
        let refresh = token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await;
        assert_eq!(refresh.status, 200, "the session after it lives on: {refresh:?}");
    }

    #[tokio::test]
    async fn without_an_authorizer_verdict_the_bearer_token_is_verified() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, _) = browser_login(&apps).await;
        let direct = |token: &str| {
            let mut event = fixture_json("token/logout-all.json", token);
            event["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
            event
        };

        let forged = token(&apps, &direct("${TOKEN}")).await;
        assert_eq!(forged.status, 401, "{forged:?}");
        assert_eq!(forged.msg(), "Invalid or expired token");
        assert_eq!(token(&apps, &direct(&access)).await.status, 204);
    }
}

mod password {
    use super::*;

    #[tokio::test]
    async fn changes_the_password_and_ends_every_session() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, jar) = browser_login(&apps).await;

        let answer = token(&apps, &verdict("token/password.json", &access)).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(set_cookies(&answer), stage_cookies("", 0));

        let presented = jar.refresh_token().unwrap();
        assert_refused(&token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await);
        let old = token(&apps, &fixture_json("token/valid.json", "")).await;
        assert_eq!(old.status, 401, "the old password: {old:?}");
        let body = json!({"username": "alice", "password": FIXTURE_NEW_PASSWORD}).to_string();
        let new = token(&apps, &with_body(fixture_json("token/valid.json", ""), &body)).await;
        assert_eq!(new.status, 200, "the new password: {new:?}");
    }

    #[tokio::test]
    async fn a_wrong_current_password_is_401_counted_and_changes_nothing() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, jar) = browser_login(&apps).await;
        let body =
            json!({"current_password": "wrong horse battery staple", "new_password": FIXTURE_NEW_PASSWORD});
        let event = with_body(verdict("token/password.json", &access), &body.to_string());

        let answer = token(&apps, &event).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.msg(), "Current password is wrong");
        assert!(set_cookies(&answer).is_empty());
        let window = apps.token.throttle.current_window();
        assert_eq!(
            apps.attempts("alice", window).await,
            1,
            "counted by the login limit"
        );

        let presented = jar.refresh_token().unwrap();
        let refresh = token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await;
        assert_eq!(refresh.status, 200, "the session lives on: {refresh:?}");
        assert_eq!(
            token(&apps, &fixture_json("token/valid.json", "")).await.status,
            200
        );
    }

    #[tokio::test]
    async fn a_weak_new_password_is_400_and_changes_nothing() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, _) = browser_login(&apps).await;
        let body = json!({"current_password": PASSWORD, "new_password": "short"});
        let event = with_body(verdict("token/password.json", &access), &body.to_string());

        let answer = token(&apps, &event).await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert_eq!(answer.msg(), "password must be at least 8 characters");
        assert_eq!(
            token(&apps, &fixture_json("token/valid.json", "")).await.status,
            200
        );
    }
}

mod delete_account {
    use super::*;

    #[tokio::test]
    async fn deletes_alice_and_ends_every_session_and_a_repeat_is_204() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, jar) = browser_login(&apps).await;

        let answer = token(&apps, &verdict("token/delete-account.json", &access)).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(set_cookies(&answer), stage_cookies("", 0));
        assert!(apps.user("alice").await.is_none(), "the user is gone");

        let presented = jar.refresh_token().unwrap();
        assert_refused(&token(&apps, &fixture_json("token/refresh-cookie.json", &presented)).await);
        let login = token(&apps, &fixture_json("token/valid.json", "")).await;
        assert_eq!(login.status, 401, "{login:?}");
        let again = token(&apps, &verdict("token/delete-account.json", &access)).await;
        assert_eq!(again.status, 204, "a repeat: {again:?}");
    }

    #[tokio::test]
    async fn a_wrong_password_is_401_counted_and_deletes_nothing() {
        let apps = Apps::embedded().await;
        alice(&apps).await;
        let (access, _) = browser_login(&apps).await;
        let body = json!({"password": "wrong horse battery staple"}).to_string();
        let event = with_body(verdict("token/delete-account.json", &access), &body);

        let answer = token(&apps, &event).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.msg(), "Current password is wrong");
        let window = apps.token.throttle.current_window();
        assert_eq!(
            apps.attempts("alice", window).await,
            1,
            "counted by the login limit"
        );
        assert!(apps.user("alice").await.is_some(), "still there");
    }
}
