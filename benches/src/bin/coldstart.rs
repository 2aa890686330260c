//! Cold-start benchmark: starts each release `bootstrap` binary against a minimal Lambda
//! Runtime API on 127.0.0.1 and measures, from spawn, the time to its first
//! `GET /runtime/invocation/next` (init: everything before the first poll) and to its first
//! response (init + the first invocation). Then it feeds `--warm` more invocations and times
//! each round trip over the Runtime API. Runs are interleaved (one of each binary per round, in
//! rotating order) so that machine noise hits all binaries alike; ratios are to `hello`.
//!
//! The functions that use DynamoDB get `AWS_ENDPOINT_URL_DYNAMODB` pointing at a stub on
//! 127.0.0.1 that answers `GetItem` of a `USER#` key with one user (whose password is the one
//! in `events/token/valid.json`, hashed with the OWASP parameters), of a `SESSION#` key with a
//! live session, any other `GetItem` with no item, and writes with success, so every first
//! invocation takes its success path (200 or 201) over plain HTTP. The same stub answers Secrets
//! Manager's `GetSecretValue` with the benchmark's key set, so `token` runs as deployed: its
//! signing key read on first use.
//!
//! ```text
//! coldstart [--runs N] [--warm W] [--events DIR] [--logs DIR] [--out FILE] NAME=PATH...
//! ```
//! NAME picks the event: `hello`, `authorizer`, `protected`, `token` or `users`, optionally
//! with a `@variant` suffix (`authorizer@thin`) to compare builds; each is then compared with
//! `hello@variant` if given, else with `hello`.

// A benchmark driver: failing loudly on a broken set-up is the right answer.
#![allow(clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fs::File;
use std::future::Future;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};
use benchmarks::{ISSUER, PASSWORD, Stats, TEST_SIGNING_KEY, USER_ID, USERNAME, jwks_json, mint_tokens};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use shared::key_set::{KeyState, StoredKey, StoredKeySet};
use shared::keys::SigningKey;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::{JoinHandle, JoinSet};

/// How long one run may take before it is abandoned (a hung or crashed binary).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const API_PREFIX: &str = "/2018-06-01/runtime";
/// The secrets the token function is given, as the template gives it their ARNs.
const KEY_SET_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-keys-AbCdEf";
const MFA_KEY_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-mfa-AbCdEf";

/// The function kinds, as the NAME of NAME=PATH (before any `@variant`).
const KINDS: [&str; 6] = ["hello", "sdk-hello", "authorizer", "protected", "token", "users"];

/// Cold-start benchmark: each `bootstrap` binary against a minimal Lambda Runtime API on
/// 127.0.0.1, runs interleaved; prints a table and optionally writes JSON.
#[derive(Debug, Parser)]
#[command(name = "coldstart")]
struct Options {
    /// Recorded runs of each binary, after one warm-up round.
    #[arg(long, value_name = "N", default_value = "30")]
    runs: NonZeroUsize,
    /// Warm invocations after the first, in each run (none for `token` and `users`).
    #[arg(long, value_name = "W", default_value_t = 100)]
    warm: usize,
    /// The directory of the event fixtures.
    #[arg(long, value_name = "DIR", default_value = "events")]
    events: PathBuf,
    /// Where each binary's output is appended (`NAME.log`).
    #[arg(long, value_name = "DIR", default_value = "target/bench/logs")]
    logs: PathBuf,
    /// A JSON file for the results.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A binary to measure: NAME is hello, sdk-hello, authorizer, protected, token or users, optionally
    /// with an `@variant` suffix.
    #[arg(value_name = "NAME=PATH", required = true, value_parser = binary)]
    binaries: Vec<(String, PathBuf)>,
}

fn binary(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or(format!("expected NAME=PATH, got {text:?}"))?;
    if !KINDS.contains(&kind(name)) {
        return Err(format!("unknown function name {name:?}"));
    }
    Ok((name.into(), path.into()))
}

