//! The one owner of the `Swarm`: a task that selects over swarm events, a heartbeat timer and
//! a command channel. A closed command channel means shut down.

use crate::admit::{Admit, Gate};
use crate::behaviour::{Behaviour, BehaviourEvent, STATUS_TOPIC};
use crate::secure::Tls;
use crate::status::NodeStatus;
use crate::wire::Frame;
use crate::NetError;
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    gossipsub, identify, kad, mdns, noise, tcp, yamux, Multiaddr, PeerId, Stream, StreamProtocol,
    Swarm,
};
use libp2p_stream::IncomingStreams;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A peer not heard from in this many heartbeats is forgotten (it is back with its next
/// status).
pub const PRUNE_AFTER_HEARTBEATS: u32 = 30;

/// How a node joins the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Address to listen on (`/ip4/127.0.0.1/tcp/0` picks a free port).
    pub listen: Multiaddr,
    /// Peers to dial at start (their addresses must end in `/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// How often the node gossips its status.
    pub heartbeat: Duration,
    /// Discover peers with mDNS (LANs; it never sees peers that listen only on loopback).
    pub mdns: bool,
    /// Offer TLS 1.3 before noise ([`crate::secure`]); off: noise only.
    pub tls: bool,
    /// The node's identity (none: a fresh one).
    pub keypair: Option<libp2p::identity::Keypair>,
    /// Whom this node admits ([`crate::admit`]); `None` is an open node, which admits anyone
    /// and is admitted by no closed one.
    pub gate: Option<Gate>,
    /// Established connections this node keeps at most ([`crate::MAX_CONNECTIONS`] is the
    /// usual figure); further ones are closed as they complete.
    pub max_connections: u32,
}

/// What the network reports.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// Listening on this address (with `/p2p/<own id>` appended).
    Listening(Multiaddr),
    /// A status heartbeat from a peer (the first one from a peer means it joined).
    PeerStatus(PeerId, NodeStatus),
    /// A peer was not heard from in [`PRUNE_AFTER_HEARTBEATS`] heartbeats and is forgotten.
    PeerGone(PeerId),
    /// A peer sent something that is not a valid status.
    BadStatus(PeerId, String),
    /// A request from a peer; answer it with [`Client::reply`] and this id.
    Request {
        /// Who asked.
        peer: PeerId,
        /// Answer with this id.
        id: u64,
        /// The request.
        frame: Frame,
    },
}

/// A peer as this node knows it.
#[derive(Debug, Clone)]
pub struct PeerView {
    /// Its id.
    pub peer: PeerId,
    /// Its latest status.
    pub status: NodeStatus,
    /// How long ago it arrived.
    pub age: Duration,
    /// Round-trip time measured by ping, if any yet.
    pub rtt: Option<Duration>,
}

enum Command {
    Peers(oneshot::Sender<Vec<PeerView>>),
    SetStatus(Box<NodeStatus>),
    Request(PeerId, Frame, oneshot::Sender<Result<Frame, NetError>>),
    Reply(u64, Frame),
    /// Tests: dial `peer` at `addr` even when connected, and answer with the outcome.
    #[cfg(test)]
    DialAgain(PeerId, Multiaddr, oneshot::Sender<Result<u32, String>>),
    Stop,
}

/// Handle to the event loop. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    streams: libp2p_stream::Control,
}

impl Client {
    /// This node's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Opens a raw stream to `peer` for `protocol`: for bulk transfers, which then need no
    /// per-message framing or buffering (a blob's chunks go straight into place).
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Stream, NetError> {
        self.streams
            .clone()
            .open_stream(peer, protocol.clone())
            .await
            .map_err(|e| NetError::Request(format!("opening a {protocol} stream to {peer}: {e}")))
    }

    /// The raw streams peers open to this node for `protocol`; one listener per protocol.
    pub fn accept(&self, protocol: StreamProtocol) -> Result<IncomingStreams, NetError> {
        self.streams
            .clone()
            .accept(protocol.clone())
            .map_err(|e| NetError::Setup(format!("accepting {protocol} streams: {e}")))
    }

