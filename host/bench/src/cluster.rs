//! The cluster, in one process over real libp2p on 127.0.0.1 (tcp + TLS 1.3 + yamux, the
//! default; the transfer also with noise):
//! - time until 8 peers have each other's status (heartbeat 100 ms);
//! - a 100 MB blob fetched chunk by chunk with checksums, against a plain TCP copy of the same
//!   bytes on loopback (the reference);
//! - the round overhead of a ~1M-parameter MLP: a coordinator and two workers, one task each
//!   per round; everything that is not local compute (weights down, updates up, scheduling,
//!   aggregation, evaluation) as a share of the round, next to its floor: the same bytes per
//!   round moved over plain TCP on loopback, in the same pattern; and a round's transfers
//!   alone over libp2p, with no training beside them, against plain TCP.

use crate::Row;
use infra_cluster::{ClusterNode, EventKind, JobEvent, NodeConfig};
use infra_net::{Client, Multiaddr, NetConfig, NetEvent, Network, NodeStatus};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn status(cpu_millis: u32) -> NodeStatus {
    NodeStatus::offering(
        infra_net::Tier::Server,
        BTreeMap::new(),
        cpu_millis,
        4096,
        0,
    )
}

/// The operator key of the benchmark's closed clusters.
fn operator() -> &'static infra_trust::OperatorKey {
    static KEY: std::sync::OnceLock<infra_trust::OperatorKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| infra_trust::OperatorKey::generate().expect("operator key"))
}

/// A node's network: `closed`, it is a member of cluster `bench` and admits only members.
fn config(
    bootstrap: Option<&Multiaddr>,
    heartbeat: Duration,
    tls: bool,
    closed: bool,
) -> NetConfig {
    let keypair = infra_net::Keypair::generate_ed25519();
    let gate = closed.then(|| infra_net::Gate::issue(operator(), "bench", &keypair).expect("gate"));
    NetConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("valid"),
        bootstrap: bootstrap.into_iter().cloned().collect(),
        heartbeat,
        mdns: false,
        tls,
        keypair: Some(keypair),
        gate,
        max_connections: infra_net::MAX_CONNECTIONS,
    }
}

/// TLS first (the default), or noise only with `--noise` (discovery and rounds; the transfer
/// always measures both).
fn tls_unless_noise_asked() -> bool {
    !std::env::args().any(|a| a == "--noise")
}

/// A network on 127.0.0.1 offering `cpu_millis` (joined through `boot`, if given), its events
/// and its address, once it listens.
async fn start_network(
    boot: Option<&Multiaddr>,
    heartbeat: Duration,
    tls: bool,
    closed: bool,
    cpu_millis: u32,
) -> (Client, tokio::sync::mpsc::Receiver<NetEvent>, Multiaddr) {
    let (client, mut events) =
        Network::start(config(boot, heartbeat, tls, closed), status(cpu_millis)).expect("network");
    loop {
        if let Some(NetEvent::Listening(a)) = events.recv().await {
            return (client, events, a);
        }
    }
}

/// Starts `n` cluster nodes joined through the first; returns them once all see each other.
async fn nodes(
    n: usize,
    heartbeat: Duration,
    tls: bool,
    closed: bool,
    cpu: impl Fn(usize) -> u32,
) -> Vec<ClusterNode> {
    let runtime = infra_runtime::Runtime::builder()
        .no_disk_cache()
        .build()
        .expect("runtime");
    let mut out = Vec::new();
    let mut boot = None;
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let (client, events, addr) =
            start_network(boot.as_ref(), heartbeat, tls, closed, cpu(i)).await;
        if i == 0 {
            boot = Some(addr);
        }
        let node = ClusterNode::new(
            client,
            status(cpu(i)),
            runtime.clone(),
            NodeConfig {
                trust: closed.then(|| infra_trust::Trusted::new([operator().public()])),
                data_dir: None,
                peer_timeout: heartbeat * 5,
                max_plugin_bytes: infra_cluster::plugins::MAX_PLUGIN_BYTES,
            },
        )
        .expect("node");
        let tx = seen_tx.clone();
        tokio::spawn(node.clone().serve(events, move |ev| {
            if let NetEvent::PeerStatus(p, _) = ev {
                let _ = tx.send((i, p));
            }
        }));
        out.push(node);
    }
    let mut seen: Vec<HashSet<infra_net::PeerId>> = vec![HashSet::new(); n];
    while seen.iter().any(|s| s.len() < n - 1) {
        let (i, p) = seen_rx.recv().await.expect("events");
        seen[i].insert(p);
    }
    out
}

