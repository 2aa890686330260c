//! Each function's IAM role in `template.yaml` against what its code may do: the store
//! capabilities its `App` holds (`STORE`, each declaring its requests in
//! `shared::store::access`; the harness holds every request the functions really send against
//! them) and the Secrets Manager actions it declares (`SECRETS`). The template is read as data,
//! never Rust as text.
//!
//! Each declared request is evaluated against the role as IAM does (some Allow applies and no
//! Deny does; an unknown condition operator is an error, never a pass), with the context DynamoDB
//! gives it ("Using IAM policy conditions for fine-grained access control", DynamoDB Developer
//! Guide): `dynamodb:LeadingKeys` the key, `dynamodb:Attributes` the attributes named (key
//! included), `dynamodb:Select` on reads ("always has a value (ALL_ATTRIBUTES, unless otherwise
//! specified)"), `dynamodb:ReturnValues` on writes ("NONE unless otherwise specified"), and
//! `dynamodb:EnclosingOperation` for a transaction's items ("Using IAM with DynamoDB
//! transactions"). Every declared request must be allowed, with and without Select and
//! ReturnValues (nothing documents whether a transaction's item carries them); the same request
//! on another prefix, naming one attribute more, reading the whole item where a projection is
//! declared, or returning ALL_OLD / ALL_NEW, must be denied unless another declared request needs
//! it; a function that reads USER# items only in part is denied the whole item, plainly and in a
//! transaction; the DynamoDB actions granted are exactly those declared, on the table only.

use std::collections::BTreeSet;

use integration_tests::{template, template_text};
use serde_json::{Map, Value, json};
use shared::store::access::{
    Access, Capability, LIST_PREFIXES, PARTITION_KEY, PREFIXES, SECRET_ATTRIBUTE, USER_PREFIX, Within,
};

/// A function of the template, by its binary: what its code may do.
struct Function {
    binary: &'static str,
    store: &'static [Capability],
    secrets: &'static [&'static str],
    mail: &'static [&'static str],
}

const FUNCTIONS: [Function; 6] = [
    Function {
        binary: "authorizer",
        store: &[],
        secrets: &[],
        mail: &[],
    },
    Function {
        binary: "jwks",
        store: &[],
        secrets: &[],
        mail: &[],
    },
    Function {
        binary: "keyset",
        store: &[],
        secrets: keyset::SECRETS,
        mail: &[],
    },
    Function {
        binary: "protected",
        store: protected::STORE,
        secrets: &[],
        mail: &[],
    },
    Function {
        binary: "token",
        store: token::STORE,
        secrets: token::SECRETS,
        mail: token::MAIL,
    },
    Function {
        binary: "users",
        store: users::STORE,
        secrets: &[],
        mail: users::MAIL,
    },
];

/// Functions that verify tokens with the public keys only.
const VERIFIERS: [&str; 3] = ["authorizer", "protected", "jwks"];
/// A prefix that no code uses, and an attribute that none names.
const FOREIGN_PREFIX: &str = "OTHER#";
const FOREIGN_ATTRIBUTE: &str = "not_an_attribute";
/// An index that the table does not have.
const FOREIGN_INDEX: &str = "OtherIndex";

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn strings(value: &Value) -> Vec<String> {
    list(value)
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect()
}

/// The logical id a `!GetAtt Id.Arn` names.
fn get_att(value: &Value) -> Option<&str> {
    let target = value.get("Fn::GetAtt")?.as_array()?;
    (target.get(1)?.as_str()? == "Arn").then_some(target.first()?.as_str()?)
}

fn resource_type<'a>(template: &'a Value, id: &str) -> &'a str {
    template["Resources"][id]["Type"].as_str().unwrap_or_default()
}

// --- IAM evaluation ---------------------------------------------------------------------------

/// A request's context: condition key to values (absent keys are not there).
type Context = Map<String, Value>;

/// `StringLike`'s `*` and `?`, else equality.
fn string_match(like: bool, pattern: &str, value: &str) -> bool {
    if !like {
        return pattern == value;
    }
    fn glob(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], v) || (!v.is_empty() && glob(p, &v[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &v[1..]),
            _ => false,
        }
    }
    glob(pattern.as_bytes(), value.as_bytes())
}

