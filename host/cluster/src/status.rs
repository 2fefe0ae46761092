//! This node's own status (resources, load, tier, active plugins), shared by the parts that
//! change it and published to peers on every change.

use infra_net::{Client, NodeStatus};
use std::sync::{Arc, Mutex};

/// A handle to this node's status. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Status {
    net: Client,
    current: Arc<Mutex<NodeStatus>>,
}

impl Status {
    pub fn new(net: Client, status: NodeStatus) -> Self {
        Self {
            net,
            current: Arc::new(Mutex::new(status)),
        }
    }

    /// A copy of the status now.
    pub fn get(&self) -> NodeStatus {
        self.current.lock().expect("status lock").clone()
    }

    /// Changes the status and publishes it.
    pub async fn update(&self, f: impl FnOnce(&mut NodeStatus)) {
        let s = {
            let mut s = self.current.lock().expect("status lock");
            f(&mut s);
            s.clone()
        };
        let _ = self.net.set_status(s).await;
    }

    /// Takes a task of `job` needing `cpu_millis` and `memory_mib` if this node has room for
    /// it beside the tasks it runs (a node with none takes any one task); otherwise says why
    /// not. The worker gives the room back when the task ends.
    pub async fn reserve(&self, job: &str, cpu_millis: u32, memory_mib: u64) -> Result<(), String> {
        let s = {
            let mut s = self.current.lock().expect("status lock");
            let cpu = s.used_cpu_millis.saturating_add(cpu_millis);
            let mem = s.used_memory_mib.saturating_add(memory_mib);
            if s.tasks > 0 && (cpu > s.cpu_millis || mem > s.memory_mib) {
                return Err(format!(
                    "busy: {} task(s) use {} of the {} CPU millis and {} of the {} MiB this node offers; a task needing {cpu_millis} and {memory_mib} MiB does not fit",
                    s.tasks, s.used_cpu_millis, s.cpu_millis, s.used_memory_mib, s.memory_mib
                ));
            }
            *s.job_tasks.entry(job.to_string()).or_default() += 1;
            s.tasks += 1;
            s.used_cpu_millis = cpu;
            s.used_memory_mib = mem;
            s.load = (s.used_cpu_millis as f32 / s.cpu_millis.max(1) as f32).min(1.0);
            s.clone()
        };
        let _ = self.net.set_status(s).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_takes_no_more_tasks_than_it_offers_room_for() {
        let (net, _events, _) = crate::testing::network(None).await;
        let status = super::Status::new(net, crate::testing::offering(1024));
        status.reserve("a", 1000, 256).await.unwrap();
        let e = status.reserve("b", 1000, 256).await.unwrap_err();
        assert!(
            e.contains("busy: 1 task(s) use 1000 of the 1000 CPU millis"),
            "{e}"
        );
        // A lone task is taken even when it asks for more than the node offers.
        let lone = super::Status::new(
            crate::testing::network(None).await.0,
            crate::testing::offering(1024),
        );
        lone.reserve("c", 4000, 256).await.unwrap();
    }
}
