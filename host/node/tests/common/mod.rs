//! Real `infra-host` processes on 127.0.0.1 for the integration tests: ephemeral ports, and
//! readiness from the JSON lines the hosts print (never sleeps).

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token-0123456789";

pub type Lines = mpsc::Receiver<(usize, serde_json::Value)>;

pub struct Host {
    pub child: Child,
    pub peer: String,
    pub grpc: String,
    pub addr: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A set of hosts and the lines they print.
pub struct Cluster {
    pub hosts: Vec<Host>,
    pub lines: Lines,
    tx: mpsc::Sender<(usize, serde_json::Value)>,
    pub deadline: Instant,
    pub seen: HashMap<usize, BTreeSet<String>>,
    /// Tier each peer announced in its heartbeats.
    pub tiers: HashMap<String, String>,
}

impl Cluster {
    /// Starts `n` hosts (the first is the bootstrap of the others) with `extra(i)` arguments
    /// each, and waits until every host has heard every other.
    pub fn start(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Self {
        let (tx, lines) = mpsc::channel();
        let mut c = Cluster {
            hosts: Vec::new(),
            lines,
            tx,
            deadline: Instant::now() + Duration::from_secs(120),
            seen: HashMap::new(),
            tiers: HashMap::new(),
        };
        c.spawn(0, None, extra(0));
        let boot = c.hosts[0].addr.clone();
        for i in 1..n {
            c.spawn(i, Some(&boot), extra(i));
        }
        c.wait_all_seen();
        c
    }

    /// Starts host `index` (replacing a killed one with that index) and waits for its id,
    /// gRPC address and listening address.
    pub fn spawn(&mut self, index: usize, bootstrap: Option<&str>, extra: Vec<String>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-host"));
        cmd.args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--heartbeat-ms",
            "200",
            "--grpc",
            "127.0.0.1:0",
        ]);
        cmd.env("INFRA_TOKEN", TOKEN);
        cmd.args(&extra);
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn infra-host");
        let stdout = child.stdout.take().unwrap();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send((index, v)).is_err() {
                        break;
                    }
                }
            }
        });
        let host = Host {
            child,
            peer: String::new(),
            grpc: String::new(),
            addr: String::new(),
        };
        if index < self.hosts.len() {
            self.hosts[index] = host;
        } else {
            self.hosts.push(host);
        }
        self.seen.remove(&index);
        while {
            let h = &self.hosts[index];
            h.peer.is_empty() || h.grpc.is_empty() || h.addr.is_empty()
        } {
            self.pump();
        }
    }

    /// Handles one line.
    pub fn pump(&mut self) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let (i, v) = self
            .lines
            .recv_timeout(left)
            .expect("hosts stopped reporting before the deadline");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        match v["event"].as_str() {
            Some("started") => self.hosts[i].peer = s("peer"),
            Some("grpc") => self.hosts[i].grpc = s("addr"),
            Some("listening") => self.hosts[i].addr = s("addr"),
            Some("peer") => {
                self.seen.entry(i).or_default().insert(s("peer"));
                self.tiers.insert(s("peer"), s("tier"));
            }
            Some("bad-status") => panic!("{v}"),
            _ => {}
        }
    }

    /// Waits until every live host has heard every other.
    pub fn wait_all_seen(&mut self) {
        loop {
            let ids: Vec<String> = self.hosts.iter().map(|h| h.peer.clone()).collect();
            let done = (0..ids.len()).all(|i| {
                ids.iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .all(|(_, p)| self.seen.get(&i).is_some_and(|s| s.contains(p)))
            });
            if done {
                return;
            }
            self.pump();
        }
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.hosts[i].grpc)
    }

    pub fn kill(&mut self, i: usize) {
        let _ = self.hosts[i].child.kill();
        let _ = self.hosts[i].child.wait();
    }
}

/// A built-in plus a custom section: a valid component that no host has yet (its sha256 is
/// no built-in's).
pub fn fresh_copy(builtin: &str) -> Vec<u8> {
    let mut bytes = infra_builtins::find(builtin).unwrap().bytes.to_vec();
    let name = b"infra-test";
    bytes.extend([0u8, (1 + name.len() + 4) as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(b"copy");
    bytes
}

/// The `infra` CLI, built beside `infra-host` by the workspace test command.
pub fn infra_cli() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_infra-host")).with_file_name("infra");
    assert!(
        p.exists(),
        "{} is missing: run the workspace tests (`cargo xtask test`)",
        p.display()
    );
    p
}

/// Runs the `infra` CLI with `args`; returns (success, stdout, stderr).
pub fn infra(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(infra_cli())
        .args(args)
        .env("INFRA_TOKEN", TOKEN)
        .output()
        .expect("run infra");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A request carrying `authorization: <auth>`.
pub fn authed<T>(msg: T, auth: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", auth.parse().unwrap());
    r
}

/// A request with the test token.
pub fn req<T>(msg: T) -> tonic::Request<T> {
    authed(msg, &infra_api::bearer(TOKEN))
}

pub type Control = infra_api::pb::control_client::ControlClient<tonic::transport::Channel>;

/// A control-plane client of `url`.
pub async fn control(url: &str) -> Control {
    let ch = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    Control::new(ch)
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A cluster job: the digits cluster example with `edits` applied to its TOML text
/// (`(from, to)` replacements, each of which must match).
pub fn job_spec(edits: &[(&str, &str)]) -> String {
    let mut s = std::fs::read_to_string(repo().join("examples/digits-cluster.toml")).unwrap();
    for (from, to) in edits {
        assert!(s.contains(from), "the example has no `{from}`");
        s = s.replace(from, to);
    }
    s
}

/// A tokio runtime for the gRPC calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
