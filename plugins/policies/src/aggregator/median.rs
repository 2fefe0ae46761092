use super::{check_chunk, coordinate_wise, sort_columns_if_finite};
use infra_sdk::{Aggregator, Plugin, PluginInfo, RoundInfo};

/// Coordinate-wise median of the finite values (mean of the two middle ones for an even
/// count). Robust to up to half of the updates being arbitrary. A chunk of finite values is
/// sorted column-wise by a network, vectorised across coordinates; one with NaN or inf
/// values is sorted coordinate by coordinate, without them. Both give the same values.
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
        mut global: Vec<f32>,
        mut updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String> {
        check_chunk(self.round.as_ref(), global.len(), &updates)?;
        if sort_columns_if_finite(&mut updates) {
            let n = updates.len();
            if n % 2 == 1 {
                // The middle row is the answer: hand it back instead of copying it.
                return Ok(updates.swap_remove(n / 2));
            }
            let (a, b) = (&updates[n / 2 - 1], &updates[n / 2]);
            for ((g, x), y) in global.iter_mut().zip(a).zip(b) {
                *g = (x + y) / 2.0;
            }
            return Ok(global);
        }
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
