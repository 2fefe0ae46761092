//! The coordinator of a job (the host it was submitted to): the job's rounds run through the
//! round engine (`infra-rounds`), with the cluster's peers, this node included, as its
//! workers (`remote.rs`); the engine places tasks with the scheduler plugin, retries failed
//! ones on other peers, checks the quorum, merges with the aggregator plugin, and evaluates
//! and checkpoints each round, so a restarted host resumes from the last recorded round.
//! Here: the job's spec published as a blob that tasks name, its data loaded, swaps followed,
//! the job's end recorded, and what it held across the cluster released.

use crate::blobs::BlobStore;
use crate::jobs::{JobHandle, JobState};
use crate::messages::Request;
use crate::plugins::ClusterPlugins;
use crate::status::Status;
use crate::transfer::Links;
use crate::worker::{self, Worker};
use crate::ClusterError;
use infra_net::{Client, PeerId};
use infra_rounds::{EventKind, Job, JobEvent, Options, Swaps};
use infra_runtime::PluginKind;
use std::sync::Arc;
use std::time::Duration;

mod remote;

use remote::RemoteWorkers;

/// What coordinating a job needs of this node: narrow handles, not the node.
#[derive(Clone)]
pub(crate) struct Coordinator {
    pub net: Client,
    pub store: BlobStore,
    pub links: Links,
    pub peer_timeout: Duration,
    pub worker: Arc<Worker>,
    pub status: Status,
    pub plugins: Arc<ClusterPlugins>,
}

/// A job as submitted: typed and resolved, with its TOML (which peers receive, by hash) and
/// its data.
pub(crate) struct Submitted {
    pub job: Job,
    pub spec_text: String,
    pub csv: Option<String>,
}

/// Runs (or resumes) a job to its end, recording the outcome.
pub(crate) async fn run(c: Coordinator, handle: Arc<JobHandle>, s: Submitted) {
    // Served only to the peers given a task of the job (granted as tasks go out).
    let spec_blob = c.store.put_for(s.spec_text.into_bytes(), &[]);
    c.store.hold(&spec_blob);
    let workers = RemoteWorkers::new(
        c.clone(),
        handle.id().to_string(),
        spec_blob.clone(),
        s.job.spec.cluster.compression,
    );
    let outcome = drive(&c, &handle, &s.job, s.csv, &workers).await;
    let (shards, peers) = std::mem::take(&mut *workers.held.lock().expect("held lock"));
    for id in shards.iter().chain([&spec_blob]) {
        c.store.release(id);
    }
    release(&c, handle.id(), peers).await;
    let done = handle.snapshot().rounds_done;
    match outcome {
        Ok(o) if o.cancelled => {
            handle.update(|r| r.state = JobState::Cancelled);
            handle.emit(JobEvent::note(EventKind::Cancelled, done, "cancelled"));
        }
        Ok(o) => {
            handle.update(|r| r.state = JobState::Done);
            let mut ev = JobEvent::note(EventKind::Done, done, format!("{done} rounds done"));
            ev.accuracy = o.accuracy;
            ev.evaluated = true;
            handle.emit(ev);
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(job = handle.id(), "job failed: {msg}");
            handle.update(|r| {
                r.state = JobState::Failed;
                r.error = Some(msg.clone());
            });
            handle.emit(JobEvent::note(EventKind::Failed, done + 1, msg));
        }
    }
}

async fn drive(
    c: &Coordinator,
    handle: &Arc<JobHandle>,
    job: &Job,
    csv: Option<String>,
    workers: &RemoteWorkers,
) -> Result<infra_rounds::Outcome, ClusterError> {
    let spec = job.spec.clone();
    let data =
        tokio::task::spawn_blocking(move || infra_train::task::load_data(&spec, csv.as_deref()))
            .await
            .map_err(|e| ClusterError::Internal(format!("loading the job's data: {e}")))??;
    let opts = Options {
        checkpoint: handle.dir().map(|d| d.join("checkpoint.safetensors")),
        rounds_done: handle.snapshot().rounds_done,
        swaps: Swaps {
            scheduler: c.plugins.subscribe(PluginKind::Scheduler),
            aggregator: c.plugins.subscribe(PluginKind::Aggregator),
        },
        runner: format!("coordinator {}", c.net.peer_id()),
    };
    Ok(infra_rounds::run(job, data, workers, handle, opts).await?)
}

/// Forgets the job here and asks every peer that worked on it to forget it too.
async fn release(c: &Coordinator, job: &str, peers: std::collections::HashSet<PeerId>) {
    let me = c.net.peer_id();
    if let Err(e) = worker::forget(&c.worker, me, job) {
        tracing::debug!("forget: {e}");
    }
    let asks = peers.into_iter().filter(|p| *p != me).map(|peer| {
        let frame = Request::Forget {
            job: job.to_string(),
        }
        .to_frame();
        async move {
            if let Err(e) = c.net.request(peer, frame).await {
                tracing::debug!(%peer, "forget: {e}");
            }
        }
    });
    futures::future::join_all(asks).await;
}
