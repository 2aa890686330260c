"""The local signing keys of `./dev run` and `./dev test`, and their rotation (`./dev rotate`).

The key set is a JSON file in the same shape as the deployed Secrets Manager secret
(shared/src/keystore.rs): {"keys": [{"kid", "state", "private_key"}]}, with states current,
next and previous, plus "signing_since" (when the current key began to sign). Deployed, the
keyset function keeps it; locally this script does, with the same three steps:

  publish   generate the next key; verifiers get it, tokens are still signed with the current one
  sign      sign with the next key; the old one stays published as the previous key
  retire    drop the previous key, once every token it signed has expired (the access-token
            lifetime, the authorizer cache and the leeway after `sign`; --force skips the check)

Commands: init FILE | status FILE | publish FILE | sign FILE | retire FILE [--force]
          | env FILE (the functions' JWT_SIGNING_KEY and JWT_PUBLIC_KEYS lines, for an env file)
          | pem FILE [STATE] (a key's PEM, for tests that sign as a holder of the key would).
Settings, which must match the service's (the defaults do): ACCESS_TOKEN_TTL_SECONDS (900),
AUTHORIZER_CACHE_TTL_SECONDS (300), JWT_LEEWAY_SECONDS (5).
"""

import base64
import hashlib
import json
import os
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


def public_jwk(pem):
    """The public half as the service publishes it, kid = RFC 7638 thumbprint."""
    numbers = serialization.load_pem_private_key(pem.encode(), password=None).public_key().public_numbers()
    x, y = b64url(numbers.x.to_bytes(32, "big")), b64url(numbers.y.to_bytes(32, "big"))
    canonical = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"))
    kid = b64url(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"}


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, keyset):
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keyset, f, indent=2)
    os.replace(tmp, path)


def key(pem, state):
    return {"kid": public_jwk(pem)["kid"], "state": state, "private_key": pem}


def in_state(keyset, state):
    return next((k for k in keyset["keys"] if k["state"] == state), None)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def describe(keyset):
    return ", ".join(f"{k['state']} {k['kid']}" for k in keyset["keys"])


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    command, path, rest = argv[0], argv[1], argv[2:]
    if command == "init":
        if not os.path.exists(path):
            save(path, {"keys": [key(new_key(), "current")], "signing_since": int(time.time())})
            print(f"generated a dev-only signing key in {path}", file=sys.stderr)
        return
    keyset = load(path)
    if command == "status":
        print(describe(keyset))
        return
    if command == "publish":
        if in_state(keyset, "next"):
            fail(f"a next key is already published ({describe(keyset)}): `sign` is the next step")
        if in_state(keyset, "previous"):
            fail(f"the previous key is still published ({describe(keyset)}): `retire` it first")
        keyset["keys"].append(key(new_key(), "next"))
    elif command == "sign":
        upcoming = in_state(keyset, "next")
        if not upcoming:
            fail(f"no next key ({describe(keyset)}): `publish` one first")
        for k in keyset["keys"]:
            k["state"] = {"current": "previous", "next": "current"}[k["state"]]
        keyset["signing_since"] = int(time.time())
    elif command == "retire":
        if not in_state(keyset, "previous"):
            fail(f"no previous key to retire ({describe(keyset)})")
        wait = int(os.environ.get("ACCESS_TOKEN_TTL_SECONDS", 900)) + \
            int(os.environ.get("AUTHORIZER_CACHE_TTL_SECONDS", 300)) + \
            int(os.environ.get("JWT_LEEWAY_SECONDS", 5))
        left = keyset.get("signing_since", 0) + wait - int(time.time())
        if left > 0 and "--force" not in rest:
            fail(f"tokens signed by the previous key may be valid for {left} s more (access-token "
                 f"lifetime + authorizer cache + leeway after `sign`); retire then, or pass --force")
        keyset["keys"] = [k for k in keyset["keys"] if k["state"] != "previous"]
    elif command == "env":
        current = in_state(keyset, "current")
        jwks = {"keys": [public_jwk(k["private_key"]) for k in keyset["keys"]]}
        # Double quotes with \n escapes: the PEM on one line of a dotenv file.
        print('JWT_SIGNING_KEY="' + current["private_key"].strip().replace("\n", "\\n") + '"')
        print("JWT_PUBLIC_KEYS='" + json.dumps(jwks, separators=(",", ":")) + "'")
        return
    elif command == "pem":
        wanted = in_state(keyset, rest[0] if rest else "current")
        if not wanted:
            fail(f"no {rest[0]} key ({describe(keyset)})")
        print(wanted["private_key"], end="")
        return
    else:
        fail(f"unknown command {command!r}\n{__doc__}")
    save(path, keyset)
    print(f"{command}: {describe(keyset)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
