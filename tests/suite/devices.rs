//! "Your devices" and the security history through the public routes, in process on the
//! embedded DynamoDB: `GET /sessions`, `DELETE /sessions/{id}`, `GET /me/events`; what ends a
//! session from the list ends; the attacks (another user's session id, a forged cursor, a huge
//! page); events written once, in the change's own transaction, and a failed best-effort write
//! never failing its request.

use std::collections::HashSet;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::faults::Fault;
use integration_tests::*;
use lambda_http::http::Method;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::store::ListCursor;
use shared::test_util::PASSWORD;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A login of `user` from `ip` with `user_agent`, its refresh token in the body: (access token,
/// refresh token).
async fn login_as(apps: &Apps, name: &str, ip: &str, user_agent: &str) -> (String, String) {
    let body = json!({"username": name, "password": PASSWORD, "refresh_token_in_body": true});
    let answer = apps
        .call(
            Call::post_json("/token", &body)
                .header("user-agent", user_agent)
                .from_ip(ip),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    (
        answer.body["token"].as_str().unwrap().to_owned(),
        answer.body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn get(apps: &Apps, path: &str, token: &str) -> Answer {
    apps.call(Call::get(path).header("authorization", &format!("Bearer {token}")))
        .await
}

async fn end(apps: &Apps, id: &str, token: &str) -> Answer {
    apps.call(
        Call::new(Method::DELETE, &format!("/sessions/{id}"))
            .header("authorization", &format!("Bearer {token}"))
            .header("user-agent", FIREFOX)
            .from_ip("203.0.113.7"),
    )
    .await
}

fn ids(page: &Answer, list: &str) -> Vec<String> {
    page.body[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {page:?}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The types (and details) of the user's events, newest first.
async fn history(apps: &Apps, token: &str) -> Vec<String> {
    let page = get(apps, "/me/events?limit=100", token).await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["detail"].as_str() {
            Some(detail) => format!("{} {detail}", e["type"].as_str().unwrap()),
            None => e["type"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn two_logins_are_listed_newest_first_with_their_device_and_address_and_the_caller_marked() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    apps.clock.advance(1);
    let (laptop, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    apps.clock.advance(60);
    let (desktop, _) = login_as(&apps, &user.name, "198.51.100.4", CHROME).await;

    let page = get(&apps, "/sessions", &laptop).await;
    assert_eq!(page.status, 200, "{page:?}");
    let sessions = page.body["sessions"].as_array().unwrap();
    // signed_up_user's own login, then the two, newest first.
    assert_eq!(sessions.len(), 3, "{page:?}");
    assert_eq!(sessions[0]["id"], sid_of(&desktop));
    assert_eq!(sessions[0]["device"], "Chrome 131 on Windows 10");
    assert_eq!(sessions[0]["ip_at_start"], "198.51.100.4");
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["id"], sid_of(&laptop));
    assert_eq!(sessions[1]["device"], "Firefox 133 on Linux");
    assert_eq!(sessions[1]["ip_at_start"], "203.0.113.7");
    assert_eq!(sessions[1]["current"], true, "the caller's own session");
    assert!(sessions[0]["created_at"].as_u64() > sessions[1]["created_at"].as_u64());
    assert_eq!(page.body["next_cursor"], Value::Null);
    // The raw header is nowhere in the answer.
    assert!(!page.body.to_string().contains("Gecko/20100101"));
}

#[tokio::test]
async fn sessions_started_in_one_second_are_listed_newest_first() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let mut started = vec![sid_of(&user.token)];
    for _ in 0..5 {
        started.push(sid_of(
            &login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await.0,
        ));
    }
    started.reverse();
    assert_eq!(
        ids(&get(&apps, "/sessions", &user.token).await, "sessions"),
        started
    );
}

#[tokio::test]
async fn a_refresh_notes_the_sessions_last_use_and_address() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let (access, refresh) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    apps.clock.advance(120);
    let refreshed = apps
        .call(Call::post_json("/token/refresh", &json!({"refresh_token": refresh})).from_ip("192.0.2.55"))
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let page = get(&apps, "/sessions", &access).await;
    let mine = page.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .cloned()
        .unwrap();
    assert_eq!(mine["ip_at_start"], "203.0.113.7");
    assert_eq!(mine["ip_last_used"], "192.0.2.55");
    assert_eq!(
        mine["last_used_at"].as_u64().unwrap(),
        mine["created_at"].as_u64().unwrap() + 120
    );
}

#[tokio::test]
async fn ending_a_session_from_the_list_ends_its_refresh_and_access_tokens_and_only_it() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let (mine, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let (theirs, their_refresh) = login_as(&apps, &user.name, "198.51.100.4", CHROME).await;

    let ended = end(&apps, &sid_of(&theirs), &mine).await;
    assert_eq!(ended.status, 204, "{ended:?}");
    let refresh = body_post(&apps, "/token/refresh", &their_refresh).await;
    assert_eq!(refresh.status, 401, "its refresh token: {refresh:?}");
    let at_protected = protected(&apps, Some(&format!("Bearer {theirs}"))).await;
    assert_eq!(at_protected.status, 401, "its access token: {at_protected:?}");
    assert_eq!(
        protected(&apps, Some(&format!("Bearer {mine}"))).await.status,
        200
    );
    let listed = ids(&get(&apps, "/sessions", &mine).await, "sessions");
    assert!(!listed.contains(&sid_of(&theirs)), "{listed:?}");
    assert!(listed.contains(&sid_of(&mine)));
    // Ended: a second time it is no session of the caller's.
    let again = end(&apps, &sid_of(&theirs), &mine).await;
    assert_eq!(again.status, 404, "{again:?}");
    assert_eq!(again.msg(), "No such session");
}

#[tokio::test]
async fn another_users_session_id_is_404_as_an_unknown_one_is_and_ends_nothing() {
    let apps = Apps::embedded().await;
    let alice = signed_up_user(&apps).await;
    let mallory = signed_up_user(&apps).await;
    let alices = sid_of(&alice.token);
    let by_mallory = end(&apps, &alices, &mallory.token).await;
    assert_eq!(by_mallory.status, 404, "{by_mallory:?}");
    let unknown = end(&apps, "0b4c1f4e-8d0a-4c2e-9a57-3f1c2b7d9e10", &mallory.token).await;
    assert_eq!((unknown.status, unknown.msg()), (404, by_mallory.msg()));
    let not_an_id = end(&apps, "SESSION%23x", &mallory.token).await;
    assert_eq!(not_an_id.status, 404, "{not_an_id:?}");
    assert_eq!(
        protected(&apps, Some(&alice.bearer())).await.status,
        200,
        "alice's session goes on"
    );
    let mallorys = ids(&get(&apps, "/sessions", &mallory.token).await, "sessions");
    assert!(
        !mallorys.contains(&alices),
        "mallory lists only hers: {mallorys:?}"
    );
    assert!(
        history(&apps, &alice.token)
            .await
            .iter()
            .all(|e| !e.starts_with("session.ended"))
    );
}

#[tokio::test]
async fn a_page_size_out_of_bounds_and_a_forged_cursor_are_400() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    for list in ["/sessions", "/me/events"] {
        for limit in ["0", "101", "1000000000000", "-1", "1.5", "ten", "+5", ""] {
            let answer = get(&apps, &format!("{list}?limit={limit}"), &user.token).await;
            assert_eq!(answer.status, 400, "{list} limit={limit}: {answer:?}");
        }
        for cursor in [
            "x",
            "AAAA",
            // The right shape, spelled otherwise (padding), and a sort key of another kind.
            "MDAwMDAwMDAwMSMwYjRjMWY0ZS04ZDBhLTRjMmUtOWE1Ny0zZjFjMmI3ZDllMTA=",
            "VVNFUiNhbGljZQ",
        ] {
            let answer = get(&apps, &format!("{list}?cursor={cursor}"), &user.token).await;
            assert_eq!(answer.status, 400, "{list} cursor={cursor}: {answer:?}");
        }
        let huge = "A".repeat(10_000);
        let answer = get(&apps, &format!("{list}?cursor={huge}"), &user.token).await;
        assert_eq!(answer.status, 400);
    }
}

#[tokio::test]
async fn pages_of_one_walk_the_whole_list_once_and_a_cursor_never_leaves_the_callers_list() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let other = signed_up_user(&apps).await;
    for _ in 0..3 {
        apps.clock.advance(1);
        login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        pages += 1;
        let path = match &cursor {
            Some(c) => format!("/sessions?limit=1&cursor={c}"),
            None => "/sessions?limit=1".to_owned(),
        };
        let page = get(&apps, &path, &user.token).await;
        assert_eq!(page.status, 200, "{page:?}");
        seen.extend(ids(&page, "sessions"));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(pages, 4, "the last page says there is no next one");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        4,
        "no repeats: {seen:?}"
    );
    // A well-formed cursor made from another user's session goes on in the caller's own list:
    // it names a place, never a list.
    let others = ListCursor {
        at: apps.clock.now() + 10,
        id: uuid::Uuid::parse_str(&sid_of(&other.token)).unwrap(),
    };
    let page = get(
        &apps,
        &format!("/sessions?cursor={}", others.encode()),
        &user.token,
    )
    .await;
    assert_eq!(page.status, 200, "{page:?}");
    let listed = ids(&page, "sessions");
    assert!(!listed.contains(&sid_of(&other.token)), "{listed:?}");
    assert_eq!(
        listed.len(),
        4,
        "everything older than the cursor's time: {listed:?}"
    );
}

#[tokio::test]
async fn logout_and_log_out_everywhere_take_sessions_off_the_list() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let (a, a_refresh) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let out = body_post(&apps, "/logout", &a_refresh).await;
    assert_eq!(out.status, 204);
    let listed = ids(&get(&apps, "/sessions", &user.token).await, "sessions");
    assert!(!listed.contains(&sid_of(&a)), "logged out: {listed:?}");
    assert_eq!(listed, [sid_of(&user.token)]);
    login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let everywhere = bearer_post(&apps, "/logout/all", &user.token, &json!({})).await;
    assert_eq!(everywhere.status, 204);
    let (fresh, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let listed = ids(&get(&apps, "/sessions", &fresh).await, "sessions");
    assert_eq!(
        listed,
        [sid_of(&fresh)],
        "only the session after log out everywhere"
    );
}

#[tokio::test]
async fn a_session_past_its_idle_time_is_not_listed() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let (_, refresh) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    apps.clock
        .advance(shared::SessionConfig::default().idle.as_secs() - 10);
    // Kept alive by its refreshes; the other one idles out.
    let refreshed = body_post(&apps, "/token/refresh", &refresh).await;
    assert_eq!(refreshed.status, 200);
    apps.clock.advance(20);
    let token = refreshed.body["token"].as_str().unwrap();
    let listed = ids(&get(&apps, "/sessions", token).await, "sessions");
    assert_eq!(listed, [sid_of(token)], "{listed:?}");
    // Not listed, so not one to end either.
    let idle = end(&apps, &sid_of(&user.token), token).await;
    assert_eq!(idle.status, 404, "{idle:?}");
}

#[tokio::test]
async fn a_session_past_its_absolute_end_cannot_be_ended_from_the_list() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let (old, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let absolute = shared::SessionConfig::default().absolute.as_secs();
    // Kept from idling by a session of its own age's end: a fresh login to ask with, and the
    // old one's last use moved up so only its absolute end can refuse it.
    apps.clock.advance(absolute);
    let key = format!("SESSION#{}", sid_of(&old));
    apps.table
        .client
        .update_item()
        .table_name(&apps.table.name)
        .key("pk", AttributeValue::S(key))
        .update_expression("SET last_used_at = :now")
        .expression_attribute_values(":now", AttributeValue::N(apps.clock.now().to_string()))
        .send()
        .await
        .unwrap();
    let (fresh, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let ended = end(&apps, &sid_of(&old), &fresh).await;
    assert_eq!(ended.status, 404, "its end is now: {ended:?}");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_make_the_same_store_calls() {
    // The answer's timing must not tell them apart: the known user's failed login writes its
    // event, so the unknown name's writes one too.
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    apps.faults.arm("*", 0, Fault::Refused);
    assert_eq!(
        login(&apps, &user.name, "not the password at all").await.status,
        401
    );
    let known = apps.faults.seen();
    apps.faults.arm("*", 0, Fault::Refused);
    assert_eq!(
        login(&apps, &unique_name("nobody"), "not the password at all")
            .await
            .status,
        401
    );
    assert_eq!(apps.faults.seen(), known, "the same number of store requests");
    apps.faults.arm("PutItem", 0, Fault::Refused);
    assert_eq!(
        login(&apps, &unique_name("nobody"), "not the password at all")
            .await
            .status,
        401
    );
    assert_eq!(apps.faults.seen(), 1, "one event written, in no list");
}

#[tokio::test]
async fn a_failed_login_a_login_and_an_ended_session_are_in_the_history_newest_first() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    let wrong = apps
        .call(
            Call::post_json("/token", &credentials(&user.name, "not the password at all"))
                .header("user-agent", CHROME)
                .from_ip("198.51.100.4"),
        )
        .await;
    assert_eq!(wrong.status, 401);
    apps.clock.advance(1);
    let (mine, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    apps.clock.advance(1);
    assert_eq!(end(&apps, &sid_of(&user.token), &mine).await.status, 204);

    let page = get(&apps, "/me/events", &mine).await;
    assert_eq!(page.status, 200, "{page:?}");
    let events = page.body["events"].as_array().unwrap();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["detail"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("session.ended", json!("device_list")),
            ("login.succeeded", json!("password")),
            ("login.failed", json!("password")),
            // signed_up_user's own login.
            ("login.succeeded", json!("password")),
        ],
        "{page:?}"
    );
    let failed = &events[2];
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["ip"], "198.51.100.4");
    assert_eq!(failed["device"], "Chrome 131 on Windows 10");
    assert_eq!(events[0]["outcome"], "success");
    // Nothing secret in any of it.
    let text = page.body.to_string();
    for secret in [PASSWORD, "not the password at all", mine.as_str()] {
        assert!(!text.contains(secret));
    }
    // Another user sees none of it.
    let other = signed_up_user(&apps).await;
    assert_eq!(history(&apps, &other.token).await, ["login.succeeded password"]);
}

#[tokio::test]
async fn every_change_writes_its_event_once() {
    let apps = Apps::embedded().await;
    let (user, refresh) = body_session(&apps).await;
    let changed = bearer_post(
        &apps,
        "/password",
        &user.token,
        &json!({"current_password": PASSWORD, "new_password": "another horse battery staple"}),
    )
    .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    // The ended session's token is reused after the grace period: detected, revoked already.
    apps.clock.advance(3600);
    let (fresh, _) = {
        let body = json!({"username": user.name, "password": "another horse battery staple", "refresh_token_in_body": true});
        let answer = apps.call(Call::post_json("/token", &body)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        (answer.body["token"].as_str().unwrap().to_owned(), ())
    };
    let first = body_post(&apps, "/token/refresh", &refresh).await;
    assert_eq!(first.status, 401, "its session ended with the password change");
    let everywhere = bearer_post(&apps, "/logout/all", &fresh, &json!({})).await;
    assert_eq!(everywhere.status, 204);
    let body = json!({"username": user.name, "password": "another horse battery staple", "refresh_token_in_body": true});
    let last = apps.call(Call::post_json("/token", &body)).await;
    let token = last.body["token"].as_str().unwrap();
    assert_eq!(
        history(&apps, token).await,
        [
            "login.succeeded password",
            "sessions.ended_everywhere",
            "login.succeeded password",
            "password.changed",
            "login.succeeded password",
            "login.succeeded password",
        ]
    );
}

#[tokio::test]
async fn a_reused_refresh_token_is_in_the_history_once_however_often_it_comes_back() {
    let apps = Apps::embedded().await;
    let (user, first) = body_session(&apps).await;
    let rotated = body_post(&apps, "/token/refresh", &first).await;
    assert_eq!(rotated.status, 200);
    apps.clock.advance(60);
    for _ in 0..3 {
        let replay = body_post(&apps, "/token/refresh", &first).await;
        assert_eq!(replay.status, 401);
    }
    let (fresh, _) = login_as(&apps, &user.name, "203.0.113.7", FIREFOX).await;
    let events = history(&apps, &fresh).await;
    assert_eq!(
        events.iter().filter(|e| *e == "session.reuse_detected").count(),
        1,
        "{events:?}"
    );
}

#[tokio::test]
async fn concurrent_ends_of_one_session_end_it_once_and_write_one_event() {
    let apps = Arc::new(Apps::embedded().await);
    let user = signed_up_user(&*apps).await;
    let (theirs, _) = login_as(&apps, &user.name, "198.51.100.4", CHROME).await;
    let target = sid_of(&theirs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (apps, token, target) = (apps.clone(), user.token.clone(), target.clone());
        tasks.spawn(async move { end(&apps, &target, &token).await.status });
    }
    let statuses = tasks.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 15, "{statuses:?}");
    let events = history(&apps, &user.token).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "session.ended device_list")
            .count(),
        1,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_failed_event_write_does_not_fail_the_failed_login_it_records() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    apps.faults.arm("PutItem", 1, Fault::Refused);
    let wrong = login(&apps, &user.name, "not the password at all").await;
    assert_eq!(wrong.status, 401, "the answer it would have had: {wrong:?}");
    assert_eq!(apps.faults.seen(), 1, "the event's write was tried");
    assert!(
        !history(&apps, &user.token)
            .await
            .iter()
            .any(|e| e.starts_with("login.failed")),
        "not recorded"
    );
}

#[tokio::test]
async fn a_change_whose_write_fails_leaves_no_event_behind() {
    let apps = Apps::embedded().await;
    let user = signed_up_user(&apps).await;
    apps.faults.arm("TransactWriteItems", 1, Fault::Refused);
    let everywhere = bearer_post(&apps, "/logout/all", &user.token, &json!({})).await;
    assert_eq!(everywhere.status, 503, "{everywhere:?}");
    assert_eq!(
        history(&apps, &user.token).await,
        ["login.succeeded password"],
        "nothing changed, nothing recorded"
    );
}

#[tokio::test]
async fn a_session_started_before_the_lists_joins_its_list_at_its_next_refresh() {
    let apps = Apps::embedded().await;
    let (user, refresh) = body_session(&apps).await;
    // As a session item written before the lists existed: no list_key, list_at, device, IPs.
    let key = format!("SESSION#{}", sid_of(&user.token));
    apps.table
        .client
        .update_item()
        .table_name(&apps.table.name)
        .key("pk", AttributeValue::S(key))
        .update_expression("REMOVE list_key, list_at, device, ip_at_start, ip_last_used")
        .send()
        .await
        .unwrap();
    assert!(
        ids(&get(&apps, "/sessions", &user.token).await, "sessions")
            .iter()
            .all(|id| *id != sid_of(&user.token))
    );
    let refreshed = body_post(&apps, "/token/refresh", &refresh).await;
    assert_eq!(refreshed.status, 200);
    let token = refreshed.body["token"].as_str().unwrap();
    let page = get(&apps, "/sessions", token).await;
    let mine = page.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sid_of(token))
        .cloned()
        .unwrap_or_else(|| panic!("listed after its refresh: {page:?}"));
    assert_eq!(mine["device"], "Unknown device");
    assert_eq!(mine["current"], true);
}

#[tokio::test]
async fn the_lists_need_a_live_session_of_the_caller() {
    let apps = Apps::embedded().await;
    let (user, refresh) = body_session(&apps).await;
    assert_eq!(body_post(&apps, "/logout", &refresh).await.status, 204);
    for path in ["/sessions", "/me/events"] {
        let answer = get(&apps, path, &user.token).await;
        assert_eq!(answer.status, 401, "{path}: {answer:?}");
    }
    let answer = end(&apps, &sid_of(&user.token), &user.token).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    let none = apps.call(Call::get("/sessions")).await;
    assert_eq!(none.status, 401);
}
