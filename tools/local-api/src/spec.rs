//! What the local API serves, read from the template: the chosen API's stage, routes (from the
//! functions' `Api` events), TOKEN authorizers, `Cors`, `GatewayResponses` and
//! `BinaryMediaTypes`, with each function named by its cargo-lambda binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use regex_lite::Regex;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::template::{self, Intrinsics, Result, invalid, scalar_string};

/// How to read a template.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `AWS::Serverless::Api` logical id; needed only when the template has several APIs.
    pub api: Option<String>,
    /// Parameter values (`--parameter Name=Value`), over the parameters' `Default`s.
    pub parameters: HashMap<String, String>,
    /// Function logical id → cargo-lambda binary, over `Metadata.BuildProperties.Binary`.
    pub functions: HashMap<String, String>,
    /// The region and account the template is pretended to be deployed in.
    pub region: String,
    pub account_id: String,
    /// The API id in ARNs and events (a deployed one is 10 lowercase letters and digits).
    pub api_id: String,
}

impl Default for Options {
    /// Region `us-east-1`, account `123456789012`, API id `localapi01`.
    fn default() -> Self {
        Self {
            api: None,
            parameters: HashMap::new(),
            functions: HashMap::new(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
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
    /// The headers the preflights that SAM's `Cors` generates answer (with the resource's
    /// methods unless `AllowMethods` is set).
    pub cors: Option<HeaderMap>,
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
    /// The cargo-lambda function name.
    pub function: String,
    /// The identity source header (`Identity.Header`, default `Authorization`).
    pub header: String,
    /// `Identity.ValidationExpression`, matched against the whole header value.
    pub validation: Option<Regex>,
    /// `Identity.ReauthorizeEvery` (default 300 s); zero disables the cache.
    pub ttl: Duration,
}

/// One entry of `GatewayResponses`.
#[derive(Debug, Clone, Default)]
pub struct GatewayResponse {
    pub status: Option<StatusCode>,
    pub headers: Vec<(HeaderName, HeaderSource)>,
    /// Content type → body template.
    pub templates: BTreeMap<String, String>,
}

/// Where a gateway response header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSource {
    /// `'text'`
    Static(HeaderValue),
    /// `method.request.header.<name>`
    RequestHeader(HeaderName),
}

const IMPLICIT_API: &str = "ServerlessRestApi";
const SERVERLESS_API: &str = "AWS::Serverless::Api";
const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";

/// Reads the template text into the API to serve.
pub fn load(text: &str, options: &Options) -> Result<ApiSpec> {
    let template = template::parse(text)?;
    let intrinsics = Intrinsics::new(
        &template,
        &options.parameters,
        &options.region,
        &options.account_id,
    )?;
    Loader {
        template: &template,
        intrinsics,
        options,
    }
    .api()
}

struct Loader<'a> {
    template: &'a Value,
    intrinsics: Intrinsics,
    options: &'a Options,
}

/// `what` and a JSON pointer under it, as a template location: `Api.Cors.AllowOrigin`.
fn at(what: &str, pointer: &str) -> String {
    format!("{what}{}", pointer.replace('/', "."))
}

impl<'a> Loader<'a> {
    fn resource(&self, logical_id: &str, kind: &str) -> Option<&'a Value> {
        let resource = self.template.get("Resources")?.get(logical_id)?;
        (resource["Type"] == kind).then_some(resource)
    }

    /// The value at `pointer` in `from`, its intrinsic functions evaluated; the default if absent.
    fn get<T: DeserializeOwned + Default>(&self, from: &Value, pointer: &str, what: &str) -> Result<T> {
        let Some(found) = from.pointer(pointer) else {
            return Ok(T::default());
        };
        let fail = |e: &dyn Display| invalid(format!("{}: {e}", at(what, pointer)));
        let resolved = self.intrinsics.resolve(found).map_err(|e| fail(&e))?;
        serde_json::from_value(resolved).map_err(|e| fail(&e))
    }

    /// A number or boolean at `pointer`, which CloudFormation may also write as a string.
    fn parse<T: FromStr>(&self, from: &Value, pointer: &str, what: &str) -> Result<Option<T>> {
        let Some(found) = self.get::<Option<Value>>(from, pointer, what)? else {
            return Ok(None);
        };
        let parsed = scalar_string(&found).and_then(|text| text.parse().ok());
        let fail = || invalid(format!("{}: not a valid value: {found}", at(what, pointer)));
        parsed.map(Some).ok_or_else(fail)
    }

