//! Scheduler policies. All of them account resources as they place tasks (a node never gets
//! more than its free resources) and leave a task pending when it fits nowhere.

mod best_fit;
mod fifo;
mod least_loaded;
mod locality;
mod priority;

pub use best_fit::BestFit;
pub use fifo::Fifo;
pub use least_loaded::LeastLoaded;
pub use locality::Locality;
pub use priority::Priority;

use infra_sdk::{Node, Resources, Task};

/// Task indices ordered by priority (highest first); ties keep the input order.
pub(crate) fn by_priority(tasks: &[Task]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tasks[i].priority));
    order
}

/// Converts amounts to shares of each node's capacity, summed over the resources the node
/// has (0 to 3). Reciprocals are computed once per decision, not per comparison.
pub(crate) struct Shares(Vec<[f64; 3]>);

impl Shares {
    pub(crate) fn new(nodes: &[Node]) -> Self {
        let inv = |c: f64| if c > 0.0 { 1.0 / c } else { 0.0 };
        Self(
            nodes
                .iter()
                .map(|n| {
                    [
                        inv(n.capacity.cpu_millis as f64),
                        inv(n.capacity.memory_mib as f64),
                        inv(n.capacity.gpus as f64),
                    ]
                })
                .collect(),
        )
    }

    /// `amount` as a share of node `n`'s capacity.
    #[inline]
    pub(crate) fn of(&self, n: usize, amount: &Resources) -> f64 {
        let [c, m, g] = self.0[n];
        amount.cpu_millis as f64 * c + amount.memory_mib as f64 * m + amount.gpus as f64 * g
    }
}
