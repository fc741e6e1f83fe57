//! The versioned messages between server and agent, shared by both sides.
//!
//! One WebSocket over TLS carries everything, agent-initiated, at `/agent/ws`.
//! Frames are JSON text, one message each, tagged by `"type"`.
//!
//! Handshake (every connection):
//! 1. server → `Challenge { nonce }` (32 random bytes, base64).
//! 2. agent → `Register` (first time, with a register code) or `Hello` (known
//!    instance). Both carry an Ed25519 signature over [`auth_message`], which
//!    proves the agent holds the private key whose public half it registered.
//! 3. server → `Welcome { instance_id }` or `Rejected { code, message }` and close.
//!
//! After `Welcome` the server pushes `RunTask`/`CancelTask`/`Ack`; the agent
//! streams `TaskStarted`, `Output` and `TaskFinished`, and sends `Heartbeat`.
//!
//! Job control (`SuspendTask`/`ResumeTask`, answered by `TaskSuspended`,
//! `TaskResumed` or `TaskControlFailed`) came later. An agent built before it
//! drops the connection on a message type it does not know, so the server
//! sends these only to agents whose `Register`/`Hello` lists
//! [`FEATURE_JOB_CONTROL`]; agents from this version on skip unknown server
//! messages (`ServerMsg::Unknown`), and the server always skipped unknown
//! agent messages, so later additions need no such flag.
//! Output is addressed by byte offset so that a resend after a reconnect is
//! idempotent: the server keeps only bytes beyond what it already holds.
//!
//! Interactive sessions (agents listing [`FEATURE_SESSIONS`]): the server
//! sends `SessionOpen` on a channel number it chooses, the agent answers
//! `SessionOpened` or `SessionFailed`; `SessionResize`, `SessionEof`,
//! `SessionClose` follow from the server, `SessionExit` ends it from the
//! agent. Terminal bytes travel as binary WebSocket frames
//! ([`encode_data`]: the channel as a big-endian u32, then raw bytes), in
//! both directions, never as JSON. Each side grants the other credit
//! (`SessionCredit`) as it passes data on ([`SESSION_WINDOW`]), so a
//! session's bytes in flight are bounded and tasks, heartbeats and other
//! sessions share the connection fairly. Sessions are not journaled: they
//! end with the connection.

use serde::{Deserialize, Serialize};

/// Bumped when a message changes incompatibly; sent in `Register`/`Hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Path of the agent endpoint on the server.
pub const AGENT_PATH: &str = "/agent/ws";

/// Seconds between agent heartbeats unless the server's `Welcome` says
/// otherwise. The server drops (and shows Offline) an agent it has not heard
/// from for [`MISSED_HEARTBEATS`] periods, so a frozen agent (SIGSTOP, a
/// hung VM) is noticed even though its TCP connection stays open.
pub const HEARTBEAT_SECS: u64 = 20;

/// Heartbeat periods of silence after which either side gives the link up.
pub const MISSED_HEARTBEATS: u32 = 3;

/// Tasks an agent runs at once unless told otherwise (`--max-tasks`); the
/// server sends no more than this (or its own `--agent-slots`, if lower)
/// and keeps the rest queued in its database.
pub const DEFAULT_MAX_TASKS: u32 = 32;

/// Latest plausible time in a message (2100-01-01, unix ms): anything later
/// (or negative) is refused rather than folded into a deadline.
pub const MAX_TIME_MS: i64 = 4_102_444_800_000;

/// Largest output offset or length the server accepts for one task (1 TiB):
/// keeps every sum of offsets and lengths far from i64 overflow.
pub const MAX_OUTPUT_LEN: u64 = 1 << 40;

/// Listed in `features` by agents that understand `SuspendTask`/`ResumeTask`.
pub const FEATURE_JOB_CONTROL: &str = "job-control";

/// Listed by agents that open interactive sessions (`SessionOpen` and the
/// binary data frames); the server opens sessions only on those.
pub const FEATURE_SESSIONS: &str = "sessions";

/// Listed by agents that take `ForwardOpen` (port forwards on session
/// channels).
pub const FEATURE_FORWARD: &str = "forward";

