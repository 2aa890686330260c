//! The helpers every test suite (and the benchmarks) use: the `events/` fixtures, the four
//! functions wired in process to one store, one HTTP client, and the flows a client runs
//! (sign up, log in, call the protected route) over any of three transports: in process, the
//! functions' URLs under `cargo lambda watch`, or the local API in front of them.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::Issuer;
use shared::clock::Clock;
use shared::http::Responder;
use shared::mail::{MailConfig, Mailer, SesMailer};
use shared::mfa::passkey::PasskeyConfig;
use shared::mfa::{MfaConfig, SealingKey};
use shared::password::PasswordHasher;
use shared::session::Sessions;
use shared::store::access::Capability;
use shared::store::dynamodb::DynamoUserStore;
use shared::store::{FindUser, SessionStore};
use shared::test_util::{CHEAP_ARGON2, FixedClock, ISSUER, PASSWORD};
use shared::throttle::{LoginThrottle, MailLimitConfig, MailThrottle, SignUpThrottle};
use shared::{
    CookieSameSite, CorsConfig, LoginThrottleConfig, SessionConfig, SignUpLimitConfig, TokenIssuer,
};

pub use shared::test_util;

pub mod access;
pub mod authenticator;
pub mod dynamo;
pub mod faults;
pub mod mailbox;
pub mod round_trips;

use dynamo::Table;
use faults::{Faults, FaultyClient, Requests};

/// The browser origin the in-process apps allow (CORS, and the cookie routes' CSRF check).
pub const APP_ORIGIN: &str = "https://app.example.com";

/// The default login limit, 5 attempts per name per 15-minute window on the apps' fixed clock,
/// with the limit per address raised: every in-process request comes from the fixture's address.
pub const TEST_THROTTLE: LoginThrottleConfig = LoginThrottleConfig {
    max_failures: 5,
    max_failures_per_client: 100_000,
    window: Duration::from_secs(900),
};

/// The sign-up limit per address, raised for the same reason.
pub const TEST_SIGN_UPS: SignUpLimitConfig = SignUpLimitConfig {
    max_per_client: 100_000,
    window: Duration::from_secs(3600),
};

// --- fixtures --------------------------------------------------------------------------------

/// The `events/` folder at the workspace root.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The text of `events/<name>`, with `${TOKEN}` replaced by `token`.
pub fn fixture(name: &str, token: &str) -> String {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.replace("${TOKEN}", token)
}

/// The fixture as JSON, for tests that edit it before use.
pub fn fixture_json(name: &str, token: &str) -> Value {
    serde_json::from_str(&fixture(name, token)).expect("fixture is JSON")
}

/// An API Gateway proxy event turned into the request lambda_http hands to a handler.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("fixture is a valid API Gateway event")
}

/// `event` with its body replaced by `body` (sent as plain text).
pub fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = Value::String(body.into());
    event["isBase64Encoded"] = Value::Bool(false);
    event
}

/// A response body parsed as JSON (an empty body is `null`, a body that is not JSON a string).
pub fn body_json(response: &Response<Body>) -> Value {
    parse_body(response.body().as_ref())
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
}

/// The user the `events/` fixtures' authorizer context and expired token name (`alice`).
pub const FIXTURE_USER_ID: &str = "0b5f3c8e-9a1d-4e2b-8c7f-1d2e3f4a5b6c";
/// The session they name (`sid`): [`start_fixture_session`] starts it.
pub const FIXTURE_SESSION_ID: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

/// Starts the fixtures' session of `alice` in `store`, at `now`, at session epoch 0, as her login
/// would have: a verdict of the fixtures then names a live session.
pub async fn start_fixture_session(store: &dyn SessionStore, now: u64) {
    start_session_with_id(store, FIXTURE_SESSION_ID, FIXTURE_USER_ID, "alice", now).await;
}

