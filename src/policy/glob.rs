//! `*` wildcard patterns, compiled once and matched without allocating.
//!
//! CAM and Azure both use a single wildcard, `*`, matching any run of
//! characters (including `/` and `:`). Action names compare case-insensitively;
//! resource ids do not, so the caller chooses.

/// A compiled `*` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pat: Box<[u8]>,
    fold: bool,
    shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `*` alone.
    Any,
    /// No wildcard: plain comparison.
    Exact,
    /// One trailing `*` (the common `tat:Describe*`, `command/*`).
    Prefix,
    General,
}

impl Glob {
    /// Compiles `pattern`; with `fold`, matching ignores ASCII case.
    pub(crate) fn new(pattern: &str, fold: bool) -> Glob {
        let stars = pattern.bytes().filter(|b| *b == b'*').count();
        let shape = if pattern == "*" {
            Shape::Any
        } else if stars == 0 {
            Shape::Exact
        } else if stars == 1 && pattern.ends_with('*') {
            Shape::Prefix
        } else {
            Shape::General
        };
        Glob::build(pattern, fold, shape)
    }

    /// A pattern whose `*` characters are literal (for `string_equal`).
    pub(crate) fn literal(text: &str, fold: bool) -> Glob {
        Glob::build(text, fold, Shape::Exact)
    }

    fn build(pattern: &str, fold: bool, shape: Shape) -> Glob {
        let pat = if fold {
            pattern.to_ascii_lowercase().into_bytes()
        } else {
            pattern.as_bytes().to_vec()
        };
        Glob {
            pat: pat.into_boxed_slice(),
            fold,
            shape,
        }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match self.shape {
            Shape::Any => true,
            Shape::Exact => self.eq(&self.pat, t),
            Shape::Prefix => {
                let p = &self.pat[..self.pat.len() - 1];
                t.len() >= p.len() && self.eq(p, &t[..p.len()])
            }
            Shape::General => self.general(t),
        }
    }

    fn eq(&self, p: &[u8], t: &[u8]) -> bool {
        if self.fold {
            p.len() == t.len() && p.iter().zip(t).all(|(a, b)| *a == b.to_ascii_lowercase())
        } else {
            p == t
        }
    }

    fn byte_eq(&self, p: u8, t: u8) -> bool {
        if self.fold {
            p == t.to_ascii_lowercase()
        } else {
            p == t
        }
    }

    /// Classic linear-time wildcard match: on a mismatch, resume after the
    /// last `*` with one more character swallowed.
    fn general(&self, t: &[u8]) -> bool {
        let p = &self.pat;
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, ti));
                pi += 1;
            } else if pi < p.len() && self.byte_eq(p[pi], t[ti]) {
                pi += 1;
                ti += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|b| *b == b'*')
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn shapes_match_as_expected() {
        assert!(Glob::new("*", false).matches(""));
        assert!(Glob::new("tat:Describe*", true).matches("TAT:describecommands"));
        assert!(!Glob::new("tat:Describe*", true).matches("tat:RunCommand"));
        assert!(Glob::new("command/*", false).matches("command/cmd-1"));
        assert!(!Glob::new("command/cmd-X", false).matches("command/cmd-x"));
        assert!(Glob::new("*/read", true).matches("Microsoft.Automation/a/runbooks/read"));
        assert!(Glob::new("Microsoft.Authorization/*/Write", true)
            .matches("microsoft.authorization/roleAssignments/write"));
        assert!(Glob::new("a*b*c", false).matches("aXXbYYc"));
        assert!(!Glob::new("a*b*c", false).matches("aXXbYY"));
        assert!(Glob::new("*x*", false).matches("x"));
        assert!(Glob::literal("a*", false).matches("a*"));
        assert!(!Glob::literal("a*", false).matches("ab"));
    }
}
