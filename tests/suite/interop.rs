//! Interop with the JWT libraries other services use, through the local API: PyJWT (with
//! `cryptography`) and node's `jose`, pinned in `scripts/interop/`, run as the programs there
//! (`verify.py`, `verify.mjs`, `sign.py`, `sign.mjs`, the snippets of docs/keys.md). They verify our
//! tokens against the published JWKS; tokens they sign with our key reach `/protected`; tokens
//! they sign with a wrong algorithm, type or issuer are refused.
//!
//! Needs what `./dev test` provides: the local API, the PEM the local token function signs with,
//! `.dev/venv` with the pinned PyJWT and cryptography, and `npm ci` in `scripts/interop/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::{HttpApi, User, protected, service_env, signed_up_user};
use serde_json::{Value, json};
use shared::keys::is_low_s;
use shared::{SigningKey, TokenSettings};

/// The two libraries, by the language their programs are written in.
#[derive(Debug, Clone, Copy)]
enum Library {
    PyJwt,
    Jose,
}

const LIBRARIES: [Library; 2] = [Library::PyJwt, Library::Jose];

/// What `sign.py` / `sign.mjs` put in a token besides the user, when the test changes one thing.
#[derive(Debug, Clone)]
struct Signing {
    key_file: PathBuf,
    kid: String,
    issuer: String,
    alg: &'static str,
    typ: &'static str,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn interop_dir() -> PathBuf {
    repo().join("scripts/interop")
}

fn issuer() -> String {
    service_env("TEST_ISSUER")
}

/// The audience the local functions run with: the default, as `./dev` sets no `JWT_AUDIENCE`.
fn audience() -> String {
    TokenSettings::from_source(&|_: &str| None)
        .expect("the defaults are valid")
        .audience
}

fn jwks_url() -> String {
    format!("{}/.well-known/jwks.json", issuer())
}

/// The key the local token function signs with, from the file `./dev test` names.
fn local_signing_key() -> (PathBuf, SigningKey) {
    let path = PathBuf::from(service_env("TEST_SIGNING_KEY_FILE"));
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let key = SigningKey::from_pem(&pem).expect("the local signing key is a P-256 PKCS#8 PEM");
    (path, key)
}

