//! The recorder against a real store (SQLite file in a temporary dir).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::session::asciicast::Encoder;

fn meta(id: &str) -> Meta {
    Meta {
        id: id.into(),
        user_uin: "100000000002".into(),
        user_name: "ann".into(),
        via: "console".into(),
        client: "127.0.0.1:4000".into(),
        instance_id: "mi-00000001".into(),
        login_user: "root".into(),
        command: None,
        cols: 80,
        rows: 24,
        term: "xterm-256color".into(),
        shell: "/bin/sh".into(),
        record_input: false,
    }
}

async fn session(store: &Store, id: &str) -> SessionRecord {
    let id = id.to_string();
    store
        .read(move |c| recordings::get(c, &id))
        .await
        .unwrap()
        .unwrap()
}

async fn all_chunks(store: &Store, id: &str) -> Vec<Chunk> {
    let id = id.to_string();
    store
        .read(move |c| recordings::chunks(c, &id, 0, usize::MAX))
        .await
        .unwrap()
}

fn text_of(chunks: &[Chunk], kind: Kind) -> String {
    let mut enc = Encoder::new();
    let mut out = String::new();
    for c in chunks.iter().filter(|c| c.kind == kind) {
        enc.chunk(c, &mut out);
    }
    enc.finish(&mut out);
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v[2].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn output_input_and_resizes_are_recorded_in_order_and_the_end_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut m = meta("ses-rec00001");
    m.record_input = true;
    let r = Recorder::start(store.clone(), m, &Settings::default());
    assert!(r.records_input());
    r.output(b"$ ");
    r.input(b"ls\r");
    r.output("ls\r\nfile-é".as_bytes());
    r.resize(120, 40);
    r.output(b"\r\n$ ");
    r.finish(Some(3), "exit").wait().await;

    let s = session(&store, "ses-rec00001").await;
    assert_eq!(s.exit_code, Some(3));
    assert_eq!(s.end_reason, "exit");
    assert!(s.ended_ms.unwrap() >= s.started_ms);
    assert!(s.record_input);
    assert_eq!(s.counters.bytes_out, 2 + 11 + 4);
    assert_eq!(s.counters.bytes_in, 3);
    assert_eq!(s.counters.recorded_bytes, 2 + 11 + 4 + 3);
    assert_eq!(s.counters.dropped_bytes, 0);
    assert!(!s.counters.truncated);

    let chunks = all_chunks(&store, "ses-rec00001").await;
    assert_eq!(text_of(&chunks, Kind::Output), "$ ls\r\nfile-é\r\n$ ");
    assert_eq!(text_of(&chunks, Kind::Input), "ls\r");
    let resize = chunks.iter().find(|c| c.kind == Kind::Resize).unwrap();
    assert_eq!(resize.data, b"120x40");
    // In the order the hub called, seq without gaps, time never back.
    for (i, w) in chunks.windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq + 1, "at {i}");
        assert!(w[1].at_ms >= w[0].at_ms);
    }
    let kinds: Vec<Kind> = chunks.iter().map(|c| c.kind).collect();
    let first_input = kinds.iter().position(|k| *k == Kind::Input).unwrap();
    let resize_at = kinds.iter().position(|k| *k == Kind::Resize).unwrap();
    assert!(first_input < resize_at);
    assert_eq!(kinds.last(), Some(&Kind::Output));
}

#[tokio::test]
async fn input_is_counted_but_not_recorded_unless_asked_and_the_server_setting_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Recorder::start(store.clone(), meta("ses-rec00002"), &Settings::default());
    assert!(!r.records_input());
    r.output(b"prompt");
    r.input(b"secret\r");
    r.finish(Some(0), "exit").wait().await;
    let s = session(&store, "ses-rec00002").await;
    assert_eq!(s.counters.bytes_in, 7);
    assert!(!s.record_input);
    let chunks = all_chunks(&store, "ses-rec00002").await;
    assert!(chunks.iter().all(|c| c.kind != Kind::Input));

    // The server setting records input whatever the session asked.
    let on = Settings {
        record_input: true,
        ..Settings::default()
    };
    let r = Recorder::start(store.clone(), meta("ses-rec00003"), &on);
    assert!(r.records_input());
    r.input(b"typed");
    r.finish(None, "closed").wait().await;
    let chunks = all_chunks(&store, "ses-rec00003").await;
    assert_eq!(text_of(&chunks, Kind::Input), "typed");
    let s = session(&store, "ses-rec00003").await;
    assert_eq!(s.exit_code, None);
    assert_eq!(s.end_reason, "closed");

    // Policies do not govern the account; a sub-user with no policy
    // allowing tat:RecordSessionInput is not recorded by policy.
    let inst = Resource::new("qcs::tat:r:uin/1:instance/mi-00000001".to_string());
    assert!(!input_required(
        &Settings::default(),
        &Grants::root(),
        &inst
    ));
    assert!(!input_required(
        &Settings::default(),
        &Grants::default(),
        &inst
    ));
    assert!(input_required(&on, &Grants::default(), &inst));
}

