//! The second factor and passkeys: TOTP codes ([`totp`]), single-use recovery codes, the
//! sealing of TOTP secrets at rest ([`sealing`]), and the WebAuthn relying party
//! ([`passkey`]). The routes that use them are the token function's; what they store is in
//! [`crate::store`] (`SecondFactors`, `PasskeyStore`).

pub mod passkey;
pub mod sealing;
pub mod totp;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{ConfigError, Env, Source, int_in_range, lookup};

pub use sealing::SealingKey;
pub use totp::TotpSecret;

/// How many recovery codes enrolment (and each regeneration) hands out.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code without its dashes: base32, 5 bits each, 80 bits in all,
/// so the stored hashes cannot be reversed by trying every code.
pub const RECOVERY_CODE_CHARS: usize = 16;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A recovery code as the user gets it once: `xxxx-xxxx-xxxx-xxxx`. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    /// A fresh set of [`RECOVERY_CODES`] codes.
    pub fn generate_set() -> Vec<Self> {
        let rng = SystemRandom::new();
        (0..RECOVERY_CODES)
            .map(|_| {
                let mut bytes = [0u8; RECOVERY_CODE_CHARS];
                #[allow(clippy::expect_used)]
                rng.fill(&mut bytes)
                    .expect("the operating system's random number generator is unavailable");
                let chars: Vec<char> = bytes
                    .iter()
                    .map(|b| BASE32[usize::from(b % 32)] as char)
                    .collect();
                Self(
                    chars
                        .chunks(4)
                        .map(|group| group.iter().collect::<String>())
                        .collect::<Vec<_>>()
                        .join("-"),
                )
            })
            .collect()
    }

    /// What a user typed, if it can be a recovery code: letter case, spaces and dashes ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let plain: String = text
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        (plain.len() == RECOVERY_CODE_CHARS && plain.bytes().all(|b| BASE32.contains(&b)))
            .then_some(Self(plain))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps of the code of user `user_id`: base64url SHA-256 of the id and the
    /// code without dashes. A fast hash is enough for 80 random bits.
    pub fn hash(&self, user_id: &str) -> String {
        let plain: String = self.0.chars().filter(|&c| c != '-').collect();
        URL_SAFE_NO_PAD.encode(digest(&SHA256, format!("{user_id}\n{plain}").as_bytes()))
    }
}

/// What a user sent as the second step: a TOTP code (six digits) or a recovery code. `Debug`
/// never shows either.
#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    Totp(String),
    Recovery(RecoveryCode),
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Code::Totp([redacted])",
            Self::Recovery(_) => "Code::Recovery([redacted])",
        })
    }
}

impl Code {
    /// The code `text` is, by its form; `None` if it is neither form.
    pub fn parse(text: &str) -> Option<Self> {
        let trimmed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if trimmed.len() == totp::DIGITS && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Self::Totp(trimmed));
        }
        RecoveryCode::parse(text).map(Self::Recovery)
    }
}

/// Where the sealing key comes from: `MFA_KEY` or `MFA_KEY_SECRET`, one of them required.
#[derive(Debug)]
pub enum SealingKeySource {
    /// `MFA_KEY`: base64url of 32 bytes, given directly.
    Key(Box<SealingKey>),
    /// `MFA_KEY_SECRET`: the id of the Secrets Manager secret whose value the key is derived
    /// from, read on the first use.
    Secret(String),
}

impl SealingKeySource {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        match (lookup(src, "MFA_KEY"), lookup(src, "MFA_KEY_SECRET")) {
            (Some(key), None) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(key.trim())
                    .ok()
                    .filter(|bytes| bytes.len() == 32)
                    .ok_or_else(|| ConfigError::Invalid {
                        var: "MFA_KEY",
                        reason: "must be base64url (no padding) of 32 random bytes".into(),
                    })?;
                Ok(Self::Key(Box::new(SealingKey::derive(&bytes))))
            }
            (None, Some(secret)) => Ok(Self::Secret(secret)),
            (Some(_), Some(_)) => Err(ConfigError::Invalid {
                var: "MFA_KEY",
                reason: "set MFA_KEY or MFA_KEY_SECRET, not both".into(),
            }),
            (None, None) => Err(ConfigError::Missing {
                var: "MFA_KEY_SECRET",
            }),
        }
    }
}

