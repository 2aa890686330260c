//! The requests a function's store really sent, held against what its capabilities declare
//! (`shared::store::access`): every handler test's traffic is checked this way when its
//! [`crate::Apps`] goes, so a declaration (and with it the IAM check) cannot fall behind the code.

use serde_json::Value;
use shared::store::access::{Access, Action, Capability, PARTITION_KEY, Within, prefix_of};

/// One item request as DynamoDB receives it (a transaction's items one by one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `None`: an operation that no capability declares (a `Scan`, ...).
    pub action: Option<Action>,
    pub operation: String,
    /// The partition key; for a `Query`, the partition it reads (the `ByUser` index's are user
    /// ids, with no prefix; the `UserLists` index's have theirs).
    pub key: String,
    /// The index a `Query` reads (`None`: the table).
    pub index: Option<String>,
    /// The attributes it names, the key included; `None` for the whole item.
    pub attributes: Option<Vec<String>>,
    pub returns: String,
    pub within: Within,
}

impl Sent {
    /// Whether `declared` allows this request: same action, prefix, enclosing request and
    /// return values, and no attribute beyond the declared ones (a declared projection must be
    /// there: a projected read never reads the whole item).
    pub fn is_covered_by(&self, declared: &Access) -> bool {
        self.action == Some(declared.action)
            && prefix_of(&self.key).unwrap_or("") == declared.prefix
            && self.index.as_deref() == declared.index
            && self.within == declared.within
            && self.returns == declared.returns
            && match (declared.attributes, &self.attributes) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(allowed), Some(named)) => named.iter().all(|a| allowed.contains(&a.as_str())),
            }
    }
}

/// The item requests of one DynamoDB request (`operation` from `X-Amz-Target`, `body` its JSON).
pub fn item_requests(operation: &str, body: &Value) -> Vec<Sent> {
    let single = |action| vec![item(Some(action), operation, body, Within::Alone)];
    match operation {
        "GetItem" => single(Action::GetItem),
        "PutItem" => single(Action::PutItem),
        "UpdateItem" => single(Action::UpdateItem),
        "DeleteItem" => single(Action::DeleteItem),
        "Query" => {
            let mut query = item(Some(Action::Query), operation, body, Within::Alone);
            query.index = body["IndexName"].as_str().map(str::to_owned);
            // The partition it reads: the value the key condition compares the partition key to.
            query.key = body["KeyConditionExpression"]
                .as_str()
                .and_then(|condition| condition.split_whitespace().find(|t| t.starts_with(':')))
                .and_then(|value| body["ExpressionAttributeValues"][value]["S"].as_str())
                .unwrap_or_default()
                .to_owned();
            // The whole item unless it asks for less (an index's projection is not the
            // request's to narrow).
            query.attributes = body.get("ProjectionExpression").map(|_| {
                with_key(expression_names(
                    body["ProjectionExpression"].as_str().unwrap_or(""),
                    &body["ExpressionAttributeNames"],
                ))
            });
            vec![query]
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let within = if operation == "TransactGetItems" {
                Within::TransactGetItems
            } else {
                Within::TransactWriteItems
            };
            let items = body["TransactItems"].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .flat_map(|entry| entry.as_object().into_iter().flatten())
                .map(|(kind, request)| {
                    let action = match kind.as_str() {
                        "Get" => Some(Action::GetItem),
                        "Put" => Some(Action::PutItem),
                        "Update" => Some(Action::UpdateItem),
                        "Delete" => Some(Action::DeleteItem),
                        "ConditionCheck" => Some(Action::ConditionCheckItem),
                        _ => None,
                    };
                    item(action, kind, request, within)
                })
                .collect()
        }
        _ => vec![item(None, operation, body, Within::Alone)],
    }
}

fn item(action: Option<Action>, operation: &str, request: &Value, within: Within) -> Sent {
    let key = request
        .get("Key")
        .or_else(|| request.get("Item"))
        .and_then(|key| key[PARTITION_KEY]["S"].as_str())
        .unwrap_or_default()
        .to_owned();
    let names = |field: &str| {
        expression_names(
            request[field].as_str().unwrap_or(""),
            &request["ExpressionAttributeNames"],
        )
    };
    let attributes = match action {
        Some(Action::GetItem) => request
            .get("ProjectionExpression")
            .map(|_| with_key(names("ProjectionExpression"))),
        Some(Action::UpdateItem | Action::ConditionCheckItem) => {
            let mut named = names("UpdateExpression");
            named.extend(names("ConditionExpression"));
            Some(with_key(named))
        }
        // A put names its item's attributes (a declaration of the whole item, `None`, covers it).
        Some(Action::PutItem) => {
            let mut named: Vec<String> = request["Item"]
                .as_object()
                .map(|item| item.keys().cloned().collect())
                .unwrap_or_default();
            named.extend(names("ConditionExpression"));
            Some(with_key(named))
        }
        _ => None,
    };
    Sent {
        action,
        operation: operation.to_owned(),
        key,
        index: None,
        attributes,
        returns: request["ReturnValues"].as_str().unwrap_or("NONE").to_owned(),
        within,
    }
}

