//! The audit record: one JSON line per request to a route (every invocation but a preflight and
//! an event refused before it is a request), saying who called what at which provider, and how
//! it ended (docs/audit.md, with the queries).
//!
//! A line of its own (target [`AUDIT_TARGET`], message `audit`) beside the summary line, not
//! members of it: the summary line is the metrics' EMF document and carries no user id, so the
//! metrics drawn from it hold none; the audit line carries the verified `sub` and the caller's
//! IP. Both are in the function's log group, so whoever may read that group reads both; a
//! subscription filter on `{ $.message = "audit" }` ships exactly the audit lines to where a
//! security team keeps them (docs/audit.md). Both carry the Lambda request id, which joins
//! them. Nothing here is an EMF dimension.
//!
//! Like the trace, the record is a task-local recorder; only the handler (`src/app`) writes to
//! it: the verified caller, the connection, the normalised path, each IdP answer (handed back by
//! `idp::call`) and the token's provenance, as the steps of the request return them. The modules
//! below the handler note nothing themselves.
//!
//! What never goes in: the query string, a body, a token or secret, and no header value but
//! the IdP's own request id, itself kept only when it looks like an id.

use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;

use http::{HeaderMap, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

pub use crate::telemetry::AUDIT_TARGET;
use crate::telemetry::line::JsonLine;
use crate::telemetry::{self, Invocation, Trace};

/// Response headers in which IdPs send their own request id, the first one present wins:
/// GitHub, Microsoft Graph, and the common `x-request-id` (GitLab, Slack, Atlassian, …).
const IDP_REQUEST_ID_HEADERS: [&str; 4] = [
    "x-github-request-id",
    "request-id",
    "x-ms-request-id",
    "x-request-id",
];

/// Longest IdP request id kept: ids are tens of characters; anything longer is not one.
const MAX_REQUEST_ID: usize = 128;

tokio::task_local! {
    // A `RefCell`: only this invocation's task touches it, and never across an await.
    static CURRENT: RefCell<Record>;
}

/// What one invocation's audit line says beyond the outcome the handler knows at its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    method: Method,
    source_ip: Option<IpAddr>,
    request_bytes: usize,
    sub: Option<String>,
    connection: Option<String>,
    strategy: Option<String>,
    token_source: Option<&'static str>,
    path: Option<String>,
    idp_status: Option<u16>,
    idp_request_id: Option<String>,
    token_from: Option<&'static str>,
    renewed_token: bool,
}

impl Record {
    /// The record of `request` as it arrives: its method, the caller's IP from the event (API
    /// Gateway's view of the connection, not a forwarding header a caller can write) and the
    /// size of its body.
    pub fn of(request: &Request) -> Self {
        let source_ip = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref(),
            Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.as_deref(),
            _ => None,
        };
        Self {
            method: request.method().clone(),
            // Parsed, so that only an address is ever written.
            source_ip: source_ip.and_then(|ip| ip.parse().ok()),
            request_bytes: request.body().as_ref().len(),
            ..Self::default()
        }
    }

    /// The audit line: this record with the invocation's outcome (status, error code, whether
    /// a refresh grant ran, why a streamed body was cut) and the bytes of the answer's body the
    /// caller was sent.
    pub fn line(&self, invocation: &Invocation<'_>, trace: &Trace, response_bytes: u64) -> String {
        let mut line = JsonLine::default();
        line.member_if("timestamp", telemetry::timestamp());
        line.member("level", "INFO");
        line.member("message", "audit");
        line.member("target", AUDIT_TARGET);
        line.member("request_id", invocation.request_id);
        line.member("route", invocation.route.as_str());
        line.member_if("sub", self.sub.as_deref());
        line.member_if("source_ip", self.source_ip);
        line.member("method", self.method.as_str());
        line.member_if("connection", self.connection.as_deref());
        line.member_if("strategy", self.strategy.as_deref());
        line.member_if("token_source", self.token_source);
        line.member_if("path", self.path.as_deref());
        line.member_if("idp_status", self.idp_status);
        line.member_if("idp_request_id", self.idp_request_id.as_deref());
        line.member_if("token_from", self.token_from);
        if self.token_from.is_some() || trace.renewed() {
            line.member("renewed", trace.renewed() || self.renewed_token);
        }
        line.member("status", invocation.status);
        line.member_if("error", trace.error_code());
        line.member_if("stream_cut", trace.stream_cut());
        line.member("request_bytes", self.request_bytes);
        line.member("response_bytes", response_bytes);
        line.finish()
    }
}

