//! Fault injection: the server or agents killed with SIGKILL in the middle
//! of a fan-out, a full disk, a burst to one agent, an agent frozen past its
//! heartbeat timeout. Every task leaves evidence of each execution on the
//! machine (a line per start and per end in a file named after its
//! DROVER_TASK_ID), and each test counts tasks, lost, duplicated and wrong
//! final states from that evidence against what the API reports.
//!
//! `scripts/fault-fanout` runs the 1,000-task versions of the kill tests and
//! the 3,000-call burst; these tests use fewer tasks to stay quick.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{b64, new_client, spawn_agent, test_settings, wait_for, Agent, Client, Harness};
use serde_json::{json, Value};

/// The fault tests run one at a time: each drives hundreds of processes,
/// and together they would load a 2-core machine past the timings they
/// judge (heartbeats, deadlines), which is not the fault under test.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const T60: Duration = Duration::from_secs(60);

/// A size from the environment (`scripts/fault-fanout` runs the large
/// versions), else the test's quick default.
fn scale(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A script that leaves evidence: "start" when it begins, "end" when it
/// ends, in `<dir>/<task id>`.
fn evidence_script(dir: &Path, body: &str) -> String {
    let f = format!("{}/$DROVER_TASK_ID", dir.display());
    format!("echo start >> {f}; {body}; echo end >> {f}")
}

/// What the machine says happened, per task id: (starts, ends).
fn evidence(dir: &Path) -> HashMap<String, (usize, usize)> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("invt-") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let starts = text.lines().filter(|l| *l == "start").count();
        let ends = text.lines().filter(|l| *l == "end").count();
        out.insert(name, (starts, ends));
    }
    out
}

/// The fault suite's figures.
#[derive(Debug, Default, PartialEq, Eq)]
struct Figures {
    tasks: usize,
    lost: usize,
    duplicated: usize,
    wrong_state: usize,
    /// Tasks that died with a killed agent and say so (FAILED, no exit
    /// code, "exit status unknown"): honest, not counted as wrong.
    died_with_agent: usize,
    /// Of those, tasks whose script had in fact reached its end (it ended
    /// in the moment between its exit and the agent reaping it).
    died_after_end: usize,
}

/// Compares final task states with the evidence. A task is lost when it is
/// not final, or was never delivered; duplicated when it started more than
/// once; in a wrong state when SUCCESS lacks its end or the end lacks a
/// SUCCESS (other than a task that honestly died with its agent), or a
/// task without a real exit shows an exit code.
fn figures(tasks: &[Value], ev: &HashMap<String, (usize, usize)>) -> (Figures, Vec<String>) {
    let mut f = Figures {
        tasks: tasks.len(),
        ..Figures::default()
    };
    let mut notes = Vec::new();
    for t in tasks {
        let id = t["InvocationTaskId"].as_str().unwrap();
        let status = t["TaskStatus"].as_str().unwrap();
        let info = t["ErrorInfo"].as_str().unwrap_or("");
        let code = &t["TaskResult"]["ExitCode"];
        let (starts, ends) = ev.get(id).copied().unwrap_or((0, 0));
        if !common::FINAL.contains(&status) || status == "DELIVER_FAILED" {
            f.lost += 1;
            notes.push(format!("lost {id} {status} {info}"));
            continue;
        }
        if starts > 1 {
            f.duplicated += 1;
            notes.push(format!("duplicated {id} ran {starts} times"));
        }
        let died = status == "FAILED" && code.is_null() && info.contains("exit status unknown");
        let wrong = match status {
            "SUCCESS" => ends != 1 || code != 0,
            _ if died => false,
            _ => ends == 1,
        };
        if died {
            f.died_with_agent += 1;
            if ends == 1 {
                f.died_after_end += 1;
            }
        }
        if wrong {
            f.wrong_state += 1;
            notes.push(format!(
                "wrong {id} {status} exit {code} ends {ends} {info}"
            ));
        }
    }
    (f, notes)
}

async fn all_tasks(client: &Client, invs: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for chunk in invs.chunks(5) {
        let mut offset = 0;
        loop {
            let r = client
                .call(
                    "DescribeInvocationTasks",
                    &json!({
                        "Filters": [{"Name": "invocation-id", "Values": chunk}],
                        "HideOutput": true, "Limit": 100, "Offset": offset,
                    }),
                )
                .await
                .unwrap();
            let page = r["InvocationTaskSet"].as_array().unwrap().clone();
            offset += page.len();
            let total = r["TotalCount"].as_u64().unwrap() as usize;
            out.extend(page);
            if offset >= total {
                break;
            }
        }
    }
    out
}

