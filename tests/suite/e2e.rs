//! End to end through the built binaries under `cargo lambda watch`, over HTTP on 127.0.0.1:
//! sign up → token → authorizer (Lambda Invoke API) → protected invoked with the authorizer's
//! verdict in `requestContext.authorizer`, as API Gateway builds it; and what the functions log.

use std::time::Duration;

use integration_tests::test_util::tampered;
use integration_tests::{
    Api as _, Call, HttpApi, Invoker, body_login, credentials, fixture, fixture_json, login, protected,
    service_env, sign_up, signed_up_user, unique_name,
};
use serde_json::{Value, json};

fn event(name: &str, token: &str) -> Value {
    serde_json::from_str(&fixture(name, token)).unwrap()
}

#[tokio::test]
#[ignore = "needs ./dev test (cargo lambda watch)"]
async fn sign_up_token_authorizer_then_protected_as_api_gateway_calls_it() {
    let (api, lambda) = (HttpApi::function_urls(), Invoker::from_env());
    let user = signed_up_user(&api).await;

    // API Gateway calls the authorizer with a TOKEN event...
    let verdict = lambda
        .invoke("authorizer", &event("authorizer/valid.json", &user.token))
        .await;
    assert_eq!(verdict.status, 200, "{verdict:?}");
    assert_eq!(verdict.body["principalId"], user.id.as_str());
    let statement = &verdict.body["policyDocument"]["Statement"][0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(
        statement["Resource"],
        json!(["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/*/*"])
    );
    assert!(verdict.body["context"]["exp"].is_u64(), "{verdict:?}");

    // ...then the backend with principalId and the context values (as strings, as API Gateway
    // writes them) in requestContext.authorizer.
    let mut request = fixture_json("protected/authorizer-context.json", &user.token);
    let mut authorizer = serde_json::Map::new();
    for (key, value) in verdict.body["context"].as_object().unwrap() {
        let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
        authorizer.insert(key.clone(), json!(text));
    }
    authorizer.insert("principalId".into(), verdict.body["principalId"].clone());
    authorizer.insert("integrationLatency".into(), json!(7));
    request["requestContext"]["authorizer"] = Value::Object(authorizer);
    let response = lambda.invoke("protected", &request).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body["statusCode"], 200, "{response:?}");
    let body: Value = serde_json::from_str(response.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"id": user.id, "username": user.name}));
}

#[tokio::test]
#[ignore = "needs ./dev test (cargo lambda watch)"]
async fn protected_url_verifies_the_bearer_token_itself() {
    let api = HttpApi::function_urls();
    let user = signed_up_user(&api).await;
    let ok = protected(&api, Some(&user.bearer())).await;
    assert_eq!(
        (ok.status, ok.body),
        (200, json!({"id": user.id, "username": user.name}))
    );
}

#[tokio::test]
#[ignore = "needs ./dev test (cargo lambda watch)"]
async fn no_token_or_a_tampered_one_is_401_and_unauthorized() {
    let (api, lambda) = (HttpApi::function_urls(), Invoker::from_env());
    let user = signed_up_user(&api).await;
    let tampered = tampered(&user.token);

    let missing = protected(&api, None).await;
    assert_eq!(
        (missing.status, missing.msg()),
        (401, "Missing Authorization header")
    );
    let bad = protected(&api, Some(&format!("Bearer {tampered}"))).await;
    assert_eq!((bad.status, bad.msg()), (401, "Invalid or expired token"));

    for event in [
        event("authorizer/valid.json", &tampered),
        event("authorizer/missing-token.json", ""),
        event("authorizer/expired.json", ""),
    ] {
        let verdict = lambda.invoke("authorizer", &event).await;
        assert_eq!(verdict.body["errorMessage"], "Unauthorized", "{verdict:?}");
        assert!(verdict.body.get("policyDocument").is_none());
    }
}

#[tokio::test]
#[ignore = "needs ./dev test (cargo lambda watch)"]
async fn wrong_password_and_unknown_user_look_the_same_over_http() {
    let api = HttpApi::function_urls();
    let user = signed_up_user(&api).await;
    let wrong = login(&api, &user.name, "nope nope").await;
    let unknown = login(&api, &unique_name("nobody"), "nope nope").await;
    assert_eq!(
        (wrong.status, &wrong.body),
        (401, &json!({"msg": "Bad username or password"}))
    );
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
}

