//! drover's fleet extensions of a run, as requests give them: the target
//! selector `Targets` (`run::targets` resolves it) and the rate control
//! `MaxConcurrency` / `MaxErrors` (roll out in waves, stop on failures).
//! RunCommand, InvokeCommand, CreateInvoker and ModifyInvoker read them here.

use serde_json::Value;

use super::error::{ApiError, Code};
use super::request::{check_ids, check_unique, Params, R};
use crate::dispatch::rollout::Rate;
pub use crate::run::targets::{RateControl, Selector};

/// Reads `Targets` if given.
pub fn read_selector(q: &mut Params) -> R<Option<Selector>> {
    match q.opt_value("Targets") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(Selector::from_value(v)?)),
    }
}

/// Exactly one of InstanceIds and Targets.
pub fn one_of(has_ids: bool, has_targets: bool) -> R<()> {
    match (has_ids, has_targets) {
        (true, true) => Err(ApiError::new(
            Code::InvalidParameter,
            "give either InstanceIds or Targets, not both",
        )),
        (false, false) => Err(ApiError::new(
            Code::MissingParameter,
            "the request is missing required parameter `InstanceIds` (or `Targets`)",
        )),
        _ => Ok(()),
    }
}

fn read_rate(q: &mut Params, name: &str, min: u64) -> R<Option<String>> {
    let text = match q.opt_value(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(ApiError::wrong_type(
                name,
                "a string such as \"10\" or \"10%\"",
            ))
        }
    };
    let r = Rate::parse(text.trim(), min).ok_or_else(|| {
        ApiError::value(format!(
            "{name} {text:?} must be a number (at least {min}) or a percentage ({min}% to 100%)"
        ))
    })?;
    Ok(Some(r.text()))
}

/// Reads `MaxConcurrency` and `MaxErrors`.
pub fn read_rate_control(q: &mut Params) -> R<RateControl> {
    Ok(RateControl {
        max_concurrency: read_rate(q, "MaxConcurrency", 1)?,
        max_errors: read_rate(q, "MaxErrors", 0)?,
    })
}

/// ModifyInvoker's rate control: per field, None keeps the stored value,
/// Some(None) clears it (an empty string, as `"Webhook": {}` clears a
/// webhook), Some(Some(v)) sets it.
pub type RateChange = (Option<Option<String>>, Option<Option<String>>);

pub fn read_rate_change(q: &mut Params) -> R<RateChange> {
    let mut change = |name: &str, min: u64| -> R<Option<Option<String>>> {
        if q.peek_str(name).is_some_and(|s| s.trim().is_empty()) {
            q.opt_value(name);
            return Ok(Some(None));
        }
        Ok(read_rate(q, name, min)?.map(Some))
    };
    Ok((change("MaxConcurrency", 1)?, change("MaxErrors", 0)?))
}

/// The instances of a run: its InstanceIds, or its Targets (exactly one of
/// the two), and its rate control.
pub fn read_fleet(q: &mut Params, max: usize) -> R<(Vec<String>, Option<Selector>, RateControl)> {
    let selector = read_selector(q)?;
    one_of(q.peek_value("InstanceIds").is_some(), selector.is_some())?;
    let ids = match selector {
        Some(_) => Vec::new(),
        None => instance_ids(q, max)?,
    };
    Ok((ids, selector, read_rate_control(q)?))
}

/// `InstanceIds`: required, 1 to `max` well-formed ids, each once.
pub(crate) fn instance_ids(q: &mut Params, max: usize) -> R<Vec<String>> {
    let ids = q
        .opt_str_list("InstanceIds")?
        .ok_or_else(|| ApiError::missing("InstanceIds"))?;
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceIds"));
    }
    check_ids(
        "InstanceIds",
        &ids,
        "mi",
        max,
        Code::InvalidParameterValueInvalidInstanceId,
    )?;
    check_unique("InstanceIds", &ids)?;
    Ok(ids)
}
