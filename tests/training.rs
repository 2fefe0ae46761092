//! Native training (issue 3) through real libtorch and real plugins: the digits accuracy bar,
//! exact parameter and checkpoint round trips (a model built from a vector draws no random
//! weights), CSV errors, non-iid convergence with `median`, and a trapping aggregator. The
//! engine's failure handling and both cleaning modes are `rounds.rs`.

use infra_rounds::local::{train, LocalOptions};
use infra_rounds::EngineError;
use infra_tests::runtime;
use infra_train::job::ModelSpec;
use infra_train::{checkpoint, Dataset, JobSpec, Model};

#[test]
fn the_default_digits_job_reaches_96_percent() {
    let job = JobSpec::default_digits();
    let report = train(&job, &runtime(), &LocalOptions::default()).unwrap();
    assert!(
        report.final_accuracy >= 0.96,
        "accuracy {}",
        report.final_accuracy
    );
    assert_eq!(report.rounds, job.rounds);
    assert_eq!(report.history.len(), job.rounds as usize);
    // Two shards, two workers: every round one task per worker, both in one wave.
    for w in &report.workers {
        assert_eq!(w.tasks, job.rounds, "{w:?}");
        assert!(w.utilisation > 0.0 && w.utilisation <= 1.0 + 1e-9, "{w:?}");
    }
    assert!(report
        .history
        .iter()
        .all(|r| r.waves == 1 && r.tasks == (2, 2)));
    // The MLP 64-128-10, counted from its architecture: weights and biases of two layers.
    assert_eq!(report.parameters, 64 * 128 + 128 + 128 * 10 + 10);
    // Each task receives the global model and returns an update, 4 bytes a parameter.
    let tasks = (job.rounds * 2) as u64;
    assert_eq!(
        report.parameter_bytes_moved,
        tasks * 2 * 4 * report.parameters as u64
    );
    // Both tasks of a wave run at once, so the busy time of the two workers adds up to more
    // than the wave's wall time (Σ busy / wall, bounded by the two workers), and the
    // utilisation is that speedup shared over the two.
    let s = report.speedup_vs_one_worker;
    assert!(s > 1.0 && s <= 2.0 + 1e-9, "speedup {s}");
    assert!((report.utilisation - s / 2.0).abs() < 1e-9);
    let busy: f64 = report.workers.iter().map(|w| w.busy_seconds).sum();
    let per_worker: f64 = report.workers.iter().map(|w| w.utilisation).sum();
    assert!(
        (per_worker - s).abs() < 1e-6,
        "{per_worker} vs {s} ({busy} s busy)"
    );
    assert_eq!(report.plugins["scheduler"].0, "priority");
    assert_eq!(report.plugins["aggregator"].0, "fedavg");
    assert_eq!(
        report.cleaning[0].rows_in, 1797,
        "the embedded digits have 1,797 rows"
    );
}

