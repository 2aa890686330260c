//! The key set's rotation as a pure function: the stored set and the stage the deployment asks
//! for (the template's `SigningKeyRotation`) in; the new set out.
//!
//! Each stage names a shape of the set, and the function moves the set to it when that is safe,
//! keeping every key that can be kept. It is idempotent (a stage applied twice changes nothing
//! the second time). CloudFormation's rollback is an Update back to the old stage, which looks
//! exactly like a forward deployment, so every stage is reached only by safe steps: a key signs
//! only after a deployment in which it was published, a key that signed leaves the set only on
//! `retire-previous`, and a stage that could only be reached by an unsafe step (a retired signer
//! signing again, a key signing unpublished) leaves the set where it is. The answer is always
//! the public side of the set as stored, so the deployed configuration (the verifiers' public
//! keys, the token function's kid) always matches it, rolled back or not.

use std::fmt;
use std::str::FromStr;

use shared::SigningKey;
use shared::keystore::{KeyState, StoredKey, StoredKeySet};

/// A stage of a rotation: the template's `SigningKeyRotation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Leave the set as it is (a new set gets its first key). The default.
    None,
    /// A next key beside the current one: the verifiers get it, nothing signs with it yet. Once
    /// the next key signs, nothing changes: the old key never signs again.
    PublishNext,
    /// The next key signs; the old one stays published as the previous key. Without a published
    /// next key, nothing changes.
    SignWithNext,
    /// Only the current key stays: the previous one (or an unused next one) is deleted.
    RetirePrevious,
}

impl Rotation {
    pub const ALL: [Self; 4] = [
        Self::None,
        Self::PublishNext,
        Self::SignWithNext,
        Self::RetirePrevious,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::PublishNext => "publish-next",
            Self::SignWithNext => "sign-with-next",
            Self::RetirePrevious => "retire-previous",
        }
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rotation {
    type Err = RotationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RotationError::UnknownStage(s.to_owned()))
    }
}

/// Why a stage cannot be applied. The messages are CloudFormation's `Reason`: they say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    #[error("SigningKeyRotation {0:?} is not one of none, publish-next, sign-with-next, retire-previous")]
    UnknownStage(String),
    #[error(
        "the stored key set is not one this function writes ({0}); fix the secret or restore an earlier version of it"
    )]
    Malformed(String),
}

/// What a stage made of the set.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub set: StoredKeySet,
    /// Whether `set` differs from the stored one (and must be written).
    pub changed: bool,
}

/// The set's shape: one current key, and during a rotation a next or a previous one.
enum Shape<'a> {
    Empty,
    Steady {
        current: &'a StoredKey,
    },
    Publishing {
        current: &'a StoredKey,
        next: &'a StoredKey,
    },
    Retiring {
        current: &'a StoredKey,
    },
}

fn shape(set: &StoredKeySet) -> Result<Shape<'_>, RotationError> {
    let malformed = |why: &str| Err(RotationError::Malformed(why.to_owned()));
    let of = |state| set.keys.iter().filter(move |k| k.state == state);
    let (currents, nexts, previouses) = (
        of(KeyState::Current).count(),
        of(KeyState::Next).count(),
        of(KeyState::Previous).count(),
    );
    for (i, key) in set.keys.iter().enumerate() {
        if set.keys[..i].iter().any(|k| k.kid == key.kid) {
            return malformed("two keys share a kid");
        }
    }
    let current = set.in_state(KeyState::Current);
    match (current, currents, nexts, previouses) {
        (None, 0, 0, 0) => Ok(Shape::Empty),
        (Some(current), 1, 0, 0) => Ok(Shape::Steady { current }),
        (Some(current), 1, 1, 0) => Ok(Shape::Publishing {
            current,
            next: set.in_state(KeyState::Next).unwrap_or(current),
        }),
        (Some(current), 1, 0, 1) => Ok(Shape::Retiring { current }),
        (_, 0, _, _) => malformed("no current key"),
        (_, 1, _, _) => malformed("a next and a previous key at once, or more than one of either"),
        _ => malformed("more than one current key"),
    }
}

fn with_state(key: &StoredKey, state: KeyState) -> StoredKey {
    StoredKey { state, ..key.clone() }
}

