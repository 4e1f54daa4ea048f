//! Fleet state on DynamoDB (moto's server, a real protocol peer): several execution environments
//! of the function share one table, so one client-credentials exchange and one Management read
//! serve them all, a rotated single-use refresh token outlives the environment that obtained it,
//! renewals are single-flight across the fleet, and nothing in the table is readable without the
//! keys. When the table fails, throttles or hangs, the function carries on without it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use auth0_idp_proxy::App;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::fleet::TablePolicy;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use standin::{LinkMode, M2M_CLIENT_ID, Moto, MotoLink};

use crate::helpers::{
    AUDIENCE, TestApp, TestResponse, assert_not_logged, event_at, logs, send_to, unique,
};

const GITHUB_USER: &str = "/idp/github/user";

/// The captured log lines of the table's troubles and the renewals' outcomes, to tell a
/// failure's cause (all tests share the capture, so lines of other tests may be among them).
fn table_warnings() -> String {
    logs()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("renew"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// moto's server for the tables: apart from the one the other tests' secrets live in, so that
/// their load does not slow the table past its timeouts (which these tests would read as an
/// outage).
pub(crate) fn table_moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("{e}")))
}
/// Creates the token table `name` in [`table_moto`] and returns a client of it (the
/// environments' way to the table).
pub(crate) async fn create_table(name: &str) -> aws_sdk_dynamodb::Client {
    let client = standin::dynamodb_client(table_moto().endpoint()).await;
    standin::create_token_table(&client, name)
        .await
        .expect("table created in moto");
    client
}
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const GITHUB_APP_SECRET: &str = "github-app-secret-value";

/// A tenant, a GitHub-App-like stand-in GitHub (single-use refresh tokens; a renewal revokes the
/// user's earlier access tokens), and the table the environments share.
struct World {
    app: TestApp,
    table: String,
    /// The admin's way to the table (scans, tampering).
    admin: aws_sdk_dynamodb::Client,
    /// The environments' way to the table: cut, throttle or hang it.
    link: MotoLink,
    /// The environments' client, through `link`.
    dynamodb: aws_sdk_dynamodb::Client,
}

impl World {
    async fn spawn() -> Self {
        Self::spawn_with_keys(Some(json!([KEY]))).await
    }

    async fn spawn_with_keys(keys: Option<serde_json::Value>) -> Self {
        Self::spawn_with_connections(json!({}), keys).await
    }

    /// The world with `more` connections in `IDP_CONNECTIONS` beside the stand-in GitHub.
    async fn spawn_with_connections(
        more: serde_json::Value,
        keys: Option<serde_json::Value>,
    ) -> Self {
        Self::spawn_configured(more, keys, &[]).await
    }

    /// The world with the table's keys in their own secret, as the template makes it: the
    /// secret `id` holds `text` (`None`: no such secret), and the credentials secret has no
    /// `token_store_keys`.
    async fn spawn_with_keys_secret(text: Option<&str>) -> (Self, String) {
        let id = unique("auth0-idp-proxy/table-keys-");
        let world = Self::spawn_configured(
            json!({}),
            None,
            &[("TOKEN_STORE_KEYS_SECRET_ID", id.as_str())],
        )
        .await;
        if let Some(text) = text {
            world.app.write_secret(&id, text).await;
        }
        (world, id)
    }

    /// The world with `more` connections, `keys` as the credentials secret's
    /// `token_store_keys`, and `vars` in the function's environment.
    async fn spawn_configured(
        more: serde_json::Value,
        keys: Option<serde_json::Value>,
        vars: &[(&str, &str)],
    ) -> Self {
        let table = unique("tokens-");
        let mut connections = json!({
            "github": {"api_base": "{github}", "token_url": "{github}/login/oauth/access_token"},
        });
        if let (Some(all), Some(more)) = (connections.as_object_mut(), more.as_object()) {
            all.extend(more.clone());
        }
        let connections = connections.to_string();
        let mut env = vec![
            ("IDP_CONNECTIONS", connections.as_str()),
            ("TOKEN_TABLE", table.as_str()),
        ];
        env.extend_from_slice(vars);
        let app = TestApp::spawn_with(&env, KeyPolicy::default()).await;
        app.github.register_client("github-app", GITHUB_APP_SECRET);
        app.github.set_revoke_on_renewal(true);
        let client_secret = app.client_secret.lock().expect("lock").clone();
        let mut secret = json!({
            "client_id": M2M_CLIENT_ID,
            "client_secret": client_secret,
            "idp_clients": {"github": {"client_id": "github-app", "client_secret": GITHUB_APP_SECRET}},
        });
        if let Some(keys) = keys {
            secret["token_store_keys"] = keys;
        }
        app.put_secret(&secret.to_string()).await;
        let admin = standin::dynamodb_client(table_moto().endpoint()).await;
        standin::create_token_table(&admin, &table)
            .await
            .expect("table created in moto");
        let link = table_moto().link().await.expect("relay to moto");
        let dynamodb = standin::dynamodb_client(&link.endpoint()).await;
        Self {
            app,
            table,
            admin,
            link,
            dynamodb,
        }
    }

