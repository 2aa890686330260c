//! The store suite: the functions and the store against a DynamoDB. In `cargo test` that is a
//! fresh table of the DynamoDB embedded in the test process (Dynoxide); in `./dev test` and
//! `./dev test-store URL`, the table `TEST_USERS_TABLE` at `TEST_DYNAMODB_ENDPOINT`, which can be
//! any DynamoDB, a real one included. Also the store's behaviour when DynamoDB cannot be reached
//! or answers with a fault (injected at the SDK's HTTP client). Many concurrent tasks stand for
//! the many function instances Lambda runs at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType, TimeToLiveStatus};
use integration_tests::dynamo::{self, Table};
use integration_tests::faults::{Fault, Faults, FaultyClient};
use integration_tests::test_util::PASSWORD;
use integration_tests::{
    Apps, an_event, body_post, body_session, login, protected, sign_up, signed_up_user, unique_name,
};
use shared::StoreConfig;
use shared::store::access::{
    EVENT_LISTING, LIST_INDEX, LIST_KEY_ATTRIBUTE, LIST_SORT_ATTRIBUTE, SESSION_LISTING, USER_ID_ATTRIBUTE,
    USER_INDEX,
};
use shared::store::dynamodb::{DynamoUserStore, LOGIN_PREFIX, PARTITION_KEY, USER_PREFIX};
use shared::store::retry::{ConflictRetry, only_conflicts};
use shared::store::{
    ChangePassword, CreateUser, EndAllSessions, FindUser, RehashPassword, SessionStore, UserRecord,
};
use shared::user::Username;
use tokio::task::JoinSet;

fn store_config(table: &str, attempt_ms: u64, operation_ms: u64) -> StoreConfig {
    StoreConfig {
        table: table.into(),
        connect_timeout: Duration::from_millis(attempt_ms),
        attempt_timeout: Duration::from_millis(attempt_ms),
        operation_timeout: Duration::from_millis(operation_ms),
    }
}

/// The apps of the store suite (see [`Apps::for_store_suite`]).
pub(crate) async fn store_apps() -> Apps {
    Apps::for_store_suite().await
}

/// The login attempts counted for `name` in the apps' current window.
async fn attempts(apps: &Apps, name: &str) -> u32 {
    let window = apps.token.throttle.current_window();
    apps.table
        .count(&format!("{LOGIN_PREFIX}{}#{window}", name.to_ascii_lowercase()))
        .await
}

#[tokio::test]
async fn table_created_from_the_template_has_the_key_the_store_uses() {
    let apps = store_apps().await;
    let (client, table) = (&apps.table.client, apps.table.name.clone());
    let described = client.describe_table().table_name(&table).send().await.unwrap();
    let t = described.table.unwrap();
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, [(PARTITION_KEY, KeyType::Hash)]);
    let attrs: Vec<_> = t
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name(), a.attribute_type().clone()))
        .collect();
    assert_eq!(
        attrs,
        [
            (PARTITION_KEY, ScalarAttributeType::S),
            (USER_ID_ATTRIBUTE, ScalarAttributeType::S),
            (LIST_KEY_ATTRIBUTE, ScalarAttributeType::S),
            (LIST_SORT_ATTRIBUTE, ScalarAttributeType::S),
        ]
    );
    let index = t.global_secondary_indexes().first().expect("the ByUser index");
    assert_eq!(index.index_name(), Some(USER_INDEX));
    assert_eq!(
        index
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type().clone()))
            .collect::<Vec<_>>(),
        [(USER_ID_ATTRIBUTE, KeyType::Hash)]
    );
    // The lists' index: keyed as the store queries it, projecting what the listings read.
    let lists = t
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(LIST_INDEX))
        .expect("the UserLists index");
    assert_eq!(
        lists
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type().clone()))
            .collect::<Vec<_>>(),
        [
            (LIST_KEY_ATTRIBUTE, KeyType::Hash),
            (LIST_SORT_ATTRIBUTE, KeyType::Range)
        ]
    );
    let projected: HashSet<&str> = lists
        .projection()
        .map(|p| p.non_key_attributes().iter().map(String::as_str).collect())
        .unwrap_or_default();
    let keys = [PARTITION_KEY, LIST_KEY_ATTRIBUTE, LIST_SORT_ATTRIBUTE];
    let listed: HashSet<&str> = SESSION_LISTING
        .iter()
        .chain(EVENT_LISTING)
        .copied()
        .filter(|a| !keys.contains(a))
        .collect();
    assert_eq!(projected, listed);
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn sign_up_then_login_then_protected() {
    let apps = store_apps().await;
    let user = signed_up_user(&apps).await;
    assert_eq!(
        login(&apps, &user.name.to_uppercase(), PASSWORD).await.status,
        200
    );
    assert_eq!(
        apps.protected
            .verifier
            .verify_access(&user.token, integration_tests::test_util::ISSUER)
            .unwrap()
            .sub,
        user.id
    );
    let me = protected(&apps, Some(&user.bearer())).await;
    assert_eq!(
        (me.status, me.body),
        (200, serde_json::json!({"id": user.id, "username": user.name}))
    );
    assert_eq!(login(&apps, &user.name, "not the password").await.status, 401);
}

