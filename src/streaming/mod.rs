//! Lambda response streaming (`RESPONSE_MODE=streaming`): an IdP answer's body goes to the
//! caller as the IdP sends it, through the token guard (`idp::guard`), instead of being read whole into one
//! Lambda response. The answer's status and headers are decided as for a buffered answer (every
//! header rule holds); only the body of a successful IdP answer streams. [`runtime`] writes the
//! streamed answer to Lambda's Runtime API, and a stream that must stop early ends with Lambda's
//! error signal ([`Cut`]), never as a body that looks complete.

pub mod ending;
pub mod runtime;

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;

/// Lambda's limit on a streamed response: 200 MB (AWS Lambda quotas, "Invocation response
/// payload size (streamed)"). The prelude is counted against it too, so a body stops at the
/// limit less a margin for it.
pub const MAX_STREAMED_BYTES: u64 = 200_000_000 - 64 * 1024;

/// How the function hands its answers to Lambda (`RESPONSE_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseMode {
    /// One Lambda response per answer, within Lambda's 6 MB (an HTTP API). The default.
    #[default]
    Buffered,
    /// Lambda response streaming (a REST API with `ResponseTransferMode: STREAM`, or a Function
    /// URL with `InvokeMode: RESPONSE_STREAM`): IdP bodies streamed, up to 200 MB.
    Streaming,
}

impl ResponseMode {
    /// `buffered` or `streaming`, as `RESPONSE_MODE` spells it.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "buffered" => Ok(Self::Buffered),
            "streaming" => Ok(Self::Streaming),
            other => Err(format!(
                "{other:?} is not a response mode: buffered or streaming"
            )),
        }
    }

    /// Whether IdP bodies stream.
    pub fn streams(self) -> bool {
        self == Self::Streaming
    }
}

/// Why a streamed body was ended before the IdP's answer was: the caller's stream ends with
/// Lambda's error signal, so that a caller never takes a cut body for a whole one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cut {
    /// The body carried the IdP token.
    #[error("the IdP's answer carries the IdP token")]
    CarriesToken,
    /// The body is compressed and does not inflate (or inflates past the bound), so what it
    /// carries cannot be checked.
    #[error("the IdP's compressed answer cannot be checked")]
    Uncheckable,
    /// The body ran past Lambda's streaming limit.
    #[error("the IdP's answer is larger than Lambda streams ({MAX_STREAMED_BYTES} bytes)")]
    TooLarge,
    /// The IdP's connection failed before its body ended.
    #[error("the IdP's answer broke off")]
    Upstream,
    /// The invocation's deadline came before the body ended.
    #[error("the invocation's deadline passed before the IdP's answer ended")]
    Deadline,
}

impl Cut {
    /// The reason as the summary and audit lines and the error signal name it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::CarriesToken => "carries_token",
            Self::Uncheckable => "uncheckable",
            Self::TooLarge => "too_large",
            Self::Upstream => "upstream_error",
            Self::Deadline => "deadline",
        }
    }
}

/// A streamed body: chunks, or the reason it ends early.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, Cut>> + Send>>;

/// A streamed body riding in an answer's extensions (the answer's own body is then empty), so
/// that every rule applied to a `Response` (CORS, `Vary`, `HEAD`, the size fit) applies to a
/// streamed one unchanged. Taken once, by whoever writes the answer.
#[derive(Clone)]
pub struct StreamedBody(Arc<Mutex<Option<BodyStream>>>);

impl StreamedBody {
    /// Wraps `stream`.
    pub fn new(stream: BodyStream) -> Self {
        Self(Arc::new(Mutex::new(Some(stream))))
    }

    /// The stream, the first time it is asked for.
    pub fn take(&self) -> Option<BodyStream> {
        self.0.lock().ok()?.take()
    }

    /// Replaces the stream (still to be taken) with what `wrap` makes of it.
    pub fn map(&self, wrap: impl FnOnce(BodyStream) -> BodyStream) {
        if let Ok(mut slot) = self.0.lock()
            && let Some(stream) = slot.take()
        {
            *slot = Some(wrap(stream));
        }
    }
}

/// The streamed body of `response`, if it has one.
pub fn of<B>(response: &http::Response<B>) -> Option<&StreamedBody> {
    response.extensions().get::<StreamedBody>()
}

/// An answer as a streamed Lambda response: the metadata prelude (status, headers, cookies as
/// JSON), then the body.
pub struct Streamed {
    /// The prelude's JSON text.
    pub prelude: Vec<u8>,
    /// The body.
    pub body: BodyStream,
}
