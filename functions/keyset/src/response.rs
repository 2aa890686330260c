//! The answer to CloudFormation: a PUT of the response document to the request's presigned
//! `ResponseURL` (an S3 URL), through the AWS SDK's own connector (hyper 1, rustls with ring),
//! so the binary carries one HTTP and one TLS stack.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;

/// Connecting to the response URL.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt, from sending to the end of the answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before the invocation fails (and Lambda runs it again, up to twice).
const ATTEMPTS: u32 = 3;

/// Sends response documents. Build once at cold start.
#[derive(Debug)]
pub struct ResponseSender {
    connector: Connector,
}

impl ResponseSender {
    /// Trusts the system's roots and the Amazon Trust Services roots (S3's certificates chain to
    /// either, depending on the partition); proxies from `HTTPS_PROXY` / `NO_PROXY`.
    pub fn new() -> Self {
        let trust_store = TrustStore::empty()
            .with_native_roots(true)
            .with_pem_certificate(shared::store::tls::AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
        let context = TlsContext::builder()
            .with_trust_store(trust_store)
            .build()
            .expect("building a TlsContext cannot fail");
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(ATTEMPT_TIMEOUT)
            .build();
        let connector = Connector::builder()
            .connector_settings(settings)
            .sleep_impl(TokioSleep::new())
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(context)
            .build();
        Self { connector }
    }

    /// PUTs `body` to `url`, retrying a failed attempt; an error once every attempt failed.
    /// The presigned URL was signed without a content type, so none is sent.
    pub async fn send(&self, url: &str, body: &[u8]) -> anyhow::Result<()> {
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            match self.attempt(url, body).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %format!("{e:#}"), "the response PUT failed");
                    last = Some(e);
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    async fn attempt(&self, url: &str, body: &[u8]) -> anyhow::Result<()> {
        let request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "")
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(SdkBody::from(body.to_vec()))
            .context("the ResponseURL is not a valid URL")?;
        let request = HttpRequest::try_from(request).context("building the response request")?;
        let response = tokio::time::timeout(CONNECT_TIMEOUT + ATTEMPT_TIMEOUT, self.connector.call(request))
            .await
            .context("the response PUT timed out")?
            .context("sending the response")?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let answer = response
                .body()
                .bytes()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            bail!(
                "the ResponseURL answered {status}: {}",
                answer.chars().take(300).collect::<String>()
            );
        }
        Ok(())
    }
}

impl Default for ResponseSender {
    fn default() -> Self {
        Self::new()
    }
}
