//! Which nodes hold each task's input: `pending.holdings` (rows of task, node) indexed by task.

use crate::Holding;

/// The holders of every task's input, looked up by task position in O(1).
///
/// Built once per decision from `pending.holdings` in one pass (the rows need not be sorted);
/// rows that name a task outside `0..tasks` are ignored.
pub struct Holders {
    /// `nodes[start[t]..start[t + 1]]` hold task `t`'s input.
    start: Vec<u32>,
    nodes: Vec<u32>,
}

impl Holders {
    /// Indexes `holdings` for `tasks` tasks.
    pub fn new(tasks: usize, holdings: &[Holding]) -> Self {
        let mut start = vec![0u32; tasks + 1];
        let valid = holdings.iter().filter(|h| (h.task as usize) < tasks);
        for h in valid.clone() {
            start[h.task as usize + 1] += 1;
        }
        for t in 0..tasks {
            start[t + 1] += start[t];
        }
        let mut next = start.clone();
        let mut nodes = vec![0u32; start[tasks] as usize];
        for h in valid {
            let slot = &mut next[h.task as usize];
            nodes[*slot as usize] = h.node;
            *slot += 1;
        }
        Self { start, nodes }
    }

    /// Positions of the nodes that hold the input of task `task` (empty when none or when
    /// `task` is out of range).
    pub fn of(&self, task: usize) -> &[u32] {
        match (self.start.get(task), self.start.get(task + 1)) {
            (Some(&a), Some(&b)) => &self.nodes[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Whether node `node` holds the input of task `task`.
    pub fn holds(&self, task: usize, node: usize) -> bool {
        self.of(task).iter().any(|&n| n as usize == node)
    }
}
