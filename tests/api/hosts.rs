//! The per-user API host dialect: a Salesforce-like connection whose host is the user's org (the
//! root profile's `urls.custom_domain`), a Shopify-like one whose host is the shop (the linked
//! identity's `profileData.myshopify_domain`) with its `X-Shopify-Access-Token` header; and every
//! odd or foreign host refused with no upstream call and no token leased; and Shopify's expiring
//! tokens renewed at each user's own shop's token endpoint. The stand-in origin
//! (`api_host_origin`) receives `/<checked host>/<path>`, token grants included, so the host
//! chosen is on the record.

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::{Idp, M2M_CLIENT_ID};

use crate::binary::RealBinary;
use crate::helpers::{
    AUDIENCE, TestApp, TestResponse, assert_not_logged, idp_event, send_to, unique,
};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The Shopify app's credentials, for refresh grants at each shop.
const SHOP_APP: &str = "shopify-app";
const SHOP_APP_SECRET: &str = "shop app secret";

struct World {
    app: TestApp,
    salesforce: Idp,
    shop: Idp,
    /// The fleet table, where one is configured.
    table: Option<String>,
}

impl World {
    async fn spawn() -> Self {
        Self::spawn_with(false).await
    }

    /// With the fleet table (moto's DynamoDB) when `with_table`.
    async fn spawn_with(with_table: bool) -> Self {
        let salesforce = Idp::start().await.expect("stand-in Salesforce");
        let shop = Idp::start().await.expect("stand-in Shopify");
        shop.set_token_header("x-shopify-access-token");
        let connections = json!({
            "salesforce": {"api_host_origin": salesforce.origin(),
                           "allow": ["GET /services/data/**", "GET /user/repos", "GET /redirect"]},
            "shopify": {"api_host_origin": shop.origin()},
        })
        .to_string();
        let table = with_table.then(|| unique("hosts-"));
        let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
        if let Some(table) = &table {
            vars.push(("TOKEN_TABLE", table.as_str()));
        }
        let app = TestApp::spawn_with(&vars, KeyPolicy::default()).await;
        let client_secret = app.client_secret.lock().expect("lock").clone();
        let mut secret = json!({"client_id": M2M_CLIENT_ID, "client_secret": client_secret,
                                "idp_clients": {"shopify": {"client_id": SHOP_APP,
                                                            "client_secret": SHOP_APP_SECRET}}});
        if let Some(table) = &table {
            secret["token_store_keys"] = json!([KEY]);
            crate::fleet::create_table(table).await;
        }
        app.put_secret(&secret.to_string()).await;
        Self {
            app,
            salesforce,
            shop,
            table,
        }
    }

    /// A Salesforce user whose root profile says `custom_domain`; returns the JWT and token.
    fn salesforce_user(&self, id: &str, custom_domain: &str) -> (String, String) {
        let sub = format!("salesforce|{id}");
        let token = unique("00Dsf!");
        self.salesforce.grant(&token, json!({"user_id": id}));
        self.app.tenant.add_user(json!({
            "user_id": sub, "urls": {"custom_domain": custom_domain, "rest": "https://other.my.salesforce.com/services/data/v{version}/"},
            "identities": [{"provider": "salesforce", "connection": "salesforce", "user_id": id,
                            "access_token": token, "isSocial": true}]}));
        (self.app.tenant.token(AUDIENCE, &sub).sign(), token)
    }

    /// A user who logs in with Auth0 and has a Shopify identity linked (its profile in
    /// `profileData`).
    fn shop_user(&self, id: &str, shop: &str) -> (String, String) {
        let sub = format!("auth0|{id}");
        let token = unique("shpat_");
        self.shop.grant(&token, json!({"shop": shop}));
        self.app.tenant.add_user(json!({
            "user_id": sub,
            "identities": [
                {"provider": "auth0", "connection": "Username-Password-Authentication", "user_id": id},
                {"provider": "shopify", "connection": "shopify", "user_id": id, "access_token": token,
                 "isSocial": true, "profileData": {"myshopify_domain": shop}}]}));
        (self.app.tenant.token(AUDIENCE, &sub).sign(), token)
    }
}

