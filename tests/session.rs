//! Interactive sessions end to end (issue 11): a real server, a real agent
//! process, a real login shell in a pseudo-terminal, driven through the
//! browser's WebSocket as a signed-in console user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod sessionkit;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sessionkit::*;

const T: Duration = Duration::from_secs(30);

async fn cam(h: &Harness, action: &str, p: Value) -> Value {
    h.client
        .call_as("cam", "2019-01-16", action, &p)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// A console sub-user with one policy of these statements; returns the
/// session cookie.
async fn console_user(h: &Harness, name: &str, statements: Value) -> String {
    let password = "Sub-user-pass-1";
    let u = cam(
        h,
        "AddUser",
        json!({"Name": name, "ConsoleLogin": 1, "Password": password, "NeedResetPassword": 0}),
    )
    .await;
    let doc = json!({"version": "2.0", "statement": statements});
    let pid = cam(
        h,
        "CreatePolicy",
        json!({"PolicyName": format!("p_{name}"), "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        h,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": u["Uin"]}),
    )
    .await;
    sign_in(h, name, password).await.0
}

fn agent_pid(h: &Harness) -> u32 {
    h.agents[0].child.as_ref().unwrap().id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_terminal_types_resizes_interrupts_and_exits() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let mut t = Term::connect(
        &h,
        &cookie,
        &format!("InstanceId={id}&User=root&Cols=80&Rows=24"),
    )
    .await;
    let opened = t.control_of("opened", T).await;
    let sid = opened["sessionId"].as_str().unwrap().to_string();
    assert!(
        opened["sessionId"].as_str().unwrap().starts_with("ses-"),
        "{opened}"
    );
    // The shell is the agent's child, in its own session with the
    // terminal as its controlling tty.
    let shells = children_of(agent_pid(&h));
    assert_eq!(shells.len(), 1, "one shell under the agent: {shells:?}");

    t.type_line("echo hello-$((6*7))").await;
    t.expect("hello-42", T).await;
    t.type_line("stty size; tty").await;
    t.expect("24 80", T).await;
    t.expect("/dev/pts/", T).await;
    t.resize(100, 30).await;
    t.type_line("stty size").await;
    t.expect("30 100", T).await;

    // Ctrl-C reaches the foreground job: the sleep ends at once and the
    // shell takes the next line.
    t.type_line("sleep 1000; echo slept-$((2+3))").await;
    t.type_line("").await;
    // Ctrl-C only once the sleep runs in the foreground: sent earlier, the
    // line discipline would flush the typed-ahead line instead.
    let shell = shells[0];
    wait_for("the sleep to run under the shell", T, || async move {
        children_of(shell)
            .into_iter()
            .any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with("sleep\0"))
            })
            .then_some(())
    })
    .await;
    t.send(b"\x03").await;
    t.type_line("echo after-$((1+1))").await;
    t.expect("after-2", Duration::from_secs(20)).await;
    assert!(!t.screen.contains("slept-5"), "{}", t.screen);

    t.type_line("exit 3").await;
    let exit = t.control_of("exit", T).await;
    assert_eq!(exit["code"], 3, "{exit}");
    assert_eq!(exit["signal"], Value::Null, "{exit}");
    t.until_closed(T).await;
    for pid in shells {
        wait_for("the shell to be gone", T, || async move {
            (!alive(pid)).then_some(())
        })
        .await;
    }
    // The server recorded what the terminal showed, and how it ended.
    let s = wait_for("the recording to end", T, || {
        let (h, sid) = (&h, sid.clone());
        async move {
            let v = h.call("DescribeSessions", json!({})).await;
            let s = v["SessionSet"]
                .as_array()?
                .iter()
                .find(|s| s["SessionId"] == sid.as_str())?
                .clone();
            (s["State"] == "ENDED").then_some(s)
        }
    })
    .await;
    assert_eq!(
        (
            s["InstanceId"].as_str(),
            s["LoginUser"].as_str(),
            s["Via"].as_str()
        ),
        (Some(id.as_str()), Some("root"), Some("console")),
        "{s}"
    );
    assert_eq!(s["ExitCode"], 3, "{s}");
    let cast = h
        .call("DescribeSessionRecording", json!({"SessionId": sid}))
        .await;
    let text = cast["Cast"].as_str().unwrap();
    assert!(
        text.contains("hello-42") && text.contains("30 100"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_user_without_start_session_is_refused_and_no_shell_starts() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = console_user(
        &h,
        "nosession",
        json!([{"effect": "allow", "action": ["tat:RunCommand", "tat:DescribeInvocations"],
                "resource": "*"}]),
    )
    .await;
    let before = children_of(agent_pid(&h));
    let mut t = Term::connect(&h, &cookie, &format!("InstanceId={id}&User=root")).await;
    let err = t.control_of("error", T).await;
    assert_eq!(err["code"], "AuthFailure.UnauthorizedOperation", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("tat:StartSession") && msg.contains(&id) && msg.contains("root"),
        "{msg}"
    );
    assert!(
        t.control.iter().all(|v| v["type"] != "opened"),
        "{:?}",
        t.control
    );
    t.until_closed(T).await;
    assert_eq!(children_of(agent_pid(&h)), before, "no shell was started");
}

/// Item 7: two sessions as different users at once; in each, a fresh
/// process sees only its terminal on 0, 1, 2 (and the directory `ls`
/// opens): no master, no other session's terminal, no agent socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_inherit_no_descriptors_and_run_as_their_user() {
    let (uid, gid) = ensure_test_user();
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let mut root = Term::connect(&h, &cookie, &format!("InstanceId={id}&User=root")).await;
    root.control_of("opened", T).await;
    let mut user = Term::connect(&h, &cookie, &format!("InstanceId={id}&User={TEST_USER}")).await;
    user.control_of("opened", T).await;
    for (t, want_uid) in [(&mut root, 0), (&mut user, uid)] {
        t.type_line("echo fds-$(ls /proc/self/fd | tr '\\n' ,)end")
            .await;
        t.expect("fds-0,1,2,3,end", T).await;
        t.type_line("echo uid-$(id -u)").await;
        assert_eq!(t.number_after("uid-", T).await, want_uid);
    }
    // The user's shell has the user's groups, home and environment.
    user.type_line(
        "echo gid-$(id -g); echo home=$HOME user=$USER logname=$LOGNAME pwd=$(pwd) term=$TERM",
    )
    .await;
    assert_eq!(user.number_after("gid-", T).await, gid);
    let home = format!("/home/{TEST_USER}");
    user.expect(
        &format!("home={home} user={TEST_USER} logname={TEST_USER} pwd={home} term=xterm-256color"),
        T,
    )
    .await;
    // The shell's own descriptors: its terminal (bash keeps a copy on
    // 255) and the pipe of this very command substitution; no socket, no
    // terminal master, no epoll or eventfd of the agent's runtime.
    user.type_line("echo bad-$(ls -l /proc/$$/fd | grep -c -e socket: -e ptmx -e anon_inode)")
        .await;
    assert_eq!(user.number_after("bad-", T).await, 0);
    user.type_line("stat -c owner-%u $(tty)").await;
    assert_eq!(user.number_after("owner-", T).await, uid);
    root.close().await;
    user.close().await;
}

