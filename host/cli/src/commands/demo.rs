//! `infra demo`: the built-in plugins at work on sample data, through the real sandbox.
//! Schedulers place a sample workload; a cleaning chain cleans a table with planted bad rows;
//! the aggregators merge a round with a poisoned update.

use clap::Args;
use infra_builtins::sample;
use infra_runtime::aggregator::{UpdateRef, DEFAULT_CHUNK};
use infra_runtime::cleaner::{split_rows, CleaningChain};
use infra_runtime::scheduler::{Node, Pending};
use infra_runtime::{PluginKind, Runtime};
use std::collections::HashSet;
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// Nodes in the sample cluster.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Pending tasks.
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    /// Seed of the sample data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

impl DemoArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = Runtime::new()?;
        let pending = sample::pending(self.tasks, sample::nodes(self.nodes, self.seed), self.seed);
        let (tasks, nodes) = (&pending.tasks, &pending.nodes);
        println!(
            "Scheduling {} tasks on {} nodes ({} edge) with each built-in scheduler:",
            tasks.len(),
            nodes.len(),
            nodes.iter().filter(|n| n.id.starts_with("edge")).count()
        );
        let mut t = super::table(&[
            "scheduler",
            "placed",
            "pending",
            "CPU util",
            "mem util",
            "GPU util",
            "transfer delay (s)",
            "decision (ms)",
        ]);
        for name in infra_builtins::names(PluginKind::Scheduler) {
            let plugin = infra_builtins::load(&runtime, name, PluginKind::Scheduler)?;
            let mut inst = plugin.instance();
            inst.schedule(&pending)?; // warm-up: instantiate and configure
            let started = Instant::now();
            let placed = inst.schedule(&pending)?;
            let took = started.elapsed();
            let u = utilisation(&pending, &placed);
            t.add_row(vec![
                name.to_string(),
                placed.len().to_string(),
                (tasks.len() - placed.len()).to_string(),
                pct(u.cpu),
                pct(u.mem),
                pct(u.gpu),
                format!("{:.1}", u.transfer_s),
                format!("{:.3}", took.as_secs_f64() * 1e3),
            ]);
        }
        println!("{t}");
        println!("utilisation = allocated / total after placement; transfer delay = Σ input bytes / bandwidth for inputs not already on the node\n");

        self.clean(&runtime)?;
        self.aggregate(&runtime)?;
        Ok(())
    }

    fn clean(&self, runtime: &Runtime) -> anyhow::Result<()> {
        let (batch, planted) = sample::dirty_table(2000, 64, 10, self.seed);
        println!(
            "Cleaning a 2000-row table with {} NaN rows, {} bad labels and {} duplicates planted:",
            planted[0], planted[1], planted[2]
        );
        let steps = [
            (
                "drop-invalid",
                vec![("num-classes".to_string(), "10".to_string())],
            ),
            ("dedup", vec![]),
            ("clip-outliers", vec![("z".to_string(), "2.5".to_string())]),
            ("standardize", vec![]),
        ];
        let plugins = steps
            .into_iter()
            .map(|(name, config)| {
                infra_builtins::load(runtime, name, PluginKind::Cleaner)?.with_config(config)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batches = split_rows(&batch.columns, &batch.features, &batch.labels, 500);
        let (_, reports) = CleaningChain::new(plugins)?.run(batches)?;
        let mut t = super::table(&["step", "rows in", "rows out", "dropped", "values changed"]);
        for r in reports {
            let dropped: Vec<String> = r.dropped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            t.add_row(vec![
                r.step,
                r.rows_in.to_string(),
                r.rows_out.to_string(),
                if dropped.is_empty() {
                    "-".into()
                } else {
                    dropped.join(", ")
                },
                r.values_changed.to_string(),
            ]);
        }
        println!("{t}\n");
        Ok(())
    }

    fn aggregate(&self, runtime: &Runtime) -> anyhow::Result<()> {
        let (center, ups) = sample::updates(7, 100_000, 1, self.seed);
        println!("Merging 7 updates of 100,000 parameters, one of them poisoned (x100):");
        let peers: Vec<String> = (0..ups.len()).map(|i| format!("peer-{i}")).collect();
        let refs: Vec<UpdateRef> = ups
            .iter()
            .zip(&peers)
            .map(|(u, p)| UpdateRef {
                peer: p,
                samples: 100,
                loss: 0.5,
                params: u,
            })
            .collect();
        let mut t = super::table(&[
            "aggregator",
            "distance to honest centre (L2)",
            "time (ms)",
            "summary",
        ]);
        for name in infra_builtins::names(PluginKind::Aggregator) {
            let plugin = infra_builtins::load(runtime, name, PluginKind::Aggregator)?;
            let mut inst = plugin.instance();
            let started = Instant::now();
            let agg = inst.aggregate(1, &center, &refs, DEFAULT_CHUNK)?;
            let took = started.elapsed();
            let dist: f64 = agg
                .params
                .iter()
                .zip(&center)
                .map(|(a, c)| ((a - c) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            t.add_row(vec![
                name.to_string(),
                format!("{dist:.3}"),
                format!("{:.2}", took.as_secs_f64() * 1e3),
                agg.summary,
            ]);
        }
        println!("{t}");
        Ok(())
    }
}

struct Utilisation {
    cpu: f64,
    mem: f64,
    gpu: f64,
    transfer_s: f64,
}

fn utilisation(pending: &Pending, placed: &[infra_runtime::scheduler::Assignment]) -> Utilisation {
    let (tasks, nodes) = (&pending.tasks, &pending.nodes);
    let held: HashSet<(u32, u32)> = pending.holdings.iter().map(|h| (h.task, h.node)).collect();
    let total = |f: &dyn Fn(&Node) -> f64| nodes.iter().map(f).sum::<f64>();
    let (cap_cpu, cap_mem, cap_gpu) = (
        total(&|n| n.capacity.cpu_millis as f64),
        total(&|n| n.capacity.memory_mib as f64),
        total(&|n| n.capacity.gpus as f64),
    );
    let mut used = (
        total(&|n| (n.capacity.cpu_millis - n.free.cpu_millis) as f64),
        total(&|n| (n.capacity.memory_mib - n.free.memory_mib) as f64),
        total(&|n| (n.capacity.gpus - n.free.gpus) as f64),
    );
    let mut transfer_s = 0.0;
    for a in placed {
        // Positions checked by the runtime.
        let (task, node) = (&tasks[a.task as usize], &nodes[a.node as usize]);
        used.0 += task.demand.cpu_millis as f64;
        used.1 += task.demand.memory_mib as f64;
        used.2 += task.demand.gpus as f64;
        if !held.contains(&(a.task, a.node)) {
            transfer_s += task.input_bytes as f64 / node.bandwidth_bytes_per_s.max(1) as f64;
        }
    }
    let ratio = |u: f64, c: f64| if c > 0.0 { u / c } else { 0.0 };
    Utilisation {
        cpu: ratio(used.0, cap_cpu),
        mem: ratio(used.1, cap_mem),
        gpu: ratio(used.2, cap_gpu),
        transfer_s,
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}
