//! Session recordings on a real server (issue 11 item 5): sessions recorded
//! through `session::record::Recorder` into the server's own SQLite store,
//! on instances of real agents with tags, read back through the API by the
//! account and by sub-users whose policies allow some instances' sessions,
//! and downloaded as asciicast v2 from the console with a sign-in cookie.
//! A denied session and a session that does not exist get the same answer,
//! and a denied read changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use drover::session::record::{Meta, Recorder, Settings};
use drover::store::Store;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "Rec0rding-Pass!";

async fn cam(h: &Harness, action: &str, p: Value) -> Value {
    h.client
        .call_as("cam", "2019-01-16", action, &p)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// A sub-user (API keys and console password) with one policy.
async fn sub_user(h: &Harness, name: &str, statements: Value) -> Client {
    let u = cam(
        h,
        "AddUser",
        json!({"Name": name, "UseApi": 1, "ConsoleLogin": 1, "Password": PASSWORD}),
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
    h.client_as(
        u["SecretId"].as_str().unwrap(),
        u["SecretKey"].as_str().unwrap(),
    )
}

/// Records one session as the hub does: output in pieces that split a
/// multi-byte character, input, a resize, then the end.
async fn record(store: &Store, instance: &str, user: &str, text: &str) -> String {
    let id = drover::session::record::new_session_id();
    let meta = Meta {
        id: id.clone(),
        user_uin: format!("uin-of-{user}"),
        user_name: user.into(),
        via: "console".into(),
        client: "127.0.0.1:50000".into(),
        instance_id: instance.into(),
        login_user: "root".into(),
        command: None,
        cols: 80,
        rows: 24,
        term: "xterm-256color".into(),
        shell: "/bin/bash".into(),
        record_input: true,
    };
    let r = Recorder::start(store.clone(), meta, &Settings::default());
    let bytes = text.as_bytes();
    for piece in bytes.chunks(3) {
        r.output(piece);
    }
    r.input(b"exit\r");
    r.resize(132, 43);
    r.output(b"\r\nbye\r\n");
    r.finish(Some(0), "exit").wait().await;
    id
}

/// Parses an asciicast v2 file line by line: the header, then events whose
/// times never go back; returns (header, output text, event kinds).
fn parse_cast(cast: &str) -> (Value, String, Vec<String>) {
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let mut last = 0.0;
    let mut out = String::new();
    let mut kinds = Vec::new();
    for l in lines {
        let ev: Vec<Value> = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(ev.len(), 3, "{l}");
        let t = ev[0].as_f64().unwrap();
        assert!(t >= last, "time went back at {l}");
        last = t;
        let kind = ev[1].as_str().unwrap().to_string();
        let data = ev[2].as_str().unwrap();
        if kind == "o" {
            out.push_str(data);
        }
        kinds.push(kind);
    }
    (header, out, kinds)
}

async fn tls(h: &Harness) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = drover::tls::Trust::CaFile(h.data_dir().join("tls").join("cert.pem"))
        .client_config()
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tcp = TcpStream::connect(h.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// One HTTP/1.1 exchange: (status line, header lines, body).
async fn http(h: &Harness, head: &str, body: &str) -> (String, String, String) {
    let mut s = tls(h).await;
    let req = format!(
        "{head}\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.addr,
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let text = String::from_utf8(reply).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

/// Signs `name` in to the console; returns the session cookie.
async fn console_cookie(h: &Harness, name: &str) -> String {
    let body = json!({"UserName": name, "Password": PASSWORD}).to_string();
    let (status, headers, reply) = http(
        h,
        "POST /console/login HTTP/1.1\r\nContent-Type: application/json",
        &body,
    )
    .await;
    assert!(status.contains("200"), "{status} {reply}");
    let line = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    let cookie = line["set-cookie:".len()..].trim();
    cookie.split(';').next().unwrap().to_string()
}

async fn download(h: &Harness, cookie: &str, id: &str) -> (String, String, String) {
    http(
        h,
        &format!("GET /console/sessions/{id}.cast HTTP/1.1\r\nCookie: {cookie}"),
        "",
    )
    .await
}

fn message(e: &ClientError) -> String {
    match e {
        ClientError::Api { message, .. } => message.clone(),
        other => panic!("no API answer: {other}"),
    }
}

async fn audit_rows(h: &Harness) -> i64 {
    let r = h
        .call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["DescribeSessionRecording"]}]}),
        )
        .await;
    r["TotalCount"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_listed_read_and_downloaded_only_where_the_policy_allows() {
    let mut h = Harness::start().await;
    h.add_agents(2).await;
    let ids = h.agent_ids();
    let (lab, prod) = (ids[0].clone(), ids[1].clone());
    for (id, env) in [(&lab, "lab"), (&prod, "prod")] {
        h.call(
            "ModifyInstanceTags",
            json!({"InstanceId": id, "Tags": [{"Key": "env", "Value": env}]}),
        )
        .await;
    }
    let store = h.server.as_ref().unwrap().api.store.clone();
    let screen = "$ echo héllo ☃ 😀\r\nhéllo ☃ 😀\r\n";
    let on_lab = record(&store, &lab, "ann", screen).await;
    let on_prod = record(&store, &prod, "bob", "$ id\r\nuid=0(root)\r\n").await;

    // The account sees both, newest first, with who/where/when/bytes.
    let all = h.call("DescribeSessions", json!({})).await;
    assert_eq!(all["TotalCount"], 2, "{all}");
    let set = all["SessionSet"].as_array().unwrap();
    assert_eq!(set[0]["SessionId"], on_prod.as_str());
    let lab_row = &set[1];
    assert_eq!(lab_row["InstanceId"], lab.as_str());
    assert_eq!(lab_row["UserName"], "ann");
    assert_eq!(lab_row["LoginUser"], "root");
    assert_eq!(lab_row["Via"], "console");
    assert_eq!(lab_row["State"], "ENDED");
    assert_eq!(lab_row["ExitCode"], 0);
    assert_eq!(
        lab_row["BytesOut"].as_i64().unwrap() as usize,
        screen.len() + 7
    );
    assert_eq!(lab_row["BytesIn"], 5);
    assert_eq!(lab_row["Truncated"], false);
    assert!(lab_row["EndTime"].is_string());
    // Filters.
    let by = |f: Value| {
        let h = &h;
        async move {
            h.call("DescribeSessions", json!({ "Filters": f })).await["TotalCount"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(
        by(json!([{"Name": "instance-id", "Values": [lab]}])).await,
        1
    );
    assert_eq!(by(json!([{"Name": "user", "Values": ["bob"]}])).await, 1);
    assert_eq!(by(json!([{"Name": "state", "Values": ["LIVE"]}])).await, 0);
    let bad = h
        .call_err(
            "DescribeSessions",
            json!({"Filters": [{"Name": "state", "Values": ["ASLEEP"]}]}),
        )
        .await;
    assert_eq!(code(&bad), "InvalidParameterValue");

    // The account reads the recording through the API, in pages joined.
    let r = h
        .call("DescribeSessionRecording", json!({"SessionId": on_lab}))
        .await;
    assert_eq!(r["Format"], "asciicast-v2");
    assert_eq!(r["Complete"], true);
    let (header, out, kinds) = parse_cast(r["Cast"].as_str().unwrap());
    assert_eq!(header["width"], 80);
    assert_eq!(header["height"], 24);
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    assert_eq!(out, format!("{screen}\r\nbye\r\n"));
    assert!(kinds.contains(&"i".to_string()) && kinds.contains(&"r".to_string()));
    let mut paged = String::new();
    let mut offset = 0;
    // Page by page from the middle: each page resumes where the last ended.
    loop {
        let p = h
            .call(
                "DescribeSessionRecording",
                json!({"SessionId": on_lab, "Offset": offset}),
            )
            .await;
        paged.push_str(p["Cast"].as_str().unwrap());
        if p["Complete"] == true {
            break;
        }
        offset = p["NextOffset"].as_i64().unwrap();
    }
    assert_eq!(paged, r["Cast"].as_str().unwrap());
    let tail = h
        .call(
            "DescribeSessionRecording",
            json!({"SessionId": on_lab, "Offset": 2}),
        )
        .await;
    assert!(!tail["Cast"].as_str().unwrap().contains("\"version\""));
    assert!(r["Cast"]
        .as_str()
        .unwrap()
        .ends_with(tail["Cast"].as_str().unwrap()));

    // Ann may read sessions on lab instances only.
    let ann = sub_user(
        &h,
        "ann",
        json!([{
            "effect": "allow",
            "action": ["tat:DescribeSessions", "tat:DescribeSessionRecording"],
            "resource": ["*"],
            "condition": {"string_equal": {"qcs:resource_tag": ["env&lab"]}}
        }]),
    )
    .await;
    let seen = ann.call("DescribeSessions", &json!({})).await.unwrap();
    assert_eq!(seen["TotalCount"], 1, "{seen}");
    assert_eq!(seen["SessionSet"][0]["SessionId"], on_lab.as_str());
    let got = ann
        .call("DescribeSessionRecording", &json!({"SessionId": on_lab}))
        .await
        .unwrap();
    assert_eq!(parse_cast(got["Cast"].as_str().unwrap()).1, out);
    // A denied session and an unknown one: the same answer, naming nothing.
    let denied = ann
        .call("DescribeSessionRecording", &json!({"SessionId": on_prod}))
        .await
        .unwrap_err();
    let unknown = ann
        .call(
            "DescribeSessionRecording",
            &json!({"SessionId": "ses-zzzzzzzz"}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&denied), "AuthFailure.UnauthorizedOperation");
    assert_eq!(code(&unknown), code(&denied));
    assert_eq!(message(&denied), message(&unknown));
    assert!(!message(&denied).contains(&prod), "{denied}");
    // The account is told what does not exist; malformed ids are refused.
    let missing = h
        .call_err(
            "DescribeSessionRecording",
            json!({"SessionId": "ses-zzzzzzzz"}),
        )
        .await;
    assert_eq!(code(&missing), "ResourceNotFound.SessionNotFound");
    let malformed = h
        .call_err("DescribeSessionRecording", json!({"SessionId": "inv-1"}))
        .await;
    assert_eq!(code(&malformed), "InvalidParameterValue.InvalidSessionId");

    // Carl has no session permission at all: the list is refused outright.
    let carl = sub_user(
        &h,
        "carl",
        json!([{"effect": "allow", "action": ["tat:DescribeCommands"], "resource": ["*"]}]),
    )
    .await;
    let e = carl.call("DescribeSessions", &json!({})).await.unwrap_err();
    assert_eq!(code(&e), "AuthFailure.UnauthorizedOperation");

    // The console download: the same decisions, with the sign-in cookie.
    let cookie = console_cookie(&h, "ann").await;
    let audited = audit_rows(&h).await;
    let (status, headers, body) = download(&h, &cookie, &on_lab).await;
    assert!(status.contains("200"), "{status} {body}");
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("content-type: application/x-asciicast"));
    assert!(headers.contains(&format!("filename=\"{on_lab}.cast\"")));
    assert_eq!(body, r["Cast"].as_str().unwrap());
    let (s_denied, _, b_denied) = download(&h, &cookie, &on_prod).await;
    let (s_unknown, _, b_unknown) = download(&h, &cookie, "ses-zzzzzzzz").await;
    assert!(s_denied.contains("403"), "{s_denied}");
    assert_eq!(s_denied, s_unknown);
    let error = |b: &str| serde_json::from_str::<Value>(b).unwrap()["Response"]["Error"].clone();
    assert_eq!(error(&b_denied), error(&b_unknown));
    assert!(!b_denied.contains("uid=0"));
    // No cookie, no recording.
    let (s_anon, _, b_anon) = http(
        &h,
        &format!("GET /console/sessions/{on_lab}.cast HTTP/1.1"),
        "",
    )
    .await;
    assert!(s_anon.contains("401"), "{s_anon}");
    assert!(!b_anon.contains("héllo"));
    // Each download, allowed or not, left its audit row.
    assert_eq!(audit_rows(&h).await, audited + 3 + 1);
    // Nothing the denied reads did changed the sessions.
    let after = h.call("DescribeSessions", json!({})).await;
    assert_eq!(after["SessionSet"], all["SessionSet"]);
}

mod sessionkit;

const T: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole recording of `id` through DescribeSessionRecording's pages.
async fn whole_cast(h: &Harness, id: &str) -> String {
    let mut cast = String::new();
    let mut offset = 0;
    loop {
        let p = h
            .call(
                "DescribeSessionRecording",
                json!({"SessionId": id, "Offset": offset}),
            )
            .await;
        cast.push_str(p["Cast"].as_str().unwrap());
        if p["Complete"] == true {
            return cast;
        }
        assert!(p["NextOffset"].as_i64().unwrap() > offset || p["Cast"] == "");
        offset = p["NextOffset"].as_i64().unwrap();
    }
}

/// The session's row once it has ended (the recorder writes the end
/// shortly after the client hears of it).
async fn ended(h: &Harness, id: &str) -> Value {
    wait_for("the session to be recorded as ended", T, || async {
        let r = h
            .call(
                "DescribeSessions",
                json!({"Filters": [{"Name": "session-id", "Values": [id]}]}),
            )
            .await;
        let row = r["SessionSet"][0].clone();
        (row["State"] == "ENDED").then_some(row)
    })
    .await
}

/// End to end: a real shell through the console's WebSocket and a real
/// agent is recorded by the server; the recording holds what the terminal
/// showed, the resize, the exit, and replays as asciicast v2. Input is not
/// recorded unless a policy asks, and then it is, whatever the client does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_session_is_recorded_and_replays_as_asciicast() {
    let mut h = Harness::start().await;
    let inst = h.add_agent().await;
    let cookie = sessionkit::root_cookie(&h).await;
    let mut t = sessionkit::Term::connect(
        &h,
        &cookie,
        &format!("InstanceId={inst}&User=root&Cols=80&Rows=24"),
    )
    .await;
    let opened = t.control_of("opened", T).await;
    let id = opened["sessionId"].as_str().unwrap().to_string();
    // Listed while live.
    let live = wait_for("the live session to be listed", T, || async {
        let r = h
            .call(
                "DescribeSessions",
                json!({"Filters": [{"Name": "state", "Values": ["LIVE"]}]}),
            )
            .await;
        (r["TotalCount"] == 1).then_some(r["SessionSet"][0].clone())
    })
    .await;
    assert_eq!(live["SessionId"], id.as_str());
    assert_eq!(live["InstanceId"], inst.as_str());
    assert_eq!(live["UserName"], "root");
    assert_eq!(live["LoginUser"], "root");
    assert_eq!(live["RecordInput"], false);

    // What the shell prints differs from what is typed (arithmetic and
    // octal escapes), so the recording is checked for real output.
    t.type_line(r"printf 'rec-%s-\342\230\203\n' $((6*7))")
        .await;
    t.expect("rec-42-☃", T).await;
    t.resize(100, 30).await;
    t.type_line("stty size").await;
    t.expect("30 100", T).await;
    t.type_line("exit 3").await;
    let exit = t.control_of("exit", T).await;
    assert_eq!(exit["code"], 3);
    t.until_closed(T).await;

    let row = ended(&h, &id).await;
    assert_eq!(row["ExitCode"], 3, "{row}");
    assert!(row["BytesIn"].as_i64().unwrap() > 0);
    assert!(row["BytesOut"].as_i64().unwrap() >= row["RecordedBytes"].as_i64().unwrap());
    assert_eq!(row["Truncated"], false);
    let cast = whole_cast(&h, &id).await;
    let (header, out, kinds) = parse_cast(&cast);
    assert_eq!(
        (header["width"].clone(), header["height"].clone()),
        (json!(80), json!(24))
    );
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    assert!(out.contains("rec-42-☃"), "{out}");
    assert!(out.contains("30 100"), "{out}");
    assert!(cast.contains(r#", "r", "100x30"]"#), "{cast}");
    assert!(!kinds.contains(&"i".to_string()), "input recorded unasked");
    // Everything the client saw is in the recording, in order.
    // (The test client decodes each frame on its own, so a character split
    // across frames may differ there: compare the ASCII.)
    let ascii = |s: &str| s.chars().filter(char::is_ascii).collect::<String>();
    assert_eq!(
        ascii(&out),
        ascii(&t.screen),
        "the recording is what the terminal showed"
    );

    // A policy asks for input recording on this instance: the person
    // recorded cannot turn it off (the socket takes no such parameter;
    // an unknown one is refused).
    let password = "Sub-user-pass-1";
    let u = cam(
        &h,
        "AddUser",
        json!({"Name": "typist", "ConsoleLogin": 1, "Password": password}),
    )
    .await;
    let doc = json!({"version": "2.0", "statement": [
        {"effect": "allow", "action": ["tat:StartSession", "tat:RecordSessionInput"], "resource": "*"}
    ]});
    let pid = cam(
        &h,
        "CreatePolicy",
        json!({"PolicyName": "p_typist", "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        &h,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": u["Uin"]}),
    )
    .await;
    let (typist, _) = sessionkit::sign_in(&h, "typist", password).await;
    let mut t =
        sessionkit::Term::connect(&h, &typist, &format!("InstanceId={inst}&User=root")).await;
    let id2 = t.control_of("opened", T).await["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    t.type_line("echo typed-$((40+2))").await;
    t.expect("typed-42", T).await;
    t.type_line("exit").await;
    t.control_of("exit", T).await;
    let row = ended(&h, &id2).await;
    assert_eq!(row["RecordInput"], true, "{row}");
    assert_eq!(row["UserName"], "typist");
    let cast = whole_cast(&h, &id2).await;
    let typed: String = cast
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Vec<Value>>(l).unwrap())
        .filter(|e| e[1] == "i")
        .map(|e| e[2].as_str().unwrap().to_string())
        .collect();
    assert!(typed.contains("echo typed-$((40+2))\r"), "{typed:?}");
}
