//! The coordinator of a job (the host it was submitted to). Each round: the scheduler plugin
//! places the pending training tasks (one per shard) on the live peers, itself included, from
//! their gossiped status and the measured links; the tasks run on the workers; a task whose
//! peer fails or misses the deadline goes back to pending with one more attempt and the peer is
//! left out for the rest of the round; the round counts once a quorum of tasks has returned;
//! the aggregator plugin merges the updates; the new global model is evaluated, checkpointed
//! and the job record saved, so a restarted host resumes from the last good round. The
//! evaluation and checkpoint of one round run beside the next round's tasks (`finish.rs`);
//! starting or resuming a job (plugins, shard blobs, the global model) is `start.rs`; a
//! round's tasks, placed, run and retried until every shard is back, are `dispatch.rs`; one
//! task on one peer, and the nodes the scheduler sees, are `tasks.rs`.
//!
//! Cluster-wide swaps take effect here: a new scheduler from the next scheduling decision, a
//! new aggregator from the next aggregation; each is written into the job's history.

use crate::encoding;
use crate::jobs::{JobEvent, JobHandle, JobState};
use crate::messages::{Request, INLINE_MAX_BYTES};
use crate::node::ClusterNode;
use crate::worker::{MILLIS_PER_THREAD, TASK_MEMORY_MIB};
use crate::ClusterError;
use bytes::Bytes;
use infra_net::PeerId;
use infra_runtime::aggregator::{UpdateRef, DEFAULT_CHUNK};
use infra_runtime::scheduler::Resources;
use infra_runtime::{Instance, Plugin, PluginKind, Scope};
use infra_train::checkpoint;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

mod dispatch;
mod finish;
mod start;
mod tasks;

use finish::{finish_round, settle, Evaluation, Finishing};
use start::Started;
use tasks::RoundWeights;

enum Outcome {
    Done,
    Cancelled,
}

/// Runs (or resumes) a job to its end, recording the outcome.
pub(crate) async fn run(node: ClusterNode, job: Arc<JobHandle>, spec: String, csv: Option<String>) {
    let mut held = Held {
        shards: Vec::new(),
        peers: HashSet::new(),
    };
    let outcome = drive(&node, &job, &spec, csv, &mut held).await;
    release(&node, job.id(), held).await;
    match outcome {
        Ok(Outcome::Done) => {
            let r = job.snapshot();
            job.update(|r| r.state = JobState::Done);
            let mut ev = JobEvent::note(
                "done",
                r.rounds_done,
                format!("{} rounds done", r.rounds_done),
            );
            ev.accuracy = r.accuracy;
            job.emit(ev);
        }
        Ok(Outcome::Cancelled) => {
            job.update(|r| r.state = JobState::Cancelled);
            job.emit(JobEvent::note(
                "cancelled",
                job.snapshot().rounds_done,
                "cancelled",
            ));
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(job = job.id(), "job failed: {msg}");
            job.update(|r| {
                r.state = JobState::Failed;
                r.error = Some(msg.clone());
            });
            job.emit(JobEvent::note(
                "failed",
                job.snapshot().rounds_done + 1,
                msg,
            ));
        }
    }
}

/// What a job keeps across the cluster while it runs.
struct Held {
    /// Its shard blobs, held in this node's store.
    shards: Vec<String>,
    /// Peers that were given tasks.
    peers: HashSet<PeerId>,
}

/// Releases the job's shards here and asks every peer that worked on it to forget it.
async fn release(node: &ClusterNode, job: &str, held: Held) {
    for id in &held.shards {
        node.inner.store.release(id);
    }
    crate::worker::forget(node, job);
    let asks = held
        .peers
        .into_iter()
        .filter(|p| *p != node.peer_id())
        .map(|peer| {
            let frame = Request::Forget {
                job: job.to_string(),
            }
            .to_frame();
            async move {
                if let Err(e) = node.inner.net.request(peer, frame).await {
                    tracing::debug!(%peer, "forget: {e}");
                }
            }
        });
    futures::future::join_all(asks).await;
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClusterError> + Send + 'static,
) -> Result<T, ClusterError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClusterError::Job(format!("background work failed: {e}")))?
}

