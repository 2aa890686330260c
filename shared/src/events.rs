//! Security events: what happened to an account (a login, a failed one, a session ended, a
//! password or factor changed), written once to the user's history in the table
//! (`GET /me/events`, kept `SECURITY_EVENT_RETENTION_DAYS`) and printed once as a structured log
//! line, which is also the operators' metric ([`crate::metrics`]).
//!
//! Where the request writes anyway, the event is an item of that very transaction: it exists
//! exactly when the change does. Elsewhere (a failed login, a wrong code) it is written best
//! effort, and a write that fails is counted ([`Metric::EventNotRecorded`]), never the
//! request's failure. No event holds a password, token, code or secret: only what kind, the
//! time, the client's address and a short device label.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::config::{ConfigError, Env, Source, int_in_range};
use crate::metrics::{self, Metric};

/// How a login proved who it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    Password,
    Totp,
    RecoveryCode,
    Passkey,
}

/// Which step of a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStep {
    Password,
    SecondFactor,
}

/// How a single session was ended by its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// `POST /logout` with the session's refresh token.
    Logout,
    /// `DELETE /sessions/{id}`, from "Your devices".
    DeviceList,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    LoginSucceeded(LoginMethod),
    LoginFailed(FailedStep),
    /// A used refresh token came back after its grace period: its session was revoked.
    ReuseDetected,
    SessionEnded(EndedBy),
    /// Log out everywhere.
    EndedEverywhere,
    PasswordChanged,
    PasswordReset,
    EmailVerified,
    SecondFactorEnabled,
    SecondFactorDisabled,
    RecoveryCodesReplaced,
    PasskeyAdded,
    PasskeyRemoved,
    /// Logged only: the history goes with the account.
    AccountDeleted,
}

/// Whether the event is something the user did or something refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

impl EventKind {
    /// Every kind, each detail of each.
    pub const ALL: [Self; 19] = [
        Self::LoginSucceeded(LoginMethod::Password),
        Self::LoginSucceeded(LoginMethod::Totp),
        Self::LoginSucceeded(LoginMethod::RecoveryCode),
        Self::LoginSucceeded(LoginMethod::Passkey),
        Self::LoginFailed(FailedStep::Password),
        Self::LoginFailed(FailedStep::SecondFactor),
        Self::ReuseDetected,
        Self::SessionEnded(EndedBy::Logout),
        Self::SessionEnded(EndedBy::DeviceList),
        Self::EndedEverywhere,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::SecondFactorEnabled,
        Self::SecondFactorDisabled,
        Self::RecoveryCodesReplaced,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::AccountDeleted,
    ];

    /// Whether a user's history holds it (`account.deleted` goes with the history).
    pub fn listed(self) -> bool {
        self != Self::AccountDeleted
    }

    /// The event's type as stored, logged and answered (`login.failed`).
    pub fn name(self) -> &'static str {
        match self {
            Self::LoginSucceeded(_) => "login.succeeded",
            Self::LoginFailed(_) => "login.failed",
            Self::ReuseDetected => "session.reuse_detected",
            Self::SessionEnded(_) => "session.ended",
            Self::EndedEverywhere => "sessions.ended_everywhere",
            Self::PasswordChanged => "password.changed",
            Self::PasswordReset => "password.reset",
            Self::EmailVerified => "email.verified",
            Self::SecondFactorEnabled => "second_factor.enabled",
            Self::SecondFactorDisabled => "second_factor.disabled",
            Self::RecoveryCodesReplaced => "recovery_codes.replaced",
            Self::PasskeyAdded => "passkey.added",
            Self::PasskeyRemoved => "passkey.removed",
            Self::AccountDeleted => "account.deleted",
        }
    }

    /// Its detail: how a login was made or failed, how a session ended.
    pub fn detail(self) -> Option<&'static str> {
        match self {
            Self::LoginSucceeded(method) => Some(match method {
                LoginMethod::Password => "password",
                LoginMethod::Totp => "totp",
                LoginMethod::RecoveryCode => "recovery_code",
                LoginMethod::Passkey => "passkey",
            }),
            Self::LoginFailed(step) => Some(match step {
                FailedStep::Password => "password",
                FailedStep::SecondFactor => "second_factor",
            }),
            Self::SessionEnded(by) => Some(match by {
                EndedBy::Logout => "logout",
                EndedBy::DeviceList => "device_list",
            }),
            _ => None,
        }
    }

    pub fn outcome(self) -> Outcome {
        match self {
            Self::LoginFailed(_) | Self::ReuseDetected => Outcome::Failure,
            _ => Outcome::Success,
        }
    }

    /// The metric its log line counts, if any.
    pub fn metric(self) -> Option<Metric> {
        match self {
            Self::LoginSucceeded(_) => Some(Metric::LoginSucceeded),
            Self::LoginFailed(_) => Some(Metric::LoginFailed),
            Self::ReuseDetected => Some(Metric::RefreshTokenReuse),
            _ => None,
        }
    }
}

