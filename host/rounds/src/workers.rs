//! What the engine asks of whoever trains a job's tasks: local threads ([`crate::local`]) or
//! the peers of a cluster (`infra-cluster`'s remote workers).

use crate::EngineError;
use infra_runtime::scheduler::{Node, Resources};
use infra_train::clean::StepSummary;
use infra_train::Dataset;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

/// One task as the engine hands it to the workers.
pub struct Order<'a, W: Workers + ?Sized> {
    /// Round number.
    pub round: u32,
    /// Shard position.
    pub shard: usize,
    /// The seed of the task's training (the job's seed XOR [`crate::task_id`]).
    pub seed: u64,
    /// Tries of this task before this one in this round.
    pub attempt: u32,
    /// The shard in the workers' form.
    pub data: &'a W::Shard,
    /// The round's weights in the workers' form.
    pub weights: &'a W::Weights,
}

/// A task that came back.
pub struct Done<U> {
    /// The trained parameters.
    pub update: U,
    /// Training loss the worker reports.
    pub loss: f32,
    /// Rows of the (cleaned) shard it trained on.
    pub rows: u64,
    /// Samples it trained on.
    pub samples: u64,
    /// Milliseconds of local compute.
    pub compute_ms: f64,
    /// Milliseconds the node spent on the task (compute, cleaning, fetches).
    pub busy_ms: f64,
    /// Bytes the task moved (weights down, shard, update up).
    pub bytes: u64,
    /// Chunks fetched again.
    pub refetched: u32,
}

/// Why a task did not come back.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The node is at fault (gone, silent, past the deadline): it is left out until it shows
    /// signs of life again ([`Workers::node_failed`]).
    Node(String),
    /// The task failed on a working node (the node said why).
    Task(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Node(m) | Failure::Task(m) => f.write_str(m),
        }
    }
}

/// Whoever trains a job's tasks.
pub trait Workers: Send + Sync {
    /// A shard as the workers get it (cleaned data in memory; a blob id).
    type Shard: Send + Sync;
    /// A round's weights as the workers get them (a shared vector; encoded bytes).
    type Weights: Send + Sync;
    /// A returned update.
    type Update: Deref<Target = [f32]> + Send + Sync;

    /// Takes the job's training shards (raw, or already cleaned when `cleaned`), once per
    /// job; returns them in the workers' form, in the same order.
    fn shards(
        &self,
        shards: Vec<Dataset>,
        cleaned: bool,
    ) -> impl Future<Output = Result<Vec<Self::Shard>, EngineError>> + Send;

    /// A round's global weights in the workers' form, with the bytes each task receives.
    fn weights(
        &self,
        round: u32,
        global: &Arc<Vec<f32>>,
    ) -> Result<(Self::Weights, u64), EngineError>;

    /// The round's weights are no longer needed.
    fn end_round(&self, _weights: Self::Weights) {}

    /// The nodes the scheduler may place tasks on now, with their free resources; each task
    /// asks for `demand`.
    fn nodes(
        &self,
        demand: Resources,
    ) -> impl Future<Output = Result<Vec<Node>, EngineError>> + Send;

    /// Runs one task on `node` (one of [`Workers::nodes`]' ids).
    fn run<'a>(
        &'a self,
        node: &'a str,
        order: Order<'a, Self>,
    ) -> impl Future<Output = Result<Done<Self::Update>, Failure>> + Send + 'a;

    /// What cleaning the shards on the workers did, per step, where the workers know it
    /// here (local workers do; peers clean where the coordinator does not see it).
    fn cleaning(&self) -> Vec<StepSummary> {
        Vec::new()
    }

    /// `node` failed (see [`Failure::Node`]).
    fn node_failed(&self, _node: &str) {}
}
