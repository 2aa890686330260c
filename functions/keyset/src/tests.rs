//! The handler over an in-memory secret: every request type, retries, a second run of one
//! request racing the first, rollbacks, and the answers' shape; and the response PUT against a
//! listener on 127.0.0.1.

use std::sync::Mutex;

use serde_json::{Value, json};
use shared::PublicKeySet;
use shared::keystore::{KeyState, StoredKeySet};

use super::*;

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-AbCdEf";
const URL: &str =
    "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?X-Amz-Signature=s";

/// An in-memory secret: its versions in order, the last one current.
#[derive(Default)]
struct MemorySecret {
    versions: Mutex<Vec<(String, String)>>,
    loads: Mutex<usize>,
    fail_loads: bool,
    /// Written by "another run" just before this run's write, to race it.
    race: Mutex<Option<StoredKeySet>>,
}

impl MemorySecret {
    fn current(&self) -> Option<StoredKeySet> {
        let versions = self.versions.lock().unwrap();
        versions
            .last()
            .map(|(_, text)| serde_json::from_str(text).unwrap())
    }

    fn version_count(&self) -> usize {
        self.versions.lock().unwrap().len()
    }
}

impl KeySetSecret for MemorySecret {
    async fn load(&self, _secret_id: &str) -> anyhow::Result<StoredKeySet> {
        *self.loads.lock().unwrap() += 1;
        anyhow::ensure!(!self.fail_loads, "GetSecretValue: AccessDeniedException");
        Ok(self.current().unwrap_or_default())
    }

    async fn save(&self, _secret_id: &str, set: &StoredKeySet, version: &str) -> anyhow::Result<Saved> {
        if let Some(first) = self.race.lock().unwrap().take() {
            let text = serde_json::to_string(&first).unwrap();
            self.versions.lock().unwrap().push((version.to_owned(), text));
        }
        let text = serde_json::to_string(set).unwrap();
        let mut versions = self.versions.lock().unwrap();
        match versions.iter().find(|(id, _)| id == version) {
            Some((_, existing)) if *existing == text => Ok(Saved::Written),
            Some(_) => Ok(Saved::VersionTaken),
            None => {
                versions.push((version.to_owned(), text));
                Ok(Saved::Written)
            }
        }
    }
}

fn event(kind: &str, request_id: &str, rotation: &str, old_rotation: Option<&str>) -> Value {
    let mut event = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:stack-keyset",
        "ResponseURL": URL,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/guid",
        "RequestId": request_id,
        "LogicalResourceId": "KeySet",
        "ResourceType": "Custom::SigningKeySet",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:stack-keyset",
            "SecretId": SECRET,
            "Rotation": rotation,
        },
    });
    if kind != "Create" {
        event["PhysicalResourceId"] = json!(SECRET);
    }
    if let Some(old) = old_rotation {
        event["OldResourceProperties"] = json!({"SecretId": SECRET, "Rotation": old});
    }
    event
}

async fn run(secret: &MemorySecret, event: Value) -> CloudFormationCustomResourceResponse {
    let (url, response) = respond(secret, event, &mut SigningKey::generate)
        .await
        .expect("an event with a ResponseURL is answered");
    assert_eq!(url, URL);
    response
}

fn ok(response: &CloudFormationCustomResourceResponse) -> bool {
    response.status == CloudFormationCustomResourceResponseStatus::Success
}

fn kid(response: &CloudFormationCustomResourceResponse) -> String {
    assert!(ok(response), "{:?}", response.reason);
    response.data[SIGNING_KEY_ID].clone()
}

fn published_kids(response: &CloudFormationCustomResourceResponse) -> Vec<String> {
    let set = PublicKeySet::from_jwks(&response.data[JWKS]).unwrap();
    set.kids().map(str::to_owned).collect()
}

fn request_id(n: u32) -> String {
    format!("{n:08}-0000-4000-8000-000000000000")
}

#[tokio::test]
async fn create_generates_a_key_and_answers_its_jwks_and_kid() {
    let secret = MemorySecret::default();
    let response = run(&secret, event("Create", &request_id(1), "none", None)).await;
    assert!(ok(&response), "{:?}", response.reason);
    assert_eq!(response.physical_resource_id, SECRET);
    let stored = secret.current().unwrap();
    assert_eq!(stored.keys.len(), 1);
    assert_eq!(kid(&response), stored.keys[0].kid);
    assert_eq!(published_kids(&response), [stored.keys[0].kid.clone()]);
    assert_eq!(
        secret.versions.lock().unwrap()[0].0,
        request_id(1),
        "the version id is the request's"
    );
}

