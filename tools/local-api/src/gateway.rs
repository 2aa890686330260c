//! One request through the emulated API Gateway: route, TOKEN authorizer (with its cache),
//! REST proxy event to the backend, and the backend's answer or a gateway response back.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::authorizer::{Decision, Verdict, VerdictCache};
use crate::lambda::{InvokeError, LambdaClient};
use crate::router::{self, Match};
use crate::spec::{ApiSpec, HeaderValue, TokenAuthorizer};

/// A request as received.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Upper case.
    pub method: String,
    /// The path as sent (percent-encoded), without the query.
    pub path: String,
    pub query: Option<String>,
    /// Names in lower case, in the order received; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: String,
}

/// The answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// An error API Gateway answers itself, through `GatewayResponses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// The gateway response type (`UNAUTHORIZED`, `ACCESS_DENIED`, ...).
    pub response_type: &'static str,
    pub status: u16,
    /// `$context.error.message`; `None` renders `messageString` as `null`, as AWS does for
    /// authorizer configuration errors.
    pub message: Option<&'static str>,
    /// The `x-amzn-ErrorType` header.
    pub error_type: &'static str,
}

impl GatewayError {
    pub const UNAUTHORIZED: Self = Self {
        response_type: "UNAUTHORIZED",
        status: 401,
        message: Some("Unauthorized"),
        error_type: "UnauthorizedException",
    };
    pub const ACCESS_DENIED: Self = Self {
        response_type: "ACCESS_DENIED",
        status: 403,
        message: Some("User is not authorized to access this resource"),
        error_type: "AccessDeniedException",
    };
    pub const EXPLICIT_DENY: Self = Self {
        message: Some("User is not authorized to access this resource with an explicit deny"),
        ..Self::ACCESS_DENIED
    };
    pub const AUTHORIZER_CONFIGURATION_ERROR: Self = Self {
        response_type: "AUTHORIZER_CONFIGURATION_ERROR",
        status: 500,
        message: None,
        error_type: "AuthorizerConfigurationException",
    };
    pub const MISSING_AUTHENTICATION_TOKEN: Self = Self {
        response_type: "MISSING_AUTHENTICATION_TOKEN",
        status: 403,
        message: Some("Missing Authentication Token"),
        error_type: "MissingAuthenticationTokenException",
    };
    pub const REQUEST_TOO_LARGE: Self = Self {
        response_type: "REQUEST_TOO_LARGE",
        status: 413,
        message: Some("Request Too Long"),
        error_type: "RequestTooLargeException",
    };
    /// A function error or a malformed Lambda proxy response.
    pub const BAD_GATEWAY: Self = Self {
        response_type: "DEFAULT_5XX",
        status: 502,
        message: Some("Internal server error"),
        error_type: "InternalServerErrorException",
    };
    pub const INTEGRATION_FAILURE: Self = Self {
        response_type: "INTEGRATION_FAILURE",
        status: 504,
        message: Some("Internal server error"),
        error_type: "InternalServerErrorException",
    };
    pub const INTEGRATION_TIMEOUT: Self = Self {
        response_type: "INTEGRATION_TIMEOUT",
        status: 504,
        message: Some("Endpoint request timed out"),
        error_type: "InternalServerErrorException",
    };
}

/// API Gateway's largest request payload.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The emulated API: its spec, the Lambda endpoint and the authorizers' cache.
#[derive(Debug)]
pub struct Gateway {
    spec: ApiSpec,
    lambda: LambdaClient,
    cache: VerdictCache,
}

/// What a request is known to be while it is handled, for events, logs and templates.
struct Context<'a> {
    incoming: &'a Incoming,
    request_id: String,
    path: String,
    resource: Option<String>,
    path_parameters: Vec<(String, String)>,
    principal_id: Option<String>,
}

impl Context<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.incoming
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self) -> Vec<(String, String)> {
        self.incoming
            .query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default()
    }
}

impl Gateway {
    pub fn new(spec: ApiSpec, lambda: LambdaClient) -> Self {
        Self {
            spec,
            lambda,
            cache: VerdictCache::default(),
        }
    }

    pub fn spec(&self) -> &ApiSpec {
        &self.spec
    }

    /// Handles one request, and logs it (method, path, status, time; never a header value).
    pub async fn handle(&self, incoming: Incoming) -> Outgoing {
        self.answer(incoming, None).await
    }

