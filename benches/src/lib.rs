//! Helpers shared by the benchmark binaries: the benchmark signing key (the test key of
//! `shared::test_util`), token minting, and the median/percentile arithmetic the reports use. Not part of the service.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared::TokenIssuer;

pub use shared::test_util::{
    AUDIENCE, ISSUER, PASSWORD, TEST_SIGNING_KEY, jwks_json, token_settings, verifier,
};

/// The user the benchmark tokens are minted for, and the fake store's only user.
pub const USER_ID: &str = "5b8f3c1e-2a47-4d1b-9c3e-7f0a6d2b4e91";
pub const USERNAME: &str = "alice";

/// `count` fresh access tokens for [`USER_ID`], as the token function issues them.
pub fn mint_tokens(count: usize) -> Vec<String> {
    let issuer = TokenIssuer::new(token_settings(), shared::test_util::signing_key());
    (0..count)
        .map(|_| {
            issuer
                .issue_access(ISSUER, shared::test_util::subject(USER_ID, USERNAME))
                .token
        })
        .collect()
}

/// The signed part of `token` (`header.payload`, as bytes) and its decoded signature (r ‖ s):
/// what a bare signature verify checks. `None` for a token that is not three segments.
pub fn signed_parts(token: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (message, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    Some((message.as_bytes().to_vec(), signature))
}

/// The test key's public key as an uncompressed SEC1 point (`04 ‖ x ‖ y`), the form ring's
/// `UnparsedPublicKey` takes.
pub fn public_key_point() -> Vec<u8> {
    let jwk = shared::test_util::signing_key().public_key().jwk();
    let mut point = vec![0x04];
    for coordinate in [jwk.x, jwk.y] {
        point.extend(
            URL_SAFE_NO_PAD
                .decode(coordinate)
                .expect("a JWK coordinate is base64url"),
        );
    }
    point
}

/// Summary statistics of a set of durations.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub min: Duration,
    pub median: Duration,
    pub p90: Duration,
    pub max: Duration,
}

impl Stats {
    /// `None` for an empty set.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let at = |q: f64| sorted[((n - 1) as f64 * q).round() as usize];
        (n > 0).then(|| Self {
            n,
            min: sorted[0],
            median: median_sorted(&sorted),
            p90: at(0.9),
            max: sorted[n - 1],
        })
    }
}

/// Runs `a` and `b` in alternation, `warm_up + pairs` times, so that both see the same moments
/// of a noisy machine, and returns the statistics of the last `pairs` runs of each. Each closure
/// returns the duration of its timed part; what it does outside that part is not counted.
pub fn interleaved(
    pairs: usize,
    warm_up: usize,
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) -> (Stats, Stats) {
    let (mut a_times, mut b_times) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for i in 0..warm_up + pairs {
        let (a_time, b_time) = (a(), b());
        if i >= warm_up {
            a_times.push(a_time);
            b_times.push(b_time);
        }
    }
    let stats = |times: &[Duration]| Stats::of(times).expect("at least one pair");
    (stats(&a_times), stats(&b_times))
}

/// Milliseconds, as the reports print them.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median_sorted(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_with_the_default_configuration() {
        let verifier = verifier();
        for token in mint_tokens(3) {
            let claims = verifier.verify_access(&token, ISSUER).unwrap();
            assert_eq!(claims.sub, USER_ID);
        }
    }

    #[test]
    fn bare_ring_verify_accepts_the_minted_signature_and_refuses_another_message() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key_point());
        let (message, signature) = signed_parts(&mint_tokens(1)[0]).unwrap();
        assert!(key.verify(&message, &signature).is_ok());
        assert!(key.verify(b"another message", &signature).is_err());
    }

    #[test]
    fn interleaved_alternates_and_drops_the_warm_up() {
        let calls = std::cell::RefCell::new(Vec::new());
        let (a, b) = interleaved(
            3,
            2,
            || {
                calls.borrow_mut().push('a');
                Duration::from_millis(calls.borrow().len() as u64)
            },
            || {
                calls.borrow_mut().push('b');
                Duration::from_millis(100)
            },
        );
        assert_eq!(calls.into_inner(), "ababababab".chars().collect::<Vec<_>>());
        // a's timings are 1, 3, 5, 7, 9 ms: the first two pairs are the warm-up.
        assert_eq!(
            (a.n, a.min, a.max),
            (3, Duration::from_millis(5), Duration::from_millis(9))
        );
        assert_eq!((b.n, b.median), (3, Duration::from_millis(100)));
    }

    #[test]
    fn stats_median_of_even_and_odd_sets() {
        let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect::<Vec<_>>();
        assert_eq!(
            Stats::of(&ms(&[3, 1, 2])).unwrap().median,
            Duration::from_millis(2)
        );
        assert_eq!(
            Stats::of(&ms(&[4, 1, 2, 3])).unwrap().median,
            Duration::from_micros(2500)
        );
        assert!(Stats::of(&[]).is_none());
    }
}
