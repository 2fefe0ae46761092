//! Resource accounting for schedulers: free resources per node, updated as tasks are placed.

use crate::{Assignment, Node, Resources, Task};

/// Free resources of every node, in the order of the `nodes` argument.
pub struct Ledger {
    free: Vec<Resources>,
    ids: Vec<String>,
}

impl Ledger {
    /// Starts from each node's `free` resources.
    pub fn new(nodes: &[Node]) -> Self {
        Self {
            free: nodes.iter().map(|n| n.free.clone()).collect(),
            ids: nodes.iter().map(|n| n.id.clone()).collect(),
        }
    }

    /// Whether `demand` fits in node `n` now.
    #[inline]
    pub fn fits(&self, n: usize, demand: &Resources) -> bool {
        fits(&self.free[n], demand)
    }

    /// Free resources of node `n` now.
    #[inline]
    pub fn free(&self, n: usize) -> &Resources {
        &self.free[n]
    }

    /// Takes `task`'s demand from node `n` and returns the assignment.
    pub fn place(&mut self, task: &Task, n: usize) -> Assignment {
        let f = &mut self.free[n];
        f.cpu_millis -= task.demand.cpu_millis;
        f.memory_mib -= task.demand.memory_mib;
        f.gpus -= task.demand.gpus;
        Assignment {
            task_id: task.id.clone(),
            node_id: self.ids[n].clone(),
        }
    }
}

/// Whether `demand` fits in `free` on every resource.
#[inline]
pub fn fits(free: &Resources, demand: &Resources) -> bool {
    demand.cpu_millis <= free.cpu_millis
        && demand.memory_mib <= free.memory_mib
        && demand.gpus <= free.gpus
}