    /// The cargo-lambda function name of a function resource.
    fn binary(&self, id: &str) -> Result<String> {
        let pointer = format!("/Resources/{id}/Metadata/BuildProperties/Binary");
        let declared = || self.template.pointer(&pointer)?.as_str().map(str::to_owned);
        let binary = self.options.functions.get(id).cloned().or_else(declared);
        let hint = format!("{id} has no Metadata.BuildProperties.Binary: pass --function {id}=<binary>");
        binary.ok_or_else(|| invalid(hint))
    }

    fn api(&self) -> Result<ApiSpec> {
        // Every function's `Api` events (API, function, location, properties), and the APIs.
        let (mut events, mut apis) = (Vec::new(), BTreeSet::new());
        let resources = self.template.get("Resources").and_then(Value::as_object);
        for (id, resource) in resources.into_iter().flatten() {
            if resource["Type"] == SERVERLESS_API {
                apis.insert(id.clone());
            }
            let declared = resource.pointer("/Properties/Events").and_then(Value::as_object);
            for (name, event) in declared.into_iter().flatten() {
                if resource["Type"] != SERVERLESS_FUNCTION || event["Type"] != "Api" {
                    continue;
                }
                let (location, properties) = (format!("{id}.Events.{name}"), &event["Properties"]);
                let api = match self.get::<Option<Value>>(properties, "/RestApiId", &location)? {
                    None => Value::from(IMPLICIT_API),
                    Some(api) => api.get("Ref").cloned().unwrap_or(api),
                };
                let Value::String(api) = api else {
                    return Err(invalid(format!("{location}.RestApiId is not !Ref <Api>")));
                };
                apis.insert(api.clone());
                events.push((api, id, location, properties));
            }
        }
        let chosen = match (&self.options.api, apis.len()) {
            (Some(api), _) if apis.contains(api) => api.clone(),
            (None, 1) => apis.pop_first().unwrap_or_default(),
            (Some(api), _) => return Err(invalid(format!("--api {api}: no such API in {apis:?}"))),
            (None, 0) => return Err(invalid("the template has no API and no Api event")),
            (None, _) => return Err(invalid(format!("several APIs, choose one with --api: {apis:?}"))),
        };
        let resource = self.resource(&chosen, SERVERLESS_API);
        if resource.is_none() && chosen != IMPLICIT_API {
            return Err(invalid(format!("{chosen} is not an {SERVERLESS_API} resource")));
        }
        let object = |value: Option<&Value>| value.and_then(Value::as_object).cloned().unwrap_or_default();
        let mut properties = object(self.template.pointer("/Globals/Api"));
        properties.extend(object(resource.and_then(|r| r.get("Properties"))));
        let properties = &Value::Object(properties);
        let stage = match self.get(properties, "/StageName", &chosen)? {
            Some(stage) => stage,
            None if resource.is_none() => "Prod".to_owned(),
            None => return Err(invalid(format!("{chosen} has no StageName"))),
        };
        let default_authorizer: Option<String> = self.get(properties, "/Auth/DefaultAuthorizer", &chosen)?;
        let to_preflight = self.parse(properties, "/Auth/AddDefaultAuthorizerToCorsPreflight", &chosen)?;
        let to_preflight = to_preflight.unwrap_or(true);

        let mut routes = Vec::new();
        for (_, function, what, properties) in events.iter().filter(|e| e.0 == chosen) {
            let required = |field: &str| -> Result<String> {
                let value: Option<String> = self.get(properties, &format!("/{field}"), what)?;
                value.ok_or_else(|| invalid(format!("{what} has no {field}")))
            };
            let (resource, method) = (required("Path")?, required("Method")?.to_ascii_uppercase());
            let authorizer = match self.get::<Option<String>>(properties, "/Auth/Authorizer", what)? {
                Some(name) if name == "NONE" => None,
                None if method == "OPTIONS" && !to_preflight => None,
                named => named.or_else(|| default_authorizer.clone()),
            };
            routes.push(Route {
                segments: parse_path(&resource).map_err(|e| invalid(format!("{what}.Path: {e}")))?,
                resource,
                method,
                function: self.binary(function)?,
                authorizer,
            });
        }

        let cors = self.cors(properties, &chosen)?;
        let preflight_authorizer = default_authorizer.filter(|_| cors.is_some() && to_preflight);
        let mut authorizers = HashMap::new();
        let used = routes.iter().filter_map(|r| r.authorizer.as_ref());
        for name in used.chain(&preflight_authorizer) {
            let definition = properties.pointer(&format!("/Auth/Authorizers/{name}"));
            let definition = definition.ok_or_else(|| match name.as_str() {
                "AWS_IAM" => invalid("AWS_IAM authorization is not emulated"),
                _ => invalid(format!("{chosen}.Auth.Authorizers has no {name}")),
            })?;
            authorizers.insert(name.clone(), self.authorizer(name, definition)?);
        }
        let mut gateway_responses = HashMap::new();
        let declared = properties.pointer("/GatewayResponses").and_then(Value::as_object);
        for (kind, definition) in declared.into_iter().flatten() {
            let what = format!("{chosen}.GatewayResponses.{kind}");
            gateway_responses.insert(kind.clone(), self.gateway_response(definition, &what)?);
        }
        let mut binary_media_types: Vec<String> = self.get(properties, "/BinaryMediaTypes", &chosen)?;
        for media_type in &mut binary_media_types {
            *media_type = media_type.replace("~1", "/").to_ascii_lowercase();
        }

        Ok(ApiSpec {
            logical_id: chosen,
            api_id: self.options.api_id.clone(),
            stage,
            region: self.options.region.clone(),
            account_id: self.options.account_id.clone(),
            routes,
            authorizers,
            cors,
            preflight_authorizer,
            gateway_responses,
            binary_media_types,
        })
    }

