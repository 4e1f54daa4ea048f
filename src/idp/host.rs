//! The per-user API host dialect (Salesforce's `<org>.my.salesforce.com`, Shopify's
//! `<shop>.myshopify.com`): the host read from the user's profile as the Management API returns
//! it, checked against the connection's host pattern before any token is leased or any call made.
//!
//! The check is on the text as Auth0 stored it, not on a parsed URL: a URL parser would
//! lowercase, decode or normalise forms (`%2e`, `0x7f.1`, `EVIL.com.`) that should be refused.

use url::Url;

/// The API base of a per-user connection before its host is known: `.invalid` (RFC 6761) never
/// resolves, so a connection used without its host substituted cannot carry a token anywhere.
pub const UNRESOLVED_HOST: &str = "api-host.invalid";

/// Why a per-user host cannot be used (502 `upstream_error`: the host comes from the IdP's
/// profile, not from the caller's request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// None of the connection's sources holds a host for the user.
    #[error("the user's profile holds no API host for this connection")]
    Missing,
    /// The value is not a plain lowercase DNS name inside the connection's host pattern (a
    /// port, userinfo, an IP literal, a trailing dot, an odd or empty label, percent-encoding).
    #[error("the user's API host is not inside the connection's host pattern")]
    Refused,
}

/// Where a connection's per-user API host comes from and what it must fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// `*.my.salesforce.com` (exactly one label for `*`) or an exact host.
    pattern: String,
    /// The base path under the host, without a trailing slash (`/services/data`), or empty.
    path: String,
    /// JSON pointers into `{"user": <root profile>, "identity": <the identity>}`, tried in order.
    sources: Vec<String>,
    /// A loopback stand-in origin (tests only): calls go to `ORIGIN/<host><path>` instead of
    /// `https://<host><path>`. Only `http://127.0.0.1` / `[::1]` / `localhost` are accepted.
    standin_origin: Option<Url>,
}

impl HostRule {
    /// A rule from a catalogue entry's or `IDP_CONNECTIONS`' `api_host`; `Err` if the pattern is
    /// not a lowercase DNS name (with an optional leading `*.` over at least two labels), the path
    /// is not plain, or no source is a JSON pointer under `/user` or `/identity`.
    pub fn new(pattern: &str, path: Option<&str>, sources: &[String]) -> Result<Self, String> {
        check_pattern(pattern, "api_host")?;
        let path = path.unwrap_or("").trim_end_matches('/');
        let plain = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        };
        let path_ok = path.is_empty()
            || path
                .strip_prefix('/')
                .is_some_and(|rest| rest.split('/').all(plain));
        if !path_ok {
            return Err(format!("api_host: bad path {path:?}"));
        }
        if sources.is_empty()
            || sources
                .iter()
                .any(|s| !(s.starts_with("/user/") || s.starts_with("/identity/")))
        {
            return Err("api_host: fields must be JSON pointers under /user/ or /identity/".into());
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            path: path.to_owned(),
            sources: sources.to_vec(),
            standin_origin: None,
        })
    }

    /// The rule with calls sent to a loopback stand-in (`IDP_CONNECTIONS`' `api_host_origin`,
    /// for tests): `Err` for anything but plain http(s) on a loopback host.
    pub fn with_standin_origin(mut self, origin: &str) -> Result<Self, String> {
        self.standin_origin = Some(standin_origin(origin, "api_host_origin")?);
        Ok(self)
    }

    /// The host pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The JSON pointers read, in order.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The placeholder API base a connection holds until its host is known.
    pub fn unresolved_base(&self) -> Url {
        Url::parse(&format!("https://{UNRESOLVED_HOST}{}", self.path)).expect("a valid URL")
    }

    /// The user's API base: the first source that holds a string, its host checked against the
    /// pattern. A source that holds something else is skipped; a host that fails the check is
    /// refused, never passed over for a later source.
    pub fn base_for(&self, profile: &serde_json::Value) -> Result<Url, HostError> {
        self.base_on(self.host_for(profile)?)
    }

    /// The user's host: the first source that holds a string, checked against the pattern.
    pub fn host_for<'a>(&self, profile: &'a serde_json::Value) -> Result<&'a str, HostError> {
        let value = self
            .sources
            .iter()
            .find_map(|pointer| profile.pointer(pointer)?.as_str())
            .ok_or(HostError::Missing)?;
        let host = host_of(value)?;
        if !fits(&self.pattern, host) {
            return Err(HostError::Refused);
        }
        Ok(host)
    }

    /// The API base on `host`, a host [`HostRule::host_for`] checked.
    pub fn base_on(&self, host: &str) -> Result<Url, HostError> {
        self.url_on(host, &self.path)
    }

    /// The placeholder a URL on the user's host holds until the host is known (a token endpoint
    /// on the user's own host): on [`UNRESOLVED_HOST`], so it cannot carry anything anywhere.
    pub fn unresolved_url(path: &str) -> Url {
        Url::parse(&format!("https://{UNRESOLVED_HOST}{path}")).expect("a valid URL")
    }

    /// `path` (plain, as [`HostRule::new`] and the token endpoint's checks leave it) on `host`, a
    /// host [`HostRule::host_for`] checked, over https (or at the loopback stand-in): where the
    /// API base is, and where a token endpoint of the form `https://{host}/…` is for this user.
    pub fn url_on(&self, host: &str, path: &str) -> Result<Url, HostError> {
        let text = match &self.standin_origin {
            None => format!("https://{host}{path}"),
            Some(origin) => format!("{}{host}{path}", origin.as_str()),
        };
        let url = Url::parse(&text).map_err(|_| HostError::Refused)?;
        // The parser must have kept the checked host (or the stand-in's) as it is.
        let expected = match &self.standin_origin {
            None => host,
            Some(origin) => origin.host_str().unwrap_or_default(),
        };
        if url.host_str() != Some(expected) {
            return Err(HostError::Refused);
        }
        Ok(url)
    }
}

