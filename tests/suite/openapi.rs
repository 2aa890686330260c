//! `openapi.yaml` cannot drift from the service: its operations and their security are the
//! template's routes and authorizers, and every status an operation can answer with is listed,
//! whether API Gateway answers it (gateway responses, the authorizer, throttling) or the function
//! does (what the function's [`Route`] declares). No service needed: runs in `cargo test`. `./dev test` also runs schemathesis
//! against the local API with the file (`scripts/schemathesis.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use integration_tests::template_api;
use local_api::spec::ApiSpec;
use serde_json::Value;
use shared::http::{COOKIE_ROUTES, Route};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn openapi() -> Value {
    let text = std::fs::read_to_string(root().join("openapi.yaml")).unwrap();
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    serde_json::to_value(yaml).unwrap()
}

fn template() -> ApiSpec {
    template_api("https://app.example.com")
}

/// The operations of the file: (path, METHOD) → the operation object.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut found = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                found.insert((path.clone(), method.to_uppercase()), operation.clone());
            }
        }
    }
    found
}

/// The security schemes an operation requires: `None` when it may be called without any.
fn required_schemes(operation: &Value) -> Option<BTreeSet<String>> {
    let requirements = operation["security"]
        .as_array()
        .expect("every operation states its security");
    let mut schemes = BTreeSet::new();
    for requirement in requirements {
        let requirement = requirement.as_object().unwrap();
        if requirement.is_empty() {
            return None;
        }
        schemes.extend(requirement.keys().cloned());
    }
    (!schemes.is_empty()).then_some(schemes)
}

fn optional_schemes(operation: &Value) -> BTreeSet<String> {
    operation["security"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_object().unwrap().keys().cloned())
        .collect()
}

/// The statuses an operation documents: explicit codes, and ranges such as `5XX`.
fn documented(operation: &Value) -> BTreeSet<String> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn is_documented(documented: &BTreeSet<String>, status: u16) -> bool {
    documented.contains(&status.to_string()) || documented.contains(&format!("{}XX", status / 100))
}

#[test]
fn the_files_operations_are_the_templates_routes() {
    let (doc, api) = (openapi(), template());
    let in_file: BTreeSet<_> = operations(&doc).into_keys().collect();
    let in_template: BTreeSet<_> = api
        .routes
        .iter()
        .map(|route| (route.resource.clone(), route.method.clone()))
        .collect();
    assert_eq!(
        in_file, in_template,
        "openapi.yaml's paths and methods must be template.yaml's API events"
    );
}

#[test]
fn security_follows_the_authorizers_and_the_cookie_routes() {
    let (doc, api) = (openapi(), template());
    let ops = operations(&doc);
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["refreshCookie"]["in"], "cookie");
    assert_eq!(schemes["refreshCookie"]["name"], shared::http::REFRESH_COOKIE);
    for route in &api.routes {
        let operation = &ops[&(route.resource.clone(), route.method.clone())];
        let label = format!("{} {}", route.method, route.resource);
        match &route.authorizer {
            Some(authorizer) => {
                assert_eq!(authorizer, "JwtAuthorizer", "{label}");
                assert_eq!(
                    required_schemes(operation),
                    Some(BTreeSet::from(["bearerAuth".to_owned()])),
                    "{label} is behind the authorizer: bearerAuth, required"
                );
            }
            None => {
                assert_eq!(
                    required_schemes(operation),
                    None,
                    "{label} is open: no security required"
                );
                let cookie = route.method == "POST" && COOKIE_ROUTES.contains(&route.resource.as_str());
                let expected: BTreeSet<String> = if cookie {
                    BTreeSet::from(["refreshCookie".to_owned()])
                } else {
                    BTreeSet::new()
                };
                assert_eq!(
                    optional_schemes(operation),
                    expected,
                    "{label}: the refresh cookie exactly on the routes it is sent to"
                );
            }
        }
    }
}

/// What each function declares it answers on its routes ([`Route`]; debug builds hold the
/// handlers to it at run time, so every test that makes one fail checks the declaration).
fn declared(function: &str) -> Vec<&'static Route> {
    match function {
        "users" => vec![&users::ROUTE],
        "token" => token::ROUTES.to_vec(),
        "protected" => vec![&protected::ROUTE],
        "jwks" => ::jwks::ROUTES.iter().collect(),
        other => panic!("template.yaml routes to {other}, whose routes this test does not know"),
    }
}

#[test]
fn every_route_of_the_template_is_declared_by_its_function_and_nothing_else() {
    let api = template();
    let functions: BTreeSet<&str> = api.routes.iter().map(|r| r.function.as_str()).collect();
    for function in functions {
        let in_template: BTreeSet<(String, String)> = api
            .routes
            .iter()
            .filter(|r| r.function == function && r.method != "OPTIONS")
            .map(|r| (r.resource.clone(), r.method.clone()))
            .collect();
        let declared: BTreeSet<(String, String)> = declared(function)
            .iter()
            .map(|r| (r.path.to_owned(), r.method.to_string()))
            .collect();
        assert_eq!(declared, in_template, "functions/{function}'s routes");
    }
}

/// What API Gateway itself can answer on a route, from the template's gateway responses.
fn gateway_statuses(api: &ApiSpec, behind_authorizer: bool) -> BTreeSet<u16> {
    let responses = &api.gateway_responses;
    for required in [
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "THROTTLED",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    ] {
        assert!(
            responses.contains_key(required),
            "template.yaml's GatewayResponses lack {required}"
        );
    }
    // Any route: a request over 10 MB (REQUEST_TOO_LARGE), the stage's throttling (THROTTLED),
    // a function error or timeout (502, 504).
    let mut statuses = BTreeSet::from([413, 429, 502, 504]);
    if behind_authorizer {
        // The authorizer refuses (401), denies (403) or fails (500).
        statuses.extend([401, 403, 500]);
    }
    statuses
}

