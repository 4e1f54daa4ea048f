//! The path a caller asks the IdP for, normalised so that it can only name a resource under the
//! connection's API base: every form that could leave that origin or climb out of the allowed
//! paths is refused before any upstream call.

use std::borrow::Cow;

use icu_normalizer::ComposingNormalizerBorrowed;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Characters re-encoded in a path segment: controls, space and everything with a meaning in a
/// URL beyond a plain segment character.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Characters refused in a decoded segment unless the connection allows them
/// (`path_characters`): `;` starts matrix parameters or path parameters that some servers and
/// proxies cut off (`/admin;x` read as `/admin`), look-alike dots become `.` under Unicode
/// normalisation (`\u{2024}\u{2024}` → `..`) in servers that apply it, and `@` reads as
/// userinfo to a careless URL joiner (`/user@evil.example`). Discord's API needs `@` (`/users/@me`);
/// where it is allowed it is sent as it is.
pub const GUARDED: &[char] = &[
    ';', '@', '\u{2024}', '\u{2025}', '\u{2026}', '\u{fe52}', '\u{ff0e}', '\u{3002}', '\u{ff61}',
];

/// Why a path is refused (403 `forbidden_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `.` or `..` segment, plain or percent-encoded.
    #[error("the path has a dot segment")]
    DotSegment,
    /// An empty segment (`//`), which some servers read as a host.
    #[error("the path has an empty segment")]
    EmptySegment,
    /// An encoded `/` or `\`, `%` after decoding, a control character (CR, LF, NUL…), or
    /// invalid UTF-8.
    #[error("the path has a forbidden character")]
    ForbiddenCharacter,
    /// `;` or a look-alike dot ([`GUARDED`]) that the connection does not allow.
    #[error("the path has a character the connection does not allow in paths")]
    GuardedCharacter,
    /// The method and path match none of the connection's allow rules.
    #[error("the connection does not allow this method and path")]
    NotAllowed,
    /// The URL built would not be under the connection's API base.
    #[error("the path would leave the connection's API")]
    LeavesOrigin,
}

/// A validated path: its decoded segments (for allow rules) and its canonical encoded form (for
/// the upstream URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpPath {
    /// The decoded segments; a trailing slash adds no segment.
    pub segments: Vec<String>,
    /// `/seg/seg[/]`, each segment percent-encoded canonically; `/` for the root.
    pub encoded: String,
}

/// Normalises the rest of a route's path (`""` or `/…`, percent-encoded as the client sent it).
pub fn normalise(raw: &str) -> Result<IdpPath, PathError> {
    if raw.is_empty() || raw == "/" {
        return Ok(IdpPath {
            segments: Vec::new(),
            encoded: "/".to_owned(),
        });
    }
    let rest = raw.strip_prefix('/').ok_or(PathError::ForbiddenCharacter)?;
    let (rest, trailing_slash) = match rest.strip_suffix('/') {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let mut segments = Vec::new();
    let mut encoded = String::with_capacity(raw.len());
    for raw_segment in rest.split('/') {
        let segment = decode_segment(raw_segment)?;
        encoded.push('/');
        encoded.extend(utf8_percent_encode(&segment, SEGMENT));
        segments.push(segment);
    }
    if trailing_slash {
        encoded.push('/');
    }
    Ok(IdpPath { segments, encoded })
}

/// Refuses segments holding a [`GUARDED`] character that is not in `allowed`.
pub fn check_guarded(segments: &[String], allowed: &[char]) -> Result<(), PathError> {
    let refused = |c: char| GUARDED.contains(&c) && !allowed.contains(&c);
    // A compatibility form of `;` or `@` (U+FF1B, U+037E, U+FF20…) is the character itself to a
    // normalising server: it needs the same leave.
    let spelled = |s: &String| {
        !s.is_ascii()
            && compatibility_form(s)
                .chars()
                .any(|c| matches!(c, ';' | '@') && refused(c))
    };
    if segments
        .iter()
        .any(|s| s.chars().any(refused) || spelled(s))
    {
        return Err(PathError::GuardedCharacter);
    }
    Ok(())
}

/// `segment` as a server that applies Unicode compatibility normalisation (NFKC) reads it:
/// fullwidth letters as letters, `․` (U+2024) as `.`, `；` as `;`. ASCII reads as itself.
fn compatibility_form(segment: &str) -> Cow<'_, str> {
    if segment.is_ascii() {
        return Cow::Borrowed(segment);
    }
    ComposingNormalizerBorrowed::new_nfkc().normalize(segment)
}

