use super::by_priority;
use infra_sdk::{
    Assignment, Config, ConfigReader, Holders, Ledger, Node, Pending, Plugin, PluginInfo,
    Scheduler, Task, Tier,
};

/// Bandwidth assumed for a link nobody has measured yet: 100 Mbit/s.
const DEFAULT_BANDWIDTH_BYTES_PER_S: f64 = 12.5e6;

/// Data locality: each task (highest priority first) goes to the fitting node with the
/// lowest start cost, `cost = RTT + input bytes / bandwidth` (transfer delay = size /
/// bandwidth), where the transfer term is zero on nodes that already hold the input. Edge
/// nodes only take tasks whose input also fits in their free memory.
///
/// Config: `default-bandwidth` (bytes/s for links with no measurement, default 12.5e6).
pub struct Locality {
    default_bandwidth: f64,
}

impl Default for Locality {
    fn default() -> Self {
        Self {
            default_bandwidth: DEFAULT_BANDWIDTH_BYTES_PER_S,
        }
    }
}

impl Plugin for Locality {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "locality",
            "1.0.0",
            "minimises RTT + input bytes / bandwidth, preferring nodes that hold the input",
        )
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        self.default_bandwidth = c.get_or("default-bandwidth", DEFAULT_BANDWIDTH_BYTES_PER_S)?;
        if self.default_bandwidth.is_nan() || self.default_bandwidth <= 0.0 {
            return Err("config key `default-bandwidth`: must be > 0".into());
        }
        c.finish()
    }
}

impl Locality {
    /// Seconds before `task` could start on `node`; `holds` says whether the node already
    /// holds the task's input.
    pub fn cost(&self, task: &Task, holds: bool, node: &Node) -> f64 {
        let rtt = node.rtt_ms.max(0.0) as f64 / 1000.0;
        if holds {
            return rtt;
        }
        let bw = match node.bandwidth_bytes_per_s {
            0 => self.default_bandwidth,
            b => b as f64,
        };
        rtt + task.input_bytes as f64 / bw
    }
}

impl Scheduler for Locality {
    fn schedule(&mut self, pending: Pending) -> Vec<Assignment> {
        let Pending {
            tasks,
            nodes,
            holdings,
            ..
        } = pending;
        let holders = Holders::new(tasks.len(), &holdings);
        let mut ledger = Ledger::new(&nodes);
        let mut out = Vec::new();
        for i in by_priority(&tasks) {
            let task = &tasks[i];
            let mut best: Option<(usize, f64)> = None;
            for (n, node) in nodes.iter().enumerate() {
                if !ledger.fits(n, &task.demand) {
                    continue;
                }
                if node.tier == Tier::Edge {
                    let free_bytes = ledger.free(n).memory_mib.saturating_mul(1 << 20);
                    let need = task.demand.memory_mib.saturating_mul(1 << 20);
                    if task.input_bytes > free_bytes.saturating_sub(need) {
                        continue;
                    }
                }
                let cost = self.cost(task, holders.holds(i, n), node);
                if best.is_none_or(|(_, b)| cost < b) {
                    best = Some((n, cost));
                }
            }
            if let Some((n, _)) = best {
                out.push(ledger.place(i, &task.demand, n));
            }
        }
        out
    }
}
