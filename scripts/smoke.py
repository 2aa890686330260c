#!/usr/bin/env python3
"""A short end-to-end check of a running stage: `./dev smoke [BASE_URL] [--origin ORIGIN]`.

Run it after `sam deploy` against the stack's `ApiUrl` (or, by default, against `./dev run`'s local
API). It signs up one throwaway user, named `smoke-` and 16 random hex digits with a random
password it never prints, and goes through sign-up, login, the protected route, refresh, logout
log out everywhere and a password change, a representative subset of the attack suite (forged, tampered and
wrongly typed tokens must all be refused), the CORS preflight and the CORS and cache headers of
error responses (the function's and API Gateway's own), and the published keys; a last check
fails if an operation of `openapi.yaml` never answered a success. The user stays
in the table only until the last checks delete it (`POST /users/me/delete`); if a run stops
before, its name says where it came from.

One line per check, `PASS name` or `FAIL name: why`, then `N passed, M failed`; the exit status
is 1 if any check failed. About 45 requests, each with a 15 s timeout; no retries, no waiting.
Python's standard library only, so it runs anywhere Python 3.9+ does.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import pathlib
import re
import secrets
import sys
import urllib.error
import urllib.request

TIMEOUT = 15
OPENAPI = pathlib.Path(__file__).resolve().parent.parent / "openapi.yaml"


def operations():
    """The (METHOD, path) of each operation of openapi.yaml but the preflights and those marked
    `x-needs-mailbox` (their success takes a mailed link). The file's own layout, read with the
    standard library: a path at two spaces, its methods at four, their fields at six."""
    found, path, operation = set(), None, None
    for line in OPENAPI.read_text().splitlines():
        if m := re.match(r"^  (/\S*):\s*$", line):
            path, operation = m.group(1), None
        elif path and (m := re.match(r"^    (get|put|post|delete|patch):", line)):
            operation = (m.group(1).upper(), path)
            found.add(operation)
        elif operation and line.strip() == "x-needs-mailbox: true":
            found.discard(operation)
        elif line and not line.startswith(" "):
            path, operation = None, None
    return found


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name):
        return self.headers.get(name)

    def cookies(self):
        return self.headers.get_all("Set-Cookie") or []

    def __repr__(self):
        return f"{self.status} {self.body[:120]!r}"


class Smoke:
    def __init__(self, base, origin):
        self.base, self.origin = base.rstrip("/"), origin
        self.passed, self.failed, self.requests = 0, 0, 0
        self.succeeded = set()

    def call(self, method, path, body=None, headers=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        all_headers = {"content-type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        request = urllib.request.Request(self.base + path, data=data, headers=all_headers, method=method)
        self.requests += 1
        try:
            with OPENER.open(request, timeout=TIMEOUT) as response:
                answer = Answer(response.status, response.headers, response.read().decode(errors="replace"))
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, error.headers, error.read().decode(errors="replace"))
        if 200 <= answer.status < 300:
            self.succeeded.add((method, path))
        return answer

    def check(self, name, condition, why=""):
        if condition:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {why}")
        return condition


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segments(token):
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), signature


def forge(header, payload, signature=""):
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{signature}"


def hs256(header, payload, key):
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def refresh_cookie(answer):
    """The refresh token from the Set-Cookie headers, and their attributes."""
    values, attributes = set(), []
    for cookie in answer.cookies():
        parts = [p.strip() for p in cookie.split(";")]
        name, _, value = parts[0].partition("=")
        if name == "refresh_token":
            values.add(value)
            attributes.append({p.split("=")[0].lower(): p.partition("=")[2] for p in parts[1:]})
    return values, attributes


def run(smoke):
    s = smoke
    # The published keys and the issuer.
    jwks = s.call("GET", "/.well-known/jwks.json")
    keys = (jwks.json() or {}).get("keys", []) if jwks.status == 200 else []
    s.check(
        "jwks: 200, public P-256 ES256 keys only, cacheable",
        jwks.status == 200
        and keys
        and all(k.get("kty") == "EC" and k.get("crv") == "P-256" and k.get("alg") == "ES256" and "d" not in k for k in keys)
        and jwks.header("Cache-Control") == "public, max-age=300",
        repr(jwks),
    )
    discovery = s.call("GET", "/.well-known/openid-configuration")
    issuer = (discovery.json() or {}).get("issuer", "")
    s.check(
        "discovery: issuer and its jwks_uri",
        discovery.status == 200 and (discovery.json() or {}).get("jwks_uri") == issuer + "/.well-known/jwks.json",
        repr(discovery),
    )

    # Sign-up and login.
    username = "smoke-" + secrets.token_hex(8)
    password = secrets.token_urlsafe(24)
    credentials = {"username": username, "password": password}
    created = s.call("POST", "/users", credentials)
    user = created.json() or {}
    if not s.check("sign-up: 201 {id, username}", created.status == 201 and user.get("username") == username, repr(created)):
        return
    taken = s.call("POST", "/users", {"username": username.upper(), "password": password})
    s.check("sign-up of the same name in other letters: 409", taken.status == 409 and "msg" in (taken.json() or {}), repr(taken))
    wrong = s.call("POST", "/token", {"username": username, "password": password + "x"})
    s.check(
        "login with a wrong password: 401 Bad username or password",
        wrong.status == 401 and (wrong.json() or {}).get("msg") == "Bad username or password",
        repr(wrong),
    )
    login = s.call("POST", "/token", credentials)
    body = login.json() or {}
    token = body.get("token", "")
    if not s.check("login: 200 with a Bearer access token", login.status == 200 and token and body.get("token_type") == "Bearer", repr(login)):
        return
    header, payload, signature = segments(token)
    kids = {k.get("kid") for k in keys}
    s.check(
        "access token: ES256, at+jwt, a published kid, our issuer, the user's sub",
        header.get("alg") == "ES256"
        and header.get("typ") == "at+jwt"
        and header.get("kid") in kids
        and payload.get("iss") == issuer
        and payload.get("sub") == user.get("id"),
        f"header {header}, iss {payload.get('iss')!r}",
    )
    values, attributes = refresh_cookie(login)
    paths = sorted(a.get("path", "") for a in attributes)
    s.check(
        "login: refresh cookie HttpOnly, Secure, only for /token/refresh and /logout",
        len(values) == 1
        and len(attributes) == 2
        and all("httponly" in a and "secure" in a for a in attributes)
        and paths[0].endswith("/logout")
        and paths[1].endswith("/token/refresh"),
        f"{attributes}",
    )
    cookie = f"refresh_token={next(iter(values), '')}"

    # The protected route.
    me = s.call("GET", "/protected", headers={"Authorization": f"Bearer {token}"})
    s.check("protected with the token: 200 {id, username}", me.status == 200 and me.json() == {"id": user.get("id"), "username": username}, repr(me))
    anonymous = s.call("GET", "/protected", headers={"Origin": s.origin})
    s.check(
        "protected without a token: 401, WWW-Authenticate, {msg}, no-store, CORS (API Gateway's answer)",
        anonymous.status == 401
        and (anonymous.header("WWW-Authenticate") or "").startswith("Bearer")
        and "msg" in (anonymous.json() or {})
        and anonymous.header("Cache-Control") == "no-store"
        and anonymous.header("Access-Control-Allow-Origin") in (s.origin, "*"),
        f"{anonymous!r} {dict(anonymous.headers)}",
    )

    # Attacks: each token must be refused with a 401 and a {msg} body.
    other = s.call("POST", "/token", {**credentials, "refresh_token_in_body": True}).json() or {}
    jwk = next((k for k in keys if k.get("kid") == header.get("kid")), {})
    attacks = {
        "alg none": forge({**header, "alg": "none"}, payload),
        "alg none, no kid": forge({"alg": "none", "typ": "at+jwt"}, payload),
        "HS256 keyed with the public JWK": hs256({**header, "alg": "HS256"}, payload, json.dumps(jwk).encode()),
        "HS256 keyed with the public x coordinate": hs256({**header, "alg": "HS256"}, payload, unb64url(jwk.get("x", ""))),
        "tampered username, original signature": forge(header, {**payload, "username": "admin"}, signature),
        "tampered sub, original signature": forge(header, {**payload, "sub": "00000000-0000-0000-0000-000000000000"}, signature),
        "tampered exp, original signature": forge(header, {**payload, "exp": payload.get("exp", 0) + 86400}, signature),
        "signature stripped": forge(header, payload),
        "another token's signature": forge(header, payload, segments(other.get("token", token))[2]) if other.get("token") != token else "x.y.z",
        "unknown kid": forge({**header, "kid": "smoke-unknown-key"}, payload, signature),
        "embedded jwk header": forge({**header, "jwk": jwk}, payload, signature),
        "the refresh token as a Bearer token": other.get("refresh_token", "not-a-jwt"),
        "garbage": "abc.def.ghi",
    }
    for name, forged in attacks.items():
        refused = s.call("GET", "/protected", headers={"Authorization": f"Bearer {forged}"})
        s.check(f"attack refused: {name}: 401", refused.status == 401 and "msg" in (refused.json() or {}), repr(refused))

    # CORS: the preflight, and a function's error response.
    preflight = s.call(
        "OPTIONS",
        "/token",
        headers={"Origin": s.origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    s.check(
        f"CORS preflight from {s.origin}: allowed, POST",
        preflight.status in (200, 204)
        and preflight.header("Access-Control-Allow-Origin") in (s.origin, "*")
        and "POST" in (preflight.header("Access-Control-Allow-Methods") or ""),
        f"{preflight!r} {dict(preflight.headers)}",
    )
    invalid = s.call("POST", "/users", {"username": username}, headers={"Origin": s.origin})
    s.check(
        "a function's error: 400 {msg}, no-store, CORS",
        invalid.status == 400
        and "msg" in (invalid.json() or {})
        and invalid.header("Cache-Control") == "no-store"
        and invalid.header("Access-Control-Allow-Origin") in (s.origin, "*"),
        f"{invalid!r} {dict(invalid.headers)}",
    )

    # Refresh, then logout: the cookie flow a browser makes.
    refreshed = s.call("POST", "/token/refresh", {}, headers={"Cookie": cookie})
    new_values, _ = refresh_cookie(refreshed)
    s.check(
        "refresh with the cookie: 200, a new access token and a rotated refresh cookie",
        refreshed.status == 200 and (refreshed.json() or {}).get("token") and new_values and new_values != values,
        repr(refreshed),
    )
    forged_refresh = s.call("POST", "/token/refresh", {"refresh_token": b64url(secrets.token_bytes(32))})
    s.check("refresh with a made-up token: 401", forged_refresh.status == 401, repr(forged_refresh))
    successor = f"refresh_token={next(iter(new_values), '')}"
    tossed = s.call("POST", "/token/refresh", {}, headers={"Cookie": f"refresh_token={b64url(secrets.token_bytes(32))}; {successor}"})
    s.check("refresh with two refresh cookies (cookie tossing): 400", tossed.status == 400, repr(tossed))
    logout = s.call("POST", "/logout", {}, headers={"Cookie": successor})
    cleared = [a.get("max-age") for a in refresh_cookie(logout)[1]]
    s.check("logout: 204, cookie cleared", logout.status == 204 and cleared and all(m == "0" for m in cleared), f"{logout!r} {cleared}")
    after = s.call("POST", "/token/refresh", {}, headers={"Cookie": successor})
    s.check("refresh after logout: 401", after.status == 401, repr(after))
    logged_out = s.call("GET", "/protected", headers={"Authorization": f"Bearer {(refreshed.json() or {}).get('token', '')}"})
    s.check("an access token of the logged-out session: 401 at /protected", logged_out.status == 401, repr(logged_out))

    # Log out everywhere: the body-mode session and every access token issued before end.
    everywhere = s.call("POST", "/logout/all", headers={"Authorization": f"Bearer {other.get('token', '')}"})
    s.check("logout everywhere: 204", everywhere.status == 204, repr(everywhere))
    old = s.call("GET", "/protected", headers={"Authorization": f"Bearer {other.get('token', '')}"})
    s.check("an access token issued before logout everywhere: 401", old.status == 401, repr(old))
    ended = s.call("POST", "/token/refresh", {"refresh_token": other.get("refresh_token", "")})
    s.check("its session's refresh token: 401", ended.status == 401, repr(ended))

    # A password change: every session ends, and only the new password signs in.
    third = s.call("POST", "/token", {**credentials, "refresh_token_in_body": True}).json() or {}
    new_password = secrets.token_urlsafe(18)
    changed = s.call(
        "POST",
        "/password",
        {"current_password": password, "new_password": new_password},
        headers={"Authorization": f"Bearer {third.get('token', '')}"},
    )
    s.check("password change: 204", changed.status == 204, repr(changed))
    stale = s.call("POST", "/token/refresh", {"refresh_token": third.get("refresh_token", "")})
    s.check("a refresh token from before the change: 401", stale.status == 401, repr(stale))
    old_password = s.call("POST", "/token", credentials)
    s.check("login with the old password: 401", old_password.status == 401, repr(old_password))
    new_login = s.call("POST", "/token", {**credentials, "password": new_password})
    s.check("login with the new password: 200", new_login.status == 200, repr(new_login))

    # Forgot password answers 202 alike whatever it finds; a made-up name gets no mail.
    forgot = s.call("POST", "/password/forgot", {"username": f"smoke-nobody-{secrets.token_hex(8)}"})
    s.check("forgot password for an unknown name: 202", forgot.status == 202, repr(forgot))

    # The throwaway user goes: deleted with its password, its token refused at once.
    new_token = (new_login.json() or {}).get("token", "")
    deleted = s.call("POST", "/users/me/delete", {"password": new_password}, headers={"Authorization": f"Bearer {new_token}"})
    s.check("delete the account: 204", deleted.status == 204, repr(deleted))
    gone = s.call("GET", "/protected", headers={"Authorization": f"Bearer {new_token}"})
    s.check("its access token after deletion: 401 at /protected", gone.status == 401, repr(gone))
    again = s.call("POST", "/token", {**credentials, "password": new_password})
    s.check("login after deletion: 401", again.status == 401, repr(again))

    missing = sorted(f"{method} {path}" for method, path in operations() - s.succeeded)
    s.check("every operation of openapi.yaml answered a success", not missing, f"never: {', '.join(missing)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:3000", help="the API's base URL (default: ./dev run's local API)")
    parser.add_argument(
        "--origin",
        default=(os.environ.get("CORS_ALLOWED_ORIGINS") or "http://localhost:5173").split(",")[0],
        help="a browser origin the stage allows (one of AllowedOrigins; default: ./dev run's web client)",
    )
    args = parser.parse_args()
    smoke = Smoke(args.base_url, args.origin)
    print(f"smoke test of {smoke.base} (origin {smoke.origin})")
    try:
        run(smoke)
    except (urllib.error.URLError, OSError) as error:
        smoke.check("reach the API", False, str(error))
    print(f"{smoke.passed} passed, {smoke.failed} failed ({smoke.requests} requests)")
    return 1 if smoke.failed else 0


if __name__ == "__main__":
    sys.exit(main())