/// One operator and key of a Condition block against `context`.
fn condition_holds(operator: &str, key: &str, patterns: &Value, context: &Context) -> Result<bool, String> {
    let patterns = strings(patterns);
    let present = context.contains_key(key);
    // `Null`: "true" holds for a missing key, "false" for a present one (the IAM User Guide's
    // condition operators); what keeps a ForAllValues condition, true for a missing key, from
    // allowing a request that does not name its attributes.
    if operator == "Null" {
        return match patterns.as_slice() {
            [value] if value == "true" => Ok(!present),
            [value] if value == "false" => Ok(present),
            _ => Err(format!("Null on {key} with {patterns:?}")),
        };
    }
    let values = context.get(key).map(strings).unwrap_or_default();
    let (qualifier, base) = operator.rsplit_once(':').unwrap_or(("", operator));
    let if_exists = base.ends_with("IfExists");
    let like = match base.trim_end_matches("IfExists") {
        "StringEquals" => false,
        "StringLike" => true,
        _ => return Err(format!("condition operator {operator}")),
    };
    let matches = |value: &String| patterns.iter().any(|p| string_match(like, p, value));
    match qualifier {
        // True for a missing key: AWS does the same.
        "ForAllValues" => Ok(values.iter().all(matches)),
        "ForAnyValue" => Ok(values.iter().any(matches)),
        "" if !present => Ok(if_exists),
        "" if values.len() == 1 => Ok(matches(&values[0])),
        _ => Err(format!("{operator} on {key} with {} values", values.len())),
    }
}

/// What a DynamoDB statement's resource names: the table (`None`, `!GetAtt Table.Arn`) or one
/// of its indexes (`!Sub "${Table.Arn}/index/<name>"`); `Err` for anything else.
fn dynamodb_target(resource: &Value) -> Result<Option<String>, String> {
    if get_att(resource).is_some() {
        return Ok(None);
    }
    resource
        .get("Fn::Sub")
        .and_then(Value::as_str)
        .and_then(|sub| sub.split_once(".Arn}/index/"))
        .map(|(_, index)| Some(index.to_owned()))
        .ok_or_else(|| format!("a DynamoDB resource of another form: {resource}"))
}

