//! CAM policy documents (syntax version 2.0): parsing and validation.
//!
//! `parse_document` accepts exactly what CAM writes — `version`, `statement`
//! (a list, or one object), and per statement `effect`, `action`, `resource`
//! (each a string or a list) and an optional `condition` — and rejects
//! anything it does not understand, naming the bad part
//! (`statement[1].resource[0]: ...`). A typo in a deny must not silently
//! deny nothing, so action names must be known actions (or wildcards that
//! match one).

use serde_json::{Map, Value};

use super::actions::ACTIONS;
use super::condition::{self, ConditionClause};
use super::error::{Part, PolicyError};
use super::glob::Glob;
use super::resource::check_pattern;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub conditions: Vec<ConditionClause>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub version: String,
    pub statements: Vec<Statement>,
}

impl Document {
    /// The document in CAM's JSON form (as GetPolicy returns it).
    pub fn to_json(&self) -> Value {
        let stmts: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                let mut m = Map::new();
                let effect = match s.effect {
                    Effect::Allow => "allow",
                    Effect::Deny => "deny",
                };
                m.insert("effect".into(), effect.into());
                m.insert("action".into(), s.actions.clone().into());
                m.insert("resource".into(), s.resources.clone().into());
                if !s.conditions.is_empty() {
                    let mut c = Map::new();
                    for cl in &s.conditions {
                        let op = c
                            .entry(cl.operator.clone())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(keys) = op {
                            keys.insert(cl.key.clone(), cl.values.clone().into());
                        }
                    }
                    m.insert("condition".into(), Value::Object(c));
                }
                Value::Object(m)
            })
            .collect();
        serde_json::json!({ "version": self.version, "statement": stmts })
    }
}

/// Parses and validates a policy document.
pub fn parse_document(text: &str) -> Result<Document, PolicyError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
    let doc = from_value(&v)?;
    validate(&doc)?;
    Ok(doc)
}

fn from_value(v: &Value) -> Result<Document, PolicyError> {
    let top = v
        .as_object()
        .ok_or_else(|| PolicyError::invalid(Part::Document, "document", "must be a JSON object"))?;
    for k in top.keys() {
        if k != "version" && k != "statement" {
            return Err(PolicyError::invalid(Part::Document, k, "unknown field"));
        }
    }
    let version = match top.get("version") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(PolicyError::invalid(
                Part::Version,
                "version",
                "must be the string \"2.0\"",
            ))
        }
        None => {
            return Err(PolicyError::invalid(
                Part::Version,
                "version",
                "missing; write \"version\": \"2.0\"",
            ))
        }
    };
    let raw = match top.get("statement") {
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(o @ Value::Object(_)) => vec![o],
        Some(_) => {
            return Err(PolicyError::invalid(
                Part::Statement,
                "statement",
                "must be a list of statements",
            ))
        }
        None => {
            return Err(PolicyError::invalid(
                Part::Statement,
                "statement",
                "missing",
            ))
        }
    };
    let statements = raw
        .iter()
        .enumerate()
        .map(|(i, s)| statement(i, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Document {
        version,
        statements,
    })
}

fn statement(i: usize, v: &Value) -> Result<Statement, PolicyError> {
    let at = |field: &str| format!("statement[{i}].{field}");
    let obj = v.as_object().ok_or_else(|| {
        PolicyError::invalid(
            Part::Statement,
            format!("statement[{i}]"),
            "must be an object",
        )
    })?;
    for k in obj.keys() {
        match k.as_str() {
            "effect" | "action" | "resource" | "condition" => {}
            "principal" => {
                return Err(PolicyError::invalid(
                    Part::Principal,
                    at(k),
                    "principal is not allowed in a policy attached to users and groups",
                ))
            }
            _ => {
                return Err(PolicyError::invalid(
                    Part::Statement,
                    at(k),
                    "unknown field",
                ))
            }
        }
    }
    let effect = match obj.get("effect").and_then(Value::as_str) {
        Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
        Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
        Some(e) => {
            return Err(PolicyError::invalid(
                Part::Effect,
                at("effect"),
                format!("{e:?} is neither allow nor deny"),
            ))
        }
        None => {
            return Err(PolicyError::invalid(
                Part::Effect,
                at("effect"),
                "missing (allow or deny)",
            ))
        }
    };
    let actions = strings(obj.get("action"), &at("action"), Part::Action)?;
    let resources = strings(obj.get("resource"), &at("resource"), Part::Resource)?;
    let conditions = match obj.get("condition") {
        None => Vec::new(),
        Some(c) => conditions(c, &at("condition"))?,
    };
    Ok(Statement {
        effect,
        actions,
        resources,
        conditions,
    })
}

