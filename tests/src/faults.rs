//! Faults injected at the AWS SDK's HTTP client: the store code runs unchanged, and a chosen
//! operation's requests get the answer DynamoDB gives under a fault, before the rest go on to a
//! real client (the emulator's) or, without one, to an empty success.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
            Self::LostAnswer => json_response(
                500,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
            ),
        }
    }
}

/// How many requests of one operation get a fault, and what was sent.
#[derive(Debug)]
pub struct Faults {
    /// The operation, as its `X-Amz-Target` header ends (`UpdateItem`).
    operation: &'static str,
    fault: Fault,
    /// Faults still to answer.
    remaining: AtomicUsize,
    /// Requests of the operation seen, faulty ones included.
    seen: AtomicUsize,
}

impl Faults {
    /// The first `count` requests of `operation` get `fault`.
    pub fn first(operation: &'static str, count: usize, fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            operation,
            fault,
            remaining: AtomicUsize::new(count),
            seen: AtomicUsize::new(0),
        })
    }

    /// Requests of the operation that reached the HTTP client, each retry counted.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }

    /// The fault `request` gets, if any (counting it).
    fn fault_for(&self, request: &HttpRequest) -> Option<Fault> {
        let ours = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.rsplit('.').next() == Some(self.operation));
        if !ours {
            return None;
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.fault)
    }
}

/// An HTTP client for the SDK that answers [`Faults`] and passes the rest to `inner` (or
/// answers them `{}`, an empty success, without one).
#[derive(Debug, Clone)]
pub struct FaultyClient {
    inner: Option<SharedHttpClient>,
    faults: Arc<Faults>,
}

impl FaultyClient {
    pub fn shared(inner: Option<SharedHttpClient>, faults: Arc<Faults>) -> SharedHttpClient {
        SharedHttpClient::new(Self { inner, faults })
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
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: Option<SharedHttpConnector>,
    faults: Arc<Faults>,
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
