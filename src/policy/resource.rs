//! Six-segment qcs resource names (`qcs:project:service:region:account:type/id`):
//! building them, parsing request names, and compiled resource patterns.
//!
//! Patterns follow CAM: `*` alone matches everything (including the `*` of
//! operation-level actions); `*` may appear in any segment; an empty region or
//! account segment matches any region or account; the project segment is
//! ignored. Resource ids compare case-sensitively, services and regions not.

use super::glob::Glob;

/// A kind of resource an action is authorized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `qcs::tat:$region:$account:command/cmd-...`
    Command,
    /// `qcs::cvm:$region:$account:instance/ins-...`
    CvmInstance,
    /// `qcs::lighthouse:$region:$account:instance/lhins-...`
    LighthouseInstance,
    /// drover's managed instances: `qcs::tat:$region:$account:instance/mi-...`
    ManagedInstance,
    /// `qcs::tat:$region:$account:invoker/ivk-...`
    Invoker,
    /// `qcs::tat:$region:$account:invocation/inv-...`
    Invocation,
    /// drover's secrets: `qcs::tat:$region:$account:secret/NAME`
    Secret,
    /// A CAM user (sub-user, or the account itself): `qcs::cam::$account:uin/UIN`.
    CamUser,
    /// A CAM user group: `qcs::cam::$account:group/GROUP_ID`.
    CamGroup,
    /// A CAM policy: `qcs::cam::$account:policyid/POLICY_ID`.
    CamPolicy,
    /// `*`: the action is authorized at operation level only.
    Any,
}

impl ResourceKind {
    /// (service, resource type) as written in a qcs name; `None` for `Any`.
    pub fn segments(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            ResourceKind::Command => ("tat", "command"),
            ResourceKind::CvmInstance => ("cvm", "instance"),
            ResourceKind::LighthouseInstance => ("lighthouse", "instance"),
            ResourceKind::ManagedInstance => ("tat", "instance"),
            ResourceKind::Invoker => ("tat", "invoker"),
            ResourceKind::Invocation => ("tat", "invocation"),
            ResourceKind::Secret => ("tat", "secret"),
            ResourceKind::CamUser => ("cam", "uin"),
            ResourceKind::CamGroup => ("cam", "group"),
            ResourceKind::CamPolicy => ("cam", "policyid"),
            ResourceKind::Any => return None,
        })
    }

    /// The kind of a concrete qcs name, if it is one drover knows.
    pub fn of_name(name: &str) -> Option<ResourceKind> {
        let q = QcsRef::parse(name)?;
        ResourceKind::of_ref(&q)
    }

    pub(crate) fn of_ref(q: &QcsRef<'_>) -> Option<ResourceKind> {
        let ty = q.resource.split_once('/').map(|(t, _)| t)?;
        ALL.into_iter().find(|k| {
            k.segments()
                .is_some_and(|(s, t)| s.eq_ignore_ascii_case(q.service) && t == ty)
        })
    }
}

const ALL: [ResourceKind; 10] = [
    ResourceKind::Command,
    ResourceKind::CvmInstance,
    ResourceKind::LighthouseInstance,
    ResourceKind::ManagedInstance,
    ResourceKind::Invoker,
    ResourceKind::Invocation,
    ResourceKind::Secret,
    ResourceKind::CamUser,
    ResourceKind::CamGroup,
    ResourceKind::CamPolicy,
];

impl ResourceKind {
    /// This kind's bit in a pattern's kind mask (0 for `Any`).
    pub(crate) fn bit(self) -> u16 {
        match self {
            ResourceKind::Command => 1,
            ResourceKind::CvmInstance => 2,
            ResourceKind::LighthouseInstance => 4,
            ResourceKind::ManagedInstance => 8,
            ResourceKind::Invoker => 16,
            ResourceKind::Invocation => 32,
            ResourceKind::Secret => 64,
            ResourceKind::CamUser => 128,
            ResourceKind::CamGroup => 256,
            ResourceKind::CamPolicy => 512,
            ResourceKind::Any => 0,
        }
    }

    /// The qcs name of the resource `id` of this kind (`*` for `Any`).
    /// CAM's resources are global: their region segment stays empty.
    pub fn qcs(self, region: &str, owner_uin: &str, id: &str) -> String {
        match self.segments() {
            Some(("cam", ty)) => qcs_name("cam", "", owner_uin, ty, id),
            Some((service, ty)) => qcs_name(service, region, owner_uin, ty, id),
            None => "*".to_string(),
        }
    }
}

/// Builds `qcs::<service>:<region>:uin/<owner_uin>:<kind>/<id>`.
pub fn qcs_name(service: &str, region: &str, owner_uin: &str, kind: &str, id: &str) -> String {
    format!("qcs::{service}:{region}:uin/{owner_uin}:{kind}/{id}")
}

/// A borrowed, split concrete qcs name from a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QcsRef<'a> {
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> QcsRef<'a> {
    /// Parses a concrete name; `None` unless it has six segments, starts with
    /// `qcs`, names a service and a `type/id` resource, and has no wildcard.
    pub(crate) fn parse(name: &'a str) -> Option<QcsRef<'a>> {
        if name.contains('*') {
            return None;
        }
        let mut it = name.splitn(6, ':');
        let (qcs, _project, service, region, account, resource) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        let ok = qcs == "qcs"
            && !service.is_empty()
            && resource
                .split_once('/')
                .is_some_and(|(t, id)| !t.is_empty() && !id.is_empty());
        ok.then_some(QcsRef {
            service,
            region,
            account,
            resource,
        })
    }
}

const KNOWN_SERVICES: [&str; 4] = ["tat", "cvm", "lighthouse", "cam"];

