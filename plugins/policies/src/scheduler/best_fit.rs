use super::Shares;
use infra_sdk::{Assignment, Ledger, Pending, Plugin, PluginInfo, Resources, Scheduler};

/// Bin packing, best-fit decreasing: tasks by priority, then largest demand first; each to
/// the fitting node that would have the least capacity left over (as a share of its
/// capacity), which keeps large nodes free for large tasks.
#[derive(Default)]
pub struct BestFit;

impl Plugin for BestFit {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "best-fit",
            "1.0.0",
            "bin packing: each task to the node it leaves with the least spare capacity",
        )
    }
}

fn size(r: &Resources) -> (u32, u32, u64) {
    (r.gpus, r.cpu_millis, r.memory_mib)
}

impl Scheduler for BestFit {
    fn schedule(&mut self, pending: Pending) -> Vec<Assignment> {
        let Pending { tasks, nodes, .. } = pending;
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        order.sort_by(|&a, &b| {
            let (ta, tb) = (&tasks[a], &tasks[b]);
            tb.priority
                .cmp(&ta.priority)
                .then(size(&tb.demand).cmp(&size(&ta.demand)))
        });
        let mut ledger = Ledger::new(&nodes);
        let shares = Shares::new(&nodes);
        let mut out = Vec::new();
        for i in order {
            let task = &tasks[i];
            let mut best: Option<(usize, f64)> = None;
            for n in 0..nodes.len() {
                if !ledger.fits(n, &task.demand) {
                    continue;
                }
                let free = ledger.free(n);
                let left = Resources {
                    cpu_millis: free.cpu_millis - task.demand.cpu_millis,
                    memory_mib: free.memory_mib - task.demand.memory_mib,
                    gpus: free.gpus - task.demand.gpus,
                };
                let leftover = shares.of(n, &left);
                if best.is_none_or(|(_, b)| leftover < b) {
                    best = Some((n, leftover));
                }
            }
            if let Some((n, _)) = best {
                out.push(ledger.place(i, &task.demand, n));
            }
        }
        out
    }
}