/// Starts the session `session_id` of the user `user_id`/`username` (epoch 0) in `store` at
/// `now`, for hand-made tokens that name it.
pub async fn start_session_with_id(
    store: &dyn SessionStore,
    session_id: &str,
    user_id: &str,
    username: &str,
    now: u64,
) {
    let session = shared::session::NewSession {
        session_id: session_id.into(),
        user_id: user_id.into(),
        username: username.into(),
        username_key: username.to_ascii_lowercase(),
        epoch: 0,
        started_at: now,
        expires_at: now + SessionConfig::default().absolute.as_secs(),
        client: shared::events::Client::unknown(),
        event: shared::events::SecurityEvent::new(
            shared::events::EventKind::LoginSucceeded(shared::events::LoginMethod::Password),
            Some(user_id),
            &shared::events::Client::unknown(),
            now,
            &shared::events::EventConfig::default(),
        ),
    };
    let first = shared::session::RefreshToken::generate().hash();
    store
        .start_session(&session, &first)
        .await
        .expect("the session starts");
}

/// A security event of `user_id` at `now`, for a store call that writes one where what it says
/// does not matter to the test.
pub fn an_event(user_id: &str, now: u64) -> shared::events::SecurityEvent {
    shared::events::SecurityEvent::new(
        shared::events::EventKind::SessionEnded(shared::events::EndedBy::Logout),
        Some(user_id),
        &shared::events::Client::unknown(),
        now,
        &shared::events::EventConfig::default(),
    )
}

/// The `sid` of an access token, read without verifying it (a test's own token).
pub fn sid_of(access_token: &str) -> String {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    claims["sid"].as_str().expect("a sid claim").to_owned()
}

/// A username no other test in this run uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A variable that `./dev test` sets for the tests that need a running service. Missing means
/// the service is not there: the test fails and says how to run it, it is never skipped.
pub fn service_env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: this test needs the services that `./dev test` starts (DynamoDB, cargo lambda watch, the local API, moto for Secrets Manager)")
    })
}

// --- requests and answers ----------------------------------------------------------------------

/// One HTTP request, as a client sends it to the API.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// The API's path (`/users`, `/token`, `/protected`), without the stage.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// The client's address as API Gateway reports it (in process only; over HTTP it is the
    /// connection's, 127.0.0.1). `None`: the fixture's.
    pub source_ip: Option<String>,
}

impl Call {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            source_ip: None,
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    /// A `POST` of `body` as `application/json`.
    pub fn post_json(path: &str, body: &Value) -> Self {
        Self::new(Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: String) -> Self {
        self.body = Some(body);
        self
    }

    /// The call as sent from `address` (in process).
    pub fn from_ip(mut self, address: &str) -> Self {
        self.source_ip = Some(address.into());
        self
    }
}

/// What the API answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when empty, a string when not JSON).
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error body's `msg`.
    pub fn msg(&self) -> &str {
        self.body["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("no msg in {self:?}"))
    }
}

impl From<Response<Body>> for Answer {
    fn from(response: Response<Body>) -> Self {
        Self {
            status: response.status().as_u16(),
            body: body_json(&response),
            headers: response.headers().clone(),
        }
    }
}

/// Something that answers the API's routes: the functions in process, under `cargo lambda
/// watch`, or behind the local API.
pub trait Api: Sync {
    fn call(&self, call: Call) -> impl Future<Output = Answer> + Send;
}

/// `{"username", "password"}`.
pub fn credentials(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password})
}

pub async fn sign_up(api: &impl Api, username: &str, password: &str) -> Answer {
    api.call(Call::post_json("/users", &credentials(username, password)))
        .await
}

pub async fn login(api: &impl Api, username: &str, password: &str) -> Answer {
    api.call(Call::post_json("/token", &credentials(username, password)))
        .await
}

/// `GET /protected` with `authorization` as the `Authorization` header, if any.
pub async fn protected(api: &impl Api, authorization: Option<&str>) -> Answer {
    let mut call = Call::get("/protected");
    if let Some(value) = authorization {
        call = call.header("authorization", value);
    }
    api.call(call).await
}