/// A compiled `resource` entry of a statement.
#[derive(Debug, Clone)]
pub(crate) enum ResourcePattern {
    Any,
    Qcs {
        /// Kinds (`ResourceKind::bit`) this pattern can possibly match,
        /// from the literal prefixes of its service and resource segments.
        kinds: u16,
        service: Glob,
        region: Option<Glob>,
        account: Option<Glob>,
        resource: Glob,
    },
    /// Could not be understood: never grants, always lets a deny apply.
    Invalid,
}

impl ResourcePattern {
    pub(crate) fn compile(text: &str) -> ResourcePattern {
        match check_pattern(text) {
            Ok(()) => {}
            Err(_) => return ResourcePattern::Invalid,
        }
        if text == "*" {
            return ResourcePattern::Any;
        }
        let segs: Vec<&str> = text.splitn(6, ':').collect();
        let opt = |s: &str, fold| (!s.is_empty()).then(|| Glob::new(s, fold));
        ResourcePattern::Qcs {
            kinds: kind_mask(segs[2], segs[5]),
            service: Glob::new(segs[2], true),
            region: opt(segs[3], true),
            account: opt(segs[4], false),
            resource: Glob::new(segs[5], false),
        }
    }

    /// Matches a concrete name (`Some`) or the operation-level `*` (`None`).
    pub(crate) fn matches(&self, name: Option<&QcsRef<'_>>, kind: u16) -> bool {
        match (self, name) {
            (ResourcePattern::Any, _) => true,
            (ResourcePattern::Qcs { .. }, None) | (ResourcePattern::Invalid, _) => false,
            (
                ResourcePattern::Qcs {
                    kinds,
                    service,
                    region,
                    account,
                    resource,
                },
                Some(q),
            ) => {
                kinds & kind != 0
                    && resource.matches(q.resource)
                    && service.matches(q.service)
                    && region.as_ref().is_none_or(|g| g.matches(q.region))
                    && account.as_ref().is_none_or(|g| g.matches(q.account))
            }
        }
    }

    pub(crate) fn is_invalid(&self) -> bool {
        matches!(self, ResourcePattern::Invalid)
    }
}

/// The kinds a pattern may match: those whose service and `type/` agree
/// with the pattern's text before its first `*`.
fn kind_mask(service: &str, resource: &str) -> u16 {
    let lit = |p: &str| p.split('*').next().unwrap_or("").to_string();
    let (svc, res) = (lit(service).to_ascii_lowercase(), lit(resource));
    let agree = |a: &str, b: &str| a.starts_with(b) || b.starts_with(a);
    ALL.into_iter()
        .filter(|k| {
            k.segments().is_some_and(|(s, t)| {
                let whole = service.contains('*') || svc == s;
                whole && agree(s, &svc) && agree(&format!("{t}/"), &res)
            })
        })
        .fold(0, |m, k| m | k.bit())
}

/// Why a statement's resource entry is not a valid pattern.
pub(crate) fn check_pattern(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    let segs: Vec<&str> = text.splitn(6, ':').collect();
    if segs.len() != 6 || segs[0] != "qcs" {
        return Err(format!(
            "{text:?} is not a six-segment qcs resource (qcs::service:region:account:type/id) or `*`"
        ));
    }
    let (service, account, resource) = (segs[2], segs[4], segs[5]);
    if service.is_empty() {
        return Err(format!("{text:?} names no service"));
    }
    if !service.contains('*')
        && !KNOWN_SERVICES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(service))
    {
        return Err(format!("{text:?} names the unknown service {service:?}"));
    }
    if account.starts_with('$') {
        return Err(format!(
            "{text:?}: replace the placeholder {account:?} with uin/<OwnerUin>"
        ));
    }
    if !(account.is_empty() || account.starts_with("uin/") || account.starts_with('*')) {
        return Err(format!(
            "{text:?}: the account segment must be uin/<OwnerUin>, empty or `*`"
        ));
    }
    if resource.is_empty() {
        return Err(format!("{text:?} names no resource"));
    }
    if resource != "*" && !resource.contains('/') {
        return Err(format!(
            "{text:?}: the resource segment must be type/id (e.g. command/cmd-xxxxxxxx)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod cam_tests {
    use super::*;

    #[test]
    fn cam_resources_are_global_and_typed() {
        let u = ResourceKind::CamUser.qcs("ap-guangzhou", "100", "200");
        assert_eq!(u, "qcs::cam::uin/100:uin/200");
        assert_eq!(ResourceKind::of_name(&u), Some(ResourceKind::CamUser));
        let g = ResourceKind::CamGroup.qcs("ap-guangzhou", "100", "7");
        assert_eq!(ResourceKind::of_name(&g), Some(ResourceKind::CamGroup));
        let p = ResourceKind::CamPolicy.qcs("ap-guangzhou", "100", "9");
        assert_eq!(p, "qcs::cam::uin/100:policyid/9");
        let own = ResourcePattern::compile("qcs::cam::uin/100:uin/200");
        let any_user = ResourcePattern::compile("qcs::cam::uin/100:uin/*");
        let other = QcsRef::parse("qcs::cam::uin/100:uin/201").unwrap();
        let me = QcsRef::parse(&u).unwrap();
        let group = QcsRef::parse(&g).unwrap();
        let (bit_u, bit_g) = (ResourceKind::CamUser.bit(), ResourceKind::CamGroup.bit());
        assert!(own.matches(Some(&me), bit_u));
        assert!(!own.matches(Some(&other), bit_u));
        assert!(any_user.matches(Some(&other), bit_u));
        assert!(
            !any_user.matches(Some(&group), bit_g),
            "a user pattern is no group"
        );
    }
}
