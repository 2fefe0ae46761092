//! A cluster node: the network client, the blob store, installed and active plugins, and the
//! jobs this host coordinates. It answers peers' requests (blobs, training tasks, plugin
//! swaps) and offers the operations the control plane exposes.

use crate::blobs::BlobStore;
use crate::coordinator::{self, Coordinator, Submitted};
use crate::jobs::{JobRecord, Jobs};
use crate::messages::{Request, Response};
use crate::plugins::ClusterPlugins;
use crate::status::Status;
use crate::transfer::{self, Links};
use crate::worker::{self, Worker};
use crate::ClusterError;
use bytes::Bytes;
use infra_net::{Client, Frame, NetEvent, NodeStatus, PeerId, PeerView};
use infra_rounds::{EventKind, Job, JobEvent};
use infra_runtime::{PluginKind, PluginMeta, Runtime};
use infra_train::job::CleaningMode;
use infra_train::JobSpec;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where jobs, checkpoints and installed plugins are kept (none: memory only).
    pub data_dir: Option<PathBuf>,
    /// A peer whose last heartbeat is older than this is considered down.
    pub peer_timeout: Duration,
    /// Largest plugin this node installs.
    pub max_plugin_bytes: usize,
    /// The operator keys this node trusts: a closed node runs only plugins they signed and
    /// swaps only on their orders. `None`: an open node, which checks neither.
    pub trust: Option<infra_trust::Trusted>,
}

/// A cluster node. Cheap to clone.
#[derive(Clone)]
pub struct ClusterNode {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) struct Shared {
    pub net: Client,
    pub store: BlobStore,
    pub links: Links,
    pub plugins: Arc<ClusterPlugins>,
    pub jobs: Jobs,
    pub config: NodeConfig,
    pub status: Status,
    pub worker: Arc<Worker>,
    /// Test-only fault injection on the chunks this node serves.
    #[cfg(test)]
    pub faults: Arc<crate::testing::Faults>,
}

/// One peer's answer to a cluster-wide swap.
#[derive(Debug, Clone)]
pub struct PeerOutcome {
    /// The peer.
    pub peer: String,
    /// `None`: swapped; otherwise why not.
    pub error: Option<String>,
}

impl ClusterNode {
    /// A node over a started network.
    pub fn new(
        net: Client,
        status: NodeStatus,
        runtime: Runtime,
        config: NodeConfig,
    ) -> Result<Self, ClusterError> {
        let store = BlobStore::default();
        let dir = config.data_dir.clone();
        let plugins = Arc::new(ClusterPlugins::open(
            runtime,
            dir.as_ref().map(|d| d.join("plugins")),
            config.max_plugin_bytes,
            config.trust.clone(),
            &store,
        )?);
        let links = Links::default();
        let owner = net.peer_id().to_string();
        let status = Status::new(net.clone(), status);
        let worker = Arc::new(Worker::new(
            net.clone(),
            store.clone(),
            links.clone(),
            plugins.clone(),
            status.clone(),
        ));
        Ok(Self {
            inner: Arc::new(Shared {
                net,
                store,
                links,
                plugins,
                jobs: Jobs::new(dir.map(|d| d.join("jobs")), owner),
                #[cfg(test)]
                faults: Default::default(),
                config,
                status,
                worker,
            }),
        })
    }

    /// What coordinating a job needs of this node.
    fn coordinator(&self) -> Coordinator {
        let n = &self.inner;
        Coordinator {
            net: n.net.clone(),
            store: n.store.clone(),
            links: n.links.clone(),
            peer_timeout: n.config.peer_timeout,
            worker: n.worker.clone(),
            status: n.status.clone(),
            plugins: n.plugins.clone(),
        }
    }