/// A user that signed up with [`PASSWORD`] and logged in.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

impl User {
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

/// Signs up a user with a fresh name and logs in, asserting both answers.
pub async fn signed_up_user(api: &impl Api) -> User {
    let name = unique_name("user");
    let created = sign_up(api, &name, PASSWORD).await;
    assert_eq!(created.status, 201, "sign-up: {created:?}");
    let token = login(api, &name, PASSWORD).await;
    assert_eq!(token.status, 200, "login: {token:?}");
    assert_eq!(token.body["token_type"], "Bearer");
    assert_eq!(token.body["user_id"], created.body["id"]);
    User {
        id: created.body["id"].as_str().unwrap().to_owned(),
        name,
        token: token.body["token"].as_str().unwrap().to_owned(),
    }
}

/// A user signed up with [`PASSWORD`] and logged in as a client that keeps the refresh token in
/// the body: the user (with the login's access token) and the refresh token.
pub async fn body_session(api: &impl Api) -> (User, String) {
    let user = signed_up_user(api).await;
    let answer = body_login(api, &user.name, PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let refresh = answer.body["refresh_token"].as_str().unwrap().to_owned();
    let user = User {
        token: answer.body["token"].as_str().unwrap().to_owned(),
        ..user
    };
    (user, refresh)
}

// --- sessions ---------------------------------------------------------------------------------

/// Every `Set-Cookie` of an answer, in order.
pub fn set_cookies(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The refresh-token cookies a client holds, by `Path`, kept as a browser keeps them: a
/// `Set-Cookie` replaces the cookie of its path, `Max-Age=0` deletes it.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    /// Takes in the `Set-Cookie`s of `answer`.
    pub fn store(&mut self, answer: &Answer) {
        for cookie in set_cookies(answer) {
            let mut parts = cookie.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            assert_eq!(name, "refresh_token", "{cookie}");
            let attribute = |wanted: &str| {
                cookie
                    .split(';')
                    .map(str::trim)
                    .find_map(|a| a.split_once('=').filter(|(n, _)| n.eq_ignore_ascii_case(wanted)))
                    .map(|(_, v)| v.to_owned())
            };
            let path = attribute("Path").expect("every refresh cookie names its path");
            self.cookies.retain(|(p, _)| *p != path);
            if attribute("Max-Age").as_deref() != Some("0") {
                self.cookies.push((path, value.to_owned()));
            }
        }
    }

    /// The `Cookie` header a browser sends to the API path `path` (its stage in front, if any).
    pub fn header_for(&self, path: &str) -> Option<String> {
        let values: Vec<String> = self
            .cookies
            .iter()
            .filter(|(p, _)| p.ends_with(path))
            .map(|(_, v)| format!("refresh_token={v}"))
            .collect();
        (!values.is_empty()).then(|| values.join("; "))
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The token held for the refresh route.
    pub fn refresh_token(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(p, _)| p.ends_with("/token/refresh"))
            .map(|(_, v)| v.clone())
    }
}

/// A browser's `POST` to a cookie route: JSON content type, an empty JSON object, the cookie
/// from `jar`, and `origin` as its `Origin`; the jar takes the answer's cookies.
pub async fn cookie_post(api: &impl Api, jar: &mut CookieJar, path: &str, origin: Option<&str>) -> Answer {
    let mut call = Call::post_json(path, &json!({}));
    if let Some(cookie) = jar.header_for(path) {
        call = call.header("cookie", &cookie);
    }
    if let Some(origin) = origin {
        call = call.header("origin", origin);
    }
    let answer = api.call(call).await;
    jar.store(&answer);
    answer
}

/// A browser's login: the jar takes the refresh cookie.
pub async fn browser_login(api: &impl Api, jar: &mut CookieJar, username: &str, password: &str) -> Answer {
    let answer = login(api, username, password).await;
    jar.store(&answer);
    answer
}

/// A login of a client that asked for the refresh token in the body.
pub async fn body_login(api: &impl Api, username: &str, password: &str) -> Answer {
    let mut body = credentials(username, password);
    body["refresh_token_in_body"] = json!(true);
    api.call(Call::post_json("/token", &body)).await
}

/// `POST /token/refresh` or `/logout` with `{"refresh_token": token}`.
pub async fn body_post(api: &impl Api, path: &str, token: &str) -> Answer {
    api.call(Call::post_json(path, &json!({"refresh_token": token})))
        .await
}

/// `POST /logout/all` or `/password` with the access token `token` (and `body`, if any).
pub async fn bearer_post(api: &impl Api, path: &str, token: &str, body: &Value) -> Answer {
    api.call(Call::post_json(path, body).header("authorization", &format!("Bearer {token}")))
        .await
}

// --- in process -----------------------------------------------------------------------------

/// The relying party of the in-process apps: the browser client's origin, [`APP_ORIGIN`].
pub fn test_passkeys() -> PasskeyConfig {
    PasskeyConfig {
        rp_id: "app.example.com".into(),
        origins: vec![APP_ORIGIN.parse().expect("a URL")],
        rp_name: "jwt-auth tests".into(),
    }
}

/// The sender of the tests' mail.
pub const MAIL_FROM: &str = "no-reply@auth.test";

/// The mail settings of the in-process apps: the defaults, but `/password/forgot` answers after
/// 200 ms (the default second would slow every test that calls it).
pub fn test_mail_config() -> MailConfig {
    MailConfig {
        from: Some(MAIL_FROM.into()),
        forgot_response: std::time::Duration::from_millis(200),
        ..MailConfig::default()
    }
}

/// An SES configuration whose HTTP client delivers to `mailbox`.
fn mailbox_config(mailbox: &Arc<mailbox::Mailbox>) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "tests"),
        ))
        .http_client(round_trips::counting(mailbox.client()))
        .endpoint_url("https://email.mailbox.test")
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio's sleep"))
        .build()
}

