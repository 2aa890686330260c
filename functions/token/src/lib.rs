//! The session routes: `POST /token` (login), `POST /token/refresh`, `POST /logout`,
//! `POST /logout/all` and `POST /password`, one function because they share the user store,
//! the session store, the signing key and the login limit.
//!
//! Login verifies the password and answers 200 with a signed access token and starts a session
//! (see [`shared::session`]): its refresh token goes into an `HttpOnly` cookie limited to the
//! refresh and logout routes, or into the body for a client that asks with
//! `"refresh_token_in_body": true`. An unknown user and a wrong password get the same 401 body,
//! after the same argon2 work.
//!
//! Brute-force protection ([`LoginThrottle`]): each attempt is reserved per username and per
//! client address before any password is hashed, so at most `LOGIN_MAX_FAILURES` passwords per
//! username and `LOGIN_MAX_FAILURES_PER_IP` failures per address are checked in a window,
//! however many requests arrive at once; then 429 with `Retry-After`. A right password clears
//! the name's count (and takes its attempt back from the address's), and a hash made with other
//! argon2 parameters is replaced by one with the configured parameters.
//!
//! Order of work: whatever can fail (the signing key, the issuer, the body) is resolved before
//! the write that commits a login, a refresh, a logout or a password change; after that write
//! only work that cannot fail remains (signing, building the answer), so a client never loses a
//! token the store has already consumed.

mod account;
mod devices;
pub mod mfa;
mod passkeys;

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::Issuer;
use shared::clock::{Clock, SystemClock};
use shared::config::Env;
use shared::error::ApiError;
use shared::events::{Client, EventConfig, EventKind, FailedStep, LoginMethod, SecurityEvent};
use shared::http::{
    Delivery, Identity, Responder, Route, account_deletion, client, client_address, current_user, empty,
    identify, issuer_for, json, login as parse_login, password_change, presented_refresh_token,
    set_refresh_cookies,
};
use shared::keys::public_keys;
use shared::keystore::{LOGIN_TIMEOUTS, SecretsKeyStore};
use shared::mail::{Kind, MailConfig, Mailer, SesMailer};
use shared::metrics::{self, Metric};
use shared::mfa::passkey::PasskeyConfig;
use shared::mfa::{MfaConfig, SealingKeySource};
use shared::password::{Check, PasswordHasher};
use shared::session::{RefreshError, SessionUser, Sessions};
use shared::store::access::Capability;
use shared::store::dynamodb::DynamoUserStore;
use shared::store::sdk_config::sdk_config_from_env;
use shared::store::{
    Caller, ChangePassword, DeleteAccount, Devices, EndAllSessions, FindUser, PasskeyStore, ReadCaller,
    RehashPassword, ResetPassword, SecondFactors, SecurityLog, StartVerification, StoreError, UserProfile,
    UserRecord, VerifyEmail,
};
use shared::throttle::{Attempt, ClientKey, LoginThrottle};
use shared::throttle::{MailLimitConfig, MailThrottle};
use shared::user::{Password, Username};
use shared::{
    CookieSameSite, CorsConfig, LoginThrottleConfig, PasswordConfig, SessionConfig, SigningKeySource,
    StoreConfig, Subject, TokenIssuer, TokenSettings, TokenVerifier,
};
use tokio::sync::OnceCell;
use webauthn_rs::Webauthn;

/// What this function may do in the table, and all its `App` holds of the store: its IAM role
/// grants exactly these (`tests/suite/iam.rs` compares them with `template.yaml`).
pub const STORE: &[Capability] = &[
    Capability::FindUser,
    Capability::RehashPassword,
    Capability::ReadCaller,
    Capability::ChangePassword,
    Capability::EndAllSessions,
    Capability::CountLoginAttempts,
    Capability::Sessions,
    Capability::DeleteAccount,
    Capability::StartVerification,
    Capability::VerifyEmail,
    Capability::ResetPassword,
    Capability::CountMail,
    Capability::SecondFactor,
    Capability::Passkeys,
    Capability::Devices,
    Capability::SecurityLog,
];

/// What this function may do with the signing keys' secret: read it (its role grants exactly
/// this).
pub const SECRETS: &[&str] = &[shared::keystore::LOAD];

/// What this function may do with SES: send from the configured identity (its role grants this
/// when `MailFrom` is set).
pub const MAIL: &[&str] = &[shared::mail::SEND];

/// The user capabilities of [`STORE`] (the others are the throttle's and the sessions').
pub trait Users:
    FindUser
    + RehashPassword
    + ReadCaller
    + ChangePassword
    + EndAllSessions
    + DeleteAccount
    + StartVerification
    + VerifyEmail
    + ResetPassword
    + SecondFactors
    + PasskeyStore
    + Devices
    + SecurityLog
{
}
impl<
    T: FindUser
        + RehashPassword
        + ReadCaller
        + ChangePassword
        + EndAllSessions
        + DeleteAccount
        + StartVerification
        + VerifyEmail
        + ResetPassword
        + SecondFactors
        + PasskeyStore
        + Devices
        + SecurityLog,
> Users for T
{
}

