//! Passkeys through the public routes, in process, with a software authenticator
//! ([`integration_tests::authenticator`]): registration with the password, sign-in without a
//! username, listing and removal, and the attacks: a challenge reused, an assertion replayed,
//! made for another origin or relying party, of another user, or with a counter gone back.

use integration_tests::authenticator::Authenticator;
use integration_tests::*;
use serde_json::{Value, json};
use shared::test_util::PASSWORD;

async fn post(apps: &Apps, path: &str, token: &str, body: Value) -> Answer {
    bearer_post(apps, path, token, &body).await
}

/// Registers a new passkey of `authenticator` for `user`; its id.
async fn register(apps: &Apps, user: &User, authenticator: &mut Authenticator, name: &str) -> String {
    let options = post(
        apps,
        "/passkeys/register/options",
        &user.token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    assert_eq!(options.status, 200, "{options:?}");
    let selection = &options.body["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "discoverable: {selection}");
    assert_eq!(selection["userVerification"], "required");
    let credential = authenticator.create(&options.body["options"]);
    let body = json!({"challenge_id": options.body["challenge_id"], "credential": credential, "name": name});
    let registered = post(apps, "/passkeys/register", &user.token, body).await;
    assert_eq!(registered.status, 201, "{registered:?}");
    assert_eq!(registered.body["name"], name);
    registered.body["id"].as_str().unwrap().to_owned()
}

/// A sign-in's options: `(challenge id, options)`.
async fn sign_in_options(apps: &Apps) -> (String, Value) {
    let answer = apps
        .call(Call::new(
            lambda_http::http::Method::POST,
            "/token/passkey/options",
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body["options"]["publicKey"]["allowCredentials"],
        json!([]),
        "any passkey: no username"
    );
    (
        answer.body["challenge_id"].as_str().unwrap().to_owned(),
        answer.body["options"].clone(),
    )
}

async fn sign_in_with(apps: &Apps, challenge_id: &str, assertion: &Value) -> Answer {
    let body = json!({"challenge_id": challenge_id, "credential": assertion, "refresh_token_in_body": true});
    apps.call(Call::post_json("/token/passkey", &body)).await
}

/// A whole sign-in with `authenticator`'s newest passkey.
async fn sign_in(apps: &Apps, authenticator: &mut Authenticator) -> Answer {
    let (id, options) = sign_in_options(apps).await;
    let assertion = authenticator.get(&options);
    sign_in_with(apps, &id, &assertion).await
}

async fn listed(apps: &Apps, token: &str) -> Vec<Value> {
    let answer = apps
        .call(Call::get("/mfa").header("authorization", &format!("Bearer {token}")))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["passkeys_available"], true);
    answer.body["passkeys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_registered_passkey_signs_in_without_a_username_or_password_until_it_is_removed() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    let mut key = Authenticator::new(APP_ORIGIN);

    let wrong = post(
        &apps,
        "/passkeys/register/options",
        &user.token,
        json!({"current_password": "not the password"}),
    )
    .await;
    assert_eq!(wrong.status, 401, "the password first");
    let phone_id = register(&apps, &user, &mut phone, "Phone").await;
    let key_id = register(&apps, &user, &mut key, "Security key").await;
    let names: Vec<Value> = listed(&apps, &user.token)
        .await
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, [json!("Phone"), json!("Security key")]);

    let signed_in = sign_in(&apps, &mut phone).await;
    assert_eq!(signed_in.status, 200, "{signed_in:?}");
    assert_eq!(signed_in.body["user_id"], user.id.as_str());
    let bearer = format!("Bearer {}", signed_in.body["token"].as_str().unwrap());
    let me = protected(&apps, Some(&bearer)).await;
    assert_eq!((me.status, me.body["username"].clone()), (200, json!(user.name)));
    let refreshed = body_post(
        &apps,
        "/token/refresh",
        signed_in.body["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(refreshed.status, 200, "the session of a login: {refreshed:?}");
    assert_eq!(sign_in(&apps, &mut key).await.status, 200);

    let wrong = post(
        &apps,
        "/passkeys/delete",
        &user.token,
        json!({"id": phone_id, "current_password": "nope nope nope"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let removed = post(
        &apps,
        "/passkeys/delete",
        &user.token,
        json!({"id": phone_id, "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    let again = post(
        &apps,
        "/passkeys/delete",
        &user.token,
        json!({"id": phone_id, "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(again.status, 404);
    assert_eq!(
        sign_in(&apps, &mut phone).await.status,
        401,
        "a removed passkey signs in no more"
    );
    let left: Vec<Value> = listed(&apps, &user.token)
        .await
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(left, [json!(key_id)]);
}

#[tokio::test]
async fn a_passkey_counts_as_both_factors() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    register(&apps, &user, &mut phone, "Phone").await;
    // Two-step verification on: a password login takes a second step, a passkey does not.
    let started = post(
        &apps,
        "/mfa/totp/enrol",
        &user.token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    let secret = shared::mfa::TotpSecret::from_base32(started.body["secret"].as_str().unwrap()).unwrap();
    let now = shared::clock::Clock::now(&*apps.clock);
    let code = secret.code_at_step(now / 30);
    assert_eq!(
        post(&apps, "/mfa/totp/confirm", &user.token, json!({"code": code}))
            .await
            .status,
        200
    );
    assert_eq!(
        login(&apps, &user.name, PASSWORD).await.body["mfa_required"],
        true
    );
    let signed_in = sign_in(&apps, &mut phone).await;
    assert_eq!(signed_in.status, 200, "{signed_in:?}");
    assert!(signed_in.body["token"].is_string());
}

#[tokio::test]
async fn a_challenge_works_once_and_an_assertion_is_not_replayed() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    register(&apps, &user, &mut phone, "Phone").await;

    let (id, options) = sign_in_options(&apps).await;
    let assertion = phone.get(&options);
    assert_eq!(sign_in_with(&apps, &id, &assertion).await.status, 200);
    // The same challenge again, with a fresh assertion over it.
    let fresh = phone.get(&options);
    let reused = sign_in_with(&apps, &id, &fresh).await;
    assert_eq!((reused.status, reused.msg()), (401, "Passkey not accepted"));
    // The same assertion on a new challenge: its client data names the old one.
    let (new_id, _) = sign_in_options(&apps).await;
    assert_eq!(
        sign_in_with(&apps, &new_id, &assertion).await.status,
        401,
        "replayed"
    );
    // Unknown and malformed.
    assert_eq!(sign_in_with(&apps, "no-such-challenge", &fresh).await.status, 401);
    let (id, options) = sign_in_options(&apps).await;
    let mut broken = phone.get(&options);
    broken["response"]["signature"] = json!("AAAA");
    assert_eq!(
        sign_in_with(&apps, &id, &broken).await.status,
        401,
        "a bad signature"
    );
    let answer = sign_in_with(&apps, &id, &json!({"id": "x"})).await;
    assert_eq!(answer.status, 400, "not an assertion: {answer:?}");
}

#[tokio::test]
async fn an_assertion_for_another_origin_or_relying_party_is_refused() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    register(&apps, &user, &mut phone, "Phone").await;

    // A phishing page on another origin relays the service's challenge to the authenticator.
    phone.origin = "https://app.example.com.evil.test".into();
    assert_eq!(sign_in(&apps, &mut phone).await.status, 401, "another origin");
    // A page on a subdomain of the relying party (user content, a forgotten test site) is not
    // one of the configured origins either.
    phone.origin = "https://evil.app.example.com".into();
    assert_eq!(
        sign_in(&apps, &mut phone).await.status,
        401,
        "a subdomain's origin"
    );
    phone.origin = "https://app.example.com:8443".into();
    assert_eq!(sign_in(&apps, &mut phone).await.status, 401, "another port");
    phone.origin = APP_ORIGIN.into();
    // The authenticator signs for another relying party id.
    phone.rp_id_override = Some("evil.test".into());
    assert_eq!(sign_in(&apps, &mut phone).await.status, 401, "another RP id");
    phone.rp_id_override = None;
    assert_eq!(
        sign_in(&apps, &mut phone).await.status,
        200,
        "and the real page still works"
    );

    // Registration from another origin is refused too, and the challenge is used up.
    let mut elsewhere = Authenticator::new("https://evil.test");
    let options = post(
        &apps,
        "/passkeys/register/options",
        &user.token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    let credential = elsewhere.create(&options.body["options"]);
    let body = json!({"challenge_id": options.body["challenge_id"], "credential": credential});
    let refused = post(&apps, "/passkeys/register", &user.token, body.clone()).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(
        post(&apps, "/passkeys/register", &user.token, body).await.msg(),
        "Invalid or expired challenge: start again"
    );
}

#[tokio::test]
async fn a_passkey_signs_in_only_its_own_user_and_a_registration_only_for_its_caller() {
    let apps = Apps::embedded().await;
    let alice = signed_up_user(&apps).await;
    let bob = signed_up_user(&apps).await;
    let mut alices = Authenticator::new(APP_ORIGIN);
    register(&apps, &alice, &mut alices, "Phone").await;

    // Alice's assertion claiming to be Bob (the user handle is not signed).
    let (id, options) = sign_in_options(&apps).await;
    let mut claimed = alices.get(&options);
    let bob_handle = uuid::Uuid::parse_str(&bob.id).unwrap();
    claimed["response"]["userHandle"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        bob_handle.as_bytes()
    ));
    assert_eq!(sign_in_with(&apps, &id, &claimed).await.status, 401);

    // Bob finishing a registration Alice started.
    let options = post(
        &apps,
        "/passkeys/register/options",
        &alice.token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    let credential = Authenticator::new(APP_ORIGIN).create(&options.body["options"]);
    let body = json!({"challenge_id": options.body["challenge_id"], "credential": credential});
    assert_eq!(
        post(&apps, "/passkeys/register", &bob.token, body).await.status,
        400
    );
    assert!(listed(&apps, &bob.token).await.is_empty());
    // Bob removing Alice's passkey.
    let alices_id = listed(&apps, &alice.token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let removal = json!({"id": alices_id, "current_password": PASSWORD});
    assert_eq!(
        post(&apps, "/passkeys/delete", &bob.token, removal).await.status,
        404
    );
    assert_eq!(sign_in(&apps, &mut alices).await.status, 200);
}

#[tokio::test]
async fn a_sign_counter_that_goes_back_is_refused() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    register(&apps, &user, &mut phone, "Phone").await;
    assert_eq!(sign_in(&apps, &mut phone).await.status, 200);
    assert_eq!(sign_in(&apps, &mut phone).await.status, 200);
    // A clone of the authenticator taken before those two sign-ins.
    phone.credentials[0].counter = 0;
    assert_eq!(sign_in(&apps, &mut phone).await.status, 401, "counter 1 after 2");
    phone.credentials[0].counter = 5;
    assert_eq!(sign_in(&apps, &mut phone).await.status, 200, "counter 6");

    // An authenticator without a counter (0 always) signs in every time.
    let mut synced = Authenticator::new(APP_ORIGIN);
    synced.counts = false;
    register(&apps, &user, &mut synced, "Synced").await;
    assert_eq!(sign_in(&apps, &mut synced).await.status, 200);
    assert_eq!(sign_in(&apps, &mut synced).await.status, 200);
}

#[tokio::test]
async fn account_deletion_removes_the_passkeys() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    register(&apps, &user, &mut phone, "Phone").await;
    let deleted = post(
        &apps,
        "/users/me/delete",
        &user.token,
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert!(
        apps.table
            .items(shared::store::access::PASSKEY_PREFIX)
            .await
            .is_empty()
    );
    assert_eq!(sign_in(&apps, &mut phone).await.status, 401);
}

/// Ids no challenge or credential can have (too long for a table key among them) are refused as
/// input, never sent to the store (where they were a 503).
#[tokio::test]
async fn ids_no_challenge_or_credential_can_have_are_refused_as_input() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut phone = Authenticator::new(APP_ORIGIN);
    register(&apps, &user, &mut phone, "Phone").await;
    let long = "A".repeat(2100);

    let removal = json!({"id": long, "current_password": PASSWORD});
    assert_eq!(
        post(&apps, "/passkeys/delete", &user.token, removal).await.status,
        404
    );
    let (id, options) = sign_in_options(&apps).await;
    let assertion = phone.get(&options);
    assert_eq!(sign_in_with(&apps, &long, &assertion).await.status, 401);
    let mut oversized = assertion.clone();
    let big = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, vec![7u8; 1100]);
    oversized["id"] = json!(big);
    oversized["rawId"] = json!(big);
    assert_eq!(sign_in_with(&apps, &id, &oversized).await.status, 401);
    let body = json!({"challenge_id": long, "credential": phone.create(&options_for(&apps, &user).await)});
    let refused = post(&apps, "/passkeys/register", &user.token, body).await;
    assert_eq!(refused.status, 400, "{refused:?}");
}

async fn options_for(apps: &Apps, user: &User) -> Value {
    let answer = post(
        apps,
        "/passkeys/register/options",
        &user.token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    answer.body["options"].clone()
}