/// The four functions' apps on one table, with cheap argon2 and a fixed clock, and the DynamoDB
/// faults of `faults` injected at the stores' HTTP client. On the apps [`Apps::on`] builds, each
/// function has a store of its own whose requests are kept, and when the apps go, every request
/// must be one its capabilities (`STORE`) declare: the IAM check compares those with the
/// template.
pub struct Apps {
    /// The test's own store, to arrange and look at what the functions see.
    pub store: Arc<DynamoUserStore>,
    /// The table the store writes to, to look at what it holds.
    pub table: Table,
    /// Faults injected between the store and DynamoDB; none until a test arms one.
    pub faults: Arc<Faults>,
    /// Every message the functions sent through SES.
    pub mailbox: Arc<mailbox::Mailbox>,
    pub clock: Arc<FixedClock>,
    pub users: users::App,
    pub token: token::App,
    pub protected: protected::App,
    pub authorizer: authorizer::App,
    pub issuer: TokenIssuer,
    /// Each function's store requests, by function, when kept.
    requests: Vec<(&'static str, &'static [Capability], Arc<Requests>)>,
    /// The calls in flight, to hold only a call that ran alone to its stated round trips.
    calls: InFlight,
    /// What the last call sent (`round_trips`).
    last: std::sync::Mutex<Option<round_trips::RoundTrips>>,
}

/// The calls [`Apps`] is handling: how many now, and how many ever started beside another.
#[derive(Debug, Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    overlaps: std::sync::atomic::AtomicUsize,
}

impl InFlight {
    /// A call starts: whether it starts alone, and the overlaps so far.
    fn enter(&self) -> (bool, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        let before = self.now.fetch_add(1, SeqCst);
        if before > 0 {
            self.overlaps.fetch_add(1, SeqCst);
        }
        (before == 0, self.overlaps.load(SeqCst))
    }

