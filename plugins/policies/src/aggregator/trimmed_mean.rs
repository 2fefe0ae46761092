use super::{check_chunk, coordinate_wise, simd, sort_columns_if_finite};
use infra_sdk::{Aggregator, Config, ConfigReader, Plugin, PluginInfo, RoundInfo};

/// Coordinate-wise trimmed mean: drops `ceil(trim * n)` of the `n` finite values at each end
/// (at least one value is kept) and averages the rest (summed in f64, smallest first). A chunk
/// of finite values is sorted column-wise by a network, vectorised across coordinates; one
/// with NaN or inf values coordinate by coordinate, without them. Both give the same values.
///
/// Config: `trim` in `[0, 0.5)`, default 0.1.
pub struct TrimmedMean {
    trim: f64,
    round: Option<RoundInfo>,
}

impl Default for TrimmedMean {
    fn default() -> Self {
        Self {
            trim: 0.1,
            round: None,
        }
    }
}

impl Plugin for TrimmedMean {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "trimmed-mean",
            "1.0.0",
            "coordinate-wise mean without the largest and smallest values",
        )
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        self.trim = c.get_or("trim", 0.1)?;
        if !(0.0..0.5).contains(&self.trim) {
            return Err(format!(
                "config key `trim`: {} is outside [0, 0.5)",
                self.trim
            ));
        }
        c.finish()
    }
}

impl Aggregator for TrimmedMean {
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
        if info.updates.is_empty() {
            return Err("trimmed-mean: a round needs at least one update".into());
        }
        self.round = Some(info);
        Ok(false)
    }

    fn combine_chunk(
        &mut self,
        _offset: u64,
        mut global: Vec<f32>,
        mut updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String> {
        check_chunk(self.round.as_ref(), global.len(), &updates)?;
        let trim = self.trim;
        let trimmed = move |n: usize| ((n as f64 * trim).ceil() as usize).min((n - 1) / 2);
        if sort_columns_if_finite(&mut updates) {
            let n = updates.len();
            simd::mean_of_rows(&mut global, &updates[trimmed(n)..n - trimmed(n)]);
            return Ok(global);
        }
        Ok(coordinate_wise(global, &updates, |sorted| {
            let n = sorted.len();
            let kept = &sorted[trimmed(n)..n - trimmed(n)];
            kept.iter().map(|&v| v as f64).sum::<f64>() as f32 / kept.len() as f32
        }))
    }

    fn end_round(&mut self) -> Result<String, String> {
        let info = self.round.take().ok_or("end-round before begin-round")?;
        Ok(format!(
            "trimmed mean of {} updates (trim {})",
            info.updates.len(),
            self.trim
        ))
    }
}
