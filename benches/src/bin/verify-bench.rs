//! Times `shared::TokenVerifier::verify_access`, and ring's bare P-256 verify of the same
//! signatures (the floor), the way `scripts/bench/verify_pyjwt.py` and `verify_jose.mjs` time
//! PyJWT and node's jose: the same token file, the same warm-up and count, one monotonic clock
//! around the loop, one JSON line out.
//!
//! ```text
//! verify-bench mint N                      N fresh tokens, one a line
//! verify-bench params                      {"jwks","issuer","audience"} as JSON
//! verify-bench verify FILE COUNT WARMUP    {"impl","count","seconds","ns_per_op","ops_per_sec","cpu_ns_per_op"}
//! verify-bench bare FILE COUNT WARMUP      the same, for ring's UnparsedPublicKey::verify alone
//! ```

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use benchmarks::{AUDIENCE, ISSUER, jwks_json, mint_tokens, public_key_point, signed_parts, verifier};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

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
            let jwks: serde_json::Value = serde_json::from_str(&jwks_json()).unwrap_or_default();
            let params = serde_json::json!({"jwks": jwks, "issuer": ISSUER, "audience": AUDIENCE});
            println!("{params}");
            ExitCode::SUCCESS
        }
        [mode @ ("verify" | "bare"), file, count, warmup] => match (count.parse(), warmup.parse()) {
            (Ok(count), Ok(warmup)) => measure(mode, file, count, warmup),
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
    eprintln!(
        "usage: verify-bench mint N | params | verify TOKEN_FILE COUNT WARMUP | bare TOKEN_FILE COUNT WARMUP"
    );
    ExitCode::from(2)
}

fn measure(mode: &str, file: &str, count: usize, warmup: usize) -> ExitCode {
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
    let (name, run): (&str, Box<dyn Fn(usize) -> usize>) = if mode == "verify" {
        let verifier = verifier();
        let run = move |n: usize| {
            (0..n)
                .filter(|i| {
                    verifier
                        .verify_access(black_box(tokens[i % tokens.len()]), ISSUER)
                        .is_ok()
                })
                .count()
        };
        ("rust shared::TokenVerifier (ring provider)", Box::new(run))
    } else {
        // Split and base64-decoded outside the timing: only the signature check is timed.
        let Some(parts) = tokens.iter().map(|t| signed_parts(t)).collect::<Option<Vec<_>>>() else {
            eprintln!("{file} holds a token that is not three segments");
            return ExitCode::FAILURE;
        };
        let point = public_key_point();
        let run = move |n: usize| {
            (0..n)
                .filter(|i| {
                    let (message, signature) = &parts[i % parts.len()];
                    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&point))
                        .verify(black_box(message), black_box(signature))
                        .is_ok()
                })
                .count()
        };
        ("ring 0.17 P-256 verify alone (the floor)", Box::new(run))
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
        "impl": name,
        "count": count,
        "seconds": seconds,
        "ns_per_op": seconds * 1e9 / count as f64,
        "ops_per_sec": count as f64 / seconds,
        "cpu_ns_per_op": cpu_seconds.map(|cpu| cpu * 1e9 / count as f64),
    });
    println!("{line}");
    ExitCode::SUCCESS
}
