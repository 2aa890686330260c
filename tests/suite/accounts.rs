//! Account deletion through the public routes (`POST /users/me/delete`): written once against
//! [`Api`] and run in process (the handlers on a fresh table of the embedded DynamoDB) and, in
//! `./dev test`, through the local API; what the table holds afterwards is looked at in process,
//! where the test owns the table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::*;
use serde_json::{Value, json};
use shared::clock::Clock as _;
use shared::test_util::PASSWORD;
use tokio::task::JoinSet;

const DELETE: &str = "/users/me/delete";

fn local_api() -> HttpApi {
    HttpApi::local_api()
}

fn confirm(password: &str) -> Value {
    json!({ "password": password })
}

// --- flows, over any transport ------------------------------------------------------------------

/// A wrong password changes nothing; the right one ends every session and access token, clears
/// the browser's cookie and frees the name; a repeat is a 204 again, and a deleted user's token
/// can do nothing to the name's new owner.
async fn deleting_an_account_ends_it_and_frees_its_name(api: &impl Api) {
    let user = signed_up_user(api).await;
    let mut jar = CookieJar::default();
    assert_eq!(
        browser_login(api, &mut jar, &user.name, PASSWORD).await.status,
        200
    );
    let other = body_login(api, &user.name, PASSWORD).await;
    let other_refresh = other.body["refresh_token"].as_str().unwrap().to_owned();

    let wrong = bearer_post(api, DELETE, &user.token, &confirm("not the password at all")).await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.msg(), "Current password is wrong");
    assert_eq!(
        protected(api, Some(&user.bearer())).await.status,
        200,
        "nothing deleted"
    );
    for body in [
        json!({}),
        json!({"password": PASSWORD, "x": 1}),
        json!({"password": 1}),
    ] {
        let answer = bearer_post(api, DELETE, &user.token, &body).await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
    }

    let deleted = bearer_post(api, DELETE, &user.token, &confirm(PASSWORD)).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let cleared: Vec<String> = set_cookies(&deleted);
    assert!(
        cleared.iter().any(|c| c.contains("Max-Age=0")),
        "the refresh cookie is cleared: {cleared:?}"
    );
    assert_eq!(
        protected(api, Some(&user.bearer())).await.status,
        401,
        "its access token"
    );
    let other_bearer = format!("Bearer {}", other.body["token"].as_str().unwrap());
    assert_eq!(
        protected(api, Some(&other_bearer)).await.status,
        401,
        "another session's"
    );
    assert_eq!(
        cookie_post(api, &mut jar, "/token/refresh", None).await.status,
        401
    );
    assert_eq!(body_post(api, "/token/refresh", &other_refresh).await.status, 401);
    assert_eq!(login(api, &user.name, PASSWORD).await.status, 401);

    let again = bearer_post(api, DELETE, &user.token, &confirm(PASSWORD)).await;
    assert_eq!(again.status, 204, "a repeat: {again:?}");

    // The name is free; the old token's repeats leave its new owner alone.
    assert_eq!(sign_up(api, &user.name, PASSWORD).await.status, 201);
    let new_owner = login(api, &user.name, PASSWORD).await;
    assert_eq!(new_owner.status, 200);
    assert_ne!(new_owner.body["user_id"], json!(user.id));
    let stale = bearer_post(api, DELETE, &user.token, &confirm(PASSWORD)).await;
    assert_eq!(stale.status, 204, "{stale:?}");
    let bearer = format!("Bearer {}", new_owner.body["token"].as_str().unwrap());
    let me = protected(api, Some(&bearer)).await;
    assert_eq!(me.status, 200, "the new owner is untouched: {me:?}");
}

