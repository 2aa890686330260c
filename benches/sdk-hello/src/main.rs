//! The cold-start floor of a Lambda function that calls DynamoDB: cargo lambda's hello world
//! (`benches/src/bin/hello-lambda.rs`) plus an `aws_sdk_dynamodb::Client` built the cheapest way
//! the SDK allows: region and credentials from Lambda's environment variables, no aws-config
//! loader, the same HTTPS client as the functions (rustls with ring, the five Amazon roots) and
//! the endpoint override the benchmark gives. Nothing of ours: no configuration, key set,
//! `lambda_http`, logging setup or store. `./scripts/bench.sh` starts it beside hello world and
//! the functions, so that their init can be read against what the SDK alone costs.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

const AMAZON_ROOTS: &str = include_str!("../../../shared/certs/amazon-trust-services.pem");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(AMAZON_ROOTS.as_bytes()))
        .build()?;
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(std::env::var("AWS_REGION")?))
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .http_client(http_client);
    config.set_endpoint_url(std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok());
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let table = std::env::var("USERS_TABLE")?;
    let (client, table) = (&client, table.as_str());
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let found = client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("USER#sdk-hello".into()))
            .send()
            .await?;
        Ok::<_, Error>(json!({ "found": found.item.is_some() }))
    }))
    .await
}