/// Item 4: who may open a session where, as whom, decided by sub-users'
/// policies on the instance's tags and the login user (`tat:login_user`);
/// a refusal names the action, the instance and the login user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_decide_sessions_by_instance_tags_and_login_user() {
    ensure_test_user();
    let mut h = Harness::start().await;
    let lab = h.add_agent().await;
    let prod = h.add_agent().await;
    for (id, env) in [(&lab, "lab"), (&prod, "prod")] {
        h.call(
            "ModifyInstanceTags",
            json!({"InstanceId": id, "Tags": [{"Key": "env", "Value": env}]}),
        )
        .await;
    }
    let start = |extra: Value| {
        let mut s = json!({"effect": "allow", "action": ["tat:StartSession"], "resource": "*"});
        if !extra.is_null() {
            s["condition"] = extra;
        }
        s
    };
    // Ann: lab instances, never as root.
    let ann = console_user(
        &h,
        "ann",
        json!([start(
            json!({"string_equal": {"qcs:resource_tag": ["env&lab"]},
                             "string_not_equal": {"tat:login_user": ["root"]}})
        )]),
    )
    .await;
    // Bob: may run commands, not open sessions.
    let bob = console_user(
        &h,
        "bob",
        json!([{"effect": "allow", "action": ["tat:RunCommand"], "resource": "*"}]),
    )
    .await;
    // Carol: anywhere, but an explicit deny for root wins.
    let carol = console_user(
        &h,
        "carol",
        json!([start(Value::Null),
               {"effect": "deny", "action": ["tat:StartSession"], "resource": "*",
                "condition": {"string_equal": {"tat:login_user": ["root"]}}}]),
    )
    .await;
    // Dave: only accounts named drover-*.
    let dave = console_user(
        &h,
        "dave",
        json!([start(
            json!({"string_like": {"tat:login_user": ["drover-*"]}})
        )]),
    )
    .await;
    let cases = [
        (&ann, "ann", &lab, TEST_USER, true),
        (&ann, "ann", &lab, "root", false),
        (&ann, "ann", &prod, TEST_USER, false),
        (&bob, "bob", &lab, TEST_USER, false),
        (&carol, "carol", &prod, TEST_USER, true),
        (&carol, "carol", &prod, "root", false),
        (&dave, "dave", &prod, TEST_USER, true),
        (&dave, "dave", &lab, "root", false),
    ];
    for (cookie, who, id, login, allowed) in cases {
        let mut t = Term::connect(&h, cookie, &format!("InstanceId={id}&User={login}")).await;
        if allowed {
            t.control_of("opened", T).await;
            t.type_line("echo who-$(id -u)").await;
            let uid = t.number_after("who-", T).await;
            assert_ne!(uid, 0, "{who} on {id} as {login}");
            t.close().await;
        } else {
            let err = t.control_of("error", T).await;
            assert_eq!(
                err["code"], "AuthFailure.UnauthorizedOperation",
                "{who} on {id} as {login}: {err}"
            );
            let msg = err["message"].as_str().unwrap();
            assert!(
                msg.contains("tat:StartSession")
                    && msg.contains(id.as_str())
                    && msg.contains(&format!("as login user {login}")),
                "{msg}"
            );
            t.until_closed(T).await;
            assert!(
                t.control.iter().all(|v| v["type"] != "opened") && t.screen.is_empty(),
                "{who} on {id} as {login}: {:?} {:?}",
                t.control,
                t.screen
            );
        }
    }
}

