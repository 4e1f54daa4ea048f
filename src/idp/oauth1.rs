//! OAuth 1.0a request signing (RFC 5849), for X in its `oauth1` mode: each call carries an
//! `Authorization: OAuth …` header signed with HMAC-SHA1 over the method, the upstream URL (its
//! query included) and, for a form body, the body's parameters. The key is the X app's consumer
//! secret (the secret's `idp_clients.<connection>.client_secret`) and the user's token secret
//! (`identities[].access_token_secret`); neither goes on the wire.
//!
//! Every header has a fresh nonce (128 random bits from the system's CSPRNG) and the current
//! time: a provider refuses a nonce it has seen with the same timestamp (RFC 5849 §3.3).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use http::{HeaderValue, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::credentials::ClientCredentials;
use crate::secret::TokenSecret;
use secrecy::ExposeSecret;

/// RFC 5849 §3.6: everything but the unreserved characters of RFC 3986 is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a call could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The system's random number generator failed: no nonce could be drawn.
    #[error("no random nonce could be drawn for an OAuth 1.0a signature")]
    NoRandomness,
}

/// What signs one call: the app (consumer) and the user's token, each with its secret.
pub struct Keys<'a> {
    /// The consumer key (`oauth_consumer_key`).
    pub consumer_key: &'a str,
    /// The consumer secret.
    pub consumer_secret: &'a str,
    /// The access token (`oauth_token`).
    pub token: &'a str,
    /// The token secret.
    pub token_secret: &'a str,
}

/// The `Authorization` value for `method` on `url` with `form`, the body's bytes when it is
/// `application/x-www-form-urlencoded` (its parameters are signed); marked sensitive.
pub fn authorization(
    method: &Method,
    url: &Url,
    form: Option<&[u8]>,
    consumer: &ClientCredentials,
    token: &str,
    token_secret: &TokenSecret,
) -> Result<HeaderValue, SignError> {
    let keys = Keys {
        consumer_key: &consumer.client_id,
        consumer_secret: consumer.client_secret.expose_secret(),
        token,
        token_secret: token_secret.expose(),
    };
    let text = header(method, url, form, &keys, &nonce()?, &timestamp());
    // Every byte of it is percent-encoded ASCII: it is always a valid header value.
    let mut value = HeaderValue::from_str(&text).map_err(|_| SignError::NoRandomness)?;
    value.set_sensitive(true);
    Ok(value)
}

/// The header's text with the given nonce and timestamp (RFC 5849 §3.5.1): the protocol
/// parameters and the signature, each percent-encoded.
pub fn header(
    method: &Method,
    url: &Url,
    form: Option<&[u8]>,
    keys: &Keys<'_>,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut protocol = vec![
        ("oauth_consumer_key", keys.consumer_key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", timestamp),
        ("oauth_token", keys.token),
        ("oauth_version", "1.0"),
    ];
    let base = base_string(method.as_str(), url, form, &protocol);
    let signature = sign(&base, keys.consumer_secret, keys.token_secret);
    protocol.push(("oauth_signature", &signature));
    protocol.sort_unstable();
    let fields: Vec<String> = protocol
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", encode(value)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// The signature base string (RFC 5849 §3.4.1): the method, the base string URI and the
/// normalised parameters (query, form body and `protocol`), each percent-encoded, joined by `&`.
pub fn base_string(
    method: &str,
    url: &Url,
    form: Option<&[u8]>,
    protocol: &[(&str, &str)],
) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .chain(form.into_iter().flat_map(url::form_urlencoded::parse))
        .map(|(name, value)| (encode(&name), encode(&value)))
        .chain(protocol.iter().map(|(n, v)| (encode(n), encode(v))))
        .collect();
    // §3.4.1.3.2: sorted by encoded name, then encoded value, byte by byte.
    pairs.sort_unstable();
    let normalised: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!(
        "{}&{}&{}",
        encode(&method.to_ascii_uppercase()),
        encode(&base_uri(url)),
        encode(&normalised.join("&"))
    )
}