#[tokio::test]
async fn stored_item_holds_the_hash_and_never_the_password() {
    let apps = store_apps().await;
    let name = unique_name("dave");
    assert_eq!(sign_up(&apps, &name, PASSWORD).await.status, 201);
    let item = apps.table.item(&format!("{USER_PREFIX}{name}")).await.unwrap();
    let mut attrs: Vec<_> = item.keys().map(String::as_str).collect();
    attrs.sort_unstable();
    assert_eq!(
        attrs,
        ["created_at", "password_hash", "pk", "user_id", "username"]
    );
    let hash = item["password_hash"].as_s().unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(
        item.values()
            .all(|v| v.as_s().map_or(true, |s| !s.contains(PASSWORD)))
    );
}

#[tokio::test]
async fn duplicate_sign_up_is_409_in_any_letter_case() {
    let apps = store_apps().await;
    let name = unique_name("erin");
    assert_eq!(sign_up(&apps, &name, PASSWORD).await.status, 201);
    assert_eq!(sign_up(&apps, &name, PASSWORD).await.status, 409);
    assert_eq!(
        sign_up(&apps, &name.to_uppercase(), "another password")
            .await
            .status,
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sign_ups_of_one_name_create_exactly_one_user() {
    let apps = Arc::new(store_apps().await);
    let name = unique_name("frank");
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let (apps, name) = (apps.clone(), name.clone());
        tasks.spawn(async move { sign_up(&*apps, &name, &format!("password number {i}")).await });
    }
    let results = tasks.join_all().await;
    let created: Vec<_> = results.iter().filter(|a| a.status == 201).collect();
    let conflicts = results.iter().filter(|a| a.status == 409).count();
    assert_eq!((created.len(), conflicts), (1, 19), "{results:?}");

    let stored = apps
        .store
        .find_by_username(&Username::parse(&name).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.id,
        created[0].body["id"].as_str().unwrap(),
        "the stored user is the one answered 201"
    );
}

/// Fifty guesses at once, as fifty function instances would take them: the reservation before
/// each check lets exactly `LOGIN_MAX_FAILURES` through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_passwords_get_exactly_the_limit_checked_and_the_rest_429() {
    let apps = Arc::new(store_apps().await);
    let name = unique_name("judy");
    assert_eq!(sign_up(&*apps, &name, PASSWORD).await.status, 201);
    let limit = apps.token.throttle.config().max_failures as usize;
    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let (apps, name) = (apps.clone(), name.clone());
        tasks.spawn(async move { login(&*apps, &name, "wrong password").await.status });
    }
    let statuses = tasks.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (limit, 50 - limit), "{statuses:?}");
    assert_eq!(attempts(&apps, &name).await as usize, limit);

    let locked = login(&*apps, &name, PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(locked.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_at_an_unknown_name_are_limited_the_same_way() {
    let apps = Arc::new(store_apps().await);
    let name = unique_name("ghost");
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (apps, name) = (apps.clone(), name.clone());
        tasks.spawn(async move { login(&*apps, &name, PASSWORD).await.status });
    }
    let statuses = tasks.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15, "{statuses:?}");
}

