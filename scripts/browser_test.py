"""The browser client (web/) in a real headless Chromium, against the local API that `./dev test`
started: what only a browser enforces (CORS, credentials, HttpOnly and SameSite cookies,
preflights) is exercised by the browser itself.

Run by `./dev test` with the environment it sets: WEB_URL (the client, on an allowed origin),
API_URL, ISSUER, AUDIENCE, KEYSET and DEV_KEYS (the dev key set and tools/dev-keys, to mint an
expired token), MAIL_URL (moto's SES, whose mail holds the links the pages open), SCREENSHOTS
(a folder). Chromium and chromedriver are Debian's (same version), Selenium is pinned in
scripts/requirements-checks.txt. Every wait is bounded; a failure leaves a screenshot. TOTP
codes are computed here (RFC 6238, as an authenticator app does); passkeys are made and used by
Chromium's virtual authenticator (WebAuthn's test API), on the API's relying party "localhost".
"""

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import pathlib
import struct
import subprocess
import sys
import time
import unittest
import uuid
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

WEB_URL = os.environ["WEB_URL"].rstrip("/")
API_URL = os.environ["API_URL"].rstrip("/")
SCREENSHOTS = pathlib.Path(os.environ["SCREENSHOTS"])
PASSWORD = "correct horse battery staple"
WAIT = 20  # seconds, for any one thing to happen
MAIL_URL = os.environ["MAIL_URL"].rstrip("/")
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def totp_step(at=None):
    """The TOTP time step of `at` (now by default): 30-second steps since the Unix epoch."""
    return int((time.time() if at is None else at) // 30)


def totp_code(secret, step):
    """RFC 6238's code of time `step` for a base32 `secret` (as the page shows it, unpadded):
    HMAC-SHA1 over the step as 8 big-endian bytes, dynamic truncation, 6 digits."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class TotpTest(unittest.TestCase):
    """The code generator itself, against RFC 6238's test vectors (SHA-1, its 20-byte key)."""

    def test_the_codes_are_rfc_6238s(self):
        secret = base64.b32encode(b"12345678901234567890").decode().rstrip("=")
        # Appendix B gives 8 digits; an app shows their last 6.
        for at, code in ((59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"),
                         (2000000000, "69279037")):
            self.assertEqual(totp_code(secret, totp_step(at)), code[-6:], at)


def expired_token(user_id, username):
    """An access token of `user_id` signed with the current dev key, expired a minute ago: what
    the page holds once its token's lifetime is over."""
    dev_keys = [os.environ["DEV_KEYS"], "pem", os.environ["KEYSET"]]
    pem = subprocess.run(dev_keys, check=True, capture_output=True, text=True).stdout
    dev_keys[1] = "kid"
    kid = subprocess.run(dev_keys, check=True, capture_output=True, text=True).stdout.strip()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    now = int(time.time())
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    claims = {"iss": os.environ["ISSUER"], "aud": os.environ.get("AUDIENCE", "jwt-auth-api"), "sub": user_id,
              "username": username, "iat": now - 960, "nbf": now - 960, "exp": now - 60,
              "jti": str(uuid.uuid4()), "token_use": "access", "epoch": 0}
    message = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(message.encode(), ec.ECDSA(hashes.SHA256())))
    s = min(s, P256_N - s)  # the verifiers require the low-S form
    return f"{message}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def mailed_link(address, route):
    """The newest link to `route` (`verify`, `reset`) mailed to `address`, from moto's SES."""
    deadline = time.monotonic() + WAIT
    while True:
        with urlopen(f"{MAIL_URL}/moto-api/data.json", timeout=WAIT) as answer:
            messages = json.load(answer).get("ses", {}).get("Message", [])
        links = [link for m in messages if address in m.get("destinations", {}).get("ToAddresses", [])
                 for link in re.findall(rf"https?://\S+#{route}=[A-Za-z0-9_-]+", m.get("body", ""))]
        if links:
            return links[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {route} link mailed to {address}")
        time.sleep(0.2)  # bounded polling of a mailbox outside the page; no event to wait on


def log_in_elsewhere(username, user_agent):
    """POST /token as another device would (an app on a phone, say): a session of its own, whose
    device the API names from `user_agent`."""
    body = json.dumps({"username": username, "password": PASSWORD}).encode()
    request = Request(f"{API_URL}/token", data=body, method="POST",
                      headers={"content-type": "application/json", "user-agent": user_agent})
    with urlopen(request, timeout=WAIT) as answer:
        if answer.status != 200:
            raise AssertionError(f"login from {user_agent}: HTTP {answer.status}")


FIREFOX_ON_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"


class Browser(unittest.TestCase):
    step = 0

    def setUp(self):
        service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=self._options())
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)
        self.addCleanup(self.driver.quit)

    def shot(self, name):
        Browser.step += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{Browser.step:02d}-{self._testMethodName}-{name}.png"))

    def open(self, url=WEB_URL, fragment="#/login"):
        self.driver.get(f"{url}/{fragment}")
        self.wait_state("logged-out", "logged-in")

    def wait_state(self, *states):
        try:
            WebDriverWait(self.driver, WAIT).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in states)
        except Exception:
            self.shot("timeout")
            raise
        return self.driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")

    def text(self, element_id):
        return self.driver.find_element(By.ID, element_id).text

    def fill(self, form, **fields):
        for name, value in fields.items():
            field = self.driver.find_element(By.ID, f"{form}-{name}")
            field.clear()
            field.send_keys(value)
        self.driver.find_element(By.CSS_SELECTOR, f"#{form}-form button[type=submit]").click()

    def notice(self):
        WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "notice").text
                                               or d.find_element(By.ID, "error").text)
        self.assertEqual(self.text("error"), "")
        return self.text("notice")

    def sign_up(self, email=""):
        """A new user, signed up on the sign-up page; the page is then the login page."""
        name = f"web{uuid.uuid4().hex[:12]}"
        self.open(fragment="#/signup")
        fields = {"username": name, "password": PASSWORD}
        if email:
            fields["email"] = email
        self.fill("signup", **fields)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.current_url.endswith("#/login"))
        self.wait_state("logged-out")
        return name

    def sign_up_and_log_in(self, email=""):
        name = self.sign_up(email)
        self.fill("login", username=name, password=PASSWORD)
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        WebDriverWait(self.driver, WAIT).until(lambda d: d.current_url.endswith("#/private"))
        self.wait_state("logged-in")
        return name

    def wait_for(self, condition, what):
        """Waits until `condition(driver)` is truthy; a timeout leaves a screenshot named `what`."""
        try:
            return WebDriverWait(self.driver, WAIT, poll_frequency=0.1).until(condition)
        except Exception:
            self.shot(f"timeout-{what}")
            raise

    def visible(self, element_id):
        self.wait_for(lambda d: d.find_element(By.ID, element_id).is_displayed(), element_id)
        return self.driver.find_element(By.ID, element_id)

    def error(self):
        return self.wait_for(lambda d: d.find_element(By.ID, "error").text, "error")

    def open_view(self, view):
        """A view of a signed-in user, once it has settled (its section shown, nothing loading)."""
        self.driver.get(f"{WEB_URL}/#/{view}")
        self.visible(view)
        self.assertEqual(self.wait_state("logged-in", "logged-out"), "logged-in")

    def log_out(self):
        self.open_view("private")
        self.driver.find_element(By.ID, "logout").click()
        self.wait_for(lambda d: d.current_url.endswith("#/login"), "logged-out")
        self.assertEqual(self.wait_state("logged-out"), "logged-out")

    def log_in_to_second_step(self, name, password=PASSWORD):
        """Username and password of an account with two-step verification: the second step's page."""
        self.fill("login", username=name, password=password)
        self.wait_for(lambda d: d.current_url.endswith("#/two-step"), "second-step")
        self.visible("two-step-code")
        self.assertEqual(self.wait_state("logged-out"), "logged-out", "no session before the code")

    def second_step(self, code):
        """The code of the second step; on success the private page of the user."""
        self.fill("two-step", code=code)
        self.wait_for(lambda d: d.current_url.endswith("#/private") or d.find_element(By.ID, "error").text,
                      "after-second-step")
        self.assertEqual(self.text("error"), "")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")

    def shown_codes(self):
        """The recovery codes on the page (read in one go: a re-render replaces the list)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#recovery-codes li')].map((item) => item.textContent)")

    def recovery_codes(self):
        self.visible("recovery-codes")
        codes = self.shown_codes()
        self.assertEqual(len(codes), 10, codes)
        self.assertTrue(all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in codes), codes)
        return codes

    def turn_on_two_step(self):
        """Turns two-step verification on from the Security page, as a person with an app would:
        (the secret, the step of the code that confirmed it, the recovery codes)."""
        self.driver.find_element(By.ID, "security-link").click()
        self.visible("totp-enrol-form")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertIn("Off", self.text("totp-status"))
        self.fill("totp-enrol", current_password=PASSWORD)
        secret = self.visible("totp-secret").text
        self.assertRegex(secret, r"^[A-Z2-7]{16,}$")
        qr = self.driver.find_elements(By.CSS_SELECTOR, "#totp-qr svg")
        self.assertEqual(len(qr), 1, "the QR code is an <svg> element of the page")
        self.assertTrue(qr[0].is_displayed())
        self.assertEqual(qr[0].get_attribute("namespaceURI"), "http://www.w3.org/2000/svg")
        self.shot("enrolment")
        step = totp_step()
        self.count_refreshes()
        self.fill("totp-confirm", code=totp_code(secret, step))
        codes = self.recovery_codes()
        self.assertIn("Two-step verification is on", self.notice())
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertIn("10 recovery codes left", self.text("totp-status"))
        self.assertEqual(self.refreshes(), 0, "the page took the new session's token from the answer")
        self.assertFalse(self.driver.find_element(By.ID, "totp-setup").is_displayed())
        return secret, step, codes

    def count_refreshes(self):
        """Counts the page's POST /token/refresh from now on (until the next load): a page that
        kept a dead access token would get a 401 and refresh its way out, unseen otherwise."""
        self.driver.execute_script(
            "window.refreshes = 0; const fetch = window.fetch;"
            "window.fetch = (url, init) => { if (String(url).endsWith('/token/refresh')) window.refreshes++;"
            " return fetch(url, init); };"
        )

    def refreshes(self):
        return self.driver.execute_script("return window.refreshes")

    def refresh_cookies(self):
        """The browser's refresh-token cookies, whatever their path (WebDriver's own cookie list
        holds only those of the page's URL; Chromium's DevTools protocol sees the whole jar)."""
        cookies = self.driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
        return [c for c in cookies if c["name"] == "refresh_token"]

    def fetch(self, url, init):
        """fetch(url, init) in the page: [status] or ["error", its name]."""
        return self.driver.execute_async_script(
            "const done = arguments[2];"
            "fetch(arguments[0], arguments[1]).then(r => done([r.status]), e => done(['error', e.name]));",
            url, init)

    def another_browser(self):
        """A second browser (a cookie jar of its own); `with self.in_browser(it):` drives it."""
        other = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                                 options=self._options())
        self.addCleanup(other.quit)
        return other

    @contextlib.contextmanager
    def in_browser(self, driver):
        """The block's steps (self.driver) in `driver`, then back in the test's own browser."""
        first, self.driver = self.driver, driver
        try:
            yield
        finally:
            self.driver = first

    def rows(self, list_id):
        """The rows of a list of #/devices or #/activity, read in one go (a reload replaces them):
        each its title, its text and its data- attributes (sessionId, current, eventType, ...)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll(`#${arguments[0]} > li`)].map((item) =>"
            " ({ title: item.querySelector('.row-title').textContent, text: item.innerText, ...item.dataset }))",
            list_id)

    def open_from_private_page(self, view):
        """A view opened by its link on the private page (no page load: the page keeps its token)."""
        self.driver.execute_script("location.hash = '#/private'")
        self.visible("private")  # shown in the step that starts its loading
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.driver.find_element(By.ID, f"{view}-link").click()
        self.visible(view)
        self.assertEqual(self.wait_state("logged-in", "logged-out"), "logged-in")

    def sign_out_device(self, session_id):
        """"Sign out this device" on a row of #/devices; the list reloads without it."""
        self.driver.find_element(By.CSS_SELECTOR, f'#session-list li[data-session-id="{session_id}"] button').click()
        self.assertIn("is signed out", self.notice())
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertNotIn(session_id, [row["sessionId"] for row in self.rows("session-list")])

    # --- the tests ---------------------------------------------------------------------------

    def test_sign_up_log_in_and_the_private_page_shows_the_user(self):
        name = self.sign_up_and_log_in()
        self.assertEqual(self.text("user-name"), name)
        self.assertRegex(self.text("user-id"), r"^[0-9a-f-]{36}$")
        self.shot("private-page")

    def test_a_wrong_password_shows_the_apis_message(self):
        self.open()
        self.fill("login", username=f"nobody{uuid.uuid4().hex[:8]}", password="not the password")
        WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "error").text)
        self.assertEqual(self.text("error"), "Bad username or password")
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        self.shot("wrong-password")

    def test_a_reload_keeps_the_session_and_no_script_can_see_a_token(self):
        name = self.sign_up_and_log_in()
        self.driver.refresh()
        self.assertEqual(self.wait_state("logged-in"), "logged-in", "restored by the refresh cookie")
        self.assertEqual(self.text("user-name"), name)
        storage = self.driver.execute_script(
            "return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)]")
        self.assertEqual(storage, ["", "{}", "{}"], "no token where page script can read it")
        refresh = self.refresh_cookies()  # the browser holds what page script cannot see
        self.assertEqual(sorted(c["path"] for c in refresh), ["/logout", "/token/refresh"], refresh)
        self.assertTrue(all(c["httpOnly"] and c["secure"] and c["sameSite"] == "Strict" for c in refresh), refresh)
        self.assertEqual({c["domain"] for c in refresh}, {"localhost"})
        self.shot("after-reload")

    def test_after_logout_the_private_page_is_refused(self):
        self.sign_up_and_log_in()
        self.driver.find_element(By.ID, "logout").click()
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        self.driver.get(f"{WEB_URL}/#/private")
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        WebDriverWait(self.driver, WAIT).until(lambda d: d.current_url.endswith("#/login"))
        self.assertEqual(self.refresh_cookies(), [], "the logout cleared the cookie")
        self.shot("after-logout")

    def test_your_devices_lists_both_browsers_and_signing_out_the_other_one_ends_its_session(self):
        name = self.sign_up_and_log_in()
        other = self.another_browser()
        with self.in_browser(other):
            self.open()
            self.fill("login", username=name, password=PASSWORD)
            self.wait_for(lambda d: d.find_element(By.ID, "user-name").text == name, "other-private-page")
            self.assertEqual(self.wait_state("logged-in"), "logged-in")
            self.count_refreshes()
        self.open_from_private_page("devices")
        rows = self.rows("session-list")
        self.assertEqual(len(rows), 2, rows)
        mine = [row for row in rows if "current" in row]
        self.assertEqual(len(mine), 1, f"exactly one is this device: {rows}")
        self.assertIn("This device", mine[0]["text"])
        theirs = rows[0]
        self.assertNotIn("current", theirs, "newest first: the other browser signed in later")
        self.assertNotIn("This device", theirs["text"])
        for row in rows:
            for fact in ("Signed in", "Last used", "IP at sign-in", "IP last used"):
                self.assertIn(fact, row["text"])
            # Every client of the local API comes from 127.0.0.1: that address at start and last use.
            self.assertEqual(row["text"].count("127.0.0.1"), 2, row)
        self.assertFalse(self.driver.find_element(By.ID, "sessions-more").is_displayed(), "one page")
        self.shot("two-devices")
        self.sign_out_device(theirs["sessionId"])
        self.assertEqual([row["sessionId"] for row in self.rows("session-list")], [mine[0]["sessionId"]])
        ended_again = self.driver.execute_async_script(
            "const done = arguments[1];"
            "import('./api.js').then((api) => api.endSession(arguments[0])).then(done, (e) => done(e.message));",
            theirs["sessionId"])
        self.assertIs(ended_again, False, "an ended session is no longer there to end (404)")
        self.shot("other-device-signed-out")
        # The other page still holds its access token, which the (stateless) authorizer passes
        # until it expires; its next request that reads the store is refused, and so is the
        # refresh that follows: it is logged out (the same page, not a reload).
        with self.in_browser(other):
            self.driver.execute_script("window.notReloaded = true; location.hash = '#/devices'")
            self.wait_for(lambda d: d.current_url.endswith("#/login"), "other-signed-out")
            self.assertEqual(self.wait_state("logged-out"), "logged-out")
            self.assertEqual(self.notice(), "Your session has ended. Please log in again.")
            self.assertTrue(self.driver.execute_script("return window.notReloaded === true"), "the same page")
            self.assertEqual(self.refreshes(), 1, "its refresh was refused too")
            self.shot("other-browser-signed-out")
        # This device's own "Sign out" is a log out: the cookie goes too.
        self.driver.find_element(By.CSS_SELECTOR, "#session-list li[data-current] button").click()
        self.wait_for(lambda d: d.current_url.endswith("#/login"), "signed-out")
        self.assertEqual(self.notice(), "You are logged out.")
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        self.assertEqual(self.refresh_cookies(), [], "the log out cleared the cookie")

    def test_security_activity_shows_a_failed_sign_in_the_sign_ins_and_a_device_signed_out(self):
        name = self.sign_up()
        self.fill("login", username=name, password="not the password")
        self.assertEqual(self.error(), "Bad username or password")
        self.fill("login", username=name, password=PASSWORD)
        self.wait_for(lambda d: d.find_element(By.ID, "user-name").text == name, "private-page")
        log_in_elsewhere(name, FIREFOX_ON_ANDROID)
        self.open_from_private_page("devices")
        sessions = self.rows("session-list")
        this_browser = [row["title"] for row in sessions if "current" in row]
        phone = [row for row in sessions if "current" not in row]
        self.assertEqual(len(phone), 1, sessions)
        self.assertIn("Firefox", phone[0]["title"], "the device is named from its User-Agent")
        self.sign_out_device(phone[0]["sessionId"])
        # Two events a page (the page asks for 20; a shim asks for 2), so "Load more" has to
        # fetch the rest, each time with the last page's cursor.
        self.driver.execute_script(
            "const real = window.fetch;"
            "window.fetch = (url, init) =>"
            " real(String(url).replace(/([?&]limit=)20\\b/, (_, key) => `${key}2`), init);")
        self.open_from_private_page("activity")
        self.assertEqual(len(self.rows("event-list")), 2, "the first page")
        for _ in range(5):
            more = self.driver.find_element(By.ID, "events-more")
            if not more.is_displayed():
                break
            more.click()
            self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertFalse(self.driver.find_element(By.ID, "events-more").is_displayed(), "no more pages")
        self.shot("security-activity")
        events = self.rows("event-list")
        self.assertEqual(len({event["eventId"] for event in events}), len(events), "no page shown twice")
        self.assertEqual([(event["eventType"], event["outcome"]) for event in events],
                         [("session.ended", "success"), ("login.succeeded", "success"),
                          ("login.succeeded", "success"), ("login.failed", "failure")], "newest first")
        ended, phone_login, login, failed = events
        self.assertEqual(ended["title"], "Signed out a device")
        self.assertEqual(phone_login["title"], "Signed in with a password")
        self.assertIn(phone[0]["title"], phone_login["text"])
        self.assertEqual(login["title"], "Signed in with a password")
        self.assertEqual(failed["title"], "Failed sign-in (wrong password)")
        self.assertIn("Failed", failed["text"].replace(failed["title"], ""), "its outcome")
        for event in (ended, login, failed):
            self.assertIn(this_browser[0], event["text"], "this browser's device")
        for event in events:
            self.assertIn("When", event["text"])
            self.assertIn("127.0.0.1", event["text"])

    def test_after_log_out_everywhere_another_browser_is_logged_out_too(self):
        name = self.sign_up_and_log_in()
        other = self.another_browser()
        with self.in_browser(other):
            self.open()
            self.fill("login", username=name, password=PASSWORD)
            self.wait_state("logged-in")
        self.driver.find_element(By.ID, "logout-all").click()
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        with self.in_browser(other):
            self.driver.refresh()
            self.assertEqual(self.wait_state("logged-out"), "logged-out", "its session ended too")
            self.shot("other-browser-after-logout-all")

    def test_an_address_from_sign_up_recovers_the_account_and_the_account_can_be_deleted(self):
        email = f"web-{uuid.uuid4().hex[:12]}@example.com"
        name = self.sign_up_and_log_in(email=email)
        # The mailed link, opened in the browser: the token leaves the address bar at once, and
        # the address is confirmed by a click, not by the page load.
        self.driver.get(mailed_link(email, "verify"))
        self.wait_state("logged-in", "logged-out")
        self.assertEqual(self.text("notice"), "", "nothing confirmed before the click")
        self.driver.find_element(By.CSS_SELECTOR, "#verify-form button[type=submit]").click()
        self.assertEqual(self.notice(), "Your email address is confirmed.")
        self.assertTrue(self.driver.current_url.endswith("#/verify"), self.driver.current_url)
        self.shot("verified")
        # Logged out, then forgot password, from the login page.
        self.driver.get(f"{WEB_URL}/#/private")
        self.wait_state("logged-in")
        self.driver.find_element(By.ID, "logout").click()
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        self.driver.find_element(By.ID, "forgot-link").click()
        self.fill("forgot", who=name)
        self.assertIn("on its way", self.notice())
        self.shot("forgot")
        self.driver.get(mailed_link(email, "reset"))
        self.wait_state("logged-out", "logged-in")
        self.assertTrue(self.driver.current_url.endswith("#/reset"), self.driver.current_url)
        new_password = f"new {uuid.uuid4().hex}"
        self.fill("reset", new_password=new_password)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.current_url.endswith("#/login"))
        self.assertIn("Log in with the new one", self.notice())
        self.shot("reset")
        self.fill("login", username=name, password=PASSWORD)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "error").text)
        self.assertEqual(self.text("error"), "Bad username or password", "the old password")
        self.fill("login", username=name, password=new_password)
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        # Delete the account, with its confirmation step.
        self.driver.get(f"{WEB_URL}/#/delete")
        self.wait_state("logged-in")
        self.driver.find_element(By.ID, "delete-password").send_keys(new_password)
        self.driver.find_element(By.CSS_SELECTOR, "#delete-form button[type=submit]").click()
        self.assertTrue(self.driver.current_url.endswith("#/delete"), "not without the confirmation")
        self.driver.find_element(By.ID, "delete-confirm").click()
        self.driver.find_element(By.CSS_SELECTOR, "#delete-form button[type=submit]").click()
        WebDriverWait(self.driver, WAIT).until(lambda d: d.current_url.endswith("#/signup"))
        self.assertEqual(self.notice(), "Your account and everything stored with it are deleted.")
        self.assertEqual(self.refresh_cookies(), [], "the deletion cleared the cookie")
        self.shot("deleted")
        self.open(fragment="#/login")
        self.fill("login", username=name, password=new_password)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "error").text)
        self.assertEqual(self.text("error"), "Bad username or password", "the account is gone")

    def test_the_password_and_address_pages_of_a_signed_in_user(self):
        name = self.sign_up_and_log_in()
        email = f"{name}@example.com"
        self.driver.get(f"{WEB_URL}/#/email")
        self.wait_state("logged-in")
        self.fill("email", email=email, current_password=PASSWORD)
        self.assertIn("on its way", self.notice())
        self.driver.get(mailed_link(email, "verify"))
        self.wait_state("logged-in", "logged-out")
        self.driver.find_element(By.CSS_SELECTOR, "#verify-form button[type=submit]").click()
        self.assertEqual(self.notice(), "Your email address is confirmed.")
        # A wrong current password is the API's message, and the session goes on.
        self.driver.get(f"{WEB_URL}/#/password")
        self.wait_state("logged-in")
        self.fill("password", current_password="not the password", new_password="whatever it is")
        WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "error").text)
        self.assertEqual(self.text("error"), "Current password is wrong")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.driver.get(f"{WEB_URL}/#/password")
        self.wait_state("logged-in")
        new_password = f"new {uuid.uuid4().hex}"
        self.fill("password", current_password=PASSWORD, new_password=new_password)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.current_url.endswith("#/login"))
        self.assertIn("every session ended", self.notice())
        self.fill("login", username=name, password=new_password)
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.shot("password-changed")

    def test_two_step_verification_asks_for_a_code_at_login_and_a_recovery_code_works_once(self):
        name = self.sign_up_and_log_in()
        secret, last_step, codes = self.turn_on_two_step()
        self.shot("recovery-codes")
        # Turning it on ended the old session and started a new one: the page took its token and
        # the browser its cookie, so a reload stays logged in.
        self.driver.refresh()
        self.assertEqual(self.wait_state("logged-in", "logged-out"), "logged-in", "the new refresh cookie")
        self.visible("security")
        self.assertIn("On", self.text("totp-status"))
        self.assertFalse(self.driver.find_element(By.ID, "recovery").is_displayed(), "codes are shown once")
        self.log_out()
        # A password alone is not enough now: the second step, with the app's next code. A code
        # is taken once, for a step after the last accepted one: the next step's, which the API
        # takes up to a step early (if the clock is further on already, the current step's).
        self.log_in_to_second_step(name)
        self.assertEqual(self.refresh_cookies(), [], "no session before the second step")
        self.shot("second-step")
        step = max(last_step + 1, totp_step())
        self.second_step(totp_code(secret, step))
        self.wait_for(lambda d: d.find_element(By.ID, "user-name").text == name, "private-page")
        self.driver.refresh()
        self.assertEqual(self.wait_state("logged-in", "logged-out"), "logged-in", "the second step set the cookie")
        self.assertEqual(self.text("user-name"), name)
        self.log_out()
        # Leaving the second step's page forgets its ticket: back at it, the page asks to log in.
        self.log_in_to_second_step(name)
        # (hash changes in the page, not loads: a load would forget it anyway)
        self.driver.execute_script("window.notReloaded = true; location.hash = '#/login'")
        self.visible("login")
        self.driver.execute_script("location.hash = '#/two-step'")
        self.wait_for(lambda d: d.current_url.endswith("#/login"), "ticket-forgotten")
        self.assertTrue(self.driver.execute_script("return window.notReloaded === true"), "the same page")
        # A recovery code instead of the app's code, once.
        self.log_in_to_second_step(name)
        self.second_step(codes[0].upper())
        self.wait_for(lambda d: d.find_element(By.ID, "user-name").text == name, "private-page")
        self.log_out()
        self.log_in_to_second_step(name)
        self.fill("two-step", code=codes[0])
        self.assertEqual(self.error(), "Invalid code", "a recovery code works once")
        self.assertTrue(self.driver.current_url.endswith("#/two-step"), self.driver.current_url)
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        self.shot("recovery-code-used")

    def test_new_recovery_codes_replace_the_old_ones_and_turning_it_off_leaves_the_password_alone(self):
        name = self.sign_up_and_log_in()
        _, _, old = self.turn_on_two_step()
        self.fill("new-codes", current_password=PASSWORD, code=old[0])
        self.wait_for(lambda d: self.shown_codes() and self.shown_codes()[0] not in old, "new-codes")
        new = self.recovery_codes()
        self.assertFalse(set(new) & set(old))
        self.assertIn("the old ones no longer work", self.notice())
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertEqual(self.refreshes(), 0, "the new codes' answer's token was taken")
        # A replaced code is refused with the API's message, and the session goes on.
        self.fill("totp-disable", current_password=PASSWORD, code=old[1])
        self.assertEqual(self.error(), "Invalid code")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertTrue(self.driver.current_url.endswith("#/security"), self.driver.current_url)
        self.fill("totp-disable", current_password=PASSWORD, code=new[0])
        self.assertIn("Two-step verification is off", self.notice())
        self.visible("totp-enrol-form")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertIn("Off", self.text("totp-status"))
        self.assertEqual(self.refreshes(), 0, "turning it off's token was taken")
        self.shot("turned-off")
        self.driver.refresh()
        self.assertEqual(self.wait_state("logged-in", "logged-out"), "logged-in", "the new refresh cookie")
        self.log_out()
        self.fill("login", username=name, password=PASSWORD)
        self.wait_for(lambda d: d.current_url.endswith("#/private"), "private-page")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.wait_for(lambda d: d.find_element(By.ID, "user-name").text == name, "private-page")

    def test_a_passkey_signs_in_without_a_username_until_it_is_removed(self):
        options = VirtualAuthenticatorOptions(protocol=Protocol.CTAP2, transport=Transport.INTERNAL,
                                              has_resident_key=True, has_user_verification=True,
                                              is_user_verified=True, is_user_consenting=True)
        self.driver.add_virtual_authenticator(options)
        self.addCleanup(self.driver.remove_virtual_authenticator)
        name = self.sign_up_and_log_in()
        self.driver.find_element(By.ID, "security-link").click()
        self.visible("passkeys-empty")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.fill("passkey-add", name="Test laptop", current_password=PASSWORD)
        self.assertIn("added", self.notice())
        self.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#passkey-list li[data-passkey-id]"), "listed")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        item = self.driver.find_elements(By.CSS_SELECTOR, "#passkey-list li[data-passkey-id]")
        self.assertEqual(len(item), 1)
        self.assertIn("Test laptop", item[0].text)
        self.assertFalse(self.driver.find_element(By.ID, "passkeys-empty").is_displayed())
        held = self.driver.get_credentials()
        self.assertEqual(len(held), 1, "the authenticator holds the passkey")
        self.assertTrue(held[0].is_resident_credential, "discoverable: no username needed")
        self.shot("passkey-added")
        self.log_out()
        # Nothing typed: the passkey says who signs in.
        self.assertEqual(self.driver.find_element(By.ID, "login-username").get_attribute("value"), "")
        self.visible("passkey-login").click()
        self.wait_for(lambda d: d.current_url.endswith("#/private"), "passkey-sign-in")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.wait_for(lambda d: d.find_element(By.ID, "user-name").text == name, "private-page")
        self.assertEqual(self.text("error"), "")
        self.shot("signed-in-with-passkey")
        # Removed (with the password), it signs nobody in, though the authenticator still has it.
        self.open_view("security")
        self.driver.find_element(By.CSS_SELECTOR, "#passkey-list li button").click()
        self.visible("passkey-remove-form")
        self.assertEqual(self.text("passkey-remove-name"), "Test laptop")
        self.fill("passkey-remove", current_password=PASSWORD)
        self.assertIn("removed", self.notice())
        self.visible("passkeys-empty")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "#passkey-list li"), [])
        self.log_out()
        self.visible("passkey-login").click()
        self.assertEqual(self.error(), "Passkey not accepted")
        self.assertEqual(self.wait_state("logged-out"), "logged-out")
        self.assertTrue(self.driver.current_url.endswith("#/login"), self.driver.current_url)
        self.shot("removed-passkey-refused")

    def _options(self):
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        # --no-sandbox: Chromium's sandbox refuses to run as root, which CI is.
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,700",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking"):
            options.add_argument(argument)
        return options

    def test_an_expired_access_token_is_refreshed_transparently(self):
        name = self.sign_up_and_log_in()
        user_id = self.text("user-id")
        # The page's token expires: its next /protected carries an expired token (signed with the
        # current key, so only its exp is wrong); the API answers 401, the page refreshes through
        # the cookie and retries once. The shim only swaps the header of that one request.
        self.driver.execute_script(
            """
            const expired = arguments[0];
            const real = window.fetch;
            window.__calls = [];
            let swapped = false;
            window.fetch = (url, init = {}) => {
              window.__calls.push(`${init.method || 'GET'} ${new URL(url).pathname}`);
              if (!swapped && new URL(url).pathname === '/protected') {
                swapped = true;
                init = { ...init, headers: { ...init.headers, authorization: `Bearer ${expired}` } };
              }
              return real(url, init);
            };
            """, expired_token(user_id, name))
        self.driver.execute_script("location.hash = '#/login'")
        self.wait_state("logged-in")
        self.driver.execute_script("location.hash = '#/private'")
        WebDriverWait(self.driver, WAIT).until(
            lambda d: d.execute_script("return (window.__calls || []).length") >= 3)
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        self.assertEqual(self.text("user-name"), name)
        calls = self.driver.execute_script("return window.__calls")
        self.assertEqual(calls, ["GET /protected", "POST /token/refresh", "GET /protected"])
        self.shot("refreshed")

    def test_two_tabs_refreshing_at_once_take_turns(self):
        self.sign_up_and_log_in()
        # Tab A refreshes on a slow network: its request leaves after 1.5 s, and the time its
        # answer arrives is kept.
        self.driver.execute_script(
            """
            const real = window.fetch;
            window.__answered = null;
            window.fetch = async (url, init) => {
              await new Promise((resolve) => setTimeout(resolve, 1500));
              const response = await real(url, init);
              window.__answered = Date.now();
              return response;
            };
            window.__refreshed = null;
            import('./api.js').then((api) => api.refresh()).then((ok) => { window.__refreshed = ok; });
            """)
        tab_a = self.driver.current_window_handle
        # Tab B opens the client meanwhile: its start-up restores the session with a refresh,
        # whose start is kept.
        self.driver.switch_to.new_window("tab")
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            const real = window.fetch;
            window.__sent = [];
            window.fetch = (url, init) => {
              if (new URL(url).pathname.endsWith('/token/refresh')) window.__sent.push(Date.now());
              return real(url, init);
            };
            """})
        self.driver.get(f"{WEB_URL}/#/private")
        self.assertEqual(self.wait_state("logged-in"), "logged-in")
        sent = self.driver.execute_script("return window.__sent")
        self.shot("second-tab")
        self.driver.switch_to.window(tab_a)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.execute_script("return window.__refreshed") is not None)
        self.assertTrue(self.driver.execute_script("return window.__refreshed"), "tab A refreshed")
        answered = self.driver.execute_script("return window.__answered")
        self.assertEqual(len(sent), 1, sent)
        self.assertGreaterEqual(sent[0], answered, "tab B's refresh waited for tab A's answer")
        # Each rotated the token in turn, so the session goes on with the newest one.
        self.driver.refresh()
        self.assertEqual(self.wait_state("logged-in"), "logged-in")

    def test_a_page_on_an_origin_not_allowed_cannot_use_the_api(self):
        # The same client from http://127.0.0.1:<port>: another origin, not in AllowedOrigins.
        parts = urlsplit(WEB_URL)
        other = urlunsplit((parts.scheme, f"127.0.0.1:{parts.port}", "", "", ""))
        self.open(url=other)
        self.fill("login", username="alice", password=PASSWORD)
        WebDriverWait(self.driver, WAIT).until(lambda d: d.find_element(By.ID, "error").text)
        self.assertEqual(self.text("error"), "Cannot reach the API")
        credentials = {"method": "POST", "credentials": "include", "headers": {"content-type": "application/json"},
                       "body": "{}"}
        self.assertEqual(self.fetch(f"{API_URL}/token/refresh", credentials), ["error", "TypeError"])
        self.shot("other-origin")

    def test_the_apis_own_401_and_403_reach_the_page_as_statuses(self):
        self.open()
        # The gateway's 401 (no token: the authorizer never runs) and 403 (no such route) carry
        # the template's CORS headers, so the page reads them instead of a CORS failure.
        self.assertEqual(self.fetch(f"{API_URL}/protected", {}), [401])
        self.assertEqual(self.fetch(f"{API_URL}/no-such-route", {}), [403])
        refresh = {"method": "POST", "credentials": "include", "headers": {"content-type": "application/json"},
                   "body": "{}"}
        self.assertEqual(self.fetch(f"{API_URL}/token/refresh", refresh), [401])
        self.shot("statuses")


if __name__ == "__main__":
    started = time.monotonic()
    result = unittest.main(exit=False, verbosity=2).result
    print(f"browser: {result.testsRun} tests in {time.monotonic() - started:.1f} s, "
          f"screenshots in {SCREENSHOTS}", file=sys.stderr)
    sys.exit(0 if result.wasSuccessful() else 1)
