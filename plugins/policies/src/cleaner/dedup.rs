use super::filter_rows;
use infra_sdk::{Batch, Cleaner, Plugin, PluginInfo, Report};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Drops rows identical (bit for bit, features and label) to a row seen before, across all
/// the batches of one pass. Rows are remembered by a 64-bit SipHash of their bits.
#[derive(Default)]
pub struct Dedup {
    seen: HashSet<u64>,
}

impl Plugin for Dedup {
    fn info() -> PluginInfo {
        infra_sdk::info("dedup", "1.0.0", "drops exact duplicate rows")
    }
}

impl Cleaner for Dedup {
    fn apply(&mut self, batch: Batch) -> Result<(Batch, Report), String> {
        let seen = &mut self.seen;
        filter_rows(batch, |row, label| {
            let mut h = DefaultHasher::new();
            for v in row {
                v.to_bits().hash(&mut h);
            }
            label.hash(&mut h);
            (!seen.insert(h.finish())).then_some("duplicate")
        })
    }
}
