//! Each catalogue entry's refresh rules against a stand-in token endpoint that enforces them as
//! the provider does: how the IdP app authenticates (HTTP Basic or the body, the other refused
//! with `invalid_client`), what becomes of a presented refresh token (single-use: a used one
//! answers `invalid_grant`; rotating: a new one at every grant, the old one still valid;
//! reusable), JSON or form answers, and answers without `expires_in`.
//!
//! Through the handler for every entry that renews (a per-user host's at its stand-in origin,
//! its token endpoint the user's own host's where the entry says so; a token header as the
//! entry formats it), with the fleet table once per kind of
//! refresh token, and a Box-like single-use provider through the real binary with and without
//! the table. The rules the stand-in enforces are read from the entries themselves, so an entry
//! that says the wrong thing about its provider is the only way these tests pass wrongly.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::credentials::ClientCredentials;
use auth0_idp_proxy::deadline::Deadline;
use auth0_idp_proxy::fleet::TablePolicy;
use auth0_idp_proxy::idp::catalogue::{
    self, Entry, ExpiresIn, Presence, Refresh, TokenAuth, TokenResponse,
};
use auth0_idp_proxy::idp::connections::Connections;
use auth0_idp_proxy::idp::renewal;
use auth0_idp_proxy::secret::IdpRefreshToken;
use serde_json::{Value, json};
use standin::{
    AnswerFormat, ClientAuth, Flavor, Idp, M2M_CLIENT_ID, RefreshBehaviour, RefreshRules,
};

use crate::binary::RealBinary;
use crate::helpers::{TestApp, TestResponse, assert_not_logged, idp_event, send_to, unique};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Characters that client authentication must encode, in every stand-in app's secret.
const APP_SECRET: &str = "app+secret/with=odd chars";

/// The rules a provider's token endpoint enforces, as its catalogue entry describes them. A
/// `"sometimes"` `expires_in` is tested as its harder half: left out.
fn rules_of(entry: &Entry) -> RefreshRules {
    RefreshRules {
        client_auth: Some(match entry.token_auth {
            TokenAuth::Basic => ClientAuth::Basic,
            TokenAuth::Body => ClientAuth::Body,
        }),
        refresh: match entry.refresh {
            Refresh::SingleUse => RefreshBehaviour::SingleUse,
            Refresh::Rotating => RefreshBehaviour::Rotating,
            Refresh::RefreshToken | Refresh::None => RefreshBehaviour::Reusable,
        },
        answer: match entry.token_response {
            TokenResponse::Json => AnswerFormat::Json,
            TokenResponse::Form => AnswerFormat::FormUnlessJson,
        },
        expires_in: entry.expires_in == ExpiresIn::Said(Presence::Always),
    }
}

/// The stand-in's flavour of errors for an entry: GitHub's (200 with `error`) for a form
/// endpoint, else RFC 6749's (400).
fn flavor_of(entry: &Entry) -> Flavor {
    match entry.token_response {
        TokenResponse::Form => Flavor::GitHub,
        TokenResponse::Json => Flavor::Google,
    }
}

/// Every entry that renews.
fn renewing_entries() -> BTreeMap<String, Entry> {
    catalogue::entries()
        .expect("catalogue")
        .into_iter()
        .filter(|(_, e)| e.refresh != Refresh::None && e.token_url.is_some())
        .collect()
}

/// The user's own API host for an entry with a per-user host: its pattern's `*` as `acme`.
fn user_host(entry: &Entry) -> Option<String> {
    entry
        .api_host
        .as_ref()
        .map(|host| host.pattern.replacen('*', "acme", 1))
}

/// Whether the entry's token endpoint is the user's own host's (`https://{host}/…`).
fn token_on_user_host(entry: &Entry) -> bool {
    entry
        .token_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://{host}"))
}

/// `value` at JSON pointer `pointer` of `doc`, making the objects on the way.
fn put(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    let mut keys = pointer.trim_start_matches('/').split('/').peekable();
    while let Some(key) = keys.next() {
        let slot = match key.parse::<usize>() {
            Ok(index) if at.is_array() => &mut at[index],
            _ => &mut at[key],
        };
        if keys.peek().is_none() {
            *slot = value;
            return;
        }
        if !slot.is_object() && !slot.is_array() {
            *slot = json!({});
        }
        at = slot;
    }
}

