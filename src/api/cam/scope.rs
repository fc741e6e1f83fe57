//! The resources a CAM action acts on, named as CAM names them, so that a
//! policy's `resource` decides whom an access-management action may reach:
//!
//! * a user: `qcs::cam::uin/<OwnerUin>:uin/<Uin>` (the account itself is
//!   `uin/<OwnerUin>`),
//! * a group: `qcs::cam::uin/<OwnerUin>:group/<GroupId>`,
//! * a policy: `qcs::cam::uin/<OwnerUin>:policyid/<PolicyId>`.
//!
//! A self-service policy (`cam:CreateAccessKey` on the caller's own uin)
//! thus reaches only the caller; nobody mints keys for, resets the password
//! of, or attaches a policy to a user (or with a policy) they were not
//! granted. An attachment or a group membership names both sides, and both
//! must be allowed.
//!
//! The gate reads each action's target fields here, strictly and once (the
//! CAM SDK's models: `Name`, `TargetUin`, `AttachUin`, `Info[].Uid/Uin`,
//! `GroupId`, `PolicyId`, `PrincipalId` ...), takes them out of the request
//! and resolves them (a name or uid to its uin, a group id to a group that
//! exists) in one read. The decision is made on those ids, and the handler
//! gets the very same `Resolved` values in its `Authorized<Request>`
//! (`Named::Cam`): it acts on the uin, group or policy that was decided and
//! never reads or resolves those fields again, so a user renamed or
//! re-created between the decision and the write is not the one acted on.
//!
//! A target that names nothing that exists (an unknown user name or uid, a
//! group id of no group) is decided as a fresh id that only a wildcard
//! resource matches: a narrowly granted caller is refused exactly as for a
//! user it may not touch, so the gate reveals nothing about which names
//! exist, while a caller granted `uin/*` learns from the handler that the
//! user does not exist.

use serde_json::{Map, Value};

use super::super::error::{ApiError, Code};
use super::super::request::{Params, R};
use super::super::{Api, Principal};
use crate::policy::{Resource, ResourceKind};
use crate::store::{groups, policies, role_assignments, users, Entity, StoreError};

/// Pairs one AddUserToGroup or RemoveUserFromGroup call may carry.
const MAX_INFO: usize = 50;
/// Policies one DeletePolicy call may delete.
const MAX_DELETE: usize = 100;

/// A target as the request names it, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A user by uin (text, as drover keeps uins).
    Uin(String),
    /// A user by CAM name.
    Name(String),
    /// A user by uid.
    Uid(i64),
    /// The caller itself (access keys and groups without a target user).
    Caller,
    /// The account itself (the simulator's `root`).
    Account,
    /// A role assignment, decided on the principal it binds.
    RoleAssignment(String),
    Group(i64),
    Policy(i64),
    /// A policy by name (UpdatePolicy without PolicyId).
    PolicyName(String),
    /// Named, but not as an id of its kind (a role assignment's or the
    /// simulator's `PrincipalId` that is no number): matches only a
    /// wildcard resource, and the handler answers that it does not exist.
    Unknown(ResourceKind, String),
}

/// A target as the gate decided it: what the request named, and the id it
/// resolved to (a uin, a group id, a policy id, a role assignment's
/// principal), None when the request named nothing that exists.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub target: Target,
    pub id: Option<String>,
    /// The resource decided: the id, or a fresh one only `*` matches.
    resource: Resource,
}

impl Resolved {
    /// The id the handler acts on, or NotFound for what the request named.
    pub fn require(&self, entity: Entity) -> Result<String, StoreError> {
        self.id
            .clone()
            .ok_or_else(|| StoreError::missing(entity, self.asked()))
    }

