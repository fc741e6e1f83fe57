//! The only module that touches SQLite.
//!
//! One database file in the data dir, in WAL mode with foreign keys on.
//! Writes go through a single writer thread that batches whatever jobs are
//! queued into one transaction (each job in its own savepoint, so one failing
//! job does not undo its neighbours) and reports each job's result only after
//! the batch has committed. Reads use a small pool of connections on the
//! blocking thread pool, so the async threads never wait on disk.
//!
//! Durability: the writer runs with `synchronous=FULL`, so a commit is on
//! disk (WAL fsynced) before any caller hears of it, and whatever the server
//! acknowledges (to an agent, an API client) survives power loss, not only
//! a crash of the process. The batching writer pays one fsync per batch.
//!
//! Fault injection: [`Faults`] makes commits fail as a full disk would. It
//! is compiled in and inert unless armed (by a test, or through the
//! `DROVER_FAULT_STORE_FULL=<trigger file>` variable of `drover server`).

mod schema;

pub mod audit;
pub mod client_tokens;
pub mod commands;
pub mod groups;
pub mod instances;
pub mod invocations;
pub mod invokers;
pub mod jobctl;
pub mod keys;
pub mod limits;
pub mod policies;
pub mod query;
pub mod recordings;
pub mod retention;
pub mod role_assignments;
pub mod root_login;
pub mod secrets;
pub mod sessions;
pub mod ssh_keys;
pub mod stats;
pub mod status;
pub mod tag_authority;
pub mod users;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store has shut down")]
    Closed,
    #[error("{entity} `{id}` not found")]
    NotFound { entity: Entity, id: String },
    #[error("{0}")]
    Conflict(String),
    /// A store-level rule refused the change (a name in use, a limit
    /// reached); the API maps each rule to its code.
    #[error("{1}")]
    Refused(Rule, String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&mut rusqlite::Transaction<'_>) -> Completion + Send>;

/// Most jobs one transaction takes: bounds latency of the first job in a batch.
const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub struct Store {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Jobs committed on their own ahead of the queue (`write_first`).
    first: Arc<Mutex<Vec<Job>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    faults: Faults,
}

/// A failpoint for the fault-injection tests: while armed, every write
/// batch fails at commit and is rolled back, as on a full disk.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    full: Arc<std::sync::atomic::AtomicBool>,
    /// Armed while this file exists (for a server in another process).
    trigger: Option<PathBuf>,
}

impl Faults {
    /// Arms (true) or disarms the full-disk fault.
    pub fn set_disk_full(&self, on: bool) {
        self.full.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn disk_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::SeqCst)
            || self.trigger.as_ref().is_some_and(|p| p.exists())
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Opens (creating and migrating) the database at `path` for synchronous
/// use: the writer thread, and `drover admin` while a server may be running.
pub fn open_sync(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    make_private(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    configure(&conn)?;
    // An acknowledged write must survive power loss (see the module doc).
    conn.pragma_update(None, "synchronous", "FULL")?;
    schema::migrate(&mut conn)?;
    make_private(path)?;
    Ok(conn)
}

/// The database, its WAL and its shared-memory file readable by the owner
/// only, whatever the umask was or an earlier version left. SQLite creates
/// the WAL and -shm with the database file's mode, so fixing the database
/// first covers files created later too.
fn make_private(db: &Path) -> Result<()> {
    let mut names = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        names.push(PathBuf::from(p));
    }
    for p in names {
        crate::fsutil::make_private_file(&p)
            .map_err(|e| StoreError::Corrupt(format!("cannot restrict {}: {e}", p.display())))?;
    }
    Ok(())
}

impl Store {
    /// Opens DATA_DIR/drover.db and starts the writer thread.
    pub fn open(data_dir: &Path) -> Result<Store> {
        let path = data_dir.join("drover.db");
        let conn = open_sync(&path)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(4096);
        let first: Arc<Mutex<Vec<Job>>> = Arc::default();
        let faults = Faults {
            full: Default::default(),
            trigger: std::env::var_os("DROVER_FAULT_STORE_FULL").map(PathBuf::from),
        };
        let writer_faults = faults.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let first = first.clone();
                move || writer_loop(conn, rx, &first, writer_faults)
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start writer: {e}")))?;
        Ok(Store {
            jobs: tx,
            first,
            readers: Arc::new(Mutex::new(Vec::new())),
            path,
            faults,
        })
    }

