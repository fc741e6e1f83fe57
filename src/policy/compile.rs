//! Compiled policies: every pattern, condition and range parsed once, when a
//! policy is created or changed, so evaluation only compares.
//!
//! Compiling never fails: an entry that does not validate (only possible for a
//! `Document` built in code, or stored before a rule tightened) compiles to an
//! `Invalid` matcher that never lets an allow apply and always lets a deny
//! apply. `problems()` lists such entries.

use super::actions::ACTIONS;
use super::condition::{CompiledCondition, Tri};
use super::document::{check_action, parse_document, Document, Effect};
use super::error::PolicyError;
use super::glob::Glob;
use super::resource::{QcsRef, ResourcePattern};

#[derive(Debug, Clone)]
pub(crate) struct CompiledStatement {
    pub effect: Effect,
    pub index: usize,
    /// Bit i set: the statement names `ACTIONS[i]`.
    action_mask: u128,
    /// An action entry could not be understood (fails closed).
    action_invalid: bool,
    resources: Vec<ResourcePattern>,
    conditions: Vec<CompiledCondition>,
}

impl CompiledStatement {
    /// Does the statement name `ACTIONS[index]`?
    pub(crate) fn action(&self, index: usize) -> Tri {
        if index < 128 && self.action_mask & (1u128 << index) != 0 {
            Tri::True
        } else if self.action_invalid {
            Tri::Unknown
        } else {
            Tri::False
        }
    }

    /// Does the statement cover this resource (`None`: operation-level `*`)?
    pub(crate) fn resource(&self, name: Option<&QcsRef<'_>>, kind: u16) -> Tri {
        let mut t = Tri::False;
        for r in &self.resources {
            if r.matches(name, kind) {
                return Tri::True;
            }
            if r.is_invalid() {
                t = Tri::Unknown;
            }
        }
        t
    }

    pub(crate) fn conditions(
        &self,
        tags: &[(String, String)],
        ctx: &super::request::Context,
    ) -> Tri {
        self.conditions
            .iter()
            .fold(Tri::True, |t, c| t.and(c.eval(tags, ctx)))
    }
}

/// A policy ready for evaluation.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub id: String,
    pub name: String,
    pub(crate) statements: Vec<CompiledStatement>,
    problems: Vec<String>,
}

impl CompiledPolicy {
    pub fn compile(id: impl Into<String>, name: impl Into<String>, doc: &Document) -> Self {
        let mut problems = Vec::new();
        let statements = doc
            .statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (mut action_mask, mut action_invalid) = (0u128, false);
                for a in &s.actions {
                    if let Err(m) = check_action(a) {
                        problems.push(format!("statement[{i}].action: {m}"));
                    }
                    if a == "*" || a.contains(':') {
                        let g = Glob::new(a, true);
                        for (bit, known) in ACTIONS.iter().enumerate().take(128) {
                            if g.matches(known.name) {
                                action_mask |= 1u128 << bit;
                            }
                        }
                    } else {
                        action_invalid = true;
                    }
                }
                let resources = s
                    .resources
                    .iter()
                    .map(|r| {
                        let p = ResourcePattern::compile(r);
                        if p.is_invalid() {
                            problems.push(format!("statement[{i}].resource: {r:?} is invalid"));
                        }
                        p
                    })
                    .collect();
                let conditions = s
                    .conditions
                    .iter()
                    .map(|c| {
                        let cc = CompiledCondition::compile(c);
                        if cc.is_invalid() {
                            problems.push(format!(
                                "statement[{i}].condition.{}.{} is invalid",
                                c.operator, c.key
                            ));
                        }
                        cc
                    })
                    .collect();
                CompiledStatement {
                    effect: s.effect,
                    index: i,
                    action_mask,
                    action_invalid,
                    resources,
                    conditions,
                }
            })
            .collect();
        CompiledPolicy {
            id: id.into(),
            name: name.into(),
            statements,
            problems,
        }
    }

    /// Parses, validates and compiles a document's text.
    pub fn from_text(
        id: impl Into<String>,
        name: impl Into<String>,
        text: &str,
    ) -> Result<Self, PolicyError> {
        Ok(Self::compile(id, name, &parse_document(text)?))
    }

    /// Entries that compiled to fail-closed matchers (empty for valid documents).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Whether some Allow statement names `action` (whatever its resources
    /// and conditions): without one, the policy can never allow it.
    pub fn may_allow(&self, action: &str) -> bool {
        let Some(i) = super::actions::action_index(action) else {
            return false;
        };
        self.statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.action(i) == super::condition::Tri::True)
    }
}
