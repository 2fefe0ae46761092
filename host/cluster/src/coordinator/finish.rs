//! Finishing a round off the critical path: the new model is evaluated on the test split and
//! checkpointed while the next round's tasks run; the round is recorded (rounds done,
//! accuracy, its event) only once its checkpoint is on disk.

use super::blocking;
use crate::jobs::{JobEvent, JobHandle};
use crate::ClusterError;
use infra_train::{checkpoint, Dataset, JobSpec, Model};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A round's evaluation and checkpoint, running in the background; it records the round
/// (rounds done, accuracy, the round event) when it is done.
pub(super) type Finishing = tokio::task::JoinHandle<Result<(), ClusterError>>;

/// Waits for the round being finished, if any, and passes on its failure.
pub(super) async fn settle(f: Option<Finishing>) -> Result<(), ClusterError> {
    match f {
        None => Ok(()),
        Some(h) => h
            .await
            .map_err(|e| ClusterError::Job(format!("evaluating a round: {e}")))?,
    }
}

/// What evaluating and checkpointing one round's model needs.
pub(super) struct Evaluation {
    pub spec: JobSpec,
    pub test: Arc<Dataset>,
    pub params: Arc<Vec<f32>>,
    pub width: usize,
    pub classes: usize,
    pub checkpoint: Option<PathBuf>,
    pub meta: checkpoint::Metadata,
}

/// Evaluates the round's model on the test split, checkpoints it, and only then records the
/// round as done (so a restarted host resumes from a round whose checkpoint is on disk).
pub(super) async fn finish_round(
    job: Arc<JobHandle>,
    e: Evaluation,
    mut ev: JobEvent,
) -> Result<(), ClusterError> {
    let started = Instant::now();
    let round = ev.round;
    let acc = blocking(move || {
        let device = infra_train::device::resolve(&e.spec.device).map_err(ClusterError::Job)?;
        let mut m = Model::new(&e.spec.model, e.width, e.classes, device)?;
        m.load_flat(&e.params)?;
        let (acc, _loss) = infra_train::task::evaluate(&m, &e.test)?;
        if let Some(p) = e.checkpoint {
            let mut meta = e.meta;
            meta.insert("test_accuracy".into(), format!("{acc:.6}"));
            checkpoint::save(&m, &meta, &p)?;
        }
        Ok(acc)
    })
    .await?;
    tracing::info!(
        round,
        evaluate_ms = started.elapsed().as_secs_f64() * 1e3,
        "round evaluated and checkpointed"
    );
    job.update(|r| {
        r.rounds_done = round;
        r.accuracy = acc;
    });
    ev.accuracy = acc;
    job.emit(ev);
    Ok(())
}
