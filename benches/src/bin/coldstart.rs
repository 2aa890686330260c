//! Cold-start benchmark: starts each release `bootstrap` binary against a minimal Lambda
//! Runtime API on 127.0.0.1 and measures, from spawn, the time to its first
//! `GET /runtime/invocation/next` (init: everything before the first poll) and to its first
//! response (init + the first invocation). Then it feeds `--warm` more invocations and times
//! each round trip over the Runtime API. Runs are interleaved (one of each binary per round, in
//! rotating order) so that machine noise hits all binaries alike; ratios are to `hello`.
//!
//! The functions that use DynamoDB get `AWS_ENDPOINT_URL_DYNAMODB` pointing at a stub on
//! 127.0.0.1 that answers `GetItem` of a `USER#` key with one user (whose password is the one
//! in `events/token/valid.json`, hashed with the OWASP parameters), any other `GetItem` with no
//! item, and writes with success, so every first invocation takes its success path (200 or
//! 201) over plain HTTP.
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
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};
use benchmarks::{BENCH_SECRET, PASSWORD, Stats, USER_ID, USERNAME, mint_tokens};
use serde_json::json;

/// How long one run may take before it is abandoned (a hung or crashed binary).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const API_PREFIX: &str = "/2018-06-01/runtime";

struct Options {
    runs: usize,
    warm: usize,
    events: PathBuf,
    logs: PathBuf,
    out: Option<PathBuf>,
    binaries: Vec<(String, PathBuf)>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        runs: 30,
        warm: 100,
        events: PathBuf::from("events"),
        logs: PathBuf::from("target/bench/logs"),
        out: None,
        binaries: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => options.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--warm" => options.warm = value("--warm")?.parse().map_err(|e| format!("--warm: {e}"))?,
            "--events" => options.events = value("--events")?.into(),
            "--logs" => options.logs = value("--logs")?.into(),
            "--out" => options.out = Some(value("--out")?.into()),
            binary => {
                let (name, path) = binary
                    .split_once('=')
                    .ok_or(format!("expected NAME=PATH, got {binary:?}"))?;
                if !["hello", "authorizer", "protected", "token", "users"].contains(&kind(name)) {
                    return Err(format!("unknown function name {name:?}"));
                }
                options.binaries.push((name.into(), path.into()));
            }
        }
    }
    if options.binaries.is_empty() || options.runs == 0 {
        return Err("give at least one NAME=PATH and --runs >= 1".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("coldstart: {e}");
            eprintln!(
                "usage: coldstart [--runs N] [--warm W] [--events DIR] [--logs DIR] [--out FILE] NAME=PATH..."
            );
            return ExitCode::from(2);
        }
    };
    match run_all(&options) {
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
    let dynamodb_port = start_dynamodb_stub()?;
    let mut samples: HashMap<&str, Vec<Sample>> = HashMap::new();
    let count = options.binaries.len();
    // Round 0 is a warm-up (page cache, CPU frequency) and is not recorded.
    for round in 0..=options.runs {
        for k in 0..count {
            let (name, path) = &options.binaries[(round + k) % count];
            let warm = if ["token", "users"].contains(&kind(name)) {
                0
            } else {
                options.warm
            };
            let sample = run_once(name, path, options, dynamodb_port, warm)
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
        "hello" => return Ok(r#"{"name":"bench"}"#.into()),
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

/// The environment Lambda gives a function, plus what ours need. Nothing else is inherited.
fn lambda_env(name: &str, runtime_port: u16, dynamodb_port: u16) -> Vec<(&'static str, String)> {
    let name = kind(name);
    vec![
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
        ("JWT_SECRET", BENCH_SECRET.into()),
        ("USERS_TABLE", "bench-users".into()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            format!("http://127.0.0.1:{dynamodb_port}"),
        ),
        ("DYNAMODB_CONNECT_TIMEOUT_MS", "200".into()),
        ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "500".into()),
        ("DYNAMODB_OPERATION_TIMEOUT_MS", "1000".into()),
    ]
}

/// What the Runtime API saw, sent from its connection threads to the run's driver.
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
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding the Runtime API: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (stop, invocations) = (stop.clone(), invocations.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (tx, invocations) = (tx.clone(), invocations.clone());
                thread::spawn(move || serve_runtime_api(stream, &invocations, &tx));
            }
        })
    };

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
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(("127.0.0.1", port));
    let _ = acceptor.join();
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

