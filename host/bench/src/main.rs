//! `infra-bench`: every Wasm plugin benchmark next to its native reference, in one run, on
//! the same data; results are printed as a Markdown table of ratios for `BENCHMARKS.md`.
//!
//! Run: `cargo xtask bench` (add `--quick` for fewer repetitions, `--noise` for cluster peers
//! that secure connections with noise instead of TLS, `--only GROUP` for one of
//! `aggregation`, `scheduling`, `overhead`, `training`, `scale`, `cluster`, or one part of the cluster
//! group: `discovery`, `transfer`, `rounds`; `--rounds 1:none,10:f16` picks the local epochs
//! and compression of the round-overhead rows).

mod aggregation;
mod byzantine;
mod cluster;
mod overhead;
mod scale;
mod scheduling;
mod training;

use std::time::{Duration, Instant};

/// One line of the report.
pub struct Row {
    pub what: String,
    pub wasm: String,
    pub native: String,
    pub ratio: String,
    pub target: String,
}

/// Median wall time of `reps` runs of `f` (after one warm-up run).
pub fn median_time(reps: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// A duration in the unit that reads best.
pub fn fmt_time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1.0 {
        format!("{:.0} ns", us * 1e3)
    } else if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1e3)
    }
}

/// mimalloc instead of the system allocator: transfers allocate and free a frame buffer per
/// chunk and per message, and glibc hands those megabyte buffers back to the kernel and faults
/// them in again each time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `INFRA_LOG=infra_cluster=info` shows, e.g., each round's timing in the cluster group.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFRA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n, side] = &args[..] {
        if flag == "--scale-child" {
            scale::child(n.parse().expect("client count"), side);
            return;
        }
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 5 } else { 21 };
    let runtime = infra_runtime::Runtime::builder()
        .no_disk_cache()
        .build()
        .expect("runtime");
    // `--only aggregation|scheduling|overhead|training|byzantine|cluster` runs one group;
    // `--only discovery|transfer|rounds|membership` one part of the cluster group.
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let wanted = |g: &str| only.as_deref().is_none_or(|o| o == g);
    let mut rows = Vec::new();
    if wanted("aggregation") {
        rows.extend(aggregation::run(&runtime, reps));
    }
    if wanted("scheduling") {
        rows.extend(scheduling::run(&runtime, reps * 5));
    }
    if wanted("overhead") {
        rows.extend(overhead::run(&runtime, reps));
    }
    if wanted("training") {
        rows.extend(training::run(if quick { 500 } else { 3000 }));
    }
    if wanted("byzantine") {
        rows.extend(byzantine::run_all(&runtime));
    }
    if only.as_deref() == Some("scale") || (only.is_none() && !quick) {
        rows.extend(scale::run());
    }
    let cluster_part = |p: &str| wanted("cluster") || wanted(p);
    if ["discovery", "transfer", "rounds", "membership"]
        .iter()
        .any(|p| cluster_part(p))
    {
        rows.extend(cluster::run(quick, cluster_part));
    }

    println!("| benchmark | measured (Wasm plugin / tch) | reference (native / PyTorch) | ratio | target |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.what, r.wasm, r.native, r.ratio, r.target
        );
    }
}
