//! A network policy made ready to decide names (see
//! [`sprites_wire::policy::NetworkPolicy`] for what it means).

use sprites_wire::policy::{NetworkPolicy, PolicyAction};

use crate::error::{Error, Result};

/// The most rules a policy may hold (after `defaults` is spread out).
pub const MAX_RULES: usize = 1000;

/// What `{"include": "defaults"}` allows: the code hosts and package
/// registries a developer's tools reach for.
pub const DEFAULTS: &[&str] = &[
    "github.com",
    "*.github.com",
    "*.githubusercontent.com",
    "gitlab.com",
    "*.gitlab.com",
    "bitbucket.org",
    "registry.npmjs.org",
    "*.npmjs.org",
    "registry.yarnpkg.com",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "*.crates.io",
    "static.rust-lang.org",
    "*.rust-lang.org",
    "proxy.golang.org",
    "sum.golang.org",
    "rubygems.org",
    "*.rubygems.org",
    "repo.maven.apache.org",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
    "dl-cdn.alpinelinux.org",
    "registry-1.docker.io",
    "auth.docker.io",
    "production.cloudflare.docker.com",
    "ghcr.io",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    /// `*.example.com`, kept as `.example.com`.
    Below(String),
    Exact(String),
}

impl Pattern {
    fn parse(text: &str) -> Option<Pattern> {
        let t = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if t == "*" {
            return Some(Pattern::Any);
        }
        let (below, name) = match t.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, t),
        };
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return None;
        }
        Some(if below {
            Pattern::Below(format!(".{name}"))
        } else {
            Pattern::Exact(name)
        })
    }

    /// How specific a match of `name` is, if it matches.
    fn matches(&self, name: &str) -> Option<(u8, usize)> {
        match self {
            Pattern::Any => Some((0, 0)),
            Pattern::Below(suffix) => name.ends_with(suffix.as_str()).then_some((1, suffix.len())),
            Pattern::Exact(exact) => (name == exact).then_some((2, 0)),
        }
    }
}

/// A checked policy, deciding names. The default has no rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<(Pattern, PolicyAction)>,
    allows_some: bool,
}