    /// The call ends: whether it ran alone from start to end.
    fn leave(&self, (alone, overlaps): (bool, usize)) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.now.fetch_sub(1, SeqCst);
        alone && self.overlaps.load(SeqCst) == overlaps
    }
}

/// A store for each function that has one (users, token, protected), sending to one table.
pub struct FunctionStores {
    pub users: Arc<DynamoUserStore>,
    pub token: Arc<DynamoUserStore>,
    pub protected: Arc<DynamoUserStore>,
}

impl FunctionStores {
    /// One store for all of them.
    pub fn shared(store: &Arc<DynamoUserStore>) -> Self {
        Self {
            users: store.clone(),
            token: store.clone(),
            protected: store.clone(),
        }
    }
}

impl Drop for Apps {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let undeclared: Vec<String> = self
            .requests
            .iter()
            .flat_map(|(function, capabilities, requests)| {
                access::undeclared(capabilities, &requests.sent())
                    .into_iter()
                    .map(move |sent| format!("{function}: {sent:?}"))
            })
            .collect();
        assert!(
            undeclared.is_empty(),
            "store requests that no capability of the function declares (shared/src/store/access.rs):\n{}",
            undeclared.join("\n")
        );
    }
}

impl Apps {
    /// The apps on a fresh table of this process's embedded DynamoDB (Dynoxide), with the
    /// default session settings.
    pub async fn embedded() -> Self {
        Self::embedded_with(SessionConfig::default()).await
    }

    /// As [`Self::embedded`], with the session settings `sessions`.
    pub async fn embedded_with(sessions: SessionConfig) -> Self {
        Self::on(dynamo::embedded_endpoint(), None, sessions).await
    }

    /// The apps of the store suite: on the DynamoDB at `TEST_DYNAMODB_ENDPOINT` and its table
    /// `TEST_USERS_TABLE` when set (`./dev test`, `./dev test-store URL`: any DynamoDB, a real
    /// table included), else on a fresh table of the embedded one.
    pub async fn for_store_suite() -> Self {
        match (
            std::env::var("TEST_DYNAMODB_ENDPOINT"),
            std::env::var("TEST_USERS_TABLE"),
        ) {
            (Ok(endpoint), Ok(table)) => Self::on(&endpoint, Some(table), SessionConfig::default()).await,
            _ => Self::embedded().await,
        }
    }

    /// The stored user `name` (in any letter case), as the store reads it.
    pub async fn user(&self, name: &str) -> Option<shared::store::UserRecord> {
        let name = shared::user::Username::parse(name).ok()?;
        self.store.find_by_username(&name).await.expect("reading a user")
    }

    /// How many users the table holds.
    pub async fn user_count(&self) -> usize {
        self.table.items(shared::store::dynamodb::USER_PREFIX).await.len()
    }

    /// The login attempts counted for `key` (a username's key or a client address's) in `window`.
    pub async fn attempts(&self, key: &str, window: u64) -> u32 {
        self.table
            .count(&format!(
                "{}{key}#{window}",
                shared::store::dynamodb::LOGIN_PREFIX
            ))
            .await
    }

    /// The stored refresh-token records, as the table holds them (hashes only).
    pub async fn refresh_records(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.table.items(shared::store::dynamodb::REFRESH_PREFIX).await
    }

    /// The apps on `store`, a store of its own (another endpoint, other timeouts), whose table
    /// is `table`.
    pub fn with_store(store: DynamoUserStore, table: Table) -> Self {
        let store = Arc::new(store);
        let functions = FunctionStores::shared(&store);
        Self::with_sessions(store, functions, table, Faults::none(), SessionConfig::default())
    }

