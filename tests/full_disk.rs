//! A really full disk under the server: `drover server` as its own process
//! with its data directory on a small tmpfs that the test fills to the last
//! block, so SQLite's commits fail with ENOSPC as on a production disk. (Not
//! allowed to mount, e.g. not root, the test uses the store's fault seam
//! instead, `DROVER_FAULT_STORE_FULL=<trigger file>`, and says so.)
//!
//! What must hold (issue 9, "never acknowledge what was not stored"): while
//! the disk is full the agent keeps every result; once space returns, with
//! a server kill -9 and restart in between or without one, each task has run
//! once, ends SUCCESS with exit 0, and its whole output is stored and
//! Complete. The server's log must show that writes really failed, so the
//! test cannot pass without the fault.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{b64, new_client, spawn_agent, unb64, wait_for, Agent, Client};
use serde_json::{json, Value};

const T60: Duration = Duration::from_secs(60);
const T120: Duration = Duration::from_secs(120);

/// A tmpfs mounted for the test, unmounted (lazily, so a process still
/// holding a file cannot keep it) however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// How the disk is made full: the real thing, or the store's seam.
enum Full {
    Tmpfs { filler: PathBuf },
    Seam { trigger: PathBuf },
}

impl Full {
    /// Takes every free block (or arms the seam).
    fn fill(&self) {
        match self {
            Full::Tmpfs { filler } => {
                let mut f = std::fs::File::create(filler).unwrap();
                // Big writes first, then ever smaller ones, to the last block.
                let mut chunk = 1 << 20;
                let buf = vec![0u8; chunk];
                while chunk >= 512 {
                    if f.write_all(&buf[..chunk]).is_err() {
                        chunk /= 2;
                    }
                }
                let _ = f.sync_all();
            }
            Full::Seam { trigger } => std::fs::write(trigger, b"full").unwrap(),
        }
    }

    fn free(&self) {
        match self {
            Full::Tmpfs { filler } => std::fs::remove_file(filler).unwrap(),
            Full::Seam { trigger } => std::fs::remove_file(trigger).unwrap(),
        }
    }
}

