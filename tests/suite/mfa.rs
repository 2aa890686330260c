//! The second factor through the public routes, in process, at fixed instants: enrolment with
//! a code, the login's second step, codes accepted once, recovery codes once each, tickets'
//! limits, turning it off and new recovery codes, each change ending the other sessions.

use integration_tests::*;
use serde_json::{Value, json};
use shared::clock::Clock as _;
use shared::mfa::TotpSecret;
use shared::mfa::totp::STEP_SECONDS;
use shared::test_util::PASSWORD;
use std::sync::Arc;
use tokio::task::JoinSet;

/// A user with TOTP on: its secret, its recovery codes, and the session the confirmation
/// started (access and refresh token).
struct Enrolled {
    user: User,
    secret: TotpSecret,
    codes: Vec<String>,
    refresh: String,
}

fn code(secret: &TotpSecret, apps: &Apps) -> String {
    secret.code_at_step(apps.clock.now() / STEP_SECONDS)
}

/// Moves the clock to the start of the next step: the code of the step before is used up.
fn next_step(apps: &Apps) {
    let now = apps.clock.now();
    apps.clock.set((now / STEP_SECONDS + 1) * STEP_SECONDS);
}

async fn post(apps: &Apps, path: &str, token: &str, body: Value) -> Answer {
    bearer_post(apps, path, token, &body).await
}

async fn enrolled(apps: &Apps) -> Enrolled {
    let user = signed_up_user(apps).await;
    let started = post(
        apps,
        "/mfa/totp/enrol",
        &user.token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    assert_eq!(started.status, 200, "{started:?}");
    let uri = started.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!("otpauth://totp/jwt-auth:{}?", user.name)),
        "{uri}"
    );
    let secret = TotpSecret::from_base32(started.body["secret"].as_str().unwrap()).expect("base32");
    assert!(uri.contains(&format!("secret={}", secret.base32())), "{uri}");
    let confirmed = post(
        apps,
        "/mfa/totp/confirm",
        &user.token,
        json!({"code": code(&secret, apps), "refresh_token_in_body": true}),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let codes: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .expect("recovery codes, once")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let user = User {
        token: confirmed.body["token"].as_str().unwrap().to_owned(),
        ..user
    };
    let refresh = confirmed.body["refresh_token"].as_str().unwrap().to_owned();
    next_step(apps);
    Enrolled {
        user,
        secret,
        codes,
        refresh,
    }
}

