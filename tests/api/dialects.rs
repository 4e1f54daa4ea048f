//! Provider dialects other than `Authorization: Bearer`: X's OAuth 1.0a signatures, verified by
//! a stand-in X API that checks them with oauthlib (not the function's own implementation), and
//! a token in another header (Shopify's `X-Shopify-Access-Token`); through the handler and the
//! real binary, each with and without the fleet table.

use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::fleet::TablePolicy;
use serde_json::{Value, json};
use standin::{Idp, M2M_CLIENT_ID, XApi};

use crate::binary::RealBinary;
use crate::helpers::{
    AUDIENCE, LambdaAnswer, TestApp, TestResponse, assert_not_logged, idp_event, send_to, unique,
};

const CONSUMER_KEY: &str = "x-app-consumer-key";
const CONSUMER_SECRET: &str = "x-app-consumer-secret-never-sent";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SHOP_HEADER: &str = "x-shopify-access-token";

/// A tenant, a stand-in X API (OAuth 1.0a verified by oauthlib, OAuth 2.0 bearer tokens) and a
/// Shopify-like API that reads its token from `X-Shopify-Access-Token`; the X app's consumer
/// key and secret in the secret's `idp_clients.twitter`.
struct World {
    app: TestApp,
    x: XApi,
    shop: Idp,
    /// The environments' way to the fleet table, where one is configured.
    dynamodb: Option<aws_sdk_dynamodb::Client>,
    table: Option<String>,
}

/// One user's credentials at the stand-ins, to look for in logs and answers.
struct Person {
    jwt: String,
    secrets: Vec<String>,
}

impl World {
    async fn spawn(with_table: bool, signing_client: bool) -> Self {
        let x = XApi::start().unwrap_or_else(|e| panic!("{e}"));
        x.add_consumer(CONSUMER_KEY, CONSUMER_SECRET)
            .expect("consumer registered");
        let shop = Idp::start().await.expect("stand-in shop starts");
        shop.set_token_header(SHOP_HEADER);
        let connections = json!({
            "twitter": {"api_base": x.origin(), "allow": ["GET /2/**", "POST /2/tweets"]},
            "shop": {"api_base": shop.origin(), "allow": ["GET /admin/api/**", "GET /echo/**"],
                     "token_header": {"name": "X-Shopify-Access-Token", "format": "{token}"}},
        })
        .to_string();
        let table = with_table.then(|| unique("dialects-"));
        let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
        if let Some(table) = &table {
            vars.push(("TOKEN_TABLE", table.as_str()));
        }
        let app = TestApp::spawn_with(&vars, KeyPolicy::default()).await;
        let client_secret = app.client_secret.lock().expect("lock").clone();
        let mut secret = json!({"client_id": M2M_CLIENT_ID, "client_secret": client_secret});
        if signing_client {
            secret["idp_clients"] =
                json!({"twitter": {"client_id": CONSUMER_KEY, "client_secret": CONSUMER_SECRET}});
        }
        if with_table {
            secret["token_store_keys"] = json!([KEY]);
        }
        app.put_secret(&secret.to_string()).await;
        let dynamodb = match &table {
            Some(table) => Some(crate::fleet::create_table(table).await),
            None => None,
        };
        Self {
            app,
            x,
            shop,
            dynamodb,
            table,
        }
    }

    /// A user of X in its OAuth 1.0a mode: `identities[]` holds `access_token_secret`.
    fn oauth1_user(&self, id: &str) -> Person {
        let sub = format!("twitter|{id}");
        let token = format!("{id}-oauth1-access-token");
        let secret = unique("oauth1-token-secret-");
        self.x
            .add_oauth1_token(&token, &secret, json!({"id": id, "username": "jack"}))
            .expect("token registered");
        self.add(&sub, json!({"provider": "twitter", "connection": "twitter", "user_id": id,
                              "access_token": token, "access_token_secret": secret, "isSocial": true}));
        Person {
            jwt: self.app.tenant.token(AUDIENCE, &sub).sign(),
            secrets: vec![token, secret],
        }
    }

