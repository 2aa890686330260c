"""The load test's clients (locust): each signs up its own user, logs in with the refresh token in
the body, then loops over a mix of calls a real client makes: GET /protected with its access
token (7 in 10), POST /token/refresh rotating its refresh token (2 in 10) and a new login
(1 in 10). Closed loop, no think time.

Bounded: after LOAD_REQUESTS requests in all (sign-ups and first logins included) the run stops
itself; scripts/bench/load.py also gives locust a --run-time. Every request and its outcome is
written to LOAD_RECORDS (JSON lines: route, status, milliseconds, error) for load.py to summarise.
"""

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

    def on_start(self):
        self.username = f"load-{uuid.uuid4().hex[:16]}"
        self.password = f"load test password {uuid.uuid4().hex}"
        self.token = self.refresh_token = None
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

    @task(7)
    def protected(self):
        self._count()
        self.client.get("/protected", name="GET /protected",
                        headers={"Authorization": f"Bearer {self.token}"})

    @task(2)
    def refresh(self):
        self._count()
        response = self.client.post("/token/refresh", name="POST /token/refresh",
                                    json={"refresh_token": self.refresh_token})
        self._session(response)

    @task(1)
    def relogin(self):
        self.login()
