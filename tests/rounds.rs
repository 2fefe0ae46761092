//! The round engine as local jobs use it (issue 18): what they gained from the cluster's
//! failure handling (a failing task retried, a round counted at its quorum, an invalid update
//! dropped and recorded), both cleaning modes, and `evaluate-every`. Failures are injected at
//! the `Workers` boundary by a wrapper around the real local workers: the engine, the
//! plugins and the training are the real ones.

use infra_rounds::local::{resolve_plugins, train_with, LocalOptions, LocalWorkers};
use infra_rounds::{Done, EngineError, EventKind, Failure, Job, Order, Workers};
use infra_runtime::scheduler::{Node, Resources};
use infra_tests::runtime;
use infra_train::clean::StepSummary;
use infra_train::job::CleaningMode;
use infra_train::{Dataset, JobSpec};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

fn job(spec: JobSpec) -> Job {
    Job {
        id: spec.name.clone(),
        plugins: resolve_plugins(&runtime(), &spec).unwrap(),
        spec: Arc::new(spec),
    }
}

/// What the wrapper does to the tasks of one shard.
#[derive(Clone, Copy)]
enum Fault {
    /// Its first attempt of every round fails on the worker.
    FailFirst,
    /// Every attempt fails.
    FailAlways,
    /// Its first attempt of every round returns an update with a NaN in it.
    NanFirst,
    /// Every answer claims `u64::MAX` rows (to weigh the most in FedAvg).
    LieRows,
    /// Every task on node `worker-0` fails, whatever its shard.
    NodeFailsAll,
    /// No fault: the real workers as they are.
    None,
}

/// The real local workers, with `fault` applied to the tasks of `shard`.
struct Faulty {
    inner: LocalWorkers,
    shard: usize,
    fault: Fault,
}

impl Workers for Faulty {
    type Shard = <LocalWorkers as Workers>::Shard;
    type Weights = <LocalWorkers as Workers>::Weights;
    type Update = Vec<f32>;

    async fn shards(
        &self,
        shards: Vec<Dataset>,
        cleaned: bool,
    ) -> Result<Vec<Self::Shard>, EngineError> {
        self.inner.shards(shards, cleaned).await
    }
    fn weights(
        &self,
        round: u32,
        global: &Arc<Vec<f32>>,
    ) -> Result<(Self::Weights, u64), EngineError> {
        self.inner.weights(round, global)
    }
    async fn nodes(&self, demand: Resources) -> Result<Vec<Node>, EngineError> {
        self.inner.nodes(demand).await
    }
    fn cleaning(&self) -> Vec<StepSummary> {
        self.inner.cleaning()
    }
    async fn run<'a>(
        &'a self,
        node: &'a str,
        o: Order<'a, Self>,
    ) -> Result<Done<Vec<f32>>, Failure> {
        let (hit, first) = (o.shard == self.shard, o.attempt == 0);
        let order = Order {
            round: o.round,
            shard: o.shard,
            seed: o.seed,
            attempt: o.attempt,
            data: o.data,
            weights: o.weights,
        };
        match self.fault {
            Fault::FailFirst if hit && first => Err(Failure::Task("injected failure".into())),
            Fault::FailAlways if hit => Err(Failure::Task("injected failure".into())),
            Fault::NanFirst if hit && first => {
                let mut d = self.inner.run(node, order).await?;
                d.update[7] = f32::NAN;
                Ok(d)
            }
            Fault::NodeFailsAll if node == "worker-0" => {
                Err(Failure::Task("injected failure of worker-0".into()))
            }
            Fault::LieRows if hit => {
                let mut d = self.inner.run(node, order).await?;
                d.rows = u64::MAX;
                Ok(d)
            }
            _ => self.inner.run(node, order).await,
        }
    }
}

fn faulty(job: &Job, shard: usize, fault: Fault) -> Arc<Faulty> {
    Arc::new(Faulty {
        inner: LocalWorkers::new(job),
        shard,
        fault,
    })
}

fn events(report: &infra_rounds::local::JobReport, kind: EventKind) -> Vec<(u32, String)> {
    report
        .events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.round, e.message.clone()))
        .collect()
}

