//! Strict reading of a request's JSON parameters: every field is taken by
//! name and type, and whatever is left over is an `UnknownParameter`.

use serde_json::{Map, Value};

use super::error::{ApiError, Code};
use crate::store::query::{Page, TagFilter};

pub struct Params {
    map: Map<String, Value>,
    /// Parameters from a form (a query string or a form body) carry every
    /// scalar as text, so numbers and booleans are read from text too.
    form: bool,
}

pub type R<T> = Result<T, ApiError>;

impl Params {
    pub fn parse(body: &[u8]) -> R<Params> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Params {
                map: Map::new(),
                form: false,
            });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Params { map, form: false }),
            Ok(_) => Err(ApiError::new(
                Code::InvalidParameter,
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::new(
                Code::InvalidParameter,
                format!("the request body is not valid JSON: {e}"),
            )),
        }
    }

    /// Parameters given as flattened form pairs (`Filters.0.Name=...`).
    pub fn from_form(pairs: Vec<(String, String)>) -> R<Params> {
        Ok(Params {
            map: super::form::unflatten(pairs)?,
            form: true,
        })
    }

    /// Removes a field; JSON null counts as absent, as the SDKs send it.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    pub fn opt_str(&mut self, name: &str) -> R<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::wrong_type(name, "a string")),
        }
    }

    pub fn str(&mut self, name: &str) -> R<String> {
        self.opt_str(name)?.ok_or_else(|| ApiError::missing(name))
    }

    pub fn opt_i64(&mut self, name: &str) -> R<Option<i64>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::wrong_type(name, "an integer")),
            Some(Value::String(s)) if self.form => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::wrong_type(name, "an integer")),
            Some(_) => Err(ApiError::wrong_type(name, "an integer")),
        }
    }

    pub fn opt_bool(&mut self, name: &str) -> R<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            // Python's SDK writes True/False, Node's true/false.
            Some(Value::String(s)) if self.form => match s.as_str() {
                "true" | "True" => Ok(Some(true)),
                "false" | "False" => Ok(Some(false)),
                _ => Err(ApiError::wrong_type(name, "a boolean")),
            },
            Some(_) => Err(ApiError::wrong_type(name, "a boolean")),
        }
    }

    pub fn opt_str_list(&mut self, name: &str) -> R<Option<Vec<String>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::wrong_type(name, "an array of strings")),
                })
                .collect::<R<Vec<_>>>()
                .map(Some),
            Some(_) => Err(ApiError::wrong_type(name, "an array of strings")),
        }
    }

    pub fn opt_value(&mut self, name: &str) -> Option<Value> {
        self.take(name)
    }

    /// Any field, left in place (null reads as absent).
    pub fn peek_value(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string field, left in place (authorization looks before handlers take).
    pub fn peek_str(&self, name: &str) -> Option<String> {
        self.map.get(name).and_then(Value::as_str).map(String::from)
    }

    /// `Tags: [{Key, Value}]` as pairs, left in place (for qcs:request_tag).
    pub fn peek_tags(&self) -> Vec<(String, String)> {
        let Some(Value::Array(tags)) = self.map.get("Tags") else {
            return Vec::new();
        };
        tags.iter()
            .filter_map(|t| {
                let k = t.get("Key")?.as_str()?;
                let v = t.get("Value").and_then(Value::as_str).unwrap_or("");
                Some((k.to_string(), v.to_string()))
            })
            .collect()
    }

    /// Resource ids the request names (fields ending in Id/Ids, `*-id`
    /// filters, and secrets by name as `secret/NAME`), for the audit log.
    /// The audit log records no other parameter, so values such as
    /// SecretValue, SecretKey or a password never reach it.
    pub fn named_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |v: &Value| match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => out.extend(a.iter().filter_map(|x| x.as_str().map(String::from))),
            _ => {}
        };
        for (k, v) in &self.map {
            if (k.ends_with("Id") || k.ends_with("Ids")) && !k.contains("Secret") {
                push(v);
            }
        }
        if let Some(Value::Array(filters)) = self.map.get("Filters") {
            for f in filters {
                let named = f
                    .get("Name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.ends_with("-id"));
                if let (true, Some(vals)) = (named, f.get("Values")) {
                    push(vals);
                }
            }
        }
        for k in ["SecretName", "SecretNames"] {
            match self.map.get(k) {
                Some(Value::String(s)) => out.push(format!("secret/{s}")),
                Some(Value::Array(a)) => out.extend(
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| format!("secret/{s}")),
                ),
                _ => {}
            }
        }
        out.truncate(100);
        out
    }

    /// The parameters not taken yet (a ClientToken's fingerprint covers them).
    pub fn remaining(&self) -> &Map<String, Value> {
        &self.map
    }

    /// Fails on any field not taken yet, leaving the parameters in place
    /// (the gate, after reading a whole request).
    pub fn finish_ref(&self) -> R<()> {
        match self.map.keys().next() {
            Some(k) => Err(ApiError::unknown_param(k)),
            None => Ok(()),
        }
    }

    /// Ends parsing: any field not taken is unknown.
    pub fn finish(self) -> R<()> {
        match self.map.keys().next() {
            Some(k) => Err(ApiError::unknown_param(k)),
            None => Ok(()),
        }
    }

    /// `Limit` (default 20, 1..=100) and `Offset` (default 0, ≥ 0).
    pub fn page(&mut self) -> R<Page> {
        let limit = self.opt_i64("Limit")?.unwrap_or(20);
        let offset = self.opt_i64("Offset")?.unwrap_or(0);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::new(
                Code::InvalidParameterValueRange,
                format!("Limit must be between 1 and 100, got {limit}"),
            ));
        }
        if offset < 0 {
            return Err(ApiError::new(
                Code::InvalidParameterValueRange,
                format!("Offset must not be negative, got {offset}"),
            ));
        }
        Ok(Page { offset, limit })
    }

    /// `Filters: [{Name, Values}]`, at most 10 filters of at most 5 values,
    /// each name one of `allowed` (or `tag:KEY` when `tags` is true).
    pub fn filters(&mut self, allowed: &[&str], tags: bool) -> R<Filters> {
        let Some(v) = self.take("Filters") else {
            return Ok(Filters::default());
        };
        let Value::Array(items) = v else {
            return Err(ApiError::wrong_type("Filters", "an array of Filter"));
        };
        if items.len() > 10 {
            return Err(ApiError::new(
                Code::LimitExceededFilterValueExceeded,
                "at most 10 Filters are allowed",
            ));
        }
        let mut out = Filters::default();
        for item in items {
            let Value::Object(mut f) = item else {
                return Err(ApiError::wrong_type("Filters", "an array of Filter"));
            };
            let name = match f.remove("Name") {
                Some(Value::String(s)) => s,
                Some(_) => return Err(ApiError::wrong_type("Filters.Name", "a string")),
                None => return Err(ApiError::missing("Filters.Name")),
            };
            let values = match f.remove("Values") {
                Some(Value::Array(vs)) => vs
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(ApiError::wrong_type(
                            "Filters.Values",
                            "an array of strings",
                        )),
                    })
                    .collect::<R<Vec<_>>>()?,
                Some(_) => {
                    return Err(ApiError::wrong_type(
                        "Filters.Values",
                        "an array of strings",
                    ))
                }
                None => return Err(ApiError::missing("Filters.Values")),
            };
            if let Some(k) = f.keys().next() {
                return Err(ApiError::unknown_param(&format!("Filters.{k}")));
            }
            if values.len() > 5 {
                return Err(ApiError::new(
                    Code::LimitExceededFilterValueExceeded,
                    format!("filter `{name}` has more than 5 values"),
                ));
            }
            if values.is_empty() {
                return Err(ApiError::new(
                    Code::InvalidFilter,
                    format!("filter `{name}` has no values"),
                ));
            }
            let is_tag =
                tags && (name == "tag-key" || name == "tag-value" || name.starts_with("tag:"));
            if !is_tag && !allowed.contains(&name.as_str()) {
                return Err(ApiError::new(
                    Code::InvalidFilter,
                    format!("unsupported filter `{name}`"),
                ));
            }
            out.items.push((name, values));
        }
        Ok(out)
    }
}