/// The ticket a right password gets.
async fn ticket_for(apps: &Apps, user: &User) -> String {
    let answer = body_login(apps, &user.name, PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["mfa_required"], true, "{answer:?}");
    assert!(
        answer.body.get("token").is_none(),
        "no token before the second step: {answer:?}"
    );
    assert_eq!(answer.body["methods"], json!(["totp", "recovery_code"]));
    answer.body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(apps: &Apps, ticket: &str, code: &str) -> Answer {
    let body = json!({"mfa_token": ticket, "code": code, "refresh_token_in_body": true});
    apps.call(Call::post_json("/token/mfa", &body)).await
}

async fn status(apps: &Apps, token: &str) -> Value {
    let answer = apps
        .call(Call::get("/mfa").header("authorization", &format!("Bearer {token}")))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

#[tokio::test]
async fn a_confirmed_enrolment_makes_login_take_a_second_step_and_ends_the_other_sessions() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let earlier = body_login(&apps, &user.name, PASSWORD).await;
    let earlier_refresh = earlier.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(status(&apps, &user.token).await["totp"], false);

    let wrong = post(
        &apps,
        "/mfa/totp/enrol",
        &user.token,
        json!({"current_password": "not it at all"}),
    )
    .await;
    assert_eq!(wrong.status, 401, "the password first: {wrong:?}");
    let enrolled = {
        let started = post(
            &apps,
            "/mfa/totp/enrol",
            &user.token,
            json!({"current_password": PASSWORD}),
        )
        .await;
        assert_eq!(started.status, 200, "{started:?}");
        assert_eq!(started.body["expires_in"], 600);
        TotpSecret::from_base32(started.body["secret"].as_str().unwrap()).unwrap()
    };
    // Pending until a code confirms it: the login is still one step.
    assert!(
        login(&apps, &user.name, PASSWORD)
            .await
            .body
            .get("token")
            .is_some()
    );
    let wrong_code = code(&enrolled, &apps).replace(|c: char| c.is_ascii_digit(), "0");
    let refused = post(
        &apps,
        "/mfa/totp/confirm",
        &user.token,
        json!({"code": wrong_code}),
    )
    .await;
    assert_eq!((refused.status, refused.msg()), (401, "Invalid code"));
    let confirmed = post(
        &apps,
        "/mfa/totp/confirm",
        &user.token,
        json!({"code": code(&enrolled, &apps), "refresh_token_in_body": true}),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    assert_eq!(confirmed.body["recovery_codes"].as_array().unwrap().len(), 10);

    // The caller goes on in a new session; every other session ended.
    let token = confirmed.body["token"].as_str().unwrap();
    assert_eq!(
        protected(&apps, Some(&format!("Bearer {token}"))).await.status,
        200
    );
    assert_eq!(
        protected(&apps, Some(&user.bearer())).await.status,
        401,
        "the old access token's session ended"
    );
    assert_eq!(
        body_post(&apps, "/token/refresh", &earlier_refresh).await.status,
        401
    );
    let state = status(&apps, token).await;
    assert_eq!(
        (state["totp"].clone(), state["recovery_codes_left"].clone()),
        (json!(true), json!(10))
    );

    // The secret is stored sealed, never as the app was given it.
    let stored = apps.table.items(shared::store::dynamodb::USER_PREFIX).await;
    let sealed = stored
        .iter()
        .find_map(|item| item.get("totp_secret"))
        .and_then(|v| v.as_s().ok())
        .expect("a stored secret")
        .clone();
    assert!(sealed.starts_with("v1."), "{sealed}");
    assert!(!sealed.contains(&enrolled.base32()));

    // The code of the confirmation's step is used; the next step's code completes a login.
    let ticket = ticket_for(&apps, &user).await;
    let replayed = second_step(&apps, &ticket, &code(&enrolled, &apps)).await;
    assert_eq!(
        (replayed.status, replayed.msg()),
        (401, "Invalid code"),
        "a code works once"
    );
    next_step(&apps);
    let done = second_step(&apps, &ticket, &code(&enrolled, &apps)).await;
    assert_eq!(done.status, 200, "{done:?}");
    let bearer = format!("Bearer {}", done.body["token"].as_str().unwrap());
    assert_eq!(protected(&apps, Some(&bearer)).await.status, 200);
    let refreshed = body_post(
        &apps,
        "/token/refresh",
        done.body["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        refreshed.status, 200,
        "a session like a password login's: {refreshed:?}"
    );

    let again = post(
        &apps,
        "/mfa/totp/enrol",
        done.body["token"].as_str().unwrap(),
        json!({"current_password": PASSWORD}),
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
}

#[tokio::test]
async fn a_code_is_accepted_one_step_either_side_and_only_once() {
    let apps = Apps::embedded().await;
    let e = enrolled(&apps).await;
    let step = apps.clock.now() / STEP_SECONDS;

    let ticket = ticket_for(&apps, &e.user).await;
    let stale = e.secret.code_at_step(step - 2);
    assert_eq!(
        second_step(&apps, &ticket, &stale).await.status,
        401,
        "two steps old"
    );
    let early = e.secret.code_at_step(step + 1);
    assert_eq!(
        second_step(&apps, &ticket, &early).await.status,
        200,
        "one step ahead (clock drift)"
    );

    // The accepted step and every one before it are used up, even the current one.
    let ticket = ticket_for(&apps, &e.user).await;
    let current = e.secret.code_at_step(step);
    assert_eq!(
        second_step(&apps, &ticket, &current).await.status,
        401,
        "a step before the used one"
    );
    assert_eq!(
        second_step(&apps, &ticket, &early).await.status,
        401,
        "the used one"
    );
    apps.clock.set((step + 2) * STEP_SECONDS);
    assert_eq!(
        second_step(&apps, &ticket, &e.secret.code_at_step(step + 2))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn recovery_codes_work_once_each_in_any_letter_case() {
    let apps = Apps::embedded().await;
    let e = enrolled(&apps).await;

    let ticket = ticket_for(&apps, &e.user).await;
    let first = second_step(&apps, &ticket, &e.codes[0]).await;
    assert_eq!(first.status, 200, "{first:?}");
    let ticket = ticket_for(&apps, &e.user).await;
    assert_eq!(second_step(&apps, &ticket, &e.codes[0]).await.status, 401, "used");
    let typed = e.codes[1].to_uppercase().replace('-', " ");
    assert_eq!(second_step(&apps, &ticket, &typed).await.status, 200);
    let token = first.body["token"].as_str().unwrap();
    assert_eq!(status(&apps, token).await["recovery_codes_left"], 8);
}

#[tokio::test]
async fn a_ticket_is_single_use_bounded_and_no_other_users() {
    let apps = Apps::embedded().await;
    let alice = enrolled(&apps).await;
    let bob = enrolled(&apps).await;

    // Reused.
    let ticket = ticket_for(&apps, &alice.user).await;
    assert_eq!(
        second_step(&apps, &ticket, &code(&alice.secret, &apps))
            .await
            .status,
        200
    );
    next_step(&apps);
    let reused = second_step(&apps, &ticket, &code(&alice.secret, &apps)).await;
    assert_eq!(
        (reused.status, reused.msg()),
        (401, "Invalid or expired MFA ticket, log in again")
    );

    // Another user's code on Alice's ticket: no login for either.
    let ticket = ticket_for(&apps, &alice.user).await;
    let crossed = second_step(&apps, &ticket, &code(&bob.secret, &apps)).await;
    assert_eq!((crossed.status, crossed.msg()), (401, "Invalid code"));
    let crossed = second_step(&apps, &ticket, &bob.codes[0]).await;
    assert_eq!(crossed.status, 401, "Bob's recovery code on Alice's ticket");

    // Unknown, malformed, expired.
    assert_eq!(
        second_step(&apps, &"A".repeat(43), &code(&alice.secret, &apps))
            .await
            .status,
        401
    );
    assert_eq!(
        second_step(&apps, "short", &code(&alice.secret, &apps))
            .await
            .status,
        401
    );
    let bad = second_step(&apps, &ticket, "12345").await;
    assert_eq!(bad.status, 400, "not a code's form: {bad:?}");
    apps.clock.advance(301);
    let expired = second_step(&apps, &ticket, &code(&alice.secret, &apps)).await;
    assert_eq!(expired.status, 401, "{expired:?}");
}

#[tokio::test]
async fn wrong_codes_are_limited_per_ticket_and_per_user() {
    let apps = Apps::embedded().await;
    let e = enrolled(&apps).await;
    let wrong = |n: u32| {
        format!(
            "{:06}",
            (code(&e.secret, &apps).parse::<u32>().unwrap() + n) % 1_000_000
        )
    };

    let first = ticket_for(&apps, &e.user).await;
    for n in 1..=5 {
        assert_eq!(second_step(&apps, &first, &wrong(n)).await.status, 401);
    }
    // The ticket's five attempts are spent: even the right code is refused on it.
    let spent = second_step(&apps, &first, &code(&e.secret, &apps)).await;
    assert_eq!(spent.msg(), "Invalid or expired MFA ticket, log in again");
    // And the user's five: a new ticket (the password is right) gets 429 until the window ends.
    let second = ticket_for(&apps, &e.user).await;
    let limited = second_step(&apps, &second, &code(&e.secret, &apps)).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited.header("retry-after").is_some());
    apps.clock.advance(900);
    let third = ticket_for(&apps, &e.user).await;
    assert_eq!(
        second_step(&apps, &third, &code(&e.secret, &apps)).await.status,
        200
    );
}

/// Of second steps racing on one ticket, or with one code on several tickets, exactly one
/// logs in: the commit deletes the ticket and uses the code up in one transaction.
#[tokio::test]
async fn of_many_concurrent_second_steps_with_one_ticket_or_one_code_exactly_one_logs_in() {
    let apps = Arc::new(Apps::embedded().await);
    let e = enrolled(&apps).await;
    let right = code(&e.secret, &apps);

    let one = ticket_for(&apps, &e.user).await;
    let tickets = vec![one; 5];
    assert_eq!(logins(&apps, tickets, &right).await, 1, "one ticket, one login");

    let mut tickets = Vec::new();
    for _ in 0..4 {
        tickets.push(ticket_for(&apps, &e.user).await);
    }
    assert_eq!(
        logins(&apps, tickets, &e.codes[0]).await,
        1,
        "one recovery code, one login"
    );

    next_step(&apps);
    let mut tickets = Vec::new();
    for _ in 0..4 {
        tickets.push(ticket_for(&apps, &e.user).await);
    }
    let right = code(&e.secret, &apps);
    assert_eq!(
        logins(&apps, tickets, &right).await,
        1,
        "one TOTP code, one login"
    );
}

/// How many of the second steps, sent at once, log in.
async fn logins(apps: &Arc<Apps>, tickets: Vec<String>, code: &str) -> usize {
    let mut calls = JoinSet::new();
    for ticket in tickets {
        let (apps, code) = (apps.clone(), code.to_owned());
        calls.spawn(async move { second_step(&apps, &ticket, &code).await });
    }
    let answers = calls.join_all().await;
    for answer in &answers {
        // 401: the ticket or the code was used meanwhile, or the ticket's attempts are spent;
        // 429: the user's.
        assert!([200, 401, 429].contains(&answer.status), "{answer:?}");
    }
    answers.iter().filter(|a| a.status == 200).count()
}

#[tokio::test]
async fn turning_it_off_and_new_recovery_codes_take_the_password_and_a_code_and_tell_the_address() {
    let apps = Apps::embedded().await;
    let e = enrolled(&apps).await;
    let email = format!("{}@example.com", e.user.name.to_lowercase());
    verify_address(&apps, &e.user, &email).await;
    let other = e.refresh.clone();

    let body = |password: &str, code: &str| json!({"current_password": password, "code": code, "refresh_token_in_body": true});
    let no_code = post(
        &apps,
        "/mfa/recovery-codes",
        &e.user.token,
        body(PASSWORD, "000000"),
    )
    .await;
    assert_eq!(no_code.status, 401);
    let no_password = post(
        &apps,
        "/mfa/recovery-codes",
        &e.user.token,
        body("wrong password!", &code(&e.secret, &apps)),
    )
    .await;
    assert_eq!(no_password.status, 401);
    let renewed = post(
        &apps,
        "/mfa/recovery-codes",
        &e.user.token,
        body(PASSWORD, &code(&e.secret, &apps)),
    )
    .await;
    assert_eq!(renewed.status, 200, "{renewed:?}");
    let new_codes = renewed.body["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(new_codes.len(), 10);
    assert_eq!(
        body_post(&apps, "/token/refresh", &other).await.status,
        401,
        "the other session ended"
    );
    assert_eq!(
        apps.mailbox.to(&email).last().unwrap().subject,
        "Your two-step verification changed"
    );
    let token = renewed.body["token"].as_str().unwrap().to_owned();

    let ticket = ticket_for(&apps, &e.user).await;
    assert_eq!(
        second_step(&apps, &ticket, &e.codes[2]).await.status,
        401,
        "the old codes are gone"
    );
    let with_new = second_step(&apps, &ticket, new_codes[0].as_str().unwrap()).await;
    assert_eq!(with_new.status, 200);

    // Off, with a recovery code (the phone is lost).
    let off = post(
        &apps,
        "/mfa/totp/disable",
        &token,
        body(PASSWORD, new_codes[1].as_str().unwrap()),
    )
    .await;
    assert_eq!(off.status, 200, "{off:?}");
    assert!(off.body.get("recovery_codes").is_none());
    let token = off.body["token"].as_str().unwrap();
    assert_eq!(status(&apps, token).await["totp"], false);
    assert!(
        login(&apps, &e.user.name, PASSWORD)
            .await
            .body
            .get("token")
            .is_some(),
        "one step again"
    );
    assert_eq!(apps.mailbox.to(&email).len(), 3, "verify, changed, changed");
}

/// Verifies `email` as the user's address, as the recovery tests do.
async fn verify_address(apps: &Apps, user: &User, email: &str) {
    let change = json!({"email": email, "current_password": PASSWORD});
    let answer = bearer_post(apps, "/email", &user.token, &change).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let token = apps.mailbox.to(email).pop().unwrap().token("verify").unwrap();
    let answer = apps
        .call(Call::post_json("/email/verify", &json!({ "token": token })))
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
}

/// A ticket is bound to its user's session epoch: a password change (or reset, or log out
/// everywhere) between the two steps ends it.
#[tokio::test]
async fn a_password_change_between_the_steps_ends_the_ticket() {
    let apps = Apps::embedded().await;
    let e = enrolled(&apps).await;
    let ticket = ticket_for(&apps, &e.user).await;
    let change = json!({"current_password": PASSWORD, "new_password": "another long passphrase"});
    assert_eq!(post(&apps, "/password", &e.user.token, change).await.status, 204);
    let late = second_step(&apps, &ticket, &code(&e.secret, &apps)).await;
    assert_eq!(
        (late.status, late.msg()),
        (401, "Invalid or expired MFA ticket, log in again")
    );
}
