//! The refresh token in a cookie: where it is presented, the CSRF defence of the routes that
//! read it, and the `Set-Cookie` headers that scope it to those routes.

use lambda_http::http::header::{COOKIE, ORIGIN, SET_COOKIE};
use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::session::CookieSameSite;

use super::body::*;
use super::cors::CorsConfig;

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
