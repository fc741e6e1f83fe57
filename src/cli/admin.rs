//! `drover admin`: set-up on the server's data directory. Safe to run while
//! the server is up: SQLite in WAL mode takes the second writer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::crypto::SecretBox;
use crate::ids::random_token;
use crate::store::keys::{self, AccessKey};

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an API key for the appliance's root account and print it as JSON.
    CreateKey {
        #[arg(long, default_value_os_t = super::default_server_dir())]
        data_dir: PathBuf,
    },
    /// Set the console password of the account's root user (sign in to the
    /// web console as "root"). Reads the password from standard input (one
    /// line), or makes and prints a random one with --generate.
    SetPassword {
        #[arg(long, default_value_os_t = super::default_server_dir())]
        data_dir: PathBuf,
        /// Generate a random password and print it.
        #[arg(long)]
        generate: bool,
    },
    /// Remove what is past its retention now (the server also does this
    /// daily): finished invocations older than --retention-days, audit
    /// events older than --audit-retention-days, terminal sessions ended
    /// more than --session-retention-days ago. Safe while the server runs.
    Prune {
        #[arg(long, default_value_os_t = super::default_server_dir())]
        data_dir: PathBuf,
        /// Days invocations are kept; 0 keeps them.
        #[arg(long, default_value_t = 90)]
        retention_days: u32,
        /// Days audit events are kept; 0 keeps them.
        #[arg(long, default_value_t = 365)]
        audit_retention_days: u32,
        /// Days ended terminal sessions and their recordings are kept; 0
        /// keeps them.
        #[arg(long, default_value_t = 90)]
        session_retention_days: u32,
    },
    /// Copy the appliance (database snapshot, secret key, TLS certificate
    /// and key) into the new directory BACKUP; safe while the server runs.
    Backup {
        #[arg(long, default_value_os_t = super::default_server_dir())]
        data_dir: PathBuf,
        /// Directory to create for the backup.
        backup: PathBuf,
    },
    /// Restore BACKUP into a data directory that holds no database yet;
    /// then start the server on it. Agents reconnect as they were.
    Restore {
        #[arg(long, default_value_os_t = super::default_server_dir())]
        data_dir: PathBuf,
        /// A directory written by `drover admin backup`.
        backup: PathBuf,
    },
    /// Print the audit log as JSON lines, oldest first.
    ExportAudit {
        #[arg(long, default_value_os_t = super::default_server_dir())]
        data_dir: PathBuf,
        /// Only events at or after this time (YYYY-MM-DDThh:mm:ssZ).
        #[arg(long)]
        since: Option<String>,
    },
}

/// Creates a root key; returns (SecretId, SecretKey).
pub fn create_root_key(data_dir: &Path) -> anyhow::Result<(String, String)> {
    crate::fsutil::create_private_dir(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let secrets = SecretBox::open(data_dir)?;
    let conn = crate::store::open_sync(&data_dir.join("drover.db"))?;
    keys::account_uin(&conn)?;
    let secret_id = format!("AKID{}", random_token(32));
    let secret_key = random_token(32);
    let key = AccessKey {
        secret_enc: secrets.seal(&format!("key:{secret_id}"), secret_key.as_bytes()),
        secret_id: secret_id.clone(),
        user_id: "root".into(),
        active: true,
        description: String::new(),
    };
    keys::insert(&conn, &key, crate::timefmt::now_ms())?;
    Ok((secret_id, secret_key))
}

/// Shortest console password accepted for root.
const MIN_PASSWORD: usize = 8;

/// Sets root's console password in `data_dir`'s database.
pub fn set_root_password(data_dir: &Path, password: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD,
        "the password must have at least {MIN_PASSWORD} characters"
    );
    crate::fsutil::create_private_dir(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let conn = crate::store::open_sync(&data_dir.join("drover.db"))?;
    keys::account_uin(&conn)?;
    crate::store::root_login::set_password(&conn, &crate::crypto::hash_password(password))?;
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("New console password for root: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Prunes the data dir's database by `r`.
pub fn prune(
    data_dir: &Path,
    r: &crate::store::retention::Retention,
) -> anyhow::Result<crate::store::retention::Pruned> {
    let db = data_dir.join("drover.db");
    anyhow::ensure!(db.exists(), "no database at {}", db.display());
    let mut conn = crate::store::open_sync(&db)?;
    Ok(crate::store::retention::prune_all(
        &mut conn,
        r,
        crate::timefmt::now_ms(),
    )?)
}

fn export_audit(data_dir: &Path, since: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let since_ms = match since {
        Some(s) => Some(
            crate::timefmt::parse_iso(s).context("--since must look like 2024-01-02T03:04:05Z")?,
        ),
        None => None,
    };
    let db = data_dir.join("drover.db");
    anyhow::ensure!(db.exists(), "no database at {}", db.display());
    let conn = crate::store::open_sync(&db)?;
    let q = crate::store::audit::AuditQuery {
        since_ms,
        ..Default::default()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    crate::store::audit::for_each(&conn, &q, |e| {
        if failed.is_none() {
            if let Err(err) = serde_json::to_writer(&mut out, &e)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
            {
                failed = Some(err);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    Ok(())
}

pub fn main(args: AdminArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AdminCommand::CreateKey { data_dir } => {
            let (id, key) = create_root_key(&data_dir)?;
            println!(
                "{}",
                serde_json::json!({ "SecretId": id, "SecretKey": key })
            );
        }
        AdminCommand::SetPassword { data_dir, generate } => {
            let password = if generate {
                random_token(20)
            } else {
                read_password()?
            };
            set_root_password(&data_dir, &password)?;
            if generate {
                println!("{password}");
            } else {
                eprintln!("root's console password is set; sign in as user \"root\"");
            }
        }
        AdminCommand::ExportAudit { data_dir, since } => export_audit(&data_dir, since.as_deref())?,
        AdminCommand::Backup { data_dir, backup } => {
            let manifest = super::backup::backup(&data_dir, &backup)?;
            println!("{manifest}");
        }
        AdminCommand::Restore { data_dir, backup } => {
            super::backup::restore(&backup, &data_dir)?;
            eprintln!("restored {} into {}", backup.display(), data_dir.display());
        }
        AdminCommand::Prune {
            data_dir,
            retention_days,
            audit_retention_days,
            session_retention_days,
        } => {
            let r =
                crate::store::retention::Retention::from_days(retention_days, audit_retention_days)
                    .with_session_days(session_retention_days);
            let p = prune(&data_dir, &r)?;
            println!(
                "{}",
                serde_json::json!({
                    "Invocations": p.invocations,
                    "AuditEvents": p.audit_events,
                    "Sessions": p.sessions,
                    "Other": p.other,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
