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
//! Each action's target comes from the parameters its handler reads (the
//! CAM SDK's models: `Name`, `TargetUin`, `AttachUin`, `Info[].Uid/Uin`,
//! `GroupId`, `PolicyId` ...). A target that names nothing that exists (an
//! unknown user name, a malformed id) becomes a fresh id that only a
//! wildcard resource matches: a narrowly granted caller is refused exactly
//! as for a user it may not touch, so the gate reveals nothing about which
//! names exist, while a caller granted `uin/*` learns from the handler that
//! the user does not exist.

use serde_json::Value;

use super::super::request::{Params, R};
use super::super::{Api, Principal};
use crate::policy::{Resource, ResourceKind};
use crate::store::{groups, policies, role_assignments, users};

/// A target as the request names it, before it is looked up.
enum Target {
    /// A user by uin (text, as drover keeps uins).
    Uin(String),
    /// A user by CAM name.
    Name(String),
    /// A user by uid.
    Uid(i64),
    /// The account itself (the simulator's `root`).
    Account,
    /// The principal a role assignment binds.
    RoleAssignment(String),
    Group(i64),
    Policy(i64),
    /// A policy by name (UpdatePolicy without PolicyId).
    PolicyName(String),
    /// Named, but not readably: matches only a wildcard resource.
    Unknown(ResourceKind),
}

/// The resource groups of a CAM-scoped action (each decided on its own, all
/// must be allowed), or None for any other action.
pub async fn named(
    api: &Api,
    p: &Principal,
    action: &str,
    q: &Params,
) -> R<Option<Vec<Vec<Resource>>>> {
    let me = if p.is_root() {
        api.account_uin.clone()
    } else {
        p.user_id.clone()
    };
    let Some(groups) = groups_of_targets(action, q, &me) else {
        return Ok(None);
    };
    let owner = api.account_uin.clone();
    let names = api
        .store
        .read(move |c| {
            groups
                .into_iter()
                .map(|g| g.into_iter().map(|t| resolve(c, &owner, t)).collect())
                .collect::<crate::store::Result<Vec<Vec<_>>>>()
        })
        .await?;
    Ok(Some(
        names
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|(kind, id)| Resource::new(kind.qcs("", &api.account_uin, &id)))
                    .collect()
            })
            .collect(),
    ))
}

