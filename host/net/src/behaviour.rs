//! The composed libp2p behaviour.

use crate::wire::{FrameCodec, RPC_PROTOCOL};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, identity, kad, mdns, ping, request_response};
use std::time::Duration;

/// Protocol version announced by identify.
pub const PROTOCOL_VERSION: &str = "/infra/0.1.0";
/// Gossipsub topic of node status heartbeats.
pub const STATUS_TOPIC: &str = "infra/status/1";

/// Connections this node keeps with one peer at most (a simultaneous dial makes two).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Established connections a node keeps in all, unless configured otherwise.
pub const MAX_CONNECTIONS: u32 = 512;
/// Incoming connections still in their handshake at once.
pub const MAX_PENDING_INCOMING: u32 = 64;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub rpc: request_response::Behaviour<FrameCodec>,
    pub streams: libp2p_stream::Behaviour,
}

impl Behaviour {
    pub fn new(
        key: &identity::Keypair,
        heartbeat: Duration,
        use_mdns: bool,
        max_connections: u32,
    ) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let mut kad = kad::Behaviour::new(peer_id, kad::store::MemoryStore::new(peer_id));
        // On loopback Kademlia would stay a client; every infra node serves the DHT.
        kad.set_mode(Some(kad::Mode::Server));
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(heartbeat.min(Duration::from_secs(1)))
            .max_transmit_size(crate::status::MAX_STATUS_BYTES)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .build()
            .map_err(|e| e.to_string())?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )?;
        let mdns = if use_mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let limits = ConnectionLimits::default()
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established_incoming(Some(max_connections))
            .with_max_established(Some(max_connections))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER));
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            identify: identify::Behaviour::new(identify::Config::new(
                PROTOCOL_VERSION.into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            kad,
            gossipsub,
            mdns: mdns.into(),
            rpc: request_response::Behaviour::new(
                [(RPC_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(crate::wire::RPC_TIMEOUT)
                    .with_max_concurrent_streams(256),
            ),
            streams: libp2p_stream::Behaviour::new(),
        })
    }
}