fn ident(p: &Plugin) -> String {
    format!("{} sha256:{}", p.meta().name, p.meta().sha256)
}

struct Swappable {
    kind: PluginKind,
    instance: Instance,
    seen: usize,
}

impl Swappable {
    /// Takes a cluster-wide swap of this kind made since the last look, if any.
    fn refresh(&mut self, node: &ClusterNode, job: &JobHandle, round: u32) {
        let reg = &node.inner.plugins.registry;
        let history = reg.history();
        let fresh = history[self.seen.min(history.len())..]
            .iter()
            .any(|r| r.kind == self.kind && r.scope == Scope::Global);
        self.seen = history.len();
        if !fresh {
            return;
        }
        let Ok(new) = reg.active(self.kind, &Scope::Global) else {
            return;
        };
        let old = ident(self.instance.plugin());
        if new.meta().sha256 == self.instance.plugin().meta().sha256 {
            return;
        }
        let now = ident(&new);
        self.instance = new.instance();
        let kind = self.kind.name();
        job.update(|r| {
            r.plugins.insert(kind.into(), now.clone());
        });
        job.emit(JobEvent::note(
            "swap",
            round,
            format!("{kind}: {old} -> {now} from round {round}"),
        ));
    }
}

/// Starts the job (`start.rs`), then runs its rounds: the weights encoded once per round, the
/// tasks (`dispatch.rs`), the quorum, the aggregation, and the round's evaluation handed to
/// the background (`finish.rs`).
async fn drive(
    node: &ClusterNode,
    job: &Arc<JobHandle>,
    spec_text: &str,
    csv: Option<String>,
    held: &mut Held,
) -> Result<Outcome, ClusterError> {
    let n = &node.inner;
    let Started {
        spec,
        mut sched,
        mut agg,
        shards,
        shard_bytes,
        width,
        classes,
        test,
        ckpt,
        mut global,
        first,
    } = start::start(node, job, spec_text, csv, held).await?;
    let mut placement = dispatch::Placement {
        holders: vec![None; shards.len()],
        down: HashMap::new(),
    };
    let demand = Resources {
        cpu_millis: MILLIS_PER_THREAD * spec.threads as u32,
        memory_mib: TASK_MEMORY_MIB,
        gpus: 0,
    };
    // The evaluation and checkpoint of round r run beside round r + 1's tasks (they only need
    // r's model); they finish in order, and every exit waits for the one in flight.
    let mut finishing: Option<Finishing> = None;
    // A round starts where the one before it ended, so a wait for the evaluation before that
    // (below) counts in the round it delays instead of in none.
    let mut round_started = Instant::now();
    // The global model of the round before last: once the round after it has settled nothing
    // holds it, and the next aggregation writes into its memory instead of a fresh buffer
    // (which the kernel would fault in and zero on the round's critical path).
    let mut spare: Option<Arc<Vec<f32>>> = None;
    let outcome: Result<Outcome, ClusterError> = async {
        for round in first..=spec.rounds {
            if job.cancelled() {
                return Ok(Outcome::Cancelled);
            }
            // The weights ride in each training request; a model too large for one frame goes as
            // a blob the workers fetch.
            let encoded =
                encoding::encode_weights(&global, spec.cluster.compression).map_err(|e| {
                    ClusterError::Round {
                        round,
                        cause: e.to_string(),
                    }
                })?;
            let wire_bytes = encoded.len() as u64;
            let (inline, global_blob) = if encoded.len() > INLINE_MAX_BYTES {
                (Bytes::new(), Some(n.store.put(encoded)))
            } else {
                (encoded, None)
            };
            let weights = RoundWeights {
                params: global.clone(),
                inline,
                compression: spec.cluster.compression,
            };
            let total = shards.len();
            let tasks = dispatch::Round {
                node,
                job,
                spec: &spec,
                spec_text,
                number: round,
                demand,
                shards: &shards,
                shard_bytes: &shard_bytes,
                wire_bytes,
                global_blob: &global_blob,
                weights: &weights,
            };
            let Some((mut returned, bytes)) =
                dispatch::run_tasks(&tasks, &mut sched, &mut placement, held).await?
            else {
                return Ok(Outcome::Cancelled);
            };
            let need = (spec.cluster.quorum * total as f64).ceil() as usize;
            if returned.len() < need {
                return Err(ClusterError::Round {
                    round,
                    cause: format!(
                        "{} of {total} tasks returned; the quorum is {need}",
                        returned.len()
                    ),
                });
            }

            // Aggregate.
            agg.refresh(node, job, round);
            returned.sort_by_key(|r| r.0);
            let names: Vec<String> = returned
                .iter()
                .map(|(s, p, _, _)| format!("{p}/shard-{s}"))
                .collect();
            let refs: Vec<UpdateRef> = returned
                .iter()
                .zip(&names)
                .map(|((_, _, r, u), name)| UpdateRef {
                    peer: name,
                    samples: r.rows,
                    loss: r.loss,
                    params: u,
                })
                .collect();
            let tasks_done_at = round_started.elapsed();
            let mut next = spare
                .take()
                .and_then(|a| Arc::try_unwrap(a).ok())
                .unwrap_or_default();
            let summary = agg
                .instance
                .aggregate_into(round, &global, &refs, DEFAULT_CHUNK, &mut next)
                .map_err(|e| ClusterError::Round {
                    round,
                    cause: e.to_string(),
                })?;
            let rows: u64 = returned.iter().map(|r| r.2.rows).sum();
            let loss = returned
                .iter()
                .map(|r| r.2.loss as f64 * r.2.rows as f64)
                .sum::<f64>()
                / rows.max(1) as f64;
            let compute = returned.iter().map(|r| r.2.compute_ms).fold(0.0, f64::max) / 1e3;
            drop(refs);
            for id in returned.iter().filter_map(|r| r.2.update.as_ref()) {
                n.store.remove(id);
            }
            if let Some(id) = &global_blob {
                n.store.remove(id);
            }
            spare = Some(std::mem::replace(&mut global, Arc::new(next)));

            let seconds = round_started.elapsed().as_secs_f64();
            tracing::info!(
                round,
                tasks_ms = tasks_done_at.as_secs_f64() * 1e3,
                compute_ms = compute * 1e3,
                aggregate_ms = (seconds - tasks_done_at.as_secs_f64()) * 1e3,
                "round timing"
            );
            let peers_used: HashSet<&PeerId> = returned.iter().map(|r| &r.1).collect();
            let mut ev = JobEvent::note(
                "round",
                round,
                format!(
                    "{}/{total} tasks on {} peers; {}",
                    returned.len(),
                    peers_used.len(),
                    summary
                ),
            );
            ev.loss = loss;
            ev.seconds = seconds;
            ev.overhead = (1.0 - compute / seconds).clamp(0.0, 1.0);
            ev.tasks = (returned.len() as u32, total as u32);
            ev.bytes = bytes;
            ev.peers = peers_used.len() as u32;
            ev.refetched = returned.iter().map(|r| r.2.refetched_chunks).sum();
            let mut meta = checkpoint::Metadata::new();
            meta.insert("job".into(), job.id().to_string());
            meta.insert("round".into(), round.to_string());
            for (k, v) in job.snapshot().plugins {
                meta.insert(format!("plugin.{k}"), v);
            }
            let evaluation = Evaluation {
                spec: spec.clone(),
                test: test.clone(),
                params: global.clone(),
                width,
                classes,
                checkpoint: ckpt.clone(),
                meta,
            };
            let settling = Instant::now();
            round_started = settling;
            settle(finishing.take()).await?;
            let waited_ms = settling.elapsed().as_secs_f64() * 1e3;
            if waited_ms >= 1.0 {
                // The previous evaluation was still running; the next round's time includes
                // the wait.
                tracing::info!(
                    round,
                    waited_ms,
                    "waited for the previous round's evaluation"
                );
            }
            finishing = Some(tokio::spawn(finish_round(job.clone(), evaluation, ev)));
        }
        Ok(Outcome::Done)
    }
    .await;
    let last = settle(finishing.take()).await;
    outcome.and_then(|o| last.map(|()| o))
}