/// Everything the routes need, built once at cold start.
pub struct App {
    pub store: Arc<dyn Users>,
    pub throttle: LoginThrottle,
    pub hasher: PasswordHasher,
    pub signer: Signer,
    pub sessions: Sessions,
    /// Verifies the access token of `/logout/all` and `/password` when no authorizer did.
    pub verifier: TokenVerifier,
    pub same_site: CookieSameSite,
    pub clock: Arc<dyn Clock>,
    /// `JWT_ISSUER`, or the stage each request comes through (`AWS_REGION`).
    pub issuer: Issuer,
    pub responder: Responder,
    /// `None` when the deployment sends no mail (`MAIL_FROM` unset).
    pub mailer: Option<Arc<dyn Mailer>>,
    pub mail: MailConfig,
    pub mail_limits: MailThrottle,
    pub mfa: MfaConfig,
    /// The key TOTP secrets are sealed with.
    pub sealer: mfa::Sealer,
    /// The WebAuthn relying party; `None` when passkeys are off (`WEBAUTHN_ORIGINS` unset).
    pub passkeys: Option<Webauthn>,
}

/// The key tokens are signed with: given at cold start (`JWT_SIGNING_KEY`), or read once, on
/// the first login of the instance, from the key set's secret (`JWT_SIGNING_KEY_SECRET`, the key
/// `JWT_SIGNING_KEY_ID`), so the cold start makes no network call.
// One per instance, made at cold start: its size is of no consequence.
#[allow(clippy::large_enum_variant)]
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

/// The 200 body of a login and a refresh (the OAuth 2.0 token response's `token_type` and
/// `expires_in`, RFC 6749 §5.1); `refresh_token` only for a client that asked for it in the
/// body. `Debug` never shows a token.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub token: String,
    pub user_id: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// New recovery codes, shown once: after turning two-step verification on, and after
    /// replacing the codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"[redacted]")
            .field("user_id", &self.user_id)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "recovery_codes",
                &self.recovery_codes.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl App {
    /// Reads the configuration and builds the store, hasher and issuer; fails naming a bad variable.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        // One SDK configuration (and one HTTPS client) for every AWS client of the function.
        let sdk = sdk_config_from_env().await;
        let store = Arc::new(DynamoUserStore::new(&sdk, &StoreConfig::from_env()?));
        let settings = TokenSettings::from_env()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mail = MailConfig::from_env()?;
        metrics::configure_from_env()?;
        let (store_for_mail, clock_for_mail) = (store.clone(), clock.clone());
        let signer = match SigningKeySource::from_env()? {
            SigningKeySource::Pem(key) => Signer::Ready(TokenIssuer::new(settings.clone(), *key)),
            SigningKeySource::Secret { secret_id, kid } => Signer::FromSecret {
                store: SecretsKeyStore::new(&sdk, &secret_id, LOGIN_TIMEOUTS),
                kid,
                settings: settings.clone(),
                loaded: OnceCell::new(),
            },
        };
        Ok(Self {
            store: store.clone(),
            throttle: LoginThrottle::new(LoginThrottleConfig::from_env()?, store.clone(), clock.clone()),
            hasher: PasswordHasher::new(&PasswordConfig::from_env()?)?,
            signer,
            sessions: Sessions::new(SessionConfig::from_env()?, store, clock.clone())
                .with_events(EventConfig::from_env()?),
            verifier: TokenVerifier::new(&settings, public_keys(&Env)?),
            same_site: CookieSameSite::from_env()?,
            clock,
            issuer: Issuer::from_source(&settings, &Env)?,
            responder: Responder::with_credentials(CorsConfig::from_env()?),
            mailer: SesMailer::for_config(&sdk, &mail).map(|mailer| Arc::new(mailer) as Arc<dyn Mailer>),
            mail,
            mail_limits: MailThrottle::new(MailLimitConfig::from_env()?, store_for_mail, clock_for_mail),
            mfa: MfaConfig::from_env()?,
            sealer: mfa::Sealer::new(SealingKeySource::from_env()?, |id| {
                SecretsKeyStore::new(&sdk, id, LOGIN_TIMEOUTS)
            }),
            passkeys: PasskeyConfig::from_env()?
                .map(|config| config.relying_party())
                .transpose()?,
        })
    }
}

const fn post(path: &'static str, success: StatusCode, errors: &'static [StatusCode]) -> Route {
    Route {
        method: Method::POST,
        path,
        success,
        errors,
    }
}

// Every route of this function can fail on the store (503) or a misconfiguration (500); every
// one but `/logout/all` reads a JSON body (400, 413, 415).
const BODY: [StatusCode; 3] = [
    StatusCode::BAD_REQUEST,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
];
const SERVER: [StatusCode; 2] = [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::SERVICE_UNAVAILABLE];

/// The login: 401 for an unknown name and a wrong password alike, 429 over either limit.
pub static LOGIN: Route = post(
    "/token",
    StatusCode::OK,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);
/// The refresh: 401 for a missing, unknown, expired, revoked or reused token; 400 for two
/// refresh cookies; 403 for a cookie sent from an origin that is not allowed.
pub static REFRESH: Route = post(
    "/token/refresh",
    StatusCode::OK,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        SERVER[0],
        SERVER[1],
    ],
);
/// The logout: idempotent, so no 401; the cookie checks of the refresh.
pub static LOGOUT: Route = post(
    "/logout",
    StatusCode::NO_CONTENT,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::FORBIDDEN,
        SERVER[0],
        SERVER[1],
    ],
);
/// Log out everywhere, behind the authorizer: 401 for a token of an ended session or a user
/// who is gone. It reads no body.
pub static LOGOUT_ALL: Route = post(
    "/logout/all",
    StatusCode::NO_CONTENT,
    &[StatusCode::UNAUTHORIZED, SERVER[0], SERVER[1]],
);
/// The password change, behind the authorizer: 401 for a wrong current password too, 400 for
/// a new one that breaks the rules, 429 over the name's login limit.
pub static PASSWORD: Route = post(
    "/password",
    StatusCode::NO_CONTENT,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);

