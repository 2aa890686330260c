//! DynamoDB on 127.0.0.1 for `./dev run` and `./dev test`: Dynoxide's HTTP server (the engine the
//! test suite embeds) over an in-memory database, so every run starts empty, with the table of
//! `template.yaml` created in it (the one definition: key schema, billing mode, TTL). Stops on
//! Ctrl-C or SIGTERM.

use std::path::PathBuf;

use clap::Parser;
use serde_json::{Value, json};

/// DynamoDB (Dynoxide, in memory) on 127.0.0.1, with the template's table.
#[derive(Debug, Parser)]
struct Args {
    /// The port to listen on.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The name of the table to create from the template's `AWS::DynamoDB::Table`.
    #[arg(long)]
    table: String,
    /// The SAM template.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let database = dynoxide::Database::memory().map_err(|e| format!("an in-memory database: {e}"))?;
    let text = std::fs::read_to_string(&args.template)
        .map_err(|e| format!("reading {}: {e}", args.template.display()))?;
    let (create, ttl) = table_requests(&text, &args.table)?;
    let invalid = |e: serde_json::Error| format!("the template's table: {e}");
    database
        .create_table(serde_json::from_value(create).map_err(invalid)?)
        .map_err(|e| format!("creating table {}: {e}", args.table))?;
    if let Some(ttl) = ttl {
        database
            .update_time_to_live(serde_json::from_value(ttl).map_err(invalid)?)
            .map_err(|e| format!("enabling TTL on {}: {e}", args.table))?;
    }
    eprintln!("created table {} from {}", args.table, args.template.display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime: {e}"))?;
    runtime.block_on(dynoxide::server::start("127.0.0.1", args.port, database))
}

/// The `CreateTable` request of the template's one table resource under the name `table`, and
/// its `UpdateTimeToLive` when the template enables TTL: DynamoDB's own request shapes, which
/// the resource's properties already are.
fn table_requests(template: &str, table: &str) -> Result<(Value, Option<Value>), String> {
    let template = local_api::template::parse(template).map_err(|e| format!("template: {e}"))?;
    let tables: Vec<&Value> = template["Resources"]
        .as_object()
        .ok_or("the template has no Resources")?
        .values()
        .filter(|r| r["Type"] == "AWS::DynamoDB::Table")
        .collect();
    let [resource] = tables[..] else {
        return Err(format!("the template defines {} tables, not one", tables.len()));
    };
    let props = &resource["Properties"];
    let mut create = json!({
        "TableName": table,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode").cloned().unwrap_or(json!("PROVISIONED")),
    });
    for indexes in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
        if let Some(value) = props.get(indexes) {
            create[indexes] = value.clone();
        }
    }
    let ttl = props
        .get("TimeToLiveSpecification")
        .filter(|ttl| ttl["Enabled"] == json!(true))
        .map(|ttl| {
            json!({
                "TableName": table,
                "TimeToLiveSpecification": {"AttributeName": ttl["AttributeName"], "Enabled": true},
            })
        });
    Ok((create, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_table_becomes_its_create_table_request() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
        let (create, ttl) = table_requests(&text, "users").unwrap();
        assert_eq!(create["TableName"], "users");
        assert_eq!(
            create["KeySchema"],
            json!([{"AttributeName": "pk", "KeyType": "HASH"}])
        );
        assert_eq!(create["BillingMode"], "PAY_PER_REQUEST");
        let ttl = ttl.expect("the template enables TTL");
        assert_eq!(ttl["TimeToLiveSpecification"]["AttributeName"], "expires_at");
        let database = dynoxide::Database::memory().unwrap();
        database
            .create_table(serde_json::from_value(create).unwrap())
            .unwrap();
        database
            .update_time_to_live(serde_json::from_value(ttl).unwrap())
            .unwrap();
    }
}