fn main() -> ExitCode {
    match run_all(&Options::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coldstart: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one run measured.
struct Sample {
    init: Duration,
    first_response: Duration,
    first_ok: bool,
    warm: Vec<Duration>,
    peak_rss_kib: Option<u64>,
}

fn run_all(options: &Options) -> Result<(), String> {
    std::fs::create_dir_all(&options.logs)
        .map_err(|e| format!("creating {}: {e}", options.logs.display()))?;
    // Serves the Runtime API and the AWS stub (DynamoDB, Secrets Manager), one worker thread per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the Tokio runtime: {e}"))?;
    let dynamodb_port = start_aws_stub(&runtime)?;
    let mut samples: HashMap<&str, Vec<Sample>> = HashMap::new();
    let count = options.binaries.len();
    // Round 0 is a warm-up (page cache, CPU frequency) and is not recorded.
    for round in 0..=options.runs.get() {
        for k in 0..count {
            let (name, path) = &options.binaries[(round + k) % count];
            let warm = if ["token", "users"].contains(&kind(name)) {
                0
            } else {
                options.warm
            };
            let sample = run_once(&runtime, name, path, options, dynamodb_port, warm)
                .map_err(|e| format!("{name} ({}), round {round}: {e}", path.display()))?;
            if round > 0 {
                samples.entry(name.as_str()).or_default().push(sample);
            }
        }
        eprint!("\rcoldstart: round {round}/{}", options.runs);
    }
    eprintln!();
    report(options, &samples)
}

/// The function a label names: `authorizer@thin` is an `authorizer`.
fn kind(label: &str) -> &str {
    label.split_once('@').map_or(label, |(kind, _)| kind)
}

/// The hello-world run a label is compared with: `hello@thin` for `authorizer@thin`.
fn baseline_for<'a>(label: &str, samples: &HashMap<&'a str, Vec<Sample>>) -> Option<&'a str> {
    let variant = label.split_once('@').map(|(_, v)| format!("hello@{v}"));
    [variant.as_deref(), Some("hello")]
        .into_iter()
        .flatten()
        .find_map(|name| samples.get_key_value(name).map(|(k, _)| *k))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report(options: &Options, samples: &HashMap<&str, Vec<Sample>>) -> Result<(), String> {
    let stats = |name: &str, pick: &dyn Fn(&Sample) -> Vec<Duration>| {
        let all: Vec<Duration> = samples[name].iter().flat_map(pick).collect();
        Stats::of(&all)
    };
    println!(
        "{:<18} {:>12} {:>10} {:>9} {:>15} {:>12} {:>10} {:>9}",
        "function",
        "init median",
        "init p90",
        "vs hello",
        "first response",
        "warm median",
        "first ok",
        "peak RSS"
    );
    let mut results = serde_json::Map::new();
    for (name, _) in &options.binaries {
        let init = stats(name, &|s| vec![s.init]).expect("at least one run");
        let first = stats(name, &|s| vec![s.first_response]).expect("at least one run");
        let warm = stats(name, &|s| s.warm.clone());
        let ok = samples[name.as_str()].iter().filter(|s| s.first_ok).count();
        let mut rss: Vec<u64> = samples[name.as_str()]
            .iter()
            .filter_map(|s| s.peak_rss_kib)
            .collect();
        rss.sort_unstable();
        let rss_median = rss.get(rss.len() / 2).copied();
        let ratio = baseline_for(name, samples)
            .and_then(|hello| stats(hello, &|s| vec![s.init]))
            .map(|h| init.median.as_secs_f64() / h.median.as_secs_f64());
        println!(
            "{:<18} {:>9.2} ms {:>7.2} ms {:>9} {:>12.2} ms {:>9} {:>10} {:>9}",
            name,
            micros(init.median) / 1e3,
            micros(init.p90) / 1e3,
            ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            micros(first.median) / 1e3,
            warm.map_or("-".into(), |w| format!("{:.1} us", micros(w.median))),
            format!("{ok}/{}", init.n),
            rss_median.map_or("-".into(), |k| format!("{:.1} MB", k as f64 / 1024.0)),
        );
        results.insert(
            name.clone(),
            json!({
                "runs": init.n,
                "init_us": {"min": micros(init.min), "median": micros(init.median), "p90": micros(init.p90), "max": micros(init.max)},
                "first_response_us": {"min": micros(first.min), "median": micros(first.median), "p90": micros(first.p90), "max": micros(first.max)},
                "warm_round_trip_us": warm.map(|w| json!({"n": w.n, "median": micros(w.median), "p90": micros(w.p90)})),
                "init_ratio_to_hello": ratio,
                "first_invocation_succeeded": ok,
                "peak_rss_kib_median": rss_median,
            }),
        );
    }
    if let Some(out) = &options.out {
        let text = serde_json::to_string_pretty(&results).expect("JSON values serialize");
        std::fs::write(out, text).map_err(|e| format!("writing {}: {e}", out.display()))?;
    }
    Ok(())
}

/// The event a function's first (and every warm) invocation gets.
fn event_for(name: &str, events: &Path) -> Result<String, String> {
    let file = match kind(name) {
        "hello" | "sdk-hello" => return Ok(r#"{"name":"bench"}"#.into()),
        "authorizer" => "authorizer/valid.json",
        "protected" => "protected/bearer.json",
        "token" => "token/valid.json",
        _ => "users/valid.json",
    };
    let path = events.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let token = mint_tokens(1).pop().expect("one token");
    Ok(text.replace("${TOKEN}", &token))
}

/// The environment Lambda gives a function, plus what ours need, as the template gives it: the
/// public key set (a JWKS) to every function, the private key only to `token`. Nothing else is
/// inherited. The variant `@loader` adds `AWS_MAX_ATTEMPTS=3`: the SDK's default, so the same
/// settings, but an `AWS_*` variable Lambda does not set, so the functions build their SDK
/// configuration with aws-config's loader instead of from Lambda's environment
/// (`shared::store::sdk_config`): the same binaries, both ways, side by side.
fn lambda_env(name: &str, runtime_port: u16, dynamodb_port: u16) -> Vec<(&'static str, String)> {
    let loader = name.ends_with("@loader");
    let name = kind(name);
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{runtime_port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("bench-{name}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/bench-{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]0123456789abcdef".into(),
        ),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "ASIABENCHMARKEXAMPLE".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "benchmark/secret/access/key/not/a/real/one0".into(),
        ),
        ("AWS_SESSION_TOKEN", "benchmark-session-token".into()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("JWT_PUBLIC_KEYS", jwks_json()),
        ("JWT_ISSUER", ISSUER.into()),
        ("USERS_TABLE", "bench-users".into()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            format!("http://127.0.0.1:{dynamodb_port}"),
        ),
        ("DYNAMODB_CONNECT_TIMEOUT_MS", "200".into()),
        ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "500".into()),
        ("DYNAMODB_OPERATION_TIMEOUT_MS", "1000".into()),
    ];
    if name == "token" {
        // As the template configures it: the key set's secret and the signing key's id, and the
        // secret of the TOTP sealing key, both read from Secrets Manager (the stub) on first use.
        let kid = SigningKey::from_pem(TEST_SIGNING_KEY)
            .expect("the benchmark's signing key")
            .kid()
            .to_owned();
        env.push(("JWT_SIGNING_KEY_SECRET", KEY_SET_SECRET.into()));
        env.push(("JWT_SIGNING_KEY_ID", kid));
        env.push(("MFA_KEY_SECRET", MFA_KEY_SECRET.into()));
        env.push((
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            format!("http://127.0.0.1:{dynamodb_port}"),
        ));
    }
    if loader {
        env.push(("AWS_MAX_ATTEMPTS", "3".into()));
    }
    env
}

/// What the Runtime API saw, sent from its connection tasks to the run's driver.
enum Seen {
    Next(Instant),
    Done {
        at: Instant,
        ok: bool,
        round_trip: Option<Duration>,
        body: String,
    },
    InitError(String),
}

/// One run's Runtime API state: events not yet handed out, and when each was handed out.
struct Invocations {
    pending: VecDeque<(String, String)>,
    sent_at: HashMap<String, Instant>,
}

fn run_once(
    runtime: &Runtime,
    name: &str,
    path: &Path,
    options: &Options,
    dynamodb_port: u16,
    warm: usize,
) -> Result<Sample, String> {
    let event = event_for(name, &options.events)?;
    let invocations = Arc::new(Mutex::new(Invocations {
        pending: (0..=warm)
            .map(|i| (format!("bench-{i:06}"), event.clone()))
            .collect(),
        sent_at: HashMap::new(),
    }));
    let (tx, rx) = mpsc::channel();
    let (server, port) = runtime
        .block_on(serve(move |request| {
            runtime_api(request, invocations.clone(), tx.clone())
        }))
        .map_err(|e| format!("binding the Runtime API: {e}"))?;

    let log_path = options.logs.join(format!("{}.log", name.replace('@', "-")));
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut child = Command::new(path)
        .env_clear()
        .envs(lambda_env(name, port, dynamodb_port))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("starting: {e}"))?;

    let result = drive(&rx, start, warm + 1, &mut child);
    let peak_rss_kib = peak_rss_kib(child.id());
    // Only the child this run started, by its own handle.
    let _ = child.kill();
    let _ = child.wait();
    // Stops accepting and drops the open connections, a poll left waiting included.
    server.abort();
    result.map(|mut sample| {
        sample.peak_rss_kib = peak_rss_kib;
        sample
    })
}

