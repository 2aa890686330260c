//! `POST /users`: sign-up. Stores an argon2id hash of the password under a new user id and
//! answers 201 `{id, username}`, or 409 when the name is taken in any letter case. Each sign-up
//! is counted per client address before its password is hashed ([`SignUpThrottle`]): at
//! `SIGNUP_MAX_PER_IP` in a window, 429 with `Retry-After`. An optional `email` gets a
//! verification link (or, when another account holds it, a notice), and the answer is the same
//! either way: sign-up tells nothing about an address (docs/accounts.md).

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::clock::Clock;
use shared::clock::SystemClock;
use shared::error::ApiError;
use shared::http::{Responder, Route, client_address, json, sign_up as parse_sign_up};
use shared::mail::{MailConfig, Mailer, SesMailer};
use shared::password::PasswordHasher;
use shared::store::access::Capability;
use shared::store::dynamodb::DynamoUserStore;
use shared::store::sdk_config::sdk_config_from_env;
use shared::store::{CreateOutcome, CreateUser, StartVerification, UserRecord};
use shared::throttle::{ClientKey, MailLimitConfig, MailThrottle, SignUpThrottle};
use shared::user::{EmailAddress, Password, Username};
use shared::{CorsConfig, PasswordConfig, SignUpLimitConfig, StoreConfig};

/// What this function may do in the table, and all its `App` holds of the store: its IAM role
/// grants exactly these (`tests/suite/iam.rs` compares them with `template.yaml`).
pub const STORE: &[Capability] = &[
    Capability::CreateUser,
    Capability::CountSignUps,
    Capability::StartVerification,
    Capability::CountMail,
];

/// What this function may do with SES (its role grants this when `MailFrom` is set).
pub const MAIL: &[&str] = &[shared::mail::SEND];

/// The user capabilities of [`STORE`] (the others are the limits').
pub trait Users: CreateUser + StartVerification {}
impl<T: CreateUser + StartVerification> Users for T {}

/// Everything a sign-up needs, built once at cold start.
pub struct App {
    pub store: Arc<dyn Users>,
    pub sign_ups: SignUpThrottle,
    pub hasher: PasswordHasher,
    pub responder: Responder,
    /// `None` when the deployment sends no mail (`MAIL_FROM` unset).
    pub mailer: Option<Arc<dyn Mailer>>,
    pub mail: MailConfig,
    pub mail_limits: MailThrottle,
    pub clock: Arc<dyn Clock>,
}

/// The 201 body.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatedUser {
    pub id: String,
    pub username: String,
}

impl App {
    /// Reads the configuration and builds the DynamoDB store; fails naming a bad variable.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        // One SDK configuration (and one HTTPS client) for the store and the mailer.
        let sdk = sdk_config_from_env().await;
        shared::metrics::configure_from_env()?;
        let store = Arc::new(DynamoUserStore::new(&sdk, &StoreConfig::from_env()?));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mail = MailConfig::from_env()?;
        Ok(Self {
            store: store.clone(),
            sign_ups: SignUpThrottle::new(SignUpLimitConfig::from_env()?, store.clone(), clock.clone()),
            hasher: PasswordHasher::new(&PasswordConfig::from_env()?)?,
            responder: Responder::new(CorsConfig::from_env()?),
            mailer: SesMailer::for_config(&sdk, &mail).map(|mailer| Arc::new(mailer) as Arc<dyn Mailer>),
            mail,
            mail_limits: MailThrottle::new(MailLimitConfig::from_env()?, store, clock.clone()),
            clock,
        })
    }
}

/// What sign-up answers: 400 for a malformed body or a name or password that breaks the rules,
/// 409 for a taken name, 429 over the per-address limit.
pub static ROUTE: Route = Route {
    method: Method::POST,
    path: "/users",
    success: StatusCode::CREATED,
    errors: &[
        StatusCode::BAD_REQUEST,
        StatusCode::CONFLICT,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ],
};

/// The Lambda handler: every outcome, error or not, is an HTTP response.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(app.responder.serve(&req, &ROUTE, |req| sign_up(app, req)).await)
}

async fn sign_up(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let input = parse_sign_up(req)?;
    let username = Username::parse(&input.credentials.username)?;
    let password = Password::parse_new(input.credentials.password)?;
    let email = input.email.as_deref().map(EmailAddress::parse).transpose()?;
    if email.is_some() && app.mailer.is_none() {
        return Err(shared::mail::not_configured());
    }
    app.sign_ups.reserve(&ClientKey::of(client_address(req))).await?;
    let user = UserRecord {
        id: uuid::Uuid::new_v4().to_string(),
        username: username.as_str().to_owned(),
        password_hash: app.hasher.hash(password).await?,
        epoch: 0,
        email: None,
        reset_hash: None,
        totp: None,
        totp_pending: None,
        passkeys: Vec::new(),
    };
    match app.store.create(&user).await? {
        CreateOutcome::Created => {
            tracing::info!(user_id = %user.id, "user created");
            if let (Some(email), Some(mailer)) = (email, &app.mailer) {
                // The user exists: a link that could not go is logged, and the address can be
                // asked for again (POST /email); the answer stays the sign-up's.
                let started = shared::mail::start_verification(
                    &*app.store,
                    &**mailer,
                    &app.mail_limits,
                    &app.mail,
                    app.clock.now(),
                    &user.id,
                    &username.key(),
                    0,
                    email,
                )
                .await;
                if let Err(error) = started {
                    tracing::warn!(error = %shared::http::error_chain(&error), "verification not started at sign-up");
                }
            }
            Ok(json(
                StatusCode::CREATED,
                &CreatedUser {
                    id: user.id,
                    username: user.username,
                },
            ))
        }
        CreateOutcome::UsernameTaken => Err(ApiError::UsernameTaken),
    }
}