/// Stops the nodes' networks, so they do not load the machine during later measurements.
async fn stop(nodes: Vec<ClusterNode>) {
    for n in nodes {
        n.net().stop().await;
    }
}

async fn discovery(n: usize, heartbeat: Duration) -> Duration {
    let t = Instant::now();
    let ns = nodes(n, heartbeat, tls_unless_noise_asked(), false, |_| 1000).await;
    let took = t.elapsed();
    stop(ns).await;
    took
}

/// The 100 MB fetch over TLS (`tls`) or noise, next to a plain TCP copy in the same run.
async fn transfer_row(tls: bool, reps: usize) -> Row {
    let size = 100 * 1000 * 1000;
    let security = match tls {
        true => format!("TLS 1.3 {}", infra_net::secure::preferred_cipher()),
        false => "noise".to_string(),
    };
    let (p2p, tcp) = transfer(size, reps, tls, false).await;
    let gbps = |d: Duration| size as f64 / d.as_secs_f64() / 1e9;
    Row {
        what: format!(
            "100 MB blob over libp2p ({security} + yamux, {} MiB chunks on one `/infra/blob/1` stream, BLAKE3 of every chunk as it lands)",
            infra_cluster::blobs::CHUNK_BYTES >> 20,
        ),
        wasm: format!("{:.2} GB/s ({:.0} ms)", gbps(p2p), p2p.as_secs_f64() * 1e3),
        native: format!("plain TCP copy {:.2} GB/s", gbps(tcp)),
        ratio: format!("{:.2}x", gbps(p2p) / gbps(tcp)),
        target: ">= 1 GB/s".into(),
    }
}

async fn transfer(size: usize, reps: usize, tls: bool, closed: bool) -> (Duration, Duration) {
    let ns = nodes(2, Duration::from_millis(200), tls, closed, |_| 1000).await;
    let (mut p2p, mut tcp) = (Vec::new(), Vec::new());
    for r in 0..reps {
        let bytes: Vec<u8> = (0..size)
            .map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(r as u32) as u8)
            .collect();
        tcp.push(plain_tcp(size, 0, 1, 1).await);
        let id = ns[0].store().put(bytes);
        // On a worker of the runtime, as a node's fetches run (inside its tasks); polled from
        // `block_on`'s thread instead, every frame that arrives is a wake-up across threads.
        let (to, from, blob) = (ns[1].clone(), ns[0].peer_id(), id.clone());
        let (f, took) = tokio::spawn(async move {
            let t = Instant::now();
            let f = infra_cluster::transfer::fetch(to.net(), to.store(), to.links(), from, &blob)
                .await
                .expect("fetch");
            (f, t.elapsed())
        })
        .await
        .expect("fetch task");
        p2p.push(took);
        assert_eq!(f.transferred as usize, size);
        ns[1].store().remove(&id);
        ns[0].store().remove(&id);
    }
    stop(ns).await;
    p2p.sort();
    tcp.sort();
    (p2p[p2p.len() / 2], tcp[tcp.len() / 2])
}

const ROUND_JOB: &str = r#"
name = "overhead"
rounds = 16
workers = 2
threads = 1
device = "cpu"
[data]
source = "digits"
shards = 2
[model]
kind = "mlp"
hidden = [1200, 800]
[optimizer]
kind = "sgd"
lr = 0.05
[training]
batch-size = 64
local-epochs = 1
[scheduler]
plugin = "least-loaded"
[aggregator]
plugin = "fedavg"
"#;