#[test]
fn a_failing_local_task_is_retried_and_the_job_goes_on() {
    let mut spec = JobSpec::default_digits();
    spec.rounds = 4;
    let job = job(spec);
    let report = train_with(
        &job,
        faulty(&job, 0, Fault::FailFirst),
        &LocalOptions::default(),
    )
    .unwrap();
    assert_eq!(report.rounds, 4);
    // Every round: shard 0 failed once, was retried, and both shards were merged.
    let retries = events(&report, EventKind::Retry);
    assert_eq!(retries.len(), 4, "{retries:?}");
    for (i, (round, msg)) in retries.iter().enumerate() {
        assert_eq!(*round, i as u32 + 1);
        assert!(
            msg.contains(&format!("task r{round}-shard0"))
                && msg.contains("injected failure")
                && msg.contains("2 attempts left"),
            "{msg}"
        );
    }
    assert!(report.history.iter().all(|r| r.tasks == (2, 2)));
    assert!(
        report.history.iter().all(|r| r.waves == 2),
        "the retry is a second wave"
    );
    assert!(report.final_accuracy >= 0.95, "{}", report.final_accuracy);
    // A task failure is not a node failure: no worker was marked down.
    assert!(events(&report, EventKind::PeerDown).is_empty());
}

#[test]
fn a_local_round_counts_once_its_quorum_is_in() {
    let mut spec = JobSpec::default_digits();
    spec.rounds = 3;
    spec.data.shards = Some(4);
    spec.cluster.quorum = 0.75;
    spec.cluster.max_attempts = 2;
    let j = job(spec.clone());
    let report = train_with(
        &j,
        faulty(&j, 3, Fault::FailAlways),
        &LocalOptions::default(),
    )
    .unwrap();
    assert_eq!(report.rounds, 3);
    assert!(
        report.history.iter().all(|r| r.tasks == (3, 4)),
        "{:?}",
        report.history
    );
    // Two attempts per round for the failing shard, then it is given up.
    let retries = events(&report, EventKind::Retry);
    assert_eq!(retries.len(), 6, "{retries:?}");
    assert!(retries.iter().any(|(_, m)| m.contains("0 attempts left")));
    // No worker trained shard 3: three tasks merged per round, 9 in all.
    let merged: u32 = report.workers.iter().map(|w| w.tasks).sum();
    assert_eq!(merged, 9);

    // With the default quorum (every task) the same failure stops the job at round 1.
    spec.cluster.quorum = 1.0;
    let j = job(spec);
    let Err(e) = train_with(
        &j,
        faulty(&j, 3, Fault::FailAlways),
        &LocalOptions::default(),
    ) else {
        panic!("a round under its quorum must fail the job");
    };
    match e {
        EngineError::Round { round, cause } => {
            assert_eq!(round, 1);
            assert_eq!(cause, "3 of 4 tasks returned; the quorum is 4");
        }
        other => panic!("expected a round failure, got {other}"),
    }
}

#[test]
fn a_non_finite_update_is_dropped_recorded_and_never_merged() {
    let mut spec = JobSpec::default_digits();
    spec.rounds = 3;
    let job = job(spec);
    let report = train_with(
        &job,
        faulty(&job, 1, Fault::NanFirst),
        &LocalOptions::default(),
    )
    .unwrap();
    let dropped = events(&report, EventKind::Dropped);
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    assert!(
        dropped
            .iter()
            .all(|(r, m)| m.contains(&format!("r{r}-shard1")) && m.contains("value 7 is NaN")),
        "{dropped:?}"
    );
    // Retried and merged clean: the model stays finite and learns.
    assert!(report.history.iter().all(|r| r.tasks == (2, 2)));
    assert!(report.final_accuracy >= 0.9, "{}", report.final_accuracy);
}

