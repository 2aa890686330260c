//! The verifier the targets share: the functions' construction, with the test key set and
//! settings of `shared::test_util`.

use shared::TokenVerifier;

pub use shared::test_util::ISSUER;

pub fn verifier() -> TokenVerifier {
    shared::test_util::verifier()
}
