//! The built-in aggregators through their real components, including the edge cases: one
//! update, identical updates, a NaN in an update, poisoned updates, and chunk boundaries;
//! and the `weighted-sum` merge plan against the same sum computed in the sandbox.

use infra_runtime::aggregator::{Aggregate, UpdateRef};
use infra_runtime::{Plugin, PluginError, PluginKind};
use infra_tests::*;

const ALL: [&str; 4] = ["fedavg", "median", "trimmed-mean", "krum"];

fn run(
    name: &str,
    config: &[(&str, &str)],
    ups: &[(u64, Vec<f32>)],
    chunk: usize,
) -> Result<Aggregate, PluginError> {
    let rt = runtime();
    let p = configured(&rt, name, PluginKind::Aggregator, config);
    merge(&p, ups, chunk, false)
}

/// One round on `p`; `streamed` makes the host call `combine-chunk` even when the plugin
/// answers `plan-merge` with a weighted sum.
fn merge(
    p: &Plugin,
    ups: &[(u64, Vec<f32>)],
    chunk: usize,
    streamed: bool,
) -> Result<Aggregate, PluginError> {
    let peers: Vec<String> = (0..ups.len()).map(|i| format!("peer-{i}")).collect();
    let refs: Vec<UpdateRef> = ups
        .iter()
        .zip(&peers)
        .map(|((s, u), p)| UpdateRef {
            peer: p,
            samples: *s,
            loss: 0.1,
            params: u,
        })
        .collect();
    let global = vec![0.5f32; ups[0].1.len()];
    let mut inst = p.instance();
    if !streamed {
        return inst.aggregate(1, &global, &refs, chunk);
    }
    let mut params = Vec::new();
    let summary = inst.aggregate_streamed_into(1, &global, &refs, chunk, &mut params)?;
    Ok(Aggregate { params, summary })
}

#[test]
fn fedavg_weights_by_samples() {
    let ups = vec![(1, vec![1.0, 10.0, -4.0]), (3, vec![5.0, 2.0, 0.0])];
    let a = run("fedavg", &[], &ups, 2).unwrap();
    assert_eq!(a.params, vec![4.0, 4.0, -1.0]);
    assert_eq!(a.summary, "fedavg: 2 updates, 4 samples");
}

