//! `infra`: the command line for people.
use clap::Parser;

mod commands;

/// mimalloc instead of the system allocator: transfers allocate and free a frame buffer per
/// chunk and per message, and glibc hands those megabyte buffers back to the kernel and faults
/// them in again each time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = commands::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli.run() {
        // One line, whatever the causes' own formatting.
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
