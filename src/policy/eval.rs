//! The evaluator: explicit deny beats allow beats the implicit deny.
//!
//! A request names an action and the resources it touches. Each resource is
//! judged on its own over every statement of every policy; the action's
//! `Combine` rule (see `actions`) turns those verdicts into one decision.
//! A request naming no resource is judged against `*` (operation-level
//! actions, or "everything" for unfiltered lists, which only a `*` statement
//! covers). Anything not understood — unknown action, malformed resource
//! name, a resource of a kind the action does not take, an invalid matcher —
//! ends in deny.

use std::fmt;

use super::actions::{action_index, Combine, ACTIONS};
use super::compile::{CompiledPolicy, CompiledStatement};
use super::condition::Tri;
use super::document::Effect;
use super::request::{Request, Resource};
use super::resource::{QcsRef, ResourceKind};

/// One statement of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy_id: String,
    pub policy_name: String,
    pub statement_index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every resource was allowed (or, for `AnyNoneDenied`, one was).
    Allowed,
    /// A deny statement applied.
    ExplicitDeny,
    /// No allow statement applied.
    ImplicitDeny,
    /// The action is not in drover's action table.
    UnknownAction,
    /// A resource name is not a six-segment qcs name (or `*`).
    MalformedResource,
    /// A resource is of a kind the action is not authorized against.
    ResourceNotApplicable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// Allowed: the allow statements that applied. Explicit deny: the deny
    /// statements that applied to `denied_resource`. Otherwise empty.
    pub deciding: Vec<StatementRef>,
    /// The first resource that was denied, if any.
    pub denied_resource: Option<String>,
}

impl Decision {
    fn deny(reason: Reason, resource: Option<&str>) -> Decision {
        Decision {
            allowed: false,
            reason,
            deciding: Vec::new(),
            denied_resource: resource.map(str::to_string),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            Reason::Allowed => "allowed",
            Reason::ExplicitDeny => "denied by an explicit deny",
            Reason::ImplicitDeny => "denied: no statement allows it",
            Reason::UnknownAction => "denied: unknown action",
            Reason::MalformedResource => "denied: malformed resource name",
            Reason::ResourceNotApplicable => "denied: the action does not apply to this resource",
        };
        f.write_str(what)?;
        if let Some(r) = &self.denied_resource {
            write!(f, " (resource {r})")?;
        }
        for s in &self.deciding {
            write!(
                f,
                "; policy {:?} (id {}) statement[{}]",
                s.policy_name, s.policy_id, s.statement_index
            )?;
        }
        Ok(())
    }
}

/// How one resource fared.
enum Verdict {
    Denied(Vec<usize>),
    Allowed(Vec<usize>),
    Implicit,
}

/// Decides `req` over `policies` (all the principal's policies and roles).
pub fn evaluate(req: &Request<'_>, policies: &[&CompiledPolicy]) -> Decision {
    let Some((action, info)) = action_index(req.action).and_then(|i| Some((i, ACTIONS.get(i)?)))
    else {
        return Decision::deny(Reason::UnknownAction, None);
    };

    // Only statements that can concern the action take part; their action
    // verdict is kept so an invalid action entry still fails closed.
    let mut live: Vec<(&CompiledPolicy, &CompiledStatement, Tri)> = Vec::new();
    for p in policies {
        for s in &p.statements {
            let t = s.action(action);
            if t != Tri::False {
                live.push((p, s, t));
            }
        }
    }

    let star;
    let resources = if req.resources.is_empty() {
        star = [Resource::new("*")];
        &star[..]
    } else {
        req.resources
    };
    let op_level = info.kinds.contains(&ResourceKind::Any);

    let mut verdicts = Vec::with_capacity(resources.len());
    for r in resources {
        let (parsed, kind) = if r.name == "*" {
            (None, 0)
        } else {
            if op_level {
                return Decision::deny(Reason::ResourceNotApplicable, Some(&r.name));
            }
            let Some(q) = QcsRef::parse(&r.name) else {
                return Decision::deny(Reason::MalformedResource, Some(&r.name));
            };
            let kind = match ResourceKind::of_ref(&q) {
                Some(k) if info.kinds.contains(&k) => k.bit(),
                _ => return Decision::deny(Reason::ResourceNotApplicable, Some(&r.name)),
            };
            (Some(q), kind)
        };
        verdicts.push(judge(&live, parsed.as_ref(), kind, r, req));
    }

    let refs = |ids: &[usize]| -> Vec<StatementRef> {
        ids.iter()
            .map(|&i| {
                let (p, s, _) = live[i];
                StatementRef {
                    policy_id: p.id.clone(),
                    policy_name: p.name.clone(),
                    statement_index: s.index,
                }
            })
            .collect()
    };

    for (r, v) in resources.iter().zip(&verdicts) {
        if let Verdict::Denied(ids) = v {
            return Decision {
                allowed: false,
                reason: Reason::ExplicitDeny,
                deciding: refs(ids),
                denied_resource: Some(r.name.clone()),
            };
        }
    }
    let first_implicit = resources
        .iter()
        .zip(&verdicts)
        .find(|(_, v)| matches!(v, Verdict::Implicit))
        .map(|(r, _)| r.name.as_str());
    let any_allowed = verdicts.iter().any(|v| matches!(v, Verdict::Allowed(_)));
    let allowed = match info.combine {
        Combine::All => first_implicit.is_none(),
        Combine::AnyNoneDenied => any_allowed,
    };
    if !allowed {
        return Decision::deny(Reason::ImplicitDeny, first_implicit);
    }
    let mut ids: Vec<usize> = verdicts
        .iter()
        .flat_map(|v| match v {
            Verdict::Allowed(ids) => ids.as_slice(),
            _ => &[],
        })
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Decision {
        allowed: true,
        reason: Reason::Allowed,
        deciding: refs(&ids),
        denied_resource: None,
    }
}

fn judge(
    live: &[(&CompiledPolicy, &CompiledStatement, Tri)],
    name: Option<&QcsRef<'_>>,
    kind: u16,
    r: &Resource,
    req: &Request<'_>,
) -> Verdict {
    let mut denies = Vec::new();
    let mut allows = Vec::new();
    for (i, (_, s, action)) in live.iter().enumerate() {
        let mut t = action.and(s.resource(name, kind));
        if t == Tri::False {
            continue;
        }
        t = t.and(s.conditions(&r.tags, req.context));
        match (s.effect, t) {
            (Effect::Deny, Tri::True | Tri::Unknown) => denies.push(i),
            (Effect::Allow, Tri::True) => allows.push(i),
            _ => {}
        }
    }
    if !denies.is_empty() {
        Verdict::Denied(denies)
    } else if !allows.is_empty() {
        Verdict::Allowed(allows)
    } else {
        Verdict::Implicit
    }
}
