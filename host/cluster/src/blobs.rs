//! Content-addressed blobs (weights, updates, data shards, plugin bytes): a blob's id is the
//! BLAKE3 hash of its bytes, so a peer that already holds an id never fetches it again, and
//! every transfer can be checked end to end. Blobs travel in chunks of [`CHUNK_BYTES`].
//!
//! BLAKE3 is a Merkle tree, and a chunk of [`CHUNK_BYTES`] (a power of two) at a multiple of
//! its size is one of its subtrees. A blob's [`Manifest`] lists each chunk's chaining value:
//! a fetcher checks that they combine into the blob id before it fetches anything
//! ([`Manifest::root`]), then checks every chunk on its own as it arrives
//! ([`chunk_checksum`]). Every byte is hashed once on each side, and a corrupt chunk is caught
//! and fetched again the moment it lands. The id is still the plain BLAKE3 hash of the bytes
//! (`b3sum` prints it).
//!
//! The store lives in memory: blobs are per-round working data (the coordinator's durable state
//! is its checkpoint and job record on disk). Jobs release what they no longer need.

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use bytes::Bytes;
use infra_net::PeerId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Bytes per chunk (a power of two, so every chunk is a subtree of the blob's BLAKE3 tree).
pub const CHUNK_BYTES: usize = 1024 * 1024;
const _: () = assert!(CHUNK_BYTES.is_power_of_two() && CHUNK_BYTES >= 1024);
/// Largest blob a peer accepts (a manifest announcing more is refused before any fetch).
pub const MAX_BLOB_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// A blob id: lowercase hex BLAKE3 hash of its bytes.
pub type BlobId = String;

/// BLAKE3 of `bytes` as lowercase hex (what [`BlobStore::put`] returns for them).
pub fn blob_id(bytes: &[u8]) -> BlobId {
    blake3::hash(bytes).to_hex().to_string()
}

/// The checksum of chunk `index` of a blob of `size` bytes: its subtree's chaining value, or,
/// for a blob of one chunk, the blob id itself. `chunk` must be that chunk's bytes.
pub fn chunk_checksum(chunk: &[u8], index: usize, size: u64) -> String {
    if size as usize <= CHUNK_BYTES {
        return blob_id(chunk);
    }
    hex::encode(chunk_cv(chunk, index))
}

fn chunk_cv(chunk: &[u8], index: usize) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset((index * CHUNK_BYTES) as u64);
    h.update(chunk);
    h.finalize_non_root()
}

/// Where chunk `index` of a blob of `size` bytes lies in it (a blob of no bytes has one empty
/// chunk); `None` past the last chunk.
pub fn chunk_range(size: u64, index: u32) -> Option<std::ops::Range<usize>> {
    let size = usize::try_from(size).ok()?;
    let start = (index as usize).checked_mul(CHUNK_BYTES)?;
    if start >= size && !(start == 0 && size == 0) {
        return None;
    }
    Some(start..(start + CHUNK_BYTES).min(size))
}

/// What a peer says about a blob before sending it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Total size.
    pub size: u64,
    /// [`chunk_checksum`] of every chunk, in order.
    pub chunks: Vec<String>,
}

