//! Allow rules: which methods and paths a connection may call at its API, as
//! `"METHOD /path/glob"` texts.

use http::Method;

/// One rule of a connection's allow-list: `"GET /user/**"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The method, or `None` for `*` (any method).
    method: Option<Method>,
    /// The path pattern, one element per segment.
    pattern: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Exactly this segment.
    Literal(String),
    /// `*`: any one segment.
    One,
    /// `**`: any number of segments, none included.
    Any,
}

impl AllowRule {
    /// Parses `"METHOD /path/glob"`: `*` stands for one segment, `**` for any number of them,
    /// and a method of `*` for any method.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let (method, path) = rule
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("allow rule {rule:?} is not \"METHOD /path\""))?;
        let method = match method {
            "*" => None,
            m if m.bytes().all(|b| b.is_ascii_uppercase()) && !m.is_empty() => Some(
                Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method in {rule:?}"))?,
            ),
            _ => {
                return Err(format!(
                    "allow rule {rule:?}: method must be uppercase or *"
                ));
            }
        };
        let path = path.trim();
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| format!("allow rule {rule:?}: path must start with /"))?;
        let pattern = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/')
                .map(|segment| match segment {
                    "" => Err(format!("allow rule {rule:?} has an empty segment")),
                    "*" => Ok(Pattern::One),
                    "**" => Ok(Pattern::Any),
                    "." | ".." => Err(format!("allow rule {rule:?} has a dot segment")),
                    s if s.contains('*') => {
                        Err(format!("allow rule {rule:?}: * must be a whole segment"))
                    }
                    s => Ok(Pattern::Literal(s.to_owned())),
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self { method, pattern })
    }

    /// Whether `method` on the decoded `segments` is allowed by this rule.
    pub fn matches(&self, method: &Method, segments: &[String]) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && glob(&self.pattern, segments)
    }
}

/// Whether `pattern` matches all of `segments`, in pattern × segments steps. Backtracking instead
/// would take time polynomial in the path's length with the number of `**` as the exponent: a rule
/// like `GET /**/a/**/a/**/b` and a caller's path of a few hundred segments make a CPU sink.
fn glob(pattern: &[Pattern], segments: &[String]) -> bool {
    // matched[j]: the pattern's elements so far match exactly `segments[..j]`.
    let mut matched = vec![false; segments.len() + 1];
    matched[0] = true;
    for element in pattern {
        if *element == Pattern::Any {
            for j in 1..matched.len() {
                matched[j] |= matched[j - 1];
            }
            continue;
        }
        // Right to left, so that `matched[j - 1]` is still the previous element's.
        for j in (1..matched.len()).rev() {
            matched[j] = matched[j - 1]
                && match element {
                    Pattern::Literal(literal) => *literal == segments[j - 1],
                    _ => true,
                };
        }
        matched[0] = false;
    }
    matched[segments.len()]
}

/// `path`'s segments as the allow rules see them, for tests here and in `connections`.
#[cfg(test)]
pub(crate) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segments() {
        let rule = AllowRule::parse("GET /repos/*/*/issues/**").expect("rule");
        assert!(rule.matches(&Method::GET, &segments("/repos/o/r/issues")));
        assert!(rule.matches(&Method::GET, &segments("/repos/o/r/issues/1/comments")));
        assert!(!rule.matches(&Method::GET, &segments("/repos/o/issues")));
        assert!(!rule.matches(&Method::POST, &segments("/repos/o/r/issues")));
        let any = AllowRule::parse("* /user").expect("rule");
        assert!(any.matches(&Method::PATCH, &segments("/user")));
        assert!(!any.matches(&Method::PATCH, &segments("/user/x")));
        let root = AllowRule::parse("GET /").expect("rule");
        assert!(root.matches(&Method::GET, &[]));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "GET",
            "get /x",
            "GET x",
            "GET /a//b",
            "GET /a*",
            "GET /../x",
            "GE-T /x",
        ] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }
}
