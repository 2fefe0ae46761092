//! The federated round engine: the one implementation of a job's rounds, for local jobs
//! (`infra train`, K threads on this machine, and infra's simulation of many clients) and for
//! cluster jobs (peers over libp2p). Each round: the pending training tasks (one per shard)
//! are placed by the scheduler plugin on the workers' nodes, run with a deadline, retried on
//! another node when they fail (up to `cluster.max-attempts`), validated (length, finite
//! values), counted against the quorum, merged by the aggregator plugin, and the new model is
//! evaluated and checkpointed beside the next round's tasks; every step is a typed event.
//!
//! Layout:
//! - [`Workers`] (`workers.rs`): what the engine asks of whoever trains: the nodes the
//!   scheduler sees, the job's shards and a round's weights in their form, one task run;
//! - [`events`]: typed job events and the record of a round;
//! - `engine.rs`: [`run`], a job's rounds from its first (or next, when resuming) to its last;
//! - `prepare.rs`: the data divided and cleaned, the global model fresh or from its checkpoint;
//! - `dispatch.rs`: one round's tasks: placed, run, retried, validated;
//! - `finish.rs`: a round's evaluation and checkpoint, off the critical path;
//! - `swap.rs`: the scheduler and aggregator in use, replaced by cluster-wide swaps;
//! - [`local`]: local threads as [`Workers`], and `infra train`'s report.

mod dispatch;
mod engine;
pub mod events;
mod finish;
pub mod local;
mod prepare;
mod swap;
mod workers;

pub use engine::{run, Options, Outcome};
pub use events::{EventKind, JobEvent, Observer, RoundRecord, TaskWork};
pub use swap::Swaps;
pub use workers::{Done, Failure, Order, Workers};

use infra_runtime::scheduler::Resources;
use infra_runtime::Plugin;
use infra_train::JobSpec;
use std::sync::Arc;

/// CPU a training task asks of a node: one core per intra-op thread.
pub const MILLIS_PER_THREAD: u32 = 1000;
/// Memory a training task asks of a node, MiB.
pub const TASK_MEMORY_MIB: u64 = 256;

/// What one training task of `spec` asks of a node (the scheduler's `demand`, and what a
/// worker accounts while the task runs).
pub fn demand(spec: &JobSpec) -> Resources {
    Resources {
        cpu_millis: MILLIS_PER_THREAD.saturating_mul(spec.threads.min(u32::MAX as usize) as u32),
        memory_mib: TASK_MEMORY_MIB,
        gpus: 0,
    }
}

/// The id a scheduler sees for the task of `shard` in `round` (WIT `task.id`): stable while
/// the task waits, the round in the high 32 bits and the shard in the low 32. A task's
/// training is seeded with the job's seed XOR this id.
pub fn task_id(round: u32, shard: usize) -> u64 {
    (round as u64) << 32 | shard as u64
}

/// A job as the engine runs it: parsed and validated once, its plugins resolved once.
#[derive(Clone)]
pub struct Job {
    /// Job id (the job's name for local jobs).
    pub id: String,
    /// The typed spec.
    pub spec: Arc<JobSpec>,
    /// Its plugins, configured.
    pub plugins: Plugins,
}

/// A job's plugins, resolved and configured.
#[derive(Clone)]
pub struct Plugins {
    /// Places tasks on nodes.
    pub scheduler: Plugin,
    /// Merges updates.
    pub aggregator: Plugin,
    /// The cleaning chain, in order.
    pub cleaners: Vec<Plugin>,
}

impl Plugins {
    /// `(kind key, "name sha256:<hex>")` per plugin: `scheduler`, `aggregator`, `cleaner.<i>`.
    pub fn idents(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("scheduler".to_string(), ident(&self.scheduler)),
            ("aggregator".to_string(), ident(&self.aggregator)),
        ];
        for (i, c) in self.cleaners.iter().enumerate() {
            out.push((format!("cleaner.{i}"), ident(c)));
        }
        out
    }
}

/// `name sha256:<hex>` of a plugin, as job records and checkpoints name it.
pub fn ident(p: &Plugin) -> String {
    format!("{} sha256:{}", p.meta().name, p.meta().sha256)
}

/// Why a job's rounds stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The job cannot run as written (its data, its plugins, its settings).
    #[error("{0}")]
    Job(String),
    /// Training or a model failed.
    #[error(transparent)]
    Train(#[from] infra_train::TrainError),
    /// A plugin failed to load or run outside a round.
    #[error(transparent)]
    Plugin(#[from] infra_runtime::PluginError),
    /// A round could not complete; the last good checkpoint is kept.
    #[error("round {round} failed: {cause}")]
    Round {
        /// Round number.
        round: u32,
        /// Why.
        cause: String,
    },
    /// The workers failed in a way that is not the job's fault (network, disk, a thread).
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// Whether the job itself is at fault (bad spec, data or plugin), rather than the host.
    pub fn is_job_error(&self) -> bool {
        match self {
            EngineError::Job(_) | EngineError::Plugin(_) | EngineError::Round { .. } => true,
            EngineError::Train(t) => matches!(
                t,
                infra_train::TrainError::Job(_) | infra_train::TrainError::Data(_)
            ),
            EngineError::Internal(_) => false,
        }
    }
}

/// Runs blocking work (libtorch, Wasm cleaners) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("background work failed: {e}")))?
}