#[test]
fn every_status_a_route_can_answer_is_documented_and_nothing_else() {
    let (doc, api) = (openapi(), template());
    let ops = operations(&doc);
    for route in &api.routes {
        let (path, method) = (route.resource.as_str(), route.method.as_str());
        let documented = documented(&ops[&(path.to_owned(), method.to_owned())]);
        let mut expected = gateway_statuses(&api, route.authorizer.is_some());
        if method == "OPTIONS" {
            // The preflight, which builds no error.
            expected.insert(204);
        } else {
            let declared = declared(&route.function)
                .into_iter()
                .find(|d| d.path == path && d.method.as_str() == method)
                .unwrap_or_else(|| panic!("functions/{} does not declare {method} {path}", route.function));
            expected.insert(declared.success.as_u16());
            expected.extend(declared.errors.iter().map(|status| status.as_u16()));
        }
        for status in &expected {
            assert!(
                is_documented(&documented, *status),
                "{method} {path} can answer {status}, but openapi.yaml does not say so"
            );
        }
        // Nothing documented that cannot happen: every explicit code is expected (ranges such
        // as 5XX stand for the gateway's server errors).
        for code in documented.iter().filter_map(|code| code.parse::<u16>().ok()) {
            assert!(
                expected.contains(&code),
                "{method} {path} documents {code}, which neither the gateway nor its function answers"
            );
        }
    }
}

/// Documented headers that must be on every such response are `required`, so schemathesis
/// checks them: `Retry-After` on every 429 and 503, `WWW-Authenticate` on the bearer routes' 401
/// but those that take the current password or a second-factor code (whose 401 for a wrong one
/// has none), `Set-Cookie` on the success of every route under `/token` that starts a session
/// (all but the passkey sign-in's options), `Cache-Control` everywhere.
#[test]
fn the_headers_that_matter_are_required_where_always_sent() {
    let doc = openapi();
    let components = &doc["components"];
    let resolve = |value: &Value| -> Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let mut target = &doc;
                for part in reference.trim_start_matches("#/").split('/') {
                    target = &target[part];
                }
                target.clone()
            }
            None => value.clone(),
        }
    };
    let required = |response: &Value, header: &str| -> bool {
        response["headers"]
            .get(header)
            .map(|h| resolve(h)["required"] == true)
            .unwrap_or(false)
    };
    assert!(components["headers"]["NoStore"]["required"] == true);
    for ((path, method), operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            let response = resolve(response);
            let label = format!("{method} {path} {status}");
            if !path.starts_with("/.well-known/") || status != "200" {
                assert!(required(&response, "Cache-Control"), "{label}: Cache-Control");
            }
            if status == "429" || status == "503" {
                assert!(required(&response, "Retry-After"), "{label}: Retry-After");
            }
            if status == "401"
                && operation
                    .get("security")
                    .is_some_and(|s| s.to_string().contains("bearerAuth"))
            {
                let schema = resolve(&operation["requestBody"]["content"]["application/json"]["schema"]);
                let takes_password = ["password", "current_password", "code"]
                    .iter()
                    .any(|field| schema["properties"].get(*field).is_some());
                assert_eq!(
                    required(&response, "WWW-Authenticate"),
                    !takes_password,
                    "{label}: WWW-Authenticate"
                );
            }
            if status.starts_with('2')
                && path.starts_with("/token")
                && path != "/token/passkey/options"
                && method == "POST"
            {
                assert!(
                    response["headers"].get("Set-Cookie").is_some(),
                    "{label}: Set-Cookie"
                );
            }
        }
        // Every route that reads a body; `/logout/all`, the passkey sign-in's options and the
        // DELETEs read none.
        if !["OPTIONS", "GET", "DELETE"].contains(&method.as_str())
            && path != "/logout/all"
            && path != "/token/passkey/options"
        {
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            let schema = resolve(body);
            let alternatives = schema["oneOf"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![schema.clone()]);
            for alternative in alternatives {
                assert_eq!(
                    resolve(&alternative)["additionalProperties"],
                    false,
                    "{method} {path}: the body schema allows no other members"
                );
            }
        }
    }
}

/// An email address has one form: the contract's `Email` pattern, which the template's
/// `MailFrom` allows too (or empty), and the two agree.
#[test]
fn the_templates_sender_pattern_is_the_contracts_email_pattern() {
    let doc = openapi();
    let email = doc["components"]["schemas"]["Email"]["pattern"].as_str().unwrap();
    let inner = email.strip_prefix('^').and_then(|p| p.strip_suffix('$')).unwrap();
    let template = integration_tests::template();
    assert_eq!(
        template["Parameters"]["MailFrom"]["AllowedPattern"].as_str(),
        Some(format!("^({inner})?$").as_str()),
        "template.yaml's MailFrom pattern is openapi.yaml's Email pattern, or empty"
    );
}

#[test]
fn the_events_types_and_details_are_the_ones_the_code_writes() {
    use shared::events::EventKind;
    let event = &openapi()["components"]["schemas"]["Event"]["properties"];
    let strings = |values: &Value| -> BTreeSet<String> {
        values
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let stored = EventKind::ALL.into_iter().filter(|k| k.listed());
    let types: BTreeSet<String> = stored.clone().map(|k| k.name().to_owned()).collect();
    let details: BTreeSet<String> = stored.filter_map(|k| k.detail().map(str::to_owned)).collect();
    assert_eq!(strings(&event["type"]["enum"]), types);
    assert_eq!(strings(&event["detail"]["enum"]), details);
}
