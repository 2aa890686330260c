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

/// This crate, which may log at any level, as the function's own crate may: neither logs a
/// secret.
const SHARED: &str = env!("CARGO_CRATE_NAME");

/// Whether an event from `target` at `level` may be written at all, in the function whose crate
/// is `own_crate`.
pub fn allowed(target: &str, level: &Level, own_crate: &str) -> bool {
    *level <= Level::DEBUG || [SHARED, own_crate].contains(&crate_of(target))
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

/// Installs the subscriber for the function whose crate is `own_crate`; call once, first thing
/// in `main`, as `init(env!("CARGO_CRATE_NAME"))`.
pub fn init(own_crate: &'static str) {
    let aws = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let rust = std::env::var("RUST_LOG").ok();
    let filter = level(aws.as_deref(), rust.as_deref());
    let cap = filter_fn(move |metadata| allowed(metadata.target(), metadata.level(), own_crate));
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
        let allowed = |target, level| allowed(target, level, "jwks");
        assert!(!allowed("lambda_runtime::layers::api_response", &Level::TRACE));
        assert!(!allowed(
            "aws_smithy_runtime::client::orchestrator",
            &Level::TRACE
        ));
        assert!(!allowed("hyper", &Level::TRACE));
        assert!(!allowed("token", &Level::TRACE), "another function's crate");
        assert!(allowed("lambda_runtime::layers::api_response", &Level::DEBUG));
        assert!(allowed("hyper", &Level::INFO));
    }

    #[test]
    fn our_crates_log_at_every_level() {
        for function in ["token", "authorizer", "users", "protected", "jwks", "keyset"] {
            assert!(allowed(function, &Level::TRACE, function), "{function}");
            assert!(
                allowed(&format!("{function}::module"), &Level::TRACE, function),
                "{function}"
            );
            assert!(allowed("shared::store::dynamodb", &Level::TRACE, function));
        }
        assert!(!allowed("shared_other_crate", &Level::TRACE, "token"));
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
