//! The request handler: authenticate, route, answer. Holds everything that lives across warm
//! invocations of one execution environment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::credentials::SecretsSource;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, LambdaEvent, Request, RequestExt, Response};
use serde_json::value::RawValue;

use crate::audit;
use crate::auth::{Authenticator, Caller, Target};
use crate::config::Config;
use crate::cors::Cors;
use crate::credentials::CredentialStore;
use crate::deadline::Deadline;
use crate::error::{ApiError, error_chain, json_response};
use crate::event::{self, Origin};
use crate::fleet::FleetTable;
use crate::identities;
use crate::idp::tokens::IdpTokens;
use crate::kill_switch::KillSwitch;
use crate::management::Management;
use crate::management::profiles::{self, RequestProfile};
use crate::routes::{self, Route, RouteName};
use crate::service::Service;
use crate::streaming::{self, Streamed, StreamedBody, ending};
use crate::telemetry::{self, Invocation, Trace};
use crate::upstream::{Http, UpstreamError};
use crate::vary;

mod builder;
mod proxy;

pub use builder::AppBuilder;

/// The function's state, built once per cold start and shared by every invocation.
pub struct App {
    config: Config,
    http: Http,
    auth: Authenticator,
    cors: Cors,
    // Shared with `management`, which needs the M2M client; the IdP token sources are handed it
    // for the IdP apps' clients.
    credentials: Arc<CredentialStore>,
    // The table shared by the fleet, when `TOKEN_TABLE` is set and a client for it was given.
    fleet: Option<Arc<FleetTable>>,
    management: Management,
    tokens: IdpTokens,
    // The operator's kill switch, when `KILL_SWITCH_SECRET_ID` is set.
    kill_switch: Option<KillSwitch>,
}

impl App {
    /// Builds the state from `config`, with `http` as the clients for every outbound HTTP
    /// call and `secrets` (a client, or the SDK configuration to make one from at the first
    /// read) for the secrets, memory only (no fleet table). Nothing is fetched yet.
    pub fn new(config: Config, http: Http, secrets: impl Into<SecretsSource>) -> Self {
        Self::builder(config, http, secrets).build()
    }

    /// As [`App::new`], with the choices beyond the configuration (the fleet table's client,
    /// timings) made on the [`AppBuilder`] before the state is built.
    pub fn builder(config: Config, http: Http, secrets: impl Into<SecretsSource>) -> AppBuilder {
        AppBuilder::new(config, http, secrets.into())
    }

    /// The same state with each kill switch list used for `max_age` (tests shorten it, to see
    /// an operator's edit at the next call).
    pub fn with_kill_switch_max_age(mut self, max_age: Duration) -> Self {
        self.kill_switch = self.kill_switch.map(|s| s.with_max_age(max_age));
        self
    }

    /// How answers reach Lambda: the runtime loop `main` runs follows it.
    pub fn response_mode(&self) -> streaming::ResponseMode {
        self.config.response_mode
    }

    /// Work worth doing during the cold start, so that the first invocation finds it done: the
    /// JWKS fetch, and the secret read followed by the token exchange, side by side. Failures
    /// are only logged: the first invocation tries again.
    pub async fn prefetch(&self, budget: Duration) {
        let deadline = Deadline::after(budget);
        let (keys, token) = tokio::join!(
            self.auth.keys().prefetch(&deadline),
            self.management.token(&deadline)
        );
        if let Err(error) = keys {
            tracing::warn!(error = %error_chain(&error), "JWKS prefetch failed");
        }
        if let Err(error) = token {
            tracing::warn!(error = %error_chain(&error), "credentials or token prefetch failed");
        }
    }

    /// Answers one Lambda invocation: the event checked and converted (a hostile one gets a
    /// documented `400`, never a panic), answered by [`App::handle`], and written as the Lambda
    /// response, byte for byte. The buffered mode's entry point.
    pub async fn invoke(&self, event: LambdaEvent<LambdaRequest>) -> Box<RawValue> {
        let (origin, response) = self.answer(event).await;
        event::serialize(origin, response)
    }

    /// As [`App::invoke`], as a streamed Lambda response (`RESPONSE_MODE=streaming`): the
    /// prelude, then the body, streamed from the IdP where the answer's is.
    pub async fn invoke_streamed(&self, event: LambdaEvent<LambdaRequest>) -> Streamed {
        let (_, response) = self.answer(event).await;
        let prelude = event::prelude(&response);
        let body = match streaming::of(&response).and_then(StreamedBody::take) {
            Some(stream) => stream,
            None => {
                let bytes = match response.into_body() {
                    Body::Text(text) => Bytes::from(text),
                    Body::Binary(bytes) => Bytes::from(bytes),
                    _ => Bytes::new(),
                };
                let chunks = (!bytes.is_empty()).then_some(Ok(bytes));
                Box::pin(futures_util::stream::iter(chunks))
            }
        };
        Streamed { prelude, body }
    }

