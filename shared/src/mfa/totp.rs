//! TOTP (RFC 6238) as authenticator apps implement it: HMAC-SHA-1, 6 digits, 30-second steps,
//! a code accepted one step either side of now (clocks drift, people type slowly). The codes
//! come from `totp-rs`; which step a code belongs to is decided here, because that step is what
//! the store marks used (a code is accepted once: only a step after the last accepted one).

use ring::rand::{SecureRandom, SystemRandom};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds of a time step.
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a secret: 160 bits, the length RFC 4226 recommends for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// A TOTP shared secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A new secret from the system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        // Fails only where the OS has no randomness, and then no secret may be made at all.
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the operating system's random number generator is unavailable");
        Self(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// A secret as [`Self::base32`] writes it (what an authenticator app is given).
    pub fn from_base32(text: &str) -> Option<Self> {
        Secret::try_from_base32(text)
            .ok()
            .map(|secret| Self(secret.as_bytes().to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, issuer: &str, account: &str) -> Totp {
        // Unchecked: the secret's length is ours (160 bits); issuer and account are labels
        // (TOTP_ISSUER is checked at cold start, and no username holds a ':'), escaped in the
        // URI by totp-rs.
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::new(self.0.clone().into_boxed_slice()))
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build_noncompliant()
    }

    /// The secret in base32 (RFC 4648, no padding), for typing into an app by hand.
    pub fn base32(&self) -> String {
        Secret::new(self.0.clone().into_boxed_slice()).to_base32()
    }

    /// The `otpauth://totp/...` URI an authenticator app reads from a QR code (Google
    /// Authenticator's key URI format).
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        // Fails only for an empty account name or one with ':'; a username is neither.
        self.totp(issuer, account).to_url().unwrap_or_default()
    }

    /// `uri` as a QR code: an SVG document (black modules on white, a quiet zone), for an app to
    /// scan. `None` only for a URI too long for any QR code.
    pub fn qr_svg(uri: &str) -> Option<String> {
        let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
        Some(
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build(),
        )
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: u64) -> String {
        self.totp("", "")
            .generate(step.saturating_mul(STEP_SECONDS))
            .to_string()
    }

    /// The time step `code` is the code of, among the step of `now` and one either side; `None`
    /// when it is none of theirs (or not six digits). Compared in constant time.
    pub fn step_of(&self, code: &str, now: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now / STEP_SECONDS;
        [current, current.saturating_sub(1), current + 1]
            .into_iter()
            .find(|&step| same(self.code_at_step(step).as_bytes(), code.as_bytes()))
    }
}

/// Equal, in time that depends only on the length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_are_rfc_6238s_test_vectors_in_six_digits() {
        // Appendix B gives 8 digits; 6 digits are their last six (RFC 4226 §5.3, mod 10^6).
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(
                rfc_secret().code_at_step(time / STEP_SECONDS),
                eight[2..],
                "at {time}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = rfc_secret();
        let now = 1_111_111_111; // step 37037037, 21 s into it
        let step = now / STEP_SECONDS;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = step.checked_add_signed(offset).unwrap();
            let code = secret.code_at_step(at);
            let expected = accepted.then_some(at);
            assert_eq!(secret.step_of(&code, now), expected, "step offset {offset}");
        }
    }

    #[test]
    fn the_step_edges_are_the_thirty_second_boundaries() {
        let secret = rfc_secret();
        let code = secret.code_at_step(10); // seconds 300..=329
        assert_eq!(
            secret.step_of(&code, 270),
            Some(10),
            "one step early: 270 is step 9"
        );
        assert_eq!(secret.step_of(&code, 269), None, "269 is step 8: two early");
        assert_eq!(secret.step_of(&code, 359), Some(10), "359 is step 11");
        assert_eq!(secret.step_of(&code, 360), None, "360 is step 12");
    }

    #[test]
    fn anything_but_six_digits_is_no_code() {
        let secret = rfc_secret();
        let code = secret.code_at_step(2);
        for bad in ["", "12345", "1234567", &format!(" {code}"), "12a456"] {
            assert_eq!(secret.step_of(bad, 60), None, "{bad:?}");
        }
    }

    #[test]
    fn the_uri_names_the_issuer_account_and_parameters() {
        let uri = rfc_secret().uri("jwt-auth", "alice");
        assert!(uri.starts_with("otpauth://totp/jwt-auth:alice?"), "{uri}");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        assert!(uri.contains("issuer=jwt-auth"), "{uri}");
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            TotpSecret::from_base32(&rfc_secret().base32()),
            Some(rfc_secret())
        );
        assert!(!format!("{:?}", rfc_secret()).contains("GEZ"));
        let svg = TotpSecret::qr_svg(&uri).expect("a QR code");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg:.80}");
    }
}
