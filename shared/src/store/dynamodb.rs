//! The DynamoDB store of every trait in [`super`]: one table, items by key prefix.
//!
//! Items: `pk = "USER#<lowercase name>"` with `user_id`, `username`, `password_hash`,
//! `created_at` and the session `epoch`; `pk = "LOGIN#<lowercase name or client/address>#<window>"`
//! and `pk = "SIGNUP#client/<address>#<window>"` with `attempts` and `expires_at` (TTL);
//! `pk = "SESSION#<id>"` (user, epoch, start, last use, revocation) and
//! `pk = "REFRESH#<token hash>"` (its session, issue and use times), both with `expires_at` at
//! the session's absolute end. Only a token's SHA-256 is stored, never the token.
//! Every state change is one conditional write: sign-up a `PutItem` with
//! `attribute_not_exists(pk)`, so uniqueness holds under races; an attempt's reservation an
//! `UpdateItem` that adds one only while the count is under the limit; a password rehash an
//! `UpdateItem` on the hash it replaces; a refresh one transaction (the old token marked used only
//! if unused, its successor put, the session unrevoked, the user's epoch unchanged). Writes that
//! can meet that transaction retry its conflicts ([`super::retry`]). Lookups are strongly
//! consistent `GetItem`s (a route's user and session read at once) or one `TransactGetItems`;
//! the only `Query`s read the `ByUser` index (account deletion) and the `UserLists` index (the
//! caller's sessions and events, [`lists`]); no `Scan`. Security events (`EVENT#`) are written in
//! the transaction of the change they record. The endpoint comes from the SDK's own settings
//! (`AWS_ENDPOINT_URL_DYNAMODB` locally); timeouts come from [`StoreConfig`]; the TLS roots from
//! [`tls`].

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Get, Put, TransactGetItem, TransactWriteItem, Update,
};

use super::StoreConfig;
use super::retry::{ConflictRetry, only_conflicts, write_conflicted};
use super::sdk_config::sdk_config_from_env;
use super::{
    Caller, ChangePassword, Confirmed, CreateOutcome, CreateUser, DeleteAccount, EmailOwner, EndAllSessions,
    FindUser, GraceCheck, LoginAttempts, MailAttempts, NewSession, ReadCaller, RefreshRecord, RehashPassword,
    Reservation, ResetPassword, ResetRecord, RotateOutcome, SessionStatus, SessionStore, SignUpAttempts,
    StartVerification, StoreError, TokenHash, UserProfile, UserRecord, VerificationRecord, VerifyEmail,
};
use crate::config::ConfigError;
use crate::events::SecurityEvent;
use crate::user::Username;

pub use super::access::{
    ATTEMPTS_ATTRIBUTE, EPOCH_ATTRIBUTE, LOGIN_PREFIX, PARTITION_KEY, REFRESH_PREFIX, SESSION_PREFIX,
    SIGNUP_PREFIX, TTL_ATTRIBUTE, USER_ID_ATTRIBUTE, USER_INDEX, USER_PREFIX,
};
use super::access::{
    EMAIL_ATTRIBUTE, EMAIL_PREFIX, EVENT_PREFIX, EVENTS_LIST_PREFIX, LIST_KEY_ATTRIBUTE, LIST_SORT_ATTRIBUTE,
    MAIL_PREFIX, RESET_HASH_ATTRIBUTE, RESET_PREFIX, SESSIONS_LIST_PREFIX, VERIFY_PREFIX,
};
use super::sort_key;

mod lists;
mod mfa;

#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    client: Client,
    table: String,
    /// How writes that meet a transaction in flight are retried.
    conflicts: ConflictRetry,
}

impl DynamoUserStore {
    /// Builds the store from the SDK configuration, adding the connect, read and operation
    /// timeouts the SDK does not set by default.
    pub fn new(sdk_config: &aws_config::SdkConfig, config: &StoreConfig) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.attempt_timeout)
            .operation_attempt_timeout(config.attempt_timeout)
            .operation_timeout(config.operation_timeout)
            .build();
        let client_config = aws_sdk_dynamodb::config::Builder::from(sdk_config)
            .timeout_config(timeouts)
            .build();
        Self {
            client: Client::from_conf(client_config),
            table: config.table.clone(),
            conflicts: ConflictRetry::within(config.operation_timeout),
        }
    }

    /// Reads [`StoreConfig`] and the standard AWS settings from the environment
    /// ([`sdk_config_from_env`]); the SDK calls go through [`super::tls::http_client`].
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = StoreConfig::from_env()?;
        Ok(Self::new(&sdk_config_from_env().await, &config))
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn user_key(username_key: &str) -> AttributeValue {
    AttributeValue::S(format!("{USER_PREFIX}{username_key}"))
}

fn login_key(username_key: &str, window: u64) -> AttributeValue {
    AttributeValue::S(format!("{LOGIN_PREFIX}{username_key}#{window}"))
}

fn sign_up_key(client: &str, window: u64) -> AttributeValue {
    AttributeValue::S(format!("{SIGNUP_PREFIX}{client}#{window}"))
}

