//! Secrets (drover extension; Azure Automation's credential assets, Rundeck's
//! key storage): CreateSecret, ModifySecret, DeleteSecret, DescribeSecrets,
//! and what invocations need of them.
//!
//! A value is written once and never read back by any action: it is sealed
//! with the data dir's key (the name as associated data, so a ciphertext
//! moved to another row does not open) and opened only when an invocation
//! starts, to build the script sealed for the agent. Who may put a secret
//! into a run is the policy action `tat:UseSecret` on `secret/NAME` together
//! with the target instances, checked by the call gate (`use_groups`).

use super::decided::Request;
use crate::gate::Authorized;

use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::Api;
use crate::run::params;
use crate::store::secrets::{self as store, Secret};
use crate::timefmt::{iso, now_ms};

/// Largest value, in bytes.
pub const MAX_VALUE: usize = 4096;
const MAX_DESCRIPTION: usize = 120;

use crate::run::secrets::aad;

pub(crate) fn check_name(field: &str, name: &str) -> R<()> {
    if !params::valid_secret_name(name) {
        return Err(ApiError::new(
            Code::InvalidParameterValueInvalidSecretName,
            format!("{field} must be 1 to 64 characters of A-Z, a-z, 0-9, _, . or -"),
        ));
    }
    Ok(())
}

/// Checks a value without ever putting it into a message.
fn check_value(v: &str) -> R<()> {
    if v.is_empty() {
        return Err(ApiError::new(
            Code::InvalidParameterValueInvalidSecretValue,
            "SecretValue must not be empty",
        ));
    }
    if v.len() > MAX_VALUE {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            format!("SecretValue is longer than {MAX_VALUE} bytes"),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> R<()> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            format!("Description is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

pub async fn create(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let name = a.one("SecretName")?;
    let value = q.str("SecretValue")?;
    let description = q.opt_str("Description")?.unwrap_or_default();
    q.finish()?;
    check_name("SecretName", &name)?;
    check_value(&value)?;
    check_description(&description)?;
    let now = now_ms();
    let s = Secret {
        value_enc: api.secrets.seal(&aad(&name), value.as_bytes()),
        name: name.clone(),
        description,
        created_by: p.user_id.clone(),
        created_ms: now,
        updated_ms: now,
    };
    api.store.write(move |c| store::insert(c, &s)).await?;
    Ok(json!({ "SecretName": name }))
}

pub async fn modify(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let name = a.one("SecretName")?;
    let value = q.opt_str("SecretValue")?;
    let description = q.opt_str("Description")?;
    q.finish()?;
    check_name("SecretName", &name)?;
    if let Some(v) = &value {
        check_value(v)?;
    }
    if let Some(d) = &description {
        check_description(d)?;
    }
    if value.is_none() && description.is_none() {
        return Err(ApiError::new(
            Code::MissingParameter,
            "ModifySecret needs SecretValue or Description",
        ));
    }
    let sealed = value.map(|v| api.secrets.seal(&aad(&name), v.as_bytes()));
    api.store
        .write(move |c| {
            store::update(
                c,
                &name,
                sealed.as_deref(),
                description.as_deref(),
                now_ms(),
            )
        })
        .await?;
    Ok(json!({}))
}

pub async fn delete(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    let name = a.one("SecretName")?;
    q.finish()?;
    check_name("SecretName", &name)?;
    api.store.write(move |c| store::delete(c, &name)).await?;
    Ok(json!({}))
}

pub async fn describe(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let names = a.ids();
    let filters = q.filters(&["secret-name"], false)?;
    let page = q.page()?;
    q.finish()?;
    if names.is_some() && !filters.is_empty() {
        return Err(ApiError::new(
            Code::InvalidParameterConflictParameter,
            "SecretNames and Filters cannot be given together",
        ));
    }
    let mut names = names.unwrap_or_default();
    names.extend(filters.get("secret-name"));
    if names.len() > 100 {
        return Err(ApiError::new(
            Code::InvalidParameterValueLimitExceeded,
            "at most 100 secret names may be given",
        ));
    }
    for n in &names {
        check_name("SecretNames", n)?;
    }
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows) = api
        .store
        .read(move |c| {
            let (total, rows) = store::list(c, &names, fetch)?;
            Ok(vis.page(total, rows, page, |s| {
                vis.sees(
                    crate::policy::Action::DescribeSecrets.policy_name(),
                    &[vis.secret(&s.name)],
                )
            }))
        })
        .await?;
    // Built field by field from metadata: there is no value to leak here.
    let set: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({
                "SecretName": s.name,
                "Description": s.description,
                "CreatedBy": s.created_by,
                "CreatedTime": iso(s.created_ms),
                "UpdatedTime": iso(s.updated_ms),
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "SecretSet": set }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_checked_without_echoing_values() {
        assert!(check_name("SecretName", "db.pass-1_X").is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert_eq!(
                check_name("SecretName", bad).unwrap_err().code,
                Code::InvalidParameterValueInvalidSecretName
            );
        }
        let long = "s".repeat(MAX_VALUE + 1);
        let e = check_value(&long).unwrap_err();
        assert_eq!(e.code, Code::InvalidParameterValueTooLong);
        assert!(!e.message.contains("sss"));
        assert!(check_value(&"s".repeat(MAX_VALUE)).is_ok());
        assert_eq!(
            check_value("").unwrap_err().code,
            Code::InvalidParameterValueInvalidSecretValue
        );
    }
}
