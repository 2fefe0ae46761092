//! Native training for infra: libtorch through `tch`, on CUDA where there is a GPU and on CPU
//! elsewhere. The federated rounds that use it are `infra-rounds`.
//!
//! Layout:
//! - [`data`]: the embedded UCI digits, CSV loading, seeded split, iid / non-iid sharding;
//! - [`job`]: the TOML job spec;
//! - [`model`]: `mlp` and `cnn`, parameters as one flat vector in canonical order;
//! - [`checkpoint`]: safetensors with metadata;
//! - [`device`]: `auto | cpu | cuda[:N]`;
//! - [`clean`]: the cleaning chain over a data set, and its per-step report;
//! - [`task`]: one training task (a shard trained from the global weights), evaluation, the
//!   job's data divided into shards and a test split, and a shard's wire form;
//! - `optim.rs`: local training steps.

pub mod checkpoint;
pub mod clean;
pub mod data;
pub mod device;
pub mod durable;
pub mod job;
pub mod model;
mod optim;
pub mod task;

pub use data::Dataset;
pub use job::JobSpec;
pub use model::Model;

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
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
