//! `HEAD` answers (issue 26): no body, and the headers the same request's `GET` gets, its
//! `Content-Length` included, the function's own errors too, for both payload versions.

use serde_json::{Value, json};

use crate::helpers::{LambdaAnswer, PLACEHOLDER, TestApp, event_text, idp_event};

/// The request at `path` as `method`, in payload v2 (`rest` false) or v1, with `jwt` if any.
fn event(rest: bool, method: &str, path: &str, jwt: Option<&str>) -> Value {
    let token = jwt.unwrap_or("x");
    if !rest {
        let drop = [("authorization", Value::Null)];
        let headers: &[(&str, Value)] = if jwt.is_none() { &drop } else { &[] };
        return idp_event(method, path, "", token, headers);
    }
    let text = event_text("rest-api-identities.json").replace(PLACEHOLDER, token);
    let mut event: Value = serde_json::from_str(&text).expect("event");
    event["path"] = json!(path);
    event["requestContext"]["path"] = json!(format!("/prod{path}"));
    event["httpMethod"] = json!(method);
    event["requestContext"]["httpMethod"] = json!(method);
    if jwt.is_none() {
        for field in ["headers", "multiValueHeaders"] {
            event[field]
                .as_object_mut()
                .expect("headers")
                .remove("Authorization");
        }
    }
    event
}

fn assert_head_matches_get(get: &LambdaAnswer, head: &LambdaAnswer, what: &str) {
    assert_eq!(head.status, get.status, "{what}");
    assert!(!head.has_body, "{what}: a HEAD answer has no body");
    assert!(
        !get.body.is_empty(),
        "{what}: the GET has a body to measure"
    );
    let length = get.body.len().to_string();
    assert_eq!(
        head.header("content-length"),
        Some(length.as_str()),
        "{what}"
    );
    let mut head_headers: Vec<_> = head
        .headers
        .iter()
        .filter(|(n, _)| n != "content-length")
        .cloned()
        .collect();
    let mut get_headers = get.headers.clone();
    head_headers.sort();
    get_headers.sort();
    assert_eq!(head_headers, get_headers, "{what}");
}

#[tokio::test]
async fn head_answers_have_the_get_headers_and_no_body_in_both_payload_versions() {
    let app = TestApp::spawn().await;
    let jwt = app.token("github|1001").sign();
    // A user whose identity holds no token: refused for want of one.
    app.tenant
        .add_user(standin::profile("github|2601", &[("github", "2601", "")]));
    let tokenless = app
        .tenant
        .token(crate::helpers::AUDIENCE, "github|2601")
        .sign();
    for rest in [false, true] {
        for (path, jwt, status) in [
            ("/identities", Some(jwt.as_str()), 200),
            // Proxied: the IdP's own HEAD answer, its GET's headers and no body.
            ("/idp/github/user", Some(jwt.as_str()), 200),
            // The IdP's failure, answered with the function's own 502.
            ("/idp/github/fail", Some(jwt.as_str()), 502),
            ("/identities", None, 401),
            ("/nowhere", Some(jwt.as_str()), 404),
            ("/idp/github/user", Some(tokenless.as_str()), 403),
        ] {
            let what = format!("rest {rest}, {path}, {status}");
            let get = app.invoke(&event(rest, "GET", path, jwt).to_string()).await;
            assert_eq!(
                get.status,
                status,
                "{what}: {:?}",
                String::from_utf8_lossy(&get.body)
            );
            let head = app
                .invoke(&event(rest, "HEAD", path, jwt).to_string())
                .await;
            assert_head_matches_get(&get, &head, &what);
        }
        // An event refused before it became a request.
        let mut bad_get = event(rest, "GET", "/identities", Some(&jwt));
        bad_get["isBase64Encoded"] = json!(true);
        bad_get["body"] = json!("!!not base64!!");
        let mut bad_head = bad_get.clone();
        if rest {
            bad_head["httpMethod"] = json!("HEAD");
            bad_head["requestContext"]["httpMethod"] = json!("HEAD");
        } else {
            bad_head["requestContext"]["http"]["method"] = json!("HEAD");
        }
        let get = app.invoke(&bad_get.to_string()).await;
        assert_eq!(get.status, 400);
        let head = app.invoke(&bad_head.to_string()).await;
        assert_head_matches_get(&get, &head, &format!("rest {rest}, refused event"));
    }
}
