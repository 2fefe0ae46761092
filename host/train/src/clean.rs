//! The cleaning chain over a data set: rows in batches through the job's cleaner plugins, the
//! cleaned rows joined back, labels checked, and each step's counts summed for the report.
//! Local and cluster jobs use it alike: on a shard where it is trained (federated cleaning,
//! the default), on the test split at the coordinator, or once over the whole data set
//! (`data.cleaning = "whole"`, local jobs only).

use crate::data::Dataset;
use crate::TrainError;
use infra_runtime::cleaner::{split_rows, Batch, CleaningChain, StepReport};
use serde::Serialize;
use std::collections::BTreeMap;

/// Rows per batch handed to the cleaning chain.
const CLEAN_BATCH_ROWS: usize = 512;

/// A cleaning step's totals.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepSummary {
    /// Step (plugin) name.
    pub step: String,
    /// Rows in.
    pub rows_in: u64,
    /// Rows out.
    pub rows_out: u64,
    /// Rows dropped per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Values changed in place.
    pub values_changed: u64,
}

/// Joins cleaned batches back into a data set; a step may not change the columns.
fn from_batches(template: &Dataset, batches: Vec<Batch>) -> Result<Dataset, TrainError> {
    let mut out = Dataset {
        columns: template.columns.clone(),
        features: Vec::new(),
        labels: Vec::new(),
        classes: template.classes,
    };
    for b in batches {
        if b.columns.len() != template.width() {
            return Err(TrainError::Data(format!(
                "the cleaning chain changed the width from {} to {}",
                template.width(),
                b.columns.len()
            )));
        }
        out.features.extend(b.features);
        out.labels.extend(b.labels);
    }
    Ok(out)
}

/// Adds a run's per-step counts to `total` (step by step, in chain order).
pub fn add_steps(total: &mut Vec<StepSummary>, steps: Vec<StepReport>) {
    let steps: Vec<StepSummary> = steps
        .into_iter()
        .map(|s| StepSummary {
            step: s.step,
            rows_in: s.rows_in,
            rows_out: s.rows_out,
            dropped: s.dropped.into_iter().collect(),
            values_changed: s.values_changed,
        })
        .collect();
    merge(total, &steps);
}

/// Runs `d` through the cleaning chain (adding each step's counts to `total`) and checks that
/// the labels are in range afterwards.
pub fn clean(
    chain: &CleaningChain,
    d: &Dataset,
    total: &mut Vec<StepSummary>,
) -> Result<Dataset, TrainError> {
    if d.rows() == 0 {
        return Ok(d.clone());
    }
    let (batches, steps) = chain.run(split_rows(
        &d.columns,
        &d.features,
        &d.labels,
        CLEAN_BATCH_ROWS,
    ))?;
    add_steps(total, steps);
    let cleaned = from_batches(d, batches)?;
    if let Some(bad) = cleaned
        .labels
        .iter()
        .find(|&&l| l < 0 || l as usize >= d.classes)
    {
        return Err(TrainError::Data(format!(
            "label {bad} is outside 0..{} after cleaning: add `drop-invalid` with `num-classes` to the cleaners",
            d.classes
        )));
    }
    Ok(cleaned)
}

/// Adds `more` (another part's totals) to `total`, step by step.
pub fn merge(total: &mut Vec<StepSummary>, more: &[StepSummary]) {
    for (i, s) in more.iter().enumerate() {
        if total.len() <= i {
            total.push(StepSummary {
                step: s.step.clone(),
                rows_in: 0,
                rows_out: 0,
                dropped: BTreeMap::new(),
                values_changed: 0,
            });
        }
        let t = &mut total[i];
        t.rows_in += s.rows_in;
        t.rows_out += s.rows_out;
        t.values_changed += s.values_changed;
        for (k, v) in &s.dropped {
            *t.dropped.entry(k.clone()).or_default() += v;
        }
    }
}
