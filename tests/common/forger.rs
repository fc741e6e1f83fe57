//! A test client that is an instance's "agent": it registers with a real
//! identity and speaks the real protocol over a real connection, so tests
//! can send what a compromised or broken agent would.

use std::sync::Arc;
use std::time::Duration;

use drover::agent::identity::Key;
use drover::agent::link::{self, Endpoint, Ws};
use drover::protocol::{self, AgentMsg, MachineInfo, ServerMsg};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::Harness;

const T30: Duration = Duration::from_secs(30);

/// A registered instance whose "agent" is this test.
pub struct Forger {
    pub ws: Ws,
    pub instance_id: String,
    _dir: tempfile::TempDir,
}

/// Registers a new instance with the harness's register code (announcing
/// every feature of this build) and completes the handshake.
pub async fn register(h: &Harness) -> Forger {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::load_or_generate(dir.path()).unwrap();
    let (fp, secret) = protocol::parse_register_code(&h.code_value).unwrap();
    let tls = drover::tls::Trust::pinned_hex(fp)
        .unwrap()
        .client_config()
        .unwrap();
    let ep = Endpoint::parse(&h.url()).unwrap();
    let (mut ws, _) = link::connect(&ep, Arc::new(tls)).await.unwrap();
    let machine = MachineInfo {
        hostname: "forger".into(),
        system_name: "Linux".into(),
        command_types: vec!["SHELL".into()],
        ..MachineInfo::default()
    };
    let welcome = link::handshake(&mut ws, |nonce| {
        key.register(nonce, secret, machine, Vec::new())
    })
    .await
    .unwrap();
    Forger {
        ws,
        instance_id: welcome.instance_id,
        _dir: dir,
    }
}

impl Forger {
    pub async fn send(&mut self, msg: AgentMsg) {
        link::send(&mut self.ws, &msg).await.unwrap();
    }

    /// Server messages received within `wait`.
    pub async fn received(&mut self, wait: Duration) -> Vec<ServerMsg> {
        let mut out = Vec::new();
        while let Ok(Some(Ok(m))) = tokio::time::timeout(wait, self.ws.next()).await {
            if let Message::Text(t) = m {
                out.push(serde_json::from_str(&t).unwrap());
            }
        }
        out
    }

    pub async fn run_task(&mut self) -> String {
        loop {
            let m = tokio::time::timeout(T30, self.ws.next()).await;
            if let Ok(Some(Ok(Message::Text(t)))) = m {
                if let ServerMsg::RunTask(spec) = serde_json::from_str(&t).unwrap() {
                    return spec.task_id;
                }
            } else {
                assert!(m.is_ok(), "no RunTask within {T30:?}");
            }
        }
    }
}
