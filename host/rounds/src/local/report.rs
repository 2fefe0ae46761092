//! `infra train`'s report: each round, each worker, the cleaning, and the seed article's
//! figures (speedup against one worker, utilisation = allocated / total), collected from the
//! engine's events.

use crate::events::{JobEvent, Observer, RoundRecord};
use crate::Outcome;
use infra_train::clean::{merge, StepSummary};
use infra_train::JobSpec;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// Round number, from 1.
    pub round: u32,
    /// Mean training loss over the round's tasks (weighted by rows).
    pub train_loss: f32,
    /// Test accuracy of the last evaluated global model (this round's when `evaluated`).
    pub test_accuracy: f64,
    /// Test loss of this round's model (0 when not evaluated).
    pub test_loss: f64,
    /// Whether this round's model was evaluated (`evaluate-every`).
    pub evaluated: bool,
    /// Wall time of the round.
    pub seconds: f64,
    /// Scheduling waves the round needed.
    pub waves: u32,
    /// Tasks merged / tasks of the round (fewer when the quorum allows it).
    pub tasks: (u32, u32),
    /// The aggregator's summary.
    pub aggregator: String,
}

/// One worker over the job.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// Worker (node) id.
    pub id: String,
    /// Tasks it ran that were merged.
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
    /// Cleaning chain, per step, over every part it cleaned (shards and test split).
    pub cleaning: Vec<StepSummary>,
    /// Plugins used: kind -> (name, sha256).
    pub plugins: BTreeMap<String, (String, String)>,
    /// Every round.
    pub history: Vec<RoundReport>,
    /// Events other than rounds (retries, dropped updates), in order.
    pub events: Vec<JobEvent>,
    /// Last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// Collects a local job's events into its report.
pub(crate) struct Collector {
    spec: Arc<JobSpec>,
    on_round: Option<fn(&RoundReport, &JobSpec)>,
    state: Mutex<Collected>,
}

#[derive(Default)]
struct Collected {
    history: Vec<RoundReport>,
    events: Vec<JobEvent>,
    plugins: BTreeMap<String, (String, String)>,
    workers: BTreeMap<String, WorkerReport>,
    training_seconds: f64,
    bytes: u64,
    samples: u64,
}

impl Collector {
    pub fn new(spec: Arc<JobSpec>, on_round: Option<fn(&RoundReport, &JobSpec)>) -> Self {
        Self {
            spec,
            on_round,
            state: Mutex::new(Collected::default()),
        }
    }

    /// The report, once the engine is done.
    pub fn report(
        &self,
        outcome: Outcome,
        worker_cleaning: Vec<StepSummary>,
        checkpoint: Option<PathBuf>,
        device: &tch::Device,
        started: Instant,
    ) -> JobReport {
        let c = std::mem::take(&mut *self.state.lock().expect("report lock"));
        let wall = started.elapsed().as_secs_f64();
        let train_s = c.training_seconds.max(1e-9);
        let mut workers: Vec<WorkerReport> = (0..self.spec.workers)
            .map(|w| {
                let id = format!("worker-{w}");
                c.workers.get(&id).cloned().unwrap_or(WorkerReport {
                    id,
                    tasks: 0,
                    samples: 0,
                    busy_seconds: 0.0,
                    utilisation: 0.0,
                })
            })
            .collect();
        let busy: f64 = workers.iter().map(|w| w.busy_seconds).sum();
        for w in &mut workers {
            w.utilisation = w.busy_seconds / train_s;
        }
        let mut cleaning = worker_cleaning;
        merge(&mut cleaning, &outcome.cleaning);
        JobReport {
            job: self.spec.name.clone(),
            device: format!("{device:?}"),
            final_accuracy: outcome.accuracy,
            rounds: outcome.rounds_done,
            wall_seconds: wall,
            samples_per_second: c.samples as f64 / wall,
            workers,
            parameter_bytes_moved: c.bytes,
            parameters: outcome.parameters,
            speedup_vs_one_worker: busy / train_s,
            utilisation: busy / (train_s * self.spec.workers.max(1) as f64),
            cleaning,
            plugins: c.plugins,
            history: c.history,
            events: c.events,
            checkpoint: checkpoint.filter(|_| outcome.rounds_done > 0),
        }
    }
}

impl Observer for Collector {
    fn event(&self, ev: JobEvent) {
        tracing::info!(kind = %ev.kind, round = ev.round, "{}", ev.message);
        self.state.lock().expect("report lock").events.push(ev);
    }

    fn round(&self, r: RoundRecord) -> Result<(), String> {
        let report = RoundReport {
            round: r.round,
            train_loss: r.loss as f32,
            test_accuracy: r.accuracy,
            test_loss: r.evaluation.map_or(0.0, |(_, l)| l),
            evaluated: r.evaluation.is_some(),
            seconds: r.seconds,
            waves: r.waves,
            tasks: r.tasks,
            aggregator: r.aggregator.clone(),
        };
        tracing::info!(
            round = r.round,
            acc = r.accuracy,
            loss = r.loss,
            "round done"
        );
        {
            let mut c = self.state.lock().expect("report lock");
            c.training_seconds += r.training_seconds;
            c.bytes += r.bytes;
            for t in &r.work {
                let w = c.workers.entry(t.node.clone()).or_insert(WorkerReport {
                    id: t.node.clone(),
                    tasks: 0,
                    samples: 0,
                    busy_seconds: 0.0,
                    utilisation: 0.0,
                });
                w.tasks += 1;
                w.samples += t.samples;
                w.busy_seconds += t.busy_seconds;
                c.samples += t.samples;
            }
            c.history.push(report.clone());
        }
        if let Some(f) = self.on_round {
            f(&report, &self.spec);
        }
        Ok(())
    }

    fn plugin(&self, kind: &str, ident: &str) {
        let (name, sha) = ident
            .split_once(" sha256:")
            .map_or((ident, ""), |(n, s)| (n, s));
        self.state
            .lock()
            .expect("report lock")
            .plugins
            .insert(kind.to_string(), (name.to_string(), sha.to_string()));
    }

    fn cancelled(&self) -> bool {
        false
    }
}