/// Moves `set` to the shape of the stage `to`, or leaves it where it is when the step there is
/// not safe; `generate` makes a new key. The current key always comes first in the result.
///
/// | set \ stage | none | publish-next | sign-with-next | retire-previous |
/// |---|---|---|---|---|
/// | empty | C | C, N | C | C |
/// | C | = | C, N (new) | = (nothing published, so nothing signs anew) | = |
/// | C, N | = | = | N becomes C, C becomes P | N deleted (a cancelled rotation) |
/// | C, P | = | = (C keeps signing: P may be a leaked key) | = | P deleted |
///
/// So the current key after is the current key before or, on `sign-with-next`, the published
/// next key; and only `retire-previous` deletes a key.
pub fn apply(
    set: &StoredKeySet,
    to: Rotation,
    generate: &mut dyn FnMut() -> SigningKey,
) -> Result<Outcome, RotationError> {
    let changed = |keys: Vec<StoredKey>| Outcome {
        set: StoredKeySet { keys },
        changed: true,
    };
    let unchanged = || Outcome {
        set: set.clone(),
        changed: false,
    };
    let outcome = match (shape(set)?, to) {
        (Shape::Empty, Rotation::PublishNext) => changed(vec![
            StoredKey::new(&generate(), KeyState::Current),
            StoredKey::new(&generate(), KeyState::Next),
        ]),
        (Shape::Empty, _) => changed(vec![StoredKey::new(&generate(), KeyState::Current)]),
        (_, Rotation::None) => unchanged(),

        (Shape::Steady { current }, Rotation::PublishNext) => {
            changed(vec![current.clone(), StoredKey::new(&generate(), KeyState::Next)])
        }
        (Shape::Publishing { .. } | Shape::Retiring { .. }, Rotation::PublishNext) => unchanged(),

        (Shape::Publishing { current, next }, Rotation::SignWithNext) => changed(vec![
            with_state(next, KeyState::Current),
            with_state(current, KeyState::Previous),
        ]),
        (Shape::Steady { .. } | Shape::Retiring { .. }, Rotation::SignWithNext) => unchanged(),

        (Shape::Steady { .. }, Rotation::RetirePrevious) => unchanged(),
        (Shape::Publishing { current, .. } | Shape::Retiring { current, .. }, Rotation::RetirePrevious) => {
            changed(vec![current.clone()])
        }
    };
    Ok(outcome)
}

/// What the verifiers and the token function get from a set: the custom resource's `Data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Every key's public half, as a JWKS JSON string (`JWT_PUBLIC_KEYS`).
    pub jwks: String,
    /// The current key's kid (`JWT_SIGNING_KEY_ID`).
    pub signing_key_id: String,
}

