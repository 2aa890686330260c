//! JSON requests and responses for the Lambda proxy integration: body limits, content type,
//! credential parsing, security and CORS headers, and turning an [`ApiError`] into a response.

use lambda_http::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE};
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::claims::{TokenVerifier, bearer_token};
use crate::config::{CookieSameSite, CorsConfig, Issuer};
use crate::error::ApiError;
use crate::store::{Caller, UserProfile};
use crate::user::Username;

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

/// The request body as bytes, after checking its content type and size. API Gateway's
/// `isBase64Encoded` bodies arrive decoded (lambda_http does it), so they parse like any other.
fn json_bytes(req: &Request) -> Result<&[u8], ApiError> {
    require_json_content_type(req)?;
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { max: MAX_BODY_BYTES });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("Request body is required".into()));
    }
    Ok(bytes)
}

/// The issuer of the tokens a request deals in: the fixed one (`JWT_ISSUER`), else the URL of
/// the API Gateway stage the request came through. A request with neither (a function URL
/// without `JWT_ISSUER`) is a configuration error, a 500.
pub fn issuer_for(issuer: &Issuer, req: &Request) -> Result<String, ApiError> {
    if let Some(fixed) = issuer.fixed() {
        return Ok(fixed.to_owned());
    }
    if let Some(lambda_http::request::RequestContext::ApiGatewayV1(context)) =
        lambda_http::RequestExt::request_context_ref(req)
        && let (Some(api), Some(stage)) = (&context.apiid, &context.stage)
    {
        return Ok(issuer.of_stage(api, stage));
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "JWT_ISSUER is not set and the request did not come through an API Gateway stage"
    )))
}

/// The address the request came from, as API Gateway saw it (`requestContext.identity.sourceIp`
/// of a REST API, `requestContext.http.sourceIp` of an HTTP API or a function URL); `None` for a
/// request without one (a direct invoke) or with one that is not an IP address.
pub fn client_address(req: &Request) -> Option<std::net::IpAddr> {
    let source = match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        _ => None,
    };
    source?.trim().parse().ok()
}

/// The caller of a route behind the authorizer: who the access token names, its epoch and its
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub epoch: u64,
    /// The token's `sid`.
    pub session_id: String,
}

/// Who is calling: the API Gateway authorizer's verdict if there is one (API Gateway writes
/// `requestContext.authorizer`; clients cannot), else the Bearer token, verified here with
/// `verifier` (a function URL under `cargo lambda watch`, a direct invoke), so the route is never
/// open. `now` refuses a cached verdict whose token has expired.
pub fn identify(
    req: &Request,
    verifier: &TokenVerifier,
    issuer: &Issuer,
    now: u64,
) -> Result<Identity, ApiError> {
    if let Some(RequestContext::ApiGatewayV1(context)) = req.request_context_ref() {
        let fields = &context.authorizer.fields;
        if let Some(principal) = fields.get("principalId").and_then(Value::as_str) {
            return from_verdict(principal, fields, verifier.leeway(), now);
        }
    }
    let header = req.headers().get(AUTHORIZATION).ok_or(ApiError::MissingToken)?;
    let token = header
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or(ApiError::InvalidToken)?;
    let issuer = issuer_for(issuer, req)?;
    let claims = verifier.verify_access(token, &issuer).map_err(|reason| {
        tracing::info!(%reason, "token rejected");
        ApiError::InvalidToken
    })?;
    Ok(Identity {
        user_id: claims.sub,
        username: claims.username,
        epoch: claims.epoch,
        session_id: claims.sid,
    })
}

impl Identity {
    /// The name the token carries, as the store keys it; a token with a name that breaks the
    /// rules is invalid.
    pub fn username(&self) -> Result<Username, ApiError> {
        Username::parse(&self.username).map_err(|_| ApiError::InvalidToken)
    }
}

/// The stored user an access token names, given what the store `found` under its name and
/// session id: the user still there (the name may have been deleted and taken again, so the id
/// must match too), the token of the user's current session epoch (no "log out everywhere" or
/// password change since it was issued), and its session live at `now` (not logged out, not
/// revoked by reuse detection, not past its absolute lifetime).
pub fn current_user(
    identity: &Identity,
    found: Caller<UserProfile>,
    now: u64,
) -> Result<UserProfile, ApiError> {
    let user = found
        .user
        .filter(|user| user.id == identity.user_id)
        .ok_or(ApiError::UserGone)?;
    if user.epoch != identity.epoch {
        tracing::info!(
            token_epoch = identity.epoch,
            user_epoch = user.epoch,
            "token of an ended session epoch"
        );
        return Err(ApiError::InvalidToken);
    }
    if !found.session.is_some_and(|session| session.is_live(now)) {
        tracing::info!(session_id = %identity.session_id, "token of an ended session");
        return Err(ApiError::InvalidToken);
    }
    Ok(user)
}