#[test]
fn one_update_and_identical_updates_come_back_unchanged() {
    let u: Vec<f32> = (0..1000).map(|i| (i as f32).sin()).collect();
    for name in ALL {
        let one = run(name, &[], &[(10, u.clone())], 64).unwrap();
        assert_eq!(one.params, u, "{name} with one update");
        let same: Vec<(u64, Vec<f32>)> = (0..5).map(|i| (i + 1, u.clone())).collect();
        let all = run(name, &[], &same, 64).unwrap();
        for (a, b) in all.params.iter().zip(&u) {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_nan_in_an_update_is_named_by_fedavg_and_skipped_by_robust_rules() {
    let mut bad = vec![1.0f32; 300];
    bad[257] = f32::NAN;
    let ups = vec![
        (1, vec![1.0; 300]),
        (1, vec![2.0; 300]),
        (1, bad),
        (1, vec![3.0; 300]),
    ];
    let err = run("fedavg", &[], &ups, 100).unwrap_err().to_string();
    assert!(
        err.contains("peer-2") && err.contains("coordinate 257"),
        "{err}"
    );

    let med = run("median", &[], &ups, 100).unwrap();
    assert_eq!(med.params[0], 1.5, "median of 1,1,2,3");
    assert_eq!(med.params[257], 2.0, "median of the finite 1,2,3");
    let tm = run("trimmed-mean", &[("trim", "0.25")], &ups, 100).unwrap();
    assert_eq!(tm.params[0], 1.5, "mean of 1,2 after trimming 1 and 3");
    assert_eq!(tm.params[257], 2.0);
    let k = run("krum", &[("f", "1")], &ups, 100).unwrap();
    assert!(!k.summary.contains("peer-2"), "{}", k.summary);
}

#[test]
fn robust_rules_resist_a_poisoned_update() {
    let (center, ups) = infra_builtins::sample::updates(7, 5000, 1, 3);
    let ups: Vec<(u64, Vec<f32>)> = ups.into_iter().map(|u| (100, u)).collect();
    let dist = |p: &[f32]| {
        p.iter()
            .zip(&center)
            .map(|(a, c)| (a - c).abs())
            .fold(0f32, f32::max)
    };
    let fedavg = run("fedavg", &[], &ups, 1024).unwrap();
    assert!(dist(&fedavg.params) > 1.0, "fedavg is pulled away");
    for (name, cfg) in [
        ("median", vec![]),
        ("trimmed-mean", vec![("trim", "0.15")]),
        ("krum", vec![]),
    ] {
        let a = run(name, &cfg, &ups, 1024).unwrap();
        assert!(
            dist(&a.params) < 0.01,
            "{name}: max deviation {}",
            dist(&a.params)
        );
    }
    let krum = run("krum", &[], &ups, 1024).unwrap();
    assert!(
        !krum.summary.contains("peer-6"),
        "krum must not select the poisoned peer: {}",
        krum.summary
    );
    let multi = run("krum", &[("m", "3")], &ups, 1024).unwrap();
    assert_eq!(
        multi.summary.matches("peer-").count(),
        3,
        "{}",
        multi.summary
    );
    assert!(!multi.summary.contains("peer-6"), "{}", multi.summary);
}

#[test]
fn results_do_not_depend_on_the_chunk_size() {
    let ups = sample_updates(6, 10_007, 5, |i| i + 1);
    for name in ALL {
        let whole = run(name, &[], &ups, 1 << 20).unwrap();
        for chunk in [1, 7, 4096] {
            let chunked = run(name, &[], &ups, chunk).unwrap();
            assert_eq!(
                chunked.params, whole.params,
                "{name} with chunks of {chunk}"
            );
        }
    }
}

#[test]
fn a_model_larger_than_the_plugin_memory_cap_streams_through() {
    // 4 updates x 24 Mi f32 = 384 MiB of updates against a 256 MiB cap per instance.
    let n = 24 << 20;
    let ups: Vec<(u64, Vec<f32>)> = (0..4).map(|i| (1, vec![i as f32; n])).collect();
    let rt = runtime();
    let fedavg = builtin(&rt, "fedavg", PluginKind::Aggregator);
    let chunk = infra_runtime::aggregator::DEFAULT_CHUNK;
    for streamed in [true, false] {
        let a = merge(&fedavg, &ups, chunk, streamed).unwrap();
        assert_eq!(a.params.len(), n);
        assert!(a.params.iter().all(|&v| v == 1.5), "streamed: {streamed}");
    }
    let med = run("median", &[], &ups, chunk).unwrap();
    assert!(med.params.iter().all(|&v| v == 1.5));
}

#[test]
fn a_weighted_sum_plan_gives_what_the_sandbox_computes_bit_for_bit() {
    let ups = sample_updates(7, 20_011, 9, |i| 10 * i + 3);
    let rt = runtime();
    for (name, config) in [
        ("fedavg", vec![]),
        ("krum", vec![]),
        ("krum", vec![("m", "3")]),
    ] {
        let p = configured(&rt, name, PluginKind::Aggregator, &config);
        let planned = merge(&p, &ups, 4096, false).unwrap();
        for chunk in [5, 4096] {
            let streamed = merge(&p, &ups, chunk, true).unwrap();
            assert_eq!(
                planned, streamed,
                "{name} {config:?}: plan vs chunks of {chunk}"
            );
        }
    }
    // The streamed path names a NaN's peer and coordinate, like the plan.
    let mut ups = vec![(1, vec![1.0f32; 300]), (1, vec![2.0; 300])];
    ups[1].1[123] = f32::NAN;
    let p = builtin(&rt, "fedavg", PluginKind::Aggregator);
    for streamed in [false, true] {
        let err = merge(&p, &ups, 100, streamed).unwrap_err().to_string();
        assert!(
            err.contains("peer-1") && err.contains("coordinate 123"),
            "streamed {streamed}: {err}"
        );
    }
}

#[test]
fn the_sorting_network_gives_the_per_coordinate_sort_bit_for_bit() {
    // Many ties and both signed zeros, so any difference in ordering would show in the bits.
    let values = [-1.5f32, -0.0, 0.0, 0.5, 2.0, 0.0, -0.0, 7.25];
    let m = 1000; // blocks of 256, SIMD bodies of 16 and a scalar tail of 8
    for n in [7usize, 8] {
        let ups: Vec<(u64, Vec<f32>)> = (0..n)
            .map(|k| {
                let mut u: Vec<f32> = (0..m)
                    .map(|i| values[(i * 7 + k * 3 + i / 11) % values.len()])
                    .collect();
                // One more coordinate, with a NaN in one update: a chunk holding it takes the
                // per-coordinate path.
                u.push(if k == 1 { f32::NAN } else { k as f32 });
                (1, u)
            })
            .collect();
        for (name, config) in [("median", vec![]), ("trimmed-mean", vec![("trim", "0.2")])] {
            let by_coordinate = run(name, &config, &ups, m + 1).unwrap().params;
            let by_network = run(name, &config, &ups, m).unwrap().params;
            let differs = (0..=m).find(|&i| by_network[i].to_bits() != by_coordinate[i].to_bits());
            if let Some(i) = differs {
                panic!(
                    "{name}, {n} updates, coordinate {i}: {:?} by the network, {:?} by coordinate",
                    by_network[i], by_coordinate[i]
                );
            }
        }
    }
}

#[test]
fn weights_the_host_cannot_use_are_refused_naming_the_plugin() {
    let rt = runtime();
    let bytes = guest_bytes("trap-aggregator");
    let ups = vec![(1, vec![1.0f32; 50]), (3, vec![2.0; 50])];
    for (plan, expect) in [
        ("short", "plan-merge gave 1 weights for 2 updates"),
        (
            "nan",
            "plan-merge gave a non-finite weight (NaN) for update 0",
        ),
    ] {
        let p = rt
            .load_kind(&bytes, PluginKind::Aggregator)
            .unwrap()
            .with_config(vec![
                ("trap-round".into(), "0".into()),
                ("plan".into(), plan.into()),
            ])
            .unwrap();
        let err = merge(&p, &ups, 16, false).unwrap_err();
        assert!(matches!(err, PluginError::Contract { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("trap-aggregator") && msg.contains(expect),
            "{msg}"
        );
        // The refusal concerns the plan only: streaming the same round works.
        let ok = merge(&p, &ups, 16, true).unwrap();
        assert!(
            ok.params.iter().all(|&v| v == 1.75),
            "{:?}",
            &ok.params[..3]
        );
    }
}

#[test]
fn mismatched_update_lengths_are_refused_before_any_call() {
    let ups = vec![(1, vec![1.0; 10]), (1, vec![1.0; 9])];
    let err = run("median", &[], &ups, 4).unwrap_err().to_string();
    assert!(
        err.contains("peer-1 has 9 parameters, the model has 10"),
        "{err}"
    );
}

/// `n` sample updates of `len` parameters (seed `seed`, one of them Byzantine), update `i` reporting
/// `samples(i)` samples.
fn sample_updates(
    n: usize,
    len: usize,
    seed: u64,
    samples: impl Fn(u64) -> u64,
) -> Vec<(u64, Vec<f32>)> {
    let (_, ups) = infra_builtins::sample::updates(n, len, 1, seed);
    ups.into_iter()
        .enumerate()
        .map(|(i, u)| (samples(i as u64), u))
        .collect()
}
