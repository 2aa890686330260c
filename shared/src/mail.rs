//! Mail the service sends: verification and reset links, and notices of changes to an account.
//!
//! Deployed, through Amazon SES v2 `SendEmail` from the configured sender identity
//! (`MAIL_FROM`); locally the same SDK calls go to the endpoint `AWS_ENDPOINT_URL_SESV2` names
//! (moto's SES, which `./dev run` prints). A message's body holds a link that is as good as a
//! password until it is used: no body, link or subject is ever logged, at any level; a send is
//! logged by its kind and the recipient's domain.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::config::{ConfigError, Source, int_in_range, lookup};
use crate::user::EmailAddress;

/// The SES action of [`SesMailer::send`], as IAM names it.
pub const SEND: &str = "ses:SendEmail";

/// What a message is for: logged (a message never is), and the subject line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A link that proves the address is the user's.
    Verify,
    /// The address asked for belongs to another account: no link, a hint instead.
    AddressInUse,
    /// The account's address changed (to the old one).
    AddressChanged,
    /// A one-time link that sets a new password.
    Reset,
    /// The password was reset.
    PasswordReset,
    /// The account was deleted.
    AccountDeleted,
    /// Two-step verification was turned on, off, or its recovery codes replaced.
    SecondFactorChanged,
    /// A passkey was added to the account or removed from it.
    PasskeysChanged,
}

impl Kind {
    pub fn subject(self) -> &'static str {
        match self {
            Self::Verify => "Confirm your email address",
            Self::AddressInUse => "Someone tried to use your email address",
            Self::AddressChanged => "Your account's email address changed",
            Self::Reset => "Reset your password",
            Self::PasswordReset => "Your password was reset",
            Self::AccountDeleted => "Your account was deleted",
            Self::SecondFactorChanged => "Your two-step verification changed",
            Self::PasskeysChanged => "Your account's passkeys changed",
        }
    }
}

impl Kind {
    /// The message: plain text, the link (if any) on a line of its own.
    pub fn text(self, link: Option<&str>) -> String {
        let link = link.unwrap_or_default();
        match self {
            Self::Verify => format!(
                "Open this link to confirm that this address is yours:\n\n{link}\n\nIt works once and expires. If you did not ask for it, ignore this message: the address will not be used."
            ),
            Self::AddressInUse => "Someone asked to use this address for an account, but it already belongs to one. If that was you, sign in to that account, or reset its password from the sign-in page. Otherwise ignore this message.".into(),
            Self::AddressChanged => format!(
                "Your account's email address was changed to {link}. If you did not do this, reset your password now and contact the service's operator."
            ),
            Self::Reset => format!(
                "Open this link to choose a new password:\n\n{link}\n\nIt works once and expires soon. Setting a new password signs you out everywhere. If you did not ask for it, ignore this message: your password stays as it is."
            ),
            Self::PasswordReset => "Your password was reset and every session signed out. If you did not do this, reset it again now.".into(),
            Self::AccountDeleted => "Your account and everything stored with it were deleted. If you did not do this, contact the service's operator.".into(),
            Self::SecondFactorChanged => format!(
                "Your account's two-step verification changed: {link}. Every other session was signed out. If you did not do this, reset your password now."
            ),
            Self::PasskeysChanged => format!(
                "Your account's passkeys changed: {link}. If you did not do this, reset your password now and remove the passkey."
            ),
        }
    }
}

