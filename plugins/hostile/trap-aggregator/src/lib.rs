//! FedAvg that panics (a trap) in round `trap-round` (config, default 1; 0 never), to test
//! that a failing aggregator fails its round with a clear error and the job keeps its last
//! good checkpoint. With config `plan` it answers `plan-merge` with weights the host must
//! refuse: `short` (one weight too few) or `nan` (a NaN weight); by default it streams chunks.

use infra_policies::aggregator::FedAvg;
use infra_sdk::{
    Aggregator, Config, ConfigReader, MergePlan, Plugin, PluginInfo, RoundInfo, SumWeights,
};

#[derive(Default)]
struct TrapAggregator {
    inner: FedAvg,
    trap_round: u32,
    round: u32,
    plan: String,
    updates: usize,
}

impl Plugin for TrapAggregator {
    fn info() -> PluginInfo {
        infra_sdk::info(
            "trap-aggregator",
            "0.1.0",
            "fedavg that traps in round `trap-round`",
        )
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        self.trap_round = c.get_or("trap-round", 1)?;
        self.plan = c.get_or("plan", String::new())?;
        if !["", "short", "nan"].contains(&self.plan.as_str()) {
            return Err(format!(
                "config key `plan`: `{}` is not short or nan",
                self.plan
            ));
        }
        c.finish()
    }
}

impl Aggregator for TrapAggregator {
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
        self.round = info.round;
        self.updates = info.updates.len();
        self.inner.begin_round(info)
    }

    fn plan_merge(&mut self) -> Result<MergePlan, String> {
        let mut updates = vec![1.0 / self.updates as f32; self.updates];
        match self.plan.as_str() {
            "short" => {
                updates.pop();
            }
            "nan" => updates[0] = f32::NAN,
            _ => return Ok(MergePlan::Chunks),
        }
        Ok(MergePlan::WeightedSum(SumWeights {
            global: 0.0,
            updates,
        }))
    }

    fn combine_chunk(
        &mut self,
        offset: u64,
        global: Vec<f32>,
        updates: Vec<Vec<f32>>,
    ) -> Result<Vec<f32>, String> {
        if self.round == self.trap_round {
            panic!(
                "trap-aggregator: trapping in round {} as configured",
                self.round
            );
        }
        self.inner.combine_chunk(offset, global, updates)
    }

    fn end_round(&mut self) -> Result<String, String> {
        self.inner.end_round()
    }
}

infra_sdk::export_aggregator!(TrapAggregator);
