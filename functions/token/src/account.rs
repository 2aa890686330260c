//! The account's email address and the password reset: `POST /email`, `/email/verify`,
//! `/password/forgot` and `/password/reset`.
//!
//! An address is the user's once a link mailed to it was opened (`/email/verify`); only then is
//! it used for recovery, and only one account may hold it. No answer tells whether an address or
//! a name belongs to an account: `/email` answers 202 whether it mailed a link or, the address
//! being another account's, a notice to that address; `/password/forgot` answers 202 with the
//! same body, no sooner than `FORGOT_PASSWORD_RESPONSE_MS`, whatever it found. Link tokens are
//! 256 random bits, stored only as their SHA-256, single-use and expiring, and travel in the
//! link's fragment.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::error::ApiError;
use shared::events::EventKind;
use shared::http::{
    Forgotten, client, client_address, email_change, empty, forgotten, json, link_token, password_reset,
};
use shared::mail::{Kind, Mail};
use shared::session::RefreshToken;
use shared::store::{Confirmed, ResetRecord, UserRecord};
use shared::throttle::ClientKey;
use shared::user::{EmailAddress, Password, Username};

use super::{App, confirm_password, ended, identified, meanwhile_clearing};

/// The body of a 202: what happens next, the same whatever was found.
#[derive(Serialize)]
struct Accepted {
    msg: &'static str,
}

fn accepted(msg: &'static str) -> Response<Body> {
    json(StatusCode::ACCEPTED, &Accepted { msg })
}

const EMAIL_ACCEPTED: &str = "A message is on its way to that address: open its link to confirm it";
const FORGOT_ACCEPTED: &str =
    "If the account has a verified email address, a link to reset its password is on its way";

/// Sends the notice `kind` to `address`, if it is one: best effort, for a notice whose failure
/// must not undo what it tells of. Not counted by the address's mail limit: a notice follows
/// what only the account's owner can do (with its password or a link from its mailbox), and
/// must not be crowded out by the links that limit bounds.
pub(crate) async fn notify(app: &App, address: Option<&str>, kind: Kind, detail: Option<&str>) {
    let (Some(mailer), Some(to)) = (&app.mailer, address.and_then(|a| EmailAddress::parse(a).ok())) else {
        return;
    };
    let mail = Mail {
        kind,
        to,
        text: kind.text(detail),
    };
    if let Err(error) = mailer.send(&mail).await {
        tracing::warn!(error = %shared::http::error_chain(&error), ?kind, "notice not sent");
    }
}

/// The user a record names, if it is still that user.
async fn user_of(app: &App, username_key: &str, user_id: &str) -> Result<Option<UserRecord>, ApiError> {
    let Ok(name) = Username::parse(username_key) else {
        return Ok(None);
    };
    Ok(app
        .store
        .find_by_username(&name)
        .await?
        .filter(|user| user.id == user_id))
}

/// `POST /email`: with the current password (counted by the login limit), mails the address a
/// verification link, or, when another account holds it, a notice instead; 202 either way.
pub(crate) async fn change_email(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let input = email_change(req)?;
    let email = EmailAddress::parse(&input.email)?;
    let current = Password::parse_existing(input.current_password)?;
    let mailer = app.mailer.as_ref().ok_or_else(shared::mail::not_configured)?;
    let (user, attempt) = confirm_password(app, &caller, &username, current, "email change").await?;
    meanwhile_clearing(app, attempt, async {
        app.mail_limits
            .reserve_client(&ClientKey::of(client_address(req)))
            .await?;
        shared::mail::start_verification(
            &*app.store,
            &**mailer,
            &app.mail_limits,
            &app.mail,
            app.clock.now(),
            &user.id,
            &username.key(),
            user.epoch,
            email,
        )
        .await?;
        tracing::info!(user_id = %user.id, "email change requested");
        Ok(accepted(EMAIL_ACCEPTED))
    })
    .await
}