/// `drover server` as a process (killable with SIGKILL), its log in a file.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    async fn start(data: &Path, listen: &str, log: &Path, seam: Option<&Path>) -> Server {
        let _ = std::fs::remove_file(data.join("server.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
        cmd.args(["server", "--data-dir"])
            .arg(data)
            .args(["--listen", listen])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(t) = seam {
            cmd.env("DROVER_FAULT_STORE_FULL", t);
        }
        let child = cmd.spawn().unwrap();
        let addr = wait_for("the server's address", T60, || async {
            std::fs::read_to_string(data.join("server.addr")).ok()
        })
        .await;
        Server { child, addr }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The (starts, ends) evidence lines a task left in `dir`.
fn evidence(dir: &Path, task: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(dir.join(task)).unwrap_or_default();
    let count = |w: &str| text.lines().filter(|l| *l == w).count();
    (count("start"), count("end"))
}

/// Task ids whose result the agent holds in its journal (not acknowledged).
fn held_results(agent: &Path) -> Vec<String> {
    // Sorted by id.
    drover::agent::journal::held(&agent.join("journal"))
        .unwrap()
        .into_iter()
        .filter_map(|(id, has_result)| has_result.then_some(id))
        .collect()
}

/// Lines of the server's log saying an agent's report could not be stored.
fn refused_writes(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("not stored"))
        .count()
}

async fn task_of(client: &Client, inv: &str) -> Option<Value> {
    let r = client
        .call(
            "DescribeInvocationTasks",
            &json!({"Filters": [{"Name": "invocation-id", "Values": [inv]}], "HideOutput": true}),
        )
        .await
        .ok()?;
    r["InvocationTaskSet"].as_array()?.first().cloned()
}

async fn wait_task(client: &Client, inv: &str, want: &str) -> Value {
    wait_for(&format!("{inv} to be {want}"), T120, || async {
        task_of(client, inv)
            .await
            .filter(|t| t["TaskStatus"] == want)
    })
    .await
}

async fn run_command(client: &Client, instance: &str, script: String) -> String {
    let p = json!({"Content": b64(&script), "InstanceIds": [instance], "Timeout": 120});
    client.call("RunCommand", &p).await.unwrap()["InvocationId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every byte of a task's output, read in 1 MiB slices; and `Complete`.
async fn output(client: &Client, task: &str) -> (Vec<u8>, Value) {
    let mut out = Vec::new();
    loop {
        let r = client
            .call(
                "DescribeInvocationTaskOutput",
                &json!({"InvocationTaskId": task, "Offset": out.len(), "Limit": 1 << 20}),
            )
            .await
            .unwrap();
        let chunk = unb64(r["Output"].as_str().unwrap());
        out.extend_from_slice(&chunk);
        if chunk.is_empty() || out.len() as u64 >= r["TotalSize"].as_u64().unwrap() {
            return (out, r["Complete"].clone());
        }
    }
}

/// Checks one task after the fault: once, SUCCESS, exit 0, `want` bytes of
/// output ('x's and a newline), complete.
async fn check(client: &Client, ev: &Path, t: &Value, want: usize) {
    let id = t["InvocationTaskId"].as_str().unwrap();
    assert_eq!(evidence(ev, id), (1, 1), "{id} must run exactly once: {t}");
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(t["TaskResult"]["ExitCode"], 0, "{t}");
    let (out, complete) = output(client, id).await;
    assert_eq!(out.len(), want, "{t}");
    assert!(out[..want - 1].iter().all(|b| *b == b'x') && out[want - 1] == b'\n');
    assert_eq!(complete, true, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_really_full_disk_acknowledges_nothing_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("disk");
    let log = tmp.path().join("server.log");
    let mounted = Tmpfs::mount(&mnt, "96m");
    let (data, full) = match &mounted {
        Some(_) => {
            println!("full disk: a 96 MiB tmpfs, filled to the last block");
            let filler = mnt.join("filler");
            (mnt.join("server"), Full::Tmpfs { filler })
        }
        None => {
            println!("full disk: cannot mount a tmpfs here; the store's fault seam instead");
            let trigger = tmp.path().join("full");
            (tmp.path().join("server"), Full::Seam { trigger })
        }
    };
    let seam = match &full {
        Full::Seam { trigger } => Some(trigger.clone()),
        Full::Tmpfs { .. } => None,
    };
    let (key_id, key) = drover::cli::admin::create_root_key(&data).unwrap();
    let mut server = Server::start(&data, "127.0.0.1:0", &log, seam.as_deref()).await;
    let cert = data.join("tls").join("cert.pem");
    let client = new_client(&format!("https://{}", server.addr), &key_id, &key, &cert);
    let code = client
        .call("CreateRegisterCode", &json!({"RegisterLimit": 1}))
        .await
        .unwrap()["RegisterCodeValue"]
        .as_str()
        .unwrap()
        .to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    let url = format!("https://{}", server.addr);
    let mut agent = Agent {
        child: Some(spawn_agent(Some(&url), agent_dir.path(), Some(&code))),
        dir: agent_dir,
        instance_id: String::new(),
    };
    let jdir = agent.data_dir().to_path_buf();
    agent.instance_id = wait_for("registration", T60, || async {
        common::saved_instance_id(&jdir)
    })
    .await;
    let id = agent.instance_id.clone();
    wait_for("the agent online", T60, || async {
        let r = client
            .call(
                "DescribeAutomationAgentStatus",
                &json!({"InstanceIds": [id]}),
            )
            .await
            .ok()?;
        (r["AutomationAgentSet"][0]["AgentStatus"] == "Online").then_some(())
    })
    .await;

    // Each task waits for its go file (made once the disk is full), then
    // prints more than the database's write-ahead log holds, so the log has
    // to grow (reusing its old frames would need no new block).
    let ev = tempfile::tempdir().unwrap();
    let e = ev.path().display();
    let size_of_wal = || {
        std::fs::metadata(data.join("drover.db-wal"))
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    };
    let script = |go: &str, bytes: usize| {
        format!(
            "echo start >> {e}/$DROVER_TASK_ID; while [ ! -e {e}/{go} ]; do sleep 0.1; done; \
             head -c {} /dev/zero | tr '\\0' x; echo; echo end >> {e}/$DROVER_TASK_ID",
            bytes - 1
        )
    };
    let instance = agent.instance_id.clone();
    // 1. Full while two tasks print and end; the server is killed and,
    //    with space back, started again.
    let want = size_of_wal() + (2 << 20) + 1;
    let invs = [
        run_command(&client, &instance, script("go1", want)).await,
        run_command(&client, &instance, script("go1", want)).await,
    ];
    let mut ids = Vec::new();
    for inv in &invs {
        let t = wait_task(&client, inv, "RUNNING").await;
        ids.push(t["InvocationTaskId"].as_str().unwrap().to_string());
    }
    ids.sort();
    let refused = refused_writes(&log);
    full.fill();
    std::fs::write(ev.path().join("go1"), b"").unwrap();
    wait_for("both results journaled by the agent", T120, || async {
        (held_results(agent.data_dir()) == ids).then_some(())
    })
    .await;
    wait_for("the server to refuse a write", T60, || async {
        (refused_writes(&log) > refused).then_some(())
    })
    .await;
    // Nothing may be acknowledged meanwhile: the agent still holds both.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        held_results(agent.data_dir()),
        ids,
        "results dropped unstored"
    );
    server.kill9();
    full.free();
    let addr = server.addr.clone();
    let server = Server::start(&data, &addr, &log, seam.as_deref()).await;
    let client = new_client(&format!("https://{}", server.addr), &key_id, &key, &cert);
    for inv in &invs {
        let t = wait_task(&client, inv, "SUCCESS").await;
        check(&client, ev.path(), &t, want).await;
    }

    // 2. Full while a task prints and ends; space comes back, no restart.
    let want = size_of_wal() + (2 << 20) + 1;
    let inv = run_command(&client, &instance, script("go2", want)).await;
    let t = wait_task(&client, &inv, "RUNNING").await;
    let tid = t["InvocationTaskId"].as_str().unwrap().to_string();
    let refused = refused_writes(&log);
    full.fill();
    std::fs::write(ev.path().join("go2"), b"").unwrap();
    wait_for("the result journaled by the agent", T120, || async {
        held_results(agent.data_dir()).contains(&tid).then_some(())
    })
    .await;
    wait_for("the server to refuse a write", T60, || async {
        (refused_writes(&log) > refused).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(held_results(agent.data_dir()).contains(&tid));
    full.free();
    let t = wait_task(&client, &inv, "SUCCESS").await;
    check(&client, ev.path(), &t, want).await;
    drop(server);
    drop(mounted);
}
