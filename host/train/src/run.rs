//! `infra train`: K local workers in synchronous rounds.
//!
//! The cleaning chain runs once over the whole data set, before the seeded split and the
//! sharding. Each round the scheduler plugin places the round's training tasks (one per shard) on the
//! workers, presented to it as nodes with their resources; tasks run in waves until every
//! shard of the round is trained. Each worker loads the global parameters into its own model,
//! trains on its (already cleaned) shard and returns its update; the aggregator plugin merges
//! the updates; the global model is evaluated on the test split and checkpointed.

use crate::data::Dataset;
use crate::job::{JobSpec, PluginRef};
use crate::model::Model;
use crate::{checkpoint, optim, TrainError};
use infra_runtime::aggregator::{UpdateRef, DEFAULT_CHUNK};
use infra_runtime::cleaner::{split_rows, Batch, CleaningChain, StepReport};
use infra_runtime::scheduler::{Holding, Node, Pending, Resources, Task, Tier};
use infra_runtime::{Plugin, PluginKind, Runtime};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Rows per batch handed to the cleaning chain.
const CLEAN_BATCH_ROWS: usize = 512;
/// CPU a training task asks for: one core per intra-op thread.
const MILLIS_PER_THREAD: u32 = 1000;

/// How to run a job.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where to write `<job>.safetensors` after every good round (none: no checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Called after every round (progress display).
    pub on_round: Option<fn(&RoundReport, &JobSpec)>,
}

/// One round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// Round number, from 1.
    pub round: u32,
    /// Mean training loss over the round's tasks (sample-weighted).
    pub train_loss: f32,
    /// Test accuracy of the new global model.
    pub test_accuracy: f64,
    /// Test loss of the new global model.
    pub test_loss: f64,
    /// Wall time of the round.
    pub seconds: f64,
    /// Scheduling waves the round needed.
    pub waves: u32,
    /// The aggregator's summary.
    pub aggregator: String,
}

/// One worker over the job.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// Worker (node) id.
    pub id: String,
    /// Tasks it ran.
    pub tasks: u32,
    /// Samples it trained on.
    pub samples: u64,
    /// Seconds it spent training.
    pub busy_seconds: f64,
    /// busy / training wall time.
    pub utilisation: f64,
}

/// The job's summary (`infra train --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// Job name.
    pub job: String,
    /// Device used.
    pub device: String,
    /// Final test accuracy.
    pub final_accuracy: f64,
    /// Rounds completed.
    pub rounds: u32,
    /// Wall time of the whole job.
    pub wall_seconds: f64,
    /// Training samples processed per second of wall time.
    pub samples_per_second: f64,
    /// Per-worker figures.
    pub workers: Vec<WorkerReport>,
    /// Bytes of parameters moved (global model down + update up, per task).
    pub parameter_bytes_moved: u64,
    /// Model size.
    pub parameters: usize,
    /// Seed article: speedup against one worker = Σ task time / training wall time.
    pub speedup_vs_one_worker: f64,
    /// Seed article: utilisation = allocated / total (worker-seconds busy / worker-seconds
    /// available during training).
    pub utilisation: f64,
    /// Cleaning chain, per step, over the whole data set.
    pub cleaning: Vec<StepSummary>,
    /// Plugins used: kind -> (name, sha256).
    pub plugins: BTreeMap<String, (String, String)>,
    /// Every round.
    pub history: Vec<RoundReport>,
    /// Last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// A cleaning step's totals.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepSummary {
    /// Step (plugin) name.
    pub step: String,
    /// Rows in.
    pub rows_in: u64,
    /// Rows out.
    pub rows_out: u64,
    /// Rows dropped per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Values changed in place.
    pub values_changed: u64,
}

/// Loads a job's plugin reference: a `.wasm` path or a built-in name.
/// The id a scheduler sees for the task of `shard` in `round` (WIT `task.id`): stable while
/// the task waits, the round in the high 32 bits and the shard in the low 32. The local
/// trainer and the cluster coordinator both use it, and both seed the task's training with
/// the job's seed XOR this id.
pub fn task_id(round: u32, shard: usize) -> u64 {
    (round as u64) << 32 | shard as u64
}

