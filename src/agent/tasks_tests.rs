//! Registry tests: real processes, real journal on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::time::Duration;

fn spec(id: &str, script: &str) -> TaskSpec {
    TaskSpec {
        task_id: id.into(),
        invocation_id: "inv-1".into(),
        command_type: "SHELL".into(),
        content: B64.encode(script),
        timeout: 30,
        working_directory: "/tmp".into(),
        username: String::new(),
        mask: Vec::new(),
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    tasks: Tasks,
    rx: mpsc::Receiver<AgentMsg>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let journal = Journal::open(&tmp.path().join("journal")).unwrap();
    let work = tmp.path().join("work");
    super::super::launch::prepare_work_root(&work).unwrap();
    let (tasks, rx) = Tasks::new(journal, work, CancellationToken::new(), None, 32);
    Fixture {
        _tmp: tmp,
        tasks,
        rx,
    }
}

/// Collects messages until the task's TaskFinished.
async fn until_finished(f: &mut Fixture, id: &str) -> Vec<AgentMsg> {
    let mut got = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), f.rx.recv())
            .await
            .unwrap()
            .unwrap();
        f.tasks.note_sent(&msg);
        let done = matches!(&msg, AgentMsg::TaskFinished { task_id, .. } if task_id == id);
        got.push(msg);
        if done {
            return got;
        }
    }
}

fn output_of(msgs: &[AgentMsg]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        if let AgentMsg::Output { offset, data, .. } = m {
            assert_eq!(*offset, out.len() as u64);
            out.extend(B64.decode(data).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn runs_journals_dedups_replays_and_forgets_on_ack() {
    let mut f = fixture();
    assert!(f
        .tasks
        .handle(ServerMsg::RunTask(spec("t1", "echo hi; echo there")))
        .is_empty());
    let msgs = until_finished(&mut f, "t1").await;
    assert!(matches!(msgs[0], AgentMsg::TaskStarted { .. }), "{msgs:?}");
    assert_eq!(output_of(&msgs), b"hi\nthere\n");
    let fin = msgs.last().unwrap().clone();
    assert!(matches!(
        fin,
        AgentMsg::TaskFinished {
            outcome: Outcome::Success,
            output_len: 9,
            ..
        }
    ));

    // The same task again is not run again.
    assert!(f
        .tasks
        .handle(ServerMsg::RunTask(spec("t1", "echo again")))
        .is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), f.rx.recv())
            .await
            .is_err()
    );
    assert_eq!(f.tasks.known_tasks(), vec!["t1".to_string()]);

    // A reconnect resends the output from 0 and the result.
    let mut replay = f.tasks.replay();
    let mut resent = Vec::new();
    while let Some(m) = replay.next_msg() {
        resent.push(m);
    }
    assert_eq!(output_of(&resent), b"hi\nthere\n");
    assert_eq!(resent.last(), Some(&fin));

    f.tasks.handle(ServerMsg::Ack {
        task_id: "t1".into(),
    });
    assert!(f.tasks.known_tasks().is_empty());
    assert!(f.tasks.replay().next_msg().is_none());
}

#[tokio::test]
async fn cancel_terminates_a_running_task_and_unknown_cancels_are_ignored() {
    let mut f = fixture();
    f.tasks.handle(ServerMsg::CancelTask {
        task_id: "nope".into(),
    });
    f.tasks
        .handle(ServerMsg::RunTask(spec("t2", "echo go; sleep 100")));
    // Wait until it has printed, then cancel.
    loop {
        let m = f.rx.recv().await.unwrap();
        if matches!(m, AgentMsg::Output { .. }) {
            break;
        }
    }
    f.tasks.handle(ServerMsg::CancelTask {
        task_id: "t2".into(),
    });
    let msgs = until_finished(&mut f, "t2").await;
    assert!(matches!(
        msgs.last(),
        Some(AgentMsg::TaskFinished {
            outcome: Outcome::Terminated,
            ..
        })
    ));
}

#[tokio::test]
async fn bad_task_ids_fail_at_once() {
    let mut f = fixture();
    let replies = f.tasks.handle(ServerMsg::RunTask(spec("../etc", "echo")));
    assert!(matches!(
        replies.as_slice(),
        [AgentMsg::TaskFinished {
            outcome: Outcome::StartFailed,
            ..
        }]
    ));
}

#[tokio::test]
async fn a_task_interrupted_by_a_restart_is_finished_as_failed_and_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let jdir = tmp.path().join("journal");
    // A previous agent accepted a task and started its process group...
    let mut child = std::process::Command::new("sleep")
        .arg("100")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = i32::try_from(child.id()).unwrap();
    {
        let j = Journal::open(&jdir).unwrap();
        j.accept(&spec("t3", "sleep 100")).unwrap();
        j.output_writer("t3").unwrap().append(b"partial").unwrap();
        j.set_process(
            "t3",
            &ProcessMark {
                pgid,
                start_ticks: procinfo::stat(pgid).unwrap().start_ticks,
                boot_id: procinfo::boot_id(),
                started_at: 42,
            },
        )
        .unwrap();
    }
    // ...then died. The new agent recovers.
    let (tasks, _rx) = Tasks::new(
        Journal::open(&jdir).unwrap(),
        tmp.path().join("work"),
        CancellationToken::new(),
        None,
        32,
    );
    tasks.recover();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the orphaned group must be killed");
    let e = tasks.journal().load("t3").unwrap();
    match e.result {
        Some(AgentMsg::TaskFinished {
            outcome,
            error_info,
            output_len,
            started_at,
            exit_code,
            ..
        }) => {
            assert_eq!(outcome, Outcome::Failed);
            assert!(error_info.contains("exit status unknown"), "{error_info}");
            assert_eq!(exit_code, None, "an unknown exit is never 0");
            assert_eq!(output_len, 7);
            assert_eq!(started_at, 42);
        }
        other => panic!("no result: {other:?}"),
    }
    // The result is replayed with the output.
    let mut replay = tasks.replay();
    let mut msgs = Vec::new();
    while let Some(m) = replay.next_msg() {
        msgs.push(m);
    }
    assert_eq!(output_of(&msgs), b"partial");
}

