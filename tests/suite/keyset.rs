//! The key-set custom resource (functions/keyset) against moto's Secrets Manager, answering a
//! listener on 127.0.0.1 that plays CloudFormation's ResponseURL: a whole rotation with a
//! rollback and a retried request, and the token function signing with the key it stored.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::keystore::{KeyState, LOGIN_TIMEOUTS, SecretsKeyStore, StoredKeySet};
use shared::store::tls::{ProxyConfig, TrustedRoots, http_client};
use shared::test_util::{ISSUER, token_settings};
use shared::{PublicKeySet, TokenVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use integration_tests::service_env;

async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = service_env("TEST_SECRETS_MANAGER_ENDPOINT");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .http_client(http_client(
            TrustedRoots::AmazonAndSystem,
            ProxyConfig::disabled(),
        ))
        .load()
        .await
}

/// A secret created as the template creates it: no value.
async fn empty_secret(client: &Client) -> String {
    let name = integration_tests::unique_name("keyset");
    client
        .create_secret()
        .name(&name)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned()
}

/// Plays CloudFormation's presigned ResponseURL: answers 200 to each PUT and hands its body on.
struct ResponseUrl {
    url: String,
    bodies: tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
}

impl ResponseUrl {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/cfn-response?X-Amz-Signature=abc",
            listener.local_addr().unwrap()
        );
        let (send, bodies) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, body) = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + length || n == 0 {
                            break (text[..end].to_owned(), text[end + 4..].to_owned());
                        }
                    }
                    assert!(n > 0, "connection closed mid-request");
                };
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let _ = send.send((request_line, serde_json::from_str(&body).unwrap_or(Value::Null)));
            }
        });
        Self { url, bodies }
    }

    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(30), self.bodies.recv())
            .await
            .expect("an answer within 30 s")
            .unwrap()
    }
}

struct Stack {
    app: ::keyset::App,
    client: Client,
    secret: String,
    response: ResponseUrl,
    requests: u32,
}

impl Stack {
    async fn new() -> Self {
        let config = sdk_config().await;
        let client = Client::new(&config);
        let secret = empty_secret(&client).await;
        Self {
            app: ::keyset::App {
                secret: ::keyset::secret::SecretsManager::new(&config),
                sender: ::keyset::response::ResponseSender::new(),
            },
            client,
            secret,
            response: ResponseUrl::start().await,
            requests: 0,
        }
    }

    fn event(&mut self, kind: &str, rotation: &str, old: Option<&str>) -> Value {
        self.requests += 1;
        let mut event = json!({
            "RequestType": kind,
            "ResponseURL": self.response.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/test/guid",
            "RequestId": format!("{:08}-aaaa-4bbb-8ccc-{:012}", self.requests, 42),
            "LogicalResourceId": "KeySet",
            "ResourceType": "Custom::SigningKeySet",
            "ResourceProperties": {"ServiceToken": "arn:fn", "SecretId": self.secret, "Rotation": rotation},
        });
        if kind != "Create" {
            event["PhysicalResourceId"] = json!(self.secret);
        }
        if let Some(old) = old {
            event["OldResourceProperties"] =
                json!({"ServiceToken": "arn:fn", "SecretId": self.secret, "Rotation": old});
        }
        event
    }

