//! Local threads as [`Workers`]: `infra train` runs a job on this machine with K workers, each
//! a node the scheduler sees and a thread with its own libtorch model per task. The engine is
//! the same as a cluster's, so a local job has the cluster's deadlines, retries and quorum;
//! with many shards on few workers it is infra's simulation of many clients (one shard each).

use crate::workers::{Done, Failure, Order, Workers};
use crate::{blocking, EngineError, Job, Options, Plugins};
use infra_runtime::cleaner::CleaningChain;
use infra_runtime::scheduler::{Node, Resources, Tier};
use infra_runtime::{Plugin, PluginKind, Runtime};
use infra_train::clean::{clean, merge, StepSummary};
use infra_train::job::PluginRef;
use infra_train::{Dataset, JobSpec};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod report;

pub use report::{JobReport, RoundReport, WorkerReport};

/// Memory each local worker offers the scheduler, MiB.
pub const WORKER_MEMORY_MIB: u64 = 4096;

/// How to run a local job.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Where to write `<job>.safetensors` after every round (none: no checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Called after every recorded round (progress display).
    pub on_round: Option<fn(&RoundReport, &JobSpec)>,
}

/// Loads a job's plugin reference: a `.wasm` path or a built-in name, configured.
pub fn load_plugin(
    runtime: &Runtime,
    r: &PluginRef,
    kind: PluginKind,
) -> Result<Plugin, EngineError> {
    let plugin = if r.plugin.ends_with(".wasm") {
        let p = runtime.load_file(Path::new(&r.plugin))?;
        p.expect_kind(kind)?;
        p
    } else {
        infra_builtins::load(runtime, &r.plugin, kind)?
    };
    Ok(plugin.with_config(r.config_pairs())?)
}

/// Resolves a job's plugins once, for a local job (built-in names and `.wasm` files).
pub fn resolve_plugins(runtime: &Runtime, spec: &JobSpec) -> Result<Plugins, EngineError> {
    Ok(Plugins {
        scheduler: load_plugin(runtime, &spec.scheduler, PluginKind::Scheduler)?,
        aggregator: load_plugin(runtime, &spec.aggregator, PluginKind::Aggregator)?,
        cleaners: spec
            .cleaners
            .iter()
            .map(|c| load_plugin(runtime, c, PluginKind::Cleaner))
            .collect::<Result<_, _>>()?,
    })
}

/// Runs `spec` on this machine with its `workers` local workers.
pub fn train(
    spec: &JobSpec,
    runtime: &Runtime,
    opts: &LocalOptions,
) -> Result<JobReport, EngineError> {
    let job = Job {
        id: spec.name.clone(),
        spec: Arc::new(spec.clone()),
        plugins: resolve_plugins(runtime, spec)?,
    };
    let workers = Arc::new(LocalWorkers::new(&job));
    train_with(&job, workers, opts)
}

/// Runs `job` on `workers` (the local ones, or any [`Workers`] over them) and reports.
pub fn train_with<W: Workers + 'static>(
    job: &Job,
    workers: Arc<W>,
    opts: &LocalOptions,
) -> Result<JobReport, EngineError> {
    let started = Instant::now();
    let spec = job.spec.clone();
    let device = infra_train::device::resolve(&spec.device).map_err(EngineError::Job)?;
    let data = infra_train::task::load_data(&spec, None)?;
    // Multi-threaded: plugins' WASI calls block in place, which a current-thread runtime
    // refuses.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .map_err(|e| EngineError::Internal(format!("cannot start the job's runtime: {e}")))?;
    let obs = Arc::new(report::Collector::new(spec.clone(), opts.on_round));
    let checkpoint = opts
        .checkpoint_dir
        .as_ref()
        .map(|d| d.join(format!("{}.safetensors", spec.name)));
    let engine = Options {
        checkpoint: checkpoint.clone(),
        runner: format!("{} local workers", spec.workers),
        ..Options::default()
    };
    // The engine runs on a runtime worker, where plugins' blocking WASI calls may block.
    let (job_c, workers_c, obs_c) = (job.clone(), workers.clone(), obs.clone());
    let outcome = runtime
        .block_on(
            runtime
                .spawn(async move { crate::run(&job_c, data, &*workers_c, &obs_c, engine).await }),
        )
        .map_err(|e| EngineError::Internal(format!("the job's rounds: {e}")))??;
    Ok(obs.report(outcome, workers.cleaning(), checkpoint, &device, started))
}

/// K local workers: node `worker-<w>` is worker w.
pub struct LocalWorkers {
    spec: Arc<JobSpec>,
    /// The job's device, resolved once (an unknown one is refused when the job starts).
    device: Result<tch::Device, String>,
    cleaners: Vec<Plugin>,
    started: Instant,
    /// Tasks running on each worker.
    running: Vec<AtomicU32>,
    /// Microseconds each worker has spent on tasks.
    busy_us: Vec<AtomicU64>,
    /// What cleaning the shards did.
    cleaning: Mutex<Vec<StepSummary>>,
}

