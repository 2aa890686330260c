//! JSON requests and responses for the Lambda proxy integration: body limits, content type,
//! credential parsing, security and CORS headers, and turning an [`ApiError`] into a response.

use lambda_http::http::header::{CONTENT_TYPE, ORIGIN};
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::CorsConfig;
use crate::error::ApiError;

/// Largest accepted request body. Credentials fit in well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// `{"msg": ...}`, the error body the seed tutorial's clients read.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub msg: String,
}

/// Builds responses: JSON, `no-store`, and CORS headers for allowed origins.
#[derive(Debug, Clone, Default)]
pub struct Responder {
    cors: CorsConfig,
}

impl Responder {
    pub fn new(cors: CorsConfig) -> Self {
        Self { cors }
    }

    /// The response for `result`, with CORS headers for the request's `Origin`. Server errors
    /// are logged with their cause chain; client errors only by status.
    pub fn finish(
        &self,
        request_headers: &HeaderMap,
        result: Result<Response<Body>, ApiError>,
    ) -> Response<Body> {
        let mut response = result.unwrap_or_else(|err| {
            let status = err.status();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), error = %error_chain(&err), "request failed");
            } else {
                tracing::info!(status = status.as_u16(), msg = %err, "request rejected");
            }
            let mut response = json(status, &ErrorBody { msg: err.to_string() });
            for (name, value) in err.headers() {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        });
        self.add_cors(request_headers, response.headers_mut());
        tracing::trace!(status = response.status().as_u16(), "response ready");
        response
    }

    /// Serves one route that accepts `method`: answers a CORS preflight, refuses other methods
    /// with 405, otherwise runs `route` and turns its result into the response.
    pub async fn serve<'r, F, Fut>(&self, req: &'r Request, method: Method, route: F) -> Response<Body>
    where
        F: FnOnce(&'r Request) -> Fut,
        Fut: std::future::Future<Output = Result<Response<Body>, ApiError>>,
    {
        if req.method() == Method::OPTIONS {
            return self.preflight(req.headers(), &method);
        }
        let result = if req.method() == method {
            route(req).await
        } else {
            Err(ApiError::MethodNotAllowed { allow: method })
        };
        self.finish(req.headers(), result)
    }

    /// The answer to a CORS preflight (`OPTIONS`) for a route that accepts `method`.
    fn preflight(&self, request_headers: &HeaderMap, method: &Method) -> Response<Body> {
        let mut response = empty(StatusCode::NO_CONTENT);
        let headers = response.headers_mut();
        if self.add_cors(request_headers, headers)
            && let Ok(methods) = HeaderValue::from_str(&format!("{method}, OPTIONS"))
        {
            headers.insert("access-control-allow-methods", methods);
            headers.insert(
                "access-control-allow-headers",
                HeaderValue::from_static("authorization, content-type"),
            );
            headers.insert("access-control-max-age", HeaderValue::from_static("600"));
        }
        response
    }

    fn add_cors(&self, request_headers: &HeaderMap, headers: &mut HeaderMap) -> bool {
        let Some(origin) = request_headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
            return false;
        };
        let allowed = &self.cors.allowed_origins;
        let value = if allowed.iter().any(|o| o == "*") {
            HeaderValue::from_static("*")
        } else if allowed.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            match HeaderValue::from_str(origin) {
                Ok(v) => v,
                Err(_) => return false,
            }
        } else {
            return false;
        };
        headers.insert("access-control-allow-origin", value);
        headers.append("vary", HeaderValue::from_static("Origin"));
        true
    }
}

pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    add_security_headers(response.headers_mut());
    response
}

fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
}

/// A JSON response with `status`. Responses carry credentials or identities: never cached.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| r#"{"msg":"Internal server error"}"#.into());
    let mut response = empty(status);
    *response.body_mut() = Body::Text(text);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The request body as bytes, after checking its content type and size. API Gateway's
/// `isBase64Encoded` bodies arrive decoded (lambda_http does it), so they parse like any other.
fn json_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { max: MAX_BODY_BYTES });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("Request body is required".into()));
    }
    Ok(bytes)
}

/// The issuer of the tokens a request deals in: `configured` (`JWT_ISSUER`) when set, else the
/// URL of the API Gateway stage the request came through, in `region`. A request with neither
/// (a function URL without `JWT_ISSUER`) is a configuration error, a 500.
pub fn issuer_for(configured: Option<&str>, region: &str, req: &Request) -> Result<String, ApiError> {
    if let Some(issuer) = configured {
        return Ok(issuer.to_owned());
    }
    if let Some(lambda_http::request::RequestContext::ApiGatewayV1(context)) =
        lambda_http::RequestExt::request_context_ref(req)
        && let (Some(api), Some(stage)) = (&context.apiid, &context.stage)
    {
        return Ok(crate::config::stage_url(region, api, stage));
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "JWT_ISSUER is not set and the request did not come through an API Gateway stage"
    )))
}

