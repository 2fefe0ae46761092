use super::{check_chunk, simd};
use infra_sdk::{
    Aggregator, Config, ConfigReader, MergePlan, Plugin, PluginInfo, RoundInfo, SumWeights,
};

/// Krum and multi-Krum (Blanchard et al., 2017). Phase one (`scan-chunk`) accumulates the
/// pairwise squared distances between updates chunk by chunk; each update's score is the sum
/// of its distances to its `n - f - 2` nearest neighbours (at least 1). Phase two averages the
/// `m` updates with the lowest scores. An update with a non-finite value scores +inf.
/// That mean is answered to `plan-merge` as weights (1/m for a selected update, 0 for the
/// rest), so the host forms it natively.
///
/// Config: `f` (Byzantine updates tolerated, default `(n - 3) / 2`), `m` (updates averaged,
/// default 1 = Krum; more = multi-Krum).
#[derive(Default)]
pub struct Krum {
    f: Option<usize>,
    m: usize,
    round: Option<RoundInfo>,
    /// Row-major n x n squared distances.
    dist: Vec<f64>,
    selected: Vec<usize>,
}

impl Plugin for Krum {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "krum",
            "1.0.0",
            "Krum / multi-Krum: averages the updates closest to their neighbours",
        )
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        self.f = c.get("f")?;
        self.m = c.get_or("m", 1)?;
        if self.m == 0 {
            return Err("config key `m`: must be >= 1".into());
        }
        c.finish()
    }
}

impl Krum {
    /// Selects the round's updates on the first call after the scan pass.
    fn select_once(&mut self) -> Result<(), String> {
        if self.selected.is_empty() {
            self.select();
            if self.selected.is_empty() {
                return Err("krum: every update has non-finite values".into());
            }
        }
        Ok(())
    }

    fn select(&mut self) {
        let info = self.round.as_ref().expect("begin-round ran");
        let n = info.updates.len();
        let f = self.f.unwrap_or(n.saturating_sub(3) / 2);
        let neighbours = n.saturating_sub(f + 2).max(1).min(n.saturating_sub(1));
        let mut scores: Vec<(f64, usize)> = (0..n)
            .map(|i| {
                let mut d: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| self.dist[i * n + j])
                    .map(|d| if d.is_finite() { d } else { f64::INFINITY })
                    .collect();
                d.sort_by(f64::total_cmp);
                let own_bad = !self.dist[i * n + i].is_finite();
                let s = if own_bad {
                    f64::INFINITY
                } else {
                    d.iter().take(neighbours).sum()
                };
                (s, i)
            })
            .collect();
        scores.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.selected = scores
            .iter()
            .take(self.m.min(n))
            .filter(|(s, _)| s.is_finite() || n == 1)
            .map(|&(_, i)| i)
            .collect();
        self.selected.sort_unstable();
    }
}

impl Aggregator for Krum {
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
        let n = info.updates.len();
        if n == 0 {
            return Err("krum: a round needs at least one update".into());
        }
        self.dist = vec![0.0; n * n];
        self.selected.clear();
        self.round = Some(info);
        Ok(true)
    }

    fn scan_chunk(&mut self, _offset: u64, updates: Vec<Vec<f32>>) -> Result<(), String> {
        let len = updates.first().map_or(0, |u| u.len());
        check_chunk(self.round.as_ref(), len, &updates)?;
        let n = updates.len();
        for i in 0..n {
            // The diagonal records whether update i itself is finite (0 or +inf).
            if !simd::all_finite(&updates[i]) {
                self.dist[i * n + i] = f64::INFINITY;
            }
            for j in i + 1..n {
                let d = simd::squared_distance(&updates[i], &updates[j]);
                self.dist[i * n + j] += d;
                self.dist[j * n + i] += d;
            }
        }
        Ok(())
    }

    fn plan_merge(&mut self) -> Result<MergePlan, String> {
        let n = self
            .round
            .as_ref()
            .ok_or("plan-merge before begin-round")?
            .updates
            .len();
        self.select_once()?;
        let w = 1.0 / self.selected.len() as f32;
        let updates = (0..n)
            .map(|i| match self.selected.binary_search(&i) {
                Ok(_) => w,
                Err(_) => 0.0,
            })
            .collect();
        Ok(MergePlan::WeightedSum(SumWeights {
            global: 0.0,
            updates,
        }))
    }

    fn combine_chunk(
        &mut self,
        _offset: u64,
        mut global: Vec<f32>,
        updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String> {
        check_chunk(self.round.as_ref(), global.len(), &updates)?;
        self.select_once()?;
        let chosen: Vec<Vec<f32>> = updates
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.selected.binary_search(i).is_ok())
            .map(|(_, u)| u)
            .collect();
        let w = vec![1.0 / chosen.len() as f32; chosen.len()];
        simd::weighted_sum(&mut global, &w, &chosen);
        Ok(global)
    }

    fn end_round(&mut self) -> Result<String, String> {
        let info = self.round.take().ok_or("end-round before begin-round")?;
        let peers: Vec<&str> = self
            .selected
            .iter()
            .map(|&i| info.updates[i].peer.as_str())
            .collect();
        Ok(format!("krum selected {}", peers.join(", ")))
    }
}
