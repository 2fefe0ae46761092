//! The TLS upgrade over real sockets on 127.0.0.1, and whole swarms with and without it.

use super::*;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::tcp::tokio::TcpStream;
use rustls::CipherSuite;

type Upgraded = (PeerId, TlsStream<TcpStream>);

/// One TLS upgrade over a real socket on 127.0.0.1: `client` dials, `server` accepts.
async fn handshake(
    client: Tls,
    server: Tls,
) -> (Result<Upgraded, TlsError>, Result<Upgraded, TlsError>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        server.upgrade_inbound(TcpStream(socket), PROTOCOL).await
    });
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let dialled = client.upgrade_outbound(TcpStream(socket), PROTOCOL).await;
    (dialled, accept.await.unwrap())
}

fn suite(up: &Upgraded) -> CipherSuite {
    up.1.get_ref().1.negotiated_cipher_suite().unwrap().suite()
}

#[tokio::test]
async fn peers_learn_each_others_id_and_talk_over_the_cipher_this_cpu_is_fast_at() {
    let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (dialled, accepted) =
        handshake(Tls::new(&a, true).unwrap(), Tls::new(&b, true).unwrap()).await;
    let (mut dialled, mut accepted) = (dialled.unwrap(), accepted.unwrap());
    assert_eq!(dialled.0, b.public().to_peer_id());
    assert_eq!(accepted.0, a.public().to_peer_id());
    let expected = if aes_is_fast() {
        TLS13_AES_128_GCM_SHA256.suite()
    } else {
        TLS13_CHACHA20_POLY1305_SHA256.suite()
    };
    assert_eq!(suite(&dialled), expected, "{}", preferred_cipher());
    assert_eq!(dialled.1.get_ref().1.alpn_protocol(), Some(ALPN));
    let message = vec![7u8; 100_000];
    dialled.1.write_all(&message).await.unwrap();
    dialled.1.flush().await.unwrap();
    let mut got = vec![0u8; message.len()];
    accepted.1.read_exact(&mut got).await.unwrap();
    assert_eq!(got, message);
}

#[tokio::test]
async fn a_node_without_aes_instructions_makes_the_pair_use_chacha20() {
    let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    for (client_aes, server_aes, expected) in [
        (true, true, TLS13_AES_128_GCM_SHA256.suite()),
        (true, false, TLS13_CHACHA20_POLY1305_SHA256.suite()),
        (false, true, TLS13_CHACHA20_POLY1305_SHA256.suite()),
    ] {
        let (dialled, accepted) = handshake(
            Tls::with_cipher_order(&a, true, client_aes).unwrap(),
            Tls::with_cipher_order(&b, true, server_aes).unwrap(),
        )
        .await;
        let (dialled, accepted) = (dialled.unwrap(), accepted.unwrap());
        assert_eq!(
            suite(&dialled),
            expected,
            "client aes {client_aes}, server aes {server_aes}"
        );
        assert_eq!(suite(&accepted), expected);
    }
}

/// A rustls config on the other end that presents a plain self-signed certificate (no
/// libp2p extension) and accepts anything: what a careless or hostile peer would do.
fn plain_certificate() -> (
    CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["peer".into()]).unwrap();
    (
        cert.cert.der().clone(),
        rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()).into(),
    )
}

#[tokio::test]
async fn a_certificate_without_the_libp2p_extension_is_refused_on_both_sides() {
    let key = Keypair::generate_ed25519();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    // A plain client dials our node: our server refuses its certificate.
    let (cert, private_key) = plain_certificate();
    let mut plain = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerCertificate))
        .with_client_auth_cert(vec![cert], private_key)
        .unwrap();
    plain.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = Tls::new(&key, true).unwrap();
    client.client = Arc::new(plain);
    let (_, accepted) = handshake(client, Tls::new(&key, true).unwrap()).await;
    let Err(err) = accepted else {
        panic!("our server accepted a plain certificate")
    };
    let err = err.to_string();
    assert!(
        err.contains("TLS handshake") && err.contains("certificate"),
        "{err}"
    );

    // Our node dials a plain server: our client refuses its certificate.
    let (cert, private_key) = plain_certificate();
    let mut plain = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(PeerCertificate))
        .with_single_cert(vec![cert], private_key)
        .unwrap();
    plain.alpn_protocols = vec![ALPN.to_vec()];
    let mut server = Tls::new(&key, true).unwrap();
    server.server = Arc::new(plain);
    let (dialled, _) = handshake(Tls::new(&key, true).unwrap(), server).await;
    let Err(err) = dialled else {
        panic!("our client accepted a plain certificate")
    };
    let err = err.to_string();
    assert!(
        err.contains("TLS handshake") && err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn a_node_that_does_not_offer_tls_names_no_protocol() {
    let key = Keypair::generate_ed25519();
    assert_eq!(
        Tls::new(&key, true)
            .unwrap()
            .protocol_info()
            .collect::<Vec<_>>(),
        [PROTOCOL]
    );
    assert!(Tls::new(&key, false)
        .unwrap()
        .protocol_info()
        .next()
        .is_none());
}

/// Over whole swarms: a node that offers only noise and one that offers TLS first still
/// connect (over noise) and exchange status heartbeats.
#[tokio::test]
async fn a_noise_only_node_and_a_tls_node_still_see_each_other() {
    use crate::{NetConfig, NetEvent, Network, NodeStatus};
    let status = || NodeStatus::offering(crate::Tier::Server, Default::default(), 1000, 1024, 0);
    let config = |tls, bootstrap: Vec<libp2p::Multiaddr>| NetConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        bootstrap,
        heartbeat: std::time::Duration::from_millis(100),
        mdns: false,
        tls,
        keypair: None,
        gate: None,
        max_connections: crate::MAX_CONNECTIONS,
    };
    let (tls_node, mut tls_events) = Network::start(config(true, vec![]), status()).unwrap();
    let addr = loop {
        if let Some(NetEvent::Listening(a)) = tls_events.recv().await {
            break a;
        }
    };
    let (_noise_node, mut noise_events) =
        Network::start(config(false, vec![addr]), status()).unwrap();
    loop {
        match noise_events.recv().await {
            Some(NetEvent::PeerStatus(peer, _)) if peer == tls_node.peer_id() => break,
            Some(_) => {}
            None => panic!("the noise-only node's network stopped"),
        }
    }
}
