//! `POST /token`: login. Verifies the password and answers 200 with a signed access token.
//! An unknown user and a wrong password get the same 401 body, after the same argon2 work.
//!
//! Brute-force protection: failed logins are counted per username, whether it exists or not,
//! in fixed windows of `LOGIN_WINDOW_SECONDS`. After `LOGIN_MAX_FAILURES` failures in a window
//! the route answers 429 with `Retry-After` (the rest of the window) without checking the
//! password; a successful login clears the count.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use shared::http::{Responder, credentials, json};
use shared::password::PasswordHasher;
use shared::store::dynamodb::DynamoUserStore;
use shared::store::{LoginAttempts, UserStore};
use shared::user::{Password, Username};
use shared::{CorsConfig, LoginThrottleConfig, PasswordConfig, TokenConfig, TokenIssuer};

/// Everything a login needs, built once at cold start.
pub struct App {
    pub store: Arc<dyn UserStore>,
    pub attempts: Arc<dyn LoginAttempts>,
    pub throttle: LoginThrottleConfig,
    pub hasher: PasswordHasher,
    pub issuer: TokenIssuer,
    pub responder: Responder,
}

/// The 200 body (the OAuth 2.0 token response's `token_type` and `expires_in`, RFC 6749 §5.1).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub token: String,
    pub user_id: String,
    pub token_type: String,
    pub expires_in: u64,
}

impl App {
    /// Reads the configuration and builds the store, hasher and issuer; fails naming a bad variable.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let store = Arc::new(DynamoUserStore::from_env().await?);
        Ok(Self {
            store: store.clone(),
            attempts: store,
            throttle: LoginThrottleConfig::from_env()?,
            hasher: PasswordHasher::new(&PasswordConfig::from_env()?)?,
            issuer: TokenIssuer::new(&TokenConfig::from_env()?)?,
            responder: Responder::new(CorsConfig::from_env()?),
        })
    }
}

/// The Lambda handler: every outcome, error or not, is an HTTP response.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(app
        .responder
        .serve(&req, Method::POST, |req| login(app, req))
        .await)
}

async fn login(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let input = credentials(req)?;
    let password = Password::parse_existing(input.password).map_err(ApiError::BadRequest)?;
    // A name that breaks the username rules cannot exist: treat it as unknown, not as a 400.
    // Nothing is counted for it either: no password can ever match it.
    let Ok(username) = Username::parse(&input.username) else {
        app.hasher.verify(password, None).await?;
        return Err(ApiError::BadCredentials);
    };
    let key = username.key();
    let now = jsonwebtoken::get_current_timestamp();
    let window_secs = app.throttle.window.as_secs();
    let window = now / window_secs;
    let window_end = (window + 1) * window_secs;
    let failures = app.attempts.failures(&key, window).await?;
    if failures >= app.throttle.max_failures {
        tracing::warn!(failures, "login refused: too many failures in this window");
        return Err(ApiError::TooManyAttempts {
            retry_after: window_end - now,
        });
    }

    let user = app.store.find_by_username(&username).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = app.hasher.verify(password, stored_hash).await?;
    let Some(user) = user.filter(|_| verified) else {
        let failures = app
            .attempts
            .record_failure(&key, window, window_end + window_secs)
            .await?;
        tracing::info!(failures, "login failed");
        return Err(ApiError::BadCredentials);
    };
    if failures > 0 {
        app.attempts.clear_failures(&key, window).await?;
    }
    let issued = app
        .issuer
        .issue_access(&user.id, &user.username)
        .map_err(|e| ApiError::Internal(e.into()))?;
    tracing::info!(user_id = %user.id, jti = %issued.claims.jti, "token issued");
    Ok(json(
        StatusCode::OK,
        &TokenResponse {
            token: issued.token,
            user_id: user.id,
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
        },
    ))
}
