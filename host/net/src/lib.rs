//! The peer network of infra (first slice of the cluster milestone): libp2p with tcp, TLS 1.3
//! offered before noise, and yamux; identify, ping, Kademlia in server mode seeded from
//! bootstrap addresses, mDNS on LANs, and gossipsub heartbeats carrying each node's status.
//!
//! Layout:
//! - [`admit`]: membership, checked right after the security handshake ([`admit::Gate`]);
//!   connection limits per peer and in total live in the behaviour;
//! - [`wire`]: the `/infra/rpc/1` request-response frames (header + raw body, with limits);
//! - [`status`]: [`NodeStatus`], what a node gossips about itself;
//! - [`secure`]: the TLS 1.3 upgrade (libp2p's TLS handshake, AES-GCM first on CPUs with AES
//!   instructions); noise stays the fallback;
//! - `behaviour.rs`: the composed `NetworkBehaviour`, with raw streams ([`Client::open_stream`],
//!   [`Client::accept`]) for bulk transfers beside request-response;
//! - [`Network`] (`event_loop.rs`): the one task that owns the `Swarm`; everything else talks
//!   to it through a cloneable [`Client`] and receives [`NetEvent`]s.

pub mod admit;
mod behaviour;
mod event_loop;
pub mod secure;
pub mod status;
pub mod wire;

pub use admit::Gate;
pub use behaviour::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER};
pub use event_loop::{Client, NetConfig, NetEvent, Network, PeerView, PRUNE_AFTER_HEARTBEATS};
pub use libp2p::identity::Keypair;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
pub use libp2p_stream::IncomingStreams;

/// Loads the node's identity from `path`, or creates it there (an ed25519 key, protobuf-
/// encoded), so a host keeps its peer id across restarts.
pub fn load_or_create_identity(path: &std::path::Path) -> Result<Keypair, NetError> {
    let err = |e: &dyn std::fmt::Display| NetError::Setup(format!("{}: {e}", path.display()));
    if let Ok(bytes) = std::fs::read(path) {
        return Keypair::from_protobuf_encoding(&bytes).map_err(|e| err(&e));
    }
    let key = Keypair::generate_ed25519();
    let bytes = key.to_protobuf_encoding().map_err(|e| err(&e))?;
    // Created owner-only from its first byte.
    infra_trust::write_secret(path, bytes).map_err(|e| err(&e))?;
    Ok(key)
}
pub use status::{NodeStatus, Tier};
pub use wire::Frame;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Setting up the transport or a behaviour failed.
    #[error("network set-up: {0}")]
    Setup(String),
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Stopped,
    /// A request to a peer failed (no answer, connection closed, timeout).
    #[error("{0}")]
    Request(String),
}
