//! `local-api`: serves a SAM template's REST API on 127.0.0.1 in front of `cargo lambda watch`.
//! Run `local-api --help` for the flags.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use local_api::{Gateway, LambdaClient, Options, serve, spec};

const USAGE: &str = "\
local-api: a SAM template's REST API on 127.0.0.1, Lambda TOKEN authorizer in front,
invoking the functions through the Lambda Invoke API of `cargo lambda watch`.

Usage: local-api [flags]
  --template PATH          the SAM template (default: template.yaml)
  --host ADDR              address to listen on (default: 127.0.0.1)
  --port N                 port to listen on (default: 3000)
  --lambda-endpoint URL    the Lambda Invoke API (default: http://127.0.0.1:9000)
  --parameter NAME=VALUE   a template parameter, over its Default (repeatable)
  --function ID=BINARY     a function resource's cargo-lambda binary, over its
                           Metadata.BuildProperties.Binary (repeatable)
  --api ID                 which AWS::Serverless::Api, if the template has several
  --api-id ID              the API id in ARNs and events (default: localapi01)
  --region NAME            (default: us-east-1)
  --account-id N           (default: 123456789012)
  --timeout-seconds N      per invocation (default: 29, API Gateway's limit)
";

struct Args {
    template: String,
    listen: SocketAddr,
    lambda_endpoint: String,
    timeout: Duration,
    options: Options,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut template = "template.yaml".to_owned();
    let mut host = "127.0.0.1".to_owned();
    let mut port: u16 = 3000;
    let mut lambda_endpoint = "http://127.0.0.1:9000".to_owned();
    let mut timeout = 29;
    let mut options = Options::default();
    let pair = |value: String, flag: &str| -> Result<(String, String), String> {
        value
            .split_once('=')
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .ok_or(format!("{flag} takes NAME=VALUE, got {value:?}"))
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--template" => template = value,
            "--host" => host = value,
            "--port" => port = value.parse().map_err(|_| format!("--port {value}: not a port"))?,
            "--lambda-endpoint" => lambda_endpoint = value,
            "--parameter" => {
                let (name, value) = pair(value, "--parameter")?;
                options.parameters.insert(name, value);
            }
            "--function" => {
                let (name, binary) = pair(value, "--function")?;
                options.functions.insert(name, binary);
            }
            "--api" => options.api = Some(value),
            "--api-id" => options.api_id = value,
            "--region" => options.deployment.region = value,
            "--account-id" => options.deployment.account_id = value,
            "--timeout-seconds" => {
                timeout = value
                    .parse()
                    .map_err(|_| format!("--timeout-seconds {value}: not a number"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let listen = format!("{host}:{port}")
        .parse()
        .map_err(|_| format!("--host {host}: not an IP address"))?;
    Ok(Some(Args {
        template,
        listen,
        lambda_endpoint,
        timeout: Duration::from_secs(timeout),
        options,
    }))
}

fn describe(api: &local_api::ApiSpec) -> String {
    let mut lines = vec![format!(
        "API {} (stage {}), {} route(s):",
        api.logical_id,
        api.stage,
        api.routes.len()
    )];
    for route in &api.routes {
        let auth = match &route.authorizer {
            Some(name) => match api.authorizers.get(name) {
                Some(a) => format!(
                    "authorizer {name} ({}, header {}, cache {}s)",
                    a.function,
                    a.header,
                    a.ttl.as_secs()
                ),
                None => format!("authorizer {name}"),
            },
            None => "open".to_owned(),
        };
        lines.push(format!(
            "  {:7} {:24} -> {:12} {auth}",
            route.method, route.resource, route.function
        ));
    }
    if let Some(cors) = &api.cors {
        lines.push(format!(
            "  OPTIONS preflights from Cors (origin {})",
            cors.allow_origin
        ));
    }
    lines.join("\n")
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("local-api: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("local-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let text =
        std::fs::read_to_string(&args.template).map_err(|e| format!("reading {}: {e}", args.template))?;
    let api = spec::load(&text, &args.options).map_err(|e| format!("{}: {e}", args.template))?;
    let lambda = LambdaClient::new(&args.lambda_endpoint, args.timeout).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.listen))?;
    eprintln!("{}", describe(&api));
    eprintln!(
        "local-api listening on http://{} (functions at {})",
        args.listen, args.lambda_endpoint
    );
    serve(listener, Arc::new(Gateway::new(api, lambda)), shutdown()).await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_override_the_defaults() {
        let parsed = args(&[
            "--port",
            "3100",
            "--parameter",
            "A=b=c",
            "--function",
            "Fn=bin",
            "--lambda-endpoint",
            "http://x",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:3100".parse().unwrap());
        assert_eq!(
            parsed.options.parameters,
            HashMap::from([("A".to_owned(), "b=c".to_owned())])
        );
        assert_eq!(parsed.options.functions["Fn"], "bin");
        assert_eq!(parsed.lambda_endpoint, "http://x");
        assert_eq!(parsed.template, "template.yaml");
    }

    #[test]
    fn bad_flags_are_reported() {
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--port", "x"]).is_err());
        assert!(args(&["--nope", "1"]).is_err());
        assert!(args(&["--parameter", "novalue"]).is_err());
        assert!(args(&["--help"]).unwrap().is_none());
    }
}