/// Listed by agents that forward an ssh client's agent into a session
/// (`SessionOpen.agent_forward`, `AuthAgentConnect`, `AuthAgentChannel`).
pub const FEATURE_AGENT_FORWARD: &str = "agent-forward";

/// What this agent build announces in `Register`/`Hello`.
pub fn agent_features() -> Vec<String> {
    vec![
        FEATURE_JOB_CONTROL.to_string(),
        FEATURE_SESSIONS.to_string(),
        FEATURE_FORWARD.to_string(),
        FEATURE_AGENT_FORWARD.to_string(),
    ]
}

/// Bytes of session output the server lets an agent send ahead of its
/// credits (`SessionOpen.window`), and of input the agent lets the server
/// send (`SessionOpened.window`): like an SSH channel window, each side
/// grants more (`SessionCredit`) as it passes data on, so one busy session
/// holds at most this much in flight and cannot starve the others.
pub const SESSION_WINDOW: u32 = 1 << 20;

/// Largest data payload in one binary frame.
pub const SESSION_CHUNK: usize = 64 << 10;

/// A binary frame of session data: the channel (u32, big-endian) the server
/// assigned in `SessionOpen`, then raw terminal bytes. No JSON, no base64.
pub fn encode_data(channel: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + data.len());
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// The channel and payload of a binary frame; None when it is too short.
pub fn decode_data(frame: &[u8]) -> Option<(u32, &[u8])> {
    let (head, data) = frame.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), data))
}

/// The bytes an agent signs to prove key possession: binds the signature to
/// this server's nonce and to the identity being claimed.
pub fn auth_message(nonce_b64: &str, claim: &str) -> Vec<u8> {
    format!("drover-agent-auth-v1\n{nonce_b64}\n{claim}").into_bytes()
}

/// What a `Register` signature claims: the register code id is not known to
/// the agent, so it binds to its public key instead.
pub fn register_claim(public_key_b64: &str) -> String {
    format!("register:{public_key_b64}")
}

/// What a `Hello` signature claims.
pub fn hello_claim(instance_id: &str) -> String {
    format!("hello:{instance_id}")
}

/// Facts about the machine, sent at registration and refreshed on every hello.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MachineInfo {
    pub hostname: String,
    pub machine_id: String,
    pub local_ip: String,
    /// "Linux" or "Windows", as TAT reports SystemName.
    pub system_name: String,
    pub agent_version: String,
    /// Command types this agent can run (SHELL, PYTHON, POWERSHELL, BAT).
    pub command_types: Vec<String>,
}

/// Most tags one list may hold (CreateCommand's Tags, a register code's, an
/// agent's `--tag` flags): one rule on every side.
pub const MAX_TAGS: usize = 10;

/// What is wrong with a list of tag keys, if anything.
pub fn tag_keys_problem<'a>(keys: impl ExactSizeIterator<Item = &'a str>) -> Option<String> {
    let n = keys.len();
    if n > MAX_TAGS {
        return Some(format!("at most {MAX_TAGS} tags are allowed, not {n}"));
    }
    let mut keys = keys;
    keys.any(str::is_empty)
        .then(|| "a tag key must not be empty".to_string())
}

