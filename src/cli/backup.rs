//! `drover admin backup` and `drover admin restore`: a consistent copy of
//! an appliance, taken while the server runs, and its return into a new
//! data directory.
//!
//! A backup is a directory (mode 0700, files 0600):
//!
//! ```text
//! BACKUP/
//!   drover.db       SQLite snapshot made with VACUUM INTO (one consistent
//!                   read transaction; no WAL to carry along)
//!   secret.key      the key sealing API keys, secrets and webhook keys
//!   tls/cert.pem    the server certificate agents pin (register codes carry
//!   tls/key.pem     its SHA-256), so restored agents reconnect as they are
//!   MANIFEST.json   {"Format": 1, "CreatedTime", "DroverVersion",
//!                    "Files": {name: sha256}}
//! ```
//!
//! Restore checks every file against the manifest and the database's
//! integrity, refuses a data directory that already holds a database, and
//! writes the files with private modes. Agents keep their identities (their
//! keys are registered in the database) and reconnect without registering
//! again. A certificate given with `--tls-cert` is not in the data
//! directory and must be kept by whoever supplies it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

const FORMAT: u64 = 1;
/// Files besides the database, relative to the data directory.
const FILES: &[&str] = &["secret.key", "tls/cert.pem", "tls/key.pem"];
const MANIFEST: &str = "MANIFEST.json";

fn sha256_file(p: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    Ok(crate::sign::sha256_hex(&bytes))
}

/// Copies `from` to `to`, readable by the owner only.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    if let Some(dir) = to.parent() {
        crate::fsutil::create_private_dir(dir)?;
    }
    crate::fsutil::write_private(to, &bytes).with_context(|| format!("writing {}", to.display()))
}

/// Writes a backup of `data_dir` into the new directory `out`.
pub fn backup(data_dir: &Path, out: &Path) -> anyhow::Result<Value> {
    let db = data_dir.join("drover.db");
    ensure!(db.exists(), "no database at {}", db.display());
    ensure!(!out.exists(), "{} already exists", out.display());
    crate::fsutil::create_private_dir(out)?;
    let snapshot = out.join("drover.db");
    {
        let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let target = snapshot
            .to_str()
            .context("the backup path must be valid UTF-8")?;
        conn.execute("VACUUM INTO ?1", [target])
            .context("snapshotting the database")?;
    }
    crate::fsutil::make_private_file(&snapshot)?;
    let mut files = BTreeMap::new();
    files.insert("drover.db".to_string(), sha256_file(&snapshot)?);
    for f in FILES {
        let src = data_dir.join(f);
        if !src.exists() {
            bail!("{} is missing", src.display());
        }
        copy_private(&src, &out.join(f))?;
        files.insert(f.to_string(), sha256_file(&out.join(f))?);
    }
    let manifest = json!({
        "Format": FORMAT,
        "CreatedTime": crate::timefmt::iso(crate::timefmt::now_ms()),
        "DroverVersion": env!("CARGO_PKG_VERSION"),
        "Files": files,
    });
    crate::fsutil::write_private(&out.join(MANIFEST), manifest.to_string().as_bytes())?;
    Ok(manifest)
}

/// Restores the backup `from` into `data_dir`, which must not hold a
/// database yet.
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(from.join(MANIFEST))
        .with_context(|| format!("{} is not a drover backup", from.display()))?;
    let manifest: Value = serde_json::from_str(&text).context("reading the manifest")?;
    ensure!(
        manifest["Format"] == FORMAT,
        "backup format {} is not supported",
        manifest["Format"]
    );
    let files = manifest["Files"]
        .as_object()
        .context("the manifest lists no files")?;
    ensure!(
        files.len() == FILES.len() + 1 && files.contains_key("drover.db"),
        "the manifest does not list the expected files"
    );
    for (name, sum) in files {
        ensure!(
            name == "drover.db" || FILES.contains(&name.as_str()),
            "unexpected file {name} in the manifest"
        );
        let got = sha256_file(&from.join(name))?;
        ensure!(
            Some(got.as_str()) == sum.as_str(),
            "{name} does not match its checksum"
        );
    }
    {
        let conn =
            Connection::open_with_flags(from.join("drover.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        ensure!(ok == "ok", "the database fails its integrity check: {ok}");
    }
    let db = data_dir.join("drover.db");
    ensure!(
        !db.exists(),
        "{} already holds a database: restore into a new data directory",
        data_dir.display()
    );
    crate::fsutil::create_private_dir(data_dir)?;
    for f in FILES {
        copy_private(&from.join(f), &data_dir.join(f))?;
    }
    // The database last: a data directory with a database is a complete one.
    copy_private(&from.join("drover.db"), &db)?;
    crate::store::open_sync(&db).context("opening the restored database")?;
    Ok(())
}