fn session_key(session_id: &str) -> AttributeValue {
    AttributeValue::S(format!("{SESSION_PREFIX}{session_id}"))
}

fn refresh_key(hash: &TokenHash) -> AttributeValue {
    AttributeValue::S(format!("{REFRESH_PREFIX}{}", hash.0))
}

fn email_key(email_key: &str) -> AttributeValue {
    AttributeValue::S(format!("{EMAIL_PREFIX}{email_key}"))
}

fn verify_key(hash: &TokenHash) -> AttributeValue {
    AttributeValue::S(format!("{VERIFY_PREFIX}{}", hash.0))
}

fn reset_key(hash: &TokenHash) -> AttributeValue {
    AttributeValue::S(format!("{RESET_PREFIX}{}", hash.0))
}

/// The list-index partition of a user's live sessions of `epoch`.
fn sessions_list(user_id: &str, epoch: u64) -> AttributeValue {
    AttributeValue::S(format!("{SESSIONS_LIST_PREFIX}{user_id}#{epoch}"))
}

/// The list-index partition of a user's events.
fn events_list(user_id: &str) -> AttributeValue {
    AttributeValue::S(format!("{EVENTS_LIST_PREFIX}{user_id}"))
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn string(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

/// A whole-number attribute; `None` when absent.
fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> anyhow::Result<Option<u64>> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => Ok(Some(
            n.parse()
                .with_context(|| format!("{name} is not a whole number"))?,
        )),
        Some(_) => Err(anyhow!("{name} is not a number")),
    }
}

/// The condition that the user item still has the id and session epoch a session was issued
/// under (an item written before epochs existed has none, which counts as 0).
const USER_EPOCH_CONDITION: &str = "user_id = :user_id AND epoch = :epoch";
const USER_EPOCH_ZERO_CONDITION: &str =
    "user_id = :user_id AND (attribute_not_exists(epoch) OR epoch = :epoch)";

fn user_epoch_condition(epoch: u64) -> &'static str {
    if epoch == 0 {
        USER_EPOCH_ZERO_CONDITION
    } else {
        USER_EPOCH_CONDITION
    }
}

/// Builds a transaction item; the builders fail only when a required field is missing.
fn built<T, E: std::error::Error + Send + Sync + 'static>(part: Result<T, E>) -> Result<T, StoreError> {
    part.map_err(|e| StoreError(anyhow::Error::new(e).context("building a DynamoDB transaction")))
}

/// Why each item of a cancelled transaction failed (DynamoDB's `CancellationReasons` codes,
/// `None` for an item that did not); empty when the error gives none.
fn cancellation_codes(
    error: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Vec<String> {
    match error {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// A refresh's transaction cancelled only by conflicts with other writes in flight: retried.
fn write_transaction_conflicted(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    err.as_service_error()
        .is_some_and(|e| only_conflicts(cancellation_codes(e).iter().map(String::as_str).map(Some)))
}

/// A transactional read cancelled by a write in flight on one of its items: retried.
fn read_conflicted(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
    match err.as_service_error() {
        Some(TransactGetItemsError::TransactionCanceledException(e)) => {
            only_conflicts(e.cancellation_reasons().iter().map(|r| r.code()))
        }
        _ => false,
    }
}

/// Wraps an SDK error (its `source()` chain keeps the detail) as the store being unavailable.
fn unavailable<E>(operation: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError(anyhow::Error::new(e).context(operation))
}

/// The outcome of a conditional `UpdateItem`: `true` when written, `false` when its condition
/// failed (nothing written); any other failure is the store being unavailable.
fn updated(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>,
    >,
    operation: &'static str,
) -> Result<bool, StoreError> {
    match result.map_err(aws_sdk_dynamodb::error::SdkError::into_service_error) {
        Ok(_) => Ok(true),
        Err(err) if err.is_conditional_check_failed_exception() => Ok(false),
        Err(err) => Err(StoreError(anyhow::Error::new(err).context(operation))),
    }
}

fn count_attr(item: Option<&HashMap<String, AttributeValue>>) -> Result<u32, StoreError> {
    match item.and_then(|item| item.get(ATTEMPTS_ATTRIBUTE)) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError(anyhow!("login attempts item has a non-integer count"))),
        _ => Err(StoreError(anyhow!("login attempts item has no count"))),
    }
}

/// A string attribute that may be absent.
fn optional_string(item: &HashMap<String, AttributeValue>, name: &str) -> anyhow::Result<Option<String>> {
    item.get(name).map(|_| string_attr(item, name)).transpose()
}

fn string_attr(item: &HashMap<String, AttributeValue>, name: &str) -> anyhow::Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(anyhow!("user item has no string attribute {name:?}")),
    }
}

fn user_record(item: &HashMap<String, AttributeValue>) -> Result<UserRecord, StoreError> {
    (|| {
        Ok::<_, anyhow::Error>(UserRecord {
            id: string_attr(item, "user_id")?,
            username: string_attr(item, "username")?,
            password_hash: string_attr(item, "password_hash")?,
            epoch: number_attr(item, EPOCH_ATTRIBUTE)?.unwrap_or(0),
            email: optional_string(item, EMAIL_ATTRIBUTE)?,
            reset_hash: optional_string(item, RESET_HASH_ATTRIBUTE)?,
            totp: mfa::totp_state(item)?,
            totp_pending: mfa::pending_totp(item)?,
            passkeys: mfa::passkey_summaries(item)?,
        })
    })()
    .context("malformed user item")
    .map_err(StoreError)
}

