//! Resource accounting for schedulers: free resources per node, updated as tasks are placed.

use crate::{Assignment, Node, Resources};

/// Free resources of every node, in the order of the `nodes` argument.
pub struct Ledger {
    free: Vec<Resources>,
}

impl Ledger {
    /// Starts from each node's `free` resources.
    pub fn new(nodes: &[Node]) -> Self {
        Self {
            free: nodes.iter().map(|n| n.free).collect(),
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

    /// Takes `demand` (of the task at position `t` in the `tasks` argument) from node `n` and
    /// returns the assignment of that task to that node.
    pub fn place(&mut self, t: usize, demand: &Resources, n: usize) -> Assignment {
        let f = &mut self.free[n];
        f.cpu_millis -= demand.cpu_millis;
        f.memory_mib -= demand.memory_mib;
        f.gpus -= demand.gpus;
        Assignment {
            task: t as u32,
            node: n as u32,
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
