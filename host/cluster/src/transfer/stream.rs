//! `/infra/blob/1`: a blob's chunks over one raw libp2p stream, each read straight into its
//! place in the fetcher's buffer and checked there, with no frame, request or copy per chunk.
//!
//! All integers are little-endian.
//! - Request (fetcher to holder): `u8` version (1), `u8` id length, the blob id (ASCII),
//!   `u32` count, then `count` chunk indices as `u32`, ascending.
//! - Answer: `u8` status.
//!   - 0: for each asked chunk, in order, its `u32` length and then its bytes.
//!   - 1: a `u16` length and a UTF-8 reason; the stream ends.
//!
//! The holder bounds what it serves at once ([`MAX_SERVED_STREAMS`], [`MAX_STREAMS_PER_PEER`]),
//! how long a request may take to arrive ([`REQUEST_TIMEOUT`]) and how long a fetcher may take
//! to read a chunk ([`CHUNK_TIMEOUT`]); the fetcher bounds each chunk's wait the same way and
//! refuses a chunk longer than [`CHUNK_BYTES`].

use crate::blobs::BlobStore;
use crate::blobs::{chunk_checksum, chunk_range, Manifest, CHUNK_BYTES, MAX_BLOB_BYTES};
use crate::ClusterError;
use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use infra_net::{Client, IncomingStreams, PeerId, Stream, StreamProtocol};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::timeout;

/// The protocol name.
pub const BLOB_PROTOCOL: StreamProtocol = StreamProtocol::new("/infra/blob/1");
/// Streams a holder serves at once; more wait their turn.
pub const MAX_SERVED_STREAMS: usize = 32;
/// Streams a holder serves one peer at once; more from that peer are refused, so one peer
/// cannot take every turn. A fetch uses one stream at a time.
pub const MAX_STREAMS_PER_PEER: usize = 8;
/// How long a holder waits for a request once a stream is open.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fetcher waits for any one chunk (its length and bytes).
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a holder serves one stream in all (a 4 GiB blob at 20 MB/s).
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(200);
/// Tries to open a stream and get an answer. libp2p-stream drops an inbound stream when the
/// holder's accept loop has one waiting already, which many fetchers at once can cause; the
/// fetcher then sees its stream closed before the answer, and asks again after a pause.
const OPEN_ATTEMPTS: u32 = 6;
const VERSION: u8 = 1;
const MAX_ID_BYTES: usize = 128;
const MAX_CHUNKS: usize = (MAX_BLOB_BYTES / CHUNK_BYTES as u64) as usize + 1;
const STATUS_OK: u8 = 0;
const STATUS_REFUSED: u8 = 1;

fn encode_request(blob: &str, chunks: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + blob.len() + 4 * chunks.len());
    out.push(VERSION);
    out.push(blob.len() as u8);
    out.extend_from_slice(blob.as_bytes());
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for c in chunks {
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

async fn read_u32<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<u32> {
    let mut b = [0u8; 4];
    io.read_exact(&mut b).await?;
    Ok(u32::from_le_bytes(b))
}

/// Reads a request: the blob id and the chunks asked for.
async fn read_request<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<(String, Vec<u32>)> {
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(invalid(format!("blob request version {}", head[0])));
    }
    let id_len = head[1] as usize;
    if id_len == 0 || id_len > MAX_ID_BYTES {
        return Err(invalid(format!("blob id of {id_len} bytes")));
    }
    let mut id = vec![0u8; id_len];
    io.read_exact(&mut id).await?;
    let id = String::from_utf8(id).map_err(|_| invalid("blob id is not UTF-8".into()))?;
    let count = read_u32(io).await? as usize;
    if count > MAX_CHUNKS {
        return Err(invalid(format!(
            "{count} chunks asked for, over {MAX_CHUNKS}"
        )));
    }
    let mut raw = vec![0u8; 4 * count];
    io.read_exact(&mut raw).await?;
    let chunks: Vec<u32> = raw
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    // Strictly increasing: each chunk once, so a request's answer is at most the blob.
    if let Some(w) = chunks.windows(2).find(|w| w[0] >= w[1]) {
        return Err(invalid(format!(
            "chunk {} asked for after chunk {}: chunks go in increasing order, each once",
            w[1], w[0]
        )));
    }
    Ok((id, chunks))
}

/// What serving blob streams needs of a node: its store (and, in tests, the faults to inject
/// into what it serves).
#[derive(Clone)]
pub(crate) struct Holder {
    pub store: BlobStore,
    #[cfg(test)]
    pub faults: Arc<crate::testing::Faults>,
}

