//! What the local API serves, read from the template: the chosen API's stage, routes (from the
//! functions' `Api` events), TOKEN authorizers, `Cors`, `GatewayResponses` and
//! `BinaryMediaTypes`, with each function named by its cargo-lambda binary.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use regex_lite::Regex;
use serde_json::{Map, Value};

use crate::template::{self, Deployment, Intrinsics, TemplateError, scalar_string};

/// How to read a template.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `AWS::Serverless::Api` logical id; needed only when the template has several APIs.
    pub api: Option<String>,
    /// Parameter values (`--parameter Name=Value`), over the parameters' `Default`s.
    pub parameters: HashMap<String, String>,
    /// Function logical id → cargo-lambda binary, over `Metadata.BuildProperties.Binary`.
    pub functions: HashMap<String, String>,
    pub deployment: Deployment,
    /// The API id in ARNs and events (a deployed one is 10 lowercase letters and digits).
    pub api_id: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api: None,
            parameters: HashMap::new(),
            functions: HashMap::new(),
            deployment: Deployment {
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
                stack_name: "local".into(),
            },
            api_id: "localapi01".into(),
        }
    }
}

/// One API as API Gateway would run it.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    /// The API's logical id (`ServerlessRestApi` for SAM's implicit API).
    pub logical_id: String,
    pub api_id: String,
    pub stage: String,
    pub region: String,
    pub account_id: String,
    pub routes: Vec<Route>,
    pub authorizers: HashMap<String, TokenAuthorizer>,
    pub cors: Option<Cors>,
    /// The authorizer in front of the preflights that `Cors` generates, if any.
    pub preflight_authorizer: Option<String>,
    pub gateway_responses: HashMap<String, GatewayResponse>,
    pub binary_media_types: Vec<String>,
}

/// One method on one resource.
#[derive(Debug, Clone)]
pub struct Route {
    /// The resource path, as in the template (`/items/{id}`).
    pub resource: String,
    pub segments: Vec<Segment>,
    /// Upper case, or `ANY`.
    pub method: String,
    /// The cargo-lambda function name.
    pub function: String,
    /// The authorizer's name, `None` for an open route.
    pub authorizer: Option<String>,
}

/// A resource path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Variable(String),
    /// `{name+}`: the rest of the path, at least one segment.
    Greedy(String),
}

/// A Lambda TOKEN authorizer.
#[derive(Debug, Clone)]
pub struct TokenAuthorizer {
    pub name: String,
    /// The cargo-lambda function name.
    pub function: String,
    /// The identity source header (`Identity.Header`, default `Authorization`).
    pub header: String,
    /// `Identity.ValidationExpression`, matched against the whole header value.
    pub validation: Option<Regex>,
    /// `Identity.ReauthorizeEvery` (default 300 s); zero disables the cache.
    pub ttl: Duration,
}

/// SAM's `Cors` property: what its generated `OPTIONS` methods answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_origin: String,
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
    pub max_age: Option<String>,
    pub allow_credentials: bool,
}

/// One entry of `GatewayResponses`.
#[derive(Debug, Clone, Default)]
pub struct GatewayResponse {
    pub status: Option<u16>,
    pub headers: Vec<(String, HeaderValue)>,
    /// Content type → body template.
    pub templates: Vec<(String, String)>,
}

/// Where a gateway response header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// `'text'`
    Static(String),
    /// `method.request.header.<name>`
    RequestHeader(String),
    /// `method.request.querystring.<name>`
    QueryString(String),
    /// `method.request.path.<name>`
    PathParameter(String),
}

/// Why a template cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> SpecError {
    SpecError::Invalid(message.into())
}

const IMPLICIT_API: &str = "ServerlessRestApi";

/// Reads the template text into the API to serve.
pub fn load(text: &str, options: &Options) -> Result<ApiSpec, SpecError> {
    let template = template::parse(text)?;
    let intrinsics = Intrinsics::new(&template, &options.parameters, &options.deployment)?;
    let reader = Reader {
        template: &template,
        intrinsics: &intrinsics,
        options,
    };
    reader.api()
}

struct Reader<'a> {
    template: &'a Value,
    intrinsics: &'a Intrinsics,
    options: &'a Options,
}

/// An `Api` event of a function.
struct ApiEvent {
    api: String,
    function: String,
    name: String,
    properties: Map<String, Value>,
}

