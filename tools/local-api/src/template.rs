//! Reading a CloudFormation/SAM template: YAML (or JSON) into JSON values, with the short-form
//! tags (`!Ref`, `!Sub`, `!GetAtt`, ...) rewritten to their long form, and the few intrinsic
//! functions a local API needs evaluated against parameter values.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Why a template could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Parses template text (YAML, of which JSON is a subset). `!Ref X` becomes `{"Ref": "X"}`,
/// `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`, `!Condition C` becomes
/// `{"Condition": "C"}`, and any other `!Name v` becomes `{"Fn::Name": v}`.
pub fn parse(text: &str) -> Result<Value, TemplateError> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
    to_json(yaml)
}

fn to_json(yaml: serde_yaml_ng::Value) -> Result<Value, TemplateError> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            serde_json::to_value(&n).map_err(|e| TemplateError::Invalid(format!("number {n}: {e}")))?
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err(TemplateError::Invalid(format!(
                            "unsupported mapping key {other:?}"
                        )));
                    }
                };
                object.insert(key, to_json(value)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value)?;
            let (key, value) = match name {
                "Ref" => ("Ref".to_owned(), value),
                "Condition" => ("Condition".to_owned(), value),
                "GetAtt" => {
                    let value = match value {
                        Value::String(s) => match s.split_once('.') {
                            Some((resource, attribute)) => {
                                Value::Array(vec![resource.into(), attribute.into()])
                            }
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), value)
                }
                other => (format!("Fn::{other}"), value),
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    })
}

/// Why a value could not be computed locally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// Known only once deployed (`!GetAtt`, `!Ref` to a resource, `!ImportValue`, ...).
    #[error("{0} is only known once deployed")]
    Opaque(String),
    #[error("parameter {0} has no Default: pass --parameter {0}=<value>")]
    MissingParameter(String),
    #[error("{0}")]
    Invalid(String),
}

/// What intrinsic functions are evaluated against: parameter values, conditions, mappings
/// and the pseudo parameters.
pub struct Intrinsics {
    parameters: HashMap<String, Value>,
    missing: Vec<String>,
    conditions: Map<String, Value>,
    mappings: Map<String, Value>,
    resources: Map<String, Value>,
    pseudo: HashMap<&'static str, String>,
}

/// Where a template is pretended to be deployed.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
}