#[test]
fn a_task_that_ended_before_the_agent_died_keeps_its_real_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let jdir = tmp.path().join("journal");
    {
        // The previous agent reaped the process and noted its exit, then
        // died before it wrote the result.
        let j = Journal::open(&jdir).unwrap();
        j.accept(&spec("t5", "true")).unwrap();
        j.output_writer("t5").unwrap().append(b"done\n").unwrap();
        j.set_exit("t5", Some(0)).unwrap();
        j.accept(&spec("t6", "false")).unwrap();
        j.set_exit("t6", Some(3)).unwrap();
    }
    let (tasks, _rx) = Tasks::new(
        Journal::open(&jdir).unwrap(),
        tmp.path().join("work"),
        CancellationToken::new(),
        None,
        32,
    );
    tasks.recover();
    for (id, want, code) in [("t5", Outcome::Success, 0), ("t6", Outcome::Failed, 3)] {
        match tasks.journal().load(id).unwrap().result {
            Some(AgentMsg::TaskFinished {
                outcome, exit_code, ..
            }) => {
                assert_eq!(outcome, want, "{id}");
                assert_eq!(exit_code, Some(code), "{id}");
            }
            other => panic!("no result for {id}: {other:?}"),
        }
    }
}

#[test]
fn after_a_power_loss_a_torn_result_reads_as_interrupted_and_a_torn_acceptance_as_never_run() {
    // What a power loss can leave (the acceptance and the result are each
    // synced before the step they guard, so nothing worse survives): the
    // log's last record cut mid-write.
    let tmp = tempfile::tempdir().unwrap();
    let jdir = tmp.path().join("journal");
    let cut_last = |keep: usize| {
        let log = jdir.join("log");
        let bytes = std::fs::read(&log).unwrap();
        let last = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        std::fs::write(&log, &bytes[..last + keep]).unwrap();
    };
    {
        let j = Journal::open(&jdir).unwrap();
        j.accept(&spec("t8", "true")).unwrap();
        let msg = AgentMsg::TaskFinished {
            task_id: "t8".into(),
            outcome: Outcome::Success,
            exit_code: Some(0),
            started_at: 1,
            ended_at: 2,
            output_len: 0,
            error_info: String::new(),
        };
        j.finish("t8", &msg).unwrap();
    }
    cut_last(40);
    {
        let j = Journal::open(&jdir).unwrap();
        j.accept(&spec("t9", "true")).unwrap();
    }
    cut_last(30);
    let (tasks, _rx) = Tasks::new(
        Journal::open(&jdir).unwrap(),
        tmp.path().join("work"),
        CancellationToken::new(),
        None,
        32,
    );
    tasks.recover();
    // t8 may have run: it stays known (never run again) and ends as
    // interrupted, with no exit code.
    match tasks.journal().load("t8").unwrap().result {
        Some(AgentMsg::TaskFinished {
            outcome,
            exit_code,
            error_info,
            ..
        }) => {
            assert_eq!(outcome, Outcome::Failed);
            assert_eq!(exit_code, None);
            assert!(error_info.contains("exit status unknown"), "{error_info}");
        }
        other => panic!("no result for t8: {other:?}"),
    }
    // t9 never started (accept had not returned): it is forgotten, so the
    // server's resend runs it once.
    assert_eq!(tasks.known_tasks(), vec!["t8".to_string()]);
}

#[test]
fn a_stale_process_mark_is_not_killed() {
    // A mark from another boot must never be signalled.
    let mut child = std::process::Command::new("sleep")
        .arg("100")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = i32::try_from(child.id()).unwrap();
    let mark = ProcessMark {
        pgid,
        start_ticks: 0,
        boot_id: "another-boot".into(),
        started_at: 0,
    };
    kill_if_ours(&mark, &procinfo::boot_id());
    let mark = ProcessMark {
        boot_id: procinfo::boot_id(),
        ..mark
    };
    // Same boot but a different start time: a reused pid, not ours.
    kill_if_ours(&mark, &procinfo::boot_id());
    assert!(
        child.try_wait().unwrap().is_none(),
        "an unrelated process was killed"
    );
    let _ = child.kill();
    let _ = child.wait();
}

