//! Who is calling: the authorizer's verdict or a verified Bearer token, the issuer it must
//! carry, the client's address, and the caller checked against the store.

use lambda_http::http::header::AUTHORIZATION;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use crate::claims::Issuer;
use crate::claims::{TokenVerifier, bearer_token};
use crate::error::ApiError;
use crate::store::{Caller, UserProfile};
use crate::user::Username;

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

/// Where a request came from, as a session and an event record it: the address API Gateway saw,
/// and a short label of the `User-Agent` ([`crate::events::device_label`]; the header itself is
/// not kept).
#[cfg(feature = "devices")]
pub fn client(req: &Request) -> crate::events::Client {
    let user_agent = req
        .headers()
        .get(lambda_http::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    crate::events::Client {
        ip: client_address(req).map(|ip| ip.to_string()),
        device: crate::events::device_label(user_agent),
    }
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
pub(super) fn from_verdict(
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
