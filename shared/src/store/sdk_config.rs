//! The AWS SDK configuration every client here is built from, read once at cold start.
//!
//! On Lambda the environment holds all of it: the region, the function's session credentials
//! and, locally, an endpoint override. `aws-config`'s loader finds the same values but, before
//! it does, builds its whole default credential chain (the profile, web identity, container and
//! IMDS providers, each with its clients) and looks for the shared config files: about half of
//! the SDK functions' cold start over a hello-world Lambda (BENCHMARKS.md). So when the process
//! runs on Lambda and its environment sets nothing but what Lambda sets, [`sdk_config_from_env`]
//! builds the configuration directly, with the values the loader would have found; in every other
//! case (any other `AWS_*` setting, a shared config or credentials file, no credentials in the
//! environment, not on Lambda) it runs the loader. Either way the HTTPS client is
//! [`tls::http_client`]. `tests::both_paths_configure_the_client_alike` checks the two against
//! each other.

use std::path::Path;

use aws_config::SdkConfig;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::sdk_config::{
    RequestChecksumCalculation, ResponseChecksumValidation, SharedCredentialsProvider, SharedTimeSource,
};
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use super::tls::{self, ProxyConfig, TrustedRoots};
use crate::config::Env;

/// The `AWS_*` variables Lambda sets, or that this module reads the same way the loader does.
/// Any other `AWS_*` variable may change what the loader builds (`AWS_PROFILE`,
/// `AWS_MAX_ATTEMPTS`, `AWS_USE_FIPS_ENDPOINT`, `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`, ...), so
/// its presence sends the configuration through the loader.
const LAMBDA_VARIABLES: [&str; 6] = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_EXECUTION_ENV",
];

/// Prefixes of the other variables Lambda sets (`AWS_LAMBDA_FUNCTION_NAME`, the X-Ray daemon's
/// address), which the loader does not read, and of the endpoint overrides, which
/// [`EnvServiceConfig`] reads as the loader does.
const LAMBDA_PREFIXES: [&str; 3] = ["AWS_LAMBDA_", "AWS_XRAY_", "AWS_ENDPOINT_URL"];

/// The connect timeout the loader adds (aws-config's `SDK_DEFAULT_CONNECT_TIMEOUT`); clients
/// here set their own timeouts over it.
const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(3100);

/// The SDK configuration from the environment, with [`tls::http_client`] for every SDK call:
/// built directly on Lambda, by `aws-config`'s loader elsewhere (see the module's comment).
pub async fn sdk_config_from_env() -> SdkConfig {
    let http_client = tls::http_client(TrustedRoots::from_source(&Env), ProxyConfig::from_env());
    match lambda_environment() {
        Some(lambda) => {
            tracing::debug!("AWS SDK configuration read from Lambda's environment");
            lambda.sdk_config(http_client)
        }
        None => {
            tracing::debug!("AWS SDK configuration loaded by aws-config");
            loader(http_client).await
        }
    }
}

/// What `aws-config`'s default loader makes of the environment.
pub(crate) async fn loader(http_client: SharedHttpClient) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// The process environment's [`LambdaEnvironment`], if it is one.
pub(crate) fn lambda_environment() -> Option<LambdaEnvironment> {
    let mut aws = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("AWS_") {
            // The loader reads variables as UTF-8; leave anything else to it.
            aws.push((name.to_owned(), value.into_string().ok()?));
        }
    }
    let home = std::env::var_os("HOME");
    let profile_files = home.is_some_and(|home| {
        let dir = Path::new(&home).join(".aws");
        // Anything but "not found" (a file, or a directory that cannot be read) counts as there.
        let present = |name| !matches!(dir.join(name).try_exists(), Ok(false));
        present("config") || present("credentials")
    });
    LambdaEnvironment::from_vars(&aws, profile_files)
}

/// A Lambda function's environment, and nothing the loader would read differently.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LambdaEnvironment {
    region: String,
    /// `AWS_ENDPOINT_URL`, the override for every service (each service's own is read by
    /// [`EnvServiceConfig`]).
    endpoint_url: Option<String>,
}