impl World {
    /// A Shopify user of `shop` whose expiring offline token has expired: their identity holds
    /// it and a refresh token that only `shop`'s own token endpoint accepts. Returns the JWT,
    /// the expired token and the refresh token.
    fn expired_shop_user(&self, id: &str, shop: &str) -> (String, String, String) {
        let sub = format!("shopify|{id}");
        let (token, refresh) = (unique("shpat_"), unique("shprt_"));
        let profile = json!({"shop": shop, "for": sub});
        self.shop.grant(&token, profile.clone());
        self.shop.expire(&token);
        self.shop.issue_refresh_token_at(shop, &refresh, profile);
        self.app.tenant.add_user(json!({
            "user_id": sub, "myshopify_domain": shop,
            "identities": [{"provider": "shopify", "connection": "shopify", "user_id": id,
                            "access_token": token, "refresh_token": refresh, "isSocial": true}]}));
        (self.app.tenant.token(AUDIENCE, &sub).sign(), token, refresh)
    }
}

async fn get(app: &auth0_idp_proxy::App, path: &str, jwt: &str) -> TestResponse {
    let event: Value = idp_event("GET", path, "", jwt, &[]);
    send_to(
        app,
        lambda_http::request::from_str(&event.to_string()).expect("event"),
    )
    .await
}

/// The Shopify API's `shop.json`, read through the app as `jwt`'s user.
async fn get_shop(world: &World, jwt: &str) -> TestResponse {
    get(
        &world.app.app,
        "/idp/shopify/admin/api/2025-01/shop.json",
        jwt,
    )
    .await
}

#[tokio::test]
async fn a_salesforce_call_goes_to_the_users_org_host() {
    let world = World::spawn().await;
    let (jwt, token) = world.salesforce_user("005A", "https://acme.my.salesforce.com");
    let answer = get(
        &world.app.app,
        "/idp/salesforce/services/data/v59.0/sobjects",
        &jwt,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let requests = world.salesforce.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path_and_query,
        "/acme.my.salesforce.com/services/data/v59.0/sobjects"
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // Outside the entry's allow rules, whatever the host.
    let refused = get(&world.app.app, "/idp/salesforce/services/apexrest/x", &jwt).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(world.salesforce.requests().len(), 1);
    assert!(!answer.body.contains(&token));
    assert_not_logged(&[&token]);
}

#[tokio::test]
async fn a_shopify_call_goes_to_the_shop_with_its_token_header() {
    let world = World::spawn().await;
    let (jwt, token) = world.shop_user("u1", "acme-store.myshopify.com");
    let answer = get_shop(&world, &jwt).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let requests = world.shop.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path_and_query,
        "/acme-store.myshopify.com/admin/api/2025-01/shop.json"
    );
    assert_eq!(
        requests[0].header("x-shopify-access-token"),
        Some(token.as_str())
    );
    assert_eq!(requests[0].header("authorization"), None);
    assert_not_logged(&[&token]);
}

#[tokio::test]
async fn odd_or_foreign_hosts_are_refused_before_any_call_or_token() {
    let world = World::spawn().await;
    for (i, host) in [
        "https://evil.example.com",
        "https://acme.my.salesforce.com:8443",
        "https://user@acme.my.salesforce.com",
        "https://127.0.0.1",
        "https://[::1]",
        "https://a.b.my.salesforce.com",
        "https://ACME.my.salesforce.com",
        "https://acme.my.salesforce.com.",
        "https://-acme.my.salesforce.com",
        "https://ac%6de.my.salesforce.com",
        "http://acme.my.salesforce.com",
    ]
    .into_iter()
    .enumerate()
    {
        let (jwt, token) = world.salesforce_user(&format!("bad{i}"), host);
        let answer = get(&world.app.app, "/idp/salesforce/services/data/v59.0/", &jwt).await;
        assert_eq!(answer.status, 502, "{host}: {}", answer.body);
        assert_eq!(answer.json()["error"], "upstream_error", "{host}");
        assert!(!answer.body.contains(&token));
    }
    let (jwt, _) = world.shop_user("u2", "acme.myshopify.com.evil.example");
    let answer = get_shop(&world, &jwt).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(world.salesforce.requests().is_empty(), "no upstream call");
    assert!(world.shop.requests().is_empty(), "no upstream call");
}

