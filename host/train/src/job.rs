//! The job spec: a TOML file (unknown fields refused, errors with their place), or the
//! embedded digits default.

use crate::TrainError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default job: UCI digits, 2 workers, MLP, FedAvg (see `examples/digits.toml`).
pub const DEFAULT_JOB: &str = include_str!("../../../examples/digits.toml");

/// Most local workers a job may ask for: each is a thread with its own model.
pub const MAX_WORKERS: usize = 256;

/// Upper bounds on what a job may ask of the hosts that run it (a job spec is untrusted
/// input: a submitter's, and a coordinator's to its peers): `(key, most)`.
pub const LIMITS: [(&str, usize); 6] = [
    ("rounds", 100_000),
    ("threads", 256),
    ("training.batch-size", 65_536),
    ("training.local-epochs", 10_000),
    ("data.shards", 65_536),
    ("evaluate-every", 100_000),
];
/// Widest layer (an MLP's hidden width, a CNN's channels) a job may ask for.
pub const MAX_LAYER_WIDTH: usize = 16_384;
/// Most hidden layers of an MLP.
pub const MAX_HIDDEN_LAYERS: usize = 16;
/// Longest job name; names are made of `[A-Za-z0-9._-]` (they name files and folders).
pub const MAX_NAME_LEN: usize = 64;

/// A training job.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobSpec {
    /// Job name (checkpoints and reports carry it).
    pub name: String,
    /// Seed of the split, the shards, the weight init and the batch order.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Synchronous rounds.
    pub rounds: u32,
    /// Local workers (threads, each with its own model).
    pub workers: usize,
    /// Intra-op threads of each worker (libtorch).
    #[serde(default = "one")]
    pub threads: usize,
    /// Device: `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "auto")]
    pub device: String,
    /// Data set, split and shards.
    pub data: DataSpec,
    /// Model architecture.
    pub model: ModelSpec,
    /// Optimizer.
    pub optimizer: OptimizerSpec,
    /// Local training per round.
    pub training: TrainingSpec,
    /// Evaluate the global model on the test split every this many rounds (and after the
    /// last); the rounds between only checkpoint. For jobs where evaluation dominates a round.
    #[serde(default = "one_round")]
    pub evaluate_every: u32,
    /// Scheduler plugin.
    pub scheduler: PluginRef,
    /// Cleaning chain, in order.
    #[serde(default)]
    pub cleaners: Vec<PluginRef>,
    /// Aggregator plugin.
    pub aggregator: PluginRef,
    /// How the rounds handle failures and bad updates (local and cluster jobs alike), and how
    /// weights travel between peers.
    #[serde(default)]
    pub cluster: ClusterSpec,
}

/// Failure handling of a job run across peers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterSpec {
    /// Share of a round's tasks that must return for the round to count (0 < quorum <= 1).
    #[serde(default = "quorum")]
    pub quorum: f64,
    /// A task not answered within this many seconds is given to another peer.
    #[serde(default = "task_deadline")]
    pub task_deadline_secs: u64,
    /// Tries per task and round before it is given up (the round may still reach quorum).
    #[serde(default = "max_attempts")]
    pub max_attempts: u32,
    /// How weights and updates travel between peers.
    #[serde(default)]
    pub compression: Compression,
    /// Largest L2 distance an update may move the model from the round's global weights;
    /// a farther one is dropped like a non-finite one (none: no bound).
    #[serde(default)]
    pub max_update_norm: Option<f64>,
}

/// How weights and updates travel between peers (`cluster.compression`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// f32 parameters both ways (exact).
    #[default]
    None,
    /// Half the bytes: the weights as f16, and each update as the f16 difference from the
    /// weights the worker received, which the coordinator adds to its own f32 copy (so the
    /// global model keeps full precision). Values outside f16's range (±65504) fail the
    /// round with a message naming the parameter.
    F16,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            quorum: quorum(),
            task_deadline_secs: task_deadline(),
            max_attempts: max_attempts(),
            compression: Compression::None,
            max_update_norm: None,
        }
    }
}

fn quorum() -> f64 {
    1.0
}
fn task_deadline() -> u64 {
    300
}
fn max_attempts() -> u32 {
    3
}

