//! Jobs a host coordinates: their record (state, rounds, accuracy, plugins, history of
//! events), the live event stream watchers subscribe to, and the copy on disk
//! (`<data>/jobs/<id>/`: `job.toml`, `data.csv` when submitted, `state.json`, and the
//! checkpoint) from which a restarted host resumes them.

use infra_rounds::{JobEvent, Observer, RoundRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Rounds are running (or will resume after a restart).
    Running,
    /// Every round finished.
    Done,
    /// A round could not complete; the last good checkpoint is kept.
    Failed,
    /// Cancelled by a caller.
    Cancelled,
}

/// What is known about a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Job name from the spec.
    pub name: String,
    /// State.
    pub state: JobState,
    /// Rounds the job asks for.
    pub rounds: u32,
    /// Rounds completed.
    pub rounds_done: u32,
    /// Test accuracy after the last completed round.
    pub accuracy: f64,
    /// Plugin in use per kind: `name sha256:<hex>`.
    pub plugins: BTreeMap<String, String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Every event so far.
    pub events: Vec<JobEvent>,
}

/// A job and its live event stream.
pub struct JobHandle {
    id: String,
    record: Mutex<JobRecord>,
    events: broadcast::Sender<JobEvent>,
    cancel: AtomicBool,
    dir: Option<PathBuf>,
}

impl JobHandle {
    fn new(record: JobRecord, dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            id: record.id.clone(),
            record: Mutex::new(record),
            events: broadcast::channel(1024).0,
            cancel: AtomicBool::new(false),
            dir,
        })
    }

    /// The job's id (without copying its record).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The job's folder on disk, if the host keeps one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> JobRecord {
        self.record.lock().expect("job lock").clone()
    }

    /// Changes the record (and saves it).
    pub fn update(&self, f: impl FnOnce(&mut JobRecord)) {
        let mut r = self.record.lock().expect("job lock");
        f(&mut r);
        let _ = self.save(&r);
    }

    /// Appends an event to the history, saves, and tells the watchers.
    pub fn emit(&self, mut ev: JobEvent) {
        let mut r = self.record.lock().expect("job lock");
        ev.seq = r.events.len() as u64 + 1;
        r.events.push(ev.clone());
        let _ = self.save(&r);
        let _ = self.events.send(ev);
    }

    /// The history so far and a receiver of what comes next, without a gap between them.
    pub fn subscribe(&self) -> (Vec<JobEvent>, broadcast::Receiver<JobEvent>) {
        let r = self.record.lock().expect("job lock");
        (r.events.clone(), self.events.subscribe())
    }

    /// Asks the coordinator to stop at the next task or round boundary.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Whether a cancel was asked for.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Saves the record durably (see `infra_train::durable`); an error is logged and returned.
    fn save(&self, r: &JobRecord) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let bytes = serde_json::to_vec_pretty(r).expect("a record serialises");
        infra_train::durable::replace(&dir.join("state.json"), &bytes).inspect_err(|e| {
            tracing::error!(job = r.id, "saving the job record: {e}");
        })
    }
}

/// The jobs of one host.
pub struct Jobs {
    dir: Option<PathBuf>,
    map: Mutex<BTreeMap<String, Arc<JobHandle>>>,
    /// The peer id of this node, which every job id it makes is bound to.
    owner: String,
}

/// A job found on disk that was still running when the host stopped.
pub struct Unfinished {
    /// Its handle (record loaded).
    pub handle: Arc<JobHandle>,
    /// Its spec.
    pub spec: String,
    /// Its submitted data, if any.
    pub csv: Option<String>,
}

impl Jobs {
    /// Jobs kept under `dir` (none: in memory only), coordinated by peer `owner`.
    pub fn new(dir: Option<PathBuf>, owner: String) -> Self {
        Self {
            dir,
            map: Mutex::new(BTreeMap::new()),
            owner,
        }
    }

