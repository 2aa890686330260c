//! A Lambda TOKEN authorizer's output as API Gateway reads it: the IAM policy evaluated against
//! the method ARN (with IAM's `*` and `?` wildcards), the context checked for flat values, and
//! the verdict cached per token for `ReauthorizeEvery` seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerResponse;
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use regex_lite::Regex;
use serde_json::{Map, Value};

use crate::responses::GatewayError;

/// A well-formed authorizer output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub principal_id: String,
    statements: Vec<IamPolicyStatement>,
    /// The context values, written out as strings as API Gateway hands them to the backend.
    pub context: HashMap<String, String>,
}

/// Why API Gateway would refuse an authorizer's output (a 500).
#[derive(Debug, thiserror::Error)]
pub enum MalformedOutput {
    #[error("not an authorizer response: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no principalId")]
    NoPrincipal,
    #[error("context.{0} is not a string, number or boolean")]
    NestedContext(String),
    #[error("a policy statement has no Effect")]
    NoEffect,
}

impl Verdict {
    /// Reads an authorizer's output: `principalId`, `policyDocument` and a flat `context`.
    pub fn parse(output: &[u8]) -> Result<Self, MalformedOutput> {
        let output: Value = serde_json::from_slice(output)?;
        // The event types default a missing Effect to Allow; API Gateway refuses it.
        let statements = output
            .pointer("/policyDocument/Statement")
            .and_then(Value::as_array);
        if statements.is_some_and(|all| all.iter().any(|s| s.get("Effect").is_none())) {
            return Err(MalformedOutput::NoEffect);
        }
        let output: ApiGatewayCustomAuthorizerResponse<Option<Map<String, Value>>> =
            serde_json::from_value(output)?;
        let mut context = HashMap::new();
        for (key, value) in output.context.unwrap_or_default() {
            let text = match value {
                Value::String(text) => text,
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => return Err(MalformedOutput::NestedContext(key)),
            };
            context.insert(key, text);
        }
        Ok(Self {
            principal_id: output.principal_id.ok_or(MalformedOutput::NoPrincipal)?,
            statements: output.policy_document.statement,
            context,
        })
    }

    /// Whether the policy lets `execute-api:Invoke` on `method_arn`: a Deny covering it wins
    /// (`ExplicitDeny`), and no statement covering it is `AccessDenied`.
    pub fn decide(&self, method_arn: &str) -> Result<(), GatewayError> {
        let covering = |effect: IamPolicyEffect| {
            self.statements.iter().any(|s| {
                s.effect == effect
                    && s.action
                        .iter()
                        .any(|a| wildcard_match(&a.to_ascii_lowercase(), "execute-api:invoke"))
                    && s.resource.iter().any(|r| wildcard_match(r, method_arn))
            })
        };
        if covering(IamPolicyEffect::Deny) {
            Err(GatewayError::ExplicitDeny)
        } else if covering(IamPolicyEffect::Allow) {
            Ok(())
        } else {
            Err(GatewayError::AccessDenied)
        }
    }
}

/// IAM-style matching: `*` any run of characters (slashes and colons included), `?` one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern = regex_lite::escape(pattern);
    let pattern = pattern.replace(r"\*", ".*").replace(r"\?", ".");
    Regex::new(&format!("(?s)^{pattern}$")).is_ok_and(|re| re.is_match(text))
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
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (expires, verdict) = entries.get(&(authorizer.to_owned(), identity.to_owned()))?;
        (Instant::now() < *expires).then(|| verdict.clone())
    }

    /// Keeps `verdict` for `ttl`; a zero TTL keeps nothing.
    pub fn put(&self, authorizer: &str, identity: &str, verdict: Arc<Verdict>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
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

    fn verdict(output: Value) -> Result<Verdict, MalformedOutput> {
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
        assert_eq!(v.decide(ARN), Ok(()));
        assert_eq!(v.principal_id, "user-1");
        assert_eq!(
            v.context,
            HashMap::from([
                ("admin".to_owned(), "false".to_owned()),
                ("n".to_owned(), "7".to_owned()),
                ("sub".to_owned(), "user-1".to_owned())
            ])
        );
    }

    #[test]
    fn an_allow_for_another_method_is_not_an_allow() {
        let other = "arn:aws:execute-api:us-east-1:123456789012:api/v1/GET/other";
        assert_eq!(
            verdict(policy("Allow", json!([other]))).unwrap().decide(ARN),
            Err(GatewayError::AccessDenied)
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let mut output = policy("Allow", json!("*"));
        output["policyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Action": ["execute-api:*"], "Effect": "Deny", "Resource": [ARN]}));
        let decision = verdict(output).unwrap().decide(ARN);
        assert_eq!(decision, Err(GatewayError::ExplicitDeny));
    }

    #[test]
    fn malformed_outputs_are_refused() {
        let mut nested = policy("Allow", json!("*"));
        nested["context"]["claims"] = json!({"sub": "x"});
        assert!(
            verdict(nested)
                .unwrap_err()
                .to_string()
                .contains("context.claims")
        );
        let mut listed = policy("Allow", json!("*"));
        listed["context"]["roles"] = json!(["a"]);
        assert!(verdict(listed).is_err());
        assert!(verdict(json!({"policyDocument": {"Statement": []}})).is_err());
        assert!(verdict(policy("Maybe", json!("*"))).is_err());
        let mut no_effect = policy("Allow", json!("*"));
        no_effect["policyDocument"]["Statement"][0]
            .as_object_mut()
            .unwrap()
            .remove("Effect");
        assert!(matches!(verdict(no_effect), Err(MalformedOutput::NoEffect)));
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
