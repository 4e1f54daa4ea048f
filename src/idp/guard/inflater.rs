//! A body's `Content-Encoding` undone beside the stream, into the [`Scanner`]: nothing inflated
//! is kept.

use std::io::Write;

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

use super::scanner::Scanner;
use crate::idp::UnsafeAnswer;

/// How the body is encoded.
pub(super) enum Inflater {
    Plain(Scanner),
    Gzip(GzDecoder<Scanner>),
    /// `deflate` as RFC 9110 defines it (zlib), or raw, as some servers send it: told apart by
    /// the first two bytes, held until they come.
    Deflate(Option<Vec<u8>>, Scanner),
    Zlib(ZlibDecoder<Scanner>),
    Raw(DeflateDecoder<Scanner>),
}

impl Inflater {
    pub(super) fn scanner(&self) -> &Scanner {
        match self {
            Self::Plain(s) | Self::Deflate(_, s) => s,
            Self::Gzip(d) => d.get_ref(),
            Self::Zlib(d) => d.get_ref(),
            Self::Raw(d) => d.get_ref(),
        }
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
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

    pub(super) fn finish(&mut self) -> Result<(), UnsafeAnswer> {
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
    pub(super) fn failure(&self) -> UnsafeAnswer {
        self.scanner()
            .found
            .clone()
            .unwrap_or(UnsafeAnswer::Uninflatable)
    }
}
