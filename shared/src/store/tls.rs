//! The HTTPS client the DynamoDB store talks through: rustls with ring, trusting the Amazon
//! Trust Services roots compiled into the binary when the function talks straight to AWS.
//!
//! The SDK's default client loads the operating system's whole root store at cold start (a
//! directory walk and a few hundred certificates parsed: about 7 ms here, see BENCHMARKS.md) and
//! links a second crypto library (aws-lc). The DynamoDB endpoints of the standard `aws`
//! partition present certificates that chain to Amazon Trust Services, so when nothing about the
//! network path is unusual the functions trust those five roots
//! (`shared/certs/amazon-trust-services.pem`) and read nothing from disk. In every other case
//! they also trust the system's roots, as the SDK's default client does (see
//! [`TrustedRoots::from_source`]). Proxies come from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`,
//! as with the SDK's default client.

pub use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::config::{Source, lookup};

/// Amazon Root CA 1-4 and Starfield Services Root CA G2, with their fingerprints as comments.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("../../certs/amazon-trust-services.pem");

/// The settings that make the SDK call somewhere other than the AWS endpoint.
const ENDPOINT_OVERRIDES: [&str; 3] = [
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL",
];

/// Settings that put something between the function and AWS, or name other roots to trust.
const PATH_SETTINGS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Which certificate authorities the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedRoots {
    /// Only the embedded Amazon roots: the standard partition's AWS endpoints, nothing else.
    Amazon,
    /// The embedded Amazon roots and the operating system's (read when the client is built).
    AmazonAndSystem,
}