impl LambdaEnvironment {
    /// `vars` are the process's `AWS_*` variables. `Some` only when `AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set (not blank), every
    /// other `AWS_*` variable is one Lambda sets or an endpoint override, and there is no shared
    /// config or credentials file.
    pub(crate) fn from_vars(vars: &[(String, String)], profile_files: bool) -> Option<Self> {
        let get = |want: &str| {
            vars.iter()
                .find(|(name, _)| name == want)
                .map(|(_, value)| value.as_str())
        };
        let set = |want: &str| get(want).is_some_and(|v| !v.trim().is_empty());
        let known = |name: &str| {
            LAMBDA_VARIABLES.contains(&name) || LAMBDA_PREFIXES.iter().any(|p| name.starts_with(p))
        };
        let lambda = set("AWS_LAMBDA_FUNCTION_NAME")
            && set("AWS_REGION")
            && set("AWS_ACCESS_KEY_ID")
            && set("AWS_SECRET_ACCESS_KEY")
            && vars.iter().all(|(name, _)| known(name))
            && !profile_files;
        lambda.then(|| Self {
            region: get("AWS_REGION").unwrap_or_default().to_owned(),
            endpoint_url: get("AWS_ENDPOINT_URL").map(str::to_owned),
        })
    }

    /// What the loader builds for this environment: the region, the environment's credentials
    /// behind a lazy identity cache, the standard retries, the 3.1 s connect timeout, checksums
    /// when supported, the endpoint overrides, Tokio's sleep and the system clock.
    pub(crate) fn sdk_config(self, http_client: SharedHttpClient) -> SdkConfig {
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region))
            .credentials_provider(SharedCredentialsProvider::new(
                EnvironmentVariableCredentialsProvider::new(),
            ))
            .identity_cache(IdentityCache::lazy().build())
            .retry_config(RetryConfig::standard())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
                    .build(),
            )
            .time_source(SharedTimeSource::default())
            // The loader's defaults (aws-config's `checksums` providers, nothing set).
            .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
            .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
            .service_config(EnvServiceConfig)
            .http_client(http_client);
        builder.set_sleep_impl(default_async_sleep());
        builder.set_endpoint_url(self.endpoint_url);
        builder.build()
    }
}

/// Service-specific settings from the environment, as the loader reads them when there is no
/// shared config file: `AWS_ENDPOINT_URL_DYNAMODB` (the service id in upper case, spaces as
/// `_`), else the global `AWS_ENDPOINT_URL`.
#[derive(Debug)]
struct EnvServiceConfig;