fn strings(v: Option<&Value>, path: &str, part: Part) -> Result<Vec<String>, PolicyError> {
    let bad = || PolicyError::invalid(part, path, "must be a string or a list of strings");
    match v {
        None => Err(PolicyError::invalid(part, path, "missing")),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn conditions(v: &Value, path: &str) -> Result<Vec<ConditionClause>, PolicyError> {
    let bad = |p: String, m: &str| PolicyError::invalid(Part::Condition, p, m);
    let ops = v
        .as_object()
        .ok_or_else(|| bad(path.to_string(), "must be an object of operators"))?;
    let mut out = Vec::new();
    for (op, keys) in ops {
        let keys = keys.as_object().ok_or_else(|| {
            bad(
                format!("{path}.{op}"),
                "must be an object of condition keys",
            )
        })?;
        for (key, vals) in keys {
            let p = format!("{path}.{op}.{key}");
            let values = match vals {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(p.clone(), "values must be strings"))?,
                _ => return Err(bad(p, "must be a string or a list of strings")),
            };
            out.push(ConditionClause {
                operator: op.clone(),
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// Checks a document built in code (documents from `parse_document` already
/// passed). Errors name the first bad part.
pub fn validate(doc: &Document) -> Result<(), PolicyError> {
    if doc.version != "2.0" {
        return Err(PolicyError::invalid(
            Part::Version,
            "version",
            format!(
                "{:?} is not a supported version; write \"2.0\"",
                doc.version
            ),
        ));
    }
    if doc.statements.is_empty() {
        return Err(PolicyError::invalid(
            Part::Statement,
            "statement",
            "must hold at least one statement",
        ));
    }
    for (i, s) in doc.statements.iter().enumerate() {
        if s.actions.is_empty() {
            return Err(PolicyError::invalid(
                Part::Action,
                format!("statement[{i}].action"),
                "must name at least one action",
            ));
        }
        for (j, a) in s.actions.iter().enumerate() {
            check_action(a).map_err(|m| {
                PolicyError::invalid(Part::Action, format!("statement[{i}].action[{j}]"), m)
            })?;
        }
        if s.resources.is_empty() {
            return Err(PolicyError::invalid(
                Part::Resource,
                format!("statement[{i}].resource"),
                "must name at least one resource",
            ));
        }
        for (j, r) in s.resources.iter().enumerate() {
            check_pattern(r).map_err(|m| {
                PolicyError::invalid(Part::Resource, format!("statement[{i}].resource[{j}]"), m)
            })?;
        }
        for c in &s.conditions {
            condition::check(c).map_err(|m| {
                PolicyError::invalid(
                    Part::Condition,
                    format!("statement[{i}].condition.{}.{}", c.operator, c.key),
                    m,
                )
            })?;
        }
    }
    Ok(())
}

/// An action entry must be `*` or `service:Name` matching a known action.
pub(crate) fn check_action(a: &str) -> Result<(), String> {
    if a == "*" {
        return Ok(());
    }
    let well_formed = a.split_once(':').is_some_and(|(svc, name)| {
        !svc.is_empty()
            && !name.is_empty()
            && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
    });
    if !well_formed {
        return Err(format!(
            "{a:?} is not an action (service:ActionName, e.g. tat:RunCommand)"
        ));
    }
    let g = Glob::new(a, true);
    if ACTIONS.iter().any(|k| g.matches(k.name)) {
        Ok(())
    } else if a.contains('*') {
        Err(format!("{a:?} matches no action drover knows"))
    } else {
        Err(format!("unknown action {a:?}"))
    }
}
