//! What a plugin may do: limits and explicit capability grants. The default is no
//! capability at all (no files, sockets, environment variables), a 1 s deadline per call and
//! a 256 MiB memory cap.
//!
//! A manifest is a TOML file next to the component (`policy.wasm` -> `policy.toml`):
//!
//! ```toml
//! deadline-ms = 500
//! memory-mib = 64
//! [grants]
//! env = ["MODEL_DIR"]                                   # copied from the host's environment
//! connect = ["127.0.0.1:9000"]                          # TCP connect to exactly these addresses
//! preopens = [{ host = "/srv/data", guest = "/data", writable = false }]
//! ```

use crate::{PluginError, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default deadline of one call into a plugin.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);
/// Default memory cap of one instance. Plugins see untrusted-sized inputs; the cap bounds
/// what a buggy or hostile one can take from the node.
pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;
/// Largest deadline a manifest may ask for: a stuck policy must not stall a cluster.
pub const MAX_DEADLINE: Duration = Duration::from_secs(600);

/// Time and memory limits of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of every call.
    pub deadline: Duration,
    /// Maximum linear memory of an instance, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
        }
    }
}

/// A host directory made visible to the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreopenGrant {
    /// Directory on the host.
    pub host: PathBuf,
    /// Path the plugin sees.
    pub guest: String,
    /// Whether the plugin may write (default: read only).
    #[serde(default)]
    pub writable: bool,
}

/// Capabilities granted explicitly; empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Names of host environment variables passed through.
    #[serde(default)]
    pub env: Vec<String>,
    /// Socket addresses (`ip:port`) the plugin may open TCP connections to. Such a grant also
    /// allows the implicit bind to the wildcard address and an ephemeral port that `connect`
    /// performs; UDP and name lookups stay denied.
    #[serde(default)]
    pub connect: Vec<std::net::SocketAddr>,
    /// Directories made visible.
    #[serde(default)]
    pub preopens: Vec<PreopenGrant>,
}

impl Grants {
    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self == &Grants::default()
    }
}

/// Limits and grants of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Time and memory limits.
    pub limits: Limits,
    /// Capabilities.
    pub grants: Grants,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ManifestFile {
    deadline_ms: Option<u64>,
    memory_mib: Option<usize>,
    #[serde(default)]
    grants: Grants,
}

impl Manifest {
    /// Parses a manifest from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: ManifestFile =
            toml::from_str(text).map_err(|e| PluginError::Manifest(e.to_string()))?;
        let mut limits = Limits::default();
        if let Some(ms) = file.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
            if limits.deadline.is_zero() || limits.deadline > MAX_DEADLINE {
                return Err(PluginError::Manifest(format!(
                    "deadline-ms = {ms} is outside 1..={}",
                    MAX_DEADLINE.as_millis()
                )));
            }
        }
        if let Some(mib) = file.memory_mib {
            if mib == 0 || mib > 4096 {
                return Err(PluginError::Manifest(format!(
                    "memory-mib = {mib} is outside 1..=4096"
                )));
            }
            limits.memory_bytes = mib << 20;
        }
        Ok(Self {
            limits,
            grants: file.grants,
        })
    }

    /// Reads the manifest next to `wasm` (same stem, `.toml`), or the default when there is
    /// none.
    pub fn for_component(wasm: &Path) -> Result<Self> {
        let path = wasm.with_extension("toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&text)
                .map_err(|e| PluginError::Manifest(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(cause) => Err(PluginError::Io {
                path: path.display().to_string(),
                cause,
            }),
        }
    }
}
