//! Fetching a blob from a peer: the manifest first, then its chunks, several in flight, each
//! checked against its sha256 and fetched again when it arrives corrupt or truncated; the
//! whole blob is checked against its id before it is stored. A blob already held is not
//! fetched at all. Every transfer feeds the per-peer throughput the scheduler sees.

use crate::blobs::{blob_id, BlobStore, CHUNK_BYTES, MAX_BLOB_BYTES};
use crate::messages::{Request, Response};
use crate::ClusterError;
use futures::{StreamExt, TryStreamExt};
use infra_net::{Client, PeerId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Chunks requested at once from one peer.
pub const FETCH_WINDOW: usize = 16;
/// Tries per chunk before the transfer fails.
pub const MAX_CHUNK_ATTEMPTS: u32 = 4;

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The blob.
    pub bytes: Arc<Vec<u8>>,
    /// Bytes that crossed the network (0 when the blob was already held).
    pub transferred: u64,
    /// Chunks fetched again after failing their checksum.
    pub refetched: u32,
    /// Wall time.
    pub elapsed: Duration,
}

/// Measured links: throughput to each peer (exponentially weighted over transfers).
#[derive(Default, Clone)]
pub struct Links {
    inner: Arc<Mutex<HashMap<PeerId, f64>>>,
}

impl Links {
    /// Records a transfer of `bytes` in `elapsed` from `peer`.
    pub fn record(&self, peer: PeerId, bytes: u64, elapsed: Duration) {
        if bytes < 64 * 1024 || elapsed.is_zero() {
            return; // too small to say anything about bandwidth
        }
        let rate = bytes as f64 / elapsed.as_secs_f64();
        let mut m = self.inner.lock().expect("links lock");
        let e = m.entry(peer).or_insert(rate);
        *e = 0.7 * *e + 0.3 * rate;
    }

    /// Bytes per second to `peer`, if measured.
    pub fn bandwidth(&self, peer: &PeerId) -> Option<f64> {
        self.inner.lock().expect("links lock").get(peer).copied()
    }
}

/// Fetches `blob` from `peer` into `store` (or returns the held copy).
pub async fn fetch(
    net: &Client,
    store: &BlobStore,
    links: &Links,
    peer: PeerId,
    blob: &str,
) -> Result<Fetched, ClusterError> {
    let started = Instant::now();
    if let Some(bytes) = store.get(blob) {
        return Ok(Fetched {
            bytes,
            transferred: 0,
            refetched: 0,
            elapsed: started.elapsed(),
        });
    }
    if peer == net.peer_id() {
        return Err(ClusterError::Transfer(format!("blob {blob} is not held here")));
    }
    let answer = net
        .request(peer, Request::Manifest { blob: blob.into() }.to_frame())
        .await?;
    let Response::Manifest(m) = Response::from_frame(&answer)? else {
        return Err(ClusterError::Protocol("expected a manifest".into()));
    };
    if m.size > MAX_BLOB_BYTES {
        return Err(ClusterError::Transfer(format!(
            "blob {blob} of {} bytes exceeds the limit of {MAX_BLOB_BYTES}",
            m.size
        )));
    }
    let n = (m.size as usize).div_ceil(CHUNK_BYTES);
    if m.chunks.len() != n {
        return Err(ClusterError::Transfer(format!(
            "manifest of {blob} lists {} chunks for {} bytes",
            m.chunks.len(),
            m.size
        )));
    }
    let refetched = AtomicU32::new(0);
    let chunks: Vec<Vec<u8>> = futures::stream::iter(0..n)
        .map(|i| {
            let want_len = CHUNK_BYTES.min(m.size as usize - i * CHUNK_BYTES);
            let want_sha = &m.chunks[i];
            let refetched = &refetched;
            async move {
                for attempt in 1..=MAX_CHUNK_ATTEMPTS {
                    let req = Request::Chunk {
                        blob: blob.into(),
                        index: i as u32,
                    };
                    let f = net.request(peer, req.to_frame()).await?;
                    Response::from_frame(&f)?;
                    if f.body.len() == want_len && blob_id(&f.body) == *want_sha {
                        return Ok(f.body);
                    }
                    refetched.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        %peer, blob, chunk = i, attempt, got = f.body.len(), want = want_len,
                        "chunk failed its checksum; fetching it again"
                    );
                }
                Err(ClusterError::Transfer(format!(
                    "chunk {i} of blob {blob} from {peer} failed its checksum {MAX_CHUNK_ATTEMPTS} times"
                )))
            }
        })
        .buffered(FETCH_WINDOW)
        .try_collect()
        .await?;
    let mut bytes = Vec::with_capacity(m.size as usize);
    for c in chunks {
        bytes.extend_from_slice(&c);
    }
    if blob_id(&bytes) != blob {
        return Err(ClusterError::Transfer(format!(
            "blob {blob} from {peer} does not match its id"
        )));
    }
    let elapsed = started.elapsed();
    links.record(peer, m.size, elapsed);
    let size = m.size;
    store.put_verified(blob.to_string(), bytes, m);
    Ok(Fetched {
        bytes: store.get(blob).expect("just stored"),
        transferred: size,
        refetched: refetched.into_inner(),
        elapsed,
    })
}
