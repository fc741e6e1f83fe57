//! A run's settings (user, directory, timeout, output location), checked
//! the same way whether they come from a command or from a call.

use super::error::{Problem, RunError, R};

pub fn check_timeout(t: i64) -> R<()> {
    if !(1..=86400).contains(&t) {
        return Err(RunError::new(
            Problem::Range,
            format!("Timeout must be between 1 and 86400 seconds, got {t}"),
        ));
    }
    Ok(())
}

pub fn check_username(u: &str) -> R<()> {
    let ok = u.len() <= 256
        && u.chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != ':' && c != '/');
    if !ok {
        return Err(RunError::new(
            Problem::InvalidUsername,
            format!("{u:?} is not a valid user name"),
        ));
    }
    Ok(())
}

/// TAT's default working directory is /root; for a command that runs as
/// another user, "" lets the agent use that user's home, which they can enter.
pub fn default_workdir(username: &str) -> &'static str {
    if username.is_empty() || username == "root" {
        "/root"
    } else {
        ""
    }
}

pub fn check_workdir(d: &str, command_type: &str) -> R<()> {
    let unix = command_type == "SHELL" || command_type == "PYTHON";
    let bad = d.len() > 512 || d.contains('\0') || (unix && !d.is_empty() && !d.starts_with('/'));
    if bad {
        return Err(RunError::new(
            Problem::InvalidWorkingDirectory,
            format!("WorkingDirectory {d:?} must be an absolute path"),
        ));
    }
    Ok(())
}

pub fn check_cos(url: &str, prefix: &str) -> R<()> {
    if !url.is_empty() && !url.starts_with("https://") {
        return Err(RunError::new(
            Problem::InvalidCosBucketUrl,
            "OutputCOSBucketUrl must start with https://",
        ));
    }
    let bad_prefix = prefix.chars().count() > 60
        || prefix.starts_with('/')
        || prefix.contains("//")
        || prefix.split('/').any(|p| p == "..");
    if bad_prefix {
        return Err(RunError::new(
            Problem::InvalidCosKeyPrefix,
            "OutputCOSKeyPrefix: at most 60 characters, no leading /, no //, no .. segment",
        ));
    }
    Ok(())
}