fn user_profile(item: &HashMap<String, AttributeValue>) -> Result<UserProfile, StoreError> {
    (|| {
        Ok::<_, anyhow::Error>(UserProfile {
            id: string_attr(item, "user_id")?,
            username: string_attr(item, "username")?,
            epoch: number_attr(item, EPOCH_ATTRIBUTE)?.unwrap_or(0),
        })
    })()
    .context("malformed user item")
    .map_err(StoreError)
}

#[async_trait]
impl CreateUser for DynamoUserStore {
    async fn create(&self, user: &UserRecord) -> Result<CreateOutcome, StoreError> {
        let created_at = jsonwebtoken::get_current_timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, user_key(&user.username.to_ascii_lowercase()))
            .item("user_id", AttributeValue::S(user.id.clone()))
            .item("username", AttributeValue::S(user.username.clone()))
            .item("password_hash", AttributeValue::S(user.password_hash.clone()))
            .item("created_at", AttributeValue::N(created_at.to_string()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(err) => {
                let err = err.into_service_error();
                if err.is_conditional_check_failed_exception() {
                    Ok(CreateOutcome::UsernameTaken)
                } else {
                    Err(StoreError(anyhow::Error::new(err).context("PutItem user")))
                }
            }
        }
    }
}

#[async_trait]
impl FindUser for DynamoUserStore {
    async fn find_by_username(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem user"))?;
        output.item.as_ref().map(user_record).transpose()
    }
}

#[async_trait]
impl ReadCaller for DynamoUserStore {
    async fn find_caller(
        &self,
        username: &Username,
        session_id: &str,
    ) -> Result<Caller<UserProfile>, StoreError> {
        let user = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .projection_expression("user_id, username, epoch")
            .consistent_read(true)
            .send();
        let (user, session) = tokio::join!(user, self.session_status(session_id));
        let user = user.map_err(unavailable("GetItem user profile"))?;
        Ok(Caller {
            user: user.item.as_ref().map(user_profile).transpose()?,
            session: session?,
        })
    }
}

#[async_trait]
impl ChangePassword for DynamoUserStore {
    async fn find_caller_with_hash(
        &self,
        username: &Username,
        session_id: &str,
    ) -> Result<Caller<UserRecord>, StoreError> {
        let (user, session) = tokio::join!(self.find_by_username(username), self.session_status(session_id));
        Ok(Caller {
            user: user?,
            session: session?,
        })
    }
    async fn change_password(
        &self,
        username: &Username,
        current: &str,
        new: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            // A reset link of the old password ends with it.
            .update_expression("SET password_hash = :new ADD epoch :one REMOVE reset_hash")
            .condition_expression("password_hash = :current")
            .expression_attribute_values(":new", string(new))
            .expression_attribute_values(":current", string(current))
            .expression_attribute_values(":one", number(1))
            .build();
        self.update_with_event(update, event, "TransactWriteItems password change")
            .await
    }
}

#[async_trait]
impl RehashPassword for DynamoUserStore {
    async fn replace_password_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .update_expression("SET password_hash = :new")
            .condition_expression("password_hash = :current")
            .expression_attribute_values(":new", AttributeValue::S(new.to_owned()))
            .expression_attribute_values(":current", AttributeValue::S(current.to_owned()));
        let result = self
            .conflicts
            .retry(request, |r| r.send(), write_conflicted)
            .await;
        updated(result, "UpdateItem password hash")
    }
}

#[async_trait]
impl EndAllSessions for DynamoUserStore {
    async fn end_all_sessions(
        &self,
        username: &Username,
        user_id: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .update_expression("ADD epoch :one")
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":user_id", string(user_id))
            .build();
        self.update_with_event(update, event, "TransactWriteItems session epoch")
            .await
    }
}

#[async_trait]
impl MailAttempts for DynamoUserStore {
    async fn reserve_mail(
        &self,
        key: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        let key = AttributeValue::S(format!("{MAIL_PREFIX}{key}#{window}"));
        self.count(key, limit, expires_at, "UpdateItem mail attempts")
            .await
    }
}

impl DynamoUserStore {
    async fn owner_of(&self, email: &str) -> Result<Option<EmailOwner>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, email_key(email))
            .projection_expression("pk, user_id, username_key")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem email owner"))?
            .item;
        item.map(|item| {
            Ok(EmailOwner {
                user_id: string_attr(&item, USER_ID_ATTRIBUTE)?,
                username_key: string_attr(&item, "username_key")?,
            })
        })
        .transpose()
        .map_err(|e: anyhow::Error| StoreError(e.context("malformed email claim")))
    }

    async fn whole_item(
        &self,
        key: AttributeValue,
        operation: &'static str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, key)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable(operation))?
            .item)
    }
}

