//! `infra submit`, `infra jobs`, `infra job`, `infra cancel`: jobs on a cluster, through any
//! host's control plane (that host coordinates what is submitted to it).

use super::cluster::{status, Client, HostArgs};
use anyhow::Context;
use clap::Args;
use infra_api::pb;
use pb::{EventKind, JobState};
use std::path::{Path, PathBuf};

/// `infra submit`.
#[derive(Args)]
pub struct SubmitArgs {
    /// The job file (TOML, as for `infra train`); `.wasm` plugins it names are uploaded first.
    job: PathBuf,
    /// Follow the job: a progress bar over its rounds and its events, until it ends.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    host: HostArgs,
}

/// `infra job ID` and `infra cancel ID`.
#[derive(Args)]
pub struct JobIdArgs {
    /// Job id (see `infra jobs`).
    id: String,
    #[command(flatten)]
    host: HostArgs,
}

/// Uploads the `.wasm` plugins the job names (rewriting them to `sha256:<hex>`) and reads
/// its CSV data; returns the spec to send and the data.
async fn prepare(c: &mut Client, path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    // Checked here first, so a broken job file fails before anything is uploaded.
    infra_train::JobSpec::parse(&text, &path.display().to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut doc: toml::Table = toml::from_str(&text)?;
    let mut refs: Vec<&mut toml::Value> = Vec::new();
    for (key, v) in doc.iter_mut() {
        match (key.as_str(), v) {
            ("scheduler" | "aggregator", toml::Value::Table(t)) => refs.extend(t.get_mut("plugin")),
            ("cleaners", toml::Value::Array(a)) => {
                for c in a.iter_mut() {
                    if let toml::Value::Table(t) = c {
                        refs.extend(t.get_mut("plugin"));
                    }
                }
            }
            _ => {}
        }
    }
    for r in refs {
        if let Some(file) = r
            .as_str()
            .filter(|s| s.ends_with(".wasm"))
            .map(|s| base.join(s))
        {
            let (p, _) = super::plugin::upload(c, &file).await?;
            eprintln!(
                "installed {} ({} {}) sha256:{}",
                file.display(),
                p.kind,
                p.name,
                p.sha256
            );
            *r = toml::Value::String(format!("sha256:{}", p.sha256));
        }
    }
    let mut csv = Vec::new();
    if let Some(toml::Value::Table(data)) = doc.get("data") {
        if data.get("source").and_then(|s| s.as_str()) == Some("csv") {
            if let Some(p) = data.get("path").and_then(|p| p.as_str()) {
                let file = base.join(p);
                csv = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            }
        }
    }
    Ok((toml::to_string(&doc)?, csv))
}

/// `infra submit`.
pub fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let watch = args.watch;
    let path = args.job.clone();
    args.host.block_on(async |mut c| {
        let (spec_toml, data_csv) = prepare(&mut c, &path).await?;
        let job = c
            .submit_job(pb::SubmitJobRequest {
                spec_toml,
                data_csv,
            })
            .await
            .map_err(status)?
            .into_inner();
        println!("submitted {} (coordinator {})", job.id, job.coordinator);
        if watch {
            follow(&mut c, &job).await?;
        }
        Ok(())
    })
}