/// The longest device label kept.
pub const DEVICE_LABEL_MAX: usize = 64;
/// The label of a client whose `User-Agent` says nothing recognisable.
pub const UNKNOWN_DEVICE: &str = "Unknown device";
/// How much of a `User-Agent` is read: real ones are a few hundred bytes; more is not parsed.
pub const USER_AGENT_MAX: usize = 512;

/// Where a request came from: its address as API Gateway saw it, and a short device label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
    pub device: String,
}

impl Client {
    /// A client nothing is known of (a direct invoke).
    pub fn unknown() -> Self {
        Self {
            ip: None,
            device: UNKNOWN_DEVICE.to_owned(),
        }
    }
}

/// A short label for the browser and system a `User-Agent` names ("Firefox 133 on Linux"),
/// parsed with `woothee` (the woothee project's shared rules); at most [`DEVICE_LABEL_MAX`]
/// characters, [`UNKNOWN_DEVICE`] when nothing is recognised. The raw header is never kept.
#[cfg(feature = "devices")]
pub fn device_label(user_agent: Option<&str>) -> String {
    let Some(user_agent) = user_agent else {
        return UNKNOWN_DEVICE.to_owned();
    };
    let cut = user_agent
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|i| *i <= USER_AGENT_MAX)
        .last()
        .unwrap_or(0);
    let user_agent = if user_agent.len() > USER_AGENT_MAX {
        &user_agent[..cut]
    } else {
        user_agent
    };
    let Some(found) = woothee::parser::Parser::new().parse(user_agent) else {
        return UNKNOWN_DEVICE.to_owned();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let major = found.version.split('.').next().unwrap_or("");
    let browser = match (known(found.name), known(major)) {
        (true, true) => format!("{} {major}", found.name),
        (true, false) => found.name.to_owned(),
        _ => String::new(),
    };
    let os = if known(found.os) { found.os } else { "" };
    let label = match (browser.is_empty(), os.is_empty()) {
        (false, false) => format!("{browser} on {os}"),
        (false, true) => browser,
        (true, false) => os.to_owned(),
        (true, true) => return UNKNOWN_DEVICE.to_owned(),
    };
    let label: String = label
        .chars()
        .filter(|c| !c.is_control())
        .take(DEVICE_LABEL_MAX)
        .collect();
    label
}

/// How long an event of no account (a failed login of a name nobody has) stays in the table:
/// it is written only so that a wrong password and an unknown name cost the same round trips
/// (the answer's timing must not tell which it was); no list shows it.
pub const NO_ACCOUNT_SECONDS: u64 = 86_400;

/// One security event, as written and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// UUID v7: ordered by time within a second.
    pub id: String,
    /// The account it happened to; `None` for a failed login of a name that has no account
    /// (stored in no list, for a day: [`NO_ACCOUNT_SECONDS`]).
    pub user_id: Option<String>,
    pub kind: EventKind,
    pub client: Client,
    /// Unix seconds.
    pub at: u64,
    /// When the table may delete it.
    pub expires_at: u64,
}