#[derive(Default, Debug)]
pub struct Filters {
    pub items: Vec<(String, Vec<String>)>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Values of every filter with this name, merged (a repeated filter narrows
    /// nothing in TAT's model, it adds alternatives).
    pub fn get(&self, name: &str) -> Vec<String> {
        self.items
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    pub fn tags(&self) -> TagFilter {
        let mut t = TagFilter::default();
        for (name, values) in &self.items {
            if name == "tag-key" {
                t.keys.extend(values.iter().cloned());
            } else if name == "tag-value" {
                t.values.extend(values.iter().cloned());
            } else if let Some(k) = name.strip_prefix("tag:") {
                t.pairs.push((k.to_string(), values.clone()));
            }
        }
        t
    }
}

/// Reads a list of objects whose fields are all strings, as TAT's nested
/// models (Tag, DefaultParameterConf) are: every field in `required` must be
/// there, those in `optional` may be, and nested errors get the same codes
/// as top-level ones, named by path (`Tags.0.Value`). Each object comes back
/// as its values in the order of `required` then `optional`.
pub fn string_objects(
    name: &str,
    v: Value,
    required: &[&str],
    optional: &[&str],
) -> R<Vec<Vec<Option<String>>>> {
    let Value::Array(items) = v else {
        return Err(ApiError::wrong_type(name, "an array of objects"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut m) = item else {
            return Err(ApiError::wrong_type(&format!("{name}.{i}"), "an object"));
        };
        let mut row = Vec::with_capacity(required.len() + optional.len());
        for (field, must) in required
            .iter()
            .map(|f| (f, true))
            .chain(optional.iter().map(|f| (f, false)))
        {
            let path = format!("{name}.{i}.{field}");
            match m.remove(*field) {
                None | Some(Value::Null) if must => return Err(ApiError::missing(&path)),
                None | Some(Value::Null) => row.push(None),
                Some(Value::String(s)) => row.push(Some(s)),
                Some(_) => return Err(ApiError::wrong_type(&path, "a string")),
            }
        }
        if let Some(k) = m.keys().next() {
            return Err(ApiError::unknown_param(&format!("{name}.{i}.{k}")));
        }
        out.push(row);
    }
    Ok(out)
}

/// Checks an id list: at most `max` entries, each well formed.
pub fn check_ids(name: &str, ids: &[String], prefix: &str, max: usize, code: Code) -> R<()> {
    if ids.len() > max {
        return Err(ApiError::new(
            Code::InvalidParameterValueLimitExceeded,
            format!("`{name}` allows at most {max} entries"),
        ));
    }
    for id in ids {
        if !crate::ids::is_valid(id, prefix) {
            return Err(ApiError::new(
                code,
                format!("`{id}` is not a valid id for `{name}`"),
            ));
        }
    }
    Ok(())
}

/// Fails on a repeated id.
pub fn check_unique(name: &str, ids: &[String]) -> R<()> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(ApiError::value(format!("`{name}` lists `{id}` twice")));
        }
    }
    Ok(())
}