    /// A job's spec parsed and validated, checked against what a cluster runs, and its
    /// plugins resolved (once, here).
    fn accept(
        &self,
        id: &str,
        spec_text: &str,
        csv: Option<String>,
    ) -> Result<Submitted, ClusterError> {
        let spec =
            JobSpec::parse(spec_text, "job").map_err(|e| ClusterError::BadJob(e.to_string()))?;
        if spec.data.source == "csv" && csv.is_none() {
            return Err(ClusterError::BadJob(
                "`data.source = \"csv\"`: send the CSV with the job (`infra submit` does)".into(),
            ));
        }
        if spec.data.cleaning == CleaningMode::Whole {
            return Err(ClusterError::BadJob(
                "`data.cleaning = \"whole\"` fits the cleaning chain over every row, which only a local job (`infra train`) has; a cluster cleans each shard on its worker (`federated`, the default)".into(),
            ));
        }
        let p = &self.inner.plugins;
        let plugins = infra_rounds::Plugins {
            scheduler: p.resolve(&spec.scheduler, PluginKind::Scheduler)?,
            aggregator: p.resolve(&spec.aggregator, PluginKind::Aggregator)?,
            cleaners: spec
                .cleaners
                .iter()
                .map(|c| p.resolve(c, PluginKind::Cleaner))
                .collect::<Result<_, _>>()?,
        };
        Ok(Submitted {
            job: Job {
                id: id.to_string(),
                spec: Arc::new(spec),
                plugins,
            },
            spec_text: spec_text.to_string(),
            csv,
        })
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.net.peer_id()
    }

    /// The network client.
    pub fn net(&self) -> &Client {
        &self.inner.net
    }

    /// The blob store.
    pub fn store(&self) -> &BlobStore {
        &self.inner.store
    }

    /// Measured links.
    pub fn links(&self) -> &Links {
        &self.inner.links
    }

    /// Resumes the jobs a previous run of this host left running.
    pub fn resume_jobs(&self) {
        for u in self.inner.jobs.load() {
            tracing::info!(job = u.handle.id(), "resuming");
            match self.accept(u.handle.id(), &u.spec, u.csv) {
                Ok(s) => {
                    tokio::spawn(coordinator::run(self.coordinator(), u.handle, s));
                }
                Err(e) => {
                    let msg = format!("cannot resume: {e}");
                    tracing::error!(job = u.handle.id(), "{msg}");
                    let done = u.handle.snapshot().rounds_done;
                    u.handle.update(|r| {
                        r.state = crate::JobState::Failed;
                        r.error = Some(msg.clone());
                    });
                    u.handle
                        .emit(JobEvent::note(EventKind::Failed, done + 1, msg));
                }
            }
        }
    }

