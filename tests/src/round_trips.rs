//! Round trips on a request's critical path, counted at the AWS SDK's HTTP client.
//!
//! Every request a function's DynamoDB store or SES mailer sends while [`crate::Apps`] handles
//! one call is kept with when it was sent and when its answer came. Two requests that overlap
//! in time ran concurrently; the number **in sequence** is the longest chain of requests each
//! sent after the one before it was answered. A retry the SDK makes (`amz-sdk-request:
//! attempt=2`) is DynamoDB's doing, not the route's design, and is not counted.
//!
//! Each operation of `openapi.yaml` states its numbers for a successful answer, as
//! `x-round-trips: {sequential: N, requests: M}`; [`crate::Apps`] holds every 2xx answer of a
//! call that ran alone to them (see [`check`]), across every suite that uses the apps.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Instant;

use aws_sdk_dynamodb::config::http::HttpRequest;
use aws_sdk_dynamodb::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use lambda_http::http::Method;

tokio::task_local! {
    /// The requests of the call being handled (set by [`counted`]).
    static CALL: Arc<Trips>;
}

/// One request: what it was and when it went and came back.
#[derive(Debug, Clone)]
struct Trip {
    operation: String,
    sent: Instant,
    answered: Option<Instant>,
}

/// The requests of one call.
#[derive(Debug, Default)]
pub struct Trips(Mutex<Vec<Trip>>);

impl Trips {
    fn sent(&self, operation: String) -> usize {
        let mut trips = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        trips.push(Trip {
            operation,
            sent: Instant::now(),
            answered: None,
        });
        trips.len() - 1
    }

    fn answered(&self, index: usize) {
        let mut trips = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(trip) = trips.get_mut(index) {
            trip.answered = Some(Instant::now());
        }
    }

    /// What was sent, how many in all and how many in sequence.
    pub fn count(&self) -> RoundTrips {
        let trips = self.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let now = Instant::now();
        let mut spans: Vec<(Instant, Instant)> = trips
            .iter()
            .map(|t| (t.sent, t.answered.unwrap_or(now)))
            .collect();
        spans.sort_by_key(|&(_, answered)| answered);
        // The longest chain of requests, each sent once the one before was answered.
        let mut depth = vec![0_usize; spans.len()];
        for i in 0..spans.len() {
            let before = (0..i)
                .filter(|&j| spans[j].1 <= spans[i].0)
                .map(|j| depth[j])
                .max()
                .unwrap_or(0);
            depth[i] = before + 1;
        }
        RoundTrips {
            requests: trips.len(),
            sequential: depth.into_iter().max().unwrap_or(0),
            operations: trips.into_iter().map(|t| t.operation).collect(),
        }
    }
}

/// What one call sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTrips {
    pub requests: usize,
    pub sequential: usize,
    /// In the order they were sent: `GetItem`, `TransactWriteItems`, `SendEmail`, ...
    pub operations: Vec<String>,
}

/// Runs `call`, counting the requests the counting clients send for it.
pub async fn counted<F: Future>(call: F) -> (F::Output, RoundTrips) {
    let trips = Arc::new(Trips::default());
    let output = CALL.scope(trips.clone(), call).await;
    (output, trips.count())
}

/// What `openapi.yaml` states for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stated {
    pub sequential: usize,
    pub requests: usize,
}

/// The `x-round-trips` of every operation in `openapi.yaml`, by (method, path template); `None`
/// for one that states none.
pub fn stated() -> &'static HashMap<(String, String), Option<Stated>> {
    static STATED: LazyLock<HashMap<(String, String), Option<Stated>>> = LazyLock::new(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("reading openapi.yaml");
        let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("openapi.yaml parses");
        let mut stated = HashMap::new();
        let paths = spec["paths"].as_mapping().expect("openapi.yaml has paths");
        for (template, item) in paths {
            let template = template.as_str().expect("a path").to_owned();
            for (method, operation) in item.as_mapping().expect("a path item") {
                // A path item also holds `parameters`, `summary`, ...: only its operations count.
                let method = method.as_str().expect("a key").to_uppercase();
                const OPERATIONS: [&str; 8] = [
                    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
                ];
                if !OPERATIONS.contains(&method.as_str()) {
                    continue;
                }
                let numbers = &operation["x-round-trips"];
                let number = |key: &str| {
                    numbers[key]
                        .as_u64()
                        .map(|n| usize::try_from(n).expect("a small number"))
                };
                let value = match (number("sequential"), number("requests")) {
                    (Some(sequential), Some(requests)) => Some(Stated { sequential, requests }),
                    _ => None,
                };
                stated.insert((method, template.clone()), value);
            }
        }
        stated
    });
    &STATED
}

