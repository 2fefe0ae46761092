//! Local training: mini-batch steps over a shard, and evaluation.

use crate::data::Dataset;
use crate::job::{OptimizerSpec, TrainingSpec};
use crate::model::Model;
use crate::TrainError;
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor};

/// Rows as tensors on the model's device.
pub(crate) fn tensors(model: &Model, data: &Dataset) -> (Tensor, Tensor) {
    let xs = Tensor::from_slice(&data.features)
        .view([data.rows() as i64, data.width() as i64])
        .to_device(model.device());
    let ys = Tensor::from_slice(&data.labels)
        .to_kind(Kind::Int64)
        .to_device(model.device());
    (xs, ys)
}

/// Trains `model` on `data` for `spec.local_epochs` passes with a fresh optimizer (clients
/// keep no optimizer state between rounds, as in FedAvg). Returns the mean training loss of
/// the last pass and the number of samples seen.
pub(crate) fn train(
    model: &Model,
    data: &Dataset,
    opt: &OptimizerSpec,
    spec: &TrainingSpec,
    seed: u64,
) -> Result<(f32, u64), TrainError> {
    if data.rows() == 0 {
        return Ok((0.0, 0));
    }
    let mut optimizer = match opt.kind.as_str() {
        "adam" => tch::nn::Adam::default().build(model.var_store(), opt.lr)?,
        _ => tch::nn::Sgd {
            momentum: opt.momentum,
            ..Default::default()
        }
        .build(model.var_store(), opt.lr)?,
    };
    let (xs, ys) = tensors(model, data);
    let n = data.rows();
    let mut last_loss = 0.0;
    let mut seen = 0u64;
    for epoch in 0..spec.local_epochs {
        let mut order: Vec<usize> = (0..n).collect();
        crate::data::shuffle(&mut order, seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37));
        let order = Tensor::from_slice(&order.iter().map(|&i| i as i64).collect::<Vec<_>>())
            .to_device(model.device());
        let (mut sum, mut batches) = (0.0, 0);
        for start in (0..n).step_by(spec.batch_size) {
            let len = spec.batch_size.min(n - start) as i64;
            let idx = order.narrow(0, start as i64, len);
            let bx = xs.index_select(0, &idx);
            let by = ys.index_select(0, &idx);
            let loss = model.forward(&bx, true).cross_entropy_for_logits(&by);
            optimizer.backward_step(&loss);
            sum += f64::try_from(&loss)?;
            batches += 1;
            seen += len as u64;
        }
        last_loss = (sum / batches.max(1) as f64) as f32;
    }
    Ok((last_loss, seen))
}

/// Accuracy and mean loss of `model` on `data`.
pub(crate) fn evaluate(model: &Model, data: &Dataset) -> Result<(f64, f64), TrainError> {
    if data.rows() == 0 {
        return Ok((0.0, 0.0));
    }
    let (xs, ys) = tensors(model, data);
    tch::no_grad(|| {
        let logits = model.forward(&xs, false);
        let acc = f64::try_from(logits.accuracy_for_logits(&ys))?;
        let loss = f64::try_from(logits.cross_entropy_for_logits(&ys))?;
        Ok((acc, loss))
    })
}