/// The caller named by the authorizer's context: `sub` matching `principalId`, `username`, an
/// `exp` not yet passed, the `sid` and the `epoch` (API Gateway writes context values as
/// strings; an absent epoch is 0, which is refused once the user's epoch has moved on).
fn from_verdict(
    principal: &str,
    fields: &std::collections::HashMap<String, Value>,
    leeway: u64,
    now: u64,
) -> Result<Identity, ApiError> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let number = |name: &str| match fields.get(name) {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let (Some(sub), Some(username), Some(exp), Some(sid)) =
        (text("sub"), text("username"), number("exp"), text("sid"))
    else {
        tracing::warn!("authorizer context lacks sub, username, exp or sid");
        return Err(ApiError::InvalidToken);
    };
    if sub != principal {
        tracing::warn!("authorizer context sub differs from principalId");
        return Err(ApiError::InvalidToken);
    }
    if exp + leeway < now {
        tracing::info!(exp, "authorizer verdict outlived its token");
        return Err(ApiError::InvalidToken);
    }
    let epoch = match fields.get("epoch") {
        None => 0,
        Some(_) => number("epoch").ok_or_else(|| {
            tracing::warn!("authorizer context epoch is not a whole number");
            ApiError::InvalidToken
        })?,
    };
    Ok(Identity {
        user_id: sub.to_owned(),
        username: username.to_owned(),
        epoch,
        session_id: sid.to_owned(),
    })
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

/// The members of the request's JSON object body, each named in `allowed` at most once. Every
/// failure is a 4xx whose message names the fields, never echoing a value.
fn object(req: &Request, allowed: &[&str], shape: &str) -> Result<Vec<(String, Value)>, ApiError> {
    let bytes = json_bytes(req)?;
    let Members(members) = serde_json::from_slice(bytes).map_err(|_| {
        // Refused as soon as it is not an object: say "not an object" only if it is JSON at all.
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        ApiError::BadRequest(if is_json {
            format!("Request body must be a JSON object with {shape}")
        } else {
            "Request body is not valid JSON".into()
        })
    })?;
    for (i, (name, _)) in members.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Request body may contain only {shape}"
            )));
        }
        if members[..i].iter().any(|(earlier, _)| earlier == name) {
            return Err(ApiError::BadRequest("Request body has a duplicate field".into()));
        }
    }
    Ok(members)
}

fn take(members: &mut Vec<(String, Value)>, name: &str) -> Option<Value> {
    let i = members.iter().position(|(n, _)| n == name)?;
    Some(members.swap_remove(i).1)
}

/// Parses the credentials body of `POST /users`: exactly `username` and `password`.
pub fn credentials(req: &Request) -> Result<Credentials, ApiError> {
    let mut members = object(req, &["username", "password"], CREDENTIALS_SHAPE)?;
    Ok(Credentials {
        username: string_field("username", take(&mut members, "username"))?,
        password: string_field("password", take(&mut members, "password"))?,
    })
}

const CREDENTIALS_SHAPE: &str = "\"username\" and \"password\"";

/// A login (`POST /token`): the credentials, and whether the client asked for the refresh token
/// in the response body (`"refresh_token_in_body": true`) instead of a cookie.
#[derive(Debug)]
pub struct Login {
    pub credentials: Credentials,
    pub refresh_token_in_body: bool,
}

/// Parses the body of `POST /token`: `username`, `password`, and optionally
/// `refresh_token_in_body` (a boolean).
pub fn login(req: &Request) -> Result<Login, ApiError> {
    let shape = "\"username\" and \"password\" (and optionally \"refresh_token_in_body\")";
    let mut members = object(req, &["username", "password", "refresh_token_in_body"], shape)?;
    let refresh_token_in_body = match take(&mut members, "refresh_token_in_body") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "\"refresh_token_in_body\" must be true or false".into(),
            ));
        }
    };
    Ok(Login {
        credentials: Credentials {
            username: string_field("username", take(&mut members, "username"))?,
            password: string_field("password", take(&mut members, "password"))?,
        },
        refresh_token_in_body,
    })
}

/// A password change (`POST /password`). `Debug` never shows the passwords.
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}

/// Parses the body of `POST /password`: exactly `current_password` and `new_password`.
pub fn password_change(req: &Request) -> Result<PasswordChange, ApiError> {
    let shape = "\"current_password\" and \"new_password\"";
    let mut members = object(req, &["current_password", "new_password"], shape)?;
    Ok(PasswordChange {
        current_password: string_field("current_password", take(&mut members, "current_password"))?,
        new_password: string_field("new_password", take(&mut members, "new_password"))?,
    })
}

