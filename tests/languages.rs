//! Plugins written in Python (componentize-py) and JavaScript (jco/componentize-js), built by
//! `scripts/build-examples.sh`, run through the same host as the Rust ones.

use infra_runtime::aggregator::UpdateRef;
use infra_runtime::cleaner::Batch;
use infra_runtime::{PluginError, PluginKind};
use infra_tests::*;

#[test]
fn python_shortest_job_first_scheduler() {
    let rt = runtime();
    let plugin = load_example(&rt, "python-sjf", PluginKind::Scheduler);
    let nodes = vec![
        node("n0", res(1000, 1000, 0)),
        node("n1", res(1000, 1000, 0)),
    ];
    const LONG: u64 = 1;
    const SHORT: u64 = 2;
    const MEDIUM: u64 = 3;
    const GPU: u64 = 4;
    let mut long = task(LONG, 9, res(1000, 10, 0));
    long.est_duration_ms = 60_000;
    let mut short = task(SHORT, 1, res(600, 10, 0));
    short.est_duration_ms = 100;
    let mut medium = task(MEDIUM, 5, res(600, 10, 0));
    medium.est_duration_ms = 5_000;
    let mut gpu = task(GPU, 9, res(10, 10, 1));
    gpu.est_duration_ms = 1;
    // Shortest first: GPU (fits nowhere, pending), SHORT -> n0, MEDIUM -> n1, LONG -> none left.
    let p = pending(&[long, short, medium, gpu], &nodes);
    let placed = plugin.instance().schedule(&p).unwrap();
    assert_eq!(
        pairs(&p, &placed),
        vec![(SHORT, "n0".to_string()), (MEDIUM, "n1".to_string())]
    );

    let err = plugin
        .with_config(vec![("speed".into(), "max".into())])
        .err()
        .unwrap();
    assert!(
        matches!(err, PluginError::Failed { .. }) && err.to_string().contains("speed"),
        "{err}"
    );
}

#[test]
fn python_aggregator_names_weights_and_the_host_sums_them() {
    let rt = runtime();
    let plugin = load_example(&rt, "python-server-lr", PluginKind::Aggregator)
        .with_config(vec![("server-lr".into(), "0.5".into())])
        .unwrap();
    let n = 1000;
    let global: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let ups: Vec<Vec<f32>> = (0..3)
        .map(|k| (0..n).map(|i| (i as f32 * 0.11 + k as f32).cos()).collect())
        .collect();
    let peers = ["a", "b", "c"];
    let refs: Vec<UpdateRef> = (0..3)
        .map(|k| UpdateRef {
            peer: peers[k],
            samples: [10, 30, 60][k],
            loss: 0.2,
            params: &ups[k],
        })
        .collect();
    let mut inst = plugin.instance();
    let mut planned = Vec::new();
    let summary = inst
        .aggregate_into(1, &global, &refs, 256, &mut planned)
        .unwrap();
    assert_eq!(
        summary,
        "python-server-lr: 3 updates, 100 samples, server-lr 0.5"
    );
    // Halfway between the old parameters and FedAvg of the updates.
    for i in [0, 499, 999] {
        let fedavg = 0.1 * ups[0][i] + 0.3 * ups[1][i] + 0.6 * ups[2][i];
        let want = 0.5 * global[i] + 0.5 * fedavg;
        assert!(
            (planned[i] - want).abs() < 1e-5,
            "{i}: {} vs {want}",
            planned[i]
        );
    }
    // The same plugin's own combine-chunk, in the interpreter, gives the same bits.
    let mut streamed = Vec::new();
    inst.aggregate_streamed_into(2, &global, &refs, 256, &mut streamed)
        .unwrap();
    assert_eq!(planned, streamed);

    let err = plugin
        .with_config(vec![("server-lr".into(), "2".into())])
        .err()
        .unwrap();
    assert!(err.to_string().contains("server-lr"), "{err}");
}

#[test]
fn javascript_range_filter_cleaner() {
    let rt = runtime();
    let plugin = load_example(&rt, "js-range-filter", PluginKind::Cleaner)
        .with_config(vec![
            ("min".into(), "0".into()),
            ("max".into(), "16".into()),
        ])
        .unwrap();
    let batch = Batch {
        columns: vec!["a".into(), "b".into()],
        features: vec![1.0, 2.0, -1.0, 3.0, 4.0, 17.0, f32::NAN, 1.0, 16.0, 0.0],
        labels: vec![0, 1, 2, 3, 4],
    };
    let (out, report) = plugin.instance().apply(&batch).unwrap();
    assert_eq!(out.labels, vec![0, 4]);
    assert_eq!(out.features, vec![1.0, 2.0, 16.0, 0.0]);
    assert_eq!((report.rows_in, report.rows_out), (5, 2));
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(
        (report.dropped[0].reason.as_str(), report.dropped[0].rows),
        ("out-of-range", 3)
    );

    let err = plugin
        .with_config(vec![("min".into(), "zero".into())])
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("min") && err.to_string().contains("zero"),
        "{err}"
    );
}
