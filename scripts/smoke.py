#!/usr/bin/env python3
"""A short end-to-end check of a running stage: `./dev smoke [BASE_URL] [--origin ORIGIN]`.

Run it after `sam deploy` against the stack's `ApiUrl` (or, by default, against `./dev run`'s local
API). It signs up one throwaway user, named `smoke-` and 16 random hex digits with a random
password it never prints, and goes through sign-up, login, the protected route, refresh, logout
log out everywhere and a password change, "Your devices" (two sessions listed a page at a time,
one ended from the list and its tokens refused at once; a second throwaway user's session, which
the first cannot end) and the security history (the events the run made, newest first), a
representative subset of the attack suite (forged, tampered and wrongly typed tokens must all be
refused), the CORS preflight and the CORS and cache headers of
error responses (the function's and API Gateway's own), the published keys, two-step
verification (enrolment, a login's second step, recovery codes, turning it off: the codes are
computed here, RFC 6238) and passkeys (registration, a sign-in without a username, removal: with
a software authenticator, below); a last check fails if an operation of `openapi.yaml` never
answered a success. On a stage without passkeys (`PasskeyOrigins` empty, `passkeys_available:
false`) their operations are reported as skipped, each by name, and left out of that check. The
user stays in the table only until the last checks delete it (`POST /users/me/delete`), and the
second user until the device checks are done with it; if a run stops before, their names say
where they came from.

One line per check, `PASS name`, `FAIL name: why` or `SKIP name: why`, then `N passed, M failed`
(and `, K skipped`); the exit status is 1 if any check failed. About 100 requests, each with a 15 s
timeout; no retries, no waiting. Python's standard library only, so it runs anywhere Python 3.9+
does: the passkey's P-256 signatures are made here too.
"""

import argparse
import base64
import email.utils
import functools
import hashlib
import hmac
import json
import os
import pathlib
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
import uuid

TIMEOUT = 15
OPENAPI = pathlib.Path(__file__).resolve().parent.parent / "openapi.yaml"


@functools.lru_cache(maxsize=None)
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
    return frozenset(found)


def operation_of(method, path):
    """The operation of openapi.yaml a request is for: its path without the query, a `{name}`
    segment of the operation's matching any one segment."""
    parts = path.split("?", 1)[0].split("/")
    for operation_method, template in operations():
        pattern = template.split("/")
        if operation_method == method and len(pattern) == len(parts) and all(
            want == got or (want.startswith("{") and want.endswith("}") and got) for want, got in zip(pattern, parts)
        ):
            return operation_method, template
    return method, path


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
    def __init__(self, base, origin, passkey_origin=None):
        self.base, self.origin = base.rstrip("/"), origin
        self.passkey_origin = passkey_origin or origin
        self.passed, self.failed, self.requests = 0, 0, 0
        self.succeeded, self.skipped = set(), set()

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
            self.succeeded.add(operation_of(method, path))
        return answer

    def check(self, name, condition, why=""):
        if condition:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {why}")
        return condition

    def skip(self, operation, why):
        """An operation this stage cannot succeed at, said so rather than passed or failed."""
        self.skipped.add(operation)
        print(f"SKIP {operation[0]} {operation[1]}: {why}")


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


def totp(secret, step):
    """The 6-digit code of a base32 TOTP secret at a 30-second time step (RFC 6238 over RFC
    4226's HOTP with HMAC-SHA-1, as the service and every authenticator app use)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(int.from_bytes(mac[offset:offset + 4], 'big') & 0x7FFFFFFF) % 10**6:06d}"


def time_step(answer=None):
    """The 30-second step at the service's clock, read from an answer's `Date` header (a smoke
    machine whose clock runs ahead of the stage's would send codes of a step the service has not
    reached), else at this machine's."""
    date = answer.header("Date") if answer is not None else None
    if date:
        try:
            return int(email.utils.parsedate_to_datetime(date).timestamp()) // 30
        except (TypeError, ValueError):
            pass
    return int(time.time()) // 30


