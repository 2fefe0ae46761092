//! One training task as a cluster worker runs it, and the pieces a coordinator needs: the job's
//! raw data split and sharded, evaluation of a parameter vector, and a compact wire form of a
//! shard (so it can travel as a content-addressed blob).

use crate::data::Dataset;
use crate::job::JobSpec;
use crate::model::Model;
use crate::{optim, TrainError};

/// What one task produced.
#[derive(Debug, Clone)]
pub struct TaskUpdate {
    /// The trained parameters (flat, canonical order).
    pub params: Vec<f32>,
    /// Mean training loss of the last local epoch.
    pub loss: f32,
    /// Samples trained on.
    pub samples: u64,
}

/// The job's data set (embedded digits, or CSV text given by the submitter).
pub fn load_data(job: &JobSpec, csv: Option<&str>) -> Result<Dataset, TrainError> {
    match (job.data.source.as_str(), csv) {
        ("digits", _) => Ok(Dataset::digits()),
        (_, Some(text)) => {
            Dataset::parse_csv(text, "<submitted data>", &job.data.label, job.data.classes)
        }
        (_, None) => match &job.data.path {
            Some(p) => Dataset::load_csv(p, &job.data.label, job.data.classes),
            None => Err(TrainError::Data(
                "`data.source = \"csv\"` needs `data.path`".into(),
            )),
        },
    }
}

/// Seeded `(train shards, test split)` of `data`: the same for local and cluster jobs.
pub fn divide(job: &JobSpec, data: &Dataset) -> (Vec<Dataset>, Dataset) {
    let (train, test) = data.split(job.data.test_fraction, job.seed);
    let n = job.data.shards.unwrap_or(job.workers).max(1);
    (train.shards(n, job.data.skew, job.seed), test)
}

/// Trains a fresh model loaded with `global` on `shard` (blocking; run it off the async
/// runtime).
pub fn train_shard(
    job: &JobSpec,
    shard: &Dataset,
    global: &[f32],
    seed: u64,
) -> Result<TaskUpdate, TrainError> {
    let device = crate::device::resolve(&job.device).map_err(TrainError::Job)?;
    let model = Model::loaded(&job.model, shard.width(), shard.classes, device, global).map_err(
        |e| match e {
            TrainError::Model(m) => {
                TrainError::Model(format!("the global model does not fit this job's: {m}"))
            }
            e => e,
        },
    )?;
    let (loss, samples) = optim::train(&model, shard, &job.optimizer, &job.training, seed)?;
    Ok(TaskUpdate {
        params: model.flat(),
        loss,
        samples,
    })
}

/// Test accuracy and loss of `model` on `data`.
pub fn evaluate(model: &Model, data: &Dataset) -> Result<(f64, f64), TrainError> {
    optim::evaluate(model, data)
}

/// Most rows a shard on the wire may declare (a guard against hostile headers).
pub const MAX_WIRE_ROWS: usize = 1 << 28;

impl Dataset {
    /// Wire form: one JSON header line (`columns`, `classes`, `rows`), then the features as
    /// little-endian f32 and the labels as little-endian i32.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = serde_json::json!({
            "columns": self.columns, "classes": self.classes, "rows": self.rows()
        });
        let mut out = serde_json::to_vec(&head).expect("a header serialises");
        out.push(b'\n');
        out.reserve(self.features.len() * 4 + self.labels.len() * 4);
        out.extend_from_slice(&params_to_bytes(&self.features));
        for v in &self.labels {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads [`Dataset::to_bytes`]; a truncated or inconsistent shard is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrainError> {
        let bad = |m: &str| TrainError::Data(format!("shard on the wire: {m}"));
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no header line"))?;
        #[derive(serde::Deserialize)]
        struct Head {
            columns: Vec<String>,
            classes: usize,
            rows: usize,
        }
        let h: Head = serde_json::from_slice(&bytes[..nl]).map_err(|e| bad(&e.to_string()))?;
        if h.rows > MAX_WIRE_ROWS {
            return Err(bad("too many rows"));
        }
        let body = &bytes[nl + 1..];
        let n_feat = h.rows * h.columns.len();
        if body.len() != 4 * (n_feat + h.rows) {
            return Err(bad(&format!(
                "{} body bytes for {} rows of {} columns",
                body.len(),
                h.rows,
                h.columns.len()
            )));
        }
        let (f, l) = body.split_at(4 * n_feat);
        Ok(Self {
            columns: h.columns,
            features: params_from_bytes(f)?,
            labels: l
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            classes: h.classes,
        })
    }
}

/// f32 values as little-endian bytes: the wire and blob form of weights and updates, and the
/// layout of shard features and checkpoint tensors.
pub fn params_to_bytes(p: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; p.len() * 4];
    for (o, v) in out.chunks_exact_mut(4).zip(p) {
        o.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads [`params_to_bytes`].
pub fn params_from_bytes(b: &[u8]) -> Result<Vec<f32>, TrainError> {
    if !b.len().is_multiple_of(4) {
        return Err(TrainError::Model(format!(
            "{} parameter bytes are not a whole number of f32",
            b.len()
        )));
    }
    let mut out = vec![0f32; b.len() / 4];
    for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_round_trips_and_truncation_is_refused() {
        let d = Dataset::digits().select(&[0, 5, 9]);
        let b = d.to_bytes();
        assert_eq!(Dataset::from_bytes(&b).unwrap(), d);
        let err = Dataset::from_bytes(&b[..b.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("body bytes"), "{err}");
    }
}