impl Manifest {
    /// The manifest of `bytes`, and their id (one pass over the bytes).
    pub fn of(bytes: &[u8]) -> (BlobId, Manifest) {
        let size = bytes.len() as u64;
        if bytes.len() <= CHUNK_BYTES {
            let id = blob_id(bytes);
            let chunks = vec![id.clone()];
            return (id, Manifest { size, chunks });
        }
        let cvs: Vec<ChainingValue> = bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, c)| chunk_cv(c, i))
            .collect();
        let id = root_of(&cvs).to_hex().to_string();
        let chunks = cvs.iter().map(hex::encode).collect();
        (id, Manifest { size, chunks })
    }

    /// The blob id these checksums add up to, or why they cannot be a blob's (wrong count,
    /// not hex).
    pub fn root(&self) -> Result<BlobId, String> {
        let n = (self.size as usize).div_ceil(CHUNK_BYTES).max(1);
        if self.chunks.len() != n {
            return Err(format!(
                "it lists {} chunks for {} bytes",
                self.chunks.len(),
                self.size
            ));
        }
        if n == 1 {
            return Ok(self.chunks[0].clone());
        }
        let cvs = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut cv = [0u8; 32];
                hex::decode_to_slice(c, &mut cv)
                    .map(|_| cv)
                    .map_err(|_| format!("checksum of chunk {i} is not 32 bytes of hex"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(root_of(&cvs).to_hex().to_string())
    }
}

/// The root of two or more chunk subtrees, merged the way BLAKE3 builds its tree: the left
/// part holds the largest power of two of chunks that is less than the whole.
fn root_of(cvs: &[ChainingValue]) -> blake3::Hash {
    let split = left_len(cvs.len());
    merge_subtrees_root(
        &parent_of(&cvs[..split]),
        &parent_of(&cvs[split..]),
        Mode::Hash,
    )
}

fn parent_of(cvs: &[ChainingValue]) -> ChainingValue {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let split = left_len(cvs.len());
    merge_subtrees_non_root(
        &parent_of(&cvs[..split]),
        &parent_of(&cvs[split..]),
        Mode::Hash,
    )
}

/// Why `peer` may not fetch blob `id`.
pub(crate) fn not_for(id: &str, peer: &PeerId) -> String {
    format!("blob {id} is not served to peer {peer}: no task its coordinator assigned to that peer names it")
}

/// Largest power of two below `n` (n >= 2).
fn left_len(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

struct Entry {
    bytes: Bytes,
    manifest: Arc<Manifest>,
    /// Jobs holding it (see [`BlobStore::hold`]).
    holds: u32,
    /// Who may fetch it: `None`, any member (plugins); otherwise only these peers (a job's
    /// spec, shards and weights go only to the peers its coordinator assigned them to).
    readers: Option<HashSet<PeerId>>,
}

/// The blobs this node holds.
#[derive(Default, Clone)]
pub struct BlobStore {
    inner: Arc<Mutex<HashMap<BlobId, Entry>>>,
}

impl BlobStore {
    /// Stores `bytes` and returns their id (storing the same bytes twice keeps one copy).
    /// Takes a `Vec<u8>` or any [`Bytes`] (such as parameters viewed as bytes) without a copy.
    /// Any member may fetch it (see [`BlobStore::put_for`] for a job's data).
    pub fn put(&self, bytes: impl Into<Bytes>) -> BlobId {
        let bytes = bytes.into();
        let (id, manifest) = Manifest::of(&bytes);
        self.insert(id.clone(), bytes, manifest, None);
        id
    }

    /// Stores `bytes` that only `readers` may fetch (more are added with
    /// [`BlobStore::grant`]).
    pub fn put_for(&self, bytes: impl Into<Bytes>, readers: &[PeerId]) -> BlobId {
        let bytes = bytes.into();
        let (id, manifest) = Manifest::of(&bytes);
        self.insert(id.clone(), bytes, manifest, Some(readers));
        id
    }

    /// Stores bytes whose id and chunk checksums the caller has just checked (fetched for a
    /// job: served to no one until granted).
    pub(crate) fn put_verified(&self, id: BlobId, bytes: impl Into<Bytes>, manifest: Manifest) {
        self.insert(id, bytes.into(), manifest, Some(&[]));
    }

    fn insert(&self, id: BlobId, bytes: Bytes, manifest: Manifest, readers: Option<&[PeerId]>) {
        let mut map = self.inner.lock().expect("blob store lock");
        if let Some(e) = map.get_mut(&id) {
            match (&mut e.readers, readers) {
                (_, None) => e.readers = None,
                (Some(have), Some(more)) => have.extend(more.iter().copied()),
                (None, Some(_)) => {}
            }
            return;
        }
        map.insert(
            id,
            Entry {
                bytes,
                manifest: Arc::new(manifest),
                holds: 0,
                readers: readers.map(|r| r.iter().copied().collect()),
            },
        );
    }

    /// Lets `peer` fetch a restricted blob.
    pub fn grant(&self, id: &str, peer: PeerId) {
        if let Some(Entry {
            readers: Some(r), ..
        }) = self.inner.lock().expect("blob store lock").get_mut(id)
        {
            r.insert(peer);
        }
    }

    /// Whether `peer` may fetch blob `id` (false when it is not held).
    pub fn readable_by(&self, id: &str, peer: &PeerId) -> bool {
        self.inner
            .lock()
            .expect("blob store lock")
            .get(id)
            .is_some_and(|e| e.readers.as_ref().is_none_or(|r| r.contains(peer)))
    }

    /// The blob's bytes, if held.
    pub fn get(&self, id: &str) -> Option<Bytes> {
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
        let size = bytes.len() as u64;
        let joined: Vec<u8> = (0..3)
            .flat_map(|i| bytes[chunk_range(size, i).unwrap()].to_vec())
            .collect();
        assert_eq!(joined, bytes);
        assert!(chunk_range(size, 3).is_none());
        assert_eq!(chunk_range(0, 0), Some(0..0));
        assert_eq!(chunk_range(0, 1), None);
        assert_eq!(s.put(bytes), id);
        assert_eq!(s.usage().0, 1);
        assert_eq!(m.root().unwrap(), id);
        // Two holders: it stays through a remove and the first release.
        s.hold(&id);
        s.hold(&id);
        s.remove(&id);
        s.release(&id);
        assert!(s.has(&id));
        s.release(&id);
        assert!(!s.has(&id));
    }

    #[test]
    fn chunk_checksums_add_up_to_the_plain_blake3_hash() {
        for size in [
            0,
            1,
            CHUNK_BYTES - 1,
            CHUNK_BYTES,
            CHUNK_BYTES + 1,
            2 * CHUNK_BYTES,
            3 * CHUNK_BYTES + 7,
            5 * CHUNK_BYTES,
            8 * CHUNK_BYTES + 1,
        ] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let (id, m) = Manifest::of(&bytes);
            assert_eq!(id, blake3::hash(&bytes).to_hex().as_str(), "size {size}");
            assert_eq!(m.root().unwrap(), id, "size {size}");
            for (i, c) in bytes.chunks(CHUNK_BYTES).enumerate() {
                assert_eq!(chunk_checksum(c, i, size as u64), m.chunks[i]);
            }
        }
    }

    #[test]
    fn a_wrong_manifest_does_not_add_up() {
        let bytes: Vec<u8> = (0..3 * CHUNK_BYTES).map(|i| i as u8).collect();
        let (id, m) = Manifest::of(&bytes);
        // Chunks swapped: each checksum is genuine, their order is not.
        let mut swapped = m.clone();
        swapped.chunks.swap(0, 1);
        assert_ne!(swapped.root().unwrap(), id);
        let mut short = m.clone();
        short.chunks.pop();
        assert!(short.root().unwrap_err().contains("2 chunks"));
        let mut garbled = m;
        garbled.chunks[2] = "zz".into();
        assert!(garbled.root().unwrap_err().contains("chunk 2"));
        // A chunk checked at the wrong position does not match.
        let c = &bytes[..CHUNK_BYTES];
        assert_ne!(
            chunk_checksum(c, 1, bytes.len() as u64),
            chunk_checksum(c, 0, bytes.len() as u64)
        );
    }
}
