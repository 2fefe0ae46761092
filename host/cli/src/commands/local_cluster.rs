//! `infra cluster`: N `infra-host` processes on 127.0.0.1, the others bootstrapped from the
//! first (mDNS does not see loopback-only peers). Waits until every host has heard from every
//! other, prints where their control planes are, and runs until interrupted.
//!
//! The cluster is closed like a real one: an operator key (`<dir>/operator.key`, made on the
//! first run and kept) signs each host's membership, so only these hosts admit each other,
//! and plugins and swaps need that key's signature.

use anyhow::Context;
use clap::Args;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The name of the cluster `infra cluster` starts.
const CLUSTER: &str = "local";

/// How long the hosts get to find each other.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `infra cluster`.
#[derive(Args)]
pub struct ClusterArgs {
    /// Number of hosts.
    #[arg(short = 'n', long, default_value_t = 3)]
    peers: usize,
    /// gRPC port of the first host; the others take the next ports (0: free ports).
    #[arg(long, default_value_t = 7070)]
    grpc_port: u16,
    /// Token of every host (default: $INFRA_TOKEN, else a fresh random one, printed).
    #[arg(long, env = "INFRA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data folder; host i keeps its jobs and plugins in `<dir>/host-<i>`.
    #[arg(long, default_value = ".cache/cluster")]
    data_dir: PathBuf,
    /// Status heartbeat period of the hosts, ms.
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
    /// The infra-host binary (default: next to this `infra`, else on PATH).
    #[arg(long)]
    host_bin: Option<PathBuf>,
}

struct Hosts(Vec<Child>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn random_token() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl ClusterArgs {
    pub fn run(self) -> anyhow::Result<()> {
        anyhow::ensure!(self.peers >= 1, "--peers must be at least 1");
        let bin = match self.host_bin {
            Some(b) => b,
            None => {
                let beside = std::env::current_exe()?.with_file_name("infra-host");
                if beside.exists() {
                    beside
                } else {
                    PathBuf::from("infra-host")
                }
            }
        };
        let token = match self.token {
            Some(t) => t,
            None => random_token()?,
        };
        let key_path = self.data_dir.join("operator.key");
        let operator = if key_path.exists() {
            infra_trust::OperatorKey::load(&key_path)?
        } else {
            let k = infra_trust::OperatorKey::generate()?;
            k.save(&key_path)?;
            k
        };
        for i in 0..self.peers {
            super::key::admit(&operator, CLUSTER, &self.data_dir.join(format!("host-{i}")))?;
        }
        let (tx, rx) = mpsc::channel::<(usize, serde_json::Value)>();
        let mut hosts = Hosts(Vec::new());
        let mut bootstrap: Option<String> = None;
        let mut info: Vec<(String, String)> = Vec::new();
        let mut heard: HashMap<usize, HashSet<String>> = HashMap::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..self.peers {
            let mut cmd = Command::new(&bin);
            cmd.args(["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
                .arg("--grpc")
                .arg(match self.grpc_port {
                    0 => "127.0.0.1:0".to_string(),
                    p => format!("127.0.0.1:{}", p as usize + i),
                })
                .arg("--heartbeat-ms")
                .arg(self.heartbeat_ms.to_string())
                .arg("--data-dir")
                .arg(self.data_dir.join(format!("host-{i}")))
                .env("INFRA_TOKEN", &token)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let Some(b) = &bootstrap {
                cmd.args(["--bootstrap", b]);
            }
            // The hosts stop with this command, however it ends (Ctrl-C, kill).
            #[cfg(target_os = "linux")]
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().with_context(|| {
                format!(
                    "starting {} (build it with `cargo build --release -p infra-host`)",
                    bin.display()
                )
            })?;
            let out = child.stdout.take().expect("piped");
            hosts.0.push(child);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str(&line) {
                        let _ = tx.send((i, v));
                    }
                }
            });
            let (mut peer, mut grpc) = (None, None);
            while peer.is_none() || grpc.is_none() || (i == 0 && bootstrap.is_none()) {
                let left = deadline.saturating_duration_since(Instant::now());
                let (j, v) = rx
                    .recv_timeout(left)
                    .context("host did not start in time")?;
                if v["event"] == "peer" {
                    heard
                        .entry(j)
                        .or_default()
                        .insert(v["peer"].as_str().unwrap_or("").into());
                }
                if j != i {
                    continue;
                }
                match v["event"].as_str() {
                    Some("started") => peer = v["peer"].as_str().map(String::from),
                    Some("grpc") => grpc = v["addr"].as_str().map(String::from),
                    Some("listening") if i == 0 => bootstrap = v["addr"].as_str().map(String::from),
                    _ => {}
                }
            }
            info.push((peer.expect("set"), grpc.expect("set")));
        }
        // Ready when every host has heard from every other.
        while (0..self.peers).any(|i| heard.get(&i).map_or(0, |s| s.len()) < self.peers - 1) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, v) = rx
                .recv_timeout(left)
                .context("the hosts did not all see each other in time")?;
            if v["event"] == "peer" {
                heard
                    .entry(i)
                    .or_default()
                    .insert(v["peer"].as_str().unwrap_or("").into());
            }
        }
        std::thread::spawn(move || for _ in rx {});
        let mut t = super::table(&["host", "peer id", "control plane"]);
        for (i, (peer, grpc)) in info.iter().enumerate() {
            t.add_row(vec![i.to_string(), peer.clone(), format!("http://{grpc}")]);
        }
        println!("{t}");
        println!(
            "{} hosts see each other in closed cluster `{CLUSTER}`; operator key {} (only plugins and swaps it signs are taken).",
            self.peers,
            key_path.display()
        );
        println!("In another shell:");
        println!(
            "  export INFRA_HOST=http://{} INFRA_TOKEN={token}",
            info[0].1
        );
        println!("  infra peers; infra submit examples/digits-cluster.toml --watch");
        println!(
            "  infra plugin sign FILE.wasm --key {0}; infra plugin swap --kind aggregator FILE.wasm --key {0}",
            key_path.display()
        );
        println!("Ctrl-C stops the cluster.");
        for c in &mut hosts.0 {
            let _ = c.wait();
        }
        Ok(())
    }
}