/// The path template of `openapi.yaml` that `path` (no query) matches for `method`.
fn template_of(method: &Method, path: &str) -> Option<&'static (String, String)> {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    stated().keys().find(|(m, template)| {
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        m == method.as_str()
            && parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(part, segment)| part.starts_with('{') || part == segment)
    })
}

/// Fails the test when a successful call to `method path` sent more requests, or more in
/// sequence, than its operation states in `openapi.yaml` (or when it states nothing).
///
/// With `ROUND_TRIPS_LOG` set to a file, each such call is also appended to it (a JSON line: the
/// operation and what it sent), to see what each route sends across a whole run.
pub fn check(method: &Method, path: &str, counted: &RoundTrips) {
    let key = template_of(method, path)
        .unwrap_or_else(|| panic!("{method} {path}: no operation of openapi.yaml matches it"));
    if let Ok(log) = std::env::var("ROUND_TRIPS_LOG") {
        use std::io::Write as _;
        let line = serde_json::json!({
            "operation": format!("{} {}", key.0, key.1),
            "requests": counted.requests,
            "sequential": counted.sequential,
            "sent": counted.operations,
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("opening ROUND_TRIPS_LOG");
        // One write of the whole line: the tests run in parallel, and appends of one write each
        // do not interleave.
        file.write_all(format!("{line}\n").as_bytes())
            .expect("writing ROUND_TRIPS_LOG");
    }
    let stated = stated()[key].unwrap_or_else(|| {
        panic!(
            "{} {}: openapi.yaml states no x-round-trips (this call sent {counted:?})",
            key.0, key.1
        )
    });
    assert!(
        counted.requests <= stated.requests && counted.sequential <= stated.sequential,
        "{} {}: {} requests, {} in sequence, where openapi.yaml states at most {} and {}: {:?}",
        key.0,
        key.1,
        counted.requests,
        counted.sequential,
        stated.requests,
        stated.sequential,
        counted.operations
    );
}

/// `inner`, counting what it sends for the call [`counted`] runs.
pub fn counting(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(Counting { inner })
}

#[derive(Debug)]
struct Counting {
    inner: SharedHttpClient,
}

impl HttpClient for Counting {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct CountingConnector {
    inner: SharedHttpConnector,
}

/// `GetItem` for DynamoDB (its `X-Amz-Target`), `SendEmail` for SES v2 (by its path).
fn operation(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if request.uri().ends_with("/v2/email/outbound-emails") {
        return "SendEmail".into();
    }
    request.uri().to_owned()
}

/// A retry of the SDK's (its second attempt or later).
fn is_retry(request: &HttpRequest) -> bool {
    request
        .headers()
        .get("amz-sdk-request")
        .and_then(|value| {
            value
                .split(';')
                .find_map(|part| part.trim().strip_prefix("attempt="))
        })
        .is_some_and(|attempt| attempt != "1")
}

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let trips = CALL.try_with(Clone::clone).ok().filter(|_| !is_retry(&request));
        let Some(trips) = trips else {
            return self.inner.call(request);
        };
        let index = trips.sent(operation(&request));
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let answer = answer.await;
            trips.answered(index);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn trips(spans: &[(u64, u64)]) -> RoundTrips {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let trips = Trips(Mutex::new(
            spans
                .iter()
                .map(|&(sent, answered)| Trip {
                    operation: "GetItem".into(),
                    sent: at(sent),
                    answered: Some(at(answered)),
                })
                .collect(),
        ));
        trips.count()
    }

    #[test]
    fn overlapping_requests_are_one_round_trip_and_chained_ones_add_up() {
        assert_eq!(trips(&[]).sequential, 0);
        assert_eq!(trips(&[(0, 10), (1, 9), (2, 11)]).sequential, 1);
        assert_eq!(trips(&[(0, 10), (1, 9), (12, 20), (13, 19)]).sequential, 2);
        let three = trips(&[(0, 10), (10, 20), (5, 15), (21, 30)]);
        assert_eq!((three.requests, three.sequential), (4, 3));
    }

    #[test]
    fn every_operation_of_the_contract_states_its_round_trips() {
        let missing: Vec<String> = stated()
            .iter()
            .filter(|(_, numbers)| numbers.is_none())
            .map(|((method, path), _)| format!("{method} {path}"))
            .collect();
        assert!(missing.is_empty(), "without x-round-trips: {missing:?}");
    }
}
