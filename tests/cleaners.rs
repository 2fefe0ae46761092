//! The built-in cleaning steps and the chain, through their real components.

use infra_runtime::cleaner::{Batch, CleaningChain};
use infra_runtime::PluginKind;
use infra_tests::*;

fn batch(width: usize, rows: &[(&[f32], i32)]) -> Batch {
    Batch {
        columns: (0..width).map(|c| format!("c{c}")).collect(),
        features: rows.iter().flat_map(|(f, _)| f.iter().copied()).collect(),
        labels: rows.iter().map(|(_, l)| *l).collect(),
    }
}

#[test]
fn drop_invalid_counts_each_reason() {
    let rt = runtime();
    let p = configured(
        &rt,
        "drop-invalid",
        PluginKind::Cleaner,
        &[("num-classes", "3"), ("width", "2")],
    );
    let mut inst = p.instance();
    let b = batch(
        2,
        &[
            (&[1.0, 2.0], 0),
            (&[f32::NAN, 2.0], 1),
            (&[1.0, f32::INFINITY], 1),
            (&[1.0, 2.0], 3),
            (&[1.0, 2.0], -1),
            (&[3.0, 4.0], 2),
        ],
    );
    let (out, report) = inst.apply(&b).unwrap();
    assert_eq!(out.labels, vec![0, 2]);
    assert_eq!(out.features, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!((report.rows_in, report.rows_out), (6, 2));
    let mut dropped: Vec<_> = report
        .dropped
        .iter()
        .map(|d| (d.reason.as_str(), d.rows))
        .collect();
    dropped.sort();
    assert_eq!(dropped, vec![("label-out-of-range", 2), ("non-finite", 2)]);

    let wide = batch(3, &[(&[1.0, 2.0, 3.0], 0)]);
    let (out, report) = inst.apply(&wide).unwrap();
    assert!(out.labels.is_empty());
    assert_eq!(report.dropped[0].reason, "wrong-width");
}

#[test]
fn standardize_fits_over_all_batches_then_applies() {
    let rt = runtime();
    let chain = CleaningChain::new(vec![builtin(&rt, "standardize", PluginKind::Cleaner)]).unwrap();
    // Column 0 over both batches: 1, 2, 3, 4 (mean 2.5); column 1 is constant.
    let b1 = batch(2, &[(&[1.0, 7.0], 0), (&[2.0, 7.0], 0)]);
    let b2 = batch(2, &[(&[3.0, 7.0], 0), (&[4.0, 7.0], 0)]);
    let (out, reports) = chain.run(vec![b1, b2]).unwrap();
    let col0: Vec<f32> = out
        .iter()
        .flat_map(|b| b.features.chunks(2).map(|r| r[0]))
        .collect();
    let mean: f32 = col0.iter().sum::<f32>() / 4.0;
    let var: f32 = col0.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
    assert!(
        mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
        "mean {mean}, var {var}"
    );
    let col1: Vec<f32> = out
        .iter()
        .flat_map(|b| b.features.chunks(2).map(|r| r[1]))
        .collect();
    assert_eq!(col1, vec![0.0; 4], "a constant column is only centred");
    assert_eq!(reports[0].rows_out, 4);
    assert_eq!(reports[0].values_changed, 8);
}

#[test]
fn clip_outliers_clips_to_z_sigma() {
    let rt = runtime();
    let p = configured(&rt, "clip-outliers", PluginKind::Cleaner, &[("z", "1")]);
    let chain = CleaningChain::new(vec![p]).unwrap();
    let rows: Vec<(Vec<f32>, i32)> = (0..10)
        .map(|i| (vec![if i == 9 { 100.0 } else { 0.0 }], 0))
        .collect();
    let refs: Vec<(&[f32], i32)> = rows.iter().map(|(f, l)| (f.as_slice(), *l)).collect();
    let (out, reports) = chain.run(vec![batch(1, &refs)]).unwrap();
    // mean 10, std 30: 100 -> 40, and the zeros stay (within 10 ± 30).
    assert_eq!(out[0].features[9], 40.0);
    assert_eq!(&out[0].features[..9], &[0.0; 9]);
    assert_eq!(reports[0].values_changed, 1);
    assert_eq!(reports[0].rows_out, 10);
}

#[test]
fn dedup_drops_repeats_across_batches() {
    let rt = runtime();
    let chain = CleaningChain::new(vec![builtin(&rt, "dedup", PluginKind::Cleaner)]).unwrap();
    let b1 = batch(2, &[(&[1.0, 2.0], 0), (&[1.0, 2.0], 0), (&[1.0, 2.0], 1)]);
    let b2 = batch(2, &[(&[1.0, 2.0], 0), (&[5.0, 6.0], 0)]);
    let (out, reports) = chain.run(vec![b1, b2]).unwrap();
    assert_eq!(
        out[0].labels,
        vec![0, 1],
        "same features, other label: kept"
    );
    assert_eq!(out[1].features, vec![5.0, 6.0]);
    assert_eq!(reports[0].dropped.get("duplicate"), Some(&2));
}

#[test]
fn chain_report_matches_planted_bad_rows() {
    let rt = runtime();
    let (table, planted) = infra_builtins::sample::dirty_table(3000, 8, 10, 11);
    let chain = CleaningChain::new(vec![
        configured(
            &rt,
            "drop-invalid",
            PluginKind::Cleaner,
            &[("num-classes", "10")],
        ),
        builtin(&rt, "dedup", PluginKind::Cleaner),
        builtin(&rt, "standardize", PluginKind::Cleaner),
    ])
    .unwrap();
    let (out, reports) = chain.run(vec![table]).unwrap();
    assert_eq!(reports[0].rows_in, 3000);
    assert_eq!(reports[0].dropped.get("non-finite"), Some(&planted[0]));
    assert_eq!(
        reports[0].dropped.get("label-out-of-range"),
        Some(&planted[1])
    );
    assert_eq!(reports[1].dropped.get("duplicate"), Some(&planted[2]));
    let kept = 3000 - planted.iter().sum::<u64>();
    assert_eq!(reports[2].rows_out, kept);
    assert_eq!(out[0].labels.len() as u64, kept);
    assert!(out[0].features.iter().all(|v| v.is_finite()));
}

#[test]
fn a_malformed_batch_is_refused_with_its_shape() {
    let rt = runtime();
    let mut inst = builtin(&rt, "dedup", PluginKind::Cleaner).instance();
    let bad = Batch {
        columns: vec!["a".into(), "b".into()],
        features: vec![1.0, 2.0, 3.0],
        labels: vec![0, 1],
    };
    let err = inst.apply(&bad).unwrap_err().to_string();
    assert!(
        err.contains("3 feature values for 2 rows of 2 columns"),
        "{err}"
    );
}
