//! `{METHOD} /idp/{connection}/{path…}`: the connection resolved
//! ([`Connections::resolve`](crate::idp::connections::Connections::resolve)), the request checked, the IdP token leased from its source
//! behind the fleet table, the call made, and a refused token replaced before the caller is
//! sent to log in again.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use super::App;
use crate::audit;
use crate::auth::Caller;
use crate::deadline::Deadline;
use crate::error::ApiError;
use crate::idp::connections::TokenSourceKind;
use crate::idp::consent::{self, Consent};
use crate::idp::fleet_source::FleetSource;
use crate::idp::identity_source::IdentitySource;
use crate::idp::response::Links;
use crate::idp::tokens::source::TokenSource;
use crate::idp::tokens::{Provenance, TokenError, TokenKey};
use crate::idp::vault_source::VaultSource;
use crate::idp::{self, IdpError, IdpRequest};
use crate::management::profiles::RequestProfile;
use crate::routes;
use crate::telemetry::{self, Cache};

/// Most replacements of a refused IdP token within one call: one, and one more when the first
/// came from the fleet table.
const MAX_REPLACEMENTS: usize = 2;

impl App {
    /// `{METHOD} /idp/{connection}/{path…}`.
    pub(super) async fn proxy(
        &self,
        caller: &Caller,
        request: &Request,
        name: &str,
        path: &str,
        deadline: &Deadline,
    ) -> Result<Response<Body>, ApiError> {
        // The caller's profile, read at most once in this request, whoever needs it.
        let profile = RequestProfile::new(&self.management, &caller.user_id);
        let connection = self
            .config
            .connections
            .resolve(name, &profile, deadline)
            .await?;
        let connection = &*connection;
        audit::connection(
            connection.strategy.as_deref(),
            connection.token_source.as_str(),
        );
        let body: &[u8] = request.body().as_ref();
        let path = idp::path::normalise(path).map_err(IdpError::from)?;
        // Noted before the checks, so that a refused call is audited with what it asked for.
        audit::path(&path.encoded);
        // Everything about the request is checked before any upstream call.
        let mut idp_request = IdpRequest::checked(
            connection,
            request.method().clone(),
            &path,
            request.uri().query(),
            request.headers(),
            body,
            &|scope| caller.holds(scope),
        )?;
        idp_request.streams = self.config.response_mode.streams();
        let key = TokenKey {
            user: &caller.user_id,
            connection: name,
        };
        // The table's keys are in the secret; without them the table is not used.
        let credentials = match &self.fleet {
            Some(_) => self.credentials.get(deadline).await.ok(),
            None => None,
        };
        let fleet = self
            .fleet
            .as_deref()
            .zip(credentials.as_deref())
            .and_then(|(table, credentials)| table.with_keys(&credentials.store_keys));
        let max_age = self.config.idp_tokens.max_age;
        // Each connection's own source, with the fleet table in front; both kinds side by side
        // in one deployment.
        match connection.token_source {
            TokenSourceKind::Identities => {
                let source = IdentitySource {
                    credentials: &self.credentials,
                    http: &self.http,
                    profile: &profile,
                    connection,
                };
                let source = FleetSource::new(source, fleet, key, max_age);
                self.call_idp(key, request, &idp_request, &source, deadline)
                    .await
            }
            TokenSourceKind::TokenVault => {
                let source = VaultSource {
                    http: &self.http,
                    origin: &self.config.auth0_origin,
                    credentials: &self.credentials,
                    subject_token: &caller.token,
                    connection,
                };
                let source = FleetSource::new(source, fleet, key, max_age);
                self.call_idp(key, request, &idp_request, &source, deadline)
                    .await
            }
        }
    }

