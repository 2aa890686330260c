//! The key-set custom resource: CloudFormation asks, through this function, for the signing
//! key set in the stage `Rotation` names; the function generates keys inside AWS, keeps the set
//! in the `SecretId` secret and answers the public side (`Jwks`, `SigningKeyId`).
//!
//! Every request gets an answer at its `ResponseURL`, SUCCESS or FAILED with the reason, so a
//! stack never waits an hour for one. Delete succeeds and changes nothing: the keys stay in the
//! secret, which the stack retains. The stages are in [`rotation`]; the I/O in [`secret`] and
//! [`response`].

pub mod response;
pub mod rotation;
pub mod secret;

use std::collections::HashMap;

use anyhow::Context as _;
use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus,
};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use shared::SigningKey;
use shared::keystore::KeyState;

use response::ResponseSender;
use rotation::{Rotation, RotationError};
use secret::{KeySetSecret, Saved, SecretsManager};

/// The custom resource's properties (`Type: Custom::SigningKeySet`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Properties {
    /// The secret holding the key set (its ARN or name); also the resource's physical id.
    pub secret_id: String,
    /// The rotation stage (see [`Rotation`]), `none` when absent.
    #[serde(default)]
    pub rotation: Option<String>,
}

impl Properties {
    fn parse(value: &Value) -> Result<Self, String> {
        let properties: Self = serde_json::from_value(value.clone())
            .map_err(|e| format!("the resource's properties are invalid: {e}"))?;
        if properties.secret_id.trim().is_empty() {
            return Err("the resource's SecretId is empty".into());
        }
        Ok(properties)
    }

    fn stage(&self) -> Result<Rotation, RotationError> {
        self.rotation.as_deref().unwrap_or("none").parse()
    }
}

/// The names of the `Data` attributes (`!GetAtt <resource>.Jwks`, `.SigningKeyId`).
pub const JWKS: &str = "Jwks";
pub const SIGNING_KEY_ID: &str = "SigningKeyId";

/// What this function may do with the key set's secret: read it and write new versions (its role
/// grants exactly these).
pub const SECRETS: &[&str] = &[shared::keystore::LOAD, shared::keystore::SAVE];

/// The function's clients, built once at cold start.
pub struct App<S = SecretsManager> {
    pub secret: S,
    pub sender: ResponseSender,
}

impl App {
    pub async fn from_env() -> Self {
        Self {
            secret: SecretsManager::new(&shared::store::sdk_config::sdk_config_from_env().await),
            sender: ResponseSender::new(),
        }
    }
}

/// The Lambda handler: applies the request and PUTs the answer. Fails (so that Lambda runs it
/// again) only when the answer could not be delivered.
pub async fn handle<S: KeySetSecret>(app: &App<S>, event: LambdaEvent<Value>) -> Result<(), Error> {
    let Some((url, response)) = respond(&app.secret, event.payload, &mut SigningKey::generate).await else {
        // Logged by `respond`; with no ResponseURL there is no one to answer.
        return Ok(());
    };
    let body = serde_json::to_vec(&response)?;
    app.sender.send(&url, &body).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "CloudFormation could not be answered");
        Error::from(e.context("answering CloudFormation"))
    })
}

/// The answer to a request, and where to send it; `None` only for an event without a
/// `ResponseURL`. Never fails otherwise: every error is a FAILED answer with its reason.
pub async fn respond(
    secret: &impl KeySetSecret,
    event: Value,
    generate: &mut (dyn FnMut() -> SigningKey + Send),
) -> Option<(String, CloudFormationCustomResourceResponse)> {
    let field = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let url = field("ResponseURL");
    if url.is_empty() {
        tracing::error!("not a CloudFormation custom resource request: no ResponseURL, no one to answer");
        return None;
    }
    let ids = Ids {
        stack_id: field("StackId"),
        request_id: field("RequestId"),
        logical_resource_id: field("LogicalResourceId"),
    };
    let physical = Some(field("PhysicalResourceId"))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| fallback_physical_id(&ids));
    let reason = match serde_json::from_value::<CloudFormationCustomResourceRequest>(event) {
        Ok(request) => match apply(secret, request, generate).await {
            Some(answer) => return Some(answer),
            None => "a CloudFormation request type this function does not know".to_owned(),
        },
        Err(e) => format!("not a CloudFormation custom resource request: {e}"),
    };
    tracing::error!(reason = %reason, "the request is refused");
    Some((url, failed(&ids, physical, reason)))
}

/// The identifiers every answer repeats.
struct Ids {
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
}

/// The physical id of a resource whose Create failed before its secret was known; its Delete
/// (on rollback) then changes nothing, as every Delete.
fn fallback_physical_id(ids: &Ids) -> String {
    format!("{}-not-created", ids.logical_resource_id)
}

