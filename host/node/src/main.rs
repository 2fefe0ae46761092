//! `infra-host`: the daemon of a peer node (first slice: joins the network, gossips its status
//! and serves the control plane). Prints one JSON object per line on stdout for each event:
//! `started`, `listening` (the full address others bootstrap from), `grpc` (the control-plane
//! address) and `peer` (a status heartbeat from a peer).

use clap::Parser;
use infra_net::{Multiaddr, NetConfig, NetEvent, Network, NodeStatus};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "infra-host", version, about = "An infra peer node")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/0")]
    listen: Multiaddr,
    /// Bootstrap peers (multiaddr ending in /p2p/<peer id>), repeatable.
    #[arg(long)]
    bootstrap: Vec<Multiaddr>,
    /// Tier of this node: server or edge.
    #[arg(long, default_value = "server")]
    tier: String,
    /// Labels, key=value, repeatable.
    #[arg(long, value_parser = parse_label)]
    label: Vec<(String, String)>,
    /// CPU offered (thousandths of a core; default: all cores).
    #[arg(long)]
    cpu_millis: Option<u32>,
    /// Memory offered, MiB.
    #[arg(long, default_value_t = 4096)]
    memory_mib: u64,
    /// GPUs offered.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// Status heartbeat period in milliseconds.
    #[arg(long, default_value_t = 2000)]
    heartbeat_ms: u64,
    /// Disable mDNS discovery.
    #[arg(long)]
    no_mdns: bool,
    /// Address of the gRPC control plane (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7070")]
    grpc: std::net::SocketAddr,
    /// Bearer token every control-plane call must carry (default: $INFRA_TOKEN).
    #[arg(long, env = "INFRA_TOKEN", hide_env_values = true)]
    token: String,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label `{s}`: expected key=value"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFRA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if !matches!(args.tier.as_str(), "server" | "edge") {
        anyhow::bail!("--tier `{}`: expected server or edge", args.tier);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let status = NodeStatus {
        tier: args.tier,
        labels: args.label.into_iter().collect::<BTreeMap<_, _>>(),
        cpu_millis: args.cpu_millis.unwrap_or(cores * 1000),
        memory_mib: args.memory_mib,
        gpus: args.gpus,
        load: 0.0,
        plugins: BTreeMap::new(),
        sent_at_ms: 0,
    };
    let config = NetConfig {
        listen: args.listen,
        bootstrap: args.bootstrap,
        heartbeat: Duration::from_millis(args.heartbeat_ms.max(50)),
        mdns: !args.no_mdns,
    };
    if args.token.len() < 8 {
        anyhow::bail!("--token must be at least 8 characters");
    }
    let (client, mut events) = Network::start(config, status)?;
    println!(
        "{}",
        serde_json::json!({ "event": "started", "peer": client.peer_id().to_string() })
    );
    let (listener, grpc_addr) = infra_api::bind(args.grpc).await?;
    println!(
        "{}",
        serde_json::json!({ "event": "grpc", "addr": grpc_addr.to_string() })
    );
    let control = infra_api::ControlService::new(client.clone());
    let token = args.token;
    tokio::spawn(async move {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        if let Err(e) = infra_api::serve(listener, control, token, shutdown).await {
            eprintln!("infra-host: control plane stopped: {e}");
        }
    });
    while let Some(ev) = events.recv().await {
        let line = match ev {
            NetEvent::Listening(addr) => {
                serde_json::json!({ "event": "listening", "addr": addr.to_string() })
            }
            NetEvent::PeerStatus(peer, s) => {
                serde_json::json!({ "event": "peer", "peer": peer.to_string(), "tier": s.tier, "cpu_millis": s.cpu_millis })
            }
            NetEvent::BadStatus(peer, why) => {
                serde_json::json!({ "event": "bad-status", "peer": peer.to_string(), "error": why })
            }
        };
        println!("{line}");
    }
    Ok(())
}