    /// Answers `incoming` with the gateway response for `error` (e.g. a body over the limit).
    pub async fn refuse(&self, incoming: Incoming, error: GatewayError) -> Outgoing {
        self.answer(incoming, Some(error)).await
    }

    async fn answer(&self, incoming: Incoming, refusal: Option<GatewayError>) -> Outgoing {
        let started = Instant::now();
        let mut context = Context {
            incoming: &incoming,
            request_id: uuid::Uuid::new_v4().to_string(),
            path: percent_encoding::percent_decode_str(&incoming.path)
                .decode_utf8_lossy()
                .into_owned(),
            resource: None,
            path_parameters: Vec::new(),
            principal_id: None,
        };
        let result = match refusal {
            Some(error) => Err(error),
            None => self.route(&mut context).await,
        };
        let (outgoing, outcome) = match result {
            Ok(outgoing) => (outgoing, "integration"),
            Err(error) => (self.gateway_response(&error, &context), error.response_type),
        };
        tracing::info!(
            method = %incoming.method,
            path = %context.path,
            resource = context.resource.as_deref().unwrap_or("-"),
            status = outgoing.status,
            outcome,
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        outgoing
    }

    async fn route(&self, context: &mut Context<'_>) -> Result<Outgoing, GatewayError> {
        if context.incoming.body.len() > MAX_BODY_BYTES {
            return Err(GatewayError::REQUEST_TOO_LARGE);
        }
        match router::find(&self.spec, &context.incoming.method, &context.path) {
            Match::NotFound => Err(GatewayError::MISSING_AUTHENTICATION_TOKEN),
            Match::Preflight {
                resource,
                methods,
                path_parameters,
            } => {
                context.resource = Some(resource.to_owned());
                context.path_parameters = path_parameters;
                if let Some(name) = &self.spec.preflight_authorizer {
                    self.authorize(name, context).await?;
                }
                Ok(self.preflight(&methods, context))
            }
            Match::Route {
                route,
                path_parameters,
            } => {
                context.resource = Some(route.resource.clone());
                context.path_parameters = path_parameters;
                let authorized = match &route.authorizer {
                    Some(name) => Some(self.authorize(name, context).await?),
                    None => None,
                };
                let event = self.proxy_event(context, authorized.as_ref());
                let output = self
                    .lambda
                    .invoke(&route.function, &event)
                    .await
                    .map_err(|error| {
                        tracing::warn!(function = %route.function, %error, "the integration failed");
                        match error {
                            InvokeError::Function { .. } => GatewayError::BAD_GATEWAY,
                            InvokeError::Timeout(_) => GatewayError::INTEGRATION_TIMEOUT,
                            InvokeError::Endpoint(_) => GatewayError::INTEGRATION_FAILURE,
                        }
                    })?;
                let mut outgoing = proxy_response(&output).map_err(|reason| {
                    tracing::warn!(function = %route.function, %reason, "malformed Lambda proxy response");
                    GatewayError::BAD_GATEWAY
                })?;
                outgoing
                    .headers
                    .push(("x-amzn-RequestId".into(), context.request_id.clone()));
                Ok(outgoing)
            }
        }
    }

    /// Runs the named TOKEN authorizer (or reuses its cached verdict); the verdict and the
    /// authorizer's latency in milliseconds when it allows this method.
    async fn authorize(
        &self,
        name: &str,
        context: &mut Context<'_>,
    ) -> Result<(Arc<Verdict>, u64), GatewayError> {
        let Some(authorizer) = self.spec.authorizers.get(name) else {
            tracing::warn!(
                authorizer = name,
                "route names an authorizer the API does not define"
            );
            return Err(GatewayError::AUTHORIZER_CONFIGURATION_ERROR);
        };
        let identity = context
            .header(&authorizer.header)
            .filter(|v| !v.is_empty())
            .ok_or(GatewayError::UNAUTHORIZED)?
            .to_owned();
        if authorizer
            .validation
            .as_ref()
            .is_some_and(|re| !re.is_match(&identity))
        {
            return Err(GatewayError::UNAUTHORIZED);
        }
        let method_arn = self.method_arn(context);
        let (verdict, latency) = match self.cache.get(name, &identity) {
            Some(verdict) => (verdict, 0),
            None => {
                let started = Instant::now();
                let verdict = Arc::new(self.invoke_authorizer(authorizer, &identity, &method_arn).await?);
                self.cache.put(name, &identity, verdict.clone(), authorizer.ttl);
                (verdict, started.elapsed().as_millis() as u64)
            }
        };
        context.principal_id = Some(verdict.principal_id.clone());
        match verdict.decide(&method_arn) {
            Decision::Allow => Ok((verdict, latency)),
            Decision::ExplicitDeny => Err(GatewayError::EXPLICIT_DENY),
            Decision::NotAllowed => Err(GatewayError::ACCESS_DENIED),
        }
    }

    async fn invoke_authorizer(
        &self,
        authorizer: &TokenAuthorizer,
        identity: &str,
        method_arn: &str,
    ) -> Result<Verdict, GatewayError> {
        let event = json!({"type": "TOKEN", "authorizationToken": identity, "methodArn": method_arn});
        match self.lambda.invoke(&authorizer.function, &event).await {
            Ok(output) => Verdict::parse(&output).map_err(|reason| {
                tracing::warn!(authorizer = %authorizer.name, %reason, "malformed authorizer output");
                GatewayError::AUTHORIZER_CONFIGURATION_ERROR
            }),
            Err(InvokeError::Function { message, .. }) if message == "Unauthorized" => {
                Err(GatewayError::UNAUTHORIZED)
            }
            Err(error) => {
                tracing::warn!(authorizer = %authorizer.name, %error, "the authorizer failed");
                Err(GatewayError::AUTHORIZER_CONFIGURATION_ERROR)
            }
        }
    }

    /// `arn:aws:execute-api:<region>:<account>:<api>/<stage>/<VERB>/<path>`.
    fn method_arn(&self, context: &Context<'_>) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{}/{}/{}/{}",
            self.spec.region,
            self.spec.account_id,
            self.spec.api_id,
            self.spec.stage,
            context.incoming.method,
            context.path.trim_start_matches('/')
        )
    }

