//! One module per subcommand.

mod cluster;
mod demo;
mod jobs;
mod key;
mod local_cluster;
mod plugin;
mod train;

use clap::{Parser, Subcommand};

/// infra: distributed AI training where every policy is a sandboxed WebAssembly component.
#[derive(Parser)]
#[command(name = "infra", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, list and export plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Operator keys: the root of a closed cluster's trust.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Admit hosts into a closed cluster.
    #[command(subcommand)]
    Member(key::MemberCommand),
    /// Run the built-in plugins on a sample workload and print what they decided.
    Demo(demo::DemoArgs),
    /// Train a model on this machine with local workers (default: the digits job).
    Train(train::TrainArgs),
    /// The peers a host sees (from its control plane).
    Peers(cluster::HostArgs),
    /// The plugins a host has (from its control plane).
    Plugins(cluster::HostArgs),
    /// Submit a job to a cluster (the host you name coordinates it).
    Submit(jobs::SubmitArgs),
    /// The jobs a host coordinates.
    Jobs(cluster::HostArgs),
    /// One job and its history (rounds, swaps, retries).
    Job(jobs::JobIdArgs),
    /// Cancel a job.
    Cancel(jobs::JobIdArgs),
    /// Start a local cluster: N infra-host processes on 127.0.0.1, joined through the first.
    Cluster(local_cluster::ClusterArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Plugin(c) => c.run(),
            Command::Key(c) => c.run(),
            Command::Member(c) => c.run(),
            Command::Demo(a) => a.run(),
            Command::Train(a) => a.run(),
            Command::Peers(a) => cluster::peers(a),
            Command::Plugins(a) => cluster::plugins(a),
            Command::Submit(a) => jobs::submit(a),
            Command::Jobs(a) => jobs::jobs(a),
            Command::Job(a) => jobs::job(a),
            Command::Cancel(a) => jobs::cancel(a),
            Command::Cluster(a) => a.run(),
        }
    }
}

/// A table in the house style.
pub(crate) fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}
