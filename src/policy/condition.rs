//! Statement conditions: operators over condition keys, compiled once.
//!
//! Supported: `string_equal`, `string_not_equal`, `string_like`,
//! `string_not_like` on `qcs:resource_tag` (the resource's tags) and
//! `qcs:request_tag` (tags the request sets), values written `key&value`
//! (`string_like` takes `*` in either half); `ip_equal` / `ip_not_equal` on
//! `qcs:ip` with addresses or CIDR ranges (IPv4 or IPv6); the string
//! operators on `tat:login_user` (the account an interactive session logs
//! in as, e.g. `string_not_equal` `root`), known only when a session is
//! decided, and on `tat:forward_host` / `tat:forward_port` (where a port
//! forward connects from the instance, e.g. `string_equal` `127.0.0.1` and
//! `5432`), known only when a port forward is decided.
//!
//! Several values of one key: any may match. Several keys or operators: all
//! must hold. A tag condition holds when any tag matches (`_not_` forms: when
//! none does). A condition the engine cannot decide — an unknown operator or
//! key, or `qcs:ip` without a known source address — is `Unknown`, which
//! never lets an allow apply and always lets a deny apply.

use std::net::IpAddr;

use super::glob::Glob;
use super::request::Context;

/// One `operator: { key: [values] }` entry of a statement's `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionClause {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// The condition key naming the account a session logs in as.
pub const LOGIN_USER: &str = "tat:login_user";
/// The condition key naming the host a port forward connects to, as the
/// client wrote it (from the instance: `127.0.0.1` is the instance).
pub const FORWARD_HOST: &str = "tat:forward_host";
/// The condition key naming the port a port forward connects to (decimal).
pub const FORWARD_PORT: &str = "tat:forward_port";

/// The string facts of a session decision that conditions may test.
const SESSION_KEYS: [&str; 3] = [LOGIN_USER, FORWARD_HOST, FORWARD_PORT];

/// Which session fact a condition tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKey {
    LoginUser,
    ForwardHost,
    ForwardPort,
}

impl SessionKey {
    fn of(key: &str) -> Option<SessionKey> {
        Some(match key {
            LOGIN_USER => SessionKey::LoginUser,
            FORWARD_HOST => SessionKey::ForwardHost,
            FORWARD_PORT => SessionKey::ForwardPort,
            _ => return None,
        })
    }

    fn value(self, ctx: &Context) -> Option<&str> {
        match self {
            SessionKey::LoginUser => ctx.login_user.as_deref(),
            SessionKey::ForwardHost => ctx.forward_host.as_deref(),
            SessionKey::ForwardPort => ctx.forward_port.as_deref(),
        }
    }
}