#[test]
fn flat_parameters_round_trip_exactly() {
    for spec in [
        ModelSpec::Mlp {
            hidden: vec![32, 16],
        },
        ModelSpec::Cnn { channels: [4, 8] },
    ] {
        tch::manual_seed(1);
        let a = Model::new(&spec, 64, 10, tch::Device::Cpu).unwrap();
        tch::manual_seed(2);
        let mut b = Model::new(&spec, 64, 10, tch::Device::Cpu).unwrap();
        let flat = a.flat();
        assert_eq!(flat.len(), a.num_params());
        assert_ne!(b.flat(), flat, "different seeds, different weights");
        b.load_flat(&flat).unwrap();
        let back = b.flat();
        assert!(
            back.iter()
                .zip(&flat)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "bit-exact"
        );
        let xs = tch::Tensor::from_slice(&Dataset::digits().features[..64 * 5]).view([5, 64]);
        let (ya, yb) = (a.forward(&xs, false), b.forward(&xs, false));
        assert_eq!(
            Vec::<f32>::try_from(ya.flatten(0, -1)).unwrap(),
            Vec::<f32>::try_from(yb.flatten(0, -1)).unwrap()
        );
        assert!(
            b.load_flat(&flat[1..]).is_err(),
            "a wrong length is refused"
        );

        // Built straight from the vector (as a round's workers and evaluation do): the same
        // model, and no random weights drawn (tch's generator is where it was).
        tch::manual_seed(3);
        let c = Model::loaded(&spec, 64, 10, tch::Device::Cpu, &flat).unwrap();
        let after_loaded = Model::new(&spec, 64, 10, tch::Device::Cpu).unwrap().flat();
        tch::manual_seed(3);
        let fresh = Model::new(&spec, 64, 10, tch::Device::Cpu).unwrap().flat();
        assert_eq!(
            after_loaded, fresh,
            "loading draws nothing from tch's generator"
        );
        assert!(c
            .flat()
            .iter()
            .zip(&flat)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(
            Vec::<f32>::try_from(c.forward(&xs, false).flatten(0, -1)).unwrap(),
            Vec::<f32>::try_from(ya.flatten(0, -1)).unwrap()
        );
        let Err(e) = Model::loaded(&spec, 64, 10, tch::Device::Cpu, &flat[1..]) else {
            panic!("a wrong length is refused when loading too");
        };
        assert!(e.to_string().contains("parameters given"), "{e}");
    }
}

#[test]
fn checkpoints_round_trip_exactly_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::Cnn { channels: [4, 8] };
    tch::manual_seed(3);
    let a = Model::new(&spec, 64, 10, tch::Device::Cpu).unwrap();
    let mut meta = checkpoint::Metadata::new();
    meta.insert("job".into(), "t".into());
    meta.insert("round".into(), "4".into());
    let path = dir.path().join("t.safetensors");
    checkpoint::save(&a, &meta, &path).unwrap();
    tch::manual_seed(4);
    let mut b = Model::new(&spec, 64, 10, tch::Device::Cpu).unwrap();
    let got = checkpoint::load(&mut b, &path).unwrap();
    assert_eq!(got, meta);
    assert!(a
        .flat()
        .iter()
        .zip(&b.flat())
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    // Another architecture cannot load it.
    let mut c = Model::new(
        &ModelSpec::Mlp { hidden: vec![8] },
        64,
        10,
        tch::Device::Cpu,
    )
    .unwrap();
    let err = checkpoint::load(&mut c, &path).unwrap_err().to_string();
    assert!(err.contains("no tensor"), "{err}");
}

#[test]
fn csv_errors_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "a,b,label\n1,2,0\n3,x,1\n").unwrap();
    let err = Dataset::load_csv(&path, "label", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}:3: column 2 (`b`): `x` is not a number",
            path.display()
        )),
        "{err}"
    );

    std::fs::write(&path, "a,b,label\n1,2,0\n3,4\n").unwrap();
    let err = Dataset::load_csv(&path, "label", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":3: 2 cells, the header has 3"), "{err}");

    std::fs::write(&path, "a,b,label\n1,2,zero\n").unwrap();
    let err = Dataset::load_csv(&path, "label", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":2: column 3 (`label`): label `zero` is not an integer"),
        "{err}"
    );

    let err = Dataset::load_csv(&path, "class", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":1: no label column `class`"), "{err}");

    // Empty cells and `nan` are values for the cleaners, not parse errors.
    std::fs::write(&path, "a,b,label\n,nan,1\n").unwrap();
    let d = Dataset::load_csv(&path, "label", None).unwrap();
    assert!(d.features.iter().all(|v| v.is_nan()));
}

#[test]
fn a_broken_job_file_is_refused_with_the_field() {
    let mut text = infra_train::job::DEFAULT_JOB.to_string();
    text.push_str("\nlearning-rate = 3\n");
    let err = JobSpec::parse(&text, "job.toml").unwrap_err().to_string();
    assert!(
        err.contains("job.toml") && err.contains("learning-rate"),
        "{err}"
    );
    let text = infra_train::job::DEFAULT_JOB.replace("kind = \"adam\"", "kind = \"adamw\"");
    let err = JobSpec::parse(&text, "job.toml").unwrap_err().to_string();
    assert!(
        err.contains("optimizer.kind") && err.contains("adamw"),
        "{err}"
    );
}

