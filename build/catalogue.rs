//! The provider catalogue's checks and its run-time part, shared by `build.rs` (which fails the
//! build on a bad entry and compiles in the run-time members) and `tests/catalogue.rs` (which
//! proves that a bad entry is named with its field).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The members of an entry the function reads at run time; the rest (names, setup prose,
/// sources, notes) is documentation, kept in the data file for `docs/providers.md`.
const RUN_TIME: &[&str] = &[
    "providers",
    "api_base",
    "api_host",
    "allow",
    "headers",
    "token_header",
    "token_url",
    "token_auth",
    "refresh",
    "path_characters",
    "refresh_scopes",
    "params",
    "scope_answer",
    "download_hosts",
    "content_api",
];

/// The catalogue's entries by strategy (its `$schema` member left out).
pub fn entries(catalogue: &Value) -> BTreeMap<&str, &Map<String, Value>> {
    catalogue
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(strategy, _)| *strategy != "$schema")
        .filter_map(|(strategy, entry)| Some((strategy.as_str(), entry.as_object()?)))
        .collect()
}

/// What an allow rule's text is checked with: the function's own parser (`AllowRule::parse`),
/// so that a rule the function would refuse at start-up fails the build.
pub type RuleCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// What is wrong with `catalogue` against `schema` and the rules between fields, each as
/// "entry `…`, field `…`: why"; empty when every entry is valid. The rules between fields are
/// read only once the schema holds, so that they can rely on its types.
pub fn faults(catalogue: &Value, schema: &Value, rule: RuleCheck<'_>) -> Vec<String> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(e) => return vec![format!("the schema is not a JSON Schema: {e}")],
    };
    let faults: Vec<String> = validator
        .iter_errors(catalogue)
        .map(|error| {
            let mut at = error.instance_path().iter().map(|s| s.to_string());
            match (at.next(), at.collect::<Vec<_>>().join("/")) {
                (Some(entry), field) if !field.is_empty() => {
                    format!("entry `{entry}`, field `{field}`: {error}")
                }
                (Some(entry), _) => format!("entry `{entry}`: {error}"),
                (None, _) => error.to_string(),
            }
        })
        .collect();
    if !faults.is_empty() {
        return faults;
    }
    entries(catalogue)
        .into_iter()
        .flat_map(|(strategy, entry)| {
            cross_field_faults(strategy, entry, rule)
                .into_iter()
                .map(move |fault| format!("entry `{strategy}`, {fault}"))
        })
        .collect()
}

/// What the function reads of `entry` at run time: its [`RUN_TIME`] members, the per-user
/// host without its words, and a documented lifetime (`expires_in` in seconds) as
/// `token_lifetime`.
pub fn run_time(entry: &Map<String, Value>) -> Map<String, Value> {
    let mut run_time: Map<String, Value> = entry
        .iter()
        .filter(|(member, _)| RUN_TIME.contains(&member.as_str()))
        .map(|(member, value)| (member.clone(), value.clone()))
        .collect();
    if let Some(host) = run_time.get_mut("api_host").and_then(Value::as_object_mut) {
        host.remove("from");
    }
    if let Some(seconds) = entry.get("expires_in").and_then(Value::as_u64) {
        run_time.insert("token_lifetime".to_owned(), seconds.into());
    }
    run_time
}

/// The rules that tie an entry's members together, each broken one as `field `…`: why`.
fn cross_field_faults(
    strategy: &str,
    entry: &Map<String, Value>,
    rule: RuleCheck<'_>,
) -> Vec<String> {
    let text = |member: &str| entry.get(member).and_then(Value::as_str);
    let strings = |member: &str| -> Vec<&str> {
        entry
            .get(member)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let mut faults = Vec::new();
    for (index, text) in strings("allow").iter().enumerate() {
        if let Err(reason) = rule(text) {
            faults.push(format!("field `allow/{index}`: {reason}"));
        }
    }
    let content_rules = entry
        .get("content_api")
        .and_then(|c| c.get("allow"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for (index, text) in content_rules.enumerate() {
        if let Err(reason) = rule(text) {
            faults.push(format!("field `content_api/allow/{index}`: {reason}"));
        }
    }
    let format = entry
        .get("token_header")
        .and_then(|h| h.get("format"))
        .and_then(Value::as_str);
    if format.is_some_and(|f| f.matches("{token}").count() != 1) {
        faults.push("field `token_header/format`: {token} must appear exactly once".to_owned());
    }
    if entry.contains_key("api_base") == entry.contains_key("api_host") {
        faults.push("field `api_base`: give exactly one of api_base and api_host".to_owned());
    }
    if entry.contains_key("token_url") != (text("refresh") != Some("none")) {
        faults.push(
            "field `refresh`: `none` exactly when there is no token_url (a token endpoint is \
             for refresh grants)"
                .to_owned(),
        );
    }
    let params = strings("params");
    for member in ["api_base", "token_url"] {
        for placeholder in placeholders(text(member).unwrap_or_default()) {
            // A token endpoint's `{host}` is the user's own API host, checked below.
            if member == "token_url" && placeholder == HOST {
                continue;
            }
            if !params.contains(&placeholder) {
                faults.push(format!(
                    "field `{member}`: placeholder {{{placeholder}}} is not one of params"
                ));
            }
        }
    }
    for param in &params {
        let used = ["api_base", "token_url"]
            .iter()
            .any(|member| placeholders(text(member).unwrap_or_default()).contains(param));
        if !used {
            faults.push(format!("field `params`: {param} is used in no URL"));
        }
    }
    if params.contains(&HOST) {
        faults.push(format!(
            "field `params`: {HOST} is reserved for the user's own API host (token_url \
             https://{{{HOST}}}/…)"
        ));
    }
    let token_url = text("token_url").unwrap_or_default();
    if placeholders(token_url).contains(&HOST) {
        if !entry.contains_key("api_host") {
            faults.push(format!(
                "field `token_url`: {{{HOST}}} is the user's own API host, read by api_host: \
                 the entry has none"
            ));
        }
        let whole_host = token_url
            .strip_prefix("https://{host}")
            .is_some_and(|path| path.is_empty() || path.starts_with('/'));
        if !whole_host {
            faults.push(format!(
                "field `token_url`: {{{HOST}}} must be the whole host (https://{{{HOST}}}/path)"
            ));
        }
    }
    // Auth0 writes `oauth2` as the provider of every custom social connection's identities, and
    // the strategy name for its own social and enterprise connections.
    let providers = strings("providers");
    match text("kind") {
        Some("custom") if providers != ["oauth2"] => faults.push(
            "field `providers`: a custom connection's identities are [\"oauth2\"]".to_owned(),
        ),
        Some("social" | "enterprise") if entry.contains_key("providers") => faults.push(format!(
            "field `providers`: Auth0 writes the strategy ({strategy}) for this kind; leave it out"
        )),
        _ => {}
    }
    faults
}

/// The placeholder name a token endpoint uses for the user's own API host (`https://{host}/…`):
/// filled per user from the host `api_host` checked, never a parameter.
const HOST: &str = "host";

/// The `{name}` placeholders of `text`.
fn placeholders(text: &str) -> Vec<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}