    /// The peers whose status this node has received.
    pub async fn peers(&self) -> Result<Vec<PeerView>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Peers(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Replaces the status gossiped from the next heartbeat on.
    pub async fn set_status(&self, status: NodeStatus) -> Result<(), NetError> {
        self.commands
            .send(Command::SetStatus(Box::new(status)))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Sends a request to `peer` and waits for its answer.
    pub async fn request(&self, peer: PeerId, frame: Frame) -> Result<Frame, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(peer, frame, tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Stops the event loop: connections close, the event stream ends, and every clone of
    /// this client answers [`NetError::Stopped`] from then on. (Dropping every client stops
    /// it too, but a task serving the event stream usually holds one.)
    pub async fn stop(&self) {
        let _ = self.commands.send(Command::Stop).await;
    }

    /// Tests: dials `peer` at `addr` once more, even when connected; answers with the
    /// connections now established with it, or why the dial failed.
    #[cfg(test)]
    pub(crate) async fn dial_again(&self, peer: PeerId, addr: Multiaddr) -> Result<u32, String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::DialAgain(peer, addr, tx))
            .await
            .map_err(|_| "stopped".to_string())?;
        rx.await.map_err(|_| "stopped".to_string())?
    }

    /// Answers the inbound request `id` (from [`NetEvent::Request`]).
    pub async fn reply(&self, id: u64, frame: Frame) -> Result<(), NetError> {
        self.commands
            .send(Command::Reply(id, frame))
            .await
            .map_err(|_| NetError::Stopped)
    }
}

/// Starts the network: returns the client, the event stream and the event loop to spawn.
pub struct Network;

impl Network {
    /// Builds the swarm and spawns its event loop on the current tokio runtime.
    pub fn start(
        config: NetConfig,
        status: NodeStatus,
    ) -> Result<(Client, mpsc::Receiver<NetEvent>), NetError> {
        let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
        let heartbeat = config.heartbeat;
        let key = config
            .keypair
            .clone()
            .unwrap_or_else(libp2p::identity::Keypair::generate_ed25519);
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                (
                    |key: &libp2p::identity::Keypair| {
                        Tls::new(key, config.tls).map(|t| Admit::new(t, config.gate.clone()))
                    },
                    |key: &libp2p::identity::Keypair| {
                        noise::Config::new(key).map(|n| Admit::new(n, config.gate.clone()))
                    },
                ),
                yamux::Config::default,
            )
            .map_err(|e| setup(&e))?
            .with_behaviour(|key| {
                Behaviour::new(key, heartbeat, config.mdns, config.max_connections)
                    .map_err(|e| e.into())
            })
            .map_err(|e| setup(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        match &config.gate {
            Some(g) => tracing::info!(
                cluster = g.cluster(),
                operators = g.trusted().keys().len(),
                "closed: only members of the cluster are admitted"
            ),
            None => tracing::info!("open: any process that reaches this node's port may join"),
        }
        if config.tls {
            tracing::info!(
                cipher = crate::secure::preferred_cipher(),
                "connections: TLS 1.3 offered first, noise second"
            );
        } else {
            tracing::info!("connections: noise only");
        }
        let topic = gossipsub::IdentTopic::new(STATUS_TOPIC);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| setup(&e))?;
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| setup(&e))?;
        for addr in &config.bootstrap {
            let peer = addr.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            });
            match peer {
                Some(peer) => {
                    swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                    dial(&mut swarm, peer, vec![addr.clone()]);
                }
                None => {
                    return Err(NetError::Setup(format!(
                        "bootstrap address {addr} lacks /p2p/<peer id>"
                    )))
                }
            }
        }
        let peer_id = *swarm.local_peer_id();
        let streams = swarm.behaviour().streams.new_control();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(256);
        let event_loop = EventLoop {
            swarm,
            topic,
            status,
            peers: HashMap::new(),
            rtts: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 0,
            commands: cmd_rx,
            events: ev_tx,
            heartbeat,
            #[cfg(test)]
            dials: HashMap::new(),
        };
        tokio::spawn(event_loop.run(!config.bootstrap.is_empty()));
        Ok((
            Client {
                commands: cmd_tx,
                peer_id,
                streams,
            },
            ev_rx,
        ))
    }
}

fn dial(swarm: &mut Swarm<Behaviour>, peer: PeerId, addrs: Vec<Multiaddr>) {
    // One dial per peer at a time, on a fresh port: simultaneous dials after discovery broke
    // the noise handshake on both sides (ENVIRONMENT.md).
    let opts = DialOpts::peer_id(peer)
        .addresses(addrs)
        .condition(PeerCondition::DisconnectedAndNotDialing)
        .allocate_new_port()
        .build();
    if let Err(e) = swarm.dial(opts) {
        tracing::debug!(%peer, "dial: {e}");
    }
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    topic: gossipsub::IdentTopic,
    status: NodeStatus,
    peers: HashMap<PeerId, (NodeStatus, Instant)>,
    rtts: HashMap<PeerId, Duration>,
    outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<Frame, NetError>>>,
    inbound: HashMap<u64, ResponseChannel<Frame>>,
    next_inbound: u64,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    heartbeat: Duration,
    /// Tests: dials waiting for their outcome.
    #[cfg(test)]
    dials: HashMap<libp2p::swarm::ConnectionId, oneshot::Sender<Result<u32, String>>>,
}

