//! The second factor and passkeys in the table.
//!
//! On the `USER#` item: `totp_secret` (sealed), `totp_step` (the last accepted step),
//! `recovery` (a string set of the unused recovery codes' hashes), `totp_pending` and
//! `totp_pending_until` (a started enrolment), and `passkeys`, a map from credential id to its
//! listing (`name`, `created_at`). Beside it: `MFA#<ticket hash>` (a login waiting for its
//! second step: user, epoch, attempts, `expires_at`), `CHALLENGE#<id>` (a WebAuthn ceremony's
//! state, `expires_at`) and `PASSKEY#<credential id>` (the credential, its counter, its user).
//! Each of them holds `user_id`, so account deletion finds them on the `ByUser` index.

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};

use super::super::access::{CHALLENGE_PREFIX, MFA_PREFIX, PASSKEY_PREFIX};
use super::super::{
    ChallengeRecord, CodeUse, NewSession, PasskeyStore, PasskeySummary, PasskeyUse, PendingTotp,
    SecondFactors, StoreError, StoredPasskey, TicketRecord, TokenHash, TotpChange, TotpState, UserAt,
};
use super::{
    ATTEMPTS_ATTRIBUTE, DynamoUserStore, PARTITION_KEY, TTL_ATTRIBUTE, USER_ID_ATTRIBUTE, built, number,
    number_attr, optional_string, string, string_attr, unavailable, user_epoch_condition, user_key,
};
use crate::events::SecurityEvent;

fn ticket_key(hash: &TokenHash) -> AttributeValue {
    AttributeValue::S(format!("{MFA_PREFIX}{}", hash.0))
}

fn challenge_key(id: &str) -> AttributeValue {
    AttributeValue::S(format!("{CHALLENGE_PREFIX}{id}"))
}

fn passkey_key(id: &str) -> AttributeValue {
    AttributeValue::S(format!("{PASSKEY_PREFIX}{id}"))
}

fn string_set(values: &[String]) -> AttributeValue {
    AttributeValue::Ss(values.to_vec())
}

/// The confirmed second factor of a user item, if any.
pub(super) fn totp_state(item: &HashMap<String, AttributeValue>) -> anyhow::Result<Option<TotpState>> {
    let Some(sealed_secret) = optional_string(item, "totp_secret")? else {
        return Ok(None);
    };
    let recovery = match item.get("recovery") {
        None => Vec::new(),
        Some(AttributeValue::Ss(set)) => set.clone(),
        Some(_) => return Err(anyhow!("recovery is not a string set")),
    };
    Ok(Some(TotpState {
        sealed_secret,
        last_step: number_attr(item, "totp_step")?.unwrap_or(0),
        recovery,
    }))
}

/// The started enrolment of a user item, if any.
pub(super) fn pending_totp(item: &HashMap<String, AttributeValue>) -> anyhow::Result<Option<PendingTotp>> {
    let Some(sealed_secret) = optional_string(item, "totp_pending")? else {
        return Ok(None);
    };
    Ok(Some(PendingTotp {
        sealed_secret,
        until: number_attr(item, "totp_pending_until")?.context("no totp_pending_until")?,
    }))
}