/// Account deletion, behind the authorizer: as the password change, without a new password.
pub static DELETE_ACCOUNT: Route = post(
    "/users/me/delete",
    StatusCode::NO_CONTENT,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);

/// A new address for the caller, behind the authorizer: as the password change, and 429 over
/// the per-address limit of requests that may send mail; 503 if the mail cannot be sent.
pub static CHANGE_EMAIL: Route = post(
    "/email",
    StatusCode::ACCEPTED,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);
/// A verification link's token: 400 for one that is unknown, used or expired, 409 when another
/// account verified the address first.
pub static VERIFY_EMAIL: Route = post(
    "/email/verify",
    StatusCode::NO_CONTENT,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::CONFLICT,
        SERVER[0],
        SERVER[1],
    ],
);
/// Forgot password: 202 whatever it found; otherwise only what does not depend on the account:
/// 400 for a malformed body, 429 over the client address's limit, 503 if that limit cannot be
/// counted. A failure after the account is looked up is logged, and the answer is still 202.
pub static FORGOT_PASSWORD: Route = post(
    "/password/forgot",
    StatusCode::ACCEPTED,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);
/// A reset link's token and a new password: 400 for a token that is unknown, used, expired or
/// superseded, or a password that breaks the rules.
pub static RESET_PASSWORD: Route = post(
    "/password/reset",
    StatusCode::NO_CONTENT,
    &[BODY[0], BODY[1], BODY[2], SERVER[0], SERVER[1]],
);

/// A login's second step: 401 for a ticket that is unknown, expired, used or out of attempts,
/// and for a wrong or used code; 429 over the user's limit of codes.
pub static MFA_LOGIN: Route = post(
    "/token/mfa",
    StatusCode::OK,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);
/// The caller's second factors and passkeys, behind the authorizer.
pub static MFA_STATUS: Route = Route {
    method: Method::GET,
    path: "/mfa",
    success: StatusCode::OK,
    errors: &[StatusCode::UNAUTHORIZED, SERVER[0], SERVER[1]],
};
/// The password-confirmed routes that may meet an enrolled second factor (409).
const CHANGE_WITH_CONFLICT: [StatusCode; 8] = [
    BODY[0],
    BODY[1],
    BODY[2],
    StatusCode::UNAUTHORIZED,
    StatusCode::CONFLICT,
    StatusCode::TOO_MANY_REQUESTS,
    SERVER[0],
    SERVER[1],
];
/// As the password change: a body, the Bearer token, the current password (or a code).
const CHANGE: [StatusCode; 7] = [
    BODY[0],
    BODY[1],
    BODY[2],
    StatusCode::UNAUTHORIZED,
    StatusCode::TOO_MANY_REQUESTS,
    SERVER[0],
    SERVER[1],
];
/// Starts a TOTP enrolment, behind the authorizer; 409 when a second factor is on already.
pub static TOTP_ENROL: Route = post("/mfa/totp/enrol", StatusCode::OK, &CHANGE_WITH_CONFLICT);
/// Confirms it with a first code (the recovery codes in the answer); 409 as enrolment.
pub static TOTP_CONFIRM: Route = post("/mfa/totp/confirm", StatusCode::OK, &CHANGE_WITH_CONFLICT);
/// Turns the second factor off, with the password and a code.
pub static TOTP_DISABLE: Route = post("/mfa/totp/disable", StatusCode::OK, &CHANGE);
/// New recovery codes, with the password and a code.
pub static RECOVERY_CODES: Route = post("/mfa/recovery-codes", StatusCode::OK, &CHANGE);
/// The options of a new passkey, with the password; 400 when passkeys are off.
pub static PASSKEY_REGISTER_OPTIONS: Route = post("/passkeys/register/options", StatusCode::OK, &CHANGE);
/// A new passkey: 400 for an unknown or used challenge or a response that does not verify.
pub static PASSKEY_REGISTER: Route = post(
    "/passkeys/register",
    StatusCode::CREATED,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        SERVER[0],
        SERVER[1],
    ],
);
/// Removes one of the caller's passkeys, with the password; 404 for one that is not its own.
pub static PASSKEY_DELETE: Route = post(
    "/passkeys/delete",
    StatusCode::NO_CONTENT,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        StatusCode::NOT_FOUND,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);
/// The options of a passkey sign-in; no body. 400 when passkeys are off, 429 over the client
/// address's login limit.
pub static PASSKEY_SIGN_IN_OPTIONS: Route = post(
    "/token/passkey/options",
    StatusCode::OK,
    &[
        StatusCode::BAD_REQUEST,
        StatusCode::TOO_MANY_REQUESTS,
        SERVER[0],
        SERVER[1],
    ],
);
/// A passkey sign-in: the login body, or one 401 whatever did not verify.
pub static PASSKEY_SIGN_IN: Route = post(
    "/token/passkey",
    StatusCode::OK,
    &[
        BODY[0],
        BODY[1],
        BODY[2],
        StatusCode::UNAUTHORIZED,
        SERVER[0],
        SERVER[1],
    ],
);