impl LocalWorkers {
    /// The job's `workers` local workers.
    pub fn new(job: &Job) -> Self {
        let k = job.spec.workers.max(1);
        Self {
            device: infra_train::device::resolve(&job.spec.device),
            spec: job.spec.clone(),
            cleaners: job.plugins.cleaners.clone(),
            started: Instant::now(),
            running: (0..k).map(|_| AtomicU32::new(0)).collect(),
            busy_us: (0..k).map(|_| AtomicU64::new(0)).collect(),
            cleaning: Mutex::new(Vec::new()),
        }
    }

    fn position(&self, node: &str) -> Option<usize> {
        let w: usize = node.strip_prefix("worker-")?.parse().ok()?;
        (w < self.running.len()).then_some(w)
    }
}

impl Workers for LocalWorkers {
    type Shard = Arc<Dataset>;
    type Weights = Arc<Vec<f32>>;
    type Update = Vec<f32>;

    /// Each shard is cleaned with a chain of its own (fitted on its rows only), as a
    /// federated client cleans its data, unless the whole data set was cleaned already.
    async fn shards(
        &self,
        shards: Vec<Dataset>,
        cleaned: bool,
    ) -> Result<Vec<Arc<Dataset>>, EngineError> {
        if cleaned {
            return Ok(shards.into_iter().map(Arc::new).collect());
        }
        let cleaners = self.cleaners.clone();
        let (out, report) = blocking(move || {
            let mut report = Vec::new();
            let mut out = Vec::with_capacity(shards.len());
            for (i, s) in shards.iter().enumerate() {
                let mut steps = Vec::new();
                let d = clean(&CleaningChain::new(cleaners.clone())?, s, &mut steps)?;
                if d.rows() == 0 {
                    return Err(EngineError::Job(format!(
                        "shard {i}: none of its {} rows is left after cleaning",
                        s.rows()
                    )));
                }
                merge(&mut report, &steps);
                out.push(Arc::new(d));
            }
            Ok((out, report))
        })
        .await?;
        merge(&mut self.cleaning.lock().expect("cleaning lock"), &report);
        Ok(out)
    }

    fn cleaning(&self) -> Vec<StepSummary> {
        self.cleaning.lock().expect("cleaning lock").clone()
    }

    fn weights(
        &self,
        _round: u32,
        global: &Arc<Vec<f32>>,
    ) -> Result<(Arc<Vec<f32>>, u64), EngineError> {
        Ok((global.clone(), 4 * global.len() as u64))
    }

    async fn nodes(&self, demand: Resources) -> Result<Vec<Node>, EngineError> {
        let device = self.device.clone().map_err(EngineError::Job)?;
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        // One task at a time per worker: its capacity is one task's demand.
        let capacity = Resources {
            cpu_millis: demand.cpu_millis,
            memory_mib: WORKER_MEMORY_MIB.max(demand.memory_mib),
            gpus: matches!(device, tch::Device::Cuda(_)) as u32,
        };
        Ok((0..self.running.len())
            .map(|w| {
                let busy = self.running[w].load(Ordering::SeqCst) > 0;
                let free = if busy {
                    Resources {
                        cpu_millis: 0,
                        memory_mib: 0,
                        gpus: 0,
                    }
                } else {
                    capacity
                };
                Node {
                    id: format!("worker-{w}"),
                    tier: Tier::Server,
                    capacity,
                    free,
                    load: (self.busy_us[w].load(Ordering::SeqCst) as f64 / 1e6 / elapsed).min(1.0)
                        as f32,
                    labels: vec![("device".into(), format!("{device:?}"))],
                    rtt_ms: 0.0,
                    bandwidth_bytes_per_s: 0,
                }
            })
            .collect())
    }

    async fn run<'a>(
        &'a self,
        node: &'a str,
        order: Order<'a, Self>,
    ) -> Result<Done<Vec<f32>>, Failure> {
        let w = self
            .position(node)
            .ok_or_else(|| Failure::Node(format!("no local worker `{node}`")))?;
        let (spec, shard, global, seed) = (
            self.spec.clone(),
            order.data.clone(),
            order.weights.clone(),
            order.seed,
        );
        self.running[w].fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let trained = tokio::task::spawn_blocking(move || {
            infra_train::device::set_threads(spec.threads);
            let t = Instant::now();
            infra_train::task::train_shard(&spec, &shard, &global, seed)
                .map(|u| (u, shard.rows() as u64, t.elapsed()))
        })
        .await;
        let busy = started.elapsed();
        self.running[w].fetch_sub(1, Ordering::SeqCst);
        self.busy_us[w].fetch_add(busy.as_micros() as u64, Ordering::SeqCst);
        let (update, rows, compute) = trained
            .map_err(|e| Failure::Node(format!("worker thread: {e}")))?
            .map_err(|e| Failure::Task(e.to_string()))?;
        Ok(Done {
            bytes: 2 * 4 * update.params.len() as u64,
            update: update.params,
            loss: update.loss,
            rows,
            samples: update.samples,
            compute_ms: compute.as_secs_f64() * 1e3,
            busy_ms: busy.as_secs_f64() * 1e3,
            refetched: 0,
        })
    }
}
