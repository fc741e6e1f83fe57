//! The policy engine: who may do what to which resource. Pure and
//! synchronous — no I/O, no store — so the API layer calls it inline.
//!
//! * `document`: CAM policy documents (version 2.0), parsed and validated
//!   with errors that point at the bad part.
//! * `compile`: documents compiled once, when a policy changes.
//! * `request`: what a decision is made on (action, resources, context).
//! * `condition`: the `condition` block's operators and keys.
//! * `eval`: `evaluate(request, policies) -> Decision`; explicit deny beats
//!   allow beats the implicit deny, and anything not understood denies.
//!   Decisions name the deciding statements and the denied resource.
//! * `actions`: every authorizable action and the resource kinds it takes.
//! * `preset`: QcloudTATReadOnlyAccess, QcloudTATFullAccess and friends.
//! * `variables`: `${uin}` and `${owner_uin}` filled in per caller.
//! * `roles` + `azure_map`: Azure Automation's built-in roles, assigned at
//!   account or command scope, compiled into the same policies.
//!
//! Depends on nothing else in drover.

mod actions;
mod azure_map;
mod compile;
mod condition;
mod document;
mod error;
mod eval;
mod glob;
mod preset;
mod request;
mod resource;
mod roles;
pub mod variables;

pub use actions::{
    action_info, policy_action, resources_for, Action, ActionInfo, Combine, Endpoint, Origin, Rule,
    ACTIONS, DESCRIBE_COMMAND_CONTENT, FORWARD_AGENT, FORWARD_PORT, RECORD_SESSION_INPUT,
    START_SESSION, USE_SECRET,
};
pub use azure_map::{AUTOMATION_ACCOUNT, AZURE_MAP};
pub use compile::CompiledPolicy;
pub use condition::ConditionClause;
pub use document::{parse_document, validate, Document, Effect, Statement};
pub use error::{Part, PolicyError};
pub use eval::{evaluate, Decision, Reason, StatementRef};
pub use preset::{preset, PresetPolicy, PRESETS};
pub use request::{Context, Request, Resource};
pub use resource::{qcs_name, ResourceKind};
pub use roles::{compile_role, role_document, AzureRole, RoleDefinition, Scope, ROLES};

#[cfg(test)]
mod azure_seed_tests;
#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod tat_seed_tests;
#[cfg(test)]
mod test_util;
