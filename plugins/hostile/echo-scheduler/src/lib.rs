//! A scheduler that logs, at info level, every field of the `pending` record it receives and
//! places nothing, so a test can check that each value crosses into the sandbox intact.
//! One line per job, task, node and holding, each ending in ` ;`; the format is the test's
//! contract.

use infra_sdk::{Assignment, Pending, Plugin, PluginInfo, Scheduler};

#[derive(Default)]
struct EchoScheduler;

impl Plugin for EchoScheduler {
    fn info() -> PluginInfo {
        infra_sdk::info("echo-scheduler", "0.1.0", "logs its input, places nothing")
    }
}

impl Scheduler for EchoScheduler {
    fn schedule(&mut self, p: Pending) -> Vec<Assignment> {
        for (i, j) in p.jobs.iter().enumerate() {
            infra_sdk::log::info(&format!("echo job {i} {j} ;"));
        }
        for t in &p.tasks {
            infra_sdk::log::info(&format!(
                "echo task {} {} {} {} {} {} {} {} {} ;",
                t.id,
                t.job,
                t.priority,
                t.demand.cpu_millis,
                t.demand.memory_mib,
                t.demand.gpus,
                t.est_duration_ms,
                t.input_bytes,
                t.attempts
            ));
        }
        for n in &p.nodes {
            infra_sdk::log::info(&format!(
                "echo node {} {:?} {} {} {} {} {} {} {} {:?} {} {} ;",
                n.id,
                n.tier,
                n.capacity.cpu_millis,
                n.capacity.memory_mib,
                n.capacity.gpus,
                n.free.cpu_millis,
                n.free.memory_mib,
                n.free.gpus,
                n.load,
                n.labels,
                n.rtt_ms,
                n.bandwidth_bytes_per_s
            ));
        }
        for h in &p.holdings {
            infra_sdk::log::info(&format!("echo holding {} {} ;", h.task, h.node));
        }
        Vec::new()
    }
}

infra_sdk::export_scheduler!(EchoScheduler);
