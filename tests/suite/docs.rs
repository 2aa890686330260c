//! `docs/configuration.md` against `template.yaml`: every parameter of the template has its row
//! under "Parameters" and every row names a parameter the template has; every variable the
//! template passes to a function is in the variables' table.

use std::collections::BTreeSet;
use std::path::Path;

use integration_tests::template;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names in backquotes in the first cell of each table row of `section` (the text from its
/// `## ` heading to the next one; the whole file before the first heading for `None`).
fn documented(text: &str, section: Option<&str>) -> BTreeSet<String> {
    let start = section.map_or(0, |title| {
        text.find(&format!("\n## {title}\n"))
            .unwrap_or_else(|| panic!("no section {title}"))
    });
    let body = &text[start..];
    let end = body[1..].find("\n## ").map_or(body.len(), |i| i + 1);
    body[..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" |").next())
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_template_parameter_is_documented_and_every_documented_one_exists() {
    let template = template();
    let parameters: BTreeSet<String> = template["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let documented = documented(&read("docs/configuration.md"), Some("Parameters"));
    let missing: Vec<_> = parameters.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&parameters).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "undocumented {missing:?}; documented but not in the template {stale:?}"
    );
}

#[test]
fn every_variable_the_template_sets_is_documented() {
    let template = template();
    let mut variables = BTreeSet::new();
    for resource in template["Resources"].as_object().unwrap().values() {
        let set = &resource["Properties"]["Environment"]["Variables"];
        variables.extend(
            set.as_object()
                .into_iter()
                .flatten()
                .map(|(name, _)| name.clone()),
        );
    }
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    variables.extend(
        globals
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name.clone()),
    );
    let text = read("docs/configuration.md");
    let documented: BTreeSet<String> = documented(&text[..text.find("\n## Parameters\n").unwrap()], None);
    let missing: Vec<_> = variables.iter().filter(|v| !documented.contains(*v)).collect();
    assert!(
        missing.is_empty(),
        "variables the template sets that docs/configuration.md does not list: {missing:?}"
    );
}
