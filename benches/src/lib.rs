//! Helpers shared by the benchmark binaries: the benchmark signing configuration (the test key
//! of `shared::test_util`), token minting, and the median/percentile arithmetic the reports use. Not part of the service.

use std::time::Duration;

use shared::TokenIssuer;

pub use shared::test_util::{AUDIENCE, ISSUER, KEY_ID, PASSWORD, token_config};

/// The HS256 secret every benchmark signs and verifies with (`JWT_SECRET`): the test key.
pub const BENCH_SECRET: &str = match std::str::from_utf8(shared::test_util::TEST_SECRET) {
    Ok(secret) => secret,
    Err(_) => panic!("the test secret is UTF-8"),
};

/// The user the benchmark tokens are minted for, and the fake store's only user.
pub const USER_ID: &str = "5b8f3c1e-2a47-4d1b-9c3e-7f0a6d2b4e91";
pub const USERNAME: &str = "alice";

/// `count` fresh access tokens for [`USER_ID`], as the token function issues them.
pub fn mint_tokens(count: usize) -> Vec<String> {
    let issuer = TokenIssuer::new(&token_config()).expect("the benchmark key is valid");
    (0..count)
        .map(|_| {
            issuer
                .issue_access(USER_ID, USERNAME)
                .expect("signing with a valid key succeeds")
                .token
        })
        .collect()
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
        let verifier = shared::TokenVerifier::new(&token_config()).unwrap();
        for token in mint_tokens(3) {
            let claims = verifier.verify_access(&token).unwrap();
            assert_eq!(claims.sub, USER_ID);
        }
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
