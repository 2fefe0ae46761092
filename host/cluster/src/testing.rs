//! Helpers for this crate's tests: real nodes over libp2p on 127.0.0.1.

use crate::{ClusterNode, NodeConfig};
use infra_net::{Client, Multiaddr, NetConfig, NetEvent, Network, NodeStatus};
use std::collections::BTreeMap;
use std::time::Duration;

fn status() -> NodeStatus {
    NodeStatus::offering(infra_net::Tier::Server, BTreeMap::new(), 1000, 1024, 0)
}

/// A bare network on 127.0.0.1 (joined through `boot`, if given), its events and its address.
pub(crate) async fn network(
    boot: Option<&Multiaddr>,
) -> (Client, tokio::sync::mpsc::Receiver<NetEvent>, Multiaddr) {
    member_network(boot, None, status()).await
}

/// As [`network`], admitted into cluster `test` by `operator` when given (closed).
async fn member_network(
    boot: Option<&Multiaddr>,
    operator: Option<&infra_trust::OperatorKey>,
    offered: NodeStatus,
) -> (Client, tokio::sync::mpsc::Receiver<NetEvent>, Multiaddr) {
    let keypair = infra_net::Keypair::generate_ed25519();
    let gate = operator.map(|op| infra_net::Gate::issue(op, "test", &keypair).expect("gate"));
    let (client, mut events) = Network::start(
        NetConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            bootstrap: boot.into_iter().cloned().collect(),
            heartbeat: Duration::from_millis(100),
            mdns: false,
            tls: true,
            keypair: Some(keypair),
            gate,
            max_connections: infra_net::MAX_CONNECTIONS,
        },
        offered,
    )
    .expect("network");
    loop {
        if let Some(NetEvent::Listening(a)) = events.recv().await {
            return (client, events, a);
        }
    }
}

/// Two nodes over real libp2p on 127.0.0.1; returns once the second has the first's status.
pub(crate) async fn two_nodes() -> (ClusterNode, ClusterNode) {
    let mut nodes = joined_nodes(2).await;
    let b = nodes.pop().unwrap();
    (nodes.pop().unwrap(), b)
}

/// `n` nodes over real libp2p on 127.0.0.1, joined through the first; returns once every
/// other node has the first's status.
pub(crate) async fn joined_nodes(n: usize) -> Vec<ClusterNode> {
    joined(n, None, |_| status()).await
}

/// As [`joined_nodes`], closed: members of one cluster admitted by `operator`, trusting it
/// for plugins and swaps.
/// Node `i` offers `status_of(i)`.
pub(crate) async fn closed_nodes(
    n: usize,
    operator: &infra_trust::OperatorKey,
    status_of: impl Fn(usize) -> NodeStatus,
) -> Vec<ClusterNode> {
    joined(n, Some(operator), status_of).await
}

/// A status offering `memory_mib`, less than a task needs when small.
pub(crate) fn offering(memory_mib: u64) -> NodeStatus {
    NodeStatus::offering(
        infra_net::Tier::Server,
        BTreeMap::new(),
        1000,
        memory_mib,
        0,
    )
}

async fn joined(
    n: usize,
    operator: Option<&infra_trust::OperatorKey>,
    status_of: impl Fn(usize) -> NodeStatus,
) -> Vec<ClusterNode> {
    let runtime = infra_runtime::Runtime::builder()
        .no_disk_cache()
        .build()
        .expect("runtime");
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut boot = None;
    let mut nodes = Vec::new();
    for i in 0..n {
        let (client, events, addr) = member_network(boot.as_ref(), operator, status_of(i)).await;
        boot.get_or_insert(addr);
        let first = nodes.first().map(ClusterNode::peer_id);
        let node = ClusterNode::new(
            client,
            status_of(i),
            runtime.clone(),
            NodeConfig {
                data_dir: None,
                peer_timeout: Duration::from_secs(5),
                max_plugin_bytes: crate::plugins::MAX_PLUGIN_BYTES,
                trust: operator.map(|op| infra_trust::Trusted::new([op.public()])),
            },
        )
        .expect("node");
        let tx = seen_tx.clone();
        let mut told = false;
        tokio::spawn(node.clone().serve(events, move |ev| match ev {
            NetEvent::PeerStatus(p, _) if Some(p) == first && !told => {
                told = true;
                let _ = tx.send(i);
            }
            _ => {}
        }));
        nodes.push(node);
    }
    for _ in 1..n {
        seen_rx.recv().await.expect("every node sees the first");
    }
    nodes
}

/// Fault injection (tests only): the next chunks a node serves are damaged, alternately a
/// flipped byte and a truncated chunk, a flip first.
#[derive(Default)]
pub(crate) struct Faults {
    left: std::sync::atomic::AtomicU32,
    served: std::sync::atomic::AtomicU32,
}

impl Faults {
    /// Damages the next `n` chunks served.
    pub fn arm(&self, n: u32) {
        use std::sync::atomic::Ordering::SeqCst;
        self.served.store(0, SeqCst);
        self.left.store(n, SeqCst);
    }

    /// Faults armed but not served yet.
    pub fn left(&self) -> u32 {
        self.left.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `bytes`, damaged while faults are armed.
    pub fn apply(&self, bytes: bytes::Bytes) -> bytes::Bytes {
        use std::sync::atomic::Ordering::SeqCst;
        if bytes.is_empty()
            || self
                .left
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            return bytes;
        }
        if self.served.fetch_add(1, SeqCst).is_multiple_of(2) {
            let mut copy = bytes.to_vec();
            let mid = copy.len() / 2;
            copy[mid] ^= 0xff;
            copy.into()
        } else {
            bytes.slice(..bytes.len() - 1)
        }
    }
}
