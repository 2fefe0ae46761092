//! One round's training tasks: the scheduler plugin places the pending ones on the workers'
//! nodes, they run side by side under the job's task deadline, and a task that fails goes
//! back to pending with one more attempt (a node at fault is left out, see
//! [`Workers::node_failed`]), until every shard has returned or used up its attempts.
//! Returned updates are validated here: one of the wrong length or with a non-finite value
//! is dropped and recorded, never merged. A node whose task failed (an error, or an update
//! dropped) is kept off that shard for the rest of the job, unless no other node is left.

use crate::events::{EventKind, JobEvent, Observer};
use crate::swap::Swappable;
use crate::workers::{Done, Failure, Order, Workers};
use crate::{task_id, EngineError};
use infra_runtime::scheduler::{node_position, Holding, Pending, Resources, Task};
use infra_train::JobSpec;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Where a job's shards went, carried from round to round.
pub(crate) struct Placement {
    /// The node that last trained each shard (it holds the shard).
    pub holders: Vec<Option<String>>,
    /// The nodes each shard's tasks failed on: kept off it for the job.
    pub avoid: Vec<BTreeSet<String>>,
}

impl Placement {
    pub fn new(shards: usize) -> Self {
        Self {
            holders: vec![None; shards],
            avoid: vec![BTreeSet::new(); shards],
        }
    }
}

/// What stays the same while one round's tasks run.
pub(crate) struct Round<'a, W: Workers> {
    pub spec: &'a JobSpec,
    pub job: &'a str,
    pub number: u32,
    /// What one task asks of a node.
    pub demand: Resources,
    pub shards: &'a [W::Shard],
    pub shard_bytes: &'a [u64],
    /// Size of the weights each task receives.
    pub wire_bytes: u64,
    pub weights: &'a W::Weights,
    /// The round's global weights (an update's length, and where its distance is measured
    /// from).
    pub global: &'a [f32],
}

/// A task that came back with a valid update.
pub(crate) struct Returned<U> {
    pub shard: usize,
    pub node: String,
    pub done: Done<U>,
}

/// A round's returned tasks.
pub(crate) struct Tasks<U> {
    pub returned: Vec<Returned<U>>,
    /// Bytes the tasks moved.
    pub bytes: u64,
    /// Scheduling decisions taken.
    pub waves: u32,
    /// Wall time during which tasks ran.
    pub training: Duration,
}

/// Runs the round's tasks; `None` when the job is cancelled meanwhile.
pub(crate) async fn run_tasks<W: Workers, O: Observer>(
    r: &Round<'_, W>,
    workers: &W,
    obs: &O,
    sched: &mut Swappable,
    placement: &mut Placement,
) -> Result<Option<Tasks<W::Update>>, EngineError> {
    let round = r.number;
    let max_attempts = r.spec.cluster.max_attempts;
    let mut pending: Vec<(usize, u32)> = (0..r.shards.len()).map(|s| (s, 0)).collect();
    let mut out = Tasks {
        returned: Vec::new(),
        bytes: 0,
        waves: 0,
        training: Duration::ZERO,
    };
    while !pending.is_empty() {
        if obs.cancelled() {
            return Ok(None);
        }
        sched.refresh(round, obs);
        out.waves += 1;
        // One scheduling call per set of nodes to keep off (usually one call for all), each
        // seeing what the calls before it placed this wave.
        let mut groups: Vec<(&BTreeSet<String>, Vec<usize>)> = Vec::new();
        for (i, &(shard, _)) in pending.iter().enumerate() {
            let avoid = &placement.avoid[shard];
            match groups.iter_mut().find(|(a, _)| *a == avoid) {
                Some((_, v)) => v.push(i),
                None => groups.push((avoid, vec![i])),
            }
        }
        let mut placed: Vec<(usize, String)> = Vec::new();
        let mut taken: HashMap<String, u32> = HashMap::new();
        let mut asked = (0, 0);
        for (avoid, members) in groups {
            let sub: Vec<(usize, u32)> = members.iter().map(|&i| pending[i]).collect();
            let request =
                pending_request(r, workers, &sub, &placement.holders, avoid, &taken).await?;
            asked = (asked.0 + request.tasks.len(), request.nodes.len());
            // Plugin calls are synchronous and may block in WASI (a guest's output), which a
            // runtime worker may do only in place.
            let answer = tokio::task::block_in_place(|| sched.instance.schedule(&request))
                .map_err(|e| EngineError::Round {
                    round,
                    cause: e.to_string(),
                })?;
            // Positions were checked by the runtime against the request.
            for a in answer {
                let node = request.nodes[a.node as usize].id.clone();
                *taken.entry(node.clone()).or_default() += 1;
                placed.push((members[a.task as usize], node));
            }
        }
        if placed.is_empty() {
            return Err(EngineError::Round {
                round,
                cause: format!(
                    "scheduler `{}` placed none of {} pending tasks on {} nodes",
                    sched.instance.plugin().meta().name,
                    asked.0,
                    asked.1
                ),
            });
        }
        let deadline = Duration::from_secs(r.spec.cluster.task_deadline_secs);
        let runs = placed.iter().map(|(i, node)| {
            let (shard, attempt) = pending[*i];
            let node = node.clone();
            let order = Order {
                round,
                shard,
                seed: r.spec.seed ^ task_id(round, shard),
                attempt,
                data: &r.shards[shard],
                weights: r.weights,
            };
            async move {
                let done = tokio::time::timeout(deadline, workers.run(&node, order))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::Node(format!(
                            "missed the task deadline of {}s",
                            deadline.as_secs()
                        )))
                    });
                (shard, attempt, node, done)
            }
        });
        let wave_started = Instant::now();
        let results = futures::future::join_all(runs).await;
        out.training += wave_started.elapsed();
        for (shard, attempt, node, done) in results {
            let bound = r.spec.cluster.max_update_norm;
            match done
                .map_err(|f| (f, None))
                .and_then(|d| check(d, r.global, bound))
            {
                Ok(done) => {
                    pending.retain(|&(p, _)| p != shard);
                    placement.holders[shard] = Some(node.clone());
                    out.bytes += done.bytes;
                    out.returned.push(Returned { shard, node, done });
                }
                Err((failure, bytes)) => {
                    out.bytes += bytes.unwrap_or(0);
                    let failed = format!("task r{round}-shard{shard} on {node} failed ({failure})");
                    match &failure {
                        Failure::Node(why) => {
                            workers.node_failed(&node);
                            obs.event(JobEvent::note(
                                EventKind::PeerDown,
                                round,
                                format!("peer {node}: {why}"),
                            ));
                        }
                        Failure::Task(_) if bytes.is_some() => {
                            obs.event(JobEvent::note(EventKind::Dropped, round, failed.clone()));
                        }
                        Failure::Task(_) => {}
                    }
                    if matches!(failure, Failure::Task(_)) {
                        placement.avoid[shard].insert(node.clone());
                    }
                    let left = max_attempts.saturating_sub(attempt + 1);
                    obs.event(JobEvent::note(
                        EventKind::Retry,
                        round,
                        format!("{failed}; {left} attempts left"),
                    ));
                    if let Some(p) = pending.iter_mut().find(|(p, _)| *p == shard) {
                        p.1 += 1;
                    }
                    pending.retain(|&(_, a)| a < max_attempts);
                }
            }
        }
    }
    Ok(Some(out))
}

