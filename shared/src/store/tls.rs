//! The HTTPS client the DynamoDB store talks through: rustls with ring, trusting the Amazon
//! Trust Services roots compiled into the binary.
//!
//! The SDK's default client loads the operating system's whole root store (a directory walk
//! and a few hundred certificates parsed) and links a second crypto library (aws-lc). Every AWS
//! endpoint chains to one of five roots, so the functions embed those
//! (`shared/certs/amazon-trust-services.pem`) and skip both: a faster cold start and a smaller
//! binary. A custom HTTPS endpoint (`AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`, e.g. an
//! emulator or a proxy behind TLS) may use any CA, so then the system's roots are trusted as
//! well. A plain-HTTP endpoint (the local emulator) needs no roots at all.

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

use crate::config::Source;

/// Amazon Root CA 1-4 and Starfield Services Root CA G2, with their fingerprints as comments.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("../../certs/amazon-trust-services.pem");

/// The settings that make the SDK call somewhere other than the AWS endpoint.
const ENDPOINT_OVERRIDES: [&str; 2] = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"];

/// Which certificate authorities the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedRoots {
    /// Only the embedded Amazon roots: the AWS endpoints, nothing else.
    Amazon,
    /// The embedded Amazon roots and the operating system's (read when the first connection
    /// is made).
    AmazonAndSystem,
}

impl TrustedRoots {
    /// [`TrustedRoots::AmazonAndSystem`] when an `https://` endpoint override is set, else
    /// [`TrustedRoots::Amazon`].
    pub fn for_endpoint(src: &dyn Source) -> Self {
        let is_https = |url: String| {
            url.trim()
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        };
        if ENDPOINT_OVERRIDES
            .iter()
            .any(|var| src.get(var).is_some_and(is_https))
        {
            Self::AmazonAndSystem
        } else {
            Self::Amazon
        }
    }
}

/// An HTTPS (and plain HTTP, for a local endpoint) client for the AWS SDK.
pub fn http_client(roots: TrustedRoots) -> SharedHttpClient {
    let trust_store = TrustStore::empty()
        .with_native_roots(roots == TrustedRoots::AmazonAndSystem)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("building a TlsContext cannot fail");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};

    use super::*;

    fn source(pairs: &[(&str, &str)]) -> impl Source {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |var: &str| map.get(var).cloned()
    }

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
    fn system_roots_are_added_only_for_a_custom_https_endpoint() {
        assert_eq!(TrustedRoots::for_endpoint(&source(&[])), TrustedRoots::Amazon);
        for var in ENDPOINT_OVERRIDES {
            for (url, roots) in [
                ("", TrustedRoots::Amazon),
                ("http://127.0.0.1:8000", TrustedRoots::Amazon),
                ("https://dynamodb.internal:8443", TrustedRoots::AmazonAndSystem),
                ("HTTPS://dynamodb.internal", TrustedRoots::AmazonAndSystem),
            ] {
                assert_eq!(
                    TrustedRoots::for_endpoint(&source(&[(var, url)])),
                    roots,
                    "{var}={url}"
                );
            }
        }
    }
}
