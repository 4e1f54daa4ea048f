//! The provider catalogue against its documentation: `docs/providers.md`'s table is generated
//! from `src/idp/catalogue.json` (`UPDATE_DOCS=1 cargo test --test catalogue` writes it), and
//! every entry is valid as data.

use auth0_idp_proxy::idp::allow::AllowRule;
use auth0_idp_proxy::idp::catalogue::{self, Entry, Refresh};
use url::Url;

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
    ] {
        assert!(entries.contains_key(required), "{required} is missing");
    }
    for (strategy, entry) in &entries {
        let Entry {
            api_base,
            api_host,
            token_url,
            refresh,
            allow,
            docs,
            ..
        } = entry;
        assert!(
            api_base.is_some() != api_host.is_some(),
            "{strategy}: api_base or api_host"
        );
        if let Some(base) = api_base {
            https(base, &format!("{strategy} api_base"));
        }
        https(docs, &format!("{strategy} docs"));
        match (refresh, token_url) {
            (Refresh::None, None) => {}
            (Refresh::None, Some(_)) => panic!("{strategy}: a token_url but no refresh"),
            (_, None) => panic!("{strategy}: refresh claimed without a token_url"),
            (_, Some(url)) => https(url, &format!("{strategy} token_url")),
        }
        assert!(!allow.is_empty(), "{strategy}: no allow rule");
        for rule in allow {
            AllowRule::parse(rule).unwrap_or_else(|e| panic!("{strategy}: {e}"));
        }
        assert!(
            !entry.auth0_setup.is_empty() && !entry.provider_setup.is_empty(),
            "{strategy}"
        );
    }
}
