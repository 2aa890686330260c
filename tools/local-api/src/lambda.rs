//! A client of the Lambda Invoke API that `cargo lambda watch` serves
//! (`POST /2015-03-31/functions/<name>/invocations`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

/// Invokes functions by name on one Lambda endpoint, which can be moved while serving (as a
/// deployment moves a stage to new function versions; see `--lambda-endpoint-file`).
#[derive(Debug, Clone)]
pub struct LambdaClient {
    endpoint: Arc<RwLock<String>>,
    timeout: Duration,
    http: reqwest::Client,
}

/// Why an invocation gave no result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and failed: Lambda's `{"errorType", "errorMessage"}`.
    #[error("function error {error_type}: {message}")]
    Function { error_type: String, message: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint could not be reached, or answered something other than an invocation.
    #[error("the Lambda endpoint failed: {0}")]
    Endpoint(String),
}

/// Lambda's error document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionError {
    #[serde(default)]
    error_type: String,
    error_message: String,
}

impl LambdaClient {
    /// `endpoint` is the base URL, e.g. `http://127.0.0.1:9000`; `timeout` bounds each
    /// invocation (API Gateway's integration limit is 29 s).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).no_proxy().build()?;
        Ok(Self {
            endpoint: Arc::new(RwLock::new(base_url(endpoint))),
            timeout,
            http,
        })
    }

    /// The endpoint invocations go to now.
    pub fn endpoint(&self) -> String {
        self.endpoint.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends every invocation from now on to `endpoint`; those in flight finish where they are.
    pub fn set_endpoint(&self, endpoint: &str) {
        *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = base_url(endpoint);
    }

    /// Invokes `function` synchronously with `payload`; the function's result on success.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Bytes, InvokeError> {
        let endpoint = self.endpoint();
        let url = format!("{endpoint}/2015-03-31/functions/{function}/invocations");
        let request = self.http.post(url).header("content-type", "application/json");
        let response = request.body(payload.to_string()).send().await;
        let response = response.map_err(|e| self.transport(&endpoint, e))?;
        let status = response.status();
        // AWS answers 200 with X-Amz-Function-Error for a failed function; cargo lambda
        // watch answers a 5xx with the same JSON body.
        let flagged = response.headers().contains_key("x-amz-function-error");
        let body = response.bytes().await.map_err(|e| self.transport(&endpoint, e))?;
        if status.is_success() && !flagged {
            return Ok(body);
        }
        Err(match serde_json::from_slice::<FunctionError>(&body) {
            Ok(error) => InvokeError::Function {
                error_type: error.error_type,
                message: error.error_message,
            },
            Err(_) => {
                let start = String::from_utf8_lossy(&body[..body.len().min(200)]);
                InvokeError::Endpoint(format!("HTTP {status}: {start}"))
            }
        })
    }

    fn transport(&self, endpoint: &str, error: reqwest::Error) -> InvokeError {
        if error.is_timeout() {
            InvokeError::Timeout(self.timeout)
        } else {
            InvokeError::Endpoint(format!("{endpoint} ({error})"))
        }
    }
}

fn base_url(endpoint: &str) -> String {
    endpoint.trim().trim_end_matches('/').to_owned()
}
