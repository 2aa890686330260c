//! `GET /.well-known/jwks.json` (the public keys tokens are signed with, RFC 7517) and
//! `GET /.well-known/openid-configuration` (the issuer and where its keys are): public,
//! cacheable documents built from the same configuration the verifiers read.
//!
//! The key set is `JWT_PUBLIC_KEYS`, parsed and validated at cold start and published as
//! re-serialized from the parsed keys, so only `kty`, `crv`, `x`, `y`, `kid`, `alg` and `use`
//! ever leave, whatever else the variable holds. The issuer is `JWT_ISSUER`, or when unset the
//! URL of the API stage the request came through, as the token function and the verifiers
//! compute it: the discovery document's `issuer` is the `iss` of the tokens.
//!
//! The discovery document holds `issuer` and `jwks_uri` and nothing else. This service is not
//! an OpenID provider (no ID tokens, no authorization endpoint) nor an OAuth authorization
//! server in RFC 8414's sense (`POST /token` takes JSON credentials, not a `grant_type` form),
//! so the members OIDC Discovery and RFC 8414 require for those (`authorization_endpoint`,
//! `response_types_supported`, ...) would be false claims. The two it has mean what both
//! specifications say they mean, and they are what access-token verifiers read: API Gateway's
//! JWT authorizers and discovery-driven libraries check `iss` against `issuer` and fetch the
//! keys from `jwks_uri`.

use std::convert::Infallible;

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use shared::Issuer;
use shared::config::{Env, Source};
use shared::error::ApiError;
use shared::http::{ErrorBody, Responder, Route, issuer_for, json};
use shared::keys::public_keys;
use shared::{CorsConfig, PublicKeySet, TokenSettings};

/// The key set's path, under the issuer.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The discovery document's path, under the issuer.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The two documents' routes: a 500 only when the discovery document's issuer cannot be
/// resolved (a misconfiguration).
pub static ROUTES: [Route; 2] = [
    Route {
        method: Method::GET,
        path: JWKS_PATH,
        success: StatusCode::OK,
        errors: &[StatusCode::INTERNAL_SERVER_ERROR],
    },
    Route {
        method: Method::GET,
        path: DISCOVERY_PATH,
        success: StatusCode::OK,
        errors: &[StatusCode::INTERNAL_SERVER_ERROR],
    },
];

/// How long clients and shared caches may keep either document: `Cache-Control: public,
/// max-age=300`.
///
/// The rotation runbook depends on it: after publishing the next key, wait at least this long
/// (plus the TTL of any CDN in front of the API) before signing with it, so that every cached
/// copy of the key set already holds the key a new token names. Raising it lengthens every
/// rotation by as much.
pub const MAX_AGE_SECONDS: u32 = 300;

/// The discovery document (`/.well-known/openid-configuration`); see the module doc for why it
/// holds only these members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The `iss` of every token: `JWT_ISSUER`, or the API stage's URL.
    pub issuer: String,
    /// `<issuer>/.well-known/jwks.json`.
    pub jwks_uri: String,
}

impl Discovery {
    pub fn for_issuer(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
        }
    }
}

/// The discovery document's body: made once when `JWT_ISSUER` fixes the issuer, else per
/// request, under the URL of its stage.
#[derive(Debug)]
enum DiscoveryBody {
    Fixed(String),
    PerStage(Issuer),
}

/// The documents, built once at cold start.
#[derive(Debug)]
pub struct App {
    jwks: String,
    discovery: DiscoveryBody,
    /// The success responses' headers: JSON, public, cacheable.
    headers: HeaderMap,
    /// CORS for any origin (these are public keys; never with credentials), and the error shape.
    responder: Responder,
}

impl App {
    /// Reads `JWT_PUBLIC_KEYS`, `JWT_ISSUER` and, without an issuer, `AWS_REGION`; fails naming
    /// a missing or bad variable.
    pub fn from_env() -> Result<Self, lambda_http::Error> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, lambda_http::Error> {
        let keys = public_keys(src)?;
        let settings = TokenSettings::from_source(src)?;
        Self::new(&keys, Issuer::from_source(&settings, src)?)
    }

    /// The documents for `keys` under `issuer`.
    pub fn new(keys: &PublicKeySet, issuer: Issuer) -> Result<Self, lambda_http::Error> {
        let discovery = match issuer.fixed() {
            Some(fixed) => DiscoveryBody::Fixed(serde_json::to_string(&Discovery::for_issuer(fixed))?),
            None => DiscoveryBody::PerStage(issuer),
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECONDS}"))?,
        );
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        Ok(Self {
            jwks: serde_json::to_string(&keys.jwks())?,
            discovery,
            headers,
            responder: Responder::new(CorsConfig {
                allowed_origins: vec!["*".into()],
            }),
        })
    }

    fn serve(&self, document: Document, req: &Request) -> Result<Response<Body>, ApiError> {
        let body = match (document, &self.discovery) {
            (Document::Jwks, _) => self.jwks.clone(),
            (Document::Discovery, DiscoveryBody::Fixed(body)) => body.clone(),
            (Document::Discovery, DiscoveryBody::PerStage(issuer)) => {
                let issuer = issuer_for(issuer, req)?;
                serde_json::to_string(&Discovery::for_issuer(&issuer))
                    .map_err(|e| ApiError::Internal(e.into()))?
            }
        };
        let mut response = Response::new(Body::Text(body));
        *response.headers_mut() = self.headers.clone();
        Ok(response)
    }
}

/// The two documents, by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Document {
    Jwks,
    Discovery,
}

impl Document {
    fn route(self) -> &'static Route {
        match self {
            Self::Jwks => &ROUTES[0],
            Self::Discovery => &ROUTES[1],
        }
    }

    /// The document `req` asks for. Behind API Gateway the route is the matched resource, which
    /// a custom domain's base path or the stage does not change; elsewhere the path.
    fn of(req: &Request) -> Option<Self> {
        let resource = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(context)) => context.resource_path.as_deref(),
            _ => None,
        };
        let path = resource
            .or_else(|| Some(req.raw_http_path()).filter(|p| !p.is_empty()))
            .unwrap_or_else(|| req.uri().path());
        match path {
            JWKS_PATH => Some(Self::Jwks),
            DISCOVERY_PATH => Some(Self::Discovery),
            _ => None,
        }
    }
}

/// The Lambda handler: `GET` (and CORS preflights) on the two documents; 405 for other methods,
/// 404 for other paths, both as `{"msg": ...}`.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    let Some(document) = Document::of(&req) else {
        let not_found = json(
            StatusCode::NOT_FOUND,
            &ErrorBody {
                msg: "Not found".into(),
            },
        );
        return Ok(app.responder.finish(req.headers(), Ok(not_found)));
    };
    Ok(app
        .responder
        .serve(
            &req,
            document.route(),
            |req| async move { app.serve(document, req) },
        )
        .await)
}
