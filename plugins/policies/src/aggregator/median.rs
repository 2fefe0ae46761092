use super::{check_chunk, coordinate_wise};
use infra_sdk::{Aggregator, Plugin, PluginInfo, RoundInfo};

/// Coordinate-wise median of the finite values (mean of the two middle ones for an even
/// count). Robust to up to half of the updates being arbitrary.
#[derive(Default)]
pub struct Median {
    round: Option<RoundInfo>,
}

impl Plugin for Median {
    fn info() -> PluginInfo {
        infra_sdk::info("median", "1.0.0", "coordinate-wise median of the updates")
    }
}

impl Aggregator for Median {
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
        if info.updates.is_empty() {
            return Err("median: a round needs at least one update".into());
        }
        self.round = Some(info);
        Ok(false)
    }

    fn combine_chunk(
        &mut self,
        _offset: u64,
        global: Vec<f32>,
        updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String> {
        check_chunk(self.round.as_ref(), global.len(), &updates)?;
        Ok(coordinate_wise(global, &updates, |sorted| {
            let n = sorted.len();
            if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            }
        }))
    }

    fn end_round(&mut self) -> Result<String, String> {
        let info = self.round.take().ok_or("end-round before begin-round")?;
        Ok(format!("median of {} updates", info.updates.len()))
    }
}