async fn apply(
    secret: &impl KeySetSecret,
    request: CloudFormationCustomResourceRequest,
    generate: &mut (dyn FnMut() -> SigningKey + Send),
) -> Option<(String, CloudFormationCustomResourceResponse)> {
    let answer = match request {
        CloudFormationCustomResourceRequest::Create(r) => {
            let ids = Ids {
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_resource_id: r.logical_resource_id,
            };
            let response = match Properties::parse(&r.resource_properties) {
                Err(reason) => failed(&ids, fallback_physical_id(&ids), reason),
                Ok(properties) => {
                    let physical = properties.secret_id.clone();
                    let outcome = converge(secret, &properties, &ids.request_id, generate).await;
                    answer(&ids, physical, outcome)
                }
            };
            (r.response_url, response)
        }
        CloudFormationCustomResourceRequest::Update(r) => {
            let ids = Ids {
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_resource_id: r.logical_resource_id,
            };
            let response = match Properties::parse(&r.resource_properties) {
                Err(reason) => failed(&ids, r.physical_resource_id, reason),
                Ok(properties) => {
                    // Another secret is another resource: CloudFormation then deletes the old
                    // one (which keeps its keys) and this one starts like a Create.
                    let same_secret = Properties::parse(&r.old_resource_properties)
                        .is_ok_and(|old| old.secret_id == properties.secret_id);
                    let physical = if same_secret {
                        r.physical_resource_id
                    } else {
                        properties.secret_id.clone()
                    };
                    let outcome = converge(secret, &properties, &ids.request_id, generate).await;
                    answer(&ids, physical, outcome)
                }
            };
            (r.response_url, response)
        }
        CloudFormationCustomResourceRequest::Delete(r) => {
            let ids = Ids {
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_resource_id: r.logical_resource_id,
            };
            tracing::info!(physical_resource_id = %r.physical_resource_id, "delete: the key set stays in its secret");
            let response = success(
                &ids,
                r.physical_resource_id,
                HashMap::new(),
                "the key set stays in its secret",
            );
            (r.response_url, response)
        }
        // `CloudFormationCustomResourceRequest` is non-exhaustive.
        _ => return None,
    };
    Some(answer)
}

/// Loads the set, moves it to the requested stage, writes it if it changed, and returns the
/// public side of what is stored.
async fn converge(
    secret: &impl KeySetSecret,
    properties: &Properties,
    request_id: &str,
    generate: &mut (dyn FnMut() -> SigningKey + Send),
) -> anyhow::Result<(rotation::Published, String)> {
    let to = properties.stage()?;
    let secret_id = properties.secret_id.as_str();
    let stored = secret.load(secret_id).await.context("reading the key set")?;
    let outcome = rotation::apply(&stored, to, generate)?;
    let mut set = outcome.set;
    let mut note = format!("{to}: key set unchanged");
    if outcome.changed {
        match secret
            .save(secret_id, &set, &secret::version_id(request_id))
            .await
            .context("writing the key set")?
        {
            Saved::Written => note = format!("{to}: key set written"),
            Saved::VersionTaken => {
                // Another run of this request wrote first: take its set, which must already be
                // in the requested stage.
                let current = secret
                    .load(secret_id)
                    .await
                    .context("reading the key set again")?;
                let again = rotation::apply(&current, to, generate)?;
                anyhow::ensure!(
                    !again.changed,
                    "another run of this request changed the key set differently; retry the deployment"
                );
                set = again.set;
                note = format!("{to}: key set written by another run of this request");
            }
        }
    }
    let published = rotation::published(&set)?;
    if to == Rotation::SignWithNext && set.in_state(KeyState::Previous).is_none() {
        // Nothing was published (publish-next skipped, or retire-previous rolled back): the
        // current key keeps signing, and the operator sees SigningKeyId unchanged.
        note = format!(
            "{to}: no next key was published, so nothing changes and {} still signs; deploy publish-next first",
            published.signing_key_id
        );
        tracing::warn!(stage = %to, kid = %published.signing_key_id, "{note}");
    } else {
        tracing::info!(stage = %to, kid = %published.signing_key_id, changed = outcome.changed, "{note}");
    }
    Ok((published, note))
}

fn answer(
    ids: &Ids,
    physical: String,
    outcome: anyhow::Result<(rotation::Published, String)>,
) -> CloudFormationCustomResourceResponse {
    match outcome {
        Ok((published, note)) => {
            let data = HashMap::from([
                (JWKS.to_owned(), published.jwks),
                (SIGNING_KEY_ID.to_owned(), published.signing_key_id),
            ]);
            success(ids, physical, data, &note)
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::error!(reason = %reason, "the key set request failed");
            failed(ids, physical, reason)
        }
    }
}

fn response(
    ids: &Ids,
    status: CloudFormationCustomResourceResponseStatus,
    physical: String,
    data: HashMap<String, String>,
    reason: String,
) -> CloudFormationCustomResourceResponse {
    let mut response = CloudFormationCustomResourceResponse::default();
    response.status = status;
    response.reason = Some(reason);
    response.physical_resource_id = physical;
    response.stack_id = ids.stack_id.clone();
    response.request_id = ids.request_id.clone();
    response.logical_resource_id = ids.logical_resource_id.clone();
    response.no_echo = false;
    response.data = data;
    response
}

fn success(
    ids: &Ids,
    physical: String,
    data: HashMap<String, String>,
    note: &str,
) -> CloudFormationCustomResourceResponse {
    response(
        ids,
        CloudFormationCustomResourceResponseStatus::Success,
        physical,
        data,
        note.to_owned(),
    )
}

/// CloudFormation shows the reason in the stack's events; it is cut to stay well inside the
/// 4 KiB a response may have.
fn failed(ids: &Ids, physical: String, reason: String) -> CloudFormationCustomResourceResponse {
    let reason: String = reason.chars().take(1000).collect();
    response(
        ids,
        CloudFormationCustomResourceResponseStatus::Failed,
        physical,
        HashMap::new(),
        reason,
    )
}

#[cfg(test)]
mod tests;
