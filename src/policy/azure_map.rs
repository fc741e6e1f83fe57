//! The one table from Azure Automation operations to drover actions.
//!
//! Azure's concepts map onto drover's: runbooks → commands, jobs →
//! invocations and their tasks, schedules and job schedules → invokers,
//! hybrid runbook workers (and DSC nodes) → instances, agent registration
//! keys → register codes, role assignments and definitions → drover's role
//! assignments and CAM policies, the activity log → the audit log.
//! A drover action is granted by a role when the role grants *every* Azure
//! operation listed for it. Operations marked "(drover)" are not Azure's:
//! they place CAM identity management under `Microsoft.Authorization` so that
//! a Contributor's NotActions exclude it, and secrets (access keys) under a
//! `listKeys/action` as Azure does, so `*/read` does not reveal them.

const AA: &str = "Microsoft.Automation/automationAccounts";

/// (drover action, Azure operations all required), generated from the
/// one action table (`actions.rs`), where each row names its operations.
pub use super::actions::AZURE_MAP;

/// The Automation account's own resource path, for documentation.
pub const AUTOMATION_ACCOUNT: &str = AA;

#[cfg(test)]
mod tests {
    use super::AZURE_MAP;
    use crate::policy::actions::ACTIONS;

    #[test]
    fn every_action_is_mapped_once() {
        for a in ACTIONS {
            let n = AZURE_MAP.iter().filter(|(d, _)| *d == a.name).count();
            assert_eq!(n, 1, "{} mapped {n} times", a.name);
        }
        assert_eq!(AZURE_MAP.len(), ACTIONS.len());
    }
}