# ECDSA on NIST P-256 (FIPS 186-5, SEC 2), just enough for the passkey below to sign with: affine
# points as (x, y), None the point at infinity. Not constant-time, which does not matter for a
# throwaway key of one smoke run.
P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


def p256_add(a, b):
    if a is None or b is None:
        return a or b
    (x1, y1), (x2, y2) = a, b
    if x1 == x2 and (y1 + y2) % P256_P == 0:
        return None
    if a == b:
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P256_P)  # a = -3
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P256_P)
    x3 = (slope * slope - x1 - x2) % P256_P
    return x3, (slope * (x1 - x3) - y1) % P256_P


def p256_mul(k, point):
    result = None
    while k:
        if k & 1:
            result = p256_add(result, point)
        point = p256_add(point, point)
        k >>= 1
    return result


def der_integer(value):
    data = value.to_bytes(value.bit_length() // 8 + 1, "big")  # minimal, its top bit 0: positive
    return bytes([0x02, len(data)]) + data


class P256Key:
    def __init__(self):
        self.d = secrets.randbelow(P256_N - 1) + 1
        self.x, self.y = p256_mul(self.d, P256_G)

    def sign(self, message):
        """ECDSA with SHA-256, DER-encoded as WebAuthn's ES256 signatures are."""
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        while True:
            k = secrets.randbelow(P256_N - 1) + 1
            r = p256_mul(k, P256_G)[0] % P256_N
            s = pow(k, -1, P256_N) * (e + r * self.d) % P256_N
            if r and s:
                break
        body = der_integer(r) + der_integer(s)
        return bytes([0x30, len(body)]) + body


# The CBOR (RFC 8949) of the few fixed shapes a "none" attestation needs: a head, then the content.
def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError("too long")


def cbor_int(n):
    return cbor_head(0, n) if n >= 0 else cbor_head(1, -1 - n)


def cbor_bytes(data):
    return cbor_head(2, len(data)) + data


def cbor_text(text):
    return cbor_head(3, len(text.encode())) + text.encode()


class Authenticator:
    """A software passkey authenticator, as a browser with a platform authenticator answers
    `navigator.credentials.create()` and `.get()` (the Python twin of tests/src/authenticator.rs):
    one discoverable P-256 credential that keeps its user handle, "none" attestation, user
    presence and verification, a sign counter. The client data claim `origin`, the page's."""

    def __init__(self, origin):
        self.origin = origin
        self.credential = None

    def client_data(self, kind, challenge):
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def create(self, options):
        """The new credential, as the JSON a client posts to `/passkeys/register`."""
        options = options["publicKey"]
        key, credential_id = P256Key(), secrets.token_bytes(32)
        rp_id = options["rp"]["id"]
        # COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
        cose = b"".join([
            cbor_head(5, 5), cbor_int(1), cbor_int(2), cbor_int(3), cbor_int(-7), cbor_int(-1), cbor_int(1),
            cbor_int(-2), cbor_bytes(key.x.to_bytes(32, "big")), cbor_int(-3), cbor_bytes(key.y.to_bytes(32, "big")),
        ])
        # rpIdHash, flags UP|UV|AT, counter 0, an all-zero AAGUID, the credential id and key (§6.1).
        auth_data = b"".join([
            hashlib.sha256(rp_id.encode()).digest(), bytes([0x45]), (0).to_bytes(4, "big"), bytes(16),
            len(credential_id).to_bytes(2, "big"), credential_id, cose,
        ])
        attestation = b"".join([
            cbor_head(5, 3), cbor_text("fmt"), cbor_text("none"), cbor_text("attStmt"), cbor_head(5, 0),
            cbor_text("authData"), cbor_bytes(auth_data),
        ])
        self.credential = {
            "id": credential_id,
            "rp_id": rp_id,
            "user_handle": unb64url(options["user"]["id"]),
            "key": key,
            "counter": 0,
        }
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(attestation),
                "clientDataJSON": b64url(self.client_data("webauthn.create", options["challenge"])),
            },
            "extensions": {},
        }

    def get(self, options):
        """An assertion of the credential for the options' challenge, as the JSON a client posts
        to `/token/passkey` (`allowCredentials` empty: the authenticator picks its own)."""
        options, credential = options["publicKey"], self.credential
        credential["counter"] += 1
        client_data = self.client_data("webauthn.get", options["challenge"])
        # rpIdHash, flags UP|UV, the counter (§6.1).
        auth_data = hashlib.sha256(options["rpId"].encode()).digest() + bytes([0x05]) + credential["counter"].to_bytes(4, "big")
        signature = credential["key"].sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": b64url(credential["id"]),
            "rawId": b64url(credential["id"]),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(auth_data),
                "clientDataJSON": b64url(client_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential["user_handle"]),
            },
            "extensions": {},
        }


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def message(answer):
    body = answer.json()
    return body.get("msg") if isinstance(body, dict) else None

