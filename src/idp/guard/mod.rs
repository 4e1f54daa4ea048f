//! The IdP token's guard over an answer's body: whole (a buffered answer) or chunk by chunk as
//! it streams. A plain body is searched as it is; a compressed one (`gzip`, `deflate`) is
//! inflated beside it and the inflated bytes searched, never kept. While streaming, bytes that
//! could be the start of the token are held back until the next bytes show they are not: a
//! token is never released in part, whatever the chunk boundaries (plain), and a compressed
//! chunk is released only once everything it inflated to is known clean.
//!
//! - `scanner`: the search, keeping only the tail that could start a secret;
//! - `inflater`: the `Content-Encoding` undone beside the stream, into the scanner.

use std::collections::VecDeque;

use bytes::Bytes;
use flate2::write::GzDecoder;
use http::HeaderValue;

use crate::deadline::Deadline;
use crate::idp::UnsafeAnswer;
use crate::secret::IdpAccessToken;
use crate::streaming::{BodyStream, Cut, MAX_STREAMED_BYTES};
use inflater::Inflater;
use scanner::Scanner;

mod inflater;
mod scanner;

/// Most inflated bytes checked for a buffered answer: past this, an answer (a compression bomb,
/// or more than any Lambda response holds) is refused.
pub const MAX_INFLATED_BUFFERED: u64 = 64 * 1024 * 1024;

/// Most inflated bytes checked for a streamed answer: ten times Lambda's streaming limit, which
/// text compresses within; past it the stream is ended as uncheckable.
pub const MAX_INFLATED_STREAMED: u64 = 10 * MAX_STREAMED_BYTES;

/// Most bytes of a compressed body held back at once: a body whose inflated text keeps ending in
/// what could be the token's start while its compressed bytes pile up (empty blocks) is cut as
/// uncheckable rather than held in memory.
const MAX_HELD: usize = 1 << 20;

/// The most compressed bytes one deflate symbol's bits span (a 15-bit length code with 5 extra
/// bits, a 15-bit distance code with 13 extra bits: 48 bits, misaligned): compressed bytes are
/// released only this far behind the first one that could hold bits of a suspect symbol.
const SYMBOL_SPAN: u64 = 8;

/// A chunk received and not yet released.
struct Held {
    bytes: Bytes,
    /// Its offset in the body as received.
    start: u64,
    /// Inflated bytes seen once it was fed.
    seen: u64,
}

/// The guard over one answer's body.
pub struct Guard {
    inflater: Inflater,
    /// For a compressed body, the bytes as they are sent searched too: a gzip header's name or
    /// comment, a stored block, are never inflated.
    raw: Option<Scanner>,
    held: VecDeque<Held>,
    received: u64,
}

impl Guard {
    /// A guard for a body in `encoding` that must not carry `token` (or an OAuth 1.0a token's
    /// secret), inflating at most `max_inflated` bytes; `Err` for an encoding it cannot check.
    pub fn new(
        token: &IdpAccessToken,
        encoding: Option<&HeaderValue>,
        max_inflated: u64,
    ) -> Result<Self, UnsafeAnswer> {
        Self::for_codings(token, encoding, max_inflated)
    }