fn with_key(mut names: Vec<String>) -> Vec<String> {
    names.push(PARTITION_KEY.to_owned());
    names.sort();
    names.dedup();
    names
}

/// The attribute names an expression refers to: plain names and `#placeholders` resolved, not
/// `:values`, keywords or functions.
fn expression_names(expression: &str, placeholders: &Value) -> Vec<String> {
    const WORDS: [&str; 17] = [
        "AND",
        "OR",
        "NOT",
        "SET",
        "ADD",
        "REMOVE",
        "DELETE",
        "BETWEEN",
        "IN",
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
    ];
    let mut names = Vec::new();
    let mut chars = expression.chars().peekable();
    // IAM's dynamodb:Attributes holds top-level names only: an element of a document path
    // (`passkeys.#id`) after its first is not one.
    let mut nested = false;
    while let Some(c) = chars.next() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':') {
            nested = c == '.';
            continue;
        }
        let in_path = std::mem::take(&mut nested);
        let mut token = c.to_string();
        while let Some(&next) = chars.peek() {
            if !(next.is_ascii_alphanumeric() || next == '_') {
                break;
            }
            token.push(next);
            chars.next();
        }
        if in_path || token.starts_with(':') || token.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if let Some(placeholder) = token.strip_prefix('#').map(|_| &token) {
            names.push(
                placeholders[placeholder]
                    .as_str()
                    .unwrap_or(placeholder)
                    .to_owned(),
            );
        } else if !WORDS.iter().any(|word| word.eq_ignore_ascii_case(&token)) {
            names.push(token);
        }
    }
    names
}

/// The item requests among `requests` that none of `capabilities` declares.
pub fn undeclared(capabilities: &[Capability], requests: &[(String, Value)]) -> Vec<Sent> {
    let mut found: Vec<Sent> = Vec::new();
    for (operation, body) in requests {
        for sent in item_requests(operation, body) {
            let declared = capabilities
                .iter()
                .flat_map(|capability| capability.accesses())
                .any(|access| sent.is_covered_by(access));
            let same = |other: &Sent| {
                Sent {
                    key: String::new(),
                    ..other.clone()
                } == Sent {
                    key: String::new(),
                    ..sent.clone()
                } && prefix_of(&other.key) == prefix_of(&sent.key)
            };
            if !declared && !found.iter().any(same) {
                found.push(sent);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::store::access::Capability;

    use super::*;

    #[test]
    fn an_update_names_its_expressions_attributes_and_the_key() {
        let body = json!({
            "Key": {"pk": {"S": "LOGIN#alice#7"}},
            "UpdateExpression": "SET #n = #n - :one",
            "ConditionExpression": "attribute_exists(#pk) AND #n > :zero",
            "ExpressionAttributeNames": {"#pk": "pk", "#n": "attempts"},
        });
        let sent = item_requests("UpdateItem", &body);
        assert_eq!(
            sent[0].attributes,
            Some(vec!["attempts".to_owned(), "pk".to_owned()])
        );
        assert!(
            undeclared(
                &[Capability::CountLoginAttempts],
                &[("UpdateItem".into(), body.clone())]
            )
            .is_empty()
        );
        assert_eq!(
            undeclared(&[Capability::ReadCaller], &[("UpdateItem".into(), body)]).len(),
            1
        );
    }

    #[test]
    fn a_read_of_the_whole_user_is_undeclared_where_a_projection_is_declared() {
        let whole = json!({"Key": {"pk": {"S": "USER#alice"}}, "ConsistentRead": true});
        let projected = json!({
            "Key": {"pk": {"S": "USER#alice"}},
            "ProjectionExpression": "user_id, username, epoch",
        });
        assert!(
            undeclared(
                &[Capability::ReadCaller],
                &[("GetItem".into(), projected.clone())]
            )
            .is_empty()
        );
        assert_eq!(
            undeclared(&[Capability::ReadCaller], &[("GetItem".into(), whole.clone())]).len(),
            1
        );
        assert!(undeclared(&[Capability::FindUser], &[("GetItem".into(), whole)]).is_empty());
        let more = json!({
            "Key": {"pk": {"S": "USER#alice"}},
            "ProjectionExpression": "user_id, #h",
            "ExpressionAttributeNames": {"#h": "password_hash"},
        });
        assert_eq!(
            undeclared(&[Capability::ReadCaller], &[("GetItem".into(), more)]).len(),
            1
        );
    }

    #[test]
    fn a_transaction_is_checked_item_by_item_and_other_operations_are_undeclared() {
        let grace = json!({"TransactItems": [
            {"Get": {"Key": {"pk": {"S": "SESSION#s"}}, "ProjectionExpression": "pk, revoked_at"}},
            {"Get": {"Key": {"pk": {"S": "USER#a"}}, "ProjectionExpression": "user_id, epoch"}},
        ]});
        assert!(
            undeclared(
                &[Capability::Sessions],
                &[("TransactGetItems".into(), grace.clone())]
            )
            .is_empty()
        );
        assert_eq!(
            undeclared(&[Capability::ReadCaller], &[("TransactGetItems".into(), grace)]).len(),
            2
        );
        assert_eq!(
            undeclared(&[Capability::Sessions], &[("Scan".into(), json!({}))]).len(),
            1
        );
    }
}