/// Median overhead share, round time and bytes of rounds 2.. (round 1 includes compiling
/// plugins and fetching shards once); the median, because on a shared VM one stalled round
/// would otherwise decide the figure.
async fn round_overhead(epochs: usize, compression: &str, closed: bool) -> Rounds {
    // A coordinator that offers no CPU (so it only coordinates) and two workers with one core
    // each: on this 2-core machine the two tasks of a round then train side by side without
    // sharing a core, and compute is not inflated by contention.
    let ns = nodes(
        3,
        Duration::from_millis(200),
        tls_unless_noise_asked(),
        closed,
        |i| {
            if i == 0 {
                0
            } else {
                1000
            }
        },
    )
    .await;
    let job = ROUND_JOB.replace("local-epochs = 1", &format!("local-epochs = {epochs}"))
        + &format!("[cluster]\ncompression = \"{compression}\"\n");
    let rec = ns[0].submit(&job, None).expect("submit");
    let h = ns[0].job(&rec.id).expect("job");
    let (_, mut rx) = h.subscribe();
    let mut rounds = Vec::new();
    loop {
        let ev = rx.recv().await.expect("events");
        match ev.kind {
            EventKind::Round => rounds.push(ev),
            EventKind::Done => break,
            EventKind::Failed | EventKind::Cancelled => {
                panic!("round overhead job: {}", ev.message)
            }
            _ => {}
        }
    }
    stop(ns).await;
    let median = |f: fn(&JobEvent) -> f64| {
        let mut v: Vec<f64> = rounds[1..].iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Rounds {
        overhead: median(|e| e.overhead),
        seconds: median(|e| e.seconds),
        compute: median(|e| e.seconds * (1.0 - e.overhead)),
        bytes: median(|e| e.bytes as f64),
    }
}

/// The (local epochs, compression) of each round-overhead row: `--rounds 1:none,10:f16`, or
/// the default set.
fn round_workloads() -> Vec<(usize, String)> {
    let arg: Option<String> = std::env::args().skip_while(|a| a != "--rounds").nth(1);
    let text = arg
        .as_deref()
        .unwrap_or("1:none,5:none,10:none,1:f16,10:f16");
    text.split(',')
        .map(|w| {
            let (e, c) = w
                .split_once(':')
                .expect("--rounds takes EPOCHS:COMPRESSION,...");
            (e.parse().expect("local epochs are a number"), c.to_string())
        })
        .collect()
}

/// Medians of a job's rounds 2.. (see [`round_overhead`]).
struct Rounds {
    /// Share of the round that is not the slowest task's compute.
    overhead: f64,
    /// Round time, seconds.
    seconds: f64,
    /// The slowest task's compute, seconds.
    compute: f64,
    /// Bytes moved per round, both ways.
    bytes: f64,
}

/// The reference for every transfer here: plain TCP on loopback, with no encryption,
/// multiplexing, framing or checksums, on connections made beforehand (as a cluster's are).
/// A coordinator sends `down` bytes to each of `workers` peers at once; each reads them all,
/// then sends `up` bytes back (0: none). Timed until every peer has its bytes and the
/// coordinator has every answer; median of `reps`. A blob copy is `(size, 0, 1)`; a round's
/// weights down and updates up are `(each, each, 2)`.
async fn plain_tcp(down: usize, up: usize, workers: usize, reps: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..reps {
        let mut coordinator_ends = Vec::new();
        let mut peer_ends = Vec::new();
        for _ in 0..workers {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = l.local_addr().expect("addr");
            peer_ends.push(tokio::spawn(async move {
                let (mut s, _) = l.accept().await.expect("accept");
                let mut got = vec![0u8; down];
                s.read_exact(&mut got).await.expect("read");
                s.write_all(&got[..up.min(down)]).await.expect("answer");
                s.write_all(&vec![0u8; up.saturating_sub(down)])
                    .await
                    .expect("answer");
            }));
            let c = tokio::net::TcpStream::connect(addr).await.expect("connect");
            c.set_nodelay(true).expect("nodelay");
            coordinator_ends.push((c, vec![7u8; down], vec![0u8; up]));
        }
        let t = Instant::now();
        let sends: Vec<_> = coordinator_ends
            .into_iter()
            .map(|(mut c, out, mut back)| {
                tokio::spawn(async move {
                    c.write_all(&out).await.expect("send");
                    c.read_exact(&mut back).await.expect("read the answer");
                })
            })
            .collect();
        for task in sends.into_iter().chain(peer_ends) {
            task.await.expect("transfer end");
        }
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// Runs the parts (`discovery`, `transfer`, `rounds`) that `part` accepts.
pub fn run(quick: bool, part: impl Fn(&str) -> bool) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let mut rows = Vec::new();
        if part("discovery") {
            let hb = Duration::from_millis(100);
            let mut times = Vec::new();
            for _ in 0..if quick { 1 } else { 3 } {
                times.push(discovery(8, hb).await);
            }
            times.sort();
            let disc = times[times.len() / 2];
            rows.push(Row {
                what: "8 peers see each other's status (heartbeat 100 ms, bootstrap + Kademlia + gossipsub)".into(),
                wasm: format!("{:.0} ms", disc.as_secs_f64() * 1e3),
                native: "100 ms heartbeat".into(),
                ratio: format!("{:.1} heartbeats", disc.as_secs_f64() / hb.as_secs_f64()),
                target: "-".into(),
            });
        }
        if part("transfer") {
            for tls in [true, false] {
                rows.push(transfer_row(tls, if quick { 2 } else { 5 }).await);
            }
        }
        if part("rounds") {
            // The weights of the 1.05M-parameter MLP, f32, to two workers and back.
            let each = 4_187_240;
            let (p2p, tcp) = (libp2p_round(each, 41).await, plain_tcp(each, each, 2, 41).await);
            rows.push(Row {
                what: format!("a round's transfers alone: {:.1} MB to each of 2 workers at once in a request over libp2p, {0:.1} MB back from each in the answer (no training beside them)", each as f64 / 1e6),
                wasm: format!("{:.1} ms", p2p.as_secs_f64() * 1e3),
                native: format!("plain TCP {:.1} ms", tcp.as_secs_f64() * 1e3),
                ratio: format!("{:.1}x plain TCP's time", p2p.as_secs_f64() / tcp.as_secs_f64()),
                target: "-".into(),
            });
        }
        if part("membership") {
            rows.extend(membership(quick).await);
        }
        let rounds = if part("rounds") { round_workloads() } else { Vec::new() };
        for (epochs, compression) in rounds {
            let compression = compression.as_str();
            let r = round_overhead(epochs, compression, false).await;
            // The same bytes per round over plain TCP, measured right after the job; as a
            // share, against a round of the job's compute plus that transfer alone.
            let floor = {
                let each = (r.bytes / 4.0) as usize;
                plain_tcp(each, each, 2, 9)
            }.await.as_secs_f64();
            let spent = r.seconds - r.compute;
            rows.push(Row {
                what: format!("round overhead, 1.05M-param MLP, {epochs} local epoch(s), `compression = \"{compression}\"`, coordinator + 2 workers (everything but the slowest task's compute)"),
                wasm: format!(
                    "{:.1} % of a {:.0} ms round ({:.1} ms)",
                    r.overhead * 100.0,
                    r.seconds * 1e3,
                    spent * 1e3
                ),
                native: format!(
                    "plain TCP floor {:.1} % ({:.1} ms for the {:.1} MB per round)",
                    floor / (floor + r.compute) * 100.0,
                    floor * 1e3,
                    r.bytes / 1e6
                ),
                ratio: format!("{:.1}x the floor's time", spent / floor),
                target: "< 5 %".into(),
            });
        }
        rows
    })
}