/// The segments as an upstream may serve them, where that differs from how they are written:
/// each in its Unicode compatibility form (NFKC: fullwidth letters as letters, look-alike dots
/// as the dots they stand for), then cut at its first `;` (matrix or path parameters:
/// `/user/emails;x=1` is `/user/emails` to such a server). `None` when every segment reads as
/// written, which is every ASCII path without `;`. A segment that reads as nothing, `.` or `..`
/// is refused: it would name another resource than the one the rules were checked for.
///
/// Allow rules are checked against both readings ([`super::allow::verdict`]), so that a rule that
/// `needs` something guards its resource whichever the upstream applies.
pub fn served(segments: &[String]) -> Result<Option<Vec<String>>, PathError> {
    let plain = |s: &String| s.is_ascii() && !s.contains(';');
    if segments.iter().all(plain) {
        return Ok(None);
    }
    let read: Vec<String> = segments
        .iter()
        .map(|segment| {
            let normal = compatibility_form(segment);
            let path_part = normal.split(';').next().unwrap_or_default();
            // The ideographic full stops stay themselves under NFKC; some servers (and every
            // IDNA host parser) read them as `.`: so does this reading.
            let read: String = path_part
                .chars()
                .map(|c| match c {
                    '\u{3002}' | '\u{ff61}' => '.',
                    c => c,
                })
                .collect();
            match read.as_str() {
                "" => Err(PathError::EmptySegment),
                "." | ".." => Err(PathError::DotSegment),
                _ => Ok(read),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((read != segments).then_some(read))
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if raw.bytes().any(|b| b == b'\\' || b.is_ascii_control()) {
        return Err(PathError::ForbiddenCharacter);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::ForbiddenCharacter)?;
    if decoded == "." || decoded == ".." {
        return Err(PathError::DotSegment);
    }
    // `%` after one decoding means double encoding (`%252e`), which a later hop could decode
    // into something this check never saw; and a character whose compatibility form is a
    // separator (`／` U+FF0F is `/` to a normalising server) would climb out the same way.
    let forbidden = |c: char| matches!(c, '/' | '\\' | '%') || c.is_control();
    let separator = |c: char| forbidden(c) || matches!(c, '?' | '#');
    let reads_as_separator = |c: char| {
        !c.is_ascii() && compatibility_form(c.encode_utf8(&mut [0; 4])).contains(separator)
    };
    if decoded
        .chars()
        .any(|c| forbidden(c) || reads_as_separator(c))
    {
        return Err(PathError::ForbiddenCharacter);
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_unchanged() {
        let path = normalise("/user/repos").expect("valid");
        assert_eq!(path.segments, ["user", "repos"]);
        assert_eq!(path.encoded, "/user/repos");
        assert_eq!(normalise("").expect("root").encoded, "/");
        assert_eq!(normalise("/user/").expect("trailing").encoded, "/user/");
    }

    #[test]
    fn segments_are_decoded_for_rules_and_re_encoded_canonically() {
        let path = normalise("/repos/o/my%20repo/contents/a:b,c").expect("valid");
        assert_eq!(path.segments[2], "my repo");
        assert_eq!(path.encoded, "/repos/o/my%20repo/contents/a:b,c");
        let path = normalise("/search/caf%C3%A9").expect("valid");
        assert_eq!(path.segments[1], "café");
        assert_eq!(path.encoded, "/search/caf%C3%A9");
    }

    #[test]
    fn semicolons_at_signs_and_look_alike_dots_need_the_connections_leave() {
        for raw in [
            "/user@evil.example.com",
            "/user%40evil",
            "/a;b",
            "/a%3Bb",
            "/a%3bb",
            "/%E2%80%A4%E2%80%A4",
            "/\u{2024}",
            "/x/%EF%BC%8E%EF%BC%8E",
        ] {
            let path = normalise(raw).expect("normalises");
            assert_eq!(
                check_guarded(&path.segments, &[]),
                Err(PathError::GuardedCharacter),
                "{raw}"
            );
        }
        let path = normalise("/a%3Bb").expect("normalises");
        assert_eq!(check_guarded(&path.segments, &[';']), Ok(()));
        assert_eq!(path.encoded, "/a;b");
        let plain = normalise("/user/repos").expect("normalises");
        assert_eq!(check_guarded(&plain.segments, &[]), Ok(()));
        // Discord's `/users/@me`, sent as it is where the connection allows `@`.
        let me = normalise("/users/%40me").expect("normalises");
        assert_eq!(check_guarded(&me.segments, &['@']), Ok(()));
        assert_eq!(me.encoded, "/users/@me");
    }

    #[test]
    fn matrix_parameters_and_look_alike_dots_are_read_as_a_server_would() {
        let read = |raw: &str| served(&normalise(raw).expect("normalises").segments);
        assert_eq!(read("/user/emails"), Ok(None));
        assert_eq!(read("/users/%40me"), Ok(None));
        for (raw, as_served) in [
            ("/user/emails;x=1", "/user/emails"),
            ("/user;v=2/emails", "/user/emails"),
            ("/user/emails%3Bx", "/user/emails"),
            ("/a;b;c/d", "/a/d"),
            ("/user/emails\u{2024}json", "/user/emails.json"),
            ("/x/%EF%BC%8Ey", "/x/.y"),
        ] {
            let expected: Vec<String> = as_served[1..].split('/').map(str::to_owned).collect();
            assert_eq!(read(raw), Ok(Some(expected)), "{raw}");
        }
        for (raw, error) in [
            ("/user/;x=1/emails", PathError::EmptySegment),
            ("/user/.;x/emails", PathError::DotSegment),
            ("/user/..;x", PathError::DotSegment),
            ("/user/%E2%80%A4%E2%80%A4/admin", PathError::DotSegment),
            ("/user/%E2%80%A5", PathError::DotSegment),
            ("/user/%EF%BC%8E", PathError::DotSegment),
        ] {
            assert_eq!(read(raw), Err(error), "{raw}");
        }
    }

    #[test]
    fn compatibility_forms_are_read_as_a_normalising_server_reads_them() {
        let read = |raw: &str| served(&normalise(raw).expect("normalises").segments);
        // Fullwidth letters are the letters: a rule on `emails` sees them.
        let fullwidth = "/user/%EF%BD%85%EF%BD%8D%EF%BD%81%EF%BD%89%EF%BD%8C%EF%BD%93";
        assert_eq!(
            read(fullwidth),
            Ok(Some(vec!["user".to_owned(), "emails".to_owned()]))
        );
        assert_eq!(
            read("/search/caf%C3%A9"),
            Ok(None),
            "NFKC leaves it as it is"
        );
        // A compatibility form of a separator is refused like the separator.
        for raw in [
            "/user/x%EF%BC%8F..%EF%BC%8Femails",
            "/a%EF%BC%BCb",
            "/a%EF%BC%85b",
            "/a%EF%BC%9Fb",
            "/a%EF%BC%83b",
        ] {
            assert_eq!(normalise(raw), Err(PathError::ForbiddenCharacter), "{raw}");
        }
        // `?` and `#` written as themselves (encoded) stay plain segment characters.
        assert_eq!(normalise("/a%3Fb").expect("valid").segments, ["a?b"]);
        // `;` and `@` in another form need the same leave as themselves.
        for raw in ["/a%EF%BC%9Bb", "/a%CD%BEb", "/a%EF%BC%A0b", "/a%EF%B9%ABb"] {
            let path = normalise(raw).expect("normalises");
            assert_eq!(
                check_guarded(&path.segments, &[]),
                Err(PathError::GuardedCharacter),
                "{raw}"
            );
            assert_eq!(check_guarded(&path.segments, &[';', '@']), Ok(()), "{raw}");
        }
        assert_eq!(
            read("/user/emails%EF%BC%9Bx=1"),
            Ok(Some(vec!["user".to_owned(), "emails".to_owned()]))
        );
    }

    #[test]
    fn refuses_every_traversal_and_ssrf_form() {
        for (raw, error) in [
            ("/..", PathError::DotSegment),
            ("/user/../admin", PathError::DotSegment),
            ("/user/./x", PathError::DotSegment),
            ("/%2e%2e/admin", PathError::DotSegment),
            ("/%2E%2e", PathError::DotSegment),
            ("/.%2e/x", PathError::DotSegment),
            ("//evil.example.com/x", PathError::EmptySegment),
            ("/user//x", PathError::EmptySegment),
            ("/a%2fb", PathError::ForbiddenCharacter),
            ("/a%2Fb", PathError::ForbiddenCharacter),
            ("/a%5cb", PathError::ForbiddenCharacter),
            ("/a\\b", PathError::ForbiddenCharacter),
            (
                "/https:%2F%2Fevil.example.com",
                PathError::ForbiddenCharacter,
            ),
            ("/a%0d%0aHost:%20evil", PathError::ForbiddenCharacter),
            ("/a\r\nb", PathError::ForbiddenCharacter),
            ("/a%00", PathError::ForbiddenCharacter),
            ("/%252e%252e/x", PathError::ForbiddenCharacter),
            ("/%ff", PathError::ForbiddenCharacter),
            ("user", PathError::ForbiddenCharacter),
        ] {
            assert_eq!(normalise(raw), Err(error), "{raw:?}");
        }
    }
}