pub fn load_plugin(
    runtime: &Runtime,
    r: &PluginRef,
    kind: PluginKind,
) -> Result<Plugin, TrainError> {
    let plugin = if r.plugin.ends_with(".wasm") {
        let p = runtime.load_file(std::path::Path::new(&r.plugin))?;
        p.expect_kind(kind)?;
        p
    } else {
        infra_builtins::load(runtime, &r.plugin, kind)?
    };
    Ok(plugin.with_config(r.config_pairs())?)
}

/// Joins cleaned batches back into a data set; a step may not change the columns.
fn from_batches(template: &Dataset, batches: Vec<Batch>) -> Result<Dataset, TrainError> {
    let mut out = Dataset {
        columns: template.columns.clone(),
        features: Vec::new(),
        labels: Vec::new(),
        classes: template.classes,
    };
    for b in batches {
        if b.columns.len() != template.width() {
            return Err(TrainError::Data(format!(
                "the cleaning chain changed the width from {} to {}",
                template.width(),
                b.columns.len()
            )));
        }
        out.features.extend(b.features);
        out.labels.extend(b.labels);
    }
    Ok(out)
}

fn add_steps(total: &mut Vec<StepSummary>, steps: Vec<StepReport>) {
    for (i, s) in steps.into_iter().enumerate() {
        if total.len() <= i {
            total.push(StepSummary {
                step: s.step.clone(),
                rows_in: 0,
                rows_out: 0,
                dropped: BTreeMap::new(),
                values_changed: 0,
            });
        }
        let t = &mut total[i];
        t.rows_in += s.rows_in;
        t.rows_out += s.rows_out;
        t.values_changed += s.values_changed;
        for (k, v) in s.dropped {
            *t.dropped.entry(k).or_default() += v;
        }
    }
}

/// Runs `d` through the cleaning chain (adding each step's counts to `total`) and checks that
/// the labels are in range afterwards.
pub fn clean(
    chain: &CleaningChain,
    d: &Dataset,
    total: &mut Vec<StepSummary>,
) -> Result<Dataset, TrainError> {
    if d.rows() == 0 {
        return Ok(d.clone());
    }
    let (batches, steps) = chain.run(split_rows(
        &d.columns,
        &d.features,
        &d.labels,
        CLEAN_BATCH_ROWS,
    ))?;
    add_steps(total, steps);
    let cleaned = from_batches(d, batches)?;
    if let Some(bad) = cleaned
        .labels
        .iter()
        .find(|&&l| l < 0 || l as usize >= d.classes)
    {
        return Err(TrainError::Data(format!(
            "label {bad} is outside 0..{} after cleaning: add `drop-invalid` with `num-classes` to the cleaners",
            d.classes
        )));
    }
    Ok(cleaned)
}

struct TaskOutcome {
    shard: usize,
    worker: usize,
    params: Vec<f32>,
    loss: f32,
    samples: u64,
    busy: Duration,
}

