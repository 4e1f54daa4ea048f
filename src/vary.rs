//! The response's `Vary` (RFC 9110 §12.5.5): the IdP's members and the function's own
//! (`Authorization`, `Origin`) merged into one field, each member once.
//!
//! Appending one more `Vary` field per layer would repeat members and leave each layer's members
//! in a field of its own, for a writer to keep or lose; one merged field says the same to every
//! cache whatever the Lambda response's shape.

use http::{HeaderMap, HeaderValue, header};

/// Adds `members` to the `Vary` of `headers`: every field already there and `members` become one
/// field, each member once whatever its case (the first spelling kept), in order of appearance.
/// A `*` member stands alone, as it says everything. A value that is not UTF-8 is left as it is,
/// for the Lambda response's writer to drop and count.
pub fn add(headers: &mut HeaderMap, members: &[&str]) {
    let mut merged: Vec<String> = Vec::new();
    let mut unreadable = Vec::new();
    for value in headers.get_all(header::VARY) {
        match std::str::from_utf8(value.as_bytes()) {
            Ok(text) => text.split(',').for_each(|m| push_once(&mut merged, m)),
            Err(_) => unreadable.push(value.clone()),
        }
    }
    members.iter().for_each(|m| push_once(&mut merged, m));
    let text = if merged.iter().any(|m| m == "*") {
        "*".to_owned()
    } else {
        merged.join(", ")
    };
    headers.remove(header::VARY);
    // Joined from valid values and the function's own names, so never refused; were it, `*`
    // still keeps a shared cache from serving one caller's answer to another.
    let value = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("*"));
    headers.insert(header::VARY, value);
    for value in unreadable {
        headers.append(header::VARY, value);
    }
}

fn push_once(merged: &mut Vec<String>, member: &str) {
    let member = member.trim();
    if !member.is_empty() && !merged.iter().any(|m| m.eq_ignore_ascii_case(member)) {
        merged.push(member.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::VARY,
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        headers
    }

    fn values(headers: &HeaderMap) -> Vec<&[u8]> {
        headers
            .get_all(header::VARY)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    #[test]
    fn members_of_every_field_merge_into_one_each_once() {
        // GitHub's two fields.
        let mut headers = vary(&[
            b"Accept, Authorization, Cookie, X-GitHub-OTP",
            b"Accept-Encoding, Accept, X-Requested-With",
        ]);
        add(&mut headers, &["authorization"]);
        add(&mut headers, &["origin"]);
        assert_eq!(
            values(&headers),
            [&b"Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding, X-Requested-With, origin"[..]]
        );
        let mut own = HeaderMap::new();
        add(&mut own, &["authorization"]);
        add(&mut own, &["origin", "Origin"]);
        assert_eq!(values(&own), [&b"authorization, origin"[..]]);
    }

    #[test]
    fn a_star_stands_alone_and_empty_members_are_skipped() {
        let mut headers = vary(&[b"Accept", b" , *"]);
        add(&mut headers, &["authorization"]);
        assert_eq!(values(&headers), [&b"*"[..]]);
        let mut headers = vary(&[b", ,"]);
        add(&mut headers, &["origin"]);
        assert_eq!(values(&headers), [&b"origin"[..]]);
    }

    #[test]
    fn a_value_that_is_not_utf8_is_left_for_the_writer() {
        let mut headers = vary(&[b"Accept", b"X-Caf\xe9"]);
        add(&mut headers, &["authorization"]);
        assert_eq!(
            values(&headers),
            [&b"Accept, authorization"[..], &b"X-Caf\xe9"[..]]
        );
    }
}
