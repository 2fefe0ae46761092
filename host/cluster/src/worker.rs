//! A training task on a worker: take the round's global weights (from the request, or fetched
//! as a blob for models too large for one frame), fetch the job's spec and the shard from the
//! coordinator (only once each: blobs are content-addressed, and the spec is parsed and
//! validated once per job), run the job's cleaning chain over the shard (once per shard and
//! chain: federated cleaning), train with libtorch, and send the update back in the answer (or
//! keep it as a blob for the coordinator to fetch).
//!
//! A [`Worker`] holds only the handles it needs (network client, blob store, links, plugins,
//! status), never the whole node.

use crate::blobs::{BlobId, BlobStore};
use crate::encoding::{self, Params};
use crate::messages::{TrainResult, TrainTask, INLINE_MAX_BYTES};
use crate::plugins::{ClusterPlugins, SHA_PREFIX};
use crate::status::Status;
use crate::transfer::{self, Links};
use crate::ClusterError;
use bytes::Bytes;
use infra_net::{Client, PeerId};
use infra_rounds::{MILLIS_PER_THREAD, TASK_MEMORY_MIB};
use infra_runtime::cleaner::CleaningChain;
use infra_runtime::PluginKind;
use infra_train::job::Compression;
use infra_train::task::train_shard;
use infra_train::{Dataset, JobSpec};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A node's worker side: what it needs to run tasks for coordinators, and what it keeps
/// between them.
pub(crate) struct Worker {
    pub net: Client,
    pub store: BlobStore,
    pub links: Links,
    pub plugins: Arc<ClusterPlugins>,
    pub status: Status,
    state: WorkerState,
}

impl Worker {
    pub fn new(
        net: Client,
        store: BlobStore,
        links: Links,
        plugins: Arc<ClusterPlugins>,
        status: Status,
    ) -> Self {
        Self {
            net,
            store,
            links,
            plugins,
            status,
            state: WorkerState::default(),
        }
    }
}