/// One message to one address. `Debug` shows neither the address nor the text.
pub struct Mail {
    pub kind: Kind,
    pub to: EmailAddress,
    pub text: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// The mail could not be sent (SES refused it or could not be reached).
#[derive(Debug, thiserror::Error)]
#[error("mail not sent: {0}")]
pub struct MailError(#[source] pub anyhow::Error);

/// Sends mail; one implementation deployed and locally (SES), the tests' on a captured SES.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Where links point and how long they hold; read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `MAIL_FROM`: the verified SES identity messages come from. Empty: this deployment sends
    /// no mail, and the routes that need it say so.
    pub from: Option<String>,
    /// `APP_URL`: the web client's address; links are `<APP_URL>/#<route>=<token>`, the token in
    /// the fragment, which browsers never send to a server nor put in a `Referer`.
    pub app_url: String,
    /// `PASSWORD_RESET_TTL_SECONDS`, default 1800 (30 minutes), from 300 to 86400.
    pub reset_ttl: Duration,
    /// `EMAIL_VERIFY_TTL_SECONDS`, default 86400 (a day), from 600 to 604800.
    pub verify_ttl: Duration,
    /// `FORGOT_PASSWORD_RESPONSE_MS`, default 1000, from 0 to 10000: `POST /password/forgot`
    /// answers no sooner, whether it found an account and sent a link or not, so its timing
    /// tells nothing. Above the slowest send it must cover (SES answers in well under a second).
    pub forgot_response: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: None,
            app_url: "http://localhost:5173".into(),
            reset_ttl: Duration::from_secs(1800),
            verify_ttl: Duration::from_secs(86_400),
            forgot_response: Duration::from_millis(1000),
        }
    }
}

impl MailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&crate::config::Env)
    }

    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let from = lookup(source, "MAIL_FROM");
        if let Some(from) = &from {
            EmailAddress::parse(from).map_err(|e| ConfigError::Invalid {
                var: "MAIL_FROM",
                reason: e.to_string(),
            })?;
        }
        // Deployed with a sender, links must point at the real client, never the default.
        let app_url = match (lookup(source, "APP_URL"), &from) {
            (Some(url), _) => url,
            (None, Some(_)) => return Err(ConfigError::Missing { var: "APP_URL" }),
            (None, None) => defaults.app_url,
        };
        if !(app_url.starts_with("https://") || app_url.starts_with("http://localhost"))
            || app_url.ends_with('/')
        {
            return Err(ConfigError::Invalid {
                var: "APP_URL",
                reason: "must be an https:// origin (or http://localhost...) without a trailing slash".into(),
            });
        }
        let seconds = |var, default: Duration, min, max| {
            int_in_range(source, var, default.as_secs(), min, max).map(Duration::from_secs)
        };
        Ok(Self {
            from,
            app_url,
            reset_ttl: seconds("PASSWORD_RESET_TTL_SECONDS", defaults.reset_ttl, 300, 86_400)?,
            verify_ttl: seconds("EMAIL_VERIFY_TTL_SECONDS", defaults.verify_ttl, 600, 604_800)?,
            forgot_response: Duration::from_millis(int_in_range(
                source,
                "FORGOT_PASSWORD_RESPONSE_MS",
                defaults
                    .forgot_response
                    .as_millis()
                    .try_into()
                    .unwrap_or(u64::MAX),
                0,
                10_000,
            )?),
        })
    }

    /// The link for `route` (`verify`, `reset`) with `token` in its fragment.
    pub fn link(&self, route: &str, token: &str) -> String {
        format!("{}/#{route}={token}", self.app_url)
    }
}

/// Amazon SES v2 from one sender identity. The client is built by the first send, not at cold
/// start (as `SecretsKeyStore`'s): most invocations send no mail.
#[derive(Debug, Clone)]
pub struct SesMailer {
    sdk_config: Arc<aws_config::SdkConfig>,
    client: Arc<OnceLock<Client>>,
    from: String,
}

impl SesMailer {
    /// A mailer on `sdk_config`: SES answers within seconds or the send fails.
    pub fn new(sdk_config: &aws_config::SdkConfig, from: &str) -> Self {
        Self {
            sdk_config: Arc::new(sdk_config.clone()),
            client: Arc::default(),
            from: from.to_owned(),
        }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let timeouts = TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(5))
                .build();
            let config = aws_sdk_sesv2::config::Builder::from(&*self.sdk_config)
                .timeout_config(timeouts)
                .build();
            Client::from_conf(config)
        })
    }

    /// The mailer of `config` on `sdk_config`; `None` when the deployment sends no mail.
    pub fn for_config(sdk_config: &aws_config::SdkConfig, config: &MailConfig) -> Option<Self> {
        Some(Self::new(sdk_config, config.from.as_deref()?))
    }
}

