//! Real `infra-host` processes on 127.0.0.1 (ephemeral ports) find each other through one
//! bootstrap address and receive each other's status heartbeats; their gRPC control plane
//! lists the peers and refuses calls without the token. No sleeps: the test waits on the
//! events the processes print, with an overall guard against hanging.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123";

struct Host {
    child: Child,
    peer: String,
    grpc: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a host; its stdout lines arrive on `lines` tagged with `index`.
fn start(
    index: usize,
    bootstrap: Option<&str>,
    lines: &mpsc::Sender<(usize, serde_json::Value)>,
) -> Host {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-host"));
    cmd.args([
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--heartbeat-ms",
        "200",
        "--grpc",
        "127.0.0.1:0",
        "--token",
        TOKEN,
        "--tier",
        if index == 2 { "edge" } else { "server" },
    ]);
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn infra-host");
    let stdout = child.stdout.take().unwrap();
    let tx = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send((index, v)).is_err() {
                    break;
                }
            }
        }
    });
    Host {
        child,
        peer: String::new(),
        grpc: String::new(),
    }
}

fn next(
    rx: &mpsc::Receiver<(usize, serde_json::Value)>,
    deadline: Instant,
) -> (usize, serde_json::Value) {
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left)
        .expect("hosts stopped reporting before the deadline")
}

#[test]
fn three_peers_see_each_other_through_one_bootstrap_address() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (tx, rx) = mpsc::channel();
    let mut hosts = vec![start(0, None, &tx)];
    // Wait for the first host's id and address.
    let mut addr = None;
    while addr.is_none() || hosts[0].peer.is_empty() {
        let (i, v) = next(&rx, deadline);
        assert_eq!(i, 0);
        match v["event"].as_str() {
            Some("started") => hosts[0].peer = v["peer"].as_str().unwrap().to_string(),
            Some("listening") => addr = Some(v["addr"].as_str().unwrap().to_string()),
            Some("grpc") => hosts[0].grpc = v["addr"].as_str().unwrap().to_string(),
            _ => {}
        }
    }
    let addr = addr.unwrap();
    assert!(
        addr.starts_with("/ip4/127.0.0.1/tcp/") && addr.contains("/p2p/"),
        "{addr}"
    );
    hosts.push(start(1, Some(&addr), &tx));
    hosts.push(start(2, Some(&addr), &tx));

    let mut seen: HashMap<usize, BTreeSet<String>> = HashMap::new();
    let mut tiers: HashMap<String, String> = HashMap::new();
    loop {
        let ids: Vec<String> = hosts.iter().map(|h| h.peer.clone()).collect();
        let done = ids.iter().all(|id| !id.is_empty())
            && (0..3).all(|i| {
                let others: BTreeSet<String> = ids
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| p.clone())
                    .collect();
                seen.get(&i).is_some_and(|s| others.is_subset(s))
            });
        if done {
            break;
        }
        let (i, v) = next(&rx, deadline);
        match v["event"].as_str() {
            Some("started") => hosts[i].peer = v["peer"].as_str().unwrap().to_string(),
            Some("grpc") => hosts[i].grpc = v["addr"].as_str().unwrap().to_string(),
            Some("peer") => {
                let p = v["peer"].as_str().unwrap().to_string();
                tiers.insert(p.clone(), v["tier"].as_str().unwrap().to_string());
                seen.entry(i).or_default().insert(p);
            }
            Some("bad-status") => panic!("{v}"),
            _ => {}
        }
    }
    assert_eq!(tiers[&hosts[2].peer], "edge", "statuses carry the tier");
    assert_eq!(tiers[&hosts[0].peer], "server");

    // The control plane of the edge host lists the two others; without the token, nothing.
    while hosts[2].grpc.is_empty() {
        let (i, v) = next(&rx, deadline);
        if v["event"] == "grpc" {
            hosts[i].grpc = v["addr"].as_str().unwrap().to_string();
        }
    }
    let url = format!("http://{}", hosts[2].grpc);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
        assert_eq!(resp.self_peer_id, hosts[2].peer);
        let listed: BTreeSet<String> = resp.peers.iter().map(|p| p.peer_id.clone()).collect();
        let expected: BTreeSet<String> = [hosts[0].peer.clone(), hosts[1].peer.clone()].into();
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

/// A request carrying `authorization: <auth>`.
fn authed<T>(msg: T, auth: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", auth.parse().unwrap());
    r
}
