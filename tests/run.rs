//! Running commands end to end: a real server, real agent processes, real
//! shells. Each test has its own server and agents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{b64, output_of, process_alive, wait_for, Harness};
use serde_json::json;

const T30: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_exact_output() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;

    let t = h.run_one("echo hello world", &id, json!({})).await;
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(t["TaskResult"]["ExitCode"], 0);
    assert_eq!(output_of(&t), "hello world\n");
    assert_eq!(t["TaskResult"]["Dropped"], 0);

    let t = h.run_one("echo partial; exit 3", &id, json!({})).await;
    assert_eq!(t["TaskStatus"], "FAILED", "{t}");
    assert_eq!(t["TaskResult"]["ExitCode"], 3);
    assert_eq!(output_of(&t), "partial\n");
    let inv = h.invocation(t["InvocationId"].as_str().unwrap()).await;
    assert_eq!(inv["InvocationStatus"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_interleave() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let t = h
        .run_one(
            "echo out1; echo err1 >&2; echo out2; echo err2 >&2",
            &id,
            json!({}),
        )
        .await;
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(output_of(&t), "out1\nerr1\nout2\nerr2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_directory_username_and_python() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;

    let t = h
        .run_one("pwd", &id, json!({"WorkingDirectory": "/tmp"}))
        .await;
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(output_of(&t), "/tmp\n");

    let t = h
        .run_one(
            "id -un",
            &id,
            json!({"Username": "nobody", "WorkingDirectory": "/tmp"}),
        )
        .await;
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(output_of(&t), "nobody\n");

    let t = h
        .run_one(
            "import sys\nprint(sum(range(10)))\nsys.stdout.write('py')\n",
            &id,
            json!({"CommandType": "PYTHON"}),
        )
        .await;
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(output_of(&t), "45\npy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_whole_process_group() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let marker = "sleep 61.5";
    let t = h
        .run_one(
            &format!("echo started; {marker} & {marker}; wait"),
            &id,
            json!({"Timeout": 2}),
        )
        .await;
    assert_eq!(t["TaskStatus"], "TIMEOUT", "{t}");
    assert_eq!(output_of(&t), "started\n");
    wait_for(
        "the timed-out sleeps to be gone",
        Duration::from_secs(10),
        || async { (!process_alive(marker)).then_some(()) },
    )
    .await;
    let inv = h.invocation(t["InvocationId"].as_str().unwrap()).await;
    assert_eq!(inv["InvocationStatus"], "TIMEOUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_terminates_a_running_task() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let marker = "sleep 62.5";
    let inv = h.run(marker, &[id], json!({})).await;
    h.wait_task_status(&inv, "RUNNING", T30).await;
    h.call("CancelInvocation", json!({"InvocationId": inv}))
        .await;
    let ts = h.wait_final(&inv, T30).await;
    assert_eq!(ts[0]["TaskStatus"], "TERMINATED", "{}", ts[0]);
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "CANCELLED");
    wait_for(
        "the cancelled sleep to be gone",
        Duration::from_secs(10),
        || async { (!process_alive(marker)).then_some(()) },
    )
    .await;
}

/// What `seq 1 100000 | head -c N` prints.
fn seq_bytes(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 1u32;
    while v.len() < n {
        v.extend(format!("{i}\n").bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_is_kept_whole() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    const N: usize = 300_000;
    let expected = seq_bytes(N);
    let t = h
        .run_one(&format!("seq 1 100000 | head -c {N}"), &id, json!({}))
        .await;
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    let inline = common::unb64(t["TaskResult"]["Output"].as_str().unwrap());
    assert_eq!(inline.len(), 24 * 1024);
    assert_eq!(inline, expected[..24 * 1024]);
    assert_eq!(t["TaskResult"]["Dropped"], N - 24 * 1024);

    let task_id = t["InvocationTaskId"].as_str().unwrap();
    for page in [100_000, 65_536, 1 << 20] {
        let all = h.full_output(task_id, page).await;
        assert!(all == expected, "output read in pages of {page} differs");
    }
    let r = h
        .call(
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": task_id, "Offset": 299_990, "Limit": 100}),
        )
        .await;
    assert_eq!(r["TotalSize"], N);
    assert_eq!(
        common::unb64(r["Output"].as_str().unwrap()),
        expected[299_990..]
    );
    assert_eq!(r["Complete"], true);

    // HideOutput defaults to true: no output at all.
    let r = h
        .call(
            "DescribeInvocationTasks",
            json!({"InvocationTaskIds": [task_id]}),
        )
        .await;
    let t = &r["InvocationTaskSet"][0];
    assert_eq!(t["TaskResult"]["Output"], "", "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_and_hidden_parameters() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let secret = "s3cr3t-Pa55-q8z1";
    let content = "echo \"name={{name}} color={{color}} pw={{tat-hidden:pw}}\"";
    let cmd = h
        .call(
            "CreateCommand",
            json!({
                "CommandName": "params",
                "Content": b64(content),
                "EnableParameter": true,
                "DefaultParameters": json!({"name": "alice", "color": "red"}).to_string(),
            }),
        )
        .await;
    let cmd_id = cmd["CommandId"].as_str().unwrap();
    let r = h
        .call(
            "InvokeCommand",
            json!({
                "CommandId": cmd_id,
                "InstanceIds": [id],
                "Parameters": json!({"color": "blue", "pw": secret}).to_string(),
            }),
        )
        .await;
    let inv = r["InvocationId"].as_str().unwrap();
    let ts = h.wait_final(inv, T30).await;
    assert_eq!(ts[0]["TaskStatus"], "SUCCESS", "{}", ts[0]);
    assert_eq!(
        output_of(&ts[0]),
        format!("name=alice color=blue pw={secret}\n")
    );

    let invocation = h.invocation(inv).await;
    let recorded: serde_json::Value =
        serde_json::from_str(invocation["Parameters"].as_str().unwrap()).unwrap();
    assert_eq!(recorded["pw"], "******", "{invocation}");
    assert_eq!(recorded["color"], "blue");

    let views = [
        h.call_raw("DescribeInvocations", json!({"InvocationIds": [inv]}))
            .await,
        h.call_raw("DescribeInvocations", json!({})).await,
        h.call_raw(
            "DescribeInvocationTasks",
            json!({"Filters": [{"Name": "invocation-id", "Values": [inv]}], "HideOutput": true}),
        )
        .await,
        h.call_raw("DescribeCommands", json!({})).await,
        h.call_raw("DescribeCommands", json!({"CommandIds": [cmd_id]}))
            .await,
    ];
    for v in &views {
        assert!(
            v.contains(cmd_id) || v.contains(inv),
            "unexpected answer: {v}"
        );
        assert!(!v.contains(secret), "the hidden value leaked: {v}");
        assert!(
            !v.contains(&b64(secret)),
            "the hidden value leaked (base64): {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_on_three_agents() {
    let mut h = Harness::start().await;
    h.add_agents(3).await;
    let ids = h.agent_ids();
    let inv = h
        .run(
            "echo \"on $(cat /proc/sys/kernel/hostname)\"; echo done",
            &ids,
            json!({}),
        )
        .await;
    let ts = h.wait_final(&inv, T30).await;
    assert_eq!(ts.len(), 3);
    let mut seen: Vec<String> = ts
        .iter()
        .map(|t| {
            assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
            assert!(output_of(t).ends_with("done\n"), "{t}");
            t["InstanceId"].as_str().unwrap().to_string()
        })
        .collect();
    seen.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(seen, want);
    let i = h.invocation(&inv).await;
    assert_eq!(i["InvocationStatus"], "SUCCESS");
    assert_eq!(i["InvocationTaskBasicInfoSet"].as_array().unwrap().len(), 3);

    // The call left one audit event, written in the transaction that
    // created the invocation; a call that fails (an unknown instance)
    // writes nothing of it and leaves its own failure's event.
    let e = h
        .call_err(
            "RunCommand",
            json!({"Content": b64("true"), "InstanceIds": ["mi-nosuchone"]}),
        )
        .await;
    let events = h
        .call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["RunCommand"]}], "Limit": 100}),
        )
        .await;
    let events = events["AuditEventSet"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| e["Outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"Success"), "{outcomes:?}");
    assert!(outcomes.contains(&common::code(&e)), "{outcomes:?} {e}");
    for ev in &events {
        assert_eq!(ev["Principal"], "root", "{ev}");
        assert!(!ev["RequestId"].as_str().unwrap().is_empty(), "{ev}");
    }
    let ok = events.iter().find(|e| e["Outcome"] == "Success").unwrap();
    for id in &ids {
        assert!(
            ok["Resources"].as_array().unwrap().contains(&json!(id)),
            "{ok}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_streams_while_running() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let inv = h
        .run(
            "printf 'first\\n'; sleep 5; printf '\\000\\377\\376abc'",
            &[id],
            json!({}),
        )
        .await;
    let t = h.wait_task_status(&inv, "RUNNING", T30).await;
    let task_id = t["InvocationTaskId"].as_str().unwrap().to_string();
    // The first line is readable before the task ends.
    let r = wait_for(
        "output while running",
        Duration::from_millis(4500),
        || async {
            let r = h
                .call(
                    "DescribeInvocationTaskOutput",
                    json!({"InvocationTaskId": task_id}),
                )
                .await;
            (r["TotalSize"] == 6).then_some(r)
        },
    )
    .await;
    assert_eq!(r["Complete"], false, "{r}");
    assert_eq!(r["TaskStatus"], "RUNNING", "{r}");
    assert_eq!(common::unb64(r["Output"].as_str().unwrap()), b"first\n");

    let ts = h.wait_final(&inv, T30).await;
    let t = &ts[0];
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    let mut want = b"first\n".to_vec();
    want.extend([0u8, 0xff, 0xfe, b'a', b'b', b'c']);
    assert_eq!(
        common::unb64(t["TaskResult"]["Output"].as_str().unwrap()),
        want
    );
    assert_eq!(h.full_output(&task_id, 4).await, want);
    for field in ["ExecStartTime", "ExecEndTime"] {
        assert_ne!(t["TaskResult"][field], "", "{field}: {t}");
    }
    for field in ["StartTime", "EndTime"] {
        assert_ne!(t[field], "", "{field}: {t}");
    }
}