fn applies(
    statement: &Value,
    effect: &str,
    action: &str,
    target: Option<&str>,
    context: &Context,
) -> Result<bool, String> {
    if statement["Effect"] != effect
        || !strings(&statement["Action"])
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action))
    {
        return Ok(false);
    }
    let mut covers = false;
    for resource in list(&statement["Resource"]) {
        covers |= dynamodb_target(&resource)?.as_deref() == target;
    }
    if !covers {
        return Ok(false);
    }
    for (operator, block) in statement["Condition"].as_object().into_iter().flatten() {
        for (key, patterns) in block.as_object().into_iter().flatten() {
            if !condition_holds(operator, key, patterns, context)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// IAM's rule: some Allow applies and no Deny does.
/// `target`: the table (`None`) or one of its indexes.
fn allowed(
    statements: &[Value],
    action: &str,
    target: Option<&str>,
    context: &Context,
) -> Result<bool, String> {
    let mut allow = false;
    for statement in statements {
        if applies(statement, "Deny", action, target, context)? {
            return Ok(false);
        }
        allow |= applies(statement, "Allow", action, target, context)?;
    }
    Ok(allow)
}

// --- the roles --------------------------------------------------------------------------------

/// The logical id of the function built from `binary`.
fn function_id(template: &Value, binary: &str) -> Option<String> {
    template["Resources"]
        .as_object()?
        .iter()
        .find_map(|(id, resource)| {
            (resource["Type"] == "AWS::Serverless::Function"
                && resource["Metadata"]["BuildProperties"]["Binary"] == binary)
                .then(|| id.clone())
        })
}

/// Every statement the function's role holds (inline, or in a policy attached to it), after the
/// structural checks: no managed policy, plain Allow or Deny, no wildcard resource, logging to
/// its own log group only, DynamoDB on the table only, Secrets Manager on the key set's secret.
fn role_statements(template: &Value, function: &str, problems: &mut Vec<String>) -> Vec<Value> {
    let role = get_att(&template["Resources"][function]["Properties"]["Role"]).unwrap_or_default();
    if resource_type(template, role) != "AWS::IAM::Role" {
        problems.push(format!("{function}: its Role is not a role of this template"));
        return Vec::new();
    }
    let properties = &template["Resources"][role]["Properties"];
    if !list(&properties["ManagedPolicyArns"]).is_empty() {
        problems.push(format!(
            "{function}: managed policies {}",
            properties["ManagedPolicyArns"]
        ));
    }
    let mut statements: Vec<Value> = list(&properties["Policies"])
        .iter()
        .flat_map(|policy| list(&policy["PolicyDocument"]["Statement"]))
        .collect();
    for resource in template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, r)| r)
    {
        if matches!(
            resource["Type"].as_str(),
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy")
        ) && list(&resource["Properties"]["Roles"]).contains(&json!({ "Ref": role }))
        {
            statements.extend(list(&resource["Properties"]["PolicyDocument"]["Statement"]));
        }
    }
    for statement in &statements {
        let effect = statement["Effect"].as_str().unwrap_or_default();
        if !matches!(effect, "Allow" | "Deny")
            || statement.get("NotAction").is_some()
            || statement.get("NotResource").is_some()
        {
            problems.push(format!("{function}: not a plain Allow or Deny: {statement}"));
            continue;
        }
        let actions = strings(&statement["Action"]);
        let resources = list(&statement["Resource"]);
        if resources.iter().any(|r| r.to_string().contains('*')) {
            problems.push(format!("{function}: a wildcard resource: {statement}"));
        }
        let on = |kind: &str| {
            resources
                .iter()
                .all(|r| resource_type(template, get_att(r).unwrap_or_default()) == kind)
        };
        let service = |prefix: &str| actions.iter().all(|a| a.starts_with(prefix));
        let fine = if service("logs:") {
            on("AWS::Logs::LogGroup")
                && resources
                    .iter()
                    .all(|r| get_att(r) == Some(&format!("{function}LogGroup")))
        } else if service("dynamodb:") {
            // The table, or an index the table defines (the Sub's table must be it too).
            resources.iter().all(|r| match dynamodb_target(r) {
                Ok(None) => resource_type(template, get_att(r).unwrap_or_default()) == "AWS::DynamoDB::Table",
                Ok(Some(index)) => {
                    let sub = r["Fn::Sub"].as_str().unwrap_or_default();
                    let table = sub.trim_start_matches("${").split('.').next().unwrap_or_default();
                    resource_type(template, table) == "AWS::DynamoDB::Table"
                        && list(&template["Resources"][table]["Properties"]["GlobalSecondaryIndexes"])
                            .iter()
                            .any(|i| i["IndexName"] == index.as_str())
                }
                Err(_) => false,
            })
        } else if service("secretsmanager:") {
            // The key set's secret, or the secret the function's own MFA_KEY_SECRET names.
            let own =
                &template["Resources"][function]["Properties"]["Environment"]["Variables"]["MFA_KEY_SECRET"];
            resources == [json!({ "Ref": key_set_secret(template).unwrap_or_default() })]
                || (!own.is_null() && resources == [own.clone()])
        } else if service("ses:") {
            // SES identities only (the sender's address or domain), and only from the sender.
            resources.iter().all(|r| r.to_string().contains(":identity/${"))
                && statement["Condition"]["StringEquals"]["ses:FromAddress"] == json!({ "Ref": "MailFrom" })
                && statement["Condition"].as_object().is_some_and(|c| c.len() == 1)
        } else {
            false
        };
        if !fine {
            problems.push(format!(
                "{function}: a grant beyond its logs, the table, the key set's secret and the mail identity: {statement}"
            ));
        }
    }
    statements
}

/// The secret the key-set custom resource writes (its `SecretId`).
fn key_set_secret(template: &Value) -> Option<String> {
    let key_set = key_set(template)?;
    template["Resources"][key_set]["Properties"]["SecretId"]["Ref"]
        .as_str()
        .map(str::to_owned)
}

/// The custom resource the key-set function serves.
fn key_set(template: &Value) -> Option<String> {
    let function = function_id(template, "keyset")?;
    template["Resources"]
        .as_object()?
        .iter()
        .find_map(|(id, resource)| {
            (get_att(&resource["Properties"]["ServiceToken"]) == Some(&function)).then(|| id.clone())
        })
}

// --- the check --------------------------------------------------------------------------------