impl SecurityEvent {
    /// A new event of `kind` for `user_id` at `at`, kept `config.retention`.
    pub fn new(
        kind: EventKind,
        user_id: Option<&str>,
        client: &Client,
        at: u64,
        config: &EventConfig,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.map(str::to_owned),
            kind,
            client: client.clone(),
            at,
            // An event of no account is kept only as long as it takes to write it (see
            // `NO_ACCOUNT_SECONDS`).
            expires_at: at.saturating_add(if user_id.is_some() {
                config.retention.as_secs()
            } else {
                NO_ACCOUNT_SECONDS
            }),
        }
    }

    /// The fields of its log line.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("security_event".into(), json!(self.kind.name()));
        fields.insert("outcome".into(), json!(self.kind.outcome().as_str()));
        fields.insert("event_id".into(), json!(self.id));
        fields.insert("at".into(), json!(self.at));
        if let Some(user_id) = &self.user_id {
            fields.insert("user_id".into(), json!(user_id));
        }
        if let Some(detail) = self.kind.detail() {
            fields.insert("detail".into(), json!(detail));
        }
        fields.insert("ip".into(), json!(self.client.ip));
        fields.insert("device".into(), json!(self.client.device));
        fields
    }

    /// Prints its one log line (with its metric, if it counts one). Call once, after it is
    /// written (or its best-effort write was tried).
    pub fn log(&self) {
        metrics::emit_event(self.kind.metric(), self.fields());
    }
}

/// How long the history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventConfig {
    /// `SECURITY_EVENT_RETENTION_DAYS`, default 90, from 1 to 3650: the table's TTL deletes an
    /// event this long after it happened (within a few days of that, as TTL does).
    pub retention: Duration,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 86_400),
        }
    }
}

impl EventConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let days = int_in_range(src, "SECURITY_EVENT_RETENTION_DAYS", 90, 1, 3650)?;
        Ok(Self {
            retention: Duration::from_secs(days * 86_400),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn failures_are_failures_and_count_their_metric() {
        assert_eq!(
            EventKind::LoginFailed(FailedStep::Password).outcome(),
            Outcome::Failure
        );
        assert_eq!(EventKind::ReuseDetected.metric(), Some(Metric::RefreshTokenReuse));
        assert_eq!(EventKind::PasswordChanged.outcome(), Outcome::Success);
        assert_eq!(EventKind::PasswordChanged.metric(), None);
    }

    #[test]
    fn an_events_log_fields_name_it_and_hold_no_more_than_its_client() {
        let client = Client {
            ip: Some("203.0.113.7".into()),
            device: "Firefox 133 on Linux".into(),
        };
        let event = SecurityEvent::new(
            EventKind::SessionEnded(EndedBy::DeviceList),
            Some("u-1"),
            &client,
            1_000,
            &EventConfig::default(),
        );
        let fields = event.fields();
        assert_eq!(fields["security_event"], "session.ended");
        assert_eq!(fields["detail"], "device_list");
        assert_eq!(fields["outcome"], "success");
        assert_eq!(fields["user_id"], "u-1");
        assert_eq!(fields["ip"], "203.0.113.7");
        assert_eq!(event.expires_at, 1_000 + 90 * 86_400);
    }

    #[test]
    fn retention_is_days_within_bounds() {
        let days = |v| EventConfig::from_source(&source(&[("SECURITY_EVENT_RETENTION_DAYS", v)]));
        assert_eq!(days("30").unwrap().retention, Duration::from_secs(30 * 86_400));
        assert!(days("0").is_err());
        assert!(days("3651").is_err());
        assert_eq!(
            EventConfig::from_source(&source(&[])).unwrap(),
            EventConfig::default()
        );
    }

    #[cfg(feature = "devices")]
    #[test]
    fn a_device_label_names_the_browser_and_system_briefly() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(device_label(Some(firefox)), "Firefox 133 on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(device_label(Some(chrome)), "Chrome 131 on Windows 10");
        assert_eq!(device_label(None), UNKNOWN_DEVICE);
        assert_eq!(device_label(Some("")), UNKNOWN_DEVICE);
        // A command-line client is named as woothee names it.
        assert_eq!(device_label(Some("curl/8.5.0")), "HTTP Library curl");
        assert_eq!(device_label(Some("\u{7}\u{0}")), UNKNOWN_DEVICE);
        let huge = format!("{firefox} {}", "x".repeat(100_000));
        assert!(device_label(Some(&huge)).chars().count() <= DEVICE_LABEL_MAX);
    }
}