impl Worker {
    /// The blobs this worker holds for `job` (its spec and shards), for tests.
    #[cfg(test)]
    pub(crate) fn held_for(&self, job: &str) -> Vec<String> {
        let held = self.state.held.lock().expect("worker lock");
        held.get(job)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// What a worker remembers between tasks.
#[derive(Default)]
struct WorkerState {
    /// Job specs by the blob that holds their TOML, parsed and validated once.
    specs: Mutex<HashMap<String, Arc<JobSpec>>>,
    /// Cleaned shards by (shard blob, chain identity).
    cleaned: Mutex<HashMap<String, Arc<Dataset>>>,
    /// Per-round blobs (global, update) this worker holds for a job, by round.
    round_blobs: Mutex<HashMap<String, Vec<(u32, String)>>>,
    /// Blobs held for each job: its shards and its spec.
    held: Mutex<HashMap<String, HashSet<String>>>,
}

/// Refuses a task or `Forget` for `job` from `from` unless `from` made the job's id (the id
/// carries a tag bound to its coordinator's peer id, see `jobs.rs`).
fn check_coordinator(job: &str, from: PeerId) -> Result<(), ClusterError> {
    if crate::jobs::made_by(job, &from.to_string()) {
        return Ok(());
    }
    Err(ClusterError::Refused(format!(
        "job {job} is not coordinated by {from}: its id is bound to the peer that coordinates it"
    )))
}

fn chain_key(shard: &str, spec: &JobSpec) -> String {
    let chain: Vec<String> = spec
        .cleaners
        .iter()
        .map(|c| format!("{}{:?}", c.plugin, c.config_pairs()))
        .collect();
    format!("{shard}|{}", chain.join("|"))
}

/// The round's global parameters as a task gets them.
pub(crate) enum Weights {
    /// Already in memory (a task the coordinator runs itself).
    Params(Params),
    /// Encoded as the job's `cluster.compression` says (the request body, or a fetched blob).
    Bytes(Bytes),
    /// A blob to fetch from the coordinator.
    Blob(BlobId),
}

/// Answers a training request from the coordinator `from`: the weights come from the body
/// unless the task names a blob; the update goes back in the answer's body (or, past
/// [`INLINE_MAX_BYTES`], as a blob kept here until the job's next round).
pub(crate) async fn serve_train(
    w: &Worker,
    from: PeerId,
    task: TrainTask,
    body: Bytes,
) -> Result<(TrainResult, Bytes), ClusterError> {
    let weights = match &task.global {
        Some(id) => Weights::Blob(id.clone()),
        None => Weights::Bytes(body),
    };
    let started = Instant::now();
    let (job, round) = (task.job.clone(), task.round);
    let t = train(w, from, task, weights).await?;
    let mut result = t.result;
    let mut bytes = encoding::encode_update(t.params, &t.received, t.compression)?;
    if bytes.len() > INLINE_MAX_BYTES {
        // For the coordinator only.
        let id = w.store.put_for(std::mem::take(&mut bytes), &[from]);
        keep_round_blob(w, &job, round, &id);
        result.update = Some(id);
    }
    result.busy_ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::debug!(bytes = bytes.len(), "update encoded");
    Ok((result, bytes))
}

fn keep_round_blob(w: &Worker, job: &str, round: u32, id: &str) {
    let mut rb = w.state.round_blobs.lock().expect("worker lock");
    rb.entry(job.to_string())
        .or_default()
        .push((round, id.to_string()));
}

/// A finished task.
pub(crate) struct Trained {
    pub result: TrainResult,
    /// The trained parameters.
    pub params: Vec<f32>,
    /// The weights training started from.
    pub received: Params,
    /// The job's wire encoding.
    pub compression: Compression,
}

/// Runs `task` for the coordinator `from` (which may be this node) on `weights`.
pub(crate) async fn train(
    w: &Worker,
    from: PeerId,
    task: TrainTask,
    weights: Weights,
) -> Result<Trained, ClusterError> {
    let n = w;
    let local = from == n.net.peer_id();
    check_coordinator(&task.job, from)?;
    let (spec, spec_moved, spec_refetched) = job_spec(w, from, &task).await?;
    if !local {
        forget_old_rounds(w, &task.job, task.round);
    }
    let fetch = |blob: String| async move {
        transfer::fetch(&n.net, &n.store, &n.links, from, &blob).await
    };
    let weights = async {
        match weights {
            Weights::Blob(id) => {
                let f = fetch(id.clone()).await?;
                if !local {
                    keep_round_blob(w, &task.job, task.round, &id);
                }
                Ok::<_, ClusterError>((Weights::Bytes(f.bytes), f.transferred, f.refetched))
            }
            w => Ok((w, 0, 0)),
        }
    };
    let ((global, global_moved, global_refetched), shard) =
        tokio::try_join!(weights, fetch(task.shard.clone()))?;
    hold_for_job(w, &task.job, &task.shard);
    let mut fetched = spec_moved + global_moved + shard.transferred;
    let mut refetched = spec_refetched + global_refetched + shard.refetched;
    // Cleaning steps named by content come from the coordinator when missing here.
    for c in &spec.cleaners {
        if let Some(sha) = c.plugin.strip_prefix(SHA_PREFIX) {
            if let Some(f) =
                crate::plugins::fetch_plugin(&n.net, &n.store, &n.links, &n.plugins, from, sha)
                    .await?
            {
                fetched += f.transferred;
                refetched += f.refetched;
            }
        }
    }
    let key = chain_key(&task.shard, &spec);
    let cached = n
        .state
        .cleaned
        .lock()
        .expect("worker lock")
        .get(&key)
        .cloned();
    let cleaned = match cached {
        Some(d) => d,
        None => {
            let steps = spec
                .cleaners
                .iter()
                .map(|c| n.plugins.resolve(c, PluginKind::Cleaner))
                .collect::<Result<Vec<_>, _>>()?;
            let raw = shard.bytes.clone();
            let d = tokio::task::spawn_blocking(move || -> Result<Dataset, ClusterError> {
                let raw = Dataset::from_bytes(&raw)?;
                let chain = CleaningChain::new(steps)?;
                Ok(infra_train::clean::clean(&chain, &raw, &mut Vec::new())?)
            })
            .await
            .map_err(|e| ClusterError::Internal(format!("cleaning task: {e}")))??;
            let d = Arc::new(d);
            n.state
                .cleaned
                .lock()
                .expect("worker lock")
                .insert(key, d.clone());
            d
        }
    };
    let demand_cpu = MILLIS_PER_THREAD.saturating_mul(spec.threads.min(u32::MAX as usize) as u32);
    let job_id = task.job.clone();
    // Refused with the reason when this node has no room for it: the coordinator places it
    // elsewhere.
    w.status
        .reserve(&job_id, demand_cpu, TASK_MEMORY_MIB)
        .await
        .map_err(ClusterError::Refused)?;
    let seed = task.seed;
    let spec2 = spec.clone();
    let data = cleaned.clone();
    // Compute is timed from the model build to the end of training.
    let outcome = tokio::task::spawn_blocking(move || {
        infra_train::device::set_threads(spec2.threads);
        let g = match global {
            Weights::Params(p) => p,
            Weights::Bytes(b) => encoding::decode_weights(b, spec2.cluster.compression)?,
            Weights::Blob(_) => unreachable!("fetched above"),
        };
        let started = Instant::now();
        tracing::debug!("compute starts");
        let update = train_shard(&spec2, &data, &g, seed)?;
        Ok::<_, ClusterError>((update, g, started.elapsed().as_secs_f64() * 1e3))
    })
    .await
    .map_err(|e| ClusterError::Internal(format!("training task: {e}")));
    w.status
        .update(|s| {
            if let Some(n) = s.job_tasks.get_mut(&job_id) {
                *n -= 1;
                if *n == 0 {
                    s.job_tasks.remove(&job_id);
                }
            }
            s.tasks = s.tasks.saturating_sub(1);
            s.used_cpu_millis = s.used_cpu_millis.saturating_sub(demand_cpu);
            s.used_memory_mib = s.used_memory_mib.saturating_sub(TASK_MEMORY_MIB);
            s.load = (s.used_cpu_millis as f32 / s.cpu_millis.max(1) as f32).min(1.0);
        })
        .await;
    let (update, received, compute_ms) = outcome??;
    tracing::info!(
        job = task.job,
        task = task.task,
        compute_ms,
        fetched,
        "task done"
    );
    let result = TrainResult {
        update: None,
        loss: update.loss,
        rows: cleaned.rows() as u64,
        samples: update.samples,
        compute_ms,
        busy_ms: 0.0,
        fetched_bytes: fetched,
        refetched_chunks: refetched,
    };
    Ok(Trained {
        result,
        params: update.params,
        received,
        compression: spec.cluster.compression,
    })
}

/// The task's job spec: parsed and validated once per job from the blob that holds its TOML
/// (fetched from the coordinator the first time; blobs are content-addressed, so the spec is
/// the one the coordinator sent).
/// Returns it with the bytes and refetched chunks its fetch cost (none once known).
async fn job_spec(
    w: &Worker,
    from: PeerId,
    task: &TrainTask,
) -> Result<(Arc<JobSpec>, u64, u32), ClusterError> {
    if let Some(s) = w.state.specs.lock().expect("worker lock").get(&task.spec) {
        return Ok((s.clone(), 0, 0));
    }
    let f = transfer::fetch(&w.net, &w.store, &w.links, from, &task.spec).await?;
    let text = std::str::from_utf8(&f.bytes)
        .map_err(|_| ClusterError::Protocol(format!("job spec {} is not UTF-8", task.spec)))?;
    let spec = Arc::new(JobSpec::parse(text, "job spec from the coordinator")?);
    w.state
        .specs
        .lock()
        .expect("worker lock")
        .insert(task.spec.clone(), spec.clone());
    hold_for_job(w, &task.job, &task.spec);
    Ok((spec, f.transferred, f.refetched))
}

/// Holds `blob` in the store until `job` is forgotten (once per job and blob).
fn hold_for_job(w: &Worker, job: &str, blob: &str) {
    let first = w
        .state
        .held
        .lock()
        .expect("worker lock")
        .entry(job.to_string())
        .or_default()
        .insert(blob.to_string());
    if first {
        w.store.hold(blob);
    }
}

/// Drops the weights and updates of a job's earlier rounds (the coordinator has fetched
/// them); shards stay, so the next round does not fetch them again.
fn forget_old_rounds(w: &Worker, job: &str, round: u32) {
    let mut rb = w.state.round_blobs.lock().expect("worker lock");
    if let Some(v) = rb.get_mut(job) {
        v.retain(|(r, id)| {
            let keep = *r >= round;
            if !keep {
                w.store.remove(id);
            }
            keep
        });
    }
}

/// Drops everything kept for `job`: its round blobs, its shards and spec (unless another job holds
/// them too) and their cleaned copies. Only the job's coordinator (`from`) may ask.
pub(crate) fn forget(w: &Worker, from: PeerId, job: &str) -> Result<(), ClusterError> {
    check_coordinator(job, from)?;
    let st = &w.state;
    for (_, id) in st
        .round_blobs
        .lock()
        .expect("worker lock")
        .remove(job)
        .unwrap_or_default()
    {
        w.store.remove(&id);
    }
    let held = st
        .held
        .lock()
        .expect("worker lock")
        .remove(job)
        .unwrap_or_default();
    for id in &held {
        w.store.release(id);
        if !w.store.has(id) {
            st.specs.lock().expect("worker lock").remove(id);
            st.cleaned
                .lock()
                .expect("worker lock")
                .retain(|k, _| !k.starts_with(id.as_str()));
        }
    }
    Ok(())
}