impl Reader<'_> {
    fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.template
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|resources| resources.iter())
    }

    fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.template.get("Resources")?.get(logical_id)
    }

    fn globals(&self, kind: &str) -> Map<String, Value> {
        self.template
            .get("Globals")
            .and_then(|g| g.get(kind))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    fn resolve(&self, value: &Value, what: &str) -> Result<Value, SpecError> {
        self.intrinsics
            .resolve(value)
            .map_err(|e| invalid(format!("{what}: {e}")))
    }

    fn resolve_string(&self, value: &Value, what: &str) -> Result<String, SpecError> {
        self.intrinsics
            .resolve_string(value)
            .map_err(|e| invalid(format!("{what}: {e}")))
    }

    /// Every `Type: Api` event of every function.
    fn api_events(&self) -> Result<Vec<ApiEvent>, SpecError> {
        let mut events = Vec::new();
        for (logical_id, resource) in self.resources() {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let Some(function_events) = resource.pointer("/Properties/Events").and_then(Value::as_object)
            else {
                continue;
            };
            for (name, event) in function_events {
                if event.get("Type").and_then(Value::as_str) != Some("Api") {
                    continue;
                }
                let properties = event
                    .get("Properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let api = match properties.get("RestApiId") {
                    None => IMPLICIT_API.to_owned(),
                    Some(Value::Object(o)) if o.contains_key("Ref") => o["Ref"]
                        .as_str()
                        .ok_or_else(|| {
                            invalid(format!("{logical_id}.Events.{name}.RestApiId: Ref of a non-name"))
                        })?
                        .to_owned(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => {
                        return Err(invalid(format!(
                            "{logical_id}.Events.{name}.RestApiId: expected !Ref <Api>, got {other}"
                        )));
                    }
                };
                events.push(ApiEvent {
                    api,
                    function: logical_id.clone(),
                    name: name.clone(),
                    properties,
                });
            }
        }
        Ok(events)
    }

    /// The cargo-lambda function name of a function resource.
    fn binary(&self, logical_id: &str) -> Result<String, SpecError> {
        if let Some(binary) = self.options.functions.get(logical_id) {
            return Ok(binary.clone());
        }
        let resource = self
            .resource(logical_id)
            .ok_or_else(|| invalid(format!("no resource named {logical_id}")))?;
        resource
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                invalid(format!(
                    "{logical_id} has no Metadata.BuildProperties.Binary: pass --function {logical_id}=<binary>"
                ))
            })
    }

    fn api(&self) -> Result<ApiSpec, SpecError> {
        let events = self.api_events()?;
        let mut apis: BTreeSet<String> = events.iter().map(|e| e.api.clone()).collect();
        for (logical_id, resource) in self.resources() {
            if resource.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Api") {
                apis.insert(logical_id.clone());
            }
        }
        let chosen = match &self.options.api {
            Some(api) if apis.contains(api) => api.clone(),
            Some(api) => {
                return Err(invalid(format!(
                    "--api {api}: the template has no such API ({apis:?})"
                )));
            }
            None if apis.len() == 1 => apis.iter().next().cloned().unwrap_or_default(),
            None if apis.is_empty() => return Err(invalid("the template has no API and no Api event")),
            None => {
                return Err(invalid(format!(
                    "the template has several APIs: choose one with --api ({apis:?})"
                )));
            }
        };

        let mut properties = self.globals("Api");
        let explicit = chosen != IMPLICIT_API || self.resource(&chosen).is_some();
        if explicit {
            let resource = self
                .resource(&chosen)
                .ok_or_else(|| invalid(format!("events refer to {chosen}, which is not a resource")))?;
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Api") {
                return Err(invalid(format!(
                    "{chosen} is not an AWS::Serverless::Api (only SAM APIs are read)"
                )));
            }
            if let Some(own) = resource.get("Properties").and_then(Value::as_object) {
                properties.extend(own.clone());
            }
        }
        let stage = match properties.get("StageName") {
            Some(stage) => self.resolve_string(stage, &format!("{chosen}.StageName"))?,
            None if !explicit => "Prod".to_owned(),
            None => return Err(invalid(format!("{chosen} has no StageName"))),
        };

        let auth = properties
            .get("Auth")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let default_authorizer = match auth.get("DefaultAuthorizer") {
            None => None,
            Some(name) => Some(self.resolve_string(name, &format!("{chosen}.Auth.DefaultAuthorizer"))?),
        };
        let add_default_to_preflight = match auth.get("AddDefaultAuthorizerToCorsPreflight") {
            None => true,
            Some(v) => self.resolve(v, "AddDefaultAuthorizerToCorsPreflight")? != Value::Bool(false),
        };
        let declared = auth
            .get("Authorizers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();

        let mut routes = Vec::new();
        let mut used = BTreeSet::new();
        for event in events.iter().filter(|e| e.api == chosen) {
            let what = format!("{}.Events.{}", event.function, event.name);
            let path = self.resolve_string(
                event
                    .properties
                    .get("Path")
                    .ok_or_else(|| invalid(format!("{what} has no Path")))?,
                &format!("{what}.Path"),
            )?;
            let method = self
                .resolve_string(
                    event
                        .properties
                        .get("Method")
                        .ok_or_else(|| invalid(format!("{what} has no Method")))?,
                    &format!("{what}.Method"),
                )?
                .to_ascii_uppercase();
            let method = if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                "ANY".into()
            } else {
                method
            };
            let explicit_authorizer = match event.properties.get("Auth").and_then(|a| a.get("Authorizer")) {
                Some(name) => Some(self.resolve_string(name, &format!("{what}.Auth.Authorizer"))?),
                None => None,
            };
            let authorizer = match explicit_authorizer {
                Some(name) if name == "NONE" => None,
                Some(name) => Some(name),
                None if method == "OPTIONS" && !add_default_to_preflight => None,
                None => default_authorizer.clone(),
            };
            if let Some(name) = &authorizer {
                used.insert(name.clone());
            }
            routes.push(Route {
                segments: parse_path(&path).map_err(|e| invalid(format!("{what}.Path: {e}")))?,
                resource: path,
                method,
                function: self.binary(&event.function)?,
                authorizer,
            });
        }
        let mut seen = BTreeSet::new();
        for route in &routes {
            if !seen.insert((route.resource.clone(), route.method.clone())) {
                return Err(invalid(format!(
                    "{} {} is defined twice",
                    route.method, route.resource
                )));
            }
        }

        let cors = match properties.get("Cors") {
            None => None,
            Some(cors) => Some(self.cors(cors, &chosen)?),
        };
        let preflight_authorizer = match (&cors, add_default_to_preflight) {
            (Some(_), true) => default_authorizer.clone(),
            _ => None,
        };
        if let Some(name) = &preflight_authorizer {
            used.insert(name.clone());
        }

        let mut authorizers = HashMap::new();
        for name in used {
            let definition = declared.get(&name).ok_or_else(|| {
                if name == "AWS_IAM" {
                    invalid("AWS_IAM authorization is not emulated")
                } else {
                    invalid(format!("{chosen}.Auth.Authorizers has no {name}"))
                }
            })?;
            authorizers.insert(name.clone(), self.authorizer(&name, definition)?);
        }

        let gateway_responses = match properties.get("GatewayResponses") {
            None => HashMap::new(),
            Some(responses) => self.gateway_responses(responses, &chosen)?,
        };
        let binary_media_types = match properties.get("BinaryMediaTypes") {
            None => Vec::new(),
            Some(types) => match self.resolve(types, &format!("{chosen}.BinaryMediaTypes"))? {
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| t.replace("~1", "/").to_ascii_lowercase())
                    .collect(),
                other => {
                    return Err(invalid(format!(
                        "{chosen}.BinaryMediaTypes is not a list: {other}"
                    )));
                }
            },
        };

        Ok(ApiSpec {
            logical_id: chosen,
            api_id: self.options.api_id.clone(),
            stage,
            region: self.options.deployment.region.clone(),
            account_id: self.options.deployment.account_id.clone(),
            routes,
            authorizers,
            cors,
            preflight_authorizer,
            gateway_responses,
            binary_media_types,
        })
    }

    fn authorizer(&self, name: &str, definition: &Value) -> Result<TokenAuthorizer, SpecError> {
        let what = format!("authorizer {name}");
        if definition.get("UserPoolArn").is_some() {
            return Err(invalid(format!("{what}: Cognito authorizers are not emulated")));
        }
        let payload = match definition.get("FunctionPayloadType") {
            Some(v) => self.resolve_string(v, &format!("{what}.FunctionPayloadType"))?,
            None => "TOKEN".into(),
        };
        if payload != "TOKEN" {
            return Err(invalid(format!(
                "{what}: {payload} authorizers are not emulated, only TOKEN ones"
            )));
        }
        let arn = definition
            .get("FunctionArn")
            .ok_or_else(|| invalid(format!("{what} has no FunctionArn")))?;
        let function = self.function_of_arn(arn, &what)?;
        let identity = definition.get("Identity").cloned().unwrap_or(Value::Null);
        let header = match identity.get("Header") {
            Some(v) => self.resolve_string(v, &format!("{what}.Identity.Header"))?,
            None => "Authorization".into(),
        };
        let validation = match identity.get("ValidationExpression") {
            None => None,
            Some(v) => {
                let expression = self.resolve_string(v, &format!("{what}.Identity.ValidationExpression"))?;
                // API Gateway matches the whole value, as Java's Pattern.matches does.
                Some(
                    Regex::new(&format!("^(?:{expression})$"))
                        .map_err(|e| invalid(format!("{what}.Identity.ValidationExpression: {e}")))?,
                )
            }
        };
        let ttl = match identity.get("ReauthorizeEvery") {
            None => 300,
            Some(v) => self
                .resolve_string(v, &format!("{what}.Identity.ReauthorizeEvery"))?
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 3600)
                .ok_or_else(|| invalid(format!("{what}.Identity.ReauthorizeEvery: 0 to 3600 seconds")))?,
        };
        Ok(TokenAuthorizer {
            name: name.into(),
            function,
            header,
            validation,
            ttl: Duration::from_secs(ttl),
        })
    }

    /// The function an authorizer's `FunctionArn` names: `!GetAtt Fn.Arn`, `!Ref Fn`, a
    /// `!Sub` with `${Fn.Arn}`, or a literal ARN (its function name is used as is).
    fn function_of_arn(&self, arn: &Value, what: &str) -> Result<String, SpecError> {
        let logical_id = match arn {
            Value::Object(o) if o.contains_key("Fn::GetAtt") => {
                o["Fn::GetAtt"].get(0).and_then(Value::as_str).map(str::to_owned)
            }
            Value::Object(o) if o.contains_key("Ref") => o["Ref"].as_str().map(str::to_owned),
            Value::Object(o) if o.contains_key("Fn::Sub") => {
                // The first ${Fn.Arn} or ${Fn} naming a function resource.
                let text = o["Fn::Sub"].as_str().unwrap_or_default();
                text.split("${")
                    .skip(1)
                    .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
                    .map(|name| name.strip_suffix(".Arn").unwrap_or(name))
                    .find(|id| {
                        self.resource(id)
                            .and_then(|r| r.get("Type"))
                            .and_then(Value::as_str)
                            == Some("AWS::Serverless::Function")
                    })
                    .map(str::to_owned)
            }
            Value::String(literal) => {
                let name = literal
                    .rsplit_once(":function:")
                    .map(|(_, n)| n)
                    .unwrap_or(literal);
                let name = name.split(':').next().unwrap_or(name);
                return Ok(self
                    .options
                    .functions
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_owned()));
            }
            _ => None,
        };
        let logical_id =
            logical_id.ok_or_else(|| invalid(format!("{what}.FunctionArn: cannot tell the function")))?;
        self.binary(&logical_id)
    }

    fn cors(&self, cors: &Value, api: &str) -> Result<Cors, SpecError> {
        let what = format!("{api}.Cors");
        let cors = self.resolve(cors, &what)?;
        let quoted = |v: Option<&Value>, field: &str| -> Result<Option<String>, SpecError> {
            match v {
                None => Ok(None),
                Some(v) => {
                    let text =
                        scalar_string(v).ok_or_else(|| invalid(format!("{what}.{field}: not a string")))?;
                    unquote(&text).map(|s| Some(s.to_owned())).ok_or_else(|| {
                        invalid(format!("{what}.{field}: a value in single quotes, got {text}"))
                    })
                }
            }
        };
        Ok(match &cors {
            Value::String(_) => Cors {
                allow_origin: quoted(Some(&cors), "")?.unwrap_or_default(),
                allow_methods: None,
                allow_headers: None,
                max_age: None,
                allow_credentials: false,
            },
            Value::Object(o) => Cors {
                allow_origin: quoted(o.get("AllowOrigin"), "AllowOrigin")?
                    .ok_or_else(|| invalid(format!("{what} has no AllowOrigin")))?,
                allow_methods: quoted(o.get("AllowMethods"), "AllowMethods")?,
                allow_headers: quoted(o.get("AllowHeaders"), "AllowHeaders")?,
                max_age: quoted(o.get("MaxAge"), "MaxAge")?,
                allow_credentials: o.get("AllowCredentials") == Some(&Value::Bool(true)),
            },
            other => {
                return Err(invalid(format!(
                    "{what}: expected a string or a map, got {other}"
                )));
            }
        })
    }

    fn gateway_responses(
        &self,
        responses: &Value,
        api: &str,
    ) -> Result<HashMap<String, GatewayResponse>, SpecError> {
        let responses = responses
            .as_object()
            .ok_or_else(|| invalid(format!("{api}.GatewayResponses is not a map")))?;
        let mut out = HashMap::new();
        for (kind, definition) in responses {
            let what = format!("{api}.GatewayResponses.{kind}");
            let status = match definition.get("StatusCode") {
                None => None,
                Some(v) => Some(
                    self.resolve_string(v, &format!("{what}.StatusCode"))?
                        .parse::<u16>()
                        .ok()
                        .filter(|s| (100..600).contains(s))
                        .ok_or_else(|| invalid(format!("{what}.StatusCode is not an HTTP status")))?,
                ),
            };
            let mut headers = Vec::new();
            if let Some(map) = definition
                .pointer("/ResponseParameters/Headers")
                .and_then(Value::as_object)
            {
                for (name, value) in map {
                    let value =
                        self.resolve_string(value, &format!("{what}.ResponseParameters.Headers.{name}"))?;
                    headers.push((
                        name.clone(),
                        header_value(&value).map_err(|e| invalid(format!("{what}: {name}: {e}")))?,
                    ));
                }
            }
            let mut templates = Vec::new();
            if let Some(map) = definition.get("ResponseTemplates").and_then(Value::as_object) {
                for (content_type, body) in map {
                    templates.push((
                        content_type.clone(),
                        self.resolve_string(body, &format!("{what}.ResponseTemplates"))?,
                    ));
                }
            }
            out.insert(
                kind.clone(),
                GatewayResponse {
                    status,
                    headers,
                    templates,
                },
            );
        }
        Ok(out)
    }
}