/// The caller's live sessions ("Your devices"), behind the authorizer: 400 for a `limit` or
/// `cursor` that is not one this API takes.
pub static SESSIONS: Route = Route {
    method: Method::GET,
    path: "/sessions",
    success: StatusCode::OK,
    errors: &LISTING,
};
/// A listing's errors: its query, the Bearer token, the store.
const LISTING: [StatusCode; 4] = [
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    SERVER[0],
    SERVER[1],
];
/// Ends one of the caller's sessions, behind the authorizer: 404 for an id that is not one of
/// its live sessions (unknown, another user's, or ended), all alike.
pub static END_SESSION: Route = Route {
    method: Method::DELETE,
    path: "/sessions/{id}",
    success: StatusCode::NO_CONTENT,
    errors: &[
        StatusCode::UNAUTHORIZED,
        StatusCode::NOT_FOUND,
        SERVER[0],
        SERVER[1],
    ],
};
/// The caller's security history, newest first, behind the authorizer; 400 as [`SESSIONS`].
pub static EVENTS: Route = Route {
    method: Method::GET,
    path: "/me/events",
    success: StatusCode::OK,
    errors: &LISTING,
};

/// The routes of this function.
pub static ROUTES: [&Route; 24] = [
    &LOGIN,
    &REFRESH,
    &LOGOUT,
    &LOGOUT_ALL,
    &PASSWORD,
    &DELETE_ACCOUNT,
    &CHANGE_EMAIL,
    &VERIFY_EMAIL,
    &FORGOT_PASSWORD,
    &RESET_PASSWORD,
    &MFA_LOGIN,
    &MFA_STATUS,
    &TOTP_ENROL,
    &TOTP_CONFIRM,
    &TOTP_DISABLE,
    &RECOVERY_CODES,
    &PASSKEY_REGISTER_OPTIONS,
    &PASSKEY_REGISTER,
    &PASSKEY_DELETE,
    &PASSKEY_SIGN_IN_OPTIONS,
    &PASSKEY_SIGN_IN,
    &SESSIONS,
    &END_SESSION,
    &EVENTS,
];

/// Which of [`ROUTES`] a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Refresh,
    Logout,
    LogoutAll,
    Password,
    DeleteAccount,
    ChangeEmail,
    VerifyEmail,
    ForgotPassword,
    ResetPassword,
    MfaLogin,
    MfaStatus,
    TotpEnrol,
    TotpConfirm,
    TotpDisable,
    RecoveryCodes,
    PasskeyRegisterOptions,
    PasskeyRegister,
    PasskeyDelete,
    PasskeySignInOptions,
    PasskeySignIn,
    Sessions,
    EndSession,
    Events,
}

impl Endpoint {
    const ALL: [Self; 24] = [
        Self::Login,
        Self::Refresh,
        Self::Logout,
        Self::LogoutAll,
        Self::Password,
        Self::DeleteAccount,
        Self::ChangeEmail,
        Self::VerifyEmail,
        Self::ForgotPassword,
        Self::ResetPassword,
        Self::MfaLogin,
        Self::MfaStatus,
        Self::TotpEnrol,
        Self::TotpConfirm,
        Self::TotpDisable,
        Self::RecoveryCodes,
        Self::PasskeyRegisterOptions,
        Self::PasskeyRegister,
        Self::PasskeyDelete,
        Self::PasskeySignInOptions,
        Self::PasskeySignIn,
        Self::Sessions,
        Self::EndSession,
        Self::Events,
    ];

    pub fn route(self) -> &'static Route {
        match self {
            Self::Login => &LOGIN,
            Self::Refresh => &REFRESH,
            Self::Logout => &LOGOUT,
            Self::LogoutAll => &LOGOUT_ALL,
            Self::Password => &PASSWORD,
            Self::DeleteAccount => &DELETE_ACCOUNT,
            Self::ChangeEmail => &CHANGE_EMAIL,
            Self::VerifyEmail => &VERIFY_EMAIL,
            Self::ForgotPassword => &FORGOT_PASSWORD,
            Self::ResetPassword => &RESET_PASSWORD,
            Self::MfaLogin => &MFA_LOGIN,
            Self::MfaStatus => &MFA_STATUS,
            Self::TotpEnrol => &TOTP_ENROL,
            Self::TotpConfirm => &TOTP_CONFIRM,
            Self::TotpDisable => &TOTP_DISABLE,
            Self::RecoveryCodes => &RECOVERY_CODES,
            Self::PasskeyRegisterOptions => &PASSKEY_REGISTER_OPTIONS,
            Self::PasskeyRegister => &PASSKEY_REGISTER,
            Self::PasskeyDelete => &PASSKEY_DELETE,
            Self::PasskeySignInOptions => &PASSKEY_SIGN_IN_OPTIONS,
            Self::PasskeySignIn => &PASSKEY_SIGN_IN,
            Self::Sessions => &SESSIONS,
            Self::EndSession => &END_SESSION,
            Self::Events => &EVENTS,
        }
    }

    /// The endpoint of a request path, by the longest route path its last segments are (a
    /// `{name}` segment matches any one): with or without a stage or base path in front, and
    /// under a function URL (`/lambda-url/token/token/refresh`). API Gateway sends this function
    /// only its routes' paths; anything else (the function URL's root) is the login, the
    /// function's first route.
    pub fn of(path: &str) -> Self {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Self::ALL
            .into_iter()
            .filter(|endpoint| ends_with_route(&segments, endpoint.route().path))
            .max_by_key(|endpoint| endpoint.route().path.len())
            .unwrap_or(Self::Login)
    }
}

