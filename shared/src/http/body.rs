//! Request bodies: JSON objects of known members, read after their content type and size are
//! checked; every failure a 4xx that names the members, never echoing a value.

use lambda_http::Request;
use lambda_http::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// Largest accepted request body. Credentials fit in well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The request body as bytes, after checking its content type and size. API Gateway's
/// `isBase64Encoded` bodies arrive decoded (lambda_http does it), so they parse like any other.
pub(super) fn json_bytes(req: &Request) -> Result<&[u8], ApiError> {
    require_json_content_type(req)?;
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { max: MAX_BODY_BYTES });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("Request body is required".into()));
    }
    Ok(bytes)
}

/// `{"username": ..., "password": ...}` as the client sent them; both non-empty strings.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The members of a JSON object in document order, repeated names kept, so that unknown and
/// duplicate fields are found here rather than by reading serde's error messages.
pub(super) struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> serde::de::Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The members of the request's JSON object body, each named in `allowed` at most once. Every
/// failure is a 4xx whose message names the fields, never echoing a value.
pub(super) fn object(req: &Request, allowed: &[&str], shape: &str) -> Result<Vec<(String, Value)>, ApiError> {
    let bytes = json_bytes(req)?;
    let Members(members) = serde_json::from_slice(bytes).map_err(|_| {
        // Refused as soon as it is not an object: say "not an object" only if it is JSON at all.
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        ApiError::BadRequest(if is_json {
            format!("Request body must be a JSON object with {shape}")
        } else {
            "Request body is not valid JSON".into()
        })
    })?;
    for (i, (name, _)) in members.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Request body may contain only {shape}"
            )));
        }
        if members[..i].iter().any(|(earlier, _)| earlier == name) {
            return Err(ApiError::BadRequest("Request body has a duplicate field".into()));
        }
    }
    Ok(members)
}

pub(super) fn take(members: &mut Vec<(String, Value)>, name: &str) -> Option<Value> {
    let i = members.iter().position(|(n, _)| n == name)?;
    Some(members.swap_remove(i).1)
}

/// Parses the credentials body of `POST /users`: exactly `username` and `password`.
pub fn credentials(req: &Request) -> Result<Credentials, ApiError> {
    let mut members = object(req, &["username", "password"], CREDENTIALS_SHAPE)?;
    Ok(Credentials {
        username: string_field("username", take(&mut members, "username"))?,
        password: string_field("password", take(&mut members, "password"))?,
    })
}

pub(super) const CREDENTIALS_SHAPE: &str = "\"username\" and \"password\"";

/// A sign-up (`POST /users`): the credentials, and an address to verify if the user gave one.
#[derive(Debug)]
pub struct SignUp {
    pub credentials: Credentials,
    pub email: Option<String>,
}

/// Parses the body of `POST /users`: `username`, `password`, and optionally `email`.
pub fn sign_up(req: &Request) -> Result<SignUp, ApiError> {
    let shape = "\"username\" and \"password\" (and optionally \"email\")";
    let mut members = object(req, &["username", "password", "email"], shape)?;
    let email = match take(&mut members, "email") {
        None | Some(Value::Null) => None,
        Some(email) => Some(string_field("email", Some(email))?),
    };
    Ok(SignUp {
        credentials: Credentials {
            username: string_field("username", take(&mut members, "username"))?,
            password: string_field("password", take(&mut members, "password"))?,
        },
        email,
    })
}

/// A login (`POST /token`): the credentials, and whether the client asked for the refresh token
/// in the response body (`"refresh_token_in_body": true`) instead of a cookie.
#[derive(Debug)]
pub struct Login {
    pub credentials: Credentials,
    pub refresh_token_in_body: bool,
}

/// Parses the body of `POST /token`: `username`, `password`, and optionally
/// `refresh_token_in_body` (a boolean).
pub fn login(req: &Request) -> Result<Login, ApiError> {
    let shape = "\"username\" and \"password\" (and optionally \"refresh_token_in_body\")";
    let mut members = object(req, &["username", "password", "refresh_token_in_body"], shape)?;
    let refresh_token_in_body = match take(&mut members, "refresh_token_in_body") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "\"refresh_token_in_body\" must be true or false".into(),
            ));
        }
    };
    Ok(Login {
        credentials: Credentials {
            username: string_field("username", take(&mut members, "username"))?,
            password: string_field("password", take(&mut members, "password"))?,
        },
        refresh_token_in_body,
    })
}

/// A password change (`POST /password`). `Debug` never shows the passwords.
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}

/// Parses the body of `POST /password`: exactly `current_password` and `new_password`.
pub fn password_change(req: &Request) -> Result<PasswordChange, ApiError> {
    let shape = "\"current_password\" and \"new_password\"";
    let mut members = object(req, &["current_password", "new_password"], shape)?;
    Ok(PasswordChange {
        current_password: string_field("current_password", take(&mut members, "current_password"))?,
        new_password: string_field("new_password", take(&mut members, "new_password"))?,
    })
}

/// The confirmation of an account deletion (`POST /users/me/delete`): the current password.
/// `Debug` never shows it.
pub struct AccountDeletion {
    pub password: String,
}