    /// Calls the IdP with the caller's token from `source`: the cached one, else the source's;
    /// after a 401, once more with a replacement.
    async fn call_idp<S: TokenSource>(
        &self,
        key: TokenKey<'_>,
        request: &Request,
        idp_request: &IdpRequest<'_>,
        source: &S,
        deadline: &Deadline,
    ) -> Result<Response<Body>, ApiError>
    where
        ApiError: From<TokenError<S::Error>>,
    {
        let connection = idp_request.connection;
        let name = connection.name.as_str();
        // No token at all: the user connects the account or logs in, asking for what the call
        // needs.
        let no_token = || Consent::no_token(name, connection.token_source, &idp_request.idp_scopes);
        let or_consent = |error: TokenError<S::Error>| -> ApiError {
            match error {
                TokenError::ReconsentRequired { .. } => IdpError::Consent(no_token()).into(),
                error => error.into(),
            }
        };
        let lacking = |missing: Vec<String>, granted: Option<&[&str]>| -> ApiError {
            IdpError::Consent(Consent::scopes_missing(
                name,
                connection.token_source,
                missing,
                granted,
            ))
            .into()
        };
        let mut token = self
            .tokens
            .lease(key, source, deadline)
            .await
            .map_err(or_consent)?;
        telemetry::cache_lookup(Cache::IdpToken, token.provenance == Provenance::Cache);
        let mut replacements = 0;
        let mut reread = false;
        let response = loop {
            // Where the token's scopes are known, a call they cannot serve is not sent; a token
            // held from before is checked against the source first, as the user may have
            // consented to more since.
            if let Some(granted) = token.token().scopes() {
                let missing = consent::unmet(&idp_request.idp_scopes, &granted);
                if !missing.is_empty() && !reread {
                    reread = true;
                    token = self
                        .tokens
                        .reread(token, source, deadline)
                        .await
                        .map_err(or_consent)?;
                    continue;
                }
                if !missing.is_empty() {
                    return Err(lacking(missing, Some(&granted)));
                }
            }
            note_token(token.provenance);
            let response = idp::call(
                &self.http,
                idp_request,
                token.token(),
                &self.credentials,
                audit::idp_answer,
                deadline,
            )
            .await?;
            // A claims challenge is about this request, not the token: it goes to the caller as
            // the IdP sent it, and the token stays. A 401 means the IdP did not act on the
            // request, so even a POST may be sent again: with a replacement, and once more if
            // that replacement was only another environment's word (the fleet table's), so that
            // Auth0 is read before the user is sent to log in again.
            if response.status != StatusCode::UNAUTHORIZED || response.is_claims_challenge() {
                // The IdP's word that the token lacks a scope: as for scopes known before the
                // call, a token held from before is checked against the source once, since the
                // user may have consented to more since (Auth0 then holds a new token, which the
                // call is sent again with: the IdP did not act on it).
                let lacks_scope = || {
                    matches!(
                        response.status,
                        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
                    ) && consent::refused_for_scope(
                        response.status,
                        &response.headers,
                        &response.body,
                        connection.scope_answer,
                        &idp_request.idp_scopes,
                        token.token().scopes().as_deref(),
                    )
                    .is_some()
                };
                if reread || !lacks_scope() {
                    break response;
                }
                reread = true;
                let held = token.clone();
                match self.tokens.reread(token, source, deadline).await {
                    Ok(newer) if newer.token() != held.token() => {
                        token = newer;
                        continue;
                    }
                    // The same token, or Auth0 not readable now (down, or the user's reads
                    // spent): the IdP's answer stands.
                    _ => {
                        token = held;
                        break response;
                    }
                }
            }
            let final_word = replacements > 0 && token.provenance != Provenance::Shared;
            if final_word || replacements == MAX_REPLACEMENTS {
                self.tokens.forget(&token, source, deadline).await;
                return Err(IdpError::Consent(no_token()).into());
            }
            token = self
                .tokens
                .replace_refused(name, &token, source, deadline)
                .await
                .map_err(or_consent)?;
            replacements += 1;
        };
        // The IdP's own word that the token lacks a scope, in its dialect: the frontend is told
        // what to ask for rather than handed an opaque error.
        let granted = token.token().scopes();
        if let Some(missing) = consent::refused_for_scope(
            response.status,
            &response.headers,
            &response.body,
            connection.scope_answer,
            &idp_request.idp_scopes,
            granted.as_deref(),
        ) {
            return Err(lacking(missing, granted.as_deref()));
        }
        // A redirect to the provider's pre-signed download host is followed here, without the
        // token: the caller gets the file, not a `Location` it could not use.
        let response =
            match connection
                .downloads
                .target(&idp_request.method, &response, &idp_request.url)
            {
                Some(url) => {
                    let noted = |status: StatusCode, headers: &http::HeaderMap| {
                        audit::idp_answer(status, headers, token.token().expose());
                    };
                    connection
                        .downloads
                        .fetch(
                            &self.http,
                            &idp_request.method,
                            url,
                            idp_request.headers,
                            idp_request.streams,
                            noted,
                            deadline,
                        )
                        .await?
                }
                None => response,
            };
        // Only a `Link` needs the function's own URL.
        let own = response
            .headers
            .contains_key(http::header::LINK)
            .then(|| routes::own_url(request, name))
            .flatten();
        let links = Links {
            upstream: &idp_request.url,
            api_base: &idp_request.connection.api_base,
            own: own.as_deref(),
        };
        Ok(response
            .shape(request.method(), &links, token.token())
            .map_err(IdpError::from)?)
    }
}

/// Notes in the audit record where the token about to be sent came from.
fn note_token(provenance: Provenance) {
    audit::token_from(provenance.as_str(), provenance == Provenance::Renewed);
}
