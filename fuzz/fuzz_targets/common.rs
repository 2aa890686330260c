//! The verifier the targets share: the functions' construction, with the test key of
//! `shared::test_util`.

use shared::TokenVerifier;

pub use shared::test_util::TEST_SECRET as SECRET;

pub fn verifier() -> TokenVerifier {
    TokenVerifier::new(&shared::test_util::token_config()).expect("the test key is valid")
}