# A browser's User-Agent for one login, whose device label "Your devices" shows.
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
EVENT_TYPES = {
    "login.succeeded", "login.failed", "session.reuse_detected", "session.ended", "sessions.ended_everywhere",
    "password.changed", "password.reset", "email.verified", "second_factor.enabled", "second_factor.disabled",
    "recovery_codes.replaced", "passkey.added", "passkey.removed",
}


def is_uuid(value):
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value) is not None


def is_label(value):
    return isinstance(value, str) and 0 < len(value) <= 64


def well_formed_session(session):
    return (
        set(session) == {"id", "created_at", "last_used_at", "device", "ip_at_start", "ip_last_used", "current"}
        and is_uuid(session["id"])
        and isinstance(session["created_at"], int)
        and isinstance(session["last_used_at"], int)
        and session["created_at"] <= session["last_used_at"]
        and is_label(session["device"])
        and all(session[ip] is None or isinstance(session[ip], str) for ip in ("ip_at_start", "ip_last_used"))
        and isinstance(session["current"], bool)
    )


def well_formed_event(event):
    return (
        set(event) == {"id", "at", "type", "outcome", "ip", "device", "detail"}
        and is_uuid(event["id"])
        and isinstance(event["at"], int)
        and event["type"] in EVENT_TYPES
        and event["outcome"] in ("success", "failure")
        and (event["ip"] is None or isinstance(event["ip"], str))
        and is_label(event["device"])
        and (event["detail"] is None or isinstance(event["detail"], str))
    )


def pages(s, path, token, limit, count, first=None):
    """The items of a listing read `limit` at a time, following `next_cursor` from `first` (the
    first page's answer, else fetched) until the last page or `count` pages: the items in order,
    and whether every page was a 200 of at most `limit` items."""
    items, cursor, answer = [], None, first
    member = path.rsplit("/", 1)[-1]
    for _ in range(count):
        if answer is None:
            after = f"&cursor={cursor}" if cursor is not None else ""
            answer = s.call("GET", f"{path}?limit={limit}{after}", headers=bearer(token))
        page = answer.json() or {}
        got = page.get(member) if answer.status == 200 else None
        if not isinstance(got, list) or len(got) > limit:
            return items, False
        items += got
        cursor, answer = page.get("next_cursor"), None
        if cursor is None:
            break
        if not isinstance(cursor, str):
            return items, False
    return items, True


