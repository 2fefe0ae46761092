//! Typed calls into `world scheduler`, with the host's checks of what a policy returns.

use crate::plugin::{Bindings, Instance, PluginKind};
use crate::{PluginError, Result};
use lower::FastPending;
use wasmtime::component::TypedFunc;

mod lower;

pub use crate::bindings::scheduler::exports::infra::plugins::scheduling::{
    Assignment, Holding, Node, Pending, Resources, Task, Tier,
};

impl Instance {
    /// Asks the policy to place `pending.tasks` on `pending.nodes`. Assignments name tasks and
    /// nodes by their position in the two lists. The answer is checked: every position is in
    /// range, no task is placed twice, and no node gets more than its free resources.
    pub fn schedule(&mut self, pending: &Pending) -> Result<Vec<Assignment>> {
        self.expect_world(PluginKind::Scheduler)?;
        let out = self.call(|b, s| match b {
            Bindings::Scheduler(x) => {
                // The bindings' own call, with the task list lowered by `lower` instead.
                let func = *x.infra_plugins_scheduling().func_schedule().func();
                // SAFETY: the bindings checked this export's type against `(&Pending,) ->
                // (Vec<Assignment>,)` when the instance was made, and `FastPending` has
                // `Pending`'s canonical type (its ABI and type check are `Pending`'s). Checking
                // again on every call would cost more than an empty call itself.
                let typed = unsafe {
                    TypedFunc::<(FastPending<'_>,), (Vec<Assignment>,)>::new_unchecked(func)
                };
                Ok(typed.call(s, (FastPending(pending),))?.0)
            }
            _ => unreachable!("kind checked above"),
        })?;
        check_assignments(pending, &out).map_err(|message| PluginError::Contract {
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
pub fn check_assignments(pending: &Pending, assignments: &[Assignment]) -> Result<(), String> {
    let (tasks, nodes) = (&pending.tasks, &pending.nodes);
    let mut free: Vec<Resources> = nodes.iter().map(|n| n.free).collect();
    let mut placed = vec![false; tasks.len()];
    for a in assignments {
        let (t, n) = (a.task as usize, a.node as usize);
        let task = tasks.get(t).ok_or_else(|| {
            format!(
                "assigned task position {t}, but only {} tasks were offered",
                tasks.len()
            )
        })?;
        let room = free.get_mut(n).ok_or_else(|| {
            format!(
                "assigned task {} to node position {n}, but only {} nodes were offered",
                task.id,
                nodes.len()
            )
        })?;
        if std::mem::replace(&mut placed[t], true) {
            return Err(format!("assigned task {} twice", task.id));
        }
        let d = &task.demand;
        if d.cpu_millis > room.cpu_millis || d.memory_mib > room.memory_mib || d.gpus > room.gpus {
            return Err(format!(
                "node `{}` has no room for task {} (free {:?}, demand {:?})",
                nodes[n].id, task.id, room, d
            ));
        }
        room.cpu_millis -= d.cpu_millis;
        room.memory_mib -= d.memory_mib;
        room.gpus -= d.gpus;
    }
    Ok(())
}

/// Position in `nodes` of the node with id `id` (the form a `holding` names it by), or `None`
/// when that node is not offered.
pub fn node_position(nodes: &[Node], id: &str) -> Option<u32> {
    nodes.iter().position(|n| n.id == id).map(|p| p as u32)
}
