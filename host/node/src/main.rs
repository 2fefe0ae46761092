//! `infra-host`: the daemon of a peer node. It joins the network, gossips its status, serves
//! the control plane, runs training tasks for coordinators, coordinates the jobs submitted to
//! it (resuming those a previous run left unfinished), and takes part in cluster-wide plugin
//! swaps. Configured by a TOML file (`--config`, see `config.rs`) and flags.
//!
//! Prints one JSON object per line on stdout for each event: `started`, `grpc` (the
//! control-plane address), `listening` (the full address others bootstrap from) and `peer` (a
//! status heartbeat from a peer, the first time and whenever its tier changes).

mod config;
mod membership;

use anyhow::Context;
use clap::Parser;
use config::FileConfig;
use infra_cluster::{ClusterNode, NodeConfig};
use infra_net::{Multiaddr, NetConfig, NetEvent, Network, NodeStatus};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "infra-host", version, about = "An infra peer node")]
struct Args {
    /// TOML configuration file (flags win over it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: /ip4/0.0.0.0/tcp/0].
    #[arg(long)]
    listen: Option<Multiaddr>,
    /// Bootstrap peers (multiaddr ending in `/p2p/<peer id>`), repeatable.
    #[arg(long)]
    bootstrap: Vec<Multiaddr>,
    /// Tier of this node: server or edge [default: server].
    #[arg(long)]
    tier: Option<String>,
    /// Labels, key=value, repeatable.
    #[arg(long, value_parser = parse_label)]
    label: Vec<(String, String)>,
    /// Folder for jobs, checkpoints, installed plugins and compiled code [default: none, in
    /// memory only].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// CPU offered (thousandths of a core) [default: all cores].
    #[arg(long)]
    cpu_millis: Option<u32>,
    /// Memory offered, MiB [default: 4096].
    #[arg(long)]
    memory_mib: Option<u64>,
    /// GPUs offered [default: 0].
    #[arg(long)]
    gpus: Option<u32>,
    /// Status heartbeat period in milliseconds [default: 2000].
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Disable mDNS discovery.
    #[arg(long)]
    no_mdns: bool,
    /// Secure connections with noise only (by default TLS 1.3 is offered first, noise second).
    #[arg(long)]
    no_tls: bool,
    /// Address of the gRPC control plane (port 0 picks a free one) [default: 127.0.0.1:7070].
    #[arg(long)]
    grpc: Option<std::net::SocketAddr>,
    /// PEM certificate the control plane serves TLS with (with --grpc-key). Beyond loopback
    /// without one, a self-signed one is made in the data folder (`grpc.crt`, `grpc.key`).
    #[arg(long)]
    grpc_cert: Option<PathBuf>,
    /// PEM private key of --grpc-cert.
    #[arg(long)]
    grpc_key: Option<PathBuf>,
    /// File holding the bearer token every control-plane call must carry (or $INFRA_TOKEN,
    /// or `token` in the config file). Never on the command line, where `ps` shows it.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// This host's membership credential (`infra member add` writes it) [default:
    /// `<data-dir>/membership.toml` when it exists]. With it the host admits only members of
    /// its cluster.
    #[arg(long)]
    membership: Option<PathBuf>,
    /// An operator public key (64 hex digits, or a file holding it) whose signatures this host
    /// accepts, repeatable; the key that signed this host's membership is always trusted.
    #[arg(long)]
    trust: Vec<String>,
    /// Admit only these peer ids (members still need their credential), repeatable.
    #[arg(long)]
    allow: Vec<infra_net::PeerId>,
    /// Established peer connections this host keeps at most [default: 512].
    #[arg(long)]
    max_connections: Option<u32>,
    /// UNSAFE: run without membership on a non-loopback address, so that any process that
    /// reaches the port joins the cluster, gets tasks and data, and can swap plugins.
    #[arg(long)]
    open: bool,
    /// Largest plugin this host accepts from a swap or an upload, bytes (small boards).
    #[arg(long)]
    max_plugin_bytes: Option<usize>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label `{s}`: expected key=value"))
}