/// Runs `invocation` with `record` as its recorder; returns its output and the record as the
/// invocation left it.
pub async fn recorded<T>(record: Record, invocation: impl Future<Output = T>) -> (T, Record) {
    CURRENT
        .scope(RefCell::new(record), async move {
            let output = invocation.await;
            let record = CURRENT.try_with(|cell| cell.take()).unwrap_or_default();
            (output, record)
        })
        .await
}

/// Writes `line` (built by [`Record::line`]) as the invocation's audit line.
pub fn log(line: &str) {
    tracing::info!(target: AUDIT_TARGET, line);
}

fn update(change: impl FnOnce(&mut Record)) {
    // Outside `recorded` (the cold-start prefetch, unit tests) there is nothing to note.
    let _ = CURRENT.try_with(|cell| change(&mut cell.borrow_mut()));
}

/// Notes the verified caller: the token's `sub`, the only user id the function acts for.
pub fn caller(sub: &str) {
    update(|record| record.sub = Some(sub.to_owned()));
}

/// Notes the connection asked for on the IdP route (a name the router accepted).
pub fn connection_asked(name: &str) {
    update(|record| record.connection = Some(name.to_owned()));
}

/// Notes the connection that serves the call: its catalogue strategy, if any, and its token
/// source (`identities`, `token_vault`).
pub fn connection(strategy: Option<&str>, token_source: &'static str) {
    update(|record| {
        record.strategy = strategy.map(str::to_owned);
        record.token_source = Some(token_source);
    });
}

/// Notes the normalised path under the connection's API base (what the allow rules match):
/// never the query.
pub fn path(encoded: &str) {
    update(|record| record.path = Some(encoded.to_owned()));
}

/// Notes an answer of the IdP to a call made with `token`: its status and its own request id;
/// the last answer wins. An id that holds the token, or a part of it, is not kept: an IdP that
/// echoes the token there (refused later as the caller's answer) must not put it in the log.
pub fn idp_answer(status: StatusCode, headers: &HeaderMap, token: &str) {
    let id = IDP_REQUEST_ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_request_id(id) && !shares_token(id, token))
        .map(str::to_owned);
    update(|record| {
        record.idp_status = Some(status.as_u16());
        record.idp_request_id = id;
    });
}

/// Notes where the IdP token used for the call came from (`cache`, `auth0`, `refresh_grant`,
/// `token_table`) and whether it is a renewed one; the last token wins.
pub fn token_from(from: &'static str, renewed: bool) {
    update(|record| {
        record.token_from = Some(from);
        record.renewed_token |= renewed;
    });
}

/// Whether `id` and `token` overlap in a way that could carry the token: either holds the
/// other, or they share a run of [`MIN_SHARED`] characters.
fn shares_token(id: &str, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    if id.contains(token) || token.contains(id) {
        return true;
    }
    let (id, token) = (id.as_bytes(), token.as_bytes());
    if id.len() < MIN_SHARED || token.len() < MIN_SHARED {
        return false;
    }
    // A filter of the id's runs: a run of the token whose bit is clear is none of them, so only
    // the few that pass are compared. The id is short (at most MAX_REQUEST_ID); a token may be
    // kilobytes, and comparing each of its runs with each of the id's cost microseconds a call.
    let mut filter = [0u64; FILTER_BITS / 64];
    for run in id.windows(MIN_SHARED) {
        let bit = run_bit(run);
        filter[bit / 64] |= 1 << (bit % 64);
    }
    token.windows(MIN_SHARED).any(|run| {
        let bit = run_bit(run);
        filter[bit / 64] & (1 << (bit % 64)) != 0 && id.windows(MIN_SHARED).any(|w| w == run)
    })
}

/// Bits in [`shares_token`]'s filter: the id's hundred-odd runs leave most of them clear.
const FILTER_BITS: usize = 4096;

/// The filter bit of `run` (of [`MIN_SHARED`] bytes): its first and last eight bytes mixed.
fn run_bit(run: &[u8]) -> usize {
    const _: () = assert!(MIN_SHARED >= 8 && FILTER_BITS.is_power_of_two());
    let word = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    let mixed = (word(&run[..8]) ^ word(&run[run.len() - 8..]).rotate_left(29))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top bits of a multiplicative hash are its best mixed.
    (mixed >> (64 - FILTER_BITS.trailing_zeros())) as usize
}

/// The shortest run of a token's characters that is not left in an audit line: short enough
/// that no useful part of a token survives, long enough that a request id does not match a
/// token by chance.
const MIN_SHARED: usize = 12;

