//! `infra.v2.Control` over the node's cluster layer.

use crate::pb;
use infra_cluster::{ClusterError, ClusterNode, EventKind, JobEvent, JobRecord, JobState};
use infra_runtime::PluginKind;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The control service of one host.
pub struct ControlService {
    node: ClusterNode,
}

impl ControlService {
    /// A service answering from `node`.
    pub fn new(node: ClusterNode) -> Self {
        Self { node }
    }
}

/// The gRPC status of a failure: the caller's fault (a bad job, a plugin that does not load
/// or fit) is INVALID_ARGUMENT, a refused swap FAILED_PRECONDITION, an unreachable peer
/// UNAVAILABLE, and anything that failed on this host INTERNAL.
pub(crate) fn status(e: ClusterError) -> Status {
    let msg = e.to_string();
    match e {
        ClusterError::BadJob(_) | ClusterError::Plugin(_) => Status::invalid_argument(msg),
        ClusterError::Train(infra_train::TrainError::Job(_) | infra_train::TrainError::Data(_)) => {
            Status::invalid_argument(msg)
        }
        ClusterError::Engine(e) if e.is_job_error() => Status::invalid_argument(msg),
        ClusterError::Swap(_) => Status::failed_precondition(msg),
        ClusterError::Refused(_) => Status::permission_denied(msg),
        ClusterError::Net(_) => Status::unavailable(msg),
        ClusterError::Train(_)
        | ClusterError::Engine(_)
        | ClusterError::Protocol(_)
        | ClusterError::Remote(_)
        | ClusterError::Transfer(_)
        | ClusterError::Internal(_)
        | ClusterError::Io(_) => Status::internal(msg),
    }
}

fn kind(k: EventKind) -> pb::EventKind {
    match k {
        EventKind::Started => pb::EventKind::Started,
        EventKind::Resumed => pb::EventKind::Resumed,
        EventKind::Round => pb::EventKind::Round,
        EventKind::Swap => pb::EventKind::Swap,
        EventKind::Retry => pb::EventKind::Retry,
        EventKind::PeerDown => pb::EventKind::PeerDown,
        EventKind::Dropped => pb::EventKind::Dropped,
        EventKind::Done => pb::EventKind::Done,
        EventKind::Failed => pb::EventKind::Failed,
        EventKind::Cancelled => pb::EventKind::Cancelled,
    }
}

fn job_state(s: JobState) -> pb::JobState {
    match s {
        JobState::Running => pb::JobState::Running,
        JobState::Done => pb::JobState::Done,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    }
}

fn tier(t: infra_net::Tier) -> pb::Tier {
    match t {
        infra_net::Tier::Server => pb::Tier::Server,
        infra_net::Tier::Edge => pb::Tier::Edge,
    }
}

fn event(e: &JobEvent) -> pb::JobEvent {
    pb::JobEvent {
        seq: e.seq,
        kind: kind(e.kind).into(),
        round: e.round,
        message: e.message.clone(),
        accuracy: e.accuracy,
        loss: e.loss,
        seconds: e.seconds,
        overhead: e.overhead,
        tasks_done: e.tasks.0,
        tasks_total: e.tasks.1,
        bytes: e.bytes,
        peers: e.peers,
        refetched: e.refetched,
        evaluated: e.evaluated,
    }
}

