//! Real `infra-host` processes on 127.0.0.1 (ephemeral ports) find each other through one
//! bootstrap address and receive each other's status heartbeats; their gRPC control plane
//! lists the peers and refuses calls without the token. The second host secures its
//! connections with noise only (`--no-tls`), the others offer TLS first: a mixed cluster.
//! No sleeps: the test waits on the events the processes print, with an overall guard
//! against hanging.

mod common;

use common::{authed, Cluster, TOKEN};
use std::collections::BTreeSet;

#[test]
fn three_peers_see_each_other_through_one_bootstrap_address() {
    let c = Cluster::start(3, |i| {
        let mut args = vec![
            "--tier".into(),
            if i == 2 { "edge" } else { "server" }.into(),
        ];
        if i == 1 {
            args.push("--no-tls".into());
        }
        args
    });
    let addr = &c.hosts[0].addr;
    assert!(
        addr.starts_with("/ip4/127.0.0.1/tcp/") && addr.contains("/p2p/"),
        "{addr}"
    );
    assert_eq!(c.tiers[&c.hosts[2].peer], "edge", "statuses carry the tier");
    assert_eq!(c.tiers[&c.hosts[0].peer], "server");

    // The control plane of the edge host lists the two others; without the token, nothing.
    let url = c.url(2);
    common::rt().block_on(async {
        use infra_api::pb::control_client::ControlClient;
        use infra_api::pb::ListPeersRequest;
        let channel = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();

        let refused = ControlClient::new(channel.clone())
            .list_peers(ListPeersRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let refused = ControlClient::new(channel.clone())
            .list_peers(authed(ListPeersRequest {}, "Bearer not-the-token"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let refused = ControlClient::new(channel.clone())
            .submit_job(infra_api::pb::SubmitJobRequest::default())
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::Unauthenticated,
            "jobs are guarded too"
        );
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let refused = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::Unauthenticated,
            "health is guarded too"
        );

        let resp = ControlClient::new(channel.clone())
            .list_peers(authed(ListPeersRequest {}, &infra_api::bearer(TOKEN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.self_peer_id, c.hosts[2].peer);
        let listed: BTreeSet<String> = resp.peers.iter().map(|p| p.peer_id.clone()).collect();
        let expected: BTreeSet<String> = [c.hosts[0].peer.clone(), c.hosts[1].peer.clone()].into();
        assert_eq!(listed, expected);
        let check = authed(
            tonic_health::pb::HealthCheckRequest::default(),
            &infra_api::bearer(TOKEN),
        );
        let serving = health.check(check).await.unwrap().into_inner();
        assert_eq!(
            serving.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    });
}
