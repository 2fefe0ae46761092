//! FedAvg that panics (a trap) in round `trap-round` (config), to test that a failing
//! aggregator fails its round with a clear error and the job keeps its last good checkpoint.

use infra_policies::aggregator::FedAvg;
use infra_sdk::{Aggregator, Config, ConfigReader, Plugin, PluginInfo, RoundInfo};

#[derive(Default)]
struct TrapAggregator {
    inner: FedAvg,
    trap_round: u32,
    round: u32,
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
        c.finish()
    }
}

impl Aggregator for TrapAggregator {
    fn begin_round(&mut self, info: RoundInfo) -> Result<bool, String> {
        self.round = info.round;
        self.inner.begin_round(info)
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
