//! The second factor: TOTP with recovery codes. `POST /token/mfa` (a login's second step),
//! `GET /mfa` (the caller's second factors and passkeys), `POST /mfa/totp/enrol`,
//! `/mfa/totp/confirm`, `/mfa/totp/disable` and `/mfa/recovery-codes`.
//!
//! A login of a user with a second factor answers a right password with a ticket, not tokens
//! ([`MfaRequired`]): 256 random bits, stored only as their SHA-256, good for
//! `MFA_TICKET_SECONDS` and `MFA_TICKET_MAX_ATTEMPTS` codes. Each code is counted before it is
//! checked, on the ticket and on the user (`LOGIN#mfa/<user id>`, the login limit per name),
//! each count one conditional write; the second step commits in one transaction that deletes
//! the ticket, uses the code up (a TOTP step after the last accepted one, or a recovery code
//! among the unused) and starts the session, so a ticket and a code each work once however many
//! requests race.
//!
//! Every change (turning it on, off, new recovery codes) ends the user's other sessions (one
//! more epoch) and starts a new session for the caller in the same transaction, answered as a
//! login is; a verified address is told.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::error::ApiError;
use shared::events::{EventKind, FailedStep, LoginMethod};
use shared::http::{Delivery, Identity, client, fields, json};
use shared::keystore::SecretsKeyStore;
use shared::mail::Kind;
use shared::mfa::{Code, RecoveryCode, SealingKey, SealingKeySource, TotpSecret};
use shared::session::{RefreshToken, SessionUser};
use shared::store::{
    CodeUse, NewSession, PendingTotp, TicketRecord, TotpChange, TotpState, UserAt, UserRecord,
};
use shared::user::{Password, Username};
use tokio::sync::OnceCell;

use super::{
    App, TokenResponse, checked_user, confirm_password, identified, issue, meanwhile_clearing, signing,
    token_response,
};

/// The sealing key of TOTP secrets: given at cold start (`MFA_KEY`), or derived, on the first
/// use of the instance, from the value of the secret `MFA_KEY_SECRET` names.
pub struct Sealer {
    /// The secret's id and its store, when the key is read from Secrets Manager.
    secret: Option<(String, SecretsKeyStore)>,
    loaded: OnceCell<SealingKey>,
}

impl Sealer {
    /// From its source; `store_for` makes the client of a secret.
    pub fn new(source: SealingKeySource, store_for: impl FnOnce(&str) -> SecretsKeyStore) -> Self {
        match source {
            SealingKeySource::Key(key) => Self::ready(*key),
            SealingKeySource::Secret(id) => Self {
                secret: Some((id.clone(), store_for(&id))),
                loaded: OnceCell::new(),
            },
        }
    }

    /// With the key itself (from `MFA_KEY`).
    pub fn ready(key: SealingKey) -> Self {
        Self {
            secret: None,
            loaded: OnceCell::new_with(Some(key)),
        }
    }

    /// The key; a secret that cannot be read is a 503, one without a value a 500.
    pub async fn key(&self) -> Result<&SealingKey, ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                let Some((id, store)) = &self.secret else {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "no MFA sealing key configured"
                    )));
                };
                use secrecy::ExposeSecret as _;
                let value = store.load_text().await?.ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("the MFA key secret {id} has no value"))
                })?;
                if value.expose_secret().len() < 32 {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "the MFA key secret {id} holds fewer than 32 characters"
                    )));
                }
                tracing::info!("MFA sealing key loaded");
                Ok(SealingKey::derive(value.expose_secret().as_bytes()))
            })
            .await
    }
}

