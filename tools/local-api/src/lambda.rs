//! A client of the Lambda Invoke API that `cargo lambda watch` serves
//! (`POST /2015-03-31/functions/<name>/invocations`).

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// Invokes functions by name on one Lambda endpoint.
#[derive(Debug, Clone)]
pub struct LambdaClient {
    endpoint: String,
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

impl LambdaClient {
    /// `endpoint` is the base URL, e.g. `http://127.0.0.1:9000`; `timeout` bounds each
    /// invocation (API Gateway's integration limit is 29 s).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).no_proxy().build()?;
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            timeout,
            http,
        })
    }

    /// Invokes `function` synchronously with `payload`; the function's result on success.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Bytes, InvokeError> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.endpoint);
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        // AWS answers 200 with X-Amz-Function-Error for a failed function; cargo lambda
        // watch answers a 5xx with the same JSON body.
        let flagged = response.headers().contains_key("x-amz-function-error");
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() && !flagged {
            return Ok(body);
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(error) if error.get("errorMessage").is_some() || error.get("errorType").is_some() => {
                let text = |key: &str| {
                    error
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                Err(InvokeError::Function {
                    error_type: text("errorType"),
                    message: text("errorMessage"),
                })
            }
            _ => Err(InvokeError::Endpoint(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))),
        }
    }

    fn transport(&self, error: reqwest::Error) -> InvokeError {
        if error.is_timeout() {
            InvokeError::Timeout(self.timeout)
        } else {
            InvokeError::Endpoint(format!("{} ({error})", self.endpoint))
        }
    }
}