use std::os::unix::process::CommandExt;

#[test]
fn replay_resends_task_started_for_a_running_task() {
    let f = fixture();
    let j = f.tasks.journal();
    j.accept(&spec("t4", "sleep 1")).unwrap();
    j.set_process(
        "t4",
        &ProcessMark {
            pgid: 99999,
            start_ticks: 1,
            boot_id: "b".into(),
            started_at: 7,
        },
    )
    .unwrap();
    j.output_writer("t4").unwrap().append(b"so far").unwrap();
    let mut replay = f.tasks.replay();
    assert_eq!(
        replay.next_msg(),
        Some(AgentMsg::TaskStarted {
            task_id: "t4".into(),
            started_at: 7
        })
    );
    assert!(matches!(
        replay.next_msg(),
        Some(AgentMsg::Output { offset: 0, .. })
    ));
    assert_eq!(replay.next_msg(), None, "no result yet: no TaskFinished");
}

/// The next message that is not output.
async fn next_non_output(f: &mut Fixture) -> AgentMsg {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), f.rx.recv())
            .await
            .unwrap()
            .unwrap();
        if !matches!(m, AgentMsg::Output { .. }) {
            return m;
        }
    }
}

#[tokio::test]
async fn suspend_and_resume_are_confirmed_and_restated_after_a_reconnect() {
    let mut f = fixture();
    // Unknown tasks and unknown message types are answered, not fatal.
    let r = f.tasks.handle(ServerMsg::SuspendTask {
        task_id: "nope".into(),
    });
    assert!(
        matches!(&r[..], [AgentMsg::TaskControlFailed { task_id, .. }] if task_id == "nope"),
        "{r:?}"
    );
    assert!(f.tasks.handle(ServerMsg::Unknown).is_empty());

    f.tasks
        .handle(ServerMsg::RunTask(spec("t5", "sleep 0.5; echo done")));
    assert!(matches!(
        next_non_output(&mut f).await,
        AgentMsg::TaskStarted { .. }
    ));
    assert!(f
        .tasks
        .handle(ServerMsg::SuspendTask {
            task_id: "t5".into()
        })
        .is_empty());
    let AgentMsg::TaskSuspended { at, .. } = next_non_output(&mut f).await else {
        panic!("expected TaskSuspended")
    };
    assert_eq!(
        f.tasks.control_reports(),
        vec![AgentMsg::TaskSuspended {
            task_id: "t5".into(),
            at
        }]
    );
    f.tasks.handle(ServerMsg::ResumeTask {
        task_id: "t5".into(),
    });
    assert!(matches!(
        next_non_output(&mut f).await,
        AgentMsg::TaskResumed { .. }
    ));
    assert!(matches!(
        &f.tasks.control_reports()[..],
        [AgentMsg::TaskResumed { .. }]
    ));
    let msgs = until_finished(&mut f, "t5").await;
    assert!(matches!(
        msgs.last(),
        Some(AgentMsg::TaskFinished {
            outcome: Outcome::Success,
            ..
        })
    ));
    // Finished: a late request is answered as such.
    let r = f.tasks.handle(ServerMsg::SuspendTask {
        task_id: "t5".into(),
    });
    assert!(
        matches!(&r[..], [AgentMsg::TaskControlFailed { .. }]),
        "{r:?}"
    );
    assert!(f.tasks.control_reports().is_empty());
}

#[tokio::test]
async fn a_task_with_secrets_is_journaled_without_them_and_sent_masked() {
    let mut f = fixture();
    let mut s = spec("invt-secret", "echo 'pw=hunter2-x'");
    s.mask = vec!["hunter2-x".into()];
    assert!(f.tasks.handle(ServerMsg::RunTask(s)).is_empty());
    let entry = f.tasks.journal().load("invt-secret").unwrap();
    assert!(entry.spec.content.is_empty() && entry.spec.mask.is_empty());
    let msgs = until_finished(&mut f, "invt-secret").await;
    assert_eq!(output_of(&msgs), b"pw=******\n");
    let mut journaled = vec![0u8; 64];
    let n = f
        .tasks
        .journal()
        .read_output("invt-secret", 0, &mut journaled)
        .unwrap();
    assert_eq!(&journaled[..n], b"pw=******\n");
}

#[tokio::test]
async fn no_script_is_journaled_so_hidden_values_leave_no_trace() {
    let mut f = fixture();
    let s = spec("invt-plain", "echo 'token=abc123-hidden'");
    assert!(f.tasks.handle(ServerMsg::RunTask(s)).is_empty());
    let entry = f.tasks.journal().load("invt-plain").unwrap();
    assert!(entry.spec.content.is_empty());
    assert_eq!(entry.spec.command_type, "SHELL");
    let msgs = until_finished(&mut f, "invt-plain").await;
    // The run itself still had the whole script.
    assert_eq!(output_of(&msgs), b"token=abc123-hidden\n");
}
