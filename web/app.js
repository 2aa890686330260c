// The page: hash routes over the sections of index.html: #/signup, #/login, #/forgot, and,
// logged in, #/private, #/password, #/email, #/delete. A mailed link opens #verify=<token> or
// #reset=<token>: the token is taken into memory at once and the address bar shows #/verify or
// #/reset, so the token stays in no history entry (it never reaches a server: it is a fragment).
//
// <body data-state> tells tests (and CSS) where things stand:
//   loading     a request is in flight (the session restore at start-up, a form, a logout,
//               the private page's GET /protected); the page is not settled yet;
//   logged-in   an access token is in memory (on #/private: the user is shown);
//   logged-out  no access token.

import * as api from './api.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['signup', 'login', 'forgot', 'reset', 'verify', 'private', 'password', 'email', 'delete'];
// The views that need a session.
const PRIVATE = ['private', 'password', 'email', 'delete'];
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
  await api.logIn(data.get('username'), data.get('password'));
  $('login-form').reset();
  navigate('#/private');
});

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
