//! What peers ask each other over `/infra/rpc/1`. The frame header is the JSON of a
//! [`Request`] or [`Response`]; chunk bytes ride in the frame body untouched.

use crate::blobs::{BlobId, Manifest};
use crate::ClusterError;
use bytes::Bytes;
use infra_net::Frame;
use serde::{Deserialize, Serialize};

/// Weights and updates up to this size travel in the body of the training request and its
/// answer (one round trip, no manifest, no store); larger ones go as chunked blobs.
pub const INLINE_MAX_BYTES: usize = infra_net::wire::MAX_BODY_BYTES;

/// A request from one peer to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Describe a blob (size and chunk checksums); its chunks then come over
    /// `/infra/blob/1` (`transfer::stream`).
    Manifest { blob: BlobId },
    /// Run a training task; the blobs it names are fetched from the requester. The round's
    /// global weights ride in the frame body unless the task names them as a blob.
    Train(Box<TrainTask>),
    /// Which blob holds the bytes of plugin `sha256` (blob ids are BLAKE3, plugin ids sha256)?
    PluginBlob { sha256: String },
    /// Fetch plugin `sha256` from the requester (unless held), load and check it; do not
    /// activate it yet. `order` is the operator's signed swap order (TOML), which a closed
    /// node requires.
    PluginPrepare {
        kind: String,
        sha256: String,
        #[serde(default)]
        order: Option<String>,
    },
    /// Make the prepared plugin the active one of its kind (with the same signed order).
    PluginCommit {
        kind: String,
        sha256: String,
        #[serde(default)]
        order: Option<String>,
    },
    /// The job has ended: drop what was kept for it (shards, cleaned shards, round blobs).
    Forget { job: String },
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// A blob's manifest.
    Manifest(Manifest),
    /// The blob that holds a plugin's bytes, and the plugin's signature (TOML) if it has one.
    Blob {
        id: BlobId,
        #[serde(default)]
        signature: Option<String>,
    },
    /// A finished training task; the update rides in the frame body unless the result names
    /// it as a blob.
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
    /// The blob holding the job's spec (TOML), so the worker builds the same model and
    /// cleaning chain: fetched from the coordinator and parsed once per job (blob ids are
    /// content addresses, so every task of the job names the same one).
    pub spec: BlobId,
    /// Global parameters of the round as a blob of little-endian f32 to fetch; `None` when
    /// they are in the request's body (models up to [`INLINE_MAX_BYTES`]).
    pub global: Option<BlobId>,
    /// The raw shard (blob in the `Dataset::to_bytes` form).
    pub shard: BlobId,
    /// Seed of the local batch order.
    pub seed: u64,
}

/// What a worker sends back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainResult {
    /// The update as a blob of little-endian f32, held by the worker until fetched; `None`
    /// when it is in the response's body (models up to [`INLINE_MAX_BYTES`]).
    pub update: Option<BlobId>,
    /// Mean training loss of the last local epoch.
    pub loss: f32,
    /// Rows of the cleaned shard (the aggregation weight).
    pub rows: u64,
    /// Samples trained on.
    pub samples: u64,
    /// Milliseconds of local training.
    pub compute_ms: f64,
    /// Milliseconds from receiving the task to answering it; the rest of the coordinator's
    /// wait is the network, which is how it measures the link to this worker.
    #[serde(default)]
    pub busy_ms: f64,
    /// Bytes the worker fetched for this task (0 when it already held everything).
    pub fetched_bytes: u64,
    /// Chunks that arrived corrupt and were fetched again.
    pub refetched_chunks: u32,
}

fn encode<T: Serialize>(v: &T, body: Bytes) -> Frame {
    Frame {
        head: serde_json::to_vec(v).expect("messages serialise"),
        body,
    }
}

impl Request {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        encode(self, Bytes::new())
    }

    /// As a frame with `body`.
    pub fn to_frame_with(&self, body: impl Into<Bytes>) -> Frame {
        encode(self, body.into())
    }

    /// From a peer's frame.
    pub fn from_frame(f: &Frame) -> Result<Self, ClusterError> {
        serde_json::from_slice(&f.head)
            .map_err(|e| ClusterError::Protocol(format!("malformed request: {e}")))
    }
}

impl Response {
    /// As a frame with `body`.
    pub fn to_frame(&self, body: impl Into<Bytes>) -> Frame {
        encode(self, body.into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a peer sends as a request or an answer, decoding it is an answer, never a
        /// panic.
        #[test]
        fn any_frame_decodes_or_is_refused(head in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let f = Frame { head, body: Bytes::new() };
            let _ = Request::from_frame(&f);
            let _ = Response::from_frame(&f);
        }

        /// Well-formed JSON naming every message type, with fields of any value.
        #[test]
        fn any_message_shape_decodes_or_is_refused(t in 0usize..11, n in any::<i64>(), s in ".{0,40}") {
            let types = ["manifest", "train", "plugin-blob", "plugin-prepare", "plugin-commit", "forget", "blob", "trained", "ok", "error", "x"];
            for v in [serde_json::json!(n), serde_json::json!(s), serde_json::json!(null), serde_json::json!([n, n]), serde_json::json!({"size": n})] {
                for key in ["blob", "job", "round", "sha256", "kind", "order", "id", "signature", "rows", "busy_ms", "size", "chunks"] {
                    let head = serde_json::to_vec(&serde_json::json!({"type": types[t], key: v})).unwrap();
                    let f = Frame { head, body: Bytes::new() };
                    let _ = Request::from_frame(&f);
                    let _ = Response::from_frame(&f);
                }
            }
        }
    }
}
