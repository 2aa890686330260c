//! `local-api`: serves a SAM template's REST API on 127.0.0.1 in front of `cargo lambda watch`.
//! Run `local-api --help` for the flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use local_api::{ApiSpec, Gateway, LambdaClient, Options, serve, spec};
use tracing_subscriber::EnvFilter;

/// A SAM template's REST API on 127.0.0.1, Lambda TOKEN authorizer in front, invoking the
/// functions through the Lambda Invoke API of `cargo lambda watch`.
#[derive(Debug, Parser)]
#[command(name = "local-api")]
struct Args {
    /// The SAM template.
    #[arg(long, value_name = "PATH", default_value = "template.yaml")]
    template: PathBuf,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The port to listen on.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    port: u16,
    /// The Lambda Invoke API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9000")]
    lambda_endpoint: String,
    /// Read the Lambda endpoint from this file (its only line) instead, at start and again on
    /// SIGHUP, and write the one in use to `<PATH>.loaded`: how `./dev rotate` moves the API to
    /// functions started with new keys, as a deployment moves a stage to new function versions.
    /// Invocations in flight finish where they started.
    #[arg(long, value_name = "PATH")]
    lambda_endpoint_file: Option<PathBuf>,
    /// A template parameter, over its Default (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = pair)]
    parameters: Vec<(String, String)>,
    /// A function resource's cargo-lambda binary, over its Metadata.BuildProperties.Binary
    /// (repeatable).
    #[arg(long = "function", value_name = "ID=BINARY", value_parser = pair)]
    functions: Vec<(String, String)>,
    /// Which AWS::Serverless::Api, if the template has several.
    #[arg(long, value_name = "ID")]
    api: Option<String>,
    /// The API id in ARNs and events.
    #[arg(long, value_name = "ID", default_value = "localapi01")]
    api_id: String,
    /// The region in ARNs, events and `AWS::Region`.
    #[arg(long, value_name = "NAME", default_value = "us-east-1")]
    region: String,
    /// The account in ARNs, events and `AWS::AccountId`.
    #[arg(long, value_name = "N", default_value = "123456789012")]
    account_id: String,
    /// The integration timeout per invocation (API Gateway's limit is 29).
    #[arg(long, value_name = "N", default_value_t = 29)]
    timeout_seconds: u64,
}

fn pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

impl Args {
    fn options(&self) -> Options {
        Options {
            api: self.api.clone(),
            parameters: self.parameters.iter().cloned().collect(),
            functions: self.functions.iter().cloned().collect(),
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            api_id: self.api_id.clone(),
        }
    }
}

/// The routes served, one line each, for the start-up log.
fn describe(api: &ApiSpec) -> String {
    let (id, stage, count) = (&api.logical_id, &api.stage, api.routes.len());
    let mut lines = vec![format!("API {id} (stage {stage}), {count} route(s):")];
    for route in &api.routes {
        let (method, resource, function) = (&route.method, &route.resource, &route.function);
        let auth = route
            .authorizer
            .as_ref()
            .map_or("open".into(), |a| format!("authorizer {a}"));
        lines.push(format!("  {method:7} {resource:24} -> {function:12} {auth}"));
    }
    lines.join("\n")
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("local-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let template = args.template.display();
    let text = std::fs::read_to_string(&args.template).map_err(|e| format!("reading {template}: {e}"))?;
    let api = spec::load(&text, &args.options()).map_err(|e| format!("{template}: {e}"))?;
    let timeout = Duration::from_secs(args.timeout_seconds);
    let endpoint = match &args.lambda_endpoint_file {
        Some(path) => read_endpoint(path)?,
        None => args.lambda_endpoint.clone(),
    };
    let lambda = LambdaClient::new(&endpoint, timeout).map_err(|e| e.to_string())?;
    if let Some(path) = args.lambda_endpoint_file.clone() {
        acknowledge(&path, &endpoint);
        tokio::spawn(reload_endpoint_on_hangup(path, lambda.clone()));
    }
    let listen = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    eprintln!("{}", describe(&api));
    eprintln!(
        "local-api listening on http://{listen} (functions at {})",
        lambda.endpoint()
    );
    serve(listener, Arc::new(Gateway::new(api, lambda)), shutdown()).await;
    Ok(())
}

fn read_endpoint(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let endpoint = text.trim();
    if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
        return Err(format!("{}: {endpoint:?} is not an http(s) URL", path.display()));
    }
    Ok(endpoint.to_owned())
}

/// Writes the endpoint in use to `<path>.loaded`, so whoever sent the SIGHUP can wait for it.
fn acknowledge(path: &std::path::Path, endpoint: &str) {
    let mut loaded = path.as_os_str().to_owned();
    loaded.push(".loaded");
    if let Err(error) = std::fs::write(&loaded, format!("{endpoint}\n")) {
        tracing::error!(%error, "writing {}", std::path::Path::new(&loaded).display());
    }
}

/// On every SIGHUP, moves `lambda` to the endpoint `path` names (a bad file keeps the old one)
/// and writes it to `<path>.loaded`.
async fn reload_endpoint_on_hangup(path: PathBuf, lambda: LambdaClient) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP: the Lambda endpoint will not be reloaded");
        return;
    };
    while hangup.recv().await.is_some() {
        match read_endpoint(&path) {
            Ok(endpoint) => {
                lambda.set_endpoint(&endpoint);
                tracing::info!(%endpoint, "SIGHUP: the functions are now at the new endpoint");
                acknowledge(&path, &endpoint);
            }
            Err(error) => tracing::error!(%error, "SIGHUP: keeping the Lambda endpoint"),
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        },
        Err(_) => drop(tokio::signal::ctrl_c().await),
    }
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("local-api").chain(list.iter().copied()))
    }

    #[test]
    fn the_flags_are_well_formed() {
        Args::command().debug_assert();
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
            "--region",
            "eu-west-1",
        ])
        .unwrap();
        assert_eq!(
            SocketAddr::new(parsed.host, parsed.port),
            "127.0.0.1:3100".parse().unwrap()
        );
        let options = parsed.options();
        assert_eq!(
            options.parameters,
            HashMap::from([("A".to_owned(), "b=c".to_owned())])
        );
        assert_eq!(options.functions["Fn"], "bin");
        assert_eq!(options.region, "eu-west-1");
        assert_eq!(options.account_id, "123456789012");
        assert_eq!(options.api_id, "localapi01");
        assert_eq!(parsed.lambda_endpoint, "http://x");
        assert_eq!(parsed.template, PathBuf::from("template.yaml"));
        assert_eq!(parsed.timeout_seconds, 29);
    }

    #[test]
    fn bad_flags_are_reported() {
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--port", "x"]).is_err());
        assert!(args(&["--nope", "1"]).is_err());
        assert!(args(&["--parameter", "novalue"]).is_err());
        assert!(args(&["--host", "localhost"]).is_err());
        assert_eq!(args(&["--help"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
    }
}