    /// Registers a new job and writes its spec (and data) to disk.
    pub fn create(
        &self,
        name: &str,
        rounds: u32,
        spec: &str,
        csv: Option<&str>,
    ) -> std::io::Result<Arc<JobHandle>> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let mut map = self.map.lock().expect("jobs lock");
        let mut prefix = format!("{name}-{:x}", stamp & 0xff_ffff_ffff);
        let mut id = format!("{prefix}-{}", job_tag(&self.owner, &prefix));
        while map.contains_key(&id) {
            prefix.push('x');
            id = format!("{prefix}-{}", job_tag(&self.owner, &prefix));
        }
        let dir = match &self.dir {
            Some(d) => {
                let dir = d.join(&id);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("job.toml"), spec)?;
                if let Some(csv) = csv {
                    std::fs::write(dir.join("data.csv"), csv)?;
                }
                Some(dir)
            }
            None => None,
        };
        let record = JobRecord {
            id: id.clone(),
            name: name.into(),
            state: JobState::Running,
            rounds,
            rounds_done: 0,
            accuracy: 0.0,
            plugins: BTreeMap::new(),
            error: None,
            events: Vec::new(),
        };
        let h = JobHandle::new(record, dir);
        h.update(|_| {});
        map.insert(id, h.clone());
        Ok(h)
    }

    /// A job by id.
    pub fn get(&self, id: &str) -> Option<Arc<JobHandle>> {
        self.map.lock().expect("jobs lock").get(id).cloned()
    }

    /// Every job, oldest id first.
    pub fn list(&self) -> Vec<JobRecord> {
        self.map
            .lock()
            .expect("jobs lock")
            .values()
            .map(|h| h.snapshot())
            .collect()
    }

    /// Loads every job on disk; returns those still running (to resume).
    pub fn load(&self) -> Vec<Unfinished> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let d = e.path();
            let record: JobRecord = match std::fs::read(d.join("state.json"))
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(dir = %d.display(), "skipping an unreadable job record: {err}");
                    continue;
                }
            };
            let running = record.state == JobState::Running;
            let h = JobHandle::new(record.clone(), Some(d.clone()));
            self.map
                .lock()
                .expect("jobs lock")
                .insert(record.id.clone(), h.clone());
            if running {
                match std::fs::read_to_string(d.join("job.toml")) {
                    Ok(spec) => out.push(Unfinished {
                        handle: h,
                        spec,
                        csv: std::fs::read_to_string(d.join("data.csv")).ok(),
                    }),
                    Err(e) => tracing::warn!(job = record.id, "cannot resume: job.toml: {e}"),
                }
            }
        }
        out
    }
}

/// A cluster job's record follows its rounds: each event goes into its history (and to its
/// watchers), each recorded round updates rounds done and accuracy.
impl Observer for JobHandle {
    fn event(&self, ev: JobEvent) {
        self.emit(ev);
    }

    /// A round counts once its record is on disk: a save that fails fails the round.
    fn round(&self, r: RoundRecord) -> Result<(), String> {
        {
            let mut rec = self.record.lock().expect("job lock");
            rec.rounds_done = r.round;
            rec.accuracy = r.accuracy;
            self.save(&rec)
                .map_err(|e| format!("saving round {}: {e}", r.round))?;
        }
        self.emit(r.event());
        Ok(())
    }

    fn plugin(&self, kind: &str, ident: &str) {
        self.update(|r| {
            r.plugins.insert(kind.to_string(), ident.to_string());
        });
    }

    fn cancelled(&self) -> bool {
        JobHandle::cancelled(self)
    }
}

/// The last part of a job id: binds the id to the peer that made it, its coordinator, so a
/// worker can tell a job's coordinator from any other member without being told.
fn job_tag(coordinator: &str, prefix: &str) -> String {
    let h = blake3::hash(format!("infra/job/1\n{coordinator}\n{prefix}").as_bytes());
    hex::encode(&h.as_bytes()[..5])
}

/// Whether job id `job` was made by peer `peer` (which then coordinates it).
pub(crate) fn made_by(job: &str, peer: &str) -> bool {
    job.rsplit_once('-')
        .is_some_and(|(prefix, tag)| job_tag(peer, prefix) == tag)
}

#[cfg(test)]
mod tests {
    use infra_rounds::{Observer, RoundRecord};

    /// A round counts once its record is on disk: when the job's folder cannot take the
    /// record, the round fails with the reason instead of being logged and forgotten.
    #[test]
    fn a_round_whose_record_cannot_be_saved_fails() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = super::Jobs::new(Some(dir.path().to_path_buf()), "peer".into());
        let h = jobs.create("j", 3, "spec", None).unwrap();
        let record = |round| RoundRecord {
            round,
            ..RoundRecord::default()
        };
        h.round(record(1)).unwrap();
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(h.dir().unwrap().join("state.json")).unwrap())
                .unwrap();
        assert_eq!(saved["rounds_done"], 1);
        std::fs::remove_dir_all(h.dir().unwrap()).unwrap();
        let e = h.round(record(2)).unwrap_err();
        assert!(e.contains("saving round 2"), "{e}");
    }
}
