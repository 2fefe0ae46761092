//! Secret files: created with mode 0600 from the first byte (never written, then chmod'ed).

use crate::TrustError;
use std::io::Write;
use std::path::Path;

/// Writes `text` to a new file at `path` that only its owner can read. An existing file is
/// never overwritten (a key lost that way cannot be recovered).
pub fn write_secret(path: &Path, text: impl AsRef<[u8]>) -> Result<(), TrustError> {
    let io = |e: std::io::Error| TrustError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(text.as_ref()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a text file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, TrustError> {
    std::fs::read_to_string(path).map_err(|e| TrustError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    })
}

/// Parses a TOML statement, naming the file (or `what`) in the error.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, TrustError> {
    toml::from_str(text).map_err(|e| TrustError::Malformed(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_file_is_created_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/op.key");
        super::write_secret(&path, "one").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = super::write_secret(&path, "two").unwrap_err().to_string();
        assert!(e.contains("op.key"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
    }
}