impl DynamoUserStore {
    /// Sends a write transaction, its conflicts retried: `Ok(None)` when it committed,
    /// `Ok(Some(codes))` when its conditions cancelled it (a code per item), any other failure
    /// the store's.
    async fn transact(
        &self,
        request: aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder,
        operation: &'static str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        match self
            .conflicts
            .retry(request, |r| r.send(), write_transaction_conflicted)
            .await
        {
            Ok(_) => Ok(None),
            Err(err) => {
                let err = err.into_service_error();
                let codes = cancellation_codes(&err);
                if err.is_transaction_canceled_exception()
                    && codes.iter().any(|c| c == "ConditionalCheckFailed")
                {
                    Ok(Some(codes))
                } else {
                    Err(StoreError(anyhow::Error::new(err).context(operation)))
                }
            }
        }
    }
}

impl DynamoUserStore {
    /// The revocation of session `session_id` at `now`, its condition to add: `revoked_at`
    /// set, and out of its user's list (the index is sparse).
    fn revocation(&self, session_id: &str, now: u64) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, session_key(session_id))
            .update_expression("SET revoked_at = :now REMOVE #list")
            .expression_attribute_names("#list", LIST_KEY_ATTRIBUTE)
            .expression_attribute_values(":now", number(now))
    }

    /// `update` and the `event` it records, in one transaction: `true` when it committed,
    /// `false` when the update's condition cancelled it (nothing written).
    async fn update_with_event(
        &self,
        update: Result<Update, aws_sdk_dynamodb::error::BuildError>,
        event: &SecurityEvent,
        operation: &'static str,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(built(update)?).build())
            .transact_items(self.put_event(event)?);
        Ok(self.transact(request, operation).await?.is_none())
    }
}

/// Whether a cancelled transaction's item `index` failed its condition.
fn condition_failed(codes: &[String], index: usize) -> bool {
    codes
        .get(index)
        .is_some_and(|code| code == "ConditionalCheckFailed")
}

#[async_trait]
impl StartVerification for DynamoUserStore {
    async fn email_owner(&self, email_key: &str) -> Result<Option<EmailOwner>, StoreError> {
        self.owner_of(email_key).await
    }

    async fn start_verification(
        &self,
        hash: &TokenHash,
        record: &VerificationRecord,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, verify_key(hash))
            .item(USER_ID_ATTRIBUTE, string(&record.user_id))
            .item("username_key", string(&record.username_key))
            .item(EMAIL_ATTRIBUTE, string(&record.email))
            .item(EPOCH_ATTRIBUTE, number(record.epoch))
            .item(TTL_ATTRIBUTE, number(record.expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(unavailable("PutItem verification"))?;
        Ok(())
    }
}

#[async_trait]
impl VerifyEmail for DynamoUserStore {
    async fn find_verification(&self, hash: &TokenHash) -> Result<Option<VerificationRecord>, StoreError> {
        let Some(item) = self.whole_item(verify_key(hash), "GetItem verification").await? else {
            return Ok(None);
        };
        (|| {
            Ok(Some(VerificationRecord {
                user_id: string_attr(&item, USER_ID_ATTRIBUTE)?,
                username_key: string_attr(&item, "username_key")?,
                email: string_attr(&item, EMAIL_ATTRIBUTE)?,
                epoch: number_attr(&item, EPOCH_ATTRIBUTE)?.unwrap_or(0),
                expires_at: number_attr(&item, TTL_ATTRIBUTE)?.context("no expires_at")?,
            }))
        })()
        .map_err(|e: anyhow::Error| StoreError(e.context("malformed verification")))
    }

    async fn confirm_email(
        &self,
        hash: &TokenHash,
        record: &VerificationRecord,
        previous: Option<&str>,
        event: &SecurityEvent,
    ) -> Result<Confirmed, StoreError> {
        let new_key = record.email.to_ascii_lowercase();
        let claim = Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, email_key(&new_key))
            .item(USER_ID_ATTRIBUTE, string(&record.user_id))
            .item("username_key", string(&record.username_key))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user_id")
            .expression_attribute_values(":user_id", string(&record.user_id))
            .build();
        // The link holds only while the user's epoch is the one it was issued under: a password
        // change or reset (or log out everywhere) ends every pending link.
        let epoch = if record.epoch == 0 {
            "(attribute_not_exists(epoch) OR epoch = :epoch)"
        } else {
            "epoch = :epoch"
        };
        let (condition, previous_value) = match previous {
            Some(previous) => (
                format!("user_id = :user_id AND email = :previous AND {epoch}"),
                Some(string(previous)),
            ),
            None => (
                format!("user_id = :user_id AND attribute_not_exists(email) AND {epoch}"),
                None,
            ),
        };
        let set_email = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&record.username_key))
            .update_expression("SET email = :email REMOVE reset_hash")
            .condition_expression(condition)
            .set_expression_attribute_values(Some({
                let mut values = HashMap::from([
                    (":email".to_owned(), string(&record.email)),
                    (":user_id".to_owned(), string(&record.user_id)),
                    (":epoch".to_owned(), number(record.epoch)),
                ]);
                if let Some(previous) = previous_value {
                    values.insert(":previous".to_owned(), previous);
                }
                values
            }))
            .build();
        let used = Delete::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, verify_key(hash))
            .condition_expression("attribute_exists(pk)")
            .build();
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(built(claim)?).build())
            .transact_items(TransactWriteItem::builder().update(built(set_email)?).build())
            .transact_items(TransactWriteItem::builder().delete(built(used)?).build());
        if let Some(previous) = previous.map(str::to_ascii_lowercase).filter(|p| *p != new_key) {
            let let_go = Delete::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, email_key(&previous))
                .condition_expression("attribute_not_exists(pk) OR user_id = :user_id")
                .expression_attribute_values(":user_id", string(&record.user_id))
                .build();
            request = request.transact_items(TransactWriteItem::builder().delete(built(let_go)?).build());
        }
        let request = request.transact_items(self.put_event(event)?);
        Ok(
            match self.transact(request, "TransactWriteItems confirm email").await? {
                None => Confirmed::Done,
                Some(codes) if condition_failed(&codes, 0) => Confirmed::Taken,
                Some(_) => Confirmed::Stale,
            },
        )
    }
}