    /// What the request named, as a not-found message shows it.
    pub fn asked(&self) -> String {
        match &self.target {
            Target::Uin(u) | Target::Name(u) | Target::RoleAssignment(u) => u.clone(),
            Target::PolicyName(n) | Target::Unknown(_, n) => n.clone(),
            Target::Uid(u) => format!("uid {u}"),
            Target::Group(g) | Target::Policy(g) => g.to_string(),
            Target::Caller | Target::Account => String::new(),
        }
    }

    /// The id as an integer (groups, policies); NotFound when it resolved
    /// to nothing.
    pub fn require_int(&self, entity: Entity) -> Result<i64, StoreError> {
        let id = self.require(entity)?;
        id.parse()
            .map_err(|_| StoreError::missing(entity, self.asked()))
    }
}

/// A CAM request's targets, grouped as they are decided (each group on its
/// own; all must be allowed): one group for most actions, one per `Info`
/// entry or per deleted policy.
#[derive(Debug, Clone, Default)]
pub struct CamScope {
    pub groups: Vec<Vec<Resolved>>,
}

impl CamScope {
    /// The resources of each group, for the decision.
    pub fn resources(&self) -> Vec<Vec<Resource>> {
        self.groups
            .iter()
            .map(|g| g.iter().map(|r| r.resource.clone()).collect())
            .collect()
    }

    /// The first target of the first group: the one target of most actions.
    pub fn first(&self) -> R<&Resolved> {
        self.nth(0)
    }

    /// The `i`-th target of the first group (an attachment's second side).
    pub fn nth(&self, i: usize) -> R<&Resolved> {
        self.groups
            .first()
            .and_then(|g| g.get(i))
            .ok_or_else(ApiError::internal)
    }
}

/// Reads (and takes out of the request) the targets of a CAM-scoped
/// action, resolves them and names their resources. None for an action
/// that is not CAM-scoped.
pub async fn named(api: &Api, p: &Principal, action: &str, q: &mut Params) -> R<Option<CamScope>> {
    let me = if p.is_root() {
        api.account_uin.clone()
    } else {
        p.user_id.clone()
    };
    let Some(groups) = read_targets(action, q, p.is_root())? else {
        return Ok(None);
    };
    let owner = api.account_uin.clone();
    let resolved = api
        .store
        .read(move |c| {
            groups
                .into_iter()
                .map(|g| g.into_iter().map(|t| resolve(c, &owner, &me, t)).collect())
                .collect::<crate::store::Result<Vec<Vec<_>>>>()
        })
        .await?;
    let groups = resolved
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|(target, kind, id)| {
                    let decided = id.clone().unwrap_or_else(nobody);
                    Resolved {
                        target,
                        id,
                        resource: Resource::new(kind.qcs("", &api.account_uin, &decided)),
                    }
                })
                .collect()
        })
        .collect();
    Ok(Some(CamScope { groups }))
}

