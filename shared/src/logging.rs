//! The functions' log subscriber: `tracing` events on stdout, JSON when Lambda's log format is
//! JSON, at the level of `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else `INFO`), as
//! lambda_runtime's default subscriber does, with two differences. The setting is a level
//! (`error` ... `trace`, or `off`), not `tracing-subscriber`'s per-crate directives: the
//! directive parser (`EnvFilter`, with a regex engine) is a tenth of the authorizer's binary
//! (BENCHMARKS.md), and Lambda's own setting is a level. And other crates never log at
//! `TRACE`, whatever the level. At `TRACE` lambda_runtime logs every raw event (request bodies
//! with passwords, `Authorization` headers) and the AWS SDK whole requests and responses
//! (signed headers, stored password hashes); a log level set for debugging must not put them
//! in CloudWatch.

use std::str::FromStr;

use tracing::Level;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;

/// The crates of this workspace, which may log at any level: they never log a secret.
const OUR_CRATES: [&str; 5] = ["shared", "authorizer", "protected", "token", "users"];

/// Whether an event from `target` at `level` may be written at all.
pub fn allowed(target: &str, level: &Level) -> bool {
    *level <= Level::DEBUG || OUR_CRATES.iter().any(|ours| crate_of(target) == *ours)
}

fn crate_of(target: &str) -> &str {
    target.split("::").next().unwrap_or(target)
}

/// The level `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`) names; `INFO` when neither is set or
/// the value is not a level.
pub fn level(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    aws_lambda_log_level
        .or(rust_log)
        .and_then(|l| LevelFilter::from_str(l.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    let aws = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let rust = std::env::var("RUST_LOG").ok();
    let filter = level(aws.as_deref(), rust.as_deref());
    let cap = filter_fn(|metadata| allowed(metadata.target(), metadata.level()));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_target(false).without_time();
    let registry = tracing_subscriber::registry().with(filter).with(cap);
    if json {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_crates_are_capped_at_debug() {
        assert!(!allowed("lambda_runtime::layers::api_response", &Level::TRACE));
        assert!(!allowed(
            "aws_smithy_runtime::client::orchestrator",
            &Level::TRACE
        ));
        assert!(!allowed("hyper", &Level::TRACE));
        assert!(allowed("lambda_runtime::layers::api_response", &Level::DEBUG));
        assert!(allowed("hyper", &Level::INFO));
    }

    #[test]
    fn our_crates_log_at_every_level() {
        for target in [
            "shared::store::dynamodb",
            "token",
            "authorizer",
            "users",
            "protected",
        ] {
            assert!(allowed(target, &Level::TRACE), "{target}");
        }
        assert!(!allowed("shared_other_crate", &Level::TRACE));
    }

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        assert_eq!(level(Some("debug"), Some("error")), LevelFilter::DEBUG);
        assert_eq!(level(Some("TRACE"), None), LevelFilter::TRACE);
        assert_eq!(level(None, Some("warn")), LevelFilter::WARN);
        assert_eq!(level(None, Some("off")), LevelFilter::OFF);
        assert_eq!(level(None, None), LevelFilter::INFO);
        assert_eq!(
            level(None, Some("shared=debug")),
            LevelFilter::INFO,
            "not a level"
        );
    }
}
