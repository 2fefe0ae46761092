//! Native training for infra: libtorch through `tch`, on CUDA where there is a GPU and on CPU
//! elsewhere, with every policy (scheduling, cleaning, aggregation) a sandboxed plugin.
//!
//! Layout:
//! - [`data`]: the embedded UCI digits, CSV loading, seeded split, iid / non-iid sharding;
//! - [`job`]: the TOML job spec;
//! - [`model`]: `mlp` and `cnn`, parameters as one flat vector in canonical order;
//! - [`checkpoint`]: safetensors with metadata;
//! - [`device`]: `auto | cpu | cuda[:N]`;
//! - [`mod@run`]: `infra train`: K local workers in synchronous rounds, the scheduler placing the
//!   round's tasks, the cleaning chain on every shard, the aggregator merging updates;
//! - [`task`]: one training task as a cluster worker runs it, shard and weight wire forms;
//! - `optim.rs`: local training steps.

pub mod checkpoint;
pub mod data;
pub mod device;
pub mod job;
pub mod model;
mod optim;
pub mod run;
pub mod task;

pub use data::Dataset;
pub use job::JobSpec;
pub use model::Model;
pub use run::{run, JobReport, RunOptions};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The job spec is malformed.
    #[error("job: {0}")]
    Job(String),
    /// Data could not be read or is malformed.
    #[error("data: {0}")]
    Data(String),
    /// Model or checkpoint problem.
    #[error("model: {0}")]
    Model(String),
    /// A plugin failed to load or to run.
    #[error(transparent)]
    Plugin(#[from] infra_runtime::PluginError),
    /// A round failed; the last good checkpoint is kept.
    #[error("round {round} failed: {cause}")]
    Round {
        /// Round number.
        round: u32,
        /// Why.
        cause: String,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
