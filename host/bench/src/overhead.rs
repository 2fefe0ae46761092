//! Fixed costs: one call into a live instance, a fresh instance, and a swap whose plugin
//! comes from the on-disk compiled-code cache (as after a restart).

use crate::{fmt_time, median_time, Row};
use infra_runtime::scheduler::Pending;
use infra_runtime::{Manifest, PluginKind, Registry, Runtime, Scope};
use std::time::Instant;

pub fn run(runtime: &Runtime, reps: usize) -> Vec<Row> {
    let fifo = infra_builtins::load(runtime, "fifo", PluginKind::Scheduler).unwrap();
    let mut inst = fifo.instance();
    let empty = Pending {
        jobs: Vec::new(),
        tasks: Vec::new(),
        nodes: Vec::new(),
        holdings: Vec::new(),
    };
    inst.schedule(&empty).unwrap();
    const CALLS: u32 = 10_000;
    let call = median_time(reps, || {
        for _ in 0..CALLS {
            inst.schedule(&empty).unwrap();
        }
    }) / CALLS;
    let fresh = median_time(reps, || {
        fifo.instance().schedule(&empty).unwrap();
    });

    // Swap latency: compile once into a disk cache, then a new runtime (a restarted host)
    // loads the component from that cache and swaps it in.
    let dir = tempfile::tempdir().unwrap();
    let bytes = infra_builtins::find("priority").unwrap().bytes;
    let compile_started = Instant::now();
    Runtime::builder()
        .cache_dir(dir.path())
        .build()
        .unwrap()
        .load(bytes)
        .unwrap();
    let compile = compile_started.elapsed();
    let registry = Registry::new();
    registry.swap(Scope::Global, fifo.clone());
    let restarted = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let t = Instant::now();
    let (p, source) = restarted
        .load_reporting(bytes, Manifest::default())
        .unwrap();
    registry.swap(Scope::Global, p);
    let swap = t.elapsed();
    assert_eq!(source, infra_runtime::CacheSource::Disk);

    vec![
        Row {
            what: "call into a live instance (`schedule` with nothing pending)".into(),
            wasm: fmt_time(call),
            native: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
        },
        Row {
            what: "fresh instance from `InstancePre` + configure + call".into(),
            wasm: fmt_time(fresh),
            native: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
        },
        Row {
            what: "swap: load `priority` from the disk cache + registry swap".into(),
            wasm: fmt_time(swap),
            native: format!("first compile: {}", fmt_time(compile)),
            ratio: format!(
                "{:.0}x faster than compiling",
                compile.as_secs_f64() / swap.as_secs_f64()
            ),
            target: "milliseconds".into(),
        },
    ]
}
