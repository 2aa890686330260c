//! The API Gateway TOKEN authorizer: verifies `Authorization: Bearer <jwt>` and answers an
//! Allow policy for the whole stage, or fails with exactly `Unauthorized` (API Gateway's 401).
//!
//! The policy covers `<api>/<stage>/*/*` because API Gateway caches it per token and reuses it
//! on every route; one naming only `methodArn` would deny the other routes for the cache TTL.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use shared::Issuer;
use shared::config::Env;
use shared::keys::public_keys;
use shared::{TokenSettings, TokenVerifier, bearer_token};

/// The verifier and the configured issuer, built once at cold start.
pub struct App {
    pub verifier: TokenVerifier,
    /// `JWT_ISSUER`, or the stage each request comes through (`AWS_REGION`).
    pub issuer: Issuer,
}

impl App {
    pub fn from_env() -> Result<Self, lambda_runtime::Error> {
        let settings = TokenSettings::from_env()?;
        Ok(Self {
            verifier: TokenVerifier::new(&settings, public_keys(&Env)?),
            issuer: Issuer::from_source(&settings, &Env)?,
        })
    }
}

/// Why no policy was returned. The message is what API Gateway reads.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizerError {
    /// Missing, malformed, expired or otherwise invalid token: API Gateway answers 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// The event's `methodArn` is not an execute-api ARN: a gateway misconfiguration (500).
    #[error("methodArn is not an execute-api method ARN")]
    InvalidMethodArn,
}

impl From<AuthorizerError> for Diagnostic {
    fn from(err: AuthorizerError) -> Self {
        let error_type = match err {
            AuthorizerError::Unauthorized => "Unauthorized",
            AuthorizerError::InvalidMethodArn => "InvalidMethodArn",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// Handed to the backend in `requestContext.authorizer` (API Gateway writes every value out as
/// a string). Flat scalars only: API Gateway answers 500 to a nested value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    /// The user id, as `principalId`.
    pub sub: String,
    pub username: String,
    /// The token's expiry (unix seconds): API Gateway reuses a cached Allow until
    /// `ReauthorizeEvery` ends, so the backend refuses the verdict after this time.
    pub exp: u64,
    /// The token's session epoch: the backend refuses it once the user's epoch has moved on
    /// (log out everywhere, password change), which this stateless authorizer cannot know.
    pub epoch: u64,
    /// The token's session: the backend refuses it once the session has ended (logout, reuse
    /// detected), which this stateless authorizer cannot know either.
    pub sid: String,
}

/// The authorizer's answer, in the shape API Gateway reads.
pub type AuthorizerResponse = ApiGatewayCustomAuthorizerResponse<AuthorizerContext>;

/// The Lambda handler.
pub async fn handle(
    app: &App,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequest>,
) -> Result<AuthorizerResponse, AuthorizerError> {
    authorize(app, &event.payload)
}

/// Decides one TOKEN event.
pub fn authorize(
    app: &App,
    event: &ApiGatewayCustomAuthorizerRequest,
) -> Result<AuthorizerResponse, AuthorizerError> {
    let token = event
        .authorization_token
        .as_deref()
        .and_then(bearer_token)
        .ok_or(AuthorizerError::Unauthorized)?;
    let stage = event
        .method_arn
        .as_deref()
        .and_then(StageArn::parse)
        .ok_or_else(|| {
            tracing::error!(method_arn = ?event.method_arn, "methodArn is not an execute-api method ARN");
            AuthorizerError::InvalidMethodArn
        })?;
    let issuer = app.issuer.of_stage(stage.api, stage.stage);
    let claims = app.verifier.verify_access(token, &issuer).map_err(|reason| {
        tracing::info!(%reason, "token rejected");
        AuthorizerError::Unauthorized
    })?;
    Ok(allow(stage.resource(), claims))
}

/// An Allow of `execute-api:Invoke` on `resource` for the token's subject.
fn allow(resource: String, claims: shared::Claims) -> AuthorizerResponse {
    let shared::Claims {
        sub,
        username,
        exp,
        epoch,
        sid,
        ..
    } = claims;
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![resource];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".into());
    policy.statement = vec![statement];
    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(sub.clone());
    response.policy_document = policy;
    response.context = AuthorizerContext {
        sub,
        username,
        exp,
        epoch,
        sid,
    };
    response
}

/// The stage of an `arn:<partition>:execute-api:<region>:<account>:<api>/<stage>/<verb>/<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageArn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    api: &'a str,
    stage: &'a str,
}

impl<'a> StageArn<'a> {
    pub fn parse(method_arn: &'a str) -> Option<Self> {
        let parts: Vec<&str> = method_arn.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return None;
        };
        if arn != "arn"
            || service != "execute-api"
            || [partition, region, account].iter().any(|p| p.is_empty())
        {
            return None;
        }
        let mut path = resource.split('/');
        let (Some(api), Some(stage)) = (path.next(), path.next()) else {
            return None;
        };
        if api.is_empty() || stage.is_empty() {
            return None;
        }
        Some(Self {
            partition,
            region,
            account,
            api,
            stage,
        })
    }

    /// `arn:<partition>:execute-api:<region>:<account>:<api>/<stage>/*/*`: every route.
    pub fn resource(&self) -> String {
        let Self {
            partition,
            region,
            account,
            api,
            stage,
        } = self;
        format!("arn:{partition}:execute-api:{region}:{account}:{api}/{stage}/*/*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(arn: &str) -> Option<String> {
        StageArn::parse(arn).map(|stage| stage.resource())
    }

    #[test]
    fn stage_arn_replaces_verb_and_path_with_wildcards() {
        assert_eq!(
            resource("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/protected").as_deref(),
            Some("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*")
        );
        assert_eq!(
            resource("arn:aws-cn:execute-api:cn-north-1:123456789012:abc/dev/POST/a/b/c").as_deref(),
            Some("arn:aws-cn:execute-api:cn-north-1:123456789012:abc/dev/*/*")
        );
    }

    #[test]
    fn without_jwt_issuer_the_issuer_is_the_url_of_the_arns_stage() {
        let stage =
            StageArn::parse("arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/GET/protected").unwrap();
        let issuer = Issuer::Stage {
            region: "eu-west-1".into(),
        };
        assert_eq!(
            issuer.of_stage(stage.api, stage.stage),
            "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
        );
    }

    #[test]
    fn malformed_method_arns_are_refused() {
        for bad in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function:x",
            "arn:aws:execute-api:us-east-1:123456789012:abc123",
            "arn:aws:execute-api:us-east-1::abc123/prod/GET/x",
            "not an arn",
        ] {
            assert_eq!(resource(bad), None, "{bad}");
        }
    }

    #[test]
    fn unauthorized_diagnostic_message_is_exactly_unauthorized() {
        let d = Diagnostic::from(AuthorizerError::Unauthorized);
        assert_eq!(d.error_message, "Unauthorized");
    }
}
