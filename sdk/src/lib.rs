//! Write infra plugins in Rust as plain trait impls.
//!
//! A plugin is a `Default` struct that implements [`Plugin`] plus one of [`Scheduler`],
//! [`Cleaner`] or [`Aggregator`], and one export macro line. One value of the struct lives in
//! the instance, so its fields keep state between calls. Build the crate as a `cdylib` with
//! `cargo build --release --target wasm32-wasip2`: the output is already a component. Check
//! it with `infra plugin check target/wasm32-wasip2/release/<name>.wasm`.
//!
//! ## A scheduler
//!
//! ```ignore
//! use infra_sdk::{Assignment, Ledger, Pending, Plugin, PluginInfo, Scheduler};
//!
//! #[derive(Default)]
//! struct FirstFit;
//!
//! impl Plugin for FirstFit {
//!     fn info() -> PluginInfo {
//!         infra_sdk::info("first-fit", "0.1.0", "every task on the first node that fits")
//!     }
//! }
//!
//! impl Scheduler for FirstFit {
//!     fn schedule(&mut self, pending: Pending) -> Vec<Assignment> {
//!         let Pending { tasks, nodes, .. } = pending;
//!         let mut ledger = Ledger::new(&nodes); // free resources, updated as tasks are placed
//!         // Tasks and nodes are named by their position in the two lists.
//!         (0..tasks.len())
//!             .filter_map(|t| {
//!                 let demand = &tasks[t].demand;
//!                 let n = (0..nodes.len()).find(|&n| ledger.fits(n, demand))?;
//!                 Some(ledger.place(t, demand, n))
//!             })
//!             .collect() // tasks left out stay pending
//!     }
//! }
//!
//! infra_sdk::export_scheduler!(FirstFit);
//! ```
//!
//! ## A cleaner with configuration
//!
//! ```ignore
//! use infra_sdk::{Batch, Cleaner, Config, ConfigReader, DropCount, Plugin, PluginInfo, Report};
//!
//! #[derive(Default)]
//! struct MaxLabel {
//!     max: i32,
//! }
//!
//! impl Plugin for MaxLabel {
//!     fn info() -> PluginInfo {
//!         infra_sdk::info("max-label", "0.1.0", "drops rows whose label is above `max`")
//!     }
//!     fn configure(&mut self, config: &Config) -> Result<(), String> {
//!         let mut c = ConfigReader::new(config);
//!         self.max = c.get_or("max", 9)?;
//!         c.finish() // refuses unknown keys, naming them
//!     }
//! }
//!
//! impl Cleaner for MaxLabel {
//!     fn apply(&mut self, batch: Batch) -> Result<(Batch, Report), String> {
//!         let rows = infra_sdk::batch_rows(&batch)?;
//!         let width = batch.columns.len();
//!         let (mut features, mut labels) = (Vec::new(), Vec::new());
//!         for r in 0..rows {
//!             if batch.labels[r] <= self.max {
//!                 features.extend_from_slice(&batch.features[r * width..(r + 1) * width]);
//!                 labels.push(batch.labels[r]);
//!             }
//!         }
//!         let dropped = (rows - labels.len()) as u64;
//!         let report = Report {
//!             rows_in: rows as u64,
//!             rows_out: labels.len() as u64,
//!             dropped: vec![DropCount { reason: "label-too-large".into(), rows: dropped }],
//!             values_changed: 0,
//!         };
//!         Ok((Batch { columns: batch.columns, features, labels }, report))
//!     }
//! }
//!
//! infra_sdk::export_cleaner!(MaxLabel);
//! ```
//!
//! A cleaner that needs statistics of the whole data set returns `true` from `wants_fit` and
//! accumulates them in `fit` (see `standardize` in `plugins/policies`).
//!
//! ## An aggregator with state across rounds (server momentum)
//!
//! ```ignore
//! use infra_sdk::{Aggregator, Plugin, PluginInfo, RoundInfo};
//!
//! #[derive(Default)]
//! struct MeanWithMomentum {
//!     velocity: Vec<f32>, // lives in the instance from round to round
//!     n: usize,
//! }
//!
//! impl Plugin for MeanWithMomentum {
//!     fn info() -> PluginInfo {
//!         infra_sdk::info("mean-momentum", "0.1.0", "plain mean with server momentum 0.9")
//!     }
//! }
//!
//! impl Aggregator for MeanWithMomentum {
//!     fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
//!         self.velocity.resize(info.num_params as usize, 0.0);
//!         self.n = info.updates.len();
//!         Ok(false) // coordinate-wise: no scan pass needed
//!     }
//!     fn combine_chunk(&mut self, offset: u64, mut global: Vec<f32>, updates: Vec<Vec<f32>>)
//!         -> Result<Vec<f32>, String> {
//!         for (i, g) in global.iter_mut().enumerate() {
//!             let mean = updates.iter().map(|u| u[i]).sum::<f32>() / self.n as f32;
//!             let v = &mut self.velocity[offset as usize + i];
//!             *v = 0.9 * *v + (mean - *g);
//!             *g += *v;
//!         }
//!         Ok(global)
//!     }
//! }
//!
//! infra_sdk::export_aggregator!(MeanWithMomentum);
//! ```
//!
//! ## An aggregator that only decides weights
//!
//! A rule whose result is a weighted sum of the updates (and the global parameters) answers
//! `plan_merge` with the weights; the host then forms the sum natively instead of copying
//! every chunk into the sandbox. Its `combine_chunk` must give the same values, since a host
//! may stream the chunks anyway.
//!
//! ```ignore
//! use infra_sdk::{Aggregator, MergePlan, Plugin, PluginInfo, RoundInfo, SumWeights};
//!
//! #[derive(Default)]
//! struct LossWeighted {
//!     weights: Vec<f32>, // samples / loss, normalised
//! }
//!
//! impl Plugin for LossWeighted {
//!     fn info() -> PluginInfo {
//!         infra_sdk::info("loss-weighted", "0.1.0", "favours updates with a low loss")
//!     }
//! }
//!
//! impl Aggregator for LossWeighted {
//!     fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
//!         let raw: Vec<f32> = info.updates.iter()
//!             .map(|u| u.samples as f32 / u.loss.max(1e-3)).collect();
//!         let total: f32 = raw.iter().sum();
//!         self.weights = raw.iter().map(|w| w / total).collect();
//!         Ok(false)
//!     }
//!     fn plan_merge(&mut self) -> Result<MergePlan, String> {
//!         Ok(MergePlan::WeightedSum(SumWeights { global: 0.0, updates: self.weights.clone() }))
//!     }
//!     fn combine_chunk(&mut self, _offset: u64, mut global: Vec<f32>, updates: Vec<Vec<f32>>)
//!         -> Result<Vec<f32>, String> {
//!         global.fill(0.0);
//!         for (w, u) in self.weights.iter().zip(&updates) {
//!             for (g, x) in global.iter_mut().zip(u) {
//!                 *g += w * x;
//!             }
//!         }
//!         Ok(global)
//!     }
//! }
//!
//! infra_sdk::export_aggregator!(LossWeighted);
//! ```
//!
//! The built-ins in `plugins/builtin/*` (algorithms in `plugins/policies`) are complete
//! examples of every world.
//!
//! Layout:
//! - `bindings`: the wit-bindgen output for the three worlds of `wit/plugins.wit`;
//! - [`config`]: typed access to the key/value configuration;
//! - [`ledger`]: resource accounting shared by schedulers;
//! - [`holders`]: which nodes hold each task's input, looked up by task;
//! - [`log`]: the host's structured log;
//! - the traits and export macros below.

