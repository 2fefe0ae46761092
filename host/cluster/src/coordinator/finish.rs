//! Finishing a round off the critical path: the new model is evaluated on the test split and
//! checkpointed while the next round's tasks run; the round is recorded (rounds done,
//! accuracy, its event) only once its checkpoint is on disk. The evaluation runs on a thread
//! of its own at a lower OS priority and on one core, so on a busy node it yields to the
//! round's transfers and training instead of delaying them.

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

/// Niceness of the evaluation thread (0 is normal, 19 the lowest priority).
const BACKGROUND_NICE: i32 = 10;

/// Runs `f` on a new thread at [`BACKGROUND_NICE`], with one libtorch thread, and waits for
/// it. A dedicated thread because niceness cannot be raised back once lowered, so a pooled
/// thread (tokio's blocking pool, which also runs training) must not be used.
async fn background<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClusterError> + Send + 'static,
) -> Result<T, ClusterError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("evaluate".into())
        .spawn(move || {
            lower_priority();
            tch::set_num_threads(1);
            let _ = tx.send(f());
        })
        .map_err(|e| ClusterError::Job(format!("cannot start the evaluation thread: {e}")))?;
    rx.await
        .map_err(|_| ClusterError::Job("the evaluation thread ended without a result".into()))?
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
    let acc = background(move || {
        let device = infra_train::device::resolve(&e.spec.device).map_err(ClusterError::Job)?;
        let m = Model::loaded(&e.spec.model, e.width, e.classes, device, &e.params)?;
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
