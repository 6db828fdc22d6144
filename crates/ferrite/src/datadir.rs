//! The data directory: private modes (0700 for directories, 0600 for files: the database holds
//! every access key's secret and the CA its private key), made so at every start and said when
//! they had to be fixed; and the lock that keeps a second `ferrite serve` off the same directory.

use anyhow::{Context, bail};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The name of the lock file inside the data directory.
const LOCK_FILE: &str = "ferrite.lock";

/// Directories deeper than this under the data directory are not walked (Ferrite makes one level).
const MAX_DEPTH: usize = 4;

/// Creates the data directory if needed and makes it and everything in it private: directories
/// 0700, files 0600. A mode that was looser is fixed and logged with the path and the old mode.
/// The database file is created 0600 before SQLite opens it, so its `-wal` and `-shm` files,
/// which SQLite creates with the database's mode, are private too.
pub fn secure(dir: &Path) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    let mut stack: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        tighten(&d, 0o700)?;
        let entries = std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", d.display()))?;
            let kind = entry.file_type().with_context(|| format!("reading {}", entry.path().display()))?;
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((entry.path(), depth + 1));
            } else if kind.is_file() {
                tighten(&entry.path(), 0o600)?;
            }
        }
    }
    create_private_file(&dir.join("ferrite.db"))
}

/// The name of the file holding this node's id.
const NODE_FILE: &str = "node-id";

/// This node's id: random, made at the first start and kept in the data directory (each node
/// of a cluster has its own directory). It names what a node keeps apart in a shared database
/// (the shadow service's intake positions).
pub fn node_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(NODE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let id = awscore::id::random_hex(16);
    let mut f = OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(id.as_bytes()).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Creates an empty file with mode 0600 where it does not exist yet (a database file before
/// SQLite opens it, so that its `-wal` and `-shm` files are private too).
pub fn create_private_file(path: &Path) -> anyhow::Result<()> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(())
}

/// Creates a directory (and its parents) with mode 0700 where it does not exist yet.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating directory {}", dir.display()))
}

/// Clears the group and other bits of `path` (and sets the owner's to `mode`) when any are set.
fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading the mode of {}", path.display()))?;
    let old = meta.permissions().mode() & 0o777;
    if old & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("making {} private (mode {old:o})", path.display()))?;
    tracing::warn!(path = %path.display(), old_mode = format!("{old:o}"), new_mode = format!("{mode:o}"), "data directory entry was readable by others: mode fixed");
    Ok(())
}

/// Holds the data directory for this process until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the data directory's lock (an exclusive `flock` on `ferrite.lock`, which then holds
/// this process's pid), or fails with "data directory in use by pid N". The kernel releases the
/// lock when the process ends however it ends, so a crash never leaves a stale lock.
pub fn lock(dir: &Path) -> anyhow::Result<Lock> {
    create_private_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.is_empty() { "another process".to_string() } else { format!("pid {pid}") };
            bail!("data directory {} in use by {who}", dir.display());
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
    }
    file.set_len(0).and_then(|_| file.rewind()).and_then(|_| writeln!(file, "{}", std::process::id())).with_context(|| format!("writing {}", path.display()))?;
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secure_makes_everything_private() {
        let dir = std::env::temp_dir().join(format!("ferrite-datadir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        std::fs::write(dir.join("certs/server.pem"), "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("certs/server.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
        secure(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("certs")), 0o700);
        assert_eq!(mode(&dir.join("certs/server.pem")), 0o600);
        assert_eq!(mode(&dir.join("ferrite.db")), 0o600);
        let held = lock(&dir).unwrap();
        let again = lock(&dir).unwrap_err().to_string();
        assert!(again.contains(&format!("in use by pid {}", std::process::id())), "{again}");
        drop(held);
        assert!(lock(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
