//! Passkeys (WebAuthn Level 2, `webauthn-rs`): `POST /passkeys/register/options` and
//! `/passkeys/register` (a signed-in user adds one, with the password), `/passkeys/delete`,
//! and `POST /token/passkey/options` and `/token/passkey`: sign-in without a username, with a
//! discoverable credential, issuing the same session a password login does. A passkey verifies
//! its user (user verification required), so it counts as both factors.
//!
//! Each ceremony's state waits in the table between its two requests (`CHALLENGE#<id>`,
//! expiring after [`CHALLENGE_SECONDS`]) and is deleted by the request that uses it, in one
//! conditional delete, before anything is verified: a challenge is used once, whatever the
//! outcome. The relying party id and origins come from configuration (`WEBAUTHN_*`), so an
//! assertion made for another site or page is refused. The sign counter is stored with the
//! credential, and the sign-in's commit is conditioned on it: a counter that did not move on
//! (a cloned authenticator) is refused and logged.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::Value;
use shared::error::ApiError;
use shared::events::{EventKind, LoginMethod};
use shared::http::{Delivery, client, client_address, empty, fields, json};
use shared::mail::Kind;
use shared::session::SessionUser;
use shared::store::{ChallengeRecord, PasskeySummary, PasskeyUse, StoredPasskey, UserAt};
use shared::throttle::ClientKey;
use shared::user::{Password, Username};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use super::mfa::signed_in;
use super::{App, confirm_password, event, identified, meanwhile_clearing, signing};

/// Seconds a ceremony may take, from its options to its answer (WebAuthn's recommended
/// timeout is 300 s).
pub const CHALLENGE_SECONDS: u64 = 300;
/// Longest name a passkey may be given.
pub const NAME_CHARS: usize = 64;
/// Longest credential id WebAuthn allows (Level 2, §5.8.3: "at most 1023 bytes"); a longer one
/// is no credential, and would not fit in a table key.
pub const CREDENTIAL_ID_BYTES: usize = 1023;

/// A challenge id as the options answered it (a UUID); anything else names no challenge and is
/// not looked up.
fn challenge_id(text: &str) -> Option<String> {
    Uuid::parse_str(text).ok().map(|id| id.to_string())
}

/// The base64url id of a credential, if it can be one.
fn credential_id(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty() && bytes.len() <= CREDENTIAL_ID_BYTES).then(|| URL_SAFE_NO_PAD.encode(bytes))
}

const REGISTER: &str = "register";
const SIGN_IN: &str = "sign-in";

fn relying_party(app: &App) -> Result<&Webauthn, ApiError> {
    app.passkeys.as_ref().ok_or_else(|| {
        ApiError::BadRequest("This service offers no passkeys (WEBAUTHN_ORIGINS is not configured)".into())
    })
}

fn internal(what: &'static str) -> impl FnOnce(serde_json::Error) -> ApiError {
    move |e| ApiError::Internal(anyhow::Error::new(e).context(what))
}

/// A ceremony's options and the id of its stored state.
#[derive(Serialize)]
struct Ceremony {
    challenge_id: String,
    /// For `navigator.credentials.create()` or `.get()`: `{"publicKey": ...}`, binary members
    /// base64url.
    options: Value,
}

async fn begin(
    app: &App,
    kind: &str,
    user_id: Option<&str>,
    state: String,
    options: Value,
) -> Result<Response<Body>, ApiError> {
    let id = Uuid::new_v4().to_string();
    let record = ChallengeRecord {
        kind: kind.to_owned(),
        user_id: user_id.map(str::to_owned),
        state,
        expires_at: app.clock.now() + CHALLENGE_SECONDS,
    };
    app.store.put_challenge(&id, &record).await?;
    Ok(json(
        StatusCode::OK,
        &Ceremony {
            challenge_id: id,
            options,
        },
    ))
}

/// The stored state of challenge `id` of `kind` (for `user_id`, if any), deleted as it is read:
/// `None` if there is no such unexpired challenge.
async fn take(app: &App, id: &str, kind: &str, user_id: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(id) = challenge_id(id) else {
        return Ok(None);
    };
    let Some(record) = app.store.take_challenge(&id, app.clock.now()).await? else {
        return Ok(None);
    };
    Ok((record.kind == kind && record.user_id.as_deref() == user_id).then_some(record.state))
}

