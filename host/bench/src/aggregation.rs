//! Aggregators on 8 updates x 1M f32 with the sandbox limits on (epoch deadline, memory cap),
//! against the same Rust code compiled natively.

use crate::{fmt_time, median_time, Row};
use infra_policies::aggregator::{all_finite, weighted_sum, Krum, Median, TrimmedMean};
use infra_runtime::aggregator::{UpdateRef, DEFAULT_CHUNK};
use infra_runtime::{PluginKind, Runtime};
use infra_sdk::{Aggregator, MergePlan, Plugin, RoundInfo, UpdateInfo};
use std::time::Duration;

const UPDATES: usize = 8;
const PARAMS: usize = 1 << 20;

/// `combine-chunk` of a native rule: (offset, global chunk, update chunks) -> new chunk.
type CombineFn = Box<dyn FnMut(u64, Vec<f32>, Vec<Vec<f32>>) -> Vec<f32>>;

pub fn run(runtime: &Runtime, reps: usize) -> Vec<Row> {
    let (global, ups) = infra_builtins::sample::updates(UPDATES, PARAMS, 0, 42);
    let peers: Vec<String> = (0..UPDATES).map(|i| format!("peer-{i}")).collect();
    let samples: Vec<u64> = (0..UPDATES as u64).map(|i| 100 + 10 * i).collect();
    let refs: Vec<UpdateRef> = (0..UPDATES)
        .map(|i| UpdateRef {
            peer: &peers[i],
            samples: samples[i],
            loss: 0.3,
            params: &ups[i],
        })
        .collect();
    let mut rows = Vec::new();
    // FedAvg, native: the weights and the weighted sum of the same crate, whole vectors.
    let mut out = vec![0f32; PARAMS];
    let native = median_time(reps, || {
        let total: f64 = samples.iter().map(|&s| s as f64).sum();
        let w: Vec<f32> = samples.iter().map(|&s| (s as f64 / total) as f32).collect();
        weighted_sum(&mut out, &w, &ups);
        assert!(all_finite(&out));
    });
    let plugin = infra_builtins::load(runtime, "fedavg", PluginKind::Aggregator).unwrap();
    let mut inst = plugin.instance();
    let mut wasm_out = Vec::new();
    let mut row = |what: String, target: &str, t: Duration, got: &[f32]| {
        assert_same_bits(&what, got, &out);
        rows.push(throughput_row(what, target, t, native));
    };
    // As shipped: the plugin answers `plan-merge` with its weights, the host sums natively.
    let t = median_time(reps, || {
        inst.aggregate_into(1, &global, &refs, DEFAULT_CHUNK, &mut wasm_out)
            .unwrap();
    });
    row(
        "fedavg 8 x 1M f32, weighted-sum plan (default)".into(),
        ">= 0.5x",
        t,
        &wasm_out,
    );
    // The sandboxed sum: every chunk of every update copied into the guest.
    for chunk in [
        DEFAULT_CHUNK / 4,
        DEFAULT_CHUNK,
        DEFAULT_CHUNK * 4,
        DEFAULT_CHUNK * 16,
    ] {
        let t = median_time(reps, || {
            inst.aggregate_streamed_into(1, &global, &refs, chunk, &mut wasm_out)
                .unwrap();
        });
        let what = format!(
            "fedavg 8 x 1M f32, summed in Wasm, chunks of {}K",
            chunk >> 10
        );
        row(what, "-", t, &wasm_out);
    }

    // Median and trimmed mean: native runs the same trait impls over the same chunks, fed
    // with owned chunk copies (what the guest receives across the boundary).
    let info = RoundInfo {
        round: 1,
        num_params: PARAMS as u64,
        updates: (0..UPDATES)
            .map(|i| UpdateInfo {
                peer: peers[i].clone(),
                samples: samples[i],
                loss: 0.3,
            })
            .collect(),
    };
    for name in ["median", "trimmed-mean"] {
        let mut native_out = vec![0f32; PARAMS];
        let native = median_time(reps.min(7), || {
            let mut agg: CombineFn = if name == "median" {
                let mut m = Median::default();
                m.begin_round(info.clone()).unwrap();
                Box::new(move |o, g, u| m.combine_chunk(o, g, u).unwrap())
            } else {
                let mut m = TrimmedMean::default();
                m.begin_round(info.clone()).unwrap();
                Box::new(move |o, g, u| m.combine_chunk(o, g, u).unwrap())
            };
            for off in (0..PARAMS).step_by(DEFAULT_CHUNK) {
                let end = (off + DEFAULT_CHUNK).min(PARAMS);
                let chunk: Vec<Vec<f32>> = ups.iter().map(|u| u[off..end].to_vec()).collect();
                let new = agg(off as u64, global[off..end].to_vec(), chunk);
                native_out[off..end].copy_from_slice(&new);
            }
        });
        rows.push(checked_row(
            runtime,
            name,
            format!("{name} 8 x 1M f32"),
            reps,
            (&global, &refs),
            (native, &native_out),
        ));
    }
    rows.push(krum_row(runtime, reps, &info, &global, &ups, &refs));
    rows
}

