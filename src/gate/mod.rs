//! The gate: what applies to a caller (`Grants`), the resources a decision
//! is about (with their tags, read from the store), and the proof that a
//! decision was taken (`Authorized<T>`).
//!
//! It sits below `api`, `run` and `scheduler`, so a request (through the
//! API) and a deferred run (an invoker's trigger) are decided by the same
//! code against the same policies. `Authorized<T>` can only be built here,
//! by `authorize`, after every check derived from the value has allowed it:
//! handlers and `run::start` take it instead of a principal they might
//! ignore, so "forgot to check" does not compile. The account (root) is
//! never restricted; a sub-user with no policy is denied everything.

mod grants;

use std::net::IpAddr;

use crate::policy::{Decision, Resource, ResourceKind};
use crate::store::{self, commands, instances, Store, StoreError};

pub use grants::{parse_tags, Grants, PolicyCache};

/// One decision to take: `action` on `resources` (all must be allowed, as
/// the action's row combines them).
#[derive(Debug, Clone)]
pub struct Check {
    pub action: &'static str,
    pub resources: Vec<Resource>,
    /// The instances were found by a selector (or through invokers): a
    /// denial must not name one, or it would tell the caller which
    /// instances carry a tag.
    pub hide_resource: bool,
    /// The check starts this stored command: Azure roles must also let
    /// the caller read it (`Grants::decide_start`).
    pub start_of: Option<Resource>,
}

impl Check {
    pub fn new(action: &'static str, resources: Vec<Resource>) -> Check {
        Check {
            action,
            resources,
            hide_resource: false,
            start_of: None,
        }
    }
}

/// A value the gate decided on. Only `authorize` builds one.
#[must_use = "an authorization is proof for a handler; drop it and nothing runs"]
#[derive(Debug)]
pub struct Authorized<T> {
    value: T,
    why: String,
}

impl<T> Authorized<T> {
    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn into_inner(self) -> T {
        self.value
    }

    /// The deciding statements, for the audit trail.
    pub fn why(&self) -> &str {
        &self.why
    }
}

/// A refused decision.
#[derive(Debug, Clone, thiserror::Error)]
#[error("you are not authorized to perform {action} on {resource}")]
pub struct Denied {
    pub action: &'static str,
    /// The resource named to the caller (`*` when it must stay unnamed).
    pub resource: String,
    /// The decision's own account (its deciding statements), for the audit.
    pub decision: String,
}

/// Decides every check for `grants` and, when all allow, proves it by
/// wrapping `value`. A check list is derived from the value it decides.
pub fn authorize<T>(grants: &Grants, checks: &[Check], value: T) -> Result<Authorized<T>, Denied> {
    let mut why = Vec::with_capacity(checks.len());
    for c in checks {
        let d = match &c.start_of {
            Some(cmd) => grants.decide_start(c.action, &c.resources, cmd),
            None => grants.decide(c.action, &c.resources),
        };
        if !d.allowed {
            return Err(denied(c, &d));
        }
        why.push(d.to_string());
    }
    Ok(Authorized {
        value,
        why: why.join(" | "),
    })
}

fn denied(c: &Check, d: &Decision) -> Denied {
    let named = d.denied_resource.clone().unwrap_or_else(|| "*".into());
    let resource = if c.hide_resource && named.contains(":instance/") {
        "*".to_string()
    } else {
        named
    };
    Denied {
        action: c.action,
        resource,
        decision: d.to_string(),
    }
}

/// Everything the gate reads: the store (resource tags, policies) and the
/// account's names for resources.
pub struct Gate {
    pub store: Store,
    pub region: String,
    pub account_uin: String,
    pub cache: PolicyCache,
}

impl Gate {
    pub fn new(store: Store, region: String, account_uin: String) -> Gate {
        Gate {
            store,
            region,
            account_uin,
            cache: PolicyCache::default(),
        }
    }

    pub fn qcs(&self, kind: ResourceKind, id: &str) -> String {
        kind.qcs(&self.region, &self.account_uin, id)
    }

    /// What applies to `user_id` ("root" or a sub-user's uin) in the
    /// groups `group_ids`, for a request from `ip`.
    pub async fn grants_for(
        &self,
        user_id: &str,
        group_ids: &[i64],
        ip: Option<IpAddr>,
    ) -> Result<Grants, StoreError> {
        if user_id == "root" {
            return Ok(Grants::root());
        }
        let (who, groups) = (user_id.to_string(), group_ids.to_vec());
        let (docs, roles) = self
            .store
            .read(move |c| store::policies::load_policy_inputs(c, &who, &groups))
            .await?;
        Ok(self.cache.compile(self, user_id, docs, roles, ip))
    }

    /// What applies now to a stored principal (an invoker's creator), with
    /// its current groups; None when the user no longer exists.
    pub async fn grants_of_user(&self, user_id: &str) -> Result<Option<Grants>, StoreError> {
        if user_id == "root" {
            return Ok(Some(Grants::root()));
        }
        let who = user_id.to_string();
        let groups = self
            .store
            .read(move |c| {
                Ok(match store::users::get_by_uin(c, &who)? {
                    Some(u) => Some(store::groups::group_ids_for_user(c, &u.uin)?),
                    None => None,
                })
            })
            .await?;
        match groups {
            Some(g) => Ok(Some(self.grants_for(user_id, &g, None).await?)),
            None => Ok(None),
        }
    }

    /// A secret, named as `qcs::tat:REGION:uin/UIN:secret/NAME` (secrets
    /// carry no tags).
    pub fn secret(&self, name: &str) -> Resource {
        Resource {
            name: self.qcs(ResourceKind::Secret, name),
            tags: Vec::new(),
        }
    }

    pub fn command_res(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: self.qcs(ResourceKind::Command, id),
            tags: parse_tags(tags_json),
        }
    }

    pub fn instance_res(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: self.qcs(ResourceKind::ManagedInstance, id),
            tags: parse_tags(tags_json),
        }
    }

    /// A command by id with its stored tags (none when it does not exist:
    /// the decision then rests on the name alone, and the handler reports
    /// the missing command only to a caller allowed to know).
    pub async fn command_resource(&self, id: &str) -> Result<Resource, StoreError> {
        let lookup = id.to_string();
        let tags = self
            .store
            .read(move |c| {
                Ok(commands::get(c, &lookup)
                    .map(|cmd| cmd.tags)
                    .unwrap_or_else(|_| "[]".into()))
            })
            .await?;
        Ok(self.command_res(id, &tags))
    }

    pub async fn invoker_resource(&self, id: &str) -> Result<Resource, StoreError> {
        let lookup = id.to_string();
        let tags = self
            .store
            .read(move |c| {
                Ok(store::invokers::get(c, &lookup)
                    .map(|i| i.tags)
                    .unwrap_or_else(|_| "[]".into()))
            })
            .await?;
        Ok(Resource {
            name: self.qcs(ResourceKind::Invoker, id),
            tags: parse_tags(&tags),
        })
    }

    pub async fn instance_resources(&self, ids: &[String]) -> Result<Vec<Resource>, StoreError> {
        let lookup = ids.to_vec();
        let tags = self
            .store
            .read(move |c| {
                Ok(lookup
                    .iter()
                    .map(|i| {
                        instances::get_instance(c, i)
                            .map(|x| x.tags)
                            .unwrap_or_else(|_| "[]".into())
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(ids
            .iter()
            .zip(tags)
            .map(|(id, t)| self.instance_res(id, &t))
            .collect())
    }
}
