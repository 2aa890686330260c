//! `GET /protected`: answers the caller's `{id, username}`.
//!
//! Behind API Gateway the identity comes from the authorizer's context in
//! `requestContext.authorizer`, which API Gateway writes and clients cannot forge; the verdict is
//! refused once the token's `exp` (in that context) has passed, since API Gateway may serve a
//! cached Allow for longer. Without that context (a function URL under `cargo lambda watch`, a
//! direct invoke) the Bearer token is verified here with the same verifier, so the route is
//! never open. Either way the user must still exist, the token's session epoch must still be
//! the user's (no "log out everywhere" or password change since it was issued), and the token's
//! session (`sid`) must still be live (no logout, no reuse detected): the user and the session
//! are read at once, one round trip.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::Issuer;
use shared::clock::{Clock, SystemClock};
use shared::config::Env;
use shared::error::ApiError;
use shared::http::{Responder, Route, current_user, identify, json};
use shared::keys::public_keys;
use shared::store::ReadCaller;
use shared::store::access::Capability;
use shared::store::dynamodb::DynamoUserStore;
use shared::{CorsConfig, TokenSettings, TokenVerifier};

/// What this function may do in the table, and all its `App` holds of the store: its IAM role
/// grants exactly this (`tests/suite/iam.rs` compares it with `template.yaml`).
pub const STORE: &[Capability] = &[Capability::ReadCaller];

/// Everything the route needs, built once at cold start.
pub struct App {
    pub store: Arc<dyn ReadCaller>,
    pub verifier: TokenVerifier,
    /// `JWT_ISSUER`, or the stage each request comes through (`AWS_REGION`).
    pub issuer: Issuer,
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
        shared::metrics::configure_from_env()?;
        Ok(Self {
            store: Arc::new(DynamoUserStore::from_env().await?),
            verifier: TokenVerifier::new(&settings, public_keys(&Env)?),
            issuer: Issuer::from_source(&settings, &Env)?,
            responder: Responder::new(CorsConfig::from_env()?),
            clock: Arc::new(SystemClock),
        })
    }
}

/// What the protected route answers: 401 for a token that is invalid (without the authorizer),
/// of an ended session, or of a user who is gone.
pub static ROUTE: Route = Route {
    method: Method::GET,
    path: "/protected",
    success: StatusCode::OK,
    errors: &[
        StatusCode::UNAUTHORIZED,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ],
};

/// The Lambda handler: every outcome, error or not, is an HTTP response.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(app.responder.serve(&req, &ROUTE, |req| whoami(app, req)).await)
}

async fn whoami(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = identify(req, &app.verifier, &app.issuer, app.clock.now())?;
    let found = app
        .store
        .find_caller(&caller.username()?, &caller.session_id)
        .await?;
    let user = current_user(&caller, found, app.clock.now())?;
    Ok(json(
        StatusCode::OK,
        &Caller {
            id: user.id,
            username: user.username,
        },
    ))
}
