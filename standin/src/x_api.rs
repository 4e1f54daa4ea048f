//! A stand-in X API whose OAuth 1.0a signatures are verified by oauthlib (`x_api.py`, Python),
//! an implementation that is not the function's own; OAuth 2.0 bearer tokens are accepted too,
//! as X does for an app in its OAuth 2.0 mode.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;

use serde_json::{Value, json};

/// A running stand-in X API. It stops when this process exits (its stdin pipe closes).
pub struct XApi {
    addr: SocketAddr,
    _child: Child,
}

impl XApi {
    /// Starts it with `$MOTO_PYTHON` (default `python3`), which must have `oauthlib` (installed
    /// with moto from `.ci/requirements.txt`).
    pub fn start() -> Result<Self, String> {
        let (port, child) = crate::moto::start_python_peer("x_api.py", "x_api.py", "oauthlib")?;
        Ok(Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _child: child,
        })
    }

    /// `http://127.0.0.1:port`: the `api_base` to configure for the X connection.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers an X app: its consumer key and secret.
    pub fn add_consumer(&self, key: &str, secret: &str) -> Result<(), String> {
        self.admin("POST", "consumer", &json!({"key": key, "secret": secret}))
            .map(drop)
    }

    /// Accepts the OAuth 1.0a access token `token` with `secret` for the user `user`.
    pub fn add_oauth1_token(&self, token: &str, secret: &str, user: Value) -> Result<(), String> {
        let grant = json!({"token": token, "secret": secret, "user": user});
        self.admin("POST", "oauth1", &grant).map(drop)
    }

    /// Accepts the OAuth 2.0 bearer token `token` for the user `user`.
    pub fn add_bearer_token(&self, token: &str, user: Value) -> Result<(), String> {
        self.admin("POST", "bearer", &json!({"token": token, "user": user}))
            .map(drop)
    }

    /// Answers the next `count` API requests 503 after verifying them.
    pub fn fail_next(&self, count: usize) -> Result<(), String> {
        self.admin("POST", "fail_next", &json!({"count": count}))
            .map(drop)
    }

    /// Every API request received: `method`, `uri`, `scheme` (of `Authorization`), `headers`
    /// (names), `nonce`, `signed_params` (names), `verified` (`oauth1`, `oauth2` or null) and
    /// oauthlib's `reasons`.
    pub fn requests(&self) -> Result<Vec<Value>, String> {
        let text = self.admin("GET", "requests", &Value::Null)?;
        serde_json::from_str(&text).map_err(|e| format!("x_api.py requests: {e}"))
    }

    /// One admin request, over a plain loopback connection that the stand-in closes.
    fn admin(&self, method: &str, path: &str, body: &Value) -> Result<String, String> {
        let body = body.to_string();
        let mut stream = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} /_standin/{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        let (head, body) = answer.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        if head.split_whitespace().nth(1) != Some("200") {
            return Err(format!("x_api.py answered {head}"));
        }
        Ok(body.to_owned())
    }
}
