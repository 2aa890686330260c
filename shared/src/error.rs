//! The one error type of the HTTP functions, and the one place that maps it to a status.
//!
//! The `Display` text is what the client sees in `{"msg": ...}`: short and safe. Causes are
//! kept as `source()` and logged for 5xx only.

use http::{Method, StatusCode};

use crate::password::PasswordError;
use crate::store::StoreError;
use crate::user::{InvalidEmail, InvalidPassword, InvalidUsername};

/// Message for an unknown user and a wrong password alike.
pub const BAD_CREDENTIALS: &str = "Bad username or password";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the text says what to fix.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    InvalidUsername(#[from] InvalidUsername),
    #[error(transparent)]
    InvalidPassword(#[from] InvalidPassword),
    #[error(transparent)]
    InvalidEmail(#[from] InvalidEmail),
    /// A verification or reset link's token that is unknown, used, expired or superseded.
    #[error("Invalid or expired link")]
    InvalidLink,
    /// The address of a verification link was verified by another account first.
    #[error("Email address belongs to another account")]
    EmailTaken,
    #[error("Request body must be at most {max} bytes")]
    PayloadTooLarge { max: usize },
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// More than one `refresh_token` cookie: which is the user's cannot be told (cookie tossing).
    #[error("Request has more than one refresh_token cookie")]
    DuplicateRefreshCookie,
    /// The route serves only `allow` (and `OPTIONS` preflights).
    #[error("Method not allowed")]
    MethodNotAllowed { allow: Method },
    #[error("{BAD_CREDENTIALS}")]
    BadCredentials,
    #[error("Missing Authorization header")]
    MissingToken,
    #[error("Invalid or expired token")]
    InvalidToken,
    /// A refresh token that is missing, unknown, expired, revoked or reused (see `session`).
    #[error("Invalid or expired refresh token")]
    InvalidRefreshToken,
    #[error("Current password is wrong")]
    WrongPassword,
    /// A cookie-carrying request from a browser origin that is not allowed (CSRF defence).
    #[error("Origin not allowed")]
    OriginNotAllowed,
    #[error("User no longer exists")]
    UserGone,
    #[error("Username is already taken")]
    UsernameTaken,
    /// Too many failed logins for this username, or from this client address; retry after
    /// `retry_after` seconds.
    #[error("Too many failed login attempts, try again later")]
    TooManyAttempts { retry_after: u64 },
    /// Too many sign-ups from this client address; retry after `retry_after` seconds.
    #[error("Too many sign-ups from this address, try again later")]
    TooManySignUps { retry_after: u64 },
    /// Too many requests that may send mail from this client address; retry after
    /// `retry_after` seconds.
    #[error("Too many requests from this address, try again later")]
    TooManyRequests { retry_after: u64 },
    /// A login's MFA ticket that is unknown, expired, used, or out of attempts.
    #[error("Invalid or expired MFA ticket, log in again")]
    InvalidMfaTicket,
    /// A second-step code that is wrong, of another step, or used already.
    #[error("Invalid code")]
    WrongCode,
    /// The caller's second factor is on already (enrolment asked again).
    #[error("Two-step verification is already on")]
    SecondFactorOn,
    /// A passkey sign-in that did not verify: an unknown credential or challenge, another
    /// origin or relying party, a bad signature, a counter that went back.
    #[error("Passkey not accepted")]
    PasskeyRefused,
    #[error("No such passkey")]
    NoSuchPasskey,
    /// A session id that is not one of the caller's live sessions (unknown, another user's, or
    /// ended): all alike.
    #[error("No such session")]
    NoSuchSession,
    #[error("Mail could not be sent, try again shortly")]
    MailUnavailable(#[source] anyhow::Error),
    #[error("User store unavailable, try again shortly")]
    StoreUnavailable(#[source] StoreError),
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The HTTP status of each error; nowhere else decides one.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_)
            | Self::InvalidUsername(_)
            | Self::InvalidPassword(_)
            | Self::InvalidEmail(_)
            | Self::InvalidLink
            | Self::DuplicateRefreshCookie => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoSuchPasskey | Self::NoSuchSession => StatusCode::NOT_FOUND,
            Self::BadCredentials
            | Self::MissingToken
            | Self::InvalidToken
            | Self::InvalidRefreshToken
            | Self::WrongPassword
            | Self::InvalidMfaTicket
            | Self::WrongCode
            | Self::PasskeyRefused
            | Self::UserGone => StatusCode::UNAUTHORIZED,
            Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::UsernameTaken | Self::EmailTaken | Self::SecondFactorOn => StatusCode::CONFLICT,
            Self::TooManyAttempts { .. } | Self::TooManySignUps { .. } | Self::TooManyRequests { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::StoreUnavailable(_) | Self::MailUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Extra response headers the status calls for.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let header = |name, value: &str| vec![(name, value.to_owned())];
        match self {
            Self::MissingToken => header("www-authenticate", "Bearer"),
            Self::InvalidToken | Self::UserGone => {
                header("www-authenticate", "Bearer error=\"invalid_token\"")
            }
            Self::MethodNotAllowed { allow } => header("allow", &format!("{allow}, OPTIONS")),
            Self::StoreUnavailable(_) | Self::MailUnavailable(_) => header("retry-after", "1"),
            Self::TooManyAttempts { retry_after }
            | Self::TooManySignUps { retry_after }
            | Self::TooManyRequests { retry_after } => header("retry-after", &retry_after.to_string()),
            _ => vec![],
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::StoreUnavailable(e)
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::InvalidUsername(InvalidUsername::Length), 400),
            (ApiError::InvalidPassword(InvalidPassword::TooShort), 400),
            (ApiError::PayloadTooLarge { max: 1 }, 413),
            (ApiError::UnsupportedMediaType, 415),
            (ApiError::DuplicateRefreshCookie, 400),
            (ApiError::MethodNotAllowed { allow: Method::POST }, 405),
            (ApiError::BadCredentials, 401),
            (ApiError::MissingToken, 401),
            (ApiError::InvalidToken, 401),
            (ApiError::UserGone, 401),
            (ApiError::InvalidRefreshToken, 401),
            (ApiError::WrongPassword, 401),
            (ApiError::OriginNotAllowed, 403),
            (ApiError::InvalidEmail(InvalidEmail::Form), 400),
            (ApiError::InvalidLink, 400),
            (ApiError::EmailTaken, 409),
            (ApiError::TooManyRequests { retry_after: 1 }, 429),
            (ApiError::MailUnavailable(anyhow::anyhow!("down")), 503),
            (ApiError::UsernameTaken, 409),
            (ApiError::InvalidMfaTicket, 401),
            (ApiError::WrongCode, 401),
            (ApiError::PasskeyRefused, 401),
            (ApiError::SecondFactorOn, 409),
            (ApiError::NoSuchPasskey, 404),
            (ApiError::TooManyAttempts { retry_after: 60 }, 429),
            (ApiError::TooManySignUps { retry_after: 60 }, 429),
            (
                ApiError::StoreUnavailable(StoreError(anyhow::anyhow!("down"))),
                503,
            ),
            (ApiError::Internal(anyhow::anyhow!("bug")), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
        }
    }

    #[test]
    fn allow_header_names_the_routes_method_and_options() {
        for (method, allow) in [(Method::GET, "GET, OPTIONS"), (Method::POST, "POST, OPTIONS")] {
            let headers = ApiError::MethodNotAllowed { allow: method }.headers();
            assert_eq!(headers, vec![("allow", allow.to_owned())]);
        }
    }

    #[test]
    fn server_errors_do_not_show_their_cause() {
        let err = ApiError::StoreUnavailable(StoreError(anyhow::anyhow!("dial tcp 10.0.0.1: refused")));
        assert!(!err.to_string().contains("10.0.0.1"));
        let err = ApiError::Internal(anyhow::anyhow!("secret detail"));
        assert_eq!(err.to_string(), "Internal server error");
    }
}
