//! The action table: every action drover serves or authorizes, defined once.
//!
//! Each row of `actions!` below is one action, and everything about it comes
//! from that row: the API name (the variant's name), the endpoint that serves
//! it, its policy action (`tat:` or `cam:` + the name), the resource kinds it
//! is authorized against and how they combine, where the row comes from, the
//! rule by which the gate finds the resources a request names, and the Azure
//! Automation operations that grant it. `ACTIONS` (the policy rows) and
//! `AZURE_MAP` are generated from it, and the API dispatches on `Action`
//! with an exhaustive match, so adding an action is one row plus one match
//! arm the compiler asks for. Rows whose endpoint is `Pseudo` are decisions
//! the gate takes inside other actions (tat:UseSecret,
//! tat:DescribeCommandContent); no request names them.
//!
//! Rows marked `Seed` are exactly the TAT access management table
//! (resource-level: the resources listed; operation-level: `*`); rows marked
//! `Drover` are TAT actions the seed does not list and drover's extensions,
//! placed by analogy.
//!
//! How the named resources combine (`Combine`):
//! * `All`: every resource the request names must be allowed (RunCommand and
//!   InvokeCommand: the command and every instance).
//! * `AnyNoneDenied`: reading results that belong to a command *and* an
//!   instance (DescribeInvocationTasks, task output): allowed when some named
//!   resource is allowed and none is explicitly denied. This is what makes the
//!   seed's "allow viewing cmd-xxxxxxxx's results" (command only) and "deny
//!   viewing ins-xxxxxxxx's task results" (instance only) both hold.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::resource::ResourceKind::{self, *};

/// How an action's named resources combine into one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    All,
    AnyNoneDenied,
}

/// Where a row of the table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in the TAT seed's authorization table.
    Seed,
    /// Not in the seed: a drover decision.
    Drover,
}

/// Which endpoint serves an action (by the credential scope's service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Tat,
    Cam,
    /// drover's access-management extensions, served on both.
    Both,
    /// Not an API action: a decision taken inside other actions.
    Pseudo,
}

/// How the gate finds the resources a request names (with their tags). The
/// gate reads exactly these fields, strictly, once; the handler gets them
/// from the authorized value and never reads them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Operation-level: the resource is `*`.
    Account,
    /// `CommandId`: one command.
    Command,
    /// `CommandIds`, required (DeleteCommands).
    Commands,
    /// `CommandIds`, optional: without ids the list is filtered item by item.
    CommandList,
    /// ModifyCommand: the command, and (for new content) the right to run
    /// it on the instances of every invoker that fires it.
    ModifyCommand,
    /// RunCommand: the new command, the resolved instances, its secrets.
    Run,
    /// InvokeCommand: the stored command, the resolved instances, its secrets.
    Invoke,
    /// `InvocationIds`, optional (filtered list without them).
    InvocationList,
    /// `InvocationId` (+ optional `InstanceIds`): its command and instances.
    Invocation,
    /// `InvocationTaskIds`, optional.
    TaskList,
    /// `InvocationTaskId`: its command and instance.
    Task,
    /// `InstanceIds`, optional.
    InstanceList,
    /// `InstanceId`.
    Instance,
    /// `InvokerIds`, optional.
    InvokerList,
    /// `InvokerId`.
    Invoker,
    /// CreateInvoker: the command and the instances it will run on.
    NewInvoker,
    /// ModifyInvoker: the invoker, and the command and instances it will run.
    ChangeInvoker,
    /// `InvocationId` (its command) or `InvokerId`.
    Deliveries,
    /// `SecretName`.
    Secret,
    /// `SecretNames`, optional.
    SecretList,
    /// `SessionId`: the instance the session was on.
    Session,
    /// Sessions listed with filters, each filtered by its instance.
    SessionList,
    /// CAM's users, groups and policies, as each CAM action names them
    /// (`api::cam::scope`).
    Cam,
    /// A pseudo-action's resources are named by the action that decides it.
    Pseudo,
}

