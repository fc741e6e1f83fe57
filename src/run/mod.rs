//! Running commands, below the API and the scheduler: what a run is (a
//! `Plan`: the command row, its parameters, the secrets its content names
//! and the resolved instances), how it is decided (`Plan::checks`, by the
//! gate) and how the decided plan is written and handed to dispatch
//! (`start`). RunCommand, InvokeCommand and an invoker's trigger all come
//! here; a trigger is decided again, at every firing, against its creator's
//! policy of that moment (`trigger`).
//!
//! Nothing is read twice between the decision and the write: the plan
//! holds the command row as read, and `start` writes and delivers exactly
//! that content, with exactly the secrets decided.

pub mod error;
pub mod params;
pub mod secrets;
pub mod settings;
mod start;
pub mod targets;
mod trigger;

use std::sync::Arc;

pub use error::{RunError, R};
pub use start::{plan, start, AlsoWrite, Overrides, Plan, Source, Want};
pub use trigger::{fire, MAX_INVOKER_INSTANCES};

use crate::crypto::SecretBox;
use crate::dispatch::Dispatcher;
use crate::gate::Gate;
use crate::store::Store;

/// What starting a run needs: the store, the key that seals scripts and
/// webhook keys, dispatch, and the gate (triggers are decided here).
pub struct Runner {
    pub store: Store,
    pub secrets: Arc<SecretBox>,
    pub dispatch: Arc<Dispatcher>,
    pub gate: Arc<Gate>,
}