#[test]
fn a_job_beyond_the_bounds_or_with_a_path_for_a_name_is_refused() {
    let refused = |from: &str, to: &str, names: &str| {
        let text = infra_train::job::DEFAULT_JOB.replace(from, to);
        assert_ne!(
            text,
            infra_train::job::DEFAULT_JOB,
            "`{from}` is in the default job"
        );
        let err = JobSpec::parse(&text, "job.toml").unwrap_err().to_string();
        assert!(err.contains(names), "{to}: {err}");
    };
    refused(
        "rounds = 12",
        "rounds = 100001",
        "`rounds` = 100001 is more than",
    );
    refused("threads = 1", "threads = 4294967297", "`threads`");
    refused(
        "local-epochs = 3",
        "local-epochs = 1000000",
        "`training.local-epochs`",
    );
    refused(
        "batch-size = 32",
        "batch-size = 100000000",
        "`training.batch-size`",
    );
    refused("shards = 2", "shards = 1000000", "`data.shards`");
    refused(
        "hidden = [128]",
        "hidden = [1000000]",
        "a layer of width 1000000",
    );
    refused("hidden = [128]", "hidden = [0]", "a layer of width 0");
    refused(
        "hidden = [128]",
        &format!("hidden = [{}]", ["8"; 17].join(", ")),
        "17 layers",
    );
    for bad in ["../../etc", "/tmp/x", "a b", "", ".hidden", &"x".repeat(65)] {
        refused(
            "name = \"digits\"",
            &format!("name = {bad:?}"),
            "a job name has",
        );
    }
    // At the bounds, accepted.
    let text = infra_train::job::DEFAULT_JOB
        .replace("name = \"digits\"", "name = \"Digits_v2.1-x\"")
        .replace("hidden = [128]", "hidden = [16384]");
    JobSpec::parse(&text, "job.toml").unwrap();
}

#[test]
fn non_iid_shards_with_median_still_converge() {
    let mut job = JobSpec::default_digits();
    job.workers = 2;
    job.data.shards = Some(4);
    job.data.skew = 0.8;
    job.rounds = 15;
    job.aggregator.plugin = "median".into();
    let shards = Dataset::digits()
        .split(0.2, job.seed)
        .0
        .shards(4, 0.8, job.seed);
    let distinct = |d: &Dataset| {
        d.labels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let mostly = |d: &Dataset| {
        let mut counts = [0usize; 10];
        d.labels.iter().for_each(|&l| counts[l as usize] += 1);
        *counts.iter().max().unwrap() as f64 / d.rows() as f64
    };
    let shape: Vec<(f64, usize)> = shards.iter().map(|s| (mostly(s), distinct(s))).collect();
    // iid shards would have ~10 % of their rows in their most common class.
    assert!(
        shape.iter().all(|&(m, d)| m > 0.3 && d >= 8),
        "skewed but not disjoint: {shape:?}"
    );
    let report = train(&job, &runtime(), &LocalOptions::default()).unwrap();
    assert!(
        report.final_accuracy >= 0.9,
        "accuracy {}",
        report.final_accuracy
    );
    assert!(
        report.history.iter().all(|r| r.waves == 2),
        "4 shards on 2 workers take two waves"
    );
}

#[test]
fn a_trapping_aggregator_fails_its_round_and_the_last_good_checkpoint_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = JobSpec::default_digits();
    job.rounds = 5;
    job.aggregator.plugin = infra_builtins::guest_artifact("trap-aggregator")
        .display()
        .to_string();
    job.aggregator
        .config
        .insert("trap-round".into(), toml::Value::Integer(3));
    let opts = LocalOptions {
        checkpoint_dir: Some(dir.path().into()),
        on_round: None,
    };
    let err = train(&job, &runtime(), &opts).unwrap_err();
    match &err {
        EngineError::Round { round, cause } => {
            assert_eq!(*round, 3);
            assert!(
                cause.contains("trap-aggregator") && cause.contains("trapped"),
                "{cause}"
            );
        }
        other => panic!("expected a round failure, got {other}"),
    }
    let mut model = Model::new(&job.model, 64, 10, tch::Device::Cpu).unwrap();
    let meta = checkpoint::load(&mut model, &dir.path().join("digits.safetensors")).unwrap();
    assert_eq!(meta["round"], "2", "the checkpoint of the last good round");
    assert!(meta["plugin.aggregator"].starts_with("trap-aggregator sha256:"));
}

#[test]
fn every_example_job_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            JobSpec::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "examples/digits*.toml");
}
