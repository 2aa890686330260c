//! What each store capability sends to DynamoDB, as data: per request, its action, key prefix,
//! the attributes it names and what it asks back. `tests/suite/iam.rs` holds these declarations
//! against each function's IAM grants in `template.yaml`, and the test harness holds every
//! request the functions' stores really send against them, so neither side can drift.
//!
//! The table's layout (key attribute, prefixes, attribute names) lives here too: the store
//! writes it, the declarations and the IAM check read it.

/// The table's partition key attribute (a string). `template.yaml` defines the same.
pub const PARTITION_KEY: &str = "pk";
/// The table's TTL attribute (unix seconds). `template.yaml` enables TTL on it.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Key prefix of user items, `USER#<lowercase name>`.
pub const USER_PREFIX: &str = "USER#";
/// Key prefix of login-attempt counters: `LOGIN#<lowercase name>#<window>` per username, and
/// `LOGIN#client/<address>#<window>` per client address (no username holds a `/`).
pub const LOGIN_PREFIX: &str = "LOGIN#";
/// Key prefix of sign-up counters, `SIGNUP#client/<address>#<window>`.
pub const SIGNUP_PREFIX: &str = "SIGNUP#";
/// Key prefix of sessions, `SESSION#<session id>`.
pub const SESSION_PREFIX: &str = "SESSION#";
/// Key prefix of refresh tokens, `REFRESH#<base64url SHA-256 of the token>`.
pub const REFRESH_PREFIX: &str = "REFRESH#";
/// The table's index of every item by its owner's id (`user_id`), keys only: sessions and
/// refresh tokens, which account deletion finds there. `template.yaml` defines the same.
pub const USER_INDEX: &str = "ByUser";
/// The attribute [`USER_INDEX`] is keyed by.
pub const USER_ID_ATTRIBUTE: &str = "user_id";

/// Key prefix of a verified address's claim, `EMAIL#<lowercase address>`: one account per
/// address, and the way from an address to its account.
pub const EMAIL_PREFIX: &str = "EMAIL#";
/// Key prefix of a pending address verification, `VERIFY#<base64url SHA-256 of the token>`.
pub const VERIFY_PREFIX: &str = "VERIFY#";
/// Key prefix of a password-reset token, `RESET#<base64url SHA-256 of the token>`.
pub const RESET_PREFIX: &str = "RESET#";
/// Key prefix of mail counters: `MAIL#to/<SHA-256 of the lowercase address>#<window>` per
/// recipient, and `MAIL#client/<address>#<window>` per client address.
pub const MAIL_PREFIX: &str = "MAIL#";
/// Key prefix of a login waiting for its second step, `MFA#<base64url SHA-256 of the ticket>`.
pub const MFA_PREFIX: &str = "MFA#";
/// Key prefix of a WebAuthn ceremony's state, `CHALLENGE#<random id>`.
pub const CHALLENGE_PREFIX: &str = "CHALLENGE#";
/// Key prefix of a passkey, `PASSKEY#<base64url credential id>`.
pub const PASSKEY_PREFIX: &str = "PASSKEY#";
/// Key prefix of a security event, `EVENT#<UUID v7>`.
pub const EVENT_PREFIX: &str = "EVENT#";
/// The table's index of each user's lists, newest first: its live sessions and its security
/// events. `template.yaml` defines the same (sparse: only items with [`LIST_KEY_ATTRIBUTE`]).
pub const LIST_INDEX: &str = "UserLists";
/// The partition key of [`LIST_INDEX`]: `SESSIONS#<user id>#<epoch>` on a live session (removed
/// when it is revoked), `EVENTS#<user id>` on an event.
pub const LIST_KEY_ATTRIBUTE: &str = "list_key";
/// The sort key of [`LIST_INDEX`]: `<unix seconds, 10 digits>#<id>` ([`super::sort_key`]).
pub const LIST_SORT_ATTRIBUTE: &str = "list_at";
/// The [`LIST_INDEX`] partition prefix of a user's live sessions of one epoch.
pub const SESSIONS_LIST_PREFIX: &str = "SESSIONS#";
/// The [`LIST_INDEX`] partition prefix of a user's security events.
pub const EVENTS_LIST_PREFIX: &str = "EVENTS#";
/// Every partition prefix of [`LIST_INDEX`].
pub const LIST_PREFIXES: [&str; 2] = [SESSIONS_LIST_PREFIX, EVENTS_LIST_PREFIX];
/// Every key prefix of the table.
pub const PREFIXES: [&str; 13] = [
    USER_PREFIX,
    LOGIN_PREFIX,
    SIGNUP_PREFIX,
    SESSION_PREFIX,
    REFRESH_PREFIX,
    EMAIL_PREFIX,
    VERIFY_PREFIX,
    RESET_PREFIX,
    MAIL_PREFIX,
    MFA_PREFIX,
    CHALLENGE_PREFIX,
    PASSKEY_PREFIX,
    EVENT_PREFIX,
];