    /// The store's failpoints (fault-injection tests only).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Runs `f` inside the next write batch; resolves once it has committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (job, done) = job(f);
        // The queue is bounded: when it is full, wait for room off the async
        // threads (back-pressure) instead of growing without limit.
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                let sender = self.jobs.clone();
                tokio::task::spawn_blocking(move || sender.send(job))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// As `write`, but `f` commits in a small transaction of its own as
    /// soon as the batch that is running ends, ahead of every queued job:
    /// for a small write that someone waits on and that depends on nothing
    /// queued, such as an API call's audit row, so a read's answer does not
    /// wait behind thousands of agent reports (the queue holds up to 8
    /// batches). Callers await it, so the lane holds at most one job per
    /// waiting caller.
    pub async fn write_first<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (job, done) = job(f);
        self.first.lock().map_err(|_| StoreError::Closed)?.push(job);
        // Wakes an idle writer; a full queue means it is busy and takes
        // this lane before its next batch anyway.
        if let Err(std::sync::mpsc::TrySendError::Disconnected(_)) = self.jobs.try_send(wake()) {
            return Err(StoreError::Closed);
        }
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().ok().and_then(|mut v| v.pop());
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&c)?;
                    c
                }
            };
            let r = f(&conn);
            if let Ok(mut v) = readers.lock() {
                if v.len() < 8 {
                    v.push(conn);
                }
            }
            r
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// A write job running `f` in a savepoint of the batch's transaction, and
/// the receiver of its outcome once the batch has committed.
fn job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
    let job: Job = Box::new(move |tx| {
        let outcome = match tx.savepoint() {
            Ok(mut sp) => {
                let r = f(&sp);
                if r.is_ok() {
                    sp.commit().map_err(StoreError::from).and(r)
                } else {
                    let _ = sp.rollback();
                    r
                }
            }
            Err(e) => Err(StoreError::from(e)),
        };
        Box::new(move |committed: Result<()>| {
            let _ = done_tx.send(committed.and(outcome));
        })
    });
    (job, done_rx)
}

/// A job that does nothing: it only wakes the writer for the first lane.
fn wake() -> Job {
    Box::new(|_| Box::new(|_| {}))
}

fn writer_loop(
    mut conn: Connection,
    rx: std::sync::mpsc::Receiver<Job>,
    first_lane: &Mutex<Vec<Job>>,
    faults: Faults,
) {
    while let Ok(first) = rx.recv() {
        // The first lane commits on its own: a small transaction, so its
        // callers wait for at most the batch that was running when they
        // came, not also for a full one of their own.
        let lane = first_lane
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        if !lane.is_empty() {
            run_batch(&mut conn, lane, &faults);
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch, &faults);
    }
}

/// Runs `batch` in one transaction and tells each job how the commit went.
fn run_batch(conn: &mut Connection, batch: Vec<Job>, faults: &Faults) {
    let began = std::time::Instant::now();
    let m = &crate::metrics::METRICS;
    m.store_batch_jobs.observe(batch.len() as f64);
    let mut completions = Vec::with_capacity(batch.len());
    let committed = match conn.transaction() {
        Ok(mut tx) => {
            for job in batch {
                completions.push(job(&mut tx));
            }
            if faults.disk_full() {
                let _ = tx.rollback();
                Err(StoreError::Corrupt(
                    "database or disk is full (injected fault)".into(),
                ))
            } else {
                tx.commit().map_err(StoreError::from)
            }
        }
        Err(e) => {
            tracing::error!("store: cannot begin transaction: {e}");
            Err(StoreError::from(e))
        }
    };
    m.store_commit.observe_duration(began.elapsed());
    let failed = committed.as_ref().err().map(|e| e.to_string());
    for c in completions {
        c(match &failed {
            None => Ok(()),
            Some(msg) => Err(StoreError::Corrupt(format!("commit failed: {msg}"))),
        });
    }
}

