//! What a decision is made on: the action and the resources a request
//! touches, and the facts about it that conditions may test. The lowest
//! layer of the engine: conditions, compiled policies and the evaluator
//! all take these, and they take nothing from them.

use std::net::IpAddr;

/// A resource a request touches: its qcs name (or `*`) and its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub tags: Vec<(String, String)>,
}

impl Resource {
    pub fn new(name: impl Into<String>) -> Resource {
        Resource {
            name: name.into(),
            tags: Vec::new(),
        }
    }

    pub fn with_tags(name: impl Into<String>, tags: &[(&str, &str)]) -> Resource {
        Resource {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// Facts about the request that conditions may test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub source_ip: Option<IpAddr>,
    /// Tags the request sets on what it creates (`qcs:request_tag`).
    pub request_tags: Vec<(String, String)>,
    /// The account a session logs in as (`tat:login_user`); None outside
    /// session decisions, where a condition on it is unknown.
    pub login_user: Option<String>,
    /// Where a port forward connects (`tat:forward_host`,
    /// `tat:forward_port`); None outside port forward decisions.
    pub forward_host: Option<String>,
    pub forward_port: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Qualified action, e.g. `tat:RunCommand` (any letter case).
    pub action: &'a str,
    pub resources: &'a [Resource],
    pub context: &'a Context,
}