    fn authorizer(&self, name: &str, definition: &Value) -> Result<TokenAuthorizer> {
        let what = &format!("authorizer {name}");
        let payload: Option<String> = self.get(definition, "/FunctionPayloadType", what)?;
        if definition.get("UserPoolArn").is_some() {
            return Err(invalid(format!("{what}: Cognito authorizers are not emulated")));
        }
        if let Some(payload) = payload.filter(|p| p != "TOKEN") {
            return Err(invalid(format!(
                "{what}: {payload} authorizers are not emulated, only TOKEN ones"
            )));
        }
        let arn: Option<Value> = self.get(definition, "/FunctionArn", what)?;
        let arn = arn.ok_or_else(|| invalid(format!("{what} has no FunctionArn")))?;
        let expression: Option<String> = self.get(definition, "/Identity/ValidationExpression", what)?;
        // API Gateway matches the whole value, as Java's Pattern.matches does.
        let validation = expression.map(|e| Regex::new(&format!("^(?:{e})$"))).transpose();
        let validation =
            validation.map_err(|e| invalid(format!("{what}.Identity.ValidationExpression: {e}")))?;
        let header: Option<String> = self.get(definition, "/Identity/Header", what)?;
        let ttl = self.parse(definition, "/Identity/ReauthorizeEvery", what)?;
        Ok(TokenAuthorizer {
            function: self.function_of_arn(&arn, what)?,
            header: header.unwrap_or_else(|| "Authorization".into()),
            validation,
            ttl: Duration::from_secs(ttl.unwrap_or(300)),
        })
    }

    /// The function an authorizer's `FunctionArn` names: `!GetAtt Fn.Arn`, or a `!Sub` with
    /// `${Fn.Arn}` or `${Fn}`.
    fn function_of_arn(&self, arn: &Value, what: &str) -> Result<String> {
        let sub = arn.get("Fn::Sub").and_then(Value::as_str).unwrap_or_default();
        let in_sub = sub.split("${").skip(1).filter_map(|rest| rest.split_once('}'));
        let in_sub = in_sub.map(|(name, _)| name.trim_end_matches(".Arn"));
        let get_att = arn.pointer("/Fn::GetAtt/0").and_then(Value::as_str);
        let mut named = get_att.into_iter().chain(in_sub);
        let id = named.find(|id| self.resource(id, SERVERLESS_FUNCTION).is_some());
        self.binary(id.ok_or_else(|| invalid(format!("{what}.FunctionArn: cannot tell the function")))?)
    }

