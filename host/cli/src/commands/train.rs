//! `infra train [JOB.toml]`: a training job on this machine with local workers.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use infra_rounds::local::{JobReport, LocalOptions, RoundReport};
use infra_runtime::Runtime;
use infra_train::JobSpec;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Args)]
pub struct TrainArgs {
    /// Job spec (TOML). Without it, the embedded default: digits (see examples/digits.toml).
    job: Option<PathBuf>,
    /// Print a machine-readable summary (JSON) at the end instead of tables.
    #[arg(long)]
    json: bool,
    /// Where to write the checkpoint after every round.
    #[arg(long, default_value = "checkpoints")]
    checkpoint_dir: PathBuf,
    /// Override the job's device (auto, cpu, cuda, cuda:N).
    #[arg(long)]
    device: Option<String>,
    /// Override the job's number of rounds.
    #[arg(long)]
    rounds: Option<u32>,
}

static BAR: OnceLock<ProgressBar> = OnceLock::new();

fn on_round(r: &RoundReport, job: &JobSpec) {
    let bar = BAR.get_or_init(|| {
        let b = ProgressBar::new(job.rounds as u64);
        b.set_style(
            ProgressStyle::with_template("round {pos}/{len} {bar:30} {msg}").expect("template"),
        );
        b
    });
    bar.set_position(r.round as u64);
    bar.set_message(format!(
        "loss {:.4}  test accuracy {:.4}{}",
        r.train_loss,
        r.test_accuracy,
        if r.evaluated { "" } else { " (last evaluated)" }
    ));
}

impl TrainArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let mut job = match &self.job {
            Some(p) => JobSpec::load(p)?,
            None => JobSpec::default_digits(),
        };
        if let Some(d) = self.device {
            job.device = d;
        }
        if let Some(r) = self.rounds {
            job.rounds = r;
        }
        let runtime = Runtime::new()?;
        let opts = LocalOptions {
            checkpoint_dir: Some(self.checkpoint_dir.clone()),
            on_round: (!self.json).then_some(on_round as fn(&RoundReport, &JobSpec)),
        };
        let report = infra_rounds::local::train(&job, &runtime, &opts)
            .with_context(|| format!("job `{}`", job.name))?;
        if let Some(b) = BAR.get() {
            b.finish();
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&report);
        }
        Ok(())
    }
}

fn print_report(r: &JobReport) {
    println!(
        "\njob `{}` on {}: test accuracy {:.4} after {} rounds in {:.1} s",
        r.job, r.device, r.final_accuracy, r.rounds, r.wall_seconds
    );
    let mut t = super::table(&[
        "round",
        "train loss",
        "test loss",
        "test accuracy",
        "seconds",
        "tasks",
        "aggregator",
    ]);
    for h in &r.history {
        let evaluated = |v: String| if h.evaluated { v } else { "-".into() };
        t.add_row(vec![
            h.round.to_string(),
            format!("{:.4}", h.train_loss),
            evaluated(format!("{:.4}", h.test_loss)),
            evaluated(format!("{:.4}", h.test_accuracy)),
            format!("{:.2}", h.seconds),
            format!("{}/{}", h.tasks.0, h.tasks.1),
            h.aggregator.clone(),
        ]);
    }
    for e in &r.events {
        println!("round {:>3}: {}: {}", e.round, e.kind, e.message);
    }
    println!("{t}");
    let mut t = super::table(&["worker", "tasks", "samples", "busy (s)", "utilisation"]);
    for w in &r.workers {
        t.add_row(vec![
            w.id.clone(),
            w.tasks.to_string(),
            w.samples.to_string(),
            format!("{:.2}", w.busy_seconds),
            format!("{:.1}%", w.utilisation * 100.0),
        ]);
    }
    println!("{t}");
    let mut t = super::table(&[
        "cleaning step",
        "rows in",
        "rows out",
        "dropped",
        "values changed",
    ]);
    for s in &r.cleaning {
        let d: Vec<String> = s.dropped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        t.add_row(vec![
            s.step.clone(),
            s.rows_in.to_string(),
            s.rows_out.to_string(),
            if d.is_empty() {
                "-".into()
            } else {
                d.join(", ")
            },
            s.values_changed.to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "samples/s {:.0} | parameters {} | parameter bytes moved {} | speedup vs one worker {:.2}x | utilisation (allocated / total) {:.1}%",
        r.samples_per_second, r.parameters, r.parameter_bytes_moved, r.speedup_vs_one_worker, r.utilisation * 100.0
    );
    if let Some(c) = &r.checkpoint {
        println!("checkpoint: {}", c.display());
    }
}
