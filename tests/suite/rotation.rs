//! Zero-downtime key rotation on the running local service: `./dev rotate publish`, `sign` and
//! `retire` (the runbook of docs/keys.md) while clients keep calling `GET /protected` through the
//! local API. Every request carries a token minted just for it, so none is answered from the
//! authorizer's cache: each is verified by whichever deployment of the functions serves it,
//! the ones being replaced included.
//!
//! The clients sign only with keys that both the deployment before a step and the one after it
//! accept: the current key until `publish` has returned, the current and the next key until
//! the step before `retire`, then only the new key (as the runbook waits for the old key's
//! tokens to expire before retiring it). No such token may be refused. After `retire`, a token
//! signed by the retired key must be.
//!
//! Also: a token the token function issued before the rotation, first presented after `sign`,
//! is accepted; after `retire`, the protected function verifying a token itself (its function
//! URL) refuses the retired key's tokens too.
//!
//! `./dev test` runs this module alone, after every other test: it changes the key they use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::test_util::{AUDIENCE, PASSWORD, mint};
use integration_tests::{Api, Call, Http, HttpApi, Layout, login, protected, service_env, signed_up_user};
use serde_json::{Value, json};
use shared::keys::SigningKey;

const CLIENTS: usize = 4;

/// The key of `state` in the key set file of the running service.
fn key_in_state(state: &str) -> Option<SigningKey> {
    let text = std::fs::read_to_string(service_env("TEST_KEYSET_FILE")).unwrap();
    let keyset: Value = serde_json::from_str(&text).unwrap();
    keyset["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == state)
        .map(|k| SigningKey::from_pem(k["private_key"].as_str().unwrap()).unwrap())
}

/// Runs `./dev rotate STEP` against the services of this `./dev test`.
async fn rotate(args: &'static [&'static str]) {
    let status = tokio::task::spawn_blocking(move || {
        let dev = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dev");
        std::process::Command::new("bash")
            .arg(dev)
            .arg("rotate")
            .args(args)
            .env("DEV_RUN_DIR", service_env("TEST_DEV_RUN_DIR"))
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "./dev rotate {args:?} failed: {status}");
}

/// A token for `user` (id, name, a live session of theirs) signed by `key`, as the issuer would
/// sign it, unique to this request.
fn token(key: &SigningKey, user: &(String, String, String)) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
    let claims = json!({
        "iss": service_env("TEST_ISSUER"), "aud": AUDIENCE, "sub": user.0, "username": user.1,
        "iat": now, "nbf": now, "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(),
        "token_use": "access", "sid": user.2
    });
    mint(&header, &claims, key)
}