/// The passkeys listed on a user item, oldest first.
pub(super) fn passkey_summaries(
    item: &HashMap<String, AttributeValue>,
) -> anyhow::Result<Vec<PasskeySummary>> {
    let map = match item.get("passkeys") {
        None => return Ok(Vec::new()),
        Some(AttributeValue::M(map)) => map,
        Some(_) => return Err(anyhow!("passkeys is not a map")),
    };
    let mut listed = map
        .iter()
        .map(|(id, entry)| {
            let AttributeValue::M(entry) = entry else {
                return Err(anyhow!("a passkey's listing is not a map"));
            };
            Ok(PasskeySummary {
                id: id.clone(),
                name: string_attr(entry, "name")?,
                created_at: number_attr(entry, "created_at")?.context("no created_at")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Oldest first; those of one second by name, so the order never depends on the random ids.
    listed.sort_by(|a, b| (a.created_at, &a.name, &a.id).cmp(&(b.created_at, &b.name, &b.id)));
    Ok(listed)
}

/// The condition and `SET` clause of using a code up: a step after the last accepted one, or
/// a recovery code among the unused.
fn code_use(used: &CodeUse, update: UpdateBuilder) -> (&'static str, Option<&'static str>, UpdateBuilder) {
    match used {
        CodeUse::Step(step) => (
            "(attribute_not_exists(totp_step) OR totp_step < :step)",
            Some("totp_step = :step"),
            update.expression_attribute_values(":step", number(*step)),
        ),
        CodeUse::Recovery(hash) => (
            "contains(recovery, :code)",
            None,
            update.expression_attribute_values(":code", string(hash)),
        ),
    }
}

/// The item a conditional write returned (`ReturnValues`), `None` when its condition failed;
/// any other failure is the store's.
fn returned<E>(
    result: Result<Option<HashMap<String, AttributeValue>>, aws_sdk_dynamodb::error::SdkError<E>>,
    operation: &'static str,
) -> Result<Option<HashMap<String, AttributeValue>>, StoreError>
where
    E: ConditionFailed
        + aws_smithy_runtime_api::client::result::CreateUnhandledError
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    match result.map_err(aws_sdk_dynamodb::error::SdkError::into_service_error) {
        Ok(item) => Ok(Some(item.unwrap_or_default())),
        Err(err) if err.condition_failed() => Ok(None),
        Err(err) => Err(StoreError(anyhow::Error::new(err).context(operation))),
    }
}

/// An operation error that can say its condition failed.
trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

#[async_trait]
impl SecondFactors for DynamoUserStore {
    async fn start_totp(&self, user: UserAt<'_>, pending: &PendingTotp) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(user.username_key))
            .update_expression("SET totp_pending = :pending, totp_pending_until = :until")
            .condition_expression("user_id = :user_id AND attribute_not_exists(totp_secret)")
            .expression_attribute_values(":pending", string(&pending.sealed_secret))
            .expression_attribute_values(":until", number(pending.until))
            .expression_attribute_values(":user_id", string(user.user_id))
            .send()
            .await;
        super::updated(result, "UpdateItem start TOTP")
    }

    async fn change_totp(
        &self,
        user: UserAt<'_>,
        change: &TotpChange,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(user.username_key))
            .expression_attribute_values(":user_id", string(user.user_id))
            .expression_attribute_values(":epoch", number(user.epoch))
            .expression_attribute_values(":one", number(1));
        let base = user_epoch_condition(user.epoch);
        let update = match change {
            TotpChange::Enable {
                pending,
                step,
                recovery,
            } => update
                .update_expression(
                    "SET totp_secret = :pending, totp_step = :step, recovery = :recovery ADD epoch :one REMOVE totp_pending, totp_pending_until",
                )
                .condition_expression(format!(
                    "{base} AND totp_pending = :pending AND attribute_not_exists(totp_secret)"
                ))
                .expression_attribute_values(":pending", string(pending))
                .expression_attribute_values(":step", number(*step))
                .expression_attribute_values(":recovery", string_set(recovery)),
            TotpChange::Disable { secret, used } => {
                let (condition, _, update) = code_use(used, update);
                update
                    .update_expression("ADD epoch :one REMOVE totp_secret, totp_step, recovery")
                    .condition_expression(format!("{base} AND totp_secret = :secret AND {condition}"))
                    .expression_attribute_values(":secret", string(secret))
            }
            TotpChange::Regenerate {
                secret,
                used,
                recovery,
            } => {
                let (condition, set, update) = code_use(used, update);
                let set = set.map(|s| format!(", {s}")).unwrap_or_default();
                update
                    .update_expression(format!("SET recovery = :recovery{set} ADD epoch :one"))
                    .condition_expression(format!("{base} AND totp_secret = :secret AND {condition}"))
                    .expression_attribute_values(":secret", string(secret))
                    .expression_attribute_values(":recovery", string_set(recovery))
            }
        };
        let [put_session, put_first, put_event] = self.session_items(session, first)?;
        let request = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
            )
            .transact_items(put_session)
            .transact_items(put_first)
            .transact_items(put_event);
        Ok(self
            .transact(request, "TransactWriteItems change TOTP")
            .await?
            .is_none())
    }

    async fn issue_ticket(&self, hash: &TokenHash, ticket: &TicketRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, ticket_key(hash))
            .item(USER_ID_ATTRIBUTE, string(&ticket.user_id))
            .item("username_key", string(&ticket.username_key))
            .item("epoch", number(ticket.epoch))
            .item(ATTEMPTS_ATTRIBUTE, number(0))
            .item(TTL_ATTRIBUTE, number(ticket.expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(unavailable("PutItem MFA ticket"))?;
        Ok(())
    }

    async fn spend_ticket(
        &self,
        hash: &TokenHash,
        max: u32,
        now: u64,
    ) -> Result<Option<TicketRecord>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, ticket_key(hash))
            .update_expression("ADD attempts :one")
            .condition_expression("attribute_exists(pk) AND expires_at > :now AND attempts < :max")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":max", number(u64::from(max)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map(|output| output.attributes);
        let Some(item) = returned(result, "UpdateItem MFA ticket")? else {
            return Ok(None);
        };
        (|| {
            Ok(Some(TicketRecord {
                user_id: string_attr(&item, USER_ID_ATTRIBUTE)?,
                username_key: string_attr(&item, "username_key")?,
                epoch: number_attr(&item, "epoch")?.context("no epoch")?,
                expires_at: number_attr(&item, TTL_ATTRIBUTE)?.context("no expires_at")?,
            }))
        })()
        .map_err(|e: anyhow::Error| StoreError(e.context("malformed MFA ticket")))
    }

    async fn complete_login(
        &self,
        hash: &TokenHash,
        ticket: &TicketRecord,
        secret: &str,
        used: &CodeUse,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<bool, StoreError> {
        let used_ticket = Delete::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, ticket_key(hash))
            .condition_expression("attribute_exists(pk)")
            .build();
        let update = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(&ticket.username_key))
            .expression_attribute_values(":user_id", string(&ticket.user_id))
            .expression_attribute_values(":epoch", number(ticket.epoch))
            .expression_attribute_values(":secret", string(secret));
        let (condition, set, update) = code_use(used, update);
        let (expression, update) = match used {
            CodeUse::Step(_) => (format!("SET {}", set.unwrap_or_default()), update),
            CodeUse::Recovery(hash) => (
                "DELETE recovery :codes".to_owned(),
                update.expression_attribute_values(":codes", string_set(std::slice::from_ref(hash))),
            ),
        };
        let update = update
            .update_expression(expression)
            .condition_expression(format!(
                "{} AND totp_secret = :secret AND {condition}",
                user_epoch_condition(ticket.epoch)
            ))
            .build();
        let [put_session, put_first, put_event] = self.session_items(session, first)?;
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(built(used_ticket)?).build())
            .transact_items(TransactWriteItem::builder().update(built(update)?).build())
            .transact_items(put_session)
            .transact_items(put_first)
            .transact_items(put_event);
        Ok(self
            .transact(request, "TransactWriteItems MFA login")
            .await?
            .is_none())
    }
}

