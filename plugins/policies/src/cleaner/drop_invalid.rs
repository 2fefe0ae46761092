use super::filter_rows;
use infra_sdk::{Batch, Cleaner, Config, ConfigReader, DropCount, Plugin, PluginInfo, Report};

/// Drops rows that cannot be trained on:
/// - `non-finite`: a NaN or infinite feature;
/// - `label-out-of-range`: a label below 0 or at/above `num-classes`;
/// - `wrong-width`: every row of a batch whose column count is not `width`.
///
/// Config: `num-classes` (labels must be in `0..num-classes`; without it only negative
/// labels are invalid), `width` (expected column count; without it any width is accepted).
#[derive(Default)]
pub struct DropInvalid {
    num_classes: Option<i32>,
    width: Option<usize>,
}

impl Plugin for DropInvalid {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "drop-invalid",
            "1.0.0",
            "drops rows with NaN/inf values, the wrong width or labels out of range",
        )
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        self.num_classes = c.get("num-classes")?;
        self.width = c.get("width")?;
        if self.num_classes.is_some_and(|n| n < 1) {
            return Err("config key `num-classes`: must be >= 1".into());
        }
        c.finish()
    }
}

impl Cleaner for DropInvalid {
    fn apply(&mut self, batch: Batch) -> Result<(Batch, Report), String> {
        if let Some(width) = self.width {
            if batch.columns.len() != width {
                let rows = batch.labels.len() as u64;
                let report = Report {
                    rows_in: rows,
                    rows_out: 0,
                    dropped: vec![DropCount {
                        reason: "wrong-width".into(),
                        rows,
                    }],
                    values_changed: 0,
                };
                let empty = Batch {
                    columns: batch.columns,
                    features: Vec::new(),
                    labels: Vec::new(),
                };
                return Ok((empty, report));
            }
        }
        let classes = self.num_classes;
        filter_rows(batch, |row, label| {
            if row.iter().any(|v| !v.is_finite()) {
                Some("non-finite")
            } else if label < 0 || classes.is_some_and(|n| label >= n) {
                Some("label-out-of-range")
            } else {
                None
            }
        })
    }
}