    /// Invokes the function as Lambda does and returns the answer CloudFormation received.
    async fn invoke(&mut self, event: Value) -> Value {
        ::keyset::handle(&self.app, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        let (request_line, body) = self.response.next().await;
        assert!(
            request_line.starts_with("PUT /cfn-response?X-Amz-Signature=abc "),
            "{request_line}"
        );
        body
    }

    async fn stored(&self) -> StoredKeySet {
        let store = SecretsKeyStore::new(&sdk_config().await, &self.secret, LOGIN_TIMEOUTS);
        store.load().await.unwrap()
    }

    async fn versions(&self) -> usize {
        let out = self
            .client
            .list_secret_version_ids()
            .secret_id(&self.secret)
            .send()
            .await
            .unwrap();
        out.versions().len()
    }
}

fn success(answer: &Value) -> (String, Vec<String>) {
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let jwks = answer["Data"]["Jwks"].as_str().unwrap();
    let kids = PublicKeySet::from_jwks(jwks)
        .unwrap()
        .kids()
        .map(str::to_owned)
        .collect();
    (answer["Data"]["SigningKeyId"].as_str().unwrap().to_owned(), kids)
}

#[tokio::test]
#[ignore = "needs ./dev test (moto's Secrets Manager)"]
async fn a_rotation_with_a_rollback_and_a_retry_runs_against_a_real_secret() {
    let mut stack = Stack::new().await;

    let event = stack.event("Create", "none", None);
    let created = stack.invoke(event.clone()).await;
    let (a, kids) = success(&created);
    assert_eq!(kids, std::slice::from_ref(&a));
    assert_eq!(created["PhysicalResourceId"], json!(stack.secret));
    assert_eq!(created["RequestId"], event["RequestId"]);
    let stored = stack.stored().await;
    assert_eq!((stored.keys.len(), stored.keys[0].kid.as_str()), (1, a.as_str()));
    assert!(!created.to_string().contains("PRIVATE KEY"));

    // The same request again (Lambda's retry, or CloudFormation's): same key, no new version.
    let versions = stack.versions().await;
    let retried = stack.invoke(event).await;
    assert_eq!(success(&retried).0, a);
    assert_eq!(stack.versions().await, versions);

    let event = stack.event("Update", "publish-next", Some("none"));
    let (signer, kids) = success(&stack.invoke(event).await);
    assert_eq!(signer, a);
    assert_eq!(kids.len(), 2);
    let b = kids[1].clone();

    let event = stack.event("Update", "sign-with-next", Some("publish-next"));
    assert_eq!(
        success(&stack.invoke(event).await),
        (b.clone(), vec![b.clone(), a.clone()])
    );

    // Rolled back: the old key does not sign again; the answer, which the functions'
    // configuration follows, names the new signer with both keys published. Nothing is written.
    let versions = stack.versions().await;
    let event = stack.event("Update", "publish-next", Some("sign-with-next"));
    assert_eq!(
        success(&stack.invoke(event).await),
        (b.clone(), vec![b.clone(), a.clone()])
    );
    let stored = stack.stored().await;
    assert_eq!(stored.in_state(KeyState::Current).unwrap().kid, b);
    assert_eq!(stored.in_state(KeyState::Previous).unwrap().kid, a);
    assert_eq!(stack.versions().await, versions);

    let event = stack.event("Update", "sign-with-next", Some("publish-next"));
    assert_eq!(
        success(&stack.invoke(event).await),
        (b.clone(), vec![b.clone(), a.clone()])
    );
    let event = stack.event("Update", "retire-previous", Some("sign-with-next"));
    assert_eq!(success(&stack.invoke(event).await), (b.clone(), vec![b.clone()]));

    // Retire rolled back: nothing is published to sign with, so nothing changes, and says so.
    let versions = stack.versions().await;
    let event = stack.event("Update", "sign-with-next", Some("retire-previous"));
    let back = stack.invoke(event).await;
    assert_eq!(success(&back), (b.clone(), vec![b.clone()]));
    assert!(
        back["Reason"]
            .as_str()
            .unwrap()
            .contains("no next key was published"),
        "{back}"
    );
    assert_eq!(stack.versions().await, versions);

    // A failed step is answered FAILED with its reason, and changes nothing.
    let event = stack.event("Update", "rotate-now", Some("sign-with-next"));
    let failed = stack.invoke(event).await;
    assert_eq!(failed["Status"], "FAILED");
    assert!(
        failed["Reason"]
            .as_str()
            .unwrap()
            .contains("\"rotate-now\" is not one of"),
        "{failed}"
    );
    assert_eq!(failed["PhysicalResourceId"], json!(stack.secret));
    assert_eq!(stack.versions().await, versions);

    // Delete keeps the keys.
    let event = stack.event("Delete", "retire-previous", None);
    let deleted = stack.invoke(event).await;
    assert_eq!(deleted["Status"], "SUCCESS");
    assert_eq!(stack.stored().await.keys[0].kid, b);
}

#[tokio::test]
#[ignore = "needs ./dev test (moto's Secrets Manager)"]
async fn the_token_function_signs_with_the_key_the_custom_resource_stored() {
    let mut stack = Stack::new().await;
    let event = stack.event("Create", "none", None);
    let created = stack.invoke(event).await;
    let (kid, _) = success(&created);
    let jwks = created["Data"]["Jwks"].as_str().unwrap().to_owned();

    // The token function as deployed: JWT_SIGNING_KEY_SECRET and JWT_SIGNING_KEY_ID.
    let config = sdk_config().await;
    let secret = stack.secret.clone();
    let signer = |kid: &str| token::Signer::FromSecret {
        store: SecretsKeyStore::new(&config, &secret, LOGIN_TIMEOUTS),
        kid: kid.to_owned(),
        settings: token_settings(),
        loaded: tokio::sync::OnceCell::new(),
    };
    let first = signer(&kid);
    let old_token = first
        .issuer()
        .await
        .unwrap()
        .issue_access(ISSUER, shared::test_util::subject("user-1", "alice"))
        .token;
    let verifier = |jwks: &str| TokenVerifier::new(&token_settings(), PublicKeySet::from_jwks(jwks).unwrap());
    let claims = verifier(&jwks).verify_access(&old_token, ISSUER).unwrap();
    assert_eq!(claims.sub, "user-1");
    let header = jsonwebtoken::decode_header(&old_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));

    // After a rotation the new kid signs, and both tokens verify until the old key is retired.
    let event = stack.event("Update", "publish-next", Some("none"));
    success(&stack.invoke(event).await);
    let event = stack.event("Update", "sign-with-next", Some("publish-next"));
    let signing = stack.invoke(event).await;
    let (new_kid, _) = success(&signing);
    assert_ne!(new_kid, kid);
    let during = signing["Data"]["Jwks"].as_str().unwrap().to_owned();
    let new_token = signer(&new_kid)
        .issuer()
        .await
        .unwrap()
        .issue_access(ISSUER, shared::test_util::subject("user-1", "alice"))
        .token;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    assert!(verifier(&during).verify_access(&new_token, ISSUER).is_ok());
    assert!(verifier(&during).verify_access(&old_token, ISSUER).is_ok());

    let event = stack.event("Update", "retire-previous", Some("sign-with-next"));
    let retired = stack.invoke(event).await;
    let after = retired["Data"]["Jwks"].as_str().unwrap().to_owned();
    assert!(verifier(&after).verify_access(&new_token, ISSUER).is_ok());
    assert!(
        verifier(&after).verify_access(&old_token, ISSUER).is_err(),
        "a retired key's token is refused"
    );
    // An instance still configured with the retired kid can no longer sign.
    assert!(signer(&kid).issuer().await.is_err());
}