/// Whether `id` looks like a request id (so that a header an IdP fills otherwise, with a URL or
/// a token, is never written): up to [`MAX_REQUEST_ID`] of letters, digits and `-_.:/+=`.
fn is_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteName;
    use http::HeaderValue;
    use serde_json::Value;
    use std::time::Duration;

    fn parsed(line: &str) -> Value {
        serde_json::from_str(line).expect("the audit line is JSON")
    }

    #[test]
    fn only_what_looks_like_a_request_id_is_kept() {
        assert!(is_request_id("C0DE:1F2A:3B4C5D:6E7F80:65A1B2C3"));
        assert!(is_request_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
        for bad in ["", "a b", "Bearer x", "{\"t\":1}", &"a".repeat(129)] {
            assert!(!is_request_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_record_keeps_what_the_call_noted_and_the_last_idp_answer() {
        let mut headers = HeaderMap::new();
        headers.insert("x-github-request-id", HeaderValue::from_static("AB:CD:12"));
        let mut spaced = HeaderMap::new();
        spaced.insert("request-id", HeaderValue::from_static("not an id"));
        let ((), record) = recorded(Record::default(), async {
            caller("github|1");
            connection_asked("github");
            path("/user/repos");
            idp_answer(StatusCode::BAD_GATEWAY, &spaced, "gho_token");
            idp_answer(StatusCode::OK, &headers, "gho_token");
            token_from("cache", false);
        })
        .await;
        // Outside `recorded`: nothing to note, and no panic.
        caller("github|2");
        let invocation = Invocation {
            request_id: "req-1",
            route: RouteName::Idp,
            connection: Some("github"),
            status: 200,
            duration: Duration::from_millis(1),
        };
        let line = parsed(&record.line(&invocation, &Trace::default(), 7));
        assert_eq!(line["sub"], "github|1");
        assert_eq!(line["path"], "/user/repos");
        assert_eq!(line["idp_status"], 200);
        assert_eq!(line["idp_request_id"], "AB:CD:12");
        assert_eq!(line["token_from"], "cache");
        assert_eq!(line["renewed"], false);
        assert_eq!(line["response_bytes"], 7);
        assert_eq!(line["message"], "audit");
        assert!(line.get("error").is_none() && line.get("strategy").is_none());
    }

    #[test]
    fn the_filtered_overlap_check_agrees_with_comparing_every_run() {
        let every_run = |id: &str, token: &str| {
            id.contains(token)
                || token.contains(id)
                || (token.len() >= MIN_SHARED
                    && token
                        .as_bytes()
                        .windows(MIN_SHARED)
                        .any(|part| id.as_bytes().windows(MIN_SHARED).any(|w| w == part)))
        };
        // A small alphabet, so that long shared runs happen often enough to be tested.
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut text = |len: usize| {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(b"ab-"[(state % 3) as usize])
                })
                .collect::<String>()
        };
        let mut shared = 0;
        for round in 0..2000 {
            let id = text(1 + round % 128);
            let mut token = text(round % 300);
            if round % 3 == 0 && id.len() > 20 {
                token.insert_str(token.len() / 2, &id[3..3 + MIN_SHARED]);
            }
            let expected = every_run(&id, &token) && !token.is_empty();
            shared += usize::from(expected);
            assert_eq!(shares_token(&id, &token), expected, "{id} / {token}");
        }
        assert!(
            shared > 100 && shared < 1900,
            "both answers are tested: {shared}"
        );
    }

    #[tokio::test]
    async fn an_idp_that_echoes_the_token_as_its_request_id_leaves_no_token_in_the_line() {
        let token = "gho_16C7e42F292c6912E7710c838347Ae178B4a";
        for echoed in [
            token.to_owned(),
            format!("req-{token}"),
            token[4..30].to_owned(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-request-id",
                HeaderValue::from_str(&echoed).expect("value"),
            );
            let ((), record) = recorded(Record::default(), async {
                idp_answer(StatusCode::OK, &headers, token);
            })
            .await;
            let invocation = Invocation {
                request_id: "req-1",
                route: RouteName::Idp,
                connection: Some("github"),
                status: 502,
                duration: Duration::from_millis(1),
            };
            let line = parsed(&record.line(&invocation, &Trace::default(), 0));
            assert!(line.get("idp_request_id").is_none(), "{line}");
            assert!(!line.to_string().contains(&token[4..16]), "{line}");
        }
    }
}
