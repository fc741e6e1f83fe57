//! Target selectors (`Targets`: pick instances by what they are, not by
//! id) and rate control, as a run uses them: a selector is resolved over
//! the registered instances when an invocation starts (for an invoker: at
//! each trigger). The API reads them from requests (`api/targets.rs`).
//!
//! A selector is a list of `{Key, Values}`, ANDed:
//! * `tag:<name>`: the instance's tag `<name>` has one of Values;
//! * `tag-key`: the instance has one of the tag keys in Values;
//! * `all`: every instance (Values empty or `["*"]`).

use serde_json::Value;

use super::error::{Problem, RunError, R};
use crate::gate::parse_tags;
use crate::store::instances::Instance;

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
            RunError::new(
                Problem::InvalidParameter,
                format!("Targets is malformed (want a list of {{Key, Values}}): {e}"),
            )
        })?;
        if list.is_empty() {
            return Err(RunError::missing("Targets"));
        }
        if list.len() > MAX_SELECTORS {
            return Err(RunError::new(
                Problem::LimitExceeded,
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
            .map_err(|e| RunError::new(Problem::StoredData, format!("stored Targets: {e}")))?;
        Selector::from_value(v)
    }

    /// Whether an instance with these tags ({Key, Value} JSON) is selected.
    pub fn matches(&self, tags_json: &str) -> bool {
        let tags = parse_tags(tags_json);
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
        return Err(RunError::new(
            Problem::LimitExceeded,
            format!("a Targets entry allows at most {MAX_VALUES} Values"),
        ));
    }
    if t.values.iter().any(|v| too_long(v)) {
        return Err(RunError::new(
            Problem::TooLong,
            format!("a Targets value is longer than {MAX_TEXT} characters"),
        ));
    }
    match t.key.as_str() {
        "all" => {
            if !(t.values.is_empty() || t.values == ["*"]) {
                return Err(RunError::value(
                    "Targets Key `all` takes no Values (or [\"*\"])",
                ));
            }
        }
        "tag-key" => {
            if t.values.is_empty() || t.values.iter().any(String::is_empty) {
                return Err(RunError::value(
                    "Targets Key `tag-key` needs Values: the tag keys to look for",
                ));
            }
        }
        key => {
            let Some(name) = key.strip_prefix("tag:") else {
                return Err(RunError::value(format!(
                    "Targets Key {key:?} is not one of `tag:<name>`, `tag-key`, `all`"
                )));
            };
            if name.is_empty() {
                return Err(RunError::value("a tag key must not be empty"));
            }
            if too_long(name) {
                return Err(RunError::new(
                    Problem::TooLong,
                    format!("a Targets tag key is longer than {MAX_TEXT} characters"),
                ));
            }
            if t.values.is_empty() {
                return Err(RunError::value(format!(
                    "Targets Key {key:?} needs at least one value"
                )));
            }
        }
    }
    Ok(())
}

/// Rate control of one run, as given (canonical text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateControl {
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
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
        let code = |v: Value| sel(v).unwrap_err().problem();
        assert_eq!(
            code(json!([{"Key": "name", "Values": ["x"]}])),
            Some(Problem::Value)
        );
        assert_eq!(
            code(json!([{"Key": "tag:", "Values": ["x"]}])),
            Some(Problem::Value)
        );
        assert_eq!(
            code(json!([{"Key": "tag:env", "Values": []}])),
            Some(Problem::Value)
        );
        assert_eq!(
            code(json!([{"Key": "all", "Values": ["x"]}])),
            Some(Problem::Value)
        );
        assert_eq!(
            code(json!([{"Key": "all", "Oops": 1}])),
            Some(Problem::InvalidParameter)
        );
        assert_eq!(code(json!("tag:env=prod")), Some(Problem::InvalidParameter));
        assert_eq!(code(json!([])), Some(Problem::Missing));
        let many: Vec<Value> = (0..11).map(|_| json!({"Key": "all"})).collect();
        assert_eq!(code(json!(many)), Some(Problem::LimitExceeded));
    }
}
