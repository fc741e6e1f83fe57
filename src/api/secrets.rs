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

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::error::ApiError;
use super::params;
use super::request::{Params, R};
use super::{Api, Principal};
use crate::policy::Resource;
use crate::protocol::MIN_MASK_LEN;
use crate::store::secrets::{self as store, Secret};
use crate::timefmt::{iso, now_ms};

/// Largest value, in bytes.
pub const MAX_VALUE: usize = 4096;
const MAX_DESCRIPTION: usize = 120;
/// The policy action that lets a caller's run use a secret.
pub const USE_SECRET: &str = "tat:UseSecret";

fn aad(name: &str) -> String {
    format!("secret:{name}")
}

fn check_name(field: &str, name: &str) -> R<()> {
    if !params::valid_secret_name(name) {
        return Err(ApiError::new(
            "InvalidParameterValue.InvalidSecretName",
            format!("{field} must be 1 to 64 characters of A-Z, a-z, 0-9, _, . or -"),
        ));
    }
    Ok(())
}

/// Checks a value without ever putting it into a message.
fn check_value(v: &str) -> R<()> {
    if v.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterValue.InvalidSecretValue",
            "SecretValue must not be empty",
        ));
    }
    if v.len() > MAX_VALUE {
        return Err(ApiError::new(
            "InvalidParameterValue.TooLong",
            format!("SecretValue is longer than {MAX_VALUE} bytes"),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> R<()> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::new(
            "InvalidParameterValue.TooLong",
            format!("Description is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

pub async fn create(api: &Api, p: &Principal, mut q: Params) -> R<Value> {
    let name = q.str("SecretName")?;
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

pub async fn modify(api: &Api, _p: &Principal, mut q: Params) -> R<Value> {
    let name = q.str("SecretName")?;
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
            "MissingParameter",
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

pub async fn delete(api: &Api, _p: &Principal, mut q: Params) -> R<Value> {
    let name = q.str("SecretName")?;
    q.finish()?;
    check_name("SecretName", &name)?;
    api.store.write(move |c| store::delete(c, &name)).await?;
    Ok(json!({}))
}

pub async fn describe(api: &Api, p: &Principal, mut q: Params) -> R<Value> {
    let names = q.opt_str_list("SecretNames")?;
    let filters = q.filters(&["secret-name"], false)?;
    let page = q.page()?;
    q.finish()?;
    if names.is_some() && !filters.is_empty() {
        return Err(ApiError::new(
            "InvalidParameter.ConflictParameter",
            "SecretNames and Filters cannot be given together",
        ));
    }
    let mut names = names.unwrap_or_default();
    names.extend(filters.get("secret-name"));
    if names.len() > 100 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
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
                vis.sees("tat:DescribeSecrets", &[vis.secret(&s.name)])
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

/// The values of `names`, for building one delivery. An unknown name is
/// `ResourceNotFound.SecretNotFound`.
pub(crate) async fn resolve(api: &Api, names: &[String]) -> R<BTreeMap<String, String>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let lookup = names.to_vec();
    let rows = api
        .store
        .read(move |c| {
            lookup
                .iter()
                .map(|n| Ok((n.clone(), store::find(c, n)?)))
                .collect::<crate::store::Result<Vec<_>>>()
        })
        .await?;
    let mut out = BTreeMap::new();
    for (name, row) in rows {
        let row = row.ok_or_else(|| params::secret_not_found(&name))?;
        let plain = api
            .secrets
            .open_sealed(&aad(&name), &row.value_enc)
            .map_err(|_| {
                tracing::error!("the stored secret `{name}` does not decrypt");
                ApiError::internal()
            })?;
        let value = String::from_utf8(plain).map_err(|_| ApiError::internal())?;
        out.insert(name, value);
    }
    Ok(out)
}

/// What the agent masks: each value long enough to mask, longest first so
/// a value containing another is replaced whole.
pub(crate) fn mask_values(values: &BTreeMap<String, String>) -> Vec<String> {
    let mut v: Vec<String> = values
        .values()
        .filter(|s| s.len() >= MIN_MASK_LEN)
        .cloned()
        .collect();
    v.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    v.dedup();
    v
}

impl Api {
    /// For actions that start runs (now, or later by an invoker: also
    /// ModifyCommand of a command some invoker fires), one resource
    /// group per secret the run's content refers to: the secret and the
    /// target instances, to be decided for `tat:UseSecret`. The content is
    /// the command's own text; parameters cannot add references (see
    /// `params`), so this is every secret the delivered script will hold.
    pub(crate) async fn secret_use_groups(
        &self,
        action: &str,
        q: &Params,
    ) -> R<Vec<Vec<Resource>>> {
        let stored_command = |id: String| async move {
            self.store
                .read(move |c| Ok(crate::store::commands::get(c, &id).ok()))
                .await
                .map(|c| c.map(|c| c.content))
        };
        // Where the run's instances come from; resolved only once the
        // content is known to refer to a secret (most runs do not).
        enum Reach {
            Request,
            Invokers(Vec<crate::store::invokers::Invoker>),
            RequestOr(Option<Box<crate::store::invokers::Invoker>>),
        }
        let (content_b64, reach) = match action {
            "RunCommand" => (q.peek_str("Content"), Reach::Request),
            "InvokeCommand" | "CreateInvoker" => match q.peek_str("CommandId") {
                Some(id) => (stored_command(id).await?, Reach::Request),
                None => (None, Reach::Request),
            },
            // A changed command runs with its new secrets on the instances
            // of every invoker that fires it: its editor needs the use
            // there, as if it edited those invokers.
            "ModifyCommand" => {
                let (Some(id), Some(content)) = (q.peek_str("CommandId"), q.peek_str("Content"))
                else {
                    return Ok(Vec::new());
                };
                let query = crate::store::invokers::InvokerQuery {
                    command_ids: vec![id],
                    ..Default::default()
                };
                let all = crate::store::query::Page {
                    offset: 0,
                    limit: super::authz::FILTER_SCAN,
                };
                let invokers = self
                    .store
                    .read(move |c| crate::store::invokers::list(c, &query, all))
                    .await?
                    .1;
                if invokers.is_empty() {
                    return Ok(Vec::new());
                }
                (Some(content), Reach::Invokers(invokers))
            }
            "ModifyInvoker" => {
                let Some(id) = q.peek_str("InvokerId") else {
                    return Ok(Vec::new());
                };
                let stored = self
                    .store
                    .read(move |c| Ok(crate::store::invokers::get(c, &id).ok()))
                    .await?;
                let content = match q
                    .peek_str("CommandId")
                    .or(stored.as_ref().map(|i| i.command_id.clone()))
                {
                    Some(id) => stored_command(id).await?,
                    None => None,
                };
                (content, Reach::RequestOr(stored.map(Box::new)))
            }
            _ => (None, Reach::Request),
        };
        // Content that does not decode is rejected by the handler itself.
        let refs = content_b64
            .and_then(|b| params::decode_content(&b).ok())
            .map(|c| params::secret_refs(&c))
            .unwrap_or_default();
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let given = q.peek_value("Targets").is_some() || !q.peek_list("InstanceIds").is_empty();
        let instances = match reach {
            Reach::RequestOr(Some(stored)) if !given => self.invoker_instances(*stored).await?,
            Reach::Request | Reach::RequestOr(_) => self.reached_instances(q).await?,
            Reach::Invokers(invokers) => {
                let mut all_ids: Vec<String> = Vec::new();
                for i in invokers {
                    all_ids.extend(self.invoker_instances(i).await?);
                }
                all_ids.sort();
                all_ids.dedup();
                all_ids
            }
        };
        let insts = self.instance_resources(&instances).await?;
        Ok(refs
            .iter()
            .map(|n| {
                let mut g = vec![self.secret(n)];
                g.extend(insts.iter().cloned());
                g
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_long_enough_values_longest_first() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), "abc".to_string());
        m.insert("b".to_string(), "hunter2".to_string());
        m.insert("c".to_string(), "hunter2-long".to_string());
        m.insert("d".to_string(), "hunter2".to_string());
        assert_eq!(mask_values(&m), vec!["hunter2-long", "hunter2"]);
    }

    #[test]
    fn names_and_values_are_checked_without_echoing_values() {
        assert!(check_name("SecretName", "db.pass-1_X").is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert_eq!(
                check_name("SecretName", bad).unwrap_err().code,
                "InvalidParameterValue.InvalidSecretName"
            );
        }
        let long = "s".repeat(MAX_VALUE + 1);
        let e = check_value(&long).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue.TooLong");
        assert!(!e.message.contains("sss"));
        assert!(check_value(&"s".repeat(MAX_VALUE)).is_ok());
        assert_eq!(
            check_value("").unwrap_err().code,
            "InvalidParameterValue.InvalidSecretValue"
        );
    }
}
