//! A user's lists on the `UserLists` index: its live sessions ("Your devices") and its security
//! events, each one `Query` of one partition, newest first, a page at a time.
//!
//! The index is sparse: a session is in it (`list_key = SESSIONS#<user id>#<epoch>`) from its
//! start until it is revoked, an event (`EVENTS#<user id>`) until its TTL. Sessions of an older
//! epoch (log out everywhere, a password change) are in another partition and never listed;
//! sessions past their end that the TTL has not deleted yet are filtered out. The partition
//! always comes from the caller's verified token, never from the request: a cursor only says
//! where in the caller's own list to go on.

use std::collections::HashMap;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::super::access::{
    EVENT_LISTING, EVENT_PREFIX, LIST_INDEX, LIST_KEY_ATTRIBUTE, LIST_SORT_ATTRIBUTE, SESSION_LISTING,
    SESSION_PREFIX,
};
use super::super::{
    Devices, ListCursor, Liveness, Page, SecurityLog, SessionSummary, StoreError, StoredEvent,
};
use super::{
    DynamoUserStore, PARTITION_KEY, events_list, number, number_attr, optional_string, sessions_list, string,
    string_attr, unavailable,
};
use crate::events::SecurityEvent;

type Item = HashMap<String, AttributeValue>;

/// The id of an item of `prefix`, from its key.
fn id_of(item: &Item, prefix: &str) -> anyhow::Result<String> {
    let key = string_attr(item, PARTITION_KEY)?;
    key.strip_prefix(prefix)
        .map(str::to_owned)
        .with_context(|| format!("a listed key without {prefix}"))
}

/// The cursor after the last item of a page: its sort key, which DynamoDB's
/// `LastEvaluatedKey` holds too (a filtered page may end on an item it did not return).
fn next_cursor(last: Option<&Item>) -> Result<Option<ListCursor>, StoreError> {
    let Some(last) = last else {
        return Ok(None);
    };
    let key = string_attr(last, LIST_SORT_ATTRIBUTE).map_err(StoreError)?;
    ListCursor::from_sort_key(&key)
        .map(Some)
        .context("a malformed list sort key")
        .map_err(StoreError)
}

