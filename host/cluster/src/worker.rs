//! A training task on a worker: fetch the round's global weights and the shard from the
//! coordinator (the shard only once: blobs are content-addressed), run the job's cleaning
//! chain over the shard (once per shard and chain), train with libtorch, and keep the update
//! as a blob for the coordinator to fetch.

use crate::messages::{TrainResult, TrainTask};
use crate::node::ClusterNode;
use crate::plugins::SHA_PREFIX;
use crate::transfer;
use crate::ClusterError;
use infra_net::PeerId;
use infra_runtime::cleaner::CleaningChain;
use infra_runtime::PluginKind;
use infra_train::task::{params_from_bytes, params_to_bytes, train_shard};
use infra_train::{Dataset, JobSpec};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// CPU a task asks for per intra-op thread (the coordinator's demand, accounted here).
pub const MILLIS_PER_THREAD: u32 = 1000;
/// Memory a task asks for, MiB.
pub const TASK_MEMORY_MIB: u64 = 256;

/// What a worker remembers between tasks.
#[derive(Default)]
pub(crate) struct WorkerState {
    /// Cleaned shards by (shard blob, chain identity).
    cleaned: Mutex<HashMap<String, Arc<Dataset>>>,
    /// Per-round blobs (global, update) this worker holds for a job, by round.
    round_blobs: Mutex<HashMap<String, Vec<(u32, String)>>>,
    /// Shards held for each job.
    shards: Mutex<HashMap<String, HashSet<String>>>,
}

fn chain_key(shard: &str, spec: &JobSpec) -> String {
    let chain: Vec<String> = spec
        .cleaners
        .iter()
        .map(|c| format!("{}{:?}", c.plugin, c.config_pairs()))
        .collect();
    format!("{shard}|{}", chain.join("|"))
}

/// Runs `task` for the coordinator `from`.
pub(crate) async fn train(
    node: &ClusterNode,
    from: PeerId,
    task: TrainTask,
) -> Result<TrainResult, ClusterError> {
    let n = &node.inner;
    let spec = JobSpec::parse(&task.spec, "task spec")?;
    let local = from == n.net.peer_id();
    if !local {
        forget_old_rounds(node, &task.job, task.round);
    }
    let fetch = |blob: String| async move {
        transfer::fetch(&n.net, &n.store, &n.links, from, &blob).await
    };
    let (global, shard) = tokio::try_join!(fetch(task.global.clone()), fetch(task.shard.clone()))?;
    if n.worker
        .shards
        .lock()
        .expect("worker lock")
        .entry(task.job.clone())
        .or_default()
        .insert(task.shard.clone())
    {
        n.store.hold(&task.shard);
    }
    let mut fetched = global.transferred + shard.transferred;
    let mut refetched = global.refetched + shard.refetched;
    // Cleaning steps named by content come from the coordinator when missing here.
    for c in &spec.cleaners {
        if let Some(sha) = c.plugin.strip_prefix(SHA_PREFIX) {
            if n.plugins.by_sha(sha).is_none() {
                let f = fetch(sha.to_string()).await?;
                fetched += f.transferred;
                refetched += f.refetched;
                n.plugins.install(f.bytes.to_vec(), &n.store)?;
            }
        }
    }
    let key = chain_key(&task.shard, &spec);
    let cached = n
        .worker
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
                Ok(infra_train::run::clean(&chain, &raw, &mut Vec::new())?)
            })
            .await
            .map_err(|e| ClusterError::Job(format!("cleaning task: {e}")))??;
            let d = Arc::new(d);
            n.worker
                .cleaned
                .lock()
                .expect("worker lock")
                .insert(key, d.clone());
            d
        }
    };
    let demand_cpu = MILLIS_PER_THREAD * spec.threads as u32;
    let job_id = task.job.clone();
    node.update_status(|s| {
        *s.job_tasks.entry(job_id.clone()).or_default() += 1;
        s.tasks += 1;
        s.used_cpu_millis += demand_cpu;
        s.used_memory_mib += TASK_MEMORY_MIB;
        s.load = (s.used_cpu_millis as f32 / s.cpu_millis.max(1) as f32).min(1.0);
    })
    .await;
    let started = Instant::now();
    let global_bytes = global.bytes.clone();
    let seed = task.seed;
    let spec2 = spec.clone();
    let data = cleaned.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        tch::set_num_threads(spec2.threads as i32);
        let g = params_from_bytes(&global_bytes)?;
        Ok::<_, ClusterError>(train_shard(&spec2, &data, &g, seed)?)
    })
    .await
    .map_err(|e| ClusterError::Job(format!("training task: {e}")));
    let compute_ms = started.elapsed().as_secs_f64() * 1e3;
    node.update_status(|s| {
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
    let update = outcome??;
    let update_id = n.store.put(params_to_bytes(&update.params));
    if !local {
        let mut rb = n.worker.round_blobs.lock().expect("worker lock");
        let v = rb.entry(task.job.clone()).or_default();
        v.push((task.round, task.global.clone()));
        v.push((task.round, update_id.clone()));
    }
    tracing::info!(
        job = task.job,
        task = task.task,
        compute_ms,
        fetched,
        "task done"
    );
    Ok(TrainResult {
        update: update_id,
        loss: update.loss,
        rows: cleaned.rows() as u64,
        samples: update.samples,
        compute_ms,
        fetched_bytes: fetched,
        refetched_chunks: refetched,
    })
}

/// Drops the weights and updates of a job's earlier rounds (the coordinator has fetched
/// them); shards stay, so the next round does not fetch them again.
fn forget_old_rounds(node: &ClusterNode, job: &str, round: u32) {
    let mut rb = node.inner.worker.round_blobs.lock().expect("worker lock");
    if let Some(v) = rb.get_mut(job) {
        v.retain(|(r, id)| {
            let keep = *r >= round;
            if !keep {
                node.inner.store.remove(id);
            }
            keep
        });
    }
}

/// Drops everything kept for `job`: its round blobs, its shards (unless another job holds
/// them too) and their cleaned copies.
pub(crate) fn forget(node: &ClusterNode, job: &str) {
    let w = &node.inner.worker;
    for (_, id) in w
        .round_blobs
        .lock()
        .expect("worker lock")
        .remove(job)
        .unwrap_or_default()
    {
        node.inner.store.remove(&id);
    }
    let shards = w
        .shards
        .lock()
        .expect("worker lock")
        .remove(job)
        .unwrap_or_default();
    for id in &shards {
        node.inner.store.release(id);
        if !node.inner.store.has(id) {
            w.cleaned
                .lock()
                .expect("worker lock")
                .retain(|k, _| !k.starts_with(id.as_str()));
        }
    }
}