fn one_round() -> u32 {
    1
}
fn default_seed() -> u64 {
    7
}
fn one() -> usize {
    1
}
fn auto() -> String {
    "auto".into()
}

/// Where the rows come from and how they are divided.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DataSpec {
    /// `digits` (embedded) or `csv`.
    pub source: String,
    /// CSV file (relative to the job file), for `source = "csv"`.
    pub path: Option<PathBuf>,
    /// Label column of the CSV.
    #[serde(default = "label")]
    pub label: String,
    /// Number of classes (default: largest label + 1).
    pub classes: Option<usize>,
    /// Share of rows held out for testing.
    #[serde(default = "test_fraction")]
    pub test_fraction: f64,
    /// Shards of the training rows (one training task per shard per round; default: one per
    /// worker).
    pub shards: Option<usize>,
    /// 0.0 = iid shards, 1.0 = shards sorted by label (non-iid).
    #[serde(default)]
    pub skew: f64,
    /// Where the cleaning chain fits its statistics.
    #[serde(default)]
    pub cleaning: CleaningMode,
}

/// Where the cleaning chain runs (`data.cleaning`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CleaningMode {
    /// Each shard is cleaned where it is trained, with statistics of its own rows (as on a
    /// federated client, whose rows never leave it); the test split is cleaned by the
    /// coordinator. The same in local and cluster jobs.
    #[default]
    Federated,
    /// The whole data set passes through the chain once, before the split and the sharding,
    /// so `dedup` and fitted statistics see every row. Local jobs only: no peer has every row.
    Whole,
}

fn label() -> String {
    "label".into()
}
fn test_fraction() -> f64 {
    0.2
}

/// Model architecture.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Fully connected, ReLU between layers.
    Mlp {
        /// Hidden layer widths.
        hidden: Vec<usize>,
    },
    /// LeNet-style: two 3x3 conv + max-pool blocks, then two linear layers.
    Cnn {
        /// Channels of the two conv layers.
        #[serde(default = "cnn_channels")]
        channels: [usize; 2],
    },
}

fn cnn_channels() -> [usize; 2] {
    [8, 16]
}

/// Optimizer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OptimizerSpec {
    /// `sgd` or `adam`.
    pub kind: String,
    /// Learning rate.
    pub lr: f64,
    /// SGD momentum.
    #[serde(default)]
    pub momentum: f64,
}

/// Local training of one task.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainingSpec {
    /// Rows per step.
    pub batch_size: usize,
    /// Passes over the shard per round.
    pub local_epochs: usize,
}

/// A plugin: a built-in name or the path of a `.wasm` file, plus its configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// Built-in name, or a path ending in `.wasm` (relative to the job file).
    pub plugin: String,
    /// Configuration passed to `configure` (values are turned into strings).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