/// Whether the path `segments` end with the route path `pattern`'s segments.
fn ends_with_route(segments: &[&str], pattern: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    segments.len() >= pattern.len()
        && pattern
            .iter()
            .rev()
            .zip(segments.iter().rev())
            .all(|(want, got)| (want.starts_with('{') && want.ends_with('}')) || want == got)
}

/// The Lambda handler: every outcome, error or not, is an HTTP response.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    let endpoint = Endpoint::of(req.uri().path());
    Ok(app
        .responder
        .serve(&req, endpoint.route(), |req| async move {
            match endpoint {
                Endpoint::Login => login(app, req).await,
                Endpoint::Refresh => refresh(app, req).await,
                Endpoint::Logout => logout(app, req).await,
                Endpoint::LogoutAll => logout_all(app, req).await,
                Endpoint::Password => change_password(app, req).await,
                Endpoint::DeleteAccount => delete_account(app, req).await,
                Endpoint::ChangeEmail => account::change_email(app, req).await,
                Endpoint::VerifyEmail => account::verify_email(app, req).await,
                Endpoint::ForgotPassword => account::forgot_password(app, req).await,
                Endpoint::ResetPassword => account::reset_password(app, req).await,
                Endpoint::MfaLogin => mfa::complete_login(app, req).await,
                Endpoint::MfaStatus => mfa::status(app, req).await,
                Endpoint::TotpEnrol => mfa::enrol(app, req).await,
                Endpoint::TotpConfirm => mfa::confirm(app, req).await,
                Endpoint::TotpDisable => mfa::disable(app, req).await,
                Endpoint::RecoveryCodes => mfa::regenerate(app, req).await,
                Endpoint::PasskeyRegisterOptions => passkeys::register_options(app, req).await,
                Endpoint::PasskeyRegister => passkeys::register(app, req).await,
                Endpoint::PasskeyDelete => passkeys::delete(app, req).await,
                Endpoint::PasskeySignInOptions => passkeys::sign_in_options(app, req).await,
                Endpoint::PasskeySignIn => passkeys::sign_in(app, req).await,
                Endpoint::Sessions => devices::sessions(app, req).await,
                Endpoint::EndSession => devices::end_session(app, req).await,
                Endpoint::Events => devices::events(app, req).await,
            }
        })
        .await)
}

async fn login(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let input = parse_login(req)?;
    let password = Password::parse_existing(input.credentials.password)?;
    let (signer, issuer) = signing(app, req).await?;
    let from = client(req);
    let client = ClientKey::of(client_address(req));
    // A name that breaks the username rules cannot exist: treat it as unknown, not as a 400, at
    // the same cost. Counted per address only: no password can ever match it.
    let Ok(username) = Username::parse(&input.credentials.username) else {
        let attempt = app.throttle.reserve_client(&client).await?;
        app.hasher.verify(password, None).await?;
        tracing::info!(
            attempt = attempt.number,
            "login failed: no such username can exist"
        );
        record(
            app,
            event(app, EventKind::LoginFailed(FailedStep::Password), None, &from),
        )
        .await;
        return Err(ApiError::BadCredentials);
    };
    // The attempt is reserved per address and per name before the password is checked; the
    // user is read meanwhile (one round trip for the three).
    let key = username.key();
    let (by_client, by_name, user) = tokio::join!(
        app.throttle.reserve_client(&client),
        app.throttle.reserve(&key),
        app.store.find_by_username(&username),
    );
    let (by_client, by_name, user) = all_or_none(app, by_client, by_name, user).await?;

    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let check = app.hasher.verify(password, stored_hash).await?;
    let known = user.as_ref().map(|u| u.id.clone());
    let (Some(user), Check::Right { rehash }) = (user, check) else {
        tracing::info!(attempt = by_name.number, "login failed");
        // A known user's history gets it; an unknown name's only goes to the log.
        let failed = EventKind::LoginFailed(FailedStep::Password);
        record(app, event(app, failed, known.as_deref(), &from)).await;
        return Err(ApiError::BadCredentials);
    };
    if user.totp.is_some() {
        // The password step succeeded: its counts are cleared as for any right password, and a
        // ticket for the second step is the answer, not tokens.
        let ((), (), (), ticket) = tokio::join!(
            app.throttle.succeeded(by_name),
            app.throttle.succeeded(by_client),
            upgrade_hash(app, &username, &user.password_hash, rehash.as_deref()),
            mfa::second_step_due(app, &user, &key),
        );
        return ticket;
    }
    // One round trip again: the counts cleared and the rehash stored (both best effort) while
    // the session starts.
    let ((), (), (), started) = tokio::join!(
        app.throttle.succeeded(by_name),
        app.throttle.succeeded(by_client),
        upgrade_hash(app, &username, &user.password_hash, rehash.as_deref()),
        app.sessions.start(
            SessionUser {
                user_id: &user.id,
                username: &user.username,
                username_key: &key,
                epoch: user.epoch,
            },
            &from,
            EventKind::LoginSucceeded(LoginMethod::Password),
        ),
    );
    let started = started?;
    let subject = Subject {
        user_id: &user.id,
        username: &user.username,
        epoch: user.epoch,
        session_id: &started.session_id,
    };
    let (body, jti) = issue(signer, &issuer, subject);
    tracing::info!(user_id = %user.id, jti = %jti, "token issued");
    let delivery = if input.refresh_token_in_body {
        Delivery::Body
    } else {
        Delivery::Cookie
    };
    let max_age = app.sessions.config().absolute.as_secs();
    Ok(token_response(
        app,
        req,
        body,
        Some((started.token.expose(), max_age)),
        delivery,
    ))
}