    /// As [`Guard::new`], for every `Content-Encoding` field line of an answer (a caller's client
    /// applies them all, in order): `identity` is no coding, one other coding is checked, and
    /// more than one is refused as an encoding the guard cannot check.
    pub fn for_codings<'a>(
        token: &IdpAccessToken,
        lines: impl IntoIterator<Item = &'a HeaderValue>,
        max_inflated: u64,
    ) -> Result<Self, UnsafeAnswer> {
        let codings: Vec<String> = lines
            .into_iter()
            .flat_map(|line| {
                String::from_utf8_lossy(line.as_bytes())
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty() && c != "identity")
            .collect();
        let scanner = Scanner::new(token.clone(), max_inflated);
        let inflater = match codings.as_slice() {
            [] => Inflater::Plain(scanner),
            [one] if one == "gzip" || one == "x-gzip" => Inflater::Gzip(GzDecoder::new(scanner)),
            [one] if one == "deflate" => Inflater::Deflate(None, scanner),
            other => return Err(UnsafeAnswer::Encoding(other.join(", "))),
        };
        let raw = (!matches!(inflater, Inflater::Plain(_)))
            .then(|| Scanner::new(token.clone(), u64::MAX));
        Ok(Self {
            inflater,
            raw,
            held: VecDeque::new(),
            received: 0,
        })
    }

    /// Checks a whole body: `Ok` when it is clean and, if compressed, inflates completely.
    pub fn check_whole(mut self, body: &[u8]) -> Result<(), UnsafeAnswer> {
        self.feed(body)?;
        self.end()
    }

    /// Takes the next chunk of a streamed body; returns what may now be sent (possibly
    /// nothing, while a possible start of the token is held back).
    pub fn push(&mut self, chunk: Bytes) -> Result<Vec<Bytes>, UnsafeAnswer> {
        self.feed(&chunk)?;
        let start = self.received - chunk.len() as u64;
        let seen = self.inflater.scanner().total;
        self.held.push_back(Held {
            bytes: chunk,
            start,
            seen,
        });
        if self.raw.is_some() && self.held() > MAX_HELD {
            return Err(UnsafeAnswer::Uninflatable);
        }
        Ok(self.release())
    }

    /// Ends a streamed body: what was held, now known clean, or why the body cannot pass.
    pub fn finish(&mut self) -> Result<Vec<Bytes>, UnsafeAnswer> {
        self.end()?;
        Ok(self.held.drain(..).map(|held| held.bytes).collect())
    }

    /// Bytes held back: what a stream ended now would never send.
    pub fn held(&self) -> usize {
        self.held.iter().map(|held| held.bytes.len()).sum()
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
        self.received += bytes.len() as u64;
        if let Some(raw) = &mut self.raw {
            raw.feed(bytes)?;
        }
        self.inflater.write(bytes)
    }

    /// The body is over: a compressed one must end where its stream does (an empty one is no
    /// stream at all, as a buffered empty body is not checked), and it may not end in a long
    /// start of the token (an echo cut short is still the token).
    fn end(&mut self) -> Result<(), UnsafeAnswer> {
        if self.received > 0 {
            self.inflater.finish()?;
        }
        let scanners = std::iter::once(self.inflater.scanner()).chain(self.raw.as_ref());
        for scanner in scanners {
            if scanner.ends_in_a_long_start() {
                return Err(UnsafeAnswer::CarriesToken);
            }
        }
        Ok(())
    }

    /// The held chunks (or parts of them) now known clean.
    fn release(&mut self) -> Vec<Bytes> {
        let scanner = self.inflater.scanner();
        let clean = scanner.total - scanner.suspect.len() as u64;
        let bound = match &self.raw {
            // A plain body's offsets are the text's.
            None => clean,
            Some(raw) => {
                // Up to the symbol that could have made the first suspect inflated byte (and
                // never the last symbol's bytes, whose output is still to come), and never a
                // possible start of the token as it stands in the compressed bytes.
                let suspect_from = self
                    .held
                    .iter()
                    .find(|held| held.seen > clean)
                    .map_or(self.received, |held| held.start);
                let by_output = suspect_from.saturating_sub(SYMBOL_SPAN);
                by_output.min(raw.total - raw.suspect.len() as u64)
            }
        };
        let mut released = Vec::new();
        while let Some(held) = self.held.front_mut() {
            let end = held.start + held.bytes.len() as u64;
            if end <= bound {
                released.extend(self.held.pop_front().map(|held| held.bytes));
                continue;
            }
            if bound > held.start {
                released.push(held.bytes.split_to((bound - held.start) as usize));
                held.start = bound;
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
                // Checked before each read: a chunk already there would otherwise always pass.
                let left = state.deadline.remaining();
                let next = if left.is_zero() {
                    Err(Cut::Deadline)
                } else {
                    tokio::time::timeout(left, state.response.chunk())
                        .await
                        .map_err(|_| Cut::Deadline)
                };
                let outcome = match next {
                    Err(cut) => Err(cut),
                    // The request's own timeout is the deadline too.
                    Ok(Err(_)) if state.deadline.remaining().is_zero() => Err(Cut::Deadline),
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
    use std::io::Write;

    use super::scanner::contains;
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

    // ---- Attacks on the guard (review of the streaming change). Each test below states the
    // input and what the guard should do with it.

    /// Raw deflate, one fixed-Huffman block (RFC 1951 §3.2.6) holding `text` as literals: every
    /// bit after the block's 3-bit header is a literal's code, so where each byte's code starts
    /// is known exactly.
    fn fixed_huffman(text: &[u8]) -> Vec<u8> {
        // BFINAL = 1, BTYPE = 01, least significant bit first.
        let mut bits: Vec<bool> = vec![true, true, false];
        let push = |bits: &mut Vec<bool>, code: u32, len: u32| {
            // Huffman codes go most significant bit first.
            for i in (0..len).rev() {
                bits.push((code >> i) & 1 == 1);
            }
        };
        for &byte in text {
            if byte < 144 {
                push(&mut bits, 0x30 + u32::from(byte), 8);
            } else {
                push(&mut bits, 0x190 + u32::from(byte) - 144, 9);
            }
        }
        push(&mut bits, 0, 7); // end of block
        bits.chunks(8)
            .map(|byte| {
                byte.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, bit)| acc | (u8::from(*bit) << i))
            })
            .collect()
    }

    #[test]
    fn no_compressed_byte_holding_bits_of_the_tokens_code_is_released() {
        // "hello " then the token, as fixed-Huffman literals of 8 bits each: the token's first
        // code starts at bit 3 + 6 * 8 = 51, inside byte 6. Bytes 0..=5 hold no bit of the
        // token; byte 6 holds the first five bits of the code of 'g'.
        let body = fixed_huffman(format!("hello {TOKEN}").as_bytes());
        let (sent, end) = stream(&body, Some("deflate"), 1);
        assert_eq!(end, Err(UnsafeAnswer::CarriesToken));
        assert!(
            sent.len() <= 6,
            "{} compressed bytes released: byte 6 carries 5 bits of the token's first code",
            sent.len()
        );
        // The same at the very start of a body (an endpoint whose body is the token): the
        // first byte is released before the decoder has even seen it, with the block header
        // and five bits of the code of 'g'.
        let body = fixed_huffman(TOKEN.as_bytes());
        let (sent, end) = stream(&body, Some("deflate"), 1);
        assert_eq!(end, Err(UnsafeAnswer::CarriesToken));
        assert!(
            sent.is_empty(),
            "released {sent:02x?}: the first byte holds bits of the token's code"
        );
    }

    #[test]
    fn held_compressed_chunks_stay_bounded_while_they_inflate_to_nothing() {
        // A gzip body whose text so far ends with the token's first byte ("hello g", sync
        // flushed), then empty stored blocks (`00 00 00 ff ff`, what every sync flush writes):
        // they inflate to nothing, so the suspect "g" never clears and every chunk is held.
        let mut deflate = flate2::Compress::new(Compression::fast(), false);
        let mut deflated = Vec::with_capacity(1024);
        deflate
            .compress_vec(b"hello g", &mut deflated, flate2::FlushCompress::Sync)
            .expect("deflate");
        let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        head.extend_from_slice(&deflated);
        let empty_blocks = Bytes::from([0u8, 0, 0, 0xff, 0xff].repeat(64 * 1024 / 5));
        let token = IdpAccessToken::new(TOKEN);
        let gz = HeaderValue::from_static("gzip");
        let mut guard = Guard::new(&token, Some(&gz), MAX_INFLATED_STREAMED).expect("guard");
        guard.push(Bytes::from(head)).expect("clean so far");
        // 20 MiB of them: a stream of up to 200 MB could hold all of it.
        for round in 0..320 {
            match guard.push(empty_blocks.clone()) {
                // Cutting such a body is a fine answer too.
                Err(_) => return,
                Ok(_) => assert!(
                    guard.held() <= 1 << 20,
                    "after {round} chunks the guard holds {} bytes: memory grows with the body",
                    guard.held()
                ),
            }
        }
    }

    #[test]
    fn a_token_in_the_gzip_header_never_reaches_the_caller() {
        // The caller gets the compressed bytes as they are: a gzip header's file name or
        // comment is never inflated, so it is never searched either.
        for builder in [
            flate2::GzBuilder::new().comment(TOKEN),
            flate2::GzBuilder::new().filename(TOKEN),
        ] {
            let mut encoder = builder.write(Vec::new(), Compression::fast());
            encoder.write_all(b"{\"ok\":true}").expect("gzip");
            let body = encoder.finish().expect("gzip");
            let (sent, end) = stream(&body, Some("gzip"), 4096);
            assert!(
                end.is_err() || !contains(&sent, TOKEN.as_bytes()),
                "the token left verbatim in the gzip header: {end:?}"
            );
            let token = IdpAccessToken::new(TOKEN);
            let gz = HeaderValue::from_static("gzip");
            let whole = Guard::new(&token, Some(&gz), MAX_INFLATED_BUFFERED)
                .expect("guard")
                .check_whole(&body);
            assert_eq!(whole, Err(UnsafeAnswer::CarriesToken), "buffered");
        }
    }

    #[test]
    fn an_empty_compressed_body_streams_as_it_passes_buffered() {
        // A `200` with `Content-Encoding: gzip` and no body: buffered, an empty body is not
        // checked and passes (`Body::Empty`); streamed, the guard's finish refuses it and the
        // caller's stream is cut as `uncheckable`.
        for encoding in ["gzip", "deflate"] {
            let (sent, end) = stream(b"", Some(encoding), 1);
            assert_eq!(end, Ok(()), "{encoding}: an empty body is cut");
            assert!(sent.is_empty());
        }
    }

    /// A reqwest answer whose body is `chunks`, each ready at once (as bytes already received
    /// are), without reqwest's own timeout.
    fn ready_answer(
        chunks: impl futures_util::Stream<Item = Bytes> + Send + Sync + 'static,
    ) -> reqwest::Response {
        use futures_util::StreamExt;
        let frames =
            chunks.map(|chunk| Ok::<_, std::convert::Infallible>(http_body::Frame::data(chunk)));
        let body = reqwest::Body::wrap(http_body_util::StreamBody::new(frames));
        reqwest::Response::from(http::Response::new(body))
    }

    #[tokio::test]
    async fn the_deadline_ends_a_stream_whose_chunks_are_always_ready() {
        use futures_util::StreamExt;
        use std::time::Duration;
        // An IdP faster than the caller: its next chunk is always there when asked for. The
        // stream must still end at the deadline (`Cut::Deadline`), not run on until Lambda's own
        // timeout kills the function mid-stream.
        let chunk = Bytes::from(vec![b'.'; 64 * 1024]);
        let answer = ready_answer(futures_util::stream::repeat_with(move || chunk.clone()));
        let token = IdpAccessToken::new(TOKEN);
        let guard = Guard::new(&token, None, MAX_INFLATED_STREAMED).expect("guard");
        let mut body = guarded(answer, guard, Deadline::after(Duration::from_millis(100)));
        let mut sent = 0u64;
        let ended = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(item) = body.next().await {
                match item {
                    Ok(chunk) => sent += chunk.len() as u64,
                    Err(cut) => return Some(cut),
                }
                // A caller reading slowly.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        })
        .await;
        assert_eq!(
            ended,
            Ok(Some(Cut::Deadline)),
            "a deadline of 100 ms, and {sent} bytes sent in the 2 s after it"
        );
    }

    #[tokio::test]
    async fn every_content_encoding_field_line_is_checked_not_only_the_first() {
        use crate::idp::response::{IdpResponse, Links, Pending};
        use futures_util::StreamExt;
        // An IdP echoing the token in a gzip body, with `Content-Encoding` as two field lines:
        // `identity`, then `gzip`. Both reach the caller (joined: `identity, gzip`), whose
        // client inflates the body; the guard reads the first line only and searches the gzip
        // bytes as plain text.
        let echo = format!(
            "[{}{{\"authorization\":\"Bearer {TOKEN}\"}}]",
            "{\"name\":\"repo\"},".repeat(200)
        );
        let body = gzip(echo.as_bytes());
        assert!(
            !contains(&body, TOKEN.as_bytes()),
            "the token's literals are coded"
        );
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for coding in ["identity", "gzip"] {
            headers.append(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static(coding),
            );
        }
        let url = url::Url::parse("https://api.example.com/echo").expect("url");
        let links = Links {
            upstream: &url,
            api_base: &url,
            own: None,
        };
        let token = IdpAccessToken::new(TOKEN);
        let inflated = |bytes: &[u8]| {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut text);
            text
        };

        let mut leaks: Vec<String> = Vec::new();

        // Streamed.
        let answer = IdpResponse {
            status: http::StatusCode::OK,
            headers: headers.clone(),
            body: Vec::new(),
            pending: Some(Pending {
                response: reqwest::Response::from(http::Response::new(reqwest::Body::from(
                    body.clone(),
                ))),
                deadline: Deadline::after(std::time::Duration::from_secs(10)),
            }),
        };
        if let Ok(shaped) = answer.shape(&http::Method::GET, &links, &token) {
            let codings: Vec<_> = shaped
                .headers()
                .get_all(http::header::CONTENT_ENCODING)
                .iter()
                .cloned()
                .collect();
            let mut stream = crate::streaming::of(&shaped)
                .and_then(crate::streaming::StreamedBody::take)
                .expect("a streamed body");
            let mut sent = Vec::new();
            let mut cut = None;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(chunk) => sent.extend_from_slice(&chunk),
                    Err(reason) => cut = Some(reason),
                }
            }
            if cut.is_none() && contains(&inflated(&sent), TOKEN.as_bytes()) {
                leaks.push(format!(
                    "streamed whole with Content-Encoding {codings:?}: the caller inflates the token"
                ));
            }
        }

        // Buffered: the same guard, the same first line.
        let answer = IdpResponse {
            status: http::StatusCode::OK,
            headers,
            body: body.clone(),
            pending: None,
        };
        if let Ok(shaped) = answer.shape(&http::Method::GET, &links, &token) {
            let sent = match shaped.into_body() {
                lambda_http::Body::Binary(bytes) => bytes,
                lambda_http::Body::Text(text) => text.into_bytes(),
                _ => Vec::new(),
            };
            if contains(&inflated(&sent), TOKEN.as_bytes()) {
                leaks.push("buffered: passed whole, and the caller inflates the token".into());
            }
        }
        assert!(leaks.is_empty(), "{leaks:#?}");
    }
}