#[async_trait]
impl ResetPassword for DynamoUserStore {
    async fn issue_reset(&self, hash: &TokenHash, record: &ResetRecord) -> Result<bool, StoreError> {
        let token = Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, reset_key(hash))
            .item(USER_ID_ATTRIBUTE, string(&record.user_id))
            .item("username_key", string(&record.username_key))
            .item(TTL_ATTRIBUTE, number(record.expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        let newest = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&record.username_key))
            .update_expression("SET reset_hash = :hash")
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":hash", string(&hash.0))
            .expression_attribute_values(":user_id", string(&record.user_id))
            .build();
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(built(token)?).build())
            .transact_items(TransactWriteItem::builder().update(built(newest)?).build());
        // Cancelled only by the user's condition (the token's key is new and random).
        Ok(self
            .transact(request, "TransactWriteItems issue reset")
            .await?
            .is_none())
    }

    async fn find_reset(&self, hash: &TokenHash) -> Result<Option<ResetRecord>, StoreError> {
        let Some(item) = self.whole_item(reset_key(hash), "GetItem reset").await? else {
            return Ok(None);
        };
        (|| {
            Ok(Some(ResetRecord {
                user_id: string_attr(&item, USER_ID_ATTRIBUTE)?,
                username_key: string_attr(&item, "username_key")?,
                expires_at: number_attr(&item, TTL_ATTRIBUTE)?.context("no expires_at")?,
            }))
        })()
        .map_err(|e: anyhow::Error| StoreError(e.context("malformed reset token")))
    }

    async fn reset_password(
        &self,
        hash: &TokenHash,
        record: &ResetRecord,
        new_hash: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let set = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&record.username_key))
            .update_expression("SET password_hash = :new ADD epoch :one REMOVE reset_hash")
            .condition_expression("user_id = :user_id AND reset_hash = :hash")
            .expression_attribute_values(":new", string(new_hash))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":user_id", string(&record.user_id))
            .expression_attribute_values(":hash", string(&hash.0))
            .build();
        let used = Delete::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, reset_key(hash))
            .condition_expression("attribute_exists(pk)")
            .build();
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(built(set)?).build())
            .transact_items(TransactWriteItem::builder().delete(built(used)?).build())
            .transact_items(self.put_event(event)?);
        // Cancelled by its conditions: the token used, superseded, or the user gone.
        Ok(self
            .transact(request, "TransactWriteItems reset password")
            .await?
            .is_none())
    }
}

/// At most this many items in one `TransactWriteItems` (DynamoDB's limit is 100).
const DELETES_PER_TRANSACTION: usize = 100;

