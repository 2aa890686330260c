// Passkeys in the browser: the WebAuthn calls and the JSON they travel in. The API sends the
// options of a ceremony with its binary members as base64url strings, and wants the browser's
// answer back the same way (no padding); the browser's API wants and gives ArrayBuffers.

/** Whether this browser can use passkeys at all. */
export const supported = () => typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

function fromBase64url(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
}

function toBase64url(buffer) {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withBinaryId = (descriptor) => ({ ...descriptor, id: fromBase64url(descriptor.id) });

// The browser's exceptions say little a person can act on; these do.
function explained(err) {
  if (err?.name === 'NotAllowedError') {
    return new Error('The passkey request was cancelled or timed out, or this device has no passkey for this site.');
  }
  if (err?.name === 'AbortError') return new Error('The passkey request was cancelled.');
  if (err?.name === 'InvalidStateError') return new Error('This authenticator holds a passkey of this account already.');
  if (err?.name === 'SecurityError') {
    return new Error("Passkeys do not work on this page: it must be https (or localhost) and within the service's passkey domain.");
  }
  return new Error(`Passkey failed: ${err?.message ?? err}`);
}

// The API's options as the browser wants them; options it cannot read are the service's fault,
// said as such rather than as the browser's InvalidCharacterError or TypeError.
function converted(convert) {
  try {
    return convert();
  } catch {
    throw new Error('Passkey failed: the service sent options this page cannot read.');
  }
}

/**
 * navigator.credentials.create() with the API's registration options (`options.publicKey`):
 * resolves to the new credential as the JSON `POST /passkeys/register` takes.
 */
export async function create(publicKey) {
  const options = converted(() => ({
    ...publicKey,
    challenge: fromBase64url(publicKey.challenge),
    user: { ...publicKey.user, id: fromBase64url(publicKey.user.id) },
    excludeCredentials: (publicKey.excludeCredentials ?? []).map(withBinaryId),
  }));
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey: options });
  } catch (err) {
    throw explained(err);
  }
  if (!credential) throw new Error('No passkey was made.');
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: toBase64url(credential.response.attestationObject),
      clientDataJSON: toBase64url(credential.response.clientDataJSON),
    },
    extensions: credential.getClientExtensionResults(),
  };
}

/**
 * navigator.credentials.get() with the API's sign-in options (`options.publicKey`), in a dialog
 * (no conditional mediation): resolves to the assertion as the JSON `POST /token/passkey` takes.
 */
export async function get(publicKey) {
  const options = converted(() => ({
    ...publicKey,
    challenge: fromBase64url(publicKey.challenge),
    allowCredentials: (publicKey.allowCredentials ?? []).map(withBinaryId),
  }));
  let credential;
  try {
    credential = await navigator.credentials.get({ publicKey: options });
  } catch (err) {
    throw explained(err);
  }
  if (!credential) throw new Error('No passkey was chosen.');
  const { response } = credential;
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: toBase64url(response.authenticatorData),
      clientDataJSON: toBase64url(response.clientDataJSON),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  };
}
