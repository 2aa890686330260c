//! The answers API Gateway makes itself: gateway responses (`GatewayResponses`, with their
//! mapped headers and `$context` templates) and the preflights that SAM's `Cors` generates.

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_METHODS, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use regex_lite::{Captures, Regex};
use serde_json::Value;

use crate::context::Context;
use crate::spec::{ApiSpec, HeaderSource};

/// An error API Gateway answers itself, through `GatewayResponses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    Unauthorized,
    AccessDenied,
    /// A Deny statement covers the method.
    ExplicitDeny,
    AuthorizerConfiguration,
    MissingAuthenticationToken,
    RequestTooLarge,
    /// A function error or a malformed Lambda proxy response.
    BadGateway,
    IntegrationFailure,
    IntegrationTimeout,
}

impl GatewayError {
    /// The gateway response type, the key in `GatewayResponses`.
    pub fn response_type(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::AccessDenied | Self::ExplicitDeny => "ACCESS_DENIED",
            Self::AuthorizerConfiguration => "AUTHORIZER_CONFIGURATION_ERROR",
            Self::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::BadGateway => "DEFAULT_5XX",
            Self::IntegrationFailure => "INTEGRATION_FAILURE",
            Self::IntegrationTimeout => "INTEGRATION_TIMEOUT",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::AccessDenied | Self::ExplicitDeny | Self::MissingAuthenticationToken => {
                StatusCode::FORBIDDEN
            }
            Self::AuthorizerConfiguration => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::IntegrationFailure | Self::IntegrationTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// `$context.error.message`; `None` renders `messageString` as `null`, as AWS does for
    /// authorizer configuration errors.
    fn message(self) -> Option<&'static str> {
        Some(match self {
            Self::Unauthorized => "Unauthorized",
            Self::AccessDenied => "User is not authorized to access this resource",
            Self::ExplicitDeny => "User is not authorized to access this resource with an explicit deny",
            Self::AuthorizerConfiguration => return None,
            Self::MissingAuthenticationToken => "Missing Authentication Token",
            Self::RequestTooLarge => "Request Too Long",
            Self::BadGateway | Self::IntegrationFailure => "Internal server error",
            Self::IntegrationTimeout => "Endpoint request timed out",
        })
    }

    /// The `x-amzn-ErrorType` header.
    fn error_type(self) -> &'static str {
        match self {
            Self::Unauthorized => "UnauthorizedException",
            Self::AccessDenied | Self::ExplicitDeny => "AccessDeniedException",
            Self::AuthorizerConfiguration => "AuthorizerConfigurationException",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::RequestTooLarge => "RequestTooLargeException",
            _ => "InternalServerErrorException",
        }
    }
}

/// API Gateway's body when `GatewayResponses` has no template.
const DEFAULT_TEMPLATE: &str = r#"{"message":$context.error.messageString}"#;

fn response(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The gateway response for `error`: its `GatewayResponses` entry (or the default 4XX/5XX one),
/// headers mapped from the request, the template with `$context` variables.
pub(crate) fn error_response(error: GatewayError, context: &Context<'_>) -> Response<Bytes> {
    let responses = &context.spec.gateway_responses;
    let default = format!("DEFAULT_{}XX", error.status().as_u16() / 100);
    let custom = responses.get(error.response_type()).or(responses.get(&default));
    let mut headers = HeaderMap::new();
    for (name, source) in custom.map(|c| c.headers.as_slice()).unwrap_or_default() {
        let value = match source {
            HeaderSource::Static(value) => Some(value),
            HeaderSource::RequestHeader(header) => context.request.headers().get(header),
        };
        if let Some(value) = value {
            headers.append(name, value.clone());
        }
    }
    let templates = custom.map(|c| &c.templates);
    let json = templates.and_then(|t| t.get_key_value("application/json"));
    let template = json.or(templates.and_then(|t| t.first_key_value()));
    let (content_type, template) = template.map_or(("application/json", DEFAULT_TEMPLATE), |(c, t)| (c, t));
    let body = render(template, |name| variable(name, error, context));
    if let Ok(content_type) = HeaderValue::try_from(content_type) {
        headers.entry(CONTENT_TYPE).or_insert(content_type);
    }
    headers.insert("x-amzn-errortype", HeaderValue::from_static(error.error_type()));
    let status = custom.and_then(|c| c.status).unwrap_or(error.status());
    response(status, headers, Bytes::from(body))
}

/// SAM's generated `OPTIONS` method: a mock integration that answers the `Cors` headers, with
/// the resource's `methods` unless `AllowMethods` says otherwise.
pub(crate) fn preflight(spec: &ApiSpec, methods: &[String]) -> Response<Bytes> {
    let mut headers = spec.cors.clone().unwrap_or_default();
    if let Ok(methods) = HeaderValue::try_from(methods.join(",")) {
        headers.entry(ACCESS_CONTROL_ALLOW_METHODS).or_insert(methods);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response(StatusCode::OK, headers, Bytes::new())
}

/// The value of `$context.<name>` in a gateway response template.
fn variable(name: &str, error: GatewayError, context: &Context<'_>) -> Option<String> {
    let spec = context.spec;
    Some(match name {
        "error.messageString" => error
            .message()
            .map_or("null".into(), |m| Value::from(m).to_string()),
        "error.message" => error.message().unwrap_or_default().into(),
        "error.responseType" => error.response_type().into(),
        "requestId" | "extendedRequestId" => context.request_id.clone(),
        "stage" => spec.stage.clone(),
        "apiId" => spec.api_id.clone(),
        "accountId" => spec.account_id.clone(),
        "httpMethod" => context.request.method().to_string(),
        "resourcePath" => context.resource.clone().unwrap_or_default(),
        "path" => format!("/{}{}", spec.stage, context.path),
        "identity.sourceIp" => context.source_ip.to_string(),
        "authorizer.principalId" => context.principal_id.clone().unwrap_or_default(),
        _ => return None,
    })
}

/// Renders `$context.x`, `$!context.x` and `${context.x}` references; other `context.` and
/// `stageVariables.` references render empty, and anything else is left as written.
fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let Ok(reference) = Regex::new(r"\$!?(?:\{([\w.]*\w)\}|([\w.]*\w))") else {
        return template.to_owned();
    };
    let replaced = reference.replace_all(template, |found: &Captures<'_>| {
        let name = found.get(1).or(found.get(2)).map_or("", |name| name.as_str());
        match (name.strip_prefix("context."), name.starts_with("stageVariables.")) {
            (Some(name), _) => lookup(name).unwrap_or_default(),
            (None, true) => String::new(),
            (None, false) => found[0].to_owned(),
        }
    });
    replaced.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_context_variables() {
        let lookup = |name: &str| match name {
            "error.messageString" => Some("\"Unauthorized\"".to_owned()),
            "requestId" => Some("abc".to_owned()),
            _ => None,
        };
        assert_eq!(
            render(
                r#"{"msg": $context.error.messageString, "id": "${context.requestId}."}"#,
                lookup
            ),
            r#"{"msg": "Unauthorized", "id": "abc."}"#
        );
        assert_eq!(render("$!context.nope|$stageVariables.x|$5|$", lookup), "||$5|$");
    }
}