impl LoadServiceConfig for EnvServiceConfig {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        std::env::var(format!("{}_{service}", key.env()))
            .or_else(|_| std::env::var(key.env()))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Lambda sets in a function's environment (provided.al2023), values made up.
    const LAMBDA: [(&str, &str); 16] = [
        ("AWS_LAMBDA_FUNCTION_NAME", "auth-token"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/auth-token"),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/12/01/[$LATEST]0123456789abcdef",
        ),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEEXAMPLE12"),
        ("AWS_SECRET_ACCESS_KEY", "c2VjcmV0LWFjY2Vzcy1rZXktZXhhbXBsZQ"),
        ("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLE"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
    ];

    fn lambda_with(
        extra: &[(&str, &str)],
        without: &[&str],
        profile_files: bool,
    ) -> Option<LambdaEnvironment> {
        let vars: Vec<(String, String)> = LAMBDA
            .iter()
            .chain(extra)
            .filter(|(name, _)| !without.contains(name))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        LambdaEnvironment::from_vars(&vars, profile_files)
    }

    #[test]
    fn a_lambda_environment_is_read_directly() {
        assert_eq!(
            lambda_with(&[], &[], false),
            Some(LambdaEnvironment {
                region: "eu-west-1".into(),
                endpoint_url: None
            })
        );
        assert_eq!(
            lambda_with(
                &[
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:8000"),
                    ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8001"),
                ],
                &[
                    "AWS_SESSION_TOKEN",
                    "AWS_DEFAULT_REGION",
                    "AWS_XRAY_DAEMON_ADDRESS"
                ],
                false
            ),
            Some(LambdaEnvironment {
                region: "eu-west-1".into(),
                endpoint_url: Some("http://127.0.0.1:8000".into())
            })
        );
    }

    #[test]
    fn anything_the_loader_would_read_differently_goes_through_the_loader() {
        for extra in [
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_MAX_ATTEMPTS",
            "AWS_RETRY_MODE",
            "AWS_USE_FIPS_ENDPOINT",
            "AWS_USE_DUALSTACK_ENDPOINT",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "AWS_ACCOUNT_ID",
            "AWS_SDK_UA_APP_ID",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_EC2_METADATA_DISABLED",
        ] {
            assert_eq!(lambda_with(&[(extra, "x")], &[], false), None, "{extra}");
        }
        for missing in [
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert_eq!(lambda_with(&[], &[missing], false), None, "{missing}");
        }
        assert_eq!(
            lambda_with(&[("AWS_ACCESS_KEY_ID", " ")], &["AWS_ACCESS_KEY_ID"], false),
            None
        );
        assert_eq!(lambda_with(&[], &[], true), None, "a shared config file");
    }

    /// Both ways of building the configuration are run in a child process (this test binary
    /// again, running only [`probe`]) with a controlled environment, since a test cannot set
    /// its own process's environment without `unsafe`. The child checks that the direct path was
    /// taken or not, as the scenario expects, and that the two configurations hold the same
    /// settings; both clients then send a `DescribeTable` to a listener here (the endpoint, or a
    /// proxy), which compares the two requests: method, path, signed headers, credential scope,
    /// session token, retry header (`max=`), user agent and body.
    #[cfg(feature = "dynamodb")]
    #[test]
    fn both_paths_configure_the_client_alike() {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::TcpListener;

        fn requests(listener: TcpListener, count: usize) -> std::thread::JoinHandle<Vec<String>> {
            std::thread::spawn(move || {
                (0..count)
                    .map(|_| {
                        let (stream, _) = listener.accept().unwrap();
                        let mut reader = BufReader::new(&stream);
                        let mut head = Vec::new();
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                                break;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                            head.push(normalise(line.trim_end()));
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let answer: &[u8] = if head[0].starts_with("CONNECT ") {
                            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        } else {
                            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
                              content-length: 80\r\nconnection: close\r\n\r\n\
                              {\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\",\"message\":\"\"}"
                        };
                        (&stream).write_all(answer).unwrap();
                        head.sort();
                        head.push(String::from_utf8(body).unwrap());
                        head.join("\n")
                    })
                    .collect()
            })
        }

        /// Drops what differs between any two requests: the signature, the time, the id.
        fn normalise(line: &str) -> String {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("x-amz-date:") || lower.starts_with("amz-sdk-invocation-id:") {
                return String::new();
            }
            match line.find("Signature=") {
                Some(at) => line[..at].to_owned(),
                None => line.to_owned(),
            }
        }

        let home = std::env::temp_dir().join(format!("sdk-config-probe-{}", std::process::id()));
        let home_with_config = home.join("with-config");
        std::fs::create_dir_all(home_with_config.join(".aws")).unwrap();
        std::fs::write(home_with_config.join(".aws/config"), "[default]\n").unwrap();
        let lambda: Vec<(&str, &str)> = LAMBDA.to_vec();

        /// What the child must find, the variables on top of [`LAMBDA`] (empty: removed),
        /// the variable that points at the listener (as the endpoint, or as a proxy) and HOME.
        struct Scenario<'a> {
            expect: &'a str,
            extra: &'a [(&'a str, &'a str)],
            listener_var: &'a str,
            home: &'a Path,
        }
        let scenario = |expect, extra, listener_var, home| Scenario {
            expect,
            extra,
            listener_var,
            home,
        };
        let scenarios = [
            scenario("direct", &[], "AWS_ENDPOINT_URL_DYNAMODB", &home),
            scenario("direct", &[("AWS_SESSION_TOKEN", "")], "AWS_ENDPOINT_URL", &home),
            scenario("direct", &[], "HTTPS_PROXY", &home),
            scenario(
                "loader",
                &[("AWS_MAX_ATTEMPTS", "5")],
                "AWS_ENDPOINT_URL_DYNAMODB",
                &home,
            ),
            scenario("loader", &[], "AWS_ENDPOINT_URL_DYNAMODB", &home_with_config),
            scenario(
                "loader",
                &[("AWS_LAMBDA_FUNCTION_NAME", "")],
                "AWS_ENDPOINT_URL",
                &home,
            ),
        ];
        for Scenario {
            expect,
            extra,
            listener_var,
            home,
        } in scenarios
        {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let count = if expect == "direct" { 2 } else { 0 };
            let seen = requests(listener, count);
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child
                .args(["--exact", "store::sdk_config::tests::probe", "--include-ignored"])
                .args(["--nocapture", "--test-threads", "1"])
                .env_clear()
                .env("HOME", home)
                .env("SDK_CONFIG_PROBE", expect)
                .env(listener_var, format!("http://{address}"));
            for (name, value) in lambda.iter().chain(extra.iter()) {
                if value.is_empty() {
                    child.env_remove(name);
                } else {
                    child.env(name, value);
                }
            }
            let output = child.output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains("1 passed"),
                "{expect} {extra:?} {listener_var}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            // Had a client sent its request elsewhere, the listener would still be waiting: wake
            // it with empty connections, which fail the reading instead of hanging the test.
            if !seen.is_finished() {
                for _ in 0..count {
                    let _ = std::net::TcpStream::connect(address);
                }
            }
            let seen = seen.join().expect("both clients' requests reached the listener");
            if expect == "direct" {
                assert_eq!(seen[0], seen[1], "{extra:?} {listener_var}");
                let expected_start = if listener_var == "HTTPS_PROXY" {
                    "CONNECT dynamodb.eu-west-1.amazonaws.com:443 HTTP/1.1"
                } else {
                    "POST / HTTP/1.1"
                };
                assert!(seen[0].contains(expected_start), "{}", seen[0]);
            }
        }
        std::fs::remove_dir_all(&home).unwrap();
    }

    /// The child process of [`both_paths_configure_the_client_alike`]; does nothing when run on
    /// its own (`./dev test` runs ignored tests too).
    #[cfg(feature = "dynamodb")]
    #[tokio::test]
    #[ignore = "a child process of both_paths_configure_the_client_alike"]
    async fn probe() {
        use aws_sdk_dynamodb::config::ProvideCredentials;

        let Ok(expect) = std::env::var("SDK_CONFIG_PROBE") else {
            return;
        };
        let http = || tls::http_client(TrustedRoots::from_source(&Env), ProxyConfig::from_env());
        let direct = lambda_environment();
        if expect == "loader" {
            assert_eq!(direct, None);
            return;
        }
        let direct = direct.expect("a Lambda environment").sdk_config(http());
        let loaded = loader(http()).await;

        let settings = |c: &SdkConfig| {
            let endpoint = |service| {
                let key = ServiceConfigKey::builder()
                    .service_id(service)
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build()
                    .unwrap();
                c.service_config().and_then(|s| s.load_config(key))
            };
            [
                format!("region {:?}", c.region()),
                format!("endpoint_url {:?}", c.endpoint_url()),
                format!("dynamodb endpoint {:?}", endpoint("DynamoDB")),
                format!("secrets manager endpoint {:?}", endpoint("Secrets Manager")),
                format!("retry_config {:?}", c.retry_config()),
                format!("timeout_config {:?}", c.timeout_config()),
                format!("behavior_version {:?}", c.behavior_version()),
                format!("use_fips {:?}", c.use_fips()),
                format!("use_dual_stack {:?}", c.use_dual_stack()),
                format!("app_name {:?}", c.app_name()),
                format!("stalled_stream_protection {:?}", c.stalled_stream_protection()),
                format!("request_checksum {:?}", c.request_checksum_calculation()),
                format!("response_checksum {:?}", c.response_checksum_validation()),
                format!("account_id_endpoint_mode {:?}", c.account_id_endpoint_mode()),
                format!("auth_scheme_preference {:?}", c.auth_scheme_preference()),
                format!("disable_compression {:?}", c.disable_request_compression()),
                format!("min_compression {:?}", c.request_min_compression_size_bytes()),
                format!("sigv4a_regions {:?}", c.sigv4a_signing_region_set()),
                format!("sleep {}", c.sleep_impl().is_some()),
                format!("time_source {}", c.time_source().is_some()),
                format!("identity_cache {}", c.identity_cache().is_some()),
                format!("http_client {}", c.http_client().is_some()),
                format!("token_provider {}", c.token_provider().is_some()),
            ]
        };
        assert_eq!(settings(&direct), settings(&loaded));
        let credentials = |c: &SdkConfig| {
            let provider = c.credentials_provider().expect("credentials");
            async move { provider.provide_credentials().await.expect("resolved") }
        };
        let (d, l) = (credentials(&direct).await, credentials(&loaded).await);
        assert_eq!(
            (
                d.access_key_id(),
                d.secret_access_key(),
                d.session_token(),
                d.expiry()
            ),
            (
                l.access_key_id(),
                l.secret_access_key(),
                l.session_token(),
                l.expiry()
            )
        );
        assert_eq!(d.account_id(), l.account_id());

        // A refused CONNECT is an I/O error, which the SDK retries: one attempt each there, so
        // that the proxy sees one request from each client.
        let proxied = std::env::var("HTTPS_PROXY").is_ok();
        for config in [&loaded, &direct] {
            let mut config = aws_sdk_dynamodb::config::Builder::from(config);
            if proxied {
                config.set_retry_config(Some(RetryConfig::disabled()));
            }
            let client = aws_sdk_dynamodb::Client::from_conf(config.build());
            let result = client.describe_table().table_name("users").send().await;
            assert!(result.is_err(), "the listener refuses every request");
        }
    }
}
