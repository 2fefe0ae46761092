//! Cleaning steps. Each returns a report with rows in/out and drops per reason.

mod clip_outliers;
mod dedup;
mod drop_invalid;
mod standardize;

pub use clip_outliers::ClipOutliers;
pub use dedup::Dedup;
pub use drop_invalid::DropInvalid;
pub use standardize::Standardize;

use infra_sdk::{Batch, DropCount, Report};

/// Per-column running statistics (f64 sums), the `fit` state of z-score based steps.
#[derive(Default, Clone)]
pub(crate) struct ColumnStats {
    count: Vec<u64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl ColumnStats {
    /// Adds the finite values of `batch`.
    pub(crate) fn add(&mut self, batch: &Batch) -> Result<(), String> {
        let rows = infra_sdk::batch_rows(batch)?;
        let width = batch.columns.len();
        if self.count.is_empty() {
            self.count = vec![0; width];
            self.sum = vec![0.0; width];
            self.sum_sq = vec![0.0; width];
        } else if self.count.len() != width {
            return Err(format!(
                "batch has {width} columns, earlier batches had {}",
                self.count.len()
            ));
        }
        for r in 0..rows {
            for (c, &v) in batch.features[r * width..(r + 1) * width]
                .iter()
                .enumerate()
            {
                if v.is_finite() {
                    self.count[c] += 1;
                    self.sum[c] += v as f64;
                    self.sum_sq[c] += v as f64 * v as f64;
                }
            }
        }
        Ok(())
    }

    /// Mean and standard deviation (population) per column; `None` before any `add`.
    pub(crate) fn mean_std(&self) -> Option<Vec<(f32, f32)>> {
        if self.count.is_empty() {
            return None;
        }
        Some(
            (0..self.count.len())
                .map(|c| {
                    let n = self.count[c].max(1) as f64;
                    let mean = self.sum[c] / n;
                    let var = (self.sum_sq[c] / n - mean * mean).max(0.0);
                    (mean as f32, var.sqrt() as f32)
                })
                .collect(),
        )
    }
}

/// Keeps the rows whose index passes `keep`, counting the others under their reason.
pub(crate) fn filter_rows(
    batch: Batch,
    mut verdict: impl FnMut(&[f32], i32) -> Option<&'static str>,
) -> Result<(Batch, Report), String> {
    let rows = infra_sdk::batch_rows(&batch)?;
    let width = batch.columns.len();
    let mut features = Vec::with_capacity(batch.features.len());
    let mut labels = Vec::with_capacity(rows);
    let mut dropped: Vec<DropCount> = Vec::new();
    for r in 0..rows {
        let row = &batch.features[r * width..(r + 1) * width];
        match verdict(row, batch.labels[r]) {
            None => {
                features.extend_from_slice(row);
                labels.push(batch.labels[r]);
            }
            Some(reason) => match dropped.iter_mut().find(|d| d.reason == reason) {
                Some(d) => d.rows += 1,
                None => dropped.push(DropCount {
                    reason: reason.to_string(),
                    rows: 1,
                }),
            },
        }
    }
    let report = Report {
        rows_in: rows as u64,
        rows_out: labels.len() as u64,
        dropped,
        values_changed: 0,
    };
    let out = Batch {
        columns: batch.columns,
        features,
        labels,
    };
    Ok((out, report))
}