/// The counter attribute of a `LOGIN#` or `SIGNUP#` item.
pub const ATTEMPTS_ATTRIBUTE: &str = "attempts";
/// The session epoch of a `USER#` item (absent: 0).
pub const EPOCH_ATTRIBUTE: &str = "epoch";
/// The verified address of a `USER#` item.
pub const EMAIL_ATTRIBUTE: &str = "email";
/// The newest reset token's hash on a `USER#` item.
pub const RESET_HASH_ATTRIBUTE: &str = "reset_hash";
/// The map of a user's passkeys' listings on its `USER#` item.
pub const PASSKEYS_ATTRIBUTE: &str = "passkeys";
/// The attribute of a `USER#` item that must never be read by a function that only needs the
/// profile.
pub const SECRET_ATTRIBUTE: (&str, &str) = (USER_PREFIX, "password_hash");

/// A DynamoDB item action, as IAM authorizes it. Transactions have no action of their own: each
/// of their items is authorized as one of these ("Using IAM with DynamoDB transactions", DynamoDB
/// Developer Guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    GetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    ConditionCheckItem,
    /// Only on [`USER_INDEX`]: the keys of a user's items.
    Query,
}

impl Action {
    /// The IAM action, `dynamodb:GetItem`.
    pub fn iam(self) -> String {
        format!("dynamodb:{self:?}")
    }

    /// A read: IAM gives it `dynamodb:Select`, writes `dynamodb:ReturnValues`.
    pub fn reads(self) -> bool {
        matches!(self, Self::GetItem | Self::Query)
    }
}

/// The request an item is part of (`dynamodb:EnclosingOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Within {
    Alone,
    TransactGetItems,
    TransactWriteItems,
}

/// One kind of request a capability sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub action: Action,
    /// The key prefix of the item; empty for a [`Action::Query`] on an index, whose keys are
    /// user ids.
    pub prefix: &'static str,
    /// The index it reads (`table/<name>/index/<index>` to IAM); `None`: the table.
    pub index: Option<&'static str>,
    /// The attributes it names, the key included (`dynamodb:Attributes`): a read's projection,
    /// an update's or condition check's expressions. `None`: the whole item (a read without a
    /// projection, a put, a delete).
    pub attributes: Option<&'static [&'static str]>,
    /// A write's `ReturnValues` (`NONE` when unset).
    pub returns: &'static str,
    pub within: Within,
}

const fn get(prefix: &'static str, attributes: Option<&'static [&'static str]>, within: Within) -> Access {
    Access {
        action: Action::GetItem,
        prefix,
        index: None,
        attributes,
        returns: "NONE",
        within,
    }
}

const fn write(
    action: Action,
    prefix: &'static str,
    attributes: Option<&'static [&'static str]>,
    returns: &'static str,
    within: Within,
) -> Access {
    Access {
        action,
        prefix,
        index: None,
        attributes,
        returns,
        within,
    }
}

use Action::{ConditionCheckItem, DeleteItem, PutItem, Query, UpdateItem};
use Within::{Alone, TransactGetItems, TransactWriteItems};

