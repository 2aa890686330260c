// The page: hash routes #/signup, #/login, #/private over three sections of index.html.
//
// <body data-state> tells tests (and CSS) where things stand:
//   loading     a request is in flight (the session restore at start-up, a form, a logout,
//               the private page's GET /protected); the page is not settled yet;
//   logged-in   an access token is in memory (on #/private: the user is shown);
//   logged-out  no access token.

import * as api from './api.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['signup', 'login', 'private'];
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
  let view = location.hash.replace(/^#\//, '');
  if (!VIEWS.includes(view)) view = api.isLoggedIn() ? 'private' : 'login';
  if (view === 'private' && !api.isLoggedIn()) {
    view = 'login';
    pending ??= { notice: 'Please log in to see the private page.' };
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
  const user = await api.signUp(data.get('username'), data.get('password'));
  $('signup-form').reset();
  $('login-username').value = user.username;
  navigate('#/login', { notice: `Account ${user.username} created. You can log in now.` });
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
