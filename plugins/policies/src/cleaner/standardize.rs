use super::ColumnStats;
use infra_sdk::{Batch, Cleaner, Plugin, PluginInfo, Report};

/// z-score per column, `(x - mean) / std`, with mean and std fitted over the whole data set
/// (fit pass). Columns with zero spread are only centred. Non-finite values pass unchanged
/// (put `drop-invalid` first to remove them).
#[derive(Default)]
pub struct Standardize {
    stats: ColumnStats,
}

impl Plugin for Standardize {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "standardize",
            "1.0.0",
            "z-score per column with statistics fitted over the whole data set",
        )
    }
}

impl Cleaner for Standardize {
    fn wants_fit(&self) -> bool {
        true
    }

    fn fit(&mut self, batch: &Batch) -> Result<(), String> {
        self.stats.add(batch)
    }

    fn apply(&mut self, mut batch: Batch) -> Result<(Batch, Report), String> {
        let rows = infra_sdk::batch_rows(&batch)?;
        let stats = self
            .stats
            .mean_std()
            .ok_or("standardize: apply before any fit")?;
        let width = batch.columns.len();
        if stats.len() != width {
            return Err(format!(
                "standardize: batch has {width} columns, fitted on {}",
                stats.len()
            ));
        }
        let mut changed = 0u64;
        for row in batch.features.chunks_exact_mut(width.max(1)) {
            for (v, &(mean, std)) in row.iter_mut().zip(&stats) {
                if v.is_finite() {
                    let z = if std > 0.0 {
                        (*v - mean) / std
                    } else {
                        *v - mean
                    };
                    changed += (z != *v) as u64;
                    *v = z;
                }
            }
        }
        let report = Report {
            rows_in: rows as u64,
            rows_out: rows as u64,
            dropped: Vec::new(),
            values_changed: changed,
        };
        Ok((batch, report))
    }
}