/// Wrong passwords at deletion are counted by the login limit: after it, 429 even with the
/// right one, and the account stays.
async fn wrong_passwords_at_deletion_are_counted_by_the_login_limit(api: &impl Api) {
    let user = signed_up_user(api).await;
    for _ in 0..5 {
        let answer = bearer_post(api, DELETE, &user.token, &confirm("not the password at all")).await;
        assert_eq!(answer.status, 401, "{answer:?}");
    }
    let answer = bearer_post(api, DELETE, &user.token, &confirm(PASSWORD)).await;
    assert_eq!(answer.status, 429, "{answer:?}");
    assert!(answer.header("retry-after").is_some());
    assert_eq!(
        protected(api, Some(&user.bearer())).await.status,
        200,
        "still there"
    );
}

#[tokio::test]
async fn in_process_deleting_an_account_ends_it_and_frees_its_name() {
    deleting_an_account_ends_it_and_frees_its_name(&Apps::embedded().await).await;
}

#[tokio::test]
async fn in_process_wrong_passwords_at_deletion_are_counted_by_the_login_limit() {
    wrong_passwords_at_deletion_are_counted_by_the_login_limit(&Apps::embedded().await).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_deleting_an_account_ends_it_and_frees_its_name() {
    deleting_an_account_ends_it_and_frees_its_name(&local_api()).await;
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn local_api_wrong_passwords_at_deletion_are_counted_by_the_login_limit() {
    wrong_passwords_at_deletion_are_counted_by_the_login_limit(&local_api()).await;
}

// --- what the table holds ---------------------------------------------------------------------

/// Every item of the table, as text: each attribute's value (and the key) joined, lowercased.
async fn every_item(apps: &Apps) -> Vec<String> {
    let text = |item: &HashMap<String, AttributeValue>| -> String {
        let mut values: Vec<String> = item
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        values.sort();
        values.join(" ").to_lowercase()
    };
    apps.table.items("").await.iter().map(text).collect()
}

/// After a deletion a scan of the table finds nothing with the user's id or name (its user item,
/// sessions, rotated and unused refresh tokens, login counters), and everything of another user
/// still there.
#[tokio::test]
async fn nothing_of_a_deleted_user_is_left_in_the_table() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let bystander = signed_up_user(&apps).await;
    let bystander_refresh = body_login(&apps, &bystander.name, PASSWORD).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Several sessions, one rotated twice, and a counted wrong password.
    let mut refresh = body_login(&apps, &user.name, PASSWORD).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let answer = body_post(&apps, "/token/refresh", &refresh).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        refresh = answer.body["refresh_token"].as_str().unwrap().to_owned();
    }
    let wrong = bearer_post(&apps, DELETE, &user.token, &confirm("not the password at all")).await;
    assert_eq!(wrong.status, 401);
    // Into the next login window, where the wrong password's counter is still alive (the
    // deletion's own right password clears only the window it falls in); a fresh token there.
    let window = shared::LoginThrottleConfig::default().window.as_secs();
    let now = apps.clock.now();
    apps.clock.advance((now / window + 1) * window - now);
    let mut jar = CookieJar::default();
    let fresh = browser_login(&apps, &mut jar, &user.name, PASSWORD).await;
    assert_eq!(fresh.status, 200);
    let token = fresh.body["token"].as_str().unwrap().to_owned();
    // A verified address (its claim, and its mail counter), a pending verification of it and a
    // reset token.
    let email = format!("{}@example.com", user.name.to_lowercase());
    let change = json!({"email": email, "current_password": PASSWORD});
    assert_eq!(bearer_post(&apps, "/email", &token, &change).await.status, 202);
    let link = apps.mailbox.to(&email).pop().unwrap().token("verify").unwrap();
    let verified = apps
        .call(Call::post_json("/email/verify", &json!({ "token": link })))
        .await;
    assert_eq!(verified.status, 204);
    assert_eq!(bearer_post(&apps, "/email", &token, &change).await.status, 202);
    let forgot = apps
        .call(Call::post_json(
            "/password/forgot",
            &json!({"username": user.name}),
        ))
        .await;
    assert_eq!(forgot.status, 202);

    let name = user.name.to_lowercase();
    let id = user.id.to_lowercase();
    let of_user = |items: &[String]| -> Vec<String> {
        items
            .iter()
            .filter(|item| item.contains(&name) || item.contains(&id))
            .cloned()
            .collect()
    };
    let before = every_item(&apps).await;
    for prefix in [
        "user#", "session#", "refresh#", "login#", "email#", "verify#", "reset#",
    ] {
        assert!(
            of_user(&before)
                .iter()
                .any(|item| item.contains(&format!("pk=s(\"{prefix}"))),
            "an item {prefix} of the user is there to delete: {:#?}",
            of_user(&before)
        );
    }
    assert!(
        of_user(&before).len() >= 12,
        "the user, four sessions' items, counters, the address's items: {:#?}",
        of_user(&before)
    );
    let bystanders_before: Vec<String> = before
        .iter()
        .filter(|item| item.contains(&bystander.id.to_lowercase()))
        .cloned()
        .collect();

    let deleted = bearer_post(&apps, DELETE, &token, &confirm(PASSWORD)).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");

    let after = every_item(&apps).await;
    assert_eq!(of_user(&after), Vec::<String>::new(), "left of the deleted user");
    assert_eq!(
        apps.mailbox.to(&email).pop().unwrap().subject,
        "Your account was deleted"
    );
    for item in &bystanders_before {
        assert!(after.contains(item), "another user's item went: {item}");
    }
    assert_eq!(
        body_post(&apps, "/token/refresh", &bystander_refresh)
            .await
            .status,
        200
    );
}