/// The kids the local API's JWKS publishes.
async fn published(api: &HttpApi) -> Vec<String> {
    let answer = api.call(Call::get("/.well-known/jwks.json")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The kid of the token a login through the API returns now.
async fn issued_kid(api: &HttpApi, name: &str) -> String {
    let answer = login(api, name, PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    kid_of(answer.body["token"].as_str().unwrap())
}

#[derive(Default)]
struct Tally {
    sent: usize,
    refused: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ./dev test (local API, ./dev rotate)"]
async fn rotating_the_key_under_load_refuses_no_valid_token_and_the_retired_key_afterwards() {
    let api = Arc::new(HttpApi {
        base: service_env("TEST_API_ENDPOINT"),
        layout: Layout::Gateway,
        http: Http::new(Duration::from_secs(29)),
    });
    let user = signed_up_user(api.as_ref()).await;
    let who = Arc::new((
        user.id.clone(),
        user.name.clone(),
        integration_tests::sid_of(&user.token),
    ));
    let old = Arc::new(key_in_state("current").expect("the key set has a current key"));
    assert_eq!(published(&api).await, vec![old.kid().to_owned()]);
    // A token from the token function before the rotation, first presented after `sign`.
    let issued_before = login(api.as_ref(), &user.name, PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid_of(&issued_before), old.kid());

    // The keys the clients sign with: valid before and after the step being made.
    let signing: Arc<Mutex<Vec<Arc<SigningKey>>>> = Arc::new(Mutex::new(vec![old.clone()]));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (api, who, signing, stop, tally) = (
                api.clone(),
                who.clone(),
                signing.clone(),
                stop.clone(),
                tally.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let key = {
                        let keys = signing.lock().unwrap();
                        keys[(n + client) % keys.len()].clone()
                    };
                    let answer =
                        protected(api.as_ref(), Some(&format!("Bearer {}", token(&key, &who)))).await;
                    let mut tally = tally.lock().unwrap();
                    tally.sent += 1;
                    if answer.status != 200 || answer.body["id"] != who.0.as_str() {
                        tally
                            .refused
                            .push(format!("kid {}: {} {}", key.kid(), answer.status, answer.body));
                    }
                    n += 1;
                }
            })
        })
        .collect();

    rotate(&["publish"]).await;
    let new = Arc::new(key_in_state("next").expect("publish made a next key"));
    assert_eq!(
        published(&api).await,
        vec![old.kid().to_owned(), new.kid().to_owned()]
    );
    assert_eq!(
        issued_kid(&api, &user.name).await,
        old.kid(),
        "publish must not sign with the next key yet"
    );
    signing.lock().unwrap().push(new.clone());

    rotate(&["sign"]).await;
    assert_eq!(
        issued_kid(&api, &user.name).await,
        new.kid(),
        "sign signs with the next key"
    );
    assert_eq!(published(&api).await.len(), 2, "the previous key stays published");
    let me = protected(api.as_ref(), Some(&format!("Bearer {issued_before}"))).await;
    assert_eq!(
        me.status, 200,
        "a token issued before the rotation, after sign: {me:?}"
    );

    // The runbook retires the old key once its tokens have expired; the clients stop using it.
    *signing.lock().unwrap() = vec![new.clone()];
    rotate(&["retire", "--force"]).await;
    assert_eq!(published(&api).await, vec![new.kid().to_owned()]);

    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert!(
        tally.refused.is_empty(),
        "{} of {} requests with a valid token were refused:\n{}",
        tally.refused.len(),
        tally.sent,
        tally.refused.join("\n")
    );
    assert!(
        tally.sent >= 3 * CLIENTS,
        "the clients sent only {} requests",
        tally.sent
    );

    // Tokens of the retired key, never seen before (so not in the authorizer's cache): refused.
    let retired_refusals = 10;
    for _ in 0..retired_refusals {
        let answer = protected(api.as_ref(), Some(&format!("Bearer {}", token(&old, &who)))).await;
        assert_eq!(answer.status, 401, "a token of the retired key: {answer:?}");
    }
    let fresh = protected(api.as_ref(), Some(&format!("Bearer {}", token(&new, &who)))).await;
    assert_eq!(fresh.status, 200, "the new key's tokens are accepted: {fresh:?}");
    // The protected function verifying a token itself (no authorizer in front: its function URL
    // under the functions the local API calls now) has the new key set too.
    let run_dir = service_env("TEST_DEV_RUN_DIR");
    let functions = HttpApi {
        base: std::fs::read_to_string(format!("{run_dir}/lambda-endpoint"))
            .unwrap()
            .trim()
            .to_owned(),
        layout: Layout::FunctionUrls,
        http: Http::new(Duration::from_secs(29)),
    };
    let direct = protected(&functions, Some(&format!("Bearer {}", token(&old, &who)))).await;
    assert_eq!(
        direct.status, 401,
        "the protected function, a token of the retired key: {direct:?}"
    );
    let direct = protected(&functions, Some(&format!("Bearer {}", token(&new, &who)))).await;
    assert_eq!(
        direct.status, 200,
        "the protected function, a token of the new key: {direct:?}"
    );

    let report = format!(
        "rotation: {} requests by {CLIENTS} clients through publish, sign and retire, {} refused; \
         {retired_refusals} of {retired_refusals} tokens of the retired key refused afterwards\n",
        tally.sent,
        tally.refused.len()
    );
    std::fs::write(
        format!("{}/rotation.txt", service_env("TEST_DEV_RUN_DIR")),
        &report,
    )
    .unwrap();
    eprint!("{report}");
}
