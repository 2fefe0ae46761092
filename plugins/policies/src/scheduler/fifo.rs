use infra_sdk::{Assignment, Ledger, Pending, Plugin, PluginInfo, Scheduler};

/// Tasks in arrival order, round-robin over the nodes that fit.
#[derive(Default)]
pub struct Fifo;

impl Plugin for Fifo {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "fifo",
            "1.0.0",
            "tasks in arrival order, round-robin over the nodes that fit",
        )
    }
}

impl Scheduler for Fifo {
    fn schedule(&mut self, pending: Pending) -> Vec<Assignment> {
        let Pending { tasks, nodes, .. } = pending;
        let mut ledger = Ledger::new(&nodes);
        let mut next = 0;
        let mut out = Vec::new();
        if nodes.is_empty() {
            return out;
        }
        for (i, task) in tasks.iter().enumerate() {
            let found = (0..nodes.len())
                .map(|k| (next + k) % nodes.len())
                .find(|&n| ledger.fits(n, &task.demand));
            if let Some(n) = found {
                out.push(ledger.place(i, &task.demand, n));
                next = (n + 1) % nodes.len();
            }
        }
        out
    }
}
