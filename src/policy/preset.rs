//! Preset (Scope QCS) policies: TAT's two from the seed, and the CAM and
//! administrator policies an account needs to manage itself.

use super::compile::CompiledPolicy;

/// A built-in policy; its id is its name.
#[derive(Debug)]
pub struct PresetPolicy {
    /// Stable PolicyId in CAM's API; below every custom policy's id.
    pub id: i64,
    pub name: &'static str,
    pub description: &'static str,
    pub document: &'static str,
}

pub const TAT_READ_ONLY: &str = "QcloudTATReadOnlyAccess";
pub const TAT_FULL: &str = "QcloudTATFullAccess";
pub const ADMINISTRATOR: &str = "AdministratorAccess";
pub const CAM_FULL: &str = "QcloudCamFullAccess";
pub const CAM_READ_ONLY: &str = "QcloudCamReadOnlyAccess";

pub static PRESETS: &[PresetPolicy] = &[
    PresetPolicy {
        id: 2,
        name: TAT_READ_ONLY,
        description: "自动化助手只读访问权限 (TAT read-only access)",
        document: r#"{"version":"2.0","statement":[{"effect":"allow","action":["tat:Describe*","tat:Preview*"],"resource":["*"]}]}"#,
    },
    PresetPolicy {
        id: 1,
        name: TAT_FULL,
        description: "自动化助手全读写访问权限 (TAT full read-write access)",
        document: r#"{"version":"2.0","statement":[{"effect":"allow","action":["tat:*"],"resource":["*"]}]}"#,
    },
    PresetPolicy {
        id: 3,
        name: CAM_READ_ONLY,
        description: "Read users, groups, policies, role assignments and audit events",
        document: r#"{"version":"2.0","statement":[{"effect":"allow","action":["cam:Get*","cam:List*","cam:Describe*"],"resource":["*"]}]}"#,
    },
    PresetPolicy {
        id: 4,
        name: CAM_FULL,
        description: "Manage users, groups, keys, policies and role assignments",
        document: r#"{"version":"2.0","statement":[{"effect":"allow","action":["cam:*"],"resource":["*"]}]}"#,
    },
    PresetPolicy {
        id: 5,
        name: ADMINISTRATOR,
        description: "Full access to every drover action, access management included",
        document: r#"{"version":"2.0","statement":[{"effect":"allow","action":["*"],"resource":["*"]}]}"#,
    },
];

/// The preset called `name` (exact spelling).
pub fn preset(name: &str) -> Option<&'static PresetPolicy> {
    PRESETS.iter().find(|p| p.name == name)
}

impl PresetPolicy {
    /// Compiles the preset. The documents are constants checked by a test;
    /// should one ever fail to parse it compiles to a policy granting nothing.
    pub fn compile(&self) -> CompiledPolicy {
        CompiledPolicy::from_text(self.name, self.name, self.document).unwrap_or_else(|_| {
            CompiledPolicy::compile(
                self.name,
                self.name,
                &super::document::Document {
                    version: "2.0".into(),
                    statements: Vec::new(),
                },
            )
        })
    }
}