#[tokio::test]
async fn successful_login_deletes_the_attempt_record() {
    let apps = store_apps().await;
    let name = unique_name("kim");
    assert_eq!(sign_up(&apps, &name, PASSWORD).await.status, 201);
    assert_eq!(login(&apps, &name, "wrong password").await.status, 401);
    assert_eq!(attempts(&apps, &name).await, 1);
    assert_eq!(login(&apps, &name, PASSWORD).await.status, 200);
    assert_eq!(attempts(&apps, &name).await, 0);
}

#[tokio::test]
async fn a_hash_with_old_argon2_parameters_is_replaced_at_login_and_only_if_unchanged() {
    let apps = store_apps().await;
    let name = unique_name("olga");
    let old = shared::password::PasswordHasher::new(&shared::PasswordConfig {
        memory_kib: 2048,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let old_hash = old
        .hash(shared::user::Password::parse_new(PASSWORD.into()).unwrap())
        .await
        .unwrap();
    let user = UserRecord {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.clone(),
        password_hash: old_hash.clone(),
        epoch: 0,
        email: None,
        reset_hash: None,
        totp: None,
        totp_pending: None,
        passkeys: Vec::new(),
    };
    apps.store.create(&user).await.unwrap();
    let username = Username::parse(&name).unwrap();
    // Conditional: a hash that is no longer the stored one is never overwritten.
    assert!(
        !apps
            .store
            .replace_password_hash(&username, "not-the-hash", "x")
            .await
            .unwrap()
    );

    assert_eq!(login(&apps, &name, PASSWORD).await.status, 200);
    let stored = apps.table.item(&format!("{USER_PREFIX}{name}")).await.unwrap();
    let stored = stored["password_hash"].as_s().unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{stored}");
    assert_eq!(login(&apps, &name, PASSWORD).await.status, 200);
}

/// A server that accepts connections and never answers: what the SDK, without a read
/// timeout, would wait on until the Lambda itself timed out.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, handle)
}

/// Without the configured timeouts the call would wait forever; with them it ends soon after
/// the operation timeout. The bound is loose (a loaded 2-core machine) but finite.
#[tokio::test]
async fn silent_store_is_503_within_the_operation_timeout() {
    let (url, server) = silent_server().await;
    let store = DynamoUserStore::new(
        &dynamo::sdk_config(&url, dynamo::functions_client()).await,
        &store_config("users", 300, 1_200),
    );
    let apps = Apps::with_store(store, Table::named(&url, "users".into()).await);

    // Both routes at once: each waits out the operation timeout.
    let timed = |route: &'static str| {
        let apps = &apps;
        async move {
            let started = Instant::now();
            let call = async {
                match route {
                    "users" => sign_up(apps, "grace", PASSWORD).await,
                    _ => login(apps, "grace", PASSWORD).await,
                }
            };
            let response = tokio::time::timeout(Duration::from_secs(30), call)
                .await
                .unwrap_or_else(|_| panic!("/{route} hung on a silent store"));
            (route, response, started.elapsed())
        }
    };
    let (users, token) = tokio::join!(timed("users"), timed("token"));
    for (route, response, elapsed) in [users, token] {
        assert_eq!(response.status, 503, "/{route}");
        assert_eq!(response.msg(), "User store unavailable, try again shortly");
        assert!(elapsed < Duration::from_secs(8), "/{route} took {elapsed:?}");
    }
    server.abort();
}

/// The apps on a DynamoDB endpoint that refuses connections at once (a port bound, then closed).
pub(crate) async fn refused_apps() -> Apps {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let sdk = dynamo::sdk_config(&url, dynamo::functions_client()).await;
    let store = DynamoUserStore::new(&sdk, &store_config("users", 200, 500));
    Apps::with_store(store, Table::named(&url, "users".into()).await)
}

