//! "Your devices" and the security history: `GET /sessions`, `DELETE /sessions/{id}` and
//! `GET /me/events`, each the caller's own only (the list is chosen by the verified token,
//! never by the request), a page at a time.
//!
//! Round trips: a listing reads the caller (user and session, one `GetItem` each, at once) and
//! its page (one `Query`) concurrently, one round trip; ending a session reads the caller, then
//! writes (two).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use shared::error::ApiError;
use shared::events::{EndedBy, EventKind, UNKNOWN_DEVICE};
use shared::http::{client, current_user, empty, json};
use shared::store::{ListCursor, Liveness, Page, SessionSummary, StoredEvent};

use crate::{App, event, identified};

/// A page's size when the request names none.
pub const DEFAULT_PAGE: u32 = 20;
/// The largest page a request may ask for.
pub const MAX_PAGE: u32 = 100;

/// A session as `GET /sessions` answers it.
#[derive(Debug, Serialize)]
struct SessionView {
    id: String,
    created_at: u64,
    last_used_at: u64,
    device: String,
    ip_at_start: Option<String>,
    ip_last_used: Option<String>,
    current: bool,
}

#[derive(Debug, Serialize)]
struct SessionsPage {
    sessions: Vec<SessionView>,
    next_cursor: Option<String>,
}

/// An event as `GET /me/events` answers it.
#[derive(Debug, Serialize)]
struct EventView {
    id: String,
    at: u64,
    #[serde(rename = "type")]
    kind: String,
    outcome: String,
    ip: Option<String>,
    device: String,
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
struct EventsPage {
    events: Vec<EventView>,
    next_cursor: Option<String>,
}

/// `limit` and `cursor` of a listing: 400 for a limit that is not a whole number from 1 to
/// [`MAX_PAGE`], or a cursor this API did not give out.
fn page_query(req: &Request) -> Result<(u32, Option<ListCursor>), ApiError> {
    let query = req.query_string_parameters();
    let limit = match query.first("limit") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n) && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be a whole number from 1 to {MAX_PAGE}"))
            })?,
    };
    let cursor = match query.first("cursor") {
        None => None,
        Some(text) => Some(
            ListCursor::parse(text)
                .ok_or_else(|| ApiError::BadRequest("cursor is not one this API gave out".into()))?,
        ),
    };
    Ok((limit, cursor))
}

/// Which sessions are live at `now`, by the configured lifetimes.
fn liveness(app: &App, now: u64) -> Liveness {
    let config = app.sessions.config();
    Liveness {
        now,
        started_after: now.saturating_sub(config.absolute.as_secs()),
        idle_since: now.saturating_sub(config.idle.as_secs()),
    }
}

fn next(page_next: Option<&ListCursor>) -> Option<String> {
    page_next.map(ListCursor::encode)
}

/// `GET /sessions`: the caller's live sessions, newest first.
pub(crate) async fn sessions(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let (limit, after) = page_query(req)?;
    let now = app.clock.now();
    let live = liveness(app, now);
    let (found, page) = tokio::join!(
        app.store.find_caller(&username, &caller.session_id),
        app.store
            .list_sessions(&caller.user_id, caller.epoch, live, limit, after.as_ref()),
    );
    current_user(&caller, found?, now)?;
    let Page { items, next: more } = page?;
    let sessions = items
        .into_iter()
        .map(|s: SessionSummary| SessionView {
            current: s.id == caller.session_id,
            id: s.id,
            created_at: s.started_at,
            last_used_at: s.last_used_at,
            device: s.device.unwrap_or_else(|| UNKNOWN_DEVICE.to_owned()),
            ip_at_start: s.ip_at_start,
            ip_last_used: s.ip_last_used,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &SessionsPage {
            sessions,
            next_cursor: next(more.as_ref()),
        },
    ))
}

/// `DELETE /sessions/{id}`: ends one of the caller's live sessions (its refresh token at once,
/// its access tokens at the routes that read the store); 404 for any other id.
pub(crate) async fn end_session(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    // The last segment: `{id}` under API Gateway and under a function URL alike. Only a session
    // id's shape is looked up.
    let id = req
        .uri()
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|id| uuid::Uuid::try_parse(id).ok())
        .map(|id| id.to_string());
    let found = app.store.find_caller(&username, &caller.session_id).await?;
    let now = app.clock.now();
    current_user(&caller, found, now)?;
    let live = liveness(app, now);
    let Some(id) = id else {
        return Err(ApiError::NoSuchSession);
    };
    let ended = event(
        app,
        EventKind::SessionEnded(EndedBy::DeviceList),
        Some(&caller.user_id),
        &client(req),
    );
    if !app
        .store
        .end_session(&caller.user_id, caller.epoch, &id, live, &ended)
        .await?
    {
        return Err(ApiError::NoSuchSession);
    }
    ended.log();
    tracing::info!(user_id = %caller.user_id, session_id = %id, "session ended from the device list");
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /me/events`: the caller's security history, newest first.
pub(crate) async fn events(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, username) = identified(app, req)?;
    let (limit, after) = page_query(req)?;
    let (found, page) = tokio::join!(
        app.store.find_caller(&username, &caller.session_id),
        app.store.list_events(&caller.user_id, limit, after.as_ref()),
    );
    current_user(&caller, found?, app.clock.now())?;
    let Page { items, next: more } = page?;
    let events = items
        .into_iter()
        .map(|e: StoredEvent| EventView {
            id: e.id,
            at: e.at,
            kind: e.kind,
            outcome: e.outcome,
            ip: e.ip,
            device: e.device.unwrap_or_else(|| UNKNOWN_DEVICE.to_owned()),
            detail: e.detail,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &EventsPage {
            events,
            next_cursor: next(more.as_ref()),
        },
    ))
}