/// One authorizable action (a policy row).
#[derive(Debug)]
pub struct ActionInfo {
    /// Qualified name as policies write it, e.g. `tat:RunCommand`.
    pub name: &'static str,
    pub kinds: &'static [ResourceKind],
    pub combine: Combine,
    pub origin: Origin,
}

const OP: &[ResourceKind] = &[Any];
const CMD: &[ResourceKind] = &[Command];
const INS: &[ResourceKind] = &[CvmInstance, LighthouseInstance, ManagedInstance];
const MI: &[ResourceKind] = &[ManagedInstance];
const CMD_INS: &[ResourceKind] = &[Command, CvmInstance, LighthouseInstance, ManagedInstance];
const IVK: &[ResourceKind] = &[Invoker];
const SEC: &[ResourceKind] = &[Secret];
const SEC_INS: &[ResourceKind] = &[Secret, CvmInstance, LighthouseInstance, ManagedInstance];
const CMD_IVK: &[ResourceKind] = &[Command, Invoker];
// CAM's resources: a user (by uin), a group, a policy.
const USR: &[ResourceKind] = &[CamUser];
const GRP: &[ResourceKind] = &[CamGroup];
const POL: &[ResourceKind] = &[CamPolicy];
const USR_GRP: &[ResourceKind] = &[CamUser, CamGroup];
const POL_USR: &[ResourceKind] = &[CamPolicy, CamUser];
const POL_GRP: &[ResourceKind] = &[CamPolicy, CamGroup];
const IVK_CMD_INS: &[ResourceKind] = &[
    Invoker,
    Command,
    CvmInstance,
    LighthouseInstance,
    ManagedInstance,
];

macro_rules! aa {
    ($tail:literal) => {
        concat!("Microsoft.Automation/automationAccounts/", $tail)
    };
}

macro_rules! actions {
    ($( $name:ident : $svc:ident, $ep:ident, $kinds:expr, $combine:ident, $origin:ident,
        $rule:ident, [$($az:expr),* $(,)?] ; )*) => {
        /// Every action, one variant each (TAT, CAM, drover's extensions and
        /// the pseudo-actions), in table order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($name),* }

        impl Action {
            /// Every action in table order.
            pub const ALL: &'static [Action] = &[$(Action::$name),*];

            /// The API action name (`X-TC-Action`).
            pub fn api_name(self) -> &'static str {
                match self { $(Action::$name => stringify!($name)),* }
            }

            /// The policy action, e.g. `tat:RunCommand`.
            pub fn policy_name(self) -> &'static str {
                match self { $(Action::$name => concat!(stringify!($svc), ":", stringify!($name))),* }
            }

            pub fn endpoint(self) -> Endpoint {
                match self { $(Action::$name => Endpoint::$ep),* }
            }

            pub fn rule(self) -> Rule {
                match self { $(Action::$name => Rule::$rule),* }
            }

            /// The Azure Automation operations that all grant this action.
            pub fn azure(self) -> &'static [&'static str] {
                match self { $(Action::$name => &[$($az),*]),* }
            }
        }

        /// Every policy row, in table order (compiled statements keep a
        /// bitmask over it).
        pub static ACTIONS: &[ActionInfo] = &[$(
            ActionInfo {
                name: concat!(stringify!($svc), ":", stringify!($name)),
                kinds: $kinds,
                combine: Combine::$combine,
                origin: Origin::$origin,
            }
        ),*];

        /// (drover action, Azure operations all required), in table order.
        pub static AZURE_MAP: &[(&str, &[&str])] = &[$(
            (concat!(stringify!($svc), ":", stringify!($name)), &[$($az),*])
        ),*];
    };
}

