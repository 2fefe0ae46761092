//! Whole swarms on 127.0.0.1: members connect and see each other; a stranger, a member of
//! another cluster and a peer off the allowlist never complete a connection.

use super::Gate;
use crate::{NetConfig, NetEvent, Network, NodeStatus};
use infra_trust::OperatorKey;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

fn status() -> NodeStatus {
    NodeStatus::offering(crate::Tier::Server, Default::default(), 1000, 1024, 0)
}

fn start(
    key: Keypair,
    gate: Option<Gate>,
    boot: Option<&Multiaddr>,
) -> (crate::Client, Receiver<NetEvent>) {
    start_with(key, gate, boot, crate::MAX_CONNECTIONS)
}

fn start_with(
    key: Keypair,
    gate: Option<Gate>,
    boot: Option<&Multiaddr>,
    max_connections: u32,
) -> (crate::Client, Receiver<NetEvent>) {
    Network::start(
        NetConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            bootstrap: boot.into_iter().cloned().collect(),
            heartbeat: Duration::from_millis(50),
            mdns: false,
            tls: true,
            keypair: Some(key),
            gate,
            max_connections,
        },
        status(),
    )
    .unwrap()
}

async fn listening(events: &mut Receiver<NetEvent>) -> Multiaddr {
    loop {
        if let Some(NetEvent::Listening(a)) = events.recv().await {
            return a;
        }
    }
}

