//! Helpers shared by the policy tests.

use super::*;

pub const OWNER: &str = "100000000001";
pub const REGION: &str = "ap-guangzhou";

/// A seed example's text with `$account` replaced, as the seed instructs.
pub fn seed(text: &str) -> String {
    text.replace("$account", &format!("uin/{OWNER}"))
}

pub fn pol(id: &str, text: &str) -> CompiledPolicy {
    CompiledPolicy::from_text(id, id, &seed(text)).unwrap()
}

pub fn full() -> CompiledPolicy {
    preset("QcloudTATFullAccess").unwrap().compile()
}

pub fn cmd(id: &str) -> Resource {
    Resource::new(ResourceKind::Command.qcs(REGION, OWNER, id))
}

pub fn ins(id: &str) -> Resource {
    Resource::new(ResourceKind::CvmInstance.qcs(REGION, OWNER, id))
}

pub fn lh(id: &str) -> Resource {
    Resource::new(ResourceKind::LighthouseInstance.qcs(REGION, OWNER, id))
}

pub fn mi(id: &str) -> Resource {
    Resource::new(ResourceKind::ManagedInstance.qcs(REGION, OWNER, id))
}

pub fn decide(policies: &[&CompiledPolicy], action: &str, resources: &[Resource]) -> Decision {
    decide_in(policies, action, resources, &Context::default())
}

pub fn decide_in(
    policies: &[&CompiledPolicy],
    action: &str,
    resources: &[Resource],
    ctx: &Context,
) -> Decision {
    evaluate(
        &Request {
            action,
            resources,
            context: ctx,
        },
        policies,
    )
}

pub fn allows(policies: &[&CompiledPolicy], action: &str, resources: &[Resource]) -> bool {
    decide(policies, action, resources).allowed
}

/// The error text for a document (after `$account` substitution).
pub fn rejects(text: &str) -> String {
    parse_document(&seed(text)).unwrap_err().to_string()
}