mod bindings;
pub mod config;
pub mod holders;
pub mod ledger;
pub mod log;
mod macros;

#[doc(hidden)]
pub use bindings::{aggregator, cleaner, scheduler};

pub use bindings::aggregator::exports::infra::plugins::aggregation::{
    MergePlan, RoundInfo, SumWeights, UpdateInfo,
};
pub use bindings::cleaner::exports::infra::plugins::cleaning::{Batch, DropCount, Report};
pub use bindings::scheduler::exports::infra::plugins::scheduling::{
    Assignment, Holding, Node, Pending, Resources, Task, Tier,
};
pub use bindings::scheduler::infra::plugins::types::{Config, PluginInfo};
pub use config::ConfigReader;
pub use holders::Holders;
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
    /// Returns task -> node assignments (positions in `pending.tasks` and `pending.nodes`);
    /// tasks left out stay pending.
    fn schedule(&mut self, pending: Pending) -> Vec<Assignment>;
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

    /// After `begin_round` and the scan pass: how the new parameters are formed. The default,
    /// [`MergePlan::Chunks`], streams `combine_chunk` calls. A rule that is a weighted sum of
    /// the global parameters and the updates answers [`MergePlan::WeightedSum`] and the host
    /// computes it natively; `combine_chunk` must still give the same values (see the WIT).
    fn plan_merge(&mut self) -> Result<MergePlan, String> {
        Ok(MergePlan::Chunks)
    }

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