/// The host of a profile value: a bare host, or an `https://HOST[/path]` URL (Salesforce's
/// `urls.custom_domain`, `urls.rest`), whose path is dropped (the rule's own path is used).
pub fn host_of(value: &str) -> Result<&str, HostError> {
    let host = match value.strip_prefix("https://") {
        Some(rest) => rest.split_once('/').map_or(rest, |(host, _)| host),
        None if value.contains("://") => return Err(HostError::Refused),
        None => value,
    };
    Ok(host)
}

/// Checks a host pattern of `field`: a lowercase DNS name, with an optional leading `*.` (one
/// label) over at least two labels.
pub fn check_pattern(pattern: &str, field: &str) -> Result<(), String> {
    let fixed = pattern.strip_prefix("*.").unwrap_or(pattern);
    if !is_dns_name(fixed) || (fixed.len() != pattern.len() && !fixed.contains('.')) {
        return Err(format!("{field}: bad pattern {pattern:?}"));
    }
    Ok(())
}

/// A loopback stand-in's origin given in `field` (tests only): `Err` for anything but plain
/// http(s) on a loopback host.
pub fn standin_origin(origin: &str, field: &str) -> Result<Url, String> {
    let url = Url::parse(origin).map_err(|e| format!("{field}: {e}"))?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    if !loopback
        || !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "{field} must be a loopback origin (a test stand-in)"
        ));
    }
    Ok(url)
}

/// Whether `host` fits `pattern`: equal to it, or, for `*.suffix`, exactly one label then
/// `.suffix`; the host a lowercase DNS name throughout.
pub fn fits(pattern: &str, host: &str) -> bool {
    if !is_dns_name(host) || is_ip_like(host) {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .and_then(|label| label.strip_suffix('.'))
            .is_some_and(is_label),
        None => host == pattern,
    }
}

