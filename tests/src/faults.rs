//! Faults injected at the AWS SDK's HTTP client: the store code runs unchanged, and a chosen
//! operation's requests get the answer DynamoDB gives under a fault, before the rest go on to a
//! real client (the emulator's) or, without one, to an empty success.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::config::http::{HttpRequest, HttpResponse};
use aws_sdk_dynamodb::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// What a faulty request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A plain write to an item a transaction in flight holds: `TransactionConflictException`,
    /// and nothing reaches the table.
    Conflict,
    /// A transaction of four items whose second met a write in flight: cancelled with the
    /// reasons `[None, TransactionConflict, None, None]`, and nothing reaches the table.
    CancelledByConflict,
    /// The request reaches the table (and commits), but its answer is lost: a 500.
    LostAnswer,
    /// The store refuses it at once, and nothing reaches the table: an error the SDK does not
    /// retry (`ResourceNotFoundException`), so a test of "the store is down" needs no waiting
    /// out of retries. The functions answer any such failure with 503.
    Refused,
}

impl Fault {
    fn answer(self) -> HttpResponse {
        match self {
            Self::Conflict => json_response(
                400,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#,
            ),
            Self::CancelledByConflict => json_response(
                400,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict, None, None]","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"},{"Code":"None"}]}"#,
            ),
            Self::Refused => json_response(
                400,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#,
            ),
            Self::LostAnswer => json_response(
                500,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
            ),
        }
    }
}

/// Which requests get a fault now: of one operation (`*`: any), the next `remaining`.
#[derive(Debug, Clone, Copy)]
struct Rule {
    operation: &'static str,
    fault: Fault,
    remaining: usize,
}

/// The faults a [`FaultyClient`] injects: one rule at a time, armed and disarmed while a test
/// runs, and the requests of its operation that were seen.
#[derive(Debug, Default)]
pub struct Faults {
    rule: Mutex<Option<Rule>>,
    /// Requests of the armed operation seen since it was armed, faulty ones included.
    seen: AtomicUsize,
    /// Faults injected since the apps were made.
    injected: AtomicUsize,
}

impl Faults {
    /// No fault until one is armed.
    pub fn none() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The first `count` requests of `operation` get `fault`.
    pub fn first(operation: &'static str, count: usize, fault: Fault) -> Arc<Self> {
        let faults = Self::none();
        faults.arm(operation, count, fault);
        faults
    }

    /// From now on, the next `count` requests of `operation` (its `X-Amz-Target` after the dot,
    /// `UpdateItem`; `*` for any) get `fault`.
    pub fn arm(&self, operation: &'static str, count: usize, fault: Fault) {
        *self.rule.lock().unwrap_or_else(PoisonError::into_inner) = Some(Rule {
            operation,
            fault,
            remaining: count,
        });
        self.seen.store(0, Ordering::SeqCst);
    }

    /// No more faults.
    pub fn disarm(&self) {
        *self.rule.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Requests of the armed operation that reached the HTTP client since it was armed, each
    /// retry counted.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }

    /// How many faults were injected since the apps were made.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// The fault `request` gets, if any (counting it).
    fn fault_for(&self, request: &HttpRequest) -> Option<Fault> {
        let mut rule = self.rule.lock().unwrap_or_else(PoisonError::into_inner);
        let armed = rule.as_mut()?;
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next());
        if armed.operation != "*" && operation != Some(armed.operation) {
            return None;
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        armed.remaining = armed.remaining.checked_sub(1)?;
        self.injected.fetch_add(1, Ordering::SeqCst);
        Some(armed.fault)
    }
}

/// An HTTP client for the SDK that answers [`Faults`] and passes the rest to `inner` (or
/// answers them `{}`, an empty success, without one).
/// Every DynamoDB request a client sent: its operation (`GetItem`, ...) and JSON body.
#[derive(Debug, Default)]
pub struct Requests(Mutex<Vec<(String, serde_json::Value)>>);

impl Requests {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The requests sent so far, in order.
    pub fn sent(&self) -> Vec<(String, serde_json::Value)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn record(&self, request: &HttpRequest) {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let body = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((operation, body));
    }
}

#[derive(Debug, Clone)]
pub struct FaultyClient {
    inner: Option<SharedHttpClient>,
    faults: Arc<Faults>,
    requests: Option<Arc<Requests>>,
}

impl FaultyClient {
    pub fn shared(inner: Option<SharedHttpClient>, faults: Arc<Faults>) -> SharedHttpClient {
        SharedHttpClient::new(Self {
            inner,
            faults,
            requests: None,
        })
    }

    /// As [`Self::shared`], keeping every request it sends in `requests`.
    pub fn recording(
        inner: Option<SharedHttpClient>,
        faults: Arc<Faults>,
        requests: Arc<Requests>,
    ) -> SharedHttpClient {
        SharedHttpClient::new(Self {
            inner,
            faults,
            requests: Some(requests),
        })
    }
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self
                .inner
                .as_ref()
                .map(|client| client.http_connector(settings, components)),
            faults: self.faults.clone(),
            requests: self.requests.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: Option<SharedHttpConnector>,
    faults: Arc<Faults>,
    requests: Option<Arc<Requests>>,
}

fn json_response(status: u16, body: &'static str) -> HttpResponse {
    let status = StatusCode::try_from(status).expect("an HTTP status");
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Some(requests) = &self.requests {
            requests.record(&request);
        }
        let fault = self.faults.fault_for(&request);
        match (fault, &self.inner) {
            (Some(Fault::LostAnswer), Some(inner)) => {
                let sent = inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _committed = sent.await;
                    Ok(Fault::LostAnswer.answer())
                })
            }
            (Some(fault), _) => HttpConnectorFuture::ready(Ok(fault.answer())),
            (None, Some(inner)) => inner.call(request),
            (None, None) => HttpConnectorFuture::ready(Ok(json_response(200, "{}"))),
        }
    }
}

/// A client for the SDK that sends nothing: each request gets a 200 whose JSON body `answer`
/// gives from its operation (`GetItem`, ...) and its JSON body. For measuring a handler's own
/// work, with no store's time in it (the benchmarks' login against a bare argon2 verify).
pub fn canned(
    answer: impl Fn(&str, &serde_json::Value) -> String + Send + Sync + 'static,
) -> SharedHttpClient {
    SharedHttpClient::new(Canned(Arc::new(answer)))
}

type Answer = Arc<dyn Fn(&str, &serde_json::Value) -> String + Send + Sync>;

#[derive(Clone)]
struct Canned(Answer);

impl std::fmt::Debug for Canned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canned")
    }
}

impl HttpClient for Canned {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Canned {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or_default();
        let body = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        let mut response = HttpResponse::new(
            StatusCode::try_from(200).expect("200"),
            SdkBody::from((self.0)(operation, &body)),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}