/// `?N` placeholders for an IN list.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

/// Maps "no rows" to `NotFound { entity, id }`.
pub(crate) fn not_found(
    entity: Entity,
    id: &str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::missing(entity, id),
        other => StoreError::from(other),
    }
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Command,
    Invocation,
    Task,
    Instance,
    RegisterCode,
    Invoker,
    /// A user by name.
    User,
    /// A user by uin.
    Uin,
    Group,
    Policy,
    AccessKey,
    RoleAssignment,
    Secret,
    /// A terminal session.
    Session,
    /// A user's ssh public key (by KeyId).
    SshPublicKey,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Command => "command",
            Entity::Invocation => "invocation",
            Entity::Task => "invocation task",
            Entity::Instance => "instance",
            Entity::RegisterCode => "register code",
            Entity::Invoker => "invoker",
            Entity::User => "user",
            Entity::Uin => "user with uin",
            Entity::Group => "group",
            Entity::Policy => "policy",
            Entity::AccessKey => "access key",
            Entity::RoleAssignment => "role-assignment",
            Entity::Secret => "secret",
            Entity::Session => "session",
            Entity::SshPublicKey => "ssh public key",
        })
    }
}

/// A rule of the store that refused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    UserNameTaken,
    GroupNameTaken,
    PolicyNameTaken,
    PresetPolicy,
    KeyLimit,
    UserHasKeys,
    UserGroupFull,
    AttachmentFull,
    /// TAT's public commands belong to no account.
    LibraryCommand,
    /// An invoker's trigger was already handled.
    InvokerTriggerHandled,
    CommandInInvoker,
    SecretNameTaken,
    SecretLimit,
    /// A run's instance failed a check inside its write (`run::start`
    /// keeps the reason).
    RunInstance,
    /// A user holds as many ssh public keys as allowed.
    SshKeyLimit,
    /// The user already holds this ssh public key.
    SshKeyTaken,
}

impl StoreError {
    pub fn missing(entity: Entity, id: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            entity,
            id: id.into(),
        }
    }
}

#[cfg(test)]
pub(crate) fn test_conn() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    configure(&c).unwrap();
    schema::migrate(&mut c).unwrap();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_job_does_not_undo_its_batch_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.write(|c| {
            c.execute("INSERT INTO meta(key, value) VALUES ('a', '1')", [])?;
            Ok(())
        });
        let b = store.write(|c| {
            c.execute("INSERT INTO meta(key, value) VALUES ('b', '1')", [])?;
            Err::<(), _>(StoreError::Conflict("no".into()))
        });
        let (ra, rb) = tokio::join!(a, b);
        assert!(ra.is_ok());
        assert!(rb.is_err());
        let keys: Vec<String> = store
            .read(|c| {
                let mut st = c.prepare("SELECT key FROM meta WHERE key IN ('a','b')")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<std::result::Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(keys, vec!["a".to_string()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_lane_overtakes_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Hold the writer inside a batch until the queue is set up.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (busy_tx, busy) = tokio::sync::oneshot::channel::<()>();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |_| {
                        let _ = busy_tx.send(());
                        let _ = held.recv();
                        Ok(())
                    })
                    .await
            })
        };
        busy.await.unwrap();
        let queued = |name: &'static str| {
            let order = order.clone();
            job(move |_| {
                order.lock().unwrap().push(name);
                Ok(())
            })
        };
        let (a, a_done) = queued("queued");
        store.jobs.try_send(a).unwrap();
        let first = {
            let store = store.clone();
            let order = order.clone();
            tokio::spawn(async move {
                store
                    .write_first(move |_| {
                        order.lock().unwrap().push("first");
                        Ok(())
                    })
                    .await
            })
        };
        // The first lane holds it before the writer is let go.
        while store.first.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        first.await.unwrap().unwrap();
        a_done.await.unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), vec!["first", "queued"]);
    }
}
