//! An invoker's trigger: decided again at every firing, against the policy
//! its creator holds now and the instances it resolves to now, then started
//! like any run. A trigger whose creator is gone, or no longer may run it,
//! runs nothing; the scheduler records it FAILED with the reason.

use super::error::{RunError, R};
use super::start::{plan, start, AlsoWrite, Overrides, Source, Want};
use super::targets::{RateControl, Selector};
use super::Runner;
use crate::gate;
use crate::store::commands;
use crate::store::invokers::{self, Invoker, Record};
use crate::timefmt::now_ms;

/// TAT's limit on an invoker's InstanceIds (and on what its selector may
/// reach at one trigger).
pub const MAX_INVOKER_INSTANCES: usize = 100;

/// The policy action a trigger is decided on: the right the invoker was
/// created (or last changed) under, held by its creator now.
const TRIGGER_ACTION: crate::policy::Action = crate::policy::Action::CreateInvoker;

/// Starts the invocation of one trigger of `inv` scheduled at `at`, and
/// records the trigger in the same transaction.
pub async fn fire(run: &Runner, inv: &Invoker, at: i64, reason: String) -> R<String> {
    if inv.created_by.is_empty() {
        return Err(RunError::Orphaned(
            "the invoker has no recorded creator (made before drover recorded them); \
             ModifyInvoker by a user allowed to run it records one"
                .into(),
        ));
    }
    let Some(grants) = run.gate.grants_of_user(&inv.created_by).await? else {
        return Err(RunError::Orphaned(format!(
            "the invoker's creator (uin {}) no longer exists",
            inv.created_by
        )));
    };
    let command_id = inv.command_id.clone();
    let cmd = run
        .store
        .read(move |c| commands::get(c, &command_id))
        .await?;
    let selector = inv
        .targets
        .as_deref()
        .map(Selector::from_json)
        .transpose()?;
    let want = Want {
        ids: inv.instance_ids.clone(),
        selector,
        max: MAX_INVOKER_INSTANCES,
    };
    let o = Overrides {
        username: (!inv.username.is_empty()).then(|| inv.username.clone()),
        rate: RateControl {
            max_concurrency: inv.max_concurrency.clone(),
            max_errors: inv.max_errors.clone(),
        },
        webhook: invoker_webhook(run, &inv.id).await?,
        invoker_id: Some(inv.id.clone()),
        ..Overrides::default()
    };
    let p = plan(
        run,
        TRIGGER_ACTION.policy_name(),
        cmd,
        false,
        want,
        o,
        inv.parameters.clone(),
        Source::Invoker,
    )
    .await?;
    let checks = p.checks(&run.gate);
    let decided = gate::authorize(&grants, &checks, p)?;
    let (ivk_id, when) = (inv.id.clone(), now_ms());
    let also: AlsoWrite = Box::new(move |c, inv_id| {
        let rec = Record {
            invoker_id: ivk_id.clone(),
            invoke_ms: when,
            reason,
            invocation_id: inv_id.to_string(),
            result: String::new(),
        };
        invokers::claim(c, &ivk_id, at, &rec)
    });
    start(run, decided, Some(also)).await
}

/// An invoker's webhook, which every invocation it starts gets a copy of.
async fn invoker_webhook(run: &Runner, invoker_id: &str) -> R<Option<crate::notify::Webhook>> {
    let id = invoker_id.to_string();
    let Some(row) = run
        .store
        .read(move |c| crate::store::webhooks::get(c, &id))
        .await?
    else {
        return Ok(None);
    };
    match crate::notify::Webhook::open(&run.secrets, &row) {
        Ok(w) => Ok(Some(w)),
        // A key that does not decrypt must not stop the schedule: the run
        // goes ahead, unnotified, and the log says why.
        Err(e) => {
            tracing::error!(invoker = %invoker_id, "invoker webhook: {e}");
            Ok(None)
        }
    }
}
