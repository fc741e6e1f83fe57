//! A session's forwarded ssh agent, on the instance: the Unix socket its
//! processes find in `SSH_AUTH_SOCK` (what `ssh -A` gives with OpenSSH's
//! own server). The session's relay accepts each connection and asks the
//! server to carry it to the ssh client's agent (`AuthAgentConnect`); the
//! bytes then move like a port forward's (`forward::pipe`).
//!
//! Only the login user (and root) may connect: the socket is theirs, 0600,
//! in a directory of its own named after the session (whose id is random),
//! made by the agent with an exclusive mkdir (never following a name
//! someone else made first). The
//! directory stays root's (0711: others may pass through, not list), so
//! nobody can swap it for a link while the session runs and make the agent
//! unlink some other `agent.sock` when it removes the socket at the end.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

pub(super) struct AuthSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

/// The directory of session `id`'s socket: named after the session (whose
/// id is random), so the clean-up after a crash finds it by the mark.
fn dir_of(id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("drover-agent-{id}"))
}

impl AuthSocket {
    /// Makes session `id`'s socket, owned by `owner` (uid, gid) when the
    /// session runs as another user than the agent.
    pub fn create(id: &str, owner: Option<(u32, u32)>) -> Result<AuthSocket, String> {
        let dir = dir_of(id);
        std::fs::DirBuilder::new()
            .mode(0o711)
            .create(&dir)
            .map_err(|e| format!("making {}: {e}", dir.display()))?;
        Self::inside(dir, owner)
    }

    fn inside(dir: PathBuf, owner: Option<(u32, u32)>) -> Result<AuthSocket, String> {
        let path = dir.join("agent.sock");
        let made = (|| {
            let listener = UnixListener::bind(&path)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            // The umask may have narrowed what mkdir made.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            }
            Ok::<_, std::io::Error>(listener)
        })();
        match made {
            Ok(listener) => Ok(AuthSocket {
                dir,
                path,
                listener,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
                Err(format!("making the agent socket {}: {e}", path.display()))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn accept(&self) -> std::io::Result<UnixStream> {
        self.listener.accept().await.map(|(s, _)| s)
    }
}

impl Drop for AuthSocket {
    fn drop(&mut self) {
        // The directory is ours: its entry cannot have been swapped.
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Removes what session `id`'s socket left behind when the agent died
/// before the session ended (`session_marks::sweep`): only a directory of
/// that name that is really a directory and ours.
pub(super) fn remove_left_over(id: &str) {
    use std::os::unix::fs::MetadataExt;
    let dir = dir_of(id);
    let ours =
        std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == super::sys::euid());
    if ours {
        let _ = std::fs::remove_file(dir.join("agent.sock"));
        let _ = std::fs::remove_dir(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn the_socket_is_private_and_goes_with_its_session() {
        let s = AuthSocket::create(&crate::ids::new_id("session"), None).expect("socket");
        let path = s.path().to_path_buf();
        let dir = path.parent().expect("dir").to_path_buf();
        let dmeta = std::fs::metadata(&dir).expect("dir meta");
        assert_eq!(dmeta.mode() & 0o777, 0o711);
        let smeta = std::fs::metadata(&path).expect("socket meta");
        assert_eq!(smeta.mode() & 0o777, 0o600);
        let client = tokio::spawn({
            let path = path.clone();
            async move { UnixStream::connect(path).await.is_ok() }
        });
        s.accept().await.expect("accept");
        assert!(client.await.expect("join"));
        drop(s);
        assert!(!path.exists() && !dir.exists());
    }

    #[test]
    fn what_a_crash_left_is_removed_by_the_sweep() {
        let id = crate::ids::new_id("session");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let s = runtime
            .block_on(async { AuthSocket::create(&id, None) })
            .expect("socket");
        let dir = s.path().parent().expect("dir").to_path_buf();
        // The agent died: nothing ran the socket's Drop.
        std::mem::forget(s);
        assert!(dir.join("agent.sock").exists());
        remove_left_over(&id);
        assert!(!dir.exists());
        // A name that is not ours is left alone.
        let other = crate::ids::new_id("session");
        std::os::unix::fs::symlink("/", dir_of(&other)).expect("link");
        remove_left_over(&other);
        assert!(std::fs::symlink_metadata(dir_of(&other)).is_ok());
        std::fs::remove_file(dir_of(&other)).expect("unlink");
    }
}
