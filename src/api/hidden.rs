//! Hidden parameter values stay hidden. A `{{tat-hidden:key}}` placeholder
//! marks `key`'s value as sensitive; TAT records such values as `******`
//! (its SDK documents `{"word": "******"}` for `echo {{tat-hidden:word}}`).
//! drover goes one step further and treats them as write-only, like
//! secrets: once given (as a command's DefaultParameters or
//! DefaultParameterConfs, an invoker's Parameters, or a call's Parameters)
//! no action returns them to anyone, the account (root) included.
//! DescribeCommands, DescribeInvokers and PreviewReplacedCommandContent show
//! `******` in their place; invocation records are masked when written
//! (`run::params::replace`). Whoever needs another value sets a new one.
//!
//! Which keys are hidden is read from the command's current content. The
//! scan here is deliberately looser than the substitution parser in
//! `params`: any `{{ tat-hidden:NAME }}` marks NAME, so anything the
//! substitution could treat as hidden is masked.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::{Map, Value};

use crate::run::params::MASK;
use crate::store::commands::Command;

const HIDDEN_PREFIX: &str = "tat-hidden:";

/// The parameter names `content` marks hidden.
pub fn hidden_keys(content: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(content);
    let mut keys = BTreeSet::new();
    let mut rest = &text[..];
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        if let Some(k) = after[..close].trim().strip_prefix(HIDDEN_PREFIX) {
            keys.insert(k.trim().to_string());
        }
        rest = after;
    }
    keys
}

/// The hidden parameter names of content as stored (base64); content that
/// does not decode hides nothing (it cannot have been substituted either).
pub fn hidden_keys_b64(content_b64: &str) -> BTreeSet<String> {
    base64::engine::general_purpose::STANDARD
        .decode(content_b64)
        .map(|c| hidden_keys(&c))
        .unwrap_or_default()
}

/// A JSON object of parameter values (DefaultParameters, Parameters) with
/// every hidden key's value replaced by `******`. Text that is not an
/// object is returned as it is when nothing is hidden, and as `{}` when
/// something is (fail closed: never echo what cannot be masked).
pub fn mask_values_json(json: &str, hidden: &BTreeSet<String>) -> String {
    if hidden.is_empty() {
        return json.to_string();
    }
    match serde_json::from_str::<Map<String, Value>>(json) {
        Ok(mut m) => {
            for (k, v) in m.iter_mut() {
                if hidden.contains(k) {
                    *v = Value::String(MASK.into());
                }
            }
            Value::Object(m).to_string()
        }
        Err(_) if json.trim().is_empty() => String::new(),
        Err(_) => "{}".into(),
    }
}

/// Parameters given for a command (an invoker's): masked by the hidden
/// keys of the command's content (base64), or entirely when the command is
/// gone and its hidden keys cannot be known.
pub fn mask_parameters(json: &str, content_b64: Option<&str>) -> String {
    let hidden = match content_b64 {
        Some(c) => hidden_keys_b64(c),
        None => serde_json::from_str::<Map<String, Value>>(json)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_else(|_| BTreeSet::from([String::new()])),
    };
    mask_values_json(json, &hidden)
}

/// DefaultParameterConfs (`[{ParameterName, ParameterValue, ...}]`) with
/// each hidden parameter's value replaced by `******`.
pub fn mask_confs_json(json: &str, hidden: &BTreeSet<String>) -> String {
    if hidden.is_empty() {
        return json.to_string();
    }
    match serde_json::from_str::<Vec<Value>>(json) {
        Ok(mut confs) => {
            for c in &mut confs {
                let name = c.get("ParameterName").and_then(Value::as_str);
                if name.is_some_and(|n| hidden.contains(n)) {
                    if let Some(v) = c.get_mut("ParameterValue") {
                        *v = Value::String(MASK.into());
                    }
                }
            }
            Value::Array(confs).to_string()
        }
        Err(_) if json.trim().is_empty() => String::new(),
        Err(_) => "[]".into(),
    }
}

/// A command as the API shows it: hidden defaults masked.
pub fn shown_command(c: &Command) -> Command {
    let hidden = hidden_keys_b64(&c.content);
    let mut shown = c.clone();
    shown.default_parameters = mask_values_json(&c.default_parameters, &hidden);
    shown.default_parameter_confs = mask_confs_json(&c.default_parameter_confs, &hidden);
    shown
}