/// `{"username": ..., "password": ...}` as the client sent them; both non-empty strings.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

const NOT_AN_OBJECT: &str = "Request body must be a JSON object with \"username\" and \"password\"";

/// The members of a JSON object in document order, repeated names kept, so that unknown and
/// duplicate fields are found here rather than by reading serde's error messages.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> serde::de::Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Parses the credentials body of `POST /users` and `POST /token`. Every failure is a 4xx
/// whose message names the field, never echoing a value.
pub fn credentials(req: &Request) -> Result<Credentials, ApiError> {
    let bytes = json_bytes(req)?;
    let Members(members) = serde_json::from_slice(bytes).map_err(|_| {
        // Refused as soon as it is not an object: say "not an object" only if it is JSON at all.
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        ApiError::BadRequest(if is_json {
            NOT_AN_OBJECT.into()
        } else {
            "Request body is not valid JSON".into()
        })
    })?;
    let (mut username, mut password) = (None, None);
    for (name, value) in members {
        let slot = match name.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            _ => {
                return Err(ApiError::BadRequest(
                    "Request body may contain only \"username\" and \"password\"".into(),
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(ApiError::BadRequest("Request body has a duplicate field".into()));
        }
    }
    Ok(Credentials {
        username: string_field("username", username)?,
        password: string_field("password", password)?,
    })
}

fn string_field(name: &str, value: Option<Value>) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Err(ApiError::BadRequest(format!("\"{name}\" is required"))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(ApiError::BadRequest(format!("\"{name}\" must not be empty")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::BadRequest(format!("\"{name}\" must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder().method("POST").uri("/users");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(Body::Text(body.into())).unwrap()
    }

    fn rejection(req: &Request) -> (u16, String) {
        let err = credentials(req).unwrap_err();
        (err.status().as_u16(), err.to_string())
    }

    #[test]
    fn valid_credentials_parse() {
        let c = credentials(&post(
            Some("application/json; charset=utf-8"),
            r#"{"username":"bob","password":"pw"}"#,
        ))
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw"));
    }

    #[test]
    fn wrong_or_missing_content_type_is_415() {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert_eq!(
                rejection(&post(ct, r#"{"username":"bob","password":"pw"}"#)).0,
                415
            );
        }
    }

    #[test]
    fn bodies_that_are_not_credentials_objects_are_400_with_a_message() {
        let cases = [
            ("{not json", "Request body is not valid JSON"),
            ("[1, 2", "Request body is not valid JSON"),
            (
                "[]",
                "Request body must be a JSON object with \"username\" and \"password\"",
            ),
            (
                "42",
                "Request body must be a JSON object with \"username\" and \"password\"",
            ),
            (
                "null",
                "Request body must be a JSON object with \"username\" and \"password\"",
            ),
            ("", "Request body is required"),
            (r#"{"password":"pw"}"#, "\"username\" is required"),
            (r#"{"username":null,"password":"pw"}"#, "\"username\" is required"),
            (
                r#"{"username":7,"password":"pw"}"#,
                "\"username\" must be a string",
            ),
            (
                r#"{"username":"bob","password":["pw"]}"#,
                "\"password\" must be a string",
            ),
            (
                r#"{"username":"","password":"pw"}"#,
                "\"username\" must not be empty",
            ),
            (
                r#"{"username":"bob","password":"pw","admin":true}"#,
                "Request body may contain only \"username\" and \"password\"",
            ),
            (
                r#"{"username":"bob","username":"eve","password":"pw"}"#,
                "Request body has a duplicate field",
            ),
        ];
        for (body, msg) in cases {
            assert_eq!(
                rejection(&post(Some("application/json"), body)),
                (400, msg.into()),
                "{body}"
            );
        }
    }

    #[test]
    fn oversized_body_is_413() {
        let body = format!(
            r#"{{"username":"bob","password":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(rejection(&post(Some("application/json"), &body)).0, 413);
    }

    #[test]
    fn error_responses_are_json_msg_with_no_store() {
        let response = Responder::default().finish(&HeaderMap::new(), Err(ApiError::UsernameTaken));
        assert_eq!(response.status(), 409);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let Body::Text(text) = response.body() else {
            panic!("expected a text body")
        };
        assert_eq!(text, r#"{"msg":"Username is already taken"}"#);
    }

    #[test]
    fn cors_headers_only_for_allowed_origins_and_on_errors_too() {
        let responder = Responder::new(CorsConfig {
            allowed_origins: vec!["https://app.example.com".into()],
        });
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
        let response = responder.finish(&headers, Err(ApiError::BadCredentials));
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(response.headers()["vary"], "Origin");

        headers.insert(ORIGIN, HeaderValue::from_static("https://evil.example.com"));
        let response = responder.finish(&headers, Err(ApiError::BadCredentials));
        assert!(response.headers().get("access-control-allow-origin").is_none());
    }
}