    /// Handles network events until the stream ends: requests are answered (each on its own
    /// task), and so are the blob streams peers open; everything else goes to `other`.
    pub async fn serve(
        self,
        mut events: mpsc::Receiver<NetEvent>,
        mut other: impl FnMut(NetEvent),
    ) {
        match self.inner.net.accept(transfer::stream::BLOB_PROTOCOL) {
            Ok(incoming) => {
                let holder = transfer::stream::Holder {
                    store: self.inner.store.clone(),
                    #[cfg(test)]
                    faults: self.inner.faults.clone(),
                };
                tokio::spawn(transfer::stream::serve(holder, incoming));
            }
            Err(e) => tracing::error!("blobs cannot be served to peers: {e}"),
        }
        while let Some(ev) = events.recv().await {
            match ev {
                NetEvent::Request { peer, id, frame } => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let answer = me.answer(peer, frame).await;
                        let _ = me.inner.net.reply(id, answer).await;
                    });
                }
                ev => other(ev),
            }
        }
    }

    async fn answer(&self, peer: PeerId, mut frame: Frame) -> Frame {
        let result: Result<(Response, Bytes), ClusterError> = async {
            match Request::from_frame(&frame)? {
                Request::Manifest { blob } => {
                    let store = &self.inner.store;
                    let m = store.manifest(&blob).ok_or_else(|| {
                        ClusterError::Transfer(format!("blob {blob} is not held here"))
                    })?;
                    if !store.readable_by(&blob, &peer) {
                        return Err(ClusterError::Refused(crate::blobs::not_for(&blob, &peer)));
                    }
                    Ok((Response::Manifest((*m).clone()), Bytes::new()))
                }
                Request::Train(task) => {
                    let body = std::mem::take(&mut frame.body);
                    tracing::debug!(
                        task = task.task,
                        bytes = body.len(),
                        "training request arrived"
                    );
                    let (r, update) =
                        worker::serve_train(&self.inner.worker, peer, *task, body).await?;
                    Ok((Response::Trained(r), update))
                }
                Request::PluginBlob { sha256 } => {
                    let plugins = &self.inner.plugins;
                    let id = plugins.blob_of(&sha256).ok_or_else(|| {
                        ClusterError::Transfer(format!("plugin {sha256} is not installed here"))
                    })?;
                    let signature = plugins.signature(&sha256).map(|s| s.to_toml());
                    Ok((Response::Blob { id, signature }, Bytes::new()))
                }
                Request::PluginPrepare {
                    kind,
                    sha256,
                    order,
                } => {
                    self.prepare_plugin(peer, &kind, &sha256, order.as_deref())
                        .await?;
                    Ok((Response::Ok, Bytes::new()))
                }
                Request::Forget { job } => {
                    worker::forget(&self.inner.worker, peer, &job)?;
                    Ok((Response::Ok, Bytes::new()))
                }
                Request::PluginCommit {
                    kind,
                    sha256,
                    order,
                } => {
                    self.commit_plugin(&kind, &sha256, order.as_deref()).await?;
                    Ok((Response::Ok, Bytes::new()))
                }
            }
        }
        .await;
        match result {
            Ok((r, body)) => r.to_frame(body),
            Err(e) => Response::Error {
                message: e.to_string(),
            }
            .to_frame(Bytes::new()),
        }
    }

    /// Peers whose last heartbeat is recent enough.
    pub async fn alive_peers(&self) -> Result<Vec<PeerView>, ClusterError> {
        let timeout = self.inner.config.peer_timeout;
        Ok(self
            .inner
            .net
            .peers()
            .await?
            .into_iter()
            .filter(|p| p.age < timeout)
            .collect())
    }

    /// Every peer this node has heard from.
    pub async fn peers(&self) -> Result<Vec<PeerView>, ClusterError> {
        Ok(self.inner.net.peers().await?)
    }

    /// This node's own status.
    pub fn status(&self) -> NodeStatus {
        self.inner.status.get()
    }

    /// Submits a job (TOML spec, plus the CSV text for `source = "csv"`): this node becomes
    /// its coordinator. The spec is parsed and validated and its plugins are resolved here,
    /// once, before the job is accepted.
    pub fn submit(&self, spec: &str, csv: Option<String>) -> Result<JobRecord, ClusterError> {
        // Checked before the job is registered, so a refused job leaves nothing behind.
        let mut submitted = self.accept("", spec, csv)?;
        let s = &submitted.job.spec;
        let handle = self
            .inner
            .jobs
            .create(&s.name, s.rounds, spec, submitted.csv.as_deref())
            .map_err(|e| ClusterError::Io(format!("saving the job: {e}")))?;
        submitted.job.id = handle.id().to_string();
        let record = handle.snapshot();
        tokio::spawn(coordinator::run(self.coordinator(), handle, submitted));
        Ok(record)
    }

    /// A job this node coordinates.
    pub fn job(&self, id: &str) -> Option<Arc<crate::jobs::JobHandle>> {
        self.inner.jobs.get(id)
    }

    /// Every job this node coordinates.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.inner.jobs.list()
    }

    /// Checks and installs a plugin on this node, with its signature (TOML; a closed node
    /// requires one by a trusted operator key).
    pub fn install_plugin(
        &self,
        bytes: Vec<u8>,
        signature: Option<&str>,
    ) -> Result<PluginMeta, ClusterError> {
        let signature = signature
            .map(|s| infra_trust::PluginSignature::from_toml(s, "the plugin's signature"))
            .transpose()
            .map_err(|e| ClusterError::Refused(e.to_string()))?;
        self.inner
            .plugins
            .install(bytes, signature, &self.inner.store)
    }

    /// The operator key that signed installed plugin `sha256` (hex), or empty.
    pub fn plugin_signer(&self, sha256: &str) -> String {
        self.inner
            .plugins
            .signature(sha256)
            .map(|s| s.signer)
            .unwrap_or_default()
    }

    /// Plugins installed on this node.
    pub fn installed_plugins(&self) -> Vec<PluginMeta> {
        self.inner.plugins.list_installed()
    }

    /// The active plugin per kind after swaps: kind -> (name, sha256).
    pub fn active_plugins(&self) -> Vec<(String, String, String)> {
        self.inner
            .plugins
            .registry
            .list()
            .into_iter()
            .map(|(k, _, m)| (k.name().to_string(), m.name, m.sha256))
            .collect()
    }

    async fn prepare_plugin(
        &self,
        from: PeerId,
        kind: &str,
        sha: &str,
        order: Option<&str>,
    ) -> Result<(), ClusterError> {
        let kind = kind.parse::<PluginKind>().map_err(ClusterError::BadJob)?;
        self.inner.plugins.check_order(kind, sha, order, false)?;
        self.fetch_plugin(from, sha).await?;
        let p = self
            .inner
            .plugins
            .by_sha(sha)
            .ok_or_else(|| ClusterError::BadJob(format!("plugin {sha} did not install")))?;
        p.expect_kind(kind)?;
        Ok(())
    }

    /// Installs plugin `sha` from peer `from` unless this node has it (see
    /// [`crate::plugins::fetch_plugin`]).
    pub(crate) async fn fetch_plugin(
        &self,
        from: PeerId,
        sha: &str,
    ) -> Result<Option<transfer::Fetched>, ClusterError> {
        let n = &self.inner;
        crate::plugins::fetch_plugin(&n.net, &n.store, &n.links, &n.plugins, from, sha).await
    }

    async fn commit_plugin(
        &self,
        kind: &str,
        sha: &str,
        order: Option<&str>,
    ) -> Result<(), ClusterError> {
        let kind = kind.parse::<PluginKind>().map_err(ClusterError::BadJob)?;
        let p = self.inner.plugins.by_sha(sha).ok_or_else(|| {
            ClusterError::BadJob(format!("plugin {sha} was not prepared on this peer"))
        })?;
        p.expect_kind(kind)?;
        self.inner.plugins.check_order(kind, sha, order, true)?;
        let rec = self.inner.plugins.activate(p);
        tracing::info!(kind = kind.name(), old = ?rec.old, new = ?rec.new, "plugin swapped");
        let shas = self.inner.plugins.active_shas();
        self.inner.status.update(|s| s.plugins = shas).await;
        Ok(())
    }

    /// Swaps the active plugin of `kind` on every live peer and here, in two phases: every
    /// peer first fetches, loads and checks it; only when all succeeded does each make it
    /// active. A failure in the first phase leaves the old plugin active everywhere. Running
    /// jobs take it from their next scheduling decision (scheduler) or round (aggregator).
    ///
    /// A closed node needs `order`, an operator-signed [`infra_trust::SwapOrder`] (TOML) for
    /// exactly this swap; every peer checks it again.
    pub async fn swap_plugin(
        &self,
        kind: PluginKind,
        sha: &str,
        order: Option<&str>,
    ) -> Result<Vec<PeerOutcome>, ClusterError> {
        if kind == PluginKind::Cleaner {
            return Err(ClusterError::BadJob(
                "cleaners form a per-job chain; swap a scheduler or an aggregator".into(),
            ));
        }
        let p = self.inner.plugins.by_sha(sha).ok_or_else(|| {
            ClusterError::BadJob(format!(
                "plugin {sha} is not installed on this host (install it first)"
            ))
        })?;
        p.expect_kind(kind)?;
        self.inner.plugins.check_order(kind, sha, order, false)?;
        let peers: Vec<PeerId> = self
            .alive_peers()
            .await?
            .into_iter()
            .map(|p| p.peer)
            .collect();
        let ask = |req: Request| {
            let net = self.inner.net.clone();
            let peers = peers.clone();
            async move {
                futures::future::join_all(peers.into_iter().map(|peer| {
                    let net = net.clone();
                    let frame = req.to_frame();
                    async move {
                        let r = match net.request(peer, frame).await {
                            Ok(f) => Response::from_frame(&f).map(|_| ()),
                            Err(e) => Err(e.into()),
                        };
                        PeerOutcome {
                            peer: peer.to_string(),
                            error: r.err().map(|e: ClusterError| e.to_string()),
                        }
                    }
                }))
                .await
            }
        };
        let order = order.map(String::from);
        let prepared = ask(Request::PluginPrepare {
            kind: kind.name().into(),
            sha256: sha.into(),
            order: order.clone(),
        })
        .await;
        let failed: Vec<String> = prepared
            .iter()
            .filter_map(|o| o.error.as_ref().map(|e| format!("peer {}: {e}", o.peer)))
            .collect();
        if !failed.is_empty() {
            return Err(ClusterError::Swap(format!(
                "nothing was swapped; {} of {} peers could not load {} {sha}: {}",
                failed.len(),
                peers.len(),
                kind.name(),
                failed.join("; ")
            )));
        }
        self.commit_plugin(kind.name(), sha, order.as_deref())
            .await?;
        let mut out = vec![PeerOutcome {
            peer: self.peer_id().to_string(),
            error: None,
        }];
        out.extend(
            ask(Request::PluginCommit {
                kind: kind.name().into(),
                sha256: sha.into(),
                order,
            })
            .await,
        );
        Ok(out)
    }
}