fn text(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError(e.into()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(text(mail.kind.subject())?)
            .body(Body::builder().text(text(&mail.text)?).build())
            .build();
        self.client()
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(mail.to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            // Only SES's error code: its message may name the recipients (a sandbox refusal does),
            // and no address goes to a log whole.
            .map_err(|e| {
                use aws_sdk_sesv2::error::ProvideErrorMetadata as _;
                let code = e.code().unwrap_or("no error code").to_owned();
                MailError(anyhow::anyhow!("SES SendEmail failed: {code}"))
            })?;
        tracing::info!(kind = ?mail.kind, to = ?mail.to, "mail sent");
        Ok(())
    }
}

/// The answer to a request that needs mail (an address to verify) on a deployment that sends
/// none: a 400, since the request asks for what this service does not offer.
pub fn not_configured() -> crate::error::ApiError {
    crate::error::ApiError::BadRequest("This service sends no email (MAIL_FROM is not configured)".into())
}

/// Starts the verification of `email` for the user `user_id` (`username_key`, at session epoch
/// `epoch`), as sign-up and `POST /email` do: a link to the address, or, when another account
/// holds it, a notice instead, so that the answer, the same either way, tells nothing. The same
/// store work either way too (the pending verification is written in both cases; unsent, it
/// lapses), so the time does not tell either. The address's limit refuses silently; a message
/// that cannot be sent is [`crate::error::ApiError::MailUnavailable`].
#[allow(clippy::too_many_arguments)]
pub async fn start_verification(
    store: &dyn crate::store::StartVerification,
    mailer: &dyn Mailer,
    limits: &crate::throttle::MailThrottle,
    config: &MailConfig,
    now: u64,
    user_id: &str,
    username_key: &str,
    epoch: u64,
    email: EmailAddress,
) -> Result<(), crate::error::ApiError> {
    let owner = store.email_owner(&email.key()).await?;
    let token = crate::session::RefreshToken::generate();
    let record = crate::store::VerificationRecord {
        user_id: user_id.to_owned(),
        username_key: username_key.to_owned(),
        email: email.as_str().to_owned(),
        epoch,
        expires_at: now + config.verify_ttl.as_secs(),
    };
    store.start_verification(&token.hash(), &record).await?;
    let mail = match owner {
        Some(owner) if owner.user_id != user_id => Mail {
            kind: Kind::AddressInUse,
            text: Kind::AddressInUse.text(None),
            to: email,
        },
        _ => Mail {
            kind: Kind::Verify,
            text: Kind::Verify.text(Some(&config.link("verify", token.expose()))),
            to: email,
        },
    };
    if limits.reserve_recipient(&mail.to).await? {
        mailer
            .send(&mail)
            .await
            .map_err(|e| crate::error::ApiError::MailUnavailable(e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_source;

    #[test]
    fn links_carry_the_token_in_the_fragment() {
        let config = MailConfig::default();
        assert_eq!(config.link("reset", "abc"), "http://localhost:5173/#reset=abc");
    }

    #[test]
    fn a_bad_sender_or_app_url_fails_the_start_naming_it() {
        let err = MailConfig::from_source(&test_source(&[("MAIL_FROM", "Auth <no-reply@example.com>")]))
            .unwrap_err();
        assert!(err.to_string().contains("MAIL_FROM"), "{err}");
        for url in ["http://app.example.com", "https://app.example.com/", "ftp://x"] {
            let err = MailConfig::from_source(&test_source(&[("APP_URL", url)])).unwrap_err();
            assert!(err.to_string().contains("APP_URL"), "{url}: {err}");
        }
        let err =
            MailConfig::from_source(&test_source(&[("MAIL_FROM", "no-reply@example.com")])).unwrap_err();
        assert_eq!(err, ConfigError::Missing { var: "APP_URL" });
        let config = MailConfig::from_source(&test_source(&[
            ("MAIL_FROM", "no-reply@example.com"),
            ("APP_URL", "https://app.example.com"),
            ("PASSWORD_RESET_TTL_SECONDS", "600"),
        ]))
        .unwrap();
        assert_eq!(config.from.as_deref(), Some("no-reply@example.com"));
        assert_eq!(config.reset_ttl, Duration::from_secs(600));
        assert!(MailConfig::from_source(&test_source(&[("PASSWORD_RESET_TTL_SECONDS", "60")])).is_err());
    }
}
