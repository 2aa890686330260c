//! A Lambda TOKEN authorizer's output as API Gateway reads it: the IAM policy evaluated against
//! the method ARN (with IAM's `*` and `?` wildcards), the context checked for flat values, and
//! the verdict cached per token for `ReauthorizeEvery` seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// A well-formed authorizer output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub principal_id: String,
    statements: Vec<Statement>,
    /// The context values, written out as strings as API Gateway hands them to the backend.
    pub context: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// What the policy says about one method ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement covers the ARN.
    ExplicitDeny,
    /// No statement covers the ARN.
    NotAllowed,
}

impl Verdict {
    /// Reads an authorizer's output; `Err` says why API Gateway would refuse it (a 500).
    pub fn parse(output: &[u8]) -> Result<Self, String> {
        let output: Value = serde_json::from_slice(output).map_err(|e| format!("output is not JSON: {e}"))?;
        let output = output.as_object().ok_or("output is not a JSON object")?;
        let principal_id = match field(output, "principalId") {
            Some(Value::String(id)) => id.clone(),
            Some(other) => return Err(format!("principalId is not a string: {other}")),
            None => return Err("no principalId".into()),
        };
        let policy = field(output, "policyDocument")
            .and_then(Value::as_object)
            .ok_or("no policyDocument object")?;
        let statements = match field(policy, "Statement") {
            Some(Value::Array(items)) => items.iter().map(Statement::parse).collect::<Result<_, _>>()?,
            Some(one @ Value::Object(_)) => vec![Statement::parse(one)?],
            _ => return Err("policyDocument has no Statement".into()),
        };
        let context = match field(output, "context") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(values)) => values
                .iter()
                .map(|(key, value)| match value {
                    Value::String(s) => Ok((key.clone(), s.clone())),
                    Value::Number(n) => Ok((key.clone(), n.to_string())),
                    Value::Bool(b) => Ok((key.clone(), b.to_string())),
                    other => Err(format!(
                        "context.{key} is {other}: only strings, numbers and booleans are allowed"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("context is not an object: {other}")),
        };
        Ok(Self {
            principal_id,
            statements,
            context,
        })
    }

    /// Whether the policy lets `execute-api:Invoke` on `method_arn`; a Deny wins.
    pub fn decide(&self, method_arn: &str) -> Decision {
        let covering = |allow: bool| {
            self.statements.iter().any(|s| {
                s.allow == allow
                    && s.actions
                        .iter()
                        .any(|a| wildcard_match(&a.to_ascii_lowercase(), "execute-api:invoke"))
                    && s.resources.iter().any(|r| wildcard_match(r, method_arn))
            })
        };
        if covering(false) {
            Decision::ExplicitDeny
        } else if covering(true) {
            Decision::Allow
        } else {
            Decision::NotAllowed
        }
    }
}

impl Statement {
    fn parse(value: &Value) -> Result<Self, String> {
        let statement = value.as_object().ok_or("a Statement is not an object")?;
        let allow = match field(statement, "Effect").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("allow") => true,
            Some(e) if e.eq_ignore_ascii_case("deny") => false,
            other => return Err(format!("Statement Effect is {other:?}, not Allow or Deny")),
        };
        Ok(Self {
            allow,
            actions: strings(field(statement, "Action"), "Action")?,
            resources: strings(field(statement, "Resource"), "Resource")?,
        })
    }
}

/// A key looked up as written, else case-insensitively.
fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match value {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or(format!("a Statement {what} is not a string"))
            })
            .collect(),
        _ => Err(format!("a Statement has no {what}")),
    }
}

/// IAM-style matching: `*` any run of characters (slashes and colons included), `?` one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// (authorizer, identity value) → (expiry, verdict).
type Entries = HashMap<(String, String), (Instant, Arc<Verdict>)>;

