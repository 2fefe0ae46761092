//! A round's tasks: the scheduler's view of the cluster, and one task run on a peer (or here)
//! with its weights sent and its update brought back, watched for a peer whose heartbeats stop.

use crate::encoding::{self, Params};
use crate::messages::{Request, Response, TrainResult, TrainTask};
use crate::node::ClusterNode;
use crate::transfer;
use crate::worker::Weights;
use crate::ClusterError;
use bytes::Bytes;
use infra_net::PeerId;
use infra_runtime::scheduler::{Node, Resources, Tier};
use infra_train::job::Compression;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scheduler's view of the cluster: this node and every live peer not marked down, with
/// resources from their heartbeats and links from ping and past transfers. A peer marked down
/// comes back once a heartbeat newer than the mark arrives.
pub(super) async fn cluster_nodes(
    node: &ClusterNode,
    down: &mut HashMap<PeerId, Instant>,
    job: &str,
    demand: Resources,
) -> Result<Vec<Node>, ClusterError> {
    let me = node.peer_id();
    let mut out = vec![to_node(me, &node.status(), 0.0, 0, job, demand)];
    for p in node.alive_peers().await? {
        if let Some(mark) = down.get(&p.peer) {
            if p.age >= mark.elapsed() {
                continue;
            }
            down.remove(&p.peer);
        }
        let rtt = p.rtt.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let bw = node.links().bandwidth(&p.peer).map_or(0, |b| b as u64);
        out.push(to_node(p.peer, &p.status, rtt, bw, job, demand));
    }
    Ok(out)
}

fn to_node(
    peer: PeerId,
    s: &infra_net::NodeStatus,
    rtt_ms: f64,
    bandwidth: u64,
    job: &str,
    demand: Resources,
) -> Node {
    // Between waves none of this job's tasks run; usage a heartbeat still shows for them is stale.
    let own = s.job_tasks.get(job).copied().unwrap_or(0);
    let used_cpu = s.used_cpu_millis.saturating_sub(own * demand.cpu_millis);
    let used_mem = s
        .used_memory_mib
        .saturating_sub(own as u64 * demand.memory_mib);
    let capacity = Resources {
        cpu_millis: s.cpu_millis,
        memory_mib: s.memory_mib,
        gpus: s.gpus,
    };
    Node {
        id: peer.to_string(),
        tier: if s.tier == "edge" {
            Tier::Edge
        } else {
            Tier::Server
        },
        capacity,
        free: Resources {
            cpu_millis: s.cpu_millis.saturating_sub(used_cpu),
            memory_mib: s.memory_mib.saturating_sub(used_mem),
            gpus: s.gpus.saturating_sub(s.used_gpus),
        },
        load: s.load,
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect(),
        rtt_ms: rtt_ms as f32,
        bandwidth_bytes_per_s: bandwidth,
    }
}

/// Resolves when `peer`'s heartbeats have stopped (a hung or partitioned worker whose
/// connection is still open), checking a few times per peer timeout.
async fn heartbeats_stop(node: &ClusterNode, peer: PeerId) -> ClusterError {
    let timeout = node.inner.config.peer_timeout;
    let mut tick = tokio::time::interval(timeout / 4);
    loop {
        tick.tick().await;
        match node.peers().await {
            Ok(peers) => match peers.iter().find(|p| p.peer == peer) {
                Some(p) if p.age < timeout => {}
                Some(p) => {
                    return ClusterError::Transfer(format!(
                        "no heartbeat for {} ms",
                        p.age.as_millis()
                    ))
                }
                None => return ClusterError::Transfer("the peer is unknown".into()),
            },
            Err(e) => return e,
        }
    }
}

/// A round's global weights: in memory for tasks run here, as bytes for the requests (empty
/// when they go as a blob instead).
pub(super) struct RoundWeights {
    pub params: Arc<Vec<f32>>,
    pub inline: Bytes,
    pub compression: Compression,
}

/// Runs one task on `peer` (or here) and brings its update back: (result, update, bytes
/// moved over the network).
pub(super) async fn run_task(
    node: &ClusterNode,
    peer: PeerId,
    task: TrainTask,
    weights: &RoundWeights,
) -> Result<(TrainResult, Params, u64), ClusterError> {
    let n = &node.inner;
    if peer == node.peer_id() {
        let w = Weights::Params(weights.params.clone().into());
        let t = crate::worker::train(node, peer, task, w).await?;
        let moved = t.result.fetched_bytes;
        return Ok((t.result, t.params.into(), moved));
    }
    let body = weights.inline.clone(); // shared by every task of the round, not copied
    let sent = body.len() as u64;
    let started = Instant::now();
    tracing::debug!(%peer, "task sent");
    let request = n
        .net
        .request(peer, Request::Train(Box::new(task)).to_frame_with(body));
    let f = tokio::select! {
        f = request => f?,
        e = heartbeats_stop(node, peer) => return Err(e),
    };
    let waited = started.elapsed();
    let Response::Trained(mut result) = Response::from_frame(&f)? else {
        return Err(ClusterError::Protocol("expected a training result".into()));
    };
    tracing::debug!(
        %peer,
        waited_ms = waited.as_secs_f64() * 1e3,
        busy_ms = result.busy_ms,
        compute_ms = result.compute_ms,
        "task answered"
    );
    let (update, received) = match &result.update {
        None => {
            // What the worker did not spend on the task was the network: weights down and
            // the update up.
            let busy = Duration::from_secs_f64(result.busy_ms.max(0.0) / 1e3);
            let got = f.body.len() as u64;
            if let Some(net) = waited.checked_sub(busy) {
                n.links.record(peer, sent + got, net);
            }
            let u = encoding::decode_update(f.body, &weights.params, weights.compression)?;
            tracing::debug!(%peer, "update decoded");
            (u, got)
        }
        Some(id) => {
            let fetched = transfer::fetch(&n.net, &n.store, &n.links, peer, id).await?;
            result.refetched_chunks += fetched.refetched;
            let u = encoding::decode_update(fetched.bytes, &weights.params, weights.compression)?;
            (u, fetched.transferred)
        }
    };
    let moved = sent + result.fetched_bytes + received;
    Ok((result, update, moved))
}