/// The answer to a right password when a second step is due (200: the password step
/// succeeded; no token yet).
#[derive(Serialize)]
pub struct MfaRequired {
    pub mfa_required: bool,
    pub mfa_token: String,
    pub expires_in: u64,
    /// What `POST /token/mfa` accepts as `code`.
    pub methods: [&'static str; 2],
}

/// After a right password, for a user with a second factor: a ticket for the second step.
pub(crate) async fn second_step_due(
    app: &App,
    user: &UserRecord,
    username_key: &str,
) -> Result<Response<Body>, ApiError> {
    let ticket = RefreshToken::generate();
    let record = TicketRecord {
        user_id: user.id.clone(),
        username_key: username_key.to_owned(),
        epoch: user.epoch,
        expires_at: app.clock.now() + app.mfa.ticket_seconds,
    };
    app.store.issue_ticket(&ticket.hash(), &record).await?;
    tracing::info!(user_id = %user.id, "password right; second step due");
    Ok(json(
        StatusCode::OK,
        &MfaRequired {
            mfa_required: true,
            mfa_token: ticket.expose().to_owned(),
            expires_in: app.mfa.ticket_seconds,
            methods: ["totp", "recovery_code"],
        },
    ))
}

fn parse_code(text: &str) -> Result<Code, ApiError> {
    Code::parse(text)
        .ok_or_else(|| ApiError::BadRequest("\"code\" must be a 6-digit code or a recovery code".into()))
}

/// How `code` may be used up on `totp` (whose secret is `secret`) at `now`: a TOTP code of a
/// step after the last accepted one, or an unused recovery code; `None`: it may not.
fn usable(code: &Code, secret: &TotpSecret, totp: &TotpState, user_id: &str, now: u64) -> Option<CodeUse> {
    match code {
        Code::Totp(digits) => secret
            .step_of(digits, now)
            .filter(|&step| step > totp.last_step)
            .map(CodeUse::Step),
        Code::Recovery(code) => {
            let hash = code.hash(user_id);
            totp.recovery.contains(&hash).then_some(CodeUse::Recovery(hash))
        }
    }
}

fn open_secret(key: &SealingKey, sealed: &str, user_id: &str) -> Result<TotpSecret, ApiError> {
    key.open(sealed, user_id)
        .map(TotpSecret::from_bytes)
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "a TOTP secret does not open with the sealing key"
            ))
        })
}

/// The per-user count of second-step codes: `LOGIN#mfa/<user id>`, under the login limit per
/// name (no username holds a `/`). Cleared by a right code; a right password does not clear it.
fn code_counter(user_id: &str) -> String {
    format!("mfa/{user_id}")
}

/// `POST /token/mfa`: a login's second step.
pub(crate) async fn complete_login(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let mut body = fields(req, &["mfa_token", "code", "refresh_token_in_body"])?;
    let ticket = body.string("mfa_token")?;
    let code = parse_code(&body.string("code")?)?;
    let delivery = delivery(body.flag("refresh_token_in_body")?);
    // Whatever can fail in answering is resolved before anything is counted or used.
    let (signer, issuer) = signing(app, req).await?;
    let key = app.sealer.key().await?;
    let ticket = RefreshToken::parse(&ticket).ok_or(ApiError::InvalidMfaTicket)?;
    let hash = ticket.hash();
    let now = app.clock.now();
    let Some(record) = app
        .store
        .spend_ticket(&hash, app.mfa.ticket_attempts, now)
        .await?
    else {
        tracing::info!("second step refused: ticket unknown, expired, used or out of attempts");
        return Err(ApiError::InvalidMfaTicket);
    };
    let username = Username::parse(&record.username_key).map_err(|_| ApiError::InvalidMfaTicket)?;
    let counter = code_counter(&record.user_id);
    let (attempt, user) = tokio::join!(
        app.throttle.reserve(&counter),
        app.store.find_by_username(&username),
    );
    let (attempt, user) = match (attempt, user) {
        (Ok(attempt), Ok(user)) => (attempt, user),
        (Ok(attempt), Err(e)) => {
            app.throttle.cancel(attempt).await;
            return Err(e.into());
        }
        (Err(e), _) => return Err(e),
    };
    let user = user
        .filter(|u| u.id == record.user_id && u.epoch == record.epoch)
        .ok_or(ApiError::InvalidMfaTicket)?;
    let totp = user.totp.as_ref().ok_or(ApiError::InvalidMfaTicket)?;
    let secret = open_secret(key, &totp.sealed_secret, &user.id)?;
    let Some(used) = usable(&code, &secret, totp, &user.id, now) else {
        tracing::info!(user_id = %user.id, attempt = attempt.number, "second step refused: wrong or used code");
        let failed = EventKind::LoginFailed(FailedStep::SecondFactor);
        crate::record(app, crate::event(app, failed, Some(&user.id), &client(req))).await;
        return Err(ApiError::WrongCode);
    };
    let method = match used {
        CodeUse::Step(_) => LoginMethod::Totp,
        CodeUse::Recovery(_) => LoginMethod::RecoveryCode,
    };
    let (session, token) = app.sessions.prepare(
        SessionUser {
            user_id: &user.id,
            username: &user.username,
            username_key: &record.username_key,
            epoch: user.epoch,
        },
        &client(req),
        EventKind::LoginSucceeded(method),
    );
    // The code is right: its count is cleared while the login commits, in one round trip (a
    // commit that loses to a concurrent use of the same code was no guess either).
    let token_hash = token.hash();
    let ((), committed) = tokio::join!(
        app.throttle.succeeded(attempt),
        app.store
            .complete_login(&hash, &record, &totp.sealed_secret, &used, &session, &token_hash,),
    );
    if !committed? {
        tracing::info!(user_id = %user.id, "second step refused: the ticket or the code was used meanwhile");
        return Err(ApiError::WrongCode);
    }
    session.event.log();
    if let CodeUse::Recovery(_) = used {
        tracing::info!(user_id = %user.id, left = totp.recovery.len() - 1, "recovery code used");
    }
    Ok(signed_in(
        app, req, signer, &issuer, &user, &session, &token, delivery, None,
    ))
}