#[async_trait]
impl PasskeyStore for DynamoUserStore {
    async fn put_challenge(&self, id: &str, challenge: &ChallengeRecord) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, challenge_key(id))
            .item("kind", string(&challenge.kind))
            .item("state", string(&challenge.state))
            .item(TTL_ATTRIBUTE, number(challenge.expires_at));
        if let Some(user_id) = &challenge.user_id {
            put = put.item(USER_ID_ATTRIBUTE, string(user_id));
        }
        put.condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(unavailable("PutItem challenge"))?;
        Ok(())
    }

    async fn take_challenge(&self, id: &str, now: u64) -> Result<Option<ChallengeRecord>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, challenge_key(id))
            .condition_expression("attribute_exists(pk) AND expires_at > :now")
            .expression_attribute_values(":now", number(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map(|output| output.attributes);
        let Some(item) = returned(result, "DeleteItem challenge")? else {
            return Ok(None);
        };
        (|| {
            Ok(Some(ChallengeRecord {
                kind: string_attr(&item, "kind")?,
                user_id: optional_string(&item, USER_ID_ATTRIBUTE)?,
                state: string_attr(&item, "state")?,
                expires_at: number_attr(&item, TTL_ATTRIBUTE)?.context("no expires_at")?,
            }))
        })()
        .map_err(|e: anyhow::Error| StoreError(e.context("malformed challenge")))
    }

    async fn add_passkey(
        &self,
        passkey: &StoredPasskey,
        summary: &PasskeySummary,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let listing = AttributeValue::M(HashMap::from([
            ("name".to_owned(), string(&summary.name)),
            ("created_at".to_owned(), number(summary.created_at)),
        ]));
        // The listing goes into the user's map, which the first passkey creates: a nested SET
        // needs the map to exist, so each attempt is conditioned on whether it does, and a
        // race between two first passkeys ends in the nested form.
        for map_exists in [true, false, true] {
            let put = Put::builder()
                .table_name(&self.table)
                .item(PARTITION_KEY, passkey_key(&passkey.id))
                .item(USER_ID_ATTRIBUTE, string(&passkey.user_id))
                .item("username_key", string(&passkey.username_key))
                .item("credential", string(&passkey.credential))
                .item("counter", number(u64::from(passkey.counter)))
                .item("created_at", number(summary.created_at))
                .condition_expression("attribute_not_exists(pk)")
                .build();
            let list = Update::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, user_key(&passkey.username_key))
                .expression_attribute_values(":user_id", string(&passkey.user_id));
            let list = if map_exists {
                list.update_expression("SET passkeys.#id = :listing")
                    .condition_expression("user_id = :user_id AND attribute_exists(passkeys)")
                    .expression_attribute_names("#id", &passkey.id)
                    .expression_attribute_values(":listing", listing.clone())
            } else {
                list.update_expression("SET passkeys = :map")
                    .condition_expression("user_id = :user_id AND attribute_not_exists(passkeys)")
                    .expression_attribute_values(
                        ":map",
                        AttributeValue::M(HashMap::from([(passkey.id.clone(), listing.clone())])),
                    )
            };
            let request = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(built(put)?).build())
                .transact_items(TransactWriteItem::builder().update(built(list.build())?).build())
                .transact_items(self.put_event(event)?);
            match self.transact(request, "TransactWriteItems add passkey").await? {
                None => return Ok(true),
                // The credential is registered already.
                Some(codes) if super::condition_failed(&codes, 0) => return Ok(false),
                // The map is not as this attempt assumed, or the user is gone: the next attempt
                // tells which.
                Some(_) => {}
            }
        }
        Ok(false)
    }

    async fn find_passkey(&self, id: &str) -> Result<Option<StoredPasskey>, StoreError> {
        let Some(item) = self.whole_item(passkey_key(id), "GetItem passkey").await? else {
            return Ok(None);
        };
        (|| {
            Ok(Some(StoredPasskey {
                id: id.to_owned(),
                user_id: string_attr(&item, USER_ID_ATTRIBUTE)?,
                username_key: string_attr(&item, "username_key")?,
                credential: string_attr(&item, "credential")?,
                counter: u32::try_from(number_attr(&item, "counter")?.unwrap_or(0))?,
            }))
        })()
        .map_err(|e: anyhow::Error| StoreError(e.context("malformed passkey")))
    }

    async fn sign_in_with_passkey(
        &self,
        passkey: &StoredPasskey,
        used: &PasskeyUse<'_>,
        user: UserAt<'_>,
        session: &NewSession,
        first: &TokenHash,
    ) -> Result<bool, StoreError> {
        let used = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, passkey_key(&passkey.id))
            .update_expression("SET credential = :credential, #counter = :counter, last_used_at = :now")
            .condition_expression("user_id = :user_id AND #counter = :old")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":credential", string(used.credential))
            .expression_attribute_values(":counter", number(u64::from(used.counter)))
            .expression_attribute_values(":old", number(u64::from(passkey.counter)))
            .expression_attribute_values(":now", number(used.at))
            .expression_attribute_values(":user_id", string(&passkey.user_id))
            .build();
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(user.username_key))
            .condition_expression(user_epoch_condition(user.epoch))
            .expression_attribute_values(":user_id", string(user.user_id))
            .expression_attribute_values(":epoch", number(user.epoch))
            .build();
        let [put_session, put_first, put_event] = self.session_items(session, first)?;
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(built(used)?).build())
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(built(check)?)
                    .build(),
            )
            .transact_items(put_session)
            .transact_items(put_first)
            .transact_items(put_event);
        Ok(self
            .transact(request, "TransactWriteItems passkey sign-in")
            .await?
            .is_none())
    }

    async fn remove_passkey(
        &self,
        user: UserAt<'_>,
        id: &str,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, passkey_key(id))
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":user_id", string(user.user_id))
            .build();
        let unlist = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, user_key(user.username_key))
            .update_expression("REMOVE passkeys.#id")
            .condition_expression("user_id = :user_id")
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":user_id", string(user.user_id))
            .build();
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(built(delete)?).build())
            .transact_items(TransactWriteItem::builder().update(built(unlist)?).build())
            .transact_items(self.put_event(event)?);
        Ok(self
            .transact(request, "TransactWriteItems remove passkey")
            .await?
            .is_none())
    }
}