/// `POST /passkeys/register/options` `{"current_password"}`: the options of a new passkey for
/// the caller, a discoverable credential with user verification, excluding those it has.
pub(crate) async fn register_options(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let webauthn = relying_party(app)?;
    let (caller, username) = identified(app, req)?;
    let mut body = fields(req, &["current_password"])?;
    let password = Password::parse_existing(body.string("current_password")?)?;
    let (user, attempt) = confirm_password(app, &caller, &username, password, "passkey registration").await?;
    let user_handle = Uuid::parse_str(&user.id)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("a user id that is not a UUID")))?;
    let exclude = user
        .passkeys
        .iter()
        .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.id).ok())
        .collect();
    let (options, state) = webauthn
        .start_passkey_registration(user_handle, &user.username, &user.username, Some(exclude))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("starting a passkey registration: {e}")))?;
    let mut options = serde_json::to_value(options).map_err(internal("serializing registration options"))?;
    // A passkey that signs in without a username must be discoverable: webauthn-rs's passkey
    // options leave that to the authenticator; this service requires it.
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    let state = serde_json::to_string(&state).map_err(internal("serializing a registration's state"))?;
    meanwhile_clearing(app, attempt, begin(app, REGISTER, Some(&user.id), state, options)).await
}

/// A registered passkey, as `POST /passkeys/register` answers.
#[derive(Serialize)]
struct Registered {
    #[serde(flatten)]
    passkey: PasskeySummary,
}

/// `POST /passkeys/register` `{"challenge_id", "credential", "name"?}`: the caller's new passkey.
pub(crate) async fn register(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let webauthn = relying_party(app)?;
    let mut body = fields(req, &["challenge_id", "credential", "name"])?;
    let challenge_id = body.string("challenge_id")?;
    let credential = body.object("credential")?;
    let name = body
        .optional_string("name")?
        .map(|n| n.trim().chars().take(NAME_CHARS).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Passkey".into());
    let credential: RegisterPublicKeyCredential = serde_json::from_value(credential)
        .map_err(|_| ApiError::BadRequest("\"credential\" is not a WebAuthn registration response".into()))?;
    let (_, username, user) = super::mfa::caller(app, req).await?;
    let state = take(app, &challenge_id, REGISTER, Some(&user.id))
        .await?
        .ok_or_else(|| ApiError::BadRequest("Invalid or expired challenge: start again".into()))?;
    let state: PasskeyRegistration =
        serde_json::from_str(&state).map_err(internal("reading a registration's state"))?;
    let passkey: Passkey = webauthn
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            ApiError::BadRequest("Passkey registration failed".into())
        })?;
    let id = credential_id(passkey.cred_id())
        .ok_or_else(|| ApiError::BadRequest("Passkey registration failed".into()))?;
    let summary = PasskeySummary {
        id,
        name,
        created_at: app.clock.now(),
    };
    let stored = StoredPasskey {
        id: summary.id.clone(),
        user_id: user.id.clone(),
        username_key: username.key(),
        credential: serde_json::to_string(&passkey).map_err(internal("serializing a passkey"))?,
        counter: 0,
    };
    let added = event(app, EventKind::PasskeyAdded, Some(&user.id), &client(req));
    if !app.store.add_passkey(&stored, &summary, &added).await? {
        return Err(ApiError::BadRequest("This passkey is registered already".into()));
    }
    added.log();
    tracing::info!(user_id = %user.id, passkey = %summary.id, "passkey registered");
    super::account::notify(
        app,
        user.email.as_deref(),
        Kind::PasskeysChanged,
        Some("one was added"),
    )
    .await;
    Ok(json(StatusCode::CREATED, &Registered { passkey: summary }))
}

