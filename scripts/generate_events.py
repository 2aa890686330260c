"""Regenerates events/ from `sam local generate-event` (offline), so every fixture keeps
API Gateway's real shape. Run: .dev/venv/bin/python scripts/generate_events.py

Valid tokens expire, so fixtures that need one hold the placeholder ${TOKEN}; tests mint a
token at run time and substitute it, and docs/http.md shows the same with sed.
"""

import base64
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SAM = pathlib.Path(sys.executable).parent / "sam"
STAGE = "dev"
API_ID = "a1b2c3d4e5"
ACCOUNT = "123456789012"
USER_ID = "0b5f3c8e-9a1d-4e2b-8c7f-1d2e3f4a5b6c"
# The session the fixtures' tokens and authorizer context name (`sid`); tests start it.
SESSION_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def sam_event(*args):
    out = subprocess.run([str(SAM), "local", "generate-event", "apigateway", *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def proxy(method, path, body=None, headers=None, base64_body=False):
    event = sam_event("aws-proxy", "--method", method, "--resource", path, "--path", path.lstrip("/"),
                      "--stage", STAGE, "--body", "")
    event["pathParameters"] = None
    event["queryStringParameters"] = None
    event["multiValueQueryStringParameters"] = None
    event["stageVariables"] = None
    event["requestContext"]["apiId"] = API_ID
    event["headers"]["Host"] = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
    event["multiValueHeaders"]["Host"] = [event["headers"]["Host"]]
    event["headers"]["Accept"] = "application/json"
    event["multiValueHeaders"]["Accept"] = ["application/json"]
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    if body is None:
        event["body"], event["isBase64Encoded"] = None, False
    elif base64_body:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body.encode()).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    return event


def token_event(authorization_token):
    event = sam_event("authorizer", "--stage", STAGE, "--method", "GET", "--resource", "protected",
                      "--restApiId", API_ID, "--account-id", ACCOUNT)
    # sam ignores --restApiId in the ARN; the ARN is API Gateway's, so set it in full.
    event["methodArn"] = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/GET/protected"
    if authorization_token is None:
        del event["authorizationToken"]
    else:
        event["authorizationToken"] = authorization_token
    return event


JSON = {"Content-Type": "application/json"}
ALICE = json.dumps({"username": "alice", "password": "correct horse battery staple"})
ALICE_WRONG = json.dumps({"username": "alice", "password": "wrong horse battery staple"})
NOBODY = json.dumps({"username": "nobody", "password": "correct horse battery staple"})

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# The test key of shared/src/test_util.rs (TEST_SIGNING_KEY): the expired token is signed with
# it, so the tests prove it fails on its expiry and not on its key.
TEST_SIGNING_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfaFsXymrJXHZuVOF
HUIPC/pCe2PPSmj88KNCLl59zFahRANCAASOwJzUmtoWGF7jcbPaZyqe8SlYCRKE
wgyVJcVgGV7/7rJsbBiVgyf3GaXKJcL2OSGx4SJXsUPutcT3WKc7W2pe
-----END PRIVATE KEY-----
"""
# The order of P-256: the service accepts only the low-S form of a signature.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def es256(message, pem):
    """An ES256 JWS signature (raw r || s, low S) of `message` under the PKCS#8 key `pem`."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = serialization.load_pem_private_key(pem, password=None)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    s = min(s, P256_ORDER - s)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def kid(pem):
    """The RFC 7638 thumbprint of the key's public half, the `kid` the service gives it, as the
    service computes it (tools/dev-keys, through shared's SigningKey)."""
    return subprocess.run(["cargo", "run", "--quiet", "--bin", "dev-keys", "--", "kid-of-pem"], cwd=ROOT,
                          input=pem.decode() if isinstance(pem, bytes) else pem,
                          check=True, capture_output=True, text=True).stdout.strip()


def expired_token():
    """A real ES256 token signed with the test key, issued for 15 minutes in 2020."""
    header = {"typ": "at+jwt", "alg": "ES256", "kid": kid(TEST_SIGNING_KEY)}
    claims = {"iss": "https://auth.test", "aud": "jwt-auth-api", "sub": USER_ID, "username": "alice",
              "iat": 1577836800, "nbf": 1577836800, "exp": 1577837700, "jti": "expired", "token_use": "access",
              "sid": SESSION_ID}
    msg = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    return msg + "." + b64url(es256(msg.encode(), TEST_SIGNING_KEY))


EXPIRED_TOKEN = expired_token()

FIXTURES = {
    "users/valid.json": proxy("POST", "/users", ALICE, JSON),
    "users/base64-body.json": proxy("POST", "/users", ALICE, JSON, base64_body=True),
    "users/malformed-json.json": proxy("POST", "/users", '{"username": "alice", "password": ', JSON),
    "users/missing-password.json": proxy("POST", "/users", json.dumps({"username": "alice"}), JSON),
    "users/short-password.json": proxy("POST", "/users", json.dumps({"username": "alice", "password": "short"}), JSON),
    "users/invalid-username.json": proxy("POST", "/users", json.dumps({"username": "al ice", "password": "correct horse battery staple"}), JSON),
    "users/wrong-content-type.json": proxy("POST", "/users", "username=alice&password=x", {"Content-Type": "application/x-www-form-urlencoded"}),
    "users/wrong-method.json": proxy("GET", "/users"),
    "token/valid.json": proxy("POST", "/token", ALICE, JSON),
    "token/wrong-password.json": proxy("POST", "/token", ALICE_WRONG, JSON),
    "token/unknown-user.json": proxy("POST", "/token", NOBODY, JSON),
    "token/malformed-json.json": proxy("POST", "/token", "[1, 2", JSON),
    "token/empty-body.json": proxy("POST", "/token", None, JSON),
    "protected/bearer.json": proxy("GET", "/protected", None, {"Authorization": "Bearer ${TOKEN}"}),
    "protected/no-token.json": proxy("GET", "/protected"),
    "protected/expired-token.json": proxy("GET", "/protected", None, {"Authorization": f"Bearer {EXPIRED_TOKEN}"}),
    "protected/basic-auth.json": proxy("GET", "/protected", None, {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}),
    "authorizer/valid.json": token_event("Bearer ${TOKEN}"),
    "authorizer/expired.json": token_event(f"Bearer {EXPIRED_TOKEN}"),
    "authorizer/missing-token.json": token_event(None),
    "authorizer/empty-bearer.json": token_event("Bearer "),
    "authorizer/basic-scheme.json": token_event("Basic YWxpY2U6cGFzc3dvcmQ="),
    "authorizer/garbage.json": token_event("Bearer not-a-jwt"),
}

# API Gateway puts the authorizer's principalId and context into the backend's event.
with_context = proxy("GET", "/protected", None, {"Authorization": "Bearer ${TOKEN}"})
# Context values arrive as strings; exp is the token's expiry (here 2100-01-01), which the
# function checks because API Gateway may serve a cached verdict for longer.
with_context["requestContext"]["authorizer"] = {
    "principalId": USER_ID, "sub": USER_ID, "username": "alice", "exp": "4102444800",
    "sid": SESSION_ID, "integrationLatency": 12,
}
FIXTURES["protected/authorizer-context.json"] = with_context

# The session routes. A browser sends the refresh token as a cookie with an empty JSON object
# from an allowed origin; other clients send it in the body. `${TOKEN}` is a refresh token in
# these, an access token in the Authorization headers.
BROWSER = {**JSON, "Origin": "https://app.example.com", "Cookie": "refresh_token=${TOKEN}"}
FIXTURES["token/refresh-cookie.json"] = proxy("POST", "/token/refresh", "{}", BROWSER)
FIXTURES["token/refresh-body.json"] = proxy("POST", "/token/refresh", json.dumps({"refresh_token": "${TOKEN}"}), JSON)
FIXTURES["token/logout.json"] = proxy("POST", "/logout", "{}", BROWSER)
PASSWORD = "correct horse battery staple"
# A passkey's answers as a browser posts them (base64url members); the tests make real ones.
REGISTRATION = {"id": "q2Fzb2Z0d2FyZWtleQ", "rawId": "q2Fzb2Z0d2FyZWtleQ", "type": "public-key",
                "response": {"attestationObject": "o2NmbXRkbm9uZQ", "clientDataJSON": "e30"}, "extensions": {}}
ASSERTION = {"id": "q2Fzb2Z0d2FyZWtleQ", "rawId": "q2Fzb2Z0d2FyZWtleQ", "type": "public-key",
             "response": {"authenticatorData": "AAAA", "clientDataJSON": "e30", "signature": "MEUCIQ",
                          "userHandle": "C18zjpodTiuMfx0uP0pbbA"}, "extensions": {}}
# Behind the authorizer: its verdict in the context, epoch included.
for name, method, path, body in [
    ("token/logout-all.json", "POST", "/logout/all", None),
    ("token/password.json", "POST", "/password", json.dumps({"current_password": PASSWORD,
                                                              "new_password": "a new horse battery staple"})),
    ("token/delete-account.json", "POST", "/users/me/delete", json.dumps({"password": PASSWORD})),
    ("token/change-email.json", "POST", "/email", json.dumps({"email": "alice@example.com",
                                                              "current_password": PASSWORD})),
    ("token/mfa-status.json", "GET", "/mfa", None),
    ("token/totp-enrol.json", "POST", "/mfa/totp/enrol", json.dumps({"current_password": PASSWORD})),
    ("token/totp-confirm.json", "POST", "/mfa/totp/confirm", json.dumps({"code": "123456"})),
    ("token/totp-disable.json", "POST", "/mfa/totp/disable", json.dumps({"current_password": PASSWORD, "code": "123456"})),
    ("token/recovery-codes.json", "POST", "/mfa/recovery-codes", json.dumps({"current_password": PASSWORD, "code": "123456"})),
    ("token/passkey-register-options.json", "POST", "/passkeys/register/options", json.dumps({"current_password": PASSWORD})),
    ("token/passkey-register.json", "POST", "/passkeys/register",
     json.dumps({"challenge_id": "5f0c6c9e-3b1a-4d2e-9f8a-7b6c5d4e3f2a", "credential": REGISTRATION, "name": "Phone"})),
    ("token/passkey-delete.json", "POST", "/passkeys/delete", json.dumps({"id": "q2Fzb2Z0d2FyZWtleQ", "current_password": PASSWORD})),
]:
    event = proxy(method, path, body, {**JSON, "Authorization": "Bearer ${TOKEN}"} if body else {"Authorization": "Bearer ${TOKEN}"})
    event["requestContext"]["authorizer"] = {**with_context["requestContext"]["authorizer"], "epoch": "0"}
    FIXTURES[name] = event

# "Your devices" and the security history, behind the authorizer: a page's query, and a
# session id in the path (the fixtures' own session, which the tests start).
for name, method, resource, path, query in [
    ("token/sessions.json", "GET", "/sessions", "/sessions", {"limit": "20"}),
    ("token/end-session.json", "DELETE", "/sessions/{id}", f"/sessions/{SESSION_ID}", None),
    ("token/security-events.json", "GET", "/me/events", "/me/events", {"limit": "20"}),
]:
    event = proxy(method, resource, None, {"Authorization": "Bearer ${TOKEN}"})
    event["path"] = path
    event["requestContext"]["path"] = f"/{STAGE}{path}"
    if resource != path:
        event["pathParameters"] = {"id": path.rsplit("/", 1)[1]}
    if query:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    event["requestContext"]["authorizer"] = {**with_context["requestContext"]["authorizer"], "epoch": "0"}
    FIXTURES[name] = event

# The mailed links' routes: no Bearer token, the link's token in the body.
FIXTURES["token/verify-email.json"] = proxy("POST", "/email/verify", json.dumps({"token": "${TOKEN}"}), JSON)
FIXTURES["token/forgot-by-name.json"] = proxy("POST", "/password/forgot", json.dumps({"username": "alice"}), JSON)
FIXTURES["token/forgot-by-email.json"] = proxy("POST", "/password/forgot", json.dumps({"email": "alice@example.com"}), JSON)
FIXTURES["token/reset-password.json"] = proxy("POST", "/password/reset", json.dumps({"token": "${TOKEN}", "new_password": "a new horse battery staple"}), JSON)

# A login's second step (the MFA ticket in place of ${TOKEN}) and a passkey sign-in: no Bearer.
FIXTURES["token/mfa-login.json"] = proxy("POST", "/token/mfa", json.dumps({"mfa_token": "${TOKEN}", "code": "123456"}), JSON)
FIXTURES["token/passkey-sign-in-options.json"] = proxy("POST", "/token/passkey/options")
FIXTURES["token/passkey-sign-in.json"] = proxy(
    "POST", "/token/passkey", json.dumps({"challenge_id": "5f0c6c9e-3b1a-4d2e-9f8a-7b6c5d4e3f2a", "credential": ASSERTION}), JSON)

for name, event in FIXTURES.items():
    path = EVENTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, indent=2) + "\n")
print(f"wrote {len(FIXTURES)} fixtures under {EVENTS.relative_to(ROOT)}/")