impl TrustedRoots {
    /// [`TrustedRoots::Amazon`] only when the function talks straight to a DynamoDB endpoint of
    /// the standard `aws` partition: the region (`AWS_REGION`, else `AWS_DEFAULT_REGION`) is one
    /// of its regions, no `https://` endpoint override is in effect, and no proxy or
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` is set. Otherwise (China, GovCloud, the European
    /// Sovereign Cloud, an emulator or a TLS-inspecting proxy, a region unknown here)
    /// [`TrustedRoots::AmazonAndSystem`]. A plain-HTTP override (the local emulator) needs no
    /// roots and changes nothing.
    pub fn from_source(src: &dyn Source) -> Self {
        let set = |var| lookup(src, var);
        let region = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"));
        let overrides_ignored =
            set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let https_override = !overrides_ignored
            && ENDPOINT_OVERRIDES.iter().filter_map(|var| set(var)).any(|url| {
                url.trim()
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            });
        let standard = region.as_deref().is_some_and(in_standard_partition)
            && !https_override
            && !PATH_SETTINGS.iter().any(|var| set(var).is_some());
        if standard {
            Self::Amazon
        } else {
            Self::AmazonAndSystem
        }
    }
}

/// The `aws` partition's region pattern (`^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$` in the
/// SDK's partition table); `us-gov-*`, `cn-*`, `us-iso*` and `eusc-*` do not match.
fn in_standard_partition(region: &str) -> bool {
    let mut parts = region.trim().split('-');
    let (Some(prefix), Some(middle), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"].contains(&prefix)
        && !middle.is_empty()
        && middle.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// An HTTPS (and plain HTTP, for a local endpoint) client for the AWS SDK, built like the SDK's
/// default client (connector settings, sleep, proxy) but with our TLS provider and roots.
pub fn http_client(roots: TrustedRoots, proxy: ProxyConfig) -> SharedHttpClient {
    let trust_store = TrustStore::empty()
        .with_native_roots(roots == TrustedRoots::AmazonAndSystem)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("building a TlsContext cannot fail");
    // `build_with_connector_fn` is what aws-smithy-runtime's own default client uses; the
    // simpler `build_https` would leave proxies disabled.
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = Connector::builder()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(proxy.clone()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::config::test_source as source;

    /// The published SHA-256 fingerprints (amazontrust.com/repository), in file order.
    const FINGERPRINTS: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services G2
    ];

    #[test]
    fn the_embedded_roots_are_exactly_the_amazon_trust_services_roots() {
        let certs = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the bundle is valid PEM");
        let fingerprints: Vec<String> = certs
            .iter()
            .map(|der| Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        assert_eq!(fingerprints, FINGERPRINTS);
    }

    #[test]
    fn only_a_direct_path_to_the_standard_partition_trusts_the_amazon_roots_alone() {
        use TrustedRoots::{Amazon, AmazonAndSystem};
        let lambda = [("AWS_REGION", "eu-west-1")];
        assert_eq!(TrustedRoots::from_source(&source(&lambda)), Amazon);
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = lambda.to_vec();
            vars.extend_from_slice(extra);
            TrustedRoots::from_source(&source(&vars))
        };
        for (extra, expected) in [
            (
                &[("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")][..],
                Amazon,
            ),
            (&[("AWS_ENDPOINT_URL_DYNAMODB", "")][..], Amazon),
            (
                &[("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.internal:8443")][..],
                AmazonAndSystem,
            ),
            (
                &[("AWS_ENDPOINT_URL", "HTTPS://dynamodb.internal")][..],
                AmazonAndSystem,
            ),
            (
                &[
                    ("AWS_ENDPOINT_URL", "https://dynamodb.internal"),
                    ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
                ][..],
                Amazon,
            ),
            (&[("HTTPS_PROXY", "http://proxy:3128")][..], AmazonAndSystem),
            (&[("http_proxy", "http://proxy:3128")][..], AmazonAndSystem),
            (&[("SSL_CERT_FILE", "/etc/pki/corp.pem")][..], AmazonAndSystem),
        ] {
            assert_eq!(with(extra), expected, "{extra:?}");
        }
    }

    #[test]
    fn regions_outside_the_standard_partition_also_trust_the_system_roots() {
        for region in [
            "us-east-1",
            "ap-southeast-5",
            "mx-central-1",
            "il-central-1",
            "ca-west-1",
        ] {
            assert_eq!(
                TrustedRoots::from_source(&source(&[("AWS_REGION", region)])),
                TrustedRoots::Amazon,
                "{region}"
            );
        }
        for region in [
            "cn-north-1",
            "us-gov-west-1",
            "us-iso-east-1",
            "eusc-de-east-1",
            "local",
            "",
        ] {
            assert_eq!(
                TrustedRoots::from_source(&source(&[("AWS_REGION", region)])),
                TrustedRoots::AmazonAndSystem,
                "{region}"
            );
        }
        assert_eq!(
            TrustedRoots::from_source(&source(&[])),
            TrustedRoots::AmazonAndSystem
        );
        assert_eq!(
            TrustedRoots::from_source(&source(&[("AWS_DEFAULT_REGION", "us-west-2")])),
            TrustedRoots::Amazon
        );
    }

    /// The client sends through a configured proxy (here an HTTP proxy for an `http://`
    /// endpoint: the request arrives at the proxy in absolute form).
    #[cfg(feature = "dynamodb")]
    #[tokio::test]
    async fn requests_go_through_the_configured_proxy() {
        use std::io::{BufRead, BufReader, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = format!("http://{address}");
        let seen = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut request_line = String::new();
            BufReader::new(&stream).read_line(&mut request_line).unwrap();
            (&stream)
                .write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .unwrap();
            request_line
        });

        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .endpoint_url("http://dynamodb.proxied.invalid")
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .http_client(http_client(
                TrustedRoots::Amazon,
                ProxyConfig::http(proxy).unwrap(),
            ))
            .build();
        let result = aws_sdk_dynamodb::Client::from_conf(config)
            .describe_table()
            .table_name("t")
            .send()
            .await;

        assert!(result.is_err(), "the proxy answered 503");
        // Had the client gone around the proxy, the listener would still be waiting: wake it
        // with an empty connection so that the assertion below fails instead of hanging.
        let _ = std::net::TcpStream::connect(address);
        let request_line = seen.join().unwrap();
        assert!(
            request_line.starts_with("POST http://dynamodb.proxied.invalid/ HTTP/1.1"),
            "{request_line:?}"
        );
    }
}
