//! Round trips on the critical path, counted at the SDK's HTTP client (`round_trips`): the
//! headline routes make exactly the numbers `openapi.yaml` states for them, and their
//! independent requests run at once. Every other successful call of every suite on
//! `Apps::on` is held to its operation's stated numbers by the apps themselves.

use integration_tests::round_trips::{self, RoundTrips, Stated};
use integration_tests::*;
use lambda_http::http::Method;
use serde_json::json;
use shared::test_util::PASSWORD;

/// What `openapi.yaml` states for `method path` (a template).
fn stated(method: &str, path: &str) -> Stated {
    round_trips::stated()[&(method.to_owned(), path.to_owned())]
        .unwrap_or_else(|| panic!("{method} {path} states no x-round-trips"))
}

/// Asserts that `sent` is exactly what `method path` states.
fn made_exactly(sent: &RoundTrips, method: &str, path: &str) {
    let stated = stated(method, path);
    assert_eq!(
        (sent.requests, sent.sequential),
        (stated.requests, stated.sequential),
        "{method} {path}: {sent:?} against the stated {stated:?}"
    );
}

#[tokio::test]
async fn a_login_is_two_round_trips_around_the_hash_with_its_reservations_and_read_at_once() {
    let apps = Apps::embedded().await;
    let name = unique_name("trips");
    assert_eq!(sign_up(&apps, &name, PASSWORD).await.status, 201);
    // The address's sign-up counted, then the user created (with an email address, its
    // verification mail follows: the stated numbers are that path's).
    let sent = apps.last_round_trips();
    assert_eq!((sent.requests, sent.sequential), (2, 2), "{sent:?}");

    let answer = login(&apps, &name, PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = apps.last_round_trips();
    // The first round trip: both reservations (per name, per address) and the user, at once,
    // before the password is checked; the second: the counts cleared and the session started
    // (and, after a change of argon2 parameters, the rehash stored: the stated seventh request).
    assert_eq!(sent.sequential, stated("POST", "/token").sequential, "{sent:?}");
    assert_eq!(sent.sequential, 2, "{sent:?}");
    assert_eq!(sent.requests, stated("POST", "/token").requests - 1, "{sent:?}");
    assert_eq!(
        sent.operations[..3]
            .iter()
            .filter(|op| *op == "UpdateItem")
            .count(),
        2,
        "the attempt is reserved first: {sent:?}"
    );
    assert!(sent.operations[..3].contains(&"GetItem".to_owned()), "{sent:?}");

    // A wrong password takes as many round trips in sequence as a right one, and an unknown
    // name as many as a known one.
    let wrong = login(&apps, &name, "not the password at all").await;
    assert_eq!(wrong.status, 401);
    let wrong = apps.last_round_trips();
    let unknown = login(&apps, &unique_name("nobody"), PASSWORD).await;
    assert_eq!(unknown.status, 401);
    let unknown = apps.last_round_trips();
    assert_eq!(wrong.sequential, unknown.sequential, "{wrong:?} {unknown:?}");
    assert_eq!(wrong.requests, unknown.requests, "{wrong:?} {unknown:?}");
}

#[tokio::test]
async fn a_refresh_is_two_round_trips_and_the_protected_route_one() {
    let apps = Apps::embedded().await;
    let (user, refresh) = body_session(&apps).await;

    let answer = apps
        .call(Call::post_json(
            "/token/refresh",
            &json!({"refresh_token": refresh}),
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    made_exactly(&apps.last_round_trips(), "POST", "/token/refresh");

    let answer = protected(&apps, Some(&user.bearer())).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = apps.last_round_trips();
    made_exactly(&sent, "GET", "/protected");
    // The user and the session, read at once.
    assert_eq!((sent.requests, sent.sequential), (2, 1), "{sent:?}");
}

#[tokio::test]
async fn the_device_list_and_the_history_are_one_round_trip_and_ending_a_session_two() {
    let apps = Apps::embedded().await;
    let (user, _) = body_session(&apps).await;
    let second = login(&apps, &user.name, PASSWORD).await;
    assert_eq!(second.status, 200);
    let bearer = user.bearer();

    for path in ["/sessions", "/me/events"] {
        let answer = apps.call(Call::get(path).header("authorization", &bearer)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        made_exactly(&apps.last_round_trips(), "GET", path);
    }

    let other = sid_of(second.body["token"].as_str().unwrap());
    let answer = apps
        .call(Call::new(Method::DELETE, &format!("/sessions/{other}")).header("authorization", &bearer))
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    made_exactly(&apps.last_round_trips(), "DELETE", "/sessions/{id}");
}

#[tokio::test]
async fn the_public_documents_and_a_preflight_make_none() {
    let apps = Apps::embedded().await;
    let answer = apps
        .call(
            Call::new(Method::OPTIONS, "/token")
                .header("origin", APP_ORIGIN)
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    let sent = apps.last_round_trips();
    assert_eq!((sent.requests, sent.sequential), (0, 0), "{sent:?}");
    for path in ["/.well-known/jwks.json", "/.well-known/openid-configuration"] {
        assert_eq!(
            stated("GET", path),
            Stated {
                sequential: 0,
                requests: 0
            }
        );
    }
}