    /// A user of X in its OAuth 2.0 mode: a bearer token, no secret.
    fn oauth2_user(&self, id: &str) -> Person {
        let sub = format!("twitter|{id}");
        let token = unique("x-oauth2-bearer-");
        self.x
            .add_bearer_token(&token, json!({"id": id, "username": "bearer"}))
            .expect("token registered");
        self.add(
            &sub,
            json!({"provider": "twitter", "connection": "twitter", "user_id": id,
                              "access_token": token, "isSocial": true}),
        );
        Person {
            jwt: self.app.tenant.token(AUDIENCE, &sub).sign(),
            secrets: vec![token],
        }
    }

    /// A user of the Shopify-like connection.
    fn shop_user(&self, id: &str) -> Person {
        let sub = format!("shopify|{id}");
        let token = unique("shpat_");
        self.shop.grant(&token, json!({"shop": "acme", "for": sub}));
        self.add(
            &sub,
            json!({"provider": "shopify", "connection": "shop", "user_id": id,
                              "access_token": token, "isSocial": true}),
        );
        Person {
            jwt: self.app.tenant.token(AUDIENCE, &sub).sign(),
            secrets: vec![token],
        }
    }

    fn add(&self, sub: &str, identity: Value) {
        self.app
            .tenant
            .add_user(json!({"user_id": sub, "identities": [identity]}));
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

/// `GET {path}?{query}` by `jwt`.
fn get(path: &str, query: &str, jwt: &str) -> Value {
    idp_event("GET", path, query, jwt, &[])
}

/// A form `POST` of `body` to `path` by `jwt`.
fn post_form(path: &str, body: &str, jwt: &str) -> Value {
    let form = json!("application/x-www-form-urlencoded");
    let mut event = idp_event("POST", path, "", jwt, &[("content-type", form)]);
    event["body"] = json!(body);
    event
}

async fn send(app: &auth0_idp_proxy::App, event: &Value) -> TestResponse {
    send_to(
        app,
        lambda_http::request::from_str(&event.to_string()).expect("event"),
    )
    .await
}

/// Asserts that no answer, header or log line holds any of `person`'s secrets or the consumer
/// secret.
fn assert_hidden(person: &Person, answers: &[&TestResponse]) {
    for answer in answers {
        let headers = format!("{:?}", answer.headers);
        for secret in person
            .secrets
            .iter()
            .map(String::as_str)
            .chain([CONSUMER_SECRET])
        {
            assert!(!answer.body.contains(secret), "a secret reached the caller");
            assert!(!headers.contains(secret), "a secret reached a header");
        }
    }
    let mut secrets: Vec<&str> = person.secrets.iter().map(String::as_str).collect();
    secrets.push(CONSUMER_SECRET);
    assert_not_logged(&secrets);
}

/// Asserts that every request the stand-in X received was verified as `via`, with a nonce
/// never used before.
fn assert_verified(x: &XApi, via: &str, count: usize) -> Vec<Value> {
    let requests = x.requests().expect("requests");
    assert_eq!(requests.len(), count, "{requests:#?}");
    for request in &requests {
        assert_eq!(request["verified"], via, "{request:#?}");
    }
    let nonces: std::collections::HashSet<&str> = requests
        .iter()
        .filter_map(|r| r["nonce"].as_str())
        .collect();
    if via == "oauth1" {
        assert_eq!(nonces.len(), count, "a nonce was used twice");
    }
    requests
}

#[tokio::test]
async fn x_oauth1_calls_are_signed_as_oauthlib_verifies_and_oauth2_ones_carry_the_bearer() {
    let world = World::spawn(false, true).await;
    let person = world.oauth1_user("42");
    let me = send(
        &world.app.app,
        &get(
            "/idp/twitter/2/users/me",
            "user.fields=id%2Cname",
            &person.jwt,
        ),
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["via"], "oauth1");
    assert_eq!(me.json()["data"]["id"], "42");
    assert_eq!(me.json()["query"]["user.fields"], "id,name");
    // The cached token again: a fresh nonce, or the stand-in would refuse it as a replay.
    let again = send(
        &world.app.app,
        &get("/idp/twitter/2/users/me", "", &person.jwt),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    // A form body's parameters are signed (oauthlib includes them in the base string).
    let body =
        "text=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21&reply=none";
    let tweet = send(
        &world.app.app,
        &post_form("/idp/twitter/2/tweets", body, &person.jwt),
    )
    .await;
    assert_eq!(tweet.status, 200, "{}", tweet.body);
    assert_eq!(
        tweet.json()["form"]["text"],
        "Hello Ladies + Gentlemen, a signed OAuth request!"
    );
    let requests = assert_verified(&world.x, "oauth1", 3);
    assert_eq!(requests[0]["scheme"], "OAuth");
    let signed = requests[2]["signed_params"].to_string();
    assert!(
        signed.contains("\"text\"") && signed.contains("\"reply\""),
        "{signed}"
    );
    assert_hidden(&person, &[&me, &again, &tweet]);

    // The same connection in X's OAuth 2.0 mode: no secret, so the bearer token.
    let bearer = world.oauth2_user("43");
    let me = send(
        &world.app.app,
        &get("/idp/twitter/2/users/me", "", &bearer.jwt),
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["via"], "oauth2");
    let last = world
        .x
        .requests()
        .expect("requests")
        .pop()
        .expect("one more");
    assert_eq!(last["scheme"], "Bearer");
    assert_hidden(&bearer, &[&me]);
}

#[tokio::test]
async fn a_retried_oauth1_call_is_signed_afresh() {
    let world = World::spawn(false, true).await;
    let person = world.oauth1_user("47");
    world.x.fail_next(1).expect("one failure");
    let me = send(
        &world.app.app,
        &get("/idp/twitter/2/users/me", "", &person.jwt),
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    // Both attempts verified, with two nonces: the same one again would be refused as a replay.
    assert_verified(&world.x, "oauth1", 2);
    assert_hidden(&person, &[&me]);
}

#[tokio::test]
async fn an_oauth1_identity_without_its_apps_client_is_not_called() {
    let world = World::spawn(false, false).await;
    let person = world.oauth1_user("44");
    let me = send(
        &world.app.app,
        &get("/idp/twitter/2/users/me", "", &person.jwt),
    )
    .await;
    me.assert_error(503, "credentials_unavailable");
    assert!(
        me.json()["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("idp_clients.twitter")
    );
    assert!(
        world.x.requests().expect("requests").is_empty(),
        "an unsigned call went out"
    );
    assert_hidden(&person, &[&me]);
}

#[tokio::test]
async fn a_token_header_connection_sends_its_header_and_no_authorization() {
    let world = World::spawn(false, true).await;
    let person = world.shop_user("7");
    let shop = send(
        &world.app.app,
        &get("/idp/shop/admin/api/2025-01/shop.json", "", &person.jwt),
    )
    .await;
    assert_eq!(shop.status, 200, "{}", shop.body);
    let sent = world.shop.requests().pop().expect("a request");
    assert_eq!(sent.header(SHOP_HEADER), Some(person.secrets[0].as_str()));
    assert_eq!(sent.header("authorization"), None);
    // An answer that echoes the header (and so the token) is refused, never passed on.
    let echo = send(
        &world.app.app,
        &get("/idp/shop/echo/headers", "", &person.jwt),
    )
    .await;
    echo.assert_error(502, "upstream_error");
    assert_hidden(&person, &[&shop, &echo]);
}

#[tokio::test]
async fn both_dialects_work_with_the_fleet_table_and_the_secret_survives_it() {
    let world = World::spawn(true, true).await;
    let person = world.oauth1_user("45");
    let merchant = world.shop_user("8");
    let first = world.environment().await;
    let x = send(&first, &get("/idp/twitter/2/users/me", "", &person.jwt)).await;
    assert_eq!(x.status, 200, "{}", x.body);
    let shop = send(
        &first,
        &get("/idp/shop/admin/api/2025-01/shop.json", "", &merchant.jwt),
    )
    .await;
    assert_eq!(shop.status, 200, "{}", shop.body);

    // A new environment takes both from the table, without reading Auth0: the token secret
    // came through the table, or oauthlib would refuse the signature.
    let reads = world.app.tenant.user_calls();
    let second = world.environment().await;
    let x = send(&second, &get("/idp/twitter/2/users/me", "", &person.jwt)).await;
    assert_eq!(x.status, 200, "{}", x.body);
    let shop = send(
        &second,
        &get("/idp/shop/admin/api/2025-01/shop.json", "", &merchant.jwt),
    )
    .await;
    assert_eq!(shop.status, 200, "{}", shop.body);
    assert_eq!(world.app.tenant.user_calls(), reads, "Auth0 was read again");
    assert_verified(&world.x, "oauth1", 2);
    assert_eq!(world.shop.requests().len(), 2);

    // Sealed: no token or secret in the table's items.
    let admin = standin::dynamodb_client(crate::fleet::table_moto().endpoint()).await;
    let items = admin
        .scan()
        .table_name(world.table.as_deref().expect("table"))
        .send()
        .await
        .expect("scan");
    let text = format!("{:?}", items.items);
    for secret in person.secrets.iter().chain(&merchant.secrets) {
        assert!(
            !text.contains(secret.as_str()),
            "a token in plaintext in the table"
        );
    }
    assert_hidden(&person, &[&x]);
    assert_hidden(&merchant, &[&shop]);
}

/// Both dialects through the real binary, with the fleet table when `with_table`.
async fn through_the_real_binary(with_table: bool) {
    let world = World::spawn(with_table, true).await;
    let person = world.oauth1_user("46");
    let merchant = world.shop_user("9");
    let endpoint = crate::fleet::table_moto().endpoint().to_owned();
    let extra: &[(&str, &str)] = if with_table {
        &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())]
    } else {
        &[]
    };
    let real = RealBinary::start(&world.app, extra).await;
    let check = |answer: &LambdaAnswer, via: &str| {
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        if !via.is_empty() {
            assert_eq!(answer.json()["via"], via);
        }
    };
    let x = real
        .invoke(&get("/idp/twitter/2/users/me", "", &person.jwt))
        .await;
    check(&x, "oauth1");
    let tweet = real
        .invoke(&post_form(
            "/idp/twitter/2/tweets",
            "text=hi%20there",
            &person.jwt,
        ))
        .await;
    check(&tweet, "oauth1");
    let shop = real
        .invoke(&get(
            "/idp/shop/admin/api/2025-01/shop.json",
            "",
            &merchant.jwt,
        ))
        .await;
    check(&shop, "");
    let logs = real.logs().await;
    assert_verified(&world.x, "oauth1", 2);
    let sent = world.shop.requests().pop().expect("a request");
    assert_eq!(sent.header(SHOP_HEADER), Some(merchant.secrets[0].as_str()));
    assert_eq!(sent.header("authorization"), None);
    assert!(logs.contains("idp"), "the binary logged");
    for answer in [&x, &tweet, &shop] {
        let text = format!(
            "{:?} {}",
            answer.headers,
            String::from_utf8_lossy(&answer.body)
        );
        for secret in person.secrets.iter().chain(&merchant.secrets) {
            assert!(
                !text.contains(secret.as_str()),
                "a secret reached the caller"
            );
            assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        }
        assert!(!text.contains(CONSUMER_SECRET) && !logs.contains(CONSUMER_SECRET));
    }
}

#[tokio::test]
async fn the_real_binary_signs_for_x_and_sends_the_token_header() {
    through_the_real_binary(false).await;
}

#[tokio::test]
async fn the_real_binary_speaks_both_dialects_with_the_fleet_table() {
    through_the_real_binary(true).await;
}
