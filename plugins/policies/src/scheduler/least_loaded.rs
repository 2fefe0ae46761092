use super::by_priority;
use infra_sdk::{Assignment, Ledger, Pending, Plugin, PluginInfo, Scheduler};

/// Load balancing: each task (highest priority first) goes to the fitting node whose
/// projected load is lowest. Projected load = reported load + the CPU share of the tasks
/// placed on it in this decision.
#[derive(Default)]
pub struct LeastLoaded;

impl Plugin for LeastLoaded {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "least-loaded",
            "1.0.0",
            "each task to the fitting node with the lowest projected load",
        )
    }
}

impl Scheduler for LeastLoaded {
    fn schedule(&mut self, pending: Pending) -> Vec<Assignment> {
        let Pending { tasks, nodes, .. } = pending;
        let mut ledger = Ledger::new(&nodes);
        let mut load: Vec<f64> = nodes.iter().map(|n| n.load as f64).collect();
        let mut out = Vec::new();
        for i in by_priority(&tasks) {
            let task = &tasks[i];
            let best = (0..nodes.len())
                .filter(|&n| ledger.fits(n, &task.demand))
                .min_by(|&a, &b| load[a].total_cmp(&load[b]));
            if let Some(n) = best {
                let cpu = nodes[n].capacity.cpu_millis.max(1) as f64;
                load[n] += task.demand.cpu_millis as f64 / cpu;
                out.push(ledger.place(i, &task.demand, n));
            }
        }
        out
    }
}
