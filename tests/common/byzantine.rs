//! A Byzantine harness (test and benchmark code, not a production flag): `k` of the `n`
//! clients of a local digits job attack, and everything else is real (the round engine, the
//! built-in aggregators as Wasm components, libtorch training). A client is a shard; the
//! clients below `k` are the malicious ones, and attack on every attempt of every round.
//!
//! The attacks, on the update `t` a client trained from the round's global weights `g`:
//! - sign flip: `g - (t - g)`, the step reversed;
//! - x100: `g + 100 (t - g)`, the step boosted to replace the model;
//! - noise: `g + N(0, 1)` per parameter, no training at all;
//! - NaN: every value NaN;
//! - lying count: the true update, claiming `u64::MAX` rows and samples (FedAvg's weight);
//! - label flip: trained on its shard with every label `y` replaced by `classes - 1 - y`;
//! - free rider: `g` itself, the weights it received.

use infra_rounds::local::{resolve_plugins, train_with, LocalOptions, LocalWorkers};
use infra_rounds::{Done, EngineError, EventKind, Failure, Job, Order, Workers};
use infra_runtime::scheduler::{Node, Resources};
use infra_train::clean::StepSummary;
use infra_train::job::PluginRef;
use infra_train::{Dataset, JobSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a malicious client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    SignFlip,
    Scale100,
    Noise,
    NotANumber,
    LyingCount,
    LabelFlip,
    FreeRider,
}

impl Attack {
    /// Every attack, in the order the tables list them.
    pub const ALL: [Attack; 7] = [
        Attack::SignFlip,
        Attack::Scale100,
        Attack::Noise,
        Attack::NotANumber,
        Attack::LyingCount,
        Attack::LabelFlip,
        Attack::FreeRider,
    ];

    /// The name the tables use.
    pub fn name(self) -> &'static str {
        match self {
            Attack::SignFlip => "sign flip",
            Attack::Scale100 => "x100",
            Attack::Noise => "noise",
            Attack::NotANumber => "NaN",
            Attack::LyingCount => "lying count",
            Attack::LabelFlip => "label flip",
            Attack::FreeRider => "free rider",
        }
    }
}

/// The real local workers; the clients below `malicious` apply `attack`.
pub struct Byzantine {
    inner: LocalWorkers,
    malicious: usize,
    attack: Option<Attack>,
}

/// A deterministic N(0, 1) stream (xorshift64* and Box-Muller), seeded per task.
struct Gauss(u64);

impl Gauss {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

impl Workers for Byzantine {
    type Shard = <LocalWorkers as Workers>::Shard;
    type Weights = <LocalWorkers as Workers>::Weights;
    type Update = Vec<f32>;

    async fn shards(
        &self,
        mut shards: Vec<Dataset>,
        cleaned: bool,
    ) -> Result<Vec<Self::Shard>, EngineError> {
        if self.attack == Some(Attack::LabelFlip) {
            for s in shards.iter_mut().take(self.malicious) {
                let top = s.classes as i32 - 1;
                for y in &mut s.labels {
                    *y = top - *y;
                }
            }
        }
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
        let global: &Arc<Vec<f32>> = o.weights;
        let (round, shard) = (o.round, o.shard);
        let order = Order {
            round: o.round,
            shard: o.shard,
            seed: o.seed,
            attempt: o.attempt,
            data: o.data,
            weights: o.weights,
        };
        let mut d = self.inner.run(node, order).await?;
        let Some(attack) = self.attack.filter(|_| shard < self.malicious) else {
            return Ok(d);
        };
        let g = global.as_slice();
        let t = &mut d.update;
        match attack {
            Attack::SignFlip => t.iter_mut().zip(g).for_each(|(t, g)| *t = 2.0 * g - *t),
            Attack::Scale100 => t
                .iter_mut()
                .zip(g)
                .for_each(|(t, g)| *t = g + 100.0 * (*t - g)),
            Attack::Noise => {
                let mut rng = Gauss(0x9E37_79B9_7F4A_7C15 ^ ((round as u64) << 20) ^ shard as u64);
                t.iter_mut().zip(g).for_each(|(t, g)| *t = g + rng.next());
            }
            Attack::NotANumber => t.iter_mut().for_each(|t| *t = f32::NAN),
            Attack::LyingCount => {
                d.rows = u64::MAX;
                d.samples = u64::MAX;
            }
            Attack::LabelFlip => {}
            Attack::FreeRider => t.copy_from_slice(g),
        }
        Ok(d)
    }
}

/// The digits job the harness runs: `n` clients (shards and local workers), `rounds`
/// rounds, aggregated by the built-in `aggregator` with `config`. A round counts once all
/// but the malicious clients are back (updates dropped as invalid are retried, then given
/// up on).
pub fn spec(aggregator: &str, config: &[(&str, &str)], n: usize, k: usize, rounds: u32) -> JobSpec {
    let mut s = JobSpec::default_digits();
    s.name = format!("byzantine-{aggregator}");
    s.device = "cpu".into();
    s.rounds = rounds;
    s.workers = n;
    s.data.shards = Some(n);
    s.aggregator = PluginRef {
        plugin: aggregator.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), toml::Value::String(v.to_string())))
            .collect::<BTreeMap<_, _>>(),
    };
    s.cluster.quorum = (n - k) as f64 / n as f64;
    s
}

/// What one run came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Test accuracy of the final model.
    pub accuracy: f64,
    /// Updates the engine dropped as invalid.
    pub dropped: usize,
}

/// Runs `spec` with its first `k` clients attacking with `attack` (none: a clean run).
pub fn run(
    runtime: &infra_runtime::Runtime,
    spec: JobSpec,
    k: usize,
    attack: Option<Attack>,
) -> Result<Outcome, EngineError> {
    let job = Job {
        id: spec.name.clone(),
        plugins: resolve_plugins(runtime, &spec)?,
        spec: Arc::new(spec),
    };
    let workers = Arc::new(Byzantine {
        inner: LocalWorkers::new(&job),
        malicious: k,
        attack,
    });
    let report = train_with(&job, workers, &LocalOptions::default())?;
    Ok(Outcome {
        accuracy: report.final_accuracy,
        dropped: report
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Dropped)
            .count(),
    })
}