#[async_trait]
impl DeleteAccount for DynamoUserStore {
    async fn delete_user(
        &self,
        username: &Username,
        user_id: &str,
        password_hash: &str,
        email: Option<&str>,
    ) -> Result<bool, StoreError> {
        let user = Delete::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .condition_expression("user_id = :user_id AND password_hash = :hash")
            .expression_attribute_values(":user_id", string(user_id))
            .expression_attribute_values(":hash", string(password_hash))
            .build();
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(built(user)?).build());
        // The address's claim goes with the user: it has no TTL, and would keep the address
        // from every other account if a later step failed and no repeat came.
        if let Some(email) = email {
            let claim = Delete::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, email_key(&email.to_ascii_lowercase()))
                .condition_expression("attribute_not_exists(pk) OR user_id = :user_id")
                .expression_attribute_values(":user_id", string(user_id))
                .build();
            request = request.transact_items(TransactWriteItem::builder().delete(built(claim)?).build());
        }
        Ok(self
            .transact(request, "TransactWriteItems delete user")
            .await?
            .is_none())
    }

    async fn delete_items_of(&self, user_id: &str) -> Result<usize, StoreError> {
        // Every key first (a page holds thousands of keys), then the deletes: deleting while
        // paging would move the index under the query.
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(USER_INDEX)
                .key_condition_expression("#owner = :user_id")
                .expression_attribute_names("#owner", USER_ID_ATTRIBUTE)
                .expression_attribute_values(":user_id", string(user_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("Query ByUser"))?;
            for item in page.items() {
                match item.get(PARTITION_KEY) {
                    // The user item is deleted by name, with its condition; anything else of
                    // the id goes.
                    Some(AttributeValue::S(key)) if !key.starts_with(USER_PREFIX) => keys.push(key.clone()),
                    _ => {}
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        for chunk in keys.chunks(DELETES_PER_TRANSACTION) {
            let mut request = self.client.transact_write_items();
            for key in chunk {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key(PARTITION_KEY, string(key))
                    .build();
                request = request.transact_items(TransactWriteItem::builder().delete(built(delete)?).build());
            }
            self.conflicts
                .retry(request, |r| r.send(), write_transaction_conflicted)
                .await
                .map_err(unavailable("TransactWriteItems delete a user's items"))?;
        }
        Ok(keys.len())
    }
}

fn refresh_record(item: &HashMap<String, AttributeValue>) -> anyhow::Result<RefreshRecord> {
    let required = |name: &str| number_attr(item, name)?.with_context(|| format!("no {name}"));
    Ok(RefreshRecord {
        session_id: string_attr(item, "session_id")?,
        user_id: string_attr(item, "user_id")?,
        username: string_attr(item, "username")?,
        username_key: string_attr(item, "username_key")?,
        epoch: required("epoch")?,
        started_at: required("started_at")?,
        issued_at: required("issued_at")?,
        used_at: number_attr(item, "used_at")?,
        successor: match item.get("successor") {
            None => None,
            Some(AttributeValue::S(s)) => Some(s.clone()),
            Some(_) => return Err(anyhow!("successor is not a string")),
        },
    })
}

impl DynamoUserStore {
    /// The session `session_id` as a route holding one of its access tokens reads it: revoked
    /// or not, and its absolute end; `None` for no such session (or one the TTL deleted).
    async fn session_status(&self, session_id: &str) -> Result<Option<SessionStatus>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, session_key(session_id))
            .projection_expression("pk, revoked_at, expires_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem session"))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let status = (|| {
            Ok::<_, anyhow::Error>(SessionStatus {
                revoked_at: number_attr(&item, "revoked_at")?,
                expires_at: number_attr(&item, TTL_ATTRIBUTE)?.context("no expires_at")?,
            })
        })()
        .context("malformed session item")
        .map_err(StoreError)?;
        Ok(Some(status))
    }

    /// The `Put` of a refresh record: unused, issued at `issued_at`, never overwriting.
    fn put_refresh(
        &self,
        hash: &TokenHash,
        record: &RefreshRecord,
        issued_at: u64,
        expires_at: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .item(PARTITION_KEY, refresh_key(hash))
                .item("session_id", string(&record.session_id))
                .item("user_id", string(&record.user_id))
                .item("username", string(&record.username))
                .item("username_key", string(&record.username_key))
                .item("epoch", number(record.epoch))
                .item("started_at", number(record.started_at))
                .item("issued_at", number(issued_at))
                .item(TTL_ATTRIBUTE, number(expires_at))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl DynamoUserStore {
    /// The three puts that start a session: the session (listed in its user's live sessions),
    /// its first refresh token, and its event.
    fn session_items(
        &self,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<[TransactWriteItem; 3], StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, session_key(&session.session_id))
            .item("user_id", string(&session.user_id))
            .item("username_key", string(&session.username_key))
            .item("epoch", number(session.epoch))
            .item("started_at", number(session.started_at))
            .item("last_used_at", number(session.started_at))
            .item(TTL_ATTRIBUTE, number(session.expires_at))
            .item(LIST_KEY_ATTRIBUTE, sessions_list(&session.user_id, session.epoch))
            .item(
                LIST_SORT_ATTRIBUTE,
                string(&sort_key(session.started_at, &session.session_id)),
            )
            .item("device", string(&session.client.device))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY);
        if let Some(ip) = &session.client.ip {
            put = put
                .item("ip_at_start", string(ip))
                .item("ip_last_used", string(ip));
        }
        let record = session.first_record();
        Ok([
            TransactWriteItem::builder().put(built(put.build())?).build(),
            self.put_refresh(first, &record, session.started_at, session.expires_at)?,
            self.put_event(&session.event)?,
        ])
    }

    /// The `Put` of a security event, for the transaction of the change it records.
    fn put_event(&self, event: &SecurityEvent) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(self.event_item(event)?))
                    .build(),
            )?)
            .build())
    }

    /// A security event as an item: listed in its user's history, deleted by TTL. An event of
    /// no account (a failed login of a name nobody has) is in no list.
    fn event_item(&self, event: &SecurityEvent) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item = HashMap::from([
            (
                PARTITION_KEY.to_owned(),
                string(&format!("{EVENT_PREFIX}{}", event.id)),
            ),
            (
                LIST_SORT_ATTRIBUTE.to_owned(),
                string(&sort_key(event.at, &event.id)),
            ),
            ("event_type".to_owned(), string(event.kind.name())),
            ("outcome".to_owned(), string(event.kind.outcome().as_str())),
            ("device".to_owned(), string(&event.client.device)),
            ("at".to_owned(), number(event.at)),
            (TTL_ATTRIBUTE.to_owned(), number(event.expires_at)),
        ]);
        if let Some(user_id) = event.user_id.as_deref() {
            item.insert(USER_ID_ATTRIBUTE.to_owned(), string(user_id));
            item.insert(LIST_KEY_ATTRIBUTE.to_owned(), events_list(user_id));
        }
        if let Some(detail) = event.kind.detail() {
            item.insert("detail".to_owned(), string(detail));
        }
        if let Some(ip) = &event.client.ip {
            item.insert("ip".to_owned(), string(ip));
        }
        Ok(item)
    }
}

