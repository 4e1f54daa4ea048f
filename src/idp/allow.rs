//! Allow rules: which methods and paths a connection may call at its API, as
//! `"METHOD /path/glob"` texts, each optionally for callers whose token carries some Auth0
//! permissions or scopes (`"POST /user/repos needs github:write"`), and naming the IdP scopes its
//! calls need (`"GET /drive/v3/** idp-scopes drive.readonly|drive"`: one of each `|` list).

use http::Method;

/// The word that starts what a rule needs of the caller.
const NEEDS: &str = "needs";
/// The word that starts the IdP scopes a rule's calls need.
const IDP_SCOPES: &str = "idp-scopes";

/// One rule of a connection's allow-list: `"GET /user/**"`, `"POST /user/repos needs
/// github:write"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The method, or `None` for `*` (any method).
    method: Option<Method>,
    /// The path pattern, one element per segment.
    pattern: Vec<Pattern>,
    /// What the caller's token must carry, every one of them, in its `scope` claim or its
    /// `permissions`; none for a rule open to every caller.
    needs: Vec<String>,
    /// The IdP scopes the IdP token must have been granted for these calls; none where the
    /// rule does not say.
    idp_scopes: Vec<ScopeNeed>,
}

/// One IdP scope a call needs: any of its alternatives will do (a broader scope serves too:
/// Google's `drive` for `drive.readonly`); the first is the one to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeNeed(Vec<String>);

impl ScopeNeed {
    /// The scope to ask the user for.
    pub fn ask(&self) -> &str {
        &self.0[0]
    }

    /// Whether a token granted `granted` meets this need.
    pub fn met_by(&self, granted: &[&str]) -> bool {
        self.0.iter().any(|scope| granted.contains(&scope.as_str()))
    }

    /// Every scope that meets it.
    pub fn alternatives(&self) -> &[String] {
        &self.0
    }
}

/// The IdP scopes the rules matching `method` on `segments` (or on `served`, as for
/// [`verdict`]) name, each once, in rule order.
pub fn idp_scopes(
    rules: &[AllowRule],
    method: &Method,
    segments: &[String],
    served: Option<&[String]>,
) -> Vec<ScopeNeed> {
    let head_as_get = *method == Method::HEAD;
    let matches = |rule: &AllowRule, segments: &[String]| {
        rule.matches(method, segments) || (head_as_get && rule.matches(&Method::GET, segments))
    };
    let mut needs: Vec<ScopeNeed> = Vec::new();
    for rule in rules.iter().filter(|rule| {
        matches(rule, segments) || served.is_some_and(|served| matches(rule, served))
    }) {
        for need in &rule.idp_scopes {
            if !needs.contains(need) {
                needs.push(need.clone());
            }
        }
    }
    needs
}

/// What the allow rules say of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A rule matches and the caller holds everything the matching rules need.
    Allowed,
    /// Rules match, but the caller lacks something one of them needs: everything the matching
    /// rules need, in rule order (RFC 6750 §3's `scope` is what the resource needs, so that a
    /// client asking for a new token keeps what it already had).
    Missing(Vec<String>),
    /// No rule matches the method and path.
    NotAllowed,
}

impl Verdict {
    /// Whether the call is allowed.
    pub fn is_allowed(&self) -> bool {
        *self == Self::Allowed
    }
}