impl EventLoop {
    async fn run(mut self, bootstrap: bool) {
        let mut tick = tokio::time::interval(self.heartbeat);
        if bootstrap {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.publish_status();
                    self.prune().await;
                }
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Stop) | None => break,
                    Some(c) => self.command(c),
                },
                event = self.swarm.select_next_some() => self.swarm_event(event).await,
            }
        }
    }

    /// Forgets peers not heard from in [`PRUNE_AFTER_HEARTBEATS`] heartbeats.
    async fn prune(&mut self) {
        let limit = self.heartbeat * PRUNE_AFTER_HEARTBEATS;
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= limit)
            .map(|(p, _)| *p)
            .collect();
        for peer in gone {
            tracing::info!(%peer, "no status in {limit:?}: forgotten");
            self.peers.remove(&peer);
            self.rtts.remove(&peer);
            let _ = self.events.send(NetEvent::PeerGone(peer)).await;
        }
    }

    fn publish_status(&mut self) {
        self.status.sent_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let bytes = serde_json::to_vec(&self.status).expect("a status serialises");
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(_) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => tracing::debug!("status publish: {e}"),
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Peers(reply) => {
                let now = Instant::now();
                let mut v: Vec<PeerView> = self
                    .peers
                    .iter()
                    .map(|(p, (s, at))| PeerView {
                        peer: *p,
                        status: s.clone(),
                        age: now - *at,
                        rtt: self.rtts.get(p).copied(),
                    })
                    .collect();
                v.sort_by_key(|p| p.peer.to_string());
                let _ = reply.send(v);
            }
            Command::SetStatus(s) => self.status = *s,
            Command::Request(peer, frame, reply) => {
                if peer == *self.swarm.local_peer_id() {
                    let _ = reply.send(Err(NetError::Request(
                        "a node does not send requests to itself".into(),
                    )));
                    return;
                }
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, frame);
                self.outbound.insert(id, reply);
            }
            Command::Reply(id, frame) => {
                if let Some(ch) = self.inbound.remove(&id) {
                    if self
                        .swarm
                        .behaviour_mut()
                        .rpc
                        .send_response(ch, frame)
                        .is_err()
                    {
                        tracing::debug!(id, "reply: the requester is gone");
                    }
                }
            }
            #[cfg(test)]
            Command::DialAgain(peer, addr, reply) => {
                let opts = DialOpts::peer_id(peer)
                    .addresses(vec![addr])
                    .condition(PeerCondition::Always)
                    .allocate_new_port()
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Command::Stop => unreachable!("handled by the loop"),
        }
    }

    async fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            #[cfg(test)]
            SwarmEvent::ConnectionEstablished {
                connection_id,
                num_established,
                ..
            } if self.dials.contains_key(&connection_id) => {
                if let Some(tx) = self.dials.remove(&connection_id) {
                    let _ = tx.send(Ok(num_established.get()));
                }
            }
            #[cfg(test)]
            SwarmEvent::OutgoingConnectionError {
                connection_id: id,
                error,
                ..
            } if self.dials.contains_key(&id) => {
                if let Some(tx) = self.dials.remove(&id) {
                    let _ = tx.send(Err(format!("{error:?}")));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .with_p2p(*self.swarm.local_peer_id())
                    .unwrap_or_else(|a| a);
                let _ = self.events.send(NetEvent::Listening(full)).await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) if !self.swarm.is_connected(&peer) && peer != *self.swarm.local_peer_id() => {
                dial(&mut self.swarm, peer, addresses.into_vec());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    dial(&mut self.swarm, peer, vec![addr]);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => {
                self.rtts.insert(peer, rtt);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                message,
                ..
            })) => {
                let Some(from) = message.source else { return };
                // Only from a peer this node holds an (admitted) connection to: a status that
                // a member relays for some other key is not taken.
                if !self.swarm.is_connected(&from) {
                    tracing::debug!(%from, "status from a peer not connected here: dropped");
                    return;
                }
                match NodeStatus::decode(&message.data) {
                    Ok(status) => {
                        self.peers.insert(from, (status.clone(), Instant::now()));
                        let _ = self.events.send(NetEvent::PeerStatus(from, status)).await;
                    }
                    Err(e) => {
                        let _ = self.events.send(NetEvent::BadStatus(from, e)).await;
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(ev)) => self.rpc_event(ev).await,
            _ => {}
        }
    }

    async fn rpc_event(&mut self, ev: request_response::Event<Frame, Frame>) {
        use request_response::{Event, Message};
        match ev {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                self.next_inbound += 1;
                let id = self.next_inbound;
                self.inbound.insert(id, channel);
                let _ = self
                    .events
                    .send(NetEvent::Request {
                        peer,
                        id,
                        frame: request,
                    })
                    .await;
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(tx) = self.outbound.remove(&request_id) {
                    let _ = tx.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(tx) = self.outbound.remove(&request_id) {
                    let _ = tx.send(Err(NetError::Request(format!(
                        "request to {peer}: {error}"
                    ))));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound request failed: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