#[tokio::test]
async fn past_the_size_cap_bytes_are_dropped_counted_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let settings = Settings {
        max_bytes: 10,
        record_input: true,
    };
    let r = Recorder::start(store.clone(), meta("ses-rec00004"), &settings);
    r.output(b"0123456");
    r.output(b"789abcdef");
    r.output(b"more");
    r.input(b"abc");
    // Once the task has seen the cap, the hub's calls only count bytes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !r.shared.full_out.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the cap was never noted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.output(b"skipped");
    assert_eq!(r.shared.skipped_out.load(Ordering::Relaxed), 7);
    assert_eq!(r.shared.queued.load(Ordering::Relaxed), 0, "nothing copied");
    r.finish(Some(0), "exit").wait().await;
    let s = session(&store, "ses-rec00004").await;
    assert_eq!(s.counters.bytes_out, 27);
    assert_eq!(s.counters.recorded_bytes, 13);
    assert_eq!(s.counters.dropped_bytes, 17);
    assert!(s.counters.truncated);
    let chunks = all_chunks(&store, "ses-rec00004").await;
    assert_eq!(text_of(&chunks, Kind::Output), "0123456789");
    let markers: Vec<String> = chunks
        .iter()
        .filter(|c| c.kind == Kind::Marker)
        .map(|c| String::from_utf8(c.data.clone()).unwrap())
        .collect();
    assert_eq!(markers.len(), 1, "one marker when the cap is reached");
    assert!(markers[0].contains("size limit of 10 bytes"), "{markers:?}");
    // Input has its own budget.
    assert_eq!(text_of(&chunks, Kind::Input), "abc");
}

/// The hub's calls never wait: on a current-thread runtime the recorder
/// task cannot run while the test calls `output` in a loop, so the queue
/// fills, and what does not fit is dropped, counted and marked.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_without_blocking_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let settings = Settings {
        max_bytes: 0,
        record_input: true,
    };
    let r = Recorder::start(store.clone(), meta("ses-rec00005"), &settings);
    let piece = vec![b'x'; 1 << 20];
    let began = Instant::now();
    for _ in 0..12 {
        r.output(&piece);
    }
    // Input still fits in its headroom.
    r.input(b"whoami\r");
    assert!(began.elapsed() < Duration::from_secs(5));
    r.finish(Some(0), "exit").wait().await;
    let s = session(&store, "ses-rec00005").await;
    assert_eq!(s.counters.bytes_out, 12 << 20);
    assert!(s.counters.truncated);
    assert!(s.counters.dropped_bytes >= 4 << 20, "{:?}", s.counters);
    assert_eq!(
        s.counters.recorded_bytes + s.counters.dropped_bytes,
        (12 << 20) + 7
    );
    let chunks = all_chunks(&store, "ses-rec00005").await;
    let marker = chunks.iter().find(|c| c.kind == Kind::Marker).unwrap();
    let label = String::from_utf8(marker.data.clone()).unwrap();
    assert!(
        label.contains(&format!("{} bytes of output", s.counters.dropped_bytes)),
        "{label}"
    );
    assert_eq!(text_of(&chunks, Kind::Input), "whoami\r");
    // Chunks stay bounded in size even for a flood.
    assert!(chunks
        .iter()
        .all(|c| c.data.len() <= MAX_CHUNK.max(1 << 20)));
}

#[tokio::test]
async fn a_recorder_dropped_without_finish_still_ends_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Recorder::start(store.clone(), meta("ses-rec00006"), &Settings::default());
    r.output(b"bye");
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let id = "ses-rec00006".to_string();
        let s = store.read(move |c| recordings::get(c, &id)).await.unwrap();
        if let Some(s) = s.filter(|s| s.ended_ms.is_some()) {
            assert_eq!(s.end_reason, "recorder dropped");
            assert_eq!(s.counters.recorded_bytes, 3);
            break;
        }
        assert!(Instant::now() < deadline, "the session never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_write_is_counted_and_marked_once_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Recorder::start(store.clone(), meta("ses-rec00007"), &Settings::default());
    r.output(b"before");
    // Wait until the row and the first bytes are on disk.
    let deadline = Instant::now() + Duration::from_secs(30);
    while all_chunks_opt(&store, "ses-rec00007").await.is_empty() {
        assert!(Instant::now() < deadline, "nothing was written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.faults().set_disk_full(true);
    r.output(b"lost!");
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.shared.failed_writes.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the flush never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.faults().set_disk_full(false);
    r.output(b"after");
    r.finish(Some(0), "exit").wait().await;
    let s = session(&store, "ses-rec00007").await;
    assert_eq!(s.counters.bytes_out, 16);
    assert_eq!(s.counters.dropped_bytes, 5);
    assert!(s.counters.truncated);
    let chunks = all_chunks(&store, "ses-rec00007").await;
    assert_eq!(text_of(&chunks, Kind::Output), "beforeafter");
    assert!(chunks.iter().any(|c| c.kind == Kind::Marker
        && String::from_utf8_lossy(&c.data).contains("5 bytes not recorded (write failed)")));
}

async fn all_chunks_opt(store: &Store, id: &str) -> Vec<Chunk> {
    let id = id.to_string();
    store
        .read(move |c| recordings::chunks(c, &id, 0, usize::MAX))
        .await
        .unwrap_or_default()
}