/// The verdict of `rules` on `method` and `segments` for a caller holding what `holds` says.
/// Every matching rule's requirements hold: a narrower rule that `needs` something protects
/// its paths even under a broader rule that needs nothing, as whoever wrote it means.
/// `HEAD` is allowed wherever `GET` is: it is the same request without the body.
///
/// `served` is the path as an upstream may serve it where that differs from `segments`
/// ([`super::path::served`]: matrix parameters cut off, look-alike dots read as dots). Rules
/// are matched against both readings, and every rule that matches either must be met: the
/// rules match the path the upstream serves, whichever reading it applies.
pub fn verdict(
    rules: &[AllowRule],
    method: &Method,
    segments: &[String],
    served: Option<&[String]>,
    holds: &dyn Fn(&str) -> bool,
) -> Verdict {
    let head_as_get = *method == Method::HEAD;
    let matches = |rule: &AllowRule, segments: &[String]| {
        rule.matches(method, segments) || (head_as_get && rule.matches(&Method::GET, segments))
    };
    let mut matched = false;
    let mut needed: Vec<String> = Vec::new();
    for rule in rules.iter().filter(|rule| {
        matches(rule, segments) || served.is_some_and(|served| matches(rule, served))
    }) {
        matched = true;
        for need in &rule.needs {
            if !needed.contains(need) {
                needed.push(need.clone());
            }
        }
    }
    match (matched, needed.iter().all(|need| holds(need))) {
        (false, _) => Verdict::NotAllowed,
        (true, true) => Verdict::Allowed,
        (true, false) => Verdict::Missing(needed),
    }
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
    /// Parses `"METHOD /path/glob"`, optionally followed by `needs` and the permissions or
    /// scopes the caller's token must all carry: `*` stands for one segment, `**` for any number
    /// of them, and a method of `*` for any method.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let (method, rest) = rule
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("allow rule {rule:?} is not \"METHOD /path\""))?;
        let (path, (needs, idp_scopes)) = match rest.trim().split_once(char::is_whitespace) {
            Some((path, clauses)) => (path, clauses_of(rule, clauses)?),
            None => (rest, (Vec::new(), Vec::new())),
        };
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
        Ok(Self {
            method,
            pattern,
            needs,
            idp_scopes,
        })
    }

    /// What the caller's token must carry for this rule to allow a call.
    pub fn needs(&self) -> &[String] {
        &self.needs
    }

    /// The IdP scopes this rule's calls need.
    pub fn idp_scopes(&self) -> &[ScopeNeed] {
        &self.idp_scopes
    }

    /// Whether `method` on the decoded `segments` is what this rule is about, whatever it
    /// needs of the caller.
    pub fn matches(&self, method: &Method, segments: &[String]) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && glob(&self.pattern, segments)
    }
}

