//! Files that survive a crash whole: written beside their place, flushed to the disk,
//! renamed over the old file, and the folder flushed so the rename itself is on disk. A
//! reader sees the old file or the new one, never half of one, even after a power cut.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary file `path` is written as before the rename.
pub fn temp_for(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

/// Replaces `path` with `bytes`, durably.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_for(path);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    commit(&tmp, path)
}

/// Makes the finished temporary file `tmp` the file at `path`, durably: flushes `tmp`,
/// renames it and flushes the folder.
pub fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    // Opening a folder for fsync works on Unix; elsewhere the rename is what there is.
    #[cfg(unix)]
    File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replaced_file_holds_the_new_bytes_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        super::replace(&path, b"one").unwrap();
        super::replace(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!super::temp_for(&path).exists());
        // A folder that is gone is an error, not a silent loss.
        let gone = dir.path().join("gone/state.json");
        assert!(super::replace(&gone, b"x").is_err());
    }
}
