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
use shared::http::{Responder, credentials, issuer_for, json};
use shared::keystore::SecretsKeyStore;
use shared::password::{Check, PasswordHasher};
use shared::store::UserStore;
use shared::store::dynamodb::DynamoUserStore;
use shared::throttle::LoginThrottle;
use shared::user::{Password, Username};
use shared::{CorsConfig, LoginThrottleConfig, PasswordConfig, SigningKeySource, TokenIssuer, TokenSettings};
use tokio::sync::OnceCell;

/// Everything a login needs, built once at cold start.
pub struct App {
    pub store: Arc<dyn UserStore>,
    pub throttle: LoginThrottle,
    pub hasher: PasswordHasher,
    pub signer: Signer,
    /// `JWT_ISSUER`; when unset, the URL of the API stage the login came through.
    pub issuer: Option<String>,
    /// `AWS_REGION`, for the stage's URL.
    pub region: String,
    pub responder: Responder,
}

/// The key tokens are signed with: given at cold start (`JWT_SIGNING_KEY`), or read once, on
/// the first login of the instance, from the key set's secret (`JWT_SIGNING_KEY_SECRET`, the key
/// `JWT_SIGNING_KEY_ID`), so the cold start makes no network call.
pub enum Signer {
    Ready(TokenIssuer),
    FromSecret {
        store: SecretsKeyStore,
        kid: String,
        settings: TokenSettings,
        loaded: OnceCell<TokenIssuer>,
    },
}

impl Signer {
    /// The issuer; a secret that cannot be read is a 503, a key set without the key a 500.
    pub async fn issuer(&self) -> Result<&TokenIssuer, ApiError> {
        match self {
            Self::Ready(issuer) => Ok(issuer),
            Self::FromSecret {
                store,
                kid,
                settings,
                loaded,
            } => {
                loaded
                    .get_or_try_init(|| async {
                        let key = store.load().await?.signing_key(kid).map_err(|e| {
                            ApiError::Internal(anyhow::Error::new(e).context("the signing key"))
                        })?;
                        tracing::info!(kid = %key.kid(), "signing key loaded");
                        Ok(TokenIssuer::new(settings.clone(), key))
                    })
                    .await
            }
        }
    }
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
        let settings = TokenSettings::from_env()?;
        let signer = match SigningKeySource::from_env()? {
            SigningKeySource::Pem(key) => Signer::Ready(TokenIssuer::new(settings.clone(), *key)),
            SigningKeySource::Secret { secret_id, kid } => Signer::FromSecret {
                store: SecretsKeyStore::from_env(&secret_id).await,
                kid,
                settings: settings.clone(),
                loaded: OnceCell::new(),
            },
        };
        Ok(Self {
            store: store.clone(),
            throttle: LoginThrottle::new(LoginThrottleConfig::from_env()?, store, Arc::new(SystemClock)),
            hasher: PasswordHasher::new(&PasswordConfig::from_env()?)?,
            signer,
            issuer: settings.issuer,
            region: std::env::var("AWS_REGION").unwrap_or_default(),
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

    let issuer = issuer_for(app.issuer.as_deref(), &app.region, req)?;
    let issued = app
        .signer
        .issuer()
        .await?
        .issue_access(&issuer, &user.id, &user.username);
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
