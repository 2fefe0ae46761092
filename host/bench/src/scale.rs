//! Many virtual clients on one machine: rounds of 4, 64, 256 and 1,024 clients (one digits
//! shard each) on 2 local workers through the round engine, next to the same local training
//! steps run back to back in one loop with no engine (each client: the global weights loaded,
//! its local epochs, the update summed into a FedAvg mean). Each side runs in a process of its
//! own so its peak resident memory is its own.

use crate::Row;
use infra_train::JobSpec;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// Client counts of the table.
pub const CLIENTS: [usize; 4] = [4, 64, 256, 1024];
/// Rounds per run; the figure is the median of rounds 2 and later.
const ROUNDS: u32 = 5;

fn spec(clients: usize) -> JobSpec {
    let mut s = JobSpec::default_digits();
    s.workers = 2;
    s.data.shards = Some(clients);
    s.rounds = ROUNDS;
    s.device = "cpu".into();
    // Evaluation once, after the last round: the loop it is compared with has none.
    s.evaluate_every = ROUNDS;
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident memory of this process, MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `infra-bench --scale-child N engine|loop`: one side of one row; prints `seconds rss_mib`.
pub fn child(clients: usize, side: &str) {
    let spec = spec(clients);
    let seconds = if side == "engine" {
        // As `infra train` builds it: compiled plugins come from the disk cache.
        let runtime = infra_runtime::Runtime::new().expect("runtime");
        let r = infra_rounds::local::train(&spec, &runtime, &Default::default()).expect("job");
        median(r.history[1..].iter().map(|h| h.seconds).collect())
    } else {
        bare_loop(&spec)
    };
    println!("{seconds} {}", peak_rss_mib());
}

/// The same training steps with no engine: one thread, clients one after another.
fn bare_loop(spec: &JobSpec) -> f64 {
    tch::set_num_threads(spec.threads as i32);
    let data = infra_train::Dataset::digits();
    let (shards, _test) = infra_train::task::divide(spec, &data);
    tch::manual_seed(spec.seed as i64);
    let model = infra_train::Model::new(&spec.model, data.width(), data.classes, tch::Device::Cpu)
        .expect("model");
    let mut global = Arc::new(model.flat());
    let mut times = Vec::new();
    for round in 1..=spec.rounds {
        let t = Instant::now();
        let mut sum = vec![0f64; global.len()];
        let mut rows = 0f64;
        for (s, shard) in shards.iter().enumerate() {
            let seed = spec.seed ^ infra_rounds::task_id(round, s);
            let u = infra_train::task::train_shard(spec, shard, &global, seed).expect("train");
            let w = shard.rows() as f64;
            for (a, p) in sum.iter_mut().zip(&u.params) {
                *a += w * *p as f64;
            }
            rows += w;
        }
        global = Arc::new(sum.iter().map(|a| (a / rows) as f32).collect());
        times.push(t.elapsed().as_secs_f64());
    }
    median(times[1..].to_vec())
}

fn run_child(clients: usize, side: &str) -> (f64, f64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--scale-child", &clients.to_string(), side])
        .output()
        .expect("scale child");
    assert!(
        out.status.success(),
        "scale child {clients} {side}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    (it.next().unwrap_or(0.0), it.next().unwrap_or(0.0))
}

/// The table's rows: per client count, the engine's round against the bare loop's, and the
/// engine's peak memory.
pub fn run() -> Vec<Row> {
    let mut rows = Vec::new();
    for n in CLIENTS {
        let (engine, engine_rss) = run_child(n, "engine");
        let (bare, bare_rss) = run_child(n, "loop");
        rows.push(Row {
            what: format!(
                "round of {n} clients on 2 local workers (engine vs bare loop, 1 thread)"
            ),
            wasm: format!("{:.1} ms, peak {engine_rss:.0} MiB", engine * 1e3),
            native: format!("{:.1} ms, peak {bare_rss:.0} MiB", bare * 1e3),
            ratio: format!("{:.2}x", engine / bare),
            target: if n == 1024 {
                "<= 2x, < 300 MiB".into()
            } else {
                "-".into()
            },
        });
    }
    rows
}