/// A method and path that the entry's own first allow rule lets through.
fn allowed_call(entry: &Entry) -> (String, String) {
    let rule = entry.allow[0].split(" needs ").next().expect("a rule");
    let (method, glob) = rule.split_once(' ').expect("METHOD /path");
    let path = glob
        .split('/')
        .map(|segment| if segment.contains('*') { "x" } else { segment })
        .collect::<Vec<_>>()
        .join("/");
    (method.to_owned(), path)
}

/// One provider's stand-in, its user and what the user's identity holds.
struct Provider {
    strategy: String,
    entry: Entry,
    idp: Idp,
    jwt: String,
    first_refresh: String,
}

/// A tenant with one stand-in provider per entry in `strategies`, each enforcing that entry's
/// rules, and the secret holding every provider's IdP app; with the fleet table when
/// `with_table`.
struct World {
    app: TestApp,
    providers: Vec<Provider>,
    dynamodb: Option<aws_sdk_dynamodb::Client>,
}

impl World {
    async fn spawn(strategies: &[&str], with_table: bool) -> Self {
        let entries = renewing_entries();
        let mut connections = serde_json::Map::new();
        let mut idps = Vec::new();
        for &strategy in strategies {
            let entry = entries
                .get(strategy)
                .unwrap_or_else(|| panic!("{strategy}: no renewing entry"))
                .clone();
            let idp = Idp::start_as(flavor_of(&entry)).await.expect("stand-in");
            idp.set_refresh_rules(rules_of(&entry));
            idp.register_client(&format!("{strategy}-app"), APP_SECRET);
            if let Some(header) = &entry.token_header {
                idp.set_token_header_format(&header.name.to_ascii_lowercase(), &header.format);
            }
            // A per-user host's calls (and a token endpoint on it) go to the stand-in's origin;
            // another token endpoint is the stand-in's own.
            let mut connection = match &entry.api_host {
                Some(_) => json!({"api_host_origin": idp.origin()}),
                None => json!({"api_base": idp.origin()}),
            };
            if !token_on_user_host(&entry) {
                connection["token_url"] = json!(idp.token_url());
            }
            for param in &entry.params {
                connection[param] = json!("contoso");
            }
            connections.insert(strategy.to_owned(), connection);
            idps.push((strategy.to_owned(), entry, idp));
        }
        let connections = Value::Object(connections).to_string();
        let table = with_table.then(|| unique("refresh-rules-"));
        let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
        if let Some(table) = &table {
            vars.push(("TOKEN_TABLE", table.as_str()));
        }
        let app = TestApp::spawn_with(&vars, KeyPolicy::default()).await;
        let clients: serde_json::Map<String, Value> = idps
            .iter()
            .map(|(strategy, _, _)| {
                let client = json!({"client_id": format!("{strategy}-app"),
                                    "client_secret": APP_SECRET});
                (strategy.clone(), client)
            })
            .collect();
        let client_secret = app.client_secret.lock().expect("lock").clone();
        let mut secret = json!({"client_id": M2M_CLIENT_ID, "client_secret": client_secret,
                                "idp_clients": clients});
        if with_table {
            secret["token_store_keys"] = json!([KEY]);
        }
        app.put_secret(&secret.to_string()).await;
        let dynamodb = match &table {
            Some(table) => Some(crate::fleet::create_table(table).await),
            None => None,
        };
        let providers = idps
            .into_iter()
            .map(|(strategy, entry, idp)| {
                let sub = format!("{strategy}|77");
                let access = unique("expired-at-login-");
                let first_refresh = unique("refresh-at-login-");
                let person = json!({"email": "jane@example.test", "for": sub});
                idp.grant(&access, person.clone());
                idp.expire(&access);
                match user_host(&entry).filter(|_| token_on_user_host(&entry)) {
                    // Only the user's own host's token endpoint takes it.
                    Some(host) => idp.issue_refresh_token_at(&host, &first_refresh, person),
                    None => idp.issue_refresh_token(&first_refresh, person),
                }
                // The provider Auth0 writes for the entry's connections (`oauth2` for a
                // custom social one).
                let provider = entry.providers(&strategy).remove(0);
                let mut user = json!({"user_id": sub, "identities": [{
                    "provider": provider, "connection": strategy, "user_id": "77",
                    "access_token": access, "refresh_token": first_refresh, "isSocial": true}]});
                // A per-user host where the entry's first field reads it.
                if let (Some(rule), Some(host)) = (&entry.api_host, user_host(&entry)) {
                    let pointer = &rule.fields[0];
                    let (root, rest) = match pointer.strip_prefix("/identity") {
                        Some(rest) => ("/identities/0", rest),
                        None => (
                            "",
                            pointer.strip_prefix("/user").expect("/user or /identity"),
                        ),
                    };
                    put(
                        &mut user,
                        &format!("{root}{rest}"),
                        json!(format!("https://{host}")),
                    );
                }
                app.tenant.add_user(user);
                let jwt = app.tenant.token(crate::helpers::AUDIENCE, &sub).sign();
                Provider {
                    strategy,
                    entry,
                    idp,
                    jwt,
                    first_refresh,
                }
            })
            .collect();
        Self {
            app,
            providers,
            dynamodb,
        }
    }

