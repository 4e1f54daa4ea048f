//! The caller's token as the request presents it: the one `Authorization` header, its scheme,
//! and cheap structural checks before any decoding work.

use http::HeaderMap;

use super::AuthError;
use super::dpop::{DpopMode, Scheme};

/// Tokens longer than this are refused before any decoding work: Auth0 access tokens are well
/// under 2 KiB, and a huge header is a cheap way to make a verifier burn CPU.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The token of the single `Authorization: Bearer` header, trimmed; refused before any decoding
/// when there are several `Authorization` headers, another scheme, or more than
/// [`MAX_TOKEN_BYTES`] of token. Public for the fuzz targets.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    presented_token(headers, DpopMode::Off).map(|(_, token)| token)
}

/// The scheme and token of the single `Authorization` header, trimmed: `Bearer`, or `DPoP`
/// where `mode` accepts it (RFC 9449 §7.1); refused before any decoding when there are several
/// `Authorization` headers, another scheme, or more than [`MAX_TOKEN_BYTES`] of token.
pub fn presented_token(headers: &HeaderMap, mode: DpopMode) -> Result<(Scheme, &str), AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::NotBearer);
    }
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(AuthError::Oversized);
    }
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (name, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    let scheme = if name.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if name.eq_ignore_ascii_case("dpop") && mode.accepts_dpop() {
        Scheme::Dpop
    } else {
        return Err(AuthError::NotBearer);
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok((scheme, token))
}

/// Cheap structural checks before any decoding: size, and three non-empty base64url segments.
///
/// An empty signature (the `none` algorithm) fails here already.
pub fn precheck(token: &str) -> Result<(), AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Oversized);
    }
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        let base64url = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
        if segment.is_empty() || !segment.as_bytes().iter().all(base64url) {
            return Err(AuthError::Malformed);
        }
    }
    if segments == 3 {
        Ok(())
    } else {
        Err(AuthError::Malformed)
    }
}
