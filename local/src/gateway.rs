//! A local stand-in for API Gateway's HTTP API: each HTTP request becomes a payload v2 event,
//! parsed by lambda_http exactly as in Lambda, and the handler's response becomes the HTTP answer.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::Request as AxumRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use base64::Engine;
use lambda_http::{Body, Context, RequestExt};
use serde_json::{Map, Value, json};

/// The largest request body API Gateway accepts (10 MB); larger is refused here too.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The HTTP API v2 event API Gateway would send for `request`.
pub async fn to_event(request: AxumRequest) -> Result<Value, StatusCode> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?;
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.push(value);
            continue;
        }
        // API Gateway joins repeated headers with commas.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    // API Gateway adds these; the function builds its own URLs (rewritten `Link`s) from them.
    let port = headers
        .get("host")
        .and_then(Value::as_str)
        .and_then(|h| h.rsplit_once(':'))
        .map_or("80", |(_, port)| port)
        .to_owned();
    for (name, value) in [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-port", port.as_str()),
        ("x-forwarded-for", "127.0.0.1"),
    ] {
        headers.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let path = parts.uri.path();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (body, base64) = match std::str::from_utf8(&body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(&body)),
            true,
        ),
    };
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    Ok(json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "cookies": cookies,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or(Value::Null),
            },
            "requestId": format!("local-{now}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": now,
        },
        "body": body,
        "isBase64Encoded": base64,
    }))
}

/// Runs `event` through the handler with a Lambda-like context (a 10 s deadline).
pub async fn invoke(app: &auth0_idp_proxy::App, event: &Value) -> AxumResponse {
    let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
        return (StatusCode::BAD_REQUEST, "not an API Gateway request").into_response();
    };
    let mut context = Context::default();
    context.request_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    context.deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        + 10_000;
    let response = app.handle(request.with_lambda_context(context)).await;
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}