    fn cors(&self, properties: &Value, api: &str) -> Result<Option<HeaderMap>> {
        let Some(cors) = self.get::<Option<Value>>(properties, "/Cors", api)? else {
            return Ok(None);
        };
        let (what, mut headers) = (&format!("{api}.Cors"), HeaderMap::new());
        for (pointer, name) in [
            (
                if cors.is_string() { "" } else { "/AllowOrigin" },
                ACCESS_CONTROL_ALLOW_ORIGIN,
            ),
            ("/AllowMethods", ACCESS_CONTROL_ALLOW_METHODS),
            ("/AllowHeaders", ACCESS_CONTROL_ALLOW_HEADERS),
            ("/MaxAge", ACCESS_CONTROL_MAX_AGE),
        ] {
            let Some(text) = self.get::<Option<String>>(&cors, pointer, what)? else {
                continue;
            };
            let value = unquote(&text).and_then(|text| HeaderValue::try_from(text).ok());
            let fail = || {
                invalid(format!(
                    "{}: a value in single quotes, got {text}",
                    at(what, pointer)
                ))
            };
            headers.insert(name, value.ok_or_else(fail)?);
        }
        if self.parse(&cors, "/AllowCredentials", what)?.unwrap_or(false) {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if !headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
            return Err(invalid(format!("{what} has no AllowOrigin")));
        }
        Ok(Some(headers))
    }

    fn gateway_response(&self, definition: &Value, what: &str) -> Result<GatewayResponse> {
        let status = match self.parse::<u16>(definition, "/StatusCode", what)? {
            None => None,
            Some(status @ 100..600) => StatusCode::from_u16(status).ok(),
            Some(_) => return Err(invalid(format!("{what}.StatusCode is not an HTTP status"))),
        };
        let mut headers = Vec::new();
        let declared: BTreeMap<String, String> = self.get(definition, "/ResponseParameters/Headers", what)?;
        for (name, expression) in declared {
            let fail = || {
                invalid(format!(
                    "{what}.{name}: {expression:?} is not emulated or not valid"
                ))
            };
            let header = HeaderName::try_from(&name).map_err(|_| fail())?;
            headers.push((header, header_source(&expression).ok_or_else(fail)?));
        }
        let templates = self.get(definition, "/ResponseTemplates", what)?;
        Ok(GatewayResponse {
            status,
            headers,
            templates,
        })
    }
}

fn unquote(text: &str) -> Option<&str> {
    text.strip_prefix('\'').and_then(|t| t.strip_suffix('\''))
}

/// A gateway response header's mapping expression, if emulated: `'static'` or
/// `method.request.header.<name>`.
fn header_source(expression: &str) -> Option<HeaderSource> {
    if let Some(text) = unquote(expression) {
        return HeaderValue::try_from(text).ok().map(HeaderSource::Static);
    }
    let name = expression.strip_prefix("method.request.header.")?;
    HeaderName::try_from(name).ok().map(HeaderSource::RequestHeader)
}

/// Splits a resource path into segments.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(trimmed) = path.strip_prefix('/') else {
        return Err(format!("{path:?} does not start with /"));
    };
    let parts: Vec<&str> = trimmed.split('/').filter(|_| !trimmed.is_empty()).collect();
    let mut segments = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        segments.push(match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('+') {
                Some(name) if i + 1 < parts.len() => {
                    return Err(format!("{path:?}: {{{name}+}} is not last"));
                }
                Some(name) => Segment::Greedy(name.to_owned()),
                None => Segment::Variable(name.to_owned()),
            },
            None if part.is_empty() => return Err(format!("{path:?} has an empty segment")),
            None => Segment::Literal((*part).to_owned()),
        });
    }
    Ok(segments)
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
        assert_eq!(
            header_source("'*'").unwrap(),
            HeaderSource::Static(HeaderValue::from_static("*"))
        );
        assert_eq!(
            header_source("method.request.header.Origin").unwrap(),
            HeaderSource::RequestHeader(http::header::ORIGIN)
        );
        assert!(header_source("stageVariables.x").is_none());
    }
}