actions! {
    // The seed's table. DescribeAutomationAgents in the seed's table is the
    // API action DescribeAutomationAgentStatus (its own examples use that name).
    // Azure: runbooks → commands (a runbook's definition is runbooks/content/read),
    // jobs → invocations. RunCommand saves a new command and starts it.
    CreateCommand: tat, Tat, OP, All, Seed, Account, [aa!("runbooks/write")];
    DeleteCommand: tat, Tat, CMD, All, Seed, Command, [aa!("runbooks/delete")];
    DescribeAutomationAgentStatus: tat, Tat, INS, All, Seed, InstanceList, [aa!("hybridRunbookWorkerGroups/read")];
    DescribeCommands: tat, Tat, CMD, All, Seed, CommandList, [aa!("runbooks/read")];
    DescribeInvocations: tat, Tat, CMD, All, Seed, InvocationList, [aa!("jobs/read")];
    DescribeInvocationTasks: tat, Tat, CMD_INS, AnyNoneDenied, Seed, TaskList, [aa!("jobs/read")];
    InvokeCommand: tat, Tat, CMD_INS, All, Seed, Invoke, [aa!("jobs/write")];
    ModifyCommand: tat, Tat, CMD, All, Seed, ModifyCommand, [aa!("runbooks/write")];
    PreviewReplacedCommandContent: tat, Tat, CMD, All, Seed, Command, [aa!("runbooks/content/read")];
    RunCommand: tat, Tat, CMD_INS, All, Seed, Run, [aa!("runbooks/write"), aa!("jobs/write")];
    // TAT actions the seed does not list.
    DeleteCommands: tat, Tat, CMD, All, Drover, Commands, [aa!("runbooks/delete")];
    CancelInvocation: tat, Tat, CMD_INS, All, Drover, Invocation, [aa!("jobs/stop/action")];
    // Azure: agent registration keys → register codes.
    CreateRegisterCode: tat, Tat, OP, All, Drover, Account, [aa!("agentRegistrationInformation/regenerateKey/action")];
    DescribeRegisterCodes: tat, Tat, OP, All, Drover, Account, [aa!("agentRegistrationInformation/read")];
    DisableRegisterCodes: tat, Tat, OP, All, Drover, Account, [aa!("agentRegistrationInformation/regenerateKey/action")];
    DeleteRegisterCodes: tat, Tat, OP, All, Drover, Account, [aa!("agentRegistrationInformation/regenerateKey/action")];
    // Azure: hybrid runbook workers → instances.
    DescribeRegisterInstances: tat, Tat, MI, All, Drover, InstanceList, [aa!("hybridRunbookWorkerGroups/read")];
    ModifyRegisterInstance: tat, Tat, MI, All, Drover, Instance, [aa!("hybridRunbookWorkerGroups/write")];
    DeleteRegisterInstance: tat, Tat, MI, All, Drover, Instance, [aa!("hybridRunbookWorkerGroups/delete")];
    DescribeRegions: tat, Tat, OP, All, Drover, Account, [aa!("read")];
    DescribeQuotas: tat, Tat, OP, All, Drover, Account, [aa!("read")];
    // Scenes group the public commands: reading them is reading runbooks.
    DescribeScenes: tat, Tat, OP, All, Drover, Account, [aa!("runbooks/read")];
    // Azure: schedules + job schedules → invokers.
    CreateInvoker: tat, Tat, CMD_INS, All, Drover, NewInvoker, [aa!("schedules/write"), aa!("jobSchedules/write")];
    ModifyInvoker: tat, Tat, IVK_CMD_INS, All, Drover, ChangeInvoker, [aa!("schedules/write"), aa!("jobSchedules/write")];
    DeleteInvoker: tat, Tat, IVK, All, Drover, Invoker, [aa!("schedules/delete"), aa!("jobSchedules/delete")];
    EnableInvoker: tat, Tat, IVK, All, Drover, Invoker, [aa!("schedules/write"), aa!("jobSchedules/write")];
    DisableInvoker: tat, Tat, IVK, All, Drover, Invoker, [aa!("schedules/write"), aa!("jobSchedules/write")];
    DescribeInvokers: tat, Tat, IVK, All, Drover, InvokerList, [aa!("schedules/read"), aa!("jobSchedules/read")];
    DescribeInvokerRecords: tat, Tat, IVK, All, Drover, InvokerList, [aa!("schedules/read"), aa!("jobSchedules/read")];
    // drover extensions on the TAT endpoint.
    // Retagging is apart from ModifyRegisterInstance: tags decide policy
    // conditions and target selectors (in Azure, writing the worker group).
    ModifyInstanceTags: tat, Tat, MI, All, Drover, Instance, [aa!("hybridRunbookWorkerGroups/write")];
    // Job control: named like CancelInvocation, the resources it names.
    SuspendInvocation: tat, Tat, CMD_INS, All, Drover, Invocation, [aa!("jobs/suspend/action")];
    ResumeInvocation: tat, Tat, CMD_INS, All, Drover, Invocation, [aa!("jobs/resume/action")];
    DescribeInvocationTaskOutput: tat, Tat, CMD_INS, AnyNoneDenied, Drover, Task, [aa!("jobs/streams/read")];
    // Secrets (drover): managed by name; values are never returned. Azure's
    // credential assets: credentials/read returns metadata, never a password.
    CreateSecret: tat, Tat, SEC, All, Drover, Secret, [aa!("credentials/write")];
    ModifySecret: tat, Tat, SEC, All, Drover, Secret, [aa!("credentials/write")];
    DeleteSecret: tat, Tat, SEC, All, Drover, Secret, [aa!("credentials/delete")];
    DescribeSecrets: tat, Tat, SEC, All, Drover, SecretList, [aa!("credentials/read")];
    // Pseudo-action: may a run put this secret into its script on these
    // instances? Decided for each `{{secret:NAME}}` of what runs. In Azure a
    // job reads its runbook's credentials with the account's identity, so
    // whoever may start the job uses them: jobs/write (Reader never).
    UseSecret: tat, Pseudo, SEC_INS, All, Drover, Pseudo, [aa!("jobs/write")];
    // Pseudo-action: may the caller see a command's Content? Checked by
    // DescribeCommands (and anything else that returns Content) per command.
    DescribeCommandContent: tat, Pseudo, CMD, All, Drover, Pseudo, [aa!("runbooks/content/read")];
    // Terminal sessions (issue 11): listed and their recordings read by the
    // instance they were on (with its tags). Azure Bastion's session list
    // is an /action, so Reader's */read does not reach recordings, which
    // may hold whatever was on the screen.
    DescribeSessions: tat, Tat, INS, All, Drover, SessionList, ["Microsoft.Network/bastionHosts/getActiveSessions/action"];
    DescribeSessionRecording: tat, Tat, INS, All, Drover, Session, ["Microsoft.Network/bastionHosts/getActiveSessions/action"];
    // Pseudo-action: allowed to a user on an instance, it makes that user's
    // sessions there record their input (`session::record`). In Azure an
    // Owner or Contributor gets it (as with everything); no built-in role
    // names it otherwise.
    RecordSessionInput: tat, Pseudo, INS, All, Drover, Pseudo, ["Microsoft.Network/bastionHosts/getActiveSessions/action"];
    // Pseudo-action: may the caller open an interactive session on this
    // instance (with its tags)? Decided when a console terminal or an ssh
    // client asks, with the login user as the condition key
    // `tat:login_user`. In Azure, signing in to a VM is
    // virtualMachines/login/action (Owner and Contributor: Actions `*`).
    StartSession: tat, Pseudo, INS, All, Drover, Pseudo, ["Microsoft.Compute/virtualMachines/login/action"];
    // Pseudo-action: may the caller forward a port through this instance
    // (ssh -L / -W), to the host and port that are the condition keys
    // `tat:forward_host` and `tat:forward_port`? A shell is not needed for
    // it and does not grant it. In Azure, tunnelling to a VM through a
    // bastion host.
    ForwardPort: tat, Pseudo, INS, All, Drover, Pseudo, ["Microsoft.Network/bastionHosts/tunnel/action"];
    // Pseudo-action: may the caller's ssh agent be forwarded into their
    // session on this instance (ssh -A), with the login user as the
    // condition key `tat:login_user`? It lets processes of the session (and
    // root on the instance) use the caller's keys while it lasts, so it is
    // its own decision, not part of tat:StartSession. Like a tunnel in
    // Azure: only Owner and Contributor get it by their `*`.
    ForwardAgent: tat, Pseudo, INS, All, Drover, Pseudo, ["Microsoft.Network/bastionHosts/tunnel/action"];
    // An administrator ends a live session (InstanceId, SessionId): decided
    // on the instance with its tags; stopping a job in Azure.
    TerminateSession: tat, Tat, MI, All, Drover, Instance, [aa!("jobs/stop/action")];
    // Webhook deliveries of an invocation (its command) or an invoker.
    DescribeWebhookDeliveries: tat, Tat, CMD_IVK, All, Drover, Deliveries, [aa!("jobs/read")];
    // CAM's actions are resource-scoped as CAM scopes them (Rule::Cam): an
    // action on a user names `qcs::cam::uin/<OwnerUin>:uin/<Uin>`, on a group
    // `...:group/<GroupId>`, on a policy `...:policyid/<PolicyId>`; an
    // attachment or membership names both sides; role assignments and the
    // simulator name the principal. Creating and listing stay operation-level.
    // Access management lives under cam: so that tat:* (QcloudTATFullAccess)
    // never lets anyone grant themselves more access. In Azure: role
    // assignments and definitions under Microsoft.Authorization; identities
    // and keys there too (drover), so a Contributor's NotActions exclude them.
    CreateRoleAssignment: cam, Both, USR_GRP, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/write"];
    DeleteRoleAssignment: cam, Both, USR_GRP, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/delete"];
    ListRoleAssignments: cam, Both, OP, All, Drover, Account, ["Microsoft.Authorization/roleAssignments/read"];
    SimulatePrincipalPolicy: cam, Both, USR, All, Drover, Cam, ["Microsoft.Authorization/permissions/read"];
    DescribeAuditEvents: cam, Tat, OP, All, Drover, Account, ["Microsoft.Insights/eventtypes/values/read"];
    AddUser: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/users/write"];
    GetUser: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/users/read"];
    ListUsers: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/users/read"];
    UpdateUser: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/users/write"];
    DeleteUser: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/users/delete"];
    CreateGroup: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/groups/write"];
    GetGroup: cam, Cam, GRP, All, Drover, Cam, ["Microsoft.Authorization/groups/read"];
    ListGroups: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/groups/read"];
    DeleteGroup: cam, Cam, GRP, All, Drover, Cam, ["Microsoft.Authorization/groups/delete"];
    AddUserToGroup: cam, Cam, USR_GRP, All, Drover, Cam, ["Microsoft.Authorization/groups/write"];
    RemoveUserFromGroup: cam, Cam, USR_GRP, All, Drover, Cam, ["Microsoft.Authorization/groups/write"];
    ListUsersForGroup: cam, Cam, GRP, All, Drover, Cam, ["Microsoft.Authorization/groups/read"];
    ListGroupsForUser: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/groups/read"];
    CreatePolicy: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/roleDefinitions/write"];
    GetPolicy: cam, Cam, POL, All, Drover, Cam, ["Microsoft.Authorization/roleDefinitions/read"];
    UpdatePolicy: cam, Cam, POL, All, Drover, Cam, ["Microsoft.Authorization/roleDefinitions/write"];
    DeletePolicy: cam, Cam, POL, All, Drover, Cam, ["Microsoft.Authorization/roleDefinitions/delete"];
    ListPolicies: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/roleDefinitions/read"];
    AttachUserPolicy: cam, Cam, POL_USR, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/write"];
    DetachUserPolicy: cam, Cam, POL_USR, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/delete"];
    AttachGroupPolicy: cam, Cam, POL_GRP, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/write"];
    DetachGroupPolicy: cam, Cam, POL_GRP, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/delete"];
    ListAttachedUserPolicies: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/read"];
    ListAttachedGroupPolicies: cam, Cam, GRP, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/read"];
    ListAttachedUserAllPolicies: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/roleAssignments/read"];
    CreateAccessKey: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/accessKeys/write"];
    ListAccessKeys: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/accessKeys/listKeys/action"];
    UpdateAccessKey: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/accessKeys/write"];
    DeleteAccessKey: cam, Cam, USR, All, Drover, Cam, ["Microsoft.Authorization/accessKeys/delete"];
    GetUserAppId: cam, Cam, OP, All, Drover, Account, ["Microsoft.Authorization/users/read"];
    // Ssh public keys (drover): a person's keys for the ssh gateway. They
    // let whoever holds the private key act as that user, so they are scoped
    // like access keys (the caller's own without TargetUin; a self-service
    // policy on `${uin}` reaches only oneself) and live under cam:, where
    // tat:* never reaches. Azure: beside access keys, under
    // Microsoft.Authorization, which a Contributor's NotActions exclude.
    ImportSshPublicKey: cam, Both, USR, All, Drover, Cam, ["Microsoft.Authorization/sshPublicKeys/write"];
    DescribeSshPublicKeys: cam, Both, USR, All, Drover, Cam, ["Microsoft.Authorization/sshPublicKeys/read"];
    DeleteSshPublicKey: cam, Both, USR, All, Drover, Cam, ["Microsoft.Authorization/sshPublicKeys/delete"];
}

