//! A job's rounds, from its first (or the one after the last recorded, when resuming) to its
//! last. Each round: the weights put in the workers' form once, the tasks (`dispatch.rs`), the
//! quorum, the aggregation, and the round's evaluation and checkpoint handed to the
//! background (`finish.rs`), where they run beside the next round's tasks.

use crate::dispatch::{self, Returned};
use crate::events::{EventKind, JobEvent, Observer, RoundRecord, TaskWork};
use crate::finish::{finish_round, settle, Evaluation, Finishing};
use crate::swap::{Swappable, Swaps};
use crate::workers::Workers;
use crate::{demand, ident, prepare, EngineError, Job};
use infra_runtime::aggregator::{UpdateRef, DEFAULT_CHUNK};
use infra_runtime::PluginKind;
use infra_train::clean::StepSummary;
use infra_train::{checkpoint, Dataset};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// How to run a job's rounds.
#[derive(Default)]
pub struct Options {
    /// Where the global model is checkpointed after every round (none: not kept).
    pub checkpoint: Option<PathBuf>,
    /// Rounds already recorded (a resumed job goes on after them, from the checkpoint).
    pub rounds_done: u32,
    /// Cluster-wide swaps the job follows.
    pub swaps: Swaps,
    /// Who runs the job, for its `started` event (`coordinator <peer>`, `2 local workers`).
    pub runner: String,
}

/// How the rounds ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Stopped by a cancel.
    pub cancelled: bool,
    /// Rounds recorded.
    pub rounds_done: u32,
    /// Test accuracy of the last evaluated model.
    pub accuracy: f64,
    /// The coordinator's cleaning (test split, or the whole data set).
    pub cleaning: Vec<StepSummary>,
    /// Parameters of the model.
    pub parameters: usize,
}