fn unquote(text: &str) -> Option<&str> {
    text.strip_prefix('\'').and_then(|t| t.strip_suffix('\''))
}

/// A gateway response header's mapping expression.
fn header_value(expression: &str) -> Result<HeaderValue, String> {
    if let Some(text) = unquote(expression) {
        return Ok(HeaderValue::Static(text.to_owned()));
    }
    type Source = (&'static str, fn(String) -> HeaderValue);
    let sources: [Source; 3] = [
        ("method.request.header.", HeaderValue::RequestHeader),
        ("method.request.querystring.", HeaderValue::QueryString),
        ("method.request.path.", HeaderValue::PathParameter),
    ];
    for (prefix, make) in sources {
        if let Some(name) = expression.strip_prefix(prefix) {
            return Ok(make(name.to_owned()));
        }
    }
    Err(format!(
        "{expression:?}: only 'static', method.request.header.*, .querystring.* and .path.* are emulated"
    ))
}

/// Splits a resource path into segments.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let trimmed = path
        .strip_prefix('/')
        .ok_or_else(|| format!("{path:?} does not start with /"))?;
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if let Some(name) = name.strip_suffix('+') {
                    if i != last {
                        return Err(format!("{path:?}: a greedy {{{name}+}} must be the last segment"));
                    }
                    return Ok(Segment::Greedy(name.to_owned()));
                }
                Ok(Segment::Variable(name.to_owned()))
            } else if part.is_empty() {
                Err(format!("{path:?} has an empty segment"))
            } else {
                Ok(Segment::Literal((*part).to_owned()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn resource_paths_split_into_literal_variable_and_greedy_segments() {
        assert_eq!(parse_path("/").unwrap(), vec![]);
        assert_eq!(
            parse_path("/items/{id}/{proxy+}").unwrap(),
            vec![
                Segment::Literal("items".into()),
                Segment::Variable("id".into()),
                Segment::Greedy("proxy".into())
            ]
        );
        assert!(parse_path("/{proxy+}/x").is_err());
        assert!(parse_path("items").is_err());
    }

    #[test]
    fn header_mapping_expressions() {
        assert_eq!(header_value("'*'").unwrap(), HeaderValue::Static("*".into()));
        assert_eq!(
            header_value("method.request.header.Origin").unwrap(),
            HeaderValue::RequestHeader("Origin".into())
        );
        assert!(header_value("stageVariables.x").is_err());
    }
}