/// Both reservations of a login and its read of the user, or the first failure (the address's
/// limit, then the name's, then the store) with every reservation that was made taken back: an
/// attempt whose password is never checked counts against neither limit, so an address at its
/// limit cannot go on spending usernames' budgets, nor a locked name its address's.
async fn all_or_none(
    app: &App,
    by_client: Result<Attempt, ApiError>,
    by_name: Result<Attempt, ApiError>,
    user: Result<Option<UserRecord>, StoreError>,
) -> Result<(Attempt, Attempt, Option<UserRecord>), ApiError> {
    match (by_client, by_name, user) {
        (Ok(by_client), Ok(by_name), Ok(user)) => Ok((by_client, by_name, user)),
        (by_client, by_name, user) => {
            let mut failure: Option<ApiError> = user.err().map(Into::into);
            for reserved in [by_name, by_client] {
                match reserved {
                    Ok(attempt) => app.throttle.cancel(attempt).await,
                    Err(error) => failure = Some(error),
                }
            }
            Err(failure
                .unwrap_or_else(|| ApiError::Internal(anyhow::anyhow!("a login failed without a failure"))))
        }
    }
}

/// The key and the issuer of the tokens this request gets: what can fail in issuing them,
/// resolved before anything is counted or written. A key set that cannot be read is a 503, a
/// missing key or issuer a 500.
async fn signing<'a>(app: &'a App, req: &Request) -> Result<(&'a TokenIssuer, String), ApiError> {
    let issuer = issuer_for(&app.issuer, req)?;
    Ok((app.signer.issuer().await?, issuer))
}

/// Signs an access token; returns the response body's fields and the token's `jti` (to log).
/// Cannot fail: it runs after the write that commits the login or refresh.
fn issue(signer: &TokenIssuer, issuer: &str, subject: Subject<'_>) -> (TokenResponse, String) {
    let issued = signer.issue_access(issuer, subject);
    let body = TokenResponse {
        token: issued.token,
        user_id: subject.user_id.to_owned(),
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        refresh_token: None,
        recovery_codes: None,
    };
    (body, issued.claims.jti)
}

/// The 200 of a login or refresh: the refresh token `(token, max_age)`, if there is a new one,
/// in the body or in the cookie as `delivery` says.
fn token_response(
    app: &App,
    req: &Request,
    mut body: TokenResponse,
    refresh: Option<(&str, u64)>,
    delivery: Delivery,
) -> Response<Body> {
    if delivery == Delivery::Body {
        body.refresh_token = refresh.map(|(token, _)| token.to_owned());
    }
    let mut response = json(StatusCode::OK, &body);
    if delivery == Delivery::Cookie
        && let Some(refresh) = refresh
    {
        set_refresh_cookies(&mut response, req, app.same_site, Some(refresh));
    }
    response
}

/// `POST /token/refresh`: rotates the presented refresh token (see [`Sessions::refresh`]). The
/// key is loaded first: a refresh that could not be answered leaves the token unused.
async fn refresh(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (token, delivery) = presented_refresh_token(req, app.responder.cors())?;
    let (signer, issuer) = signing(app, req).await?;
    let refreshed = match app.sessions.refresh(token.as_deref(), &client(req)).await {
        Ok(refreshed) => refreshed,
        Err(RefreshError::Store(e)) => return Err(e.into()),
        Err(RefreshError::Refused(reason)) => {
            // Every reason is the same 401 to the client; the log says which.
            tracing::info!(%reason, "refresh refused");
            return Err(ApiError::InvalidRefreshToken);
        }
    };
    let record = refreshed.record;
    let subject = Subject {
        user_id: &record.user_id,
        username: &record.username,
        epoch: record.epoch,
        session_id: &record.session_id,
    };
    let (body, jti) = issue(signer, &issuer, subject);
    tracing::info!(user_id = %record.user_id, jti = %jti, duplicate = refreshed.duplicate, "token refreshed");
    let max_age =
        (record.started_at + app.sessions.config().absolute.as_secs()).saturating_sub(app.clock.now());
    let refresh = Some((refreshed.token.expose(), max_age));
    Ok(token_response(app, req, body, refresh, delivery))
}

/// 204, clearing the refresh cookie.
pub(crate) fn ended(app: &App, req: &Request) -> Response<Body> {
    let mut response = empty(StatusCode::NO_CONTENT);
    set_refresh_cookies(&mut response, req, app.same_site, None);
    response
}

/// `POST /logout`: ends the presented token's session; 204 whether or not it was one.
async fn logout(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (token, _) = presented_refresh_token(req, app.responder.cors())?;
    app.sessions.end(token.as_deref(), &client(req)).await?;
    Ok(ended(app, req))
}

/// The caller of `/logout/all`, checked against the store: the user still there, same id,
/// token of the current epoch, and its session live.
async fn caller(app: &App, req: &Request) -> Result<(Identity, Username), ApiError> {
    let (caller, username) = identified(app, req)?;
    let found = app.store.find_caller(&username, &caller.session_id).await?;
    current_user(&caller, found, app.clock.now())?;
    Ok((caller, username))
}