/// Verdicts per (authorizer, identity value), each kept for its authorizer's TTL.
#[derive(Debug, Default)]
pub struct VerdictCache {
    entries: Mutex<Entries>,
}

impl VerdictCache {
    pub fn get(&self, authorizer: &str, identity: &str) -> Option<Arc<Verdict>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (expires, verdict) = entries.get(&(authorizer.to_owned(), identity.to_owned()))?;
        (Instant::now() < *expires).then(|| verdict.clone())
    }

    /// Keeps `verdict` for `ttl`; a zero TTL keeps nothing.
    pub fn put(&self, authorizer: &str, identity: &str, verdict: Arc<Verdict>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (expires, _)| now < *expires);
        entries.insert((authorizer.to_owned(), identity.to_owned()), (now + ttl, verdict));
    }
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:api/v1/GET/items/42";

    fn verdict(output: Value) -> Result<Verdict, String> {
        Verdict::parse(output.to_string().as_bytes())
    }

    fn policy(effect: &str, resource: Value) -> Value {
        json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
            ]},
            "context": {"sub": "user-1", "n": 7, "admin": false}
        })
    }

    #[test]
    fn wildcards_span_slashes_and_question_marks_match_one_character() {
        assert!(wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:api/v1/*/*",
            ARN
        ));
        assert!(wildcard_match("*", ARN));
        assert!(wildcard_match("arn:aws:execute-api:*:*:api/v1/GET/items/??", ARN));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:api/v1/POST/*",
            ARN
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:api/v1/GET/items",
            ARN
        ));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn allow_covering_the_arn_allows_and_context_values_become_strings() {
        let v = verdict(policy(
            "Allow",
            json!("arn:aws:execute-api:us-east-1:123456789012:api/v1/*/*"),
        ))
        .unwrap();
        assert_eq!(v.decide(ARN), Decision::Allow);
        assert_eq!(v.principal_id, "user-1");
        let mut context = v.context.clone();
        context.sort();
        assert_eq!(
            context,
            vec![
                ("admin".to_owned(), "false".to_owned()),
                ("n".to_owned(), "7".to_owned()),
                ("sub".to_owned(), "user-1".to_owned())
            ]
        );
    }

    #[test]
    fn an_allow_for_another_method_is_not_an_allow() {
        let other = "arn:aws:execute-api:us-east-1:123456789012:api/v1/GET/other";
        assert_eq!(
            verdict(policy("Allow", json!([other]))).unwrap().decide(ARN),
            Decision::NotAllowed
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let mut output = policy("Allow", json!("*"));
        output["policyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Action": ["execute-api:*"], "Effect": "Deny", "Resource": [ARN]}));
        assert_eq!(verdict(output).unwrap().decide(ARN), Decision::ExplicitDeny);
    }

    #[test]
    fn malformed_outputs_are_refused() {
        let mut nested = policy("Allow", json!("*"));
        nested["context"]["claims"] = json!({"sub": "x"});
        assert!(verdict(nested).unwrap_err().contains("context.claims"));
        let mut listed = policy("Allow", json!("*"));
        listed["context"]["roles"] = json!(["a"]);
        assert!(verdict(listed).is_err());
        assert!(verdict(json!({"policyDocument": {"Statement": []}})).is_err());
        assert!(verdict(policy("Maybe", json!("*"))).is_err());
        assert!(Verdict::parse(b"not json").is_err());
    }

    #[test]
    fn the_cache_keeps_verdicts_for_their_ttl_only() {
        let cache = VerdictCache::default();
        let v = Arc::new(verdict(policy("Allow", json!("*"))).unwrap());
        cache.put("auth", "token", v.clone(), Duration::ZERO);
        assert!(cache.get("auth", "token").is_none());
        cache.put("auth", "token", v.clone(), Duration::from_secs(60));
        assert_eq!(cache.get("auth", "token"), Some(v));
        assert!(cache.get("auth", "other").is_none());
        assert!(cache.get("other", "token").is_none());
    }
}
