//! Secrets at rest that the service must read back (a user's TOTP secret): AES-256-GCM under a
//! key only the token function can read, each value with a fresh random nonce and bound to its
//! user by the associated data, so a sealed value copied onto another user's item does not open.
//!
//! The key comes from `MFA_KEY` (base64url of 32 bytes: local runs and tests) or from the
//! Secrets Manager secret `MFA_KEY_SECRET` names (deployed: the template generates its value,
//! and only the token function's role may read it), through HKDF-SHA256 either way. A sealed
//! value is `v1.` and base64url of nonce ‖ ciphertext ‖ tag.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

const VERSION: &str = "v1.";

/// The sealing key. `Debug` never shows it.
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

impl SealingKey {
    /// The key derived from `material` (at least 32 bytes of secret randomness).
    pub fn derive(material: &[u8]) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"jwt-auth mfa sealing v1");
        // expand fails only for an output longer than 255 hashes; a key is 32 bytes.
        #[allow(clippy::expect_used)]
        let key: UnboundKey = salt
            .extract(material)
            .expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .map(UnboundKey::from)
            .expect("HKDF expands to one AES-256 key");
        Self(LessSafeKey::new(key))
    }

    /// `plain`, sealed for `owner` (the associated data).
    pub fn seal(&self, plain: &[u8], owner: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the operating system's random number generator is unavailable");
        let mut sealed = plain.to_vec();
        // Sealing fails only for inputs over GCM's 64 GiB limit.
        #[allow(clippy::expect_used)]
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM seals a short secret");
        format!(
            "{VERSION}{}",
            URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat())
        )
    }

    /// What [`Self::seal`] sealed for `owner`; `None` for anything else (another key, another
    /// owner, a changed byte).
    pub fn open(&self, sealed: &str, owner: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(VERSION)?).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut ciphertext = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut ciphertext)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_for_its_owner() {
        let key = SealingKey::derive(&[7u8; 32]);
        let sealed = key.seal(b"the secret", "user-1");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("the secret"));
        assert_eq!(key.open(&sealed, "user-1").as_deref(), Some(&b"the secret"[..]));
        assert_eq!(key.open(&sealed, "user-2"), None, "bound to its owner");
        assert_eq!(SealingKey::derive(&[8u8; 32]).open(&sealed, "user-1"), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(std::str::from_utf8(&tampered).unwrap(), "user-1"), None);
        assert_ne!(
            key.seal(b"the secret", "user-1"),
            sealed,
            "a fresh nonce each time"
        );
        assert!(!format!("{key:?}").contains('7'));
    }
}
