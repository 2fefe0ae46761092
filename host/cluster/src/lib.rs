//! infra across peers: the part of `infra-host` that turns a set of peers into a training
//! cluster.
//!
//! Layout:
//! - [`blobs`]: content-addressed (BLAKE3), chunked blobs (weights, updates, shards, plugin
//!   bytes);
//! - [`messages`]: what peers ask each other over `/infra/rpc/1`;
//! - [`encoding`]: weights and updates on the wire (f32 without copies, or f16 with updates as
//!   deltas);
//! - [`transfer`]: fetching a blob (its chunks over one `/infra/blob/1` stream, each checked as
//!   it lands), refetching bad chunks, and the per-peer throughput the scheduler sees;
//! - [`plugins`]: installed plugins and the cluster-wide active plugin per kind;
//! - [`jobs`]: job records, event streams, and their copy on disk;
//! - `status.rs`: this node's own status, published to peers;
//! - `worker.rs`: a training task on a worker (narrow handles, not the node);
//! - `coordinator.rs`: a job's rounds through the round engine (`infra-rounds`), with the
//!   peers as its workers (`coordinator/remote.rs`);
//! - [`ClusterNode`] (`node.rs`): ties them together and answers peers;
//! - `testing.rs` (tests only): real nodes over libp2p on 127.0.0.1.

pub mod blobs;
mod coordinator;
pub mod encoding;
pub mod jobs;
pub mod messages;
mod node;
pub mod plugins;
mod status;
#[cfg(test)]
mod testing;
pub mod transfer;
mod worker;

pub use infra_rounds::{EventKind, JobEvent};
pub use jobs::{JobRecord, JobState};
pub use node::{ClusterNode, NodeConfig, PeerOutcome};

/// What went wrong in the cluster layer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The network failed (peer gone, request timed out).
    #[error(transparent)]
    Net(#[from] infra_net::NetError),
    /// A peer answered with something that is not the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The peer reported an error.
    #[error("peer: {0}")]
    Remote(String),
    /// A blob transfer failed.
    #[error("transfer: {0}")]
    Transfer(String),
    /// The job (or a request about one) is malformed or names what is not here: the
    /// caller's to fix.
    #[error("{0}")]
    BadJob(String),
    /// A job's rounds failed.
    #[error(transparent)]
    Engine(#[from] infra_rounds::EngineError),
    /// Something failed on this host that is not the caller's doing.
    #[error("{0}")]
    Internal(String),
    /// A plugin failed to load or run.
    #[error(transparent)]
    Plugin(#[from] infra_runtime::PluginError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] infra_train::TrainError),
    /// A peer or a caller asked for what it may not do (not the job's coordinator, not
    /// signed by a trusted operator key, a blob not meant for it).
    #[error("refused: {0}")]
    Refused(String),
    /// A cluster-wide swap was refused.
    #[error("swap: {0}")]
    Swap(String),
    /// Disk.
    #[error("{0}")]
    Io(String),
}
