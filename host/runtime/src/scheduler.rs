//! Typed calls into `world scheduler`, with the host's checks of what a policy returns.

use crate::plugin::{Bindings, Instance, PluginKind};
use crate::{PluginError, Result};
use std::collections::HashMap;

pub use crate::bindings::scheduler::exports::infra::plugins::scheduling::{
    Assignment, Node, Resources, Task, Tier,
};

impl Instance {
    /// Asks the policy to place `tasks` on `nodes`. The answer is checked: every assignment
    /// names a known task and node, no task is placed twice, and no node gets more than its
    /// free resources.
    pub fn schedule(&mut self, tasks: &[Task], nodes: &[Node]) -> Result<Vec<Assignment>> {
        self.expect_world(PluginKind::Scheduler)?;
        let out = self.call(|b, s| match b {
            Bindings::Scheduler(x) => x.infra_plugins_scheduling().call_schedule(s, tasks, nodes),
            _ => unreachable!("kind checked above"),
        })?;
        check_assignments(tasks, nodes, &out).map_err(|message| PluginError::Contract {
            plugin: self.label(),
            message,
        })?;
        Ok(out)
    }

    pub(crate) fn expect_world(&self, kind: PluginKind) -> Result<()> {
        self.plugin().expect_kind(kind)
    }
}

/// Checks a scheduler's answer against its input (see [`Instance::schedule`]).
pub fn check_assignments(
    tasks: &[Task],
    nodes: &[Node],
    assignments: &[Assignment],
) -> Result<(), String> {
    let task_index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut free: HashMap<&str, Resources> =
        nodes.iter().map(|n| (n.id.as_str(), n.free)).collect();
    let mut placed = vec![false; tasks.len()];
    for a in assignments {
        let &i = task_index
            .get(a.task_id.as_str())
            .ok_or_else(|| format!("assigned unknown task `{}`", a.task_id))?;
        if std::mem::replace(&mut placed[i], true) {
            return Err(format!("assigned task `{}` twice", a.task_id));
        }
        let room = free.get_mut(a.node_id.as_str()).ok_or_else(|| {
            format!(
                "assigned task `{}` to unknown node `{}`",
                a.task_id, a.node_id
            )
        })?;
        let d = &tasks[i].demand;
        if d.cpu_millis > room.cpu_millis || d.memory_mib > room.memory_mib || d.gpus > room.gpus {
            return Err(format!(
                "node `{}` has no room for task `{}` (free {:?}, demand {:?})",
                a.node_id, a.task_id, room, d
            ));
        }
        room.cpu_millis -= d.cpu_millis;
        room.memory_mib -= d.memory_mib;
        room.gpus -= d.gpus;
    }
    Ok(())
}
