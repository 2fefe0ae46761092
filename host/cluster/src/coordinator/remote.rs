//! The peers of a cluster as the round engine's workers: the nodes the scheduler sees (this
//! node and every live peer not marked down, with resources from their heartbeats and links
//! from ping and past transfers), the job's shards as held blobs, a round's weights encoded
//! once, and one task run on a peer (or here) with its weights sent and its update brought
//! back, watched for a peer whose heartbeats stop. It holds narrow handles (network client,
//! blob store, links, this node's worker and status), never the whole node.

use super::Coordinator;
use crate::blobs::BlobId;
use crate::encoding::{self, Params};
use crate::messages::{Request, Response, TrainResult, TrainTask, INLINE_MAX_BYTES};
use crate::transfer;
use crate::worker::Weights;
use crate::ClusterError;
use bytes::Bytes;
use infra_net::{Client, PeerId};
use infra_rounds::{Done, EngineError, Failure, Order, Workers};
use infra_runtime::scheduler::{Node, Resources, Tier};
use infra_train::job::Compression;
use infra_train::Dataset;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A round's global weights: in memory for tasks run here, as bytes for the requests (empty
/// when they go as a blob instead).
pub(super) struct RoundWeights {
    params: Arc<Vec<f32>>,
    inline: Bytes,
    blob: Option<BlobId>,
    compression: Compression,
}

/// The peers of one job's cluster.
pub(super) struct RemoteWorkers {
    /// This node's handles.
    c: Coordinator,
    /// Job id.
    job: String,
    /// The blob holding the job's TOML, which tasks name.
    spec: BlobId,
    compression: Compression,
    /// Peers marked down, and when: left out until a heartbeat newer than the mark arrives.
    down: Mutex<HashMap<PeerId, Instant>>,
    /// What the job keeps across the cluster: its shard blobs here, the peers given tasks.
    pub held: Mutex<(Vec<BlobId>, HashSet<PeerId>)>,
}

impl RemoteWorkers {
    pub fn new(c: Coordinator, job: String, spec: BlobId, compression: Compression) -> Self {
        Self {
            c,
            job,
            spec,
            compression,
            down: Mutex::new(HashMap::new()),
            held: Mutex::new((Vec::new(), HashSet::new())),
        }
    }
}

impl Workers for RemoteWorkers {
    type Shard = BlobId;
    type Weights = RoundWeights;
    type Update = Params;

