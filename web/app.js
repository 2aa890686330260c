// The page: hash routes over the sections of index.html: #/signup, #/login (and a login's
// second step, #/two-step, while api.js holds its ticket), #/forgot, and, logged in, #/private,
// #/password, #/email, #/delete, #/security (two-step verification and passkeys), #/devices (the
// account's sessions) and #/activity (its security history). A mailed link opens #verify=<token>
// or #reset=<token>: the token is taken into memory at once and the address bar shows #/verify or
// #/reset, so the token stays in no history entry (it never reaches a server: it is a fragment).
//
// <body data-state> tells tests (and CSS) where things stand:
//   loading     a request is in flight (the session restore at start-up, a form, a logout,
//               the private page's GET /protected, a page of a list); the page is not settled yet;
//   logged-in   an access token is in memory (on #/private: the user is shown);
//   logged-out  no access token.

import * as api from './api.js';
import * as webauthn from './webauthn.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['signup', 'login', 'two-step', 'forgot', 'reset', 'verify', 'private', 'password', 'email', 'delete',
  'security', 'devices', 'activity'];
// The views that need a session.
const PRIVATE = ['private', 'password', 'email', 'delete', 'security', 'devices', 'activity'];
const NO_LINK = 'Open the link from the message we sent you.';

// The token of the mailed link this page was opened with ({kind: 'verify' | 'reset', token}).
let link = null;

// A mailed link's token moves from the address bar into memory.
function takeLink() {
  const match = /^#(verify|reset)=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match) return;
  link = { kind: match[1], token: match[2] };
  history.replaceState(null, '', `#/${match[1]}`);
}
const SESSION_ENDED = 'Your session has ended. Please log in again.';

// Messages for the next render, so a notice survives the navigation that follows an action.
let pending = null;
// Bumped by each render, so a slow GET /protected cannot settle a page the user has left.
let renderCount = 0;

function setState(state) {
  document.body.dataset.state = state;
}

function settle() {
  setState(api.isLoggedIn() ? 'logged-in' : 'logged-out');
}

function showMessages({ notice = '', error = '' } = {}) {
  $('notice').textContent = notice;
  $('error').textContent = error;
}

function navigate(hash, messages = null) {
  pending = messages;
  if (location.hash === hash) render();
  else location.hash = hash; // render() runs on hashchange
}

// An action failed: a session that could not be renewed goes back to the login page; any
// other error is shown where the user is.
function failed(err) {
  if (err.sessionEnded) {
    navigate('#/login', err.status === 401 ? { notice: SESSION_ENDED } : { error: err.message });
  } else {
    showMessages({ error: err.message });
    settle();
  }
}

