//! Finishing a round off the critical path: the new model is evaluated on the test split (when
//! the round is due one, `evaluate-every`) and checkpointed while the next round's tasks run;
//! the round is recorded only once its checkpoint is on disk. The work runs on a thread of its
//! own at a lower OS priority and on one libtorch thread, so on a busy node it yields to the
//! round's transfers and training instead of delaying them.

use crate::events::{Observer, RoundRecord};
use crate::EngineError;
use infra_train::{checkpoint, Dataset, JobSpec, Model};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A round's evaluation and checkpoint, running in the background; it yields the accuracy
/// the round recorded.
pub(crate) type Finishing = tokio::task::JoinHandle<Result<f64, EngineError>>;

/// Waits for the round being finished, if any: its recorded accuracy, or its failure.
pub(crate) async fn settle(f: Option<Finishing>) -> Result<Option<f64>, EngineError> {
    match f {
        None => Ok(None),
        Some(h) => h
            .await
            .map_err(|e| EngineError::Internal(format!("finishing a round: {e}")))?
            .map(Some),
    }
}

/// Niceness of the evaluation thread (0 is normal, 19 the lowest priority).
const BACKGROUND_NICE: i32 = 10;

/// Runs `f` on a new thread at [`BACKGROUND_NICE`], with one libtorch thread, and waits for
/// it. A dedicated thread because niceness cannot be raised back once lowered, so a pooled
/// thread (tokio's blocking pool, which also runs training) must not be used.
async fn background<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("evaluate".into())
        .spawn(move || {
            lower_priority();
            tch::set_num_threads(1);
            let _ = tx.send(f());
        })
        .map_err(|e| EngineError::Internal(format!("cannot start the evaluation thread: {e}")))?;
    rx.await
        .map_err(|_| EngineError::Internal("the evaluation thread ended without a result".into()))?
}

/// Lowers the calling thread's scheduling priority (Linux: niceness is per thread). Best
/// effort: where it is refused or unsupported the thread runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE);
    }
}

/// What finishing one round's model needs.
pub(crate) struct Evaluation {
    pub spec: Arc<JobSpec>,
    pub test: Arc<Dataset>,
    pub params: Arc<Vec<f32>>,
    pub width: usize,
    pub classes: usize,
    /// Whether this round is evaluated.
    pub evaluate: bool,
    /// The accuracy of the last evaluated round, for a round that is not.
    pub last_accuracy: f64,
    pub checkpoint: Option<PathBuf>,
    pub meta: checkpoint::Metadata,
}

/// Evaluates the round's model when due, checkpoints it, and only then records the round (so
/// a restarted coordinator resumes from a round whose checkpoint is on disk).
pub(crate) async fn finish_round<O: Observer>(
    obs: Arc<O>,
    e: Evaluation,
    mut record: RoundRecord,
) -> Result<f64, EngineError> {
    let started = Instant::now();
    let round = record.round;
    let last = e.last_accuracy;
    let evaluation = background(move || {
        let device = infra_train::device::resolve(&e.spec.device).map_err(EngineError::Job)?;
        let m = Model::loaded(&e.spec.model, e.width, e.classes, device, &e.params)?;
        let evaluation = if e.evaluate {
            Some(infra_train::task::evaluate(&m, &e.test)?)
        } else {
            None
        };
        if let Some(p) = e.checkpoint {
            let mut meta = e.meta;
            if let Some((acc, _)) = evaluation {
                meta.insert("test_accuracy".into(), format!("{acc:.6}"));
            }
            checkpoint::save(&m, &meta, &p)?;
        }
        Ok(evaluation)
    })
    .await?;
    tracing::info!(
        round,
        finish_ms = started.elapsed().as_secs_f64() * 1e3,
        evaluated = evaluation.is_some(),
        "round finished"
    );
    record.accuracy = evaluation.map_or(last, |(acc, _)| acc);
    record.evaluation = evaluation;
    let acc = record.accuracy;
    obs.round(record)
        .map_err(|cause| EngineError::Round { round, cause })?;
    Ok(acc)
}
