//! Starting (or resuming) a job on its coordinator: its plugins, its data as shard blobs and
//! a cleaned test split, and the global model, fresh or from the last checkpoint.

use super::{blocking, ident, Held, Swappable};
use crate::jobs::{JobEvent, JobHandle};
use crate::node::ClusterNode;
use crate::ClusterError;
use infra_runtime::cleaner::CleaningChain;
use infra_runtime::PluginKind;
use infra_train::{checkpoint, Dataset, JobSpec, Model};
use std::path::PathBuf;
use std::sync::Arc;

/// A job ready for its first (or next) round.
pub(super) struct Started {
    pub spec: JobSpec,
    pub sched: Swappable,
    pub agg: Swappable,
    /// The shards' blob ids, held in this node's store for the job's life.
    pub shards: Vec<String>,
    /// Raw size of each shard.
    pub shard_bytes: Vec<u64>,
    /// Features per row and classes of the data set.
    pub width: usize,
    pub classes: usize,
    /// The cleaned test split the coordinator evaluates on.
    pub test: Arc<Dataset>,
    pub ckpt: Option<PathBuf>,
    pub global: Arc<Vec<f32>>,
    /// The round to run next.
    pub first: u32,
}

struct Prepared {
    shards: Vec<String>,
    shard_bytes: Vec<u64>,
    test: Dataset,
    width: usize,
    classes: usize,
}

/// Resolves the job's plugins, turns its data into held shard blobs, and builds (or loads) the
/// global model; emits `started` or `resumed`.
pub(super) async fn start(
    node: &ClusterNode,
    job: &Arc<JobHandle>,
    spec_text: &str,
    csv: Option<String>,
    held: &mut Held,
) -> Result<Started, ClusterError> {
    let n = &node.inner;
    let spec = JobSpec::parse(spec_text, "job")?;
    let scheduler = n.plugins.resolve(&spec.scheduler, PluginKind::Scheduler)?;
    let aggregator = n
        .plugins
        .resolve(&spec.aggregator, PluginKind::Aggregator)?;
    let cleaners = spec
        .cleaners
        .iter()
        .map(|c| n.plugins.resolve(c, PluginKind::Cleaner))
        .collect::<Result<Vec<_>, _>>()?;
    let seen = n.plugins.registry.history().len();
    let sched = Swappable {
        kind: PluginKind::Scheduler,
        instance: scheduler.instance(),
        seen,
    };
    let agg = Swappable {
        kind: PluginKind::Aggregator,
        instance: aggregator.instance(),
        seen,
    };
    job.update(|r| {
        r.plugins.insert("scheduler".into(), ident(&scheduler));
        r.plugins.insert("aggregator".into(), ident(&aggregator));
        for (i, c) in cleaners.iter().enumerate() {
            r.plugins.insert(format!("cleaner.{i}"), ident(c));
        }
    });

    // Data: raw shards become blobs; the test split is cleaned here for evaluation.
    let spec_c = spec.clone();
    let store = n.store.clone();
    let prepared = blocking(move || {
        let data = infra_train::task::load_data(&spec_c, csv.as_deref())?;
        let (shards, test) = infra_train::task::divide(&spec_c, &data);
        let chain = CleaningChain::new(cleaners)?;
        let test = infra_train::run::clean(&chain, &test, &mut Vec::new())?;
        Ok(Prepared {
            shard_bytes: shards
                .iter()
                .map(|s| (s.features.len() * 4 + s.labels.len() * 4) as u64)
                .collect(),
            shards: shards.iter().map(|s| store.put(s.to_bytes())).collect(),
            width: data.width(),
            classes: data.classes,
            test,
        })
    })
    .await?;
    for id in &prepared.shards {
        n.store.hold(id);
        held.shards.push(id.clone());
    }
    let test = Arc::new(prepared.test);
    let ckpt: Option<PathBuf> = job.dir().map(|d| d.join("checkpoint.safetensors"));

    // The global model: fresh, or the last checkpoint when resuming.
    let done_before = job.snapshot().rounds_done;
    let (spec_c, ckpt_c) = (spec.clone(), ckpt.clone());
    let (width, classes) = (prepared.width, prepared.classes);
    let global: Arc<Vec<f32>> = blocking(move || {
        tch::manual_seed(spec_c.seed as i64);
        let device = infra_train::device::resolve(&spec_c.device).map_err(ClusterError::Job)?;
        let mut m = Model::new(&spec_c.model, width, classes, device)?;
        if done_before > 0 {
            if let Some(p) = ckpt_c.filter(|p| p.exists()) {
                checkpoint::load(&mut m, &p)?;
            }
        }
        Ok(Arc::new(m.flat()))
    })
    .await?;
    let first = if done_before > 0 {
        job.emit(JobEvent::note(
            "resumed",
            done_before + 1,
            format!("resuming after round {done_before}"),
        ));
        done_before + 1
    } else {
        job.emit(JobEvent::note(
            "started",
            1,
            format!("coordinator {}", node.peer_id()),
        ));
        1
    };
    Ok(Started {
        spec,
        sched,
        agg,
        shards: prepared.shards,
        shard_bytes: prepared.shard_bytes,
        width,
        classes,
        test,
        ckpt,
        global,
        first,
    })
}
