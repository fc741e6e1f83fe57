//! A request as the gate decided it: the caller, the action and the
//! resources it names, read once (`api/gate.rs` builds it; only
//! `crate::gate::authorize` wraps it in the `Authorized` proof handlers
//! take). Handlers import this module, never the gate, so the gate may
//! use their request readers without a cycle.

use crate::gate::Authorized;
use crate::policy::Action;
use crate::run::Plan;

use super::cam::scope::CamScope;
use super::error::ApiError;
use super::request::R;
use super::targets::Selector;
use super::Principal;

/// A request as the gate read it.
pub struct Request {
    /// The caller, with the grants the decision used.
    pub principal: Principal,
    pub action: Action,
    /// The resources named, as the action's rule reads them.
    pub named: Named,
    /// `Tags` of what the request creates (TAT endpoint), read strictly.
    pub tags: Option<String>,
}

/// The resource-naming fields of a request, by rule.
pub enum Named {
    /// Operation-level actions.
    Nothing,
    /// One id (`CommandId`, `InvocationTaskId`, `InstanceId`, `InvokerId`,
    /// `SecretName`), or none where the action allows that.
    One(Option<String>),
    /// A list of ids; None: a list action filtered item by item.
    List(Option<Vec<String>>),
    /// CancelInvocation, Suspend/ResumeInvocation.
    Invocation {
        id: String,
        instances: Option<Vec<String>>,
    },
    /// DescribeWebhookDeliveries.
    Deliveries {
        invocation: Option<String>,
        invoker: Option<String>,
    },
    /// RunCommand, InvokeCommand: the decided run.
    Run(Box<Authorized<Plan>>),
    /// ModifyCommand: the command and the new content, if any.
    ModifyCommand { id: String, content: Option<String> },
    /// CreateInvoker: the command and the instances it will run on.
    NewInvoker {
        command_id: String,
        ids: Vec<String>,
        selector: Option<Selector>,
    },
    /// CAM's actions: the users, groups and policies they reach, read,
    /// resolved and grouped as decided (`api::cam::scope`); the handler
    /// acts on these ids.
    Cam(CamScope),
    /// ModifyInvoker: what the request changes of the invoker.
    ChangeInvoker {
        id: String,
        command_id: Option<String>,
        ids: Option<Vec<String>>,
        selector: Option<Selector>,
    },
}

impl Authorized<Request> {
    pub fn who(&self) -> &Principal {
        &self.value().principal
    }

    /// The one id the request names; MissingParameter without it.
    pub fn one(&self, field: &str) -> R<String> {
        self.opt_one().ok_or_else(|| ApiError::missing(field))
    }

    pub fn opt_one(&self) -> Option<String> {
        match &self.value().named {
            Named::One(id) => id.clone(),
            _ => None,
        }
    }

    /// The ids a list request names (None: filter item by item).
    pub fn ids(&self) -> Option<Vec<String>> {
        match &self.value().named {
            Named::List(ids) => ids.clone(),
            _ => None,
        }
    }

    /// The targets a CAM action was decided on.
    pub fn cam(&self) -> R<&CamScope> {
        match &self.value().named {
            Named::Cam(scope) => Ok(scope),
            _ => Err(ApiError::internal()),
        }
    }

    /// `Tags` as read by the gate (JSON text), "[]" when not given.
    pub fn tags(&self) -> String {
        self.value().tags.clone().unwrap_or_else(|| "[]".into())
    }
}
