//! What every node gossips about itself every heartbeat.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest status message accepted from a peer: a status is a few hundred bytes; anything
/// much larger is a hostile or broken peer.
pub const MAX_STATUS_BYTES: usize = 16 * 1024;

/// The class of machine a node is (a closed set: a peer that gossips any other is refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// A server: plenty of CPU, memory, maybe GPUs.
    #[default]
    Server,
    /// An edge board (Jetson, Raspberry Pi): schedulers keep oversized tasks off it.
    Edge,
}

impl Tier {
    /// Its name (`server`, `edge`).
    pub fn name(self) -> &'static str {
        match self {
            Tier::Server => "server",
            Tier::Edge => "edge",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "server" => Ok(Tier::Server),
            "edge" => Ok(Tier::Edge),
            other => Err(format!("tier `{other}`: expected server or edge")),
        }
    }
}

/// A node's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeStatus {
    /// Server or edge.
    pub tier: Tier,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
    /// CPU offered, thousandths of a core.
    pub cpu_millis: u32,
    /// Memory offered, MiB.
    pub memory_mib: u64,
    /// GPUs offered.
    pub gpus: u32,
    /// CPU in use by tasks, thousandths of a core.
    #[serde(default)]
    pub used_cpu_millis: u32,
    /// Memory in use by tasks, MiB.
    #[serde(default)]
    pub used_memory_mib: u64,
    /// GPUs in use by tasks.
    #[serde(default)]
    pub used_gpus: u32,
    /// Tasks running.
    #[serde(default)]
    pub tasks: u32,
    /// Tasks running per job id (a coordinator subtracts its own, whose end it already
    /// knows, from the usage it reads in a heartbeat that may be a little old).
    #[serde(default)]
    pub job_tasks: BTreeMap<String, u32>,
    /// Recent load, 0.0-1.0.
    pub load: f32,
    /// sha256 of the active plugin of each kind.
    pub plugins: BTreeMap<String, String>,
    /// Sender's clock when sent, ms since the Unix epoch.
    pub sent_at_ms: u64,
}

impl NodeStatus {
    /// A node offering these resources, nothing in use yet.
    pub fn offering(
        tier: Tier,
        labels: BTreeMap<String, String>,
        cpu_millis: u32,
        memory_mib: u64,
        gpus: u32,
    ) -> Self {
        Self {
            tier,
            labels,
            cpu_millis,
            memory_mib,
            gpus,
            used_cpu_millis: 0,
            used_memory_mib: 0,
            used_gpus: 0,
            tasks: 0,
            job_tasks: BTreeMap::new(),
            load: 0.0,
            plugins: BTreeMap::new(),
            sent_at_ms: 0,
        }
    }

    /// Decodes a status from a peer, refusing oversized or malformed ones.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_STATUS_BYTES {
            return Err(format!(
                "status of {} bytes exceeds {MAX_STATUS_BYTES}",
                bytes.len()
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("malformed status: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tier is one of a closed set: a status naming another is refused, not read as a
    /// server.
    #[test]
    fn a_status_with_an_unknown_tier_is_refused() {
        let edge = NodeStatus::offering(Tier::Edge, BTreeMap::new(), 1000, 512, 0);
        let json = serde_json::to_string(&edge).unwrap();
        assert!(json.contains(r#""tier":"edge""#), "{json}");
        assert_eq!(
            NodeStatus::decode(json.as_bytes()).unwrap().tier,
            Tier::Edge
        );
        let gpu = json.replace(r#""tier":"edge""#, r#""tier":"gpu""#);
        let e = NodeStatus::decode(gpu.as_bytes()).unwrap_err();
        assert!(e.contains("malformed status") && e.contains("gpu"), "{e}");
        assert_eq!("edge".parse::<Tier>(), Ok(Tier::Edge));
        assert!("Edge"
            .parse::<Tier>()
            .unwrap_err()
            .contains("expected server or edge"));
    }

    proptest::proptest! {
        /// Whatever a peer gossips, decoding it is an answer, never a panic.
        #[test]
        fn any_bytes_decode_to_a_status_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let _ = NodeStatus::decode(&bytes);
        }

        /// Valid JSON of the wrong shape too.
        #[test]
        fn any_json_decodes_to_a_status_or_an_error(key in 0usize..12, n in proptest::prelude::any::<i64>(), f in proptest::prelude::any::<f64>()) {
            let keys = ["tier", "cpu_millis", "memory_mib", "gpus", "load", "labels", "plugins", "job_tasks", "used_cpu_millis", "sent_at_ms", "version", "x"];
            for v in [serde_json::json!(n), serde_json::json!(f), serde_json::json!("edge"), serde_json::json!([n]), serde_json::json!({"a": n})] {
                let mut doc = serde_json::to_value(NodeStatus::offering(crate::Tier::Server, Default::default(), 1000, 1024, 0)).unwrap();
                doc[keys[key]] = v;
                let _ = NodeStatus::decode(&serde_json::to_vec(&doc).unwrap());
            }
        }
    }
}