def devices_and_history(s, credentials):
    """ "Your devices" and the security history: two sessions listed, one ended from the list
    (its refresh and access tokens refused at once), what cannot be ended, bad pages, and the
    events the run made. A second throwaway user, deleted at the end, owns a session the first
    cannot end. Starts with none of the user's sessions live."""
    wrong = s.call("POST", "/token", {**credentials, "password": credentials["password"] + "x"})
    s.check("a wrong password before the device list: 401", wrong.status == 401, repr(wrong))
    first = s.call("POST", "/token", {**credentials, "refresh_token_in_body": True}, headers={"User-Agent": FIREFOX})
    second = s.call("POST", "/token", {**credentials, "refresh_token_in_body": True})
    a, b = first.json() or {}, second.json() or {}
    if not s.check(
        "two logins of the user, two sessions: 200, 200",
        first.status == 200 and second.status == 200 and a.get("token") and b.get("token"),
        f"{first!r} {second!r}",
    ):
        return
    sid_a, sid_b = segments(a["token"])[1].get("sid"), segments(b["token"])[1].get("sid")
    token = b["token"]

    listed = s.call("GET", "/sessions", headers=bearer(token))
    sessions = (listed.json() or {}).get("sessions") if listed.status == 200 else None
    sessions = sessions if isinstance(sessions, list) else []
    by_id = {x.get("id"): x for x in sessions if isinstance(x, dict)}
    s.check(
        "GET /sessions: 200, both sessions, well formed, exactly one current: the caller's",
        listed.status == 200
        and set(by_id) == {sid_a, sid_b}
        and len(sessions) == 2
        and all(well_formed_session(x) for x in sessions)
        and [x["id"] for x in sessions if x["current"]] == [sid_b]
        and (listed.json() or {}).get("next_cursor") is None,
        repr(listed),
    )
    s.check(
        "GET /sessions: newest start first",
        [x.get("id") for x in sessions] == [sid_b, sid_a],
        f"order {[x.get('id') for x in sessions]}, the newest login's is {sid_b}",
    )
    device = (by_id.get(sid_a) or {}).get("device") or ""
    s.check(
        "a Firefox login's device: a short label naming Firefox, not the User-Agent",
        "Firefox" in device and "Mozilla" not in device and "Gecko" not in device and len(device) <= 64,
        repr(device),
    )
    one = s.call("GET", "/sessions?limit=1", headers=bearer(token))
    page = one.json() or {}
    # Up to 3 pages: the last page of one may still carry a cursor, to an empty page.
    paged, ok = pages(s, "/sessions", token, 1, 3, first=one)
    s.check(
        "GET /sessions?limit=1: one session and a next_cursor that gets the other",
        one.status == 200
        and len(page.get("sessions") or []) == 1
        and isinstance(page.get("next_cursor"), str)
        and ok
        and [x.get("id") for x in paged] == [x.get("id") for x in sessions],
        f"{one!r}, the pages gave {[x.get('id') for x in paged]} (each a 200 of at most one: {ok})",
    )
    bad_pages(s, "/sessions", token)

    # The first session ended from the second: refused at once, and only once.
    ended = s.call("DELETE", f"/sessions/{sid_a}", headers=bearer(token))
    s.check("DELETE /sessions/{the other}: 204", ended.status == 204, repr(ended))
    refresh = s.call("POST", "/token/refresh", {"refresh_token": a.get("refresh_token", "")})
    s.check("the ended session's refresh token: 401", refresh.status == 401, repr(refresh))
    protected = s.call("GET", "/protected", headers=bearer(a["token"]))
    s.check("the ended session's access token: 401 at /protected", protected.status == 401, repr(protected))
    listing = s.call("GET", "/sessions", headers=bearer(a["token"]))
    s.check("the ended session's access token: 401 at GET /sessions", listing.status == 401, repr(listing))
    left = s.call("GET", "/sessions", headers=bearer(token))
    s.check(
        "GET /sessions after: the caller's session alone",
        left.status == 200 and [x.get("id") for x in (left.json() or {}).get("sessions") or []] == [sid_b],
        repr(left),
    )
    again = s.call("DELETE", f"/sessions/{sid_a}", headers=bearer(token))
    s.check("DELETE of the ended session again: 404 No such session", again.status == 404 and message(again) == "No such session", repr(again))
    unknown = s.call("DELETE", f"/sessions/{uuid.uuid4()}", headers=bearer(token))
    s.check("DELETE of an unknown session id: 404 No such session", unknown.status == 404 and message(unknown) == "No such session", repr(unknown))

    # Another user's session cannot be ended, nor its list read through a cursor.
    other = {"username": "smoke-" + secrets.token_hex(8), "password": secrets.token_urlsafe(24)}
    created = s.call("POST", "/users", other)
    if s.check("a second throwaway user: 201", created.status == 201, repr(created)):
        theirs = [s.call("POST", "/token", {**other, "refresh_token_in_body": True}).json() or {} for _ in range(2)]
        their_token = theirs[1].get("token", "")
        their_sid = segments(theirs[0]["token"])[1].get("sid") if theirs[0].get("token") else "none"
        foreign = s.call("DELETE", f"/sessions/{their_sid}", headers=bearer(token))
        s.check("DELETE of another user's session: 404 No such session", foreign.status == 404 and message(foreign) == "No such session", repr(foreign))
        alive = s.call("POST", "/token/refresh", {"refresh_token": theirs[0].get("refresh_token", "")})
        s.check("that session lives on: its refresh token 200", alive.status == 200, repr(alive))
        their_page = s.call("GET", "/sessions?limit=1", headers=bearer(their_token)).json() or {}
        their_cursor = their_page.get("next_cursor")
        if their_cursor:
            crossed = s.call("GET", f"/sessions?cursor={their_cursor}", headers=bearer(token))
            ids = {x.get("id") for x in (crossed.json() or {}).get("sessions") or []}
            s.check(
                "another user's cursor: 400, or only the caller's sessions",
                crossed.status == 400 or (crossed.status == 200 and ids <= {sid_b}),
                repr(crossed),
            )
        gone = s.call("POST", "/users/me/delete", {"password": other["password"]}, headers=bearer(their_token))
        s.check("the second user deleted: 204", gone.status == 204, repr(gone))

    # The history, newest first: what this function did, on top.
    history = s.call("GET", "/me/events", headers=bearer(token))
    body = history.json() or {}
    events = body.get("events") if history.status == 200 else None
    events = events if isinstance(events, list) else []
    s.check(
        "GET /me/events: 200, well-formed events, newest first",
        history.status == 200
        and events
        and all(isinstance(e, dict) and well_formed_event(e) for e in events)
        and all(x["at"] >= y["at"] for x, y in zip(events, events[1:])),
        repr(history),
    )
    newest = [(e.get("type"), e.get("outcome"), e.get("detail")) for e in events[:4] if isinstance(e, dict)]
    s.check(
        "GET /me/events: session.ended (device_list), the two logins, the wrong password, newest first",
        newest == [
            ("session.ended", "success", "device_list"),
            ("login.succeeded", "success", "password"),
            ("login.succeeded", "success", "password"),
            ("login.failed", "failure", "password"),
        ],
        f"the newest four: {newest}",
    )
    paged, ok = pages(s, "/me/events", token, 2, 2)
    s.check(
        "GET /me/events?limit=2, then its next_cursor: the newest four, in order",
        ok and len(events) >= 4 and [e.get("id") for e in paged] == [e.get("id") for e in events[:4]],
        f"two pages of two gave {[e.get('type') for e in paged]} (each a 200 of at most two: {ok})",
    )
    bad_pages(s, "/me/events", token)