impl Action {
    /// The action a request names on `endpoint` (`cam`: the CAM endpoint),
    /// exact spelling as the SDKs send it; None: no such action there.
    pub fn from_api(name: &str, cam: bool) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| {
            a.api_name() == name
                && match a.endpoint() {
                    Endpoint::Tat => !cam,
                    Endpoint::Cam => cam,
                    Endpoint::Both => true,
                    Endpoint::Pseudo => false,
                }
        })
    }

    /// Whether a list action without ids is filtered item by item (and so
    /// needs no decision on named resources).
    pub fn is_filtered_list(self) -> bool {
        matches!(
            self.rule(),
            Rule::CommandList
                | Rule::InvocationList
                | Rule::TaskList
                | Rule::InstanceList
                | Rule::InvokerList
                | Rule::SecretList
                | Rule::SessionList
        )
    }
}

fn index() -> &'static HashMap<String, usize> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        ACTIONS
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.to_ascii_lowercase(), i))
            .collect()
    })
}

/// The position of an action in `ACTIONS` (compiled statements keep a
/// bitmask over it, so matching an action is one AND).
pub(crate) fn action_index(action: &str) -> Option<usize> {
    if action.bytes().any(|b| b.is_ascii_uppercase()) {
        index().get(&action.to_ascii_lowercase()).copied()
    } else {
        index().get(action).copied()
    }
}

