//! Signed download redirects: Box (`/2.0/files/{id}/content`) and Microsoft Graph
//! (`/me/drive/items/{id}/content`) answer a download with a `302` to a pre-signed URL on another
//! host. Where that host fits one of the connection's `download_hosts`, the function follows the
//! redirect itself, **without** the IdP token or any caller header that could carry a
//! credential, and answers with what it finds there; a redirect anywhere else is passed on as
//! before (without its `Location`).

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use url::Url;

use super::host::{check_pattern, fits, standin_origin};
use super::response::IdpResponse;
use super::{IdpError, Reading, resend, send_and_read};
use crate::deadline::Deadline;
use crate::upstream::{Http, RetryPolicy};

/// Cap on one attempt at a download, within the invocation's deadline.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most redirects followed for one call: a download host may send the caller once more to
/// another of its hosts, never round in circles.
const MAX_HOPS: usize = 3;

/// The caller's headers a download keeps: content negotiation and conditions, none of which
/// can carry a credential.
const FORWARDED: &[header::HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
];

/// Where a connection's pre-signed download URLs may point.
#[derive(Debug, Clone, Default)]
pub struct DownloadHosts {
    /// Host patterns, as for `api_host` (`*.boxcloud.com`).
    patterns: Vec<String>,
    /// A loopback stand-in that downloads go to (`IDP_CONNECTIONS`' `download_host_origin`,
    /// tests only): the URL's path and query are kept.
    standin: Option<Url>,
}

impl DownloadHosts {
    /// The hosts of `patterns`, downloads sent to `standin` where given; `Err` for a pattern
    /// that is not a lowercase DNS name (with an optional leading `*.`) or an origin that is not
    /// loopback.
    pub fn new(patterns: Vec<String>, standin: Option<&str>) -> Result<Self, String> {
        for pattern in &patterns {
            check_pattern(pattern, "download_hosts")?;
        }
        let standin = standin
            .map(|origin| standin_origin(origin, "download_host_origin"))
            .transpose()?;
        if standin.is_some() && patterns.is_empty() {
            return Err("download_host_origin needs download_hosts".to_owned());
        }
        Ok(Self { patterns, standin })
    }

    /// Whether the connection names no download host.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The URL to fetch for the IdP's `answer` to a `method` call of `upstream`: a redirect
    /// (`301`, `302`, `303`, `307`, `308`) of a `GET` or `HEAD` to an https URL on one of these
    /// hosts, without credentials in it. `None` for anything else.
    pub fn target(&self, method: &Method, answer: &IdpResponse, upstream: &Url) -> Option<Url> {
        if self.patterns.is_empty()
            || !matches!(*method, Method::GET | Method::HEAD)
            || !matches!(answer.status.as_u16(), 301 | 302 | 303 | 307 | 308)
        {
            return None;
        }
        let location = answer.headers.get(header::LOCATION)?.to_str().ok()?;
        let url = upstream.join(location).ok()?;
        let host = url.host_str()?;
        let allowed = url.scheme() == "https"
            && url.port().is_none()
            && url.username().is_empty()
            && url.password().is_none()
            && self.patterns.iter().any(|pattern| fits(pattern, host));
        if !allowed {
            return None;
        }
        Some(match &self.standin {
            Some(origin) => {
                let mut standin = origin.clone();
                standin.set_path(url.path());
                standin.set_query(url.query());
                standin
            }
            None => url,
        })
    }

    /// Fetches `url` (from [`DownloadHosts::target`]) with `method` and only the caller's
    /// harmless `headers`, following further redirects to these hosts (a few at most); each
    /// answer is handed to `answered`, as for the API call. A successful answer's body is left
    /// to stream where `streams` says so.
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch(
        &self,
        http: &Http,
        method: &Method,
        mut url: Url,
        headers: &HeaderMap,
        streams: bool,
        answered: impl Fn(StatusCode, &HeaderMap),
        deadline: &Deadline,
    ) -> Result<IdpResponse, IdpError> {
        let mut outbound = HeaderMap::new();
        for name in FORWARDED {
            if let Some(value) = headers.get(name) {
                outbound.insert(name.clone(), value.clone());
            }
        }
        // As for the API call: bytes that can be checked for the token as they are.
        outbound.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        for hop in 1..=MAX_HOPS {
            let request = http
                .request(method.clone(), url.clone())
                .headers(outbound.clone());
            let attempt = || resend(&request);
            let answer = send_and_read(
                RetryPolicy::STANDARD,
                CALL_TIMEOUT,
                Reading::of(streams, method),
                attempt,
                &answered,
                deadline,
            )
            .await?;
            match self.target(method, &answer, &url) {
                Some(next) if hop < MAX_HOPS => url = next,
                _ => return Ok(answer),
            }
        }
        unreachable!("the last hop returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(status: u16, location: &str) -> IdpResponse {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, location.parse().expect("value"));
        IdpResponse {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: Vec::new(),
            pending: None,
        }
    }

    #[test]
    fn only_a_redirect_of_a_read_to_a_download_host_over_https_is_followed() {
        let box_hosts = DownloadHosts::new(vec!["*.boxcloud.com".into()], None).expect("valid");
        let upstream = Url::parse("https://api.box.com/2.0/files/1/content").expect("url");
        let to = |status, location: &str, method: &Method| {
            box_hosts
                .target(method, &redirect(status, location), &upstream)
                .map(|u| u.to_string())
        };
        let signed = "https://dl.boxcloud.com/d/1/abc/download";
        assert_eq!(to(302, signed, &Method::GET).as_deref(), Some(signed));
        assert_eq!(to(307, signed, &Method::HEAD).as_deref(), Some(signed));
        assert_eq!(
            to(302, signed, &Method::POST),
            None,
            "a write is never followed"
        );
        assert_eq!(to(200, signed, &Method::GET), None);
        for elsewhere in [
            "http://dl.boxcloud.com/d/1/abc/download",
            "https://dl.boxcloud.com:8443/d/1/abc",
            "https://user:pw@dl.boxcloud.com/d/1/abc",
            "https://evil.example/d/1/abc",
            "https://boxcloud.com.evil.example/d",
            "https://a.b.boxcloud.com/d",
            "https://127.0.0.1/d",
            "/2.0/elsewhere",
        ] {
            assert_eq!(to(302, elsewhere, &Method::GET), None, "{elsewhere}");
        }
        let none = DownloadHosts::default();
        assert!(
            none.target(&Method::GET, &redirect(302, signed), &upstream)
                .is_none()
        );
    }

    #[test]
    fn a_standin_origin_keeps_the_path_and_query() {
        let hosts = DownloadHosts::new(vec!["dl.boxcloud.com".into()], Some("http://127.0.0.1:9"))
            .expect("valid");
        let upstream = Url::parse("https://api.box.com/2.0/files/1/content").expect("url");
        let answer = redirect(302, "https://dl.boxcloud.com/d/1/abc/download?x=1");
        assert_eq!(
            hosts
                .target(&Method::GET, &answer, &upstream)
                .map(String::from)
                .as_deref(),
            Some("http://127.0.0.1:9/d/1/abc/download?x=1")
        );
        assert!(DownloadHosts::new(vec!["Dl..x".into()], None).is_err());
        assert!(DownloadHosts::new(vec!["*.x.com".into()], Some("https://x.com")).is_err());
        assert!(DownloadHosts::new(Vec::new(), Some("http://127.0.0.1:9")).is_err());
    }
}
