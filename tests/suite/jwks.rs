//! The key set and discovery documents through the local API, as another service reads them:
//! the documents are served and cacheable, and a token from `POST /token` names a published
//! key, verifies with it, and carries the discovery document's issuer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::{Answer, Api as _, Call, HttpApi, signed_up_user};
use serde_json::Value;
use shared::{PublicKeySet, TokenSettings, TokenVerifier};

/// The `max-age` of a `Cache-Control: public, max-age=<n>` answer.
fn public_max_age(answer: &Answer) -> u64 {
    let cache_control = answer.header("cache-control").unwrap_or_default();
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    assert!(directives.contains(&"public"), "{cache_control}");
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"))
}

/// The JSON of a token's header (0) or payload (1).
fn token_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn a_token_names_a_published_key_and_the_discovery_documents_issuer() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;

    let jwks = api.call(Call::get("/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, 200, "{jwks:?}");
    assert_eq!(jwks.header("content-type"), Some("application/json"));
    assert!(public_max_age(&jwks) > 0);
    let discovery = api.call(Call::get("/.well-known/openid-configuration")).await;
    assert_eq!(discovery.status, 200, "{discovery:?}");
    assert_eq!(public_max_age(&discovery), public_max_age(&jwks));

    let issuer = discovery.body["issuer"].as_str().unwrap();
    assert_eq!(
        discovery.body["jwks_uri"].as_str(),
        Some(format!("{issuer}/.well-known/jwks.json").as_str())
    );

    let header = token_part(&user.token, 0);
    assert_eq!(
        (&header["alg"], &header["typ"]),
        (&"ES256".into(), &"at+jwt".into()),
        "{header}"
    );
    let kid = header["kid"].as_str().unwrap();
    let published: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|key| key["kid"].as_str())
        .collect();
    assert!(published.contains(&kid), "{kid} not in {published:?}");
    let claims = token_part(&user.token, 1);
    assert_eq!(claims["iss"].as_str(), Some(issuer), "{claims}");

    // What another service does with the two documents: verify with the published keys.
    let keys = PublicKeySet::from_jwks(&jwks.body.to_string()).unwrap();
    let settings = TokenSettings {
        issuer: Some(issuer.to_owned()),
        audience: claims["aud"].as_str().unwrap().to_owned(),
        ..shared::test_util::token_settings()
    };
    let verified = TokenVerifier::new(&settings, keys)
        .verify_access(&user.token, issuer)
        .unwrap();
    assert_eq!(verified.sub, user.id);
}
