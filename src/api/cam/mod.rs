//! Access management in Tencent CAM's form (API 2019-01-16), so the official
//! `tencentcloud-sdk-python-cam` and `tccli cam` drive it: sub-users, groups,
//! custom and preset policies, attachments and access keys. One file per
//! resource family; this file routes actions and holds the shared readers.
//!
//! Authorization is decided in front of these handlers, by the same gate as
//! every action; `scope` reads and resolves the users, groups and policies
//! each action reaches, so policies can grant CAM actions per resource, and
//! the handlers act on exactly those (`Authorized::cam`).
//! `load_policy_inputs` is what the policy engine reads.

pub(super) mod groups;
pub(super) mod keys;
pub(super) mod policies;
pub(crate) mod scope;
pub(crate) mod ssh_keys;
pub(super) mod users;

use rusqlite::Connection;
use serde_json::Value;

pub(crate) use users::check_password;

use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::Principal;
use crate::store::policies::{PolicyInput, RoleAssignment};
use crate::store::query::Page;

/// Everything an authorization engine needs about a caller: the policies
/// that apply (attached to the user directly or through its groups, each
/// once, presets included) and the role assignments of the user and its
/// groups. Root gets none: the account itself is never restricted, so
/// check `Principal::is_root` first.
pub fn load_policy_inputs(
    conn: &Connection,
    p: &Principal,
) -> crate::store::Result<(Vec<PolicyInput>, Vec<RoleAssignment>)> {
    if p.is_root() {
        return Ok((Vec::new(), Vec::new()));
    }
    crate::store::policies::load_policy_inputs(conn, &p.user_id, &p.group_ids)
}

/// Checks a policy document's shape: a JSON object with a `version` and a
/// `statement` list. The policy engine replaces this with full validation;
/// the message says which part is wrong.
pub fn validate_policy_document(doc: &str) -> Result<(), crate::policy::PolicyError> {
    crate::policy::parse_document(doc).map(|_| ())
}

fn param_error(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidParameterParamError, message)
}

/// A 0/1 switch such as ConsoleLogin.
fn flag(q: &mut Params, name: &str) -> R<Option<bool>> {
    match q.opt_i64(name)? {
        None => Ok(None),
        Some(0) => Ok(Some(false)),
        Some(1) => Ok(Some(true)),
        Some(v) => Err(param_error(format!("{name} must be 0 or 1, got {v}"))),
    }
}

/// CAM's `Page` (from 1) and `Rp` (page size, 1..=max_rp), default 1 and 20.
fn page_rp(q: &mut Params, max_rp: i64) -> R<Page> {
    let page = q.opt_i64("Page")?.unwrap_or(1);
    let rp = q.opt_i64("Rp")?.unwrap_or(20);
    if !(1..=max_rp).contains(&rp) {
        return Err(param_error(format!(
            "Rp must be between 1 and {max_rp}, got {rp}"
        )));
    }
    if page < 1 {
        return Err(param_error(format!("Page must be 1 or more, got {page}")));
    }
    Ok(Page {
        offset: (page - 1).saturating_mul(rp),
        limit: rp,
    })
}

/// A uin as CAM's responses carry it: a JSON number.
fn uin_value(uin: &str) -> Value {
    uin.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(uin.into()))
}

/// Names CAM allows for users, groups and policies: letters, digits and
/// `+=,.@_-`, 1 to `max` characters.
fn valid_name(name: &str, max: usize) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    !name.is_empty() && name.chars().count() <= max && name.chars().all(ok)
}

fn check_len(field: &str, v: &str, max_chars: usize) -> R<()> {
    if v.chars().count() > max_chars {
        return Err(param_error(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_validated_by_the_engine() {
        assert!(validate_policy_document(
            r#"{"version":"2.0","statement":[{"effect":"allow","action":["tat:*"],"resource":"*"}]}"#
        )
        .is_ok());
        for (doc, hint) in [
            ("{not json", "JSON"),
            (
                r#"{"version":"2.0","statement":[{"effect":"allow","action":["tat:RunCommand"],"resource":["qcs::tat"]}]}"#,
                "statement[0].resource[0]",
            ),
        ] {
            let err = validate_policy_document(doc).unwrap_err().to_string();
            assert!(err.contains(hint), "{doc}: {err}");
        }
    }

    #[test]
    fn names_follow_cam_rules() {
        assert!(valid_name("ann.b+c=d,e@f_g-h", 64));
        assert!(!valid_name("", 64));
        assert!(!valid_name("a b", 64));
        assert!(!valid_name(&"a".repeat(65), 64));
    }
}