/// Concurrent deletions of one account, as a client that retries: every one answers 204 (one
/// deletes, the others find it gone, none says the password is wrong), and nothing of the user
/// is left. As many as the name's login limit (5): each reserves an attempt before its password
/// is checked, so more would meet 429s.
#[tokio::test]
async fn concurrent_deletions_of_one_account_all_answer_204() {
    let apps = std::sync::Arc::new(Apps::embedded().await);
    let user = signed_up_user(&*apps).await;
    let mut calls = JoinSet::new();
    for _ in 0..5 {
        let (apps, token) = (apps.clone(), user.token.clone());
        calls.spawn(async move { bearer_post(&*apps, DELETE, &token, &confirm(PASSWORD)).await });
    }
    while let Some(answer) = calls.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 204, "{answer:?}");
    }
    let after = every_item(&apps).await;
    let left: Vec<&String> = after
        .iter()
        .filter(|item| item.contains(&user.id.to_lowercase()) || item.contains(&user.name.to_lowercase()))
        .collect();
    assert!(left.is_empty(), "left: {left:#?}");
}

/// The address's claim goes with the user, in one transaction: even when the deletion fails
/// after it (the sweep's store refuses) and is never repeated, the address is free.
#[tokio::test]
async fn the_address_is_free_as_soon_as_the_user_is_deleted() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let email = format!("{}@example.com", user.name.to_lowercase());
    let change = json!({"email": email, "current_password": PASSWORD});
    assert_eq!(
        bearer_post(&apps, "/email", &user.token, &change).await.status,
        202
    );
    let link = apps.mailbox.to(&email).pop().unwrap().token("verify").unwrap();
    let verified = apps
        .call(Call::post_json("/email/verify", &json!({ "token": link })))
        .await;
    assert_eq!(verified.status, 204);

    apps.faults
        .arm("Query", usize::MAX, integration_tests::faults::Fault::Refused);
    let deleted = bearer_post(&apps, DELETE, &user.token, &confirm(PASSWORD)).await;
    assert_eq!(
        deleted.status,
        503,
        "the sweep failed: {deleted:?} (Query requests seen: {})",
        apps.faults.seen()
    );
    apps.faults.disarm();
    assert!(apps.user(&user.name).await.is_none(), "the user is gone");
    let claims = apps.table.items(&format!("EMAIL#{email}")).await;
    assert!(
        claims.is_empty(),
        "the address's claim went with the user: {claims:?}"
    );
}