/// §3.4.1.2: scheme and host in lowercase (as `Url` holds them), the port only if not the
/// scheme's default (as `Url` omits it), the path as sent; no query or fragment.
fn base_uri(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// §3.4.2: HMAC-SHA1 of `base` keyed with both secrets, encoded and joined by `&`; base64.
fn sign(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key_text = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key_text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, base.as_bytes()))
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// 128 random bits in hex: unique per request without any state to keep.
fn nonce() -> Result<String, SignError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SignError::NoRandomness)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn timestamp() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    /// RFC 5849 §1.2: the photo request, signed with the printed consumer and token secrets
    /// (`oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"`; the RFC sends no `oauth_version`).
    #[test]
    fn the_rfc_5849_photos_request_has_its_printed_signature() {
        let protocol = [
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131202"),
            ("oauth_nonce", "chapoH"),
        ];
        let base = base_string(
            "GET",
            &url("http://photos.example.net/photos?file=vacation.jpg&size=original"),
            None,
            &protocol,
        );
        let signature = sign(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00");
        assert_eq!(encode(&signature), "MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D");
    }

    /// RFC 5849 §3.4.1.1: the base string of the example request, whose query and form body
    /// repeat a name, hold an encoded `=` and `%`, an empty value and a `+` for a space.
    #[test]
    fn the_rfc_5849_base_string_example_is_reproduced() {
        let protocol = [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ];
        let base = base_string(
            "POST",
            &url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"),
            Some(b"c2&a3=2+q"),
            &protocol,
        );
        assert_eq!(
            base,
            concat!(
                "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q",
                "%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_",
                "key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m",
                "ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk",
                "9d7dh3k39sjv7"
            )
        );
    }

    /// Twitter's "Creating a signature" guide: a POST with a query parameter and a form body,
    /// signed to `hCtSmYh+iHYCEqBWrE7C7hYmtUk=`; the whole header as X's "Authorizing a
    /// request" lays it out.
    #[test]
    fn twitters_documented_signature_is_reproduced() {
        let keys = Keys {
            consumer_key: "xvz1evFS4wEEPTGEFPHBog",
            consumer_secret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            token_secret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        };
        let header = header(
            &Method::POST,
            &url("https://api.twitter.com/1.1/statuses/update.json?include_entities=true"),
            Some(b"status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21"),
            &keys,
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            "1318622958",
        );
        assert_eq!(
            header,
            concat!(
                r#"OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", "#,
                r#"oauth_nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", "#,
                r#"oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D", "#,
                r#"oauth_signature_method="HMAC-SHA1", oauth_timestamp="1318622958", "#,
                r#"oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "#,
                r#"oauth_version="1.0""#
            )
        );
    }

    #[test]
    fn a_port_other_than_the_default_is_signed_and_the_default_is_not() {
        assert_eq!(
            base_uri(&url("HTTP://Example.COM:80/a%20b?x=1")),
            "http://example.com/a%20b"
        );
        assert_eq!(
            base_uri(&url("http://127.0.0.1:8123/2/users/me")),
            "http://127.0.0.1:8123/2/users/me"
        );
    }

    #[test]
    fn every_header_has_a_fresh_nonce_and_hides_the_secrets() {
        let consumer: ClientCredentials =
            serde_json::from_str(r#"{"client_id": "ck", "client_secret": "consumer-hidden"}"#)
                .expect("client");
        let secret = TokenSecret::new("token-secret-hidden");
        let target = url("https://api.x.com/2/users/me");
        let headers: Vec<String> = (0..100)
            .map(|_| {
                let value = authorization(&Method::GET, &target, None, &consumer, "tok", &secret)
                    .expect("signed");
                assert!(value.is_sensitive());
                value.to_str().expect("ascii").to_owned()
            })
            .collect();
        let nonces: std::collections::HashSet<&str> = headers
            .iter()
            .map(|h| {
                let start = h.find("oauth_nonce=\"").expect("nonce") + 13;
                &h[start..start + 32]
            })
            .collect();
        assert_eq!(nonces.len(), headers.len(), "a nonce was reused");
        for header in &headers {
            assert!(!header.contains("hidden"), "a secret reached the header");
        }
    }
}
