//! Authorization helpers for handlers: the gate itself is `api/gate.rs`
//! (reads and decides every request) over `crate::gate` (grants, resources,
//! the `Authorized` proof). Here: looking up resources with their tags for
//! handlers that decide more (the simulator, content visibility), and
//! filtering list actions that name no ids item by item, so a caller only
//! ever sees what it may read. The account (root) is never restricted.

use std::net::IpAddr;
use std::sync::Arc;

pub use crate::gate::{parse_tags, Grants};
use crate::policy::{self, Decision, Resource, ResourceKind};
use crate::store::commands;

use super::error::{ApiError, Code};
use super::Api;

impl Api {
    /// Loads and compiles what applies to `p`.
    pub(crate) async fn grants(
        &self,
        p: &super::Principal,
        ip: Option<IpAddr>,
    ) -> Result<Grants, ApiError> {
        Ok(self.gate.grants_for(&p.user_id, &p.group_ids, ip).await?)
    }

    pub(crate) async fn command_resource(&self, id: &str) -> Result<Resource, ApiError> {
        Ok(self.gate.command_resource(id).await?)
    }

    pub(crate) async fn instance_resources(
        &self,
        ids: &[String],
    ) -> Result<Vec<Resource>, ApiError> {
        Ok(self.gate.instance_resources(ids).await?)
    }
}

/// The error a denied caller gets: it names the action and the resource
/// denied, and nothing about anyone else's data.
pub fn denied(action: &str, d: &Decision) -> ApiError {
    let what = d.denied_resource.as_deref().unwrap_or("*");
    ApiError::new(
        Code::AuthFailureUnauthorizedOperation,
        format!("you are not authorized to perform {action} on {what}"),
    )
}

/// Largest number of rows a filtered list considers for one caller.
pub const FILTER_SCAN: i64 = 100_000;

/// Decides item visibility for list actions, usable inside store closures.
#[derive(Clone)]
pub struct Visibility {
    grants: Arc<Grants>,
    region: String,
    uin: String,
}

impl Visibility {
    pub fn all(&self) -> bool {
        self.grants.is_root()
    }

    /// The page to read from the store: everything when rows will be filtered.
    pub fn fetch(&self, page: crate::store::query::Page) -> crate::store::query::Page {
        if self.all() {
            page
        } else {
            crate::store::query::Page {
                offset: 0,
                limit: FILTER_SCAN,
            }
        }
    }

    pub fn command(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: ResourceKind::Command.qcs(&self.region, &self.uin, id),
            tags: parse_tags(tags_json),
        }
    }

    pub fn invoker(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: ResourceKind::Invoker.qcs(&self.region, &self.uin, id),
            tags: parse_tags(tags_json),
        }
    }

    pub fn secret(&self, name: &str) -> Resource {
        Resource {
            name: ResourceKind::Secret.qcs(&self.region, &self.uin, name),
            tags: Vec::new(),
        }
    }

    pub fn instance(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: ResourceKind::ManagedInstance.qcs(&self.region, &self.uin, id),
            tags: parse_tags(tags_json),
        }
    }

    /// Whether the caller may read the script of `command_id` (looked up
    /// for its tags only when the caller is restricted).
    pub fn sees_content(&self, conn: &rusqlite::Connection, command_id: &str) -> bool {
        if self.all() {
            return true;
        }
        let tags = commands::get(conn, command_id)
            .map(|c| c.tags)
            .unwrap_or_default();
        self.sees(
            policy::DESCRIBE_COMMAND_CONTENT,
            &[self.command(command_id, &tags)],
        )
    }

    pub fn sees(&self, action: &str, resources: &[Resource]) -> bool {
        self.grants.allows(action, resources)
    }

    /// Keeps the visible rows and cuts the requested page from them; the
    /// total counts only what the caller may see.
    pub fn page<T>(
        &self,
        total: i64,
        rows: Vec<T>,
        page: crate::store::query::Page,
        keep: impl Fn(&T) -> bool,
    ) -> (i64, Vec<T>) {
        if self.all() {
            return (total, rows);
        }
        let visible: Vec<T> = rows.into_iter().filter(|r| keep(r)).collect();
        let total = visible.len() as i64;
        let rows = visible
            .into_iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .collect();
        (total, rows)
    }
}

impl Api {
    pub(crate) fn visibility(&self, p: &super::Principal) -> Visibility {
        Visibility {
            grants: p.grants.clone(),
            region: self.region.clone(),
            uin: self.account_uin.clone(),
        }
    }
}
