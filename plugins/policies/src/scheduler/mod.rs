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

use infra_sdk::{Resources, Task};

/// Task indices ordered by priority (highest first); ties keep the input order.
pub(crate) fn by_priority(tasks: &[Task]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tasks[i].priority));
    order
}

/// Share of `capacity` that `amount` is, per resource, summed over the resources the node has.
pub(crate) fn share(amount: &Resources, capacity: &Resources) -> f64 {
    let mut s = 0.0;
    if capacity.cpu_millis > 0 {
        s += amount.cpu_millis as f64 / capacity.cpu_millis as f64;
    }
    if capacity.memory_mib > 0 {
        s += amount.memory_mib as f64 / capacity.memory_mib as f64;
    }
    if capacity.gpus > 0 {
        s += amount.gpus as f64 / capacity.gpus as f64;
    }
    s
}
