//! A terminal client for the session tests: console sign-in over real
//! HTTPS, then the browser's WebSocket (`/console/session`) with the
//! session cookie and this host's Origin, as a browser would open it.
//! Output is collected and searched; every wait has a deadline.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::common::Harness;

pub const ROOT_PASSWORD: &str = "Root-pass-1234";

async fn tls(h: &Harness) -> TlsStream<TcpStream> {
    let fp = &h.server.as_ref().unwrap().fingerprint;
    let cfg = drover::tls::Trust::pinned_hex(fp)
        .unwrap()
        .client_config()
        .unwrap();
    let tcp = TcpStream::connect(h.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Signs in to the console; returns the session cookie (`name=value`) and
/// the CSRF token.
pub async fn sign_in(h: &Harness, user: &str, password: &str) -> (String, String) {
    let body = json!({"UserName": user, "Password": password}).to_string();
    let mut s = tls(h).await;
    let req = format!(
        "POST /console/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.addr,
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply).to_string();
    let cookie = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in {text}"))
        .to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let csrf = v["Response"]["CsrfToken"]
        .as_str()
        .or(v["CsrfToken"].as_str())
        .unwrap_or_default()
        .to_string();
    (cookie, csrf)
}

/// Sets root's console password (in the server's database) and signs in.
pub async fn root_cookie(h: &Harness) -> String {
    drover::cli::admin::set_root_password(&h.data_dir(), ROOT_PASSWORD).unwrap();
    sign_in(h, "root", ROOT_PASSWORD).await.0
}

/// One terminal on `/console/session`.
pub struct Term {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    /// Everything received so far, lossily decoded.
    pub screen: String,
    /// Where the next `expect` starts looking.
    mark: usize,
    /// Control messages received (opened, exit, error).
    pub control: Vec<Value>,
    pub closed: bool,
}

impl Term {
    /// Opens the socket with `query` (e.g. `InstanceId=mi-…&User=root`).
    pub async fn connect(h: &Harness, cookie: &str, query: &str) -> Term {
        let url = format!("wss://{}/console/session?{query}", h.addr);
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut()
            .insert("origin", format!("https://{}", h.addr).parse().unwrap());
        let (ws, _) = tokio_tungstenite::client_async(req, tls(h).await)
            .await
            .unwrap();
        Term {
            ws,
            screen: String::new(),
            mark: 0,
            control: Vec::new(),
            closed: false,
        }
    }

    /// Reads one frame (or times out); false when the socket ended.
    async fn pump(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.ws.next()).await {
            Err(_) => true,
            Ok(Some(Ok(Message::Binary(b)))) => {
                self.screen.push_str(&String::from_utf8_lossy(&b));
                true
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                self.control
                    .push(serde_json::from_str(&t).unwrap_or(Value::Null));
                true
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                self.closed = true;
                false
            }
            Ok(Some(Ok(_))) => true,
        }
    }

    /// Waits for a control message of `kind` ("opened", "exit", "error").
    pub async fn control_of(&mut self, kind: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = self.control.iter().find(|v| v["type"] == kind) {
                return v.clone();
            }
            assert!(
                Instant::now() < deadline && self.pump(deadline).await,
                "no {kind:?} message within {within:?}; got {:?}, screen {:?}",
                self.control,
                self.screen
            );
        }
    }

    /// Waits until the output after the last match contains `needle`.
    pub async fn expect(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.screen[self.mark..].find(needle) {
                self.mark += i + needle.len();
                return;
            }
            assert!(
                Instant::now() < deadline && self.pump(deadline).await,
                "{needle:?} did not appear within {within:?}; screen after mark: {:?}; control {:?}",
                &self.screen[self.mark..],
                self.control
            );
        }
    }

    /// Waits for `prefix` followed by digits (and a non-digit) in the
    /// output, and returns the number: `echo pid-$$` gives the shell's pid
    /// (the typed echo shows `pid-$$`, which has no digits).
    pub async fn number_after(&mut self, prefix: &str, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            let hay = &self.screen[self.mark..];
            let mut from = 0;
            while let Some(i) = hay[from..].find(prefix) {
                let start = from + i + prefix.len();
                let digits: String = hay[start..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let end = start + digits.len();
                if !digits.is_empty() && end < hay.len() {
                    self.mark += end;
                    return digits.parse().unwrap();
                }
                from = start;
            }
            assert!(
                Instant::now() < deadline && self.pump(deadline).await,
                "no {prefix:?}<number> within {within:?}; screen after mark: {:?}",
                &self.screen[self.mark..]
            );
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(bytes.to_vec())).await.unwrap();
    }

    pub async fn type_line(&mut self, line: &str) {
        self.send(format!("{line}\r").as_bytes()).await;
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let m = json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        self.ws.send(Message::Text(m)).await.unwrap();
    }

    /// Reads until the server closes the socket.
    pub async fn until_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.pump(deadline).await {
            assert!(Instant::now() < deadline, "the socket stayed open");
        }
    }

    /// Reads and discards for `d`, counting the output bytes.
    pub async fn drain_for(&mut self, d: Duration) -> u64 {
        let deadline = Instant::now() + d;
        let mut n = 0u64;
        while Instant::now() < deadline && !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => n += b.len() as u64,
                Ok(Some(Ok(Message::Text(t)))) => self
                    .control
                    .push(serde_json::from_str(&t).unwrap_or(Value::Null)),
                Ok(Some(Ok(_))) => {}
                Ok(_) => self.closed = true,
                Err(_) => break,
            }
        }
        n
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Opens a root terminal on `id` and starts a background job; returns the
/// terminal, the shell's pid and the job's pid.
pub async fn shell_with_job(h: &Harness, cookie: &str, id: &str) -> (Term, u32, u32) {
    let t30 = Duration::from_secs(30);
    let mut t = Term::connect(h, cookie, &format!("InstanceId={id}&User=root")).await;
    t.control_of("opened", t30).await;
    t.type_line("echo pid-$$; sleep 777 & echo bg-$!").await;
    let shell = t.number_after("pid-", t30).await;
    let job = t.number_after("bg-", t30).await;
    assert!(alive(shell) && alive(job), "shell {shell}, job {job}");
    (t, shell, job)
}

/// Waits until none of `pids` is alive.
pub async fn all_gone(pids: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "still alive after {within:?}: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pids whose parent is `ppid` (one /proc scan).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(ppid)
        })
        .collect()
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

/// The non-root account the tests log in as; created (with a home and
/// bash) when missing. The tests run as root, as the agent does in
/// production, so it can switch to this user.
pub const TEST_USER: &str = "drover-sess";

pub fn ensure_test_user() -> (u32, u32) {
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, TEST_USER])
            .output()
            .unwrap();
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u32>()
                .unwrap()
        })
    };
    if id("-u").is_none() {
        // Concurrent tests may race to create it: either one wins.
        let _ = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", TEST_USER])
            .status();
    }
    let uid = id("-u").unwrap_or_else(|| panic!("cannot create user {TEST_USER} (run as root)"));
    (uid, id("-g").unwrap())
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
