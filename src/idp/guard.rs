//! The IdP token's guard over an answer's body: whole (a buffered answer) or chunk by chunk as
//! it streams. A plain body is searched as it is; a compressed one (`gzip`, `deflate`) is
//! inflated beside it and the inflated bytes searched, never kept. While streaming, bytes that
//! could be the start of the token are held back until the next bytes show they are not: a
//! token is never released in part, whatever the chunk boundaries (plain), and a compressed
//! chunk is released only once everything it inflated to is known clean.

use std::collections::VecDeque;
use std::io::Write;

use bytes::Bytes;
use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use http::HeaderValue;

use crate::deadline::Deadline;
use crate::idp::UnsafeAnswer;
use crate::secret::IdpAccessToken;
use crate::streaming::{BodyStream, Cut, MAX_STREAMED_BYTES};

/// Most inflated bytes checked for a buffered answer: past this, an answer (a compression bomb,
/// or more than any Lambda response holds) is refused.
pub const MAX_INFLATED_BUFFERED: u64 = 64 * 1024 * 1024;

/// Most inflated bytes checked for a streamed answer: ten times Lambda's streaming limit, which
/// text compresses within; past it the stream is ended as uncheckable.
pub const MAX_INFLATED_STREAMED: u64 = 10 * MAX_STREAMED_BYTES;

/// Searches the bytes it is given for the secrets, keeping only the tail that could be the start
/// of one: a [`Write`] sink, so that an inflater can feed it as it inflates.
struct Scanner {
    token: IdpAccessToken,
    /// The longest suffix of everything seen that is a proper prefix of a secret.
    suspect: Vec<u8>,
    /// Bytes seen.
    total: u64,
    /// Most bytes it may see.
    limit: u64,
    found: Option<UnsafeAnswer>,
}

impl Scanner {
    /// A scanner that takes nothing: a placeholder for a moment's swap.
    fn spent() -> Self {
        Self::new(IdpAccessToken::new(""), 0)
    }

    fn new(token: IdpAccessToken, limit: u64) -> Self {
        Self {
            token,
            suspect: Vec::new(),
            total: 0,
            limit,
            found: None,
        }
    }

    /// The token and, for OAuth 1.0a, its secret: the byte strings that may not pass.
    fn secrets(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.token.expose())
            .chain(self.token.secret().map(|s| s.expose()))
            .map(str::as_bytes)
            .filter(|s| !s.is_empty())
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
        if let Some(found) = &self.found {
            return Err(found.clone());
        }
        self.total += bytes.len() as u64;
        let result = if self.total > self.limit {
            Err(UnsafeAnswer::Uninflatable)
        } else {
            self.search(bytes)
        };
        if let Err(found) = &result {
            self.found = Some(found.clone());
        }
        result
    }

    fn search(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
        let longest = self.secrets().map(<[u8]>::len).max().unwrap_or(0);
        if longest == 0 {
            return Ok(());
        }
        // A secret within these bytes, or begun in the held suffix and ended in them: the
        // suffix is a prefix of it, so suffix + the next `longest` bytes hold it whole.
        let head = &bytes[..bytes.len().min(longest)];
        let mut seam = Vec::with_capacity(self.suspect.len() + head.len());
        seam.extend_from_slice(&self.suspect);
        seam.extend_from_slice(head);
        if self
            .secrets()
            .any(|s| contains(bytes, s) || contains(&seam, s))
        {
            return Err(UnsafeAnswer::CarriesToken);
        }
        // The new suspect suffix lies within the last `longest - 1` bytes seen.
        let keep = longest - 1;
        let mut tail = Vec::with_capacity(keep);
        if bytes.len() < keep {
            let from_old = (keep - bytes.len()).min(self.suspect.len());
            tail.extend_from_slice(&self.suspect[self.suspect.len() - from_old..]);
        }
        tail.extend_from_slice(&bytes[bytes.len().saturating_sub(keep)..]);
        let start = self
            .secrets()
            .filter_map(|secret| prefix_start(&tail, secret))
            .min()
            .unwrap_or(tail.len());
        tail.drain(..start);
        self.suspect = tail;
        Ok(())
    }
}