fn delivery(in_body: bool) -> Delivery {
    if in_body { Delivery::Body } else { Delivery::Cookie }
}

/// The login body for a session just started (and, with `codes`, the new recovery codes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn signed_in(
    app: &App,
    req: &Request,
    signer: &shared::TokenIssuer,
    issuer: &str,
    user: &UserRecord,
    session: &NewSession,
    token: &RefreshToken,
    delivery: Delivery,
    codes: Option<Vec<RecoveryCode>>,
) -> Response<Body> {
    let subject = shared::Subject {
        user_id: &user.id,
        username: &user.username,
        epoch: session.epoch,
        session_id: &session.session_id,
    };
    let (mut body, jti): (TokenResponse, String) = issue(signer, issuer, subject);
    body.recovery_codes = codes.map(|codes| codes.iter().map(|c| c.expose().to_owned()).collect());
    tracing::info!(user_id = %user.id, jti = %jti, "token issued");
    let max_age = app.sessions.config().absolute.as_secs();
    token_response(app, req, body, Some((token.expose(), max_age)), delivery)
}

/// The caller, read with its password hash and second factor, checked against its session.
pub(crate) async fn caller(app: &App, req: &Request) -> Result<(Identity, Username, UserRecord), ApiError> {
    let (caller, username) = identified(app, req)?;
    let found = app
        .store
        .find_caller_with_hash(&username, &caller.session_id)
        .await?;
    let user = checked_user(app, &caller, found)?;
    Ok((caller, username, user))
}

/// The caller's second factors, as `GET /mfa` answers.
#[derive(Serialize)]
struct Status {
    totp: bool,
    recovery_codes_left: usize,
    passkeys: Vec<shared::store::PasskeySummary>,
    /// Whether this deployment offers passkeys (`WEBAUTHN_ORIGINS` set).
    passkeys_available: bool,
}

/// `GET /mfa`.
pub(crate) async fn status(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (_, _, user) = caller(app, req).await?;
    Ok(json(
        StatusCode::OK,
        &Status {
            totp: user.totp.is_some(),
            recovery_codes_left: user.totp.as_ref().map_or(0, |t| t.recovery.len()),
            passkeys: user.passkeys,
            passkeys_available: app.passkeys.is_some(),
        },
    ))
}

