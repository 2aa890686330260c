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

/// DynamoDB's answer to a write on an item that a transaction in flight holds.
const TRANSACTION_CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#;

/// How many requests of one operation get a transaction conflict, and what was sent.
#[derive(Debug)]
pub struct Conflicts {
    /// The operation, as its `X-Amz-Target` header ends (`UpdateItem`).
    operation: &'static str,
    /// Conflicts still to answer.
    remaining: AtomicUsize,
    /// Requests of the operation seen, conflicts included.
    seen: AtomicUsize,
}

impl Conflicts {
    /// The first `count` requests of `operation` conflict.
    pub fn first(operation: &'static str, count: usize) -> Arc<Self> {
        Arc::new(Self {
            operation,
            remaining: AtomicUsize::new(count),
            seen: AtomicUsize::new(0),
        })
    }

    /// Requests of the operation that reached the HTTP client, each retry counted.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }

    /// Whether `request` gets a conflict (counting it).
    fn conflicts(&self, request: &HttpRequest) -> bool {
        let ours = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.rsplit('.').next() == Some(self.operation));
        if !ours {
            return false;
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// An HTTP client for the SDK that answers [`Conflicts`] and passes the rest to `inner` (or
/// answers them `{}`, an empty success, without one).
#[derive(Debug, Clone)]
pub struct ConflictingClient {
    inner: Option<SharedHttpClient>,
    conflicts: Arc<Conflicts>,
}

impl ConflictingClient {
    pub fn shared(inner: Option<SharedHttpClient>, conflicts: Arc<Conflicts>) -> SharedHttpClient {
        SharedHttpClient::new(Self { inner, conflicts })
    }
}

impl HttpClient for ConflictingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ConflictingConnector {
            inner: self
                .inner
                .as_ref()
                .map(|client| client.http_connector(settings, components)),
            conflicts: self.conflicts.clone(),
        })
    }
}

#[derive(Debug)]
struct ConflictingConnector {
    inner: Option<SharedHttpConnector>,
    conflicts: Arc<Conflicts>,
}

fn json_response(status: u16, body: &'static str) -> HttpResponse {
    let status = StatusCode::try_from(status).expect("an HTTP status");
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

impl HttpConnector for ConflictingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.conflicts.conflicts(&request) {
            return HttpConnectorFuture::ready(Ok(json_response(400, TRANSACTION_CONFLICT)));
        }
        match &self.inner {
            Some(inner) => inner.call(request),
            None => HttpConnectorFuture::ready(Ok(json_response(200, "{}"))),
        }
    }
}