impl Write for Scanner {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf)
            .map(|()| buf.len())
            .map_err(|_| std::io::Error::other("the IdP token"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where in `tail` the longest suffix that is a proper prefix of `secret` starts.
fn prefix_start(tail: &[u8], secret: &[u8]) -> Option<usize> {
    let first = *secret.first()?;
    memchr::memchr_iter(first, tail).find(|&i| {
        let suffix = &tail[i..];
        suffix.len() < secret.len() && secret.starts_with(suffix)
    })
}

/// Whether `needle` is in `haystack`: searched, not compared at every offset.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// How the body is encoded.
enum Inflater {
    Plain(Scanner),
    Gzip(GzDecoder<Scanner>),
    /// `deflate` as RFC 9110 defines it (zlib), or raw, as some servers send it: told apart by
    /// the first two bytes, held until they come.
    Deflate(Option<Vec<u8>>, Scanner),
    Zlib(ZlibDecoder<Scanner>),
    Raw(DeflateDecoder<Scanner>),
}

impl Inflater {
    fn scanner(&self) -> &Scanner {
        match self {
            Self::Plain(s) | Self::Deflate(_, s) => s,
            Self::Gzip(d) => d.get_ref(),
            Self::Zlib(d) => d.get_ref(),
            Self::Raw(d) => d.get_ref(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
        let written = match self {
            Self::Plain(scanner) => return scanner.feed(bytes),
            Self::Deflate(start, _) => {
                let start = start.get_or_insert_with(Vec::new);
                start.extend_from_slice(bytes);
                if start.len() < 2 {
                    return Ok(());
                }
                let start = std::mem::take(start);
                // A zlib stream's header: compression method 8, and a multiple of 31.
                let zlib =
                    start[0] & 0x0f == 8 && u16::from_be_bytes([start[0], start[1]]) % 31 == 0;
                let Self::Deflate(_, scanner) =
                    std::mem::replace(self, Self::Plain(Scanner::spent()))
                else {
                    unreachable!("matched above")
                };
                *self = if zlib {
                    Self::Zlib(ZlibDecoder::new(scanner))
                } else {
                    Self::Raw(DeflateDecoder::new(scanner))
                };
                return self.write(&start);
            }
            // Flushed: everything these bytes decode to is searched before they may go, so that
            // no chunk is released with a token's literals still inside the decoder.
            Self::Gzip(d) => d.write_all(bytes).and_then(|()| d.flush()),
            Self::Zlib(d) => d.write_all(bytes).and_then(|()| d.flush()),
            Self::Raw(d) => d.write_all(bytes).and_then(|()| d.flush()),
        };
        written.map_err(|_| self.failure())
    }

    fn finish(&mut self) -> Result<(), UnsafeAnswer> {
        let finished = match self {
            Self::Plain(_) => return Ok(()),
            // Fewer than two bytes: no deflate stream.
            Self::Deflate(start, _) => {
                return match start {
                    Some(_) => Err(UnsafeAnswer::Uninflatable),
                    None => Ok(()),
                };
            }
            Self::Gzip(d) => d.try_finish(),
            Self::Zlib(d) => d.try_finish(),
            Self::Raw(d) => d.try_finish(),
        };
        // Bytes after the end of a compressed stream are refused as they come (the decoder
        // takes no more), never passed unchecked.
        finished.map_err(|_| self.failure())
    }

    /// Why a write failed: the scanner's finding, else a body that does not inflate.
    fn failure(&self) -> UnsafeAnswer {
        self.scanner()
            .found
            .clone()
            .unwrap_or(UnsafeAnswer::Uninflatable)
    }
}

/// The guard over one answer's body.
pub struct Guard {
    inflater: Inflater,
    /// Chunks received and not yet released, each with the count of (inflated) bytes seen once
    /// it was fed.
    held: VecDeque<(Bytes, u64)>,
    plain: bool,
}

impl Guard {
    /// A guard for a body in `encoding` that must not carry `token` (or an OAuth 1.0a token's
    /// secret), inflating at most `max_inflated` bytes; `Err` for an encoding it cannot check.
    pub fn new(
        token: &IdpAccessToken,
        encoding: Option<&HeaderValue>,
        max_inflated: u64,
    ) -> Result<Self, UnsafeAnswer> {
        let encoding = encoding
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let scanner = Scanner::new(token.clone(), max_inflated);
        let inflater = match encoding.as_str() {
            "" | "identity" => Inflater::Plain(scanner),
            "gzip" | "x-gzip" => Inflater::Gzip(GzDecoder::new(scanner)),
            "deflate" => Inflater::Deflate(None, scanner),
            other => return Err(UnsafeAnswer::Encoding(other.to_owned())),
        };
        let plain = matches!(inflater, Inflater::Plain(_));
        Ok(Self {
            inflater,
            held: VecDeque::new(),
            plain,
        })
    }

    /// Checks a whole body: `Ok` when it is clean and, if compressed, inflates completely.
    pub fn check_whole(mut self, body: &[u8]) -> Result<(), UnsafeAnswer> {
        self.inflater.write(body)?;
        self.inflater.finish()
    }

    /// Takes the next chunk of a streamed body; returns what may now be sent (possibly
    /// nothing, while a possible start of the token is held back).
    pub fn push(&mut self, chunk: Bytes) -> Result<Vec<Bytes>, UnsafeAnswer> {
        self.inflater.write(&chunk)?;
        let seen = self.inflater.scanner().total;
        self.held.push_back((chunk, seen));
        Ok(self.release())
    }

    /// Ends a streamed body: what was held, now known clean, or why the body cannot pass.
    pub fn finish(&mut self) -> Result<Vec<Bytes>, UnsafeAnswer> {
        self.inflater.finish()?;
        Ok(self.held.drain(..).map(|(chunk, _)| chunk).collect())
    }

    /// Bytes held back: what a stream ended now would never send.
    pub fn held(&self) -> usize {
        self.held.iter().map(|(chunk, _)| chunk.len()).sum()
    }

    /// The held chunks (or, for a plain body, bytes) now known clean.
    fn release(&mut self) -> Vec<Bytes> {
        let scanner = self.inflater.scanner();
        let clean = scanner.total - scanner.suspect.len() as u64;
        let mut released = Vec::new();
        while let Some((chunk, seen)) = self.held.front_mut() {
            if *seen <= clean {
                released.push(self.held.pop_front().map(|(c, _)| c).unwrap_or_default());
                continue;
            }
            // A plain chunk's bytes are its own: the clean part of it goes now.
            if self.plain {
                let start = *seen - chunk.len() as u64;
                if clean > start {
                    released.push(chunk.split_to((clean - start) as usize));
                }
            }
            break;
        }
        released
    }
}

/// The IdP's body from `response`, as it comes, through `guard`: ended with a [`Cut`] when the
/// guard refuses it, when it runs past Lambda's streaming limit, when the IdP's connection fails
/// or when the deadline comes.
pub fn guarded(response: reqwest::Response, guard: Guard, deadline: Deadline) -> BodyStream {
    struct State {
        response: reqwest::Response,
        guard: Guard,
        deadline: Deadline,
        ready: VecDeque<Bytes>,
        read: u64,
        ended: bool,
    }
    let state = State {
        response,
        guard,
        deadline,
        ready: VecDeque::new(),
        read: 0,
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        |mut state| async move {
            loop {
                if let Some(chunk) = state.ready.pop_front() {
                    return Some((Ok(chunk), state));
                }
                if state.ended {
                    return None;
                }
                let next = tokio::time::timeout(state.deadline.remaining(), state.response.chunk());
                let outcome = match next.await {
                    Err(_) => Err(Cut::Deadline),
                    Ok(Err(_)) => Err(Cut::Upstream),
                    Ok(Ok(Some(chunk))) => {
                        state.read += chunk.len() as u64;
                        if state.read > MAX_STREAMED_BYTES {
                            Err(Cut::TooLarge)
                        } else {
                            state.guard.push(chunk).map_err(Cut::from)
                        }
                    }
                    Ok(Ok(None)) => {
                        state.ended = true;
                        state.guard.finish().map_err(Cut::from)
                    }
                };
                match outcome {
                    Ok(released) => state
                        .ready
                        .extend(released.into_iter().filter(|c| !c.is_empty())),
                    Err(cut) => {
                        // Held-back bytes are never sent: they could be the token's start.
                        state.ended = true;
                        state.ready.clear();
                        return Some((Err(cut), state));
                    }
                }
            }
        },
    ))
}

impl From<UnsafeAnswer> for Cut {
    fn from(unsafe_answer: UnsafeAnswer) -> Self {
        match unsafe_answer {
            UnsafeAnswer::CarriesToken => Self::CarriesToken,
            UnsafeAnswer::Encoding(_) | UnsafeAnswer::Uninflatable => Self::Uncheckable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;

    const TOKEN: &str = "gho_secret_token_value";

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("zlib");
        encoder.finish().expect("zlib")
    }

    fn raw(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("deflate");
        encoder.finish().expect("deflate")
    }

    /// Streams `body` in chunks of `size` through a guard; what was released, and how it ended.
    fn stream(
        body: &[u8],
        encoding: Option<&'static str>,
        size: usize,
    ) -> (Vec<u8>, Result<(), UnsafeAnswer>) {
        let token = IdpAccessToken::new(TOKEN);
        let encoding = encoding.map(HeaderValue::from_static);
        let mut guard =
            Guard::new(&token, encoding.as_ref(), MAX_INFLATED_STREAMED).expect("guard");
        let mut sent = Vec::new();
        for chunk in body.chunks(size.max(1)) {
            match guard.push(Bytes::copy_from_slice(chunk)) {
                Ok(out) => out.iter().for_each(|b| sent.extend_from_slice(b)),
                Err(error) => return (sent, Err(error)),
            }
        }
        match guard.finish() {
            Ok(out) => {
                out.iter().for_each(|b| sent.extend_from_slice(b));
                (sent, Ok(()))
            }
            Err(error) => (sent, Err(error)),
        }
    }

    #[test]
    fn a_clean_body_passes_byte_for_byte_in_any_chunking() {
        let body: Vec<u8> = b"gh gho_ gho_secret_ and gho_secret_token_valu: no token here "
            .iter()
            .cycle()
            .take(10_000)
            .copied()
            .collect();
        for size in [1, 2, 7, 21, 22, 23, 1000, 20_000] {
            let (sent, end) = stream(&body, None, size);
            assert_eq!(end, Ok(()), "chunks of {size}");
            assert_eq!(sent, body, "chunks of {size}");
        }
        for (encoding, compressed) in [
            ("gzip", gzip(&body)),
            ("deflate", zlib(&body)),
            ("deflate", raw(&body)),
        ] {
            for size in [1, 3, 100, 100_000] {
                let (sent, end) = stream(&compressed, Some(encoding), size);
                assert_eq!(end, Ok(()), "{encoding} in chunks of {size}");
                assert_eq!(sent, compressed, "{encoding} in chunks of {size}");
            }
        }
    }

    #[test]
    fn no_part_of_the_token_is_released_before_the_stream_is_cut() {
        let body = format!("{}{TOKEN}{}", "a".repeat(5000), "b".repeat(5000));
        for size in [1, 2, 5, 13, 22, 64, 4096, 100_000] {
            let (sent, end) = stream(body.as_bytes(), None, size);
            assert_eq!(end, Err(UnsafeAnswer::CarriesToken), "chunks of {size}");
            // Everything before the token may go; not one byte of the token.
            assert!(
                sent.len() <= 5000,
                "chunks of {size}: {} bytes sent",
                sent.len()
            );
            assert!(sent.iter().all(|b| *b == b'a'));
        }
        for (encoding, compressed) in [
            ("gzip", gzip(body.as_bytes())),
            ("deflate", zlib(body.as_bytes())),
        ] {
            for size in [1, 7, 64, 100_000] {
                let (sent, end) = stream(&compressed, Some(encoding), size);
                assert_eq!(end, Err(UnsafeAnswer::CarriesToken), "{encoding}/{size}");
                // What was released inflates to a clean prefix: no byte of the token's.
                let mut inflated = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut flate2::read::ZlibDecoder::new(&sent[..]),
                    &mut inflated,
                );
                if encoding == "gzip" {
                    let _ = std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&sent[..]),
                        &mut inflated,
                    );
                }
                assert!(inflated.iter().all(|b| *b == b'a'), "{encoding}/{size}");
            }
        }
    }

    #[test]
    fn an_oauth1_secret_is_guarded_too() {
        let token = IdpAccessToken::new("public-token")
            .with_secret(Some(crate::secret::TokenSecret::new("the-token-secret")));
        let mut guard = Guard::new(&token, None, MAX_INFLATED_STREAMED).expect("guard");
        assert!(guard.push(Bytes::from_static(b"...the-token-")).is_ok());
        assert_eq!(
            guard.push(Bytes::from_static(b"secret...")),
            Err(UnsafeAnswer::CarriesToken)
        );
    }

    #[test]
    fn held_bytes_are_only_a_possible_start_of_the_token() {
        let token = IdpAccessToken::new(TOKEN);
        let mut guard = Guard::new(&token, None, MAX_INFLATED_STREAMED).expect("guard");
        let out = guard
            .push(Bytes::from_static(b"hello gho_se"))
            .expect("clean");
        assert_eq!(out.concat(), b"hello ");
        assert_eq!(guard.held(), 6);
        let out = guard.push(Bytes::from_static(b"a")).expect("clean");
        assert_eq!(out.concat(), b"gho_sea");
        assert_eq!(guard.held(), 0);
    }

    #[test]
    fn bad_compression_and_unknown_encodings_are_refused() {
        let token = IdpAccessToken::new(TOKEN);
        let br = HeaderValue::from_static("br");
        assert!(matches!(
            Guard::new(&token, Some(&br), 1).err(),
            Some(UnsafeAnswer::Encoding(e)) if e == "br"
        ));
        let (_, end) = stream(b"not gzip at all", Some("gzip"), 4);
        assert_eq!(end, Err(UnsafeAnswer::Uninflatable));
        let whole = gzip(b"cut short");
        let (_, end) = stream(&whole[..whole.len() - 4], Some("gzip"), 4);
        assert_eq!(end, Err(UnsafeAnswer::Uninflatable));
        // A bomb: past the bound it is not inflated further.
        let bomb = gzip(&vec![0; 2 << 20]);
        let gz = HeaderValue::from_static("gzip");
        let guard = Guard::new(&token, Some(&gz), 1 << 20).expect("guard");
        assert_eq!(guard.check_whole(&bomb), Err(UnsafeAnswer::Uninflatable));
    }
}