/// The targets of `action`, grouped as they are decided; `me` is the
/// caller's uin (for actions that default to the caller).
fn groups_of_targets(action: &str, q: &Params, me: &str) -> Option<Vec<Vec<Target>>> {
    let one = |t: Target| Some(vec![vec![t]]);
    let user = |field: &str| uin_of(q, field).unwrap_or(Target::Unknown(ResourceKind::CamUser));
    let self_or = |field: &str| match q.peek_value(field) {
        None => Target::Uin(me.to_string()),
        Some(_) => user(field),
    };
    let group = |field: &str| {
        int_of(q, field).map_or(Target::Unknown(ResourceKind::CamGroup), Target::Group)
    };
    let policy = |field: &str| {
        int_of(q, field).map_or(Target::Unknown(ResourceKind::CamPolicy), Target::Policy)
    };
    let by_name = || match q.peek_str("Name") {
        Some(n) => Target::Name(n),
        None => Target::Unknown(ResourceKind::CamUser),
    };
    match action {
        "GetUser" | "UpdateUser" | "DeleteUser" => one(by_name()),
        "CreateAccessKey" | "ListAccessKeys" | "UpdateAccessKey" | "DeleteAccessKey" => {
            one(self_or("TargetUin"))
        }
        // Ssh keys are credentials too: the same rule as access keys.
        "ImportSshPublicKey" | "DescribeSshPublicKeys" | "DeleteSshPublicKey" => {
            one(self_or("TargetUin"))
        }
        "ListAttachedUserPolicies" | "ListAttachedUserAllPolicies" => one(user("TargetUin")),
        "ListGroupsForUser" => one(match (q.peek_value("SubUin"), int_of(q, "Uid")) {
            (Some(_), _) => user("SubUin"),
            (None, Some(uid)) => Target::Uid(uid),
            (None, None) if q.peek_value("Uid").is_some() => Target::Unknown(ResourceKind::CamUser),
            (None, None) => Target::Uin(me.to_string()),
        }),
        "GetGroup" | "DeleteGroup" | "ListUsersForGroup" => one(group("GroupId")),
        "ListAttachedGroupPolicies" => one(group("TargetGroupId")),
        "AddUserToGroup" | "RemoveUserFromGroup" => Some(info_pairs(q)),
        "GetPolicy" => one(policy("PolicyId")),
        "UpdatePolicy" => one(match (q.peek_value("PolicyId"), q.peek_str("PolicyName")) {
            (None, Some(n)) => Target::PolicyName(n),
            _ => policy("PolicyId"),
        }),
        "DeletePolicy" => Some(match q.peek_value("PolicyId") {
            Some(Value::Array(ids)) if !ids.is_empty() => ids
                .iter()
                .map(|v| {
                    vec![int_value(v)
                        .map_or(Target::Unknown(ResourceKind::CamPolicy), Target::Policy)]
                })
                .collect(),
            _ => vec![vec![Target::Unknown(ResourceKind::CamPolicy)]],
        }),
        "AttachUserPolicy" => Some(vec![vec![policy("PolicyId"), user("AttachUin")]]),
        "DetachUserPolicy" => Some(vec![vec![policy("PolicyId"), user("DetachUin")]]),
        "AttachGroupPolicy" => Some(vec![vec![policy("PolicyId"), group("AttachGroupId")]]),
        "DetachGroupPolicy" => Some(vec![vec![policy("PolicyId"), group("DetachGroupId")]]),
        "SimulatePrincipalPolicy" => one(match q.peek_str("PrincipalId").as_deref() {
            // The simulator's name for the account.
            Some("root") => Target::Account,
            _ => principal(q),
        }),
        "CreateRoleAssignment" => one(principal(q)),
        "DeleteRoleAssignment" => one(match q.peek_str("RoleAssignmentId") {
            Some(id) => Target::RoleAssignment(id),
            None => Target::Unknown(ResourceKind::CamUser),
        }),
        _ => None,
    }
}

/// A role assignment's or the simulator's principal: a user by uin, or a
/// group by id (`PrincipalType` Group).
fn principal(q: &Params) -> Target {
    let group = q
        .peek_str("PrincipalType")
        .is_some_and(|t| t.eq_ignore_ascii_case("group"));
    let id = q.peek_str("PrincipalId").unwrap_or_default();
    match (group, id.parse::<i64>()) {
        (true, Ok(g)) => Target::Group(g),
        (true, Err(_)) => Target::Unknown(ResourceKind::CamGroup),
        (false, Ok(u)) if u > 0 => Target::Uin(id),
        (false, _) => Target::Unknown(ResourceKind::CamUser),
    }
}

/// AddUserToGroup / RemoveUserFromGroup: each `Info` entry is one group
/// with one user (Uin wins over Uid, as in the handler).
fn info_pairs(q: &Params) -> Vec<Vec<Target>> {
    let Some(Value::Array(items)) = q.peek_value("Info") else {
        return vec![vec![Target::Unknown(ResourceKind::CamGroup)]];
    };
    if items.is_empty() {
        return vec![vec![Target::Unknown(ResourceKind::CamGroup)]];
    }
    items
        .iter()
        .map(|item| {
            let group = item
                .get("GroupId")
                .and_then(int_value)
                .map_or(Target::Unknown(ResourceKind::CamGroup), Target::Group);
            let user = match (
                item.get("Uin").and_then(int_value),
                item.get("Uid").and_then(int_value),
            ) {
                (Some(uin), _) if uin > 0 => Target::Uin(uin.to_string()),
                (None, Some(uid)) => Target::Uid(uid),
                _ => Target::Unknown(ResourceKind::CamUser),
            };
            vec![group, user]
        })
        .collect()
}

fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn int_of(q: &Params, field: &str) -> Option<i64> {
    q.peek_value(field).and_then(int_value)
}

