//! Interactive sessions (issue 11): a terminal on an instance through its
//! agent, from the browser or from ssh.
//!
//! `record` keeps every session's recording on the server (the hub calls
//! it with what it relays) and `asciicast` turns a recording into an
//! asciicast v2 file. The hub itself (`Sessions`) is documented where it
//! is defined.

pub mod asciicast;
pub mod record;