/// Krum on the same data: the scan pass (pairwise distances) in the plugin, then the mean of
/// the selected update(s), which the plugin hands to the host as a weighted-sum plan. Native:
/// the same scan over owned chunk copies, the same plan, the same sum.
fn krum_row(
    runtime: &Runtime,
    reps: usize,
    info: &RoundInfo,
    global: &[f32],
    ups: &[Vec<f32>],
    refs: &[UpdateRef<'_>],
) -> Row {
    let mut native_out = vec![0f32; PARAMS];
    let native = median_time(reps.min(7), || {
        let mut k = Krum::default();
        k.configure(&Vec::new()).unwrap(); // as the host does: the defaults (m = 1)
        k.begin_round(info.clone()).unwrap();
        for off in (0..PARAMS).step_by(DEFAULT_CHUNK) {
            let end = (off + DEFAULT_CHUNK).min(PARAMS);
            let chunk: Vec<Vec<f32>> = ups.iter().map(|u| u[off..end].to_vec()).collect();
            k.scan_chunk(off as u64, chunk).unwrap();
        }
        let MergePlan::WeightedSum(w) = k.plan_merge().unwrap() else {
            panic!("krum plans a weighted sum")
        };
        native_out.fill(0.0);
        for (u, &w) in ups.iter().zip(&w.updates).filter(|(_, &w)| w != 0.0) {
            for (o, x) in native_out.iter_mut().zip(u) {
                *o += w * x;
            }
        }
        std::hint::black_box(k.end_round().unwrap());
    });
    checked_row(
        runtime,
        "krum",
        "krum 8 x 1M f32 (scan in the plugin, mean of the selected one by the host)".into(),
        reps,
        (global, refs),
        (native, &native_out),
    )
}

/// Times the built-in `name` merging the round, checks that it gives the native result bit
/// for bit, and reports it against the native time.
fn checked_row(
    runtime: &Runtime,
    name: &str,
    what: String,
    reps: usize,
    (global, refs): (&[f32], &[UpdateRef<'_>]),
    (native, native_out): (Duration, &[f32]),
) -> Row {
    let plugin = infra_builtins::load(runtime, name, PluginKind::Aggregator).unwrap();
    let mut inst = plugin.instance();
    let mut wasm_out = Vec::new();
    let t = median_time(reps.min(7), || {
        wasm_out = inst
            .aggregate(1, global, refs, DEFAULT_CHUNK)
            .unwrap()
            .params;
    });
    assert_same_bits(&what, &wasm_out, native_out);
    throughput_row(what, "-", t, native)
}

/// The Wasm plugin's result is the native reference's, bit for bit.
fn assert_same_bits(what: &str, wasm: &[f32], native: &[f32]) {
    assert_eq!(wasm.len(), native.len(), "{what}: lengths");
    if let Some(i) = (0..wasm.len()).find(|&i| wasm[i].to_bits() != native[i].to_bits()) {
        panic!(
            "{what}: Wasm gives {} at coordinate {i}, native {}",
            wasm[i], native[i]
        );
    }
}

/// A row of Wasm time `t` against `native`, both also as throughput.
fn throughput_row(what: String, target: &str, t: Duration, native: Duration) -> Row {
    Row {
        what,
        wasm: format!("{} ({})", fmt_time(t), gbps(t)),
        native: format!("{} ({})", fmt_time(native), gbps(native)),
        ratio: format!(
            "{:.2}x native throughput",
            native.as_secs_f64() / t.as_secs_f64()
        ),
        target: target.into(),
    }
}

/// Throughput over the round's updates.
fn gbps(t: Duration) -> String {
    let bytes = (UPDATES * PARAMS * 4) as f64;
    format!("{:.2} GB/s", bytes / t.as_secs_f64() / 1e9)
}