/// Runs one of the interop programs; `Ok(stdout)` when it exits 0, else `Err(stderr)`.
fn run(library: Library, program: &str, args: &[&str]) -> Result<String, String> {
    let mut command = match library {
        Library::PyJwt => {
            let python = repo().join(".dev/venv/bin/python");
            assert!(
                python.exists(),
                "{} is missing: ./dev test installs it",
                python.display()
            );
            let mut command = Command::new(python);
            command.arg(interop_dir().join(format!("{program}.py")));
            command
        }
        Library::Jose => {
            assert!(
                interop_dir().join("node_modules/jose").is_dir(),
                "scripts/interop/node_modules/jose is missing: ./dev test runs npm ci there"
            );
            let mut command = Command::new("node");
            command.arg(interop_dir().join(format!("{program}.mjs")));
            command
        }
    };
    // Every call goes to 127.0.0.1, never through a proxy a developer may have configured.
    let output = command
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap_or_else(|e| panic!("{library:?} {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

/// `token` verified by `library` against the local JWKS: its claims, or why it was refused.
fn verify_with(library: Library, token: &str) -> Result<Value, String> {
    let (issuer, audience, jwks) = (issuer(), audience(), jwks_url());
    let stdout = run(library, "verify", &[&jwks, &issuer, &audience, token])?;
    Ok(serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{library:?} printed {stdout:?}: {e}")))
}

/// A token for `user` signed by `library` as `signing` says.
fn sign_with(library: Library, signing: &Signing, user: &User) -> String {
    let key_file = signing.key_file.to_string_lossy();
    let audience = audience();
    // The user's own session, as our token function would name it.
    let sid = integration_tests::sid_of(&user.token);
    let mut args = vec![
        key_file.as_ref(),
        &signing.kid,
        &signing.issuer,
        &audience,
        &user.id,
        &user.name,
        &sid,
    ];
    match library {
        Library::PyJwt => args.extend(["--alg", signing.alg, "--typ", signing.typ]),
        Library::Jose => args.extend([signing.alg, signing.typ]),
    }
    run(library, "sign", &args).unwrap_or_else(|e| panic!("{library:?} sign: {e}"))
}

fn signature_is_low_s(token: &str) -> bool {
    let signature = token.rsplit('.').next().unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|bytes| is_low_s(&bytes))
}

/// ECDSA signers pick `s` or `n − s` by chance; this signs until one of the kind asked for comes
/// out (about two tries; 40 at most).
fn sign_with_s(library: Library, signing: &Signing, user: &User, low: bool) -> String {
    (0..40)
        .map(|_| sign_with(library, signing, user))
        .find(|token| signature_is_low_s(token) == low)
        .unwrap_or_else(|| panic!("{library:?}: 40 signatures and none with low s = {low}"))
}

fn our_key_signing() -> Signing {
    let (key_file, key) = local_signing_key();
    Signing {
        key_file,
        kid: key.kid().to_owned(),
        issuer: issuer(),
        alg: "ES256",
        typ: "at+jwt",
    }
}

/// The public key as an uncompressed SEC1 point (`04 ‖ x ‖ y`), as the JWKS gives it: what an
/// attacker who read the key set would try as an HMAC secret. (PyJWT refuses to use a PEM, a DER
/// or a JWK as an HMAC secret; the raw point it takes.)
fn public_key_point(key: &SigningKey) -> Vec<u8> {
    let jwk = key.public_key().jwk();
    let mut point = vec![0x04];
    for coordinate in [jwk.x, jwk.y] {
        point.extend(URL_SAFE_NO_PAD.decode(coordinate).unwrap());
    }
    point
}

/// A file holding `bytes`, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("interop-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn pyjwt_and_jose_verify_a_token_from_post_token_against_the_published_jwks() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    for library in LIBRARIES {
        let claims = verify_with(library, &user.token).unwrap_or_else(|e| panic!("{library:?}: {e}"));
        assert_eq!(claims["sub"], json!(user.id), "{library:?}: {claims}");
        assert_eq!(claims["username"], json!(user.name), "{library:?}");
        assert_eq!(claims["iss"], json!(issuer()), "{library:?}");
        assert_eq!(claims["aud"], json!(audience()), "{library:?}");
        assert_eq!(claims["token_use"], json!("access"), "{library:?}");
    }
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn pyjwt_and_jose_refuse_our_token_for_another_issuer_or_audience() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    let jwks = jwks_url();
    for library in LIBRARIES {
        for (issuer, audience) in [
            ("https://evil.test".to_owned(), audience()),
            (issuer(), "another-api".to_owned()),
        ] {
            let refused = run(library, "verify", &[&jwks, &issuer, &audience, &user.token]);
            assert!(refused.is_err(), "{library:?} accepted {issuer} / {audience}");
        }
    }
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn tokens_pyjwt_and_jose_sign_with_our_key_reach_protected_as_their_user() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    let signing = our_key_signing();
    for library in LIBRARIES {
        let token = sign_with_s(library, &signing, &user, true);
        let me = protected(&api, Some(&format!("Bearer {token}"))).await;
        assert_eq!(
            (me.status, &me.body),
            (200, &json!({"id": user.id, "username": user.name})),
            "{library:?}: {me:?}"
        );
    }
}

/// `shared::keys` refuses the high-`s` twin of a signature (ECDSA accepts `(r, s)` and
/// `(r, n − s)` alike, so without that anyone could turn a token into a second valid one). The
/// libraries sign with whichever `s` comes out, so about half of what they sign is refused: a
/// service that signs tokens for us must normalise `s`, as `shared::keys::SigningKey` does.
#[tokio::test]
#[ignore = "needs ./dev test"]
async fn tokens_pyjwt_and_jose_sign_with_our_key_but_a_high_s_are_refused() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    let signing = our_key_signing();
    for library in LIBRARIES {
        let token = sign_with_s(library, &signing, &user, false);
        let answer = protected(&api, Some(&format!("Bearer {token}"))).await;
        assert_eq!(answer.status, 401, "{library:?}: {answer:?}");
    }
}

#[tokio::test]
#[ignore = "needs ./dev test"]
async fn tokens_pyjwt_and_jose_sign_with_a_wrong_alg_typ_or_issuer_are_refused() {
    let api = HttpApi::local_api();
    let user = signed_up_user(&api).await;
    let ours = our_key_signing();
    let (_, key) = local_signing_key();
    let point = TempFile::new(&public_key_point(&key));
    let hmac_with_public_key = Signing {
        key_file: point.path().to_owned(),
        alg: "HS256",
        ..ours.clone()
    };
    let plain_jwt_typ = Signing {
        typ: "JWT",
        ..ours.clone()
    };
    let other_issuer = Signing {
        issuer: "https://evil.test".into(),
        ..ours.clone()
    };
    for library in LIBRARIES {
        // The positive control: the same signer and key with nothing changed is let in.
        let control = sign_with_s(library, &ours, &user, true);
        let me = protected(&api, Some(&format!("Bearer {control}"))).await;
        assert_eq!(me.status, 200, "{library:?} control: {me:?}");

        let cases = [
            (
                "HS256 keyed with the public key",
                sign_with(library, &hmac_with_public_key, &user),
            ),
            ("typ JWT", sign_with_s(library, &plain_jwt_typ, &user, true)),
            ("another issuer", sign_with_s(library, &other_issuer, &user, true)),
        ];
        for (case, token) in cases {
            let answer = protected(&api, Some(&format!("Bearer {token}"))).await;
            assert_eq!(answer.status, 401, "{library:?}, {case}: {answer:?}");
        }
    }
}