fn drive(
    rx: &mpsc::Receiver<Seen>,
    start: Instant,
    expected: usize,
    child: &mut Child,
) -> Result<Sample, String> {
    let deadline = start + RUN_TIMEOUT;
    let (mut init, mut first) = (None, None);
    let (mut first_ok, mut done, mut warm) = (false, 0, Vec::new());
    while done < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(Seen::Next(at)) => {
                init.get_or_insert(at - start);
            }
            Ok(Seen::Done {
                at,
                ok,
                round_trip,
                body,
            }) => {
                done += 1;
                if first.is_none() {
                    first = Some(at - start);
                    first_ok = ok && first_invocation_succeeded(&body);
                    if !first_ok {
                        eprintln!("\nfirst invocation did not succeed: {body}");
                    }
                } else if let Some(rt) = round_trip {
                    warm.push(rt);
                }
            }
            Ok(Seen::InitError(body)) => return Err(format!("init failed: {body}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited with {status} after {done} invocations"));
                }
                if Instant::now() >= deadline {
                    return Err(format!("no answer within {RUN_TIMEOUT:?}"));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err("Runtime API stopped".into()),
        }
    }
    Ok(Sample {
        init: init.ok_or("responded without polling")?,
        first_response: first.ok_or("no response")?,
        first_ok,
        warm,
        peak_rss_kib: None,
    })
}

