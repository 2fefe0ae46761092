use super::{by_priority, Shares};
use infra_sdk::{Assignment, Ledger, Node, Plugin, PluginInfo, Scheduler, Task};

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
    fn schedule(&mut self, tasks: Vec<Task>, nodes: Vec<Node>) -> Vec<Assignment> {
        let mut ledger = Ledger::new(&nodes);
        let shares = Shares::new(&nodes);
        let mut out = Vec::new();
        for i in by_priority(&tasks) {
            let task = &tasks[i];
            let mut best: Option<(usize, f64)> = None;
            for n in 0..nodes.len() {
                if !ledger.fits(n, &task.demand) {
                    continue;
                }
                let room = shares.of(n, ledger.free(n));
                if best.is_none_or(|(_, b)| room > b) {
                    best = Some((n, room));
                }
            }
            if let Some((n, _)) = best {
                out.push(ledger.place(task, n));
            }
        }
        out
    }
}