fn say(v: serde_json::Value) {
    println!("{v}");
}

/// mimalloc instead of the system allocator: transfers allocate and free a frame buffer per
/// chunk and per message, and glibc hands those megabyte buffers back to the kernel and faults
/// them in again each time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let tier: infra_net::Tier = match args.tier.or(file.tier) {
        Some(t) => t.parse().map_err(anyhow::Error::msg)?,
        None => infra_net::Tier::Server,
    };
    let token = match (
        &args.token_file,
        std::env::var("INFRA_TOKEN").ok(),
        file.token,
    ) {
        (Some(path), _, _) => read_token_file(path)?,
        (None, Some(t), _) => t,
        (None, None, Some(t)) => t,
        (None, None, None) => anyhow::bail!(
            "no token: set $INFRA_TOKEN, pass --token-file FILE or set `token` in the config file"
        ),
    };
    if token.len() < 16 {
        anyhow::bail!("the token must be at least 16 characters");
    }
    let listen: Multiaddr = match (args.listen, &file.listen) {
        (Some(a), _) => a,
        (None, Some(s)) => s
            .parse()
            .with_context(|| format!("config `listen` = `{s}`"))?,
        (None, None) => "/ip4/0.0.0.0/tcp/0".parse().expect("valid"),
    };
    let mut bootstrap = args.bootstrap;
    for s in file.bootstrap.unwrap_or_default() {
        bootstrap.push(
            s.parse()
                .with_context(|| format!("config `bootstrap` entry `{s}`"))?,
        );
    }
    let grpc: std::net::SocketAddr = match (args.grpc, &file.grpc) {
        (Some(a), _) => a,
        (None, Some(s)) => s
            .parse()
            .with_context(|| format!("config `grpc` = `{s}`"))?,
        (None, None) => "127.0.0.1:7070".parse().expect("valid"),
    };
    let mut labels = file.labels.unwrap_or_default();
    labels.extend(args.label);
    let heartbeat = Duration::from_millis(
        args.heartbeat_ms
            .or(file.heartbeat_ms)
            .unwrap_or(2000)
            .max(50),
    );
    let data_dir = args.data_dir.or(file.data_dir);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let status = NodeStatus::offering(
        tier,
        labels.into_iter().collect::<BTreeMap<_, _>>(),
        args.cpu_millis.or(file.cpu_millis).unwrap_or(cores * 1000),
        args.memory_mib.or(file.memory_mib).unwrap_or(4096),
        args.gpus.or(file.gpus).unwrap_or(0),
    );
    let keypair = match &data_dir {
        Some(d) => Some(infra_net::load_or_create_identity(&d.join("identity.key"))?),
        None => None,
    };
    let membership = args.membership.or(file.membership).or_else(|| {
        let default = data_dir.as_ref()?.join("membership.toml");
        default.exists().then_some(default)
    });
    let mut trust = args.trust;
    trust.extend(file.trust.unwrap_or_default());
    let mut allow = args.allow;
    for s in file.allow.unwrap_or_default() {
        allow.push(
            s.parse()
                .with_context(|| format!("config `allow` entry `{s}`"))?,
        );
    }
    let gate = membership::gate(
        membership.as_deref(),
        keypair.as_ref(),
        &trust,
        allow,
        &listen,
        args.open || file.open.unwrap_or(false),
    )?;
    let net_config = NetConfig {
        listen,
        bootstrap,
        heartbeat,
        mdns: !args.no_mdns && file.mdns.unwrap_or(true),
        tls: !args.no_tls && file.tls.unwrap_or(true),
        keypair,
        gate: gate.clone(),
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(infra_net::MAX_CONNECTIONS),
    };

    let mut runtime = infra_runtime::Runtime::builder();
    if let Some(d) = &data_dir {
        std::fs::create_dir_all(d).with_context(|| format!("data dir {}", d.display()))?;
        runtime = runtime.cache_dir(d.join("compiled"));
    }
    let runtime = runtime.build()?;
    let grpc_tls = control_tls(
        grpc,
        args.grpc_cert.or(file.grpc_cert),
        args.grpc_key.or(file.grpc_key),
        data_dir.as_deref(),
    )?;
    let (client, events) = Network::start(net_config, status.clone())?;
    say(serde_json::json!({ "event": "started", "peer": client.peer_id().to_string() }));
    let node = ClusterNode::new(
        client,
        status,
        runtime,
        NodeConfig {
            data_dir,
            peer_timeout: heartbeat * 5,
            trust: gate.map(|g| g.trusted().clone()),
            max_plugin_bytes: args
                .max_plugin_bytes
                .or(file.max_plugin_bytes)
                .unwrap_or(infra_cluster::plugins::MAX_PLUGIN_BYTES),
        },
    )?;
    let (listener, grpc_addr) = infra_api::bind(grpc).await?;
    say(serde_json::json!({
        "event": "grpc",
        "addr": grpc_addr.to_string(),
        "tls": grpc_tls.is_some(),
        "cert": grpc_tls.as_ref().map(|t| t.cert_path.display().to_string()),
    }));
    let control = infra_api::ControlService::new(node.clone());
    tokio::spawn(async move {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        if let Err(e) = infra_api::serve(listener, control, token, grpc_tls, shutdown).await {
            eprintln!("infra-host: control plane stopped: {e}");
        }
    });
    node.resume_jobs();
    let mut seen = HashSet::new();
    node.serve(events, move |ev| match ev {
        NetEvent::Listening(addr) => say(serde_json::json!({ "event": "listening", "addr": addr.to_string() })),
        NetEvent::PeerStatus(peer, s) => {
            if seen.insert((peer, s.tier)) {
                say(serde_json::json!({ "event": "peer", "peer": peer.to_string(), "tier": s.tier, "cpu_millis": s.cpu_millis }));
            }
        }
        NetEvent::BadStatus(peer, why) => {
            say(serde_json::json!({ "event": "bad-status", "peer": peer.to_string(), "error": why }))
        }
        NetEvent::PeerGone(peer) => say(serde_json::json!({ "event": "peer-gone", "peer": peer.to_string() })),
        NetEvent::Request { .. } => {}
    })
    .await;
    Ok(())
}