/// The clauses after a rule's path: `needs` and one or more scope tokens, and `idp-scopes` and
/// one or more IdP scopes (`|` between alternatives), each clause at most once. Scope tokens
/// are RFC 6749 §3.3's: printable ASCII but space, `"` and `\`, which also keeps them quotable in
/// a challenge.
fn clauses_of(rule: &str, text: &str) -> Result<(Vec<String>, Vec<ScopeNeed>), String> {
    let scope_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    };
    let mut needs: Option<Vec<String>> = None;
    let mut idp_scopes: Option<Vec<ScopeNeed>> = None;
    let mut clause = None;
    for word in text.split_whitespace() {
        match word {
            NEEDS if needs.is_none() => {
                needs = Some(Vec::new());
                clause = Some(NEEDS);
            }
            IDP_SCOPES if idp_scopes.is_none() => {
                idp_scopes = Some(Vec::new());
                clause = Some(IDP_SCOPES);
            }
            scope if clause == Some(NEEDS) && scope_token(scope) => {
                needs.get_or_insert_default().push(scope.to_owned());
            }
            scope if clause == Some(IDP_SCOPES) && scope.split('|').all(scope_token) => {
                let alternatives = scope.split('|').map(str::to_owned).collect();
                idp_scopes
                    .get_or_insert_default()
                    .push(ScopeNeed(alternatives));
            }
            _ if clause.is_none() => {
                return Err(format!(
                    "allow rule {rule:?}: after the path only `needs` and scopes may follow, \
                     or `idp-scopes` and IdP scopes"
                ));
            }
            _ => {
                return Err(format!(
                    "allow rule {rule:?}: `needs` takes one or more scopes (no quotes or \
                     backslashes), `idp-scopes` one or more IdP scopes (`|` between \
                     alternatives), each once"
                ));
            }
        }
    }
    if needs.as_ref().is_some_and(Vec::is_empty) || idp_scopes.as_ref().is_some_and(Vec::is_empty) {
        return Err(format!(
            "allow rule {rule:?}: `needs` takes one or more scopes (no quotes or backslashes), \
             `idp-scopes` one or more IdP scopes"
        ));
    }
    Ok((needs.unwrap_or_default(), idp_scopes.unwrap_or_default()))
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
    fn every_matching_rules_needs_hold_and_the_challenge_names_them_all() {
        let rules: Vec<AllowRule> = [
            "GET /user/**",
            "GET /user/emails needs github:pii",
            "POST /user/repos needs github:write github:repos",
            "POST /user/** needs admin",
        ]
        .iter()
        .map(|r| AllowRule::parse(r).expect("rule"))
        .collect();
        assert_eq!(rules[2].needs(), ["github:write", "github:repos"]);
        let repos = segments("/user/repos");
        let none = |_: &str| false;
        let writer = |s: &str| s == "github:write";
        let github = |s: &str| s.starts_with("github:");
        let all = |_: &str| true;
        let missing =
            |needs: &[&str]| Verdict::Missing(needs.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            verdict(&rules, &Method::GET, &repos, None, &none),
            Verdict::Allowed
        );
        assert_eq!(
            verdict(&rules, &Method::HEAD, &repos, None, &none),
            Verdict::Allowed
        );
        // A narrower rule's needs hold under a broader open rule, for HEAD too.
        let emails = segments("/user/emails");
        assert_eq!(
            verdict(&rules, &Method::GET, &emails, None, &none),
            missing(&["github:pii"])
        );
        assert_eq!(
            verdict(&rules, &Method::HEAD, &emails, None, &none),
            missing(&["github:pii"])
        );
        assert_eq!(
            verdict(&rules, &Method::GET, &emails, None, &github),
            Verdict::Allowed
        );
        // Both POST rules match: everything they need, in rule order.
        let both = missing(&["github:write", "github:repos", "admin"]);
        assert_eq!(verdict(&rules, &Method::POST, &repos, None, &writer), both);
        assert_eq!(verdict(&rules, &Method::POST, &repos, None, &github), both);
        assert_eq!(
            verdict(&rules, &Method::POST, &repos, None, &all),
            Verdict::Allowed
        );
        assert_eq!(
            verdict(
                &rules,
                &Method::POST,
                &segments("/user/keys"),
                None,
                &github
            ),
            missing(&["admin"])
        );
        assert_eq!(
            verdict(&rules, &Method::DELETE, &repos, None, &all),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn a_needs_rule_guards_its_resource_as_the_upstream_serves_it() {
        let rules: Vec<AllowRule> = ["GET /user/**", "GET /user/emails needs pii:read"]
            .iter()
            .map(|r| AllowRule::parse(r).expect("rule"))
            .collect();
        let written = segments("/user/emails;x=1");
        let served = segments("/user/emails");
        let none = |_: &str| false;
        assert_eq!(
            verdict(&rules, &Method::GET, &written, Some(&served), &none),
            Verdict::Missing(vec!["pii:read".to_owned()])
        );
        // As written alone, only the open rule matches: the served reading is what guards it.
        assert_eq!(
            verdict(&rules, &Method::GET, &written, None, &none),
            Verdict::Allowed
        );
        // A rule that matches only the written reading still allows.
        let literal = [AllowRule::parse("GET /files/a;b").expect("rule")];
        assert_eq!(
            verdict(
                &literal,
                &Method::GET,
                &segments("/files/a;b"),
                Some(&segments("/files/a")),
                &none
            ),
            Verdict::Allowed
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "GET /x github:write",
            "GET /x needs",
            "GET /x needs a\"b",
            "GET /x needs a\\b",
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