/// Runs `job` on `data` (raw, as loaded) with `workers`, reporting to `obs`, until its last
/// round, a cancel or a failure. Every exit waits for the round being finished, so a failed
/// round leaves the last good checkpoint on disk.
pub async fn run<W: Workers, O: Observer>(
    job: &Job,
    data: Dataset,
    workers: &W,
    obs: &Arc<O>,
    opts: Options,
) -> Result<Outcome, EngineError> {
    let spec = job.spec.clone();
    for (kind, id) in job.plugins.idents() {
        obs.plugin(&kind, &id);
    }
    let prepared = prepare::data(job, data, workers).await?;
    let prepare::Start {
        mut global,
        done,
        accuracy,
    } = prepare::global(
        spec.clone(),
        prepared.width,
        prepared.classes,
        opts.checkpoint.clone(),
        opts.rounds_done,
    )
    .await?;
    if done > opts.rounds_done {
        // The checkpoint of the round after the last recorded one is on disk: the host
        // stopped between the two writes. The round counts (its model is the one resumed
        // from), recorded without the figures that were lost.
        obs.round(RoundRecord {
            round: done,
            loss: 0.0,
            evaluation: None,
            accuracy,
            seconds: 0.0,
            overhead: 0.0,
            waves: 0,
            tasks: (0, 0),
            bytes: 0,
            refetched: 0,
            aggregator: "recorded from its checkpoint after a restart".into(),
            work: Vec::new(),
            training_seconds: 0.0,
        })
        .map_err(|cause| EngineError::Round { round: done, cause })?;
    }
    obs.event(if done > 0 {
        JobEvent::note(
            EventKind::Resumed,
            done + 1,
            format!("resuming after round {done}"),
        )
    } else {
        JobEvent::note(EventKind::Started, 1, opts.runner.clone())
    });
    let mut state = Rounds {
        sched: Swappable::new(
            PluginKind::Scheduler,
            &job.plugins.scheduler,
            opts.swaps.scheduler,
        ),
        agg: Swappable::new(
            PluginKind::Aggregator,
            &job.plugins.aggregator,
            opts.swaps.aggregator,
        ),
        placement: dispatch::Placement::new(prepared.shards.len()),
        finishing: None,
        spare: None,
        accuracy,
        recorded: done,
    };
    let parameters = global.len();
    let mut round_started = Instant::now();
    let result: Result<bool, EngineError> = async {
        for round in done + 1..=spec.rounds {
            if obs.cancelled() {
                return Ok(true);
            }
            let (weights, wire_bytes) = workers.weights(round, &global).map_err(|e| match e {
                EngineError::Round { .. } => e,
                e => EngineError::Round {
                    round,
                    cause: e.to_string(),
                },
            })?;
            let r = dispatch::Round {
                spec: &spec,
                job: &job.id,
                number: round,
                demand: demand(&spec),
                shards: &prepared.shards,
                shard_bytes: &prepared.shard_bytes,
                wire_bytes,
                weights: &weights,
                global: &global,
            };
            let tasks =
                dispatch::run_tasks(&r, workers, &**obs, &mut state.sched, &mut state.placement)
                    .await;
            workers.end_round(weights);
            let Some(mut tasks) = tasks? else {
                return Ok(true);
            };
            let total = prepared.shards.len();
            let need = (spec.cluster.quorum * total as f64).ceil() as usize;
            if tasks.returned.len() < need {
                return Err(EngineError::Round {
                    round,
                    cause: format!(
                        "{} of {total} tasks returned; the quorum is {need}",
                        tasks.returned.len()
                    ),
                });
            }
            tasks.returned.sort_by_key(|r| r.shard);
            let tasks_done_at = round_started.elapsed();
            // The coordinator's own truth: an update weighs as many rows as its shard was
            // given, or fewer when the worker's cleaning dropped some; never what a worker
            // claims beyond that.
            for r in &mut tasks.returned {
                r.done.rows = r.done.rows.min(prepared.shard_rows[r.shard]);
            }
            let (next, summary) = state.aggregate(round, &global, &tasks.returned, &**obs)?;
            state.spare = Some(std::mem::replace(&mut global, Arc::new(next)));
            let seconds = round_started.elapsed().as_secs_f64();
            let record = record(round, seconds, total, &tasks, summary);
            tracing::info!(
                round,
                tasks_ms = tasks_done_at.as_secs_f64() * 1e3,
                aggregate_ms = (seconds - tasks_done_at.as_secs_f64()) * 1e3,
                "round timing"
            );
            let mut meta = checkpoint::Metadata::new();
            meta.insert("job".into(), job.id.clone());
            meta.insert("round".into(), round.to_string());
            meta.insert(
                "plugin.scheduler".into(),
                ident(state.sched.instance.plugin()),
            );
            meta.insert(
                "plugin.aggregator".into(),
                ident(state.agg.instance.plugin()),
            );
            for (i, c) in job.plugins.cleaners.iter().enumerate() {
                meta.insert(format!("plugin.cleaner.{i}"), ident(c));
            }
            let settling = Instant::now();
            // A round starts where the one before it ended, so a wait for the evaluation
            // before it counts in the round it delays.
            round_started = settling;
            state.settle().await?;
            let waited_ms = settling.elapsed().as_secs_f64() * 1e3;
            if waited_ms >= 1.0 {
                tracing::info!(round, waited_ms, "waited for the previous round's finish");
            }
            let evaluation = Evaluation {
                spec: spec.clone(),
                test: prepared.test.clone(),
                params: global.clone(),
                width: prepared.width,
                classes: prepared.classes,
                evaluate: round % spec.evaluate_every == 0 || round == spec.rounds,
                last_accuracy: state.accuracy,
                checkpoint: opts.checkpoint.clone(),
                meta,
            };
            state.finishing = Some(tokio::spawn(finish_round(obs.clone(), evaluation, record)));
        }
        Ok(false)
    }
    .await;
    let last = state.settle().await;
    let cancelled = result?;
    last?;
    Ok(Outcome {
        cancelled,
        rounds_done: state.recorded,
        accuracy: state.accuracy,
        cleaning: prepared.cleaning,
        parameters,
    })
}