/// The row of a qualified action (`tat:RunCommand`), any letter case.
pub fn action_info(action: &str) -> Option<&'static ActionInfo> {
    action_index(action).and_then(|i| ACTIONS.get(i))
}

/// The resource kinds `action` is authorized against; empty if unknown.
pub fn resources_for(action: &str) -> &'static [ResourceKind] {
    action_info(action).map_or(&[], |a| a.kinds)
}

/// The policy action for an API action on an endpoint (`cam == true`: the
/// CAM endpoint); pseudo-actions are found on the TAT endpoint too, for the
/// simulator. `None` if drover does not know the action there.
pub fn policy_action(api_action: &str, cam: bool) -> Option<&'static str> {
    Action::from_api(api_action, cam)
        .or_else(|| {
            Action::ALL
                .iter()
                .copied()
                .find(|a| !cam && a.endpoint() == Endpoint::Pseudo && a.api_name() == api_action)
        })
        .map(Action::policy_name)
}

/// The TAT pseudo-action that guards a command's Content.
pub const DESCRIBE_COMMAND_CONTENT: &str = "tat:DescribeCommandContent";
/// The TAT pseudo-action that makes a user's sessions record input.
pub const RECORD_SESSION_INPUT: &str = "tat:RecordSessionInput";
/// The TAT pseudo-action for putting a secret into what runs.
pub const USE_SECRET: &str = "tat:UseSecret";
/// The TAT pseudo-action for opening an interactive session on an instance.
pub const START_SESSION: &str = "tat:StartSession";
/// The TAT pseudo-action for forwarding a port through an instance.
pub const FORWARD_PORT: &str = "tat:ForwardPort";
/// The TAT pseudo-action for forwarding an ssh agent into a session.
pub const FORWARD_AGENT: &str = "tat:ForwardAgent";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_rejects_unknown() {
        assert_eq!(resources_for("TAT:runcommand"), CMD_INS);
        assert_eq!(resources_for("tat:CreateCommand"), OP);
        assert!(resources_for("tat:InvokeCommands").is_empty());
        assert_eq!(policy_action("RunCommand", false), Some("tat:RunCommand"));
        assert_eq!(
            policy_action("CreateRoleAssignment", false),
            Some("cam:CreateRoleAssignment")
        );
        assert_eq!(
            policy_action("DescribeCommandContent", false),
            Some(DESCRIBE_COMMAND_CONTENT)
        );
        assert_eq!(policy_action("AddUser", true), Some("cam:AddUser"));
        assert_eq!(policy_action("RunCommand", true), None);
        assert_eq!(Action::from_api("UseSecret", false), None);
        assert_eq!(Action::from_api("runcommand", false), None);
    }

    #[test]
    fn names_are_unique_and_fit_the_bitmask() {
        assert_eq!(index().len(), ACTIONS.len());
        assert!(ACTIONS.len() <= 128);
    }

    /// Every action has its policy row, resource rule and Azure mapping, and
    /// the rule fits the row's resource kinds.
    #[test]
    fn every_action_has_its_rows() {
        assert_eq!(Action::ALL.len(), ACTIONS.len());
        for &a in Action::ALL {
            let info = action_info(a.policy_name()).expect("policy row");
            assert_eq!(info.name, a.policy_name());
            assert!(!a.azure().is_empty(), "{a:?} has no Azure mapping");
            let kinds = info.kinds;
            let rule_fits = match a.rule() {
                Rule::Account => kinds == OP,
                Rule::Command | Rule::Commands | Rule::CommandList | Rule::ModifyCommand => {
                    kinds == CMD
                }
                Rule::Run | Rule::Invoke | Rule::NewInvoker | Rule::Invocation => kinds == CMD_INS,
                Rule::InvocationList => kinds == CMD,
                Rule::TaskList | Rule::Task => kinds == CMD_INS,
                Rule::InstanceList => kinds == INS || kinds == MI,
                Rule::Instance => kinds == MI,
                Rule::InvokerList | Rule::Invoker => kinds == IVK,
                Rule::ChangeInvoker => kinds == IVK_CMD_INS,
                Rule::Deliveries => kinds == CMD_IVK,
                Rule::Secret | Rule::SecretList => kinds == SEC,
                Rule::Session | Rule::SessionList => kinds == INS,
                Rule::Pseudo => {
                    a.endpoint() == Endpoint::Pseudo
                        && (kinds == SEC_INS || kinds == CMD || kinds == INS || kinds == MI)
                }
                // CAM's resources only, on the CAM endpoint (or both).
                Rule::Cam => {
                    a.endpoint() != Endpoint::Tat
                        && !kinds.is_empty()
                        && kinds
                            .iter()
                            .all(|k| matches!(k, CamUser | CamGroup | CamPolicy))
                }
            };
            assert!(
                rule_fits,
                "{a:?}: rule {:?} does not fit its kinds",
                a.rule()
            );
            if a.endpoint() != Endpoint::Pseudo {
                let cam = a.endpoint() == Endpoint::Cam;
                assert_eq!(Action::from_api(a.api_name(), cam), Some(a));
            }
        }
    }
}