#[tokio::test]
async fn links_are_rewritten_and_redirects_refused_for_a_per_user_host() {
    let world = World::spawn().await;
    let (jwt, token) = world.salesforce_user("005L", "https://acme.my.salesforce.com");
    let event = idp_event("GET", "/idp/salesforce/user/repos", "per_page=2", &jwt, &[]);
    let list = send_to(
        &world.app.app,
        lambda_http::request::from_str(&event.to_string()).expect("event"),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let link = list
        .headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a rewritten Link");
    assert!(
        link.contains("/idp/salesforce/user/repos?per_page=2&page=2"),
        "{link}"
    );
    assert!(
        !link.contains("127.0.0.1") && !link.contains("acme.my.salesforce.com"),
        "{link}"
    );
    let redirect = get(&world.app.app, "/idp/salesforce/redirect", &jwt).await;
    assert_eq!(redirect.status, 302, "{}", redirect.body);
    assert!(!redirect.headers.contains_key("location"));
    let paths: Vec<String> = world
        .salesforce
        .requests()
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(
        paths,
        [
            "/acme.my.salesforce.com/user/repos?per_page=2",
            "/acme.my.salesforce.com/redirect"
        ]
    );
    assert_not_logged(&[&token]);
}

/// Both per-user hosts and a refusal through the real binary, with the fleet table when
/// `with_table`.
async fn through_the_real_binary(with_table: bool) {
    let world = World::spawn_with(with_table).await;
    let (org, org_token) = world.salesforce_user("005R", "https://acme.my.salesforce.com");
    let (merchant, shop_token) = world.shop_user("u9", "acme-store.myshopify.com");
    let (evil, evil_token) = world.salesforce_user("005E", "https://acme.my.salesforce.com:444");
    let endpoint = crate::fleet::table_moto().endpoint().to_owned();
    let extra: &[(&str, &str)] = if with_table {
        &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())]
    } else {
        &[]
    };
    let real = RealBinary::start(&world.app, extra).await;
    let call = |path: &str, jwt: &str| idp_event("GET", path, "", jwt, &[]);
    let sf = real
        .invoke(&call("/idp/salesforce/services/data/v59.0/limits", &org))
        .await;
    assert_eq!(sf.status, 200, "{}", String::from_utf8_lossy(&sf.body));
    let shop = real
        .invoke(&call("/idp/shopify/admin/api/2025-01/shop.json", &merchant))
        .await;
    assert_eq!(shop.status, 200, "{}", String::from_utf8_lossy(&shop.body));
    let refused = real
        .invoke(&call("/idp/salesforce/services/data/v59.0/limits", &evil))
        .await;
    assert_eq!(
        refused.status,
        502,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let logs = real.logs().await;
    let sf_sent = world.salesforce.requests();
    assert_eq!(sf_sent.len(), 1, "the refused host was not called");
    assert_eq!(
        sf_sent[0].path_and_query,
        "/acme.my.salesforce.com/services/data/v59.0/limits"
    );
    let shop_sent = world.shop.requests();
    assert_eq!(shop_sent.len(), 1);
    assert_eq!(
        shop_sent[0].path_and_query,
        "/acme-store.myshopify.com/admin/api/2025-01/shop.json"
    );
    assert_eq!(
        shop_sent[0].header("x-shopify-access-token"),
        Some(shop_token.as_str())
    );
    if let Some(table) = &world.table {
        // Both per-user tokens went through the fleet table, sealed.
        let admin = standin::dynamodb_client(crate::fleet::table_moto().endpoint()).await;
        let items = admin.scan().table_name(table).send().await.expect("scan");
        assert!(items.count() >= 2, "{items:?}");
        let text = format!("{:?}", items.items);
        assert!(!text.contains(&org_token) && !text.contains(&shop_token));
    }
    let secrets = [&org_token, &shop_token, &evil_token];
    for secret in secrets {
        assert!(!logs.contains(secret.as_str()), "a token reached the logs");
    }
    for answer in [&sf, &shop, &refused] {
        answer.assert_hides(&secrets);
    }
}