    /// The apps on the DynamoDB at `endpoint`: its table `table`, or a fresh one from the
    /// template.
    pub async fn on(endpoint: &str, table: Option<String>, sessions: SessionConfig) -> Self {
        let faults = Faults::none();
        let table = match table {
            Some(name) => Table::named(endpoint, name).await,
            None => Table::fresh(endpoint).await,
        };
        let client = FaultyClient::shared(Some(dynamo::functions_client()), faults.clone());
        let store = Arc::new(table.store(endpoint, client).await);
        let mut requests = Vec::new();
        let mut recording = async |name, capabilities| {
            let sent = Requests::new();
            requests.push((name, capabilities, sent.clone()));
            let client = FaultyClient::recording(Some(dynamo::functions_client()), faults.clone(), sent);
            Arc::new(table.store(endpoint, round_trips::counting(client)).await)
        };
        let functions = FunctionStores {
            users: recording("users", users::STORE).await,
            token: recording("token", token::STORE).await,
            protected: recording("protected", protected::STORE).await,
        };
        let mut apps = Self::with_sessions(store, functions, table, faults, sessions);
        apps.requests = requests;
        apps
    }

    /// The apps on `store` (writing to `table` through `faults`) with the session settings
    /// `sessions`.
    pub fn with_sessions(
        store: Arc<DynamoUserStore>,
        functions: FunctionStores,
        table: Table,
        faults: Arc<Faults>,
        sessions: SessionConfig,
    ) -> Self {
        let clock = Arc::new(FixedClock::at(jsonwebtoken::get_current_timestamp()));

        let cors = CorsConfig {
            allowed_origins: vec![APP_ORIGIN.into()],
        };
        let hasher = PasswordHasher::new(&CHEAP_ARGON2).expect("cheap argon2 parameters are valid");
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let mailbox = mailbox::Mailbox::new();
        let functions_token_for_mail = functions.token.clone();
        let mailer: Arc<dyn Mailer> = Arc::new(SesMailer::new(&mailbox_config(&mailbox), MAIL_FROM));
        Self {
            users: users::App {
                store: functions.users.clone(),
                sign_ups: SignUpThrottle::new(TEST_SIGN_UPS, functions.users.clone(), dyn_clock.clone()),
                hasher: hasher.clone(),
                responder: Responder::default(),
                mailer: Some(mailer.clone()),
                mail: test_mail_config(),
                mail_limits: MailThrottle::new(
                    MailLimitConfig::default(),
                    functions.users,
                    dyn_clock.clone(),
                ),
                clock: dyn_clock.clone(),
            },
            token: token::App {
                store: functions.token.clone(),
                throttle: LoginThrottle::new(TEST_THROTTLE, functions.token.clone(), dyn_clock.clone()),
                hasher,
                signer: token::Signer::Ready(test_util::issuer()),
                sessions: Sessions::new(sessions, functions.token.clone(), dyn_clock.clone()),
                verifier: test_util::verifier(),
                same_site: CookieSameSite::Strict,
                clock: dyn_clock.clone(),
                issuer: Issuer::Fixed(ISSUER.into()),
                responder: Responder::with_credentials(cors),
                mailer: Some(mailer),
                mail: test_mail_config(),
                mail_limits: MailThrottle::new(
                    MailLimitConfig::default(),
                    functions_token_for_mail,
                    dyn_clock.clone(),
                ),
                mfa: MfaConfig::default(),
                sealer: token::mfa::Sealer::ready(SealingKey::derive(&[42u8; 32])),
                passkeys: Some(test_passkeys().relying_party().expect("the tests' relying party")),
            },
            protected: protected::App {
                store: functions.protected,
                verifier: test_util::verifier(),
                issuer: Issuer::Fixed(ISSUER.into()),
                responder: Responder::default(),
                clock: dyn_clock,
            },
            authorizer: authorizer::App {
                verifier: test_util::verifier(),
                issuer: Issuer::Fixed(ISSUER.into()),
            },
            issuer: test_util::issuer(),
            clock,
            store,
            table,
            faults,
            mailbox,
            requests: Vec::new(),
            calls: InFlight::default(),
            last: std::sync::Mutex::default(),
        }
    }