fn uin_of(q: &Params, field: &str) -> Option<Target> {
    int_of(q, field)
        .filter(|u| *u > 0)
        .map(|u| Target::Uin(u.to_string()))
}

/// An id no resource of any account has: only a wildcard matches it.
fn nobody() -> String {
    format!("unknown-{}", crate::ids::random_token(12))
}

/// The kind and id under which `t` is decided.
fn resolve(
    c: &rusqlite::Connection,
    owner: &str,
    t: Target,
) -> crate::store::Result<(ResourceKind, String)> {
    use ResourceKind::{CamGroup, CamPolicy, CamUser};
    Ok(match t {
        Target::Uin(u) => (CamUser, u),
        Target::Account => (CamUser, owner.to_string()),
        Target::RoleAssignment(id) => match role_assignments::get(c, &id)? {
            Some(a) if a.principal_type == "group" => (CamGroup, a.principal_id),
            Some(a) => (CamUser, a.principal_id),
            None => (CamUser, nobody()),
        },
        Target::Name(n) => (
            CamUser,
            users::get_by_name(c, &n)?.map_or_else(nobody, |u| u.uin),
        ),
        Target::Uid(uid) => (
            CamUser,
            users::get_by_uid(c, uid)?.map_or_else(nobody, |u| u.uin),
        ),
        Target::Group(g) => (
            CamGroup,
            groups::get(c, g)?.map_or_else(nobody, |_| g.to_string()),
        ),
        Target::Policy(p) => (CamPolicy, p.to_string()),
        Target::PolicyName(n) => (
            CamPolicy,
            policies::get_by_name(c, &n)?.map_or_else(nobody, |p| p.policy_id.to_string()),
        ),
        Target::Unknown(kind) => (kind, nobody()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Rule};

    /// Every action whose rule is `Rule::Cam` names its resources here, so
    /// none is decided on `*` by accident.
    #[test]
    fn every_cam_scoped_action_names_its_targets() {
        let empty = Params::parse(b"{}").unwrap();
        let scoped: Vec<Action> = Action::ALL
            .iter()
            .copied()
            .filter(|a| a.rule() == Rule::Cam)
            .collect();
        assert!(scoped.len() >= 20);
        for a in scoped {
            let groups = groups_of_targets(a.api_name(), &empty, "100000000001");
            assert!(
                groups.is_some_and(|g| !g.is_empty() && g.iter().all(|x| !x.is_empty())),
                "{a:?}"
            );
        }
        assert!(groups_of_targets("AddUser", &empty, "1").is_none());
    }

    #[test]
    fn reads_targets_as_the_handlers_do() {
        let q = Params::parse(
            br#"{"Info":[{"GroupId":7,"Uid":3},{"GroupId":8,"Uin":200,"Uid":4}],"PolicyId":[5,"x"]}"#,
        )
        .unwrap();
        let info = groups_of_targets("AddUserToGroup", &q, "1").unwrap();
        let shown: Vec<Vec<String>> = info
            .iter()
            .map(|g| g.iter().map(describe).collect())
            .collect();
        assert_eq!(
            shown,
            [["group 7", "uid 3"], ["group 8", "uin 200"]].map(|g| g.map(String::from).to_vec())
        );
        let del = groups_of_targets("DeletePolicy", &q, "1").unwrap();
        assert_eq!(describe(&del[0][0]), "policy 5");
        assert_eq!(describe(&del[1][0]), "unknown");
        // Keys without TargetUin are the caller's own.
        let own = groups_of_targets("CreateAccessKey", &q, "123").unwrap();
        assert_eq!(describe(&own[0][0]), "uin 123");
    }

    fn describe(t: &Target) -> String {
        match t {
            Target::Uin(u) => format!("uin {u}"),
            Target::Name(n) => format!("name {n}"),
            Target::Uid(u) => format!("uid {u}"),
            Target::Account => "account".into(),
            Target::RoleAssignment(r) => format!("ra {r}"),
            Target::Group(g) => format!("group {g}"),
            Target::Policy(p) => format!("policy {p}"),
            Target::PolicyName(n) => format!("policy name {n}"),
            Target::Unknown(_) => "unknown".into(),
        }
    }
}