    /// SAM's generated `OPTIONS` method: a mock integration that answers the `Cors` headers.
    fn preflight(&self, methods: &[String], context: &Context<'_>) -> Outgoing {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(cors) = &self.spec.cors {
            headers.push(("Access-Control-Allow-Origin".into(), cors.allow_origin.clone()));
            let methods = cors.allow_methods.clone().unwrap_or_else(|| methods.join(","));
            headers.push(("Access-Control-Allow-Methods".into(), methods));
            if let Some(allow) = &cors.allow_headers {
                headers.push(("Access-Control-Allow-Headers".into(), allow.clone()));
            }
            if let Some(max_age) = &cors.max_age {
                headers.push(("Access-Control-Max-Age".into(), max_age.clone()));
            }
            if cors.allow_credentials {
                headers.push(("Access-Control-Allow-Credentials".into(), "true".into()));
            }
        }
        headers.push(("x-amzn-RequestId".into(), context.request_id.clone()));
        Outgoing {
            status: 200,
            headers,
            body: Bytes::new(),
        }
    }

    /// The REST API Lambda proxy event, as API Gateway builds it.
    fn proxy_event(&self, context: &Context<'_>, authorized: Option<&(Arc<Verdict>, u64)>) -> Value {
        let incoming = context.incoming;
        let mut headers: Vec<(String, String)> = incoming
            .headers
            .iter()
            .filter(|(name, _)| name != "x-forwarded-for")
            .cloned()
            .collect();
        let forwarded = match context.header("x-forwarded-for") {
            Some(earlier) => format!("{earlier}, {}", incoming.source_ip),
            None => incoming.source_ip.clone(),
        };
        headers.push(("x-forwarded-for".into(), forwarded));
        if context.header("x-forwarded-proto").is_none() {
            headers.push(("x-forwarded-proto".into(), "http".into()));
        }
        let (single, multi) = single_and_multi(&headers);
        let (query_single, query_multi) = single_and_multi(&context.query());
        let path_parameters = if context.path_parameters.is_empty() {
            Value::Null
        } else {
            Value::Object(
                context
                    .path_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        let (body, is_base64) = self.event_body(context);
        let now = SystemTime::now();
        let epoch_millis = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let host = context.header("host").unwrap_or("127.0.0.1").to_owned();
        let resource = context.resource.clone().unwrap_or_default();
        let mut request_context = json!({
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": incoming.method,
            "extendedRequestId": context.request_id,
            "requestTime": request_time(epoch_millis / 1000),
            "path": format!("/{}{}", self.spec.stage, context.path),
            "accountId": self.spec.account_id,
            "protocol": "HTTP/1.1",
            "stage": self.spec.stage,
            "domainPrefix": host.split('.').next().unwrap_or_default(),
            "requestTimeEpoch": epoch_millis,
            "requestId": context.request_id,
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "sourceIp": incoming.source_ip,
                "principalOrgId": null,
                "accessKey": null,
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": context.header("user-agent"),
                "user": null
            },
            "domainName": host,
            "apiId": self.spec.api_id,
        });
        if let Some((verdict, latency)) = authorized {
            let mut authorizer = Map::new();
            for (key, value) in &verdict.context {
                authorizer.insert(key.clone(), Value::String(value.clone()));
            }
            authorizer.insert("principalId".into(), Value::String(verdict.principal_id.clone()));
            authorizer.insert("integrationLatency".into(), json!(latency));
            request_context["authorizer"] = Value::Object(authorizer);
        }
        json!({
            "resource": resource,
            "path": context.path,
            "httpMethod": incoming.method,
            "headers": single,
            "multiValueHeaders": multi,
            "queryStringParameters": query_single,
            "multiValueQueryStringParameters": query_multi,
            "pathParameters": path_parameters,
            "stageVariables": null,
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": is_base64,
        })
    }

    /// The body as text, or base64 for a `BinaryMediaTypes` content type and for bytes that
    /// are not UTF-8 (which API Gateway would mangle without a binary media type).
    fn event_body(&self, context: &Context<'_>) -> (Value, bool) {
        let body = &context.incoming.body;
        if body.is_empty() {
            return (Value::Null, false);
        }
        let content_type = context.header("content-type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let binary = content_type.is_some_and(|ct| {
            self.spec.binary_media_types.iter().any(|t| {
                t == &ct
                    || t == "*/*"
                    || t.strip_suffix("/*")
                        .is_some_and(|prefix| ct.split('/').next() == Some(prefix))
            })
        });
        match std::str::from_utf8(body) {
            Ok(text) if !binary => (Value::String(text.to_owned()), false),
            _ => (Value::String(BASE64.encode(body)), true),
        }
    }

    /// The gateway response for `error`: its `GatewayResponses` entry (or the default 4XX/5XX
    /// one), headers mapped from the request, the template with `$context` variables.
    fn gateway_response(&self, error: &GatewayError, context: &Context<'_>) -> Outgoing {
        let fallback = if error.status >= 500 {
            "DEFAULT_5XX"
        } else {
            "DEFAULT_4XX"
        };
        let custom = self
            .spec
            .gateway_responses
            .get(error.response_type)
            .or_else(|| self.spec.gateway_responses.get(fallback));
        let status = custom.and_then(|c| c.status).unwrap_or(error.status);
        let mut headers = Vec::new();
        let query = context.query();
        for (name, source) in custom.map(|c| c.headers.as_slice()).unwrap_or_default() {
            let value = match source {
                HeaderValue::Static(text) => Some(text.clone()),
                HeaderValue::RequestHeader(header) => context.header(header).map(str::to_owned),
                HeaderValue::QueryString(key) => {
                    query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
                }
                HeaderValue::PathParameter(key) => context
                    .path_parameters
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone()),
            };
            if let Some(value) = value {
                headers.push((name.clone(), value));
            }
        }
        let templates = custom.map(|c| c.templates.as_slice()).unwrap_or_default();
        let (content_type, template) = templates
            .iter()
            .find(|(ct, _)| ct == "application/json")
            .or_else(|| templates.first())
            .map(|(ct, t)| (ct.as_str(), t.as_str()))
            .unwrap_or(("application/json", r#"{"message":$context.error.messageString}"#));
        let body = render(template, |name| self.context_variable(name, error, context));
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), content_type.to_owned()));
        }
        headers.push(("x-amzn-RequestId".into(), context.request_id.clone()));
        headers.push(("x-amzn-ErrorType".into(), error.error_type.to_owned()));
        Outgoing {
            status,
            headers,
            body: Bytes::from(body),
        }
    }

    /// The value of `$context.<name>` in a gateway response template.
    fn context_variable(&self, name: &str, error: &GatewayError, context: &Context<'_>) -> Option<String> {
        Some(match name {
            "error.messageString" => match error.message {
                Some(message) => Value::String(message.into()).to_string(),
                None => "null".into(),
            },
            "error.message" => error.message.unwrap_or_default().into(),
            "error.responseType" => error.response_type.into(),
            "requestId" | "extendedRequestId" => context.request_id.clone(),
            "stage" => self.spec.stage.clone(),
            "apiId" => self.spec.api_id.clone(),
            "accountId" => self.spec.account_id.clone(),
            "httpMethod" => context.incoming.method.clone(),
            "resourcePath" => context.resource.clone().unwrap_or_default(),
            "path" => format!("/{}{}", self.spec.stage, context.path),
            "identity.sourceIp" => context.incoming.source_ip.clone(),
            "authorizer.principalId" => context.principal_id.clone().unwrap_or_default(),
            _ => return None,
        })
    }
}

