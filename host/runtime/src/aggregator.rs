//! Typed calls into `world aggregator`: the host streams coordinate chunks so models larger
//! than one Wasm memory can be merged, runs the scan pass when the plugin asks for it, and
//! forms the weighted sum itself when the plugin's `plan-merge` names one
//! (`aggregator/weighted_sum.rs`).

use crate::plugin::{Bindings, Instance, PluginKind};
use crate::{PluginError, Result};
use wasmtime::component::Func;

mod weighted_sum;

pub use crate::bindings::aggregator::exports::infra::plugins::aggregation::{
    MergePlan, RoundInfo, SumWeights, UpdateInfo,
};

/// Coordinates per chunk call: 16 Ki f32 = 64 KiB per update, so one call's updates (8 of
/// them: 512 KiB) stay in the CPU's L2 cache while the guest reads them, and a round of
/// hundreds of updates stays far within the default 256 MiB memory cap. Measured against 4K,
/// 64K and 256K in `BENCHMARKS.md` (16K was fastest; 64K, the earlier default, ~25 % slower).
pub const DEFAULT_CHUNK: usize = 1 << 14;

/// One peer's update, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct UpdateRef<'a> {
    /// Peer id.
    pub peer: &'a str,
    /// Training samples behind it.
    pub samples: u64,
    /// Reported training loss.
    pub loss: f32,
    /// The full parameter vector after local training.
    pub params: &'a [f32],
}

/// The outcome of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// New global parameters.
    pub params: Vec<f32>,
    /// The plugin's one-line summary.
    pub summary: String,
}

type ScanParams<'a> = (u64, &'a [&'a [f32]]);
type CombineParams<'a> = (u64, &'a [f32], &'a [&'a [f32]]);

