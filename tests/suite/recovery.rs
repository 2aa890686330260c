//! The account's address and recovery through the public routes, in process: `POST /email`,
//! `/email/verify`, `/password/forgot`, `/password/reset`, with the mail the functions send
//! through SES read from the test's mailbox ([`integration_tests::mailbox`]) and a fixed clock.

use std::time::Instant;

use integration_tests::mailbox::Message;
use integration_tests::*;
use serde_json::{Value, json};
use shared::clock::Clock as _;
use shared::test_util::PASSWORD;

const NEW_PASSWORD: &str = "a brand new passphrase";

fn address(user: &User) -> String {
    format!("{}@example.com", user.name.to_lowercase())
}

async fn post(apps: &Apps, path: &str, body: &Value) -> Answer {
    apps.call(Call::post_json(path, body)).await
}

/// The newest message to `to`.
fn last_to(apps: &Apps, to: &str) -> Message {
    apps.mailbox
        .to(to)
        .pop()
        .unwrap_or_else(|| panic!("no mail to {to}: {:#?}", apps.mailbox.messages()))
}

/// Asks for `email` as the user's address and opens the link mailed to it.
async fn verify(apps: &Apps, user: &User, email: &str) {
    let change = json!({"email": email, "current_password": PASSWORD});
    let answer = bearer_post(apps, "/email", &user.token, &change).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let token = last_to(apps, email).token("verify").expect("a verification link");
    let answer = post(apps, "/email/verify", &json!({ "token": token })).await;
    assert_eq!(answer.status, 204, "{answer:?}");
}

/// A signed-up user whose address is verified.
async fn verified_user(apps: &Apps) -> (User, String) {
    let user = signed_up_user(apps).await;
    let email = address(&user);
    verify(apps, &user, &email).await;
    (user, email)
}

async fn forgot(apps: &Apps, body: Value) -> Answer {
    post(apps, "/password/forgot", &body).await
}