/// The context of `access` on a key of `prefix`, naming `extra` attributes too, with or
/// without the Select / ReturnValues keys.
fn context(access: &Access, prefix: &str, extra: &[&str], options: bool) -> Context {
    let mut context = Context::new();
    context.insert("dynamodb:LeadingKeys".into(), json!([format!("{prefix}alice")]));
    if let Some(named) = access.attributes {
        let mut all: BTreeSet<&str> = named.iter().copied().collect();
        all.extend(extra);
        context.insert("dynamodb:Attributes".into(), json!(all));
    }
    if options {
        if access.action.reads() {
            let select = if access.attributes.is_some() {
                "SPECIFIC_ATTRIBUTES"
            } else {
                "ALL_ATTRIBUTES"
            };
            context.insert("dynamodb:Select".into(), json!(select));
        } else {
            context.insert("dynamodb:ReturnValues".into(), json!(access.returns));
        }
    }
    match access.within {
        Within::Alone => {}
        Within::TransactGetItems => {
            drop(context.insert("dynamodb:EnclosingOperation".into(), json!("TransactGetItems")))
        }
        Within::TransactWriteItems => {
            drop(context.insert("dynamodb:EnclosingOperation".into(), json!("TransactWriteItems")))
        }
    }
    context
}

/// Whether a request that another declared request already is (or reads more than) is
/// needed anyway: such a variant is no probe.
fn needed(accesses: &[Access], probe: &Access) -> bool {
    accesses.iter().any(|a| {
        a.action == probe.action
            && a.prefix == probe.prefix
            && a.index == probe.index
            && a.returns == probe.returns
            && match (a.attributes, probe.attributes) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(have), Some(want)) => want.iter().all(|w| have.contains(w)),
            }
    })
}