/// `POST /passkeys/delete` `{"id", "current_password"}`: removes one of the caller's passkeys.
pub(crate) async fn delete(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let mut body = fields(req, &["id", "current_password"])?;
    let id = body.string("id")?;
    let password = Password::parse_existing(body.string("current_password")?)?;
    let (user, attempt) = confirm_password(app, &caller, &username, password, "passkey removal").await?;
    meanwhile_clearing(app, attempt, async {
        let at = UserAt {
            username_key: &username.key(),
            user_id: &user.id,
            epoch: user.epoch,
        };
        // An id that no credential can have is no passkey of the user's, and is not looked up.
        let known = URL_SAFE_NO_PAD
            .decode(&id)
            .ok()
            .and_then(|bytes| credential_id(&bytes))
            .is_some_and(|canonical| canonical == id);
        let removed = event(app, EventKind::PasskeyRemoved, Some(&user.id), &client(req));
        if !known || !app.store.remove_passkey(at, &id, &removed).await? {
            return Err(ApiError::NoSuchPasskey);
        }
        removed.log();
        tracing::info!(user_id = %user.id, passkey = %id, "passkey removed");
        super::account::notify(
            app,
            user.email.as_deref(),
            Kind::PasskeysChanged,
            Some("one was removed"),
        )
        .await;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// `POST /token/passkey/options`: the options of a sign-in with any passkey of this relying
/// party. Counted per client address under the login limit (a sign-in that succeeds takes its
/// count back): each writes a challenge, and nobody is signed in yet.
pub(crate) async fn sign_in_options(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let webauthn = relying_party(app)?;
    let client = ClientKey::of(client_address(req));
    let attempt = app.throttle.reserve_client(&client).await?;
    tracing::debug!(attempt = attempt.number, "passkey sign-in started");
    let (mut options, state): (_, DiscoverableAuthentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("starting a passkey sign-in: {e}")))?;
    // A "Sign in with a passkey" button asks in a dialog; webauthn-rs asks for conditional
    // mediation (the autofill list), which a page must opt into on its own.
    options.mediation = None;
    let options = serde_json::to_value(options).map_err(internal("serializing sign-in options"))?;
    let state = serde_json::to_string(&state).map_err(internal("serializing a sign-in's state"))?;
    begin(app, SIGN_IN, None, state, options).await
}

/// Why a passkey sign-in was refused: logged, never told (the client gets one 401).
fn refused(reason: &str) -> ApiError {
    tracing::info!(reason, "passkey sign-in refused");
    ApiError::PasskeyRefused
}

/// `POST /token/passkey` `{"challenge_id", "credential", "refresh_token_in_body"?}`: a sign-in
/// with a passkey, answered as a login.
pub(crate) async fn sign_in(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let webauthn = relying_party(app)?;
    let mut body = fields(req, &["challenge_id", "credential", "refresh_token_in_body"])?;
    let challenge_id = body.string("challenge_id")?;
    let credential = body.object("credential")?;
    let delivery = if body.flag("refresh_token_in_body")? {
        Delivery::Body
    } else {
        Delivery::Cookie
    };
    let credential: PublicKeyCredential = serde_json::from_value(credential)
        .map_err(|_| ApiError::BadRequest("\"credential\" is not a WebAuthn assertion".into()))?;
    let (signer, issuer) = signing(app, req).await?;
    let credential_id = credential_id(credential.get_credential_id())
        .ok_or_else(|| refused("no credential can have this id"))?;
    // The challenge is used up whatever follows; the passkey is read meanwhile.
    let (state, passkey) = tokio::join!(
        take(app, &challenge_id, SIGN_IN, None),
        app.store.find_passkey(&credential_id),
    );
    let state = state?.ok_or_else(|| refused("challenge unknown, used, expired or of another kind"))?;
    let passkey = passkey?.ok_or_else(|| refused("unknown credential"))?;
    let (user_handle, _) = webauthn
        .identify_discoverable_authentication(&credential)
        .map_err(|_| refused("no user handle"))?;
    if user_handle.to_string() != passkey.user_id {
        return Err(refused("the user handle is not the credential's user"));
    }
    let state: DiscoverableAuthentication =
        serde_json::from_str(&state).map_err(internal("reading a sign-in's state"))?;
    let mut stored: Passkey =
        serde_json::from_str(&passkey.credential).map_err(internal("reading a stored passkey"))?;
    #[allow(deprecated)]
    let result = webauthn
        .finish_discoverable_authentication(&credential, state, &[DiscoverableKey::from(&stored)])
        .map_err(|e| match e {
            WebauthnError::CredentialPossibleCompromise => {
                tracing::warn!(passkey = %passkey.id, user_id = %passkey.user_id, "passkey sign-in refused: its sign counter went back (a cloned authenticator?)");
                ApiError::PasskeyRefused
            }
            other => refused(&other.to_string()),
        })?;
    // webauthn-rs has refused a counter that did not move on (CredentialPossibleCompromise,
    // above) against the stored credential's; the commit below is conditioned on that counter
    // still being stored, so two sign-ins racing with one value cannot both pass.
    let counter = result.counter();
    stored.update_credential(&result);
    let updated = serde_json::to_string(&stored).map_err(internal("serializing a passkey"))?;
    let username = Username::parse(&passkey.username_key).map_err(|_| refused("malformed passkey owner"))?;
    let user = app
        .store
        .find_by_username(&username)
        .await?
        .filter(|u| u.id == passkey.user_id)
        .ok_or_else(|| refused("the passkey's user is gone"))?;
    let (session, token) = app.sessions.prepare(
        SessionUser {
            user_id: &user.id,
            username: &user.username,
            username_key: &passkey.username_key,
            epoch: user.epoch,
        },
        &client(req),
        EventKind::LoginSucceeded(LoginMethod::Passkey),
    );
    let at = UserAt {
        username_key: &passkey.username_key,
        user_id: &user.id,
        epoch: user.epoch,
    };
    // The assertion is verified: the address's attempt is taken back while the session starts,
    // in one round trip (a commit that loses to a concurrent change was no guess either).
    let (token_hash, client) = (token.hash(), ClientKey::of(client_address(req)));
    let used = PasskeyUse {
        credential: &updated,
        counter,
        at: app.clock.now(),
    };
    let ((), committed) = tokio::join!(
        app.throttle.release_client(&client),
        app.store
            .sign_in_with_passkey(&passkey, &used, at, &session, &token_hash),
    );
    if !committed? {
        return Err(refused("the passkey or its user changed meanwhile"));
    }
    session.event.log();
    tracing::info!(user_id = %user.id, passkey = %passkey.id, "signed in with a passkey");
    Ok(signed_in(
        app, req, signer, &issuer, &user, &session, &token, delivery, None,
    ))
}
