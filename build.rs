//! Builds the web console (console/) into `$OUT_DIR/console`, which
//! `src/web.rs` embeds with rust-embed. The console's npm packages come from
//! the registry through `npm ci` (pinned by console/package-lock.json) and
//! are never committed; esbuild bundles console/src into one script. Cargo
//! reruns this only when the console's sources or lock file change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| {
        format!("{what}: cannot start ({e}); the console build needs Node.js 18+ and npm on PATH")
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn main() -> Result<(), String> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let console = root.join("console");
    for p in ["src", "build.mjs", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed=console/{p}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?).join("console");
    // `npm ci` only when node_modules is missing or older than the lock file:
    // it wipes node_modules, and the registry need not be asked on every build.
    let stamp = console.join("node_modules").join(".package-lock.json");
    let lock = console.join("package-lock.json");
    let fresh = matches!((modified(&stamp), modified(&lock)), (Some(s), Some(l)) if s >= l);
    if !fresh {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&console),
            "npm ci (console/)",
        )?;
    }
    run(
        Command::new("node")
            .arg("build.mjs")
            .arg(&out)
            .current_dir(&console),
        "node console/build.mjs",
    )
}