impl DynamoUserStore {
    /// One page of the list `list` (newest first), projected to `projection` (each name as a
    /// placeholder: some are reserved words), after `after`, filtered by `filter` (with its
    /// values): at most `limit` items, and where the next page starts if there may be one
    /// (`None`: this is the last).
    #[allow(clippy::too_many_arguments)]
    async fn list_page(
        &self,
        list: AttributeValue,
        item_prefix: &str,
        projection: &[&str],
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
        limit: u32,
        after: Option<&ListCursor>,
        operation: &'static str,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let start = after.map(|cursor| {
            HashMap::from([
                (
                    PARTITION_KEY.to_owned(),
                    string(&format!("{item_prefix}{}", cursor.id)),
                ),
                (LIST_KEY_ATTRIBUTE.to_owned(), list.clone()),
                (LIST_SORT_ATTRIBUTE.to_owned(), string(&cursor.sort_key())),
            ])
        });
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(LIST_INDEX)
            .key_condition_expression("#list = :list")
            .expression_attribute_names("#list", LIST_KEY_ATTRIBUTE)
            .expression_attribute_values(":list", list)
            .projection_expression(
                (0..projection.len())
                    .map(|i| format!("#p{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .scan_index_forward(false)
            // One more than the page: if it comes, there is a next page for sure; if not, the
            // page is the last unless DynamoDB stopped early (it filtered some out).
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        for (i, name) in projection.iter().enumerate() {
            query = query.expression_attribute_names(format!("#p{i}"), *name);
        }
        if let Some((filter, values)) = filter {
            query = query.filter_expression(filter);
            for (name, value) in values {
                query = query.expression_attribute_values(name, value);
            }
        }
        let output = query.send().await.map_err(unavailable(operation))?;
        let stopped_at = output.last_evaluated_key().cloned();
        let mut items = output.items.unwrap_or_default();
        let page = usize::try_from(limit).unwrap_or(usize::MAX);
        let last = if items.len() > page {
            items.truncate(page);
            items.last().cloned()
        } else {
            stopped_at
        };
        Ok((items, last))
    }
}

#[async_trait]
impl Devices for DynamoUserStore {
    async fn list_sessions(
        &self,
        user_id: &str,
        epoch: u64,
        live: Liveness,
        limit: u32,
        after: Option<&ListCursor>,
    ) -> Result<Page<SessionSummary>, StoreError> {
        let (items, last) = self
            .list_page(
                sessions_list(user_id, epoch),
                SESSION_PREFIX,
                SESSION_LISTING,
                Some((
                    "expires_at > :now AND last_used_at > :idle_since",
                    vec![
                        (":now", number(live.now)),
                        (":idle_since", number(live.idle_since)),
                    ],
                )),
                limit,
                after,
                "Query sessions",
            )
            .await?;
        let sessions = items
            .iter()
            .map(|item| {
                Ok(SessionSummary {
                    id: id_of(item, SESSION_PREFIX)?,
                    started_at: number_attr(item, "started_at")?.context("no started_at")?,
                    last_used_at: number_attr(item, "last_used_at")?.context("no last_used_at")?,
                    device: optional_string(item, "device")?,
                    ip_at_start: optional_string(item, "ip_at_start")?,
                    ip_last_used: optional_string(item, "ip_last_used")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| StoreError(e.context("malformed session in the list")))?;
        Ok(Page {
            items: sessions,
            next: next_cursor(last.as_ref())?,
        })
    }

    async fn end_session(
        &self,
        user_id: &str,
        epoch: u64,
        session_id: &str,
        live: Liveness,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        // Conditioned on what the revocation writes anyway, not on user_id, epoch or expires_at:
        // IAM's dynamodb:Attributes cannot tell a condition's attributes from an update's, and
        // the role must not be able to set those. The list says whose, which epoch and not
        // revoked; its sort key starts with the start time (absolute end); the last use is
        // the idle time's.
        let revoke = self
            .revocation(session_id, live.now)
            .condition_expression("#list = :list AND #at > :oldest AND last_used_at > :idle_since")
            .expression_attribute_names("#at", LIST_SORT_ATTRIBUTE)
            .expression_attribute_values(":list", sessions_list(user_id, epoch))
            // Every sort key of a session started after `started_after` is greater; one of that
            // very second (whose end is now) is not: `~` is above any id's character.
            .expression_attribute_values(":oldest", string(&format!("{:010}#~", live.started_after)))
            .expression_attribute_values(":idle_since", number(live.idle_since))
            .build();
        self.update_with_event(revoke, event, "TransactWriteItems end a session")
            .await
    }
}

#[async_trait]
impl SecurityLog for DynamoUserStore {
    async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.event_item(event)?))
            .send()
            .await
            .map_err(unavailable("PutItem event"))?;
        Ok(())
    }

    async fn list_events(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<&ListCursor>,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let (items, last) = self
            .list_page(
                events_list(user_id),
                EVENT_PREFIX,
                EVENT_LISTING,
                None,
                limit,
                after,
                "Query events",
            )
            .await?;
        let events = items
            .iter()
            .map(|item| {
                Ok(StoredEvent {
                    id: id_of(item, EVENT_PREFIX)?,
                    at: number_attr(item, "at")?.context("no at")?,
                    kind: string_attr(item, "event_type")?,
                    outcome: string_attr(item, "outcome")?,
                    detail: optional_string(item, "detail")?,
                    ip: optional_string(item, "ip")?,
                    device: optional_string(item, "device")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| StoreError(e.context("malformed event in the list")))?;
        Ok(Page {
            items: events,
            next: next_cursor(last.as_ref())?,
        })
    }
}
