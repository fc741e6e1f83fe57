//! Numbered migrations. Each runs once, in order, inside a transaction;
//! `PRAGMA user_version` records how far a database has come. Never edit a
//! released migration: add the next one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE access_keys (
        secret_id   TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL,
        secret_enc  BLOB NOT NULL,
        status      TEXT NOT NULL DEFAULT 'Active',
        created_ms  INTEGER NOT NULL
    );

    CREATE TABLE commands (
        id                 TEXT PRIMARY KEY,
        name               TEXT NOT NULL,
        description        TEXT NOT NULL,
        content            TEXT NOT NULL,
        command_type       TEXT NOT NULL,
        working_directory  TEXT NOT NULL,
        timeout            INTEGER NOT NULL,
        enable_parameter   INTEGER NOT NULL,
        default_parameters TEXT NOT NULL,
        default_parameter_confs TEXT NOT NULL,
        username           TEXT NOT NULL,
        cos_bucket_url     TEXT NOT NULL,
        cos_key_prefix     TEXT NOT NULL,
        tags               TEXT NOT NULL,
        created_by         TEXT NOT NULL,
        saved              INTEGER NOT NULL,
        created_ms         INTEGER NOT NULL,
        updated_ms         INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX commands_saved_name ON commands(name) WHERE saved = 1;

    CREATE TABLE invocations (
        id                 TEXT PRIMARY KEY,
        command_id         TEXT NOT NULL,
        command_name       TEXT NOT NULL,
        description        TEXT NOT NULL,
        content            TEXT NOT NULL,
        delivery_enc       BLOB NOT NULL,
        command_type       TEXT NOT NULL,
        timeout            INTEGER NOT NULL,
        working_directory  TEXT NOT NULL,
        username           TEXT NOT NULL,
        parameters         TEXT NOT NULL,
        default_parameters TEXT NOT NULL,
        cos_bucket_url     TEXT NOT NULL,
        cos_key_prefix     TEXT NOT NULL,
        source             TEXT NOT NULL,
        created_by         TEXT NOT NULL,
        created_ms         INTEGER NOT NULL,
        updated_ms         INTEGER NOT NULL
    );
    CREATE INDEX invocations_created ON invocations(created_ms);

    CREATE TABLE tasks (
        id                 TEXT PRIMARY KEY,
        invocation_id      TEXT NOT NULL REFERENCES invocations(id) ON DELETE CASCADE,
        instance_id        TEXT NOT NULL,
        command_id         TEXT NOT NULL,
        status             TEXT NOT NULL,
        exit_code          INTEGER,
        error_info         TEXT NOT NULL DEFAULT '',
        output_len         INTEGER NOT NULL DEFAULT 0,
        reported_len       INTEGER,
        deadline_ms        INTEGER NOT NULL,
        created_ms         INTEGER NOT NULL,
        updated_ms         INTEGER NOT NULL,
        start_ms           INTEGER NOT NULL DEFAULT 0,
        end_ms             INTEGER NOT NULL DEFAULT 0,
        exec_start_ms      INTEGER NOT NULL DEFAULT 0,
        exec_end_ms        INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tasks_invocation ON tasks(invocation_id);
    CREATE INDEX tasks_instance_status ON tasks(instance_id, status);
    CREATE INDEX tasks_status_deadline ON tasks(status, deadline_ms);

    CREATE TABLE task_output (
        task_id  TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        offset   INTEGER NOT NULL,
        data     BLOB NOT NULL,
        PRIMARY KEY (task_id, offset)
    ) WITHOUT ROWID;

    CREATE TABLE register_codes (
        id                   TEXT PRIMARY KEY,
        secret_hash          TEXT NOT NULL UNIQUE,
        description          TEXT NOT NULL,
        instance_name_prefix TEXT NOT NULL,
        register_limit       INTEGER NOT NULL,
        expired_ms           INTEGER NOT NULL,
        ip_range             TEXT NOT NULL,
        enabled              INTEGER NOT NULL,
        registered_count     INTEGER NOT NULL DEFAULT 0,
        created_ms           INTEGER NOT NULL,
        updated_ms           INTEGER NOT NULL
    );

    CREATE TABLE instances (
        id               TEXT PRIMARY KEY,
        register_code_id TEXT NOT NULL,
        name             TEXT NOT NULL,
        public_key       TEXT NOT NULL UNIQUE,
        machine_id       TEXT NOT NULL,
        system_name      TEXT NOT NULL,
        hostname         TEXT NOT NULL,
        local_ip         TEXT NOT NULL,
        agent_version    TEXT NOT NULL,
        command_types    TEXT NOT NULL,
        tags             TEXT NOT NULL DEFAULT '[]',
        last_seen_ms     INTEGER NOT NULL,
        created_ms       INTEGER NOT NULL,
        updated_ms       INTEGER NOT NULL
    );
    "#,
    // 2: identity (CAM): sub-users, groups, custom policies, attachments,
    // role assignments. Preset policies live in code (api::cam::presets), so
    // attachment tables name a policy id without a foreign key; custom policy
    // ids start above 100000000 so they never collide with a preset's.
    r#"
    ALTER TABLE access_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';
    CREATE INDEX access_keys_user ON access_keys(user_id);

    CREATE TABLE users (
        uin                 TEXT PRIMARY KEY,
        uid                 INTEGER NOT NULL UNIQUE,
        name                TEXT NOT NULL UNIQUE,
        remark              TEXT NOT NULL DEFAULT '',
        console_login       INTEGER NOT NULL DEFAULT 0,
        need_reset_password INTEGER NOT NULL DEFAULT 0,
        email               TEXT NOT NULL DEFAULT '',
        phone               TEXT NOT NULL DEFAULT '',
        country_code        TEXT NOT NULL DEFAULT '',
        password_hash       BLOB,
        failed_logins       INTEGER NOT NULL DEFAULT 0,
        locked_until_ms     INTEGER NOT NULL DEFAULT 0,
        last_login_ms       INTEGER NOT NULL DEFAULT 0,
        last_login_ip       TEXT NOT NULL DEFAULT '',
        created_ms          INTEGER NOT NULL
    );

    CREATE TABLE groups (
        group_id    INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT NOT NULL UNIQUE,
        remark      TEXT NOT NULL DEFAULT '',
        created_ms  INTEGER NOT NULL
    );

    CREATE TABLE group_members (
        group_id    INTEGER NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
        uin         TEXT NOT NULL REFERENCES users(uin) ON DELETE CASCADE,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (group_id, uin)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_uin ON group_members(uin);

    CREATE TABLE policies (
        policy_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        document    TEXT NOT NULL,
        type        INTEGER NOT NULL DEFAULT 1,
        tags        TEXT NOT NULL DEFAULT '[]',
        created_ms  INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL
    );
    INSERT INTO sqlite_sequence(name, seq) VALUES ('policies', 100000000);

    CREATE TABLE user_policy_attachments (
        uin         TEXT NOT NULL REFERENCES users(uin) ON DELETE CASCADE,
        policy_id   INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (uin, policy_id)
    ) WITHOUT ROWID;
    CREATE INDEX user_policy_attachments_policy ON user_policy_attachments(policy_id);

    CREATE TABLE group_policy_attachments (
        group_id    INTEGER NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
        policy_id   INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (group_id, policy_id)
    ) WITHOUT ROWID;
    CREATE INDEX group_policy_attachments_policy ON group_policy_attachments(policy_id);

    CREATE TABLE role_assignments (
        id              TEXT PRIMARY KEY,
        principal_type  TEXT NOT NULL CHECK (principal_type IN ('user', 'group')),
        principal_id    TEXT NOT NULL,
        role_name       TEXT NOT NULL,
        scope           TEXT NOT NULL,
        created_ms      INTEGER NOT NULL
    );
    CREATE INDEX role_assignments_principal ON role_assignments(principal_type, principal_id);
    "#,
    // 3: the audit log.
    r#"
    CREATE TABLE audit_events (
        id                 INTEGER PRIMARY KEY,
        time_ms            INTEGER NOT NULL,
        request_id         TEXT NOT NULL,
        principal          TEXT NOT NULL,
        secret_id          TEXT NOT NULL,
        source_ip          TEXT NOT NULL,
        service            TEXT NOT NULL,
        action             TEXT NOT NULL,
        resources          TEXT NOT NULL,
        decision           TEXT NOT NULL,
        deciding_statement TEXT NOT NULL,
        outcome            TEXT NOT NULL
    );
    CREATE INDEX audit_time ON audit_events(time_ms);
    CREATE INDEX audit_principal ON audit_events(principal, id);
    "#,
    // 4: web-console sessions.
    r#"
    CREATE TABLE console_sessions (
        token_hash    TEXT PRIMARY KEY,
        user_id       TEXT NOT NULL,
        csrf_hash     TEXT NOT NULL,
        created_ms    INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL,
        expires_ms    INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions(user_id);
    "#,
    // 5: invokers (scheduled execution) and their trigger records.
    r#"
    CREATE TABLE invokers (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        type            TEXT NOT NULL,
        command_id      TEXT NOT NULL,
        username        TEXT NOT NULL,
        parameters      TEXT,
        instance_ids    TEXT NOT NULL,
        enable          INTEGER NOT NULL,
        policy          TEXT NOT NULL,
        recurrence      TEXT NOT NULL,
        invoke_time_ms  INTEGER NOT NULL,
        tags            TEXT NOT NULL,
        last_fired_ms   INTEGER NOT NULL,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL
    );
    CREATE INDEX invokers_command ON invokers(command_id);

    CREATE TABLE invoker_records (
        id              INTEGER PRIMARY KEY,
        invoker_id      TEXT NOT NULL REFERENCES invokers(id) ON DELETE CASCADE,
        invoke_ms       INTEGER NOT NULL,
        reason          TEXT NOT NULL,
        invocation_id   TEXT NOT NULL,
        result          TEXT NOT NULL
    );
    CREATE INDEX invoker_records_invoker ON invoker_records(invoker_id, invoke_ms);
    "#,
    // 6: tag targeting and rate control. Register codes carry tags for the
    // instances they admit; an invocation (and an invoker) keeps its target
    // selector and rate limits as given (NULL: not used); a task `held`
    // back by MaxConcurrency waits PENDING until the roll-out releases it.
    r#"
    ALTER TABLE register_codes ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE invocations ADD COLUMN targets TEXT;
    ALTER TABLE invocations ADD COLUMN max_concurrency TEXT;
    ALTER TABLE invocations ADD COLUMN max_errors TEXT;
    ALTER TABLE tasks ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tasks_held ON tasks(invocation_id) WHERE held = 1;
    ALTER TABLE invokers ADD COLUMN targets TEXT;
    ALTER TABLE invokers ADD COLUMN max_concurrency TEXT;
    ALTER TABLE invokers ADD COLUMN max_errors TEXT;
    "#,
    // 7: job control. When a task was suspended (server clock, unix ms; 0 while
    // it runs), so its deadline can be pushed back by the time suspended.
    r#"
    ALTER TABLE tasks ADD COLUMN suspended_ms INTEGER NOT NULL DEFAULT 0;
    "#,
    // 8: secrets. Named values sealed with the data dir's key (AEAD, the name
    // as associated data); commands use them as {{secret:NAME}}.
    r#"
    CREATE TABLE secrets (
        name            TEXT PRIMARY KEY,
        value_enc       BLOB NOT NULL,
        description     TEXT NOT NULL DEFAULT '',
        created_by      TEXT NOT NULL DEFAULT '',
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL
    );
    "#,
    // 9: webhook notifications: each invocation's or invoker's webhook (the
    // key sealed, bound to its owner row), the queue of deliveries (one per
    // invocation) and the record of every attempt.
    r#"
    CREATE TABLE webhooks (
        owner_id        TEXT PRIMARY KEY,
        url             TEXT NOT NULL,
        secret_enc      BLOB NOT NULL,
        invoker_id      TEXT,
        created_ms      INTEGER NOT NULL
    );

    CREATE TABLE webhook_deliveries (
        id              TEXT PRIMARY KEY,
        invocation_id   TEXT NOT NULL UNIQUE,
        invoker_id      TEXT,
        url             TEXT NOT NULL,
        secret_owner    TEXT NOT NULL,
        secret_enc      BLOB NOT NULL,
        body            TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL,
        next_ms         INTEGER NOT NULL,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_ms);
    CREATE INDEX webhook_deliveries_invoker ON webhook_deliveries(invoker_id, created_ms);

    CREATE TABLE webhook_attempts (
        delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        attempt         INTEGER NOT NULL,
        at_ms           INTEGER NOT NULL,
        http_status     INTEGER,
        error           TEXT NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    );
    "#,
    // Invoker creators (issue 8): each trigger is decided against the
    // policy of whoever created or last changed the invoker. Invokers from
    // before have none and run nothing until someone allowed re-saves them.
    r#"
    ALTER TABLE invokers ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
    "#,
    // 11 (findings): register codes say which tag keys an agent may propose
    // at registration (JSON array of keys; empty: none). Other tags come
    // only from the code's Tags or from ModifyInstanceTags.
    r#"
    ALTER TABLE register_codes ADD COLUMN allowed_agent_tag_keys TEXT NOT NULL DEFAULT '[]';
    "#,
    // 12 (ops, client tokens): the first result of a start made with a
    // ClientToken, per principal and token, for 24 hours.
    r#"
    CREATE TABLE client_tokens (
        principal       TEXT NOT NULL,
        token           TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        result          TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        PRIMARY KEY (principal, token)
    );
    CREATE INDEX client_tokens_created ON client_tokens(created_ms);
    "#,
    // 13 (ops, output cap): bytes of a task's output received but not
    // stored because they were past --max-output-bytes. `output_len` stays
    // the length received, so stored = output_len - output_capped.
    r#"
    ALTER TABLE tasks ADD COLUMN output_capped INTEGER NOT NULL DEFAULT 0;
    "#,
    // 14 (sessions, recording): interactive sessions (who, where, as whom,
    // how it ended, bytes) and their recordings as timed chunks (asciicast
    // v2 events: o output, i input, r resize, m marker). `ended_ms` is NULL
    // while a session is live.
    r#"
    CREATE TABLE sessions (
        id              TEXT PRIMARY KEY,
        user_uin        TEXT NOT NULL,
        user_name       TEXT NOT NULL,
        via             TEXT NOT NULL,
        client          TEXT NOT NULL,
        instance_id     TEXT NOT NULL,
        login_user      TEXT NOT NULL,
        command         TEXT,
        term            TEXT NOT NULL,
        shell           TEXT NOT NULL,
        cols            INTEGER NOT NULL,
        rows            INTEGER NOT NULL,
        record_input    INTEGER NOT NULL,
        started_ms      INTEGER NOT NULL,
        ended_ms        INTEGER,
        exit_code       INTEGER,
        end_reason      TEXT NOT NULL DEFAULT '',
        bytes_out       INTEGER NOT NULL DEFAULT 0,
        bytes_in        INTEGER NOT NULL DEFAULT 0,
        recorded_bytes  INTEGER NOT NULL DEFAULT 0,
        dropped_bytes   INTEGER NOT NULL DEFAULT 0,
        truncated       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_started ON sessions(started_ms);
    CREATE INDEX sessions_instance ON sessions(instance_id, started_ms);
    CREATE INDEX sessions_live ON sessions(id) WHERE ended_ms IS NULL;

    CREATE TABLE session_chunks (
        session_id      TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,
        at_ms           INTEGER NOT NULL,
        kind            TEXT NOT NULL,
        data            BLOB NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    "#,
    // 15 (ssh gateway, issue 11): public keys a person signs in to the ssh
    // gateway with, per user ("root" or a sub-user's uin). The key is kept
    // in its OpenSSH one-line form without comment; the fingerprint is its
    // SHA256, unique per user (the same key may belong to two people).
    r#"
    CREATE TABLE ssh_public_keys (
        key_id       TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL,
        algorithm    TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        public_key   TEXT NOT NULL,
        description  TEXT NOT NULL,
        created_ms   INTEGER NOT NULL,
        last_used_ms INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX ssh_public_keys_user_fp ON ssh_public_keys(user_id, fingerprint);
    "#,
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_idempotent() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        super::migrate(&mut c).unwrap();
        super::migrate(&mut c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, super::MIGRATIONS.len());
    }
}