/// The control plane's TLS: the operator's certificate, or beyond loopback a self-signed one
/// kept in the data folder; a control plane beyond loopback never serves in clear.
fn control_tls(
    grpc: std::net::SocketAddr,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<Option<infra_api::GrpcTls>> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some(infra_api::GrpcTls::load(&c, &k)?)),
        (None, None) if grpc.ip().is_loopback() => Ok(None),
        (None, None) => {
            let Some(dir) = data_dir else {
                anyhow::bail!(
                    "the control plane would listen on {grpc} in clear, and the token would \
                     cross the network unencrypted: give it a certificate (--grpc-cert, \
                     --grpc-key), a --data-dir to keep a self-signed one in, or listen on \
                     127.0.0.1"
                );
            };
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            if !grpc.ip().is_unspecified() {
                names.push(grpc.ip().to_string());
            }
            if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
                names.extend(Some(h.trim().to_string()).filter(|h| !h.is_empty()));
            }
            Ok(Some(infra_api::GrpcTls::self_signed_in(dir, names)?))
        }
        _ => anyhow::bail!("--grpc-cert and --grpc-key go together"),
    }
}

/// Reads the token from a file only its owner can read (like ssh with its keys).
fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("--token-file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "--token-file {0} can be read by others (mode {1:o}): `chmod 600 {0}`",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("--token-file {}", path.display()))?
        .trim()
        .to_string())
}
