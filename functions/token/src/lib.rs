//! `POST /token`: login. Verifies the password and answers 200 with a signed access token.
//! An unknown user and a wrong password get the same 401 body, after the same argon2 work.
//!
//! Brute-force protection ([`LoginThrottle`]): each attempt is reserved before the password is
//! checked, so at most `LOGIN_MAX_FAILURES` passwords per username are checked in a window,
//! however many requests arrive at once; then 429 with `Retry-After`. A right password clears
//! the count, and a hash made with other argon2 parameters is replaced by one with the
//! configured parameters.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::clock::SystemClock;
use shared::error::ApiError;
use shared::http::{Responder, credentials, json};
use shared::password::{Check, PasswordHasher};
use shared::store::UserStore;
use shared::store::dynamodb::DynamoUserStore;
use shared::throttle::LoginThrottle;
use shared::user::{Password, Username};
use shared::{CorsConfig, LoginThrottleConfig, PasswordConfig, TokenConfig, TokenIssuer};

/// Everything a login needs, built once at cold start.
pub struct App {
    pub store: Arc<dyn UserStore>,
    pub throttle: LoginThrottle,
    pub hasher: PasswordHasher,
    pub issuer: TokenIssuer,
    pub responder: Responder,
}

/// The 200 body (the OAuth 2.0 token response's `token_type` and `expires_in`, RFC 6749 §5.1).
/// `Debug` never shows the token.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub token: String,
    pub user_id: String,
    pub token_type: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"[redacted]")
            .field("user_id", &self.user_id)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl App {
    /// Reads the configuration and builds the store, hasher and issuer; fails naming a bad variable.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let store = Arc::new(DynamoUserStore::from_env().await?);
        Ok(Self {
            store: store.clone(),
            throttle: LoginThrottle::new(LoginThrottleConfig::from_env()?, store, Arc::new(SystemClock)),
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
    let password = Password::parse_existing(input.password)?;
    // A name that breaks the username rules cannot exist: treat it as unknown, not as a 400.
    // Nothing is counted for it either: no password can ever match it.
    let Ok(username) = Username::parse(&input.username) else {
        app.hasher.verify(password, None).await?;
        return Err(ApiError::BadCredentials);
    };
    let attempt = app.throttle.reserve(&username.key()).await?;

    let user = app.store.find_by_username(&username).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let check = app.hasher.verify(password, stored_hash).await?;
    let (Some(user), Check::Right { rehash }) = (user, check) else {
        tracing::info!(attempt = attempt.number, "login failed");
        return Err(ApiError::BadCredentials);
    };
    app.throttle.succeeded(attempt).await;
    if let Some(new_hash) = rehash {
        upgrade_hash(app, &username, &user.password_hash, &new_hash).await;
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

/// Stores the hash made with the configured argon2 parameters in place of `current`; best
/// effort: the login succeeds whatever happens here, and the next login tries again.
async fn upgrade_hash(app: &App, username: &Username, current: &str, new_hash: &str) {
    match app.store.replace_password_hash(username, current, new_hash).await {
        Ok(true) => tracing::info!("password rehashed with the configured argon2 parameters"),
        Ok(false) => tracing::info!("password not rehashed: it changed meanwhile"),
        Err(error) => tracing::warn!(%error, "could not store the rehashed password"),
    }
}