/// The read of a session a route that accepts an access token makes.
const SESSION_STATUS: Access = get(
    SESSION_PREFIX,
    Some(&[PARTITION_KEY, "revoked_at", TTL_ATTRIBUTE]),
    Alone,
);
/// Who holds a verified address: the claim's owner, projected.
const EMAIL_OWNER: Access = get(
    EMAIL_PREFIX,
    Some(&[PARTITION_KEY, USER_ID_ATTRIBUTE, "username_key"]),
    Alone,
);
/// The attributes of a pending verification (`VERIFY#`).
const VERIFICATION: &[&str] = &[
    PARTITION_KEY,
    USER_ID_ATTRIBUTE,
    "username_key",
    EMAIL_ATTRIBUTE,
    EPOCH_ATTRIBUTE,
    TTL_ATTRIBUTE,
];
/// The attributes of a login's ticket (`MFA#`).
const TICKET: &[&str] = &[
    PARTITION_KEY,
    USER_ID_ATTRIBUTE,
    "username_key",
    EPOCH_ATTRIBUTE,
    ATTEMPTS_ATTRIBUTE,
    TTL_ATTRIBUTE,
];
/// The attributes of a ceremony's state (`CHALLENGE#`).
const CHALLENGE: &[&str] = &[PARTITION_KEY, "kind", USER_ID_ATTRIBUTE, "state", TTL_ATTRIBUTE];
/// The attributes of a passkey (`PASSKEY#`).
const PASSKEY: &[&str] = &[
    PARTITION_KEY,
    USER_ID_ATTRIBUTE,
    "username_key",
    "credential",
    "counter",
    "created_at",
];
/// A security event written in the transaction of the change it records.
const EVENT_IN_TRANSACTION: Access = write(PutItem, EVENT_PREFIX, Some(EVENT), "NONE", TransactWriteItems);
/// The attributes of a security event (`EVENT#`).
const EVENT: &[&str] = &[
    PARTITION_KEY,
    USER_ID_ATTRIBUTE,
    LIST_KEY_ATTRIBUTE,
    LIST_SORT_ATTRIBUTE,
    "event_type",
    "outcome",
    "detail",
    "ip",
    "device",
    "at",
    TTL_ATTRIBUTE,
];
/// What a listing of a user's sessions reads ([`super::Devices::list_sessions`]). With
/// [`EVENT_LISTING`], less the keys, what [`LIST_INDEX`] projects (`template.yaml`, held against
/// these by `tests/suite/dynamodb.rs`).
pub const SESSION_LISTING: &[&str] = &[
    PARTITION_KEY,
    LIST_KEY_ATTRIBUTE,
    LIST_SORT_ATTRIBUTE,
    "started_at",
    "last_used_at",
    "device",
    "ip_at_start",
    "ip_last_used",
    TTL_ATTRIBUTE,
];
/// What a listing of a user's events reads ([`super::SecurityLog::list_events`]).
pub const EVENT_LISTING: &[&str] = &[
    PARTITION_KEY,
    LIST_KEY_ATTRIBUTE,
    LIST_SORT_ATTRIBUTE,
    "event_type",
    "outcome",
    "detail",
    "ip",
    "device",
    "at",
];
/// A listing of [`LIST_INDEX`]: one partition kind, the projected attributes only.
const fn listing(prefix: &'static str, attributes: &'static [&'static str]) -> Access {
    Access {
        action: Query,
        prefix,
        index: Some(LIST_INDEX),
        attributes: Some(attributes),
        returns: "NONE",
        within: Alone,
    }
}
/// The revocation of a session: when, and out of the list (logout, reuse, "Your devices",
/// conditioned on its place in the list and its last use).
const REVOKE_SESSION: Access = write(
    UpdateItem,
    SESSION_PREFIX,
    Some(&[
        PARTITION_KEY,
        "revoked_at",
        LIST_KEY_ATTRIBUTE,
        LIST_SORT_ATTRIBUTE,
        "last_used_at",
    ]),
    "NONE",
    TransactWriteItems,
);
/// A whole user item, password hash included.
const WHOLE_USER: Access = get(USER_PREFIX, None, Alone);
/// A counter's reservation: one more, the TTL, the new count returned.
const fn count(prefix: &'static str) -> Access {
    write(
        UpdateItem,
        prefix,
        Some(&[PARTITION_KEY, ATTEMPTS_ATTRIBUTE, TTL_ATTRIBUTE]),
        "UPDATED_NEW",
        Alone,
    )
}

/// What a function may do in the table: each a store trait of [`super`] (or a group of its
/// methods), which is all a function's `App` holds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// [`super::CreateUser`]: sign-up.
    CreateUser,
    /// [`super::SignUpAttempts`]: sign-ups counted per client address.
    CountSignUps,
    /// [`super::FindUser`]: the login's read of the user, password hash included.
    FindUser,
    /// [`super::RehashPassword`]: the hash redone with new settings at login.
    RehashPassword,
    /// [`super::ReadCaller`]: the user (no hash) and the session an access token names.
    ReadCaller,
    /// [`super::ChangePassword`]: the caller with the hash, then the new hash and epoch.
    ChangePassword,
    /// [`super::EndAllSessions`]: log out everywhere.
    EndAllSessions,
    /// [`super::LoginAttempts`]: login attempts counted per name and per client address.
    CountLoginAttempts,
    /// [`super::SessionStore`]: sessions and their refresh tokens.
    Sessions,
    /// [`super::DeleteAccount`]: the user, its login counters, and every item of its id.
    DeleteAccount,
    /// [`super::StartVerification`]: who holds an address, and a pending verification.
    StartVerification,
    /// [`super::VerifyEmail`]: a pending verification used, the address claimed.
    VerifyEmail,
    /// [`super::ResetPassword`]: reset tokens, and the password they set.
    ResetPassword,
    /// [`super::MailAttempts`]: mail counted per address and per client address.
    CountMail,
    /// [`super::SecondFactors`]: TOTP enrolment and changes, and logins' second step.
    SecondFactor,
    /// [`super::PasskeyStore`]: passkeys, their ceremonies, and sign-in with them.
    Passkeys,
    /// [`super::Devices`]: the caller's live sessions listed, and one of them ended.
    Devices,
    /// [`super::SecurityLog`]: events written alone, and the caller's history listed.
    SecurityLog,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Self; 18] = [
        Self::CreateUser,
        Self::CountSignUps,
        Self::FindUser,
        Self::RehashPassword,
        Self::ReadCaller,
        Self::ChangePassword,
        Self::EndAllSessions,
        Self::CountLoginAttempts,
        Self::Sessions,
        Self::DeleteAccount,
        Self::StartVerification,
        Self::VerifyEmail,
        Self::ResetPassword,
        Self::CountMail,
        Self::SecondFactor,
        Self::Passkeys,
        Self::Devices,
        Self::SecurityLog,
    ];

    /// Every request the capability's methods send.
    pub const fn accesses(self) -> &'static [Access] {
        match self {
            Self::CreateUser => const { &[write(PutItem, USER_PREFIX, None, "NONE", Alone)] },
            Self::CountSignUps => const { &[count(SIGNUP_PREFIX)] },
            Self::FindUser => const { &[WHOLE_USER] },
            Self::RehashPassword => {
                const {
                    &[write(
                        UpdateItem,
                        USER_PREFIX,
                        Some(&[PARTITION_KEY, "password_hash"]),
                        "NONE",
                        Alone,
                    )]
                }
            }
            Self::ReadCaller => {
                const {
                    &[
                        get(
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, "user_id", "username", EPOCH_ATTRIBUTE]),
                            Alone,
                        ),
                        SESSION_STATUS,
                    ]
                }
            }
            Self::ChangePassword => {
                const {
                    &[
                        WHOLE_USER,
                        SESSION_STATUS,
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                "password_hash",
                                EPOCH_ATTRIBUTE,
                                RESET_HASH_ATTRIBUTE,
                            ]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::EndAllSessions => {
                const {
                    &[
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, "user_id", EPOCH_ATTRIBUTE]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::CountLoginAttempts => {
                const {
                    &[
                        count(LOGIN_PREFIX),
                        write(DeleteItem, LOGIN_PREFIX, None, "NONE", Alone),
                        write(
                            UpdateItem,
                            LOGIN_PREFIX,
                            Some(&[PARTITION_KEY, ATTEMPTS_ATTRIBUTE]),
                            "NONE",
                            Alone,
                        ),
                    ]
                }
            }
            Self::Sessions => {
                const {
                    &[
                        // start_session, with its event
                        write(PutItem, SESSION_PREFIX, None, "NONE", TransactWriteItems),
                        write(PutItem, REFRESH_PREFIX, None, "NONE", TransactWriteItems),
                        EVENT_IN_TRANSACTION,
                        // find_refresh, and rotate after an unknown outcome
                        get(REFRESH_PREFIX, None, Alone),
                        // rotate
                        write(
                            UpdateItem,
                            REFRESH_PREFIX,
                            Some(&[PARTITION_KEY, "used_at", "successor"]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        // the session's last use, and (for a session started before the lists
                        // existed) its place in the list
                        write(
                            UpdateItem,
                            SESSION_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                "last_used_at",
                                "ip_last_used",
                                "revoked_at",
                                LIST_KEY_ATTRIBUTE,
                                LIST_SORT_ATTRIBUTE,
                            ]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(
                            ConditionCheckItem,
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, "user_id", EPOCH_ATTRIBUTE]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        // check_grace
                        get(
                            SESSION_PREFIX,
                            Some(&[PARTITION_KEY, "revoked_at"]),
                            TransactGetItems,
                        ),
                        get(
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, "user_id", EPOCH_ATTRIBUTE]),
                            TransactGetItems,
                        ),
                        get(
                            REFRESH_PREFIX,
                            Some(&[PARTITION_KEY, "used_at"]),
                            TransactGetItems,
                        ),
                        // revoke_session, with its event
                        REVOKE_SESSION,
                    ]
                }
            }
            Self::DeleteAccount => {
                const {
                    &[
                        // The user, only while it is the one whose password was verified, and its
                        // address's claim, in one transaction.
                        write(DeleteItem, USER_PREFIX, None, "NONE", TransactWriteItems),
                        // The keys of everything else of its id, then those items.
                        Access {
                            action: Query,
                            prefix: "",
                            index: Some(USER_INDEX),
                            attributes: None,
                            returns: "NONE",
                            within: Alone,
                        },
                        write(DeleteItem, SESSION_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, REFRESH_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, EMAIL_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, VERIFY_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, RESET_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, MFA_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, CHALLENGE_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, PASSKEY_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, EVENT_PREFIX, None, "NONE", TransactWriteItems),
                    ]
                }
            }
            Self::StartVerification => {
                const {
                    &[
                        EMAIL_OWNER,
                        // start_verification
                        write(PutItem, VERIFY_PREFIX, Some(VERIFICATION), "NONE", Alone),
                    ]
                }
            }
            Self::VerifyEmail => {
                const {
                    &[
                        // find_verification
                        get(VERIFY_PREFIX, None, Alone),
                        // confirm_email: the claim, the user's address, the token used, the
                        // old claim let go.
                        write(
                            PutItem,
                            EMAIL_PREFIX,
                            Some(&[PARTITION_KEY, USER_ID_ATTRIBUTE, "username_key"]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                USER_ID_ATTRIBUTE,
                                EMAIL_ATTRIBUTE,
                                EPOCH_ATTRIBUTE,
                                RESET_HASH_ATTRIBUTE,
                            ]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(DeleteItem, VERIFY_PREFIX, None, "NONE", TransactWriteItems),
                        write(DeleteItem, EMAIL_PREFIX, None, "NONE", TransactWriteItems),
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::ResetPassword => {
                const {
                    &[
                        // issue_reset: the token, and the user's newest
                        write(
                            PutItem,
                            RESET_PREFIX,
                            Some(&[PARTITION_KEY, USER_ID_ATTRIBUTE, "username_key", TTL_ATTRIBUTE]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, USER_ID_ATTRIBUTE, RESET_HASH_ATTRIBUTE]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        // find_reset
                        get(RESET_PREFIX, None, Alone),
                        // reset_password: the new hash and epoch, the token used
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                USER_ID_ATTRIBUTE,
                                "password_hash",
                                EPOCH_ATTRIBUTE,
                                RESET_HASH_ATTRIBUTE,
                            ]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(DeleteItem, RESET_PREFIX, None, "NONE", TransactWriteItems),
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::CountMail => const { &[count(MAIL_PREFIX)] },
            Self::SecondFactor => {
                const {
                    &[
                        // start_totp
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                USER_ID_ATTRIBUTE,
                                "totp_secret",
                                "totp_pending",
                                "totp_pending_until",
                            ]),
                            "NONE",
                            Alone,
                        ),
                        // change_totp and complete_login: the user's second factor, conditioned
                        // on its id and epoch, and (change_totp) one more epoch
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                USER_ID_ATTRIBUTE,
                                EPOCH_ATTRIBUTE,
                                "totp_secret",
                                "totp_step",
                                "recovery",
                                "totp_pending",
                                "totp_pending_until",
                            ]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(PutItem, SESSION_PREFIX, None, "NONE", TransactWriteItems),
                        write(PutItem, REFRESH_PREFIX, None, "NONE", TransactWriteItems),
                        // issue_ticket
                        write(PutItem, MFA_PREFIX, Some(TICKET), "NONE", Alone),
                        // spend_ticket: one more attempt, the ticket returned
                        write(
                            UpdateItem,
                            MFA_PREFIX,
                            Some(&[PARTITION_KEY, ATTEMPTS_ATTRIBUTE, TTL_ATTRIBUTE]),
                            "ALL_NEW",
                            Alone,
                        ),
                        // complete_login: the ticket used
                        write(DeleteItem, MFA_PREFIX, None, "NONE", TransactWriteItems),
                        // the event of the change or login
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::Passkeys => {
                const {
                    &[
                        // put_challenge
                        write(PutItem, CHALLENGE_PREFIX, Some(CHALLENGE), "NONE", Alone),
                        // take_challenge: deleted once, returned
                        write(DeleteItem, CHALLENGE_PREFIX, None, "ALL_OLD", Alone),
                        // add_passkey: the credential, and its listing on the user
                        write(PutItem, PASSKEY_PREFIX, Some(PASSKEY), "NONE", TransactWriteItems),
                        write(
                            UpdateItem,
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, USER_ID_ATTRIBUTE, PASSKEYS_ATTRIBUTE]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        // find_passkey
                        get(PASSKEY_PREFIX, None, Alone),
                        // sign_in_with_passkey: the counter moved on, the user unchanged, a
                        // session started
                        write(
                            UpdateItem,
                            PASSKEY_PREFIX,
                            Some(&[
                                PARTITION_KEY,
                                USER_ID_ATTRIBUTE,
                                "credential",
                                "counter",
                                "last_used_at",
                            ]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(
                            ConditionCheckItem,
                            USER_PREFIX,
                            Some(&[PARTITION_KEY, USER_ID_ATTRIBUTE, EPOCH_ATTRIBUTE]),
                            "NONE",
                            TransactWriteItems,
                        ),
                        write(PutItem, SESSION_PREFIX, None, "NONE", TransactWriteItems),
                        write(PutItem, REFRESH_PREFIX, None, "NONE", TransactWriteItems),
                        // remove_passkey
                        write(DeleteItem, PASSKEY_PREFIX, None, "NONE", TransactWriteItems),
                        // the event of each change and sign-in
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::Devices => {
                const {
                    &[
                        // list_sessions
                        listing(SESSIONS_LIST_PREFIX, SESSION_LISTING),
                        // end_session, with its event
                        REVOKE_SESSION,
                        EVENT_IN_TRANSACTION,
                    ]
                }
            }
            Self::SecurityLog => {
                const {
                    &[
                        // record_event
                        write(PutItem, EVENT_PREFIX, Some(EVENT), "NONE", Alone),
                        // list_events
                        listing(EVENTS_LIST_PREFIX, EVENT_LISTING),
                    ]
                }
            }
        }
    }
}

/// The key prefix of a partition key value (the table's, or [`LIST_INDEX`]'s): the longest of
/// [`PREFIXES`] and [`LIST_PREFIXES`] it starts with.
pub fn prefix_of(key: &str) -> Option<&'static str> {
    PREFIXES
        .into_iter()
        .chain(LIST_PREFIXES)
        .filter(|prefix| key.starts_with(prefix))
        .max_by_key(|prefix| prefix.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_the_prefix_it_starts_with() {
        assert_eq!(prefix_of("USER#alice"), Some(USER_PREFIX));
        assert_eq!(prefix_of("LOGIN#client/10.0.0.1#7"), Some(LOGIN_PREFIX));
        assert_eq!(prefix_of("OTHER#x"), None);
        assert_eq!(prefix_of("SESSION#1"), Some(SESSION_PREFIX));
        assert_eq!(prefix_of("SESSIONS#u#0"), Some(SESSIONS_LIST_PREFIX));
        assert_eq!(prefix_of("EVENT#1"), Some(EVENT_PREFIX));
        assert_eq!(prefix_of("EVENTS#u"), Some(EVENTS_LIST_PREFIX));
    }
}
