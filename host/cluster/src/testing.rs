//! Helpers for this crate's tests: real nodes over libp2p on 127.0.0.1.

use crate::{ClusterNode, NodeConfig};
use infra_net::{NetConfig, NetEvent, Network, NodeStatus};
use std::collections::BTreeMap;
use std::time::Duration;

fn status() -> NodeStatus {
    NodeStatus::offering("server", BTreeMap::new(), 1000, 1024, 0)
}

/// Two nodes over real libp2p on 127.0.0.1; returns once the second has the first's status.
pub(crate) async fn two_nodes() -> (ClusterNode, ClusterNode) {
    let runtime = infra_runtime::Runtime::builder()
        .no_disk_cache()
        .build()
        .expect("runtime");
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut boot = None;
    let mut nodes = Vec::new();
    for i in 0..2 {
        let (client, mut events) = Network::start(
            NetConfig {
                listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
                bootstrap: boot.iter().cloned().collect(),
                heartbeat: Duration::from_millis(100),
                mdns: false,
                tls: true,
                keypair: None,
            },
            status(),
        )
        .expect("network");
        while boot.is_none() {
            if let Some(NetEvent::Listening(a)) = events.recv().await {
                boot = Some(a);
            }
        }
        let node = ClusterNode::new(
            client,
            status(),
            runtime.clone(),
            NodeConfig {
                data_dir: None,
                peer_timeout: Duration::from_secs(5),
                corrupt_chunks: 0,
                max_plugin_bytes: crate::plugins::MAX_PLUGIN_BYTES,
            },
        )
        .expect("node");
        let tx = seen_tx.clone();
        tokio::spawn(node.clone().serve(events, move |ev| {
            if matches!(ev, NetEvent::PeerStatus(..)) && i == 1 {
                let _ = tx.send(());
            }
        }));
        nodes.push(node);
    }
    seen_rx
        .recv()
        .await
        .expect("the second node sees the first");
    let b = nodes.pop().unwrap();
    (nodes.pop().unwrap(), b)
}