/// The targets of `action`, grouped as they are decided, read strictly
/// (a field of the wrong type or shape is the parameter error the handler
/// used to give) and taken out of `q`.
fn read_targets(action: &str, q: &mut Params, root: bool) -> R<Option<Vec<Vec<Target>>>> {
    let one = |t: Target| Ok(Some(vec![vec![t]]));
    match action {
        "GetUser" | "UpdateUser" | "DeleteUser" => one(Target::Name(q.str("Name")?)),
        "CreateAccessKey" | "ListAccessKeys" | "UpdateAccessKey" | "DeleteAccessKey" => {
            one(opt_uin(q, "TargetUin")?.map_or(Target::Caller, Target::Uin))
        }
        // Ssh keys are credentials too: the same rule as access keys.
        "ImportSshPublicKey" | "DescribeSshPublicKeys" | "DeleteSshPublicKey" => {
            one(opt_uin(q, "TargetUin")?.map_or(Target::Caller, Target::Uin))
        }
        "ListAttachedUserPolicies" | "ListAttachedUserAllPolicies" => {
            one(Target::Uin(required_uin(q, "TargetUin")?))
        }
        "ListGroupsForUser" => {
            let uid = q.opt_i64("Uid")?;
            let sub_uin = opt_uin(q, "SubUin")?;
            one(match (sub_uin, uid) {
                (Some(uin), _) => Target::Uin(uin),
                (None, Some(uid)) => Target::Uid(uid),
                // Root has no groups of its own to list.
                (None, None) if root => return Err(ApiError::missing("SubUin")),
                (None, None) => Target::Caller,
            })
        }
        "GetGroup" | "DeleteGroup" | "ListUsersForGroup" => {
            one(Target::Group(group_id(q, "GroupId")?))
        }
        "ListAttachedGroupPolicies" => one(Target::Group(group_id(q, "TargetGroupId")?)),
        "AddUserToGroup" | "RemoveUserFromGroup" => Ok(Some(read_info(q)?)),
        "GetPolicy" => one(Target::Policy(policy_id(q, "PolicyId")?)),
        "UpdatePolicy" => {
            let id = q.opt_i64("PolicyId")?;
            let name = q.opt_str("PolicyName")?;
            one(match (id, name) {
                (Some(id), _) => Target::Policy(id),
                (None, Some(n)) => Target::PolicyName(n),
                (None, None) => return Err(ApiError::missing("PolicyId")),
            })
        }
        "DeletePolicy" => {
            let ids = int_list(q, "PolicyId")?.unwrap_or_default();
            if ids.is_empty() {
                return Err(ApiError::missing("PolicyId"));
            }
            if ids.len() > MAX_DELETE {
                return Err(ApiError::new(
                    Code::InvalidParameterOperatePoliciesOverLimit,
                    format!("PolicyId allows at most {MAX_DELETE} entries"),
                ));
            }
            Ok(Some(
                ids.into_iter().map(|id| vec![Target::Policy(id)]).collect(),
            ))
        }
        "AttachUserPolicy" | "DetachUserPolicy" => {
            let policy = Target::Policy(policy_id(q, "PolicyId")?);
            let field = if action == "AttachUserPolicy" {
                "AttachUin"
            } else {
                "DetachUin"
            };
            Ok(Some(vec![vec![
                policy,
                Target::Uin(required_uin(q, field)?),
            ]]))
        }
        "AttachGroupPolicy" | "DetachGroupPolicy" => {
            let policy = Target::Policy(policy_id(q, "PolicyId")?);
            let field = if action == "AttachGroupPolicy" {
                "AttachGroupId"
            } else {
                "DetachGroupId"
            };
            Ok(Some(vec![vec![policy, Target::Group(group_id(q, field)?)]]))
        }
        "SimulatePrincipalPolicy" => {
            let group = principal_type(q, false)? == Some(PrincipalKind::Group);
            let id = q.str("PrincipalId")?;
            // The simulator's name for the account.
            one(if id == "root" && !group {
                Target::Account
            } else {
                principal(group, id)
            })
        }
        "CreateRoleAssignment" => {
            let group = principal_type(q, true)? == Some(PrincipalKind::Group);
            one(principal(group, q.str("PrincipalId")?))
        }
        "DeleteRoleAssignment" => one(Target::RoleAssignment(q.str("RoleAssignmentId")?)),
        _ => Ok(None),
    }
}

/// A role assignment's or the simulator's `PrincipalType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Group,
}

/// Reads `PrincipalType` (User or Group, any case).
pub fn principal_type(q: &mut Params, required: bool) -> R<Option<PrincipalKind>> {
    let t = if required {
        Some(q.str("PrincipalType")?)
    } else {
        q.opt_str("PrincipalType")?
    };
    match t.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("user") => Ok(Some(PrincipalKind::User)),
        Some("group") => Ok(Some(PrincipalKind::Group)),
        Some(_) => Err(ApiError::value("PrincipalType must be User or Group")),
    }
}