/// A lowercase DNS name: labels of `a-z`, `0-9` and inner `-`, 1 to 63 long, at most 253 in
/// all, no trailing dot.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// All-digit last label: an IPv4 literal in one of its many spellings (`127.1`, `2130706433`).
fn is_ip_like(host: &str) -> bool {
    host.rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn salesforce() -> HostRule {
        HostRule::new(
            "*.my.salesforce.com",
            Some("/services/data"),
            &[
                "/user/urls/custom_domain".to_owned(),
                "/identity/profileData/urls/custom_domain".to_owned(),
            ],
        )
        .expect("valid")
    }

    #[test]
    fn a_host_inside_the_pattern_gives_the_users_base() {
        let rule = salesforce();
        for value in [
            "https://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/",
            "https://acme.my.salesforce.com/services/data/v59.0/",
            "acme.my.salesforce.com",
        ] {
            let profile = json!({"user": {"urls": {"custom_domain": value}}});
            let base = rule.base_for(&profile).expect(value);
            assert_eq!(
                base.as_str(),
                "https://acme.my.salesforce.com/services/data"
            );
        }
        let linked = json!({"user": {}, "identity": {"profileData": {"urls": {"custom_domain": "https://b2.my.salesforce.com"}}}});
        assert_eq!(
            rule.base_for(&linked)
                .expect("from the identity")
                .host_str(),
            Some("b2.my.salesforce.com")
        );
        assert_eq!(rule.base_for(&json!({"user": {}})), Err(HostError::Missing));
    }

    #[test]
    fn hosts_outside_the_pattern_or_odd_are_refused() {
        let rule = salesforce();
        for value in [
            "https://evil.example.com",
            "https://my.salesforce.com",
            "https://a.b.my.salesforce.com",
            "https://acme.my.salesforce.com:8443",
            "https://user@acme.my.salesforce.com",
            "https://user:pw@acme.my.salesforce.com",
            "https://acme.my.salesforce.com.",
            "https://ACME.my.salesforce.com",
            "https://acme.my.salesforce.com.evil.example",
            "https://acme.evil/.my.salesforce.com",
            "https://ac%6de.my.salesforce.com",
            "https://-acme.my.salesforce.com",
            "https://acme-.my.salesforce.com",
            "https://a_b.my.salesforce.com",
            "https://.my.salesforce.com",
            "https://127.0.0.1",
            "https://[::1]",
            "https://2130706433",
            "http://acme.my.salesforce.com",
            "ftp://acme.my.salesforce.com",
            "//acme.my.salesforce.com",
            "acme.my.salesforce.com/x",
            "https://acme.my.salesforce.com\\@evil.example",
            "https://acme.my.salesforce.com?x",
            "https://acme.my.salesforce.com#x",
            "https://acmé.my.salesforce.com",
            "",
        ] {
            let profile = json!({"user": {"urls": {"custom_domain": value}}});
            assert_eq!(
                rule.base_for(&profile),
                Err(HostError::Refused),
                "{value:?}"
            );
        }
        let long = format!("https://{}.my.salesforce.com", "a".repeat(64));
        let profile = json!({"user": {"urls": {"custom_domain": long}}});
        assert_eq!(rule.base_for(&profile), Err(HostError::Refused));
    }

    #[test]
    fn a_refused_host_is_not_passed_over_for_a_later_source() {
        let profile = json!({"user": {"urls": {"custom_domain": "https://evil.example"}},
                             "identity": {"profileData": {"urls": {"custom_domain": "https://ok.my.salesforce.com"}}}});
        assert_eq!(salesforce().base_for(&profile), Err(HostError::Refused));
    }

    #[test]
    fn patterns_paths_sources_and_standins_are_checked() {
        let fields = ["/user/shop".to_owned()];
        for bad in [
            "*",
            "*.com",
            "*.*.x.com",
            "X.com",
            "x.com.",
            "a..b",
            "*.a_b.com",
        ] {
            assert!(HostRule::new(bad, None, &fields).is_err(), "{bad}");
        }
        for bad in ["services", "/a/../b", "/a b", "/a%2fb", "//x"] {
            assert!(
                HostRule::new("*.x.com", Some(bad), &fields).is_err(),
                "{bad}"
            );
        }
        assert!(HostRule::new("*.x.com", None, &[]).is_err());
        assert!(HostRule::new("*.x.com", None, &["shop".to_owned()]).is_err());
        let rule = HostRule::new("shop.x.com", Some("/admin/"), &fields).expect("exact");
        assert!(fits("shop.x.com", "shop.x.com") && !fits("shop.x.com", "a.shop.x.com"));
        for bad in [
            "https://example.com",
            "http://10.0.0.1:80",
            "http://127.0.0.1/x",
        ] {
            assert!(rule.clone().with_standin_origin(bad).is_err(), "{bad}");
        }
        let standin = rule
            .with_standin_origin("http://127.0.0.1:9000")
            .expect("loopback");
        let base = standin
            .base_for(&json!({"user": {"shop": "shop.x.com"}}))
            .expect("base");
        assert_eq!(base.as_str(), "http://127.0.0.1:9000/shop.x.com/admin");
        assert_eq!(
            standin.unresolved_base().as_str(),
            "https://api-host.invalid/admin"
        );
    }
}