#[cfg(test)]
mod roles;

#[cfg(test)]
mod tests {
    use crate::testing::two_nodes;

    /// A peer that answers a plugin's sha256 with some other blob: the bytes arrive (the blob
    /// itself is intact) but are not installed, and the error names both hashes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plugin_bytes_that_do_not_match_their_sha256_are_refused() {
        let (a, b) = two_nodes().await;
        let claimed = "ab".repeat(32);
        let blob = a.store().put(b"not the plugin".to_vec());
        a.inner.plugins.remember_blob(claimed.clone(), blob.clone());
        let e = b
            .fetch_plugin(a.peer_id(), &claimed)
            .await
            .unwrap_err()
            .to_string();
        let actual = infra_runtime::sha256_hex(b"not the plugin");
        assert!(
            e.contains(&format!("plugin {claimed}, but its sha256 is {actual}")),
            "{e}"
        );
        assert!(b.inner.plugins.by_sha(&claimed).is_none());
        assert!(!b.store().has(&blob));
        // Unknown to the peer: named as such.
        let e = b
            .fetch_plugin(a.peer_id(), &"cd".repeat(32))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not installed here"), "{e}");
    }

    /// The coordinator damages the first two chunks it serves (a flipped byte, then a
    /// truncated chunk): the workers catch both, fetch them again, and the rounds report the
    /// two refetched chunks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupted_chunks_are_fetched_again_and_counted_in_the_rounds() {
        let nodes = crate::testing::joined_nodes(3).await;
        let spec = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/digits-cluster.toml"),
        )
        .unwrap()
        .replace("rounds = 10", "rounds = 3");
        nodes[0].inner.faults.arm(2);
        let rec = nodes[0].submit(&spec, None).unwrap();
        let (past, mut live) = nodes[0].job(&rec.id).unwrap().subscribe();
        let mut evs = past;
        while !evs.last().is_some_and(|e| e.kind.is_terminal()) {
            evs.push(live.recv().await.unwrap());
        }
        assert_eq!(evs.last().unwrap().kind, crate::EventKind::Done, "{evs:#?}");
        let refetched: u32 = evs
            .iter()
            .filter(|e| e.kind == crate::EventKind::Round)
            .map(|e| e.refetched)
            .sum();
        assert_eq!(refetched, 2, "{evs:#?}");
        assert_eq!(nodes[0].inner.faults.left(), 0, "both faults were served");
    }
}
