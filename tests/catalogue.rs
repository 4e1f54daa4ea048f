//! The provider catalogue against its documentation: `docs/providers.md`'s table is generated
//! from `src/idp/catalogue.json` (`UPDATE_DOCS=1 cargo test --test catalogue` writes it); the
//! checks the build runs (`build/catalogue.rs`) name a bad entry and its field; and what the
//! build can only say in patterns (allow rules, URLs) holds by the function's own parsers.

use auth0_idp_proxy::idp::allow::AllowRule;
use auth0_idp_proxy::idp::catalogue::{self, Entry};
use serde_json::{Value, json};
use url::Url;

#[path = "../build/catalogue.rs"]
#[allow(dead_code)]
mod check;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/providers.md");
const START: &str = "<!-- catalogue table: generated from src/idp/catalogue.json -->";
const END: &str = "<!-- end of catalogue table -->";

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn table() -> String {
    let mut out = String::from(
        "| strategy | provider | API | refresh | in Auth0 | at the provider | unconfirmed |\n|---|---|---|---|---|---|---|\n",
    );
    for (strategy, entry) in catalogue::entries().expect("catalogue") {
        let api = match (&entry.api_base, &entry.api_host) {
            (_, Some(host)) => format!(
                "[https://`{}`{}]({}) (host per user)",
                host.pattern,
                host.path.as_deref().unwrap_or(""),
                entry.docs
            ),
            (Some(base), None) => format!("[{base}]({})", entry.docs),
            (None, None) => "set `api_base`".to_owned(),
        };
        let params = if entry.params.is_empty() {
            String::new()
        } else {
            format!(" (IDP_CONNECTIONS: {})", entry.params.join(", "))
        };
        out.push_str(&format!(
            "| `{strategy}` | {} | {}{params} | {} | {} | {} | {} |\n",
            cell(&entry.display_name),
            cell(&api),
            entry.refresh.as_str(),
            cell(&entry.auth0_setup),
            cell(&entry.provider_setup),
            cell(entry.unconfirmed.as_deref().unwrap_or("")),
        ));
    }
    out
}

#[test]
fn the_providers_page_shows_the_catalogue() {
    let doc = std::fs::read_to_string(DOC).expect("docs/providers.md");
    let (head, rest) = doc.split_once(START).expect("start marker");
    let (_, tail) = rest.split_once(END).expect("end marker");
    let want = format!("{head}{START}\n{}{END}{tail}", table());
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(DOC, &want).expect("write docs/providers.md");
    }
    assert!(
        doc == want,
        "docs/providers.md is out of step with the catalogue: UPDATE_DOCS=1 cargo test --test catalogue"
    );
}

fn https(text: &str, what: &str) {
    let url = Url::parse(&text.replace(['{', '}'], "")).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(url.scheme(), "https", "{what}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{what}"
    );
    assert!(url.query().is_none() && url.fragment().is_none(), "{what}");
}

#[test]
fn every_entry_is_valid() {
    let entries = catalogue::entries().expect("catalogue");
    for required in [
        "github",
        "google-oauth2",
        "windowslive",
        "facebook",
        "linkedin",
        "bitbucket",
        "twitter",
        "box",
        "dropbox",
        "salesforce",
        "salesforce-sandbox",
        "salesforce-community",
        "paypal",
        "paypal-sandbox",
        "amazon",
        "shopify",
        "thirtysevensignals",
        "fitbit",
        "line",
        "wordpress",
        "instagram",
        "planningcenter",
        "bitly",
        "yahoo",
        "waad",
        "google-apps",
        // Token Vault integrations Auth0 sets up as custom social connections.
        "sign-in-with-slack",
        "discord",
        "spotify",
        "twitch",
        "figma",
        "gitlab",
        "stripe",
        // Issue 40: the rest of Auth0's strategies with a user API the stored token can call,
        // and Token Vault's integrations.
        "yandex",
        "weibo",
        "soundcloud",
        "exact",
        "freshbooks",
        "snapchat",
        "tumblr",
        "digitalocean",
        "huggingface",
    ] {
        assert!(entries.contains_key(required), "{required} is missing");
    }
    for (strategy, entry) in &entries {
        let Entry {
            api_base,
            token_url,
            allow,
            docs,
            ..
        } = entry;
        if let Some(base) = api_base {
            https(base, &format!("{strategy} api_base"));
        }
        if let Some(url) = token_url {
            https(url, &format!("{strategy} token_url"));
        }
        https(docs, &format!("{strategy} docs"));
        for rule in allow {
            AllowRule::parse(rule).unwrap_or_else(|e| panic!("{strategy}: {e}"));
        }
    }
}

/// The data file and its schema, as the build reads them.
fn data() -> (Value, Value) {
    let read = |path: &str| -> Value {
        let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("JSON")
    };
    (
        read("src/idp/catalogue.json"),
        read("src/idp/catalogue.schema.json"),
    )
}