/// A principal by id: a user by uin, or a group by id.
fn principal(group: bool, id: String) -> Target {
    match (group, id.parse::<i64>()) {
        (true, Ok(g)) => Target::Group(g),
        (true, Err(_)) => Target::Unknown(ResourceKind::CamGroup, id),
        (false, Ok(u)) if u > 0 => Target::Uin(id),
        (false, _) => Target::Unknown(ResourceKind::CamUser, id),
    }
}

/// A required group id parameter.
fn group_id(q: &mut Params, name: &str) -> R<i64> {
    let id = q.opt_i64(name)?.ok_or_else(|| ApiError::missing(name))?;
    if id <= 0 {
        return Err(ApiError::new(
            Code::InvalidParameterGroupIdError,
            format!("{name} {id} is not a valid group id"),
        ));
    }
    Ok(id)
}

/// A required policy id parameter.
fn policy_id(q: &mut Params, name: &str) -> R<i64> {
    let id = q.opt_i64(name)?.ok_or_else(|| ApiError::missing(name))?;
    if id <= 0 {
        return Err(ApiError::new(
            Code::InvalidParameterPolicyIdError,
            format!("{name} {id} is not a valid policy id"),
        ));
    }
    Ok(id)
}

fn required_uin(q: &mut Params, name: &str) -> R<String> {
    opt_uin(q, name)?.ok_or_else(|| ApiError::missing(name))
}

/// AddUserToGroup / RemoveUserFromGroup: each `Info` entry
/// (`GroupIdOfUidInfo`) is one group with one user, by Uin or Uid (Uin
/// wins, as in CAM).
fn read_info(q: &mut Params) -> R<Vec<Vec<Target>>> {
    let Some(v) = q.opt_value("Info") else {
        return Err(ApiError::missing("Info"));
    };
    let Value::Array(items) = v else {
        return Err(ApiError::wrong_type("Info", "an array of GroupIdOfUidInfo"));
    };
    if items.is_empty() {
        return Err(ApiError::missing("Info"));
    }
    if items.len() > MAX_INFO {
        return Err(ApiError::new(
            Code::InvalidParameterOperateEntitiesOverLimit,
            format!("Info allows at most {MAX_INFO} entries"),
        ));
    }
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut m) = item else {
                return Err(ApiError::wrong_type("Info", "an array of GroupIdOfUidInfo"));
            };
            let int = |m: &mut Map<String, Value>, k: &str| match m.remove(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ApiError::wrong_type(&format!("Info.{k}"), "an integer")),
            };
            let group = int(&mut m, "GroupId")?.ok_or_else(|| ApiError::missing("Info.GroupId"))?;
            let uin = int(&mut m, "Uin")?;
            let uid = int(&mut m, "Uid")?;
            if let Some(k) = m.keys().next() {
                return Err(ApiError::unknown_param(&format!("Info.{k}")));
            }
            let user = match (uin, uid) {
                (Some(uin), _) => Target::Uin(uin.to_string()),
                (None, Some(uid)) => Target::Uid(uid),
                (None, None) => {
                    return Err(ApiError::new(
                        Code::InvalidParameterUserUinAndUinNotAllNull,
                        "each Info entry needs a Uin or a Uid",
                    ))
                }
            };
            Ok(vec![Target::Group(group), user])
        })
        .collect()
}

/// A uin parameter (an integer in CAM's API) as drover keeps it.
pub(super) fn opt_uin(q: &mut Params, name: &str) -> R<Option<String>> {
    match q.opt_i64(name)? {
        None => Ok(None),
        Some(v) if v > 0 => Ok(Some(v.to_string())),
        Some(v) => Err(ApiError::new(
            Code::InvalidParameterUinError,
            format!("{name} {v} is not a valid uin"),
        )),
    }
}

/// A list of integers such as DeletePolicy's PolicyId.
pub(super) fn int_list(q: &mut Params, name: &str) -> R<Option<Vec<i64>>> {
    match q.opt_value(name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| ApiError::wrong_type(name, "an array of integers"))
            })
            .collect::<R<Vec<_>>>()
            .map(Some),
        Some(_) => Err(ApiError::wrong_type(name, "an array of integers")),
    }
}