/// `POST /email/verify`: the link's token makes its address the user's (and lets go of the
/// old one, which is told).
pub(crate) async fn verify_email(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let input = link_token(req)?;
    let token = RefreshToken::parse(&input.0).ok_or(ApiError::InvalidLink)?;
    let hash = token.hash();
    let record = app
        .store
        .find_verification(&hash)
        .await?
        .filter(|record| record.expires_at > app.clock.now())
        .ok_or(ApiError::InvalidLink)?;
    let user = user_of(app, &record.username_key, &record.user_id)
        .await?
        .ok_or(ApiError::InvalidLink)?;
    let verified = crate::event(app, EventKind::EmailVerified, Some(&user.id), &client(req));
    match app
        .store
        .confirm_email(&hash, &record, user.email.as_deref(), &verified)
        .await?
    {
        Confirmed::Done => verified.log(),
        Confirmed::Taken => return Err(ApiError::EmailTaken),
        Confirmed::Stale => return Err(ApiError::InvalidLink),
    }
    tracing::info!(user_id = %user.id, "email address verified");
    if let Some(previous) = user
        .email
        .as_deref()
        .filter(|p| !p.eq_ignore_ascii_case(&record.email))
    {
        let masked = EmailAddress::parse(&record.email)
            .map(|e| e.masked())
            .unwrap_or_default();
        notify(app, Some(previous), Kind::AddressChanged, Some(&masked)).await;
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /password/forgot`: 202, the same body, no sooner than the configured time, whether a
/// link was sent or not; only a malformed body (400) or the client address's limit (429)
/// answers otherwise, and neither depends on the account.
pub(crate) async fn forgot_password(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let started = tokio::time::Instant::now();
    let who = forgotten(req)?;
    // A malformed name or address is a 400, as the contract says: that tells nothing of accounts.
    match &who {
        Forgotten::Username(name) => drop(Username::parse(name)?),
        Forgotten::Email(address) => drop(EmailAddress::parse(address)?),
    }
    app.mail_limits
        .reserve_client(&ClientKey::of(client_address(req)))
        .await?;
    // Bounded by the floor too: a slow store or SES must not make a found account's answer
    // slower than an unknown one's (a link not sent in time is not sent, and logged).
    let deadline = started + app.mail.forgot_response;
    match tokio::time::timeout_at(deadline, send_reset(app, &who)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(error = %shared::http::error_chain(&error), "password reset link not sent")
        }
        Err(_) => tracing::warn!("password reset link not sent within FORGOT_PASSWORD_RESPONSE_MS"),
    }
    tokio::time::sleep_until(deadline).await;
    Ok(accepted(FORGOT_ACCEPTED))
}

/// Mails a reset link to the verified address of the account `who` names, if there is one and
/// its limit allows; the newest link is the only one that works.
async fn send_reset(app: &App, who: &Forgotten) -> Result<(), ApiError> {
    let Some(mailer) = &app.mailer else {
        return Ok(());
    };
    let user = match who {
        Forgotten::Username(name) => match Username::parse(name) {
            Ok(name) => app.store.find_by_username(&name).await?,
            Err(_) => None,
        },
        Forgotten::Email(address) => {
            let key = address.to_ascii_lowercase();
            match app.store.email_owner(&key).await? {
                Some(owner) => user_of(app, &owner.username_key, &owner.user_id)
                    .await?
                    .filter(|user| {
                        user.email
                            .as_deref()
                            .is_some_and(|e| e.eq_ignore_ascii_case(&key))
                    }),
                None => None,
            }
        }
    };
    let Some(user) = user else { return Ok(()) };
    let Some(to) = user.email.as_deref().and_then(|e| EmailAddress::parse(e).ok()) else {
        return Ok(());
    };
    if !app.mail_limits.reserve_recipient(&to).await? {
        return Ok(());
    }
    let token = RefreshToken::generate();
    let record = ResetRecord {
        user_id: user.id.clone(),
        username_key: user.username.to_ascii_lowercase(),
        expires_at: app.clock.now() + app.mail.reset_ttl.as_secs(),
    };
    if !app.store.issue_reset(&token.hash(), &record).await? {
        return Ok(());
    }
    let mail = Mail {
        kind: Kind::Reset,
        text: Kind::Reset.text(Some(&app.mail.link("reset", token.expose()))),
        to,
    };
    mailer
        .send(&mail)
        .await
        .map_err(|e| ApiError::MailUnavailable(e.into()))?;
    tracing::info!(user_id = %user.id, "password reset link sent");
    Ok(())
}

/// `POST /password/reset`: the newest link's token, unused and unexpired, sets the new password,
/// ends every session and clears the name's login limit; the address is told.
pub(crate) async fn reset_password(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let input = password_reset(req)?;
    let new = Password::parse_new(input.new_password)?;
    let token = RefreshToken::parse(&input.token.0).ok_or(ApiError::InvalidLink)?;
    let hash = token.hash();
    let record = app
        .store
        .find_reset(&hash)
        .await?
        .filter(|record| record.expires_at > app.clock.now())
        .ok_or(ApiError::InvalidLink)?;
    let user = user_of(app, &record.username_key, &record.user_id)
        .await?
        .filter(|user| user.reset_hash.as_deref() == Some(hash.0.as_str()))
        .ok_or(ApiError::InvalidLink)?;
    let new_hash = app.hasher.hash(new).await?;
    let reset = crate::event(app, EventKind::PasswordReset, Some(&user.id), &client(req));
    if !app
        .store
        .reset_password(&hash, &record, &new_hash, &reset)
        .await?
    {
        return Err(ApiError::InvalidLink);
    }
    reset.log();
    tracing::info!(user_id = %user.id, "password reset; every session ended");
    if let Err(error) = app.throttle.forget(&record.username_key).await {
        tracing::warn!(error = %shared::http::error_chain(&error), "could not clear the login limit");
    }
    notify(app, user.email.as_deref(), Kind::PasswordReset, None).await;
    Ok(ended(app, req))
}
