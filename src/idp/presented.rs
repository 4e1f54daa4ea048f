//! How one IdP call carries the user's token: a fixed header (`Authorization: Bearer`, or the
//! connection's own token header), or an OAuth 1.0a signature made afresh for each attempt.

use http::{HeaderName, HeaderValue, header};

use super::{IdpError, IdpRequest, consent};
use crate::credentials::ClientCredentials;
use crate::secret::IdpAccessToken;

/// How one call carries the user's token.
pub(super) enum Presented<'a> {
    /// The same header on every attempt: `Authorization: Bearer`, or the connection's token
    /// header.
    Fixed(HeaderName, HeaderValue),
    /// An OAuth 1.0a signature, made afresh for each attempt; `form` when the body's parameters
    /// are signed.
    Signed {
        consumer: &'a ClientCredentials,
        secret: &'a crate::secret::TokenSecret,
        form: bool,
    },
}

impl<'a> Presented<'a> {
    /// How `token` is presented for `request`: signed with OAuth 1.0a where it has a token
    /// secret (`consumer` signing), else in the connection's header.
    pub(super) fn new(
        request: &IdpRequest<'_>,
        token: &'a IdpAccessToken,
        consumer: Option<&'a ClientCredentials>,
        sends_body: bool,
    ) -> Result<Self, IdpError> {
        let connection = &request.connection.name;
        if let Some(secret) = token.secret() {
            let consumer = consumer.ok_or_else(|| IdpError::NoSigningClient {
                connection: connection.clone(),
            })?;
            // RFC 5849 §3.4.1.3.1: a body's parameters are signed when it is a form.
            let form = sends_body
                && request
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .is_some_and(|v| {
                        v.trim()
                            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                    });
            return Ok(Self::Signed {
                consumer,
                secret,
                form,
            });
        }
        // A token that cannot be a header value cannot be presented: the user must log in anew.
        let unusable = || {
            IdpError::Consent(consent::Consent::no_token(
                connection,
                request.connection.token_source,
                &request.idp_scopes,
            ))
        };
        let (name, mut value) = match &request.connection.token_header {
            Some(token_header) => (
                token_header.name.clone(),
                token_header.value(token.expose()).ok_or_else(unusable)?,
            ),
            None => (
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| unusable())?,
            ),
        };
        value.set_sensitive(true);
        Ok(Self::Fixed(name, value))
    }
}