/// One tag an agent asks for at registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentTag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum AgentMsg {
    Register {
        protocol: u32,
        /// The secret part of the register code value (after `::`).
        register_code: String,
        /// Raw 32-byte Ed25519 public key, base64.
        public_key: String,
        /// Signature over `auth_message(nonce, register_claim(public_key))`, base64.
        signature: String,
        machine: MachineInfo,
        /// The agent's `--tag key=value` flags. Read at registration only:
        /// a `Hello` never changes an instance's tags. Absent from older
        /// agents, and omitted when empty, so either side may be older.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<AgentTag>,
        /// Optional protocol features (e.g. [`FEATURE_JOB_CONTROL`]); absent
        /// from agents older than the feature list.
        #[serde(default)]
        features: Vec<String>,
        /// Most tasks this agent runs at once (absent from older agents:
        /// the server's own limit applies).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_tasks: Option<u32>,
    },
    Hello {
        protocol: u32,
        instance_id: String,
        /// Signature over `auth_message(nonce, hello_claim(instance_id))`, base64.
        signature: String,
        machine: MachineInfo,
        /// Tasks the agent's journal holds (running or finished but not yet
        /// acknowledged): the server reconciles its own view against this list.
        known_tasks: Vec<String>,
        #[serde(default)]
        features: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_tasks: Option<u32>,
    },
    Heartbeat,
    TaskStarted {
        task_id: String,
        /// Unix milliseconds.
        started_at: i64,
    },
    Output {
        task_id: String,
        /// Byte offset of `data` within the task's whole output.
        offset: u64,
        /// Base64 bytes; never splits a UTF-8 sequence.
        data: String,
    },
    TaskFinished {
        task_id: String,
        outcome: Outcome,
        /// None when the process never started or was killed by a signal.
        exit_code: Option<i64>,
        started_at: i64,
        ended_at: i64,
        /// Total bytes of output produced; the server checks it holds them
        /// all and shows the output as incomplete (with the missing count)
        /// when it does not.
        output_len: u64,
        /// Human-readable reason for START_FAILED, TIMEOUT, TERMINATED, e.g.
        /// processes that survived SIGKILL.
        error_info: String,
    },
    /// The task's process group is stopped (SIGSTOP), and its timeout clock
    /// with it. Sent in answer to `SuspendTask`, and again after a reconnect
    /// for every task still suspended.
    TaskSuspended {
        task_id: String,
        /// Unix milliseconds when the group was stopped.
        at: i64,
    },
    /// The task's process group runs again (SIGCONT). Sent in answer to
    /// `ResumeTask`, and after a reconnect for every running task that is
    /// not suspended, so a confirmation lost with a connection is repaired.
    TaskResumed {
        task_id: String,
        at: i64,
    },
    /// A `SuspendTask`/`ResumeTask` could not be applied: the task is not
    /// running here (finished, finishing or unknown) or the signal failed.
    TaskControlFailed {
        task_id: String,
        reason: String,
    },
    /// When each stage of a task happened on the agent (unix microseconds),
    /// sent just before its `TaskFinished`. Best effort: never journaled
    /// nor resent, and older servers skip it as an unknown message. Feeds
    /// the server's per-stage metrics (`drover_task_stage_seconds`).
    TaskTimings {
        task_id: String,
        timings: TaskTimings,
    },
    /// The session's process runs; the server may send up to `window`
    /// bytes of input before it is granted more.
    SessionOpened {
        channel: u32,
        pid: u32,
        window: u32,
    },
    /// The session could not start (unknown user, no login shell, ...).
    SessionFailed {
        channel: u32,
        reason: String,
    },
    /// The agent wrote this many input bytes to the terminal: the server
    /// may send as many more.
    SessionCredit {
        channel: u32,
        bytes: u32,
    },
    /// The session's process ended (after its last output frame); every
    /// process it started has been killed.
    SessionExit {
        channel: u32,
        code: Option<i32>,
        signal: Option<i32>,
        /// Set when the agent ended it (closed by the server, link lost).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// A process of session `channel` connected to the session's
    /// forwarded-agent socket (`SSH_AUTH_SOCK`); `request` numbers the
    /// connection on this session until the server answers it with
    /// `AuthAgentChannel`.
    AuthAgentConnect {
        channel: u32,
        request: u32,
    },
}

/// Stage stamps of one task on the agent, unix microseconds (0: did not
/// happen, e.g. no output or a process that never started).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskTimings {
    /// The `RunTask` was read from the connection.
    pub received: i64,
    /// The task was in the journal.
    pub journaled: i64,
    /// The process was spawned.
    pub spawned: i64,
    /// The first output bytes were read.
    #[serde(default)]
    pub first_output: i64,
    /// The process exited and its output was drained.
    pub exited: i64,
    /// The result was journaled and queued for sending.
    pub finished: i64,
}