/// What carries over from one round to the next.
struct Rounds {
    sched: Swappable,
    agg: Swappable,
    /// Where each shard went, and the nodes kept off it.
    placement: dispatch::Placement,
    /// The round being evaluated and checkpointed.
    finishing: Option<Finishing>,
    /// The global model of the round before last: once the round after it has settled
    /// nothing holds it, and the next aggregation writes into its memory instead of a fresh
    /// buffer (which the kernel would fault in and zero on the round's critical path).
    spare: Option<Arc<Vec<f32>>>,
    /// Accuracy of the last evaluated model.
    accuracy: f64,
    /// Rounds recorded.
    recorded: u32,
}

impl Rounds {
    /// Waits for the round being finished; it is then recorded.
    async fn settle(&mut self) -> Result<(), EngineError> {
        if let Some(acc) = settle(self.finishing.take()).await? {
            self.accuracy = acc;
            self.recorded += 1;
        }
        Ok(())
    }

    /// Merges the returned updates with the aggregator in use: the new global model and the
    /// aggregator's summary.
    fn aggregate<U: std::ops::Deref<Target = [f32]>>(
        &mut self,
        round: u32,
        global: &[f32],
        returned: &[Returned<U>],
        obs: &impl Observer,
    ) -> Result<(Vec<f32>, String), EngineError> {
        self.agg.refresh(round, obs);
        let names: Vec<String> = returned
            .iter()
            .map(|r| format!("{}/shard-{}", r.node, r.shard))
            .collect();
        let refs: Vec<UpdateRef> = returned
            .iter()
            .zip(&names)
            .map(|(r, name)| UpdateRef {
                peer: name,
                samples: r.done.rows,
                loss: r.done.loss,
                params: &r.done.update,
            })
            .collect();
        let mut next = self
            .spare
            .take()
            .and_then(|a| Arc::try_unwrap(a).ok())
            .unwrap_or_default();
        let instance = &mut self.agg.instance;
        // Synchronous and may block in WASI (see `dispatch.rs`).
        let summary = tokio::task::block_in_place(|| {
            instance.aggregate_into(round, global, &refs, DEFAULT_CHUNK, &mut next)
        })
        .map_err(|e| EngineError::Round {
            round,
            cause: e.to_string(),
        })?;
        Ok((next, summary))
    }
}

/// The round's record before its evaluation.
fn record<U>(
    round: u32,
    seconds: f64,
    total: usize,
    tasks: &dispatch::Tasks<U>,
    aggregator: String,
) -> RoundRecord {
    let returned = &tasks.returned;
    let rows: u64 = returned.iter().map(|r| r.done.rows).sum();
    let loss = returned
        .iter()
        .map(|r| r.done.loss as f64 * r.done.rows as f64)
        .sum::<f64>()
        / rows.max(1) as f64;
    let compute = returned
        .iter()
        .map(|r| r.done.compute_ms)
        .fold(0.0, f64::max)
        / 1e3;
    RoundRecord {
        round,
        loss,
        evaluation: None,
        accuracy: 0.0,
        seconds,
        overhead: (1.0 - compute / seconds).clamp(0.0, 1.0),
        waves: tasks.waves,
        tasks: (returned.len() as u32, total as u32),
        bytes: tasks.bytes,
        refetched: returned.iter().map(|r| r.done.refetched).sum(),
        aggregator,
        work: returned
            .iter()
            .map(|r| TaskWork {
                node: r.node.clone(),
                shard: r.shard,
                samples: r.done.samples,
                busy_seconds: r.done.busy_ms.max(0.0) / 1e3,
            })
            .collect(),
        training_seconds: tasks.training.as_secs_f64(),
    }
}
