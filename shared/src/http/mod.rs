//! HTTP for the Lambda proxy integration, by job: responses (security and CORS headers, an
//! [`ApiError`] turned into a response, here), request bodies ([`body`]), the caller's identity
//! ([`identity`]) and the refresh cookie ([`cookies`]).

use lambda_http::http::header::{CONTENT_TYPE, ORIGIN};
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

mod body;
mod cookies;
mod cors;
mod identity;

pub use body::{
    AccountDeletion, Credentials, EmailChange, Fields, Forgotten, LinkToken, Login, MAX_BODY_BYTES,
    PasswordChange, PasswordReset, SignUp, account_deletion, credentials, email_change, fields, forgotten,
    link_token, login, password_change, password_reset, sign_up,
};
pub use cookies::{
    COOKIE_ROUTES, Delivery, REFRESH_COOKIE, base_path, check_cookie_request, presented_refresh_token,
    refresh_cookie, set_refresh_cookies,
};
pub use cors::CorsConfig;
#[cfg(feature = "devices")]
pub use identity::client;
pub use identity::{Identity, client_address, current_user, identify, issuer_for};

/// A route as its function serves it. `template.yaml` says where it is (the path, the method,
/// whether the authorizer guards it); the function says what it answers there: the status of
/// success and the status of every error its handler can return. `tests/suite/openapi.rs` holds
/// `openapi.yaml` to both, and in debug builds [`Responder::serve`] refuses an answer its route
/// does not declare, so every test that makes a handler fail also checks the declaration.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// The template's resource path, such as `/token/refresh`.
    pub path: &'static str,
    pub success: StatusCode,
    /// The statuses of the [`ApiError`]s the handler can return (API Gateway's own answers, such
    /// as the authorizer's 401 or throttling's 429, are not the function's to declare).
    pub errors: &'static [StatusCode],
}

/// `{"msg": ...}`, the error body the seed tutorial's clients read.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub msg: String,
}

/// Builds responses: JSON, `no-store`, and CORS headers for allowed origins.
#[derive(Debug, Clone, Default)]
pub struct Responder {
    cors: CorsConfig,
    /// Whether browsers may send cookies (`Access-Control-Allow-Credentials`).
    credentials: bool,
}

impl Responder {
    pub fn new(cors: CorsConfig) -> Self {
        Self {
            cors,
            credentials: false,
        }
    }

    /// A responder for routes that set or read cookies: origins named in the configuration get
    /// `Access-Control-Allow-Credentials: true` with their own origin; `*` never does (browsers
    /// refuse credentials with `*`), so with `*` alone such routes work from other origins only
    /// without cookies.
    pub fn with_credentials(cors: CorsConfig) -> Self {
        Self {
            cors,
            credentials: true,
        }
    }

