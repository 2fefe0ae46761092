//! Typed calls into `world cleaner`, and the chain that runs several steps over a data set.

use crate::plugin::{Bindings, Instance, Plugin, PluginKind};
use crate::{PluginError, Result};
use std::collections::BTreeMap;

pub use crate::bindings::cleaner::exports::infra::plugins::cleaning::{Batch, DropCount, Report};

impl Instance {
    /// Whether the step needs a fit pass.
    pub fn wants_fit(&mut self) -> Result<bool> {
        self.expect_world(PluginKind::Cleaner)?;
        self.call(|b, s| match b {
            Bindings::Cleaner(x) => x.infra_plugins_cleaning().call_wants_fit(s),
            _ => unreachable!("kind checked above"),
        })
    }

    /// Fit pass over one batch.
    pub fn fit(&mut self, batch: &Batch) -> Result<()> {
        self.expect_world(PluginKind::Cleaner)?;
        self.call_fallible("fit", |b, s| match b {
            Bindings::Cleaner(x) => x.infra_plugins_cleaning().call_fit(s, batch),
            _ => unreachable!("kind checked above"),
        })
    }

    /// Cleans one batch; the result and report are checked for consistency.
    pub fn apply(&mut self, batch: &Batch) -> Result<(Batch, Report)> {
        self.expect_world(PluginKind::Cleaner)?;
        let (out, report) = self.call_fallible("apply", |b, s| match b {
            Bindings::Cleaner(x) => x.infra_plugins_cleaning().call_apply(s, batch),
            _ => unreachable!("kind checked above"),
        })?;
        let contract = |message: String| PluginError::Contract {
            plugin: self.label(),
            message,
        };
        let rows_out = out.labels.len() as u64;
        if out.features.len() != out.labels.len() * out.columns.len() {
            return Err(contract(format!(
                "returned {} values for {} rows of {} columns",
                out.features.len(),
                out.labels.len(),
                out.columns.len()
            )));
        }
        let dropped: u64 = report.dropped.iter().map(|d| d.rows).sum();
        if report.rows_in != batch.labels.len() as u64
            || report.rows_out != rows_out
            || report.rows_in != rows_out + dropped
        {
            return Err(contract(format!(
                "report says {} in, {} out, {} dropped; the batches had {} in and {} out",
                report.rows_in,
                report.rows_out,
                dropped,
                batch.labels.len(),
                rows_out
            )));
        }
        Ok((out, report))
    }
}

/// Cuts a table (row-major `features`, one label per row) into batches of at most `rows`
/// rows each, as the cleaning chain takes them.
pub fn split_rows(columns: &[String], features: &[f32], labels: &[i32], rows: usize) -> Vec<Batch> {
    let rows = rows.max(1);
    labels
        .chunks(rows)
        .zip(features.chunks(rows * columns.len().max(1)))
        .map(|(l, f)| Batch {
            columns: columns.to_vec(),
            features: f.to_vec(),
            labels: l.to_vec(),
        })
        .collect()
}

/// What one step of a chain did to the whole data set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Plugin name.
    pub step: String,
    /// Rows received.
    pub rows_in: u64,
    /// Rows kept.
    pub rows_out: u64,
    /// Rows dropped per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Values changed in place.
    pub values_changed: u64,
}

/// Runs cleaning steps in order over a data set given as batches: for each step, the fit
/// pass (if the step wants one) over all batches, then the apply pass.
pub struct CleaningChain {
    steps: Vec<Plugin>,
}

impl CleaningChain {
    /// A chain of cleaner plugins (checked to be cleaners).
    pub fn new(steps: Vec<Plugin>) -> Result<Self> {
        for s in &steps {
            s.expect_kind(PluginKind::Cleaner)?;
        }
        Ok(Self { steps })
    }

    /// Cleans `batches`; returns the cleaned batches and one report per step.
    pub fn run(&self, mut batches: Vec<Batch>) -> Result<(Vec<Batch>, Vec<StepReport>)> {
        let mut reports = Vec::with_capacity(self.steps.len());
        for plugin in &self.steps {
            let mut inst = plugin.instance();
            if inst.wants_fit()? {
                for b in &batches {
                    inst.fit(b)?;
                }
            }
            let mut step = StepReport {
                step: plugin.meta().name.clone(),
                ..StepReport::default()
            };
            let mut next = Vec::with_capacity(batches.len());
            for b in &batches {
                let (out, r) = inst.apply(b)?;
                step.rows_in += r.rows_in;
                step.rows_out += r.rows_out;
                step.values_changed += r.values_changed;
                for d in r.dropped {
                    *step.dropped.entry(d.reason).or_default() += d.rows;
                }
                next.push(out);
            }
            batches = next;
            reports.push(step);
        }
        Ok((batches, reports))
    }
}
