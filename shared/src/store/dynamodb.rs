//! The DynamoDB [`UserStore`] and [`LoginAttempts`]: one table, items by key prefix.
//!
//! Items: `pk = "USER#<lowercase name>"` with `user_id`, `username`, `password_hash`,
//! `created_at`; `pk = "LOGIN#<lowercase name>#<window>"` with `attempts` and `expires_at` (TTL).
//! Every state change is one conditional write: sign-up a `PutItem` with
//! `attribute_not_exists(pk)`, so uniqueness holds under races; a login-attempt reservation an
//! `UpdateItem` that adds one only while the count is under the limit; a password rehash an
//! `UpdateItem` on the hash it replaces. Lookups are strongly consistent `GetItem`s. The endpoint
//! comes from the SDK's own settings (`AWS_ENDPOINT_URL_DYNAMODB` locally); timeouts come from
//! [`StoreConfig`]; the TLS roots from [`tls`].

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::AttributeValue;

use super::tls;
use super::{CreateOutcome, LoginAttempts, Reservation, StoreError, UserProfile, UserRecord, UserStore};
use crate::config::{ConfigError, StoreConfig};
use crate::user::Username;

/// The table's partition key attribute (a string). `template.yaml` defines the same.
pub const PARTITION_KEY: &str = "pk";

/// The table's TTL attribute (unix seconds). `template.yaml` enables TTL on it.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Key prefix of user items, `USER#<lowercase name>`.
pub const USER_PREFIX: &str = "USER#";
/// Key prefix of login-attempt counters, `LOGIN#<lowercase name>#<window>`.
pub const LOGIN_PREFIX: &str = "LOGIN#";

/// The counter attribute of a `LOGIN#` item.
pub const ATTEMPTS_ATTRIBUTE: &str = "attempts";

#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    client: Client,
    table: String,
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
        }
    }

    /// Reads [`StoreConfig`] and the standard AWS settings from the environment; the SDK calls
    /// go through [`tls::http_client`].
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = StoreConfig::from_env()?;
        Ok(Self::new(&tls::sdk_config_from_env().await, &config))
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

/// Wraps an SDK error (its `source()` chain keeps the detail) as the store being unavailable.
fn unavailable<E>(operation: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError(anyhow::Error::new(e).context(operation))
}

fn count_attr(item: Option<&HashMap<String, AttributeValue>>) -> Result<u32, StoreError> {
    match item.and_then(|item| item.get(ATTEMPTS_ATTRIBUTE)) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError(anyhow!("login attempts item has a non-integer count"))),
        _ => Err(StoreError(anyhow!("login attempts item has no count"))),
    }
}

fn string_attr(item: &HashMap<String, AttributeValue>, name: &str) -> anyhow::Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(anyhow!("user item has no string attribute {name:?}")),
    }
}

#[async_trait]
impl UserStore for DynamoUserStore {
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
        let Some(item) = output.item else {
            return Ok(None);
        };
        let record = (|| {
            Ok::<_, anyhow::Error>(UserRecord {
                id: string_attr(&item, "user_id")?,
                username: string_attr(&item, "username")?,
                password_hash: string_attr(&item, "password_hash")?,
            })
        })()
        .context("malformed user item")
        .map_err(StoreError)?;
        Ok(Some(record))
    }

    async fn find_profile(&self, username: &Username) -> Result<Option<UserProfile>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .projection_expression("user_id, username")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem user profile"))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let profile = (|| {
            Ok::<_, anyhow::Error>(UserProfile {
                id: string_attr(&item, "user_id")?,
                username: string_attr(&item, "username")?,
            })
        })()
        .context("malformed user item")
        .map_err(StoreError)?;
        Ok(Some(profile))
    }

    async fn replace_password_hash(
        &self,
        username: &Username,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&username.key()))
            .update_expression("SET password_hash = :new")
            .condition_expression("password_hash = :current")
            .expression_attribute_values(":new", AttributeValue::S(new.to_owned()))
            .expression_attribute_values(":current", AttributeValue::S(current.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                let err = err.into_service_error();
                if err.is_conditional_check_failed_exception() {
                    Ok(false)
                } else {
                    Err(StoreError(
                        anyhow::Error::new(err).context("UpdateItem password hash"),
                    ))
                }
            }
        }
    }
}

#[async_trait]
impl LoginAttempts for DynamoUserStore {
    async fn reserve(
        &self,
        username_key: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<Reservation, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, login_key(username_key, window))
            .update_expression("ADD #attempts :one SET #ttl = :expires_at")
            .condition_expression("attribute_not_exists(#attempts) OR #attempts < :limit")
            .expression_attribute_names("#attempts", ATTEMPTS_ATTRIBUTE)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":expires_at", AttributeValue::N(expires_at.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Reservation::Reserved {
                attempt: count_attr(output.attributes.as_ref())?,
            }),
            Err(err) => {
                let err = err.into_service_error();
                if err.is_conditional_check_failed_exception() {
                    Ok(Reservation::LimitReached)
                } else {
                    Err(StoreError(
                        anyhow::Error::new(err).context("UpdateItem login attempts"),
                    ))
                }
            }
        }
    }

    async fn clear(&self, username_key: &str, window: u64) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, login_key(username_key, window))
            .send()
            .await
            .map_err(unavailable("DeleteItem login attempts"))?;
        Ok(())
    }
}