/// The set's public side; refuses a set whose keys do not read back under their kids.
pub fn published(set: &StoredKeySet) -> Result<Published, RotationError> {
    let current = set
        .in_state(KeyState::Current)
        .ok_or_else(|| RotationError::Malformed("no current key".into()))?;
    let public = set
        .public_keys()
        .map_err(|e| RotationError::Malformed(e.to_string()))?;
    let jwks = serde_json::to_string(&public.jwks()).map_err(|e| RotationError::Malformed(e.to_string()))?;
    Ok(Published {
        jwks,
        signing_key_id: current.kid.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::PublicKeySet;
    use shared::test_util::{next_signing_key, signing_key};

    use Rotation::{None as Steady, PublishNext, RetirePrevious, SignWithNext};

    /// A generator of fresh keys that counts its calls.
    struct Keys(usize);

    impl Keys {
        fn generate(&mut self) -> SigningKey {
            self.0 += 1;
            SigningKey::generate()
        }
    }

    fn run(set: &StoredKeySet, to: Rotation) -> (Outcome, usize) {
        let mut keys = Keys(0);
        let outcome = apply(set, to, &mut || keys.generate()).unwrap();
        (outcome, keys.0)
    }

    fn step(set: &StoredKeySet, to: Rotation) -> StoredKeySet {
        run(set, to).0.set
    }

    /// The set as (kid, state) pairs, current first.
    fn states(set: &StoredKeySet) -> Vec<(String, KeyState)> {
        set.keys.iter().map(|k| (k.kid.clone(), k.state)).collect()
    }

    fn stored(keys: &[(&SigningKey, KeyState)]) -> StoredKeySet {
        StoredKeySet {
            keys: keys.iter().map(|(k, s)| StoredKey::new(k, *s)).collect(),
        }
    }

    fn steady() -> StoredKeySet {
        stored(&[(&signing_key(), KeyState::Current)])
    }

    fn publishing() -> StoredKeySet {
        stored(&[
            (&signing_key(), KeyState::Current),
            (&next_signing_key(), KeyState::Next),
        ])
    }

    fn retiring() -> StoredKeySet {
        stored(&[
            (&next_signing_key(), KeyState::Current),
            (&signing_key(), KeyState::Previous),
        ])
    }

    fn kid_a() -> String {
        signing_key().kid().to_owned()
    }

    fn kid_b() -> String {
        next_signing_key().kid().to_owned()
    }

    /// What every step must keep, whatever stage came before: a rollback is an Update like any
    /// other. The signer after is the signer before or the published next key (never a new key,
    /// never the previous one); a key that signs or signed leaves only on `retire-previous`; the
    /// answer names a signing key it publishes.
    fn assert_safe(before: &StoredKeySet, to: Rotation, after: &StoredKeySet) {
        let what = format!("{to} on {:?}", states(before));
        let kid = |state| before.in_state(state).map(|k| k.kid.as_str());
        let signer = after
            .in_state(KeyState::Current)
            .expect("a current key")
            .kid
            .as_str();
        if let Some(current) = kid(KeyState::Current) {
            assert!(
                signer == current || Some(signer) == kid(KeyState::Next),
                "{what}: {signer} signs"
            );
        }
        if to != RetirePrevious {
            for kept in before
                .keys
                .iter()
                .filter(|k| matches!(k.state, KeyState::Current | KeyState::Previous))
            {
                assert!(
                    after.keys.iter().any(|k| k.kid == kept.kid),
                    "{what}: {} deleted",
                    kept.kid
                );
            }
        }
        let answer = published(after).unwrap();
        let jwks = PublicKeySet::from_jwks(&answer.jwks).unwrap();
        assert!(
            jwks.kids().any(|k| k == answer.signing_key_id),
            "{what}: the answer signs with an unpublished key"
        );
    }

    #[test]
    fn stages_read_and_print_as_the_template_spells_them() {
        for stage in Rotation::ALL {
            assert_eq!(stage.as_str().parse::<Rotation>().unwrap(), stage);
        }
        assert_eq!(
            "Publish-Next".parse::<Rotation>().unwrap_err(),
            RotationError::UnknownStage("Publish-Next".into())
        );
    }

    #[test]
    fn an_empty_set_gets_a_new_current_key_whatever_the_stage() {
        for stage in [Steady, SignWithNext, RetirePrevious] {
            let (outcome, generated) = run(&StoredKeySet::default(), stage);
            assert!(outcome.changed);
            assert_eq!(generated, 1, "{stage}");
            assert_eq!(outcome.set.keys.len(), 1);
            assert_eq!(outcome.set.keys[0].state, KeyState::Current);
            assert!(
                outcome.set.keys[0].signing_key().is_ok(),
                "the PEM reads back under its kid"
            );
        }
        let (outcome, generated) = run(&StoredKeySet::default(), PublishNext);
        assert_eq!(generated, 2);
        let states: Vec<_> = outcome.set.keys.iter().map(|k| k.state).collect();
        assert_eq!(states, [KeyState::Current, KeyState::Next]);
        assert_ne!(outcome.set.keys[0].kid, outcome.set.keys[1].kid);
    }

    #[test]
    fn none_never_changes_a_set_that_has_keys() {
        for set in [steady(), publishing(), retiring()] {
            let (outcome, generated) = run(&set, Steady);
            assert!(!outcome.changed);
            assert_eq!((states(&outcome.set), generated), (states(&set), 0));
        }
    }

    #[test]
    fn publish_next_adds_a_new_key_that_does_not_sign() {
        let (outcome, generated) = run(&steady(), PublishNext);
        assert!(outcome.changed);
        assert_eq!(generated, 1);
        let after = states(&outcome.set);
        assert_eq!(after[0], (kid_a(), KeyState::Current));
        assert_eq!(after[1].1, KeyState::Next);
        assert_ne!(after[1].0, kid_a());
    }

    #[test]
    fn sign_with_next_promotes_the_next_key_and_keeps_the_old_one_published() {
        let after = step(&publishing(), SignWithNext);
        assert_eq!(
            states(&after),
            [(kid_b(), KeyState::Current), (kid_a(), KeyState::Previous)]
        );
    }

    #[test]
    fn retire_previous_deletes_the_old_key() {
        let after = step(&retiring(), RetirePrevious);
        assert_eq!(states(&after), [(kid_b(), KeyState::Current)]);
    }

    #[test]
    fn retire_previous_on_a_published_next_key_cancels_the_rotation() {
        let after = step(&publishing(), RetirePrevious);
        assert_eq!(states(&after), [(kid_a(), KeyState::Current)]);
    }

    #[test]
    fn every_stage_applied_again_changes_nothing() {
        // CloudFormation retries, Lambda retries an invocation that failed to answer, and a
        // request can arrive twice: the second run must find the set already where it belongs.
        for set in [StoredKeySet::default(), steady(), publishing(), retiring()] {
            for stage in Rotation::ALL {
                let once = step(&set, stage);
                let (twice, generated) = run(&once, stage);
                assert!(!twice.changed, "{stage} on {:?}", states(&set));
                assert_eq!((states(&twice.set), generated), (states(&once), 0));
            }
        }
    }

    #[test]
    fn a_full_rotation_ends_with_only_the_new_key() {
        let published = step(&steady(), PublishNext);
        let new_kid = published.keys[1].kid.clone();
        let signing = step(&published, SignWithNext);
        let retired = step(&signing, RetirePrevious);
        assert_eq!(states(&retired), [(new_kid.clone(), KeyState::Current)]);
        // The next rotation starts from there.
        let again = step(&retired, PublishNext);
        assert_eq!(again.keys[0].kid, new_kid);
        assert_eq!(again.keys[1].state, KeyState::Next);
    }

    /// Every shape, then every stage, then every stage again (each a forward step or the
    /// rollback of the one before), then every stage once more: each step keeps the rules.
    #[test]
    fn every_step_from_every_shape_keeps_the_signer_safe_and_the_answer_consistent() {
        let mut steps = 0;
        for start in [StoredKeySet::default(), steady(), publishing(), retiring()] {
            for first in Rotation::ALL {
                let one = step(&start, first);
                assert_safe(&start, first, &one);
                for second in Rotation::ALL {
                    let two = step(&one, second);
                    assert_safe(&one, second, &two);
                    for third in Rotation::ALL {
                        let three = step(&two, third);
                        assert_safe(&two, third, &three);
                        steps += 3;
                    }
                }
            }
        }
        assert_eq!(steps, 4 * 4 * 4 * 4 * 3);
    }

    #[test]
    fn publish_next_after_the_new_key_signs_changes_nothing() {
        // A forward publish-next (a leak response started over) or the rollback of
        // sign-with-next: either way the old key, perhaps the leaked one, never signs again.
        let (outcome, generated) = run(&retiring(), PublishNext);
        assert!(!outcome.changed);
        assert_eq!((states(&outcome.set), generated), (states(&retiring()), 0));
    }

    #[test]
    fn sign_with_next_without_a_published_key_changes_nothing() {
        // A deployment that skipped publish-next, or the rollback of retire-previous: the
        // current key keeps signing, and the answer says so.
        let (outcome, generated) = run(&steady(), SignWithNext);
        assert!(!outcome.changed);
        assert_eq!((states(&outcome.set), generated), (states(&steady()), 0));
    }

    #[test]
    fn sets_this_function_never_writes_are_refused() {
        let a = signing_key();
        let b = next_signing_key();
        let c = SigningKey::generate();
        for set in [
            stored(&[(&a, KeyState::Next)]),
            stored(&[(&a, KeyState::Previous)]),
            stored(&[(&a, KeyState::Current), (&b, KeyState::Current)]),
            stored(&[
                (&a, KeyState::Current),
                (&b, KeyState::Next),
                (&c, KeyState::Previous),
            ]),
            stored(&[
                (&a, KeyState::Current),
                (&b, KeyState::Next),
                (&c, KeyState::Next),
            ]),
            stored(&[(&a, KeyState::Current), (&a, KeyState::Next)]),
        ] {
            for stage in Rotation::ALL {
                let mut keys = Keys(0);
                let result = apply(&set, stage, &mut || keys.generate());
                assert!(
                    matches!(result, Err(RotationError::Malformed(_))),
                    "{stage} on {:?}",
                    states(&set)
                );
            }
        }
    }

    #[test]
    fn the_published_set_holds_every_public_key_and_names_the_current_one() {
        let published = published(&retiring()).unwrap();
        assert_eq!(published.signing_key_id, kid_b());
        let set = PublicKeySet::from_jwks(&published.jwks).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), [kid_b(), kid_a()]);
        assert!(!published.jwks.contains("PRIVATE"), "public halves only");
        for member in ["\"d\"", "private_key"] {
            assert!(!published.jwks.contains(member), "{member}");
        }
    }

    #[test]
    fn a_key_stored_under_another_kid_is_not_published() {
        let mut set = publishing();
        set.keys[1].kid = "not-its-thumbprint".into();
        assert!(matches!(published(&set), Err(RotationError::Malformed(_))));
        assert!(matches!(
            published(&StoredKeySet::default()),
            Err(RotationError::Malformed(_))
        ));
    }
}