/// The second factor's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaConfig {
    /// `TOTP_ISSUER`, default `jwt-auth`: the name authenticator apps show beside the account.
    pub issuer: String,
    /// `MFA_TICKET_SECONDS`, default 300 (60 to 900): how long a login's MFA ticket lasts.
    pub ticket_seconds: u64,
    /// `MFA_TICKET_MAX_ATTEMPTS`, default 5 (1 to 10): codes one ticket may try.
    pub ticket_attempts: u32,
    /// `TOTP_ENROL_SECONDS`, default 600 (60 to 3600): how long a started enrolment waits for
    /// its first code.
    pub enrol_seconds: u64,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            issuer: "jwt-auth".into(),
            ticket_seconds: 300,
            ticket_attempts: 5,
            enrol_seconds: 600,
        }
    }
}

impl MfaConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let issuer = lookup(src, "TOTP_ISSUER").unwrap_or(defaults.issuer);
        if issuer.contains(':') || issuer.len() > 64 {
            return Err(ConfigError::Invalid {
                var: "TOTP_ISSUER",
                reason: "must be at most 64 characters, without ':'".into(),
            });
        }
        Ok(Self {
            issuer,
            ticket_seconds: int_in_range(src, "MFA_TICKET_SECONDS", defaults.ticket_seconds, 60, 900)?,
            ticket_attempts: int_in_range(
                src,
                "MFA_TICKET_MAX_ATTEMPTS",
                u64::from(defaults.ticket_attempts),
                1,
                10,
            )? as u32,
            enrol_seconds: int_in_range(src, "TOTP_ENROL_SECONDS", defaults.enrol_seconds, 60, 3600)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_source as source;

    #[test]
    fn recovery_codes_are_ten_distinct_80_bit_codes_read_back_in_any_form() {
        let codes = RecoveryCode::generate_set();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().map(RecoveryCode::expose).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.expose().len(), 19, "{:?}", code.expose());
        let typed = code.expose().to_uppercase().replace('-', " ");
        let parsed = RecoveryCode::parse(&typed).expect("read back");
        assert_eq!(parsed.hash("u1"), code.hash("u1"));
        assert_ne!(code.hash("u1"), code.hash("u2"), "bound to the user");
        assert!(!format!("{code:?}").contains(&code.expose()[..4]));
    }

    #[test]
    fn a_code_is_totp_or_recovery_by_its_form() {
        assert_eq!(Code::parse(" 123 456 "), Some(Code::Totp("123456".into())));
        assert!(matches!(
            Code::parse("abcd-efgh-ijkl-mnop"),
            Some(Code::Recovery(_))
        ));
        for bad in ["12345", "1234567", "abcd-efgh-ijkl-mno1", "abcd-efgh", ""] {
            assert_eq!(Code::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_key_is_required_once_and_well_formed() {
        assert_eq!(
            SealingKeySource::from_source(&source(&[])).unwrap_err(),
            ConfigError::Missing {
                var: "MFA_KEY_SECRET"
            }
        );
        let key = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([1u8; 16]);
        for vars in [
            vec![("MFA_KEY", short.as_str())],
            vec![("MFA_KEY", key.as_str()), ("MFA_KEY_SECRET", "arn")],
        ] {
            let err = SealingKeySource::from_source(&source(&vars)).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: "MFA_KEY", .. }),
                "{err:?}"
            );
            assert!(!err.to_string().contains(&key), "never echoes the key");
        }
        let from_secret =
            SealingKeySource::from_source(&source(&[("MFA_KEY_SECRET", "arn:secret")])).unwrap();
        assert!(matches!(from_secret, SealingKeySource::Secret(ref id) if id == "arn:secret"));
        assert!(matches!(
            SealingKeySource::from_source(&source(&[("MFA_KEY", key.as_str())])),
            Ok(SealingKeySource::Key(_))
        ));
    }

    #[test]
    fn the_settings_default_and_are_bounded() {
        assert_eq!(
            MfaConfig::from_source(&source(&[])).unwrap(),
            MfaConfig::default()
        );
        for (var, value) in [
            ("TOTP_ISSUER", "a:b"),
            ("MFA_TICKET_SECONDS", "5"),
            ("MFA_TICKET_MAX_ATTEMPTS", "0"),
        ] {
            let err = MfaConfig::from_source(&source(&[(var, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: v, .. } if v == var),
                "{err:?}"
            );
        }
    }
}