impl std::fmt::Debug for AccountDeletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountDeletion { .. }")
    }
}

/// Parses the body of `POST /users/me/delete`: exactly `password`.
pub fn account_deletion(req: &Request) -> Result<AccountDeletion, ApiError> {
    let mut members = object(req, &["password"], "\"password\"")?;
    Ok(AccountDeletion {
        password: string_field("password", take(&mut members, "password"))?,
    })
}

/// A new address for the caller (`POST /email`). `Debug` never shows the password.
pub struct EmailChange {
    pub email: String,
    pub current_password: String,
}

impl std::fmt::Debug for EmailChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailChange { .. }")
    }
}

/// Parses the body of `POST /email`: exactly `email` and `current_password`.
pub fn email_change(req: &Request) -> Result<EmailChange, ApiError> {
    let shape = "\"email\" and \"current_password\"";
    let mut members = object(req, &["email", "current_password"], shape)?;
    Ok(EmailChange {
        email: string_field("email", take(&mut members, "email"))?,
        current_password: string_field("current_password", take(&mut members, "current_password"))?,
    })
}

/// The token of a mailed link, as text; `Debug` never shows it.
pub struct LinkToken(pub String);

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(..)")
    }
}

/// Parses the body of `POST /email/verify`: exactly `token`.
pub fn link_token(req: &Request) -> Result<LinkToken, ApiError> {
    let mut members = object(req, &["token"], "\"token\"")?;
    Ok(LinkToken(string_field("token", take(&mut members, "token"))?))
}

/// Whose password was forgotten: a username or an address, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgotten {
    Username(String),
    Email(String),
}

/// Parses the body of `POST /password/forgot`: exactly one of `username` and `email`.
pub fn forgotten(req: &Request) -> Result<Forgotten, ApiError> {
    let shape = "either \"username\" or \"email\"";
    let mut members = object(req, &["username", "email"], shape)?;
    match (take(&mut members, "username"), take(&mut members, "email")) {
        (Some(name), None) => Ok(Forgotten::Username(string_field("username", Some(name))?)),
        (None, Some(email)) => Ok(Forgotten::Email(string_field("email", Some(email))?)),
        _ => Err(ApiError::BadRequest(format!(
            "Request body must be a JSON object with {shape}"
        ))),
    }
}

/// A reset (`POST /password/reset`): the link's token and the new password. `Debug` shows
/// neither.
pub struct PasswordReset {
    pub token: LinkToken,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordReset { .. }")
    }
}

/// Parses the body of `POST /password/reset`: exactly `token` and `new_password`.
pub fn password_reset(req: &Request) -> Result<PasswordReset, ApiError> {
    let shape = "\"token\" and \"new_password\"";
    let mut members = object(req, &["token", "new_password"], shape)?;
    Ok(PasswordReset {
        token: LinkToken(string_field("token", take(&mut members, "token"))?),
        new_password: string_field("new_password", take(&mut members, "new_password"))?,
    })
}

/// The members of a JSON object body, for the routes of the second factor and passkeys: each
/// read once by name and type. `Debug` never shows a value (passwords, codes, tickets).
pub struct Fields(Vec<(String, Value)>);

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fields { .. }")
    }
}

/// The body as an object of `allowed` members only, each at most once.
pub fn fields(req: &Request, allowed: &[&str]) -> Result<Fields, ApiError> {
    let shape = allowed
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ");
    object(req, allowed, &shape).map(Fields)
}

impl Fields {
    /// The non-empty string member `name`; 400 when it is missing or not one.
    pub fn string(&mut self, name: &str) -> Result<String, ApiError> {
        string_field(name, take(&mut self.0, name))
    }

    /// As [`Self::string`], `None` when the member is absent or null.
    pub fn optional_string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match take(&mut self.0, name) {
            None | Some(Value::Null) => Ok(None),
            value => string_field(name, value).map(Some),
        }
    }

    /// The boolean member `name`, false when absent or null.
    pub fn flag(&mut self, name: &str) -> Result<bool, ApiError> {
        match take(&mut self.0, name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(ApiError::BadRequest(format!("\"{name}\" must be true or false"))),
        }
    }

    /// The object member `name`; 400 when it is missing or not an object.
    pub fn object(&mut self, name: &str) -> Result<Value, ApiError> {
        match take(&mut self.0, name) {
            Some(value @ Value::Object(_)) => Ok(value),
            None | Some(Value::Null) => Err(ApiError::BadRequest(format!("\"{name}\" is required"))),
            Some(_) => Err(ApiError::BadRequest(format!("\"{name}\" must be an object"))),
        }
    }
}

/// 415 unless the request says `Content-Type: application/json` (parameters such as `charset`
/// allowed).
pub(super) fn require_json_content_type(req: &Request) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

pub(super) fn string_field(name: &str, value: Option<Value>) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Err(ApiError::BadRequest(format!("\"{name}\" is required"))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(ApiError::BadRequest(format!("\"{name}\" must not be empty")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::BadRequest(format!("\"{name}\" must be a string"))),
    }
}
