//! What a job tells those who watch it: typed events (the job's history), the record of each
//! round, and the [`Observer`] the engine reports them to (a cluster job's record, or the
//! local report).

use serde::{Deserialize, Serialize};

/// What happened (a closed set; the control plane's `JobEvent.Kind` mirrors it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The job's first round begins.
    Started,
    /// A restarted coordinator goes on after the last recorded round.
    Resumed,
    /// A round was recorded (evaluated when due, checkpointed).
    Round,
    /// A cluster-wide swap replaced the job's scheduler or aggregator.
    Swap,
    /// A task failed and goes back to pending.
    Retry,
    /// A node failed (not the task): left out until it shows signs of life.
    PeerDown,
    /// An update was refused (wrong length, non-finite values) and left out of the round.
    Dropped,
    /// Every round finished.
    Done,
    /// The job stopped on an error.
    Failed,
    /// The job was cancelled.
    Cancelled,
}

impl EventKind {
    /// Its name in histories and tables (`peer-down`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Resumed => "resumed",
            EventKind::Round => "round",
            EventKind::Swap => "swap",
            EventKind::Retry => "retry",
            EventKind::PeerDown => "peer-down",
            EventKind::Dropped => "dropped",
            EventKind::Done => "done",
            EventKind::Failed => "failed",
            EventKind::Cancelled => "cancelled",
        }
    }

    /// Whether the job ends with it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventKind::Done | EventKind::Failed | EventKind::Cancelled
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Position in the history, from 1.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// Round it belongs to (0: none).
    pub round: u32,
    /// Human-readable detail.
    pub message: String,
    /// Test accuracy of the last evaluated model (`round`, `done`).
    pub accuracy: f64,
    /// Whether this round's model was evaluated (`evaluate-every`); when not, `accuracy` is
    /// the last evaluated round's.
    #[serde(default = "yes")]
    pub evaluated: bool,
    /// Mean training loss of the round.
    pub loss: f64,
    /// Wall seconds of the round.
    pub seconds: f64,
    /// Share of the round that was not local compute (transfers, scheduling, aggregation):
    /// 1 - slowest task's compute / round wall time.
    pub overhead: f64,
    /// Tasks that returned / tasks of the round.
    pub tasks: (u32, u32),
    /// Bytes that crossed the network in the round.
    pub bytes: u64,
    /// Distinct nodes that returned tasks in the round.
    #[serde(default)]
    pub peers: u32,
    /// Blob chunks that arrived corrupt and were fetched again in the round.
    #[serde(default)]
    pub refetched: u32,
}

fn yes() -> bool {
    true
}

impl JobEvent {
    /// An event with only a kind, round and message.
    pub fn note(kind: EventKind, round: u32, message: impl Into<String>) -> Self {
        Self {
            seq: 0,
            kind,
            round,
            message: message.into(),
            accuracy: 0.0,
            evaluated: false,
            loss: 0.0,
            seconds: 0.0,
            overhead: 0.0,
            tasks: (0, 0),
            bytes: 0,
            peers: 0,
            refetched: 0,
        }
    }
}

/// One returned task of a round.
#[derive(Debug, Clone, Serialize)]
pub struct TaskWork {
    /// Node (worker or peer id) that ran it.
    pub node: String,
    /// Its shard.
    pub shard: usize,
    /// Samples it trained on.
    pub samples: u64,
    /// Seconds the node spent on it.
    pub busy_seconds: f64,
}

/// A recorded round: everything the engine measured.
#[derive(Debug, Clone, Default)]
pub struct RoundRecord {
    /// Round number, from 1.
    pub round: u32,
    /// Mean training loss over the merged updates (weighted by rows).
    pub loss: f64,
    /// Test accuracy and loss of the new model, when this round was evaluated.
    pub evaluation: Option<(f64, f64)>,
    /// Test accuracy of the last evaluated model (this one's when evaluated).
    pub accuracy: f64,
    /// Wall seconds, from the end of the previous round to the end of this aggregation.
    pub seconds: f64,
    /// 1 - slowest task's compute / `seconds`.
    pub overhead: f64,
    /// Scheduling decisions the round's tasks needed.
    pub waves: u32,
    /// Tasks merged / tasks of the round.
    pub tasks: (u32, u32),
    /// Bytes the round's tasks moved.
    pub bytes: u64,
    /// Chunks fetched again.
    pub refetched: u32,
    /// The aggregator's summary.
    pub aggregator: String,
    /// Each merged task.
    pub work: Vec<TaskWork>,
    /// Wall seconds during which the round's tasks ran.
    pub training_seconds: f64,
}

impl RoundRecord {
    /// The round as an event of the job's history.
    pub fn event(&self) -> JobEvent {
        let peers: std::collections::HashSet<&str> =
            self.work.iter().map(|w| w.node.as_str()).collect();
        let mut ev = JobEvent::note(
            EventKind::Round,
            self.round,
            format!(
                "{}/{} tasks on {} peers; {}",
                self.tasks.0,
                self.tasks.1,
                peers.len(),
                self.aggregator
            ),
        );
        ev.accuracy = self.accuracy;
        ev.evaluated = self.evaluation.is_some();
        ev.loss = self.loss;
        ev.seconds = self.seconds;
        ev.overhead = self.overhead;
        ev.tasks = self.tasks;
        ev.bytes = self.bytes;
        ev.peers = peers.len() as u32;
        ev.refetched = self.refetched;
        ev
    }
}

/// Who the engine reports a job's progress to.
pub trait Observer: Send + Sync + 'static {
    /// An event of the job's history (not a round: see [`Observer::round`]).
    fn event(&self, ev: JobEvent);
    /// A round was recorded: its checkpoint is on disk (when the job keeps one). An error
    /// (the record could not be saved) fails the round.
    fn round(&self, r: RoundRecord) -> Result<(), String>;
    /// The plugin in use for `kind` (`scheduler`, `aggregator`, `cleaner.<i>`) is now `ident`.
    fn plugin(&self, kind: &str, ident: &str);
    /// Whether the job was asked to stop.
    fn cancelled(&self) -> bool;
}
