//! The template's parameters and `Rules` against the code that reads the same settings: every
//! value pair a deployment can choose is accepted by CloudFormation exactly when the functions
//! accept it at cold start (`PasswordConfig`, `SessionConfig`, `CookieSameSite` read the variables
//! the template passes), and the authorizer cache stays below the token lifetime. The rules are
//! evaluated as CloudFormation does: a Number parameter's `Ref` is a string ("Parameters",
//! CloudFormation User Guide) and rule functions compare strings ("Rule functions"). The alarms
//! on the functions' own metrics name only metrics the code emits (`shared::metrics::Metric`).

use std::collections::BTreeMap;
use std::path::Path;

use integration_tests::{template, template_api};
use serde_json::{Value, json};
use shared::config::Source;
use shared::{CookieSameSite, PasswordConfig, SessionConfig};

/// A value of a rule expression.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Text(String),
    Truth(bool),
    List(Vec<Rule>),
}

type Values = BTreeMap<String, String>;

/// A rule-specific intrinsic function, evaluated as CloudFormation does (strings); anything else
/// is a failure, never a pass.
fn rule(expression: &Value, values: &Values) -> Rule {
    let truth = |e: &Value| match rule(e, values) {
        Rule::Truth(t) => t,
        other => panic!("a condition, not {other:?}"),
    };
    let list = |e: &Value| match rule(e, values) {
        Rule::List(items) => items,
        other => panic!("a list, not {other:?}"),
    };
    match expression {
        Value::String(s) => Rule::Text(s.clone()),
        Value::Number(n) => Rule::Text(n.to_string()),
        Value::Array(items) => Rule::List(items.iter().map(|i| rule(i, values)).collect()),
        Value::Object(map) if map.len() == 1 => {
            let (function, argument) = map.iter().next().unwrap();
            let args = argument.as_array();
            let arg = |i: usize| &args.unwrap_or_else(|| panic!("{function} takes a list"))[i];
            match function.as_str() {
                "Ref" => Rule::Text(
                    values
                        .get(argument.as_str().unwrap())
                        .unwrap_or_else(|| panic!("Ref {argument} in a rule: not a parameter"))
                        .clone(),
                ),
                "Fn::Equals" => Rule::Truth(rule(arg(0), values) == rule(arg(1), values)),
                "Fn::Not" => Rule::Truth(!truth(arg(0))),
                "Fn::And" => Rule::Truth(args.unwrap().iter().all(truth)),
                "Fn::Or" => Rule::Truth(args.unwrap().iter().any(truth)),
                "Fn::Contains" => Rule::Truth(list(arg(0)).contains(&rule(arg(1), values))),
                "Fn::EachMemberEquals" => {
                    let value = rule(arg(1), values);
                    Rule::Truth(list(arg(0)).iter().all(|item| *item == value))
                }
                "Fn::EachMemberIn" => {
                    let allowed = list(arg(1));
                    Rule::Truth(list(arg(0)).iter().all(|item| allowed.contains(item)))
                }
                other => panic!("rule function {other}"),
            }
        }
        other => panic!("rule expression {other}"),
    }
}

/// The parameters' defaults (strings, as CloudFormation passes them), `AllowedOrigins` set.
fn defaults(template: &Value) -> Values {
    let mut values: Values = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, spec)| Some((name.clone(), text(spec.get("Default")?))))
        .collect();
    values.insert("AllowedOrigins".into(), "https://app.example.com".into());
    values
}

fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// Whether CloudFormation takes `value` for the parameter `name` by its own constraints.
fn allowed_alone(template: &Value, name: &str, value: &str) -> bool {
    let spec = &template["Parameters"][name];
    for unsupported in ["AllowedPattern", "MinLength", "MaxLength"] {
        assert!(
            spec.get(unsupported).is_none(),
            "{name}: {unsupported} is not evaluated here"
        );
    }
    if let Some(allowed) = spec["AllowedValues"].as_array()
        && !allowed.iter().any(|v| text(v) == value)
    {
        return false;
    }
    if spec["Type"] == "Number" {
        let Ok(number) = value.parse::<f64>() else {
            return false;
        };
        let bound = |key: &str| spec.get(key).map(|b| text(b).parse::<f64>().unwrap());
        if bound("MinValue").is_some_and(|min| number < min)
            || bound("MaxValue").is_some_and(|max| number > max)
        {
            return false;
        }
    }
    true
}