/// The digits as CSV with planted rows: 30 with an empty cell, 20 with a label out of range,
/// 25 exact duplicates of rows before them.
fn planted_job(dir: &std::path::Path, cleaning: &str) -> JobSpec {
    let digits = Dataset::digits();
    let mut csv = String::new();
    writeln!(csv, "{},digit", digits.columns.join(",")).unwrap();
    let row = |i: usize| {
        digits.features[i * 64..(i + 1) * 64]
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    };
    for i in 0..digits.rows() {
        writeln!(csv, "{},{}", row(i).join(","), digits.labels[i]).unwrap();
    }
    for i in 0..30 {
        let mut r = row(i);
        r[5] = String::new();
        writeln!(csv, "{},{}", r.join(","), digits.labels[i]).unwrap();
    }
    for i in 0..20 {
        let r: Vec<String> = row(100 + i).iter().map(|v| format!("{v}.5")).collect();
        writeln!(csv, "{},{}", r.join(","), 10 + i % 3).unwrap();
    }
    for i in 0..25 {
        writeln!(csv, "{},{}", row(200 + i).join(","), digits.labels[200 + i]).unwrap();
    }
    std::fs::write(dir.join("planted.csv"), csv).unwrap();
    let text = infra_train::job::DEFAULT_JOB
        .replace(
            "source = \"digits\"",
            &format!("source = \"csv\"\npath = \"planted.csv\"\nlabel = \"digit\"\nclasses = 10\ncleaning = \"{cleaning}\""),
        )
        .replace("rounds = 12", "rounds = 1");
    std::fs::write(dir.join("job.toml"), text).unwrap();
    JobSpec::load(&dir.join("job.toml")).unwrap()
}

#[test]
fn whole_cleaning_sees_every_row_before_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let spec = planted_job(dir.path(), "whole");
    assert_eq!(spec.data.cleaning, CleaningMode::Whole);
    let report = infra_rounds::local::train(&spec, &runtime(), &LocalOptions::default()).unwrap();
    let (drop, dedup) = (&report.cleaning[0], &report.cleaning[1]);
    assert_eq!(drop.step, "drop-invalid");
    assert_eq!(drop.rows_in, 1797 + 75);
    assert_eq!(drop.dropped.get("non-finite"), Some(&30));
    assert_eq!(drop.dropped.get("label-out-of-range"), Some(&20));
    assert_eq!(dedup.step, "dedup");
    assert_eq!(dedup.dropped.get("duplicate"), Some(&25));
    assert_eq!(dedup.rows_out, 1797, "exactly the original rows are left");
}

#[test]
fn federated_cleaning_cleans_each_shard_and_the_test_split_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let spec = planted_job(dir.path(), "federated");
    assert_eq!(
        JobSpec::default_digits().data.cleaning,
        CleaningMode::Federated,
        "federated is the default"
    );
    let report = infra_rounds::local::train(&spec, &runtime(), &LocalOptions::default()).unwrap();
    // Expected, computed here without the plugins: the raw data divided as every job divides
    // it; a part keeps its valid rows, less the repeats of a row earlier in the same part.
    let raw = infra_train::task::load_data(&spec, None).unwrap();
    let (shards, test) = infra_train::task::divide(&spec, &raw);
    let (mut invalid, mut repeats) = (0u64, 0u64);
    for part in shards.iter().chain([&test]) {
        let mut seen = HashSet::new();
        for i in 0..part.rows() {
            let row = &part.features[i * 64..(i + 1) * 64];
            let label = part.labels[i];
            if row.iter().any(|v| !v.is_finite()) || !(0..10).contains(&label) {
                invalid += 1;
                continue;
            }
            let key: Vec<u32> = row.iter().map(|v| v.to_bits()).collect();
            if !seen.insert((key, label)) {
                repeats += 1;
            }
        }
    }
    let (drop, dedup) = (&report.cleaning[0], &report.cleaning[1]);
    assert_eq!(
        drop.rows_in,
        1797 + 75,
        "every row is cleaned once, in its part"
    );
    assert_eq!(drop.rows_in - drop.rows_out, invalid);
    assert_eq!(
        invalid, 50,
        "row-local checks find the same rows in either mode"
    );
    assert_eq!(
        dedup.dropped.get("duplicate").copied().unwrap_or(0),
        repeats
    );
    assert!(
        repeats < 25,
        "a repeat whose original fell in another part is kept: {repeats}"
    );
    assert_eq!(dedup.rows_out, 1797 + 25 - repeats);
}