impl Instance {
    /// Merges one round: `begin-round`, the scan pass if asked for, `plan-merge`, then either
    /// the weighted sum the plugin asked for (computed here, natively) or the combine pass,
    /// and `end-round`. Chunks hold `chunk` coordinates; update slices are lowered straight
    /// into the guest, without host-side copies.
    pub fn aggregate(
        &mut self,
        round: u32,
        global: &[f32],
        updates: &[UpdateRef<'_>],
        chunk: usize,
    ) -> Result<Aggregate> {
        let mut params = Vec::new();
        let summary = self.aggregate_into(round, global, updates, chunk, &mut params)?;
        Ok(Aggregate { params, summary })
    }

    /// Like [`Instance::aggregate`], writing the new parameters into `params` (resized to the
    /// model's length), so a long-running coordinator reuses one buffer across rounds.
    /// Returns the plugin's summary.
    pub fn aggregate_into(
        &mut self,
        round: u32,
        global: &[f32],
        updates: &[UpdateRef<'_>],
        chunk: usize,
        params: &mut Vec<f32>,
    ) -> Result<String> {
        self.merge_round(round, global, updates, chunk, params, Follow::Plan)
    }

    /// Like [`Instance::aggregate_into`], but streams `combine-chunk` calls even when the
    /// plugin asks for a weighted sum (the contract says its chunks give the same values):
    /// the sandboxed path, for benchmarks and cross-checks.
    pub fn aggregate_streamed_into(
        &mut self,
        round: u32,
        global: &[f32],
        updates: &[UpdateRef<'_>],
        chunk: usize,
        params: &mut Vec<f32>,
    ) -> Result<String> {
        self.merge_round(round, global, updates, chunk, params, Follow::Chunks)
    }

    fn merge_round(
        &mut self,
        round: u32,
        global: &[f32],
        updates: &[UpdateRef<'_>],
        chunk: usize,
        params: &mut Vec<f32>,
        follow: Follow,
    ) -> Result<String> {
        self.expect_world(PluginKind::Aggregator)?;
        let chunk = chunk.max(1);
        let bad_input = |message: String| PluginError::Contract {
            plugin: "host".into(),
            message,
        };
        if let Some(u) = updates.iter().find(|u| u.params.len() != global.len()) {
            return Err(bad_input(format!(
                "update from peer {} has {} parameters, the model has {}",
                u.peer,
                u.params.len(),
                global.len()
            )));
        }
        let info = RoundInfo {
            round,
            num_params: global.len() as u64,
            updates: updates
                .iter()
                .map(|u| UpdateInfo {
                    peer: u.peer.to_string(),
                    samples: u.samples,
                    loss: u.loss,
                })
                .collect(),
        };
        let scan = self.call_fallible("begin-round", |b, s| match b {
            Bindings::Aggregator(x) => x.infra_plugins_aggregation().call_begin_round(s, &info),
            _ => unreachable!("kind checked above"),
        })?;
        if scan {
            let scan_fn: Func =
                self.export_func(PluginKind::Aggregator.interface(), "scan-chunk")?;
            let mut slices: Vec<&[f32]> = Vec::with_capacity(updates.len());
            for offset in (0..global.len()).step_by(chunk) {
                let end = (offset + chunk).min(global.len());
                slices.clear();
                slices.extend(updates.iter().map(|u| &u.params[offset..end]));
                self.call_fallible("scan-chunk", |_, s| {
                    let f = scan_fn.typed::<ScanParams<'_>, (Result<(), String>,)>(&*s)?;
                    Ok(f.call(&mut *s, (offset as u64, slices.as_slice()))?.0)
                })?;
            }
        }
        let plan = self.call_fallible("plan-merge", |b, s| match b {
            Bindings::Aggregator(x) => x.infra_plugins_aggregation().call_plan_merge(s),
            _ => unreachable!("kind checked above"),
        })?;
        params.resize(global.len(), 0.0);
        match (plan, follow) {
            (MergePlan::WeightedSum(w), Follow::Plan) => {
                weighted_sum::check(&w, updates.len()).map_err(|message| {
                    PluginError::Contract {
                        plugin: self.label(),
                        message,
                    }
                })?;
                weighted_sum::compute(params, global, &w, updates);
                if let Some(i) = first_non_finite(params) {
                    return Err(PluginError::Failed {
                        plugin: self.label(),
                        message: weighted_sum::explain_non_finite(i, global, &w, updates),
                    });
                }
            }
            _ => self.combine_pass(global, updates, chunk, params)?,
        }
        self.call_fallible("end-round", |b, s| match b {
            Bindings::Aggregator(x) => x.infra_plugins_aggregation().call_end_round(s),
            _ => unreachable!("kind checked above"),
        })
    }

    /// Phase two in the sandbox: `combine-chunk` over every chunk into `params`.
    fn combine_pass(
        &mut self,
        global: &[f32],
        updates: &[UpdateRef<'_>],
        chunk: usize,
        params: &mut [f32],
    ) -> Result<()> {
        let iface = PluginKind::Aggregator.interface();
        let combine_fn: Func = self.export_func(iface, "combine-chunk")?;
        let mut slices: Vec<&[f32]> = Vec::with_capacity(updates.len());
        for offset in (0..global.len()).step_by(chunk) {
            let end = (offset + chunk).min(global.len());
            slices.clear();
            slices.extend(updates.iter().map(|u| &u.params[offset..end]));
            let out = &mut params[offset..end];
            let got = self.call_fallible("combine-chunk", |_, s| {
                let f = combine_fn.typed::<CombineParams<'_>, (Result<Vec<f32>, String>,)>(&*s)?;
                Ok(
                    match f
                        .call(
                            &mut *s,
                            (offset as u64, &global[offset..end], slices.as_slice()),
                        )?
                        .0
                    {
                        Ok(values) => {
                            if values.len() == out.len() {
                                out.copy_from_slice(&values);
                            }
                            Ok(values.len())
                        }
                        Err(e) => Err(e),
                    },
                )
            })?;
            if got != end - offset {
                return Err(PluginError::Contract {
                    plugin: self.label(),
                    message: format!(
                        "combine-chunk at {offset} returned {got} values for {}",
                        end - offset
                    ),
                });
            }
        }
        if let Some(i) = first_non_finite(params) {
            return Err(PluginError::Contract {
                plugin: self.label(),
                message: format!("new parameters have a non-finite value at coordinate {i}"),
            });
        }
        Ok(())
    }
}

/// Whether `aggregate` follows the plugin's merge plan or streams chunks regardless.
#[derive(Clone, Copy)]
enum Follow {
    Plan,
    Chunks,
}

/// The first non-finite value's index: a branch-free scan first (it vectorises); only on a
/// hit, the search for where.
fn first_non_finite(v: &[f32]) -> Option<usize> {
    if v.iter().fold(false, |bad, x| bad | !x.is_finite()) {
        v.iter().position(|x| !x.is_finite())
    } else {
        None
    }
}