    /// The world with `google-oauth2` served through Token Vault by a stand-in Google (tokens
    /// living an hour), the exchange performed by the M2M client.
    async fn spawn_with_vault() -> (Self, standin::Idp) {
        let google = standin::Idp::start_as(standin::Flavor::Google)
            .await
            .expect("stand-in Google starts");
        let more =
            json!({"google-oauth2": {"api_base": google.origin(), "token_source": "token_vault"}});
        let world = Self::spawn_with_connections(more, Some(json!([KEY]))).await;
        let tenant = &world.app.tenant;
        tenant.enable_token_vault("google-oauth2", &google, Duration::from_secs(3600));
        tenant.add_token_vault_client(M2M_CLIENT_ID, None, AUDIENCE);
        (world, google)
    }

    /// Another environment. Table calls may take up to 5 s here, not 1 s: on a loaded test
    /// machine moto can be slow, and a timeout would read as an outage (the hanging-table test
    /// keeps the production timings).
    async fn environment(&self) -> App {
        let patient = TablePolicy {
            call_timeout: Duration::from_secs(5),
            ..TablePolicy::default()
        };
        self.app.environment(&self.dynamodb, patient).await
    }

    /// Another environment, with the production table timings.
    async fn production_environment(&self) -> App {
        self.app
            .environment(&self.dynamodb, TablePolicy::default())
            .await
    }

    /// A user whose GitHub identity holds `access` (expired at the IdP unless `live`) and the
    /// single-use refresh token `refresh`; returns their Auth0 access token.
    fn user(&self, sub: &str, access: &str, refresh: &str, live: bool) -> String {
        let mut profile = standin::profile(sub, &[("github", "4242", access)]);
        profile["identities"][0]["refresh_token"] = json!(refresh);
        let person = json!({"login": "octocat", "for": sub});
        self.app.github.issue_refresh_token(refresh, person.clone());
        self.app.github.grant(access, person);
        if !live {
            self.app.github.expire(access);
        }
        self.app.tenant.add_user(profile);
        self.app.tenant.token(AUDIENCE, sub).sign()
    }

    /// A real `bootstrap` process under its own Runtime API, on this world's table.
    fn real_environment(&self, runtime: &standin::RuntimeApi) -> tokio::process::Child {
        let endpoint = self.link.endpoint();
        crate::binary::start_bootstrap(
            &self.app,
            runtime,
            // Info, not debug: nobody reads the pipes before the end, and the SDKs' debug lines
            // would fill them and block the processes.
            &[
                ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
                ("AWS_LAMBDA_LOG_LEVEL", "info"),
            ],
        )
    }

    /// One call of `path` through a fresh real `bootstrap`: its status and its logs.
    async fn get_real(&self, path: &str, jwt: &str) -> (u16, String) {
        let runtime = standin::RuntimeApi::start().await.expect("runtime API");
        let child = self.real_environment(&runtime);
        let event = crate::helpers::idp_event("GET", path, "", jwt, &[]).to_string();
        let outcome = runtime
            .invoke(&event, Duration::from_secs(10), Duration::from_secs(60))
            .await;
        let logs = crate::binary::output_of(child).await;
        let Some(standin::Outcome::Response(response)) = outcome else {
            panic!("no response: {outcome:?}; logs: {logs}");
        };
        let status = response["statusCode"].as_u64().unwrap_or_default();
        (u16::try_from(status).unwrap_or_default(), logs)
    }

    async fn get(&self, env: &App, path: &str, jwt: &str) -> TestResponse {
        send_to(env, event_at(path, jwt)).await
    }

    /// Every item of the table, as DynamoDB returns it.
    async fn scan(&self) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.admin
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
    }
}