/// The answer to an enrolment: the secret to add to an app.
#[derive(Serialize)]
struct Enrolment {
    /// Base32, for typing in by hand.
    secret: String,
    /// For an app to add the account (`otpauth://totp/...`).
    otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    qr_svg: String,
    /// Seconds left to confirm it with a code.
    expires_in: u64,
}

/// `POST /mfa/totp/enrol` `{"current_password"}`: a new secret, pending until a code confirms it.
pub(crate) async fn enrol(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let mut body = fields(req, &["current_password"])?;
    let password = Password::parse_existing(body.string("current_password")?)?;
    let key = app.sealer.key().await?;
    let (user, attempt) = confirm_password(app, &caller, &username, password, "TOTP enrolment").await?;
    if user.totp.is_some() {
        app.throttle.succeeded(attempt).await;
        return Err(ApiError::SecondFactorOn);
    }
    let secret = TotpSecret::generate();
    // The answer is made before the write: nothing can fail after it.
    let otpauth_uri = secret.uri(&app.mfa.issuer, &user.username);
    let qr_svg = TotpSecret::qr_svg(&otpauth_uri)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an otpauth URI too long for a QR code")))?;
    let pending = PendingTotp {
        sealed_secret: key.seal(secret.as_bytes(), &user.id),
        until: app.clock.now() + app.mfa.enrol_seconds,
    };
    let username_key = username.key();
    let at = UserAt {
        username_key: &username_key,
        user_id: &user.id,
        epoch: user.epoch,
    };
    if !meanwhile_clearing(app, attempt, app.store.start_totp(at, &pending)).await? {
        return Err(ApiError::SecondFactorOn);
    }
    tracing::info!(user_id = %user.id, "TOTP enrolment started");
    Ok(json(
        StatusCode::OK,
        &Enrolment {
            secret: secret.base32(),
            otpauth_uri,
            qr_svg,
            expires_in: app.mfa.enrol_seconds,
        },
    ))
}

/// `POST /mfa/totp/confirm` `{"code"}`: the first code from the app turns the second factor on;
/// the answer holds the recovery codes, once.
pub(crate) async fn confirm(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let mut body = fields(req, &["code", "refresh_token_in_body"])?;
    let Code::Totp(digits) = parse_code(&body.string("code")?)? else {
        return Err(ApiError::BadRequest(
            "\"code\" must be the 6-digit code the app shows".into(),
        ));
    };
    let delivery = delivery(body.flag("refresh_token_in_body")?);
    let (signer, issuer) = signing(app, req).await?;
    let key = app.sealer.key().await?;
    let (_, username, user) = caller(app, req).await?;
    if user.totp.is_some() {
        return Err(ApiError::SecondFactorOn);
    }
    let now = app.clock.now();
    let pending = user
        .totp_pending
        .clone()
        .filter(|p| p.until > now)
        .ok_or_else(|| ApiError::BadRequest("No enrolment in progress: start it again".into()))?;
    let attempt = app.throttle.reserve(&code_counter(&user.id)).await?;
    let secret = open_secret(key, &pending.sealed_secret, &user.id)?;
    let Some(step) = secret.step_of(&digits, now) else {
        tracing::info!(user_id = %user.id, attempt = attempt.number, "TOTP enrolment: wrong code");
        return Err(ApiError::WrongCode);
    };
    let codes = RecoveryCode::generate_set();
    let change = TotpChange::Enable {
        pending: pending.sealed_secret,
        step,
        recovery: codes.iter().map(|c| c.hash(&user.id)).collect(),
    };
    // The code is right: its count is cleared while the change commits (one round trip).
    let ((), answer) = tokio::join!(
        app.throttle.succeeded(attempt),
        commit(
            app,
            req,
            (signer, &issuer),
            &username,
            &user,
            change,
            delivery,
            Some(codes),
            "turned on",
        ),
    );
    answer
}

