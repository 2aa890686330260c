//! The functions against the DynamoDB emulator (moto) that `./dev test` starts, and the store's
//! behaviour when DynamoDB cannot be reached.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType, TimeToLiveStatus};
use integration_tests::{Apps, body_json, service_env};
use shared::StoreConfig;
use shared::store::dynamodb::{DynamoUserStore, PARTITION_KEY};
use shared::store::tls::{self, ProxyConfig, TrustedRoots};
use shared::store::{LoginAttempts, UserStore};
use shared::user::Username;
use tokio::task::JoinSet;

const PASSWORD: &str = "correct horse battery staple";

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        // The functions' client as deployed (Amazon roots only; the emulator speaks plain HTTP).
        .http_client(tls::http_client(TrustedRoots::Amazon, ProxyConfig::disabled()))
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .load()
        .await
}

fn store_config(table: &str, attempt_ms: u64, operation_ms: u64) -> StoreConfig {
    StoreConfig {
        table: table.into(),
        connect_timeout: Duration::from_millis(attempt_ms),
        attempt_timeout: Duration::from_millis(attempt_ms),
        operation_timeout: Duration::from_millis(operation_ms),
    }
}

/// The store on the emulator's table, with the default timeouts.
async fn moto_store() -> DynamoUserStore {
    let sdk = sdk_config(&service_env("TEST_DYNAMODB_ENDPOINT")).await;
    DynamoUserStore::new(
        &sdk,
        &store_config(&service_env("TEST_USERS_TABLE"), 1_000, 3_000),
    )
}

async fn moto_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(&service_env("TEST_DYNAMODB_ENDPOINT")).await)
}

/// A username no other test in this run uses.
fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn table_created_from_the_template_has_the_key_the_store_uses() {
    let table = service_env("TEST_USERS_TABLE");
    let client = moto_client().await;
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
    assert_eq!(attrs, [(PARTITION_KEY, ScalarAttributeType::S)]);
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
    let apps = Apps::with_store(Arc::new(moto_store().await));
    let name = unique_name("Carol");
    let created = apps.sign_up(&name, PASSWORD).await;
    assert_eq!(created.status(), 201);
    let id = body_json(&created)["id"].as_str().unwrap().to_owned();

    let login = apps.login(&name.to_uppercase(), PASSWORD).await;
    assert_eq!(login.status(), 200);
    let token = body_json(&login)["token"].as_str().unwrap().to_owned();
    assert_eq!(apps.protected.verifier.verify_access(&token).unwrap().sub, id);

    let wrong = apps.login(&name, "not the password").await;
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn stored_item_holds_the_hash_and_never_the_password() {
    let store = moto_store().await;
    let apps = Apps::with_store(Arc::new(store));
    let name = unique_name("dave");
    assert_eq!(apps.sign_up(&name, PASSWORD).await.status(), 201);
    let item = moto_client()
        .await
        .get_item()
        .table_name(service_env("TEST_USERS_TABLE"))
        .key(PARTITION_KEY, AttributeValue::S(format!("USER#{name}")))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
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
    let apps = Apps::with_store(Arc::new(moto_store().await));
    let name = unique_name("erin");
    assert_eq!(apps.sign_up(&name, PASSWORD).await.status(), 201);
    assert_eq!(apps.sign_up(&name, PASSWORD).await.status(), 409);
    assert_eq!(
        apps.sign_up(&name.to_uppercase(), "another password")
            .await
            .status(),
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sign_ups_of_one_name_create_exactly_one_user() {
    let apps = Arc::new(Apps::with_store(Arc::new(moto_store().await)));
    let name = unique_name("frank");
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let (apps, name) = (apps.clone(), name.clone());
        tasks.spawn(async move {
            let response = apps.sign_up(&name, &format!("password number {i}")).await;
            (response.status().as_u16(), body_json(&response))
        });
    }
    let results = tasks.join_all().await;
    let created: Vec<_> = results.iter().filter(|(status, _)| *status == 201).collect();
    let conflicts = results.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!((created.len(), conflicts), (1, 19), "{results:?}");

    let stored = apps
        .store
        .find_by_username(&Username::parse(&name).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.id,
        created[0].1["id"].as_str().unwrap(),
        "the stored user is the one answered 201"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failed_logins_are_all_counted_then_throttled() {
    let apps = Arc::new(Apps::with_store(Arc::new(moto_store().await)));
    let name = unique_name("judy");
    assert_eq!(apps.sign_up(&name, PASSWORD).await.status(), 201);
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (apps, name) = (apps.clone(), name.clone());
        tasks.spawn(async move { apps.login(&name, "wrong password").await.status().as_u16() });
    }
    let statuses = tasks.join_all().await;
    let failed = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(failed + throttled, 20, "{statuses:?}");
    assert!(failed >= 5, "{statuses:?}");

    // Every 401 was counted: no update lost to a race.
    let window_secs = apps.token.throttle.window.as_secs();
    let window = jsonwebtoken::get_current_timestamp() / window_secs;
    let key = name.to_ascii_lowercase();
    let counted = apps.store.failures(&key, window).await.unwrap();
    assert_eq!(counted as usize, failed, "{statuses:?}");

    let locked = apps.login(&name, PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn successful_login_deletes_the_failure_record() {
    let apps = Apps::with_store(Arc::new(moto_store().await));
    let name = unique_name("kim");
    assert_eq!(apps.sign_up(&name, PASSWORD).await.status(), 201);
    assert_eq!(apps.login(&name, "wrong password").await.status(), 401);
    let window = jsonwebtoken::get_current_timestamp() / apps.token.throttle.window.as_secs();
    assert_eq!(apps.store.failures(&name, window).await.unwrap(), 1);
    assert_eq!(apps.login(&name, PASSWORD).await.status(), 200);
    assert_eq!(apps.store.failures(&name, window).await.unwrap(), 0);
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

#[tokio::test]
async fn silent_store_is_503_within_the_operation_timeout() {
    let (url, server) = silent_server().await;
    let operation = Duration::from_millis(1_200);
    let store = DynamoUserStore::new(&sdk_config(&url).await, &store_config("users", 300, 1_200));
    let apps = Apps::with_store(Arc::new(store));

    for route in ["users", "token"] {
        let started = Instant::now();
        let response = match route {
            "users" => apps.sign_up("grace", PASSWORD).await,
            _ => apps.login("grace", PASSWORD).await,
        };
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 503, "/{route}");
        assert_eq!(
            body_json(&response)["msg"],
            "User store unavailable, try again shortly"
        );
        // The operation timeout bounds the store call; hashing (cheap here) adds a little.
        assert!(
            elapsed < operation + Duration::from_millis(800),
            "/{route} took {elapsed:?}"
        );
    }
    server.abort();
}

#[tokio::test]
async fn refused_connection_is_503() {
    // Bind then drop: the port is closed, so connecting is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sdk = sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let apps = Apps::with_store(Arc::new(DynamoUserStore::new(
        &sdk,
        &store_config("users", 300, 1_500),
    )));
    let started = Instant::now();
    let response = apps.login("heidi", PASSWORD).await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(2_300),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn missing_table_is_503_not_a_crash() {
    let sdk = sdk_config(&service_env("TEST_DYNAMODB_ENDPOINT")).await;
    let store = DynamoUserStore::new(&sdk, &store_config("no-such-table", 1_000, 3_000));
    let apps = Apps::with_store(Arc::new(store));
    assert_eq!(apps.login("ivan", PASSWORD).await.status(), 503);
}