impl Holder {
    /// A chunk as it goes out.
    fn outgoing(&self, bytes: bytes::Bytes) -> bytes::Bytes {
        #[cfg(test)]
        let bytes = self.faults.apply(bytes);
        bytes
    }
}

/// Serves the blob streams peers open to `node`, until the network stops.
pub(crate) async fn serve(node: Holder, mut incoming: IncomingStreams) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_SERVED_STREAMS));
    let per_peer = PeerStreams::default();
    while let Some((peer, stream)) = incoming.next().await {
        let Some(slot) = per_peer.take(peer) else {
            let why = format!("more than {MAX_STREAMS_PER_PEER} blob streams from {peer} at once");
            tokio::spawn(timeout(REQUEST_TIMEOUT, refuse(stream, why)));
            continue;
        };
        let (node, permits) = (node.clone(), permits.clone());
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            // A whole stream has a deadline too: a slow reader cannot keep a permit for
            // thousands of chunks at CHUNK_TIMEOUT each.
            match timeout(STREAM_TIMEOUT, serve_one(&node, peer, stream)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "blob stream: {e}"),
                Err(_) => tracing::debug!(%peer, "blob stream: not taken in {STREAM_TIMEOUT:?}"),
            }
            drop(slot);
        });
    }
}

/// Streams being served, per peer.
#[derive(Clone, Default)]
struct PeerStreams(Arc<Mutex<HashMap<PeerId, usize>>>);

/// One stream's place in [`PeerStreams`], given back on drop.
struct PeerSlot(PeerStreams, PeerId);