/// Every way the template's roles differ from what the functions declare.
fn problems(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let declared: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.binary).collect();
    let built: BTreeSet<String> = template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, r)| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    if built.iter().map(String::as_str).collect::<BTreeSet<_>>() != declared {
        problems.push(format!(
            "the template builds {built:?}; this check knows {declared:?}"
        ));
    }
    // Every attribute some grant names: a grant that lets a function name one more is wider.
    let granted_attributes: Vec<&'static str> = {
        let mut found = BTreeSet::new();
        collect_attributes(template, &mut found);
        found.into_iter().map(|a| &*a.leak()).collect()
    };
    for function in &FUNCTIONS {
        let Some(id) = function_id(template, function.binary) else {
            problems.push(format!("{}: no function builds it", function.binary));
            continue;
        };
        let statements = role_statements(template, &id, &mut problems);
        let accesses: Vec<Access> = function
            .store
            .iter()
            .flat_map(|c| c.accesses())
            .copied()
            .collect();
        let found = std::cell::RefCell::new(Vec::new());
        let expect = |allow: bool, what: String, access: &Access, context: Context| match allowed(
            &statements,
            &access.action.iam(),
            access.index,
            &context,
        ) {
            Ok(verdict) if verdict == allow => {}
            Ok(verdict) => found.borrow_mut().push(format!(
                "{}: {what} is {}, should be {} ({})",
                function.binary,
                if verdict { "allowed" } else { "denied" },
                if allow { "allowed" } else { "denied" },
                Value::Object(context)
            )),
            Err(unsupported) => found
                .borrow_mut()
                .push(format!("{}: cannot evaluate {unsupported}", function.binary)),
        };
        let probe = |what: String, variant: Access, context: Context| {
            if !needed(&accesses, &variant) {
                expect(false, what, &variant, context);
            }
        };
        for access in &accesses {
            let label = format!("{:?} {} {:?}", access.action, access.prefix, access.within);
            expect(
                true,
                label.clone(),
                access,
                context(access, access.prefix, &[], true),
            );
            expect(
                true,
                format!("{label} without Select or ReturnValues"),
                access,
                context(access, access.prefix, &[], false),
            );
            if access.index.is_some() {
                // The same request on the table, or on another index, is denied.
                for index in [None, Some(FOREIGN_INDEX)] {
                    let variant = Access { index, ..*access };
                    probe(
                        format!("{label} on {}", index.unwrap_or("the table")),
                        variant,
                        context(access, USER_PREFIX, &[], true),
                    );
                }
                // An index with kinds of partition (the lists): another kind's is denied.
                if !access.prefix.is_empty() {
                    for prefix in LIST_PREFIXES
                        .iter()
                        .chain([&FOREIGN_PREFIX])
                        .filter(|p| **p != access.prefix)
                    {
                        let variant = Access { prefix, ..*access };
                        probe(
                            format!("{label} on the {prefix} lists"),
                            variant,
                            context(access, prefix, &[], true),
                        );
                    }
                }
            }
            for prefix in PREFIXES
                .iter()
                .chain([&FOREIGN_PREFIX])
                .filter(|p| **p != access.prefix && access.index.is_none())
            {
                let variant = Access { prefix, ..*access };
                probe(
                    format!("{label} on {prefix} items"),
                    variant,
                    context(access, prefix, &[], true),
                );
            }
            if !access.action.reads() {
                for returns in ["ALL_OLD", "ALL_NEW"] {
                    let variant = Access { returns, ..*access };
                    probe(
                        format!("{label} returning {returns}"),
                        variant,
                        context(&variant, access.prefix, &[], true),
                    );
                }
            }
            let Some(named) = access.attributes else { continue };
            let known: BTreeSet<&str> = Capability::ALL
                .iter()
                .flat_map(|c| c.accesses())
                .flat_map(|a| a.attributes.unwrap_or_default())
                .copied()
                .chain(granted_attributes.iter().copied())
                .chain([SECRET_ATTRIBUTE.1, FOREIGN_ATTRIBUTE])
                .collect();
            for extra in known.iter().filter(|a| !named.contains(a)) {
                let mut more: Vec<&'static str> = named.to_vec();
                more.push(extra);
                let variant = Access {
                    attributes: Some(more.leak()),
                    ..*access
                };
                probe(
                    format!("{label} naming {extra} too"),
                    variant,
                    context(access, access.prefix, &[extra], true),
                );
            }
            if access.action.reads() {
                let whole = Access {
                    attributes: None,
                    ..*access
                };
                probe(
                    format!("{label} of the whole item"),
                    whole,
                    context(&whole, access.prefix, &[], true),
                );
                let mut keyed = context(&whole, access.prefix, &[], true);
                keyed.insert("dynamodb:Attributes".into(), json!([PARTITION_KEY]));
                probe(format!("{label} of every attribute, the key named"), whole, keyed);
            }
        }
        // Reads of the secret's items in part only: the whole item is denied however asked.
        let (secret_prefix, secret) = SECRET_ATTRIBUTE;
        let reads: Vec<&Access> = accesses
            .iter()
            .filter(|a| a.action.reads() && a.prefix == secret_prefix)
            .collect();
        if !reads.is_empty() && reads.iter().all(|a| a.attributes.is_some()) {
            let whole = Access {
                attributes: None,
                within: Within::Alone,
                ..*reads[0]
            };
            expect(
                false,
                format!("a read of a whole {USER_PREFIX} item, {secret} included"),
                &whole,
                context(&whole, secret_prefix, &[], true),
            );
            let mut bare = Context::new();
            bare.insert(
                "dynamodb:LeadingKeys".into(),
                json!([format!("{secret_prefix}alice")]),
            );
            bare.insert("dynamodb:EnclosingOperation".into(), json!("TransactGetItems"));
            expect(
                false,
                format!(
                    "a read of a whole {USER_PREFIX} item in a TransactGetItems, neither Select nor Attributes"
                ),
                &whole,
                bare,
            );
        }
        problems.extend(found.into_inner());
        // The actions granted are the actions declared.
        let granted = |service: &str| -> BTreeSet<String> {
            statements
                .iter()
                .filter(|s| s["Effect"] == "Allow")
                .flat_map(|s| strings(&s["Action"]))
                .filter(|a| a.starts_with(service))
                .collect()
        };
        let want: BTreeSet<String> = accesses.iter().map(|a| a.action.iam()).collect();
        if granted("dynamodb:") != want {
            problems.push(format!(
                "{}: grants {:?}, its code needs {want:?}",
                function.binary,
                granted("dynamodb:")
            ));
        }
        let want: BTreeSet<String> = function.mail.iter().map(|s| (*s).to_owned()).collect();
        if granted("ses:") != want {
            problems.push(format!(
                "{}: grants {:?}, its code needs {want:?}",
                function.binary,
                granted("ses:")
            ));
        }
        let want: BTreeSet<String> = function.secrets.iter().map(|s| (*s).to_owned()).collect();
        if granted("secretsmanager:") != want {
            problems.push(format!(
                "{}: grants {:?}, its code needs {want:?}",
                function.binary,
                granted("secretsmanager:")
            ));
        }
        check_keys(template, function, &id, &mut problems);
    }
    problems
}

