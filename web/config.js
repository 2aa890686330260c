// The API base URL: the stage URL the routes hang off, with its stage path if it has one
// (https://abc123.execute-api.us-east-1.amazonaws.com/v1), with or without a trailing slash.
// The first of these that is set wins:
//   1. window.JWT_AUTH_API, set by a classic script loaded before app.js, for example
//      <script src="env.js"></script> holding `window.JWT_AUTH_API = 'https://...';`.
//      (Module scripts run after classic ones, so it is set in time. Not an inline script:
//      that would need a CSP exception.)
//   2. <meta name="api-base" content="https://..."> in index.html (empty content = not set);
//   3. http://localhost:3000, the API of `./dev run`. Keep `localhost` (not 127.0.0.1) there:
//      the refresh cookie is SameSite=Strict, and 127.0.0.1 is another site than localhost:5173.

const DEFAULT_API = 'http://localhost:3000';

function configured() {
  const fromWindow = window.JWT_AUTH_API;
  if (typeof fromWindow === 'string' && fromWindow.trim()) return fromWindow.trim();
  const fromMeta = document.querySelector('meta[name="api-base"]')?.content;
  if (fromMeta && fromMeta.trim()) return fromMeta.trim();
  return DEFAULT_API;
}

export const API_BASE = configured().replace(/\/+$/, '');
