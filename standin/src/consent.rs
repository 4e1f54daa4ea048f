//! The stand-in IdP's consent page: what a user sees at the provider when an application (here,
//! the stand-in tenant connecting an account for Token Vault) asks for scopes.
//!
//! - `GET /oauth/authorize?response_type=code&client_id=&redirect_uri=&scope=&state=`: a page that
//!   lists the scopes asked for, with **Allow** and **Deny** buttons (a plain form: it works in a
//!   real browser without script);
//! - `POST /oauth/authorize`: the decision; a 302 to `redirect_uri` with `code` and `state`, or
//!   with `error=access_denied` (RFC 6749 §4.1.2).
//!
//! The code is redeemed in-process by the tenant ([`crate::Idp`]'s `redeem_consent`), once,
//! within a minute, for the same `redirect_uri`: what an authorization-code grant at the IdP's
//! token endpoint would check, without a second round trip the tests would not learn from.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::lock;
use crate::opaque_token::new_token;

/// Where the consent page is served on the stand-in IdP.
pub(crate) const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// How long a consent code waits for the tenant.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Consent codes issued and not yet redeemed.
#[derive(Debug, Default)]
pub(crate) struct ConsentState {
    codes: Mutex<HashMap<String, Issued>>,
}

#[derive(Debug)]
struct Issued {
    redirect_uri: String,
    scopes: Vec<String>,
    expires: Instant,
}

impl ConsentState {
    /// The scopes granted with `code`, if it was issued for `redirect_uri` and is fresh; spent
    /// whatever the outcome.
    pub(crate) fn redeem(&self, code: &str, redirect_uri: &str) -> Option<Vec<String>> {
        let issued = lock(&self.codes).remove(code)?;
        (issued.redirect_uri == redirect_uri && issued.expires > Instant::now())
            .then_some(issued.scopes)
    }
}

/// `GET /oauth/authorize`: the consent page.
pub(crate) async fn page(Query(params): Query<HashMap<String, String>>) -> Response {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if get("response_type") != "code" || get("redirect_uri").is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Html("<!doctype html><p>response_type=code and redirect_uri are required.</p>"),
        )
            .into_response();
    }
    let hidden: String = ["client_id", "redirect_uri", "scope", "state"]
        .iter()
        .map(|name| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(get(name))
            )
        })
        .collect();
    let scopes: String = get("scope")
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let scopes = if scopes.is_empty() {
        "<li>(no scope: your public profile)</li>".to_owned()
    } else {
        scopes
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize access (stand-in IdP)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem}}
button{{margin:.5rem .5rem 0 0;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer}}</style></head>
<body><h1>Authorize access</h1>
<p>A local stand-in for the provider's consent screen. <strong>{client}</strong> asks for:</p>
<ul id="scopes">{scopes}</ul>
<form method="post" action="{AUTHORIZE_PATH}">{hidden}
<button name="decision" value="allow" id="allow">Allow</button>
<button name="decision" value="deny" id="deny">Deny</button></form></body></html>"#,
        client = escape(get("client_id")),
    ))
    .into_response()
}

/// `POST /oauth/authorize`: the user's decision, sent back to `redirect_uri`.
pub(crate) fn decide(consent: &ConsentState, form: &HashMap<String, String>) -> Response {
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let redirect_uri = get("redirect_uri");
    if redirect_uri.is_empty() {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    }
    let fields: Vec<(&str, String)> = if get("decision") == "allow" {
        let code = new_token("consent-");
        lock(&consent.codes).insert(
            code.clone(),
            Issued {
                redirect_uri: redirect_uri.to_owned(),
                scopes: get("scope").split_whitespace().map(str::to_owned).collect(),
                expires: Instant::now() + CODE_LIFETIME,
            },
        );
        vec![("code", code), ("state", get("state").to_owned())]
    } else {
        vec![
            ("error", "access_denied".to_owned()),
            (
                "error_description",
                "The user denied the request".to_owned(),
            ),
            ("state", get("state").to_owned()),
        ]
    };
    Redirect::to(&with_query(redirect_uri, &fields)).into_response()
}

/// `url` with `fields` added to its query, each value percent-encoded.
pub(crate) fn with_query(url: &str, fields: &[(&str, String)]) -> String {
    let query = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

/// What is escaped in a query value: everything but unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