#[tokio::test]
async fn the_answer_is_the_document_cloudformation_reads() {
    let secret = MemorySecret::default();
    let response = run(&secret, event("Create", &request_id(1), "none", None)).await;
    let body: Value = serde_json::from_slice(&serde_json::to_vec(&response).unwrap()).unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "Data",
            "LogicalResourceId",
            "NoEcho",
            "PhysicalResourceId",
            "Reason",
            "RequestId",
            "StackId",
            "Status"
        ]
    );
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["RequestId"], request_id(1));
    assert_eq!(body["LogicalResourceId"], "KeySet");
    assert_eq!(
        body["StackId"],
        "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/guid"
    );
    assert_eq!(body["NoEcho"], false);
    assert!(body["Data"]["Jwks"].as_str().unwrap().starts_with("{\"keys\":["));
    assert!(
        !body.to_string().contains("PRIVATE KEY"),
        "no private key in the answer"
    );
    let failed = run(&secret, event("Update", &request_id(2), "bogus", Some("none"))).await;
    let body = serde_json::to_value(&failed).unwrap();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["Data"], json!({}));
}

#[tokio::test]
async fn a_create_run_twice_answers_the_same_key_and_writes_once() {
    let secret = MemorySecret::default();
    let first = run(&secret, event("Create", &request_id(1), "none", None)).await;
    let second = run(&secret, event("Create", &request_id(1), "none", None)).await;
    assert_eq!(kid(&first), kid(&second));
    assert_eq!(first.data, second.data);
    assert_eq!(secret.version_count(), 1);
}

#[tokio::test]
async fn a_run_that_loses_the_race_to_another_run_of_its_request_answers_the_winners_set() {
    // Both runs read the empty secret; the other writes its new key first under the same
    // version id, so this run's write is refused and it must answer the other's key.
    let winner = rotation::apply(
        &StoredKeySet::default(),
        Rotation::None,
        &mut SigningKey::generate,
    )
    .unwrap()
    .set;
    let secret = MemorySecret {
        race: Mutex::new(Some(winner.clone())),
        ..MemorySecret::default()
    };
    let response = run(&secret, event("Create", &request_id(1), "none", None)).await;
    assert_eq!(kid(&response), winner.keys[0].kid);
    assert_eq!(secret.version_count(), 1);
    assert!(response.reason.unwrap().contains("another run"));
}

#[tokio::test]
async fn a_rotation_runs_through_its_stages_and_a_rolled_back_step_keeps_the_new_signer() {
    let secret = MemorySecret::default();
    let created = run(&secret, event("Create", &request_id(1), "none", None)).await;
    let old = kid(&created);

    let published = run(
        &secret,
        event("Update", &request_id(2), "publish-next", Some("none")),
    )
    .await;
    assert_eq!(kid(&published), old, "publish-next does not change the signer");
    let kids = published_kids(&published);
    assert_eq!(kids.len(), 2);
    let new = kids[1].clone();

    let signing = run(
        &secret,
        event("Update", &request_id(3), "sign-with-next", Some("publish-next")),
    )
    .await;
    assert_eq!(kid(&signing), new);
    assert_eq!(published_kids(&signing), [new.clone(), old.clone()]);
    assert_eq!(
        signing.physical_resource_id, SECRET,
        "the physical id never changes"
    );

    // The stack fails further on: CloudFormation sends the old properties back. The old key
    // does not sign again; the answer, which every function's configuration follows, still
    // names the new one, with both published.
    let versions = secret.version_count();
    let rolled_back = run(
        &secret,
        event("Update", &request_id(4), "publish-next", Some("sign-with-next")),
    )
    .await;
    assert_eq!(kid(&rolled_back), new);
    assert_eq!(published_kids(&rolled_back), [new.clone(), old.clone()]);
    assert_eq!(secret.version_count(), versions, "nothing written");

    let signing = run(
        &secret,
        event("Update", &request_id(5), "sign-with-next", Some("publish-next")),
    )
    .await;
    let retired = run(
        &secret,
        event(
            "Update",
            &request_id(6),
            "retire-previous",
            Some("sign-with-next"),
        ),
    )
    .await;
    assert_eq!(kid(&signing), new);
    assert_eq!(published_kids(&retired), std::slice::from_ref(&new));
    let stored = secret.current().unwrap();
    assert_eq!(stored.keys.len(), 1);
    assert_eq!(stored.keys[0].state, KeyState::Current);

    // Retire rolled back: the old key is gone for good, the new one still signs.
    let back = run(
        &secret,
        event(
            "Update",
            &request_id(7),
            "sign-with-next",
            Some("retire-previous"),
        ),
    )
    .await;
    assert_eq!(kid(&back), new);
    assert_eq!(published_kids(&back), [new]);
}

#[tokio::test]
async fn an_unpublished_signing_step_succeeds_changing_nothing_and_says_so() {
    let secret = MemorySecret::default();
    let created = run(&secret, event("Create", &request_id(1), "none", None)).await;
    for (n, old) in [(2, "none"), (3, "publish-next"), (4, "retire-previous")] {
        let response = run(
            &secret,
            event("Update", &request_id(n), "sign-with-next", Some(old)),
        )
        .await;
        assert_eq!(kid(&response), kid(&created), "after {old}");
        assert_eq!(response.data, created.data);
        assert_eq!(response.physical_resource_id, SECRET);
        let reason = response.reason.unwrap();
        assert!(
            reason.contains("no next key was published") && reason.contains("publish-next first"),
            "{reason}"
        );
    }
    assert_eq!(secret.version_count(), 1, "nothing written");
}