impl PeerStreams {
    fn take(&self, peer: PeerId) -> Option<PeerSlot> {
        let mut map = self.0.lock().expect("peer streams lock");
        let n = map.entry(peer).or_default();
        if *n >= MAX_STREAMS_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot(self.clone(), peer))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = (self.0).0.lock().expect("peer streams lock");
        if let Some(n) = map.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

async fn serve_one(node: &Holder, peer: PeerId, mut s: Stream) -> io::Result<()> {
    let (blob, chunks) = timeout(REQUEST_TIMEOUT, read_request(&mut s))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no blob request in time"))??;
    let store = &node.store;
    if store.has(&blob) && !store.readable_by(&blob, &peer) {
        return refuse(s, crate::blobs::not_for(&blob, &peer)).await;
    }
    let (Some(bytes), Some(m)) = (store.get(&blob), store.manifest(&blob)) else {
        return refuse(s, format!("blob {blob} is not held here")).await;
    };
    if let Some(bad) = chunks.iter().find(|&&c| c as usize >= m.chunks.len()) {
        let n = m.chunks.len();
        return refuse(s, format!("blob {blob} has {n} chunks, not a chunk {bad}")).await;
    }
    s.write_all(&[STATUS_OK]).await?;
    for &c in &chunks {
        let range = chunk_range(m.size, c).expect("checked against the manifest");
        let chunk = node.outgoing(bytes.slice(range));
        timeout(CHUNK_TIMEOUT, async {
            s.write_all(&(chunk.len() as u32).to_le_bytes()).await?;
            s.write_all(&chunk).await
        })
        .await
        .map_err(|_| {
            let what = format!("chunk {c} of blob {blob} not taken in {CHUNK_TIMEOUT:?}");
            io::Error::new(io::ErrorKind::TimedOut, what)
        })??;
    }
    s.close().await
}

async fn refuse(mut s: Stream, why: String) -> io::Result<()> {
    let why = &why.as_bytes()[..why.len().min(u16::MAX as usize)];
    s.write_all(&[STATUS_REFUSED]).await?;
    s.write_all(&(why.len() as u16).to_le_bytes()).await?;
    s.write_all(why).await?;
    s.close().await
}

/// Opens a stream to `peer`, asks for `chunks` of `blob` and reads the status; retried when
/// the stream closes before that (see [`OPEN_ATTEMPTS`]).
async fn ask(
    net: &Client,
    peer: PeerId,
    blob: &str,
    chunks: &[u32],
) -> Result<Stream, ClusterError> {
    let request = encode_request(blob, chunks);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut s = net.open_stream(peer, BLOB_PROTOCOL).await?;
        // The status, and a refusal's reason, within one bound.
        let answered = timeout(CHUNK_TIMEOUT, async {
            s.write_all(&request).await?;
            s.flush().await?;
            let mut status = [0u8; 1];
            s.read_exact(&mut status).await?;
            if status[0] != STATUS_REFUSED {
                return Ok((status[0], Vec::new()));
            }
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut why = vec![0u8; u16::from_le_bytes(len) as usize];
            s.read_exact(&mut why).await?;
            Ok::<_, io::Error>((STATUS_REFUSED, why))
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")));
        match answered {
            Ok((STATUS_OK, _)) => return Ok(s),
            Ok((STATUS_REFUSED, why)) => {
                return Err(ClusterError::Transfer(format!(
                    "{peer} cannot serve blob {blob}: {}",
                    String::from_utf8_lossy(&why)
                )));
            }
            Ok((other, _)) => {
                return Err(ClusterError::Protocol(format!(
                    "{peer} answered a blob request with status {other}"
                )))
            }
            Err(e) if attempt < OPEN_ATTEMPTS && dropped(&e) => {
                tracing::debug!(%peer, blob, attempt, "blob stream closed before its answer ({e}); asking again");
                // Apart from each other, so that fetchers that collided do not collide again.
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos() % 20);
                let pause = 20 * attempt as u64 + jitter as u64;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(e) => return Err(stream_err(peer, e)),
        }
    }
}

fn dropped(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted | WriteZero
    )
}

fn stream_err(peer: PeerId, e: io::Error) -> ClusterError {
    ClusterError::Transfer(format!("blob stream from {peer}: {e}"))
}

/// Asks `peer` for `chunks` (ascending) of the blob `m` describes, over one stream, and reads
/// each into its place in `dst`, which grows to hold it; returns the chunks that arrived
/// corrupt or truncated. A chunk longer than [`CHUNK_BYTES`] ends the fetch: a peer sending
/// one is not following the protocol.
pub(crate) async fn fetch_chunks(
    net: &Client,
    peer: PeerId,
    blob: &str,
    m: &Manifest,
    chunks: &[u32],
    dst: &mut Vec<u8>,
) -> Result<Vec<u32>, ClusterError> {
    let mut s = ask(net, peer, blob, chunks).await?;
    let mut bad = Vec::new();
    let mut scratch = Vec::new();
    for &c in chunks {
        let range = chunk_range(m.size, c)
            .ok_or_else(|| ClusterError::Transfer(format!("blob {blob} has no chunk {c}")))?;
        let (at, want) = (range.start, range.len());
        if dst.len() < range.end {
            dst.resize(range.end, 0);
        }
        let got = timeout(CHUNK_TIMEOUT, async {
            let len = read_u32(&mut s).await? as usize;
            if len > CHUNK_BYTES {
                return Ok(len);
            }
            let place = if len == want {
                &mut dst[at..at + want]
            } else {
                scratch.resize(len, 0);
                &mut scratch[..]
            };
            s.read_exact(place).await?;
            Ok(len)
        })
        .await
        .map_err(|_| {
            ClusterError::Transfer(format!(
                "chunk {c} of blob {blob} from {peer}: nothing for {CHUNK_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| stream_err(peer, e))?;
        if got > CHUNK_BYTES {
            return Err(ClusterError::Protocol(format!(
                "{peer} sent {got} bytes as chunk {c} of blob {blob}; chunks are at most {CHUNK_BYTES}"
            )));
        }
        if got != want {
            tracing::warn!(%peer, blob, chunk = c, got, want, "chunk of the wrong length; fetching it again");
            bad.push(c);
        } else if chunk_checksum(&dst[at..at + want], c as usize, m.size) != m.chunks[c as usize] {
            tracing::warn!(%peer, blob, chunk = c, "chunk failed its checksum; fetching it again");
            bad.push(c);
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{network, two_nodes};
    use infra_net::NetEvent;

    /// The error of a fetch of `chunks` that must fail.
    async fn refused(
        net: &Client,
        peer: PeerId,
        blob: &str,
        m: &Manifest,
        chunks: &[u32],
    ) -> String {
        fetch_chunks(net, peer, blob, m, chunks, &mut Vec::new())
            .await
            .expect_err("the fetch must fail")
            .to_string()
    }

    /// One peer holding every slot it may have is refused a further stream, by a message that
    /// says why; once its streams close, it is served again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_gets_at_most_its_share_of_blob_streams() {
        let (a, b) = two_nodes().await;
        let x: Vec<u8> = (0..9 * CHUNK_BYTES).map(|i| (i % 239) as u8).collect();
        let id = a.store().put(x.clone());
        let m = a.store().manifest(&id).expect("held");
        let all: Vec<u32> = (0..9).collect();
        // Streams that ask for every chunk and then read nothing: each holds its slot.
        let mut held = Vec::new();
        for _ in 0..MAX_STREAMS_PER_PEER {
            held.push(ask(b.net(), a.peer_id(), &id, &all).await.expect("served"));
        }
        let e = refused(b.net(), a.peer_id(), &id, &m, &[0]).await;
        assert!(
            e.contains("blob streams from") && e.contains("at once"),
            "{e}"
        );
        drop(held);
        // The holder learns of the closed streams when its writes fail; until then it refuses.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match crate::transfer::fetch(b.net(), b.store(), b.links(), a.peer_id(), &id).await {
                Ok(f) => break assert_eq!(*f.bytes, x),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("at once"), "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("still refused after the streams closed: {e}"),
            }
        }
    }

    /// A hostile holder, speaking the protocol by hand: a truncated chunk is reported for a
    /// second try while its neighbour lands in place; an oversized chunk and a refusal end the
    /// fetch with errors that say so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hostile_holder_is_caught_chunk_by_chunk() {
        let (holder, _holder_events, addr) = network(None).await;
        let (fetcher, mut events, _) = network(Some(&addr)).await;
        while !matches!(events.recv().await, Some(NetEvent::PeerStatus(..))) {}
        let blob: Vec<u8> = (0..CHUNK_BYTES + 100).map(|i| (i % 251) as u8).collect();
        let (id, m) = Manifest::of(&blob);
        let mut incoming = holder.accept(BLOB_PROTOCOL).expect("accept");
        let served = blob.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Some((_, mut s)) = incoming.next().await {
                n += 1;
                let (_, asked) = read_request(&mut s).await.expect("request");
                assert_eq!(asked, [0, 1]);
                if n == 3 {
                    refuse(s, "no such blob here".into()).await.expect("refuse");
                    continue;
                }
                // The fetcher hangs up on an oversized chunk: later writes may fail.
                let _ = async {
                    s.write_all(&[STATUS_OK]).await?;
                    let first: &[u8] = match n {
                        1 => &served[..CHUNK_BYTES],
                        _ => &[1u8; CHUNK_BYTES + 1],
                    };
                    s.write_all(&(first.len() as u32).to_le_bytes()).await?;
                    s.write_all(first).await?;
                    let truncated = &served[CHUNK_BYTES..served.len() - 1];
                    s.write_all(&(truncated.len() as u32).to_le_bytes()).await?;
                    s.write_all(truncated).await?;
                    s.close().await
                }
                .await;
            }
        });
        let peer = holder.peer_id();
        let mut dst = Vec::new();
        let bad = fetch_chunks(&fetcher, peer, &id, &m, &[0, 1], &mut dst)
            .await
            .expect("a truncated chunk is not an error yet");
        assert_eq!(bad, [1]);
        assert_eq!(dst[..CHUNK_BYTES], blob[..CHUNK_BYTES]);
        assert_eq!(dst.len(), blob.len());

        let e = refused(&fetcher, peer, &id, &m, &[0, 1]).await;
        assert!(e.contains("chunks are at most"), "{e}");

        let e = refused(&fetcher, peer, &id, &m, &[0, 1]).await;
        assert!(
            e.contains("cannot serve blob") && e.contains("no such blob here"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn requests_round_trip_and_malformed_ones_are_named() {
        let req = encode_request("abc", &[0, 2, 7]);
        let got = read_request(&mut &req[..]).await.expect("valid");
        assert_eq!(got, ("abc".to_string(), vec![0, 2, 7]));

        let mut wrong_version = req.clone();
        wrong_version[0] = 9;
        let e = read_request(&mut &wrong_version[..]).await.unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");

        let mut too_many = encode_request("abc", &[]);
        let n = too_many.len();
        too_many[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read_request(&mut &too_many[..]).await.unwrap_err();
        assert!(e.to_string().contains("chunks asked for"), "{e}");

        let e = read_request(&mut &req[..req.len() - 1]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);

        // Each chunk once, in increasing order: a repeated index would multiply the answer.
        for chunks in [&[3, 3][..], &[0, 5, 2][..]] {
            let req = encode_request("abc", chunks);
            let e = read_request(&mut &req[..]).await.unwrap_err();
            assert!(e.to_string().contains("increasing order, each once"), "{e}");
        }
    }

    proptest::proptest! {
        /// Whatever a peer asks for on a blob stream, reading it is a request or an error.
        #[test]
        fn any_bytes_read_as_a_request_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let _ = futures::executor::block_on(read_request(&mut &bytes[..]));
        }
    }
}
