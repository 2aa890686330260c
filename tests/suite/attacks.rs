//! The JWT attack regression suite: each malicious token is minted here and must be refused
//! both by the authorizer (error message exactly `Unauthorized`) and by the protected route
//! verifying the Bearer token itself (401). A valid token is accepted by both, which keeps the
//! suite honest: a verifier that refused everything would fail it.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::test_util::{TEST_SECRET, header, mint, mint_raw};
use integration_tests::{Apps, fixture, fixture_json, request};
use jsonwebtoken::Algorithm;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::store::{UserRecord, UserStore};

const USER_ID: &str = "7d1b2c3a-0000-4000-8000-000000000001";

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn claims() -> Value {
    let now = now();
    json!({
        "iss": "jwt-auth", "aud": "jwt-auth-api", "sub": USER_ID, "username": "mallory",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "attack", "token_use": "access"
    })
}

fn set(mut value: Value, key: &str, new: Value) -> Value {
    value[key] = new;
    value
}

fn remove(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

/// `header.payload` from raw JSON texts.
fn unsigned(header: &str, payload: &str) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// HMAC-SHA-256 of `message` under `key`, empty keys included (jsonwebtoken refuses those; the
/// `kid` → /dev/null attack signs with one).
fn hmac_sha256(message: &str, key: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    b64(mac.finalize().into_bytes())
}

/// `header` and `claims` signed with `key` (with HS256 for an empty key).
fn signed(header: &Value, claims: &Value, key: &[u8]) -> String {
    if key.is_empty() {
        let message = unsigned(&header.to_string(), &claims.to_string());
        return format!("{message}.{}", hmac_sha256(&message, key));
    }
    mint(header, claims, key)
}

/// With our secret: only the claims or header are wrong.
fn ours(header: &Value, claims: &Value) -> String {
    signed(header, claims, TEST_SECRET)
}

const OTHER_KEY: &[u8] = b"attacker-controlled-key-0123456789abcdef";

/// Every attack: a name and the full `Authorization` header value.
fn attacks() -> Vec<(String, String)> {
    let valid = ours(&header("HS256"), &claims());
    let (valid_message, valid_signature) = valid.rsplit_once('.').unwrap();
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, authorization: String| cases.push((name.to_owned(), authorization));
    let bearer = |token: &str| format!("Bearer {token}");

    for alg in ["none", "None", "NONE", "nOnE"] {
        let message = unsigned(&header(alg).to_string(), &claims().to_string());
        add(
            &format!("alg {alg}, no signature"),
            bearer(&format!("{message}.")),
        );
        add(
            &format!("alg {alg}, with a signature"),
            bearer(&format!("{message}.{valid_signature}")),
        );
        add(
            &format!("alg {alg}, HMAC signature"),
            bearer(&format!("{message}.{}", hmac_sha256(&message, TEST_SECRET))),
        );
    }
    add("signature stripped", bearer(&format!("{valid_message}.")));
    add("signature stripped, two segments", bearer(valid_message));
    add(
        "signature from another key",
        bearer(&signed(&header("HS256"), &claims(), OTHER_KEY)),
    );
    let tampered = unsigned(
        &header("HS256").to_string(),
        &set(claims(), "sub", json!("admin")).to_string(),
    );
    add(
        "payload tampered under the original signature",
        bearer(&format!("{tampered}.{valid_signature}")),
    );
    let tampered = unsigned(
        &header("HS256").to_string(),
        &set(claims(), "exp", json!(now() + 86_400 * 365)).to_string(),
    );
    add(
        "exp extended under the original signature",
        bearer(&format!("{tampered}.{valid_signature}")),
    );
    add(
        "alg HS384 re-signed with the right secret",
        bearer(&ours(&header("HS384"), &claims())),
    );
    add(
        "alg HS512 re-signed with the right secret",
        bearer(&ours(&header("HS512"), &claims())),
    );
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        add(
            &format!("alg {alg} with an HMAC signature (key confusion)"),
            bearer(&mint_raw(
                &header(alg).to_string(),
                &claims().to_string(),
                Algorithm::HS256,
                TEST_SECRET,
            )),
        );
    }
    // CVE-2022-21449 ("psychic signatures"): r = s = 0.
    let message = unsigned(&header("ES256").to_string(), &claims().to_string());
    add(
        "ES256 all-zero signature",
        bearer(&format!("{message}.{}", b64([0u8; 64]))),
    );
    // CVE-2018-0114: the verifier must not use a key the token brings.
    let jwk =
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "v1", "jwk": {"kty": "oct", "k": b64(OTHER_KEY)}});
    add("embedded jwk header", bearer(&signed(&jwk, &claims(), OTHER_KEY)));
    for (field, kid) in [
        ("kid", "../../../../dev/null"),
        ("kid", "' OR '1'='1"),
        ("kid", "v2"),
        ("kid", ""),
        ("kid", "v1\u{0}"),
    ] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", field: kid});
        add(
            &format!("kid injection {kid:?}"),
            bearer(&signed(&h, &claims(), b"")),
        );
        add(
            &format!("kid injection {kid:?} signed with our secret"),
            bearer(&ours(&h, &claims())),
        );
    }
    add(
        "no kid",
        bearer(&ours(&json!({"alg": "HS256", "typ": "at+jwt"}), &claims())),
    );
    add(
        "plain JWT typ",
        bearer(&ours(
            &json!({"alg": "HS256", "typ": "JWT", "kid": "v1"}),
            &claims(),
        )),
    );
    add(
        "expired",
        bearer(&ours(&header("HS256"), &set(claims(), "exp", json!(now() - 60)))),
    );
    add(
        "nbf in the future",
        bearer(&ours(&header("HS256"), &set(claims(), "nbf", json!(now() + 300)))),
    );
    add(
        "iat in the future beyond the leeway",
        bearer(&ours(&header("HS256"), &set(claims(), "iat", json!(now() + 300)))),
    );
    for claim in integration_tests::test_util::REQUIRED_CLAIMS {
        add(
            &format!("missing {claim}"),
            bearer(&ours(&header("HS256"), &remove(claims(), claim))),
        );
    }
    for claim in ["exp", "nbf", "iat"] {
        let as_string = json!((now() + 600).to_string());
        add(
            &format!("{claim} as a string"),
            bearer(&ours(&header("HS256"), &set(claims(), claim, as_string))),
        );
    }
    add(
        "exp as a float far in the future",
        bearer(&ours(&header("HS256"), &set(claims(), "exp", json!(1e18)))),
    );
    add(
        "exp null",
        bearer(&ours(&header("HS256"), &set(claims(), "exp", Value::Null))),
    );
    add(
        "sub empty",
        bearer(&ours(&header("HS256"), &set(claims(), "sub", json!("")))),
    );
    add(
        "sub a number",
        bearer(&ours(&header("HS256"), &set(claims(), "sub", json!(42)))),
    );
    add(
        "wrong iss",
        bearer(&ours(
            &header("HS256"),
            &set(claims(), "iss", json!("https://evil.example")),
        )),
    );
    add(
        "wrong aud",
        bearer(&ours(
            &header("HS256"),
            &set(claims(), "aud", json!("another-api")),
        )),
    );
    add(
        "aud list without ours",
        bearer(&ours(&header("HS256"), &set(claims(), "aud", json!(["a", "b"])))),
    );
    add(
        "refresh token used as an access token",
        bearer(&ours(
            &header("HS256"),
            &set(claims(), "token_use", json!("refresh")),
        )),
    );
    add(
        "unknown token_use",
        bearer(&ours(
            &header("HS256"),
            &set(claims(), "token_use", json!("admin")),
        )),
    );
    let crit = json!({"alg": "HS256", "typ": "at+jwt", "kid": "v1", "crit": ["x-custom"], "x-custom": true});
    add("unknown crit header", bearer(&ours(&crit, &claims())));
    let body = claims().to_string();
    let duplicated = format!("{},\"sub\":\"admin\"}}", body.trim_end_matches('}'));
    add(
        "duplicate claims",
        bearer(&mint_raw(
            &header("HS256").to_string(),
            &duplicated,
            Algorithm::HS256,
            TEST_SECRET,
        )),
    );
    for payload in ["[]", "[1,2,3]", "42", "\"sub\"", "null", "{}", "not json"] {
        add(
            &format!("payload {payload}"),
            bearer(&mint_raw(
                &header("HS256").to_string(),
                payload,
                Algorithm::HS256,
                TEST_SECRET,
            )),
        );
    }
    add(
        "header not JSON",
        bearer(&mint_raw(
            "not json",
            &claims().to_string(),
            Algorithm::HS256,
            TEST_SECRET,
        )),
    );
    add(
        "standard base64 with padding",
        bearer(&valid.replacen('.', "=.", 1)),
    );
    add("base64 '+' character", bearer(&format!("{}+", valid)));
    add("base64 '/' character", bearer(&valid.replacen('.', "/.", 1)));
    add(
        "whitespace inside the token",
        bearer(&valid.replacen('.', ". ", 1)),
    );
    add("extra segment", bearer(&format!("{valid}.{valid_signature}")));
    add("JWE-like five segments", bearer(&format!("{valid}.a.b")));
    add("one segment", bearer("eyJhbGciOiJIUzI1NiJ9"));
    add("empty token", "Bearer ".into());
    add("Bearer with nothing after it", "Bearer".into());
    add("Basic scheme", "Basic bWFsbG9yeTpwYXNzd29yZA==".into());
    add("token without a scheme", valid.clone());
    add("Bearer twice", format!("Bearer Bearer {valid}"));
    add("1 MiB token", bearer(&"a".repeat(1 << 20)));
    add(
        "1 MiB token with a valid prefix",
        bearer(&format!("{valid}{}", "A".repeat(1 << 20))),
    );
    cases
}

