//! Write infra plugins in Rust as plain trait impls.
//!
//! A plugin is a `Default` struct that implements [`Plugin`] plus one of [`Scheduler`],
//! [`Cleaner`] or [`Aggregator`], and one export macro line:
//!
//! ```ignore
//! #[derive(Default)]
//! struct FirstNode;
//!
//! impl infra_sdk::Plugin for FirstNode {
//!     fn info() -> infra_sdk::PluginInfo {
//!         infra_sdk::info("first-node", "0.1.0", "puts every task on the first node that fits")
//!     }
//! }
//!
//! impl infra_sdk::Scheduler for FirstNode {
//!     fn schedule(&mut self, tasks: Vec<infra_sdk::Task>, nodes: Vec<infra_sdk::Node>) -> Vec<infra_sdk::Assignment> {
//!         let mut ledger = infra_sdk::Ledger::new(&nodes);
//!         tasks.iter().filter_map(|t| {
//!             let n = (0..nodes.len()).find(|&n| ledger.fits(n, &t.demand))?;
//!             Some(ledger.place(t, n))
//!         }).collect()
//!     }
//! }
//!
//! infra_sdk::export_scheduler!(FirstNode);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the `cdylib` is already a
//! component. `plugins/builtin/*` holds one example per world.
//!
//! Layout:
//! - `bindings`: the wit-bindgen output for the three worlds of `wit/plugins.wit`;
//! - [`config`]: typed access to the key/value configuration;
//! - [`ledger`]: resource accounting shared by schedulers;
//! - [`log`]: the host's structured log;
//! - the traits and export macros below.

mod bindings;
pub mod config;
pub mod ledger;
pub mod log;
mod macros;

#[doc(hidden)]
pub use bindings::{aggregator, cleaner, scheduler};

pub use bindings::aggregator::exports::infra::plugins::aggregation::{RoundInfo, UpdateInfo};
pub use bindings::cleaner::exports::infra::plugins::cleaning::{Batch, DropCount, Report};
pub use bindings::scheduler::exports::infra::plugins::scheduling::{
    Assignment, Node, Resources, Task, Tier,
};
pub use bindings::scheduler::infra::plugins::types::{Config, PluginInfo};
pub use config::ConfigReader;
pub use ledger::Ledger;

/// Builds a [`PluginInfo`].
pub fn info(name: &str, version: &str, description: &str) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        version: version.to_string(),
        description: description.to_string(),
    }
}

/// What every plugin provides. One value of the implementing type lives in the instance
/// for its whole life, so fields keep state between calls (and, for aggregators, rounds).
pub trait Plugin: Default + 'static {
    /// Name, version, description.
    fn info() -> PluginInfo;

    /// Applies the configuration. The default accepts only an empty one.
    fn configure(&mut self, config: &Config) -> Result<(), String> {
        ConfigReader::new(config).finish()
    }
}

/// A scheduler policy: places pending tasks on nodes.
pub trait Scheduler: Plugin {
    /// Returns task -> node assignments; tasks left out stay pending.
    fn schedule(&mut self, tasks: Vec<Task>, nodes: Vec<Node>) -> Vec<Assignment>;
}

/// One data-cleaning step (see the `cleaning` interface for the fit/apply design).
pub trait Cleaner: Plugin {
    /// Whether `fit` must see every batch before the first `apply`.
    fn wants_fit(&self) -> bool {
        false
    }

    /// First pass over one batch.
    fn fit(&mut self, _batch: &Batch) -> Result<(), String> {
        Ok(())
    }

    /// Cleans one batch.
    fn apply(&mut self, batch: Batch) -> Result<(Batch, Report), String>;
}

/// An aggregation strategy (see the `aggregation` interface for the chunked, two-phase design).
pub trait Aggregator: Plugin {
    /// Starts a round; return true to get the `scan_chunk` pass first.
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String>;

    /// Phase one over one chunk of every update.
    fn scan_chunk(&mut self, _offset: u64, _updates: Vec<Vec<f32>>) -> Result<(), String> {
        Ok(())
    }

    /// Phase two: the new global values for one chunk.
    fn combine_chunk(
        &mut self,
        offset: u64,
        global: Vec<f32>,
        updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String>;

    /// Ends the round with a one-line summary.
    fn end_round(&mut self) -> Result<String, String> {
        Ok(String::new())
    }
}

/// Number of rows of a batch, checking that its features are `rows * columns` values.
pub fn batch_rows(batch: &Batch) -> Result<usize, String> {
    let rows = batch.labels.len();
    let width = batch.columns.len();
    if batch.features.len() != rows * width {
        return Err(format!(
            "malformed batch: {} feature values for {} rows of {} columns",
            batch.features.len(),
            rows,
            width
        ));
    }
    Ok(rows)
}