    /// Raw shards become blobs held here for the job's life; each worker cleans the shards
    /// it trains (federated cleaning).
    async fn shards(
        &self,
        shards: Vec<Dataset>,
        cleaned: bool,
    ) -> Result<Vec<BlobId>, EngineError> {
        if cleaned {
            return Err(EngineError::Job(
                "`data.cleaning = \"whole\"` is for local jobs: no peer of a cluster holds every row".into(),
            ));
        }
        let store = self.c.store.clone();
        let ids = tokio::task::spawn_blocking(move || {
            shards
                .iter()
                .map(|s| store.put_for(s.to_bytes(), &[]))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| EngineError::Internal(format!("storing the shards: {e}")))?;
        for id in &ids {
            self.c.store.hold(id);
        }
        self.held
            .lock()
            .expect("held lock")
            .0
            .extend(ids.iter().cloned());
        Ok(ids)
    }

    /// The weights ride in each training request; a model too large for one frame goes as a
    /// blob the workers fetch.
    fn weights(
        &self,
        round: u32,
        global: &Arc<Vec<f32>>,
    ) -> Result<(RoundWeights, u64), EngineError> {
        let encoded =
            encoding::encode_weights(global, self.compression).map_err(|e| EngineError::Round {
                round,
                cause: e.to_string(),
            })?;
        let wire = encoded.len() as u64;
        let (inline, blob) = if encoded.len() > INLINE_MAX_BYTES {
            (Bytes::new(), Some(self.c.store.put_for(encoded, &[])))
        } else {
            (encoded, None)
        };
        Ok((
            RoundWeights {
                params: global.clone(),
                inline,
                blob,
                compression: self.compression,
            },
            wire,
        ))
    }

    fn end_round(&self, w: RoundWeights) {
        if let Some(id) = &w.blob {
            self.c.store.remove(id);
        }
    }

    /// This node and every live peer not marked down; a peer marked down comes back once a
    /// heartbeat newer than the mark arrives.
    async fn nodes(&self, demand: Resources) -> Result<Vec<Node>, EngineError> {
        let me = self.c.net.peer_id();
        let peers = self
            .c
            .net
            .peers()
            .await
            .map_err(|e| EngineError::Internal(format!("the peer list: {e}")))?;
        let mut out = vec![to_node(me, &self.c.status.get(), 0.0, 0, &self.job, demand)];
        let mut down = self.down.lock().expect("down lock");
        for p in peers.into_iter().filter(|p| p.age < self.c.peer_timeout) {
            if let Some(mark) = down.get(&p.peer) {
                if p.age >= mark.elapsed() {
                    continue;
                }
                down.remove(&p.peer);
            }
            let rtt = p.rtt.map_or(0.0, |d| d.as_secs_f64() * 1e3);
            let bw = self.c.links.bandwidth(&p.peer).map_or(0, |b| b as u64);
            out.push(to_node(p.peer, &p.status, rtt, bw, &self.job, demand));
        }
        Ok(out)
    }

    async fn run<'a>(&'a self, node: &'a str, o: Order<'a, Self>) -> Result<Done<Params>, Failure> {
        let peer: PeerId = node
            .parse()
            .map_err(|_| Failure::Node(format!("`{node}` is not a peer id")))?;
        self.held.lock().expect("held lock").1.insert(peer);
        let task = TrainTask {
            job: self.job.clone(),
            round: o.round,
            task: format!("r{}-shard{}", o.round, o.shard),
            spec: self.spec.clone(),
            global: o.weights.blob.clone(),
            shard: o.data.clone(),
            seed: o.seed,
        };
        let here = peer == self.c.net.peer_id();
        match run_task(self, peer, task, o.weights).await {
            Ok((r, update, moved)) => Ok(Done {
                update,
                loss: r.loss,
                rows: r.rows,
                samples: r.samples,
                compute_ms: r.compute_ms,
                busy_ms: r.busy_ms,
                bytes: moved,
                refetched: r.refetched_chunks,
            }),
            // The peer answered: it works, the task did not.
            Err(ClusterError::Remote(m)) => Err(Failure::Task(m)),
            Err(e) if here => Err(Failure::Task(e.to_string())),
            Err(e) => Err(Failure::Node(e.to_string())),
        }
    }

    fn node_failed(&self, node: &str) {
        if let Ok(peer) = node.parse::<PeerId>() {
            if peer != self.c.net.peer_id() {
                self.down
                    .lock()
                    .expect("down lock")
                    .insert(peer, Instant::now());
            }
        }
    }
}

fn to_node(
    peer: PeerId,
    s: &infra_net::NodeStatus,
    rtt_ms: f64,
    bandwidth: u64,
    job: &str,
    demand: Resources,
) -> Node {
    // Between waves none of this job's tasks run; usage a heartbeat still shows for them is stale.
    let own = s.job_tasks.get(job).copied().unwrap_or(0);
    let used_cpu = s.used_cpu_millis.saturating_sub(own * demand.cpu_millis);
    let used_mem = s
        .used_memory_mib
        .saturating_sub(own as u64 * demand.memory_mib);
    let capacity = Resources {
        cpu_millis: s.cpu_millis,
        memory_mib: s.memory_mib,
        gpus: s.gpus,
    };
    Node {
        id: peer.to_string(),
        tier: match s.tier {
            infra_net::Tier::Edge => Tier::Edge,
            infra_net::Tier::Server => Tier::Server,
        },
        capacity,
        free: Resources {
            cpu_millis: s.cpu_millis.saturating_sub(used_cpu),
            memory_mib: s.memory_mib.saturating_sub(used_mem),
            gpus: s.gpus.saturating_sub(s.used_gpus),
        },
        load: s.load,
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect(),
        rtt_ms: rtt_ms as f32,
        bandwidth_bytes_per_s: bandwidth,
    }
}

