//! One request through the emulated API Gateway: route, TOKEN authorizer (with its cache), the
//! function through the Lambda proxy integration, or a gateway response when one of them fails.

use std::fmt::Display;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use serde_json::json;

use crate::authorizer::{Verdict, VerdictCache};
use crate::context::Context;
use crate::lambda::{InvokeError, LambdaClient};
use crate::proxy::{self, Authorized};
use crate::responses::{self, GatewayError};
use crate::router::{self, Target};
use crate::spec::ApiSpec;

/// The emulated API: its spec, the Lambda endpoint and the authorizers' cache.
#[derive(Debug)]
pub struct Gateway {
    spec: ApiSpec,
    lambda: LambdaClient,
    cache: VerdictCache,
}

impl Gateway {
    pub fn new(spec: ApiSpec, lambda: LambdaClient) -> Self {
        Self {
            spec,
            lambda,
            cache: VerdictCache::default(),
        }
    }

    /// Handles one request from `source_ip` (or answers it with the gateway response for
    /// `refusal`), and logs it: method, path, status, time, never a header value.
    pub async fn handle(
        &self,
        request: Request<Bytes>,
        source_ip: IpAddr,
        refusal: Option<GatewayError>,
    ) -> Response<Bytes> {
        let started = Instant::now();
        let path = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
        let mut context = Context {
            spec: &self.spec,
            request: &request,
            source_ip,
            request_id: uuid::Uuid::new_v4().to_string(),
            path: path.into_owned(),
            resource: None,
            path_parameters: Vec::new(),
            principal_id: None,
        };
        let result = match refusal {
            Some(error) => Err(error),
            None => self.route(&mut context).await,
        };
        let (mut response, outcome) = match result {
            Ok(response) => (response, "integration"),
            Err(error) => (responses::error_response(error, &context), error.response_type()),
        };
        if let Ok(id) = HeaderValue::try_from(&context.request_id) {
            response.headers_mut().insert("x-amzn-requestid", id);
        }
        tracing::info!(
            method = %request.method(),
            path = %context.path,
            resource = context.resource.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            outcome,
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    async fn route(&self, context: &mut Context<'_>) -> Result<Response<Bytes>, GatewayError> {
        let found = router::find(&self.spec, context.request.method().as_str(), &context.path);
        let found = found.ok_or(GatewayError::MissingAuthenticationToken)?;
        context.resource = Some(found.resource.to_owned());
        context.path_parameters = found.path_parameters;
        let route = match found.target.ok_or(GatewayError::MissingAuthenticationToken)? {
            Target::Route(route) => route,
            Target::Preflight(methods) => {
                if let Some(name) = &self.spec.preflight_authorizer {
                    self.authorize(name, context).await?;
                }
                return Ok(responses::preflight(&self.spec, &methods));
            }
        };
        let authorized = match &route.authorizer {
            Some(name) => Some(self.authorize(name, context).await?),
            None => None,
        };
        let event = proxy::event(context, authorized.as_ref()).map_err(|error| {
            tracing::warn!(%error, "the request does not make a Lambda proxy event");
            GatewayError::BadGateway
        })?;
        let output = self.lambda.invoke(&route.function, &event).await;
        let output = output.map_err(|error| {
            tracing::warn!(function = %route.function, %error, "the integration failed");
            match error {
                InvokeError::Function { .. } => GatewayError::BadGateway,
                InvokeError::Timeout(_) => GatewayError::IntegrationTimeout,
                InvokeError::Endpoint(_) => GatewayError::IntegrationFailure,
            }
        })?;
        proxy::read_response(&output).map_err(|error| {
            tracing::warn!(function = %route.function, %error, "malformed Lambda proxy response");
            GatewayError::BadGateway
        })
    }

    /// Runs the named TOKEN authorizer (or reuses its cached verdict); the verdict and the
    /// authorizer's latency in milliseconds when it allows this method.
    async fn authorize(&self, name: &str, context: &mut Context<'_>) -> Result<Authorized, GatewayError> {
        let authorizer = self.spec.authorizers.get(name);
        let authorizer = authorizer.ok_or(GatewayError::AuthorizerConfiguration)?;
        let identity = context.header(&authorizer.header).filter(|v| !v.is_empty());
        let identity = identity.ok_or(GatewayError::Unauthorized)?.to_owned();
        if let Some(expression) = &authorizer.validation
            && !expression.is_match(&identity)
        {
            return Err(GatewayError::Unauthorized);
        }
        let spec = &self.spec;
        let (region, account, api, stage) = (&spec.region, &spec.account_id, &spec.api_id, &spec.stage);
        let path = context.path.trim_start_matches('/');
        let method_arn = format!(
            "arn:aws:execute-api:{region}:{account}:{api}/{stage}/{}/{path}",
            context.request.method()
        );
        let (verdict, latency) = match self.cache.get(name, &identity) {
            Some(verdict) => (verdict, 0),
            None => {
                let started = Instant::now();
                let verdict = self.call_authorizer(&authorizer.function, &identity, &method_arn);
                let verdict = Arc::new(verdict.await?);
                self.cache.put(name, &identity, verdict.clone(), authorizer.ttl);
                (verdict, started.elapsed().as_millis() as u64)
            }
        };
        context.principal_id = Some(verdict.principal_id.clone());
        verdict.decide(&method_arn)?;
        Ok((verdict, latency))
    }

    /// The TOKEN authorizer `function`'s verdict on `token` for `arn`.
    async fn call_authorizer(&self, function: &str, token: &str, arn: &str) -> Result<Verdict, GatewayError> {
        let event = json!({"type": "TOKEN", "authorizationToken": token, "methodArn": arn});
        let failed = |error: &dyn Display| {
            tracing::warn!(authorizer = %function, %error, "the authorizer failed");
            GatewayError::AuthorizerConfiguration
        };
        match self.lambda.invoke(function, &event).await {
            Ok(output) => Verdict::parse(&output).map_err(|e| failed(&e)),
            Err(InvokeError::Function { message, .. }) if message == "Unauthorized" => {
                Err(GatewayError::Unauthorized)
            }
            Err(error) => Err(failed(&error)),
        }
    }
}