    /// The answer to one invocation, and where it came from.
    async fn answer(&self, event: LambdaEvent<LambdaRequest>) -> (Origin, Response<Body>) {
        let LambdaEvent { payload, context } = event;
        match event::into_request(payload) {
            Ok(request) => {
                let origin = Origin::of(&request);
                let response = self.handle(request.with_lambda_context(context)).await;
                (origin, response)
            }
            Err(refused) => {
                let answer = async {
                    let response = self.finish(
                        refused.origin,
                        &refused.headers,
                        ApiError::from(refused.error).into_response(),
                    );
                    let method = if refused.head {
                        Method::HEAD
                    } else {
                        Method::GET
                    };
                    answer_to(&method, response)
                };
                // Not yet a request: no route, and no audit line.
                let facts = Facts {
                    request_id: &context.request_id,
                    route: RouteName::Unrouted,
                    connection: None,
                    started: Instant::now(),
                };
                (refused.origin, logged(facts, None, answer).await)
            }
        }
    }

    /// Answers one request. Never fails: every error is a documented JSON response, and every
    /// response fits in Lambda's response limit.
    pub async fn handle(&self, mut request: Request) -> Response<Body> {
        // Canonical already when it comes through `invoke`; a direct caller gets the same rule.
        let method = routes::canonical_method(request.method());
        *request.method_mut() = method;
        let started = Instant::now();
        let context = request.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.clone()).unwrap_or_default();
        let deadline = Deadline::from_epoch_millis(
            context.map_or(0, |c| c.deadline),
            self.config.default_budget,
        );
        let route = routes::route(routes::request_path(&request));
        let name = RouteName::of(route.as_ref(), request.method());
        let connection = match &route {
            // A dimension of the metrics: never a name the caller made up.
            Some(Route::Idp { connection, .. })
                if name == RouteName::Idp && self.config.connections.is_known(connection) =>
            {
                Some(*connection)
            }
            _ => None,
        };
        let facts = Facts {
            request_id: &request_id,
            route: name,
            connection,
            started,
        };
        // A preflight is only the browser asking: no audit line.
        let record = (name != RouteName::Preflight).then(|| audit::Record::of(&request));
        let answer = async {
            if name == RouteName::Preflight {
                return self.cors.preflight(request.headers());
            }
            if let Some(Route::Idp { connection, .. }) = &route {
                audit::connection_asked(connection);
            }
            let response = match self.serve(&request, route, &deadline).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            };
            answer_to(
                request.method(),
                self.finish(Origin::of(&request), request.headers(), response),
            )
        };
        logged(facts, record, answer).await
    }

    /// What every answer but a preflight carries: `Authorization` merged into its `Vary`
    /// (answers are per caller) and the CORS grant; then made ready for Lambda
    /// ([`event::fit`]), after those headers, so that the answer measured and logged is the one
    /// the caller gets. One over Lambda's limit becomes the documented 502, decorated the same.
    fn finish(
        &self,
        origin: Origin,
        request: &HeaderMap,
        response: Response<Body>,
    ) -> Response<Body> {
        let decorate = |mut response: Response<Body>| {
            vary::add(response.headers_mut(), &["authorization"]);
            self.cors.decorate(request, &mut response);
            response
        };
        event::fit(origin, decorate(response))
            .unwrap_or_else(|too_large| decorate(ApiError::from(too_large).into_response()))
    }

    async fn serve(
        &self,
        request: &Request,
        route: Option<Route<'_>>,
        deadline: &Deadline,
    ) -> Result<Response<Body>, ApiError> {
        // Authentication comes first, so that nothing about routes or connections is revealed
        // to an anonymous caller.
        let target = Target {
            method: request.method(),
            url: routes::caller_url(request),
        };
        let caller = self
            .auth
            .authenticate(request.headers(), &target, deadline)
            .await?;
        // Every refusal from here on is an authenticated caller's, audited under their `sub`.
        audit::caller(&caller.user_id);
        self.auth.authorize(&caller)?;
        if let Some(switch) = &self.kill_switch {
            let connection = match &route {
                Some(Route::Idp { connection, .. }) => Some(*connection),
                _ => None,
            };
            switch.check(&caller.user_id, connection, deadline).await?;
        }
        let route = route.ok_or(ApiError::NotFound)?;
        if let Some(methods) = routes::allowed_methods(&route)
            && !methods.contains(request.method())
        {
            return Err(ApiError::MethodNotAllowed {
                allow: routes::allow_header(methods),
            });
        }
        match route {
            Route::Identities => self.identities(&caller, deadline).await,
            Route::Idp { connection, path } => {
                self.proxy(&caller, request, connection, path, deadline)
                    .await
            }
        }
    }

    /// `GET /identities`.
    async fn identities(
        &self,
        caller: &Caller,
        deadline: &Deadline,
    ) -> Result<Response<Body>, ApiError> {
        let user = RequestProfile::new(&self.management, &caller.user_id)
            .recent(profiles::IDENTITIES_MAX_AGE, deadline)
            .await?;
        let credentials = self.credentials.get(deadline).await?;
        let view = identities::view(&user, &self.config.connections, &credentials);
        let body = serde_json::to_value(view).map_err(|_| {
            ApiError::Management(
                UpstreamError::garbage(Service::ManagementApi, "unserialisable").into(),
            )
        })?;
        Ok(json_response(StatusCode::OK, &body))
    }
}