/// Who the access token names, not yet checked against the store.
pub(crate) fn identified(app: &App, req: &Request) -> Result<(Identity, Username), ApiError> {
    let caller = identify(req, &app.verifier, &app.issuer, app.clock.now())?;
    let username = caller.username()?;
    Ok((caller, username))
}

/// `POST /logout/all`: ends every session of the caller, and every access token issued before.
async fn logout_all(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = caller(app, req).await?;
    let ended_all = event(
        app,
        EventKind::EndedEverywhere,
        Some(&caller.user_id),
        &client(req),
    );
    if !app
        .store
        .end_all_sessions(&username, &caller.user_id, &ended_all)
        .await?
    {
        return Err(ApiError::UserGone);
    }
    ended_all.log();
    tracing::info!(user_id = %caller.user_id, "every session ended (logout everywhere)");
    Ok(ended(app, req))
}

/// `POST /password`: checks the current password (counted by the login limit), stores the new
/// one and ends every session, in one write conditioned on the hash just verified.
async fn change_password(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let input = password_change(req)?;
    let current = Password::parse_existing(input.current_password)?;
    let new = Password::parse_new(input.new_password)?;
    let (user, attempt) = confirm_password(app, &caller, &username, current, "password change").await?;
    let new_hash = app.hasher.hash(new).await?;
    let changed = event(app, EventKind::PasswordChanged, Some(&user.id), &client(req));
    let write = app
        .store
        .change_password(&username, &user.password_hash, &new_hash, &changed);
    if !meanwhile_clearing(app, attempt, write).await? {
        // Changed by another request since it was read: the password verified is not current.
        tracing::info!("password change lost to a concurrent change");
        return Err(ApiError::WrongPassword);
    }
    changed.log();
    tracing::info!(user_id = %user.id, "password changed; every session ended");
    Ok(ended(app, req))
}

/// Stores the hash made with the configured argon2 parameters in place of `current`, if the
/// login made one; best effort: the login succeeds whatever happens here, and the next login
/// tries again.
async fn upgrade_hash(app: &App, username: &Username, current: &str, new_hash: Option<&str>) {
    let Some(new_hash) = new_hash else {
        return;
    };
    match app.store.replace_password_hash(username, current, new_hash).await {
        Ok(true) => tracing::info!("password rehashed with the configured argon2 parameters"),
        Ok(false) => tracing::info!("password not rehashed: it changed meanwhile"),
        Err(error) => tracing::warn!(%error, "could not store the rehashed password"),
    }
}
/// `POST /users/me/delete`: with the current password (counted by the login limit), deletes the
/// caller's account. The user item goes first, in one write conditioned on the id and the hash
/// just verified: from then on no token of the user passes a route that reads the store, no
/// refresh token rotates, and the name is free. Then its name's login counters and every session
/// and refresh token of its id. A repeat, once the user is gone, deletes what a failed first
/// attempt left of the id and answers 204 again.
async fn delete_account(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let input = account_deletion(req)?;
    let password = Password::parse_existing(input.password)?;
    let (found, attempt) = read_and_reserve(app, &caller, &username).await?;
    if found.user.as_ref().is_none_or(|user| user.id != caller.user_id) {
        // No password to check: the attempt is taken back.
        let ((), answer) = tokio::join!(
            app.throttle.cancel(attempt),
            deleted_already(app, req, &caller.user_id)
        );
        return answer;
    }
    let (user, attempt) = check_password(app, &caller, found, attempt, password, "account deletion").await?;
    meanwhile_clearing(app, attempt, async {
        if !app
            .store
            .delete_user(&username, &user.id, &user.password_hash, user.email.as_deref())
            .await?
        {
            return match app.store.find_by_username(&username).await? {
                Some(now) if now.id == user.id => {
                    tracing::info!("account deletion lost to a concurrent password change");
                    Err(ApiError::WrongPassword)
                }
                // A concurrent deletion of the same account won.
                _ => deleted_already(app, req, &user.id).await,
            };
        }
        account::notify(app, user.email.as_deref(), Kind::AccountDeleted, None).await;
        let name = username.key();
        let (counters, items) = tokio::join!(app.throttle.forget(&name), app.store.delete_items_of(&user.id));
        counters?;
        // Not `items?` inside the macro: a disabled level would never evaluate it, and the error
        // would pass unseen.
        let items = items?;
        event(app, EventKind::AccountDeleted, Some(&user.id), &client(req)).log();
        tracing::info!(user_id = %user.id, items, "account deleted");
        Ok(ended(app, req))
    })
    .await
}

/// An event of `kind` for `user_id` (`None`: no account), now, from `from`.
pub(crate) fn event(app: &App, kind: EventKind, user_id: Option<&str>, from: &Client) -> SecurityEvent {
    app.sessions.event(kind, user_id, from)
}

/// Writes `event` alone, where the request writes nothing else to hold it (a failed login or
/// code): best effort, never the request's failure. It is logged either way; a write that
/// failed is counted ([`Metric::EventNotRecorded`]). An event of no account is written too
/// (in no list, for a day), so a wrong password and an unknown name take the same round trips.
pub(crate) async fn record(app: &App, event: SecurityEvent) {
    if let Err(error) = app.store.record_event(&event).await {
        tracing::warn!(error = %error, event = event.kind.name(), "security event not recorded");
        let mut fields = serde_json::Map::new();
        // Not `security_event`: a query for the events themselves must not match this line.
        fields.insert("unrecorded_event".into(), event.kind.name().into());
        fields.insert("event_id".into(), event.id.clone().into());
        metrics::emit(Metric::EventNotRecorded, fields);
    }
    event.log();
}