impl Policy {
    /// Checks `policy`: each rule is a domain with an action or a known
    /// preset. A bad one is refused with a sentence naming the rule.
    pub fn new(policy: &NetworkPolicy) -> Result<Policy> {
        let mut rules = Vec::new();
        for (i, rule) in policy.rules.iter().enumerate() {
            let n = i + 1;
            match (&rule.domain, rule.action, &rule.include) {
                (Some(domain), Some(action), None) => {
                    let pattern = Pattern::parse(domain).ok_or_else(|| {
                        Error::Invalid(format!(
                            "rule {n}: {domain:?} is not a domain name, a *.domain pattern or *"
                        ))
                    })?;
                    rules.push((pattern, action));
                }
                (None, None, Some(preset)) if preset == "defaults" => {
                    rules.extend(DEFAULTS.iter().map(|d| {
                        (
                            Pattern::parse(d).expect("the defaults are patterns"),
                            PolicyAction::Allow,
                        )
                    }));
                }
                (None, None, Some(preset)) => {
                    return Err(Error::Invalid(format!(
                        "rule {n}: no preset is called {preset:?} (there is \"defaults\")"
                    )))
                }
                (Some(_), None, None) => {
                    return Err(Error::Invalid(format!(
                        "rule {n}: a domain needs an action, \"allow\" or \"deny\""
                    )))
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "rule {n}: a rule is either a domain with an action or an include"
                    )))
                }
            }
        }
        if rules.len() > MAX_RULES {
            return Err(Error::Invalid(format!(
                "a policy holds at most {MAX_RULES} rules"
            )));
        }
        let allows_some = rules.iter().any(|(_, a)| *a == PolicyAction::Allow);
        Ok(Policy { rules, allows_some })
    }

    /// A policy allowing no name at all.
    pub fn nothing() -> Policy {
        Policy {
            rules: vec![(Pattern::Any, PolicyAction::Deny)],
            allows_some: false,
        }
    }

    /// Whether it restricts anything: with no rules, a sprite reaches the
    /// whole internet, IP literals included.
    pub fn restricts(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Whether the sprite may reach `name` (a DNS name, any case, with or
    /// without its final dot).
    pub fn allows(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut best: Option<((u8, usize), PolicyAction)> = None;
        for (pattern, action) in &self.rules {
            let Some(rank) = pattern.matches(&name) else {
                continue;
            };
            best = match best {
                Some((r, a)) if r > rank || (r == rank && a == PolicyAction::Deny) => Some((r, a)),
                _ => Some((rank, *action)),
            };
        }
        match best {
            Some((_, action)) => action == PolicyAction::Allow,
            None => !self.allows_some,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprites_wire::policy::PolicyRule;

    fn policy(rules: Vec<PolicyRule>) -> Policy {
        Policy::new(&NetworkPolicy { rules }).unwrap()
    }

    #[test]
    fn the_most_specific_rule_decides_and_a_deny_wins_a_tie() {
        let p = policy(vec![
            PolicyRule::allow("*.example.com"),
            PolicyRule::deny("secret.example.com"),
            PolicyRule::allow("github.com"),
            PolicyRule::deny("*"),
        ]);
        assert!(p.allows("api.example.com"));
        assert!(p.allows("A.B.Example.COM."));
        assert!(!p.allows("example.com"), "*.x covers subdomains only");
        assert!(!p.allows("secret.example.com"));
        assert!(p.allows("github.com"));
        assert!(!p.allows("api.github.com"));
        assert!(!p.allows("notexample.com"));
        let tie = policy(vec![PolicyRule::allow("a.com"), PolicyRule::deny("a.com")]);
        assert!(!tie.allows("a.com"));
    }

    #[test]
    fn unmatched_names_are_denied_only_by_a_policy_that_allows_something() {
        let allowlist = policy(vec![PolicyRule::allow("ok.com")]);
        assert!(allowlist.allows("ok.com") && !allowlist.allows("other.com"));
        let denylist = policy(vec![PolicyRule::deny("*.evil.com")]);
        assert!(denylist.allows("other.com") && !denylist.allows("x.evil.com"));
        assert!(denylist.restricts());
        assert!(!policy(vec![]).restricts());
        let defaults = Policy::new(&NetworkPolicy {
            rules: vec![PolicyRule {
                include: Some("defaults".into()),
                ..Default::default()
            }],
        })
        .unwrap();
        assert!(defaults.allows("pypi.org") && defaults.allows("objects.githubusercontent.com"));
        assert!(!defaults.allows("example.com"));
    }

    #[test]
    fn bad_rules_are_refused_with_their_number() {
        let bad = |rule: PolicyRule| match Policy::new(&NetworkPolicy {
            rules: vec![PolicyRule::allow("ok.com"), rule],
        }) {
            Err(Error::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad(PolicyRule::allow("a b.com")).starts_with("rule 2: "));
        assert!(bad(PolicyRule::allow("x.*.com")).contains("not a domain name"));
        assert!(bad(PolicyRule::allow("")).contains("not a domain name"));
        assert!(bad(PolicyRule::allow(&"a".repeat(64))).contains("not a domain name"));
        let no_action = PolicyRule {
            domain: Some("a.com".into()),
            ..Default::default()
        };
        assert!(bad(no_action).contains("needs an action"));
        let unknown = PolicyRule {
            include: Some("everything".into()),
            ..Default::default()
        };
        assert!(bad(unknown).contains("no preset"));
        let both = PolicyRule {
            include: Some("defaults".into()),
            ..PolicyRule::allow("a.com")
        };
        assert!(bad(both).contains("either"));
        let many = NetworkPolicy {
            rules: vec![PolicyRule::allow("a.com"); MAX_RULES + 1],
        };
        assert!(Policy::new(&many).is_err());
    }
}
