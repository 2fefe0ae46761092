//! A job ready for its rounds: its data divided into training shards (handed to the workers)
//! and a test split, cleaned as `data.cleaning` says, and the global model, fresh or from the
//! checkpoint of the last recorded round.

use crate::workers::Workers;
use crate::{blocking, EngineError, Job};
use infra_runtime::cleaner::CleaningChain;
use infra_train::clean::{clean, StepSummary};
use infra_train::job::CleaningMode;
use infra_train::{checkpoint, Dataset, JobSpec, Model};
use std::path::PathBuf;
use std::sync::Arc;

/// The job's data, divided.
pub(crate) struct Prepared<S> {
    /// The training shards in the workers' form.
    pub shards: Vec<S>,
    /// Raw size of each shard.
    pub shard_bytes: Vec<u64>,
    /// Rows the coordinator assigned to each shard (after the cleaning done here, if any):
    /// the most an update of that shard is weighted by.
    pub shard_rows: Vec<u64>,
    /// Features per row, and classes.
    pub width: usize,
    pub classes: usize,
    /// The cleaned test split the coordinator evaluates on.
    pub test: Arc<Dataset>,
    /// What the coordinator's cleaning did (the test split, or the whole data set).
    pub cleaning: Vec<StepSummary>,
}

/// Divides `data` into shards and a test split and cleans them: under
/// [`CleaningMode::Federated`] the test split here and each shard on its worker; under
/// [`CleaningMode::Whole`] everything here, before the split.
pub(crate) async fn data<W: Workers>(
    job: &Job,
    data: Dataset,
    workers: &W,
) -> Result<Prepared<W::Shard>, EngineError> {
    let spec = job.spec.clone();
    let cleaners = job.plugins.cleaners.clone();
    let whole = spec.data.cleaning == CleaningMode::Whole;
    let (shards, test, cleaning) = blocking(move || {
        let mut cleaning = Vec::new();
        let data = if whole {
            clean(&CleaningChain::new(cleaners.clone())?, &data, &mut cleaning)?
        } else {
            data
        };
        let (shards, test) = infra_train::task::divide(&spec, &data);
        if shards.iter().any(|s| s.rows() == 0) {
            return Err(EngineError::Job(format!(
                "{} training rows are too few for {} shards",
                shards.iter().map(Dataset::rows).sum::<usize>(),
                shards.len()
            )));
        }
        let test = if whole {
            test
        } else {
            clean(&CleaningChain::new(cleaners)?, &test, &mut cleaning)?
        };
        Ok((shards, test, cleaning))
    })
    .await?;
    let (width, classes) = (test.width(), test.classes);
    let shard_rows = shards.iter().map(|s| s.rows() as u64).collect();
    let shard_bytes = shards
        .iter()
        .map(|s| (s.features.len() * 4 + s.labels.len() * 4) as u64)
        .collect();
    Ok(Prepared {
        shards: workers.shards(shards, whole).await?,
        shard_bytes,
        shard_rows,
        width,
        classes,
        test: Arc::new(test),
        cleaning,
    })
}

/// Where the rounds start from.
pub(crate) struct Start {
    /// The global model.
    pub global: Arc<Vec<f32>>,
    /// Rounds recorded.
    pub done: u32,
    /// Test accuracy the checkpoint holds (0 for a fresh model, or one not evaluated).
    pub accuracy: f64,
}

/// The global model to start from, and the rounds already recorded: fresh (seeded) for a new
/// job; for a job with rounds recorded, its checkpoint, which names its round. A checkpoint
/// one round ahead of the record (the host stopped between the two writes) counts as that
/// round recorded, so no round is applied twice; a missing or older checkpoint is an error,
/// not a silent fresh start.
pub(crate) async fn global(
    spec: Arc<JobSpec>,
    width: usize,
    classes: usize,
    checkpoint: Option<PathBuf>,
    rounds_done: u32,
) -> Result<Start, EngineError> {
    blocking(move || {
        let device = infra_train::device::resolve(&spec.device).map_err(EngineError::Job)?;
        tch::manual_seed(spec.seed as i64);
        let mut m = Model::new(&spec.model, width, classes, device)?;
        if rounds_done == 0 {
            return Ok(Start {
                global: Arc::new(m.flat()),
                done: 0,
                accuracy: 0.0,
            });
        }
        let Some(path) = checkpoint.filter(|p| p.exists()) else {
            return Err(EngineError::Internal(format!(
                "resuming after round {rounds_done}: its checkpoint is missing"
            )));
        };
        let meta = checkpoint::load(&mut m, &path)?;
        let held = meta.get("round").and_then(|r| r.parse::<u32>().ok());
        match held {
            Some(r) if r == rounds_done || r == rounds_done + 1 => Ok(Start {
                global: Arc::new(m.flat()),
                done: r,
                accuracy: meta
                    .get("test_accuracy")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0.0),
            }),
            _ => Err(EngineError::Internal(format!(
                "resuming after round {rounds_done}: {} holds round {}",
                path.display(),
                meta.get("round").map_or("?", String::as_str)
            ))),
        }
    })
    .await
}