/// How a task ended, as the agent saw it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Success,
    /// Non-zero exit or killed by a signal not of our making.
    Failed,
    /// Killed because it ran past its timeout.
    Timeout,
    /// Killed by a cancel request.
    Terminated,
    /// Could not be started (bad user, directory, interpreter ...).
    StartFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerMsg {
    Challenge {
        nonce: String,
    },
    Welcome {
        instance_id: String,
        /// Seconds between heartbeats the server expects (absent from older
        /// servers: [`HEARTBEAT_SECS`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_secs: Option<u64>,
    },
    Rejected {
        code: String,
        message: String,
    },
    RunTask(TaskSpec),
    CancelTask {
        task_id: String,
    },
    /// The server has durably stored the task's result; the agent may forget it.
    Ack {
        task_id: String,
    },
    /// Stop the task's whole process group and pause its timeout.
    SuspendTask {
        task_id: String,
    },
    /// Continue a suspended task's process group.
    ResumeTask {
        task_id: String,
    },
    /// Start an interactive session: a login shell (or `command` through
    /// the user's shell) in a pseudo-terminal, as `user` (empty: the
    /// agent's own). Sent only to agents listing [`FEATURE_SESSIONS`].
    SessionOpen {
        channel: u32,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        cols: u16,
        rows: u16,
        /// Output bytes the agent may send before it is granted more.
        window: u32,
        /// TERM for the session (e.g. xterm-256color).
        term: String,
        /// Run `command` with pipes instead of a terminal (ssh exec without
        /// a pty: output byte for byte, stdout and stderr together; EOF
        /// closes its stdin).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pipes: bool,
        /// Give the session an ssh-agent socket (`SSH_AUTH_SOCK`) whose
        /// connections the server carries to the ssh client's agent. Sent
        /// only to agents listing [`FEATURE_AGENT_FORWARD`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        agent_forward: bool,
    },
    /// The answer to `AuthAgentConnect`: the connection `request` of
    /// session `channel` is carried on `data_channel` (relayed like a port
    /// forward: the agent answers `SessionOpened` with pid 0, then binary
    /// frames and credit both ways, `SessionExit` at the end), or, when
    /// `data_channel` is None, refused and to be closed.
    AuthAgentChannel {
        channel: u32,
        request: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_channel: Option<u32>,
        /// Bytes the agent may send before it is granted more.
        #[serde(default)]
        window: u32,
    },
    /// Open a port forward on a session channel: the agent connects to
    /// `host`:`port` from the instance and relays the connection's bytes
    /// like a session's (binary frames, credit both ways); it answers
    /// `SessionOpened` (pid 0) or `SessionFailed`, and ends it with
    /// `SessionExit`. Sent only to agents listing [`FEATURE_FORWARD`].
    ForwardOpen {
        channel: u32,
        host: String,
        port: u16,
        /// Bytes the agent may send before it is granted more.
        window: u32,
    },
    SessionResize {
        channel: u32,
        cols: u16,
        rows: u16,
    },
    /// The client passed on this many output bytes: the agent may send as
    /// many more.
    SessionCredit {
        channel: u32,
        bytes: u32,
    },
    /// The client's input ended (the terminal's EOF character is sent).
    SessionEof {
        channel: u32,
    },
    /// End the session: every process it started is killed, and the agent
    /// answers with `SessionExit`.
    SessionClose {
        channel: u32,
        reason: String,
    },
    /// Any message type this agent does not know (sent by a newer server):
    /// ignored rather than fatal.
    #[serde(other)]
    Unknown,
}

/// Everything an agent needs to run one task. `content` is the final script,
/// parameters already substituted. Its Debug shows neither the script nor
/// the mask values: both may hold secrets.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskSpec {
    pub task_id: String,
    pub invocation_id: String,
    /// SHELL, POWERSHELL, BAT or PYTHON.
    pub command_type: String,
    /// Base64 script.
    pub content: String,
    /// Seconds.
    pub timeout: u64,
    /// Empty: the user's home directory (root: /root).
    pub working_directory: String,
    /// Empty: the agent's own user.
    pub username: String,
    /// Values (secrets) the agent replaces with `******` in the task's
    /// output before journaling or sending it. Absent for older servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mask: Vec<String>,
}

impl std::fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSpec")
            .field("task_id", &self.task_id)
            .field("invocation_id", &self.invocation_id)
            .field("command_type", &self.command_type)
            .field(
                "content",
                &format_args!("<{} bytes of base64>", self.content.len()),
            )
            .field("timeout", &self.timeout)
            .field("working_directory", &self.working_directory)
            .field("username", &self.username)
            .field("mask", &format_args!("<{} values>", self.mask.len()))
            .finish()
    }
}

