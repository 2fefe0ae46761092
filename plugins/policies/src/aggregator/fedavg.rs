use super::{check_chunk, simd};
use infra_sdk::{Aggregator, MergePlan, Plugin, PluginInfo, RoundInfo, SumWeights};

/// Federated averaging: the new global parameters are the mean of the updates weighted by
/// their sample counts (equal weights when every count is zero).
///
/// It answers `plan-merge` with those weights, so the host forms the sum natively;
/// `combine_chunk` computes the same values in the sandbox for a host that streams anyway.
#[derive(Default)]
pub struct FedAvg {
    round: Option<RoundInfo>,
    weights: Vec<f32>,
}

impl Plugin for FedAvg {
    fn info() -> PluginInfo {
        infra_sdk::info("fedavg", "1.0.0", "sample-weighted mean of the updates")
    }
}

impl Aggregator for FedAvg {
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
        if info.updates.is_empty() {
            return Err("fedavg: a round needs at least one update".into());
        }
        let total: f64 = info.updates.iter().map(|u| u.samples as f64).sum();
        let n = info.updates.len() as f64;
        self.weights = info
            .updates
            .iter()
            .map(|u| match total {
                0.0 => (1.0 / n) as f32,
                _ => (u.samples as f64 / total) as f32,
            })
            .collect();
        self.round = Some(info);
        Ok(false)
    }

    fn plan_merge(&mut self) -> Result<MergePlan, String> {
        self.round.as_ref().ok_or("plan-merge before begin-round")?;
        Ok(MergePlan::WeightedSum(SumWeights {
            global: 0.0,
            updates: self.weights.clone(),
        }))
    }

    fn combine_chunk(
        &mut self,
        offset: u64,
        mut global: Vec<f32>,
        updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String> {
        check_chunk(self.round.as_ref(), global.len(), &updates)?;
        simd::weighted_sum(&mut global, &self.weights, &updates);
        // Fast path: one check of the result; only on a hit, find the culprit.
        if !simd::all_finite(&global) {
            let info = self.round.as_ref().expect("checked above");
            for (k, u) in updates.iter().enumerate() {
                if let Some(i) = u.iter().position(|v| !v.is_finite()) {
                    return Err(format!(
                        "fedavg: update from peer {} has a non-finite value ({}) at coordinate {}",
                        info.updates[k].peer,
                        u[i],
                        offset + i as u64
                    ));
                }
            }
            return Err(format!(
                "fedavg: the weighted mean overflows near coordinate {offset}"
            ));
        }
        Ok(global)
    }

    fn end_round(&mut self) -> Result<String, String> {
        let info = self.round.take().ok_or("end-round before begin-round")?;
        let samples: u64 = info.updates.iter().map(|u| u.samples).sum();
        Ok(format!(
            "fedavg: {} updates, {} samples",
            info.updates.len(),
            samples
        ))
    }
}
