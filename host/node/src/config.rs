//! The host's configuration: a TOML file (`--config`), with every key also a flag; a flag
//! wins over the file, and the file over the defaults. Unknown keys are refused.
//!
//! ```toml
//! listen = "/ip4/0.0.0.0/tcp/4001"
//! bootstrap = ["/ip4/10.0.0.2/tcp/4001/p2p/12D3KooW..."]
//! tier = "edge"                     # server | edge
//! labels = { site = "lab", board = "jetson" }
//! data-dir = "/var/lib/infra"       # jobs, checkpoints, installed plugins, compiled code
//! grpc = "127.0.0.1:7070"          # beyond loopback: TLS only (a self-signed certificate in
//!                                   # data-dir unless grpc-cert and grpc-key are given)
//! grpc-cert = "/etc/infra/grpc.crt"
//! grpc-key = "/etc/infra/grpc.key"
//! token = "change-me-please-long"   # or $INFRA_TOKEN, or --token-file
//! membership = "/var/lib/infra/membership.toml"   # default: <data-dir>/membership.toml
//! trust = ["<operator public key, 64 hex digits>"]
//! allow = ["12D3KooW..."]           # optional: only these peer ids
//! open = false                      # UNSAFE: no membership beyond loopback
//! max-connections = 512             # established peer connections at most
//! cpu-millis = 4000                 # what this node offers (default: all cores)
//! memory-mib = 4096
//! gpus = 0
//! heartbeat-ms = 2000
//! mdns = true
//! tls = true                        # offer TLS 1.3 before noise (false: noise only)
//! max-plugin-bytes = 16777216      # largest plugin accepted (uploads and swaps)
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file form; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<String>,
    pub bootstrap: Option<Vec<String>>,
    pub tier: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub data_dir: Option<PathBuf>,
    pub grpc: Option<String>,
    pub grpc_cert: Option<PathBuf>,
    pub grpc_key: Option<PathBuf>,
    pub token: Option<String>,
    pub cpu_millis: Option<u32>,
    pub memory_mib: Option<u64>,
    pub gpus: Option<u32>,
    pub heartbeat_ms: Option<u64>,
    pub mdns: Option<bool>,
    pub tls: Option<bool>,
    pub max_plugin_bytes: Option<usize>,
    pub membership: Option<PathBuf>,
    pub trust: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
    pub open: Option<bool>,
    pub max_connections: Option<u32>,
}

impl FileConfig {
    /// Reads `path`; errors name the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}
