//! Domain newtypes that parse, not validate: a `Username` or `Password` that exists is valid.

use secrecy::{ExposeSecret, SecretString};

/// Shortest username.
pub const USERNAME_MIN: usize = 3;
/// Longest username.
pub const USERNAME_MAX: usize = 32;
/// Shortest password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest password, in bytes: bounds the work one request can make argon2 do.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Why a username was refused; the text is shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUsername {
    #[error("username must be {USERNAME_MIN} to {USERNAME_MAX} characters")]
    Length,
    #[error(
        "username may contain only ASCII letters, digits, '.', '_' and '-', and must start with a letter or digit"
    )]
    Characters,
}

/// Why a password was refused; the text is shown to the client and never holds the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPassword {
    #[error("password must not be empty")]
    Empty,
    #[error("password must be at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    #[error("password must be at most {PASSWORD_MAX_BYTES} bytes")]
    TooLong,
}

/// A username: 3 to 32 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or digit.
/// Unique case-insensitively: `Alice` and `alice` are the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        let len = raw.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return Err(InvalidUsername::Length);
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !raw.chars().all(allowed) || !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(InvalidUsername::Characters);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as the user chose it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Longest email address (RFC 5321's path limit, less the brackets).
pub const EMAIL_MAX: usize = 254;

/// Why an email address was refused; the text is shown to the client and never holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("email must be at most {EMAIL_MAX} characters")]
    TooLong,
    #[error(
        "email must be a plain address such as name@example.com: no display name, spaces, quotes or line breaks"
    )]
    Form,
}

/// An email address in its plain form, `local@domain`: a dot-atom local part (RFC 5322 §3.4.1)
/// of at most 64 characters and a domain of dot-separated letter-digit-hyphen labels with at
/// least two. No display names, comments, quoted local parts, IP-literal domains, whitespace or
/// control characters (so never a header injection), nothing that needs to be read twice.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        if raw.len() > EMAIL_MAX {
            return Err(InvalidEmail::TooLong);
        }
        let (local, domain) = raw.split_once('@').ok_or(InvalidEmail::Form)?;
        let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .split('.')
                .all(|part| !part.is_empty() && part.chars().all(atom));
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let domain_ok = domain.split('.').count() >= 2 && domain.split('.').all(label_ok);
        if !(local_ok && domain_ok) {
            return Err(InvalidEmail::Form);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The address as the user gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercased form that claims and lookups use: one account per address, however it
    /// is capitalised.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The address with most of its local part hidden, for notices (`a***@example.com`).
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// Addresses are personal data: `Debug` shows the domain only.
impl std::fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let domain = self.0.split_once('@').map_or("", |(_, d)| d);
        write!(f, "EmailAddress(…@{domain})")
    }
}

/// A password: at least 8 characters and at most 1024 bytes. `Debug` never shows it.
pub struct Password(SecretString);

impl Password {
    /// For sign-up: enforces the length policy.
    pub fn parse_new(raw: String) -> Result<Self, InvalidPassword> {
        let password = Self::parse_existing(raw)?;
        if password.expose().chars().count() < PASSWORD_MIN_CHARS {
            return Err(InvalidPassword::TooShort);
        }
        Ok(password)
    }

    /// For login: any non-empty password within the size bound is checked against the hash.
    pub fn parse_existing(raw: String) -> Result<Self, InvalidPassword> {
        if raw.is_empty() {
            return Err(InvalidPassword::Empty);
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(InvalidPassword::TooLong);
        }
        Ok(Self(raw.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_within_the_rules_parse() {
        for ok in ["bob", "Alice_01", "a.b-c", "x".repeat(32).as_str(), "007"] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn usernames_outside_the_rules_are_rejected_with_the_reason() {
        for bad in ["", "ab", &"x".repeat(33)] {
            assert_eq!(Username::parse(bad), Err(InvalidUsername::Length), "{bad:?}");
        }
        for bad in [
            "björn",
            "名前名前",
            "a b",
            "_alice",
            ".alice",
            "al/ice",
            "al\u{0}ice",
        ] {
            assert_eq!(Username::parse(bad), Err(InvalidUsername::Characters), "{bad:?}");
        }
    }

    #[test]
    fn username_key_is_case_folded() {
        assert_eq!(Username::parse("Alice").unwrap().key(), "alice");
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "Alice");
    }

    fn refusal(result: Result<Password, InvalidPassword>) -> Option<InvalidPassword> {
        result.err()
    }

    #[test]
    fn new_passwords_need_eight_characters_and_fit_in_1024_bytes() {
        use InvalidPassword::*;
        assert_eq!(refusal(Password::parse_new("1234567".into())), Some(TooShort));
        assert_eq!(refusal(Password::parse_new("12345678".into())), None);
        assert_eq!(
            refusal(Password::parse_new("ééééééé".into())),
            Some(TooShort),
            "7 characters, 14 bytes"
        );
        assert_eq!(refusal(Password::parse_new("x".repeat(1024))), None);
        assert_eq!(refusal(Password::parse_new("x".repeat(1025))), Some(TooLong));
        assert_eq!(refusal(Password::parse_new(String::new())), Some(Empty));
    }

    #[test]
    fn existing_passwords_only_need_to_be_non_empty_and_bounded() {
        assert_eq!(refusal(Password::parse_existing("short".into())), None);
        assert_eq!(
            refusal(Password::parse_existing(String::new())),
            Some(InvalidPassword::Empty)
        );
        assert_eq!(
            refusal(Password::parse_existing("x".repeat(1025))),
            Some(InvalidPassword::TooLong)
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse_new("hunter2hunter2".into()).unwrap();
        assert_eq!(format!("{p:?}"), "Password([redacted])");
    }

    #[test]
    fn plain_addresses_parse_and_anything_else_is_refused() {
        for good in [
            "a@b.co",
            "first.last+tag@mail.example.com",
            "o'brien@example.ie",
            "x_y-z@sub-domain.example",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@@example.com",
            "a@b@example.com",
            "Alice <alice@example.com>",
            "alice@example.com\r\nBcc: victim@example.com",
            "alice@example.com\n",
            " alice@example.com",
            "\"a b\"@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example..com",
            "a@[127.0.0.1]",
            "ünï@example.com",
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(InvalidEmail::Form), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(InvalidEmail::TooLong));
        let local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(EmailAddress::parse(&local), Err(InvalidEmail::Form));
    }

    #[test]
    fn an_address_is_keyed_case_insensitively_and_hidden_in_debug() {
        let address = EmailAddress::parse("Alice.Smith@Example.COM").unwrap();
        assert_eq!(address.key(), "alice.smith@example.com");
        assert_eq!(address.masked(), "A***@Example.COM");
        assert_eq!(format!("{address:?}"), "EmailAddress(…@Example.COM)");
    }
}