/// An id no resource of any account has: only a wildcard matches it.
fn nobody() -> String {
    format!("unknown-{}", crate::ids::random_token(12))
}

/// The kind of `t` and the id it resolves to (None: nothing of that name).
fn resolve(
    c: &rusqlite::Connection,
    owner: &str,
    me: &str,
    t: Target,
) -> crate::store::Result<(Target, ResourceKind, Option<String>)> {
    use ResourceKind::{CamGroup, CamPolicy, CamUser};
    let (kind, id) = match &t {
        Target::Uin(u) => (CamUser, Some(u.clone())),
        Target::Caller => (CamUser, Some(me.to_string())),
        Target::Account => (CamUser, Some(owner.to_string())),
        Target::RoleAssignment(id) => match role_assignments::get(c, id)? {
            Some(a) if a.principal_type == "group" => (CamGroup, Some(a.principal_id)),
            Some(a) => (CamUser, Some(a.principal_id)),
            None => (CamUser, None),
        },
        Target::Name(n) => (CamUser, users::get_by_name(c, n)?.map(|u| u.uin)),
        Target::Uid(uid) => (CamUser, users::get_by_uid(c, *uid)?.map(|u| u.uin)),
        Target::Group(g) => (CamGroup, groups::get(c, *g)?.map(|_| g.to_string())),
        Target::Policy(p) => (CamPolicy, Some(p.to_string())),
        Target::PolicyName(n) => (
            CamPolicy,
            policies::get_by_name(c, n)?.map(|p| p.policy_id.to_string()),
        ),
        Target::Unknown(kind, _) => (*kind, None),
    };
    Ok((t, kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Rule};

    /// A body with every target field any CAM-scoped action reads.
    fn full(action: &str) -> Params {
        let body = match action {
            "AttachUserPolicy" => r#"{"PolicyId":5,"AttachUin":200}"#.to_string(),
            "DetachUserPolicy" => r#"{"PolicyId":5,"DetachUin":200}"#.to_string(),
            "AttachGroupPolicy" => r#"{"PolicyId":5,"AttachGroupId":7}"#.to_string(),
            "DetachGroupPolicy" => r#"{"PolicyId":5,"DetachGroupId":7}"#.to_string(),
            "AddUserToGroup" | "RemoveUserFromGroup" => {
                r#"{"Info":[{"GroupId":7,"Uid":3}]}"#.to_string()
            }
            "DeletePolicy" => r#"{"PolicyId":[5]}"#.to_string(),
            "GetPolicy" | "UpdatePolicy" => r#"{"PolicyId":5}"#.to_string(),
            "GetGroup" | "DeleteGroup" | "ListUsersForGroup" => r#"{"GroupId":7}"#.to_string(),
            "ListAttachedGroupPolicies" => r#"{"TargetGroupId":7}"#.to_string(),
            "ListAttachedUserPolicies" | "ListAttachedUserAllPolicies" => {
                r#"{"TargetUin":200}"#.to_string()
            }
            "SimulatePrincipalPolicy" => r#"{"PrincipalId":"200"}"#.to_string(),
            "CreateRoleAssignment" => r#"{"PrincipalType":"User","PrincipalId":"200"}"#.to_string(),
            "DeleteRoleAssignment" => r#"{"RoleAssignmentId":"ra-1"}"#.to_string(),
            "GetUser" | "UpdateUser" | "DeleteUser" => r#"{"Name":"ann"}"#.to_string(),
            _ => "{}".to_string(),
        };
        Params::parse(body.as_bytes()).unwrap()
    }

    /// Every action whose rule is `Rule::Cam` names its targets here, so
    /// none is decided on `*` by accident, and takes them out of the
    /// request, so its handler cannot read them again.
    #[test]
    fn every_cam_scoped_action_names_its_targets_and_takes_them() {
        let scoped: Vec<Action> = Action::ALL
            .iter()
            .copied()
            .filter(|a| a.rule() == Rule::Cam)
            .collect();
        assert!(scoped.len() >= 20);
        for a in scoped {
            let mut q = full(a.api_name());
            let groups = read_targets(a.api_name(), &mut q, false).unwrap();
            assert!(
                groups.is_some_and(|g| !g.is_empty() && g.iter().all(|x| !x.is_empty())),
                "{a:?}"
            );
            q.finish()
                .unwrap_or_else(|e| panic!("{a:?} left a target field: {e:?}"));
        }
        let mut empty = Params::parse(b"{}").unwrap();
        assert!(read_targets("AddUser", &mut empty, false)
            .unwrap()
            .is_none());
    }

    #[test]
    fn reads_targets_strictly() {
        let mut q =
            Params::parse(br#"{"Info":[{"GroupId":7,"Uid":3},{"GroupId":8,"Uin":200,"Uid":4}]}"#)
                .unwrap();
        let info = read_targets("AddUserToGroup", &mut q, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            info,
            vec![
                vec![Target::Group(7), Target::Uid(3)],
                vec![Target::Group(8), Target::Uin("200".into())]
            ]
        );
        let mut q = Params::parse(br#"{"PolicyId":[5,"x"]}"#).unwrap();
        let e = read_targets("DeletePolicy", &mut q, false).unwrap_err();
        assert_eq!(e.code, Code::InvalidParameter);
        // Keys without TargetUin are the caller's own.
        let mut q = Params::parse(b"{}").unwrap();
        let own = read_targets("CreateAccessKey", &mut q, false)
            .unwrap()
            .unwrap();
        assert_eq!(own, vec![vec![Target::Caller]]);
        let mut q = Params::parse(br#"{"TargetUin":-1}"#).unwrap();
        let e = read_targets("CreateAccessKey", &mut q, false).unwrap_err();
        assert_eq!(e.code, Code::InvalidParameterUinError);
        let mut q = Params::parse(br#"{"GroupId":0}"#).unwrap();
        let e = read_targets("GetGroup", &mut q, false).unwrap_err();
        assert_eq!(e.code, Code::InvalidParameterGroupIdError);
        let mut q = Params::parse(br#"{"PrincipalId":"root"}"#).unwrap();
        let sim = read_targets("SimulatePrincipalPolicy", &mut q, false)
            .unwrap()
            .unwrap();
        assert_eq!(sim, vec![vec![Target::Account]]);
        let mut q = Params::parse(b"{}").unwrap();
        let e = read_targets("ListGroupsForUser", &mut q, true).unwrap_err();
        assert_eq!(e.code, Code::MissingParameter);
    }

    /// A name, uid or group that does not exist resolves to nothing, and
    /// the handler gets NotFound naming what was asked.
    #[test]
    fn resolves_what_exists_and_nothing_else() {
        let c = crate::store::test_conn();
        let (t, kind, id) = resolve(&c, "100", "200", Target::Name("nobody".into())).unwrap();
        assert_eq!((kind, id.clone()), (ResourceKind::CamUser, None));
        let r = Resolved {
            target: t,
            id,
            resource: Resource::new("*"),
        };
        let e = r.require(Entity::User).unwrap_err();
        assert!(e.to_string().contains("nobody"), "{e}");
        let (_, _, id) = resolve(&c, "100", "200", Target::Group(9)).unwrap();
        assert_eq!(id, None);
        let (_, _, id) = resolve(&c, "100", "200", Target::Caller).unwrap();
        assert_eq!(id.as_deref(), Some("200"));
        let (_, _, id) = resolve(&c, "100", "200", Target::Account).unwrap();
        assert_eq!(id.as_deref(), Some("100"));
    }
}
