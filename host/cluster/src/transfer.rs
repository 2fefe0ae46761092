//! Fetching a blob from a peer: the manifest first, then its chunks, several in flight; the
//! whole blob is checked against its id before it is stored, and when it does not match, each
//! chunk is checked against its sha256 from the manifest and the corrupt ones are fetched
//! again. Truncated chunks are fetched again as they arrive. A blob already held is not
//! fetched at all. Every transfer feeds the per-peer throughput the scheduler sees.

use crate::blobs::{blob_id, BlobStore, CHUNK_BYTES, MAX_BLOB_BYTES};
use crate::messages::{Request, Response};
use crate::ClusterError;
use futures::StreamExt;
use infra_net::{Client, PeerId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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
        return Err(ClusterError::Transfer(format!(
            "blob {blob} is not held here"
        )));
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
    // Optimistic verification: the whole blob is hashed once as its chunks arrive; only when
    // that hash is wrong is each chunk checked against the manifest, and the bad ones fetched
    // again. A chunk of the wrong length is fetched again at once.
    let mut refetched = 0u32;
    let len_of = |i: usize| CHUNK_BYTES.min(m.size as usize - i * CHUNK_BYTES);
    let mut arriving = futures::stream::iter(0..n)
        .map(|i| fetch_chunk(net, peer, blob, i, len_of(i)))
        .buffered(FETCH_WINDOW);
    let mut bytes = Vec::with_capacity(m.size as usize);
    let mut whole = Sha256::new();
    while let Some(chunk) = arriving.next().await {
        let (chunk, retries) = chunk?;
        refetched += retries;
        whole.update(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    drop(arriving);
    if hex::encode(whole.finalize()) != blob {
        for i in 0..n {
            let range = i * CHUNK_BYTES..i * CHUNK_BYTES + len_of(i);
            let mut attempt = 1;
            while blob_id(&bytes[range.clone()]) != m.chunks[i] {
                refetched += 1;
                tracing::warn!(%peer, blob, chunk = i, attempt, "chunk failed its checksum; fetching it again");
                if attempt == MAX_CHUNK_ATTEMPTS {
                    return Err(ClusterError::Transfer(format!(
                        "chunk {i} of blob {blob} from {peer} failed its checksum {MAX_CHUNK_ATTEMPTS} times"
                    )));
                }
                let (chunk, retries) = fetch_chunk(net, peer, blob, i, len_of(i)).await?;
                refetched += retries;
                bytes[range.clone()].copy_from_slice(&chunk);
                attempt += 1;
            }
        }
        if blob_id(&bytes) != blob {
            return Err(ClusterError::Transfer(format!(
                "blob {blob} from {peer} does not match its id (its manifest is wrong)"
            )));
        }
    }
    let elapsed = started.elapsed();
    links.record(peer, m.size, elapsed);
    let size = m.size;
    store.put_verified(blob.to_string(), bytes, m);
    Ok(Fetched {
        bytes: store.get(blob).expect("just stored"),
        transferred: size,
        refetched,
        elapsed,
    })
}

/// One chunk of the expected length (fetched again when it arrives truncated or padded), and
/// how many times it had to be fetched again.
async fn fetch_chunk(
    net: &Client,
    peer: PeerId,
    blob: &str,
    index: usize,
    want_len: usize,
) -> Result<(bytes::Bytes, u32), ClusterError> {
    for attempt in 0..MAX_CHUNK_ATTEMPTS {
        let req = Request::Chunk {
            blob: blob.into(),
            index: index as u32,
        };
        let f = net.request(peer, req.to_frame()).await?;
        Response::from_frame(&f)?;
        if f.body.len() == want_len {
            return Ok((f.body, attempt));
        }
        tracing::warn!(%peer, blob, chunk = index, got = f.body.len(), want = want_len, "chunk of the wrong length; fetching it again");
    }
    Err(ClusterError::Transfer(format!(
        "chunk {index} of blob {blob} from {peer} arrived with the wrong length {MAX_CHUNK_ATTEMPTS} times"
    )))
}