    /// The event API Gateway would send for `call`, built on a real event of `events/`.
    pub fn event(call: &Call) -> Value {
        let mut event = fixture_json("users/valid.json", "");
        let mut headers = serde_json::Map::new();
        let mut multi = serde_json::Map::new();
        for (name, value) in &call.headers {
            headers.insert(name.clone(), json!(value));
            multi
                .entry(name.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("multiValueHeaders holds lists")
                .push(json!(value));
        }
        // A query string (`/sessions?limit=1`) goes where API Gateway puts it, undecoded (the
        // tests' values need no escapes).
        let (path, query) = call.path.split_once('?').unwrap_or((&call.path, ""));
        let mut single = serde_json::Map::new();
        let mut lists = serde_json::Map::new();
        for (name, value) in query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
        {
            single.insert(name.to_owned(), json!(value));
            lists
                .entry(name.to_owned())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("a list")
                .push(json!(value));
        }
        if !single.is_empty() {
            event["queryStringParameters"] = Value::Object(single);
            event["multiValueQueryStringParameters"] = Value::Object(lists);
        }
        event["httpMethod"] = json!(call.method.as_str());
        event["path"] = json!(path);
        event["resource"] = json!(path);
        event["requestContext"]["httpMethod"] = json!(call.method.as_str());
        event["requestContext"]["resourcePath"] = json!(path);
        event["requestContext"]["path"] = json!(format!("/v1{path}"));
        event["headers"] = Value::Object(headers);
        event["multiValueHeaders"] = Value::Object(multi);
        event["body"] = call.body.as_ref().map_or(Value::Null, |b| json!(b));
        if let Some(address) = &call.source_ip {
            event["requestContext"]["identity"]["sourceIp"] = json!(address);
        }
        event["isBase64Encoded"] = json!(false);
        event
    }
}

/// The text of `template.yaml`, the one definition of the routes, roles, parameters and table.
pub fn template_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `template.yaml` parsed, intrinsic functions in their long form.
pub fn template() -> Value {
    local_api::template::parse(&template_text()).expect("template.yaml parses")
}

/// The API of `template.yaml` as the local API serves it, with `origins` allowed.
pub fn template_api(origins: &str) -> local_api::spec::ApiSpec {
    let mut options = local_api::spec::Options::default();
    options.parameters.insert("AllowedOrigins".into(), origins.into());
    local_api::spec::load(&template_text(), &options).expect("template.yaml's API")
}

/// The function that serves each resource path, as `template.yaml`'s routes say (every method
/// of a path, preflights included, goes to one function).
fn function_of(path: &str) -> &'static str {
    static FUNCTIONS: std::sync::LazyLock<std::collections::HashMap<String, String>> =
        std::sync::LazyLock::new(|| {
            let mut functions = std::collections::HashMap::new();
            for route in template_api(APP_ORIGIN).routes {
                let known = functions
                    .entry(route.resource.clone())
                    .or_insert_with(|| route.function.clone());
                assert_eq!(
                    *known, route.function,
                    "{} is served by two functions",
                    route.resource
                );
            }
            functions
        });
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let segments = |p: &str| {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    FUNCTIONS.get(path).map(String::as_str).unwrap_or_else(|| {
        // A resource with a `{name}` segment (`/sessions/{id}`) matches any value there.
        let parts = segments(path);
        FUNCTIONS
            .iter()
            .find(|(resource, _)| {
                let pattern = segments(resource);
                pattern.len() == parts.len()
                    && pattern
                        .iter()
                        .zip(&parts)
                        .all(|(want, got)| want.starts_with('{') || want == got)
            })
            .map(|(_, function)| function.as_str())
            .unwrap_or_else(|| panic!("template.yaml has no route {path}"))
    })
}

impl Apps {
    /// What the functions' stores and mailer sent for the last call these apps handled.
    pub fn last_round_trips(&self) -> round_trips::RoundTrips {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .expect("a call was made")
    }
}

impl Api for Apps {
    /// Handles `call`, and holds a successful answer to the round trips its operation states in
    /// `openapi.yaml` (`round_trips`): when the apps count them (their functions' stores and
    /// mailer do on [`Apps::on`]), when no other call ran beside it (whose requests would mix
    /// with its own, and whose writes could make it retry) and when no fault was injected.
    async fn call(&self, call: Call) -> Answer {
        let event = request(&Self::event(&call));
        let started = self.calls.enter();
        let faults = self.faults.injected();
        let (response, sent) = round_trips::counted(async {
            match function_of(&call.path) {
                "users" => users::handle(&self.users, event).await,
                "token" => token::handle(&self.token, event).await,
                "protected" => protected::handle(&self.protected, event).await,
                other => panic!("{} is served by {other}, which these apps do not run", call.path),
            }
        })
        .await;
        let alone = self.calls.leave(started);
        let answer: Answer = response.expect("the handlers are infallible").into();
        if !self.requests.is_empty()
            && alone
            && faults == self.faults.injected()
            && (200..300).contains(&answer.status)
        {
            round_trips::check(&call.method, &call.path, &sent);
        }
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sent);
        answer
    }
}