impl ControlService {
    fn job(&self, r: JobRecord, with_events: bool) -> pb::Job {
        pb::Job {
            id: r.id,
            name: r.name,
            state: job_state(r.state).into(),
            rounds: r.rounds,
            rounds_done: r.rounds_done,
            accuracy: r.accuracy,
            plugins: r.plugins.into_iter().collect(),
            error: r.error.unwrap_or_default(),
            coordinator: self.node.peer_id().to_string(),
            events: if with_events {
                r.events.iter().map(event).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn handle(&self, id: &str) -> Result<std::sync::Arc<infra_cluster::jobs::JobHandle>, Status> {
        self.node
            .job(id)
            .ok_or_else(|| Status::not_found(format!("no job `{id}` on this host")))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::control_server::Control for ControlService {
    async fn list_peers(
        &self,
        _: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let peers = self.node.peers().await.map_err(status)?;
        let links = self.node.links();
        let peers = peers
            .into_iter()
            .map(|p| pb::Peer {
                bandwidth_bytes_per_s: links.bandwidth(&p.peer).unwrap_or(0.0),
                peer_id: p.peer.to_string(),
                tier: tier(p.status.tier).into(),
                labels: p.status.labels.into_iter().collect(),
                cpu_millis: p.status.cpu_millis,
                memory_mib: p.status.memory_mib,
                gpus: p.status.gpus,
                load: p.status.load,
                last_seen_ms: p.age.as_millis() as u64,
                rtt_ms: p.rtt.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            })
            .collect();
        Ok(Response::new(pb::ListPeersResponse {
            self_peer_id: self.node.peer_id().to_string(),
            peers,
        }))
    }

    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        let active: Vec<String> = self
            .node
            .active_plugins()
            .into_iter()
            .map(|(_, _, sha)| sha)
            .collect();
        let mut plugins: Vec<pb::Plugin> = infra_builtins::BUILTINS
            .iter()
            .map(|b| {
                let sha256 = infra_runtime::sha256_hex(b.bytes);
                pb::Plugin {
                    kind: b.world.to_string(),
                    name: b.name.to_string(),
                    active: active.contains(&sha256),
                    sha256,
                    builtin: true,
                    version: String::new(),
                    signer: String::new(),
                }
            })
            .collect();
        let builtin: Vec<String> = plugins.iter().map(|p| p.sha256.clone()).collect();
        let installed = self
            .node
            .installed_plugins()
            .into_iter()
            .filter(|m| !builtin.contains(&m.sha256));
        plugins.extend(installed.map(|m| pb::Plugin {
            kind: m.kind.name().into(),
            signer: self.node.plugin_signer(&m.sha256),
            name: m.name,
            active: active.contains(&m.sha256),
            sha256: m.sha256,
            builtin: false,
            version: m.version,
        }));
        Ok(Response::new(pb::ListPluginsResponse { plugins }))
    }

    async fn submit_job(
        &self,
        req: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let req = req.into_inner();
        let csv = if req.data_csv.is_empty() {
            None
        } else {
            Some(
                String::from_utf8(req.data_csv)
                    .map_err(|_| Status::invalid_argument("data_csv is not UTF-8"))?,
            )
        };
        let r = self.node.submit(&req.spec_toml, csv).map_err(status)?;
        Ok(Response::new(self.job(r, false)))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        let h = self.handle(&req.into_inner().id)?;
        Ok(Response::new(self.job(h.snapshot(), true)))
    }

    async fn list_jobs(
        &self,
        _: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let jobs = self
            .node
            .jobs()
            .into_iter()
            .map(|r| self.job(r, false))
            .collect();
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        req: Request<pb::WatchJobRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let h = self.handle(&req.into_inner().id)?;
        let (past, mut live) = h.subscribe();
        let stream = async_stream(move |tx| async move {
            let mut last = 0;
            for e in &past {
                last = e.seq;
                if tx.send(Ok(event(e))).await.is_err() || e.kind.is_terminal() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(e) if e.seq > last => {
                        last = e.seq;
                        let end = e.kind.is_terminal();
                        if tx.send(Ok(event(&e))).await.is_err() || end {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::data_loss(format!(
                                "watcher fell {n} events behind; GetJob has the history"
                            ))))
                            .await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cancel_job(
        &self,
        req: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let h = self.handle(&req.into_inner().id)?;
        h.cancel();
        Ok(Response::new(self.job(h.snapshot(), false)))
    }

    async fn install_plugin(
        &self,
        req: Request<pb::InstallPluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        let req = req.into_inner();
        let signature = Some(req.signature).filter(|s| !s.is_empty());
        let m = self
            .node
            .install_plugin(req.wasm, signature.as_deref())
            .map_err(status)?;
        Ok(Response::new(pb::Plugin {
            kind: m.kind.name().into(),
            signer: self.node.plugin_signer(&m.sha256),
            name: m.name,
            sha256: m.sha256,
            builtin: false,
            active: false,
            version: m.version,
        }))
    }

    async fn swap_plugin(
        &self,
        req: Request<pb::SwapPluginRequest>,
    ) -> Result<Response<pb::SwapPluginResponse>, Status> {
        let req = req.into_inner();
        let kind: PluginKind = req.kind.parse().map_err(Status::invalid_argument)?;
        let out = self
            .node
            .swap_plugin(
                kind,
                &req.sha256,
                Some(req.order.as_str()).filter(|o| !o.is_empty()),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SwapPluginResponse {
            peers: out
                .into_iter()
                .map(|o| pb::PeerSwap {
                    peer_id: o.peer,
                    ok: o.error.is_none(),
                    error: o.error.unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

/// A stream fed by a task through a channel.
fn async_stream<F, Fut>(f: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::JobEvent, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