/// A response succeeded if it is not an HTTP error (the functions answer 2xx on the success path).
fn first_invocation_succeeded(body: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => value
            .get("statusCode")
            .and_then(serde_json::Value::as_u64)
            .is_none_or(|status| (200..300).contains(&status)),
        Err(_) => false,
    }
}

/// The child's peak resident memory (VmHWM), read before it is stopped.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An HTTP/1.1 server on 127.0.0.1 (an ephemeral port) answering every request with `answer`,
/// until its task is aborted; its port.
async fn serve<A, F>(answer: A) -> std::io::Result<(JoinHandle<()>, u16)>
where
    A: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        // Dropped with the task: aborting the server closes its connections too.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let answer = answer.clone();
            let service = service_fn(move |request| {
                let response = answer(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            connections.spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Ok((server, port))
}

fn respond(
    status: StatusCode,
    headers: &[(&'static str, String)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::try_from(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

async fn runtime_api(
    request: Request<Incoming>,
    invocations: Arc<Mutex<Invocations>>,
    tx: mpsc::Sender<Seen>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let path = path.strip_prefix(API_PREFIX).unwrap_or("");
    let lock = || invocations.lock().expect("no thread panics holding the lock");
    if method == Method::GET && path == "/invocation/next" {
        let _ = tx.send(Seen::Next(Instant::now()));
        let Some((id, event)) = lock().pending.pop_front() else {
            // Nothing more to invoke: leave the poll open, as Lambda does between events.
            return std::future::pending().await;
        };
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() + 30_000);
        let headers = [
            ("lambda-runtime-aws-request-id", id.clone()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            ),
            ("content-type", "application/json".into()),
        ];
        // Stamped before the response is written: stamped after, a preempted task could stamp
        // it after the function had already answered.
        lock().sent_at.insert(id, Instant::now());
        return respond(StatusCode::OK, &headers, event);
    }
    // The whole request read, as the function's answer is only complete then.
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    let now = Instant::now();
    let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
    let accepted = || respond(StatusCode::ACCEPTED, &[], r#"{"status":"OK"}"#);
    if method == Method::POST && path.starts_with("/invocation/") {
        let (ok, id) = match path.strip_prefix("/invocation/") {
            Some(rest) if rest.ends_with("/response") => (true, rest.trim_end_matches("/response")),
            Some(rest) => (false, rest.trim_end_matches("/error")),
            None => (false, ""),
        };
        let round_trip = lock().sent_at.get(id).map(|sent| now - *sent);
        let _ = tx.send(Seen::Done {
            at: now,
            ok,
            round_trip,
            body,
        });
        accepted()
    } else if method == Method::POST && path == "/init/error" {
        let _ = tx.send(Seen::InitError(body));
        accepted()
    } else {
        respond(StatusCode::NOT_FOUND, &[], "{}")
    }
}

/// A DynamoDB stand-in on 127.0.0.1 for as long as `runtime` runs: `GetItem` finds the benchmark
/// user, writes succeed.
fn start_aws_stub(runtime: &Runtime) -> Result<u16, String> {
    let params = Params::new(19_456, 2, 1, None).map_err(|e| e.to_string())?;
    let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes())
        .map_err(|e| e.to_string())?
        .to_string();
    let item = json!({"Item": {
        "pk": {"S": format!("USER#{USERNAME}")},
        "user_id": {"S": USER_ID},
        "username": {"S": USERNAME},
        "password_hash": {"S": phc},
        "created_at": {"N": "1767225600"},
    }})
    .to_string();
    let item: Arc<str> = item.into();
    let key =
        SigningKey::from_pem(TEST_SIGNING_KEY).map_err(|e| format!("the benchmark's signing key: {e}"))?;
    // The key set as the key-set function stores it.
    let key_set = StoredKeySet {
        keys: vec![StoredKey::new(&key, KeyState::Current)],
    };
    let secrets: Arc<Secrets> = Arc::new(Secrets {
        key_set: serde_json::to_string(&key_set).map_err(|e| format!("the key set: {e}"))?,
        mfa_key: "a benchmark's MFA sealing key, 32 characters or more".into(),
    });
    let (_, port) = runtime
        .block_on(serve(move |request| stub(request, item.clone(), secrets.clone())))
        .map_err(|e| format!("binding the AWS stub: {e}"))?;
    Ok(port)
}

/// The two secrets' values the token function reads on first use.
struct Secrets {
    key_set: String,
    mfa_key: String,
}

/// DynamoDB and Secrets Manager on one port, told apart by `X-Amz-Target`.
async fn stub(request: Request<Incoming>, item: Arc<str>, secrets: Arc<Secrets>) -> Response<Full<Bytes>> {
    let target = request.headers().get("x-amz-target").cloned();
    let target = target.as_ref().and_then(|t| t.to_str().ok()).unwrap_or_default();
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    let input: serde_json::Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
    if target == "secretsmanager.GetSecretValue" {
        let id = input["SecretId"].as_str().unwrap_or_default();
        let value = if id == KEY_SET_SECRET {
            &secrets.key_set
        } else {
            &secrets.mfa_key
        };
        let body = json!({"ARN": id, "Name": id, "SecretString": value, "VersionId": "bench"}).to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("x-amzn-requestid", "bench".to_owned()),
        ];
        return respond(StatusCode::OK, &headers, body);
    }
    let key = input["Key"]["pk"]["S"].as_str().unwrap_or_default();
    let (status, body) = match target.rsplit('.').next() {
        // The user, by name; the token's session, live until 2100; any other key (a
        // login-failure counter) is not there.
        Some("GetItem") if key.starts_with("USER#") => (StatusCode::OK, item.to_string()),
        Some("GetItem") if key.starts_with("SESSION#") => (
            StatusCode::OK,
            json!({"Item": {"pk": {"S": key}, "expires_at": {"N": "4102444800"}}}).to_string(),
        ),
        // A login's session start is one TransactWriteItems (the session and its first token).
        Some("GetItem" | "PutItem" | "DeleteItem" | "TransactWriteItems") => (StatusCode::OK, "{}".into()),
        Some("UpdateItem") => (StatusCode::OK, r#"{"Attributes":{"attempts":{"N":"1"}}}"#.into()),
        _ => (
            StatusCode::BAD_REQUEST,
            r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#.into(),
        ),
    };
    let headers = [
        ("content-type", "application/x-amz-json-1.0".to_owned()),
        ("x-amzn-requestid", "bench".to_owned()),
    ];
    respond(status, &headers, body)
}
