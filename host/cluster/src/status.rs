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
}
