//! The REST API (v1) Lambda proxy integration: the event API Gateway sends the function, and the
//! function's response read back into an HTTP response.

use std::collections::HashMap;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::authorizer::Verdict;
use crate::context::Context;

/// An authorizer's verdict, and its latency in milliseconds (0 when cached).
pub(crate) type Authorized = (std::sync::Arc<Verdict>, u64);

/// `09/Apr/2015:12:34:56 +0000`, as in `requestContext.requestTime`.
const REQUEST_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");

/// Why a function's output is not a Lambda proxy response (API Gateway's 502).
#[derive(Debug, thiserror::Error)]
pub enum MalformedResponse {
    #[error("not a Lambda proxy response: {0}")]
    Json(#[from] serde_json::Error),
    #[error("headers.{0} is not a string")]
    Header(String),
    #[error("statusCode {0} is not an HTTP status")]
    Status(i64),
    #[error("body is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// The proxy event for the request, with the authorizer's verdict and latency (ms) if one ran.
pub(crate) fn event(context: &Context<'_>, authorized: Option<&Authorized>) -> serde_json::Result<Value> {
    let (spec, request) = (context.spec, context.request);
    let mut headers = request.headers().clone();
    let forwarded = match context.header("x-forwarded-for") {
        Some(earlier) => format!("{earlier}, {}", context.source_ip),
        None => context.source_ip.to_string(),
    };
    if let Ok(forwarded) = HeaderValue::try_from(forwarded) {
        headers.insert("x-forwarded-for", forwarded);
    }
    headers
        .entry("x-forwarded-proto")
        .or_insert(HeaderValue::from_static("http"));
    let mut last_headers = HeaderMap::new();
    for (name, value) in &headers {
        last_headers.insert(name, value.clone());
    }
    let (mut query, mut last_query) = (HashMap::<_, Vec<_>>::new(), HashMap::new());
    let raw_query = request.uri().query().unwrap_or_default();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()).into_owned() {
        last_query.insert(key.clone(), value.clone());
        query.entry(key).or_default().push(value);
    }
    let now = OffsetDateTime::now_utc();
    let host = context.header("host").unwrap_or("127.0.0.1");

    let mut event = ApiGatewayProxyRequest::default();
    event.resource = context.resource.clone();
    event.path = Some(context.path.clone());
    event.http_method = request.method().clone();
    event.headers = last_headers;
    event.multi_value_headers = headers;
    event.query_string_parameters = last_query.into();
    event.multi_value_query_string_parameters = query.into();
    event.path_parameters = context.path_parameters.iter().cloned().collect();
    (event.body, event.is_base64_encoded) = body(context);
    let request_context = &mut event.request_context;
    request_context.account_id = Some(spec.account_id.clone());
    request_context.apiid = Some(spec.api_id.clone());
    request_context.stage = Some(spec.stage.clone());
    request_context.resource_id = Some("local".into());
    request_context.resource_path = context.resource.clone();
    // The path the client used, as API Gateway gives it: `/<stage>/...` on the execute-api URL,
    // the bare path on a custom domain without a base path, which is how this API is served.
    request_context.path = Some(context.path.clone());
    request_context.http_method = request.method().clone();
    request_context.request_id = Some(context.request_id.clone());
    request_context.request_time = Some(request_time(now));
    request_context.request_time_epoch = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    request_context.protocol = Some("HTTP/1.1".into());
    request_context.domain_name = Some(host.to_owned());
    request_context.domain_prefix = host.split('.').next().map(str::to_owned);
    request_context.identity.source_ip = Some(context.source_ip.to_string());
    request_context.identity.user_agent = context.header("user-agent").map(str::to_owned);
    if let Some((verdict, latency)) = authorized {
        let fields = &mut request_context.authorizer.fields;
        for (key, value) in &verdict.context {
            fields.insert(key.clone(), value.as_str().into());
        }
        fields.insert("principalId".into(), verdict.principal_id.clone().into());
        fields.insert("integrationLatency".into(), (*latency).into());
    }

    let mut value = serde_json::to_value(&event)?;
    // API Gateway sends `null`, not `{}`, for no query string, path parameters or stage variables.
    let fields = value
        .as_object_mut()
        .into_iter()
        .flat_map(|event| event.values_mut());
    for field in fields {
        if *field == json!({}) {
            *field = Value::Null;
        }
    }
    Ok(value)
}

/// The body as text, or base64 for a `BinaryMediaTypes` content type and for bytes that are not
/// UTF-8 (which API Gateway would mangle without a binary media type).
fn body(context: &Context<'_>) -> (Option<String>, bool) {
    let body = context.request.body();
    if body.is_empty() {
        return (None, false);
    }
    let content_type = context.header("content-type").and_then(|ct| ct.split(';').next());
    let essence = content_type.unwrap_or_default().trim().to_ascii_lowercase();
    let any_subtype = format!("{}/*", essence.split('/').next().unwrap_or_default());
    let accepted = [essence.as_str(), "*/*", &any_subtype];
    let types = &context.spec.binary_media_types;
    let binary = !essence.is_empty() && types.iter().any(|t| accepted.contains(&t.as_str()));
    match std::str::from_utf8(body) {
        Ok(text) if !binary => (Some(text.to_owned()), false),
        _ => (Some(BASE64.encode(body)), true),
    }
}

/// Reads a Lambda proxy integration response: `multiValueHeaders` win over `headers` of the
/// same name, hop-by-hop headers are dropped, and the content type defaults to JSON.
pub fn read_response(output: &[u8]) -> Result<Response<Bytes>, MalformedResponse> {
    let output: Value = serde_json::from_slice(output)?;
    let headers = output.get("headers").and_then(Value::as_object);
    if let Some((name, _)) = headers.and_then(|h| h.iter().find(|(_, v)| !v.is_string())) {
        return Err(MalformedResponse::Header(name.clone()));
    }
    let output: ApiGatewayProxyResponse = serde_json::from_value(output)?;
    let status = match u16::try_from(output.status_code) {
        Ok(status @ 100..600) => StatusCode::from_u16(status).ok(),
        _ => None,
    };
    let status = status.ok_or(MalformedResponse::Status(output.status_code))?;
    let mut headers = output.multi_value_headers;
    for (name, value) in &output.headers {
        if !headers.contains_key(name) {
            headers.insert(name, value.clone());
        }
    }
    for hop in ["content-length", "transfer-encoding", "connection", "keep-alive"] {
        headers.remove(hop);
    }
    headers
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    let body = match output.body {
        Some(Body::Text(text)) if output.is_base64_encoded => BASE64.decode(text)?.into(),
        Some(Body::Text(text)) => text.into(),
        _ => Bytes::new(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn request_time(time: OffsetDateTime) -> String {
    time.format(REQUEST_TIME).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn request_time_is_formatted_as_api_gateway_does() {
        let at = |seconds| request_time(OffsetDateTime::from_unix_timestamp(seconds).unwrap());
        assert_eq!(at(1_428_582_896), "09/Apr/2015:12:34:56 +0000");
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(1_709_210_096), "29/Feb/2024:12:34:56 +0000");
    }

    #[test]
    fn proxy_responses_merge_headers_and_decode_base64() {
        let out = read_response(
            br#"{"statusCode": 201, "headers": {"a": "1", "B": "x", "content-length": "3"},
                "multiValueHeaders": {"b": ["2", "3"]}, "body": "aGk=", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(out.status(), 201);
        assert_eq!(out.body(), &Bytes::from_static(b"hi"));
        let headers: Vec<(&str, &str)> = out
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                ("b", "2"),
                ("b", "3"),
                ("a", "1"),
                ("content-type", "application/json")
            ]
        );
    }

    #[test]
    fn malformed_proxy_responses_are_refused() {
        for bad in [
            &br#"{"body": "x"}"#[..],
            br#"{"statusCode": 99}"#,
            br#"{"statusCode": 200, "body": {"a": 1}}"#,
            br#"{"statusCode": 200, "headers": {"a": ["x"]}}"#,
            br#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
            b"[]",
        ] {
            assert!(read_response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
