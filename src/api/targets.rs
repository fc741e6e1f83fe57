//! drover's fleet extensions of a run: the target selector `Targets` (pick
//! instances by what they are, not by id) and the rate control
//! `MaxConcurrency` / `MaxErrors` (roll out in waves, stop on failures).
//! RunCommand, InvokeCommand, CreateInvoker and ModifyInvoker read them
//! here; a selector is resolved over the registered instances when the
//! invocation starts (for an invoker: at each trigger).
//!
//! A selector is a list of `{Key, Values}`, ANDed:
//! * `tag:<name>`: the instance's tag `<name>` has one of Values;
//! * `tag-key`: the instance has one of the tag keys in Values;
//! * `all`: every instance (Values empty or `["*"]`).

use serde_json::Value;

use super::error::ApiError;
use super::request::{Params, R};
use super::{authz, Api, Principal};
use crate::dispatch::rollout::Rate;
use crate::store::instances::{self, Instance};

/// Most entries in a selector, as many as a command's Tags.
const MAX_SELECTORS: usize = 10;
/// Most values in one entry.
const MAX_VALUES: usize = 50;
/// Longest tag key or value a selector names.
const MAX_TEXT: usize = 255;

/// One `{Key, Values}` entry of a selector.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Values", default)]
    pub values: Vec<String>,
}

/// A validated selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector(pub Vec<Target>);

impl Selector {
    /// Checks a `Targets` value.
    pub fn from_value(v: Value) -> R<Selector> {
        let list: Vec<Target> = serde_json::from_value(v).map_err(|e| {
            ApiError::new(
                "InvalidParameter",
                format!("Targets is malformed (want a list of {{Key, Values}}): {e}"),
            )
        })?;
        if list.is_empty() {
            return Err(ApiError::missing("Targets"));
        }
        if list.len() > MAX_SELECTORS {
            return Err(ApiError::new(
                "InvalidParameterValue.LimitExceeded",
                format!("at most {MAX_SELECTORS} Targets are allowed"),
            ));
        }
        for t in &list {
            check_target(t)?;
        }
        Ok(Selector(list))
    }

    /// The stored form (the selector as given, JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_json(s: &str) -> R<Selector> {
        let v: Value = serde_json::from_str(s)
            .map_err(|e| ApiError::new("InternalError", format!("stored Targets: {e}")))?;
        Selector::from_value(v)
    }

    /// Whether an instance with these tags ({Key, Value} JSON) is selected.
    pub fn matches(&self, tags_json: &str) -> bool {
        let tags = authz::parse_tags(tags_json);
        self.0.iter().all(|t| match t.key.as_str() {
            "all" => true,
            "tag-key" => tags.iter().any(|(k, _)| t.values.contains(k)),
            key => {
                let name = key.strip_prefix("tag:").unwrap_or_default();
                tags.iter().any(|(k, v)| k == name && t.values.contains(v))
            }
        })
    }

    /// The selected instances among `all`, in registration order.
    pub fn select<'a>(&self, all: &'a [Instance]) -> Vec<&'a Instance> {
        all.iter().filter(|i| self.matches(&i.tags)).collect()
    }
}

fn check_target(t: &Target) -> R<()> {
    let too_long = |s: &str| s.chars().count() > MAX_TEXT;
    if t.values.len() > MAX_VALUES {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("a Targets entry allows at most {MAX_VALUES} Values"),
        ));
    }
    if t.values.iter().any(|v| too_long(v)) {
        return Err(ApiError::new(
            "InvalidParameterValue.TooLong",
            format!("a Targets value is longer than {MAX_TEXT} characters"),
        ));
    }
    match t.key.as_str() {
        "all" => {
            if !(t.values.is_empty() || t.values == ["*"]) {
                return Err(ApiError::value(
                    "Targets Key `all` takes no Values (or [\"*\"])",
                ));
            }
        }
        "tag-key" => {
            if t.values.is_empty() || t.values.iter().any(String::is_empty) {
                return Err(ApiError::value(
                    "Targets Key `tag-key` needs Values: the tag keys to look for",
                ));
            }
        }
        key => {
            let Some(name) = key.strip_prefix("tag:") else {
                return Err(ApiError::value(format!(
                    "Targets Key {key:?} is not one of `tag:<name>`, `tag-key`, `all`"
                )));
            };
            if name.is_empty() {
                return Err(ApiError::value("a tag key must not be empty"));
            }
            if too_long(name) {
                return Err(ApiError::new(
                    "InvalidParameterValue.TooLong",
                    format!("a Targets tag key is longer than {MAX_TEXT} characters"),
                ));
            }
            if t.values.is_empty() {
                return Err(ApiError::value(format!(
                    "Targets Key {key:?} needs at least one value"
                )));
            }
        }
    }
    Ok(())
}

/// Reads `Targets` if given.
pub fn read_selector(q: &mut Params) -> R<Option<Selector>> {
    match q.opt_value("Targets") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Selector::from_value(v).map(Some),
    }
}

/// The selector a request names, without consuming it (for authorization;
/// a malformed one names nothing, and the handler rejects it).
pub fn peek_selector(q: &Params) -> Option<Selector> {
    Selector::from_value(q.peek_value("Targets")?.clone()).ok()
}