    /// Another execution environment on the same fleet table.
    async fn environment(&self) -> auth0_idp_proxy::App {
        let patient = TablePolicy {
            call_timeout: Duration::from_secs(5),
            ..TablePolicy::default()
        };
        let dynamodb = self.dynamodb.as_ref().expect("a table");
        self.app.environment(dynamodb, patient).await
    }
}

impl Provider {
    /// The user's call of the entry's first allowed path.
    fn event(&self) -> Value {
        let (method, path) = allowed_call(&self.entry);
        idp_event(
            &method,
            &format!("/idp/{}{path}", self.strategy),
            "",
            &self.jwt,
            &[],
        )
    }

    /// The user's call through `app` (which must succeed), then, every token issued so far
    /// expired, the same call again: both answers.
    async fn call_across_an_expiry(
        &self,
        app: &auth0_idp_proxy::App,
    ) -> (TestResponse, TestResponse) {
        let first = send(app, &self.event()).await;
        assert_eq!(first.status, 200, "{}: {}", self.strategy, first.body);
        self.expire_issued();
        let second = send(app, &self.event()).await;
        (first, second)
    }

    /// Makes every access token the stand-in issued so far expire, so that the next call renews.
    fn expire_issued(&self) {
        for token in self.idp.issued_tokens() {
            self.idp.expire(&token);
        }
    }

    /// Every secret of this provider that must stay out of logs and answers.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.idp.issued_tokens();
        secrets.push(self.first_refresh.clone());
        secrets.push(APP_SECRET.to_owned());
        secrets
    }

    /// The refresh tokens the second grant may present after a first grant from
    /// `first_refresh`: the one the first grant issued where the provider rotates, else the
    /// same one again.
    fn assert_presented_by_rule(&self, presented: &[String]) {
        let who = &self.strategy;
        assert_eq!(
            presented[0], self.first_refresh,
            "{who}: the login's refresh token first"
        );
        match self.entry.refresh {
            Refresh::SingleUse | Refresh::Rotating => {
                assert!(
                    self.idp.issued_tokens().contains(&presented[1]),
                    "{who}: the second grant presents the refresh token the first one issued"
                );
                let distinct: HashSet<&String> = presented.iter().collect();
                assert_eq!(
                    distinct.len(),
                    presented.len(),
                    "{who}: one presented twice"
                );
            }
            Refresh::RefreshToken | Refresh::None => {
                assert_eq!(presented[1], self.first_refresh, "{who}: reusable, kept");
            }
        }
    }
}

async fn send(app: &auth0_idp_proxy::App, event: &Value) -> TestResponse {
    send_to(
        app,
        lambda_http::request::from_str(&event.to_string()).expect("event"),
    )
    .await
}

fn assert_hidden(secrets: &[String], answers: &[&TestResponse]) {
    for answer in answers {
        let headers = format!("{:?}", answer.headers);
        for secret in secrets {
            assert!(
                !answer.body.contains(secret.as_str()),
                "a token reached the caller"
            );
            assert!(
                !headers.contains(secret.as_str()),
                "a token reached a header"
            );
        }
    }
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_not_logged(&refs);
}

