//! What peers ask each other over `/infra/rpc/1`. The frame header is the JSON of a
//! [`Request`] or [`Response`]; chunk bytes ride in the frame body untouched.

use crate::blobs::{BlobId, Manifest};
use crate::ClusterError;
use infra_net::Frame;
use serde::{Deserialize, Serialize};

/// A request from one peer to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Describe a blob (size and chunk checksums).
    Manifest { blob: BlobId },
    /// Send chunk `index` of a blob (in the body of the answer).
    Chunk { blob: BlobId, index: u32 },
    /// Run a training task; the blobs it names are fetched from the requester.
    Train(Box<TrainTask>),
    /// Fetch plugin `sha256` from the requester (unless held), load and check it; do not
    /// activate it yet.
    PluginPrepare { kind: String, sha256: String },
    /// Make the prepared plugin the active one of its kind.
    PluginCommit { kind: String, sha256: String },
    /// The job has ended: drop what was kept for it (shards, cleaned shards, round blobs).
    Forget { job: String },
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// A blob's manifest.
    Manifest(Manifest),
    /// A chunk (bytes in the frame body).
    Chunk,
    /// A finished training task.
    Trained(TrainResult),
    /// Done.
    Ok,
    /// The request failed; the message says why.
    Error { message: String },
}

/// One training task of one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTask {
    /// Job id.
    pub job: String,
    /// Round, from 1.
    pub round: u32,
    /// Task id (`r<round>-shard<k>`).
    pub task: String,
    /// The job spec (TOML), so the worker builds the same model and cleaning chain.
    pub spec: String,
    /// Global parameters of the round (blob of little-endian f32).
    pub global: BlobId,
    /// The raw shard (blob in the `Dataset::to_bytes` form).
    pub shard: BlobId,
    /// Seed of the local batch order.
    pub seed: u64,
}

/// What a worker sends back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainResult {
    /// The update (blob of little-endian f32), held by the worker until fetched.
    pub update: BlobId,
    /// Mean training loss of the last local epoch.
    pub loss: f32,
    /// Rows of the cleaned shard (the aggregation weight).
    pub rows: u64,
    /// Samples trained on.
    pub samples: u64,
    /// Milliseconds of local training.
    pub compute_ms: f64,
    /// Bytes the worker fetched for this task (0 when it already held everything).
    pub fetched_bytes: u64,
    /// Chunks that arrived corrupt and were fetched again.
    pub refetched_chunks: u32,
}

fn encode<T: Serialize>(v: &T, body: Vec<u8>) -> Frame {
    Frame {
        head: serde_json::to_vec(v).expect("messages serialise"),
        body,
    }
}

impl Request {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        encode(self, Vec::new())
    }

    /// From a peer's frame.
    pub fn from_frame(f: &Frame) -> Result<Self, ClusterError> {
        serde_json::from_slice(&f.head)
            .map_err(|e| ClusterError::Protocol(format!("malformed request: {e}")))
    }
}

impl Response {
    /// As a frame with `body`.
    pub fn to_frame(&self, body: Vec<u8>) -> Frame {
        encode(self, body)
    }

    /// From a peer's frame; an `Error` answer becomes [`ClusterError::Remote`].
    pub fn from_frame(f: &Frame) -> Result<Self, ClusterError> {
        match serde_json::from_slice(&f.head)
            .map_err(|e| ClusterError::Protocol(format!("malformed response: {e}")))?
        {
            Response::Error { message } => Err(ClusterError::Remote(message)),
            r => Ok(r),
        }
    }
}
