//! One round's training tasks: the scheduler plugin places the pending ones on the live
//! peers, they run side by side, and a task whose peer fails or misses the deadline goes back
//! to pending with one more attempt (and the peer is left out until it sends a newer
//! heartbeat), until every shard has returned or used up its attempts.

use super::tasks::{cluster_nodes, run_task, RoundWeights};
use super::{Held, Swappable};
use crate::blobs::BlobId;
use crate::encoding::Params;
use crate::jobs::{JobEvent, JobHandle};
use crate::messages::{TrainResult, TrainTask};
use crate::node::ClusterNode;
use crate::ClusterError;
use infra_net::PeerId;
use infra_runtime::scheduler::{node_position, Assignment, Holding, Pending, Resources, Task};
use infra_train::JobSpec;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task that came back: its shard, the peer that ran it, its report and its update.
pub(super) type Returned = (usize, PeerId, TrainResult, Params);

/// What stays the same while one round's tasks run.
pub(super) struct Round<'a> {
    pub node: &'a ClusterNode,
    pub job: &'a Arc<JobHandle>,
    pub spec: &'a JobSpec,
    /// The job's TOML, sent with every task.
    pub spec_text: &'a str,
    pub number: u32,
    /// What one task asks of a node.
    pub demand: Resources,
    /// The job's shards (blob ids) and their sizes.
    pub shards: &'a [BlobId],
    pub shard_bytes: &'a [u64],
    /// Size of the encoded weights each task receives.
    pub wire_bytes: u64,
    /// The weights as a blob, for a model too large to ride in the request.
    pub global_blob: &'a Option<BlobId>,
    pub weights: &'a RoundWeights,
}

/// What carries over from one round's tasks to the next.
pub(super) struct Placement {
    /// The peer that last trained each shard, which holds it.
    pub holders: Vec<Option<PeerId>>,
    /// Peers marked down, and when: left out until a heartbeat newer than the mark arrives.
    pub down: HashMap<PeerId, Instant>,
}

/// Runs the round's tasks and returns those that came back with the bytes moved, or `None`
/// when the job is cancelled meanwhile.
pub(super) async fn run_tasks(
    r: &Round<'_>,
    sched: &mut Swappable,
    placement: &mut Placement,
    held: &mut Held,
) -> Result<Option<(Vec<Returned>, u64)>, ClusterError> {
    let &Round {
        node,
        job,
        spec,
        spec_text,
        number: round,
        demand,
        shards,
        shard_bytes,
        wire_bytes,
        global_blob,
        weights,
    } = r;
    let Placement { holders, down } = placement;
    let job_id = job.id().to_string();
    let total = shards.len();
    let mut pending: Vec<(usize, u32)> = (0..total).map(|s| (s, 0)).collect();
    let mut returned: Vec<Returned> = Vec::new();
    let mut bytes = 0u64;
    while !pending.is_empty() {
        if job.cancelled() {
            return Ok(None);
        }
        sched.refresh(node, job, round);
        let nodes = cluster_nodes(node, down, &job_id, demand).await?;
        let tasks: Vec<Task> = pending
            .iter()
            .map(|&(s, attempts)| Task {
                id: infra_train::run::task_id(round, s),
                job: 0,
                priority: 0,
                demand,
                est_duration_ms: 0,
                input_bytes: shard_bytes[s] + wire_bytes,
                attempts,
            })
            .collect();
        let holdings: Vec<Holding> = pending
            .iter()
            .enumerate()
            .filter_map(|(t, &(s, _))| {
                let node = node_position(&nodes, &holders[s]?.to_string())?;
                Some(Holding {
                    task: t as u32,
                    node,
                })
            })
            .collect();
        let request = Pending {
            jobs: vec![job_id.clone()],
            tasks,
            nodes,
            holdings,
        };
        let placed = sched
            .instance
            .schedule(&request)
            .map_err(|e| ClusterError::Round {
                round,
                cause: e.to_string(),
            })?;
        let (tasks, nodes) = (&request.tasks, &request.nodes);
        if placed.is_empty() {
            return Err(ClusterError::Round {
                round,
                cause: format!(
                    "scheduler `{}` placed none of {} pending tasks on {} live peers",
                    sched.instance.plugin().meta().name,
                    tasks.len(),
                    nodes.len()
                ),
            });
        }
        // Positions checked by the runtime; node ids are peer ids.
        let peer_of = |a: &Assignment| -> PeerId {
            nodes[a.node as usize]
                .id
                .parse()
                .expect("node ids are peer ids")
        };
        held.peers.extend(placed.iter().map(peer_of));
        let runs = placed.iter().map(|a| {
            let (s, attempts) = pending[a.task as usize];
            let peer = peer_of(a);
            let task = TrainTask {
                job: job.id().to_string(),
                round,
                task: format!("r{round}-shard{s}"),
                spec: spec_text.to_string(),
                global: global_blob.clone(),
                shard: shards[s].clone(),
                seed: spec.seed ^ infra_train::run::task_id(round, s),
            };
            let deadline = Duration::from_secs(spec.cluster.task_deadline_secs);
            async move {
                let r = tokio::time::timeout(deadline, run_task(node, peer, task, weights))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ClusterError::Transfer(format!(
                            "missed the task deadline of {}s",
                            deadline.as_secs()
                        )))
                    });
                (s, attempts, peer, r)
            }
        });
        for (s, attempts, peer, r) in futures::future::join_all(runs).await {
            match r {
                Ok((result, update, moved)) => {
                    pending.retain(|&(p, _)| p != s);
                    holders[s] = Some(peer);
                    bytes += moved;
                    returned.push((s, peer, result, update));
                }
                Err(e) => {
                    let remote = matches!(e, ClusterError::Remote(_));
                    if !remote && peer != node.peer_id() {
                        down.insert(peer, Instant::now());
                        job.emit(JobEvent::note(
                            "peer-down",
                            round,
                            format!("peer {peer}: {e}"),
                        ));
                    }
                    let left = spec.cluster.max_attempts.saturating_sub(attempts + 1);
                    let why = format!("task r{round}-shard{s} on {peer} failed ({e})");
                    job.emit(JobEvent::note(
                        "retry",
                        round,
                        format!("{why}; {left} attempts left"),
                    ));
                    if let Some(p) = pending.iter_mut().find(|(p, _)| *p == s) {
                        p.1 += 1;
                    }
                    pending.retain(|&(_, a)| a < spec.cluster.max_attempts);
                }
            }
        }
    }
    Ok(Some((returned, bytes)))
}
