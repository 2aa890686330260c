//! Operators' metrics: one JSON line on stdout per counted thing, in CloudWatch's embedded metric
//! format (EMF), so CloudWatch Logs turns the line into a metric with no API call on the request
//! path, and the same line is the structured log entry Logs Insights queries.
//!
//! Lambda passes a stdout line that is a JSON object through as it is, also with the JSON log
//! format, and CloudWatch Logs extracts the metrics of any line holding an `_aws` member
//! ("Specification: Embedded metric format", Amazon CloudWatch User Guide). The line carries a
//! `level` member, so Lambda's log-level filtering reads it as the INFO line it is.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::config::{ConfigError, Env, Source, lookup};

/// Every metric the functions emit (the template's alarms name only these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// A login (password, second step or passkey) that started a session.
    LoginSucceeded,
    /// A login refused for a wrong password or second-step code.
    LoginFailed,
    /// A used refresh token presented again after its grace period (its session is revoked).
    RefreshTokenReuse,
    /// A 429 a function answered (login, sign-up and mail limits).
    Throttled,
    /// A 5xx a function answered.
    ServerError,
    /// A security event written best effort (outside a transaction) that could not be stored.
    EventNotRecorded,
}

impl Metric {
    pub const ALL: [Self; 6] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::RefreshTokenReuse,
        Self::Throttled,
        Self::ServerError,
        Self::EventNotRecorded,
    ];

    /// The CloudWatch metric name.
    pub fn name(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "LoginSucceeded",
            Self::LoginFailed => "LoginFailed",
            Self::RefreshTokenReuse => "RefreshTokenReuse",
            Self::Throttled => "Throttled",
            Self::ServerError => "ServerError",
            Self::EventNotRecorded => "EventNotRecorded",
        }
    }
}

/// The namespace when `METRICS_NAMESPACE` is unset (the template sets `JwtAuth/<stack name>`).
pub const DEFAULT_NAMESPACE: &str = "JwtAuth";

static NAMESPACE: OnceLock<String> = OnceLock::new();

/// `METRICS_NAMESPACE`, default [`DEFAULT_NAMESPACE`]: 1 to 255 characters of letters, digits
/// and `.-_/#:` (CloudWatch's rule), not starting with `:`.
pub fn namespace_from(src: &dyn Source) -> Result<String, ConfigError> {
    let Some(value) = lookup(src, "METRICS_NAMESPACE") else {
        return Ok(DEFAULT_NAMESPACE.to_owned());
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if value.is_empty() || value.len() > 255 || value.starts_with(':') || !value.chars().all(allowed) {
        return Err(ConfigError::Invalid {
            var: "METRICS_NAMESPACE",
            reason: "must be 1 to 255 letters, digits or . - _ / # : (not starting with :)".into(),
        });
    }
    Ok(value)
}

/// Reads and checks `METRICS_NAMESPACE` once, at cold start; later calls keep the first value.
pub fn configure_from_env() -> Result<(), ConfigError> {
    let namespace = namespace_from(&Env)?;
    let _ = NAMESPACE.set(namespace);
    Ok(())
}

fn namespace() -> &'static str {
    NAMESPACE.get().map_or(DEFAULT_NAMESPACE, String::as_str)
}

/// The line for `fields` (what it is about; never a secret) at `timestamp_ms`: an EMF document
/// counting `metric` once, or with no metric a plain JSON log line.
pub fn line(
    namespace: &str,
    metric: Option<Metric>,
    fields: Map<String, Value>,
    timestamp_ms: u128,
) -> Value {
    let mut object = Map::new();
    let Some(metric) = metric else {
        object.insert("level".into(), json!("INFO"));
        object.extend(fields);
        return Value::Object(object);
    };
    object.insert(
        "_aws".into(),
        json!({
            "Timestamp": u64::try_from(timestamp_ms).unwrap_or(u64::MAX),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        }),
    );
    object.insert(metric.name().into(), json!(1));
    object.insert("level".into(), json!("INFO"));
    object.extend(fields);
    Value::Object(object)
}

/// Prints the EMF line counting `metric` once, with `fields`.
pub fn emit(metric: Metric, fields: Map<String, Value>) {
    emit_event(Some(metric), fields);
}

/// Prints one line of `fields`, counting `metric` once if there is one.
pub fn emit_event(metric: Option<Metric>, fields: Map<String, Value>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // println! holds stdout's lock for the whole line, so lines of concurrent requests never
    // interleave (and a test's capture gets it).
    println!("{}", line(namespace(), metric, fields, now));
}

/// Counts an answer the operators watch: a 429 or a 5xx of `route`; nothing for other statuses.
pub fn answered(method: &str, route: &str, status: u16) {
    let metric = match status {
        429 => Metric::Throttled,
        500..=599 => Metric::ServerError,
        _ => return,
    };
    let mut fields = Map::new();
    fields.insert("status".into(), json!(status));
    fields.insert("route".into(), json!(format!("{method} {route}")));
    emit(metric, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn a_line_is_an_emf_document_counting_its_metric_once() {
        let mut fields = Map::new();
        fields.insert("security_event".into(), json!("login.failed"));
        let line = line(
            "JwtAuth/test",
            Some(Metric::LoginFailed),
            fields,
            1_765_040_000_123,
        );
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_765_040_000_123u64);
        assert_eq!(directive["Namespace"], "JwtAuth/test");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "LoginFailed", "Unit": "Count"}])
        );
        assert_eq!(line["LoginFailed"], 1);
        assert_eq!(line["security_event"], "login.failed");
        assert_eq!(line["level"], "INFO");
    }

    #[test]
    fn a_line_without_a_metric_is_a_plain_log_line() {
        let mut fields = Map::new();
        fields.insert("security_event".into(), json!("password.changed"));
        let line = line("JwtAuth/test", None, fields, 0);
        assert!(line.get("_aws").is_none());
        assert_eq!(line["security_event"], "password.changed");
    }

    #[test]
    fn every_metric_has_its_own_name() {
        let names: std::collections::HashSet<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
    }

    #[test]
    fn the_namespace_defaults_and_is_checked() {
        assert_eq!(namespace_from(&source(&[])).unwrap(), DEFAULT_NAMESPACE);
        assert_eq!(
            namespace_from(&source(&[("METRICS_NAMESPACE", "JwtAuth/my-stack")])).unwrap(),
            "JwtAuth/my-stack"
        );
        for bad in [":x", "a{b}", &"x".repeat(256)] {
            assert!(
                namespace_from(&source(&[("METRICS_NAMESPACE", bad)])).is_err(),
                "{bad}"
            );
        }
    }
}