    pub fn cors(&self) -> &CorsConfig {
        &self.cors
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

    /// Serves `route`: answers a CORS preflight, refuses other methods with 405 (API Gateway
    /// never routes them here; a function URL may), otherwise runs `handler` and turns its result
    /// into the response.
    pub async fn serve<'r, F, Fut>(&self, req: &'r Request, route: &Route, handler: F) -> Response<Body>
    where
        F: FnOnce(&'r Request) -> Fut,
        Fut: std::future::Future<Output = Result<Response<Body>, ApiError>>,
    {
        if req.method() == Method::OPTIONS {
            return self.preflight(req.headers(), &route.method);
        }
        let result = if req.method() == route.method {
            let result = handler(req).await;
            // The response itself is not printed: a success body holds tokens.
            let (status, what) = match &result {
                Ok(response) => (response.status(), String::new()),
                Err(err) => (err.status(), err.to_string()),
            };
            crate::metrics::answered(route.method.as_str(), route.path, status.as_u16());
            debug_assert!(
                status == route.success || route.errors.contains(&status),
                "{} {} answered {status} {what}, which its Route does not declare",
                route.method,
                route.path,
            );
            result
        } else {
            Err(ApiError::MethodNotAllowed {
                allow: route.method.clone(),
            })
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
        let named = self.cors.allows_exactly(origin);
        let value = if self.credentials && named {
            headers.insert(
                "access-control-allow-credentials",
                HeaderValue::from_static("true"),
            );
            HeaderValue::from_str(origin).ok()
        } else if self.cors.allowed_origins.iter().any(|o| o == "*") {
            Some(HeaderValue::from_static("*"))
        } else if named {
            HeaderValue::from_str(origin).ok()
        } else {
            None
        };
        let Some(value) = value else {
            return false;
        };
        headers.insert("access-control-allow-origin", value);
        headers.append("vary", HeaderValue::from_static("Origin"));
        true
    }
}

/// An error and its causes, one line, for a log.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// A response without a body (`204`), with the security headers.
pub fn empty(status: StatusCode) -> Response<Body> {
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
/// A body that cannot be serialised is a 500 with the error body, never a success status.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(error) => {
            tracing::error!(error = %error, "the response body could not be serialised");
            let msg = ApiError::Internal(anyhow::anyhow!("unserialisable body")).to_string();
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({ "msg": msg }).to_string(),
            )
        }
    };
    let mut response = empty(status);
    *response.body_mut() = Body::Text(text);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use lambda_http::http::header::COOKIE;

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
    fn a_body_that_cannot_be_serialised_is_a_500_not_the_success_status() {
        // serde_json refuses a map whose keys are not strings.
        let body = std::collections::HashMap::from([((1, 2), "value")]);
        let response = json(StatusCode::OK, &body);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let Body::Text(text) = response.body() else {
            panic!("{:?}", response.body())
        };
        assert_eq!(text, r#"{"msg":"Internal server error"}"#);
        assert_eq!(
            json(StatusCode::CREATED, &body).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
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

    #[test]
    fn the_refresh_cookie_is_found_among_others_in_any_cookie_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(refresh_cookie(&headers).unwrap(), None);
        headers.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; refresh_token_old=x"),
        );
        assert_eq!(refresh_cookie(&headers).unwrap(), None, "only the exact name");
        headers.append(COOKIE, HeaderValue::from_static("a=1;refresh_token=abc ; b=2"));
        assert_eq!(refresh_cookie(&headers).unwrap().as_deref(), Some("abc"));
        let mut empty = HeaderMap::new();
        empty.insert(COOKIE, HeaderValue::from_static("refresh_token="));
        assert_eq!(
            refresh_cookie(&empty).unwrap(),
            None,
            "a cleared cookie is no token"
        );
    }

    #[test]
    fn two_refresh_cookies_are_refused_in_one_header_or_in_two() {
        for cookies in [
            &["refresh_token=a; refresh_token=b"][..],
            &["refresh_token=a", "refresh_token=b"],
            &["refresh_token=a; theme=dark; refresh_token=a"],
            &["refresh_token=; refresh_token=b"],
        ] {
            let mut headers = HeaderMap::new();
            for cookie in cookies {
                headers.append(COOKIE, HeaderValue::from_static(cookie));
            }
            let err = refresh_cookie(&headers).unwrap_err();
            assert_eq!(err.status(), 400, "{cookies:?}");
        }
    }

    #[test]
    fn credentialed_cors_names_the_origin_and_never_goes_with_a_wildcard() {
        let named = Responder::with_credentials(CorsConfig {
            allowed_origins: vec!["https://app.example.com".into()],
        });
        let wildcard = Responder::with_credentials(CorsConfig {
            allowed_origins: vec!["*".into()],
        });
        let answer = |responder: &Responder, origin: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ORIGIN, HeaderValue::from_static(origin));
            let response = responder.finish(&headers, Err(ApiError::InvalidRefreshToken));
            let get = |name| {
                response
                    .headers()
                    .get(name)
                    .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
            };
            (
                get("access-control-allow-origin"),
                get("access-control-allow-credentials"),
            )
        };
        assert_eq!(
            answer(&named, "https://app.example.com"),
            (Some("https://app.example.com".into()), Some("true".into()))
        );
        assert_eq!(answer(&named, "https://evil.example.com"), (None, None));
        assert_eq!(
            answer(&wildcard, "https://any.example.com"),
            (Some("*".into()), None)
        );
    }

    #[test]
    fn login_bodies_may_ask_for_the_refresh_token_in_the_body_and_nothing_else() {
        let body = |text: &str| login(&post(Some("application/json"), text));
        let plain = body(r#"{"username":"bob","password":"pw"}"#).unwrap();
        assert!(!plain.refresh_token_in_body);
        let asked = body(r#"{"username":"bob","password":"pw","refresh_token_in_body":true}"#).unwrap();
        assert!(asked.refresh_token_in_body);
        for bad in [
            r#"{"username":"bob","password":"pw","refresh_token_in_body":"yes"}"#,
            r#"{"username":"bob","password":"pw","refresh_token":"x"}"#,
        ] {
            assert_eq!(body(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
