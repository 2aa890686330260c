//! SES for the in-process tests: the functions' real `SesMailer` sends through the SDK, whose
//! HTTP client here keeps each `SendEmail` request (SES v2's REST JSON, as SES receives it) and
//! answers it as SES does. `./dev test` reads the mail moto's SES kept instead
//! ([`crate::HttpApi::mailbox`]).

use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_sesv2::config::http::{HttpRequest, HttpResponse};
use aws_sdk_sesv2::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::Value;

/// One message as SES received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
}

impl Message {
    /// The token of the message's link to `route` (`verify`, `reset`): after `#route=`.
    pub fn token(&self, route: &str) -> Option<String> {
        let marker = format!("#{route}=");
        let start = self.text.find(&marker)? + marker.len();
        Some(
            self.text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect(),
        )
    }
}

/// Every message sent through its client.
#[derive(Debug, Default)]
pub struct Mailbox(Mutex<Vec<Message>>);

impl Mailbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// An HTTP client for the SES SDK that delivers here.
    pub fn client(self: &Arc<Self>) -> SharedHttpClient {
        SharedHttpClient::new(Client(self.clone()))
    }

    /// The messages so far, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The messages to `address`, in order.
    pub fn to(&self, address: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(address)))
            .collect()
    }

    fn deliver(&self, request: &HttpRequest) -> Result<(), String> {
        if !request.uri().ends_with("/v2/email/outbound-emails") {
            return Err(format!("not SendEmail: {}", request.uri()));
        }
        let body: Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .ok_or("no JSON body")?;
        let text = |value: &Value| value.as_str().map(str::to_owned).ok_or("a missing field");
        let simple = &body["Content"]["Simple"];
        let message = Message {
            from: text(&body["FromEmailAddress"])?,
            to: body["Destination"]["ToAddresses"]
                .as_array()
                .ok_or("no ToAddresses")?
                .iter()
                .map(text)
                .collect::<Result<_, _>>()?,
            subject: text(&simple["Subject"]["Data"])?,
            text: text(&simple["Body"]["Text"]["Data"])?,
        };
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Client(Arc<Mailbox>);

impl HttpClient for Client {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Client {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (status, body) = match self.0.deliver(&request) {
            Ok(()) => (200, format!(r#"{{"MessageId":"{}"}}"#, uuid::Uuid::new_v4())),
            Err(why) => (400, format!(r#"{{"message":"{why}"}}"#)),
        };
        let mut response = HttpResponse::new(
            StatusCode::try_from(status).expect("a status"),
            SdkBody::from(body),
        );
        response.headers_mut().insert("content-type", "application/json");
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// The messages to `to` that moto's SES kept (`./dev test`'s, at `TEST_SES_ENDPOINT`), in order.
pub async fn moto_messages_to(to: &str) -> Vec<Message> {
    let endpoint = crate::service_env("TEST_SES_ENDPOINT");
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("reading moto's mail at {endpoint}: {e}"))
        .json()
        .await
        .expect("moto's data.json");
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|message| Message {
            from: text(&message["source"]),
            to: message["destinations"]["ToAddresses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect(),
            subject: text(&message["subject"]),
            text: text(&message["body"]),
        })
        .filter(|message| message.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
        .collect()
}