#[async_trait]
impl SessionStore for DynamoUserStore {
    async fn start_session(&self, session: &NewSession, first: &TokenHash) -> Result<(), StoreError> {
        let [put_session, put_first, put_event] = self.session_items(session, first)?;
        self.client
            .transact_write_items()
            .transact_items(put_session)
            .transact_items(put_first)
            .transact_items(put_event)
            .send()
            .await
            .map_err(unavailable("TransactWriteItems session start"))?;
        Ok(())
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, refresh_key(hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem refresh token"))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let record = refresh_record(&item)
            .context("malformed refresh token item")
            .map_err(StoreError)?;
        Ok(Some(record))
    }

    async fn rotate(
        &self,
        old: &TokenHash,
        record: &RefreshRecord,
        new: &TokenHash,
        sealed: &str,
        now: u64,
        expires_at: u64,
        ip: Option<&str>,
    ) -> Result<RotateOutcome, StoreError> {
        let mark_used = built(
            Update::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, refresh_key(old))
                .update_expression("SET used_at = :now, successor = :successor")
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(used_at)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":now", number(now))
                .expression_attribute_values(":successor", string(sealed))
                .build(),
        )?;
        // A session started before the lists existed joins its user's list at its first
        // refresh since (an already listed one keeps its place: if_not_exists).
        let mut touch = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, session_key(&record.session_id))
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(revoked_at)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#list", LIST_KEY_ATTRIBUTE)
            .expression_attribute_names("#at", LIST_SORT_ATTRIBUTE)
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":list", sessions_list(&record.user_id, record.epoch))
            .expression_attribute_values(":at", string(&sort_key(record.started_at, &record.session_id)));
        let mut set =
            "SET last_used_at = :now, #list = if_not_exists(#list, :list), #at = if_not_exists(#at, :at)"
                .to_owned();
        if let Some(ip) = ip {
            set.push_str(", ip_last_used = :ip");
            touch = touch.expression_attribute_values(":ip", string(ip));
        }
        let touch_session = built(touch.update_expression(set).build())?;
        let check_user = built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, user_key(&record.username_key))
                .condition_expression(user_epoch_condition(record.epoch))
                .expression_attribute_values(":user_id", string(&record.user_id))
                .expression_attribute_values(":epoch", number(record.epoch))
                .build(),
        )?;
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark_used).build())
            .transact_items(self.put_refresh(new, record, now, expires_at)?)
            .transact_items(TransactWriteItem::builder().update(touch_session).build())
            .transact_items(TransactWriteItem::builder().condition_check(check_user).build());
        let result = self
            .conflicts
            .retry(request, |r| r.send(), write_transaction_conflicted)
            .await;
        let err = match result {
            Ok(_) => return Ok(RotateOutcome::Rotated),
            Err(err) => err.into_service_error(),
        };
        if !err.is_transaction_canceled_exception() {
            // The outcome is unknown: a timeout can come after the write committed. If the token
            // is used now, this request is the duplicate of whichever write used it (its own,
            // maybe), and the grace path hands out the successor that write sealed: a client
            // never holds a used token without its successor because an answer was lost here.
            let error = StoreError(anyhow::Error::new(err).context("TransactWriteItems refresh"));
            return match self.find_refresh(old).await {
                Ok(Some(current)) if current.used_at.is_some() => Ok(RotateOutcome::AlreadyUsed),
                _ => Err(error),
            };
        }
        // Items: 0 the old token (unused), 1 its successor (new), 2 the session (unrevoked),
        // 3 the user (same id and epoch).
        let codes = cancellation_codes(&err);
        let failed = |i: usize| codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
        if failed(0) {
            return Ok(RotateOutcome::AlreadyUsed);
        }
        if failed(2) || failed(3) {
            return Ok(RotateOutcome::SessionEnded);
        }
        // No reasons given, or conflicts with concurrent writes on the same items (another
        // refresh with this token, a logout) that outlasted the retries: what the old token's
        // record says now decides. Used: this request is that refresh's duplicate.
        match self.find_refresh(old).await? {
            Some(current) if current.used_at.is_some() => Ok(RotateOutcome::AlreadyUsed),
            // Without reasons, an unused token means the session or the user failed.
            None => Ok(RotateOutcome::SessionEnded),
            Some(_) if codes.is_empty() => Ok(RotateOutcome::SessionEnded),
            // A conflict that left the token unused: nothing was written; retryable (503).
            Some(_) => Err(StoreError(
                anyhow::Error::new(err).context(format!("TransactWriteItems refresh cancelled: {codes:?}")),
            )),
        }
    }

    async fn check_grace(
        &self,
        record: &RefreshRecord,
        successor: &TokenHash,
    ) -> Result<GraceCheck, StoreError> {
        let session = built(
            Get::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, session_key(&record.session_id))
                // The key too: an item with none of the projected attributes comes back as an
                // empty map, which must not read as "no such session".
                .projection_expression("pk, revoked_at")
                .build(),
        )?;
        let user = built(
            Get::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, user_key(&record.username_key))
                .projection_expression("user_id, epoch")
                .build(),
        )?;
        let next = built(
            Get::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, refresh_key(successor))
                .projection_expression("pk, used_at")
                .build(),
        )?;
        let request = self
            .client
            .transact_get_items()
            .transact_items(TransactGetItem::builder().get(session).build())
            .transact_items(TransactGetItem::builder().get(user).build())
            .transact_items(TransactGetItem::builder().get(next).build());
        let output = self
            .conflicts
            .retry(request, |r| r.send(), read_conflicted)
            .await
            .map_err(unavailable("TransactGetItems grace"))?;
        let items: Vec<Option<&HashMap<String, AttributeValue>>> =
            output.responses().iter().map(|r| r.item()).collect();
        let (Some(Some(session)), Some(Some(user))) = (items.first(), items.get(1)) else {
            return Ok(GraceCheck::SessionEnded);
        };
        let epoch = number_attr(user, EPOCH_ATTRIBUTE)
            .map_err(StoreError)?
            .unwrap_or(0);
        let same_user = matches!(user.get("user_id"), Some(AttributeValue::S(id)) if *id == record.user_id);
        let exists = session.contains_key(PARTITION_KEY);
        if !(exists && !session.contains_key("revoked_at") && same_user && epoch == record.epoch) {
            return Ok(GraceCheck::SessionEnded);
        }
        let unused = items
            .get(2)
            .copied()
            .flatten()
            .is_some_and(|next| next.contains_key(PARTITION_KEY) && !next.contains_key("used_at"));
        Ok(if unused {
            GraceCheck::SuccessorUnused
        } else {
            GraceCheck::SuccessorUsed
        })
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        now: u64,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let revoke = self
            .revocation(session_id, now)
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(revoked_at)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build();
        // Cancelled: no such session (deleted by TTL) or revoked already; nothing written.
        self.update_with_event(revoke, event, "TransactWriteItems session revoke")
            .await
    }
}