#[tokio::test]
async fn refused_connection_is_503() {
    let apps = refused_apps().await;
    let started = Instant::now();
    let response = login(&apps, "heidi", PASSWORD).await;
    assert_eq!(response.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn missing_table_is_503_not_a_crash() {
    let apps = store_apps().await;
    let store = DynamoUserStore::new(
        &dynamo::sdk_config(&apps.table.endpoint, dynamo::functions_client()).await,
        &store_config("no-such-table", 1_000, 3_000),
    );
    let apps = Apps::with_store(store, apps.table.clone());
    assert_eq!(login(&apps, "ivan", PASSWORD).await.status, 503);
}

/// The DynamoDB in use answers a repeated TransactWriteItems as DynamoDB does:
/// the same ClientRequestToken and parameters succeed again without applying anything, the same
/// token with other parameters is IdempotentParameterMismatchException, and a new token runs the
/// transaction again. The SDK keeps one token across a transaction's retries, so without this a
/// retried attempt that had committed fails against its own writes (seen under `./dev load`).
#[tokio::test]
async fn transactions_are_idempotent_on_their_client_request_token_as_on_dynamodb() {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
    let apps = store_apps().await;
    let (client, table) = (&apps.table.client, apps.table.name.clone());
    let key = format!("{USER_PREFIX}{}", unique_name("idem"));
    let put = |value: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .item(PARTITION_KEY, AttributeValue::S(key.clone()))
                    .item("v", AttributeValue::S(value.into()))
                    .condition_expression("attribute_not_exists(#k)")
                    .expression_attribute_names("#k", PARTITION_KEY)
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let token = unique_name("token");
    let send = |item: TransactWriteItem, token: String| {
        client
            .transact_write_items()
            .transact_items(item)
            .client_request_token(token)
            .send()
    };

    send(put("first"), token.clone())
        .await
        .expect("the first call commits");
    send(put("first"), token.clone())
        .await
        .expect("the same call with the same token succeeds again, as a retry does on DynamoDB");
    let mismatch = send(put("second"), token.clone()).await.unwrap_err();
    assert!(
        mismatch
            .as_service_error()
            .is_some_and(|e| e.is_idempotent_parameter_mismatch_exception()),
        "{mismatch:?}"
    );
    let again = send(put("first"), unique_name("token")).await.unwrap_err();
    assert!(
        again
            .as_service_error()
            .is_some_and(|e| e.is_transaction_canceled_exception()),
        "a new token runs the transaction again, and its condition fails: {again:?}"
    );
    let stored = apps.table.item(&key).await.expect("the item was written");
    assert_eq!(
        stored["v"].as_s().unwrap(),
        "first",
        "written once, by the first call"
    );
}

/// A cancelled transaction changes nothing, as on DynamoDB, including the items it updated or
/// created before the item whose condition failed.
#[tokio::test]
async fn a_cancelled_transaction_leaves_every_item_as_it_was() {
    use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
    let apps = store_apps().await;
    let (client, table) = (&apps.table.client, apps.table.name.clone());
    let key = |name: &str| format!("{USER_PREFIX}{}", unique_name(name));
    let (updated, deleted, created, existing) = (key("upd"), key("del"), key("new"), key("old"));
    for (k, v) in [(&updated, "before"), (&deleted, "kept"), (&existing, "first")] {
        client
            .put_item()
            .table_name(&table)
            .item(PARTITION_KEY, AttributeValue::S(k.clone()))
            .item("v", AttributeValue::S(v.into()))
            .send()
            .await
            .unwrap();
    }
    let pk = |k: &str| AttributeValue::S(k.into());
    let items = [
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&table)
                    .key(PARTITION_KEY, pk(&updated))
                    .update_expression("SET v = :v")
                    .expression_attribute_values(":v", AttributeValue::S("after".into()))
                    .build()
                    .unwrap(),
            )
            .build(),
        TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&table)
                    .key(PARTITION_KEY, pk(&deleted))
                    .build()
                    .unwrap(),
            )
            .build(),
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .item(PARTITION_KEY, pk(&created))
                    .build()
                    .unwrap(),
            )
            .build(),
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&table)
                    .item(PARTITION_KEY, pk(&existing))
                    .item("v", AttributeValue::S("second".into()))
                    .condition_expression("attribute_not_exists(#k)")
                    .expression_attribute_names("#k", PARTITION_KEY)
                    .build()
                    .unwrap(),
            )
            .build(),
    ];
    let cancelled = client
        .transact_write_items()
        .set_transact_items(Some(items.to_vec()))
        .send()
        .await
        .unwrap_err();
    assert!(
        cancelled
            .as_service_error()
            .is_some_and(|e| e.is_transaction_canceled_exception()),
        "{cancelled:?}"
    );
    let value = |item: Option<std::collections::HashMap<String, AttributeValue>>| {
        item.map(|i| i["v"].as_s().unwrap().clone())
    };
    assert_eq!(value(apps.table.item(&updated).await).as_deref(), Some("before"));
    assert_eq!(value(apps.table.item(&deleted).await).as_deref(), Some("kept"));
    assert_eq!(apps.table.item(&created).await, None);
    assert_eq!(value(apps.table.item(&existing).await).as_deref(), Some("first"));
}

