//! Content-addressed blobs (weights, updates, data shards, plugin bytes): a blob's id is the
//! sha256 of its bytes, so a peer that already holds an id never fetches it again, and every
//! transfer can be checked end to end. Blobs travel in chunks of [`CHUNK_BYTES`], each with
//! its own sha256 in the blob's [`Manifest`], so a corrupt or truncated chunk is caught and
//! fetched again on its own.
//!
//! The store lives in memory: blobs are per-round working data (the coordinator's durable state
//! is its checkpoint and job record on disk). Jobs release what they no longer need.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bytes per chunk.
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Largest blob a peer accepts (a manifest announcing more is refused before any fetch).
pub const MAX_BLOB_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// A blob id: lowercase hex sha256 of its bytes.
pub type BlobId = String;

/// sha256 of `bytes` as lowercase hex.
pub fn blob_id(bytes: &[u8]) -> BlobId {
    hex::encode(Sha256::digest(bytes))
}

/// What a peer says about a blob before sending it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Total size.
    pub size: u64,
    /// sha256 of every chunk, in order.
    pub chunks: Vec<String>,
}

struct Entry {
    bytes: Arc<Vec<u8>>,
    manifest: Arc<Manifest>,
    /// Jobs holding it (see [`BlobStore::hold`]).
    holds: u32,
}

/// The blobs this node holds.
#[derive(Default, Clone)]
pub struct BlobStore {
    inner: Arc<Mutex<HashMap<BlobId, Entry>>>,
}

impl BlobStore {
    /// Stores `bytes` and returns their id (storing the same bytes twice keeps one copy).
    pub fn put(&self, bytes: Vec<u8>) -> BlobId {
        let id = blob_id(&bytes);
        if !self.has(&id) {
            let manifest = Manifest {
                size: bytes.len() as u64,
                chunks: bytes.chunks(CHUNK_BYTES).map(blob_id).collect(),
            };
            self.put_verified(id.clone(), bytes, manifest);
        }
        id
    }

    /// Stores bytes whose id and chunk checksums the caller has just checked.
    pub(crate) fn put_verified(&self, id: BlobId, bytes: Vec<u8>, manifest: Manifest) {
        let mut map = self.inner.lock().expect("blob store lock");
        if map.contains_key(&id) {
            return;
        }
        map.insert(
            id,
            Entry {
                bytes: Arc::new(bytes),
                manifest: Arc::new(manifest),
                holds: 0,
            },
        );
    }

    /// The blob's bytes, if held.
    pub fn get(&self, id: &str) -> Option<Arc<Vec<u8>>> {
        self.inner
            .lock()
            .expect("blob store lock")
            .get(id)
            .map(|e| e.bytes.clone())
    }

    /// Whether the blob is held.
    pub fn has(&self, id: &str) -> bool {
        self.inner.lock().expect("blob store lock").contains_key(id)
    }

    /// The blob's manifest, if held.
    pub fn manifest(&self, id: &str) -> Option<Arc<Manifest>> {
        self.inner
            .lock()
            .expect("blob store lock")
            .get(id)
            .map(|e| e.manifest.clone())
    }

    /// Chunk `index` of a held blob: a view into the stored bytes, not a copy.
    pub fn chunk(&self, id: &str, index: usize) -> Option<Bytes> {
        let bytes = self.get(id)?;
        let start = index.checked_mul(CHUNK_BYTES)?;
        if start >= bytes.len() && !(start == 0 && bytes.is_empty()) {
            return None;
        }
        let end = (start + CHUNK_BYTES).min(bytes.len());
        Some(Bytes::from_owner(Held(bytes)).slice(start..end))
    }

    /// Drops a blob, unless a job holds it.
    pub fn remove(&self, id: &str) {
        let mut map = self.inner.lock().expect("blob store lock");
        if map.get(id).is_some_and(|e| e.holds == 0) {
            map.remove(id);
        }
    }

    /// Marks a held blob as needed by one more job (shards, which two identical jobs share):
    /// it stays until every holder has released it.
    pub fn hold(&self, id: &str) {
        if let Some(e) = self.inner.lock().expect("blob store lock").get_mut(id) {
            e.holds += 1;
        }
    }

    /// Ends one hold; the blob goes when the last hold does.
    pub fn release(&self, id: &str) {
        let mut map = self.inner.lock().expect("blob store lock");
        if let Some(e) = map.get_mut(id) {
            e.holds = e.holds.saturating_sub(1);
            if e.holds == 0 {
                map.remove(id);
            }
        }
    }

    /// Number of blobs and bytes held.
    pub fn usage(&self) -> (usize, u64) {
        let map = self.inner.lock().expect("blob store lock");
        (map.len(), map.values().map(|e| e.bytes.len() as u64).sum())
    }
}

/// A held blob as the owner of [`Bytes`] views into it.
struct Held(Arc<Vec<u8>>);

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_content_hashes_and_chunks_cover_the_blob() {
        let s = BlobStore::default();
        let bytes: Vec<u8> = (0..(CHUNK_BYTES * 2 + 5)).map(|i| i as u8).collect();
        let id = s.put(bytes.clone());
        assert_eq!(id, blob_id(&bytes));
        let m = s.manifest(&id).unwrap();
        assert_eq!(m.chunks.len(), 3);
        let joined: Vec<u8> = (0..3)
            .flat_map(|i| s.chunk(&id, i).unwrap().to_vec())
            .collect();
        assert_eq!(joined, bytes);
        assert!(s.chunk(&id, 3).is_none());
        assert_eq!(s.put(bytes), id);
        assert_eq!(s.usage().0, 1);
        // Two holders: it stays through a remove and the first release.
        s.hold(&id);
        s.hold(&id);
        s.remove(&id);
        s.release(&id);
        assert!(s.has(&id));
        s.release(&id);
        assert!(!s.has(&id));
    }
}
