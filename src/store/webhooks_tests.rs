//! Unit tests of the webhook store: the once-only queue, leases, attempts.

use super::*;
use crate::store::invocations::fixtures;
use crate::store::status::TaskStatus;

fn delivery(id: &str, inv: &str) -> Delivery {
    Delivery {
        id: id.into(),
        invocation_id: inv.into(),
        invoker_id: None,
        url: "http://127.0.0.1:9/hook".into(),
        secret_owner: inv.into(),
        secret_enc: vec![1, 2, 3],
        body: "{}".into(),
        status: PENDING.into(),
        attempts: 0,
        next_ms: 100,
        created_ms: 100,
        updated_ms: 100,
    }
}

#[test]
fn one_delivery_per_invocation_and_leases() {
    let c = crate::store::test_conn();
    assert!(enqueue(&c, &delivery("whd-aaaaaaaa", "inv-aaaaaaaa")).unwrap());
    assert!(!enqueue(&c, &delivery("whd-bbbbbbbb", "inv-aaaaaaaa")).unwrap());
    assert!(claim_due(&c, 99, 5_000, 10).unwrap().is_empty());
    let due = claim_due(&c, 100, 5_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    // Leased: not due again until the lease ends.
    assert!(claim_due(&c, 200, 6_000, 10).unwrap().is_empty());
    assert_eq!(next_due(&c).unwrap(), Some(5_000));
    let a = Attempt {
        delivery_id: "whd-aaaaaaaa".into(),
        attempt: 1,
        at_ms: 300,
        http_status: Some(500),
        error: "HTTP 500".into(),
    };
    record_attempt(&c, &a, PENDING, 1_300).unwrap();
    let b = Attempt {
        attempt: 2,
        at_ms: 1_400,
        http_status: Some(204),
        error: String::new(),
        ..a.clone()
    };
    record_attempt(&c, &b, DELIVERED, 0).unwrap();
    let page = Page {
        offset: 0,
        limit: 20,
    };
    let q = DeliveryQuery {
        invocation_ids: vec!["inv-aaaaaaaa".into()],
        ..Default::default()
    };
    let (n, rows) = list(&c, &q, page).unwrap();
    assert_eq!(
        (n, rows[0].status.as_str(), rows[0].attempts),
        (1, DELIVERED, 2)
    );
    assert_eq!(attempts_of(&c, &["whd-aaaaaaaa".into()]).unwrap().len(), 2);
    assert_eq!(next_due(&c).unwrap(), None);
    // A final delivery is never moved back by a late attempt record.
    record_attempt(&c, &a, PENDING, 9).unwrap();
    assert_eq!(
        statuses(&c, &["inv-aaaaaaaa".into()]).unwrap()["inv-aaaaaaaa"],
        DELIVERED
    );
}

#[test]
fn finished_only_when_every_task_is_final() {
    let c = crate::store::test_conn();
    let inv = Invocation {
        command_id: "cmd-aaaaaaaa".into(),
        ..fixtures::invocation("inv-aaaaaaaa")
    };
    let mk = |id: &str, status| Task {
        command_id: "cmd-aaaaaaaa".into(),
        deadline_ms: 0,
        ..fixtures::task(id, "inv-aaaaaaaa", "mi-aaaaaaaa", status)
    };
    let tasks = [
        mk("invt-aaaaaaaa", TaskStatus::Success),
        mk("invt-bbbbbbbb", TaskStatus::Running),
    ];
    invocations::insert(&c, &inv, &tasks).unwrap();
    // No webhook: nothing to notify.
    assert!(finished_invocation(&c, "invt-aaaaaaaa").unwrap().is_none());
    put(
        &c,
        &Config {
            owner_id: "inv-aaaaaaaa".into(),
            url: "http://x/".into(),
            secret_enc: vec![9],
            invoker_id: None,
            created_ms: 1,
        },
    )
    .unwrap();
    assert!(finished_invocation(&c, "invt-aaaaaaaa").unwrap().is_none());
    c.execute(
        "UPDATE tasks SET status = 'FAILED' WHERE id = 'invt-bbbbbbbb'",
        [],
    )
    .unwrap();
    let f = finished_invocation(&c, "invt-bbbbbbbb").unwrap().unwrap();
    assert_eq!((f.tasks.len(), f.webhook.url.as_str()), (2, "http://x/"));
    enqueue(&c, &delivery("whd-aaaaaaaa", "inv-aaaaaaaa")).unwrap();
    assert!(finished_invocation(&c, "invt-bbbbbbbb").unwrap().is_none());
    assert_eq!(
        urls(&c, &["inv-aaaaaaaa".into(), "inv-bbbbbbbb".into()])
            .unwrap()
            .len(),
        1
    );
    delete(&c, "inv-aaaaaaaa").unwrap();
    assert!(get(&c, "inv-aaaaaaaa").unwrap().is_none());
}