async fn apps_with_victim() -> Apps {
    let apps = Apps::in_memory();
    let user = UserRecord {
        id: USER_ID.into(),
        username: "mallory".into(),
        password_hash: "x".into(),
    };
    apps.store.create(&user).await.unwrap();
    apps
}

async fn authorizer_says(apps: &Apps, authorization: &str) -> Result<String, String> {
    let mut event: Value = serde_json::from_str(&fixture("authorizer/valid.json", "")).unwrap();
    event["authorizationToken"] = json!(authorization);
    let payload = serde_json::from_value(event).unwrap();
    authorizer::handle(&apps.authorizer, LambdaEvent::new(payload, Context::default()))
        .await
        .map(|r| r.principal_id.unwrap_or_default())
        .map_err(|e| lambda_runtime::Diagnostic::from(e).error_message)
}

async fn protected_status(apps: &Apps, authorization: &str) -> u16 {
    let mut event = fixture_json("protected/bearer.json", "");
    event["headers"]["Authorization"] = json!(authorization);
    event["multiValueHeaders"]["Authorization"] = json!([authorization]);
    protected::handle(&apps.protected, request(&event))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn positive_control_a_valid_token_is_accepted_by_both() {
    let apps = apps_with_victim().await;
    let valid = format!("Bearer {}", ours(&header("HS256"), &claims()));
    assert_eq!(authorizer_says(&apps, &valid).await, Ok(USER_ID.to_owned()));
    assert_eq!(protected_status(&apps, &valid).await, 200);
}

#[tokio::test]
async fn every_attack_is_refused_by_the_authorizer_with_exactly_unauthorized() {
    let apps = apps_with_victim().await;
    let mut accepted = Vec::new();
    for (name, authorization) in attacks() {
        match authorizer_says(&apps, &authorization).await {
            Err(message) if message == "Unauthorized" => {}
            other => accepted.push(format!("{name}: {other:?}")),
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused with Unauthorized:\n{}",
        accepted.join("\n")
    );
}

#[tokio::test]
async fn every_attack_is_refused_by_the_protected_route_with_401() {
    let apps = apps_with_victim().await;
    let mut accepted = Vec::new();
    for (name, authorization) in attacks() {
        let status = protected_status(&apps, &authorization).await;
        if status != 401 {
            accepted.push(format!("{name}: {status}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused with 401:\n{}",
        accepted.join("\n")
    );
}

#[tokio::test]
async fn jku_and_x5u_headers_are_never_fetched() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let apps = apps_with_victim().await;
    for field in ["jku", "x5u"] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": "v1", field: url});
        let token = format!("Bearer {}", signed(&h, &claims(), OTHER_KEY));
        assert_eq!(
            authorizer_says(&apps, &token).await,
            Err("Unauthorized".into()),
            "{field}"
        );
        assert_eq!(protected_status(&apps, &token).await, 401, "{field}");
    }
    let connection = listener.accept();
    assert!(
        matches!(&connection, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "something connected to the jku/x5u URL: {connection:?}"
    );
}

#[tokio::test]
async fn one_mib_token_is_refused_before_any_parsing() {
    let verifier = &apps_with_victim().await.protected.verifier;
    let huge = format!(
        "{}.{}.{}",
        "e".repeat(1 << 19),
        "e".repeat(1 << 19),
        "e".repeat(16)
    );
    assert_eq!(verifier.verify_access(&huge), Err(shared::VerifyError::TooLarge));
}

#[test]
fn every_attack_is_a_distinct_request_with_its_own_name() {
    let attacks = attacks();
    let (mut names, mut requests) = (HashSet::new(), HashSet::new());
    for (name, authorization) in &attacks {
        assert!(names.insert(name.as_str()), "two attacks are named {name:?}");
        assert!(
            requests.insert(authorization.as_str()),
            "{name:?} repeats an earlier attack's request"
        );
    }
    assert!(attacks.len() > 80, "{} attacks", attacks.len());
}