/// A round's transfers alone over libp2p (TLS or noise, yamux, `/infra/rpc/1`), with no
/// training or evaluation beside them: a coordinator sends `each` bytes to each of two workers
/// at once in a request, and each answers with `each` bytes (as weights go down and updates
/// come up). Median of `reps` rounds.
async fn libp2p_round(each: usize, reps: usize) -> Duration {
    let tls = tls_unless_noise_asked();
    let heartbeat = Duration::from_millis(200);
    let (coordinator, mut events, addr) = start_network(None, heartbeat, tls, false, 0).await;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (w, mut requests, _) = start_network(Some(&addr), heartbeat, tls, false, 1000).await;
        let answer = w.clone();
        tokio::spawn(async move {
            while let Some(ev) = requests.recv().await {
                if let NetEvent::Request { id, frame, .. } = ev {
                    answer.reply(id, frame).await.expect("reply");
                }
            }
        });
        workers.push(w);
    }
    let mut seen = HashSet::new();
    while seen.len() < workers.len() {
        if let Some(NetEvent::PeerStatus(p, _)) = events.recv().await {
            seen.insert(p);
        }
    }
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let weights = infra_net::Frame {
        head: b"{}".to_vec(),
        body: vec![7u8; each].into(),
    };
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let tasks: Vec<_> = workers
            .iter()
            .map(|w| {
                let (c, peer, frame) = (coordinator.clone(), w.peer_id(), weights.clone());
                tokio::spawn(async move {
                    let update = c.request(peer, frame).await.expect("request");
                    assert_eq!(update.body.len(), each);
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        times.push(t.elapsed());
    }
    for n in workers.iter().chain([&coordinator]) {
        n.stop().await;
    }
    times.sort();
    times[times.len() / 2]
}

/// What membership costs: the 100 MB transfer and the 1-epoch f32 round, each in a closed
/// cluster (credentials checked at every connection) and an open one, alternating in one
/// run so that the VM's drift falls on both alike.
async fn membership(quick: bool) -> Vec<Row> {
    let size = 100 * 1000 * 1000;
    let reps = if quick { 3 } else { 9 };
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        open.push(transfer(size, 1, true, false).await.0);
        closed.push(transfer(size, 1, true, true).await.0);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (open, closed) = (median(&mut open), median(&mut closed));
    let gbps = |d: Duration| size as f64 / d.as_secs_f64() / 1e9;
    let mut rows = vec![Row {
        what: "100 MB blob, closed cluster (membership credential checked at connect) against open, TLS 1.3, alternating in one run".into(),
        wasm: format!("closed {:.2} GB/s ({:.0} ms)", gbps(closed), closed.as_secs_f64() * 1e3),
        native: format!("open {:.2} GB/s ({:.0} ms)", gbps(open), open.as_secs_f64() * 1e3),
        ratio: format!("{:.2}x open's time", closed.as_secs_f64() / open.as_secs_f64()),
        target: "<= 1.10x".into(),
    }];
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    for _ in 0..if quick { 1 } else { 3 } {
        open.push(round_overhead(1, "none", false).await);
        closed.push(round_overhead(1, "none", true).await);
    }
    let spent = |r: &Rounds| r.seconds - r.compute;
    let mid = |v: &mut Vec<Rounds>| {
        v.sort_by(|a, b| spent(a).total_cmp(&spent(b)));
        v.remove(v.len() / 2)
    };
    let (open, closed) = (mid(&mut open), mid(&mut closed));
    rows.push(Row {
        what: "round of the 1.05M-param MLP (1 local epoch, f32, coordinator + 2 workers), closed cluster against open, alternating in one run".into(),
        wasm: format!(
            "closed {:.0} ms round, {:.1} ms overhead",
            closed.seconds * 1e3,
            spent(&closed) * 1e3
        ),
        native: format!(
            "open {:.0} ms round, {:.1} ms overhead",
            open.seconds * 1e3,
            spent(&open) * 1e3
        ),
        ratio: format!("{:.2}x open's round time", closed.seconds / open.seconds),
        target: "<= 1.10x".into(),
    });
    rows
}
