//! The search itself: the bytes of a body, plain or as they inflate, searched for the token (and
//! an OAuth 1.0a token secret), keeping only the tail that could be the start of one.

use std::io::Write;

use crate::idp::UnsafeAnswer;
use crate::secret::IdpAccessToken;

/// Searches the bytes it is given for the secrets, keeping only the tail that could be the start
/// of one: a [`Write`] sink, so that an inflater can feed it as it inflates.
pub(super) struct Scanner {
    token: IdpAccessToken,
    /// The longest suffix of everything seen that is a proper prefix of a secret.
    pub(super) suspect: Vec<u8>,
    /// Bytes seen.
    pub(super) total: u64,
    /// Most bytes it may see.
    limit: u64,
    /// What it found, once it found something: every later write is refused with it.
    pub(super) found: Option<UnsafeAnswer>,
}

impl Scanner {
    /// A scanner that takes nothing: a placeholder for a moment's swap.
    pub(super) fn spent() -> Self {
        Self::new(IdpAccessToken::new(""), 0)
    }

    pub(super) fn new(token: IdpAccessToken, limit: u64) -> Self {
        Self {
            token,
            suspect: Vec::new(),
            total: 0,
            limit,
            found: None,
        }
    }

    /// The token and, for OAuth 1.0a, its secret: the byte strings that may not pass.
    pub(super) fn secrets(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.token.expose())
            .chain(self.token.secret().map(|s| s.expose()))
            .map(str::as_bytes)
            .filter(|s| !s.is_empty())
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
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

    pub(super) fn search(&mut self, bytes: &[u8]) -> Result<(), UnsafeAnswer> {
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

impl Scanner {
    /// Whether everything seen ends in a long start of a secret: at least half of it, or 16
    /// bytes of a longer one. A body cut off within the token is still its echo.
    pub(super) fn ends_in_a_long_start(&self) -> bool {
        let suspect = &self.suspect;
        !suspect.is_empty()
            && self.secrets().any(|secret| {
                secret.starts_with(suspect) && suspect.len() >= (secret.len() / 2).min(16)
            })
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
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}