// --- over HTTP --------------------------------------------------------------------------------

/// The one HTTP client of the suites: bounded, never through a proxy.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client whose requests fail after `timeout`: a request that hangs is a failure.
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Self { client }
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<String>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("an HTTP method");
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!(
                "{url}: no answer: {}",
                anyhow::Error::new(e)
                    .chain()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(": ")
            )
        });
        let status = response.status().as_u16();
        let mut headers = HeaderMap::new();
        for (name, value) in response.headers() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(name, value);
            }
        }
        let bytes = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{url}: body: {e}"));
        Answer {
            status,
            headers,
            body: parse_body(&bytes),
        }
    }
}

/// Where the routes are served over HTTP.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// The local API (API Gateway as deployed): `<base>/users`.
    Gateway,
    /// `cargo lambda watch`'s function URLs: `<base>/lambda-url/users/`.
    FunctionUrls,
}

/// The API over HTTP.
#[derive(Debug, Clone)]
pub struct HttpApi {
    pub base: String,
    pub layout: Layout,
    pub http: Http,
}

impl HttpApi {
    /// The local API that `./dev test` starts (`TEST_API_ENDPOINT`).
    pub fn local_api() -> Self {
        Self {
            base: service_env("TEST_API_ENDPOINT"),
            layout: Layout::Gateway,
            http: Http::new(Duration::from_secs(60)),
        }
    }

    /// The functions' URLs under the `cargo lambda watch` that `./dev test` starts.
    pub fn function_urls() -> Self {
        Self {
            base: service_env("TEST_LAMBDA_ENDPOINT"),
            layout: Layout::FunctionUrls,
            http: Http::new(Duration::from_secs(60)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        match self.layout {
            Layout::Gateway => format!("{}{path}", self.base),
            Layout::FunctionUrls => format!("{}/lambda-url/{}/", self.base, path.trim_matches('/')),
        }
    }
}

impl Api for HttpApi {
    async fn call(&self, call: Call) -> Answer {
        self.http
            .send(call.method, &self.url(&call.path), &call.headers, call.body)
            .await
    }
}

/// `cargo lambda watch`'s Lambda Invoke API, as API Gateway invokes the authorizer and the
/// functions.
#[derive(Debug, Clone)]
pub struct Invoker {
    pub base: String,
    pub http: Http,
}

impl Invoker {
    pub fn from_env() -> Self {
        Self {
            base: service_env("TEST_LAMBDA_ENDPOINT"),
            http: Http::new(Duration::from_secs(60)),
        }
    }

    /// Invokes `function` with `event`; the answer's body is the function's output (or its
    /// error, `{"errorType", "errorMessage"}`).
    pub async fn invoke(&self, function: &str, event: &Value) -> Answer {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        self.http
            .send(Method::POST, &url, &headers, Some(event.to_string()))
            .await
    }
}
