//! Token verification. Half the inputs are raw tokens; the other half are a header and a
//! payload (split at the first NUL) signed with the real key, so the fuzzer reaches the claim
//! checks behind the signature. Whatever it accepts must be a current access token.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use shared::{TokenUse, TokenVerifier};

static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(common::verifier);
static KEY: LazyLock<EncodingKey> =
    LazyLock::new(|| EncodingKey::from_secret(common::SECRET).expect("fuzz key is valid"));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
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
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &KEY, Algorithm::HS256)
            .expect("HMAC signing cannot fail");
        format!("{message}.{signature}")
    };
    if let Ok(claims) = VERIFIER.verify_access(&token) {
        let now = jsonwebtoken::get_current_timestamp();
        assert_eq!(claims.token_use, TokenUse::Access);
        assert!(claims.exp + 5 >= now, "accepted an expired token");
        assert!(claims.nbf <= now + 5, "accepted a token not yet valid");
        assert!(claims.iat <= now + 5, "accepted a token issued in the future");
        assert_eq!(claims.iss, "jwt-auth");
        assert!(claims.aud.contains("jwt-auth-api"));
        assert!(claims.exp.saturating_sub(claims.iat) <= 900 + 5, "accepted a token living too long");
        assert!(!claims.sub.is_empty() && !claims.username.is_empty());
    }
});