/// The password and a current code of a change to a second factor that is on.
async fn checked_change(
    app: &App,
    req: &Request,
    what: &str,
) -> Result<(Username, UserRecord, TotpState, CodeUse, Delivery), ApiError> {
    let (caller, username) = identified(app, req)?;
    let mut body = fields(req, &["current_password", "code", "refresh_token_in_body"])?;
    let password = Password::parse_existing(body.string("current_password")?)?;
    let code = parse_code(&body.string("code")?)?;
    let delivery = delivery(body.flag("refresh_token_in_body")?);
    let key = app.sealer.key().await?;
    let (user, attempt) = confirm_password(app, &caller, &username, password, what).await?;
    meanwhile_clearing(app, attempt, async move {
        let totp = user
            .totp
            .clone()
            .ok_or_else(|| ApiError::BadRequest("Two-step verification is not on".into()))?;
        let attempt = app.throttle.reserve(&code_counter(&user.id)).await?;
        let secret = open_secret(key, &totp.sealed_secret, &user.id)?;
        let Some(used) = usable(&code, &secret, &totp, &user.id, app.clock.now()) else {
            tracing::info!(user_id = %user.id, attempt = attempt.number, "{what}: wrong or used code");
            return Err(ApiError::WrongCode);
        };
        app.throttle.succeeded(attempt).await;
        Ok((username, user, totp, used, delivery))
    })
    .await
}

/// `POST /mfa/totp/disable` `{"current_password", "code"}`: turns the second factor off.
pub(crate) async fn disable(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (signer, issuer) = signing(app, req).await?;
    let (username, user, totp, used, delivery) = checked_change(app, req, "TOTP disable").await?;
    let change = TotpChange::Disable {
        secret: totp.sealed_secret,
        used,
    };
    commit(
        app,
        req,
        (signer, &issuer),
        &username,
        &user,
        change,
        delivery,
        None,
        "turned off",
    )
    .await
}

/// `POST /mfa/recovery-codes` `{"current_password", "code"}`: ten new recovery codes in place of
/// the old ones.
pub(crate) async fn regenerate(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (signer, issuer) = signing(app, req).await?;
    let (username, user, totp, used, delivery) = checked_change(app, req, "recovery codes").await?;
    let codes = RecoveryCode::generate_set();
    let change = TotpChange::Regenerate {
        secret: totp.sealed_secret,
        used,
        recovery: codes.iter().map(|c| c.hash(&user.id)).collect(),
    };
    commit(
        app,
        req,
        (signer, &issuer),
        &username,
        &user,
        change,
        delivery,
        Some(codes),
        "recovery codes replaced",
    )
    .await
}

/// Applies `change`, ending every other session and starting the caller's new one in the same
/// transaction; tells a verified address.
#[allow(clippy::too_many_arguments)]
async fn commit(
    app: &App,
    req: &Request,
    (signer, issuer): (&shared::TokenIssuer, &str),
    username: &Username,
    user: &UserRecord,
    change: TotpChange,
    delivery: Delivery,
    codes: Option<Vec<RecoveryCode>>,
    what: &'static str,
) -> Result<Response<Body>, ApiError> {
    let key = username.key();
    let kind = match change {
        TotpChange::Enable { .. } => EventKind::SecondFactorEnabled,
        TotpChange::Disable { .. } => EventKind::SecondFactorDisabled,
        TotpChange::Regenerate { .. } => EventKind::RecoveryCodesReplaced,
    };
    let (session, token) = app.sessions.prepare(
        SessionUser {
            user_id: &user.id,
            username: &user.username,
            username_key: &key,
            epoch: user.epoch + 1,
        },
        &client(req),
        kind,
    );
    let at = UserAt {
        username_key: &key,
        user_id: &user.id,
        epoch: user.epoch,
    };
    if !app
        .store
        .change_totp(at, &change, &session, &token.hash())
        .await?
    {
        tracing::info!(user_id = %user.id, "second factor change lost to a concurrent change");
        return Err(ApiError::WrongCode);
    }
    session.event.log();
    tracing::info!(user_id = %user.id, "two-step verification {what}; every other session ended");
    super::account::notify(app, user.email.as_deref(), Kind::SecondFactorChanged, Some(what)).await;
    Ok(signed_in(
        app, req, signer, issuer, user, &session, &token, delivery, codes,
    ))
}