/// Runs the whole flow, failures included, with the functions logging at `TRACE` (as `./dev
/// test` starts them), then reads every line the functions and `cargo lambda watch` logged: no
/// password, token, signing secret or Authorization value.
#[tokio::test]
#[ignore = "needs ./dev test (cargo lambda watch)"]
async fn logs_never_contain_passwords_tokens_or_the_secret_even_at_trace() {
    let (api, lambda) = (HttpApi::function_urls(), Invoker::from_env());
    assert_eq!(
        service_env("TEST_FUNCTIONS_LOG_LEVEL").to_ascii_lowercase(),
        "trace",
        "this test reads the log of functions running at TRACE"
    );
    let log_path = service_env("TEST_WATCH_LOG");
    let private_key = std::fs::read_to_string(service_env("TEST_SIGNING_KEY_FILE")).unwrap();
    let random = || uuid::Uuid::new_v4().simple().to_string();
    let (name, password, wrong, unknown_password) = (
        unique_name("logs"),
        format!("pw-{}", random()),
        format!("wrong-{}", random()),
        format!("unk-{}", random()),
    );

    let created = sign_up(&api, &name, &password).await;
    assert_eq!(created.status, 201);
    let user_id = created.body["id"].clone();
    let token = login(&api, &name, &password).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(login(&api, &name, &wrong).await.status, 401);
    assert_eq!(
        login(&api, &unique_name("nobody"), &unknown_password)
            .await
            .status,
        401
    );
    let short = format!("s-{}", &random()[..4]);
    assert_eq!(sign_up(&api, "x y", &short).await.status, 400);

    // A session: refresh tokens in the body and in the cookie, as API Gateway would send them.
    let session = body_login(&api, &name, &password).await;
    let first_refresh = session.body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = lambda
        .invoke("token", &event("token/refresh-body.json", &first_refresh))
        .await;
    let refreshed: Value = serde_json::from_str(refreshed.body["body"].as_str().unwrap()).unwrap();
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    // The same token again, in a Cookie header (no Origin: not a browser): a duplicate within
    // the grace period, answered with an access token.
    let mut duplicate = event("token/refresh-cookie.json", &first_refresh);
    for headers in ["headers", "multiValueHeaders"] {
        duplicate[headers].as_object_mut().unwrap().remove("Origin");
    }
    let duplicate = lambda.invoke("token", &duplicate).await;
    assert_eq!(duplicate.body["statusCode"], 200, "{duplicate:?}");
    lambda
        .invoke("token", &event("token/logout.json", &second_refresh))
        .await;

    let tampered = tampered(&token);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{name}:{password}")
        )
    );
    for auth in [
        format!("Bearer {token}"),
        format!("Bearer {tampered}"),
        basic.clone(),
    ] {
        protected(&api, Some(&auth)).await;
        let mut event = event("authorizer/valid.json", "");
        event["authorizationToken"] = json!(auth);
        lambda.invoke("authorizer", &event).await;
    }

    // The address and recovery, through the local API (the same functions, the same log): the
    // links' tokens and the new password must not reach it either.
    let gateway = HttpApi::local_api();
    let email = format!("{}@example.com", name.to_lowercase());
    let change = json!({"email": email, "current_password": password});
    assert_eq!(
        integration_tests::bearer_post(&gateway, "/email", &token, &change)
            .await
            .status,
        202
    );
    let verify = integration_tests::mailbox::moto_messages_to(&email)
        .await
        .pop()
        .and_then(|m| m.token("verify"))
        .expect("a verification link in moto's SES");
    let verified = gateway
        .call(Call::post_json("/email/verify", &json!({ "token": verify })))
        .await;
    assert_eq!(verified.status, 204, "{verified:?}");
    let forgot = gateway
        .call(Call::post_json("/password/forgot", &json!({ "email": email })))
        .await;
    assert_eq!(forgot.status, 202);
    let reset = integration_tests::mailbox::moto_messages_to(&email)
        .await
        .pop()
        .and_then(|m| m.token("reset"))
        .expect("a reset link in moto's SES");
    let new_password = format!("new-{}", random());
    let body = json!({"token": reset, "new_password": new_password});
    assert_eq!(
        gateway
            .call(Call::post_json("/password/reset", &body))
            .await
            .status,
        204
    );

    // Two-step verification: its secret, recovery codes and ticket must not reach the log.
    let signed_in = body_login(&gateway, &name, &new_password).await;
    let bearer = signed_in.body["token"].as_str().unwrap().to_owned();
    let enrol = json!({"current_password": new_password});
    let started = integration_tests::bearer_post(&gateway, "/mfa/totp/enrol", &bearer, &enrol).await;
    assert_eq!(started.status, 200, "{started:?}");
    let totp_secret = started.body["secret"].as_str().unwrap().to_owned();
    let otpauth_uri = started.body["otpauth_uri"].as_str().unwrap().to_owned();
    let secret = shared::mfa::TotpSecret::from_base32(&totp_secret).unwrap();
    let step = jsonwebtoken::get_current_timestamp() / shared::mfa::totp::STEP_SECONDS;
    let confirm = json!({"code": secret.code_at_step(step)});
    let confirmed = integration_tests::bearer_post(&gateway, "/mfa/totp/confirm", &bearer, &confirm).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let recovery_codes: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let ticket = body_login(&gateway, &name, &new_password).await.body["mfa_token"]
        .as_str()
        .expect("a second step")
        .to_owned();
    let second = json!({"mfa_token": ticket, "code": recovery_codes[0]});
    let second = gateway.call(Call::post_json("/token/mfa", &second)).await;
    assert_eq!(second.status, 200, "{second:?}");

    // A last request whose log line we can recognise: once it is in the log, so is all the
    // above. The functions write to stdout, which reaches the file without a signal to wait
    // on, so the log is read again (every 50 ms, for at most 15 s) until the line is there.
    let marker = api
        .call(Call::post_json(
            "/users",
            &credentials(&unique_name("marker"), "marker password"),
        ))
        .await;
    let marker_id = marker.body["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains(&marker_id) {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the marker request never reached {log_path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let (_, signature) = token.rsplit_once('.').unwrap();
    let forbidden = [
        ("password", password.as_str()),
        ("wrong password", wrong.as_str()),
        ("unknown user's password", unknown_password.as_str()),
        ("rejected short password", short.as_str()),
        ("token", token.as_str()),
        ("refresh token", first_refresh.as_str()),
        ("rotated refresh token", second_refresh.as_str()),
        ("token signature", signature),
        ("tampered token", tampered.as_str()),
        ("Basic credentials", basic.as_str()),
        ("verification link's token", verify.as_str()),
        ("reset link's token", reset.as_str()),
        ("new password", new_password.as_str()),
        ("a link's fragment", "#verify="),
        ("a link's fragment", "#reset="),
        ("TOTP secret", totp_secret.as_str()),
        ("otpauth URI", otpauth_uri.as_str()),
        ("MFA ticket", ticket.as_str()),
    ];
    for (what, value) in forbidden {
        assert!(!log.contains(value), "the {what} appears in the functions' log");
    }
    for code in &recovery_codes {
        assert!(
            !log.contains(code.as_str()) && !log.contains(&code.replace('-', "")),
            "a recovery code appears in the functions' log"
        );
    }
    // Any line of the signing key's PEM body: a fragment of the key is a leak too.
    for line in private_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !log.contains(line),
            "a line of the signing key appears in the functions' log"
        );
    }
    assert!(
        !log.to_ascii_lowercase().contains("bearer ey"),
        "an Authorization header value appears in the log"
    );
    // The operators' line of the wrong password above: one JSON document that is the event
    // and its CloudWatch metric (embedded metric format), holding none of the secrets above.
    let failed = log
        .lines()
        .filter_map(|line| line.find('{').map(|start| &line[start..]))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["security_event"] == "login.failed" && line["user_id"] == user_id)
        .unwrap_or_else(|| panic!("no login.failed line of {user_id} in {log_path}"));
    assert_eq!(failed["LoginFailed"], 1, "{failed}");
    assert_eq!(
        failed["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "LoginFailed",
        "{failed}"
    );
    // Positive controls: the log is the functions' log, and it was written at TRACE.
    assert!(log.contains("user created"), "the log is being read: {log_path}");
    assert!(
        log.contains("TRACE") && log.contains("response ready"),
        "the functions did not log at TRACE: {log_path}"
    );
}