#[tokio::test]
async fn a_verified_address_recovers_the_account_and_every_session_ends() {
    let apps = Apps::embedded().await;
    let (user, email) = verified_user(&apps).await;
    let mut jar = CookieJar::default();
    assert_eq!(
        browser_login(&apps, &mut jar, &user.name, PASSWORD).await.status,
        200
    );

    let answer = forgot(&apps, json!({ "email": email.to_uppercase() })).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let mail = last_to(&apps, &email);
    assert_eq!(mail.subject, "Reset your password");
    assert_eq!(mail.from, MAIL_FROM);
    assert!(
        mail.text.contains("http://localhost:5173/#reset="),
        "the token in the fragment: {}",
        mail.text
    );
    let token = mail.token("reset").unwrap();
    assert!(token.len() >= 43, "at least 256 bits");

    let reset = json!({"token": token, "new_password": NEW_PASSWORD});
    let answer = post(&apps, "/password/reset", &reset).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(
        login(&apps, &user.name, PASSWORD).await.status,
        401,
        "the old password"
    );
    assert_eq!(
        login(&apps, &user.name, NEW_PASSWORD).await.status,
        200,
        "the new one"
    );
    assert_eq!(
        cookie_post(&apps, &mut jar, "/token/refresh", None).await.status,
        401,
        "sessions end"
    );
    assert_eq!(
        protected(&apps, Some(&user.bearer())).await.status,
        401,
        "access tokens end"
    );
    assert_eq!(last_to(&apps, &email).subject, "Your password was reset");

    let again = post(
        &apps,
        "/password/reset",
        &json!({"token": token, "new_password": "yet another passphrase"}),
    )
    .await;
    assert_eq!(again.status, 400, "single-use: {again:?}");
    assert_eq!(again.msg(), "Invalid or expired link");
    assert_eq!(login(&apps, &user.name, NEW_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn forgot_password_answers_alike_whatever_it_finds_and_mails_only_a_verified_address() {
    let apps = Apps::embedded().await;
    let (verified, email) = verified_user(&apps).await;
    let unverified = signed_up_user(&apps).await;
    let sent_before = apps.mailbox.messages().len();
    let floor = test_mail_config().forgot_response;
    let mut answers = Vec::new();
    for body in [
        json!({"username": verified.name}),
        json!({"email": email}),
        json!({"username": unverified.name}),
        json!({"username": unique_name("nobody")}),
        json!({"email": "nobody-at-all@example.com"}),
    ] {
        let started = Instant::now();
        let answer = forgot(&apps, body.clone()).await;
        let took = started.elapsed();
        assert!(took >= floor, "{body}: answered in {took:?}, before {floor:?}");
        answers.push((answer.status, answer.body.clone()));
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "{answers:#?}");
    assert_eq!(answers[0].0, 202);
    let sent: Vec<Message> = apps.mailbox.messages().split_off(sent_before);
    assert_eq!(
        sent.len(),
        2,
        "one link per request for the verified address only: {sent:#?}"
    );
    assert!(
        sent.iter()
            .all(|m| m.to == [email.clone()] && m.subject == "Reset your password")
    );
}

#[tokio::test]
async fn only_the_newest_unexpired_reset_link_works() {
    let apps = Apps::embedded().await;
    let (user, email) = verified_user(&apps).await;
    assert_eq!(forgot(&apps, json!({"username": user.name})).await.status, 202);
    let older = last_to(&apps, &email).token("reset").unwrap();
    assert_eq!(forgot(&apps, json!({"username": user.name})).await.status, 202);
    let newer = last_to(&apps, &email).token("reset").unwrap();
    assert_ne!(older, newer);
    let reset = |token: &str| json!({"token": token, "new_password": NEW_PASSWORD});
    assert_eq!(
        post(&apps, "/password/reset", &reset(&older)).await.status,
        400,
        "superseded"
    );
    for guessed in ["x", &"A".repeat(43), &format!("{newer}x")] {
        assert_eq!(
            post(&apps, "/password/reset", &reset(guessed)).await.status,
            400,
            "{guessed}"
        );
    }
    apps.clock.advance(test_mail_config().reset_ttl.as_secs());
    assert_eq!(
        post(&apps, "/password/reset", &reset(&newer)).await.status,
        400,
        "expired"
    );
    assert_eq!(
        login(&apps, &user.name, PASSWORD).await.status,
        200,
        "the password stays"
    );
}

#[tokio::test]
async fn mail_to_one_address_is_limited_without_the_answer_changing() {
    let apps = Apps::embedded().await;
    let (user, email) = verified_user(&apps).await;
    let before = apps.mailbox.to(&email).len();
    for _ in 0..5 {
        let answer = forgot(&apps, json!({"username": user.name})).await;
        assert_eq!(answer.status, 202, "{answer:?}");
    }
    let limit = shared::throttle::MailLimitConfig::default().max_per_recipient as usize;
    assert_eq!(
        apps.mailbox.to(&email).len(),
        limit,
        "the verification and {} links",
        limit - before
    );
}

#[tokio::test]
async fn an_address_another_account_holds_gets_a_notice_and_no_link() {
    let apps = Apps::embedded().await;
    let (_, email) = verified_user(&apps).await;
    let other = signed_up_user(&apps).await;
    let change = json!({"email": email.to_uppercase(), "current_password": PASSWORD});
    let answer = bearer_post(&apps, "/email", &other.token, &change).await;
    assert_eq!(answer.status, 202, "the same answer: {answer:?}");
    let notice = last_to(&apps, &email);
    assert_eq!(notice.subject, "Someone tried to use your email address");
    assert_eq!(notice.token("verify"), None, "no link to claim it");
}

#[tokio::test]
async fn a_new_address_tells_the_old_one_and_frees_it() {
    let apps = Apps::embedded().await;
    let (user, old) = verified_user(&apps).await;
    let new = format!("new-{old}");
    verify(&apps, &user, &new).await;
    let notice = last_to(&apps, &old);
    assert_eq!(notice.subject, "Your account's email address changed");
    assert!(
        !notice.text.contains(&new),
        "the new address masked: {}",
        notice.text
    );
    // The old address is free for another account; recovery goes to the new one.
    let other = signed_up_user(&apps).await;
    verify(&apps, &other, &old).await;
    assert_eq!(forgot(&apps, json!({"username": user.name})).await.status, 202);
    assert_eq!(last_to(&apps, &new).subject, "Reset your password");
}

#[tokio::test]
async fn a_verification_link_works_once_and_not_after_it_expires() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let email = address(&user);
    let change = json!({"email": email, "current_password": PASSWORD});
    assert_eq!(
        bearer_post(&apps, "/email", &user.token, &change).await.status,
        202
    );
    let token = last_to(&apps, &email).token("verify").unwrap();
    apps.clock.advance(test_mail_config().verify_ttl.as_secs());
    let late = post(&apps, "/email/verify", &json!({ "token": token })).await;
    assert_eq!(late.status, 400, "{late:?}");
    // A fresh link; the user's access token is fresh too, after the clock moved.
    let fresh = login(&apps, &user.name, PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bearer_post(&apps, "/email", &fresh, &change).await.status, 202);
    let token = last_to(&apps, &email).token("verify").unwrap();
    assert_eq!(
        post(&apps, "/email/verify", &json!({ "token": token }))
            .await
            .status,
        204
    );
    assert_eq!(
        post(&apps, "/email/verify", &json!({ "token": token }))
            .await
            .status,
        400,
        "used"
    );
    let _ = apps.clock.now();
}

#[tokio::test]
async fn changing_the_address_takes_the_current_password_and_a_plain_address() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let wrong = json!({"email": address(&user), "current_password": "not the password at all"});
    let answer = bearer_post(&apps, "/email", &user.token, &wrong).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    for email in [
        "Alice <alice@example.com>".to_owned(),
        "alice@example.com\r\nBcc: victim@example.com".to_owned(),
        "alice@example.com\n".to_owned(),
        format!("{}@example.com", "a".repeat(250)),
        "not-an-address".to_owned(),
    ] {
        let body = json!({"email": email, "current_password": PASSWORD});
        let answer = bearer_post(&apps, "/email", &user.token, &body).await;
        assert_eq!(answer.status, 400, "{email:?}: {answer:?}");
        let answer = forgot(&apps, json!({ "email": email })).await;
        assert_eq!(answer.status, 400, "forgot {email:?}: {answer:?}");
    }
    assert!(apps.mailbox.messages().is_empty(), "nothing sent");
    let bad_name = forgot(&apps, json!({"username": "no spaces allowed"})).await;
    assert_eq!(bad_name.status, 400, "{bad_name:?}");
    let both = forgot(&apps, json!({"username": user.name, "email": address(&user)})).await;
    assert_eq!(both.status, 400, "one of the two: {both:?}");
}

#[tokio::test]
async fn a_sign_up_with_an_address_gets_a_link_or_if_it_is_taken_the_same_answer_and_a_notice() {
    let apps = Apps::embedded().await;
    let name = unique_name("mailed");
    let email = format!("{name}@example.com");
    let body = json!({"username": name, "password": PASSWORD, "email": email});
    let created = post(&apps, "/users", &body).await;
    assert_eq!(created.status, 201, "{created:?}");
    let token = last_to(&apps, &email).token("verify").expect("a link at sign-up");
    assert_eq!(
        post(&apps, "/email/verify", &json!({ "token": token }))
            .await
            .status,
        204
    );
    assert_eq!(
        apps.user(&name).await.unwrap().email.as_deref(),
        Some(email.as_str())
    );

    // The same address for another name: the same 201 and body shape, a notice, no link.
    let other = unique_name("mailed");
    let taken = post(
        &apps,
        "/users",
        &json!({"username": other, "password": PASSWORD, "email": email}),
    )
    .await;
    assert_eq!(taken.status, 201, "{taken:?}");
    assert_eq!(taken.body["username"], json!(other));
    assert_eq!(
        last_to(&apps, &email).subject,
        "Someone tried to use your email address"
    );
    assert_eq!(apps.user(&other).await.unwrap().email, None);

    // A malformed address creates nothing.
    let bad = unique_name("mailed");
    let refused = post(
        &apps,
        "/users",
        &json!({"username": bad, "password": PASSWORD, "email": "Bad <x@example.com>"}),
    )
    .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(apps.user(&bad).await.is_none());
}

#[tokio::test]
async fn a_password_change_ends_pending_verification_and_reset_links() {
    let apps = Apps::embedded().await;
    let (user, email) = verified_user(&apps).await;
    // Someone who knows the password asks for their own address, and a reset link is out.
    let theirs = format!("intruder-{}@example.net", user.name.to_lowercase());
    let change = json!({"email": theirs, "current_password": PASSWORD});
    assert_eq!(
        bearer_post(&apps, "/email", &user.token, &change).await.status,
        202
    );
    let verify_link = last_to(&apps, &theirs).token("verify").unwrap();
    assert_eq!(forgot(&apps, json!({"username": user.name})).await.status, 202);
    let reset_link = last_to(&apps, &email).token("reset").unwrap();
    // The owner changes the password: both links end.
    let new = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    assert_eq!(
        bearer_post(&apps, "/password", &user.token, &new).await.status,
        204
    );
    let late = post(&apps, "/email/verify", &json!({ "token": verify_link })).await;
    assert_eq!(
        late.status, 400,
        "a verification link of the old password: {late:?}"
    );
    let late = post(
        &apps,
        "/password/reset",
        &json!({"token": reset_link, "new_password": "a third passphrase"}),
    )
    .await;
    assert_eq!(late.status, 400, "a reset link of the old password: {late:?}");
    assert_eq!(
        apps.user(&user.name).await.unwrap().email.as_deref(),
        Some(email.as_str())
    );
    assert_eq!(login(&apps, &user.name, NEW_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_new_verified_address_ends_a_reset_link_sent_to_the_old_one() {
    let apps = Apps::embedded().await;
    let (user, old) = verified_user(&apps).await;
    assert_eq!(forgot(&apps, json!({"username": user.name})).await.status, 202);
    let reset_link = last_to(&apps, &old).token("reset").unwrap();
    verify(&apps, &user, &format!("new-{old}")).await;
    let late = post(
        &apps,
        "/password/reset",
        &json!({"token": reset_link, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(late.status, 400, "{late:?}");
    assert_eq!(login(&apps, &user.name, PASSWORD).await.status, 200);
}