/// Undoes a masked round trip: a client that reads a command or invoker
/// (seeing `******`) and writes the values back must not replace a hidden
/// value with the mask. In `new_json` (a values object), a hidden key whose
/// value is exactly `******` keeps its value from `old_json`. So `******`
/// itself cannot be set as a hidden value.
pub fn restore_masked_values(
    new_json: &str,
    old_json: Option<&str>,
    hidden: &BTreeSet<String>,
) -> String {
    let old = old_json
        .and_then(|o| serde_json::from_str::<Map<String, Value>>(o).ok())
        .unwrap_or_default();
    let Ok(mut new) = serde_json::from_str::<Map<String, Value>>(new_json) else {
        return new_json.to_string();
    };
    let mut changed = false;
    for (k, v) in new.iter_mut() {
        if hidden.contains(k) && v.as_str() == Some(MASK) {
            if let Some(prev) = old.get(k) {
                *v = prev.clone();
                changed = true;
            }
        }
    }
    if changed {
        Value::Object(new).to_string()
    } else {
        new_json.to_string()
    }
}

/// `restore_masked_values` for DefaultParameterConfs, the old values taken
/// from the stored DefaultParameters object.
pub fn restore_masked_confs(
    new_confs: &str,
    old_values: &str,
    hidden: &BTreeSet<String>,
) -> String {
    let old = serde_json::from_str::<Map<String, Value>>(old_values).unwrap_or_default();
    let Ok(mut confs) = serde_json::from_str::<Vec<Value>>(new_confs) else {
        return new_confs.to_string();
    };
    let mut changed = false;
    for c in &mut confs {
        let name = c
            .get("ParameterName")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(name) = name.filter(|n| hidden.contains(n)) else {
            continue;
        };
        if let (Some(v), Some(prev)) = (c.get_mut("ParameterValue"), old.get(&name)) {
            if v.as_str() == Some(MASK) {
                *v = prev.clone();
                changed = true;
            }
        }
    }
    if changed {
        Value::Array(confs).to_string()
    } else {
        new_confs.to_string()
    }
}

/// Values to substitute into a preview: hidden ones become `******`, so a
/// preview shows where a hidden value goes, never the value.
pub fn masked_values(
    values: &BTreeMap<String, String>,
    hidden: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| {
            let shown = if hidden.contains(k) { MASK } else { v };
            (k.clone(), shown.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn finds_hidden_keys_as_loosely_as_substitution() {
        let k = hidden_keys(
            b"a {{x}} {{ tat-hidden:pw }} {{tat-hidden:tok}}{{secret:s}} {{tat-hidden:",
        );
        assert_eq!(k, set(&["pw", "tok"]));
        assert!(hidden_keys(b"echo {{word}}").is_empty());
    }

    #[test]
    fn a_masked_round_trip_keeps_the_hidden_value() {
        let h = set(&["pw"]);
        let old = r#"{"pw":"s3cret","user":"ann"}"#;
        let back = restore_masked_values(r#"{"pw":"******","user":"bob"}"#, Some(old), &h);
        assert_eq!(back, r#"{"pw":"s3cret","user":"bob"}"#);
        // A new value, or a key that is not hidden, is taken as given.
        let new = r#"{"pw":"other","user":"******"}"#;
        assert_eq!(restore_masked_values(new, Some(old), &h), new);
        assert_eq!(
            restore_masked_values(r#"{"pw":"******"}"#, None, &h),
            r#"{"pw":"******"}"#
        );
        let confs = r#"[{"ParameterName":"pw","ParameterValue":"******"}]"#;
        let back = restore_masked_confs(confs, old, &h);
        assert!(back.contains("s3cret") && !back.contains(MASK), "{back}");
    }

    #[test]
    fn masks_values_and_confs_of_hidden_keys_only() {
        let h = set(&["pw"]);
        assert_eq!(
            mask_values_json(r#"{"pw":"s3cret","user":"ann"}"#, &h),
            r#"{"pw":"******","user":"ann"}"#
        );
        assert_eq!(mask_values_json("not json", &h), "{}");
        assert_eq!(mask_values_json("", &h), "");
        assert_eq!(mask_values_json("kept", &set(&[])), "kept");
        let confs = r#"[{"ParameterName":"pw","ParameterValue":"s3cret","ParameterDescription":"d"},{"ParameterName":"user","ParameterValue":"ann"}]"#;
        let masked = mask_confs_json(confs, &h);
        assert!(
            !masked.contains("s3cret") && masked.contains("ann"),
            "{masked}"
        );
        let m: BTreeMap<String, String> =
            [("pw".into(), "s3cret".into()), ("u".into(), "x".into())].into();
        let shown = masked_values(&m, &h);
        assert_eq!(shown["pw"], MASK);
        assert_eq!(shown["u"], "x");
    }
}