#[tokio::test]
async fn the_real_binary_calls_per_user_hosts() {
    through_the_real_binary(false).await;
}

#[tokio::test]
async fn the_real_binary_calls_per_user_hosts_with_the_fleet_table() {
    through_the_real_binary(true).await;
}

/// Issue 40: one deployment, two shops, each user's expired offline token renewed at their own
/// shop's token endpoint (the host `api_host` checked) and the call sent there with the new
/// token; a refresh token presented at another shop's endpoint would be refused by the stand-in.
#[tokio::test]
async fn each_shops_token_is_renewed_at_that_shops_own_token_endpoint() {
    let world = World::spawn().await;
    world.shop.register_client(SHOP_APP, SHOP_APP_SECRET);
    // Shopify's expiring offline tokens: a new refresh token with each grant, the old one kept
    // until the new one is used.
    world.shop.set_refresh_rules(standin::RefreshRules {
        client_auth: Some(standin::ClientAuth::Body),
        refresh: standin::RefreshBehaviour::Rotating,
        answer: standin::AnswerFormat::Json,
        expires_in: true,
    });
    let shops = ["acme-store.myshopify.com", "other-store.myshopify.com"];
    let users: Vec<_> = shops
        .iter()
        .enumerate()
        .map(|(i, shop)| world.expired_shop_user(&format!("7{i}"), shop))
        .collect();
    for ((jwt, _, _), shop) in users.iter().zip(shops) {
        let answer = get_shop(&world, jwt).await;
        assert_eq!(answer.status, 200, "{shop}: {}", answer.body);
        let sent = world.shop.requests().pop().expect("a call");
        assert_eq!(
            sent.path_and_query,
            format!("/{shop}/admin/api/2025-01/shop.json"),
            "the call went to the user's shop"
        );
        let renewed = sent.header("x-shopify-access-token").expect("a token");
        assert!(
            world.shop.issued_tokens().iter().any(|t| t == renewed),
            "{shop}: the renewed token, not the expired one"
        );
    }
    // One grant per user, each at the user's own shop's endpoint, with the user's own refresh
    // token.
    let hosts: Vec<Option<String>> = shops.iter().map(|s| Some((*s).to_owned())).collect();
    assert_eq!(world.shop.grant_hosts(), hosts);
    let presented: Vec<String> = users.iter().map(|(_, _, r)| r.clone()).collect();
    assert_eq!(world.shop.presented_refresh_tokens(), presented);
    let mut secrets: Vec<String> = users
        .iter()
        .flat_map(|(_, t, r)| [t.clone(), r.clone()])
        .collect();
    secrets.extend(world.shop.issued_tokens());
    secrets.push(SHOP_APP_SECRET.to_owned());
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_not_logged(&refs);
}

/// A user whose shop host is refused gets no grant anywhere: the token endpoint's host is only
/// ever the checked one.
#[tokio::test]
async fn a_refused_shop_host_gets_no_token_endpoint() {
    let world = World::spawn().await;
    world.shop.register_client(SHOP_APP, SHOP_APP_SECRET);
    let (jwt, _, _) = world.expired_shop_user("79", "acme.myshopify.com.evil.example");
    let answer = get_shop(&world, &jwt).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(world.shop.grant_hosts().is_empty(), "no grant");
    assert!(world.shop.requests().is_empty(), "no call");
}