async fn follow(c: &mut Client, job: &pb::Job) -> anyhow::Result<()> {
    let mut stream = c
        .watch_job(pb::WatchJobRequest { id: job.id.clone() })
        .await
        .map_err(status)?
        .into_inner();
    let bar = indicatif::ProgressBar::new(job.rounds as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} round {pos}/{len} {msg}")
            .expect("valid template"),
    );
    // Without a terminal the bar is hidden and its println is a no-op: print plainly then.
    let say = |line: String| {
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut end = None;
    while let Some(ev) = stream.message().await.map_err(status)? {
        match ev.kind() {
            EventKind::Round => {
                bar.set_position(ev.round as u64);
                bar.set_message(format!(
                    "accuracy {:.3}  loss {:.3}  {:.2}s  tasks {}/{}  overhead {:.0}%",
                    ev.accuracy,
                    ev.loss,
                    ev.seconds,
                    ev.tasks_done,
                    ev.tasks_total,
                    ev.overhead * 100.0
                ));
                say(format!(
                    "round {:>3}: accuracy {:.4}, loss {:.4}, {:.2}s, {}/{} tasks, {} bytes moved, overhead {:.1}%",
                    ev.round, ev.accuracy, ev.loss, ev.seconds, ev.tasks_done, ev.tasks_total, ev.bytes, ev.overhead * 100.0
                ));
            }
            EventKind::Done | EventKind::Failed | EventKind::Cancelled => {
                end = Some(ev);
                break;
            }
            k => say(format!(
                "round {:>3}: {}: {}",
                ev.round,
                kind_name(k),
                ev.message
            )),
        }
    }
    bar.finish_and_clear();
    match end {
        Some(ev) if ev.kind() == EventKind::Done => {
            println!(
                "{} done: accuracy {:.4} after {} rounds",
                job.id, ev.accuracy, ev.round
            );
            Ok(())
        }
        Some(ev) => anyhow::bail!("{} {}: {}", job.id, kind_name(ev.kind()), ev.message),
        None => anyhow::bail!(
            "{}: the host stopped the event stream before the job ended",
            job.id
        ),
    }
}

/// `infra jobs`.
pub fn jobs(args: HostArgs) -> anyhow::Result<()> {
    let resp = args.block_on(async |mut c| {
        Ok(c.list_jobs(pb::ListJobsRequest {})
            .await
            .map_err(status)?
            .into_inner())
    })?;
    let mut t = super::table(&[
        "job",
        "state",
        "rounds",
        "accuracy",
        "scheduler",
        "aggregator",
        "error",
    ]);
    for j in resp.jobs {
        let short = |k: &str| {
            j.plugins
                .get(k)
                .map(|v| v.split(' ').next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        t.add_row(vec![
            j.id.clone(),
            state_name(j.state()),
            format!("{}/{}", j.rounds_done, j.rounds),
            format!("{:.4}", j.accuracy),
            short("scheduler"),
            short("aggregator"),
            j.error.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `infra job ID`: the job and its history.
pub fn job(args: JobIdArgs) -> anyhow::Result<()> {
    let id = args.id.clone();
    let j = args.host.block_on(async |mut c| {
        Ok(c.get_job(pb::GetJobRequest { id })
            .await
            .map_err(status)?
            .into_inner())
    })?;
    println!(
        "{} ({}): {}, round {}/{}, accuracy {:.4}{}",
        j.id,
        j.name,
        state_name(j.state()),
        j.rounds_done,
        j.rounds,
        j.accuracy,
        if j.error.is_empty() {
            String::new()
        } else {
            format!(", error: {}", j.error)
        }
    );
    let mut t = super::table(&[
        "#", "event", "round", "accuracy", "seconds", "tasks", "detail",
    ]);
    for e in j.events {
        let round = e.kind() == EventKind::Round;
        t.add_row(vec![
            e.seq.to_string(),
            kind_name(e.kind()),
            e.round.to_string(),
            if round {
                format!("{:.4}", e.accuracy)
            } else {
                String::new()
            },
            if round {
                format!("{:.2}", e.seconds)
            } else {
                String::new()
            },
            if round {
                format!("{}/{}", e.tasks_done, e.tasks_total)
            } else {
                String::new()
            },
            e.message,
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `infra cancel ID`.
pub fn cancel(args: JobIdArgs) -> anyhow::Result<()> {
    let id = args.id.clone();
    let j = args.host.block_on(async |mut c| {
        Ok(c.cancel_job(pb::CancelJobRequest { id })
            .await
            .map_err(status)?
            .into_inner())
    })?;
    println!(
        "{}: cancel requested (stops at the next task or round boundary)",
        j.id
    );
    Ok(())
}

/// An event kind as the tables and logs name it (`peer-down`): the proto's name without its
/// prefix.
fn kind_name(k: EventKind) -> String {
    proto_name(k.as_str_name(), "EVENT_KIND_")
}

/// A job state as the tables name it (`running`).
fn state_name(s: JobState) -> String {
    proto_name(s.as_str_name(), "JOB_STATE_")
}

fn proto_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', "-")
}
