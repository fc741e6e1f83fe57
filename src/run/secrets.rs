//! Secrets as a run uses them: opened only when an invocation starts, to
//! build the script sealed for the agent, and listed for the agent to mask.

use std::collections::BTreeMap;

use super::error::{RunError, R};
use super::Runner;
use crate::protocol::MIN_MASK_LEN;
use crate::store::secrets as store;

/// The associated data a secret's value is sealed under.
pub fn aad(name: &str) -> String {
    format!("secret:{name}")
}

/// The values of `names`. An unknown name is `RunError::SecretNotFound`.
pub async fn resolve(run: &Runner, names: &[String]) -> R<BTreeMap<String, String>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let lookup = names.to_vec();
    let rows = run
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
        let row = row.ok_or_else(|| RunError::SecretNotFound(name.clone()))?;
        let plain = run
            .secrets
            .open_sealed(&aad(&name), &row.value_enc)
            .map_err(|_| {
                tracing::error!("the stored secret `{name}` does not decrypt");
                RunError::Internal
            })?;
        let value = String::from_utf8(plain).map_err(|_| RunError::Internal)?;
        out.insert(name, value);
    }
    Ok(out)
}

/// What the agent masks: each value long enough to mask, longest first so
/// a value containing another is replaced whole.
pub fn mask_values(values: &BTreeMap<String, String>) -> Vec<String> {
    let mut v: Vec<String> = values
        .values()
        .filter(|s| s.len() >= MIN_MASK_LEN)
        .cloned()
        .collect();
    v.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    v.dedup();
    v
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
}
