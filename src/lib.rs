//! drover: a self-hosted automation assistant with a Tencent Cloud TAT
//! compatible API. One binary is both the control plane and the agent.
//!
//! Module map (dependencies point downwards only):
//!
//! ```text
//! cli ─────► server (wiring) ─► api, web, scheduler, notify
//!  │                             │          │
//!  │                             ▼          ▼
//!  │                             run (plans, start, invoker triggers)
//!  │                             │
//!  │                             ├─► gate (grants, resources, Authorized<T>)
//!  │                             │     └─► policy (pure: the action table)
//!  │                             ├─► dispatch (agents, roll-out, task ends)
//!  │                             │   session (interactive sessions: decide,
//!  │                             │   hub, relay over dispatch's channels)
//!  ├─► ssh (gateway) ──► api          │
//!  ├─► agent (link, exec, journal)    ▼
//!  │                             store (SQLite, the only SQL)
//!  └─► client (signed API calls)
//!
//! shared leaves: protocol (server⇄agent messages), sign (TC3-HMAC-SHA256),
//!                tls, crypto (secrets at rest), ids, timefmt, fsutil, iprange,
//!                metrics (Prometheus counters and histograms, atomics),
//!                library (the public commands and scenes, embedded),
//!                sshkey (ssh public keys: parsing, fingerprints)
//! ```
//!
//! * `ssh` is the ssh gateway (`--ssh-listen`): people sign in with the
//!   keys and passwords `api` knows and get sessions through `session`.
//! * `api` turns HTTP requests into principals and actions (TAT, and CAM for
//!   access management, on one endpoint), and is the only place domain
//!   errors become TAT and CAM error codes.
//! * `policy` decides who may do what: CAM documents, presets, Azure roles;
//!   pure and synchronous.
//! * `dispatch` owns live agent connections, pushes tasks and applies results;
//!   `dispatch::rollout` releases rate-controlled tasks in waves as others end.
//! * `gate` loads what applies to a caller, names resources with their tags
//!   and builds `Authorized<T>`, the proof handlers and `run::start` take.
//! * `run` is below api and scheduler: a run's plan (command row, resolved
//!   instances, secrets), its checks, its start; and invoker triggers,
//!   decided again against their creator's policy at every firing.
//! * `scheduler` fires TAT invokers when due through `run::fire`; it knows
//!   nothing of the API.
//! * `notify` queues a webhook notification when an invocation ends (hooked
//!   from dispatch inside the transaction that ends its last task) and sends
//!   it, signed, with retries.
//! * `store` owns the database: numbered migrations, one batching writer.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod crypto;
pub mod dispatch;
pub mod fsutil;
pub mod gate;
pub mod ids;
pub mod iprange;
pub mod library;
pub mod metrics;
pub mod netguard;
pub mod notify;
pub mod policy;
pub mod protocol;
pub mod run;
pub mod scheduler;
pub mod server;
pub mod session;
pub mod sign;
pub mod ssh;
pub mod sshkey;
pub mod store;
pub mod timefmt;
pub mod tls;
pub mod upkeep;
pub mod web;
