//! The authorizer's event handling: any JSON API Gateway could send. It must never panic, and
//! must answer either an Allow for the stage or exactly `Unauthorized` / `InvalidMethodArn`.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use authorizer::{App, AuthorizerError, authorize};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequest;
use aws_lambda_events::iam::IamPolicyEffect;
use libfuzzer_sys::fuzz_target;

static APP: LazyLock<App> = LazyLock::new(|| App {
    verifier: common::verifier(),
    issuer: Some(common::ISSUER.into()),
});

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<ApiGatewayCustomAuthorizerRequest>(data) else {
        return;
    };
    match authorize(&APP, &event) {
        Ok(response) => {
            let statement = &response.policy_document.statement[0];
            assert_eq!(statement.effect, IamPolicyEffect::Allow);
            assert!(statement.resource.iter().all(|r| r.ends_with("/*/*")));
            assert_eq!(
                response.principal_id.as_deref(),
                Some(response.context.sub.as_str())
            );
        }
        Err(AuthorizerError::Unauthorized | AuthorizerError::InvalidMethodArn) => {}
    }
});
