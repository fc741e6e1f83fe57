//! Form-encoded parameters (`GET /?...`, and the v1 signature's form body)
//! turned back into the JSON shape the handlers read.
//!
//! The SDKs flatten a request for a query string: a list becomes
//! `Name.0`, `Name.1`, an object `Name.Key`, so `Filters.0.Values.1=x`.
//! Rebuilding is strict: a name given twice, a scalar that is also a
//! container, or list indexes with gaps are parameter errors, never guesses.

use serde_json::{Map, Value};

use super::error::{ApiError, Code};
/// Results of reading a form carry the API error of the bad field.
type R<T> = Result<T, ApiError>;

/// Deepest nesting a flattened name may have (TAT's deepest is 3).
const MAX_DEPTH: usize = 8;

/// Rebuilds a JSON object from flattened `(name, value)` pairs; every leaf
/// is a string (the request reader converts numbers and booleans on demand).
pub fn unflatten(pairs: Vec<(String, String)>) -> R<Map<String, Value>> {
    let mut root = Value::Object(Map::new());
    for (name, value) in pairs {
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > MAX_DEPTH || parts.iter().any(|p| p.is_empty()) {
            return Err(bad(&name));
        }
        insert(&mut root, &parts, value, &name)?;
    }
    let Value::Object(map) = listify(root, "")? else {
        return Err(bad(""));
    };
    Ok(map)
}

fn bad(name: &str) -> ApiError {
    ApiError::new(
        Code::InvalidParameter,
        format!("the form parameter `{name}` does not fit the request's structure"),
    )
}

fn insert(node: &mut Value, parts: &[&str], value: String, name: &str) -> R<()> {
    let Value::Object(map) = node else {
        return Err(bad(name));
    };
    let [first, rest @ ..] = parts else {
        return Err(bad(name));
    };
    if rest.is_empty() {
        if map.contains_key(*first) {
            return Err(bad(name));
        }
        map.insert((*first).to_string(), Value::String(value));
        return Ok(());
    }
    let child = map
        .entry((*first).to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    insert(child, rest, value, name)
}

/// Objects whose keys are exactly 0..n become lists, recursively.
fn listify(v: Value, at: &str) -> R<Value> {
    let Value::Object(map) = v else {
        return Ok(v);
    };
    let numeric = !map.is_empty() && map.keys().all(|k| k.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        let mut items: Vec<(usize, Value)> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let i: usize = k.parse().map_err(|_| bad(at))?;
            items.push((i, v));
        }
        items.sort_by_key(|(i, _)| *i);
        if items.iter().enumerate().any(|(n, (i, _))| n != *i) {
            return Err(bad(at));
        }
        return items
            .into_iter()
            .map(|(i, v)| listify(v, &format!("{at}.{i}")))
            .collect::<R<Vec<_>>>()
            .map(Value::Array);
    }
    let mut out = Map::new();
    for (k, v) in map {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        out.insert(k, listify(v, &path)?);
    }
    Ok(Value::Object(out))
}

/// Decodes an `application/x-www-form-urlencoded` string.
pub fn decode(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rebuilds_lists_and_objects() {
        let pairs = decode(
            b"Limit=10&Filters.0.Name=command-name&Filters.0.Values.0=a%20b&Filters.0.Values.1=c&InstanceIds.0=mi-1",
        );
        let m = unflatten(pairs).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"Limit": "10", "InstanceIds": ["mi-1"],
                   "Filters": [{"Name": "command-name", "Values": ["a b", "c"]}]})
        );
    }

    #[test]
    fn refuses_ambiguity() {
        for q in [
            &b"A=1&A=2"[..],
            b"A=1&A.0=2",
            b"A.0=1&A=2",
            b"A.0=1&A.2=2",
            b"A..B=1",
            b"A.1.2.3.4.5.6.7.8=1",
        ] {
            assert!(
                unflatten(decode(q)).is_err(),
                "{}",
                String::from_utf8_lossy(q)
            );
        }
    }
}
