"""Schemathesis hooks for `scripts/schemathesis.sh`: real credentials for the operations that need
them.

For each operation, and every 2 seconds, a new user is signed up and logged in through the API under test (its refresh
token in the body), and each test case gets that user's access token as `Authorization: Bearer`,
and on the cookie routes (`/token/refresh`, `/logout`) its refresh token as the `refresh_token`
cookie. A new user rather than one for the whole run, because the run ends its own sessions
(`POST /logout/all` with a valid token refuses every token issued before) and its wrong current
passwords at `POST /password` reach the login limit, after which that user could not log in for
the limit's window. Usernames start with `fuzz-`.

So that the success paths are tested too, every other case of login, refresh, password change,
address change, account deletion, TOTP enrolment and the other routes that take the current
password gets that user's real values in place of generated ones, where the generated value was
a valid one (a negative case stays exactly as invalid as it was generated). The routes that need
a code of the user's app, a login ticket or a WebAuthn ceremony get no real ones: their success
paths are `./dev smoke`'s.
"""

import json
import os
import pathlib
import re
import secrets
import urllib.error
import urllib.request

import schemathesis
import yaml

API = os.environ["SCHEMATHESIS_API"].rstrip("/")
CONTRACT = yaml.safe_load((pathlib.Path(__file__).resolve().parent.parent / "openapi.yaml").read_text())
# The operations that take the refresh cookie, as the contract's security says.
COOKIE_ROUTES = {path for path, operations in CONTRACT["paths"].items() for operation in operations.values()
                 if isinstance(operation, dict)
                 for requirement in operation.get("security", []) if "refreshCookie" in requirement}
# Per operation, the body members that take the user's real value, and which one.
REAL_VALUES = {
    "/token": {"username": "username", "password": "password"},
    "/token/refresh": {"refresh_token": "refresh_token"},
    "/password": {"current_password": "password"},
    "/email": {"current_password": "password"},
    "/users/me/delete": {"password": "password"},
    "/mfa/totp/enrol": {"current_password": "password"},
    "/mfa/totp/disable": {"current_password": "password"},
    "/mfa/recovery-codes": {"current_password": "password"},
    "/passkeys/register/options": {"current_password": "password"},
    "/passkeys/delete": {"current_password": "password"},
}
MAX_PASSWORD_BYTES = 1024
# Members whose schema has a pattern (openapi.yaml): RefreshTokenBody.refresh_token.
PATTERNS = {"refresh_token": re.compile(
    CONTRACT["components"]["schemas"]["RefreshTokenBody"]["properties"]["refresh_token"]["pattern"])}
SEEN = {}


def post(path, body):
    request = urllib.request.Request(
        API + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def per_operation(case, context):
    return context.operation.label


# One user per operation, replaced every 2 seconds: one operation's cases ending sessions do not
# leave the next operation's with refused tokens.
@schemathesis.auth(refresh_interval=2, cache_by_key=per_operation)
class FreshUser:
    def get(self, case, context):
        username = "fuzz-" + secrets.token_hex(8)
        password = secrets.token_urlsafe(18)
        credentials = {"username": username, "password": password}
        status, body = post("/users", credentials)
        if status != 201:
            raise RuntimeError(f"sign-up for the schemathesis run failed: {status} {body}")
        status, body = post("/token", {**credentials, "refresh_token_in_body": True})
        if status != 200:
            raise RuntimeError(f"login for the schemathesis run failed: {status} {body}")
        return {**credentials, "token": body["token"], "refresh_token": body["refresh_token"]}

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data['token']}"}
        if context.operation.path in COOKIE_ROUTES:
            case.cookies = {**(case.cookies or {}), "refresh_token": data["refresh_token"]}
        real = REAL_VALUES.get(context.operation.path)
        if real and context.operation.method.upper() == "POST" and isinstance(case.body, dict):
            count = SEEN[context.operation.path] = SEEN.get(context.operation.path, 0) + 1
            if count % 2 == 0:
                for member, value in real.items():
                    if valid(member, case.body.get(member)):
                        case.body[member] = data[value]


def valid(member, value):
    """Whether a generated member is a string the schema allows (non-empty, at most 1024 bytes,
    and matching the member's pattern if it has one), so that putting a real value in its place
    changes no case from invalid to valid."""
    if not (isinstance(value, str) and 0 < len(value.encode()) <= MAX_PASSWORD_BYTES):
        return False
    pattern = PATTERNS.get(member)
    return pattern is None or pattern.fullmatch(value) is not None