#[tokio::test]
async fn an_unknown_stage_fails_naming_the_accepted_ones() {
    let secret = MemorySecret::default();
    let response = run(&secret, event("Create", &request_id(1), "rotate-now", None)).await;
    assert!(!ok(&response));
    let reason = response.reason.unwrap();
    assert!(
        reason.contains("\"rotate-now\"") && reason.contains("publish-next"),
        "{reason}"
    );
    assert_eq!(secret.version_count(), 0);
}

#[tokio::test]
async fn delete_succeeds_without_touching_the_secret() {
    let secret = MemorySecret::default();
    run(&secret, event("Create", &request_id(1), "none", None)).await;
    let loads = *secret.loads.lock().unwrap();
    let response = run(&secret, event("Delete", &request_id(2), "none", None)).await;
    assert!(ok(&response));
    assert_eq!(response.physical_resource_id, SECRET);
    assert_eq!(*secret.loads.lock().unwrap(), loads, "no call to the secret");
    assert_eq!(secret.current().unwrap().keys.len(), 1, "the keys stay");
}

#[tokio::test]
async fn a_delete_is_answered_even_with_properties_this_function_cannot_read() {
    let secret = MemorySecret::default();
    let mut delete = event("Delete", &request_id(1), "none", None);
    delete["ResourceProperties"] = json!({"Unexpected": true});
    let response = run(&secret, delete).await;
    assert!(ok(&response));
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_fails_the_request_with_the_cause() {
    let secret = MemorySecret {
        fail_loads: true,
        ..MemorySecret::default()
    };
    let response = run(&secret, event("Create", &request_id(1), "none", None)).await;
    assert!(!ok(&response));
    assert_eq!(response.physical_resource_id, SECRET);
    let reason = response.reason.unwrap();
    assert!(
        reason.contains("reading the key set") && reason.contains("AccessDenied"),
        "{reason}"
    );
}

#[tokio::test]
async fn another_secret_is_another_resource_which_starts_like_a_create() {
    let secret = MemorySecret::default();
    let mut update = event("Update", &request_id(1), "sign-with-next", Some("sign-with-next"));
    update["OldResourceProperties"]["SecretId"] =
        json!("arn:aws:secretsmanager:us-east-1:123456789012:secret:old");
    let response = run(&secret, update).await;
    assert!(ok(&response), "{:?}", response.reason);
    assert_eq!(response.physical_resource_id, SECRET);
    assert_eq!(secret.current().unwrap().keys.len(), 1);
}

#[tokio::test]
async fn events_that_are_not_custom_resource_requests_are_refused_if_they_can_be_answered() {
    let secret = MemorySecret::default();
    assert!(
        respond(&secret, json!({"hello": "world"}), &mut SigningKey::generate)
            .await
            .is_none()
    );
    let mut broken = event("Create", &request_id(1), "none", None);
    broken.as_object_mut().unwrap().remove("ResourceProperties");
    let (_, response) = respond(&secret, broken, &mut SigningKey::generate).await.unwrap();
    assert!(!ok(&response));
    assert_eq!(response.physical_resource_id, "KeySet-not-created");
    let mut no_secret = event("Create", &request_id(1), "none", None);
    no_secret["ResourceProperties"]["SecretId"] = json!(" ");
    let response = run(&secret, no_secret).await;
    assert!(!ok(&response) && response.reason.unwrap().contains("SecretId"));
    assert_eq!(secret.version_count(), 0);
}

mod put {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A listener that answers `status` to every request and hands back what it received.
    async fn listener(status: u16, requests: usize) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/bucket/key?X-Amz-Signature=abc",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + length {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.unwrap();
                seen.push(String::from_utf8_lossy(&buffer).to_string());
            }
            seen
        });
        (url, task)
    }

    #[tokio::test]
    async fn the_answer_is_put_to_the_response_url_without_a_content_type() {
        let (url, task) = listener(200, 1).await;
        ResponseSender::new()
            .send(&url, br#"{"Status":"SUCCESS"}"#)
            .await
            .unwrap();
        let seen = task.await.unwrap();
        let request = &seen[0];
        assert!(
            request.starts_with("PUT /bucket/key?X-Amz-Signature=abc HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("content-length: 20\r\n"), "{request}");
        assert!(
            !lower.contains("content-type") || lower.contains("content-type: \r\n"),
            "no content type: {request}"
        );
        assert!(request.ends_with(r#"{"Status":"SUCCESS"}"#));
    }

    #[tokio::test]
    async fn a_refused_answer_is_retried_then_reported() {
        let (url, task) = listener(403, 3).await;
        let err = ResponseSender::new().send(&url, b"{}").await.unwrap_err();
        assert!(format!("{err:#}").contains("403"), "{err:#}");
        assert_eq!(task.await.unwrap().len(), 3, "three attempts");
    }
}