/// Runs `job` on this machine.
pub fn run(job: &JobSpec, runtime: &Runtime, opts: &RunOptions) -> Result<JobReport, TrainError> {
    let started = Instant::now();
    let device = crate::device::resolve(&job.device).map_err(TrainError::Job)?;
    tch::set_num_threads(job.threads as i32);
    tch::manual_seed(job.seed as i64);

    // Data.
    let data = match job.data.source.as_str() {
        "digits" => Dataset::digits(),
        _ => Dataset::load_csv(
            job.data.path.as_deref().expect("validated"),
            &job.data.label,
            job.data.classes,
        )?,
    };
    // Plugins.
    let scheduler = load_plugin(runtime, &job.scheduler, PluginKind::Scheduler)?;
    let aggregator = load_plugin(runtime, &job.aggregator, PluginKind::Aggregator)?;
    let cleaners = job
        .cleaners
        .iter()
        .map(|c| load_plugin(runtime, c, PluginKind::Cleaner))
        .collect::<Result<Vec<_>, _>>()?;
    let mut plugins = BTreeMap::new();
    plugins.insert(
        "scheduler".into(),
        (
            scheduler.meta().name.clone(),
            scheduler.meta().sha256.clone(),
        ),
    );
    plugins.insert(
        "aggregator".into(),
        (
            aggregator.meta().name.clone(),
            aggregator.meta().sha256.clone(),
        ),
    );
    for (i, c) in cleaners.iter().enumerate() {
        plugins.insert(
            format!("cleaner.{i}"),
            (c.meta().name.clone(), c.meta().sha256.clone()),
        );
    }

    // Cleaning: the whole data set passes through the chain before it is split and sharded,
    // so `dedup` and fitted statistics see every row and every shard is clean.
    let chain = CleaningChain::new(cleaners)?;
    let mut cleaning = Vec::new();
    let data = clean(&chain, &data, &mut cleaning)?;
    let (train, test) = data.split(job.data.test_fraction, job.seed);
    let n_shards = job.data.shards.unwrap_or(job.workers).max(1);
    let shards = train.shards(n_shards, job.data.skew, job.seed);
    if shards.iter().any(|s| s.rows() == 0) {
        return Err(TrainError::Data(format!(
            "{} rows after cleaning are too few for {n_shards} shards",
            train.rows()
        )));
    }
    let classes = data.classes;

    // Models.
    let mut global_model = Model::new(&job.model, data.width(), classes, device)?;
    let mut global = global_model.flat();
    let n_params = global.len();
    let mut agg = aggregator.instance();
    let mut sched = scheduler.instance();

    let nodes_template: Vec<Node> = (0..job.workers)
        .map(|w| {
            let cap = Resources {
                cpu_millis: MILLIS_PER_THREAD * job.threads as u32,
                memory_mib: 4096,
                gpus: matches!(device, tch::Device::Cuda(_)) as u32,
            };
            Node {
                id: format!("worker-{w}"),
                tier: Tier::Server,
                capacity: cap,
                free: cap,
                load: 0.0,
                labels: vec![("device".into(), format!("{device:?}"))],
                rtt_ms: 0.0,
                bandwidth_bytes_per_s: 0,
            }
        })
        .collect();
    let shard_bytes: Vec<u64> = shards
        .iter()
        .map(|s| (s.features.len() * 4 + s.labels.len() * 4) as u64)
        .collect();
    let mut holder: Vec<Option<usize>> = vec![None; shards.len()];
    let mut workers: Vec<WorkerReport> = nodes_template
        .iter()
        .map(|n| WorkerReport {
            id: n.id.clone(),
            tasks: 0,
            samples: 0,
            busy_seconds: 0.0,
            utilisation: 0.0,
        })
        .collect();
    let mut history = Vec::new();
    let mut training_wall = Duration::ZERO;
    let mut bytes_moved = 0u64;
    let mut checkpoint_path = None;
    let mut total_samples = 0u64;

    for round in 1..=job.rounds {
        let round_started = Instant::now();
        let mut pending: Vec<usize> = (0..shards.len()).collect();
        let mut outcomes: Vec<TaskOutcome> = Vec::new();
        let mut waves = 0;
        while !pending.is_empty() {
            waves += 1;
            let tasks: Vec<Task> = pending
                .iter()
                .map(|&s| Task {
                    id: task_id(round, s),
                    job: 0,
                    priority: 0,
                    demand: Resources {
                        cpu_millis: MILLIS_PER_THREAD * job.threads as u32,
                        memory_mib: 256,
                        gpus: 0,
                    },
                    est_duration_ms: 0,
                    input_bytes: shard_bytes[s] + 4 * n_params as u64,
                    attempts: 0,
                })
                .collect();
            // Node w is worker w (positions in `nodes`).
            let holdings: Vec<Holding> = pending
                .iter()
                .enumerate()
                .filter_map(|(t, &s)| {
                    holder[s].map(|w| Holding {
                        task: t as u32,
                        node: w as u32,
                    })
                })
                .collect();
            let mut nodes = nodes_template.clone();
            for (w, n) in nodes.iter_mut().enumerate() {
                n.load = if training_wall.is_zero() {
                    0.0
                } else {
                    (workers[w].busy_seconds / training_wall.as_secs_f64()) as f32
                };
            }
            let request = Pending {
                jobs: vec![job.name.clone()],
                tasks,
                nodes,
                holdings,
            };
            let placed = sched.schedule(&request).map_err(|e| TrainError::Round {
                round,
                cause: e.to_string(),
            })?;
            let (tasks, nodes) = (&request.tasks, &request.nodes);
            if placed.is_empty() {
                return Err(TrainError::Round {
                    round,
                    cause: format!(
                        "scheduler `{}` placed none of {} pending tasks on {} free workers",
                        scheduler.meta().name,
                        tasks.len(),
                        nodes.len()
                    ),
                });
            }
            // Positions checked by the runtime; node w is worker w.
            let assignments: Vec<(usize, usize)> = placed
                .iter()
                .map(|a| (pending[a.task as usize], a.node as usize))
                .collect();
            let wave_started = Instant::now();
            let global_ref = &global;
            let results: Vec<Result<TaskOutcome, TrainError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = assignments
                    .iter()
                    .map(|&(s, w)| {
                        let shard = &shards[s];
                        let seed = job.seed ^ task_id(round, s);
                        scope.spawn(move || -> Result<TaskOutcome, TrainError> {
                            let t = Instant::now();
                            let model = Model::loaded(
                                &job.model,
                                shard.width(),
                                classes,
                                device,
                                global_ref,
                            )?;
                            let (loss, samples) =
                                optim::train(&model, shard, &job.optimizer, &job.training, seed)?;
                            Ok(TaskOutcome {
                                shard: s,
                                worker: w,
                                params: model.flat(),
                                loss,
                                samples,
                                busy: t.elapsed(),
                            })
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(TrainError::Model("a worker thread panicked".into()))
                        })
                    })
                    .collect()
            });
            training_wall += wave_started.elapsed();
            for r in results {
                let o = r.map_err(|e| TrainError::Round {
                    round,
                    cause: e.to_string(),
                })?;
                pending.retain(|&s| s != o.shard);
                holder[o.shard] = Some(o.worker);
                let wr = &mut workers[o.worker];
                wr.tasks += 1;
                wr.samples += o.samples;
                wr.busy_seconds += o.busy.as_secs_f64();
                bytes_moved += 2 * 4 * n_params as u64;
                total_samples += o.samples;
                outcomes.push(o);
            }
        }
        outcomes.sort_by_key(|o| o.shard);
        let peers: Vec<String> = outcomes
            .iter()
            .map(|o| format!("worker-{}/shard-{}", o.worker, o.shard))
            .collect();
        let refs: Vec<UpdateRef> = outcomes
            .iter()
            .zip(&peers)
            .map(|(o, p)| UpdateRef {
                peer: p,
                samples: shards[o.shard].rows() as u64,
                loss: o.loss,
                params: &o.params,
            })
            .collect();
        let mut next = Vec::with_capacity(n_params);
        let summary = agg
            .aggregate_into(round, &global, &refs, DEFAULT_CHUNK, &mut next)
            .map_err(|e| TrainError::Round {
                round,
                cause: e.to_string(),
            })?;
        global = next;
        global_model.load_flat(&global)?;
        let (acc, test_loss) = optim::evaluate(&global_model, &test)?;
        let samples: u64 = refs.iter().map(|r| r.samples).sum();
        let train_loss =
            refs.iter().map(|r| r.loss * r.samples as f32).sum::<f32>() / samples.max(1) as f32;
        let report = RoundReport {
            round,
            train_loss,
            test_accuracy: acc,
            test_loss,
            seconds: round_started.elapsed().as_secs_f64(),
            waves,
            aggregator: summary,
        };
        if let Some(dir) = &opts.checkpoint_dir {
            let mut meta = checkpoint::Metadata::new();
            meta.insert("job".into(), job.name.clone());
            meta.insert("round".into(), round.to_string());
            meta.insert("test_accuracy".into(), format!("{acc:.6}"));
            for (k, (name, sha)) in &plugins {
                meta.insert(format!("plugin.{k}"), format!("{name} sha256:{sha}"));
            }
            let path = dir.join(format!("{}.safetensors", job.name));
            checkpoint::save(&global_model, &meta, &path)?;
            checkpoint_path = Some(path);
        }
        if let Some(f) = opts.on_round {
            f(&report, job);
        }
        tracing::info!(round, acc, loss = train_loss, "round done");
        history.push(report);
    }

    let wall = started.elapsed().as_secs_f64();
    let train_s = training_wall.as_secs_f64().max(1e-9);
    let busy: f64 = workers.iter().map(|w| w.busy_seconds).sum();
    for w in &mut workers {
        w.utilisation = w.busy_seconds / train_s;
    }
    Ok(JobReport {
        job: job.name.clone(),
        device: format!("{device:?}"),
        final_accuracy: history.last().map_or(0.0, |r| r.test_accuracy),
        rounds: history.len() as u32,
        wall_seconds: wall,
        samples_per_second: total_samples as f64 / wall,
        workers,
        parameter_bytes_moved: bytes_moved,
        parameters: n_params,
        speedup_vs_one_worker: busy / train_s,
        utilisation: busy / (train_s * job.workers as f64),
        cleaning,
        plugins,
        history,
        checkpoint: checkpoint_path,
    })
}
