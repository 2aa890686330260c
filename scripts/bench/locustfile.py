"""The load test's clients (locust): each signs up its own user, logs in with the refresh token in
the body, then loops over a mix of what a real client does, every route of a signed-in user's
day (weights out of 24): GET /protected with its access token (10), POST /token/refresh rotating
its refresh token (3), a new login (1), its devices, GET /sessions (2), ending one of its older
sessions, DELETE /sessions/{id} (1, a new login when it has none), its security history,
GET /me/events (2), its second factors, GET /mfa (1), logging out, POST /logout, and back in
(1), and the public documents, GET /.well-known/jwks.json (2) and
GET /.well-known/openid-configuration (1). Closed loop, no think time.

Not in the mix: the mail routes (their answers are held to a fixed minimum time and limited per
address by design, so a load test measures the padding), and the routes that need a second
factor's secret or an authenticator (TOTP, passkeys); the round-trip test covers all of them.

Bounded: after LOAD_REQUESTS requests in all (sign-ups and first logins included) the run stops
itself; scripts/bench/load.py also gives locust a --run-time. Every request and its outcome is
written to LOAD_RECORDS (JSON lines: route, status, milliseconds, error) for load.py to summarise.
"""

import base64
import json
import os
import time
import uuid

import gevent
from locust import HttpUser, constant, events, task
from locust.exception import StopUser

LIMIT = int(os.environ["LOAD_REQUESTS"])
RECORDS = open(os.environ["LOAD_RECORDS"], "w", buffering=1)  # noqa: SIM115 (open for the run)
SENT = [0]
QUITTING = [False]


@events.request.add_listener
def record(request_type, name, response_time, response, exception, **_):
    status = getattr(response, "status_code", None) or 0
    RECORDS.write(json.dumps({
        "route": name,
        "status": status,
        "ms": response_time,
        "error": None if exception is None else type(exception).__name__,
        "end": time.time(),
    }) + "\n")


class Client(HttpUser):
    wait_time = constant(0)

    def _count(self):
        SENT[0] += 1
        if SENT[0] > LIMIT:
            # From a greenlet of its own: quit() stops every user, this one included.
            if not QUITTING[0]:
                QUITTING[0] = True
                gevent.spawn(self.environment.runner.quit)
            raise StopUser()

    def _session(self, response):
        if response.status_code == 200:
            body = response.json()
            self.token = body["token"]
            self.refresh_token = body["refresh_token"]
            sid = session_of(self.token)
            if self.sid and self.sid != sid:
                self.older_sessions.append(self.sid)
            self.sid = sid

    def _bearer(self):
        return {"Authorization": f"Bearer {self.token}"}

    def on_start(self):
        self.username = f"load-{uuid.uuid4().hex[:16]}"
        self.password = f"load test password {uuid.uuid4().hex}"
        self.token = self.refresh_token = self.sid = None
        self.older_sessions = []
        self._count()
        self.client.post("/users", json={"username": self.username, "password": self.password},
                         name="POST /users")
        self.login()

    def login(self):
        self._count()
        response = self.client.post("/token", name="POST /token", json={
            "username": self.username, "password": self.password, "refresh_token_in_body": True,
        })
        self._session(response)

    @task(10)
    def protected(self):
        self._count()
        self.client.get("/protected", name="GET /protected", headers=self._bearer())

    @task(3)
    def refresh(self):
        self._count()
        response = self.client.post("/token/refresh", name="POST /token/refresh",
                                    json={"refresh_token": self.refresh_token})
        self._session(response)

    @task(1)
    def relogin(self):
        self.login()

    @task(2)
    def devices(self):
        self._count()
        self.client.get("/sessions?limit=20", name="GET /sessions", headers=self._bearer())

    @task(1)
    def end_older_session(self):
        if not self.older_sessions:
            # Another login leaves this session behind, for the next time.
            self.login()
            return
        self._count()
        self.client.delete(f"/sessions/{self.older_sessions.pop(0)}", name="DELETE /sessions/{id}",
                           headers=self._bearer())

    @task(2)
    def history(self):
        self._count()
        self.client.get("/me/events?limit=20", name="GET /me/events", headers=self._bearer())

    @task(1)
    def second_factors(self):
        self._count()
        self.client.get("/mfa", name="GET /mfa", headers=self._bearer())

    @task(1)
    def logout_and_back(self):
        self._count()
        self.client.post("/logout", name="POST /logout", json={"refresh_token": self.refresh_token})
        # The session is over, and is no older session to end.
        self.sid = None
        self.login()

    @task(2)
    def jwks(self):
        self._count()
        self.client.get("/.well-known/jwks.json", name="GET /.well-known/jwks.json")

    @task(1)
    def discovery(self):
        self._count()
        self.client.get("/.well-known/openid-configuration",
                        name="GET /.well-known/openid-configuration")


def session_of(token):
    """The session id (`sid`) of an access token: its payload, not verified (the client's own)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]
