// The API client. The access token lives only in this module's variables: never in
// localStorage, sessionStorage, a readable cookie or IndexedDB, so it is gone on reload and
// script in the page cannot find it lying around. So does a login's second-step ticket
// (`mfa_token`) between the password and the code. The refresh token is an HttpOnly cookie the
// browser keeps and sends to /token/refresh and /logout only; this code never sees it.

import { API_BASE } from './config.js';

// The 401s of authenticated routes that are about what the user typed, not the session: a wrong
// current password (`/password`, `/email`, `/users/me/delete`, `/mfa/*`, `/passkeys/*`) and a
// wrong second-step code (`/mfa/*`).
const NOT_THE_SESSION = new Set(['Current password is wrong', 'Invalid code']);

// No proactive refresh: an expired access token gets a 401 and the retry path below refreshes it.
let accessToken = null;
// The ticket of a login whose password was right and whose second step is due (`POST /token/mfa`).
let mfaTicket = null;

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the API could not be reached
   * @param {string} message the API's `msg`, or a description of the failure
   * @param {boolean} sessionEnded the session could not be renewed; the token was cleared
   */
  constructor(status, message, sessionEnded = false) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.sessionEnded = sessionEnded;
  }
}

export const isLoggedIn = () => accessToken !== null;

function setSession(body) {
  accessToken = body.token;
  mfaTicket = null;
}

function clearSession() {
  accessToken = null;
}

/**
 * One request. `cookie` sends and accepts cookies (credentials: 'include'): only for the token
 * function's routes, the only ones whose CORS answer allows credentials; elsewhere the browser
 * would refuse the response. Resolves to {status, data} (data: parsed JSON or null) for any
 * HTTP answer; a network or CORS failure (the browser hides which) throws ApiError(0).
 */
async function request(method, path, { body, token, cookie = false } = {}) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    // Always JSON: the API refuses other types (415), and this type forces the CORS preflight
    // the cookie routes rely on against CSRF.
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (cookie) init.credentials = 'include';
  let response;
  try {
    response = await fetch(API_BASE + path, init);
  } catch {
    throw new ApiError(0, 'Cannot reach the API');
  }
  const data = await response.json().catch(() => null); // 204, or a body that is not JSON
  return { status: response.status, data };
}

// The error for an unexpected answer: the API's {"msg"}, API Gateway's own {"message"}, or the status.
function failure({ status, data }) {
  return new ApiError(status, data?.msg ?? data?.message ?? `Request failed (HTTP ${status})`);
}

/** POST /users (with an address to verify, if `email` is not empty): resolves to {id, username}. */
export async function signUp(username, password, email = '') {
  const body = email ? { username, password, email } : { username, password };
  const res = await request('POST', '/users', { body });
  if (res.status !== 201) throw failure(res);
  return res.data;
}

/**
 * POST /token: keeps the access token (the browser stores the refresh cookie) and resolves to
 * {secondStep: false}; or, for an account with two-step verification, keeps the ticket of the
 * second step and resolves to {secondStep: true}: completeLogin() with a code follows.
 */
export async function logIn(username, password) {
  // A new first step replaces any earlier login's ticket, whatever its answer.
  mfaTicket = null;
  const res = await request('POST', '/token', { body: { username, password }, cookie: true });
  if (res.status !== 200) throw failure(res);
  if (res.data?.mfa_required) {
    clearSession();
    mfaTicket = res.data.mfa_token;
    return { secondStep: true };
  }
  setSession(res.data);
  return { secondStep: false };
}

/** Whether a login waits for its second step (a reload forgets it, as it forgets the token). */
export const secondStepDue = () => mfaTicket !== null;

/** Forgets a waiting second step's ticket: the user left that page. */
export function forgetSecondStep() {
  mfaTicket = null;
}

/**
 * POST /token/mfa: the second step of a login, with the 6-digit code of the app or a recovery
 * code. A wrong code keeps the ticket for another try; a ticket the API no longer takes
 * (expired, used, out of attempts) is dropped, and secondStepDue() says so.
 */
export async function completeLogin(code) {
  if (mfaTicket === null) throw new ApiError(401, 'Invalid or expired MFA ticket, log in again');
  const res = await request('POST', '/token/mfa', { body: { mfa_token: mfaTicket, code }, cookie: true });
  if (res.status !== 200) {
    if (res.status === 401 && res.data?.msg !== 'Invalid code') mfaTicket = null;
    throw failure(res);
  }
  setSession(res.data);
}

/** POST /token/passkey/options: resolves to {challenge_id, options} for navigator.credentials.get(). */
export async function passkeySignInOptions() {
  // No cookie: this route neither reads nor sets one (and with AllowedOrigins `*` a request
  // with credentials would be refused).
  const res = await request('POST', '/token/passkey/options', { body: '{}' });
  if (res.status !== 200) throw failure(res);
  return res.data;
}

