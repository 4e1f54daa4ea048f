//! `openapi.yaml` says what README's error table says: every error code the function answers
//! with is in the spec's `Error` schema, and nothing else is (the spec forbids other values, so
//! a client generated from it would reject a code it lacks).

use std::collections::BTreeSet;

use yaml_rust2::YamlLoader;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))).expect(name)
}

/// The codes of README's error table: the backticked words of its second column, before any
/// `(+ …)` of headers and fields.
fn readme_codes() -> BTreeSet<String> {
    let readme = read("README.md");
    let table = readme
        .split("| status | `error` | when |")
        .nth(1)
        .expect("README has the error table");
    let mut codes = BTreeSet::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let column = row.split('|').nth(2).expect("an error column");
        let column = column.split("(+").next().unwrap_or_default();
        for (i, part) in column.split('`').enumerate() {
            if i % 2 == 1 {
                codes.insert(part.to_owned());
            }
        }
    }
    codes
}

fn spec_codes() -> BTreeSet<String> {
    let docs = YamlLoader::load_from_str(&read("openapi.yaml")).expect("openapi.yaml is YAML");
    let codes = &docs[0]["components"]["schemas"]["Error"]["properties"]["error"]["enum"];
    codes
        .as_vec()
        .expect("the Error schema lists its codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect()
}

#[test]
fn the_spec_lists_every_error_code_of_the_readme_and_no_other() {
    let readme = readme_codes();
    assert!(readme.len() >= 15, "{readme:?}");
    assert!(readme.contains("user_blocked") && readme.contains("invalid_request"));
    assert_eq!(spec_codes(), readme);
}
