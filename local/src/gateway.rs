//! A local stand-in for API Gateway's HTTP API: each HTTP request becomes a payload v2 event,
//! run through the function as Lambda runs it, and its payload v2 response becomes the HTTP
//! answer as API Gateway writes it.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::Request as AxumRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
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

/// Runs `event` through the function exactly as Lambda does (its own event adapter, handler
/// and response serialisation, with a 10 s deadline), then answers as API Gateway would from
/// the payload v2 response: each header one field as written, each `cookies` entry its own
/// `Set-Cookie`.
pub async fn invoke(app: &auth0_idp_proxy::App, event: &Value) -> AxumResponse {
    let Ok(payload) = serde_json::from_value::<LambdaRequest>(event.clone()) else {
        return (StatusCode::BAD_REQUEST, "not an API Gateway request").into_response();
    };
    let mut context = Context::default();
    context.request_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A streamed download takes longer than any buffered answer: the template's streaming
    // timeout.
    let streams = app.response_mode().streams();
    let budget = if streams { 120_000 } else { 10_000 };
    context.deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        + budget;
    if streams {
        return from_stream(
            app.invoke_streamed(LambdaEvent::new(payload, context))
                .await,
        );
    }
    let written = app.invoke(LambdaEvent::new(payload, context)).await;
    match serde_json::from_str::<Value>(written.get()) {
        Ok(response) => from_lambda_response(&response),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// The HTTP answer a REST API or Function URL makes of a streamed response: the prelude's
/// status, headers and cookies, then the body as it comes. A cut stream ends the connection
/// without chunked encoding's last chunk, as Lambda's error signal does, so that no client takes
/// it for a whole body.
fn from_stream(streamed: auth0_idp_proxy::streaming::Streamed) -> AxumResponse {
    let Ok(mut prelude) = serde_json::from_slice::<Value>(&streamed.prelude) else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    prelude["body"] = json!("");
    let mut answer = from_lambda_response(&prelude);
    if answer.status() != StatusCode::BAD_GATEWAY || prelude["statusCode"] == 502 {
        let body = futures_util::StreamExt::map(streamed.body, |chunk| {
            chunk.map_err(|cut| std::io::Error::other(cut.to_string()))
        });
        *answer.body_mut() = AxumBody::from_stream(body);
    }
    answer
}

/// The HTTP answer API Gateway makes of a payload v2 Lambda response; a response it could not
/// use is its `502`.
fn from_lambda_response(response: &Value) -> AxumResponse {
    let status = response["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    let Some(status) = status else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut answer = AxumResponse::builder().status(status);
    for (name, value) in response["headers"].as_object().into_iter().flatten() {
        if let Some(value) = value.as_str() {
            answer = answer.header(name.as_str(), value);
        }
    }
    for cookie in response["cookies"].as_array().into_iter().flatten() {
        if let Some(cookie) = cookie.as_str() {
            answer = answer.header(axum::http::header::SET_COOKIE, cookie);
        }
    }
    let text = response["body"].as_str().unwrap_or_default();
    let body = if response["isBase64Encoded"].as_bool() == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => AxumBody::from(bytes),
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        }
    } else {
        AxumBody::from(text.to_owned())
    };
    answer
        .body(body)
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_response_is_answered_as_api_gateway_writes_it() {
        let answer = from_lambda_response(&json!({
            "statusCode": 200,
            "headers": {"vary": "Accept, authorization, origin", "link": "<a>; rel=\"next\", <b>; rel=\"last\""},
            "cookies": ["a=1; Secure", "b=2; Secure"],
            "body": "aGk=",
            "isBase64Encoded": true,
        }));
        assert_eq!(answer.status(), StatusCode::OK);
        let headers = answer.headers();
        assert_eq!(headers["vary"], "Accept, authorization, origin");
        assert_eq!(headers.get_all("link").iter().count(), 1);
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1; Secure", "b=2; Secure"]);
    }

    #[test]
    fn a_response_api_gateway_cannot_use_is_its_502() {
        for bad in [
            json!({"statusCode": 99}),
            json!({}),
            json!({"statusCode": 200, "body": "!!", "isBase64Encoded": true}),
        ] {
            assert_eq!(
                from_lambda_response(&bad).status(),
                StatusCode::BAD_GATEWAY,
                "{bad}"
            );
        }
    }
}