// --- transaction conflicts --------------------------------------------------------------------

/// A store whose DynamoDB is only `faults`: every request not faulted is answered `{}`.
async fn faulty_store(faults: &Arc<Faults>, operation_ms: u64) -> DynamoUserStore {
    let client = FaultyClient::shared(None, faults.clone());
    let sdk = dynamo::sdk_config("http://127.0.0.1:9", client).await;
    DynamoUserStore::new(&sdk, &store_config("users", 1_000, operation_ms))
}

#[tokio::test]
async fn a_write_that_meets_a_transaction_is_retried_until_it_goes_through() {
    let conflicts = Faults::first("TransactWriteItems", 2, Fault::CancelledByConflict);
    let store = faulty_store(&conflicts, 3_000).await;
    let alice = Username::parse("alice").unwrap();
    let ended = store
        .end_all_sessions(&alice, "user-1", &an_event("user-1", 1))
        .await;
    assert!(matches!(ended, Ok(true)), "{ended:?}");
    assert_eq!(conflicts.seen(), 3, "two conflicts, then the write");
}

#[tokio::test]
async fn conflicts_that_persist_end_after_a_bounded_number_of_tries() {
    let conflicts = Faults::first("TransactWriteItems", usize::MAX, Fault::CancelledByConflict);
    let store = faulty_store(&conflicts, 3_000).await;
    let alice = Username::parse("alice").unwrap();
    let event = an_event("user-1", 1);
    let started = Instant::now();
    for result in [
        store.end_all_sessions(&alice, "user-1", &event).await,
        store.change_password(&alice, "old", "new", &event).await,
        store.revoke_session("s-1", 1, &event).await,
    ] {
        let err = result.unwrap_err();
        assert!(format!("{:#}", err.0).contains("TransactionConflict"), "{err:#?}");
    }
    assert_eq!(conflicts.seen(), 12, "four tries of each of the three writes");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn backoffs_stay_within_their_doubling_bound_and_the_cap_and_are_spread() {
    let policy = ConflictRetry::within(Duration::from_secs(3));
    for _ in 0..200 {
        assert!(policy.backoff(1) <= Duration::from_millis(20));
        assert!(policy.backoff(2) <= Duration::from_millis(40));
        assert!(policy.backoff(5) <= Duration::from_millis(200));
        assert!(policy.backoff(40) <= Duration::from_millis(200));
    }
    let spread: HashSet<Duration> = (0..50).map(|_| policy.backoff(3)).collect();
    assert!(spread.len() > 10, "jittered: {spread:?}");
}

#[test]
fn a_cancelled_transaction_is_retried_only_when_every_reason_is_a_conflict() {
    assert!(only_conflicts([None, Some("TransactionConflict"), Some("None")]));
    assert!(!only_conflicts([
        Some("ConditionalCheckFailed"),
        Some("TransactionConflict")
    ]));
    assert!(!only_conflicts([None, Some("None")]));
    assert!(!only_conflicts([Some("ValidationError")]));
}

#[tokio::test]
async fn retries_end_within_the_operation_timeout() {
    // Ten tries of 30 ms each would take 300 ms and more; the budget ends them at 100.
    let policy = ConflictRetry {
        attempts: 10,
        ..ConflictRetry::within(Duration::from_millis(100))
    };
    let tries = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let result: Result<(), SdkError<(), ()>> = policy
        .retry(
            (),
            |()| async {
                tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                Err(SdkError::timeout_error("a conflict, say"))
            },
            |_| true,
        )
        .await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(SdkError::TimeoutError(_))), "{result:?}");
    assert!(elapsed < Duration::from_millis(200), "{elapsed:?}");
    assert!(tries.into_inner() < 10);
}