def bad_pages(s, path, token):
    """A page too large or empty, and cursors the API never gave: 400."""
    for what, query in (
        ("limit=1000", "limit=1000"),
        ("limit=0", "limit=0"),
        ("a forged cursor", "cursor=" + b64url(secrets.token_bytes(24))),
        ("a cursor that is no base64", "cursor=not.a.cursor"),
    ):
        bad = s.call("GET", f"{path}?{query}", headers=bearer(token))
        s.check(f"GET {path} with {what}: 400 {{msg}}", bad.status == 400 and message(bad), repr(bad))


def second_factor(s, username, password, token, user_id):
    """Two-step verification from enrolment to turning it off, and passkeys while it is on.
    Each change of the second factor starts a new session for the caller (ending the others), so
    this returns the access token that is valid at the end."""
    listed = s.call("GET", "/mfa", headers=bearer(token))
    factors = listed.json() or {}
    s.check(
        "second factors: 200, none yet, whether passkeys are offered",
        listed.status == 200
        and factors.get("totp") is False
        and factors.get("passkeys") == []
        and isinstance(factors.get("passkeys_available"), bool),
        repr(listed),
    )
    started = s.call("POST", "/mfa/totp/enrol", {"current_password": password}, headers=bearer(token))
    enrolment = started.json() or {}
    secret = enrolment.get("secret", "")
    if not s.check(
        "TOTP enrolment: 200, the secret as base32, an otpauth URI and a QR code",
        started.status == 200
        and re.fullmatch(r"[A-Z2-7]{32}", secret)
        and enrolment.get("otpauth_uri", "").startswith("otpauth://totp/")
        and f"secret={secret}" in enrolment.get("otpauth_uri", "")
        and "<svg" in enrolment.get("qr_svg", ""),
        repr(started),
    ):
        return token
    # The first code turns it on; a code is accepted once, only for a time step after the last
    # one accepted (the step after the current one is accepted too, so nothing here waits).
    step = time_step(started)
    confirmed = s.call("POST", "/mfa/totp/confirm", {"code": totp(secret, step), "refresh_token_in_body": True}, headers=bearer(token))
    body = confirmed.json() or {}
    codes = body.get("recovery_codes") or []
    # A 200 ended the old session whatever else the checks find: its token is the one to go on
    # with (and to delete the user with at the end).
    confirmed_ok = s.check(
        "TOTP confirmation: 200, a new session and 10 recovery codes",
        confirmed.status == 200
        and body.get("token")
        and body.get("refresh_token")
        and len(codes) == 10
        and all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in codes),
        repr(confirmed),
    )
    if confirmed.status == 200 and body.get("token"):
        before, token = token, body["token"]
    if not confirmed_ok:
        return token
    ended = s.call("GET", "/protected", headers=bearer(before))
    s.check("the access token from before turning it on: 401 (its session ended)", ended.status == 401, repr(ended))

    first = s.call("POST", "/token", {"username": username, "password": password})
    ticket = first.json() or {}
    s.check(
        "login with two-step verification on: 200, a ticket, no token and no cookie",
        first.status == 200
        and ticket.get("mfa_required") is True
        and ticket.get("methods") == ["totp", "recovery_code"]
        and "token" not in ticket
        and not first.cookies(),
        repr(first),
    )
    mfa_token = ticket.get("mfa_token", "")
    used = s.call("POST", "/token/mfa", {"mfa_token": mfa_token, "code": totp(secret, step)})
    s.check("second step with the code the confirmation used: 401 Invalid code", used.status == 401 and message(used) == "Invalid code", repr(used))
    second = s.call("POST", "/token/mfa", {"mfa_token": mfa_token, "code": totp(secret, max(step + 1, time_step(first)))})
    values, attributes = refresh_cookie(second)
    signed_in = (second.json() or {}).get("token", "")
    s.check(
        "second step with the next code: 200, the access token and the refresh cookies",
        second.status == 200 and signed_in and len(values) == 1 and len(attributes) == 2,
        repr(second),
    )
    if signed_in:
        _, payload, _ = segments(signed_in)
        s.check("its access token is the user's", payload.get("sub") == user_id, f"sub {payload.get('sub')!r}")
    spent = s.call("POST", "/token/mfa", {"mfa_token": mfa_token, "code": codes[0]})
    s.check(
        "the ticket a second time: 401 Invalid or expired MFA ticket",
        spent.status == 401 and message(spent) == "Invalid or expired MFA ticket, log in again",
        repr(spent),
    )

    # New recovery codes, with a recovery code: the step after next is not accepted yet.
    replaced = s.call("POST", "/mfa/recovery-codes", {"current_password": password, "code": codes[0]}, headers=bearer(token))
    body = replaced.json() or {}
    new_codes = body.get("recovery_codes") or []
    s.check(
        "new recovery codes with a recovery code: 200, a new session (cookies) and 10 other codes",
        replaced.status == 200 and body.get("token") and len(new_codes) == 10 and not set(new_codes) & set(codes) and len(refresh_cookie(replaced)[0]) == 1,
        repr(replaced),
    )
    if replaced.status == 200 and body.get("token"):
        token = body["token"]

    token = passkeys(s, username, password, token, user_id, factors.get("passkeys_available"))

    old_code = s.call("POST", "/mfa/totp/disable", {"current_password": password, "code": codes[1]}, headers=bearer(token))
    s.check("turning it off with a replaced recovery code: 401 Invalid code", old_code.status == 401 and message(old_code) == "Invalid code", repr(old_code))
    disabled = s.call(
        "POST",
        "/mfa/totp/disable",
        {"current_password": password, "code": (new_codes or ["none"])[0], "refresh_token_in_body": True},
        headers=bearer(token),
    )
    body = disabled.json() or {}
    s.check(
        "turning it off with a new recovery code: 200, a new session, no codes",
        disabled.status == 200 and body.get("token") and body.get("refresh_token") and "recovery_codes" not in body,
        repr(disabled),
    )
    if disabled.status == 200 and body.get("token"):
        token = body["token"]
    listed = s.call("GET", "/mfa", headers=bearer(token))
    s.check(
        "second factors after turning it off: none",
        listed.status == 200 and (listed.json() or {}).get("totp") is False and (listed.json() or {}).get("recovery_codes_left") == 0,
        repr(listed),
    )
    plain = s.call("POST", "/token", {"username": username, "password": password})
    s.check("login after turning it off: 200, a token at once", plain.status == 200 and (plain.json() or {}).get("token"), repr(plain))
    return (plain.json() or {}).get("token") or token


