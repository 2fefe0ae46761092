//! Fetching a blob from a peer: the manifest first (`/infra/rpc/1`), checked against the blob
//! id before any chunk is asked for; then every chunk over one `/infra/blob/1` stream
//! ([`stream`]), each read into its place and checked against its checksum from the manifest;
//! the chunks that arrived corrupt or truncated are asked for again, on a new stream.
//! The checked chunks add up to the blob id (see [`crate::blobs`]), so no second pass over the
//! whole blob is needed. A blob already held is not fetched at all. Every transfer feeds the
//! per-peer throughput the scheduler sees.

use crate::blobs::{BlobStore, MAX_BLOB_BYTES};
use crate::messages::{Request, Response};
use crate::ClusterError;
use infra_net::{Client, PeerId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod stream;

/// Tries per chunk before the transfer fails.
pub const MAX_CHUNK_ATTEMPTS: u32 = 4;

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The blob.
    pub bytes: bytes::Bytes,
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
    fetch_at_most(net, store, links, peer, blob, MAX_BLOB_BYTES).await
}

/// As [`fetch`], refusing a blob whose manifest says it is larger than `max_bytes` before
/// any chunk is asked for (the manifest's size is covered by the blob id it adds up to).
pub async fn fetch_at_most(
    net: &Client,
    store: &BlobStore,
    links: &Links,
    peer: PeerId,
    blob: &str,
    max_bytes: u64,
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
    let limit = max_bytes.min(MAX_BLOB_BYTES);
    if m.size > limit {
        return Err(ClusterError::Transfer(format!(
            "blob {blob} of {} bytes exceeds the limit of {limit}",
            m.size
        )));
    }
    match m.root() {
        Ok(root) if root == blob => {}
        Ok(_) => {
            return Err(ClusterError::Transfer(format!(
                "the manifest of blob {blob} from {peer} does not add up to its id"
            )))
        }
        Err(e) => {
            return Err(ClusterError::Transfer(format!(
                "the manifest of blob {blob} from {peer} is malformed: {e}"
            )))
        }
    }
    let size = m.size;
    let mut todo: Vec<u32> = (0..m.chunks.len() as u32).collect();
    let mut bytes = Vec::with_capacity(size as usize);
    let (mut tries, mut refetched) = (1, 0u32);
    loop {
        let bad = stream::fetch_chunks(net, peer, blob, &m, &todo, &mut bytes).await?;
        let Some(&first) = bad.first() else { break };
        if tries == MAX_CHUNK_ATTEMPTS {
            return Err(ClusterError::Transfer(format!(
                "chunk {first} of blob {blob} from {peer} arrived corrupt or truncated {MAX_CHUNK_ATTEMPTS} times"
            )));
        }
        tries += 1;
        refetched += bad.len() as u32;
        todo = bad;
    }
    let elapsed = started.elapsed();
    links.record(peer, size, elapsed);
    let bytes = bytes::Bytes::from(bytes);
    store.put_verified(blob.to_string(), bytes.clone(), m);
    Ok(Fetched {
        bytes,
        transferred: size,
        refetched,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::{Manifest, CHUNK_BYTES};
    use crate::testing::{joined_nodes, two_nodes};

    /// A hostile or broken peer: a manifest that is not the blob's is refused before any chunk
    /// is fetched, and chunks that never match their checksums end the fetch; neither leaves
    /// anything in the fetcher's store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_serving_the_wrong_manifest_or_bytes_is_refused() {
        let (a, b) = two_nodes().await;
        let x: Vec<u8> = (0..3 * CHUNK_BYTES + 11).map(|i| (i % 253) as u8).collect();
        let y: Vec<u8> = x.iter().map(|v| v ^ 1).collect();
        let (id_x, m_x) = Manifest::of(&x);
        let (id_y, m_y) = Manifest::of(&y);

        // Asked for y, the peer answers with x's manifest.
        a.store().put_verified(id_y.clone(), x.clone(), m_x.clone());
        a.store().grant(&id_y, b.peer_id());
        let e = fetch(b.net(), b.store(), b.links(), a.peer_id(), &id_y)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not add up to its id"), "{e}");
        assert!(!b.store().has(&id_y));

        // y's true manifest, but x's bytes behind it: every chunk fails its checksum.
        a.store().remove(&id_y);
        a.store().put_verified(id_y.clone(), x.clone(), m_y);
        a.store().grant(&id_y, b.peer_id());
        let e = fetch(b.net(), b.store(), b.links(), a.peer_id(), &id_y)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "arrived corrupt or truncated {MAX_CHUNK_ATTEMPTS} times"
            )),
            "{e}"
        );
        assert!(!b.store().has(&id_y));

        // An honest blob still arrives, checked, and is not fetched twice.
        a.store().put(x.clone());
        let f = fetch(b.net(), b.store(), b.links(), a.peer_id(), &id_x)
            .await
            .expect("fetch");
        assert_eq!((f.transferred, f.refetched), (x.len() as u64, 0));
        assert_eq!(*f.bytes, x);
        let again = fetch(b.net(), b.store(), b.links(), a.peer_id(), &id_x)
            .await
            .expect("held");
        assert_eq!(again.transferred, 0);
    }

    /// Many fetchers asking one holder at once all get the blob: a blob stream the holder's
    /// accept loop could not take at that instant is asked for again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_fetchers_at_once_all_get_the_blob() {
        let nodes = joined_nodes(7).await;
        let x: Vec<u8> = (0..2 * CHUNK_BYTES + 7).map(|i| (i % 241) as u8).collect();
        let id = nodes[0].store().put(x.clone());
        let holder = nodes[0].peer_id();
        let fetches = nodes[1..].iter().map(|n| {
            let (n, id) = (n.clone(), id.clone());
            tokio::spawn(async move { fetch(n.net(), n.store(), n.links(), holder, &id).await })
        });
        for f in futures::future::join_all(fetches).await {
            let f = f.expect("task").expect("fetch");
            assert_eq!(*f.bytes, x);
        }
    }
}