#[test]
fn the_build_accepts_the_catalogue_and_names_each_bad_entry_with_its_field() {
    let (catalogue, schema) = data();
    let rule = |text: &str| AllowRule::parse(text).map(drop);
    assert_eq!(
        check::faults(&catalogue, &schema, &rule),
        Vec::<String>::new()
    );
    // Each change to a good entry, and the fault the build must name for it.
    let cases: &[(&str, &str, Value, &str)] = &[
        (
            "github",
            "colour",
            json!("blue"),
            "entry `github`: Additional properties",
        ),
        (
            "github",
            "refresh",
            json!("sometimes"),
            "entry `github`, field `refresh`",
        ),
        (
            "github",
            "token_url",
            json!("http://github.com/t"),
            "field `token_url`",
        ),
        (
            "github",
            "allow",
            json!(["get /**"]),
            "entry `github`, field `allow/0`",
        ),
        (
            "github",
            "expires_in",
            json!("often"),
            "entry `github`, field `expires_in`",
        ),
        (
            "github",
            "headers",
            json!({"authorization": "x"}),
            "field `headers`",
        ),
        (
            "github",
            "api_host",
            json!({"pattern": "*.github.com", "fields": ["/user/x"]}),
            "entry `github`, field `api_base`: give exactly one of api_base and api_host",
        ),
        (
            "facebook",
            "refresh",
            json!("rotating"),
            "entry `facebook`, field `refresh`: `none` exactly",
        ),
        (
            "github",
            "params",
            json!(["org"]),
            "entry `github`, field `params`: org is used in no URL",
        ),
        (
            "github",
            "api_base",
            json!("https://{org}.github.com"),
            "entry `github`, field `api_base`: placeholder {org} is not one of params",
        ),
        (
            "discord",
            "providers",
            Value::Null,
            "entry `discord`, field `providers`: a custom",
        ),
        (
            "github",
            "providers",
            json!(["github"]),
            "entry `github`, field `providers`: Auth0 writes",
        ),
        // What only the function's own parsers know: the build runs them too.
        (
            "github",
            "allow",
            json!(["GET /**", "GET /a*b"]),
            "entry `github`, field `allow/1`: allow rule \"GET /a*b\": * must be a whole segment",
        ),
        (
            "github",
            "allow",
            json!(["GET /x/../y"]),
            "entry `github`, field `allow/0`",
        ),
        (
            "dropbox",
            "content_api",
            json!({"api_base": "https://content.dropboxapi.com", "allow": ["GET /2/files/download", "GET /a*b"]}),
            "entry `dropbox`, field `content_api/allow/1`: allow rule \"GET /a*b\"",
        ),
        (
            "dropbox",
            "content_api",
            json!({"api_base": "https://content.dropboxapi.com"}),
            "entry `dropbox`, field `content_api`",
        ),
        (
            "github",
            "token_header",
            json!({"name": "x-token", "format": "{token}{token}"}),
            "entry `github`, field `token_header/format`",
        ),
        (
            "github",
            "headers",
            json!({"accept": "a\r\nx-evil: 1"}),
            "entry `github`, field `headers/accept`",
        ),
        // A token endpoint on the user's own host: `{host}` is that host, whole, and only
        // where the entry reads one.
        (
            "github",
            "token_url",
            json!("https://{host}/login/oauth/access_token"),
            "entry `github`, field `token_url`: {host} is the user's own API host, read by api_host",
        ),
        (
            "shopify",
            "token_url",
            json!("https://{host}.evil.example/admin/oauth/access_token"),
            "entry `shopify`, field `token_url`: {host} must be the whole host",
        ),
        (
            "shopify",
            "token_url",
            json!("https://evil.example/{host}/admin/oauth/access_token"),
            "entry `shopify`, field `token_url`: {host} must be the whole host",
        ),
        (
            "github",
            "api_base",
            json!("https://{host}"),
            "entry `github`, field `api_base`: placeholder {host} is not one of params",
        ),
        (
            "waad",
            "params",
            json!(["tenant", "host"]),
            "entry `waad`, field `params/1`",
        ),
    ];
    for (strategy, field, value, want) in cases {
        let mut bad = catalogue.clone();
        let entry = bad[*strategy].as_object_mut().expect("an entry");
        match value {
            Value::Null => entry.remove(*field),
            value => entry.insert((*field).to_owned(), value.clone()),
        };
        let faults = check::faults(&bad, &schema, &rule);
        assert!(
            faults.iter().any(|f| f.contains(want)),
            "{strategy}.{field} = {value}: want {want:?}, got {faults:?}"
        );
    }
}

#[test]
fn only_the_run_time_members_are_compiled_in() {
    let (catalogue, _) = data();
    for (strategy, entry) in check::entries(&catalogue) {
        let compiled: Value =
            serde_json::from_str(catalogue::text(strategy).expect("compiled in")).expect("JSON");
        assert_eq!(
            compiled,
            Value::Object(check::run_time(entry)),
            "{strategy}"
        );
        let text = compiled.to_string();
        let prose = entry["auth0_setup"].as_str().expect("setup");
        assert!(!text.contains(prose), "{strategy}: setup prose compiled in");
    }
}