impl DynamoUserStore {
    /// Counts one more on the counter `key` (`LOGIN#` or `SIGNUP#`) while it is under `limit`,
    /// in one conditional update that also sets its TTL and returns the new count.
    async fn count(
        &self,
        key: AttributeValue,
        limit: u32,
        expires_at: u64,
        operation: &'static str,
    ) -> Result<Reservation, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, key)
            .update_expression("ADD #attempts :one SET #ttl = :expires_at")
            .condition_expression("attribute_not_exists(#attempts) OR #attempts < :limit")
            .expression_attribute_names("#attempts", ATTEMPTS_ATTRIBUTE)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":limit", number(limit.into()))
            .expression_attribute_values(":expires_at", number(expires_at))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result.map_err(aws_sdk_dynamodb::error::SdkError::into_service_error) {
            Ok(output) => Ok(Reservation::Reserved {
                attempt: count_attr(output.attributes.as_ref())?,
            }),
            Err(err) if err.is_conditional_check_failed_exception() => Ok(Reservation::LimitReached),
            Err(err) => Err(StoreError(anyhow::Error::new(err).context(operation))),
        }
    }
}

#[async_trait]
impl LoginAttempts for DynamoUserStore {
    async fn reserve(
        &self,
        key: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        self.count(
            login_key(key, window),
            limit,
            expires_at,
            "UpdateItem login attempts",
        )
        .await
    }

    async fn clear(&self, key: &str, window: u64) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, login_key(key, window))
            .send()
            .await
            .map_err(unavailable("DeleteItem login attempts"))?;
        Ok(())
    }

    async fn release(&self, key: &str, window: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, login_key(key, window))
            .update_expression("ADD #attempts :minus_one")
            // Never below zero, and never a new item: a count the TTL deleted stays deleted.
            .condition_expression("#attempts > :zero")
            .expression_attribute_names("#attempts", ATTEMPTS_ATTRIBUTE)
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", number(0))
            .send()
            .await;
        // `false`: nothing counted (the window ended and the TTL took it): nothing to take back.
        updated(result, "UpdateItem login attempts release")?;
        Ok(())
    }
}

#[async_trait]
impl SignUpAttempts for DynamoUserStore {
    async fn reserve_sign_up(
        &self,
        client: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        self.count(
            sign_up_key(client, window),
            limit,
            expires_at,
            "UpdateItem sign-up attempts",
        )
        .await
    }
}
