//! Reading a CloudFormation/SAM template: YAML into JSON values with the short-form tags (`!Ref`,
//! `!Sub`, `!GetAtt`, ...) in their long form, and the intrinsic functions that can be known
//! before deployment evaluated against parameter values.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Why a template cannot be read or served.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("not a template: {0}")]
    Json(#[from] serde_json::Error),
    #[error("parameter {0} has no Default: pass --parameter {0}=<value>")]
    MissingParameter(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = TemplateError> = std::result::Result<T, E>;

pub(crate) fn invalid(message: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(message.into())
}

/// Parses template text (YAML, of which JSON is a subset). `!Ref X` becomes `{"Ref": "X"}`,
/// `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`, `!Condition C` becomes
/// `{"Condition": "C"}`, and any other `!Name v` becomes `{"Fn::Name": v}`.
pub fn parse(text: &str) -> Result<Value> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
    Ok(long_form(serde_json::to_value(yaml)?))
}

/// A tagged YAML value serializes as `{"!Tag": value}`: each becomes its long form.
fn long_form(value: Value) -> Value {
    let entry = |(key, value): (String, Value)| match (key.strip_prefix('!'), long_form(value)) {
        (None, value) => (key, value),
        (Some(name @ ("Ref" | "Condition")), value) => (name.to_owned(), value),
        (Some("GetAtt"), Value::String(path)) => ("Fn::GetAtt".to_owned(), path.splitn(2, '.').collect()),
        (Some(name), value) => (format!("Fn::{name}"), value),
    };
    match value {
        Value::Array(items) => items.into_iter().map(long_form).collect(),
        Value::Object(object) => object.into_iter().map(entry).collect(),
        scalar => scalar,
    }
}

/// What intrinsic functions are evaluated against: parameter values (`None` for a parameter
/// without `Default` or override), pseudo parameters, conditions and the resources' names.
pub struct Intrinsics {
    parameters: HashMap<String, Option<Value>>,
    conditions: Map<String, Value>,
    resources: Map<String, Value>,
}

impl Intrinsics {
    /// Parameter values are `overrides` (the `--parameter` values, strings, as CloudFormation
    /// passes them), else each parameter's `Default`; the stack is named `local`, deployed in
    /// `region` of `account_id`.
    pub fn new(
        template: &Value,
        overrides: &HashMap<String, String>,
        region: &str,
        account_id: &str,
    ) -> Result<Self> {
        let section = |name: &str| template.get(name).and_then(Value::as_object).cloned();
        let declared = section("Parameters").unwrap_or_default();
        if let Some(unknown) = overrides.keys().find(|name| !declared.contains_key(*name)) {
            return Err(invalid(format!(
                "--parameter {unknown}: the template has no such parameter"
            )));
        }
        let mut parameters = HashMap::new();
        for (name, declaration) in &declared {
            let value = overrides.get(name).map(|v| Value::from(v.as_str()));
            parameters.insert(
                name.clone(),
                value.or_else(|| declaration.get("Default").cloned()),
            );
        }
        for (name, value) in [
            ("AWS::Region", region),
            ("AWS::AccountId", account_id),
            ("AWS::StackName", "local"),
            ("AWS::Partition", "aws"),
            ("AWS::URLSuffix", "amazonaws.com"),
        ] {
            parameters.insert(name.to_owned(), Some(value.into()));
        }
        Ok(Self {
            parameters,
            conditions: section("Conditions").unwrap_or_default(),
            resources: section("Resources").unwrap_or_default(),
        })
    }

    /// Evaluates the intrinsic functions in `value` that can be known locally (`Ref` to a
    /// parameter or pseudo parameter, `Sub`, `If`, `Equals`, `Not`, `And`, `Or`, `Split`,
    /// `Select`, `Condition`). What is only known once deployed (`GetAtt`, `Ref` to a resource, a `Sub`
    /// naming one, any other function) is left as written. Properties set to `AWS::NoValue`
    /// are dropped, as CloudFormation does.
    pub fn resolve(&self, value: &Value) -> Result<Value> {
        self.eval(value, 0)?
            .ok_or_else(|| invalid("the value is AWS::NoValue"))
    }

    fn condition_at(&self, name: &str, depth: usize) -> Result<bool> {
        let Some(definition) = self.conditions.get(name) else {
            return Err(invalid(format!("no condition named {name}")));
        };
        self.truth(definition, depth + 1)
    }

    fn truth(&self, value: &Value, depth: usize) -> Result<bool> {
        match self.eval(value, depth)? {
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(invalid(format!("not a condition: {other:?}"))),
        }
    }

    fn eval(&self, value: &Value, depth: usize) -> Result<Option<Value>> {
        if depth > 64 {
            return Err(invalid("intrinsic functions nested too deep (a cycle?)"));
        }
        let depth = depth + 1;
        let text = |v: &Value| Ok::<_, TemplateError>(self.eval(v, depth)?.as_ref().and_then(scalar_string));
        let function = match value {
            Value::Array(items) => {
                let items = items.iter().map(|item| self.eval(item, depth).transpose());
                return Ok(Some(Value::Array(items.flatten().collect::<Result<_, _>>()?)));
            }
            Value::Object(object) if object.len() == 1 => object.iter().next(),
            Value::Object(_) => None,
            scalar => return Ok(Some(scalar.clone())),
        };
        Ok(match function.map(|(name, argument)| (name.as_str(), argument)) {
            Some(("Ref", Value::String(name))) if name == "AWS::NoValue" => None,
            Some(("Ref", Value::String(name))) => Some(self.variable(name)?.unwrap_or_else(|| value.clone())),
            Some(("Condition", Value::String(name))) => Some(Value::Bool(self.condition_at(name, depth)?)),
            Some(("Fn::Sub", Value::String(text))) => {
                Some(self.sub(text)?.map_or_else(|| value.clone(), Value::from))
            }
            Some(("Fn::If", argument)) => {
                let [Value::String(condition), then, otherwise] = items(argument, "Fn::If")? else {
                    return Err(invalid("Fn::If takes a condition name"));
                };
                let branch = if self.condition_at(condition, depth)? {
                    then
                } else {
                    otherwise
                };
                self.eval(branch, depth)?
            }
            Some(("Fn::Equals", argument)) => {
                let [a, b] = items(argument, "Fn::Equals")?;
                let equal = match (text(a)?, text(b)?) {
                    (Some(a), Some(b)) => a == b,
                    _ => self.eval(a, depth)? == self.eval(b, depth)?,
                };
                Some(Value::Bool(equal))
            }
            Some(("Fn::Not", argument)) => {
                let [condition] = items(argument, "Fn::Not")?;
                Some(Value::Bool(!self.truth(condition, depth)?))
            }
            Some((name @ ("Fn::And" | "Fn::Or"), Value::Array(conditions))) => {
                // CloudFormation takes 2 to 10 conditions; every one is evaluated, so that an
                // invalid one is reported whatever the others say.
                if !(2..=10).contains(&conditions.len()) {
                    return Err(invalid(format!("{name} takes 2 to 10 conditions")));
                }
                let truths = conditions
                    .iter()
                    .map(|c| self.truth(c, depth))
                    .collect::<Result<Vec<_>>>()?;
                let all = name == "Fn::And";
                Some(Value::Bool(if all {
                    truths.iter().all(|t| *t)
                } else {
                    truths.iter().any(|t| *t)
                }))
            }
            Some(("Fn::Split", argument)) => {
                let [Value::String(delimiter), source] = items(argument, "Fn::Split")? else {
                    return Err(invalid("Fn::Split takes a string delimiter"));
                };
                let source = text(source)?.ok_or_else(|| invalid("Fn::Split of a non-string"))?;
                Some(source.split(delimiter.as_str()).collect())
            }
            Some(("Fn::Select", argument)) => {
                let [index, list] = items(argument, "Fn::Select")?;
                let index = text(index)?.and_then(|i| i.parse::<usize>().ok());
                let (Some(index), Some(Value::Array(list))) = (index, self.eval(list, depth)?) else {
                    return Err(invalid("Fn::Select takes an index and a list"));
                };
                let item = list.get(index).cloned();
                Some(item.ok_or_else(|| invalid(format!("Fn::Select: no item {index}")))?)
            }
            Some((name, _)) if name == "Ref" || name.starts_with("Fn::") => Some(value.clone()),
            _ => {
                let mut out = Map::new();
                for (key, item) in value.as_object().into_iter().flatten() {
                    if let Some(item) = self.eval(item, depth)? {
                        out.insert(key.clone(), item);
                    }
                }
                Some(Value::Object(out))
            }
        })
    }

    /// A parameter's or pseudo parameter's value; `None` for what is only known once deployed.
    fn variable(&self, name: &str) -> Result<Option<Value>> {
        let deployed = self.resources.contains_key(name) || name.contains('.') || name.starts_with("AWS::");
        match self.parameters.get(name) {
            Some(Some(value)) => Ok(Some(value.clone())),
            Some(None) => Err(TemplateError::MissingParameter(name.into())),
            None if deployed => Ok(None),
            None => Err(invalid(format!("{name} is neither a parameter nor a resource"))),
        }
    }

    /// `Fn::Sub`'s text; `None` if it names something only known once deployed.
    fn sub(&self, text: &str) -> Result<Option<String>> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((before, after)) = rest.split_once("${") {
            let Some((name, after)) = after.split_once('}') else {
                return Err(invalid(format!("Fn::Sub: unclosed ${{ in {text:?}")));
            };
            out.push_str(before);
            rest = after;
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
                continue;
            }
            let Some(value) = self.variable(name.trim())? else {
                return Ok(None);
            };
            let value = scalar_string(&value)
                .ok_or_else(|| invalid(format!("Fn::Sub: ${{{name}}} is not a string")))?;
            out.push_str(&value);
        }
        out.push_str(rest);
        Ok(Some(out))
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

/// An intrinsic function's `N` arguments.
fn items<'a, const N: usize>(argument: &'a Value, function: &str) -> Result<[&'a Value; N]> {
    match argument {
        Value::Array(items) if items.len() == N => Ok(std::array::from_fn(|i| &items[i])),
        _ => Err(invalid(format!("{function} takes a list of {N}, got {argument}"))),
    }
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
  OneNamed: !And [!Condition OneOrigin, !Not [!Equals [!Ref Origins, "*"]]]
  AnyOf: !Or [!Condition OneNamed, !Equals [!Ref Origins, "http://b.test"]]
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
      Deployed: !Sub "arn:${AWS::Partition}:${Api}"
"#;

    fn intrinsics(origins: Option<&str>) -> (Value, Intrinsics) {
        let template = parse(TEMPLATE).unwrap();
        let mut overrides = HashMap::new();
        if let Some(origins) = origins {
            overrides.insert("Origins".to_owned(), origins.to_owned());
        }
        let intrinsics = Intrinsics::new(&template, &overrides, "us-east-1", "123456789012").unwrap();
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
        assert_eq!(intrinsics.resolve(&api["Stage"]).unwrap(), json!("v1"));
        assert_eq!(intrinsics.resolve(&api["Seconds"]).unwrap(), json!(300));
        assert_eq!(intrinsics.resolve(&api["Name"]).unwrap(), json!("local-api"));
        assert_eq!(
            intrinsics.resolve(&api["Literal"]).unwrap(),
            json!("${NotAVariable}/v1")
        );
    }

    #[test]
    fn conditions_pick_the_if_branch() {
        let (template, one) = intrinsics(Some("http://a.test"));
        let header = &template["Resources"]["Api"]["Properties"]["Header"];
        assert_eq!(one.resolve(header).unwrap(), json!("'http://a.test'"));
        let not_one = one.resolve(&json!({"Condition": "NotOne"})).unwrap();
        assert_eq!(not_one, json!(false));
        let (_, two) = intrinsics(Some("http://a.test,http://b.test"));
        assert_eq!(
            two.resolve(header).unwrap(),
            json!("method.request.header.Origin")
        );
    }

    #[test]
    fn and_and_or_combine_conditions() {
        let truth = |origins: &str, name: &str| {
            let (_, intrinsics) = intrinsics(Some(origins));
            intrinsics.resolve(&json!({"Condition": name})).unwrap()
        };
        assert_eq!(truth("http://a.test", "OneNamed"), json!(true));
        assert_eq!(truth("*", "OneNamed"), json!(false));
        assert_eq!(truth("http://a.test,http://b.test", "OneNamed"), json!(false));
        assert_eq!(truth("http://b.test", "AnyOf"), json!(true));
        assert_eq!(truth("*", "AnyOf"), json!(false));
        let (_, intrinsics) = intrinsics(Some("*"));
        assert!(intrinsics.resolve(&json!({"Fn::And": [true]})).is_err());
    }

    #[test]
    fn a_parameter_without_default_or_override_is_named() {
        let (template, intrinsics) = intrinsics(None);
        let header = &template["Resources"]["Api"]["Properties"]["Header"];
        let err = intrinsics.resolve(header).unwrap_err();
        assert!(matches!(&err, TemplateError::MissingParameter(name) if name == "Origins"));
        assert!(err.to_string().contains("--parameter Origins="));
    }

    #[test]
    fn what_is_known_only_once_deployed_stays_as_written_and_no_value_drops_the_property() {
        let (template, intrinsics) = intrinsics(Some("*"));
        let api = &template["Resources"]["Api"]["Properties"];
        assert_eq!(intrinsics.resolve(&api["Arn"]).unwrap(), api["Arn"]);
        assert_eq!(intrinsics.resolve(&api["Deployed"]).unwrap(), api["Deployed"]);
        let without_arn = json!({"Gone": api["Gone"], "Stage": api["Stage"]});
        assert_eq!(intrinsics.resolve(&without_arn).unwrap(), json!({"Stage": "v1"}));
    }

    #[test]
    fn an_unknown_parameter_override_is_refused() {
        let template = parse(TEMPLATE).unwrap();
        let overrides = HashMap::from([("Nope".to_owned(), "x".to_owned())]);
        assert!(Intrinsics::new(&template, &overrides, "us-east-1", "123456789012").is_err());
    }
}