/// The hub's own interface, as the ssh gateway uses it: an exec session
/// (`command`) passes its output and exit status back; EOF on a shell's
/// input ends `cat` like ^D; input waits for the agent's credit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_sessions_and_eof_through_the_hub() {
    use drover::session::{self, SessionEvent, SessionPlan, Via, Who};
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let api = h.server.as_ref().unwrap().api.clone();
    let grants = drover::gate::Grants::root();
    let plan = |command: Option<&str>| SessionPlan {
        instance_id: id.clone(),
        login_user: "root".into(),
        command: command.map(str::to_string),
        cols: 80,
        rows: 24,
        via: Via::Ssh,
        client: "127.0.0.1:1".into(),
        who: Who {
            user_id: "root".into(),
            name: "root".into(),
            uin: "root".into(),
        },
        ..Default::default()
    };
    async fn collect(rx: &mut session::SessionRx) -> (String, Option<SessionEvent>) {
        let mut out = String::new();
        loop {
            match tokio::time::timeout(T, rx.recv())
                .await
                .expect("an event in time")
            {
                Some(SessionEvent::Data(b)) => out.push_str(&String::from_utf8_lossy(&b)),
                other => return (out, other),
            }
        }
    }
    let ok = session::decide(
        &api.gate,
        &grants,
        api.sessions.recording(),
        plan(Some("echo exec-$((2+5)); exit 7")),
    )
    .await
    .unwrap();
    let mut io = api.sessions.open(ok).await.unwrap();
    let (out, end) = collect(&mut io.rx).await;
    assert!(out.contains("exec-7"), "{out:?}");
    assert_eq!(
        end,
        Some(SessionEvent::Exit {
            code: Some(7),
            signal: None
        })
    );

    let ok = session::decide(
        &api.gate,
        &grants,
        api.sessions.recording(),
        plan(Some(
            "stty -echo; echo ready-$((1+1)); cat; echo cat-done-$((1+2))",
        )),
    )
    .await
    .unwrap();
    let mut io = api.sessions.open(ok).await.unwrap();
    // Typed ahead, input would be echoed before `stty -echo` ran.
    let mut ready = String::new();
    while !ready.contains("ready-2") {
        match tokio::time::timeout(T, io.rx.recv())
            .await
            .expect("ready in time")
        {
            Some(SessionEvent::Data(b)) => ready.push_str(&String::from_utf8_lossy(&b)),
            other => panic!("{other:?} before ready: {ready:?}"),
        }
    }
    // 3 MiB of input, more than the agent's window: send waits for credit.
    let line = "0123456789abcdef".repeat(4) + "\n";
    let big = line.repeat(3 * 1024 * 1024 / line.len());
    let tx = io.tx.clone();
    let writer = tokio::spawn(async move {
        tx.send(big.as_bytes()).await.unwrap();
        tx.eof().await.unwrap();
    });
    let (out, end) = collect(&mut io.rx).await;
    writer.await.unwrap();
    assert!(
        out.contains("cat-done-3"),
        "{}",
        &out[out.len().saturating_sub(200)..]
    );
    assert_eq!(
        end,
        Some(SessionEvent::Exit {
            code: Some(0),
            signal: None
        })
    );
    // Exec with pipes (ssh without a pty): output byte for byte, no echo,
    // no CRLF, stderr with stdout; EOF closes stdin.
    let mut p = plan(Some("printf 'a\\nb\\n'; echo err >&2; cat; exit 5"));
    p.exec_without_pty = true;
    let ok = session::decide(&api.gate, &grants, api.sessions.recording(), p)
        .await
        .unwrap();
    let mut piped = api.sessions.open(ok).await.unwrap();
    piped.tx.send(b"xyz\n").await.unwrap();
    piped.tx.eof().await.unwrap();
    let (raw, end) = collect(&mut piped.rx).await;
    assert_eq!(raw, "a\nb\nerr\nxyz\n");
    assert_eq!(
        end,
        Some(SessionEvent::Exit {
            code: Some(5),
            signal: None
        })
    );
    // Every line came back once, whole (echo is off: the kernel drops
    // echoes when the terminal's output is full, never input).
    let lines = out.matches(line.trim_end()).count();
    assert_eq!(lines, 3 * 1024 * 1024 / line.len(), "every line arrived");
}