/** POST /token/passkey with the browser's assertion (JSON): a login, as POST /token's. */
export async function logInWithPasskey(challengeId, credential) {
  const body = { challenge_id: challengeId, credential };
  const res = await request('POST', '/token/passkey', { body, cookie: true });
  if (res.status !== 200) throw failure(res);
  setSession(res.data);
}

let refreshing = null;

// The tabs of one browser share the refresh cookie. A refresh holds this lock (the Web Locks
// API, per origin, across tabs), so another tab's refresh waits and then sends the cookie this
// one's answer set, instead of racing it with the same token: only one token is ever in use.
const REFRESH_LOCK = 'jwt-auth refresh';

function oneTabAtATime(work) {
  // Every browser this client supports has Web Locks; without them, refresh as before.
  return navigator.locks ? navigator.locks.request(REFRESH_LOCK, work) : work();
}

/**
 * POST /token/refresh with the cookie: true when a new access token is in memory, false when
 * there is no session (401); throws on anything else (403 origin not allowed, 503, network).
 * Single flight: concurrent callers in this page share one request, and tabs take turns
 * (`oneTabAtATime`), so this browser never presents the same refresh token twice (a second use
 * after the API's grace period counts as reuse and would revoke the session).
 */
export function refresh() {
  refreshing ??= oneTabAtATime(async () => {
    // An answer lost on the way back (a network failure) or a 503 may come after the API used
    // the token: one more try at once falls within its grace period and gets the same successor,
    // where a later one would count as reuse.
    const send = () => request('POST', '/token/refresh', { body: '{}', cookie: true });
    let res;
    try {
      res = await send();
      if (res.status === 503) res = await send();
    } catch {
      res = await send();
    }
    if (res.status === 200) {
      setSession(res.data);
      return true;
    }
    // 401: no session. Anything else (503, 403) says nothing about the session: keep what is
    // in memory, so a passing failure does not log the user out.
    if (res.status === 401) {
      clearSession();
      return false;
    }
    throw failure(res);
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/**
 * A request with the access token. A 401 (expired or revoked token) gets exactly one refresh
 * and one retry; if either fails, the token is cleared and the error says sessionEnded.
 */
async function authorized(method, path, options = {}) {
  let res = await request(method, path, { ...options, token: accessToken });
  // A wrong current password or code is a 401 too, but the session is fine: no refresh, no
  // retry (a retry would count the same wrong password or code twice against the limits).
  if (res.status !== 401 || NOT_THE_SESSION.has(res.data?.msg)) return res;
  let renewed;
  try {
    renewed = await refresh();
  } catch (err) {
    clearSession();
    throw new ApiError(err.status, err.message, true);
  }
  if (renewed) {
    res = await request(method, path, { ...options, token: accessToken });
    if (res.status !== 401) return res;
  }
  clearSession();
  const { status, message } = failure(res);
  throw new ApiError(status, message, true);
}

/** GET /protected: resolves to the caller's {id, username}. */
export async function me() {
  const res = await authorized('GET', '/protected');
  if (res.status !== 200) throw failure(res);
  return res.data;
}

// A query string of the parameters that are set: `?cursor=...&limit=...`, or nothing.
function query(params) {
  const set = Object.entries(params).filter(([, value]) => value !== null && value !== undefined);
  return set.length ? `?${new URLSearchParams(set)}` : '';
}

/**
 * GET /sessions: one page of the caller's live sessions, newest start first. Resolves to
 * {sessions: [{id, created_at, last_used_at, device, ip_at_start, ip_last_used, current}],
 * next_cursor} (times in unix seconds, addresses possibly null, next_cursor null on the last
 * page); `cursor` is a page's next_cursor, `limit` 1 to 100 (the API's default: 20).
 */
export async function sessions({ cursor = null, limit = null } = {}) {
  const res = await authorized('GET', `/sessions${query({ cursor, limit })}`);
  if (res.status !== 200) throw failure(res);
  return res.data;
}

/**
 * DELETE /sessions/{id}: ends another session of the caller (its device is signed out at its
 * next request). Resolves to true, or false when there was no such live session (404: it had
 * ended already). The caller's own session ends with logOut(), which clears the cookie too.
 */
export async function endSession(id) {
  const res = await authorized('DELETE', `/sessions/${encodeURIComponent(id)}`);
  if (res.status === 404) return false;
  if (res.status !== 204) throw failure(res);
  return true;
}

/**
 * GET /me/events: one page of the caller's security history, newest first. Resolves to
 * {events: [{id, at, type, outcome, ip, device, detail}], next_cursor}; `cursor` and `limit`
 * as for sessions().
 */
export async function securityEvents({ cursor = null, limit = null } = {}) {
  const res = await authorized('GET', `/me/events${query({ cursor, limit })}`);
  if (res.status !== 200) throw failure(res);
  return res.data;
}

/** POST /logout: ends this session and clears the cookie (204 even if there was none). */
export async function logOut() {
  const res = await request('POST', '/logout', { body: '{}', cookie: true });
  if (res.status !== 204) throw failure(res);
  clearSession();
}

/** POST /logout/all: ends every session of the user; the answer also clears this cookie. */
export async function logOutEverywhere() {
  const res = await authorized('POST', '/logout/all', { cookie: true });
  if (res.status !== 204) throw failure(res);
  clearSession();
}

/** POST /password: changes the password; every session ends, this one too (the answer clears the cookie). */
export async function changePassword(currentPassword, newPassword) {
  const body = { current_password: currentPassword, new_password: newPassword };
  const res = await authorized('POST', '/password', { body, cookie: true });
  if (res.status !== 204) throw failure(res);
  clearSession();
}

/** POST /email: mails the address a link that confirms it; resolves to the API's message. */
export async function changeEmail(email, currentPassword) {
  const res = await authorized('POST', '/email', { body: { email, current_password: currentPassword } });
  if (res.status !== 202) throw failure(res);
  return res.data.msg;
}

/** POST /email/verify with the token of a mailed link. */
export async function verifyEmail(token) {
  const res = await request('POST', '/email/verify', { body: { token } });
  if (res.status !== 204) throw failure(res);
}

/** POST /password/forgot with a username or an email address; resolves to the API's message. */
export async function forgotPassword(who) {
  const body = who.includes('@') ? { email: who } : { username: who };
  const res = await request('POST', '/password/forgot', { body });
  if (res.status !== 202) throw failure(res);
  return res.data.msg;
}

/** POST /password/reset with the token of a mailed link and the new password. */
export async function resetPassword(token, newPassword) {
  const res = await request('POST', '/password/reset', { body: { token, new_password: newPassword }, cookie: true });
  if (res.status !== 204) throw failure(res);
  clearSession();
}

/** POST /users/me/delete: deletes the account and everything of it; the answer clears the cookie. */
export async function deleteAccount(password) {
  const res = await authorized('POST', '/users/me/delete', { body: { password }, cookie: true });
  if (res.status !== 204) throw failure(res);
  clearSession();
}

/**
 * GET /mfa: resolves to the caller's {totp, recovery_codes_left, passkeys: [{id, name,
 * created_at}], passkeys_available}.
 */
export async function securityStatus() {
  const res = await authorized('GET', '/mfa');
  if (res.status !== 200) throw failure(res);
  return res.data;
}

/**
 * POST /mfa/totp/enrol: a new TOTP secret, pending until confirmTotp(); resolves to {secret,
 * otpauth_uri, qr_svg, expires_in}.
 */
export async function startTotp(currentPassword) {
  const res = await authorized('POST', '/mfa/totp/enrol', { body: { current_password: currentPassword } });
  if (res.status !== 200) throw failure(res);
  return res.data;
}

// The answer of a change to the second factor: every other session ended, and this one goes on
// as a new session (a new access token here, a new refresh cookie in the browser).
function adoptNewSession(res) {
  if (res.status !== 200) throw failure(res);
  setSession(res.data);
  return res.data.recovery_codes ?? [];
}

/** POST /mfa/totp/confirm with the app's first code: turns it on; resolves to the recovery codes. */
export async function confirmTotp(code) {
  return adoptNewSession(await authorized('POST', '/mfa/totp/confirm', { body: { code }, cookie: true }));
}

/** POST /mfa/recovery-codes: ten new recovery codes in place of the old ones; resolves to them. */
export async function newRecoveryCodes(currentPassword, code) {
  const body = { current_password: currentPassword, code };
  return adoptNewSession(await authorized('POST', '/mfa/recovery-codes', { body, cookie: true }));
}

/** POST /mfa/totp/disable with the password and a code (or a recovery code): turns it off. */
export async function disableTotp(currentPassword, code) {
  const body = { current_password: currentPassword, code };
  adoptNewSession(await authorized('POST', '/mfa/totp/disable', { body, cookie: true }));
}

/** POST /passkeys/register/options: resolves to {challenge_id, options} for navigator.credentials.create(). */
export async function passkeyRegistrationOptions(currentPassword) {
  const body = { current_password: currentPassword };
  const res = await authorized('POST', '/passkeys/register/options', { body });
  if (res.status !== 200) throw failure(res);
  return res.data;
}

/** POST /passkeys/register with the browser's new credential (JSON): resolves to {id, name, created_at}. */
export async function registerPasskey(challengeId, credential, name) {
  const body = name ? { challenge_id: challengeId, credential, name } : { challenge_id: challengeId, credential };
  const res = await authorized('POST', '/passkeys/register', { body });
  if (res.status !== 201) throw failure(res);
  return res.data;
}

/** POST /passkeys/delete: removes one of the caller's passkeys. */
export async function deletePasskey(id, currentPassword) {
  const res = await authorized('POST', '/passkeys/delete', { body: { id, current_password: currentPassword } });
  if (res.status !== 204) throw failure(res);
}