/// A three-valued truth: `Unknown` is what fail-closed evaluation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    pub(crate) fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::True,
        }
    }

    fn from(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagSource {
    Resource,
    Request,
}

#[derive(Debug, Clone)]
pub(crate) enum CompiledCondition {
    Tag {
        source: TagSource,
        negate: bool,
        values: Vec<(Glob, Glob)>,
    },
    Ip {
        negate: bool,
        nets: Vec<Cidr>,
    },
    Session {
        key: SessionKey,
        negate: bool,
        values: Vec<Glob>,
    },
    Invalid,
}

enum Op {
    StrEq(bool),
    StrLike(bool),
    Ip(bool),
}

fn operator(op: &str) -> Option<Op> {
    Some(match op {
        "string_equal" => Op::StrEq(false),
        "string_not_equal" => Op::StrEq(true),
        "string_like" => Op::StrLike(false),
        "string_not_like" => Op::StrLike(true),
        "ip_equal" => Op::Ip(false),
        "ip_not_equal" => Op::Ip(true),
        _ => return None,
    })
}

/// Why a clause is invalid, for validation errors.
pub(crate) fn check(c: &ConditionClause) -> Result<(), String> {
    let op = operator(&c.operator).ok_or_else(|| {
        format!(
            "unknown condition operator {:?} (drover supports string_equal, string_not_equal, \
             string_like, string_not_like, ip_equal, ip_not_equal)",
            c.operator
        )
    })?;
    if c.values.is_empty() {
        return Err("needs at least one value".into());
    }
    match (op, c.key.as_str()) {
        (Op::StrEq(_) | Op::StrLike(_), k) if SESSION_KEYS.contains(&k) => Ok(()),
        (Op::StrEq(_) | Op::StrLike(_), "qcs:resource_tag" | "qcs:request_tag") => {
            match c.values.iter().find(|v| !v.contains('&')) {
                Some(v) => Err(format!("tag value {v:?} must be written key&value")),
                None => Ok(()),
            }
        }
        (Op::Ip(_), "qcs:ip") => match c.values.iter().find(|v| Cidr::parse(v).is_none()) {
            Some(v) => Err(format!("{v:?} is not an IP address or CIDR range")),
            None => Ok(()),
        },
        (Op::Ip(_), k) | (Op::StrEq(_) | Op::StrLike(_), k)
            if ["qcs:ip", "qcs:resource_tag", "qcs:request_tag"].contains(&k)
                || SESSION_KEYS.contains(&k) =>
        {
            Err(format!("operator {:?} does not apply to {k:?}", c.operator))
        }
        (_, k) => Err(format!(
            "unknown condition key {k:?} (drover supports qcs:resource_tag, qcs:request_tag, qcs:ip, \
             tat:login_user, tat:forward_host, tat:forward_port)"
        )),
    }
}

impl CompiledCondition {
    pub(crate) fn compile(c: &ConditionClause) -> CompiledCondition {
        if check(c).is_err() {
            return CompiledCondition::Invalid;
        }
        if let Some(key) = SessionKey::of(&c.key) {
            let (negate, like) = match operator(&c.operator) {
                Some(Op::StrEq(n)) => (n, false),
                Some(Op::StrLike(n)) => (n, true),
                _ => return CompiledCondition::Invalid,
            };
            let values = c
                .values
                .iter()
                .map(|v| {
                    if like {
                        Glob::new(v, false)
                    } else {
                        Glob::literal(v, false)
                    }
                })
                .collect();
            return CompiledCondition::Session {
                key,
                negate,
                values,
            };
        }
        match operator(&c.operator) {
            Some(Op::Ip(negate)) => CompiledCondition::Ip {
                negate,
                nets: c.values.iter().filter_map(|v| Cidr::parse(v)).collect(),
            },
            Some(Op::StrEq(negate)) => tag(c, negate, |s| Glob::literal(s, false)),
            Some(Op::StrLike(negate)) => tag(c, negate, |s| Glob::new(s, false)),
            None => CompiledCondition::Invalid,
        }
    }

    pub(crate) fn is_invalid(&self) -> bool {
        matches!(self, CompiledCondition::Invalid)
    }

    /// Evaluates against one resource's tags and the request's context.
    pub(crate) fn eval(&self, tags: &[(String, String)], ctx: &Context) -> Tri {
        match self {
            CompiledCondition::Invalid => Tri::Unknown,
            CompiledCondition::Tag {
                source,
                negate,
                values,
            } => {
                let tags = match source {
                    TagSource::Resource => tags,
                    TagSource::Request => &ctx.request_tags,
                };
                let any = tags
                    .iter()
                    .any(|(k, v)| values.iter().any(|(gk, gv)| gk.matches(k) && gv.matches(v)));
                Tri::from(any != *negate)
            }
            CompiledCondition::Session {
                key,
                negate,
                values,
            } => match key.value(ctx) {
                None => Tri::Unknown,
                Some(u) => Tri::from(values.iter().any(|g| g.matches(u)) != *negate),
            },
            CompiledCondition::Ip { negate, nets } => match ctx.source_ip {
                None => Tri::Unknown,
                Some(ip) => Tri::from(nets.iter().any(|n| n.contains(ip)) != *negate),
            },
        }
    }
}

fn tag(c: &ConditionClause, negate: bool, mk: impl Fn(&str) -> Glob) -> CompiledCondition {
    let source = if c.key == "qcs:request_tag" {
        TagSource::Request
    } else {
        TagSource::Resource
    };
    let values = c
        .values
        .iter()
        .filter_map(|v| v.split_once('&'))
        .map(|(k, v)| (mk(k), mk(v)))
        .collect();
    CompiledCondition::Tag {
        source,
        negate,
        values,
    }
}

/// An address range; IPv4-mapped IPv6 sources compare as IPv4.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cidr {
    net: u128,
    bits: u8,
    v4: bool,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let (net, v4, max) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true, 32),
            IpAddr::V6(a) => (u128::from(a), false, 128),
        };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits, v4 })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (addr, v4) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => (u128::from(u32::from(m)), true),
                None => (u128::from(a), false),
            },
        };
        if v4 != self.v4 {
            return false;
        }
        let width = if v4 { 32 } else { 128 };
        let shift = width - u32::from(self.bits);
        if shift >= 128 {
            return true;
        }
        (addr >> shift) == (self.net >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(op: &str, key: &str, values: &[&str]) -> ConditionClause {
        ConditionClause {
            operator: op.into(),
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn forward_keys_are_known_only_when_a_forward_is_decided() {
        let port = CompiledCondition::compile(&clause("string_equal", FORWARD_PORT, &["5432"]));
        let host = CompiledCondition::compile(&clause("string_like", FORWARD_HOST, &["db*.lab"]));
        let not_root =
            CompiledCondition::compile(&clause("string_not_equal", LOGIN_USER, &["root"]));
        let none = Context::default();
        for c in [&port, &host, &not_root] {
            assert!(!c.is_invalid(), "{c:?}");
            assert_eq!(c.eval(&[], &none), Tri::Unknown);
        }
        let fwd = Context {
            forward_host: Some("db1.lab".into()),
            forward_port: Some("5432".into()),
            ..Context::default()
        };
        assert_eq!(port.eval(&[], &fwd), Tri::True);
        assert_eq!(host.eval(&[], &fwd), Tri::True);
        // A forward decision says nothing of a login user.
        assert_eq!(not_root.eval(&[], &fwd), Tri::Unknown);
        let other = Context {
            forward_host: Some("web.lab".into()),
            forward_port: Some("54320".into()),
            ..Context::default()
        };
        assert_eq!(port.eval(&[], &other), Tri::False);
        assert_eq!(host.eval(&[], &other), Tri::False);
        // Only the string operators apply to them.
        assert!(check(&clause("ip_equal", FORWARD_PORT, &["10.0.0.0/8"])).is_err());
    }

    #[test]
    fn cidr_ranges() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.2.3.4".parse().unwrap()));
        assert!(n.contains("::ffff:10.2.3.4".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.1.1.1".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains("2001:db8::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("nope").is_none());
    }
}
