//! `GET /protected`: answers the caller's `{id, username}`.
//!
//! Behind API Gateway the identity comes from the authorizer's context in
//! `requestContext.authorizer`, which API Gateway writes and clients cannot forge; the verdict is
//! refused once the token's `exp` (in that context) has passed, since API Gateway may serve a
//! cached Allow for longer. Without that context (a function URL under `cargo lambda watch`, a
//! direct invoke) the Bearer token is verified here with the same verifier, so the route is
//! never open. Either way the user must still exist.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::http::header::AUTHORIZATION;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::clock::{Clock, SystemClock};
use shared::config::{Env, public_keys};
use shared::error::ApiError;
use shared::http::{Responder, issuer_for, json};
use shared::store::UserStore;
use shared::store::dynamodb::DynamoUserStore;
use shared::user::Username;
use shared::{CorsConfig, TokenSettings, TokenVerifier, bearer_token};

/// Everything the route needs, built once at cold start.
pub struct App {
    pub store: Arc<dyn UserStore>,
    pub verifier: TokenVerifier,
    /// `JWT_ISSUER`; when unset, tokens must be issued by the stage the request came through.
    pub issuer: Option<String>,
    /// `AWS_REGION`, for the stage's URL.
    pub region: String,
    pub responder: Responder,
    pub clock: Arc<dyn Clock>,
}

/// The 200 body.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Caller {
    pub id: String,
    pub username: String,
}

impl App {
    /// Reads the configuration and builds the store and verifier; fails naming a bad variable.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let settings = TokenSettings::from_env()?;
        Ok(Self {
            store: Arc::new(DynamoUserStore::from_env().await?),
            verifier: TokenVerifier::new(&settings, public_keys(&Env)?),
            issuer: settings.issuer,
            region: std::env::var("AWS_REGION").unwrap_or_default(),
            responder: Responder::new(CorsConfig::from_env()?),
            clock: Arc::new(SystemClock),
        })
    }
}

/// The Lambda handler: every outcome, error or not, is an HTTP response.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(app
        .responder
        .serve(&req, Method::GET, |req| whoami(app, req))
        .await)
}

async fn whoami(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = identify(app, req)?;
    let username = Username::parse(&caller.username).map_err(|_| ApiError::InvalidToken)?;
    // The name may have been deleted and taken again: the id must match too.
    let user = app
        .store
        .find_profile(&username)
        .await?
        .filter(|user| user.id == caller.id)
        .ok_or(ApiError::UserGone)?;
    Ok(json(
        StatusCode::OK,
        &Caller {
            id: user.id,
            username: user.username,
        },
    ))
}

/// Who is calling: the API Gateway authorizer's verdict if there is one, else the Bearer token.
fn identify(app: &App, req: &Request) -> Result<Caller, ApiError> {
    if let Some(RequestContext::ApiGatewayV1(context)) = req.request_context_ref() {
        let fields = &context.authorizer.fields;
        if let Some(principal) = fields.get("principalId").and_then(Value::as_str) {
            return from_verdict(app, principal, fields);
        }
    }
    let header = req.headers().get(AUTHORIZATION).ok_or(ApiError::MissingToken)?;
    let token = header
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or(ApiError::InvalidToken)?;
    let issuer = issuer_for(app.issuer.as_deref(), &app.region, req)?;
    let claims = app.verifier.verify_access(token, &issuer).map_err(|reason| {
        tracing::info!(%reason, "token rejected");
        ApiError::InvalidToken
    })?;
    Ok(Caller {
        id: claims.sub,
        username: claims.username,
    })
}

/// The caller named by the authorizer's context: `sub` matching `principalId`, `username`, and
/// an `exp` not yet passed (API Gateway writes context values as strings).
fn from_verdict(
    app: &App,
    principal: &str,
    fields: &std::collections::HashMap<String, Value>,
) -> Result<Caller, ApiError> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let exp = match fields.get("exp") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let (Some(sub), Some(username), Some(exp)) = (text("sub"), text("username"), exp) else {
        tracing::warn!("authorizer context lacks sub, username or exp");
        return Err(ApiError::InvalidToken);
    };
    if sub != principal {
        tracing::warn!("authorizer context sub differs from principalId");
        return Err(ApiError::InvalidToken);
    }
    if exp + app.verifier.leeway() < app.clock.now() {
        tracing::info!(exp, "authorizer verdict outlived its token");
        return Err(ApiError::InvalidToken);
    }
    Ok(Caller {
        id: sub.to_owned(),
        username: username.to_owned(),
    })
}