/// Waits until every task of `invs` is final (the client may briefly fail
/// while a server restarts); on timeout, says which states are left.
async fn wait_all_final(client: &Client, invs: &[String], want: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(180 + want as u64 / 4);
    loop {
        let ts = all_tasks(client, invs).await;
        let open: Vec<&Value> = ts
            .iter()
            .filter(|t| !common::FINAL.contains(&t["TaskStatus"].as_str().unwrap_or("")))
            .collect();
        if ts.len() == want && open.is_empty() {
            return ts;
        }
        if std::time::Instant::now() > deadline {
            let mut by_status: HashMap<String, usize> = HashMap::new();
            for t in &open {
                *by_status
                    .entry(t["TaskStatus"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
            }
            panic!(
                "{} of {want} tasks not final ({} found, {} invocations): {by_status:?}; e.g. {:?}",
                open.len(),
                ts.len(),
                invs.len(),
                open.first()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Starts `calls` RunCommand calls, each on every instance in `ids`.
async fn fan_out(client: &Client, script: &str, ids: &[String], calls: usize) -> Vec<String> {
    let mut invs = Vec::new();
    for _ in 0..calls {
        let r = client
            .call(
                "RunCommand",
                &json!({"Content": b64(script), "InstanceIds": ids, "Timeout": 120}),
            )
            .await
            .unwrap();
        invs.push(r["InvocationId"].as_str().unwrap().to_string());
    }
    invs
}

/// `drover server` as a separate process, so it can be killed with SIGKILL.
struct ServerProc {
    data: PathBuf,
    child: Option<Child>,
    addr: String,
}

impl ServerProc {
    async fn start(data: &Path, listen: &str) -> ServerProc {
        let _ = std::fs::remove_file(data.join("server.addr"));
        let child = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["server", "--data-dir"])
            .arg(data)
            .args(["--listen", listen, "--result-grace", "30"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = wait_for("the server's address", T60, || async {
            std::fs::read_to_string(data.join("server.addr")).ok()
        })
        .await;
        ServerProc {
            data: data.to_path_buf(),
            child: Some(child),
            addr,
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self, id: &str, key: &str) -> Client {
        new_client(
            &format!("https://{}", self.addr),
            id,
            key,
            &self.data.join("tls").join("cert.pem"),
        )
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn evidence_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    // Tasks may run as another user one day; keep it reachable.
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_server_during_a_fan_out_loses_and_repeats_nothing() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let (id, key) = drover::cli::admin::create_root_key(&data).unwrap();
    let mut server = ServerProc::start(&data, "127.0.0.1:0").await;
    let client = server.client(&id, &key);
    let code = client
        .call("CreateRegisterCode", &json!({"RegisterLimit": 10}))
        .await
        .unwrap()["RegisterCodeValue"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("https://{}", server.addr);
    let mut agents = Vec::new();
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let child = spawn_agent(Some(&url), dir.path(), Some(&code));
        agents.push(Agent {
            dir,
            child: Some(child),
            instance_id: String::new(),
        });
    }
    for a in &mut agents {
        let d = a.dir.path().to_path_buf();
        a.instance_id = wait_for("registration", T60, || async {
            common::saved_instance_id(&d)
        })
        .await;
    }
    let ids: Vec<String> = agents.iter().map(|a| a.instance_id.clone()).collect();
    wait_for("agents online", T60, || async {
        let r = client
            .call(
                "DescribeAutomationAgentStatus",
                &json!({"InstanceIds": ids}),
            )
            .await
            .ok()?;
        let set = r["AutomationAgentSet"].as_array()?.clone();
        (set.len() == ids.len() && set.iter().all(|a| a["AgentStatus"] == "Online")).then_some(())
    })
    .await;

    let ev = evidence_dir();
    let script = evidence_script(ev.path(), "sleep 0.2");
    // 50 calls × 4 instances = 200 tasks (DROVER_FAULT_TASKS for more).
    let n = scale("DROVER_FAULT_TASKS", 200) / 4 * 4;
    let invs = fan_out(&client, &script, &ids, n / 4).await;
    wait_for("some tasks to have run", T60, || async {
        (evidence(ev.path()).len() >= 20).then_some(())
    })
    .await;
    server.kill9();
    let addr = server.addr.clone();
    let server = ServerProc::start(&data, &addr).await;
    let client = server.client(&id, &key);
    let tasks = wait_all_final(&client, &invs, n).await;
    let (f, notes) = figures(&tasks, &evidence(ev.path()));
    println!("FIGURES server kill -9: {f:?}");
    assert_eq!(
        (
            f.tasks,
            f.lost,
            f.duplicated,
            f.wrong_state,
            f.died_with_agent
        ),
        (n, 0, 0, 0, 0),
        "{notes:#?}"
    );
    assert!(tasks.iter().all(|t| t["TaskStatus"] == "SUCCESS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_an_agent_during_a_fan_out_reports_what_really_happened() {
    let _serial = SERIAL.lock().await;
    let mut h = Harness::start().await;
    h.add_agents(2).await;
    let ids = h.agent_ids();
    let ev = evidence_dir();
    let script = evidence_script(ev.path(), "sleep 0.3");
    // 60 calls × 2 instances = 120 tasks (DROVER_FAULT_TASKS for more).
    let n = scale("DROVER_FAULT_TASKS", 120) / 2 * 2;
    let invs = fan_out(&h.client, &script, &ids, n / 2).await;
    wait_for("the fan-out to be under way", T60, || async {
        (evidence(ev.path()).len() >= 40).then_some(())
    })
    .await;
    h.agents[0].kill();
    h.agents[0].restart();
    let tasks = wait_all_final(&h.client, &invs, n).await;
    let (f, notes) = figures(&tasks, &evidence(ev.path()));
    println!("FIGURES agent kill -9: {f:?}");
    assert_eq!(
        (f.tasks, f.lost, f.duplicated, f.wrong_state),
        (n, 0, 0, 0),
        "{notes:#?}"
    );
    // An unknown exit is never shown as 0, and nothing is left running.
    for t in &tasks {
        if t["TaskStatus"] != "SUCCESS" {
            assert_ne!(t["TaskResult"]["ExitCode"], 0, "{t}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_acknowledges_nothing_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut settings = test_settings();
    // A lost result would turn into TASK_TIMEOUT within the test.
    settings.result_grace_ms = 1_000;
    let mut h = Harness::start_with(settings).await;
    let id = h.add_agent().await;
    let ev = evidence_dir();
    let body = "sleep 1; head -c 10000 /dev/zero | tr '\\0' x; echo; sleep 1";
    let script = evidence_script(ev.path(), body);
    let run = |h: &Harness| {
        let script = script.clone();
        let id = id.clone();
        let client = h.client_as(&h.secret_id, &h.secret_key);
        async move {
            client
                .call(
                    "RunCommand",
                    &json!({"Content": b64(&script), "InstanceIds": [id], "Timeout": 3}),
                )
                .await
                .unwrap()["InvocationId"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    // 1. Results that could not be stored, then a server restart (this
    //    once re-ran the task): each runs once and ends SUCCESS.
    let a = run(&h).await;
    let b = run(&h).await;
    h.wait_task_status(&a, "RUNNING", T60).await;
    h.wait_task_status(&b, "RUNNING", T60).await;
    h.server
        .as_ref()
        .unwrap()
        .api
        .store
        .faults()
        .set_disk_full(true);
    wait_for("both tasks to end on the machine", T60, || async {
        let e = evidence(ev.path());
        (e.values().filter(|(_, end)| *end == 1).count() == 2).then_some(())
    })
    .await;
    // Past their timeout and grace: the sweep cannot store a TASK_TIMEOUT
    // either, and the agent keeps both results, unacknowledged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let journal = h.agents[0].data_dir().join("journal");
    let held = drover::agent::journal::held(&journal).unwrap();
    assert_eq!(
        held.len(),
        2,
        "the agent must keep results that were not stored"
    );
    assert_eq!(h.tasks(&a, true).await[0]["TaskStatus"], "RUNNING");
    h.restart_server().await;
    let mut done = Vec::new();
    for inv in [&a, &b] {
        done.push(
            wait_for("SUCCESS after the restart", T60, || async {
                let t = h.tasks(inv, false).await.remove(0);
                (t["TaskStatus"] == "SUCCESS").then_some(t)
            })
            .await,
        );
    }
    // 2. Without a restart: space returns and the agent's retry is stored,
    //    even after the sweep would have called the task TASK_TIMEOUT.
    let c = run(&h).await;
    h.wait_task_status(&c, "RUNNING", T60).await;
    let faults = h.server.as_ref().unwrap().api.store.faults().clone();
    faults.set_disk_full(true);
    wait_for("c to end on the machine", T60, || async {
        let e = evidence(ev.path());
        (e.values().filter(|(_, end)| *end == 1).count() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    faults.set_disk_full(false);
    done.push(
        wait_for("c to be SUCCESS", T60, || async {
            let t = h.tasks(&c, false).await.remove(0);
            (t["TaskStatus"] == "SUCCESS").then_some(t)
        })
        .await,
    );
    for t in &done {
        let tid = t["InvocationTaskId"].as_str().unwrap();
        let out = h.full_output(tid, 4096).await;
        assert_eq!(out.len(), 10_001, "{t}");
        let r = h
            .call(
                "DescribeInvocationTaskOutput",
                json!({"InvocationTaskId": tid}),
            )
            .await;
        assert_eq!(r["Complete"], true, "{r}");
        assert_eq!(t["TaskResult"]["ExitCode"], 0);
    }
    let (f, notes) = figures(&done, &evidence(ev.path()));
    println!("FIGURES full disk: {f:?}");
    assert_eq!(
        (f.tasks, f.lost, f.duplicated, f.wrong_state),
        (3, 0, 0, 0),
        "{notes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_one_agent_is_queued_not_dropped_and_bounded() {
    let _serial = SERIAL.lock().await;
    let mut settings = test_settings();
    let slots = scale("DROVER_FAULT_SLOTS", 6);
    settings.agent_slots = slots as u32;
    let mut h = Harness::start_with(settings).await;
    let id = h.add_agent().await;
    let ev = evidence_dir();
    let live = ev.path().join("live");
    std::fs::create_dir(&live).unwrap();
    // Each task counts the tasks running beside it.
    let body = format!(
        "touch {l}/$DROVER_TASK_ID; ls {l} | wc -l >> {c}; sleep 0.05; rm {l}/$DROVER_TASK_ID",
        l = live.display(),
        c = ev.path().join("concurrency").display()
    );
    let script = evidence_script(ev.path(), &body);
    let calls = scale("DROVER_FAULT_BURST", 300) / 20 * 20;
    let mut invs = Vec::new();
    let ids = [id.clone()];
    let batches: Vec<_> = (0..calls / 20).collect();
    for _ in batches {
        let futs = (0..20).map(|_| fan_out(&h.client, &script, &ids, 1));
        for v in futures_util::future::join_all(futs).await {
            invs.extend(v);
        }
    }
    // While the burst drains, waiting tasks say why.
    let queued = all_tasks(&h.client, &invs)
        .await
        .into_iter()
        .find(|t| t["TaskStatus"] == "PENDING");
    let t = queued.expect("tasks wait in the queue during the burst");
    assert!(
        t["ErrorInfo"].as_str().unwrap().contains("queued"),
        "a waiting task says why: {t}"
    );
    let tasks = wait_all_final(&h.client, &invs, calls).await;
    let (f, notes) = figures(&tasks, &evidence(ev.path()));
    println!("FIGURES burst to one agent: {f:?}");
    assert_eq!(
        (f.tasks, f.lost, f.duplicated, f.wrong_state),
        (calls, 0, 0, 0),
        "{notes:#?}"
    );
    assert!(tasks.iter().all(|t| t["TaskStatus"] == "SUCCESS"));
    let most = std::fs::read_to_string(ev.path().join("concurrency"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse::<usize>().ok())
        .max()
        .unwrap();
    println!("FIGURES burst: at most {most} tasks ran at once (slots {slots})");
    assert!(most <= slots, "at most {slots} tasks at once, saw {most}");
    assert_eq!(h.agent_status(&id).await, "Online");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_agent_goes_offline_and_its_real_exit_wins() {
    let _serial = SERIAL.lock().await;
    let mut settings = test_settings();
    settings.heartbeat_secs = 1;
    settings.result_grace_ms = 500;
    let mut h = Harness::start_with(settings).await;
    let id = h.add_agent().await;
    let ev = evidence_dir();
    let script = evidence_script(ev.path(), "sleep 1");
    let inv = h
        .run(&script, std::slice::from_ref(&id), json!({"Timeout": 3}))
        .await;
    h.wait_task_status(&inv, "RUNNING", T60).await;
    let pid = h.agents[0].child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    // Three missed heartbeats: Offline, though the TCP connection is open.
    h.wait_status(std::slice::from_ref(&id), "Offline").await;
    // The task exits 0 on time, but its silent agent cannot say so: past
    // timeout and grace the server gives up on it.
    h.wait_task_status(&inv, "TASK_TIMEOUT", T60).await;
    assert_eq!(evidence(ev.path()).values().next(), Some(&(1, 1)));
    signal("-CONT");
    h.wait_online(std::slice::from_ref(&id)).await;
    let t = wait_for("the real result", T60, || async {
        let t = h.tasks(&inv, true).await.remove(0);
        (t["TaskStatus"] == "SUCCESS").then_some(t)
    })
    .await;
    assert_eq!(t["TaskResult"]["ExitCode"], 0, "{t}");
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "SUCCESS");
}