/// Waits for `who`'s status on `events`.
async fn sees(events: &mut Receiver<NetEvent>, who: PeerId) {
    loop {
        match events.recv().await {
            Some(NetEvent::PeerStatus(p, _)) if p == who => return,
            Some(_) => {}
            None => panic!("network stopped"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_cluster_complete_a_connection() {
    let op = OperatorKey::generate().unwrap();
    let member = |cluster: &str, op: &OperatorKey| {
        let key = Keypair::generate_ed25519();
        let gate = Gate::issue(op, cluster, &key).unwrap();
        (key, gate)
    };
    let (ka, ga) = member("lab", &op);
    let (a, mut a_events) = start(ka, Some(ga), None);
    let addr = listening(&mut a_events).await;

    // Outsiders first: no credential at all, another operator's, another cluster's.
    let other_op = OperatorKey::generate().unwrap();
    let (k1, g1) = member("lab", &other_op);
    let (k2, g2) = member("prod", &op);
    let outsiders = [
        start(Keypair::generate_ed25519(), None, Some(&addr)),
        start(k1, Some(g1), Some(&addr)),
        start(k2, Some(g2), Some(&addr)),
    ];
    let outsider_ids: Vec<PeerId> = outsiders.iter().map(|(c, _)| c.peer_id()).collect();

    // A member joins and both see each other's status.
    let (kb, gb) = member("lab", &op);
    let (b, mut b_events) = start(kb, Some(gb), Some(&addr));
    sees(&mut b_events, a.peer_id()).await;
    sees(&mut a_events, b.peer_id()).await;
    // From here on the member answers every request it gets, so an outsider's request could
    // only fail for want of a connection.
    let answering = a.clone();
    tokio::spawn(async move {
        while let Some(ev) = a_events.recv().await {
            if let NetEvent::Request { id, frame, .. } = ev {
                let _ = answering.reply(id, frame).await;
            }
        }
    });

    // The member can be asked (a request from the other member comes back)...
    let echo = b
        .request(a.peer_id(), crate::Frame::head(b"ping".to_vec()))
        .await
        .unwrap();
    assert_eq!(echo.head, b"ping");
    // ...but no outsider's request reaches it, and none of them is its peer or has it as one.
    let peers: Vec<PeerId> = a.peers().await.unwrap().iter().map(|p| p.peer).collect();
    assert_eq!(peers, vec![b.peer_id()], "outsiders: {outsider_ids:?}");
    for (c, _) in &outsiders {
        assert!(c.peers().await.unwrap().is_empty());
        let e = c
            .request(a.peer_id(), crate::Frame::head(b"ping".to_vec()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&a.peer_id().to_string()), "{e}");
        assert!(c.peers().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlist_admits_only_the_peers_it_names() {
    let op = OperatorKey::generate().unwrap();
    let (ka, kb, kc) = (
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
    );
    let own =
        infra_trust::Membership::issue(&op, "lab", &ka.public().to_peer_id().to_string()).unwrap();
    let allow = [kb.public().to_peer_id()].into_iter().collect();
    let ga = Gate::new(&own, Default::default(), Some(allow));
    let (a, mut a_events) = start(ka, Some(ga), None);
    let addr = listening(&mut a_events).await;
    let (c, _c_events) = start(
        kc.clone(),
        Some(Gate::issue(&op, "lab", &kc).unwrap()),
        Some(&addr),
    );
    let (b, mut b_events) = start(
        kb.clone(),
        Some(Gate::issue(&op, "lab", &kb).unwrap()),
        Some(&addr),
    );
    sees(&mut b_events, a.peer_id()).await;
    sees(&mut a_events, b.peer_id()).await;
    let peers: Vec<PeerId> = a.peers().await.unwrap().iter().map(|p| p.peer).collect();
    assert_eq!(peers, vec![b.peer_id()]);
    assert!(c
        .peers()
        .await
        .unwrap()
        .iter()
        .all(|p| p.peer != a.peer_id()));
}

/// Waits for `n` statuses from `who` on `events`, answering nothing else.
async fn heartbeats(events: &mut Receiver<NetEvent>, who: PeerId, n: usize) {
    for _ in 0..n {
        sees(events, who).await;
    }
}

fn allowing(op: &OperatorKey, key: &Keypair, allow: &[&Keypair]) -> Gate {
    let own =
        infra_trust::Membership::issue(op, "lab", &key.public().to_peer_id().to_string()).unwrap();
    let allow = allow.iter().map(|k| k.public().to_peer_id()).collect();
    Gate::new(&own, Default::default(), Some(allow))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_relayed_for_a_peer_not_connected_here_is_not_taken() {
    // A and C admit only B; B admits both. C's heartbeats reach A only through B.
    let op = OperatorKey::generate().unwrap();
    let (ka, kb, kc) = (
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
    );
    let (b, mut b_events) = start(
        kb.clone(),
        Some(Gate::issue(&op, "lab", &kb).unwrap()),
        None,
    );
    let addr = listening(&mut b_events).await;
    let (a, mut a_events) = start(ka.clone(), Some(allowing(&op, &ka, &[&kb])), Some(&addr));
    let (c, _c_events) = start(kc.clone(), Some(allowing(&op, &kc, &[&kb])), Some(&addr));
    sees(&mut b_events, a.peer_id()).await;
    sees(&mut b_events, c.peer_id()).await;
    // Twenty of B's heartbeats later C's own have long been relayed to A; none was taken.
    heartbeats(&mut a_events, b.peer_id(), 20).await;
    let peers: Vec<PeerId> = a.peers().await.unwrap().iter().map(|p| p.peer).collect();
    assert_eq!(peers, vec![b.peer_id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_not_heard_from_is_forgotten() {
    let op = OperatorKey::generate().unwrap();
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (a, mut a_events) = start(
        ka.clone(),
        Some(Gate::issue(&op, "lab", &ka).unwrap()),
        None,
    );
    let addr = listening(&mut a_events).await;
    let (b, _b_events) = start(
        kb.clone(),
        Some(Gate::issue(&op, "lab", &kb).unwrap()),
        Some(&addr),
    );
    sees(&mut a_events, b.peer_id()).await;
    b.stop().await;
    loop {
        match a_events.recv().await {
            Some(NetEvent::PeerGone(p)) if p == b.peer_id() => break,
            Some(_) => {}
            None => panic!("network stopped"),
        }
    }
    assert!(a.peers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused() {
    let op = OperatorKey::generate().unwrap();
    let (ka, kb, kc) = (
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
    );
    let (a, mut a_events) = start_with(
        ka.clone(),
        Some(Gate::issue(&op, "lab", &ka).unwrap()),
        None,
        1,
    );
    let addr = listening(&mut a_events).await;
    let (b, _b_events) = start(
        kb.clone(),
        Some(Gate::issue(&op, "lab", &kb).unwrap()),
        Some(&addr),
    );
    sees(&mut a_events, b.peer_id()).await;
    let (c, _c_events) = start(
        kc.clone(),
        Some(Gate::issue(&op, "lab", &kc).unwrap()),
        Some(&addr),
    );
    heartbeats(&mut a_events, b.peer_id(), 20).await;
    let peers: Vec<PeerId> = a.peers().await.unwrap().iter().map(|p| p.peer).collect();
    assert_eq!(peers, vec![b.peer_id()]);
    assert!(c
        .peers()
        .await
        .unwrap()
        .iter()
        .all(|p| p.peer != a.peer_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gets_at_most_two_connections() {
    let op = OperatorKey::generate().unwrap();
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (a, mut a_events) = start(
        ka.clone(),
        Some(Gate::issue(&op, "lab", &ka).unwrap()),
        None,
    );
    let addr = listening(&mut a_events).await;
    let (b, _b_events) = start(
        kb.clone(),
        Some(Gate::issue(&op, "lab", &kb).unwrap()),
        Some(&addr),
    );
    sees(&mut a_events, b.peer_id()).await;
    // The bootstrap connection is the first; a second is allowed, a third is refused.
    assert_eq!(
        b.dial_again(a.peer_id(), addr.clone()).await,
        Ok(crate::MAX_CONNECTIONS_PER_PEER)
    );
    let e = b.dial_again(a.peer_id(), addr.clone()).await.unwrap_err();
    assert!(
        e.to_lowercase().contains("limit") || e.contains("denied"),
        "{e}"
    );
}
