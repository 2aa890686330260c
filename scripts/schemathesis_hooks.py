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

For "Your devices" and the security history the user logs in twice, so that it has a second
session and two events: every other case of `DELETE /sessions/{id}` with a well-formed id gets
the id of that other session (the first such case ends it, 204; the next ones until the user is
replaced get 404, as does every generated id), and every other case of `GET /sessions` and
`GET /me/events` with a cursor gets a real `next_cursor` (of a page of one) in its place.
"""

import json
import os
import pathlib
import re
import secrets
import urllib.error
import urllib.request
import uuid

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
# The listings (GET) whose cases may get a real cursor, and the member of their page holding the
# items; the operation that ends a session by its id.
LISTINGS = {"/sessions": "sessions", "/me/events": "events"}
END_SESSION = ("DELETE", "/sessions/{id}")
SEEN = {}


def post(path, body):
    return call("POST", path, body)


def call(method, path, body=None, token=None):
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        API + path,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
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
        data = {**credentials, "token": body["token"], "refresh_token": body["refresh_token"]}
        if operation(context) == END_SESSION or listing(context):
            data.update(second_session(data))
        return data

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
        path = context.operation.path
        if operation(context) == END_SESSION and well_formed_id((case.path_parameters or {}).get("id")):
            if alternate(path):
                case.path_parameters = {**case.path_parameters, "id": data["other_session"]}
        elif listing(context) and isinstance((case.query or {}).get("cursor"), str):
            if alternate(path):
                case.query = {**case.query, "cursor": data["cursors"][path]}


def operation(context):
    return context.operation.method.upper(), context.operation.path


def listing(context):
    return context.operation.method.upper() == "GET" and context.operation.path in LISTINGS


def second_session(data):
    """A second login of the user, then what its listings give: the id of that other session,
    and a real `next_cursor` of each listing (pages of one: two sessions, two logins)."""
    credentials = {"username": data["username"], "password": data["password"]}
    status, body = post("/token", {**credentials, "refresh_token_in_body": True})
    if status != 200:
        raise RuntimeError(f"second login for the schemathesis run failed: {status} {body}")
    status, page = call("GET", "/sessions?limit=100", token=data["token"])
    others = [s["id"] for s in page.get("sessions", []) if not s.get("current")] if status == 200 else []
    if len(others) != 1:
        raise RuntimeError(f"GET /sessions after two logins should list one other session: {status} {page}")
    cursors = {}
    for path, items in LISTINGS.items():
        status, page = call("GET", f"{path}?limit=1", token=data["token"])
        if status != 200 or len(page.get(items, [])) != 1 or not page.get("next_cursor"):
            raise RuntimeError(f"GET {path}?limit=1 after two logins should give a next_cursor: {status} {page}")
        cursors[path] = page["next_cursor"]
    return {"other_session": others[0], "cursors": cursors}


def alternate(path):
    """True every other time for an operation: half its cases keep their generated values."""
    count = SEEN[path] = SEEN.get(path, 0) + 1
    return count % 2 == 0


def well_formed_id(value):
    """Whether a generated path id is a UUID as the schema has it, so that a real session id in
    its place changes no case from invalid to valid."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def valid(member, value):
    """Whether a generated member is a string the schema allows (non-empty, at most 1024 bytes,
    and matching the member's pattern if it has one), so that putting a real value in its place
    changes no case from invalid to valid."""
    if not (isinstance(value, str) and 0 < len(value.encode()) <= MAX_PASSWORD_BYTES):
        return False
    pattern = PATTERNS.get(member)
    return pattern is None or pattern.fullmatch(value) is not None
