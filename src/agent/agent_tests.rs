//! The whole agent against a minimal in-test server speaking the protocol
//! over real TLS and WebSocket: registration, a task, ack, reconnect with
//! Hello, and a fatal rejection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::protocol::{ServerMsg, TaskSpec};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

type ServerWs =
    tokio_tungstenite::WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

async fn accept(listener: &TcpListener, acceptor: &tokio_rustls::TlsAcceptor) -> ServerWs {
    let (tcp, _) = listener.accept().await.unwrap();
    let tls = acceptor.accept(tcp).await.unwrap();
    tokio_tungstenite::accept_async(tls).await.unwrap()
}

async fn send(ws: &mut ServerWs, m: &ServerMsg) {
    ws.send(Message::text(serde_json::to_string(m).unwrap()))
        .await
        .unwrap();
}

async fn recv(ws: &mut ServerWs) -> AgentMsg {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn registers_runs_a_task_reconnects_with_hello_and_stops_on_rejection() {
    let tmp = tempfile::tempdir().unwrap();
    let ident = crate::tls::load_or_generate(&tmp.path().join("server")).unwrap();
    let fp = ident.fingerprint();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ident.server_config().unwrap()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let data_dir = tmp.path().join("agent");
    let cfg = Config {
        data_dir: data_dir.clone(),
        server: Some(format!("https://127.0.0.1:{port}")),
        register_code: Some(protocol::format_register_code(&fp, "s3cret")),
        ca_file: None,
        tags: vec![protocol::AgentTag {
            key: "env".into(),
            value: "prod".into(),
        }],
        max_tasks: 32,
        task_cgroups: true,
    };
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(run(cfg.clone(), shutdown.clone()));

    // 1. Registration.
    let mut ws = accept(&listener, &acceptor).await;
    send(
        &mut ws,
        &ServerMsg::Challenge {
            nonce: "bm9uY2Ux".into(),
        },
    )
    .await;
    let AgentMsg::Register {
        register_code,
        public_key,
        signature,
        machine,
        tags,
        ..
    } = recv(&mut ws).await
    else {
        panic!("expected Register")
    };
    assert_eq!(register_code, "s3cret");
    assert_eq!(tags.len(), 1);
    assert_eq!(
        (tags[0].key.as_str(), tags[0].value.as_str()),
        ("env", "prod")
    );
    assert_eq!(machine.local_ip, "127.0.0.1");
    assert!(machine.command_types.contains(&"SHELL".to_string()));
    let msg = protocol::auth_message("bm9uY2Ux", &protocol::register_claim(&public_key));
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ED25519,
        B64.decode(&public_key).unwrap(),
    )
    .verify(&msg, &B64.decode(signature).unwrap())
    .unwrap();
    send(
        &mut ws,
        &ServerMsg::Welcome {
            instance_id: "mi-test".into(),
            heartbeat_secs: None,
        },
    )
    .await;

    // 2. A task, run once even if pushed twice.
    let spec = TaskSpec {
        task_id: "invt-1".into(),
        invocation_id: "inv-1".into(),
        command_type: "SHELL".into(),
        content: B64.encode("echo hello"),
        timeout: 10,
        working_directory: "/tmp".into(),
        username: String::new(),
        mask: Vec::new(),
    };
    send(&mut ws, &ServerMsg::RunTask(spec.clone())).await;
    send(&mut ws, &ServerMsg::RunTask(spec)).await;
    let mut output = Vec::new();
    loop {
        match recv(&mut ws).await {
            AgentMsg::Output { data, .. } => output.extend(B64.decode(data).unwrap()),
            AgentMsg::TaskFinished { outcome, .. } => {
                assert_eq!(outcome, crate::protocol::Outcome::Success);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(output, b"hello\n");
    let state = identity::State::load(&data_dir).unwrap().unwrap();
    assert_eq!(state.instance_id, "mi-test");
    assert_eq!(state.fingerprint.as_deref(), Some(fp.as_str()));

    // 3. Drop the connection before acking: the agent comes back with Hello,
    //    lists the task, and resends its output and result.
    drop(ws);
    let mut ws = accept(&listener, &acceptor).await;
    send(
        &mut ws,
        &ServerMsg::Challenge {
            nonce: "bm9uY2Uy".into(),
        },
    )
    .await;
    let AgentMsg::Hello {
        instance_id,
        known_tasks,
        ..
    } = recv(&mut ws).await
    else {
        panic!("expected Hello")
    };
    assert_eq!(instance_id, "mi-test");
    assert_eq!(known_tasks, vec!["invt-1".to_string()]);
    send(
        &mut ws,
        &ServerMsg::Welcome {
            instance_id: "mi-test".into(),
            heartbeat_secs: None,
        },
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        AgentMsg::Output { offset: 0, .. }
    ));
    assert!(matches!(recv(&mut ws).await, AgentMsg::TaskFinished { .. }));
    send(
        &mut ws,
        &ServerMsg::Ack {
            task_id: "invt-1".into(),
        },
    )
    .await;
    // The agent applies the Ack asynchronously: wait for its effect.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while data_dir.join("journal").join("invt-1").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "ack must clear the journal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    agent.await.unwrap().unwrap();

    // 4. A rejected Hello is fatal, not retried.
    let agent = tokio::spawn(run(cfg, CancellationToken::new()));
    let mut ws = accept(&listener, &acceptor).await;
    send(
        &mut ws,
        &ServerMsg::Challenge {
            nonce: "bm9uY2Uz".into(),
        },
    )
    .await;
    assert!(matches!(recv(&mut ws).await, AgentMsg::Hello { .. }));
    send(
        &mut ws,
        &ServerMsg::Rejected {
            code: "InstanceDeregistered".into(),
            message: "gone".into(),
        },
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), "Agent.Rejected", "{err}");
}