async function render() {
  const count = ++renderCount;
  takeLink();
  let view = location.hash.replace(/^#\//, '');
  if (!VIEWS.includes(view)) view = api.isLoggedIn() ? 'private' : 'login';
  if (PRIVATE.includes(view) && !api.isLoggedIn()) {
    view = 'login';
    pending ??= { notice: 'Please log in first.' };
  }
  // The second step needs the ticket of a login's first; a reload forgets it.
  if (view === 'two-step' && !api.secondStepDue()) view = api.isLoggedIn() ? 'private' : 'login';
  // Recovery codes, and a started enrolment's key and QR code, are shown until the user leaves
  // the Security page, and not again; a second step's ticket is forgotten once its page is left.
  if (view !== 'security') {
    shownCodes = null;
    $('recovery-codes').replaceChildren();
    $('totp-secret').textContent = '';
    $('totp-qr').replaceChildren();
  }
  if (view !== 'two-step') api.forgetSecondStep();
  // A list of sessions or events stays on its page only while it is shown.
  if (view !== 'devices') clearList(SESSIONS);
  if (view !== 'activity') clearList(EVENTS);
  // Redirects replace the history entry, so Back does not bounce off them.
  if (location.hash !== `#/${view}`) history.replaceState(null, '', `#/${view}`);

  showMessages(pending ?? {});
  pending = null;
  for (const name of VIEWS) $(name).hidden = name !== view;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === `#/${view}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }

  if (view === 'verify') return verify();
  if (view === 'reset' && link?.kind !== 'reset') showMessages({ error: NO_LINK });
  if (view === 'two-step') $('two-step-code').focus();
  if (view === 'security') return security(count);
  if (view === 'devices') return showFirstPage(SESSIONS, count);
  if (view === 'activity') return showFirstPage(EVENTS, count);
  if (view !== 'private') return settle();
  $('user-id').textContent = '';
  $('user-name').textContent = '';
  setState('loading');
  try {
    const user = await api.me();
    if (count !== renderCount) return;
    $('user-id').textContent = user.id;
    $('user-name').textContent = user.username;
    settle();
  } catch (err) {
    if (count === renderCount) failed(err);
  }
}

// #/verify: a button confirms the address of the link the page was opened with. A click, not
// the page load: mail scanners that open links (and run their script) must not confirm an
// address nobody asked for.
function verify() {
  const ready = link?.kind === 'verify';
  $('verify-form').hidden = !ready;
  if (!ready) showMessages({ error: NO_LINK });
  settle();
}

// Runs `action` with `button` disabled and the page loading; errors are shown by failed().
async function busy(button, action) {
  button.disabled = true;
  setState('loading');
  showMessages();
  try {
    await action();
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
}

function onSubmit(formId, action) {
  const form = $(formId);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(form.querySelector('button[type="submit"]'), () => action(new FormData(form)));
  });
}

onSubmit('signup-form', async (data) => {
  const email = data.get('email').trim();
  const user = await api.signUp(data.get('username'), data.get('password'), email);
  $('signup-form').reset();
  $('login-username').value = user.username;
  const mail = email ? ' Open the link we mailed to confirm your address.' : '';
  navigate('#/login', { notice: `Account ${user.username} created. You can log in now.${mail}` });
});

onSubmit('verify-form', async () => {
  if (link?.kind !== 'verify') throw new api.ApiError(0, NO_LINK);
  await api.verifyEmail(link.token);
  link = null;
  $('verify-form').hidden = true;
  showMessages({ notice: 'Your email address is confirmed.' });
  settle();
});

onSubmit('forgot-form', async (data) => {
  const message = await api.forgotPassword(data.get('who').trim());
  $('forgot-form').reset();
  showMessages({ notice: message });
  settle();
});

onSubmit('reset-form', async (data) => {
  if (link?.kind !== 'reset') throw new api.ApiError(0, NO_LINK);
  await api.resetPassword(link.token, data.get('new_password'));
  link = null;
  $('reset-form').reset();
  navigate('#/login', { notice: 'Your password is changed and every session ended. Log in with the new one.' });
});

onSubmit('password-form', async (data) => {
  await api.changePassword(data.get('current_password'), data.get('new_password'));
  $('password-form').reset();
  navigate('#/login', { notice: 'Your password is changed and every session ended. Log in with the new one.' });
});

onSubmit('email-form', async (data) => {
  const message = await api.changeEmail(data.get('email').trim(), data.get('current_password'));
  $('email-form').reset();
  showMessages({ notice: message });
  settle();
});

onSubmit('delete-form', async (data) => {
  await api.deleteAccount(data.get('password'));
  $('delete-form').reset();
  navigate('#/signup', { notice: 'Your account and everything stored with it are deleted.' });
});

onSubmit('login-form', async (data) => {
  const { secondStep } = await api.logIn(data.get('username'), data.get('password'));
  $('login-form').reset();
  navigate(secondStep ? '#/two-step' : '#/private');
});

onSubmit('two-step-form', async (data) => {
  try {
    await api.completeLogin(data.get('code').trim());
  } catch (err) {
    $('two-step-code').value = '';
    // The ticket is spent (expired, used, out of attempts): only a new login helps.
    if (!api.secondStepDue() && !err.sessionEnded && err.status === 401) {
      navigate('#/login', { error: err.message });
      return;
    }
    throw err;
  }
  $('two-step-form').reset();
  navigate('#/private');
});

$('passkey-login').addEventListener('click', (event) =>
  busy(event.currentTarget, async () => {
    const { challenge_id: challengeId, options } = await api.passkeySignInOptions();
    const credential = await webauthn.get(options.publicKey);
    await api.logInWithPasskey(challengeId, credential);
    navigate('#/private');
  }),
);

// --- #/security: two-step verification and passkeys ---------------------------------------

// The recovery codes just made (shown until the user leaves the page), the passkey whose
// removal waits for the password.
let shownCodes = null;
let removing = null;
const SVG = 'http://www.w3.org/2000/svg';

async function security(count) {
  for (const id of ['totp-enrol-form', 'totp-setup', 'recovery', 'new-codes-form', 'totp-disable-form', 'passkeys',
    'passkeys-unavailable', 'passkey-remove-form']) {
    $(id).hidden = true;
  }
  // An enrolment left unconfirmed is dropped from the page (the API forgets it in 10 minutes).
  $('totp-qr').replaceChildren();
  $('totp-secret').textContent = '';
  removing = null;
  $('totp-status').textContent = '';
  setState('loading');
  try {
    const status = await api.securityStatus();
    if (count !== renderCount) return;
    showSecurity(status);
    settle();
  } catch (err) {
    if (count === renderCount) failed(err);
  }
}

function showSecurity(status) {
  const left = status.recovery_codes_left;
  $('totp-status').textContent = status.totp
    ? `On: logins ask for a code from your authenticator app. ${left} recovery code${left === 1 ? '' : 's'} left.`
    : 'Off: logins ask only for your password.';
  $('totp-enrol-form').hidden = status.totp;
  $('new-codes-form').hidden = !status.totp;
  $('totp-disable-form').hidden = !status.totp;
  $('recovery').hidden = !shownCodes;
  $('recovery-codes').replaceChildren(...(shownCodes ?? []).map((code) => {
    const item = document.createElement('li');
    item.textContent = code;
    return item;
  }));

  const usable = status.passkeys_available && webauthn.supported();
  $('passkeys').hidden = !usable;
  $('passkeys-unavailable').hidden = usable;
  $('passkeys-unavailable').textContent = !status.passkeys_available
    ? 'This service offers no passkeys.'
    : 'This browser cannot use passkeys.';
  $('passkeys-empty').hidden = status.passkeys.length > 0;
  $('passkey-list').replaceChildren(...status.passkeys.map(passkeyItem));
}

function passkeyItem(passkey) {
  const item = document.createElement('li');
  item.dataset.passkeyId = passkey.id;
  const name = document.createElement('span');
  name.className = 'passkey-name';
  name.textContent = passkey.name;
  const added = new Date(passkey.created_at * 1000);
  const date = document.createElement('time');
  date.dateTime = added.toISOString();
  date.textContent = `added ${added.toLocaleDateString()}`;
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'secondary';
  remove.textContent = 'Remove';
  remove.setAttribute('aria-label', `Remove ${passkey.name}`);
  remove.addEventListener('click', () => {
    removing = passkey;
    $('passkey-remove-name').textContent = passkey.name;
    $('passkey-remove-form').hidden = false;
    $('passkey-remove-current_password').focus();
  });
  item.append(name, ' ', date, ' ', remove);
  return item;
}

// The enrolment's QR code, an SVG document from the API, as an element of this page: parsed as
// XML (never as HTML, and no data: URL, which the CSP refuses), kept to its drawing.
const QR_ELEMENTS = new Set(['svg', 'g', 'rect', 'path']);
const QR_ATTRIBUTES = new Set([
  'xmlns', 'version', 'width', 'height', 'viewBox', 'd', 'fill', 'x', 'y', 'shape-rendering',
  'stroke', 'stroke-width',
]);

function showQr(text) {
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  const svg = doc.documentElement;
  if (svg.namespaceURI !== SVG || svg.localName !== 'svg' || doc.getElementsByTagName('parsererror').length) {
    $('totp-qr').replaceChildren(); // the key is on the page as text anyway
    return;
  }
  // Only what the service's QR code is made of (the qrcode crate's SVG: a rect and a path),
  // in the SVG namespace, with their drawing attributes; anything else is dropped.
  for (const element of [...svg.querySelectorAll('*')]) {
    if (element.namespaceURI !== SVG || !QR_ELEMENTS.has(element.localName)) element.remove();
  }
  for (const element of [svg, ...svg.querySelectorAll('*')]) {
    for (const { name } of [...element.attributes]) {
      if (!QR_ATTRIBUTES.has(name)) element.removeAttribute(name);
    }
  }
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'QR code of the key for your authenticator app');
  $('totp-qr').replaceChildren(document.importNode(svg, true));
}

onSubmit('totp-enrol-form', async (data) => {
  const enrolment = await api.startTotp(data.get('current_password'));
  $('totp-enrol-form').reset();
  showQr(enrolment.qr_svg);
  $('totp-secret').textContent = enrolment.secret;
  $('totp-enrol-form').hidden = true;
  $('totp-setup').hidden = false;
  $('totp-confirm-code').focus();
  settle();
});

onSubmit('totp-confirm-form', async (data) => {
  shownCodes = await api.confirmTotp(data.get('code').trim());
  $('totp-confirm-form').reset();
  $('totp-qr').replaceChildren();
  $('totp-secret').textContent = '';
  navigate('#/security', { notice: 'Two-step verification is on. Your other sessions ended.' });
});

onSubmit('new-codes-form', async (data) => {
  shownCodes = await api.newRecoveryCodes(data.get('current_password'), data.get('code').trim());
  $('new-codes-form').reset();
  navigate('#/security', { notice: 'New recovery codes: the old ones no longer work. Your other sessions ended.' });
});

onSubmit('totp-disable-form', async (data) => {
  await api.disableTotp(data.get('current_password'), data.get('code').trim());
  $('totp-disable-form').reset();
  shownCodes = null;
  navigate('#/security', { notice: 'Two-step verification is off. Your other sessions ended.' });
});

onSubmit('passkey-add-form', async (data) => {
  const { challenge_id: challengeId, options } = await api.passkeyRegistrationOptions(data.get('current_password'));
  const credential = await webauthn.create(options.publicKey);
  const added = await api.registerPasskey(challengeId, credential, data.get('name').trim());
  $('passkey-add-form').reset();
  navigate('#/security', { notice: `Passkey “${added.name}” added: you can sign in with it.` });
});

onSubmit('passkey-remove-form', async (data) => {
  if (!removing) return;
  await api.deletePasskey(removing.id, data.get('current_password'));
  const { name } = removing;
  removing = null;
  $('passkey-remove-form').reset();
  navigate('#/security', { notice: `Passkey “${name}” removed.` });
});

$('passkey-remove-cancel').addEventListener('click', () => {
  removing = null;
  $('passkey-remove-form').reset();
  $('passkey-remove-form').hidden = true;
});

// --- #/devices and #/activity: lists read a page at a time ---------------------------------

// Items asked for at a time; "Load more" asks for the next page with the last one's cursor.
const PAGE_SIZE = 20;

// A paged list: where it is shown, how to fetch a page and make an item of it; `cursor` is the
// next page's (null: no more).
const SESSIONS = {
  list: 'session-list', empty: 'sessions-empty', more: 'sessions-more',
  fetch: async (cursor) => {
    const page = await api.sessions({ cursor, limit: PAGE_SIZE });
    return { items: page.sessions, cursor: page.next_cursor };
  },
  item: sessionItem,
  cursor: null,
};
const EVENTS = {
  list: 'event-list', empty: 'events-empty', more: 'events-more',
  fetch: async (cursor) => {
    const page = await api.securityEvents({ cursor, limit: PAGE_SIZE });
    return { items: page.events, cursor: page.next_cursor };
  },
  item: eventItem,
  cursor: null,
};

function clearList(paged) {
  paged.cursor = null;
  $(paged.list).replaceChildren();
  $(paged.empty).hidden = true;
  $(paged.more).hidden = true;
}

function showPage(paged, { items, cursor }) {
  $(paged.list).append(...items.map(paged.item));
  paged.cursor = cursor ?? null;
  $(paged.empty).hidden = $(paged.list).childElementCount > 0;
  $(paged.more).hidden = paged.cursor === null;
}

// The first page of a list, for the render `count` (a later render wins).
async function showFirstPage(paged, count) {
  clearList(paged);
  setState('loading');
  try {
    const page = await paged.fetch(null);
    if (count !== renderCount) return;
    clearList(paged);
    showPage(paged, page);
    settle();
  } catch (err) {
    if (count === renderCount) failed(err);
  }
}

for (const paged of [SESSIONS, EVENTS]) {
  $(paged.more).addEventListener('click', (event) => {
    const count = renderCount;
    busy(event.currentTarget, async () => {
      const page = await paged.fetch(paged.cursor);
      if (count !== renderCount) return;
      showPage(paged, page);
      settle();
    });
  });
}

// A time of the API (unix seconds) in the user's locale, as a <time> element.
function timeElement(seconds) {
  const at = new Date(seconds * 1000);
  const element = document.createElement('time');
  element.dateTime = at.toISOString();
  element.textContent = at.toLocaleString();
  return element;
}

function facts(pairs) {
  const list = document.createElement('dl');
  for (const [term, value] of pairs) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.append(value);
    list.append(dt, dd);
  }
  return list;
}

function span(className, text) {
  const element = document.createElement('span');
  element.className = className;
  element.textContent = text;
  return element;
}

const address = (ip) => ip ?? 'unknown';

function sessionItem(session) {
  const item = document.createElement('li');
  item.dataset.sessionId = session.id;
  const head = document.createElement('div');
  head.className = 'row-head';
  head.append(span('row-title', session.device));
  const signOut = document.createElement('button');
  signOut.type = 'button';
  signOut.className = 'secondary';
  if (session.current) {
    item.dataset.current = '';
    head.append(' ', span('badge', 'This device'));
    // This browser's own session ends as a logout: the answer clears its cookie too.
    signOut.textContent = 'Sign out';
    signOut.addEventListener('click', () => busy(signOut, async () => {
      await api.logOut();
      navigate('#/login', { notice: 'You are logged out.' });
    }));
  } else {
    signOut.textContent = 'Sign out this device';
    const started = new Date(session.created_at * 1000).toLocaleString();
    signOut.setAttribute('aria-label', `Sign out ${session.device}, signed in ${started}`);
    signOut.addEventListener('click', () => busy(signOut, async () => {
      const ended = await api.endSession(session.id);
      navigate('#/devices', {
        notice: ended ? `${session.device} is signed out.` : 'That device was signed out already.',
      });
    }));
  }
  head.append(signOut);
  item.append(head, facts([
    ['Signed in', timeElement(session.created_at)],
    ['Last used', timeElement(session.last_used_at)],
    ['IP at sign-in', address(session.ip_at_start)],
    ['IP last used', address(session.ip_last_used)],
  ]));
  return item;
}

// What an event was, in words: by its type, and its detail where that says more.
const EVENT_WORDS = {
  'login.succeeded': {
    password: 'Signed in with a password',
    totp: 'Signed in with a password and an authenticator code',
    recovery_code: 'Signed in with a password and a recovery code',
    passkey: 'Signed in with a passkey',
    '': 'Signed in',
  },
  'login.failed': {
    password: 'Failed sign-in (wrong password)',
    second_factor: 'Failed sign-in (wrong two-step verification code)',
    '': 'Failed sign-in',
  },
  'session.reuse_detected': { '': 'A stolen or replayed session token was refused; that session was ended' },
  'session.ended': { logout: 'Signed out', device_list: 'Signed out a device', '': 'A session ended' },
  'sessions.ended_everywhere': { '': 'Signed out everywhere' },
  'password.changed': { '': 'Password changed' },
  'password.reset': { '': 'Password reset with an emailed link' },
  'email.verified': { '': 'Email address confirmed' },
  'second_factor.enabled': { '': 'Two-step verification turned on' },
  'second_factor.disabled': { '': 'Two-step verification turned off' },
  'recovery_codes.replaced': { '': 'New recovery codes made' },
  'passkey.added': { '': 'Passkey added' },
  'passkey.removed': { '': 'Passkey removed' },
};
const OUTCOMES = { success: 'Succeeded', failure: 'Failed' };

function eventWords(event) {
  const words = EVENT_WORDS[event.type];
  // A type this page does not know yet (a newer API) is shown as it is named.
  if (!words) return `Security event: ${event.type}`;
  return words[event.detail ?? ''] ?? words[''];
}

function eventItem(event) {
  const item = document.createElement('li');
  item.dataset.eventId = event.id;
  item.dataset.eventType = event.type;
  item.dataset.outcome = event.outcome;
  const head = document.createElement('div');
  head.className = 'row-head';
  head.append(span('row-title', eventWords(event)), ' ',
    span(event.outcome === 'failure' ? 'badge failure' : 'badge', OUTCOMES[event.outcome] ?? event.outcome));
  item.append(head, facts([
    ['When', timeElement(event.at)],
    ['Device', event.device ?? 'unknown'],
    ['IP', address(event.ip)],
  ]));
  return item;
}

$('logout').addEventListener('click', (event) =>
  busy(event.currentTarget, async () => {
    await api.logOut();
    navigate('#/login', { notice: 'You are logged out.' });
  }),
);

$('logout-all').addEventListener('click', (event) =>
  busy(event.currentTarget, async () => {
    await api.logOutEverywhere();
    navigate('#/login', { notice: 'You are logged out on every device.' });
  }),
);

// Start-up: the access token died with the last page, so ask for a new one with the refresh
// cookie (if any). 200 restores the session, 401 means logged out; anything else is shown.
async function start() {
  takeLink(); // before any request: the token leaves the address bar at once
  $('passkey-login-box').hidden = !webauthn.supported();
  setState('loading');
  try {
    await api.refresh();
  } catch (err) {
    pending = { error: err.message };
  }
  window.addEventListener('hashchange', () => render());
  await render();
}

start();
