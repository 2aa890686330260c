//! Token verification. Half the inputs are raw tokens; the other half are a header and a
//! payload (split at the first NUL) signed with the real key (ES256, low S), so the fuzzer
//! reaches the claim checks behind the signature. Whatever it accepts must be a current access
//! token.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use shared::{SigningKey, TokenUse, TokenVerifier};

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(common::verifier);
static KEY: LazyLock<SigningKey> = LazyLock::new(shared::test_util::signing_key);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        }
    } else {
        let (header, payload) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = URL_SAFE_NO_PAD.encode(KEY.sign(message.as_bytes()));
        format!("{message}.{signature}")
    };
    if let Ok(claims) = VERIFIER.verify_access(&token, common::ISSUER) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        assert_eq!(claims.token_use, TokenUse::Access);
        assert!(claims.exp + 5 >= now, "accepted an expired token");
        assert!(claims.nbf <= now + 5, "accepted a token not yet valid");
        assert!(claims.iat <= now + 5, "accepted a token issued in the future");
        assert_eq!(claims.iss, common::ISSUER);
        assert!(claims.aud.contains(shared::test_util::AUDIENCE));
        assert!(
            claims.exp.saturating_sub(claims.iat) <= 900 + 5,
            "accepted a token living too long"
        );
        assert!(!claims.sub.is_empty() && !claims.username.is_empty());
    }
});
