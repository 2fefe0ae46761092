use super::{by_priority, Shares};
use infra_sdk::{Assignment, Ledger, Pending, Plugin, PluginInfo, Scheduler};

/// Highest priority first; each task goes to the fitting node with the most free resources
/// left (spreading load), accounted as tasks are placed. A task that fits nowhere stays
/// pending and lower-priority tasks that fit still run (no head-of-line blocking).
#[derive(Default)]
pub struct Priority;

impl Plugin for Priority {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "priority",
            "1.0.0",
            "highest priority first, to the fitting node with the most free resources",
        )
    }
}

impl Scheduler for Priority {
    fn schedule(&mut self, pending: Pending) -> Vec<Assignment> {
        let Pending { tasks, nodes, .. } = pending;
        let mut ledger = Ledger::new(&nodes);
        let shares = Shares::new(&nodes);
        // Free share of every node; only the node that gets a task changes.
        let mut room: Vec<f64> = (0..nodes.len())
            .map(|n| shares.of(n, ledger.free(n)))
            .collect();
        let mut out = Vec::new();
        for i in by_priority(&tasks) {
            let task = &tasks[i];
            let mut best: Option<(usize, f64)> = None;
            for (n, &r) in room.iter().enumerate() {
                if ledger.fits(n, &task.demand) && best.is_none_or(|(_, b)| r > b) {
                    best = Some((n, r));
                }
            }
            if let Some((n, _)) = best {
                out.push(ledger.place(i, &task.demand, n));
                room[n] = shares.of(n, ledger.free(n));
            }
        }
        out
    }
}
