//! The algorithms behind infra's built-in plugins.
//!
//! Plain Rust on the SDK's types, so one piece of code serves both the Wasm components in
//! `plugins/builtin/*` (one `export_*!` line each) and native callers (the host's benchmarks
//! compare the two).
//!
//! Layout:
//! - [`scheduler`]: `fifo`, `priority`, `least-loaded`, `best-fit`, `locality`;
//! - [`cleaner`]: `drop-invalid`, `standardize`, `clip-outliers`, `dedup`;
//! - [`aggregator`]: `fedavg`, `median`, `trimmed-mean`, `krum` (and multi-krum).

pub mod aggregator;
pub mod cleaner;
pub mod scheduler;