#[test]
fn evaluate_every_k_evaluates_every_kth_and_the_last_round() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = JobSpec::default_digits();
    spec.rounds = 5;
    spec.evaluate_every = 2;
    let opts = LocalOptions {
        checkpoint_dir: Some(dir.path().into()),
        on_round: None,
    };
    let report = infra_rounds::local::train(&spec, &runtime(), &opts).unwrap();
    let evaluated: Vec<bool> = report.history.iter().map(|r| r.evaluated).collect();
    assert_eq!(evaluated, [false, true, false, true, true]);
    // A round between carries the last evaluated accuracy (none yet before round 2).
    assert_eq!(report.history[0].test_accuracy, 0.0);
    assert_eq!(
        report.history[2].test_accuracy,
        report.history[1].test_accuracy
    );
    assert!(report.final_accuracy >= 0.9);
    // Every round is checkpointed; the last holds its accuracy.
    let mut model = infra_train::Model::new(&spec.model, 64, 10, tch::Device::Cpu).unwrap();
    let meta: BTreeMap<String, String> =
        infra_train::checkpoint::load(&mut model, &dir.path().join("digits.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(meta["round"], "5");
    assert_eq!(
        meta["test_accuracy"],
        format!("{:.6}", report.final_accuracy)
    );
}

#[test]
fn an_update_weighs_the_rows_its_shard_was_given_not_what_the_worker_claims() {
    let mut spec = JobSpec::default_digits();
    spec.rounds = 3;
    let job = job(spec);
    let honest = train_with(&job, faulty(&job, 0, Fault::None), &LocalOptions::default()).unwrap();
    let lying = train_with(
        &job,
        faulty(&job, 0, Fault::LieRows),
        &LocalOptions::default(),
    )
    .unwrap();
    // Same seeds, same shards, same weights: the claim changed nothing, to the last bit.
    let acc = |r: &infra_rounds::local::JobReport| -> Vec<u64> {
        r.history
            .iter()
            .map(|h| h.test_accuracy.to_bits())
            .collect()
    };
    let loss = |r: &infra_rounds::local::JobReport| -> Vec<u32> {
        r.history.iter().map(|h| h.train_loss.to_bits()).collect()
    };
    assert_eq!(acc(&honest), acc(&lying));
    assert_eq!(loss(&honest), loss(&lying));
    assert!(honest.final_accuracy >= 0.9, "{}", honest.final_accuracy);
}

#[test]
fn an_update_beyond_the_norm_bound_is_dropped() {
    // A bound no trained update meets: every update is dropped, each attempt retried, and the
    // round misses its quorum.
    let mut spec = JobSpec::default_digits();
    spec.rounds = 2;
    spec.cluster.max_update_norm = Some(1e-6);
    let j = job(spec.clone());
    let Err(e) = train_with(
        &j,
        Arc::new(LocalWorkers::new(&j)),
        &LocalOptions::default(),
    ) else {
        panic!("no update can pass a bound of 1e-6");
    };
    match e {
        EngineError::Round { round, cause } => {
            assert_eq!(round, 1);
            assert_eq!(cause, "0 of 2 tasks returned; the quorum is 2");
        }
        other => panic!("expected a round failure, got {other}"),
    }
    // A bound every honest update meets changes nothing.
    spec.cluster.max_update_norm = Some(1e6);
    let j = job(spec);
    let report = train_with(
        &j,
        Arc::new(LocalWorkers::new(&j)),
        &LocalOptions::default(),
    )
    .unwrap();
    assert!(events(&report, EventKind::Dropped).is_empty());
    assert_eq!(report.rounds, 2);
}

/// A node that fails every task it gets is kept off each shard it failed, for the rest of the
/// job: each shard fails on it at most once, and the job goes on on the other node (without
/// this, a deterministic scheduler picks the same node until the attempts are used up).
#[test]
fn a_node_that_fails_a_shard_is_kept_off_it_for_the_job() {
    let mut spec = JobSpec::default_digits();
    spec.rounds = 4;
    spec.data.shards = Some(4);
    spec.cluster.max_attempts = 2;
    let job = job(spec);
    let report = train_with(
        &job,
        faulty(&job, usize::MAX, Fault::NodeFailsAll),
        &LocalOptions::default(),
    )
    .unwrap();
    assert_eq!(report.rounds, 4);
    let retries = events(&report, EventKind::Retry);
    let mut failed_shards = HashSet::new();
    for (_, msg) in &retries {
        assert!(msg.contains("on worker-0"), "{msg}");
        let shard = msg
            .split("-shard")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        assert!(
            failed_shards.insert(shard.clone()),
            "shard {shard} failed on worker-0 twice: {retries:?}"
        );
    }
    assert!(
        !retries.is_empty() && failed_shards.len() <= 4,
        "{retries:?}"
    );
}