/// The `headers` (last value of each name) and `multiValueHeaders` (all values) maps, or
/// `null` for none, as API Gateway fills both.
fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
    if pairs.is_empty() {
        return (Value::Null, Value::Null);
    }
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// Renders `$context.x`, `$!context.x` and `${context.x}` references; other `context.` and
/// `stageVariables.` references render empty, and anything else is left as written.
fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let after = after.strip_prefix('!').unwrap_or(after);
        let (braced, after) = match after.strip_prefix('{') {
            Some(inner) => (true, inner),
            None => (false, after),
        };
        let length = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(after.len());
        let name = after[..length].trim_end_matches('.');
        let closed = !braced || after[name.len()..].starts_with('}');
        let known = name
            .strip_prefix("context.")
            .map(|n| lookup(n).unwrap_or_default());
        let known = known.or_else(|| name.strip_prefix("stageVariables.").map(|_| String::new()));
        match known {
            Some(value) if closed && !name.is_empty() => {
                out.push_str(&value);
                let consumed = name.len() + usize::from(braced);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = &rest[dollar + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads a Lambda proxy integration response.
pub fn proxy_response(output: &[u8]) -> Result<Outgoing, String> {
    let output: Value = serde_json::from_slice(output).map_err(|e| format!("not JSON: {e}"))?;
    let output = output.as_object().ok_or("not a JSON object")?;
    let status = match output.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => return Err("no statusCode".into()),
    }
    .and_then(|s| u16::try_from(s).ok())
    .filter(|s| (100..600).contains(s))
    .ok_or("statusCode is not an HTTP status")?;

    let mut headers: Vec<(String, String)> = Vec::new();
    match output.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                let values = match values {
                    Value::Array(values) => values.clone(),
                    Value::Null => continue,
                    other => return Err(format!("multiValueHeaders.{name} is not a list: {other}")),
                };
                for value in values {
                    let value = crate::template::scalar_string(&value)
                        .ok_or(format!("multiValueHeaders.{name} holds a non-scalar"))?;
                    headers.push((name.clone(), value));
                }
            }
        }
        Some(_) => return Err("multiValueHeaders is not an object".into()),
    }
    match output.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if value.is_null() || headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    continue;
                }
                let value =
                    crate::template::scalar_string(value).ok_or(format!("headers.{name} is not a scalar"))?;
                headers.push((name.clone(), value));
            }
        }
        Some(_) => return Err("headers is not an object".into()),
    }
    headers.retain(|(name, _)| {
        !["content-length", "transfer-encoding", "connection", "keep-alive"]
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop))
    });
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".into(), "application/json".into()));
    }

    let is_base64 = match output.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isBase64Encoded is not a boolean".into()),
    };
    let body = match output.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if is_base64 => Bytes::from(
            BASE64
                .decode(text)
                .map_err(|e| format!("body is not base64: {e}"))?,
        ),
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(_) => return Err("body is not a string".into()),
    };
    Ok(Outgoing {
        status,
        headers,
        body,
    })
}

/// `09/Apr/2015:12:34:56 +0000`, as in `requestContext.requestTime`.
fn request_time(epoch_seconds: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (epoch_seconds / 86_400) as i64;
    let seconds = epoch_seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn request_time_is_formatted_as_api_gateway_does() {
        assert_eq!(request_time(1_428_582_896), "09/Apr/2015:12:34:56 +0000");
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(1_709_210_096), "29/Feb/2024:12:34:56 +0000");
    }

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

    #[test]
    fn proxy_responses_merge_headers_and_decode_base64() {
        let out = proxy_response(
            br#"{"statusCode": 201, "headers": {"a": "1", "B": "x", "content-length": "3"},
                "multiValueHeaders": {"b": ["2", "3"]}, "body": "aGk=", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(out.status, 201);
        assert_eq!(out.body, Bytes::from_static(b"hi"));
        assert_eq!(
            out.headers,
            vec![
                ("b".to_owned(), "2".to_owned()),
                ("b".to_owned(), "3".to_owned()),
                ("a".to_owned(), "1".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned())
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
            assert!(proxy_response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
