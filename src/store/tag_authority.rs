//! Who may put a tag on an instance. Tags drive policy conditions and
//! `Targets` selectors, so an instance's tags must come from an authority:
//! the register code's `Tags` (set by whoever created the code), an
//! administrator's ModifyInstanceTags, or keys the register code explicitly
//! lets the agent propose (`AllowedAgentTagKeys`, a drover extension). A
//! machine that merely holds a register code is not an authority: an agent
//! tag with any other key refuses the whole registration, so nothing is
//! registered with a tag that could pull it into someone else's run.

use serde_json::Value;

/// Keys of a JSON array of `{"Key","Value"}` objects (an agent's tags as
/// the instances table stores them); unreadable text has none.
fn keys_of(tags_json: &str) -> Vec<String> {
    serde_json::from_str::<Vec<Value>>(tags_json)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.get("Key").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The keys a register code lets agents propose (JSON array of strings, as
/// `register_codes.allowed_agent_tag_keys` stores it); unreadable text
/// allows none, so a damaged row fails closed.
pub fn allowed_keys(allowed_json: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(allowed_json).unwrap_or_default()
}

/// The first key of `agent_tags_json` that the code does not allow the
/// agent to set, if any. Keys compare exactly (tag keys are
/// case-sensitive in conditions and selectors alike).
pub fn disallowed_key(agent_tags_json: &str, allowed_json: &str) -> Option<String> {
    let allowed = allowed_keys(allowed_json);
    keys_of(agent_tags_json)
        .into_iter()
        .find(|k| !allowed.iter().any(|a| a == k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_keys_pass() {
        let tags = r#"[{"Key":"role","Value":"web"},{"Key":"env","Value":"prod"}]"#;
        assert_eq!(disallowed_key(tags, "[]").as_deref(), Some("role"));
        assert_eq!(disallowed_key(tags, r#"["role"]"#).as_deref(), Some("env"));
        assert_eq!(disallowed_key(tags, r#"["role","env"]"#), None);
        assert_eq!(disallowed_key("[]", "[]"), None);
        // Case matters, and a damaged allow-list allows nothing.
        assert_eq!(
            disallowed_key(r#"[{"Key":"Role","Value":"x"}]"#, r#"["role"]"#).as_deref(),
            Some("Role")
        );
        assert_eq!(
            disallowed_key(r#"[{"Key":"role","Value":"x"}]"#, "not json").as_deref(),
            Some("role")
        );
    }
}
