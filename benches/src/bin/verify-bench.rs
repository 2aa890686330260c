//! Times `shared::TokenVerifier::verify_access` the way `scripts/bench/verify_pyjwt.py` and
//! `scripts/bench/verify_node.js` time PyJWT and node's jsonwebtoken: the same token file,
//! the same warm-up and count, one monotonic clock around the loop, one JSON line out.
//!
//! ```text
//! verify-bench mint N                      N fresh tokens, one a line
//! verify-bench params                      {"secret","issuer","audience"} as JSON
//! verify-bench verify FILE COUNT WARMUP    {"impl","count","seconds","ns_per_op","ops_per_sec","cpu_ns_per_op"}
//! ```

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use benchmarks::{AUDIENCE, BENCH_SECRET, ISSUER, mint_tokens, token_config};
use shared::TokenVerifier;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        ["mint", n] => match n.parse() {
            Ok(n) => {
                for token in mint_tokens(n) {
                    println!("{token}");
                }
                ExitCode::SUCCESS
            }
            Err(_) => usage(),
        },
        ["params"] => {
            let params = serde_json::json!({"secret": BENCH_SECRET, "issuer": ISSUER, "audience": AUDIENCE});
            println!("{params}");
            ExitCode::SUCCESS
        }
        ["verify", file, count, warmup] => match (count.parse(), warmup.parse()) {
            (Ok(count), Ok(warmup)) => verify(file, count, warmup),
            _ => usage(),
        },
        _ => usage(),
    }
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`): unlike wall time, it
/// does not grow while other processes have the core, which on a shared 2-core machine matters.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn usage() -> ExitCode {
    eprintln!("usage: verify-bench mint N | params | verify TOKEN_FILE COUNT WARMUP");
    ExitCode::from(2)
}

fn verify(file: &str, count: usize, warmup: usize) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("reading {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tokens: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if tokens.is_empty() {
        eprintln!("{file} holds no tokens");
        return ExitCode::FAILURE;
    }
    let verifier = TokenVerifier::new(&token_config()).expect("the benchmark key is valid");
    let run = |n: usize| {
        let mut ok = 0usize;
        for i in 0..n {
            if verifier
                .verify_access(black_box(tokens[i % tokens.len()]))
                .is_ok()
            {
                ok += 1;
            }
        }
        ok
    };
    run(warmup);
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let ok = run(count);
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_ns()
        .zip(cpu_start)
        .map(|(end, start)| (end - start) as f64 / 1e9);
    if ok != count {
        eprintln!("{} of {count} tokens failed to verify", count - ok);
        return ExitCode::FAILURE;
    }
    let line = serde_json::json!({
        "impl": "rust shared::TokenVerifier",
        "count": count,
        "seconds": seconds,
        "ns_per_op": seconds * 1e9 / count as f64,
        "ops_per_sec": count as f64 / seconds,
        "cpu_ns_per_op": cpu_seconds.map(|cpu| cpu * 1e9 / count as f64),
    });
    println!("{line}");
    ExitCode::SUCCESS
}