/// The caller's user from one read (`found`: the user with its hash, and the session): still
/// there, the same id, its session live.
pub(crate) fn checked_user(
    app: &App,
    caller: &Identity,
    found: Caller<UserRecord>,
) -> Result<UserRecord, ApiError> {
    let checked = Caller {
        user: found.user.as_ref().map(UserProfile::from),
        session: found.session,
    };
    current_user(caller, checked, app.clock.now())?;
    found.user.ok_or(ApiError::UserGone)
}

/// The caller of a route that takes its current password: read (the user with its hash, and
/// the session) while an attempt of the name's login limit is reserved, in one round trip; still
/// there, the same id, its session live, and `password` right, checked at the cost and under the
/// limit of a login. `what` names the route in the log. The attempt is the caller's to clear,
/// with [`meanwhile_clearing`], beside the route's own write.
pub(crate) async fn confirm_password(
    app: &App,
    caller: &Identity,
    username: &Username,
    password: Password,
    what: &str,
) -> Result<(UserRecord, Attempt), ApiError> {
    let (found, attempt) = read_and_reserve(app, caller, username).await?;
    check_password(app, caller, found, attempt, password, what).await
}

/// The caller with its hash and its session, read while an attempt of the name's login limit is
/// reserved (one round trip): both, or the first failure (the limit's, then the store's) with
/// the reservation taken back, as a login does.
pub(crate) async fn read_and_reserve(
    app: &App,
    caller: &Identity,
    username: &Username,
) -> Result<(Caller<UserRecord>, Attempt), ApiError> {
    let key = username.key();
    let (found, attempt) = tokio::join!(
        app.store.find_caller_with_hash(username, &caller.session_id),
        app.throttle.reserve(&key),
    );
    match (found, attempt) {
        (Ok(found), Ok(attempt)) => Ok((found, attempt)),
        (_, Err(limited)) => Err(limited),
        (Err(error), Ok(attempt)) => {
            app.throttle.cancel(attempt).await;
            Err(error.into())
        }
    }
}

/// [`confirm_password`] on what [`read_and_reserve`] gave: a caller that cannot be confirmed
/// (gone, another id, its session ended) takes the attempt back, since no password was checked.
pub(crate) async fn check_password(
    app: &App,
    caller: &Identity,
    found: Caller<UserRecord>,
    attempt: Attempt,
    password: Password,
    what: &str,
) -> Result<(UserRecord, Attempt), ApiError> {
    let user = match checked_user(app, caller, found) {
        Ok(user) => user,
        Err(error) => {
            app.throttle.cancel(attempt).await;
            return Err(error);
        }
    };
    let check = app
        .hasher
        .verify(password, Some(user.password_hash.clone()))
        .await?;
    if !matches!(check, Check::Right { .. }) {
        tracing::info!(attempt = attempt.number, "{what}: wrong current password");
        return Err(ApiError::WrongPassword);
    }
    Ok((user, attempt))
}

/// `then` (a route's write) while the name's failure count is cleared after a right password:
/// the password was right whatever `then` does, and neither waits for the other. `then` should
/// start with its request: work done first (a hash, a QR code) would let the clearing finish
/// before the write is sent, which is a round trip in sequence as a client sees it (and as
/// `tests/src/round_trips.rs` counts it).
pub(crate) async fn meanwhile_clearing<T>(app: &App, attempt: Attempt, then: impl Future<Output = T>) -> T {
    let ((), output) = tokio::join!(app.throttle.succeeded(attempt), then);
    output
}

/// The answer to a deletion of an account that is gone (deleted before, or by a concurrent
/// request), whose name is free or someone else's since: what is left of the id goes (not the
/// name's counters, which may be a new user's by now), and 204 as the first time.
async fn deleted_already(app: &App, req: &Request, user_id: &str) -> Result<Response<Body>, ApiError> {
    let left = app.store.delete_items_of(user_id).await?;
    tracing::info!(%user_id, left, "account deletion repeated");
    Ok(ended(app, req))
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn routes_are_told_apart_by_the_end_of_the_path() {
        for (path, route) in [
            ("/token", Endpoint::Login),
            ("/v1/token", Endpoint::Login),
            ("/token/refresh", Endpoint::Refresh),
            ("/v1/token/refresh/", Endpoint::Refresh),
            ("/logout", Endpoint::Logout),
            ("/logout/all", Endpoint::LogoutAll),
            ("/auth/logout/all", Endpoint::LogoutAll),
            ("/password", Endpoint::Password),
            ("/v1/users/me/delete", Endpoint::DeleteAccount),
            ("/email", Endpoint::ChangeEmail),
            ("/email/verify", Endpoint::VerifyEmail),
            ("/v1/password/forgot", Endpoint::ForgotPassword),
            ("/password/reset/", Endpoint::ResetPassword),
            ("/v1/sessions", Endpoint::Sessions),
            (
                "/sessions/0b4c1f4e-8d0a-4c2e-9a57-3f1c2b7d9e10",
                Endpoint::EndSession,
            ),
            ("/v1/me/events", Endpoint::Events),
            // A function URL's root is the login, as it was before there were other routes.
            ("/", Endpoint::Login),
        ] {
            assert_eq!(Endpoint::of(path), route, "{path}");
        }
    }
}