impl PluginRef {
    /// The configuration as the plugin receives it.
    pub fn config_pairs(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

impl JobSpec {
    /// Parses a job; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TrainError> {
        let job: JobSpec =
            toml::from_str(text).map_err(|e| TrainError::Job(format!("{origin}: {e}")))?;
        job.validate()
            .map_err(|e| TrainError::Job(format!("{origin}: {e}")))?;
        Ok(job)
    }

    /// Reads and parses a job file; relative paths in it are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Job(format!("{}: {e}", path.display())))?;
        let mut job = Self::parse(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(p) = &job.data.path {
            job.data.path = Some(base.join(p));
        }
        for r in job
            .cleaners
            .iter_mut()
            .chain([&mut job.scheduler, &mut job.aggregator])
        {
            if r.plugin.ends_with(".wasm") {
                r.plugin = base.join(&r.plugin).display().to_string();
            }
        }
        Ok(job)
    }

    /// The embedded default (digits).
    pub fn default_digits() -> Self {
        Self::parse(DEFAULT_JOB, "<embedded examples/digits.toml>")
            .expect("the embedded job is valid")
    }

    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("rounds", self.rounds as usize),
            ("workers", self.workers),
            ("threads", self.threads),
            ("training.batch-size", self.training.batch_size),
            ("training.local-epochs", self.training.local_epochs),
            ("evaluate-every", self.evaluate_every as usize),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{k}` must be at least 1"));
        }
        let values = [
            self.rounds as usize,
            self.threads,
            self.training.batch_size,
            self.training.local_epochs,
            self.data.shards.unwrap_or(0),
            self.evaluate_every as usize,
        ];
        for ((key, most), v) in LIMITS.iter().zip(values) {
            if v > *most {
                return Err(format!(
                    "`{key}` = {v} is more than the most a job may ask, {most}"
                ));
            }
        }
        let widths: Vec<usize> = match &self.model {
            ModelSpec::Mlp { hidden } => {
                if hidden.len() > MAX_HIDDEN_LAYERS {
                    return Err(format!(
                        "`model.hidden` has {} layers, more than {MAX_HIDDEN_LAYERS}",
                        hidden.len()
                    ));
                }
                hidden.clone()
            }
            ModelSpec::Cnn { channels } => channels.to_vec(),
        };
        if let Some(w) = widths.iter().find(|w| **w == 0 || **w > MAX_LAYER_WIDTH) {
            return Err(format!(
                "a layer of width {w}: widths are 1 to {MAX_LAYER_WIDTH}"
            ));
        }
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && !self.name.starts_with('.')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(format!(
                "`name` = {:?}: a job name has 1 to {MAX_NAME_LEN} of `A-Z a-z 0-9 . _ -` and does not start with `.` (it names files)",
                self.name
            ));
        }
        if self.workers > MAX_WORKERS {
            return Err(format!(
                "`workers` = {} is more than {MAX_WORKERS} local workers",
                self.workers
            ));
        }
        if !(self.cluster.quorum > 0.0 && self.cluster.quorum <= 1.0) {
            return Err(format!(
                "`cluster.quorum` = {} must be in (0, 1]",
                self.cluster.quorum
            ));
        }
        if self.cluster.task_deadline_secs == 0 || self.cluster.max_attempts == 0 {
            return Err(
                "`cluster.task-deadline-secs` and `cluster.max-attempts` must be at least 1".into(),
            );
        }
        if let Some(n) = self.cluster.max_update_norm {
            // Written this way so that NaN is refused too.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(n > 0.0) || n.is_infinite() {
                return Err(format!(
                    "`cluster.max-update-norm` = {n} must be a positive, finite distance"
                ));
            }
        }
        if !(0.0..1.0).contains(&self.data.test_fraction) || self.data.test_fraction == 0.0 {
            return Err(format!(
                "`data.test-fraction` = {} must be in (0, 1)",
                self.data.test_fraction
            ));
        }
        if !(0.0..=1.0).contains(&self.data.skew) {
            return Err(format!(
                "`data.skew` = {} must be in [0, 1]",
                self.data.skew
            ));
        }
        match self.data.source.as_str() {
            "digits" => {}
            "csv" if self.data.path.is_some() => {}
            "csv" => return Err("`data.source = \"csv\"` needs `data.path`".into()),
            other => {
                return Err(format!(
                    "`data.source` = `{other}`: expected `digits` or `csv`"
                ))
            }
        }
        if !matches!(self.optimizer.kind.as_str(), "sgd" | "adam") {
            return Err(format!(
                "`optimizer.kind` = `{}`: expected `sgd` or `adam`",
                self.optimizer.kind
            ));
        }
        // Written this way so that NaN is refused too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(self.optimizer.lr > 0.0) {
            return Err("`optimizer.lr` must be > 0".into());
        }
        crate::device::parse(&self.device).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a submitter sends as a job, parsing it is a job or an error naming what is
        /// wrong, never a panic.
        #[test]
        fn any_text_is_a_job_or_an_error(text in ".{0,2000}") {
            let _ = JobSpec::parse(&text, "job");
        }

        /// The default job with any one number replaced by any other.
        #[test]
        fn any_number_in_a_job_is_taken_or_refused(pick in 0usize..64, n in any::<i64>(), f in any::<f64>()) {
            let numbers: Vec<(usize, usize)> = DEFAULT_JOB
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| (i, i + 1))
                .collect();
            let (at, end) = numbers[pick % numbers.len()];
            for v in [n.to_string(), format!("{f:?}"), "1e400".to_string(), "-0".to_string()] {
                let text = format!("{}{v}{}", &DEFAULT_JOB[..at], &DEFAULT_JOB[end..]);
                let _ = JobSpec::parse(&text, "job");
            }
        }
    }
}