/// What an invocation's summary line says beside its answer and its trace, known at its start.
struct Facts<'a> {
    request_id: &'a str,
    route: RouteName,
    connection: Option<&'a str>,
    started: Instant,
}

/// Answers with `answer`, traced and, for a request to a route (`record`), recorded; then
/// writes the invocation's summary line and, with a record, its audit line: the one place an
/// invocation ends, whether it was a request or an event refused before it became one.
fn logged<'a>(
    facts: Facts<'a>,
    record: Option<audit::Record>,
    answer: impl Future<Output = Response<Body>> + Send + 'a,
) -> impl Future<Output = Response<Body>> + Send + 'a {
    // Traced (boxed) here, not in the async block: a future holding `answer`'s whole call chain
    // in its type overruns rustc's query depth limit (`telemetry::traced`).
    let traced = telemetry::traced(answer);
    async move {
        let ((response, trace), record) = match record {
            Some(record) => {
                let (output, record) = audit::recorded(record, traced).await;
                (output, Some(record))
            }
            None => (traced.await, None),
        };
        let status = response.status().as_u16();
        // A streamed body's lines wait for its end: its bytes, its time and how it ended are
        // known only then.
        if let Some(streamed) = streaming::of(&response) {
            let request_id = facts.request_id.to_owned();
            let connection = facts.connection.map(str::to_owned);
            let (route, started) = (facts.route, facts.started);
            streamed.map(|stream| {
                ending::reported(stream, move |ending| {
                    let mut trace = trace;
                    if let Some(cut) = &ending.cut {
                        tracing::warn!(reason = cut.code(), error = %cut, "a streamed answer was ended early");
                        trace.note_stream_cut(cut.code());
                    } else if ending.abandoned {
                        // The writer stopped taking it: the caller went away, or Lambda's
                        // stream failed. Not a whole answer.
                        tracing::info!("a streamed answer was abandoned before its end");
                        trace.note_stream_cut("abandoned");
                    }
                    let invocation = Invocation {
                        request_id: &request_id,
                        route,
                        connection: connection.as_deref(),
                        status,
                        duration: started.elapsed(),
                    };
                    write_lines(&invocation, &trace, record.as_ref(), ending.bytes);
                })
            });
            return response;
        }
        let invocation = Invocation {
            request_id: facts.request_id,
            route: facts.route,
            connection: facts.connection,
            status,
            duration: facts.started.elapsed(),
        };
        let bytes = event::body_len(response.body()) as u64;
        write_lines(&invocation, &trace, record.as_ref(), bytes);
        response
    }
}

/// The invocation's summary line and, for a request to a route, its audit line, with the bytes
/// of body the caller was sent.
fn write_lines(
    invocation: &Invocation<'_>,
    trace: &Trace,
    record: Option<&audit::Record>,
    bytes: u64,
) {
    trace.log(invocation);
    if let Some(record) = record {
        audit::log(&record.line(invocation, trace, bytes));
    }
}

/// The complete answer as `method` gets it: for a `HEAD`, the headers its `GET` would get
/// (`Content-Length` of that body included) and no body (RFC 9110 §9.3.2), the function's own
/// errors included.
fn answer_to(method: &Method, mut response: Response<Body>) -> Response<Body> {
    if method != Method::HEAD {
        return response;
    }
    let length = event::body_len(response.body());
    // A proxied `HEAD` is bodiless already, with the IdP's own `Content-Length`.
    if length > 0 {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = Body::Empty;
    response
}
