//! DynamoDB for the tests with no service to start: Dynoxide (`dynoxide-rs`, SQLite-backed,
//! checked against real DynamoDB by a public conformance suite) as an HTTP server embedded in
//! the test process, on a free 127.0.0.1 port, started on first use. Each test gets a fresh
//! table created from `template.yaml`'s table resource (the one definition), so tests never
//! share items, and the store code under test is the one that runs on AWS.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, SharedHttpClient};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_json::Value;
use shared::StoreConfig;
use shared::store::dynamodb::{DynamoUserStore, PARTITION_KEY};
use shared::store::tls::{self, ProxyConfig, TrustedRoots};

/// The endpoint of this process's embedded Dynoxide, started on first use. The listener is bound
/// before this returns, so a request sent at once waits in its backlog rather than failing.
pub fn embedded_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let address = listener.local_addr().expect("the listener's address");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        // Its own thread and runtime: it outlives every test's runtime.
        std::thread::Builder::new()
            .name("dynoxide".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the embedded DynamoDB");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    let database = dynoxide::Database::memory().expect("an in-memory Dynoxide database");
                    dynoxide::server::serve_on(listener, database).await;
                });
            })
            .expect("the embedded DynamoDB's thread");
        format!("http://{address}")
    })
}

/// The functions' HTTP client as deployed (Amazon roots only; the emulator speaks plain HTTP).
pub fn functions_client() -> SharedHttpClient {
    tls::http_client(TrustedRoots::Amazon, ProxyConfig::disabled())
}

/// An SDK configuration for `endpoint`, sending through `http_client`: for a local emulator
/// (127.0.0.1, localhost) with static dummy credentials in us-east-1; for any other endpoint (a
/// real table, `./dev test-store`), the SDK's default chain of region and credentials.
pub async fn sdk_config(endpoint: &str, http_client: SharedHttpClient) -> aws_config::SdkConfig {
    let local = ["http://127.0.0.1:", "http://localhost:"]
        .iter()
        .any(|prefix| endpoint.starts_with(prefix));
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client)
        .endpoint_url(endpoint);
    if local {
        loader
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
            .load()
            .await
    } else {
        loader.load().await
    }
}

/// The store's settings for `table`, with the deployed timeouts.
pub fn store_config(table: &str) -> StoreConfig {
    StoreConfig {
        table: table.into(),
        connect_timeout: Duration::from_millis(1_000),
        attempt_timeout: Duration::from_millis(1_000),
        operation_timeout: Duration::from_millis(3_000),
    }
}

/// A table on `endpoint` for one test: created from `template.yaml`'s table resource under a
/// new name, TTL included. Returns its name.
pub async fn fresh_table(client: &aws_sdk_dynamodb::Client) -> String {
    let name = format!("t-{}", uuid::Uuid::new_v4().simple());
    create_table(client, &name).await;
    name
}

/// Creates `table` from the table resource of `template.yaml`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    let props = table_properties();
    let text = |v: &Value| v.as_str().expect("a string in the table definition").to_owned();
    let mut request = client.create_table().table_name(table);
    for definition in props["AttributeDefinitions"]
        .as_array()
        .expect("AttributeDefinitions")
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&definition["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    text(&definition["AttributeType"]).as_str(),
                ))
                .build()
                .expect("an attribute definition"),
        );
    }
    for key in props["KeySchema"].as_array().expect("KeySchema") {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(text(&key["AttributeName"]))
                .key_type(KeyType::from(text(&key["KeyType"]).as_str()))
                .build()
                .expect("a key schema element"),
        );
    }
    for index in props["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let mut keys = Vec::new();
        for key in index["KeySchema"].as_array().expect("an index's KeySchema") {
            keys.push(
                KeySchemaElement::builder()
                    .attribute_name(text(&key["AttributeName"]))
                    .key_type(KeyType::from(text(&key["KeyType"]).as_str()))
                    .build()
                    .expect("a key schema element"),
            );
        }
        let projection = &index["Projection"];
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&index["IndexName"]))
                .set_key_schema(Some(keys))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(text(&projection["ProjectionType"]).as_str()))
                        .set_non_key_attributes(
                            projection["NonKeyAttributes"]
                                .as_array()
                                .map(|names| names.iter().map(text).collect()),
                        )
                        .build(),
                )
                .build()
                .expect("a global secondary index"),
        );
    }
    assert!(
        props.get("LocalSecondaryIndexes").is_none(),
        "the table has local indexes now: create them here too"
    );
    request
        .billing_mode(BillingMode::from(
            props["BillingMode"].as_str().unwrap_or("PROVISIONED"),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating table {table}: {e:?}"));
    if let Some(ttl) = props.get("TimeToLiveSpecification")
        && ttl["Enabled"].as_bool() == Some(true)
    {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(&ttl["AttributeName"]))
                    .enabled(true)
                    .build()
                    .expect("a TTL specification"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("enabling TTL on {table}: {e:?}"));
    }
}

/// The `Properties` of the one `AWS::DynamoDB::Table` of `template.yaml`.
pub fn table_properties() -> Value {
    let template = crate::template();
    let tables: Vec<&Value> = template["Resources"]
        .as_object()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"] == "AWS::DynamoDB::Table")
        .collect();
    assert_eq!(tables.len(), 1, "template.yaml defines one table");
    tables[0]["Properties"].clone()
}

/// A DynamoDB table for one test and the store on it: the endpoint's client to look at what
/// the table holds, and the store the functions run, sending through `http_client`.
#[derive(Debug, Clone)]
pub struct Table {
    pub endpoint: String,
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    /// A fresh table on `endpoint`.
    pub async fn fresh(endpoint: &str) -> Self {
        let client = aws_sdk_dynamodb::Client::new(&sdk_config(endpoint, functions_client()).await);
        let name = fresh_table(&client).await;
        Self {
            endpoint: endpoint.into(),
            client,
            name,
        }
    }

    /// The table `name` that exists on `endpoint` already.
    pub async fn named(endpoint: &str, name: String) -> Self {
        let client = aws_sdk_dynamodb::Client::new(&sdk_config(endpoint, functions_client()).await);
        Self {
            endpoint: endpoint.into(),
            client,
            name,
        }
    }

    /// The store of the functions on this table, sending through `http_client`.
    pub async fn store(&self, endpoint: &str, http_client: SharedHttpClient) -> DynamoUserStore {
        DynamoUserStore::new(
            &sdk_config(endpoint, http_client).await,
            &store_config(&self.name),
        )
    }

    /// The item under `key`, read strongly consistently; `None` when there is none.
    pub async fn item(&self, key: &str) -> Option<HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(&self.name)
            .key(PARTITION_KEY, AttributeValue::S(key.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("reading {key}: {e:?}"))
            .item
    }

    /// Every item whose key starts with `prefix` (a test's look at its own small table: a Scan).
    pub async fn items(&self, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("scanning {}: {e:?}", self.name));
            items.extend(page.items().iter().filter(|item| {
                matches!(item.get(PARTITION_KEY), Some(AttributeValue::S(key)) if key.starts_with(prefix))
            }).cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// The number an `attempts` counter under `key` holds (0 when there is none).
    pub async fn count(&self, key: &str) -> u32 {
        self.item(key).await.map_or(0, |item| match item.get("attempts") {
            Some(AttributeValue::N(n)) => n.parse().expect("a whole count"),
            _ => 0,
        })
    }
}
