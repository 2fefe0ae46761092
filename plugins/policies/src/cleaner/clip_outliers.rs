use super::ColumnStats;
use infra_sdk::{Batch, Cleaner, Config, ConfigReader, Plugin, PluginInfo, Report};

/// Clips each value to `mean ± z * std` of its column (fitted over the whole data set).
/// Rows are kept; the report counts the values changed.
///
/// Config: `z` (default 3.0).
pub struct ClipOutliers {
    z: f32,
    stats: ColumnStats,
}

impl Default for ClipOutliers {
    fn default() -> Self {
        Self {
            z: 3.0,
            stats: ColumnStats::default(),
        }
    }
}

impl Plugin for ClipOutliers {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "clip-outliers",
            "1.0.0",
            "clips values to mean ± z·std of their column",
        )
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        self.z = c.get_or("z", 3.0)?;
        if !(self.z > 0.0 && self.z.is_finite()) {
            return Err("config key `z`: must be a positive number".into());
        }
        c.finish()
    }
}

impl Cleaner for ClipOutliers {
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
            .ok_or("clip-outliers: apply before any fit")?;
        let width = batch.columns.len();
        if stats.len() != width {
            return Err(format!(
                "clip-outliers: batch has {width} columns, fitted on {}",
                stats.len()
            ));
        }
        let mut changed = 0u64;
        for row in batch.features.chunks_exact_mut(width.max(1)) {
            for (v, &(mean, std)) in row.iter_mut().zip(&stats) {
                let (lo, hi) = (mean - self.z * std, mean + self.z * std);
                if *v < lo {
                    *v = lo;
                    changed += 1;
                } else if *v > hi {
                    *v = hi;
                    changed += 1;
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