/// Shortest value worth masking: replacing every "a" or "1" in an output
/// would wreck it while hiding nothing. Shorter secrets are delivered but
/// not masked (the server does not even send them as mask values).
pub const MIN_MASK_LEN: usize = 4;

/// Formats a register code value: `drv1.<server cert SHA-256 hex>.<secret>`.
/// Carrying the fingerprint lets one command line both find and verify the
/// server, as k3s join tokens carry their CA hash.
pub fn format_register_code(fingerprint_hex: &str, secret: &str) -> String {
    format!("drv1.{fingerprint_hex}.{secret}")
}

/// Splits a register code value into (fingerprint hex, secret).
pub fn parse_register_code(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().splitn(3, '.');
    let (Some("drv1"), Some(fp), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let fp_ok = fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = !secret.is_empty() && !secret.contains('.');
    (fp_ok && secret_ok).then_some((fp, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_type_tags() {
        let m = AgentMsg::Output {
            task_id: "invt-1".into(),
            offset: 5,
            data: "aGk=".into(),
        };
        let s = serde_json::to_string(&m).unwrap_or_default();
        assert!(s.contains("\"type\":\"Output\""), "{s}");
        let back: AgentMsg = serde_json::from_str(&s).unwrap_or(AgentMsg::Heartbeat);
        assert_eq!(back, m);
        let r = ServerMsg::RunTask(TaskSpec {
            task_id: "invt-1".into(),
            invocation_id: "inv-1".into(),
            command_type: "SHELL".into(),
            content: "dHJ1ZQ==".into(),
            timeout: 60,
            working_directory: String::new(),
            username: String::new(),
            mask: Vec::new(),
        });
        let s = serde_json::to_string(&r).unwrap_or_default();
        assert!(s.contains("\"type\":\"RunTask\""), "{s}");
        assert!(!s.contains("mask"), "an empty mask is not sent: {s}");
        let ServerMsg::RunTask(mut spec) = r else {
            unreachable!()
        };
        spec.mask = vec!["hunter2-x".into()];
        let shown = format!("{:?}", ServerMsg::RunTask(spec));
        assert!(
            !shown.contains("hunter2") && !shown.contains("dHJ1ZQ=="),
            "{shown}"
        );
    }

    #[test]
    fn unknown_server_messages_parse_and_features_default_to_none() {
        let m: ServerMsg =
            serde_json::from_str(r#"{"type":"FutureThing","x":1}"#).unwrap_or(ServerMsg::Ack {
                task_id: String::new(),
            });
        assert_eq!(m, ServerMsg::Unknown);
        let s = serde_json::to_string(&ServerMsg::SuspendTask {
            task_id: "invt-1".into(),
        })
        .unwrap_or_default();
        assert_eq!(s, r#"{"type":"SuspendTask","task_id":"invt-1"}"#);
        // A Hello from an agent that predates the feature list.
        let old = r#"{"type":"Hello","protocol":1,"instance_id":"mi-1","signature":"",
            "machine":{"hostname":"h","machine_id":"m","local_ip":"","system_name":"Linux",
            "agent_version":"0","command_types":[]},"known_tasks":[]}"#;
        match serde_json::from_str::<AgentMsg>(old) {
            Ok(AgentMsg::Hello { features, .. }) => assert!(features.is_empty()),
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn register_codes_round_trip() {
        let fp = "ab".repeat(32);
        let v = format_register_code(&fp, "s3cret_-x");
        assert_eq!(parse_register_code(&v), Some((fp.as_str(), "s3cret_-x")));
        assert_eq!(parse_register_code("drv1.abc.s"), None);
        assert_eq!(parse_register_code(&format!("drv2.{fp}.s")), None);
        assert_eq!(parse_register_code(&format!("drv1.{fp}.")), None);
    }

    #[test]
    fn auth_messages_bind_nonce_and_claim() {
        assert_ne!(
            auth_message("n1", "hello:mi-1"),
            auth_message("n2", "hello:mi-1")
        );
        assert_ne!(
            auth_message("n1", "hello:mi-1"),
            auth_message("n1", "hello:mi-2")
        );
    }
}