/// The routes through the store with conflicts injected: a "log out everywhere" that meets a
/// refresh's transaction goes through, and one that keeps meeting them is a 503 that changed
/// nothing.
#[tokio::test]
async fn log_out_everywhere_rides_out_conflicts_and_is_a_503_when_they_persist() {
    use integration_tests::Api as _;
    let apps = store_apps().await;
    let user = signed_up_user(&apps).await;
    let key = format!("{USER_PREFIX}{}", user.name.to_ascii_lowercase());
    let epoch = || async {
        apps.table
            .item(&key)
            .await
            .unwrap()
            .get("epoch")
            .map_or(0, |n| n.as_n().unwrap().parse::<u64>().unwrap())
    };
    let everywhere = || {
        integration_tests::Call::post_json("/logout/all", &serde_json::json!({}))
            .header("authorization", &user.bearer())
    };

    // Log out everywhere is one transaction (the epoch and its event).
    apps.faults
        .arm("TransactWriteItems", usize::MAX, Fault::CancelledByConflict);
    let answer = apps.call(everywhere()).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(apps.faults.seen(), 4);
    assert_eq!(epoch().await, 0, "nothing changed");

    apps.faults
        .arm("TransactWriteItems", 2, Fault::CancelledByConflict);
    let answer = apps.call(everywhere()).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(apps.faults.seen(), 3);
    assert_eq!(epoch().await, 1);
}

/// A refresh whose transaction meets another write in flight (cancelled, reason
/// `TransactionConflict`) is tried again and goes through; the grace check's transactional read
/// likewise.
#[tokio::test]
async fn a_refresh_that_meets_a_transaction_in_flight_is_tried_again() {
    let apps = store_apps().await;
    let (_, first) = body_session(&apps).await;
    apps.faults
        .arm("TransactWriteItems", 2, Fault::CancelledByConflict);
    let answer = body_post(&apps, "/token/refresh", &first).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(apps.faults.seen(), 3, "two cancelled, then committed");
    let second = answer.body["refresh_token"].as_str().unwrap().to_owned();

    apps.faults.arm("TransactGetItems", 2, Fault::CancelledByConflict);
    let again = body_post(&apps, "/token/refresh", &first).await;
    assert_eq!(again.status, 200, "the grace answer: {again:?}");
    assert_eq!(again.body["refresh_token"].as_str(), Some(second.as_str()));
    assert_eq!(apps.faults.seen(), 3);
}

/// A refresh whose transaction commits but whose answer is lost (every try: a 500) still hands
/// out the successor it committed, so the client is not left with a used token; the session
/// goes on with it and nothing is revoked.
#[tokio::test]
async fn a_refresh_whose_committed_answer_is_lost_still_hands_out_its_successor() {
    let apps = store_apps().await;
    let (_, first) = body_session(&apps).await;
    apps.faults
        .arm("TransactWriteItems", usize::MAX, Fault::LostAnswer);
    let answer = body_post(&apps, "/token/refresh", &first).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(apps.faults.seen() >= 1);
    apps.faults.disarm();
    let second = answer.body["refresh_token"].as_str().unwrap().to_owned();
    apps.clock.advance(60);
    let next = body_post(&apps, "/token/refresh", &second).await;
    assert_eq!(
        next.status, 200,
        "the handed-out successor is the live token: {next:?}"
    );
}