/// Exactly one of InstanceIds and Targets.
pub fn one_of(has_ids: bool, has_targets: bool) -> R<()> {
    match (has_ids, has_targets) {
        (true, true) => Err(ApiError::new(
            "InvalidParameter",
            "give either InstanceIds or Targets, not both",
        )),
        (false, false) => Err(ApiError::new(
            "MissingParameter",
            "the request is missing required parameter `InstanceIds` (or `Targets`)",
        )),
        _ => Ok(()),
    }
}

/// Rate control of one run, as given (canonical text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateControl {
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
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

/// Resolves a selector for a command of `command_type`: the matching
/// instances whose agent can run it, at most `max`. Matching nothing
/// runnable is an error, so a run never silently reaches no one.
pub async fn resolve(
    api: &Api,
    selector: &Selector,
    command_type: &str,
    max: usize,
) -> R<Vec<String>> {
    let all = api.store.read(instances::all_instances).await?;
    let matched = selector.select(&all);
    let runnable: Vec<String> = matched
        .iter()
        .filter(|i| {
            serde_json::from_str::<Vec<String>>(&i.command_types)
                .unwrap_or_default()
                .iter()
                .any(|t| t == command_type)
        })
        .map(|i| i.id.clone())
        .collect();
    if runnable.is_empty() {
        let why = if matched.is_empty() {
            "no registered instance matches Targets".to_string()
        } else {
            format!(
                "{} instances match Targets, but none can run {command_type} commands",
                matched.len()
            )
        };
        return Err(ApiError::new(
            "InvalidParameterValue.NoInstanceMatched",
            why,
        ));
    }
    if runnable.len() > max {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!(
                "Targets match {} instances; at most {max} may run one invocation",
                runnable.len()
            ),
        ));
    }
    Ok(runnable)
}

/// The instances of a run: its InstanceIds, or its Targets (exactly one of
/// the two), and its rate control.
pub fn read_fleet(q: &mut Params, max: usize) -> R<(Vec<String>, Option<Selector>, RateControl)> {
    let selector = read_selector(q)?;
    one_of(q.peek_value("InstanceIds").is_some(), selector.is_some())?;
    let ids = match selector {
        Some(_) => Vec::new(),
        None => super::invocations::instance_ids(q, max)?,
    };
    Ok((ids, selector, read_rate_control(q)?))
}

/// The instances a run reaches: the listed ones, or what its selector
/// resolves to now, each of which the caller must be allowed `action` on
/// (the gate authorized what the selector matched a moment ago; this holds
/// even if tags changed since).
pub async fn reach(
    api: &Api,
    p: &Principal,
    action: &str,
    ids: Vec<String>,
    selector: &Option<Selector>,
    command_type: &str,
    max: usize,
) -> R<Vec<String>> {
    let Some(s) = selector else {
        return Ok(ids);
    };
    let ids = resolve(api, s, command_type, max).await?;
    if !p.is_root() {
        let res = api.instance_resources(&ids).await?;
        let d = p.grants.decide(action, &res);
        if !d.allowed {
            return Err(super::authz::denied(action, &d));
        }
    }
    Ok(ids)
}

/// Every instance a selector matches now, whatever it can run: what a
/// caller must be allowed on to use the selector.
pub async fn matching_ids(api: &Api, selector: &Selector) -> R<Vec<String>> {
    let all = api.store.read(instances::all_instances).await?;
    Ok(selector
        .select(&all)
        .into_iter()
        .map(|i| i.id.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: Value) -> R<Selector> {
        Selector::from_value(v)
    }

    #[test]
    fn selectors_match_tags_and_combine_with_and() {
        let prod_web = r#"[{"Key":"env","Value":"prod"},{"Key":"role","Value":"web"}]"#;
        let dev = r#"[{"Key":"env","Value":"dev"}]"#;
        let s = sel(json!([{"Key": "tag:env", "Values": ["prod", "stage"]}])).unwrap();
        assert!(s.matches(prod_web) && !s.matches(dev) && !s.matches("[]"));
        let s = sel(json!([{"Key": "tag-key", "Values": ["role"]}])).unwrap();
        assert!(s.matches(prod_web) && !s.matches(dev));
        let s = sel(json!([
            {"Key": "tag:env", "Values": ["prod", "dev"]},
            {"Key": "tag:role", "Values": ["web"]}
        ]))
        .unwrap();
        assert!(s.matches(prod_web) && !s.matches(dev));
        let s = sel(json!([{"Key": "all"}])).unwrap();
        assert!(s.matches("[]"));
        assert_eq!(Selector::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn bad_selectors_get_clear_codes() {
        let code = |v: Value| sel(v).unwrap_err().code;
        assert_eq!(
            code(json!([{"Key": "name", "Values": ["x"]}])),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(json!([{"Key": "tag:", "Values": ["x"]}])),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(json!([{"Key": "tag:env", "Values": []}])),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(json!([{"Key": "all", "Values": ["x"]}])),
            "InvalidParameterValue"
        );
        assert_eq!(code(json!([{"Key": "all", "Oops": 1}])), "InvalidParameter");
        assert_eq!(code(json!("tag:env=prod")), "InvalidParameter");
        assert_eq!(code(json!([])), "MissingParameter");
        let many: Vec<Value> = (0..11).map(|_| json!({"Key": "all"})).collect();
        assert_eq!(code(json!(many)), "InvalidParameterValue.LimitExceeded");
    }
}