/// Whether a deployment with the defaults and `changes` passes the changed parameters'
/// constraints and every rule.
fn accepted(template: &Value, changes: &[(&str, String)]) -> bool {
    let mut values = defaults(template);
    for (name, value) in changes {
        if !allowed_alone(template, name, value) {
            return false;
        }
        values.insert((*name).to_owned(), value.clone());
    }
    template["Rules"].as_object().into_iter().flatten().all(|(_, r)| {
        let applies = r
            .get("RuleCondition")
            .is_none_or(|c| rule(c, &values) == Rule::Truth(true));
        !applies
            || r["Assertions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| rule(&a["Assert"], &values) == Rule::Truth(true))
    })
}

/// The values worth trying for a parameter: its `AllowedValues`, and `probes`.
fn candidates(template: &Value, name: &str, probes: &[u64]) -> Vec<u64> {
    let mut values: Vec<u64> = template["Parameters"][name]["AllowedValues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| text(v).parse().unwrap())
        .chain(probes.iter().copied())
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// Every function that gets `variable` gets it as `!Ref parameter`, and some function does.
fn assert_wired(template: &Value, variable: &str, parameter: &str) {
    let mut found = 0;
    for (id, resource) in template["Resources"].as_object().unwrap() {
        if let Some(value) = resource["Properties"]["Environment"]["Variables"].get(variable) {
            assert_eq!(*value, json!({ "Ref": parameter }), "{id}: {variable}");
            found += 1;
        }
    }
    assert!(found > 0, "no function gets {variable}");
}

/// The variables as a function would read them.
fn source(vars: &[(&'static str, String)]) -> impl Source {
    let vars: Vec<(&'static str, String)> = vars.to_vec();
    move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
}

#[test]
fn argon2_settings_are_accepted_by_the_template_exactly_when_the_code_accepts_them() {
    let template = template();
    let owasp: Vec<u64> = shared::password::OWASP_ARGON2_MIN_MEMORY_KIB
        .iter()
        .flat_map(|(_, m)| [u64::from(*m), u64::from(*m) - 1])
        .collect();
    let memories = candidates(
        &template,
        "Argon2MemoryKiB",
        &[&owasp[..], &[1024, 65_536, 1_048_576, 1_048_577]].concat(),
    );
    let mut disagree = Vec::new();
    for passes in 0..=11u64 {
        for &memory in &memories {
            let changes = [
                ("Argon2Iterations", passes.to_string()),
                ("Argon2MemoryKiB", memory.to_string()),
            ];
            let code = PasswordConfig::from_source(&source(&[
                ("ARGON2_ITERATIONS", passes.to_string()),
                ("ARGON2_MEMORY_KIB", memory.to_string()),
            ]))
            .is_ok();
            let offered = allowed_alone(&template, "Argon2MemoryKiB", &memory.to_string())
                && allowed_alone(&template, "Argon2Iterations", &passes.to_string());
            let verdict = accepted(&template, &changes);
            if verdict && !code || offered && code && !verdict {
                disagree.push(format!(
                    "{passes} passes, {memory} KiB: template {verdict}, code {code}"
                ));
            }
        }
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
    // Each OWASP row is offered: a deployer can choose every configuration of the table.
    for (passes, memory) in shared::password::OWASP_ARGON2_MIN_MEMORY_KIB {
        assert!(
            accepted(
                &template,
                &[
                    ("Argon2Iterations", passes.to_string()),
                    ("Argon2MemoryKiB", memory.to_string())
                ]
            ),
            "OWASP row {passes}, {memory}"
        );
    }
    let defaults = PasswordConfig::default();
    assert_eq!(
        text(&template["Parameters"]["Argon2MemoryKiB"]["Default"]),
        defaults.memory_kib.to_string()
    );
    assert_eq!(
        text(&template["Parameters"]["Argon2Iterations"]["Default"]),
        defaults.iterations.to_string()
    );
    assert_wired(&template, "ARGON2_MEMORY_KIB", "Argon2MemoryKiB");
    assert_wired(&template, "ARGON2_ITERATIONS", "Argon2Iterations");
}

#[test]
fn the_authorizer_cache_is_accepted_only_below_the_token_lifetime() {
    let template = template();
    let ttls = candidates(
        &template,
        "AccessTokenTtlSeconds",
        &[60, 61, 300, 899, 900, 901, 1800, 3599, 3600],
    );
    let caches = candidates(
        &template,
        "AuthorizerCacheSeconds",
        &[0, 1, 30, 59, 60, 299, 300, 899, 900, 901, 1800, 3600],
    );
    for &ttl in ttls
        .iter()
        .filter(|t| allowed_alone(&template, "AccessTokenTtlSeconds", &t.to_string()))
    {
        let verdict = |cache: u64| {
            accepted(
                &template,
                &[
                    ("AccessTokenTtlSeconds", ttl.to_string()),
                    ("AuthorizerCacheSeconds", cache.to_string()),
                ],
            )
        };
        assert!(verdict(0), "TTL {ttl}: no cache refused");
        for &cache in &caches {
            let offered = allowed_alone(&template, "AuthorizerCacheSeconds", &cache.to_string());
            assert_eq!(verdict(cache), offered && cache < ttl, "TTL {ttl}, cache {cache}");
        }
    }
    let authorizer = &template["Resources"]["AuthApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"];
    assert_eq!(
        authorizer["Identity"]["ReauthorizeEvery"],
        json!({ "Ref": "AuthorizerCacheSeconds" })
    );
    assert_wired(&template, "ACCESS_TOKEN_TTL_SECONDS", "AccessTokenTtlSeconds");
}

#[test]
fn session_settings_are_accepted_by_the_template_exactly_when_the_code_accepts_them() {
    let template = template();
    let defaults = SessionConfig::default();
    let (absolute, idle) = (defaults.absolute.as_secs(), defaults.idle.as_secs());
    let probes = [899, 900, 3599, 3600, idle, absolute, 7_776_000, 7_776_001];
    let absolutes = candidates(&template, "SessionAbsoluteSeconds", &probes);
    let idles = candidates(&template, "SessionIdleSeconds", &probes);
    let mut disagree = Vec::new();
    for &a in &absolutes {
        for &i in &idles {
            let code = SessionConfig::from_source(&source(&[
                ("SESSION_ABSOLUTE_SECONDS", a.to_string()),
                ("SESSION_IDLE_SECONDS", i.to_string()),
            ]))
            .is_ok();
            let offered = allowed_alone(&template, "SessionAbsoluteSeconds", &a.to_string())
                && allowed_alone(&template, "SessionIdleSeconds", &i.to_string());
            let verdict = accepted(
                &template,
                &[
                    ("SessionAbsoluteSeconds", a.to_string()),
                    ("SessionIdleSeconds", i.to_string()),
                ],
            );
            if verdict && !code || offered && code && !verdict {
                disagree.push(format!("absolute {a}, idle {i}: template {verdict}, code {code}"));
            }
        }
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
    for g in [0u64, 60, 61] {
        let code = SessionConfig::from_source(&source(&[("REFRESH_GRACE_SECONDS", g.to_string())])).is_ok();
        assert_eq!(
            accepted(&template, &[("RefreshGraceSeconds", g.to_string())]),
            code,
            "grace {g}"
        );
    }
    for (parameter, value) in [
        ("SessionAbsoluteSeconds", absolute),
        ("SessionIdleSeconds", idle),
        ("RefreshGraceSeconds", defaults.grace.as_secs()),
    ] {
        assert_eq!(
            text(&template["Parameters"][parameter]["Default"]),
            value.to_string(),
            "{parameter}"
        );
    }
    let sites: Vec<String> = template["Parameters"]["RefreshCookieSameSite"]["AllowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    for site in ["Strict", "Lax", "None", "strict", "Other"] {
        let code =
            CookieSameSite::from_source(&source(&[("REFRESH_COOKIE_SAMESITE", site.to_owned())])).is_ok();
        assert_eq!(sites.contains(&site.to_owned()), code, "SameSite {site}");
    }
    let default_site = text(&template["Parameters"]["RefreshCookieSameSite"]["Default"]);
    assert_eq!(
        CookieSameSite::from_source(&source(&[("REFRESH_COOKIE_SAMESITE", default_site)])).unwrap(),
        CookieSameSite::from_source(&source(&[])).unwrap(),
        "the template's default SameSite is the code's"
    );
    for (variable, parameter) in [
        ("SESSION_ABSOLUTE_SECONDS", "SessionAbsoluteSeconds"),
        ("SESSION_IDLE_SECONDS", "SessionIdleSeconds"),
        ("REFRESH_GRACE_SECONDS", "RefreshGraceSeconds"),
        ("REFRESH_COOKIE_SAMESITE", "RefreshCookieSameSite"),
    ] {
        assert_wired(&template, variable, parameter);
    }
}

#[test]
fn the_rule_evaluator_refuses_a_pair_a_rule_forbids() {
    // Positive control: without its Rules the template accepts a cache equal to the token
    // lifetime, and the check above would fail on it.
    let mut template = template();
    let with_rules = accepted(
        &template,
        &[
            ("AccessTokenTtlSeconds", "900".into()),
            ("AuthorizerCacheSeconds", "900".into()),
        ],
    );
    template.as_object_mut().unwrap().remove("Rules");
    let without = accepted(
        &template,
        &[
            ("AccessTokenTtlSeconds", "900".into()),
            ("AuthorizerCacheSeconds", "900".into()),
        ],
    );
    assert!(!with_rules && without);
}

#[test]
fn every_route_a_browser_calls_has_an_open_preflight_on_its_function() {
    let api = template_api("https://app.example.com");
    for route in &api.routes {
        let simple = route.method == "GET" && route.authorizer.is_none();
        if route.method == "OPTIONS" {
            assert_eq!(
                route.authorizer, None,
                "OPTIONS {}: a preflight carries no credentials",
                route.resource
            );
            continue;
        }
        if simple {
            continue;
        }
        let preflight = api
            .routes
            .iter()
            .find(|r| r.method == "OPTIONS" && r.resource == route.resource)
            .unwrap_or_else(|| panic!("{} {}: no preflight", route.method, route.resource));
        assert_eq!(preflight.function, route.function, "OPTIONS {}", route.resource);
    }
}

#[test]
fn the_token_function_tells_each_of_its_routes_apart() {
    let api = template_api("https://app.example.com");
    for route in api
        .routes
        .iter()
        .filter(|r| r.function == "token" && r.method != "OPTIONS")
    {
        assert_eq!(
            token::Endpoint::of(&format!("/v1{}", route.resource))
                .route()
                .path,
            route.resource,
            "the token function serves {} as another of its routes",
            route.resource
        );
    }
}

#[test]
fn gateway_responses_carry_credentials_only_for_one_named_origin() {
    use local_api::spec::HeaderSource;
    for origins in [
        "https://app.example.com",
        "*",
        "https://a.example.com,https://b.example.com",
    ] {
        let api = template_api(origins);
        for kind in ["UNAUTHORIZED", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX"] {
            assert!(
                api.gateway_responses.contains_key(kind),
                "[{origins}] no {kind} response"
            );
        }
        let single = !origins.contains(',');
        for (kind, response) in &api.gateway_responses {
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            let origin = header("access-control-allow-origin");
            let want = if single {
                HeaderSource::Static(origins.parse().unwrap())
            } else {
                HeaderSource::RequestHeader("origin".parse().unwrap())
            };
            assert_eq!(
                origin,
                Some(want),
                "[{origins}] {kind}: Access-Control-Allow-Origin"
            );
            assert_eq!(
                header("vary"),
                Some(HeaderSource::Static("Origin".parse().unwrap())),
                "[{origins}] {kind}: Vary"
            );
            let credentials = header("access-control-allow-credentials");
            let named = single && origins != "*";
            assert_eq!(
                credentials,
                named.then(|| HeaderSource::Static("true".parse().unwrap())),
                "[{origins}] {kind}: credentials only with one named origin"
            );
        }
    }
    assert_wired(&template(), "CORS_ALLOWED_ORIGINS", "AllowedOrigins");
}

#[test]
fn every_route_has_an_event_fixture_in_the_folder_of_its_function() {
    let api = template_api("https://app.example.com");
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut fixtures = std::collections::BTreeSet::new();
    for folder in std::fs::read_dir(&events).unwrap() {
        let folder = folder.unwrap().path();
        let function = folder.file_name().unwrap().to_str().unwrap().to_owned();
        for file in std::fs::read_dir(&folder).unwrap() {
            let path = file.unwrap().path();
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            // TOKEN authorizer events have no route; proxy events name the route they hit.
            let (Some(method), Some(resource)) = (event["httpMethod"].as_str(), event["resource"].as_str())
            else {
                continue;
            };
            // A resource the template does not have is a negative case on purpose (jwks'
            // unknown path); one it has must be the folder's function's.
            if let Some(route) = api.routes.iter().find(|r| r.resource == resource) {
                assert_eq!(route.function, function, "{}: {resource}", path.display());
            }
            fixtures.insert((function.clone(), method.to_owned(), resource.to_owned()));
        }
    }
    for route in api.routes.iter().filter(|r| r.method != "OPTIONS") {
        let key = (
            route.function.clone(),
            route.method.clone(),
            route.resource.clone(),
        );
        assert!(
            fixtures.contains(&key),
            "{} {} ({}): no fixture in events/{}/ (scripts/generate_events.py)",
            route.method,
            route.resource,
            route.function,
            route.function
        );
    }
}

/// The `METRICS_NAMESPACE` values the template gives the functions (in `Globals` or each
/// function's own variables), each once.
fn metrics_namespaces(template: &Value) -> Vec<Value> {
    let mut found: Vec<Value> = Vec::new();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"];
    let functions = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| &r["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"]);
    for value in std::iter::once(globals).chain(functions) {
        if !value.is_null() && !found.contains(value) {
            found.push(value.clone());
        }
    }
    found
}

/// What is wrong with the alarms on the functions' own metrics (every namespace but AWS's): a
/// namespace other than the one the functions write, or a metric name the code never emits.
/// Also returns the names they read.
fn own_alarm_problems(template: &Value) -> (Vec<String>, Vec<String>) {
    let namespaces = metrics_namespaces(template);
    let emitted: Vec<&str> = shared::metrics::Metric::ALL.iter().map(|m| m.name()).collect();
    let (mut problems, mut read) = (Vec::new(), Vec::new());
    if namespaces.len() != 1 {
        problems.push(format!(
            "the functions get {} METRICS_NAMESPACE values: {namespaces:?}",
            namespaces.len()
        ));
    }
    for (id, resource) in template["Resources"].as_object().unwrap() {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let properties = &resource["Properties"];
        let mut metrics = vec![(&properties["Namespace"], &properties["MetricName"])];
        for query in properties["Metrics"].as_array().into_iter().flatten() {
            let metric = &query["MetricStat"]["Metric"];
            metrics.push((&metric["Namespace"], &metric["MetricName"]));
        }
        for (namespace, name) in metrics.into_iter().filter(|(_, name)| !name.is_null()) {
            if namespace.as_str().is_some_and(|n| n.starts_with("AWS/")) {
                continue;
            }
            if namespaces.first() != Some(namespace) {
                problems.push(format!(
                    "{id}: namespace {namespace}, not the functions' {namespaces:?}"
                ));
            }
            let name = text(name);
            if !emitted.contains(&name.as_str()) {
                problems.push(format!(
                    "{id}: {name} is not a metric the functions emit ({emitted:?})"
                ));
            }
            read.push(name);
        }
    }
    (problems, read)
}

#[test]
fn every_alarm_on_the_functions_namespace_reads_a_metric_they_emit() {
    let (problems, read) = own_alarm_problems(&template());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        read.iter()
            .any(|name| name == shared::metrics::Metric::RefreshTokenReuse.name()),
        "no alarm on refresh-token reuse: {read:?}"
    );
}

#[test]
fn the_alarm_check_catches_a_metric_or_namespace_the_functions_do_not_write() {
    // Positive control for the test above: a misspelt metric and the default namespace (the
    // one without the stack's name) are each reported.
    let template = template();
    let own = |resource: &Value| {
        resource["Type"] == "AWS::CloudWatch::Alarm"
            && resource["Properties"]["Namespace"]
                .as_str()
                .is_none_or(|n| !n.starts_with("AWS/"))
    };
    let id = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| own(r) && !r["Properties"]["MetricName"].is_null())
        .map(|(id, _)| id.clone())
        .expect("an alarm on the functions' namespace");
    for (property, value) in [
        ("MetricName", json!("RefreshTokenReused")),
        ("Namespace", json!(shared::metrics::DEFAULT_NAMESPACE)),
    ] {
        let mut broken = template.clone();
        broken["Resources"][&id]["Properties"][property] = value.clone();
        let (problems, _) = own_alarm_problems(&broken);
        assert!(!problems.is_empty(), "{id} with {property} {value} passed");
    }
}

#[test]
fn the_metrics_namespace_the_template_sets_is_one_the_functions_accept() {
    let namespaces = metrics_namespaces(&template());
    let [namespace] = namespaces.as_slice() else {
        panic!("one METRICS_NAMESPACE for every function, not {namespaces:?}");
    };
    let pattern = namespace["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("METRICS_NAMESPACE {namespace}: a !Sub of the stack name"));
    // Stack names: a letter, then letters, digits and hyphens, 128 characters at most.
    for stack in ["jwt-auth", &format!("a{}", "-0".repeat(63) + "b")] {
        let value = pattern.replace("${AWS::StackName}", stack);
        assert!(
            !value.contains("${"),
            "{value}: only the stack name is substituted"
        );
        let read = shared::metrics::namespace_from(&source(&[("METRICS_NAMESPACE", value.clone())]));
        assert_eq!(read.ok().as_deref(), Some(value.as_str()), "stack {stack}");
    }
}
