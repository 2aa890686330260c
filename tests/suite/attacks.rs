//! The JWT attack regression suite: each malicious token is minted here and must be refused
//! both by the authorizer (error message exactly `Unauthorized`) and by the protected route
//! verifying the Bearer token itself (401). A valid token is accepted by both, which keeps the
//! suite honest: a verifier that refused everything would fail it.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use integration_tests::test_util::{
    ISSUER, attacker_key, header, kid, mint, mint_hmac, mint_hmac_raw, mint_raw, next_signing_key,
    signing_key,
};
use integration_tests::{Apps, fixture, fixture_json, request};
use lambda_runtime::{Context, LambdaEvent};
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use shared::store::{CreateUser, UserRecord};

const USER_ID: &str = "7d1b2c3a-0000-4000-8000-000000000001";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn claims() -> Value {
    integration_tests::test_util::claims(USER_ID, "mallory", now())
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

/// Signed with our key: only the claims or header are wrong.
fn ours(header: &Value, claims: &Value) -> String {
    mint(header, claims, &signing_key())
}

fn es256() -> Value {
    header("ES256")
}

/// The forms of our public key an HS/ES confusion attack would use as the HMAC secret: what a
/// verifier that takes the algorithm from the token would hand to HMAC.
fn public_key_forms() -> Vec<(&'static str, Vec<u8>)> {
    let jwk = signing_key().public_key().jwk();
    let x = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
    let y = URL_SAFE_NO_PAD.decode(&jwk.y).unwrap();
    let point: Vec<u8> = [&[0x04][..], &x, &y].concat();
    // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 (RFC 5480), then the point.
    let spki_prefix: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let der: Vec<u8> = [&spki_prefix[..], &point].concat();
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    let jwk_json = serde_json::to_string(&jwk).unwrap();
    let jwks_json = integration_tests::test_util::jwks_json();
    vec![
        ("the PEM", pem.clone().into_bytes()),
        (
            "the PEM without its final newline",
            pem.trim_end().as_bytes().to_vec(),
        ),
        ("the DER", der),
        ("the raw point", point),
        ("x‖y", [x, y].concat()),
        ("the JWK's bytes", jwk_json.into_bytes()),
        ("the JWKS's bytes", jwks_json.into_bytes()),
    ]
}

/// An ECDSA signature (raw r ‖ s) as ASN.1 DER, as OpenSSL and Java produce it.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        let mut value = if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            vec![0]
        } else {
            vec![]
        };
        value.extend(trimmed);
        [vec![0x02, value.len() as u8], value].concat()
    };
    let body = [integer(&raw[..32]), integer(&raw[32..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

/// The order n of P-256, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `a − b` for 32-byte big-endian numbers with a ≥ b.
fn minus(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// A P-384 key: a key from another curve.
fn p384_key() -> EcdsaKeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

/// Every attack: a name and the full `Authorization` header value.
fn attacks() -> Vec<(String, String)> {
    let valid = ours(&es256(), &claims());
    let (valid_message, valid_signature) = valid.rsplit_once('.').unwrap();
    let raw_signature = URL_SAFE_NO_PAD.decode(valid_signature).unwrap();
    let (r, s) = raw_signature.split_at(32);
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, authorization: String| cases.push((name.to_owned(), authorization));
    let bearer = |token: &str| format!("Bearer {token}");
    let with_signature = |signature: &[u8]| bearer(&format!("{valid_message}.{}", b64(signature)));

    // alg none (CVE-2015-9235 and its kin).
    for alg in ["none", "None", "NONE", "nOnE"] {
        let message = unsigned(&header(alg).to_string(), &claims().to_string());
        add(
            &format!("alg {alg}, no signature"),
            bearer(&format!("{message}.")),
        );
        add(
            &format!("alg {alg}, with a valid signature"),
            bearer(&format!("{message}.{valid_signature}")),
        );
    }
    add("signature stripped", bearer(&format!("{valid_message}.")));
    add("signature stripped, two segments", bearer(valid_message));

    // HS/ES key confusion: an HMAC over the token keyed with our public key, in every form a
    // verifier might take it, under every HMAC alg name, with our kid.
    for (form, secret) in public_key_forms() {
        for alg in ["HS256", "HS384", "HS512"] {
            add(
                &format!("{alg} keyed with our public key as {form}"),
                bearer(&mint_hmac(&header(alg), &claims(), &secret)),
            );
        }
        add(
            &format!("ES256 header, HS256 signature keyed with {form}"),
            bearer(&mint_hmac_raw(
                &es256().to_string(),
                &claims().to_string(),
                "HS256",
                &secret,
            )),
        );
    }
    for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA", "ES256K"] {
        add(
            &format!("alg {alg} over a valid ES256 signature"),
            bearer(&mint(&header(alg), &claims(), &signing_key())),
        );
    }

    // Signatures that are not ours, or not canonical.
    add(
        "signed by another P-256 key under our kid",
        bearer(&mint(&es256(), &claims(), &attacker_key())),
    );
    let tampered = unsigned(
        &es256().to_string(),
        &set(claims(), "sub", json!("admin")).to_string(),
    );
    add(
        "payload tampered under the original signature",
        bearer(&format!("{tampered}.{valid_signature}")),
    );
    let tampered = unsigned(
        &es256().to_string(),
        &set(claims(), "exp", json!(now() + 86_400 * 365)).to_string(),
    );
    add(
        "exp extended under the original signature",
        bearer(&format!("{tampered}.{valid_signature}")),
    );
    // CVE-2022-21449 ("psychic signatures"): r = s = 0, and its near relatives.
    add("r = s = 0", with_signature(&[0u8; 64]));
    add("r = s = n", with_signature(&[ORDER, ORDER].concat()));
    add("r = 0, s valid", with_signature(&[&[0u8; 32][..], s].concat()));
    add("r valid, s = 0", with_signature(&[r, &[0u8; 32][..]].concat()));
    add("r valid, s = n", with_signature(&[r, &ORDER[..]].concat()));
    // The other valid signature of the same message, (r, n − s): ECDSA malleability.
    let high_s = [r, &minus(&ORDER, s)[..]].concat();
    add("high-S twin of a valid signature", with_signature(&high_s));
    add(
        "DER-encoded signature",
        with_signature(&der_signature(&raw_signature)),
    );
    add(
        "signature padded to 65 bytes",
        with_signature(&[&raw_signature[..], &[0]].concat()),
    );
    add(
        "signature with a zero byte before it",
        with_signature(&[&[0][..], &raw_signature[..]].concat()),
    );
    add("signature cut to 63 bytes", with_signature(&raw_signature[..63]));
    add("r and s swapped", with_signature(&[s, r].concat()));
    add(
        "valid signature with base64 padding",
        bearer(&format!("{valid_message}.{valid_signature}=")),
    );

    // A key from another curve.
    let p384 = p384_key();
    let rng = ring::rand::SystemRandom::new();
    for alg in ["ES384", "ES256"] {
        let message = unsigned(&header(alg).to_string(), &claims().to_string());
        let signature = p384.sign(&rng, message.as_bytes()).unwrap();
        add(
            &format!("{alg} header signed by a P-384 key"),
            bearer(&format!("{message}.{}", b64(signature.as_ref()))),
        );
    }

    // Keys the token brings (CVE-2018-0114), and key ids that name no trusted key.
    let attacker = attacker_key();
    let attacker_jwk = serde_json::to_value(attacker.public_key().jwk()).unwrap();
    for kid in [kid(), attacker.kid().to_owned()] {
        let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "jwk": attacker_jwk});
        let whose = if kid == attacker.kid() { "its own" } else { "our" };
        add(
            &format!("embedded jwk header with {whose} kid"),
            bearer(&mint(&h, &claims(), &attacker)),
        );
    }
    let p384_point = p384.public_key().as_ref();
    let p384_jwk =
        json!({"kty": "EC", "crv": "P-384", "x": b64(&p384_point[1..49]), "y": b64(&p384_point[49..])});
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid(), "jwk": p384_jwk});
    add(
        "embedded P-384 jwk header",
        bearer(&mint(&h, &claims(), &attacker)),
    );
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid(), "x5c": [STANDARD.encode(b"not a certificate")]});
    add("embedded x5c header", bearer(&mint(&h, &claims(), &attacker)));
    let retired = next_signing_key();
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": retired.kid()});
    add(
        "kid of a key not (or no longer) in the set",
        bearer(&mint(&h, &claims(), &retired)),
    );
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid()});
    add(
        "kid of the attacker's key",
        bearer(&mint(&h, &claims(), &attacker)),
    );
    for injected in ["../../../../dev/null", "' OR '1'='1", "v1", "", "\u{0}", " "] {
        let kid = if injected == " " {
            format!("{} ", kid())
        } else {
            injected.to_owned()
        };
        let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        add(
            &format!("kid {kid:?} signed with our key"),
            bearer(&ours(&h, &claims())),
        );
        add(
            &format!("kid {kid:?} with an empty-key HMAC"),
            bearer(&mint_hmac(&set(h, "alg", json!("HS256")), &claims(), b"")),
        );
    }
    add(
        "kid a number",
        bearer(&ours(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": 1}),
            &claims(),
        )),
    );
    add(
        "no kid",
        bearer(&ours(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims())),
    );
    add(
        "no typ",
        bearer(&ours(&json!({"alg": "ES256", "kid": kid()}), &claims())),
    );
    add(
        "plain JWT typ",
        bearer(&ours(
            &json!({"alg": "ES256", "typ": "JWT", "kid": kid()}),
            &claims(),
        )),
    );

    // Claims, under a valid signature.
    add(
        "expired",
        bearer(&ours(&es256(), &set(claims(), "exp", json!(now() - 60)))),
    );
    add(
        "nbf in the future",
        bearer(&ours(&es256(), &set(claims(), "nbf", json!(now() + 300)))),
    );
    add(
        "iat in the future beyond the leeway",
        bearer(&ours(&es256(), &set(claims(), "iat", json!(now() + 300)))),
    );
    add(
        "lifetime longer than the configured one",
        bearer(&ours(&es256(), &set(claims(), "exp", json!(now() + 86_400)))),
    );
    for claim in integration_tests::test_util::REQUIRED_CLAIMS {
        add(
            &format!("missing {claim}"),
            bearer(&ours(&es256(), &remove(claims(), claim))),
        );
    }
    for claim in ["exp", "nbf", "iat"] {
        let as_string = json!((now() + 600).to_string());
        add(
            &format!("{claim} as a string"),
            bearer(&ours(&es256(), &set(claims(), claim, as_string))),
        );
    }
    add(
        "exp as a float far in the future",
        bearer(&ours(&es256(), &set(claims(), "exp", json!(1e18)))),
    );
    add(
        "exp null",
        bearer(&ours(&es256(), &set(claims(), "exp", Value::Null))),
    );
    add(
        "sub empty",
        bearer(&ours(&es256(), &set(claims(), "sub", json!("")))),
    );
    add(
        "sub a number",
        bearer(&ours(&es256(), &set(claims(), "sub", json!(42)))),
    );
    add(
        "wrong iss",
        bearer(&ours(
            &es256(),
            &set(claims(), "iss", json!("https://evil.example")),
        )),
    );
    add(
        "iss with a trailing slash",
        bearer(&ours(
            &es256(),
            &set(claims(), "iss", json!(format!("{ISSUER}/"))),
        )),
    );
    add(
        "wrong aud",
        bearer(&ours(&es256(), &set(claims(), "aud", json!("another-api")))),
    );
    add(
        "aud list without ours",
        bearer(&ours(&es256(), &set(claims(), "aud", json!(["a", "b"])))),
    );
    add(
        "refresh token used as an access token",
        bearer(&ours(&es256(), &set(claims(), "token_use", json!("refresh")))),
    );
    add(
        "unknown token_use",
        bearer(&ours(&es256(), &set(claims(), "token_use", json!("admin")))),
    );
    let crit = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid(), "crit": ["x-custom"], "x-custom": true});
    add("unknown crit header", bearer(&ours(&crit, &claims())));
    let body = claims().to_string();
    let duplicated = format!("{},\"sub\":\"admin\"}}", body.trim_end_matches('}'));
    add(
        "duplicate claims",
        bearer(&mint_raw(&es256().to_string(), &duplicated, &signing_key())),
    );
    for payload in ["[]", "[1,2,3]", "42", "\"sub\"", "null", "{}", "not json"] {
        add(
            &format!("payload {payload}"),
            bearer(&mint_raw(&es256().to_string(), payload, &signing_key())),
        );
    }
    add(
        "header not JSON",
        bearer(&mint_raw("not json", &claims().to_string(), &signing_key())),
    );

    // Encodings and framing.
    add(
        "standard base64 with padding",
        bearer(&valid.replacen('.', "=.", 1)),
    );
    add("base64 '+' character", bearer(&format!("{valid}+")));
    add("base64 '/' character", bearer(&valid.replacen('.', "/.", 1)));
    add(
        "whitespace inside the token",
        bearer(&valid.replacen('.', ". ", 1)),
    );
    add("extra segment", bearer(&format!("{valid}.{valid_signature}")));
    add("JWE-like five segments", bearer(&format!("{valid}.a.b")));
    add("one segment", bearer("eyJhbGciOiJFUzI1NiJ9"));
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
    let apps = Apps::embedded().await;
    let user = UserRecord {
        id: USER_ID.into(),
        username: "mallory".into(),
        password_hash: "x".into(),
        epoch: 0,
        email: None,
        reset_hash: None,
        totp: None,
        totp_pending: None,
        passkeys: Vec::new(),
    };
    apps.store.create(&user).await.unwrap();
    // The session the hand-made tokens name, live: only the token decides.
    integration_tests::start_session_with_id(
        apps.store.as_ref(),
        integration_tests::test_util::SESSION_ID,
        USER_ID,
        "mallory",
        now(),
    )
    .await;
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
    let valid = format!("Bearer {}", ours(&es256(), &claims()));
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
        let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker_key().kid(), field: url});
        let token = format!("Bearer {}", mint(&h, &claims(), &attacker_key()));
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
    assert_eq!(
        verifier.verify_access(&huge, ISSUER),
        Err(shared::VerifyError::TooLarge)
    );
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
    assert!(attacks.len() > 120, "{} attacks", attacks.len());
}