/// The values of every `dynamodb:Attributes` condition in `value`.
fn collect_attributes(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "dynamodb:Attributes" {
                    found.extend(strings(inner));
                } else {
                    collect_attributes(inner, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_attributes(item, found)),
        _ => {}
    }
}

/// The key model: the secret is created empty and kept; the signer names it and the signing
/// key; the verifiers get the public keys only.
fn check_keys(template: &Value, function: &Function, id: &str, problems: &mut Vec<String>) {
    let (Some(key_set), Some(secret)) = (key_set(template), key_set_secret(template)) else {
        problems.push("no key-set custom resource with a SecretId".into());
        return;
    };
    let env = &template["Resources"][id]["Properties"]["Environment"]["Variables"];
    let secret_ref = json!({ "Ref": secret });
    let holds_secret = template["Resources"][id]["Properties"]
        .to_string()
        .contains(&secret_ref.to_string());
    if VERIFIERS.contains(&function.binary) {
        if holds_secret || env.get("JWT_SIGNING_KEY_SECRET").is_some() || env.get("JWT_SECRET").is_some() {
            problems.push(format!(
                "{}: a verifier refers to the key set's secret",
                function.binary
            ));
        }
        if env["JWT_PUBLIC_KEYS"] != json!({ "Fn::GetAtt": [key_set, "Jwks"] }) {
            problems.push(format!(
                "{}: JWT_PUBLIC_KEYS is {}, want {key_set}.Jwks",
                function.binary, env["JWT_PUBLIC_KEYS"]
            ));
        }
    } else if function.binary == "token" {
        if env["JWT_SIGNING_KEY_SECRET"] != secret_ref {
            problems.push(format!(
                "token: JWT_SIGNING_KEY_SECRET is {}, want {secret}",
                env["JWT_SIGNING_KEY_SECRET"]
            ));
        }
        if env["JWT_SIGNING_KEY_ID"] != json!({ "Fn::GetAtt": [key_set, "SigningKeyId"] }) {
            problems.push(format!(
                "token: JWT_SIGNING_KEY_ID is {}, want {key_set}.SigningKeyId",
                env["JWT_SIGNING_KEY_ID"]
            ));
        }
    }
    let secret = &template["Resources"][&secret];
    for property in ["SecretString", "GenerateSecretString"] {
        if secret["Properties"].get(property).is_some() {
            problems.push(format!(
                "the key set's secret has {property}: it must be created empty"
            ));
        }
    }
    if !matches!(
        secret["DeletionPolicy"].as_str(),
        Some("Retain" | "RetainExceptOnCreate")
    ) || secret["UpdateReplacePolicy"] != "Retain"
    {
        problems.push("the key set's secret is not retained".into());
    }
}

#[test]
fn every_role_grants_exactly_what_its_functions_code_declares() {
    let problems = problems(&template());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_template_holds_no_private_key_material() {
    let text = template_text();
    for (marker, what) in [
        ("PRIVATE KEY-----", "a PEM private key"),
        ("{{resolve:secretsmanager:", "a Secrets Manager dynamic reference"),
        ("\"d\":", "a JWK private member d"),
    ] {
        assert!(!text.contains(marker), "template.yaml holds {what}");
    }
}

#[test]
fn the_authorizer_depends_on_no_aws_sdk() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "authorizer",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("authorizer"), "{tree}");
    let sdk: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("aws-sdk-") || l.starts_with("aws-config") || l.starts_with("aws-smithy"))
        .collect();
    assert!(sdk.is_empty(), "the authorizer depends on {sdk:?}");
}

// --- positive controls: the check sees a missing grant and a wider one --------------------------