PASSKEY_OPERATIONS = [
    ("POST", "/passkeys/register/options"),
    ("POST", "/passkeys/register"),
    ("POST", "/token/passkey/options"),
    ("POST", "/token/passkey"),
    ("POST", "/passkeys/delete"),
]


def passkeys(s, username, password, token, user_id, available):
    """A passkey registered, signed in with (without a username, and without the second step
    that is on), not accepted twice, removed and then refused. Returns the valid access token."""
    if not available:
        off = s.call("POST", "/token/passkey/options")
        s.check(
            "passkeys off (passkeys_available false): sign-in options 400, saying so",
            off.status == 400 and "no passkeys" in (message(off) or ""),
            repr(off),
        )
        for operation in PASSKEY_OPERATIONS:
            s.skip(operation, "skipped: passkeys are off on this deployment (PasskeyOrigins is empty)")
        return token
    authenticator = Authenticator(s.passkey_origin)
    started = s.call("POST", "/passkeys/register/options", {"current_password": password}, headers=bearer(token))
    ceremony = started.json() or {}
    options = (ceremony.get("options") or {}).get("publicKey") or {}
    selection = options.get("authenticatorSelection") or {}
    if not s.check(
        "passkey registration options: 200, a challenge for this user, a resident key with user verification",
        started.status == 200
        and ceremony.get("challenge_id")
        and options.get("challenge")
        and (options.get("user") or {}).get("name") == username
        and (options.get("rp") or {}).get("id")
        and selection.get("residentKey") == "required"
        and selection.get("userVerification") == "required",
        repr(started),
    ):
        return token
    credential = authenticator.create(ceremony["options"])
    registered = s.call(
        "POST",
        "/passkeys/register",
        {"challenge_id": ceremony["challenge_id"], "credential": credential, "name": "smoke"},
        headers=bearer(token),
    )
    passkey = registered.json() or {}
    if not s.check(
        f"passkey registration from {s.passkey_origin}: 201, listed by its credential id and name",
        registered.status == 201 and passkey.get("id") == credential["id"] and passkey.get("name") == "smoke",
        repr(registered),
    ):
        return token
    listed = s.call("GET", "/mfa", headers=bearer(token))
    s.check(
        "second factors: the passkey listed",
        listed.status == 200 and [p.get("id") for p in (listed.json() or {}).get("passkeys", [])] == [credential["id"]],
        repr(listed),
    )

    def sign_in():
        started = s.call("POST", "/token/passkey/options")
        ceremony = started.json() or {}
        options = (ceremony.get("options") or {}).get("publicKey") or {}
        ok = s.check(
            "passkey sign-in options: 200, a challenge for any passkey of the relying party, user verification",
            started.status == 200
            and ceremony.get("challenge_id")
            and options.get("challenge")
            and options.get("allowCredentials", []) == []
            and options.get("userVerification") == "required",
            repr(started),
        )
        if not ok:
            return None, None
        body = {"challenge_id": ceremony["challenge_id"], "credential": authenticator.get(ceremony["options"]), "refresh_token_in_body": True}
        return body, s.call("POST", "/token/passkey", body)

    body, signed_in = sign_in()
    if signed_in is not None:
        answer = signed_in.json() or {}
        sub = segments(answer["token"])[1].get("sub") if answer.get("token") else None
        s.check(
            "passkey sign-in, no username, no second step though it is on: 200, the user's tokens",
            signed_in.status == 200 and sub == user_id and answer.get("refresh_token") and "mfa_required" not in answer,
            repr(signed_in),
        )
        replayed = s.call("POST", "/token/passkey", body)
        s.check(
            "the same assertion again: 401 Passkey not accepted",
            replayed.status == 401 and message(replayed) == "Passkey not accepted",
            repr(replayed),
        )
    removed = s.call("POST", "/passkeys/delete", {"id": credential["id"], "current_password": password}, headers=bearer(token))
    s.check("passkey removal: 204", removed.status == 204, repr(removed))
    _, after = sign_in()
    if after is not None:
        s.check("a removed passkey: 401 Passkey not accepted", after.status == 401 and message(after) == "Passkey not accepted", repr(after))
    return token


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

    # "Your devices" and the security history, from no live session.
    devices_and_history(s, {**credentials, "password": new_password})
    new_login = s.call("POST", "/token", {**credentials, "password": new_password})
    s.check("login with the new password: 200", new_login.status == 200, repr(new_login))

    # Forgot password answers 202 alike whatever it finds; a made-up name gets no mail.
    forgot = s.call("POST", "/password/forgot", {"username": f"smoke-nobody-{secrets.token_hex(8)}"})
    s.check("forgot password for an unknown name: 202", forgot.status == 202, repr(forgot))

    # Two-step verification, and passkeys while it is on; they end the sessions before.
    new_token = second_factor(s, username, new_password, (new_login.json() or {}).get("token", ""), user.get("id"))

    # The throwaway user goes: deleted with its password, its token refused at once.
    deleted = s.call("POST", "/users/me/delete", {"password": new_password}, headers={"Authorization": f"Bearer {new_token}"})
    s.check("delete the account: 204", deleted.status == 204, repr(deleted))
    gone = s.call("GET", "/protected", headers={"Authorization": f"Bearer {new_token}"})
    s.check("its access token after deletion: 401 at /protected", gone.status == 401, repr(gone))
    again = s.call("POST", "/token", {**credentials, "password": new_password})
    s.check("login after deletion: 401", again.status == 401, repr(again))

    missing = sorted(f"{method} {path}" for method, path in operations() - s.succeeded - s.skipped)
    s.check(
        "every operation of openapi.yaml answered a success" + (f" (but the {len(s.skipped)} skipped)" if s.skipped else ""),
        not missing,
        f"never: {', '.join(missing)}",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:3000", help="the API's base URL (default: ./dev run's local API)")
    parser.add_argument(
        "--origin",
        default=(os.environ.get("CORS_ALLOWED_ORIGINS") or "http://localhost:5173").split(",")[0],
        help="a browser origin the stage allows (one of AllowedOrigins; default: ./dev run's web client)",
    )
    parser.add_argument(
        "--passkey-origin",
        help="the page passkeys are registered and used from (one of PasskeyOrigins; default: --origin, as under ./dev run)",
    )
    args = parser.parse_args()
    smoke = Smoke(args.base_url, args.origin, args.passkey_origin)
    print(f"smoke test of {smoke.base} (origin {smoke.origin}, passkeys from {smoke.passkey_origin})")
    try:
        run(smoke)
    except (urllib.error.URLError, OSError) as error:
        smoke.check("reach the API", False, str(error))
    skipped = f", {len(smoke.skipped)} skipped" if smoke.skipped else ""
    print(f"{smoke.passed} passed, {smoke.failed} failed{skipped} ({smoke.requests} requests)")
    return 1 if smoke.failed else 0


if __name__ == "__main__":
    sys.exit(main())