/// How a list action's id parameter is checked.
pub struct IdList {
    pub name: &'static str,
    pub prefix: &'static str,
    pub code: Code,
}

impl Params {
    /// Reads a list action's ids (at most 100, well formed) and its Filters;
    /// TAT accepts one or the other, never both.
    pub fn ids_or_filters(
        &mut self,
        ids: IdList,
        allowed: &[&str],
        tags: bool,
    ) -> R<(Vec<String>, Filters)> {
        let list = self.opt_str_list(ids.name)?;
        self.given_ids_or_filters(list, ids, allowed, tags)
    }

    /// As `ids_or_filters`, for ids the gate already read (`given`).
    pub fn given_ids_or_filters(
        &mut self,
        list: Option<Vec<String>>,
        ids: IdList,
        allowed: &[&str],
        tags: bool,
    ) -> R<(Vec<String>, Filters)> {
        let filters = self.filters(allowed, tags)?;
        if list.is_some() && !filters.is_empty() {
            return Err(ApiError::new(
                Code::InvalidParameterConflictParameter,
                format!("{} and Filters cannot be given together", ids.name),
            ));
        }
        let list = list.unwrap_or_default();
        check_ids(ids.name, &list, ids.prefix, 100, ids.code)?;
        Ok((list, filters))
    }
}