/// Resolves when `peer`'s heartbeats have stopped (a hung or partitioned worker whose
/// connection is still open), checking a few times per peer timeout.
async fn heartbeats_stop(net: &Client, timeout: Duration, peer: PeerId) -> ClusterError {
    let mut tick = tokio::time::interval(timeout / 4);
    loop {
        tick.tick().await;
        match net.peers().await {
            Ok(peers) => match peers.iter().find(|p| p.peer == peer) {
                Some(p) if p.age < timeout => {}
                Some(p) => {
                    return ClusterError::Transfer(format!(
                        "no heartbeat for {} ms",
                        p.age.as_millis()
                    ))
                }
                None => return ClusterError::Transfer("the peer is unknown".into()),
            },
            Err(e) => return e.into(),
        }
    }
}

/// Runs one task on `peer` (or here) and brings its update back: (result, update, bytes
/// moved over the network).
async fn run_task(
    n: &RemoteWorkers,
    peer: PeerId,
    task: TrainTask,
    weights: &RoundWeights,
) -> Result<(TrainResult, Params, u64), ClusterError> {
    if peer == n.c.net.peer_id() {
        let w = Weights::Params(weights.params.clone().into());
        let t = crate::worker::train(&n.c.worker, peer, task, w).await?;
        let moved = t.result.fetched_bytes;
        return Ok((t.result, t.params.into(), moved));
    }
    // The blobs the task names are served to this peer (and to no other peer that was not
    // given a task naming them).
    for blob in [Some(&task.spec), Some(&task.shard), task.global.as_ref()]
        .into_iter()
        .flatten()
    {
        n.c.store.grant(blob, peer);
    }
    let body = weights.inline.clone(); // shared by every task of the round, not copied
    let sent = body.len() as u64;
    let started = Instant::now();
    tracing::debug!(%peer, "task sent");
    let request =
        n.c.net
            .request(peer, Request::Train(Box::new(task)).to_frame_with(body));
    let f = tokio::select! {
        f = request => f?,
        e = heartbeats_stop(&n.c.net, n.c.peer_timeout, peer) => return Err(e),
    };
    let waited = started.elapsed();
    let Response::Trained(mut result) = Response::from_frame(&f)? else {
        return Err(ClusterError::Protocol("expected a training result".into()));
    };
    tracing::debug!(
        %peer,
        waited_ms = waited.as_secs_f64() * 1e3,
        busy_ms = result.busy_ms,
        compute_ms = result.compute_ms,
        "task answered"
    );
    let (update, received) = match &result.update {
        None => {
            // What the worker did not spend on the task was the network: weights down and
            // the update up.
            // A peer's figure: bounded before it becomes a duration (NaN or huge: unknown).
            let busy = Duration::try_from_secs_f64(result.busy_ms / 1e3).unwrap_or(Duration::MAX);
            let got = f.body.len() as u64;
            if let Some(net) = waited.checked_sub(busy) {
                n.c.links.record(peer, sent + got, net);
            }
            let u = encoding::decode_update(f.body, &weights.params, weights.compression)?;
            tracing::debug!(%peer, "update decoded");
            (u, got)
        }
        Some(id) => {
            let fetched = transfer::fetch(&n.c.net, &n.c.store, &n.c.links, peer, id).await?;
            result.refetched_chunks += fetched.refetched;
            let u = encoding::decode_update(fetched.bytes, &weights.params, weights.compression);
            // The decoded update holds what it needs; the store's copy goes now.
            n.c.store.remove(id);
            (u?, fetched.transferred)
        }
    };
    let moved = sent + result.fetched_bytes + received;
    Ok((result, update, moved))
}