/// The statement `sid` of the role of the function built from `binary`: in the role's own
/// policies, or in a policy resource attached to it.
fn statement<'a>(template: &'a mut Value, binary: &str, sid: &str) -> &'a mut Value {
    let function = function_id(template, binary).unwrap();
    let role = get_att(&template["Resources"][&function]["Properties"]["Role"])
        .unwrap()
        .to_owned();
    let attached = json!({ "Ref": role });
    let mut documents: Vec<&mut Value> = Vec::new();
    for (id, resource) in template["Resources"].as_object_mut().unwrap().iter_mut() {
        if *id == role {
            for policy in resource["Properties"]["Policies"].as_array_mut().unwrap() {
                documents.push(&mut policy["PolicyDocument"]);
            }
        } else if resource["Type"] == "AWS::IAM::Policy"
            && list(&resource["Properties"]["Roles"]).contains(&attached)
        {
            documents.push(&mut resource["Properties"]["PolicyDocument"]);
        }
    }
    documents
        .into_iter()
        .flat_map(|d| d["Statement"].as_array_mut().unwrap().iter_mut())
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("{binary} has no statement {sid}"))
}

fn problems_after(change: impl FnOnce(&mut Value)) -> String {
    let mut template = template();
    change(&mut template);
    problems(&template).join("\n")
}

#[test]
fn a_missing_grant_is_seen() {
    let found = problems_after(|t| {
        let read = statement(t, "protected", "ReadSessionStatus");
        read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] = json!(["OTHER#*"]);
    });
    assert!(
        found.contains("protected: GetItem SESSION# Alone is denied, should be allowed"),
        "{found}"
    );
}

#[test]
fn a_grant_of_more_attributes_is_seen() {
    let found = problems_after(|t| {
        let read = statement(t, "protected", "ReadUserProfiles");
        read["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            .as_array_mut()
            .unwrap()
            .push(json!("password_hash"));
    });
    assert!(
        found.contains("protected: GetItem USER# Alone naming password_hash too is allowed"),
        "{found}"
    );
}

#[test]
fn a_grant_on_every_prefix_or_of_whole_items_is_seen() {
    let found = problems_after(|t| {
        let change = statement(t, "token", "ChangePasswords");
        change["Condition"] = json!({ "StringEqualsIfExists": { "dynamodb:ReturnValues": "NONE" } });
    });
    assert!(
        found.contains("token: UpdateItem USER# Alone on LOGIN# items is allowed"),
        "{found}"
    );
    let found = problems_after(|t| {
        let read = statement(t, "protected", "ReadUserProfiles");
        read["Condition"]
            .as_object_mut()
            .unwrap()
            .remove("StringEqualsIfExists");
    });
    assert!(
        found.contains("protected: GetItem USER# Alone of every attribute, the key named is allowed"),
        "{found}"
    );
}

#[test]
fn an_action_or_a_secret_more_is_seen() {
    let found = problems_after(|t| {
        let create = statement(t, "users", "CreateUsers");
        create["Action"] = json!(["dynamodb:PutItem", "dynamodb:DeleteItem"]);
    });
    assert!(
        found.contains("users: grants {\"dynamodb:DeleteItem\", "),
        "{found}"
    );
    let found = problems_after(|t| {
        let keys = statement(t, "token", "ReadTheSigningKeys");
        keys["Action"] = json!(["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]);
    });
    assert!(
        found
            .contains("token: grants {\"secretsmanager:GetSecretValue\", \"secretsmanager:PutSecretValue\"}"),
        "{found}"
    );
    let found = problems_after(|t| {
        let deny = statement(t, "protected", "NoTransactionalReads");
        deny["Effect"] = json!("Allow");
    });
    assert!(
        found.contains("protected: a read of a whole USER# item in a TransactGetItems"),
        "{found}"
    );
}

#[test]
fn mail_from_any_address_or_a_missing_mail_grant_is_seen() {
    let found = problems_after(|t| {
        let send = statement(t, "token", "SendMailFromTheIdentity");
        send.as_object_mut().unwrap().remove("Condition");
    });
    assert!(found.contains("TokenFunction: a grant beyond"), "{found}");
    let found = problems_after(|t| {
        let send = statement(t, "token", "SendMailFromTheIdentity");
        send["Action"] = json!(["ses:SendRawEmail"]);
    });
    assert!(found.contains("token: grants {\"ses:SendRawEmail\"}"), "{found}");
}