impl Intrinsics {
    /// Parameter values are the overrides, else each parameter's `Default`. List-typed
    /// parameters become arrays.
    pub fn new(
        template: &Value,
        overrides: &HashMap<String, String>,
        deployment: &Deployment,
    ) -> Result<Self, TemplateError> {
        let section = |name: &str| {
            template
                .get(name)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let declared = section("Parameters");
        if let Some(unknown) = overrides.keys().find(|name| !declared.contains_key(*name)) {
            return Err(TemplateError::Invalid(format!(
                "--parameter {unknown}: the template has no such parameter"
            )));
        }
        let mut parameters = HashMap::new();
        let mut missing = Vec::new();
        for (name, declaration) in &declared {
            let is_list = declaration
                .get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
            let value = match overrides.get(name) {
                Some(value) => Value::String(value.clone()),
                None => match declaration.get("Default") {
                    Some(default) => default.clone(),
                    None => {
                        missing.push(name.clone());
                        continue;
                    }
                },
            };
            let value = match (&value, is_list) {
                (Value::String(s), true) => {
                    Value::Array(s.split(',').map(|item| item.trim().into()).collect())
                }
                _ => value,
            };
            parameters.insert(name.clone(), value);
        }
        let pseudo = HashMap::from([
            ("AWS::Region", deployment.region.clone()),
            ("AWS::AccountId", deployment.account_id.clone()),
            ("AWS::StackName", deployment.stack_name.clone()),
            (
                "AWS::StackId",
                format!(
                    "arn:aws:cloudformation:{}:{}:stack/{}/local",
                    deployment.region, deployment.account_id, deployment.stack_name
                ),
            ),
            ("AWS::Partition", "aws".into()),
            ("AWS::URLSuffix", "amazonaws.com".into()),
        ]);
        Ok(Self {
            parameters,
            missing,
            conditions: section("Conditions"),
            mappings: section("Mappings"),
            resources: section("Resources"),
            pseudo,
        })
    }

    /// Evaluates every intrinsic function in `value`. Properties set to `AWS::NoValue` are
    /// dropped, as CloudFormation does.
    pub fn resolve(&self, value: &Value) -> Result<Value, Unresolved> {
        self.eval(value, 0)?
            .ok_or_else(|| Unresolved::Invalid("the value is AWS::NoValue".into()))
    }

    /// `resolve`, then a string (numbers and booleans are written out, as CloudFormation
    /// passes every parameter as a string).
    pub fn resolve_string(&self, value: &Value) -> Result<String, Unresolved> {
        scalar_string(&self.resolve(value)?)
            .ok_or_else(|| Unresolved::Invalid(format!("expected a string, got {value}")))
    }

    /// The value of the named condition.
    pub fn condition(&self, name: &str) -> Result<bool, Unresolved> {
        self.condition_at(name, 0)
    }

    fn condition_at(&self, name: &str, depth: usize) -> Result<bool, Unresolved> {
        let definition = self
            .conditions
            .get(name)
            .ok_or_else(|| Unresolved::Invalid(format!("no condition named {name}")))?;
        self.truth(definition, depth + 1)
    }

    fn truth(&self, value: &Value, depth: usize) -> Result<bool, Unresolved> {
        match self.eval(value, depth)? {
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(Unresolved::Invalid(format!("not a condition: {other:?}"))),
        }
    }

    fn eval(&self, value: &Value, depth: usize) -> Result<Option<Value>, Unresolved> {
        if depth > 64 {
            return Err(Unresolved::Invalid(
                "intrinsic functions nested too deep (a cycle?)".into(),
            ));
        }
        let depth = depth + 1;
        match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(item) = self.eval(item, depth)? {
                        out.push(item);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(object) if object.len() == 1 => {
                let Some((key, argument)) = object.iter().next() else {
                    return Ok(Some(value.clone()));
                };
                match key.as_str() {
                    "Ref" => self.reference(argument),
                    "Condition" => {
                        let name = argument
                            .as_str()
                            .ok_or_else(|| Unresolved::Invalid("Condition takes a name".into()))?;
                        Ok(Some(Value::Bool(self.condition_at(name, depth)?)))
                    }
                    "Fn::Sub" => self.sub(argument, depth).map(|s| Some(Value::String(s))),
                    "Fn::If" => {
                        let [condition, then, otherwise] = triple(argument, "Fn::If")?;
                        let name = condition
                            .as_str()
                            .ok_or_else(|| Unresolved::Invalid("Fn::If takes a condition name".into()))?;
                        let branch = if self.condition_at(name, depth)? {
                            then
                        } else {
                            otherwise
                        };
                        self.eval(branch, depth)
                    }
                    "Fn::Equals" => {
                        let [a, b] = pair(argument, "Fn::Equals")?;
                        let (a, b) = (self.eval(a, depth)?, self.eval(b, depth)?);
                        let text = |v: &Option<Value>| v.as_ref().and_then(scalar_string);
                        let equal = match (text(&a), text(&b)) {
                            (Some(a), Some(b)) => a == b,
                            _ => a == b,
                        };
                        Ok(Some(Value::Bool(equal)))
                    }
                    "Fn::Not" => {
                        let [inner] = single(argument, "Fn::Not")?;
                        Ok(Some(Value::Bool(!self.truth(inner, depth)?)))
                    }
                    "Fn::And" | "Fn::Or" => {
                        let items = argument
                            .as_array()
                            .ok_or_else(|| Unresolved::Invalid(format!("{key} takes a list")))?;
                        let mut results = Vec::with_capacity(items.len());
                        for item in items {
                            results.push(self.truth(item, depth)?);
                        }
                        let result = if key == "Fn::And" {
                            results.iter().all(|b| *b)
                        } else {
                            results.iter().any(|b| *b)
                        };
                        Ok(Some(Value::Bool(result)))
                    }
                    "Fn::Join" => {
                        let [delimiter, items] = pair(argument, "Fn::Join")?;
                        let delimiter = delimiter
                            .as_str()
                            .ok_or_else(|| Unresolved::Invalid("Fn::Join takes a string delimiter".into()))?;
                        let items = self.list(items, depth, "Fn::Join")?;
                        let parts = items
                            .iter()
                            .map(|item| {
                                scalar_string(item).ok_or_else(|| {
                                    Unresolved::Invalid(format!("Fn::Join of a non-scalar: {item}"))
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(Some(Value::String(parts.join(delimiter))))
                    }
                    "Fn::Split" => {
                        let [delimiter, source] = pair(argument, "Fn::Split")?;
                        let delimiter = delimiter.as_str().ok_or_else(|| {
                            Unresolved::Invalid("Fn::Split takes a string delimiter".into())
                        })?;
                        let source = self
                            .eval(source, depth)?
                            .as_ref()
                            .and_then(scalar_string)
                            .ok_or_else(|| Unresolved::Invalid("Fn::Split of a non-string".into()))?;
                        Ok(Some(Value::Array(
                            source.split(delimiter).map(|s| s.into()).collect(),
                        )))
                    }
                    "Fn::Select" => {
                        let [index, items] = pair(argument, "Fn::Select")?;
                        let index = self
                            .eval(index, depth)?
                            .as_ref()
                            .and_then(scalar_string)
                            .and_then(|s| s.parse::<usize>().ok())
                            .ok_or_else(|| Unresolved::Invalid("Fn::Select takes a numeric index".into()))?;
                        let items = self.list(items, depth, "Fn::Select")?;
                        items.get(index).cloned().map(Some).ok_or_else(|| {
                            Unresolved::Invalid(format!("Fn::Select index {index} out of range"))
                        })
                    }
                    "Fn::FindInMap" => {
                        let [map, top, second] = triple(argument, "Fn::FindInMap")?;
                        let mut found = self.mappings.get(&self.resolve_string(map)?);
                        for key in [top, second] {
                            let key = self.resolve_string(key)?;
                            found = found.and_then(|m| m.get(&key));
                        }
                        found
                            .cloned()
                            .map(Some)
                            .ok_or_else(|| Unresolved::Invalid("Fn::FindInMap: no such key".into()))
                    }
                    _ if key.starts_with("Fn::") => Err(Unresolved::Opaque(format!("{key} {argument}"))),
                    _ => self.eval_object(object, depth),
                }
            }
            Value::Object(object) => self.eval_object(object, depth),
            scalar => Ok(Some(scalar.clone())),
        }
    }

    fn eval_object(&self, object: &Map<String, Value>, depth: usize) -> Result<Option<Value>, Unresolved> {
        let mut out = Map::new();
        for (key, value) in object {
            if let Some(value) = self.eval(value, depth)? {
                out.insert(key.clone(), value);
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn list(&self, value: &Value, depth: usize, function: &str) -> Result<Vec<Value>, Unresolved> {
        match self.eval(value, depth)? {
            Some(Value::Array(items)) => Ok(items),
            other => Err(Unresolved::Invalid(format!(
                "{function} takes a list, got {other:?}"
            ))),
        }
    }

    fn reference(&self, argument: &Value) -> Result<Option<Value>, Unresolved> {
        let name = argument
            .as_str()
            .ok_or_else(|| Unresolved::Invalid(format!("Ref takes a name, got {argument}")))?;
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        self.variable(name).map(Some)
    }

    fn variable(&self, name: &str) -> Result<Value, Unresolved> {
        if let Some(value) = self.parameters.get(name) {
            return Ok(value.clone());
        }
        if let Some(value) = self.pseudo.get(name) {
            return Ok(Value::String(value.clone()));
        }
        if self.missing.iter().any(|m| m == name) {
            return Err(Unresolved::MissingParameter(name.into()));
        }
        if self.resources.contains_key(name) || name.contains('.') || name.starts_with("AWS::") {
            return Err(Unresolved::Opaque(name.into()));
        }
        Err(Unresolved::Invalid(format!(
            "{name} is neither a parameter nor a resource"
        )))
    }

    fn sub(&self, argument: &Value, depth: usize) -> Result<String, Unresolved> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), Map::new()),
            Value::Array(items) if items.len() == 2 => {
                let text = items[0]
                    .as_str()
                    .ok_or_else(|| Unresolved::Invalid("Fn::Sub takes a string".into()))?;
                let variables = items[1]
                    .as_object()
                    .ok_or_else(|| Unresolved::Invalid("Fn::Sub's second item is a map".into()))?;
                let mut resolved = Map::new();
                for (name, value) in variables {
                    let value = self.eval(value, depth)?.unwrap_or(Value::Null);
                    resolved.insert(name.clone(), value);
                }
                (text, resolved)
            }
            other => {
                return Err(Unresolved::Invalid(format!(
                    "Fn::Sub takes a string, got {other}"
                )));
            }
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Unresolved::Invalid(format!("Fn::Sub: unclosed ${{ in {text:?}")))?;
            let name = after[..end].trim();
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let value = match variables.get(name) {
                    Some(value) => value.clone(),
                    None => self.variable(name)?,
                };
                let value = match value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(scalar_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    other => scalar_string(&other).ok_or_else(|| {
                        Unresolved::Invalid(format!("Fn::Sub: ${{{name}}} is not a string"))
                    })?,
                };
                out.push_str(&value);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A string, number or boolean written out as CloudFormation would; `None` for anything else.
pub fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn items<'a, const N: usize>(argument: &'a Value, function: &str) -> Result<[&'a Value; N], Unresolved> {
    argument
        .as_array()
        .filter(|items| items.len() == N)
        .map(|items| std::array::from_fn(|i| &items[i]))
        .ok_or_else(|| Unresolved::Invalid(format!("{function} takes a list of {N}, got {argument}")))
}

fn single<'a>(argument: &'a Value, function: &str) -> Result<[&'a Value; 1], Unresolved> {
    items::<1>(argument, function)
}

fn pair<'a>(argument: &'a Value, function: &str) -> Result<[&'a Value; 2], Unresolved> {
    items::<2>(argument, function)
}

fn triple<'a>(argument: &'a Value, function: &str) -> Result<[&'a Value; 3], Unresolved> {
    items::<3>(argument, function)
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: v1}
  Origins: {Type: String}
  Seconds: {Type: Number, Default: 300}
Conditions:
  OneOrigin: !Equals [!Select [1, !Split [",", !Sub "${Origins},"]], ""]
  NotOne: !Not [!Condition OneOrigin]
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      Name: !Sub "${AWS::StackName}-api"
      Stage: !Ref Stage
      Seconds: !Ref Seconds
      Arn: !GetAtt Fn.Arn
      Header: !If [OneOrigin, !Sub "'${Origins}'", method.request.header.Origin]
      Gone: !Ref AWS::NoValue
      Literal: !Sub "${!NotAVariable}/${Stage}"
"#;

    fn deployment() -> Deployment {
        Deployment {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            stack_name: "local".into(),
        }
    }

    fn intrinsics(origins: Option<&str>) -> (Value, Intrinsics) {
        let template = parse(TEMPLATE).unwrap();
        let overrides = origins
            .map(|o| HashMap::from([("Origins".to_owned(), o.to_owned())]))
            .unwrap_or_default();
        let intrinsics = Intrinsics::new(&template, &overrides, &deployment()).unwrap();
        (template, intrinsics)
    }

    #[test]
    fn short_form_tags_become_long_form_intrinsics() {
        let (template, _) = intrinsics(None);
        let api = &template["Resources"]["Api"]["Properties"];
        assert_eq!(api["Stage"], json!({"Ref": "Stage"}));
        assert_eq!(api["Arn"], json!({"Fn::GetAtt": ["Fn", "Arn"]}));
        assert_eq!(api["Name"], json!({"Fn::Sub": "${AWS::StackName}-api"}));
        assert_eq!(
            template["Conditions"]["NotOne"],
            json!({"Fn::Not": [{"Condition": "OneOrigin"}]})
        );
    }

    #[test]
    fn parameters_defaults_pseudo_parameters_and_sub_resolve() {
        let (template, intrinsics) = intrinsics(Some("http://a.test"));
        let api = &template["Resources"]["Api"]["Properties"];
        assert_eq!(intrinsics.resolve_string(&api["Stage"]).unwrap(), "v1");
        assert_eq!(intrinsics.resolve(&api["Seconds"]).unwrap(), json!(300));
        assert_eq!(intrinsics.resolve_string(&api["Name"]).unwrap(), "local-api");
        assert_eq!(
            intrinsics.resolve_string(&api["Literal"]).unwrap(),
            "${NotAVariable}/v1"
        );
    }

    #[test]
    fn conditions_pick_the_if_branch() {
        let (template, one) = intrinsics(Some("http://a.test"));
        let header = &template["Resources"]["Api"]["Properties"]["Header"];
        assert_eq!(one.resolve_string(header).unwrap(), "'http://a.test'");
        assert!(!one.condition("NotOne").unwrap());
        let (_, two) = intrinsics(Some("http://a.test,http://b.test"));
        assert_eq!(
            two.resolve_string(header).unwrap(),
            "method.request.header.Origin"
        );
    }

    #[test]
    fn a_parameter_without_default_or_override_is_named() {
        let (template, intrinsics) = intrinsics(None);
        let header = &template["Resources"]["Api"]["Properties"]["Header"];
        let err = intrinsics.resolve(header).unwrap_err();
        assert_eq!(err, Unresolved::MissingParameter("Origins".into()));
        assert!(err.to_string().contains("--parameter Origins="));
    }

    #[test]
    fn get_att_is_opaque_and_no_value_drops_the_property() {
        let (template, intrinsics) = intrinsics(Some("*"));
        let api = &template["Resources"]["Api"]["Properties"];
        assert!(matches!(
            intrinsics.resolve(&api["Arn"]),
            Err(Unresolved::Opaque(_))
        ));
        let without_arn = json!({"Gone": api["Gone"], "Stage": api["Stage"]});
        assert_eq!(intrinsics.resolve(&without_arn).unwrap(), json!({"Stage": "v1"}));
    }

    #[test]
    fn an_unknown_parameter_override_is_refused() {
        let template = parse(TEMPLATE).unwrap();
        let overrides = HashMap::from([("Nope".to_owned(), "x".to_owned())]);
        assert!(Intrinsics::new(&template, &overrides, &deployment()).is_err());
    }
}