fn serve_runtime_api(stream: TcpStream, invocations: &Mutex<Invocations>, tx: &mpsc::Sender<Seen>) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader) {
        let now = Instant::now();
        let path = request.path.strip_prefix(API_PREFIX).unwrap_or("");
        let lock = || invocations.lock().expect("no thread panics holding the lock");
        if request.method == "GET" && path == "/invocation/next" {
            let _ = tx.send(Seen::Next(now));
            let Some((id, event)) = lock().pending.pop_front() else {
                // Nothing more to invoke: leave the poll open, as Lambda does between events.
                continue;
            };
            let deadline_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() + 30_000);
            let headers = format!(
                "lambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline_ms}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 content-type: application/json\r\n"
            );
            // Stamped before the write: stamped after, a preempted thread could stamp it after
            // the function had already answered.
            lock().sent_at.insert(id, Instant::now());
            if write_response(&mut writer, "200 OK", &headers, event.as_bytes()).is_err() {
                return;
            }
        } else if request.method == "POST" && path.starts_with("/invocation/") {
            let (ok, id) = match path.strip_prefix("/invocation/") {
                Some(rest) if rest.ends_with("/response") => (true, rest.trim_end_matches("/response")),
                Some(rest) => (false, rest.trim_end_matches("/error")),
                None => (false, ""),
            };
            let round_trip = lock().sent_at.get(id).map(|sent| now - *sent);
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let _ = tx.send(Seen::Done {
                at: now,
                ok,
                round_trip,
                body,
            });
            let _ = write_response(&mut writer, "202 Accepted", "", br#"{"status":"OK"}"#);
        } else if request.method == "POST" && path == "/init/error" {
            let _ = tx.send(Seen::InitError(
                String::from_utf8_lossy(&request.body).into_owned(),
            ));
            let _ = write_response(&mut writer, "202 Accepted", "", br#"{"status":"OK"}"#);
        } else {
            let _ = write_response(&mut writer, "404 Not Found", "", b"{}");
        }
    }
}

/// A DynamoDB stand-in on 127.0.0.1: `GetItem` finds the benchmark user, writes succeed.
fn start_dynamodb_stub() -> Result<u16, String> {
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
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding the DynamoDB stub: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let item: Arc<str> = item.into();
    // Lives as long as the driver: it ends when the driver exits.
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let item = item.clone();
            thread::spawn(move || serve_dynamodb(stream, &item));
        }
    });
    Ok(port)
}

fn serve_dynamodb(stream: TcpStream, item: &str) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader) {
        let target = request.header("x-amz-target").unwrap_or_default();
        let input: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let is_user = input["Key"]["pk"]["S"]
            .as_str()
            .is_some_and(|pk| pk.starts_with("USER#"));
        let (status, body) = match target.rsplit('.').next() {
            // The user, by name; any other key (a login-failure counter) is not there.
            Some("GetItem") if is_user => ("200 OK", item),
            Some("GetItem" | "PutItem" | "DeleteItem") => ("200 OK", "{}"),
            Some("UpdateItem") => ("200 OK", r#"{"Attributes":{"failures":{"N":"1"}}}"#),
            _ => (
                "400 Bad Request",
                r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#,
            ),
        };
        let headers = "content-type: application/x-amz-json-1.0\r\nx-amzn-requestid: bench\r\n";
        if write_response(&mut writer, status, headers, body.as_bytes()).is_err() {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// Reads one HTTP/1.1 request (content-length or chunked body); `None` at end of stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad request line"));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
    }
    Ok(Some(request))
}

fn write_response(writer: &mut TcpStream, status: &str, headers: &str, body: &[u8]) -> io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    writer.write_all(&response)?;
    writer.flush()
}