/// Where a refresh token came from: the request body (a client that asked for it there) or the
/// cookie (a browser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Body,
    Cookie,
}

/// The refresh token a `POST /token/refresh` or `POST /logout` presents: `{"refresh_token": ...}`
/// in the body, else the cookie. The body is a JSON object either way (`{}` when the cookie
/// carries the token), which a cross-site form cannot send without a CORS preflight; a request
/// that relies on the cookie must also come from an allowed browser origin, or from no browser at
/// all (see [`check_cookie_request`]), and carry one `refresh_token` cookie at most (see
/// [`refresh_cookie`]).
pub fn presented_refresh_token(
    req: &Request,
    cors: &CorsConfig,
) -> Result<(Option<String>, Delivery), ApiError> {
    let mut members = object(req, &["refresh_token"], "an optional \"refresh_token\"")?;
    match take(&mut members, "refresh_token") {
        None | Some(Value::Null) => {
            check_cookie_request(req, cors)?;
            Ok((refresh_cookie(req.headers())?, Delivery::Cookie))
        }
        Some(Value::String(token)) => Ok((Some(token), Delivery::Body)),
        Some(_) => Err(ApiError::BadRequest("\"refresh_token\" must be a string".into())),
    }
}

/// 415 unless the request says `Content-Type: application/json` (parameters such as `charset`
/// allowed).
fn require_json_content_type(req: &Request) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// CSRF defence of the cookie-authenticated routes: a request with an `Origin` (every browser
/// sends one with a `POST`) must come from one of the configured origins, named exactly (`*`
/// allows no cookie-carrying request). Requests without `Origin` come from no browser (curl, a
/// server), which cannot be forged into sending the victim's cookie.
pub fn check_cookie_request(req: &Request, cors: &CorsConfig) -> Result<(), ApiError> {
    require_json_content_type(req)?;
    let Some(origin) = req.headers().get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if cors.allows_exactly(origin) {
        Ok(())
    } else {
        tracing::warn!(origin = %origin, "cookie-carrying request from an origin not allowed");
        Err(ApiError::OriginNotAllowed)
    }
}

/// The name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// The routes the cookie is sent to (and no other), under the API's base path.
pub const COOKIE_ROUTES: [&str; 2] = ["/token/refresh", "/logout"];

/// The value of the refresh-token cookie the request carries, if any. More than one is refused
/// (400), never resolved by their order: a site that can set cookies for a parent domain (a
/// sibling subdomain) can plant its own `refresh_token` beside the user's ("cookie tossing"),
/// and a server that picked one could log the victim in to the attacker's session. A legitimate
/// browser sends one: each route gets only the cookie whose `Path` it is.
pub fn refresh_cookie(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim());
    let first = values.next();
    if values.next().is_some() {
        tracing::warn!("request with more than one refresh_token cookie refused (cookie tossing?)");
        return Err(ApiError::DuplicateRefreshCookie);
    }
    Ok(first.filter(|value| !value.is_empty()).map(str::to_owned))
}

/// The path the client put in front of the route: the stage (`/v1`) on the `execute-api` URL, a
/// custom domain's base path, or nothing (the local API, a function URL).
pub fn base_path(req: &Request) -> String {
    let Some(RequestContext::ApiGatewayV1(context)) = req.request_context_ref() else {
        return String::new();
    };
    let (Some(path), Some(resource)) = (context.path.as_deref(), context.resource_path.as_deref()) else {
        return String::new();
    };
    path.trim_end_matches('/')
        .strip_suffix(resource.trim_end_matches('/'))
        .map(|prefix| prefix.trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// Sets (with `Some(token)`, for `max_age` seconds) or clears (`None`) the refresh-token cookie
/// on each route that reads it: one `Set-Cookie` per route, so the cookie goes to those routes
/// only. `HttpOnly` (no script reads it), `Secure` (HTTPS only; browsers treat `localhost` as
/// secure), `SameSite` as configured.
pub fn set_refresh_cookies(
    response: &mut Response<Body>,
    req: &Request,
    same_site: CookieSameSite,
    token: Option<(&str, u64)>,
) {
    let base = base_path(req);
    let (value, max_age) = token.unwrap_or(("", 0));
    for route in COOKIE_ROUTES {
        let cookie = format!(
            "{REFRESH_COOKIE}={value}; Path={base}{route}; Max-Age={max_age}; HttpOnly; Secure; SameSite={}",
            same_site.as_str()
        );
        if let Ok(header) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, header);
        }
    }
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