/// The scheduler's request for the pending tasks: the workers' nodes now, each task's
/// demand and input size, and which node already holds each task's shard.
/// Nodes in `avoid` are left out unless that would leave none; the free resources of nodes
/// already given tasks this wave (`taken`) are reduced by those tasks' demand.
async fn pending_request<W: Workers>(
    r: &Round<'_, W>,
    workers: &W,
    pending: &[(usize, u32)],
    holders: &[Option<String>],
    avoid: &BTreeSet<String>,
    taken: &HashMap<String, u32>,
) -> Result<Pending, EngineError> {
    let mut nodes = workers.nodes(r.demand).await?;
    if nodes.iter().any(|n| !avoid.contains(&n.id)) {
        nodes.retain(|n| !avoid.contains(&n.id));
    }
    for n in &mut nodes {
        if let Some(&k) = taken.get(&n.id) {
            n.free.cpu_millis = n
                .free
                .cpu_millis
                .saturating_sub(k.saturating_mul(r.demand.cpu_millis));
            n.free.memory_mib = n
                .free
                .memory_mib
                .saturating_sub(k as u64 * r.demand.memory_mib);
            n.free.gpus = n.free.gpus.saturating_sub(k.saturating_mul(r.demand.gpus));
        }
    }
    let tasks = pending
        .iter()
        .map(|&(s, attempts)| Task {
            id: task_id(r.number, s),
            job: 0,
            priority: 0,
            demand: r.demand,
            est_duration_ms: 0,
            input_bytes: r.shard_bytes[s] + r.wire_bytes,
            attempts,
        })
        .collect();
    let holdings = pending
        .iter()
        .enumerate()
        .filter_map(|(t, &(s, _))| {
            let node = node_position(&nodes, holders[s].as_deref()?)?;
            Some(Holding {
                task: t as u32,
                node,
            })
        })
        .collect();
    Ok(Pending {
        jobs: vec![r.job.to_string()],
        tasks,
        nodes,
        holdings,
    })
}

/// An update fit to merge: as long as the model, every value finite, within the job's
/// `cluster.max-update-norm` of the global weights. A refused one keeps the bytes it moved
/// for the round's count.
fn check<U: std::ops::Deref<Target = [f32]>>(
    d: Done<U>,
    global: &[f32],
    max_norm: Option<f64>,
) -> Result<Done<U>, (Failure, Option<u64>)> {
    let refuse = |why: String| Err((Failure::Task(why), Some(d.bytes)));
    if d.update.len() != global.len() {
        return refuse(format!(
            "its update has {} values, the model {}",
            d.update.len(),
            global.len()
        ));
    }
    if let Some(i) = d.update.iter().position(|v| !v.is_finite()) {
        return refuse(format!("its update's value {i} is {}", d.update[i]));
    }
    if !d.loss.is_finite() {
        return refuse(format!("it reports a loss of {}", d.loss));
    }
    if let Some(max) = max_norm {
        let norm = d
            .update
            .iter()
            .zip(global)
            .map(|(u, g)| (*u as f64 - *g as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        if norm > max {
            return refuse(format!(
                "its update moves the model {norm:.4} (L2), more than `cluster.max-update-norm` = {max}"
            ));
        }
    }
    Ok(d)
}