fn assert_ok(response: &TestResponse) {
    assert_eq!(response.status, 200, "{}", response.body);
}

#[tokio::test]
async fn one_client_credentials_exchange_serves_the_whole_fleet() {
    let world = World::spawn().await;
    let envs = [
        world.environment().await,
        world.environment().await,
        world.environment().await,
    ];
    // Three cold starts at once, each prefetching the Management token.
    let budget = Duration::from_secs(5);
    tokio::join!(
        envs[0].prefetch(budget),
        envs[1].prefetch(budget),
        envs[2].prefetch(budget)
    );
    assert_eq!(world.app.tenant.token_calls(), 1, "{}", table_warnings());
    // A fourth environment, started later, reads the table before it would exchange.
    let late = world.environment().await;
    late.prefetch(budget).await;
    assert_eq!(world.app.tenant.token_calls(), 1);
}

#[tokio::test]
async fn a_new_environment_serves_a_known_user_without_auth0() {
    let world = World::spawn().await;
    let jwt = world.user("github|7001", "gho_live_7001", "ghr_7001", true);
    let first = world.environment().await;
    assert_ok(&world.get(&first, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.tenant.user_calls(), 1);
    let exchanges = world.app.tenant.token_calls();

    let second = world.environment().await;
    for _ in 0..5 {
        assert_ok(&world.get(&second, GITHUB_USER, &jwt).await);
    }
    assert_eq!(
        world.app.tenant.user_calls(),
        1,
        "one Management read fleet-wide"
    );
    assert_eq!(world.app.tenant.token_calls(), exchanges, "no new exchange");
    assert_eq!(world.app.github.calls(), 6);
}

#[tokio::test]
async fn users_renewed_by_a_recycled_environment_keep_working() {
    let world = World::spawn().await;
    let jwt = world.user("github|7002", "gho_dead_7002", "ghr_7002", false);
    {
        let renewing = world.environment().await;
        assert_ok(&world.get(&renewing, GITHUB_USER, &jwt).await);
        // The environment is recycled: its memory is gone.
    }
    assert_eq!(world.app.github.grants(), 1);
    let fresh = world.environment().await;
    assert_ok(&world.get(&fresh, GITHUB_USER, &jwt).await);
    assert_eq!(
        world.app.github.grants(),
        1,
        "the renewed token came from the table"
    );

    // The renewed token dies: the next renewal presents the rotated refresh token, not the
    // one Auth0 still holds (which the first grant killed).
    let issued = world.app.github.issued_tokens();
    for token in &issued {
        world.app.github.expire(token);
    }
    let another = world.environment().await;
    assert_ok(&world.get(&another, GITHUB_USER, &jwt).await);
    let presented = world.app.github.presented_refresh_tokens();
    assert_eq!(presented.len(), 2, "{presented:?}");
    assert_eq!(presented[0], "ghr_7002");
    assert!(issued.contains(&presented[1]), "the rotated refresh token");
}

/// Issue 41: the table hands a renewed token on while memory would still use it (its margin is
/// a part of its own lifetime, not a fixed 30 s), and once it has expired the next environment
/// renews it without reading Auth0, which holds only what the fleet renewed from.
#[tokio::test]
async fn short_lived_renewed_tokens_are_shared_and_renewed_without_auth0() {
    let world = World::spawn().await;
    world.app.github.set_token_lifetime(Duration::from_secs(3));
    let jwt = world.user("github|7004", "gho_dead_7004", "ghr_7004", false);
    let renewing = world.environment().await;
    assert_ok(&world.get(&renewing, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.github.grants(), 1);
    assert_eq!(world.app.tenant.user_calls(), 1);

    let second = world.environment().await;
    assert_ok(&world.get(&second, GITHUB_USER, &jwt).await);
    assert_eq!(
        world.app.github.grants(),
        1,
        "a 3 s token with time left is shared"
    );

    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let third = world.environment().await;
    assert_ok(&world.get(&third, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.github.grants(), 2);
    assert_eq!(
        world.app.tenant.user_calls(),
        1,
        "no Auth0 read before the grant"
    );
    let presented = world.app.github.presented_refresh_tokens();
    assert_eq!(presented[0], "ghr_7004");
    assert_ne!(presented[1], "ghr_7004", "the rotated refresh token");
    // The environment that renewed first does the same from its own memory.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_ok(&world.get(&renewing, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.github.grants(), 3);
    assert_eq!(world.app.tenant.user_calls(), 1);
}

#[tokio::test]
async fn three_environments_racing_on_one_expired_token_make_one_grant() {
    let world = World::spawn().await;
    let jwt = world.user("github|7003", "gho_dead_7003", "ghr_7003", false);
    world.app.github.set_token_delay(Duration::from_millis(300));
    let envs = [
        world.environment().await,
        world.environment().await,
        world.environment().await,
    ];
    let (a, b, c) = tokio::join!(
        world.get(&envs[0], GITHUB_USER, &jwt),
        world.get(&envs[1], GITHUB_USER, &jwt),
        world.get(&envs[2], GITHUB_USER, &jwt)
    );
    for response in [&a, &b, &c] {
        assert!(
            response.status == 200,
            "{}; {}",
            response.body,
            table_warnings()
        );
    }
    assert_eq!(world.app.github.grants(), 1, "{}", table_warnings());
    assert_eq!(world.app.github.presented_refresh_tokens(), ["ghr_7003"]);
}

#[tokio::test]
async fn the_table_holds_no_token_or_secret_in_plaintext() {
    let world = World::spawn().await;
    let jwt = world.user("github|7004", "gho_dead_7004", "ghr_7004", false);
    let env = world.environment().await;
    assert_ok(&world.get(&env, GITHUB_USER, &jwt).await);
    let items = world.scan().await;
    assert!(
        items.len() >= 2,
        "the management token and the user's tokens: {items:?}"
    );
    let mut secrets: Vec<String> = world.app.github.issued_tokens();
    secrets.extend(world.app.tenant.issued_tokens());
    secrets.extend(["gho_dead_7004", "ghr_7004", GITHUB_APP_SECRET, KEY].map(str::to_owned));
    secrets.push(world.app.client_secret.lock().expect("lock").clone());
    let dump = format!("{items:?}");
    for item in &items {
        for value in item.values() {
            let bytes: Vec<u8> = match value {
                AttributeValue::B(blob) => blob.as_ref().to_vec(),
                AttributeValue::S(text) => text.as_bytes().to_vec(),
                _ => continue,
            };
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "a secret value is stored in plaintext"
                );
            }
        }
    }
    assert!(!dump.contains("gho_"), "no token-like text in the table");
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_not_logged(&refs);
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_users_item_does_not_open() {
    let world = World::spawn().await;
    let alice = world.user("github|7005", "gho_live_alice", "ghr_alice", true);
    let bob = world.user("github|7006", "gho_live_bob", "ghr_bob", true);
    let env = world.environment().await;
    assert_ok(&world.get(&env, GITHUB_USER, &alice).await);
    let items = world.scan().await;
    let alice_item = items
        .iter()
        .find(|i| {
            i["pk"]
                .as_s()
                .is_ok_and(|pk| pk == "idp#github#github|7005")
        })
        .expect("alice's item");
    // An attacker with table access copies Alice's value into Bob's item.
    let mut forged = alice_item.clone();
    forged.insert(
        "pk".into(),
        AttributeValue::S("idp#github#github|7006".into()),
    );
    world
        .admin
        .put_item()
        .table_name(&world.table)
        .set_item(Some(forged))
        .send()
        .await
        .expect("forged item written");
    let reads = world.app.tenant.user_calls();
    let fresh = world.environment().await;
    let response = world.get(&fresh, GITHUB_USER, &bob).await;
    assert_ok(&response);
    assert!(
        response.body.contains("github|7006"),
        "Bob's own profile: {}",
        response.body
    );
    assert_eq!(
        world.app.tenant.user_calls(),
        reads + 1,
        "Bob's token came from Auth0"
    );
    let last = world.app.github.requests().pop().expect("a GitHub call");
    assert_eq!(last.header("authorization"), Some("Bearer gho_live_bob"));
    assert!(logs().contains("token table value ignored"));
}

#[tokio::test]
async fn unlinked_connections_and_identities_cost_one_management_read() {
    let world = World::spawn().await;
    let jwt = world.user("github|7007", "gho_live_7007", "ghr_7007", true);
    let env = world.environment().await;
    for _ in 0..20 {
        world
            .get(&env, "/idp/google-oauth2/oauth2/v3/userinfo", &jwt)
            .await
            .assert_error(404, "identity_not_linked");
    }
    assert_eq!(world.app.tenant.user_calls(), 1);
    // Another environment learns it from the table.
    let other = world.environment().await;
    world
        .get(&other, "/idp/google-oauth2/oauth2/v3/userinfo", &jwt)
        .await
        .assert_error(404, "identity_not_linked");
    assert_eq!(world.app.tenant.user_calls(), 1);
    for _ in 0..20 {
        assert_ok(&world.get(&env, "/identities", &jwt).await);
    }
    assert_eq!(world.app.tenant.user_calls(), 1);
}

#[tokio::test]
async fn one_user_cannot_spend_more_than_their_budget_of_management_reads() {
    let world = World::spawn().await;
    let jwt = world.user("github|7008", "gho_live_7008", "ghr_7008", true);
    // Each environment's memory is empty, so only the shared budget bounds the reads. The
    // budget counts per wall-clock minute: a minute may turn during the loop, refilling it once.
    let mut refused = None;
    for _ in 0..25 {
        let env = world.environment().await;
        let response = world.get(&env, "/identities", &jwt).await;
        if response.status == 429 {
            refused = Some(response);
            break;
        }
        assert_ok(&response);
    }
    let refused = refused.expect("the budget ran out");
    refused.assert_error(429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    let reads = world.app.tenant.user_calls();
    assert!((10..=20).contains(&reads), "{reads} reads");
}

#[tokio::test]
async fn without_usable_keys_the_table_is_not_used() {
    let world = World::spawn_with_keys(Some(json!(["bm90IDMyIGJ5dGVz"]))).await;
    let jwt = world.user("github|7009", "gho_live_7009", "ghr_7009", true);
    let env = world.environment().await;
    assert_ok(&world.get(&env, GITHUB_USER, &jwt).await);
    assert!(
        world.scan().await.is_empty(),
        "nothing written without keys"
    );
    let logs = logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("token_store_keys") && l.contains("ERROR")),
        "an error log line names token_store_keys"
    );
}

/// One call of `path` by `env`, with a fresh request id: the answer and its summary line.
async fn get_traced(env: &App, path: &str, jwt: &str) -> (TestResponse, serde_json::Value) {
    let (request, id) = crate::metrics::with_request_id(event_at(path, jwt));
    let response = send_to(env, request).await;
    let line = crate::metrics::summary(&id);
    crate::metrics::assert_emf(&line);
    (response, line)
}

/// Asserts that the summary `line` counts the table's keys as unusable (`true`) or says nothing
/// of them (`false`).
fn assert_keys_unusable(line: &serde_json::Value, unusable: bool) {
    let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .any(|m| m["Name"] == "TokenTableKeysUnusable");
    assert_eq!(declared, unusable, "{line}");
    if unusable {
        assert_eq!(line["TokenTableKeysUnusable"], 1, "{line}");
    } else {
        assert!(line.get("TokenTableKeysUnusable").is_none(), "{line}");
    }
}

#[tokio::test]
async fn missing_or_bad_token_store_keys_are_a_metric_on_every_call_and_good_ones_are_not() {
    for (keys, unusable) in [
        (None, true),
        (Some(json!(["bm90IDMyIGJ5dGVz"])), true),
        (Some(json!("one-key")), true),
        (Some(json!([KEY])), false),
    ] {
        let world = World::spawn_with_keys(keys.clone()).await;
        let jwt = world.user("github|7020", "gho_live_7020", "ghr_7020", true);
        let env = world.environment().await;
        // Every call that wanted the table counts, not only the first (which alone is logged).
        for _ in 0..2 {
            let (response, line) = get_traced(&env, GITHUB_USER, &jwt).await;
            assert_ok(&response);
            assert_keys_unusable(&line, unusable);
            assert!(line.get("TokenTableDegraded").is_none(), "{line}");
        }
        assert_eq!(world.scan().await.is_empty(), unusable, "{keys:?}");
    }
}

/// As the template deploys it: the keys from their own secret, none in the credentials.
#[tokio::test]
async fn the_keys_come_from_the_generated_secret_when_the_function_is_told_where() {
    const GENERATED: &str = "Zx8mQ2rT7vLp0aNc4WbY9sKd3HfJ6uEo1iGq5tRlXyVnMzBwCe2kPj8hSa7dUf0g";
    let (world, _) = World::spawn_with_keys_secret(Some(
        &json!({"key": GENERATED, "previous_keys": []}).to_string(),
    ))
    .await;
    let jwt = world.user("github|7021", "gho_live_7021", "ghr_7021", true);
    let first = world.environment().await;
    let (response, line) = get_traced(&first, GITHUB_USER, &jwt).await;
    assert_ok(&response);
    assert_keys_unusable(&line, false);
    assert!(!world.scan().await.is_empty(), "the table is used");
    // Another environment opens what the first sealed: no Management read for the user.
    let reads = world.app.tenant.user_calls();
    let second = world.environment().await;
    assert_ok(&world.get(&second, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.tenant.user_calls(), reads, "{}", table_warnings());
    assert_not_logged(&[GENERATED]);
}

/// A stack that sealed with `token_store_keys` and is updated to the template's keys secret:
/// what the old keys sealed still opens, what is sealed now is sealed with the new key.
#[tokio::test]
async fn moving_from_token_store_keys_to_the_keys_secret_loses_no_item() {
    const GENERATED: &str = "Pq3Lm8Vx2Rt6Yb0Nc4Hj7Kd1Wf5Gs9Za3Ue8Io2Qy6Tn0Mb4Vc7Xl1Rh5Sk9Dp3F";
    let world = World::spawn().await;
    let jwt = world.user("github|7023", "gho_live_7023", "ghr_7023", true);
    let before = world.environment().await;
    assert_ok(&world.get(&before, GITHUB_USER, &jwt).await);
    let reads = world.app.tenant.user_calls();

    let id = unique("auth0-idp-proxy/table-keys-");
    world
        .app
        .write_secret(&id, &json!({"key": GENERATED}).to_string())
        .await;
    let after = world
        .app
        .environment_with(
            &world.dynamodb,
            TablePolicy {
                call_timeout: Duration::from_secs(5),
                ..TablePolicy::default()
            },
            &[("TOKEN_STORE_KEYS_SECRET_ID", id.as_str())],
        )
        .await;
    let (response, line) = get_traced(&after, GITHUB_USER, &jwt).await;
    assert_ok(&response);
    assert_keys_unusable(&line, false);
    assert_eq!(
        world.app.tenant.user_calls(),
        reads,
        "the old key still opens the user's item: {}",
        table_warnings()
    );
}

#[tokio::test]
async fn an_unusable_or_unreadable_keys_secret_is_a_metric_and_the_function_carries_on() {
    let weak = json!({"key": "too-short"}).to_string();
    for text in [Some(weak.as_str()), Some("not JSON"), None] {
        let (world, _) = World::spawn_with_keys_secret(text).await;
        let jwt = world.user("github|7022", "gho_live_7022", "ghr_7022", true);
        let env = world.environment().await;
        let (response, line) = get_traced(&env, GITHUB_USER, &jwt).await;
        assert_ok(&response);
        assert_keys_unusable(&line, true);
        assert!(world.scan().await.is_empty(), "{text:?}: nothing written");
    }
    assert!(
        logs().lines().any(|l| l.contains("ERROR")
            && l.contains("TOKEN_STORE_KEYS_SECRET_ID")
            && l.contains("running without the table")),
        "the error line names the variable: {}",
        table_warnings()
    );
    assert_not_logged(&["too-short"]);
}

/// The function answers within `limit` and correctly while the table is in `mode`.
async fn carries_on_while_the_table_is(mode: Option<LinkMode>, limit: Duration) {
    let world = World::spawn().await;
    let jwt = world.user("github|7010", "gho_dead_7010", "ghr_7010", false);
    match mode {
        Some(mode) => world.link.set_mode(mode),
        None => world.link.cut().await,
    }
    let env = world.production_environment().await;
    let started = Instant::now();
    assert_ok(&world.get(&env, GITHUB_USER, &jwt).await);
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
    // Memory still works as without the table: a repeat call is one IdP call.
    let calls = world.app.github.calls();
    assert_ok(&world.get(&env, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.github.calls(), calls + 1);
    assert!(logs().contains("token table degraded"));
}

#[tokio::test]
async fn dynamodb_down_degrades_to_memory_and_auth0() {
    carries_on_while_the_table_is(None, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dynamodb_throttling_degrades_to_memory_and_auth0() {
    carries_on_while_the_table_is(Some(LinkMode::Throttled), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_hanging_dynamodb_degrades_within_the_deadline() {
    carries_on_while_the_table_is(Some(LinkMode::Hanging), Duration::from_secs(8)).await;
}

#[tokio::test]
async fn three_real_bootstraps_share_one_exchange_and_one_grant_through_the_table() {
    use crate::binary::output_of;
    use crate::helpers::{PLACEHOLDER, event_text};
    use standin::{Outcome, RuntimeApi};

    let world = World::spawn().await;
    let jwt = world.user("github|7011", "gho_dead_7011", "ghr_7011", false);
    world.app.github.set_token_delay(Duration::from_millis(300));
    let mut runtimes = Vec::new();
    let mut children = Vec::new();
    for _ in 0..3 {
        let runtime = RuntimeApi::start().await.expect("runtime API");
        children.push(world.real_environment(&runtime));
        runtimes.push(runtime);
    }
    let event = event_text("http-api-idp-github-user.json").replace(PLACEHOLDER, &jwt);
    let (budget, wait) = (Duration::from_secs(10), Duration::from_secs(60));
    let (a, b, c) = tokio::join!(
        runtimes[0].invoke(&event, budget, wait),
        runtimes[1].invoke(&event, budget, wait),
        runtimes[2].invoke(&event, budget, wait)
    );
    let mut logs = String::new();
    for child in children {
        logs.push_str(&output_of(child).await);
    }
    for outcome in [a, b, c] {
        let Some(Outcome::Response(response)) = outcome else {
            panic!("no response: {outcome:?}; logs: {logs}");
        };
        assert_eq!(response["statusCode"], 200, "{response}; logs: {logs}");
    }
    assert_eq!(
        world.app.tenant.token_calls(),
        1,
        "one exchange for the fleet"
    );
    assert_eq!(world.app.github.grants(), 1, "one grant for the fleet");
    assert_eq!(world.app.github.presented_refresh_tokens(), ["ghr_7011"]);
    assert!(!logs.contains("token table degraded"), "{logs}");
    for secret in world.app.github.issued_tokens() {
        assert!(!logs.contains(&secret), "an IdP token reached the logs");
    }
}

/// Issue 26: a token from the table that the IdP refuses is read again from Auth0 (after the
/// table) before the user is sent to log in again; one read from Auth0 just now is not.
#[tokio::test]
async fn a_refused_token_from_the_table_is_replaced_by_auth0s_newer_one() {
    let world = World::spawn().await;
    let sub = "github|7012";
    // A GitHub OAuth App's identity: no refresh token to fall back on.
    let person = json!({"login": "octocat", "for": sub});
    world.app.github.grant("gho_t1_7012", person.clone());
    world
        .app
        .tenant
        .add_user(standin::profile(sub, &[("github", "4242", "gho_t1_7012")]));
    let jwt = world.app.tenant.token(AUDIENCE, sub).sign();
    let first = world.environment().await;
    assert_ok(&world.get(&first, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.tenant.user_calls(), 1);

    // The user logs in again: Auth0 holds t2, GitHub revoked t1 (still in the table).
    world.app.github.grant("gho_t2_7012", person);
    world.app.github.expire("gho_t1_7012");
    world
        .app
        .tenant
        .add_user(standin::profile(sub, &[("github", "4242", "gho_t2_7012")]));
    let fresh = world.environment().await;
    assert_ok(&world.get(&fresh, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.tenant.user_calls(), 2, "Auth0 read after the 401");
    let last = world.app.github.requests().pop().expect("a GitHub call");
    assert_eq!(last.header("authorization"), Some("Bearer gho_t2_7012"));
    // The table now holds t2 for the fleet.
    let another = world.environment().await;
    assert_ok(&world.get(&another, GITHUB_USER, &jwt).await);
    assert_eq!(world.app.tenant.user_calls(), 2);

    // A token read from Auth0 within the invocation and refused is not read again.
    let dead = "github|7013";
    world
        .app
        .github
        .grant("gho_dead_7013", json!({"for": dead}));
    world.app.github.expire("gho_dead_7013");
    world.app.tenant.add_user(standin::profile(
        dead,
        &[("github", "4243", "gho_dead_7013")],
    ));
    let dead_jwt = world.app.tenant.token(AUDIENCE, dead).sign();
    let reads = world.app.tenant.user_calls();
    world
        .get(&another, GITHUB_USER, &dead_jwt)
        .await
        .assert_error(403, "reconsent_required");
    assert_eq!(world.app.tenant.user_calls(), reads + 1);
}

/// Issue 26 for Token Vault: a token from the table that the IdP refuses is exchanged afresh
/// (Token Vault's "read from Auth0") before the user is sent to connect the account again.
#[tokio::test]
async fn a_refused_token_vault_token_from_the_table_is_exchanged_afresh() {
    let (world, google) = World::spawn_with_vault().await;
    let tenant = &world.app.tenant;
    let sub = "google-oauth2|7020";
    tenant.connect_account(sub, "google-oauth2", json!({"for": sub}));
    let jwt = tenant.token(AUDIENCE, sub).sign();
    const USERINFO: &str = "/idp/google-oauth2/oauth2/v3/userinfo";
    let bearer = || {
        let last = google.requests().pop().expect("a Google call");
        last.header("authorization").expect("bearer").to_owned()
    };

    let first = world.environment().await;
    assert_ok(&world.get(&first, USERINFO, &jwt).await);
    assert_eq!(tenant.vault_exchanges(), 1);
    let t1 = bearer();

    // Auth0 renewed the token; Google revoked the one the table holds.
    let t2 = tenant
        .renew_vault_token(sub, "google-oauth2")
        .expect("connected");
    google.expire(t1.trim_start_matches("Bearer "));
    let fresh = world.environment().await;
    assert_ok(&world.get(&fresh, USERINFO, &jwt).await);
    assert_eq!(
        tenant.vault_exchanges(),
        2,
        "a fresh exchange after the 401"
    );
    assert_eq!(bearer(), format!("Bearer {t2}"));
    // The table now holds t2 for the fleet: no exchange for another environment.
    let another = world.environment().await;
    assert_ok(&world.get(&another, USERINFO, &jwt).await);
    assert_eq!(tenant.vault_exchanges(), 2);

    // A token exchanged within the invocation and refused is not exchanged again.
    google.expire(&t2);
    let last = world.environment().await;
    world
        .get(&last, USERINFO, &jwt)
        .await
        .assert_error(403, "reconsent_required");
    assert_eq!(
        tenant.vault_exchanges(),
        3,
        "the table's t2, then one exchange"
    );
}

/// Issue 26 through real `bootstrap` processes sharing one table in moto: a token of the table
/// that GitHub refuses is replaced by Auth0's newer one, and a refused Token Vault token by a
/// fresh exchange, each in a fresh process.
#[tokio::test]
async fn real_bootstraps_replace_a_refused_token_from_the_table_with_auth0s_newer_one() {
    let (world, google) = World::spawn_with_vault().await;
    let tenant = &world.app.tenant;

    // Identities: t1 into the table, a new login (t2 in Auth0, t1 revoked), a fresh process.
    let sub = "github|7030";
    let person = json!({"login": "octocat", "for": sub});
    world.app.github.grant("gho_t1_7030", person.clone());
    tenant.add_user(standin::profile(sub, &[("github", "4242", "gho_t1_7030")]));
    let jwt = tenant.token(AUDIENCE, sub).sign();
    let (status, logs) = world.get_real(GITHUB_USER, &jwt).await;
    assert_eq!(status, 200, "{logs}");
    world.app.github.grant("gho_t2_7030", person);
    world.app.github.expire("gho_t1_7030");
    tenant.add_user(standin::profile(sub, &[("github", "4242", "gho_t2_7030")]));
    let (status, logs) = world.get_real(GITHUB_USER, &jwt).await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(tenant.user_calls(), 2, "Auth0 read after the 401");
    let last = world.app.github.requests().pop().expect("a GitHub call");
    assert_eq!(last.header("authorization"), Some("Bearer gho_t2_7030"));
    assert!(!logs.contains("gho_t"), "no token in the logs");

    // Token Vault: t1 exchanged into the table, renewed by Auth0 and revoked by Google.
    let vault_sub = "google-oauth2|7031";
    let t1 = tenant.connect_account(vault_sub, "google-oauth2", json!({"for": vault_sub}));
    let vault_jwt = tenant.token(AUDIENCE, vault_sub).sign();
    const USERINFO: &str = "/idp/google-oauth2/oauth2/v3/userinfo";
    let (status, logs) = world.get_real(USERINFO, &vault_jwt).await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(tenant.vault_exchanges(), 1);
    let t2 = tenant
        .renew_vault_token(vault_sub, "google-oauth2")
        .expect("connected");
    google.expire(&t1);
    let (status, logs) = world.get_real(USERINFO, &vault_jwt).await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(
        tenant.vault_exchanges(),
        2,
        "a fresh exchange after the 401"
    );
    let last = google.requests().pop().expect("a Google call");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {t2}").as_str())
    );
    for token in [&t1, &t2] {
        assert!(!logs.contains(token.as_str()), "no token in the logs");
    }
}