#[tokio::test]
async fn the_stand_in_enforces_each_rule_as_the_provider_does() {
    let idp = Idp::start_as(Flavor::Google).await.expect("stand-in");
    idp.register_client("app", "secret");
    let http = reqwest::Client::new();
    let grant = |refresh: &str, basic: bool| {
        let mut request = http.post(idp.token_url());
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
        if basic {
            request = request.basic_auth("app", Some("secret"));
        } else {
            form.extend([("client_id", "app"), ("client_secret", "secret")]);
        }
        request.form(&form).send()
    };
    let single_use = RefreshRules {
        client_auth: Some(ClientAuth::Basic),
        refresh: RefreshBehaviour::SingleUse,
        answer: AnswerFormat::Form,
        expires_in: false,
    };
    idp.set_refresh_rules(single_use);
    idp.issue_refresh_token("r0", json!({"for": "jane"}));
    let body = grant("r0", false).await.expect("answer");
    assert_eq!(
        body.status(),
        401,
        "body credentials refused by a Basic-only endpoint"
    );
    let first = grant("r0", true).await.expect("answer");
    assert_eq!(
        first.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let text = first.text().await.expect("body");
    assert!(
        text.contains("refresh_token=") && !text.contains("expires_in"),
        "{text}"
    );
    let again = grant("r0", true).await.expect("answer");
    assert_eq!(
        again.status(),
        400,
        "a used single-use refresh token is invalid_grant"
    );
    assert!(again.text().await.expect("body").contains("invalid_grant"));

    idp.set_refresh_rules(RefreshRules {
        client_auth: Some(ClientAuth::Body),
        refresh: RefreshBehaviour::Rotating,
        answer: AnswerFormat::Json,
        expires_in: true,
    });
    idp.issue_refresh_token("m0", json!({"for": "jane"}));
    assert_eq!(
        grant("m0", true).await.expect("answer").status(),
        401,
        "Basic refused"
    );
    for _ in 0..2 {
        let rotated: Value = grant("m0", false)
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert!(rotated["refresh_token"].is_string() && rotated["expires_in"].is_u64());
    }
}

#[tokio::test]
async fn every_entry_that_renews_renews_as_its_provider_demands() {
    let entries = renewing_entries();
    let strategies: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert!(strategies.len() >= 20, "{strategies:?}");
    let world = World::spawn(&strategies, false).await;
    for provider in &world.providers {
        let who = &provider.strategy;
        let (first, second) = provider.call_across_an_expiry(&world.app.app).await;
        assert_eq!(second.status, 200, "{who}: {}", second.body);

        let presented = provider.idp.presented_refresh_tokens();
        assert_eq!(presented.len(), 2, "{who}: one grant per expiry");
        provider.assert_presented_by_rule(&presented);
        let wanted = match provider.entry.token_auth {
            TokenAuth::Basic => "basic",
            TokenAuth::Body => "body",
        };
        assert_eq!(provider.idp.grant_client_auth(), vec![wanted; 2], "{who}");
        // A token endpoint on the user's own host got both grants there, and none elsewhere.
        let host = user_host(&provider.entry).filter(|_| token_on_user_host(&provider.entry));
        assert_eq!(provider.idp.grant_hosts(), vec![host; 2], "{who}");
        assert_hidden(&provider.secrets(), &[&first, &second]);
    }
    for strategy in ["shopify", "salesforce", "yandex", "soundcloud", "weibo"] {
        let renews = entries.contains_key(strategy);
        assert_eq!(
            renews,
            strategy != "weibo",
            "{strategy} among the entries that renew"
        );
    }
}

#[tokio::test]
async fn a_single_use_refresh_token_whose_grant_issued_none_is_not_presented_again() {
    let world = World::spawn(&["box"], false).await;
    let provider = &world.providers[0];
    // A provider that rotates but once answered without a new refresh token: the used one is
    // dead, so the next expiry needs a new login, not a grant that is bound to fail.
    provider.idp.set_refresh_rules(RefreshRules {
        refresh: RefreshBehaviour::Reusable,
        ..rules_of(&provider.entry)
    });
    let (_, second) = provider.call_across_an_expiry(&world.app.app).await;
    second.assert_error(403, "reconsent_required");
    assert_eq!(provider.idp.presented_refresh_tokens().len(), 1);
}

#[tokio::test]
async fn a_grant_that_leaves_expires_in_out_takes_the_documented_lifetime() {
    let idp = Idp::start_as(Flavor::Google).await.expect("stand-in");
    idp.register_client("app", APP_SECRET);
    let quiet = RefreshRules {
        client_auth: None,
        refresh: RefreshBehaviour::Reusable,
        answer: AnswerFormat::Json,
        expires_in: false,
    };
    idp.set_refresh_rules(quiet);
    idp.issue_refresh_token("r0", json!({"for": "jane"}));
    // Facebook documents 60 days for the tokens it answers without `expires_in`; Stripe none.
    let overrides = json!({
        "fb": {"strategy": "facebook", "api_base": idp.origin(), "token_url": idp.token_url(),
               "refresh": "refresh_token"},
        "stripe": {"api_base": idp.origin(), "token_url": idp.token_url()},
    });
    let connections = Connections::new(overrides.as_object()).expect("connections");
    let client = ClientCredentials {
        client_id: "app".to_owned(),
        client_secret: APP_SECRET.to_owned().into(),
    };
    let http = auth0_idp_proxy::upstream::build_client().expect("HTTP clients");
    let deadline = Deadline::after(Duration::from_secs(10));
    let lifetime = |name: &str| {
        let connection = connections.get(name).expect("connection").clone();
        let (http, client) = (&http, &client);
        async move {
            let token_url = connection.token_url.clone().expect("token url");
            renewal::refresh(
                http,
                &connection,
                &token_url,
                client,
                &IdpRefreshToken::new("r0"),
                &deadline,
            )
            .await
            .expect("renewed")
            .expires_in
        }
    };
    assert_eq!(
        lifetime("fb").await,
        Some(Duration::from_secs(60 * 24 * 3600))
    );
    assert_eq!(lifetime("stripe").await, None);
    idp.set_refresh_rules(RefreshRules {
        expires_in: true,
        ..quiet
    });
    assert_eq!(
        lifetime("fb").await,
        Some(Duration::from_secs(3600)),
        "the answer's own"
    );
}

/// Two environments on one table renew an expired token at once: one grant for the fleet, for
/// each kind of refresh token; a third environment, later, presents the newest refresh token
/// the fleet knows.
#[tokio::test]
async fn one_grant_serves_the_fleet_for_each_kind_of_refresh_token() {
    // Box: single-use; Microsoft: rotating; Bitbucket: reusable.
    let world = World::spawn(&["box", "windowslive", "bitbucket"], true).await;
    let (one, two) = (world.environment().await, world.environment().await);
    for provider in &world.providers {
        let who = &provider.strategy;
        provider.idp.set_token_delay(Duration::from_millis(300));
        let event = provider.event();
        let (a, b) = tokio::join!(send(&one, &event), send(&two, &event));
        assert_eq!(
            (a.status, b.status),
            (200, 200),
            "{who}: {} {}",
            a.body,
            b.body
        );
        assert_eq!(
            provider.idp.grants(),
            1,
            "{who}: one grant for two environments"
        );

        provider.expire_issued();
        let later = world.environment().await;
        let c = send(&later, &event).await;
        assert_eq!(c.status, 200, "{who}: {}", c.body);
        let presented = provider.idp.presented_refresh_tokens();
        assert_eq!(presented.len(), 2, "{who}");
        provider.assert_presented_by_rule(&presented);
        assert_hidden(&provider.secrets(), &[&a, &b, &c]);
    }
}

/// A Box-like single-use provider through the real binary: each renewal presents the refresh
/// token the last one issued. With the table, the second renewal is another process's, which
/// finds that token in the table rather than Auth0's spent one.
async fn box_through_the_real_binary(with_table: bool) {
    let world = World::spawn(&["box"], with_table).await;
    let provider = &world.providers[0];
    let endpoint = crate::fleet::table_moto().endpoint().to_owned();
    let extra: Vec<(&str, &str)> = if with_table {
        vec![("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())]
    } else {
        Vec::new()
    };
    let event = provider.event();
    let first_binary = RealBinary::start(&world.app, &extra).await;
    let first = first_binary.invoke(&event).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    provider.expire_issued();
    let (second, logs) = if with_table {
        let first_logs = first_binary.logs().await;
        let second_binary = RealBinary::start(&world.app, &extra).await;
        let second = second_binary.invoke(&event).await;
        (second, first_logs + &second_binary.logs().await)
    } else {
        let second = first_binary.invoke(&event).await;
        (second, first_binary.logs().await)
    };
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    let presented = provider.idp.presented_refresh_tokens();
    assert_eq!(presented.len(), 2);
    provider.assert_presented_by_rule(&presented);
    assert_eq!(
        provider.idp.grant_client_auth(),
        vec!["body"; 2],
        "Box: the body"
    );
    assert!(
        logs.contains("IdP token renewed"),
        "the binary logged its renewals"
    );
    let secrets = provider.secrets();
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a token reached the binary's logs"
        );
    }
    for answer in [&first, &second] {
        answer.assert_hides(&secrets);
    }
}

#[tokio::test]
async fn the_real_binary_renews_a_single_use_refresh_token_once_per_grant() {
    box_through_the_real_binary(false).await;
}

#[tokio::test]
async fn the_real_binary_hands_a_single_use_refresh_token_on_through_the_fleet_table() {
    box_through_the_real_binary(true).await;
}

/// Issue 34: a Box-like single-use provider through the real binary, behind a relay that ends
/// the pooled connections to it (API and token endpoint alike) while the process is frozen. Its
/// tokens are never fresh, so the first request after each thaw is the refresh grant, a write:
/// it is answered, and each refresh token is presented once, the one the grant before issued.
#[tokio::test]
async fn the_real_binary_presents_a_single_use_refresh_token_once_across_a_freeze() {
    use crate::freeze::{ENDINGS, borrowed, through, written_once_after_ending};

    let world = World::spawn(&["box"], false).await;
    let provider = &world.providers[0];
    provider.idp.set_token_lifetime(Duration::from_secs(1));
    let relay = standin::Relay::start(&provider.idp.origin())
        .await
        .expect("relay");
    let extra = through(&world.app.env, &provider.idp.origin(), &relay.origin());
    let real = RealBinary::start(&world.app, &borrowed(&extra)).await;
    let event = provider.event();
    let first = real.invoke(&event).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );

    let mut answers = vec![first];
    for how in ENDINGS {
        let grants = || provider.idp.presented_refresh_tokens().len();
        answers.push(written_once_after_ending(&real, &relay, how, &event, grants).await);
    }
    let presented = provider.idp.presented_refresh_tokens();
    assert_eq!(presented.len(), 1 + ENDINGS.len(), "one grant per call");
    assert_eq!(presented[0], provider.first_refresh);
    let issued = provider.idp.issued_tokens();
    for token in &presented[1..] {
        assert!(issued.contains(token), "a token a grant issued");
    }
    let distinct: HashSet<&String> = presented.iter().collect();
    assert_eq!(distinct.len(), presented.len(), "none presented twice");
    let logs = real.logs().await;
    let secrets = provider.secrets();
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a token reached the logs");
    }
    for answer in &answers {
        answer.assert_hides(&secrets);
    }
}

#[tokio::test]
async fn a_token_endpoint_that_answers_a_form_whatever_accept_says_is_read() {
    // Fitbit-like rules (single-use, HTTP Basic), its answers a form even to `Accept: JSON`: a
    // grant whose answer were dropped would lose the new tokens with the old one spent.
    let world = World::spawn(&["fitbit"], false).await;
    let provider = &world.providers[0];
    provider.idp.set_refresh_rules(RefreshRules {
        answer: AnswerFormat::Form,
        ..rules_of(&provider.entry)
    });
    let (first, second) = provider.call_across_an_expiry(&world.app.app).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let presented = provider.idp.presented_refresh_tokens();
    assert_eq!(presented.len(), 2);
    provider.assert_presented_by_rule(&presented);
    assert_hidden(&provider.secrets(), &[&first, &second]);
}
